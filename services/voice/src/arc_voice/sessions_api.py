"""HTTP routes of the sessions API (`/v1/sessions...`, docs/sessions.md) over `SessionStore`.

Every route needs the API key (the caller passes the guard's dependencies); errors are the
contract's body, with the finer HTTP status the error carries (404, 409, 416, 403).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from arc_common.errors import Busy
from arc_common.http_errors import error_response
from fastapi import APIRouter, Query, Request
from fastapi.params import Depends
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from arc_voice.sessions import (
    LIST_LIMIT_MAX,
    RECORDING_PARTS_MAX,
    RangeNotSatisfiable,
    SessionFilter,
    SessionStore,
    checked_session_id,
    parse_range,
    render_text,
)
from arc_voice.worker import VoiceWorker


def store_for_worker(worker: VoiceWorker, recordings: Path) -> SessionStore:
    """The store over the worker's own Postgres pool and the brain it asks to delete turns."""
    pool = worker.pool
    if pool is None:
        raise Busy("sessions API: the voice worker has no Postgres pool")
    return SessionStore(pool, worker.history, recordings)


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC, as every stored time is."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def sessions_router(
    store_of: Callable[[], SessionStore], dependencies: Sequence[Depends]
) -> APIRouter:
    router = APIRouter(prefix="/v1/sessions", dependencies=list(dependencies), tags=["sessions"])

    @router.get("")
    async def list_sessions(
        user_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
        room: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 50,
    ) -> dict[str, Any]:
        """Sessions started in [since, until), newest first; deleted ones are not listed.
        Page back with `until` = the oldest `started_at` of the previous page."""
        query = SessionFilter(user_id, room, _utc(since), _utc(until), limit)
        rows = await store_of().list_sessions(query)
        return {"sessions": [row.to_json() for row in rows]}

    @router.get("/{session_id}")
    async def one_session(session_id: str) -> dict[str, Any]:
        """Transcript in order (interruptions marked, offsets from the session start), each
        turn's latency stages, the recording's type and length, summary and sentiment."""
        view = await store_of().view(checked_session_id(session_id))
        return view.to_json()

    @router.get("/{session_id}/recording")
    async def recording(
        session_id: str,
        request: Request,
        part: Annotated[int, Query(ge=0, le=RECORDING_PARTS_MAX)] = 0,
    ) -> Response:
        """One part of the recording (0, the default: the first conversation; a resumed
        session has one per conversation); a single `Range: bytes=...` is answered 206 with
        `Content-Range`, an unservable one 416 with `Content-Range: bytes */size`."""
        path, mime_type = await store_of().recording(checked_session_id(session_id), part)
        stat = await asyncio.to_thread(os.stat, path)
        try:
            parse_range(request.headers.get("range"), stat.st_size)
        except RangeNotSatisfiable as exc:
            answer = error_response(exc)
            answer.headers["content-range"] = f"bytes */{exc.size}"
            return answer
        # Starlette serves the range it parses the same way (checked above, so its own plain
        # 400/416 answers are never reached); the stat is shared so both see one size.
        return FileResponse(
            path,
            media_type=mime_type,
            stat_result=stat,
            headers={"cache-control": "private, no-store"},
        )

    @router.get("/{session_id}/export")
    async def export(session_id: str, format: Literal["json", "text"] = "json") -> Response:
        """The session as a download: the JSON of `GET /v1/sessions/{id}`, or plain text."""
        checked = checked_session_id(session_id)
        view = await store_of().view(checked)
        name = f"session-{checked}.{'txt' if format == 'text' else 'json'}"
        disposition = {"content-disposition": f'attachment; filename="{name}"'}
        if format == "text":
            return PlainTextResponse(render_text(view), headers=disposition)
        return JSONResponse(view.to_json(), headers=disposition)

    @router.delete("/{session_id}")
    async def delete(session_id: str, force: bool = False) -> dict[str, Any]:
        """Delete the session's turns (the brain), recording (file and row); mark the session
        and its events deleted. An active session needs `force=true`."""
        deleted = await store_of().delete(checked_session_id(session_id), force=force)
        return deleted.to_json()

    return router

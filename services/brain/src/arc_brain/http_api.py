"""HTTP entry points: chat (JSON and Server-Sent Events), transcript export, truncation of
interrupted turns, health and metrics. FastAPI serves the OpenAPI spec at /openapi.json."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from arc_common.errors import ArcError, BadRequest, Busy
from arc_common.http_errors import contract_status, install_error_handlers
from arc_common.http_errors import error_response as shared_error_response
from arc_common.http_security import HttpGuard
from arc_common.telemetry import metrics_payload
from arc_common.wire import BrainRequest
from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from arc_brain import __version__
from arc_brain.brain import Brain, TurnInput, TurnOutcome
from arc_brain.memory import MemoryUnavailable, TranscriptLine
from arc_brain.runtime import BrainRuntime
from arc_brain.settings import BrainSettings

log = logging.getLogger(__name__)


IdField = Annotated[str, Field(min_length=1, max_length=128)]


class ChatRequest(BaseModel):
    session_id: IdField
    user_id: IdField
    text: str = Field(description="1..4000 characters after trimming")
    turn_id: IdField | None = Field(default=None, description="generated when absent")
    room: str | None = None
    locale: str | None = None


class ChatResponse(BaseModel):
    session_id: str
    turn_id: str
    text: str
    chunks: list[str]
    route: str | None
    remembered: bool | None = Field(
        description="true: written to memory; false: kept for later (memory offline)"
    )


class TruncateRequest(BaseModel):
    heard: str = Field(max_length=16_000, description="the part of the answer that was heard")


class Transcript(BaseModel):
    session_id: str
    turns: list[TranscriptLine]  # the store's rows as they are


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def status_of(error: ArcError) -> int:
    # Memory down is not the brain's fault and passes: 503, retry later.
    return 503 if isinstance(error, MemoryUnavailable) else contract_status(error)


def error_response(error: ArcError) -> JSONResponse:
    return shared_error_response(error, status_of)


def _turn(body: ChatRequest) -> TurnInput:
    # The same rules as `brain.request`: one validation for both entry points.
    request = BrainRequest(
        v=1,
        session_id=body.session_id,
        turn_id=body.turn_id or uuid.uuid4().hex,
        user_id=body.user_id,
        text=body.text,
        room=body.room,
        locale=body.locale,
    )
    request.check()
    return TurnInput.of(request)


class _Admission:
    """Bounds the HTTP turns in progress, like the NATS endpoint's max_concurrent_turns."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def enter(self) -> None:
        if self.active >= self.limit:
            raise Busy(f"the brain is serving its maximum of {self.limit} HTTP turns")
        self.active += 1

    def leave(self) -> None:
        self.active -= 1


def build_app(
    brain_of: Callable[[], Brain],
    guard: HttpGuard,
    *,
    nats_connected: Callable[[], bool] = lambda: True,
    max_turns: int = 64,
) -> FastAPI:
    """Routes over a brain, which `brain_of` gives per request. Chat, export and truncation
    need an API key (`guard`); chat is rate-limited per client too."""
    app = FastAPI(
        title="Arc brain",
        version=__version__,
        description="Streamed answers over NATS `brain.request` and HTTP.",
        responses={400: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
    )
    admission = _Admission(max_turns)

    install_error_handlers(app, status_of)
    guard.install(app)
    private = [Depends(guard.require_key)]
    costly = [Depends(guard.rate_limit), Depends(guard.require_key)]

    @app.post("/chat", response_model=ChatResponse, dependencies=costly)
    async def chat(body: ChatRequest) -> ChatResponse:
        """The whole answer at once."""
        turn = _turn(body)
        admission.enter()
        try:
            outcome = TurnOutcome()
            chunks = [chunk async for chunk in brain_of().reply(turn, outcome)]
        finally:
            admission.leave()
        return ChatResponse(
            session_id=turn.session_id,
            turn_id=turn.turn_id,
            text="".join(chunks),
            chunks=chunks,
            route=outcome.route,
            remembered=outcome.persisted,
        )

    @app.post(
        "/chat/stream",
        dependencies=costly,
        response_class=EventSourceResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def chat_stream(body: ChatRequest) -> EventSourceResponse:
        """Server-Sent Events: `delta` events ({seq, text}), then one `end` ({seq, route}) or
        one `error` ({seq, error: {code, message}})."""
        turn = _turn(body)
        admission.enter()
        return EventSourceResponse(_events(brain_of(), turn, admission))

    @app.get(
        "/sessions/{session_id}/export",
        dependencies=private,
        response_model=Transcript,
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def export(
        session_id: str, format: Annotated[Literal["json", "text"], Query()] = "json"
    ) -> Response:
        """The session's transcript, as JSON or as plain text (`?format=text`)."""
        lines = await brain_of().transcript(session_id)
        if format == "text":
            text = "".join(
                f"[{line.created_at.isoformat(timespec='seconds')}] {line.role}: "
                f"{line.content}{' [interrupted]' if line.interrupted else ''}\n"
                for line in lines
            )
            return PlainTextResponse(text)
        transcript = Transcript(
            session_id=session_id,
            turns=lines,
        )
        return JSONResponse(transcript.model_dump(mode="json"))

    @app.post("/sessions/{session_id}/turns/{turn_id}/truncate", dependencies=private)
    async def truncate(session_id: str, turn_id: str, body: TruncateRequest) -> dict[str, Any]:
        """The answer of an interrupted turn becomes only what the person heard."""
        if not await brain_of().truncate(session_id, turn_id, body.heard.strip()):
            return error_response(  # type: ignore[return-value]
                BadRequest(f"no turn {turn_id} in session {session_id}")
            )
        return {"session_id": session_id, "turn_id": turn_id, "truncated": True}

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """200 while the brain answers (`status` says `degraded` when memory is offline);
        503 when it cannot serve NATS."""
        health = brain_of().health()
        health["nats"] = {"connected": nats_connected()}
        if not health["nats"]["connected"]:
            health["status"] = "unavailable"
            return JSONResponse(health, status_code=503)
        return JSONResponse(health)

    @app.get("/metrics")
    async def metrics() -> Response:
        brain = brain_of()
        brain.health()  # refresh the gauges
        body, content_type = metrics_payload(brain.metrics.registry)
        return Response(body, media_type=content_type)

    return app


async def _events(brain: Brain, turn: TurnInput, admission: _Admission) -> AsyncIterator[Any]:
    seq = 0
    outcome = TurnOutcome()
    try:
        async for chunk in brain.reply(turn, outcome):
            yield ServerSentEvent(json.dumps({"seq": seq, "text": chunk}), event="delta")
            seq += 1
        yield ServerSentEvent(
            json.dumps({"seq": seq, "turn_id": turn.turn_id, "route": outcome.route}),
            event="end",
        )
    except ArcError as exc:
        yield ServerSentEvent(
            json.dumps({"seq": seq, "error": {"code": exc.code.value, "message": exc.message}}),
            event="error",
        )
    except Exception as exc:
        log.exception("streamed turn failed")
        message = f"{type(exc).__name__}: {exc}"
        yield ServerSentEvent(
            json.dumps({"seq": seq, "error": {"code": "internal", "message": message}}),
            event="error",
        )
    finally:
        admission.leave()


def create_app(settings: BrainSettings, runtime: BrainRuntime) -> FastAPI:
    """The service's app over an open runtime (`python -m arc_brain` opens it first)."""

    def brain_of() -> Brain:
        brain = runtime.brain
        assert brain is not None
        return brain

    return build_app(
        brain_of,
        HttpGuard(settings.http),
        nats_connected=lambda: runtime.nats_connected,
        max_turns=settings.brain.max_concurrent_turns,
    )

"""Lifecycle and conversation events: written durably (outbox, in the same transaction as the
state they describe) and announced on NATS for whoever listens live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import psycopg
from arc_common import subjects
from arc_common.envelope import headers_for
from arc_common.events import (
    AnnouncementSpoken,
    Event,
    SessionEnded,
    SessionStarted,
    TrackPublished,
    TrackUnpublished,
    TurnMetrics,
    to_builtins,
    validate,
    write_events,
)
from nats.aio.client import Client
from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying, retry_if_not_exception_type, wait_exponential

from arc_voice import metrics

log = logging.getLogger(__name__)

_NATS_SUBJECTS: dict[type[Event], str] = {
    SessionStarted: subjects.SESSION_STARTED,
    SessionEnded: subjects.SESSION_ENDED,
    TrackPublished: subjects.VOICE_TRACK_PUBLISHED,
    TrackUnpublished: subjects.VOICE_TRACK_UNPUBLISHED,
}
_msgpack = msgspec.msgpack.Encoder()

_UPSERT_SESSION = (
    "INSERT INTO agents.sessions (session_id, user_id, room, status) VALUES (%s, %s, %s, 'active') "
    "ON CONFLICT (session_id) DO UPDATE SET user_id = EXCLUDED.user_id, room = EXCLUDED.room, "
    # A session resumed by another worker after its first one stopped (docs/dispatch.md) is
    # active again.
    "status = 'active', ended_at = NULL, end_reason = NULL"
)
_END_SESSION = (
    "UPDATE agents.sessions SET status = 'ended', ended_at = now(), end_reason = %s "
    "WHERE session_id = %s"
)


@dataclass
class HeardTurn:
    session_id: str
    turn_id: str
    user_id: str
    user_text: str
    assistant_text: str
    interrupted: bool
    metrics: TurnMetrics | None = None

    def timings(self) -> dict[str, Any]:
        """What a client is told of the turn once it was heard (the WebSocket's
        `turn_metrics` event, the room's `arc.turn_metrics` text stream): milliseconds per
        stage, None for a stage that did not run."""
        m = self.metrics
        return {
            "turn_id": self.turn_id,
            "interrupted": self.interrupted,
            **{name: None if m is None else getattr(m, name) for name in TIMING_FIELDS},
        }


TIMING_FIELDS = (
    "end_of_speech_ms",
    "stt_ms",
    "brain_first_delta_ms",
    "tts_first_chunk_ms",
    "voice_to_voice_ms",
)


class HistoryTruncator(Protocol):
    async def truncate(self, session_id: str, turn_id: str, user_id: str, heard: str) -> None: ...


Statements = list[tuple[str, tuple[Any, ...]]]


@dataclass
class _Unwritten:
    events: list[Event]
    statements: Statements


# Events waiting for Postgres while it is down; past this many the oldest are dropped.
BACKLOG_MAX = 10_000


class EventRecorder:
    """Writes events to the outbox with the state they describe. While Postgres is down, they
    wait in a bounded backlog, in order, and are written once it is back: a database outage
    costs the durable record nothing (the chaos suite found the turn metrics of turns
    answered during a 30 s outage missing when they were only logged)."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any] | None,
        nc: Client | None,
        prefix: str,
        history: HistoryTruncator | None = None,
        *,
        backlog_max: int = BACKLOG_MAX,
        retry_max_s: float = 5.0,
    ) -> None:
        self._pool = pool
        self._nc = nc
        self._prefix = prefix
        self._history = history
        self.failures = 0
        self.backlog: deque[_Unwritten] = deque()
        self._backlog_max = backlog_max
        self._retry_max_s = retry_max_s
        self._draining: asyncio.Task[None] | None = None
        self.dropped = 0

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Give the backlog a last chance, then stop; what is left is logged and dropped."""
        task, self._draining = self._draining, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self.backlog:
            lost = [f"{type(e).TYPE}:{e.event_id}" for u in self.backlog for e in u.events]
            log.error("events never written (Postgres still down at shutdown): %s", lost)
            self.backlog.clear()
            metrics.EVENT_BACKLOG.set(0)

    async def _publish(self, event: Event) -> None:
        subject = _NATS_SUBJECTS.get(type(event))
        if subject is None or self._nc is None or self._nc.is_closed:
            return
        body = _msgpack.encode(to_builtins(event))
        await self._nc.publish(
            subjects.prefixed(self._prefix, subject),
            body,
            headers=headers_for(f"{type(event).TYPE}/{type(event).VERSION}"),
        )

    async def _store(self, events: list[Event], statements: Statements) -> bool:
        """True when written now; False when the events wait in the backlog (or there is no
        database)."""
        for event in events:
            validate(event)
        if self._pool is None:
            return False
        unwritten = _Unwritten(events, statements)
        if self.backlog:
            # Behind the ones already waiting: the outbox keeps each session's order.
            self._queue(unwritten)
            return False
        try:
            await self._write(self._pool, unwritten)
        except psycopg.errors.IntegrityError:
            # Not an outage: Postgres refuses the record itself, and would again.
            self.failures += 1
            metrics.EVENT_STORE_FAILURES.inc(len(events))
            log.exception("events refused: %s", [f"{type(e).TYPE}:{e.event_id}" for e in events])
            return False
        except Exception as exc:
            # A database outage must not end the conversation, nor lose what it records.
            self.failures += 1
            metrics.EVENT_STORE_FAILURES.inc(len(events))
            log.warning(
                "could not store events %s (%s); kept until Postgres answers",
                [f"{type(e).TYPE}:{e.event_id}" for e in events],
                exc,
            )
            self._queue(unwritten)
            return False
        return True

    @staticmethod
    async def _write(pool: AsyncConnectionPool[Any], unwritten: _Unwritten) -> None:
        async with pool.connection() as conn, conn.transaction():
            async with conn.cursor() as cur:
                for sql, params in unwritten.statements:
                    await cur.execute(sql, params)
            await write_events(conn, unwritten.events)

    def _queue(self, unwritten: _Unwritten) -> None:
        if len(self.backlog) >= self._backlog_max:
            oldest = self.backlog.popleft()
            self.dropped += len(oldest.events)
            log.error(
                "event backlog full: dropped %s",
                [f"{type(e).TYPE}:{e.event_id}" for e in oldest.events],
            )
        self.backlog.append(unwritten)
        metrics.EVENT_BACKLOG.set(len(self.backlog))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain(), name="event-backlog")

    async def _drain(self) -> None:
        assert self._pool is not None
        pool = self._pool
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.25, max=self._retry_max_s),
            retry=retry_if_not_exception_type(psycopg.errors.IntegrityError),
            reraise=True,
        )
        while self.backlog:
            head = self.backlog[0]
            try:
                await retrying(self._write, pool, head)
            except psycopg.errors.UniqueViolation:
                # An earlier try committed though its answer was lost with the connection.
                log.info("events already written: %s", [str(e.event_id) for e in head.events])
            except psycopg.errors.IntegrityError:
                log.exception(
                    "events refused: %s", [f"{type(e).TYPE}:{e.event_id}" for e in head.events]
                )
            self.backlog.popleft()
            metrics.EVENT_BACKLOG.set(len(self.backlog))
        log.info("event backlog written")

    async def record(self, event: Event, *statements: tuple[str, tuple[Any, ...]]) -> None:
        await self._store([event], list(statements))
        await self._publish(event)

    async def session_started(self, session_id: str, room: str, user_id: str | None) -> None:
        await self.record(
            SessionStarted(session_id=session_id, room=room, user_id=user_id),
            (_UPSERT_SESSION, (session_id, user_id, room)),
        )

    async def session_ended(
        self, session_id: str, room: str, user_id: str | None, reason: str
    ) -> None:
        await self.record(
            SessionEnded(session_id=session_id, room=room, user_id=user_id, reason=reason),
            (_END_SESSION, (reason, session_id)),
        )

    async def track(
        self,
        *,
        published: bool,
        session_id: str,
        room: str,
        participant: str,
        track_sid: str,
        kind: str,
    ) -> None:
        cls = TrackPublished if published else TrackUnpublished
        await self.record(
            cls(
                session_id=session_id,
                room=room,
                participant=participant,
                track_sid=track_sid,
                kind="video" if kind == "video" else "audio",
            )
        )

    async def announcement(
        self, *, room: str, text: str, category: str, priority: int, source: str
    ) -> None:
        await self.record(
            AnnouncementSpoken(
                room=room, text=text, category=category, priority=priority, source=source
            )
        )

    async def turn(self, turn: HeardTurn) -> bool:
        """The turn's latency breakdown; for an interrupted answer, the brain is asked to cut
        its record down to what the person heard (it stored everything it had generated by the
        time it was cancelled, or the whole answer when it had finished). True when both
        landed."""
        stored = True
        if turn.metrics is not None:
            stored = await self._store([turn.metrics], [])
        if turn.interrupted:
            stored = await self._truncate(turn) and stored
        return stored

    async def _truncate(self, turn: HeardTurn) -> bool:
        if self._history is None:
            return False
        try:
            await self._history.truncate(
                turn.session_id, turn.turn_id, turn.user_id, turn.assistant_text
            )
        except Exception:
            # The conversation goes on; the brain's record keeps the fuller answer.
            self.failures += 1
            metrics.TRUNCATE_FAILURES.inc()
            log.exception("could not truncate interrupted turn %s", turn.turn_id)
            return False
        return True

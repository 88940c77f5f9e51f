"""Helpers of the events integration tests: writing events like a service does, and reading
back what the consumers applied."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable

import psycopg
from arc_common.events import ConversationTurn, Event, TurnMetrics, write_events


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float, interval_s: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(interval_s)


async def scalar(dsn: str, sql: str, *args: object) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(sql, args)
        row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


async def outbox_order(dsn: str) -> dict[str, list[uuid.UUID]]:
    """Each session's event ids in the order they were written."""
    return await _by_session(dsn, "SELECT session_id, event_id FROM agents.outbox ORDER BY id")


async def audit_order(dsn: str) -> dict[str, list[uuid.UUID]]:
    """Each session's event ids in the order the audit consumer applied them."""
    return await _by_session(dsn, "SELECT session_id, event_id FROM agents.event_audit ORDER BY id")


async def _by_session(dsn: str, sql: str) -> dict[str, list[uuid.UUID]]:
    out: dict[str, list[uuid.UUID]] = defaultdict(list)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        for session_id, event_id in await (await conn.execute(sql)).fetchall():
            out[session_id].append(event_id)
    return dict(out)


def turn(session_id: str, n: int) -> ConversationTurn:
    return ConversationTurn(
        session_id=session_id,
        turn_id=f"t{n}",
        user_id="u1",
        user_text=f"question {n}",
        assistant_text=f"answer {n}",
    )


class Writer:
    """Writes conversation turns for `sessions` sessions, round robin, each in its own
    transaction together with the turn's row in `agents.conversations`, as the brain does.
    Counts only committed writes; a failed commit is retried until it succeeds."""

    def __init__(self, dsn: str, *, sessions: int, per_tick: int, tick_s: float) -> None:
        self._dsn = dsn
        self._sessions = [f"s{i}-{uuid.uuid4().hex[:6]}" for i in range(sessions)]
        self._per_tick = per_tick
        self._tick_s = tick_s
        self._counter = itertools.count()
        self.written = 0
        self.failed_commits = 0

    async def write_once(self, conn: psycopg.AsyncConnection[object]) -> None:
        events: list[Event] = []
        async with conn.transaction():
            for _ in range(self._per_tick):
                n = next(self._counter)
                session = self._sessions[n % len(self._sessions)]
                await conn.execute(
                    "INSERT INTO agents.conversations (session_id, turn_id, user_id, role,"
                    " content) VALUES (%s, %s, 'u1', 'user', %s)",
                    (session, f"t{n}", f"question {n}"),
                )
                events.append(turn(session, n))
                events.append(TurnMetrics(session_id=session, turn_id=f"t{n}", stt_ms=12.5))
            await write_events(conn, events)
        self.written += self._per_tick

    async def committed(self) -> int:
        """Turns of this writer that Postgres holds: the truth after the writing task was
        cancelled, which can land after a commit and before `written` counted it (a CI run
        saw audited 7530 for written 7520: one tick of 10)."""
        async with await psycopg.AsyncConnection.connect(self._dsn) as conn:
            row = await (
                await conn.execute(
                    "SELECT count(*) FROM agents.conversations WHERE session_id = ANY(%s)",
                    (self._sessions,),
                )
            ).fetchone()
        assert row is not None
        return int(row[0])

    async def write_once_in_new_transaction(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._dsn) as conn:
            await self.write_once(conn)

    async def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        async with await psycopg.AsyncConnection.connect(self._dsn) as conn:
            while time.monotonic() < deadline:
                await self.write_once(conn)
                await asyncio.sleep(self._tick_s)

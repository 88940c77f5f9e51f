"""The voice worker's events through a Postgres outage: recorded while the server is down,
they wait in order and reach the outbox once it is back, instead of being logged and lost
(the chaos suite's 30 s outage lost the turn metrics of the turns it answered meanwhile)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from arc_common.events import TurnMetrics
from arc_stack.paths import state_dir
from arc_stack.postgres import PostgresServer
from arc_stack.server import free_port
from arc_voice.lifecycle import EventRecorder, HeardTurn
from psycopg_pool import AsyncConnectionPool

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest_asyncio.fixture(loop_scope="session")
async def server() -> AsyncIterator[PostgresServer]:
    # A server of its own: this test stops it.
    root = state_dir() / "test-runs" / f"backlog-{uuid.uuid4().hex[:8]}"
    pg = PostgresServer(root / "pgdata", root / "logs", port=free_port(), database="arc")
    await pg.start()
    try:
        yield pg
    finally:
        await pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def _turn(session_id: str, n: int) -> HeardTurn:
    return HeardTurn(
        session_id=session_id,
        turn_id=f"t{n}",
        user_id="ann",
        user_text="What time is it?",
        assistant_text="It's noon.",
        interrupted=False,
        metrics=TurnMetrics(session_id=session_id, turn_id=f"t{n}", voice_to_voice_ms=800.0 + n),
    )


async def _rows(dsn: str, session_id: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT type, payload->>'turn_id' FROM agents.outbox WHERE session_id = %s ORDER BY id",
            (session_id,),
        )
        return await cur.fetchall()


async def test_events_recorded_while_postgres_is_down_arrive_in_order_once_it_is_back(
    server: PostgresServer,
) -> None:
    dsn = server.dsn()
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=1, open=False, timeout=1.0, kwargs={"connect_timeout": 1}
    )
    await pool.open(wait=True)
    recorder = EventRecorder(pool, None, "", retry_max_s=0.5)
    try:
        await recorder.session_started(session_id, "room-1", "ann")
        assert await recorder.turn(_turn(session_id, 1))

        # Fast shutdown (SIGINT); SIGTERM would wait for the pool's connection to leave.
        assert server.pid is not None
        os.killpg(server.pid, signal.SIGINT)
        await server.stop()
        assert not await recorder.turn(_turn(session_id, 2))
        assert not await recorder.turn(_turn(session_id, 3))
        await recorder.session_ended(session_id, "room-1", "ann", "participant_left")
        assert len(recorder.backlog) == 3 and recorder.failures >= 1

        await server.start()
        deadline = time.monotonic() + 30
        while recorder.backlog:
            assert time.monotonic() < deadline, f"{len(recorder.backlog)} still unwritten"
            await asyncio.sleep(0.2)
        assert await _rows(dsn, session_id) == [
            ("session.started", None),
            ("turn.metrics", "t1"),
            ("turn.metrics", "t2"),
            ("turn.metrics", "t3"),
            ("session.ended", None),
        ]
        # The statements went with them: the session row says it ended.
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cur = await conn.execute(
                "SELECT status, end_reason FROM agents.sessions WHERE session_id = %s",
                (session_id,),
            )
            assert await cur.fetchone() == ("ended", "participant_left")
        # Back to writing at once.
        assert await recorder.turn(_turn(session_id, 4))
        assert recorder.dropped == 0
    finally:
        await recorder.aclose()
        await pool.close()

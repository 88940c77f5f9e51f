"""`write_event` against a real, migrated Postgres: atomic with the caller's transaction,
validated before anything is written, and bucketed for the relay."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from arc_common.errors import BadRequest
from arc_common.events import (
    ConversationTurn,
    SessionStarted,
    TurnMetrics,
    decode,
    write_event,
    write_events,
)
from arc_common.subjects import TOPIC_CONVERSATION

pytestmark = pytest.mark.integration


async def _outbox_rows(dsn: str, session_id: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT event_id, topic, type, schema_version, payload::text, relay_bucket"
            " FROM agents.outbox WHERE session_id = %s ORDER BY id",
            (session_id,),
        )
        return list(await cur.fetchall())


async def test_event_commits_with_the_callers_transaction(migrated_dsn: str) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    turn = ConversationTurn(
        session_id=session, turn_id="t1", user_id="u1", user_text="hi", assistant_text="hello"
    )
    async with await psycopg.AsyncConnection.connect(migrated_dsn) as conn:
        await write_event(conn, turn)
        await conn.rollback()
    assert await _outbox_rows(migrated_dsn, session) == []

    async with await psycopg.AsyncConnection.connect(migrated_dsn) as conn:
        await write_event(conn, turn)
        await conn.commit()
    [row] = await _outbox_rows(migrated_dsn, session)
    event_id, topic, type_, version, payload, bucket = row
    assert (event_id, topic, type_, version) == (turn.event_id, TOPIC_CONVERSATION, turn.TYPE, 1)
    assert decode(str(payload)) == turn
    assert isinstance(bucket, int) and 0 <= bucket < 64


async def test_invalid_event_is_rejected_and_nothing_is_written(migrated_dsn: str) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    good = SessionStarted(session_id=session, room="r", user_id=None)
    bad = TurnMetrics(session_id=session, turn_id="", stt_ms=12.0)
    async with await psycopg.AsyncConnection.connect(migrated_dsn) as conn:
        with pytest.raises(BadRequest, match=r"turn\.metrics/v1.*turn_id"):
            await write_events(conn, [good, bad])
        await conn.commit()
    assert await _outbox_rows(migrated_dsn, session) == []


async def test_one_session_maps_to_one_bucket(migrated_dsn: str) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    events = [TurnMetrics(session_id=session, turn_id=f"t{i}", stt_ms=float(i)) for i in range(5)]
    async with await psycopg.AsyncConnection.connect(migrated_dsn) as conn:
        await write_events(conn, events)
        await conn.commit()
    rows = await _outbox_rows(migrated_dsn, session)
    assert [r[0] for r in rows] == [e.event_id for e in events]
    assert len({r[5] for r in rows}) == 1

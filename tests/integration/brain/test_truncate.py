"""`brain.truncate` against the real brain on a real NATS server and Postgres, asked the way the
voice worker asks it (`arc_voice.brain_history.BrainHistory`): history and the durable events
end as what the person heard, whichever of the turn's write and the truncation lands first;
bad input and a memory outage are answered with the contract's codes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg
import pytest
import pytest_asyncio
from arc_common import subjects
from arc_common.envelope import headers_for
from arc_common.errors import Busy
from arc_common.streaming import StreamingClient
from arc_common.wire import TurnTruncate, TurnTruncateReply, encode
from arc_stack.postgres import PostgresServer
from arc_stack.server import free_port
from arc_voice.brain_history import BrainHistory
from nats.aio.client import Client

from tests.fixtures.brain import BrainFactory
from tests.integration.brain.helpers import ask, new_id, request

pytestmark = pytest.mark.integration


async def _rows(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await (await conn.execute(sql, params)).fetchall()


async def _answer(dsn: str, session: str, turn: str) -> list[tuple[Any, ...]]:
    return await _rows(
        dsn,
        "SELECT role, content, interrupted FROM agents.conversations "
        "WHERE session_id = %s AND turn_id = %s ORDER BY role DESC",
        session,
        turn,
    )


async def _turn_events(dsn: str, session: str, turn: str) -> list[dict[str, Any]]:
    rows = await _rows(
        dsn,
        "SELECT payload FROM agents.outbox WHERE type = 'conversation.turn' "
        "AND session_id = %s AND payload->>'turn_id' = %s ORDER BY id",
        session,
        turn,
    )
    return [payload for (payload,) in rows]


async def _stored(dsn: str, session: str, turn: str) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + 30
    while len(rows := await _answer(dsn, session, turn)) < 2:
        assert time.monotonic() < deadline, f"turn {turn} was not stored: {rows}"
        await asyncio.sleep(0.05)
    return rows


@dataclass(frozen=True, slots=True)
class _Brain:
    """A skills brain on the test's subject namespace, its database, and the voice worker's
    way of truncating its turns."""

    prefix: str
    dsn: str
    history: BrainHistory


@pytest_asyncio.fixture(loop_scope="session")
async def brain(
    brain_factory: BrainFactory, nc: Client, subject_prefix: str, postgres_server: PostgresServer
) -> _Brain:
    await brain_factory(subject_prefix=subject_prefix)
    history = BrainHistory(nc, subject_prefix=subject_prefix)
    return _Brain(subject_prefix, postgres_server.dsn(), history)


async def test_an_answer_stored_in_full_becomes_what_was_heard_with_a_second_event(
    brain: _Brain, client: StreamingClient
) -> None:
    dsn = brain.dsn
    session, user = new_id("s"), new_id("u")
    req = request("hello there", session_id=session, user_id=user)
    full = "".join(c.text or "" for c in await ask(client, brain.prefix, req))
    assert full.startswith("Hello!") and len(full) > len("Hello! How")
    assert await _stored(dsn, session, req.turn_id) == [
        ("user", "hello there", False),
        ("assistant", full, False),
    ]

    await brain.history.truncate(session, req.turn_id, user, "Hello! How")

    assert await _answer(dsn, session, req.turn_id) == [
        ("user", "hello there", False),
        ("assistant", "Hello! How", True),
    ]
    events = await _turn_events(dsn, session, req.turn_id)
    assert [(e["assistant_text"], e["interrupted"], e["user_text"]) for e in events] == [
        (full, False, "hello there"),
        ("Hello! How", True, "hello there"),
    ]
    assert {e["user_id"] for e in events} == {user}


async def test_a_truncation_ahead_of_the_turns_own_write_still_wins(
    brain: _Brain, client: StreamingClient
) -> None:
    """Another replica gets the truncation before the one that answered has written the turn:
    what was heard is written ahead, and the turn's own write keeps it, in its only event."""
    dsn = brain.dsn
    session, user, turn = new_id("s"), new_id("u"), new_id("t")
    await brain.history.truncate(session, turn, user, "Hel")
    assert await _answer(dsn, session, turn) == [("assistant", "Hel", True)]
    assert await _turn_events(dsn, session, turn) == []

    req = request("hello there", session_id=session, user_id=user, turn_id=turn)
    full = "".join(c.text or "" for c in await ask(client, brain.prefix, req))
    assert full.startswith("Hello!")
    assert await _stored(dsn, session, turn) == [
        ("user", "hello there", False),
        ("assistant", "Hel", True),
    ]
    events = await _turn_events(dsn, session, turn)
    assert [(e["user_text"], e["assistant_text"], e["interrupted"]) for e in events] == [
        ("hello there", "Hel", True)
    ]
    # The brain's next answer is built on what was heard: the history it reads says so.
    brain_history = await _rows(
        dsn,
        "SELECT content FROM agents.conversations WHERE session_id = %s AND role = 'assistant'",
        session,
    )
    assert brain_history == [("Hel",)]


async def test_bad_input_and_a_memory_outage_get_the_contract_codes(
    brain_factory: BrainFactory, nc: Client, subject_prefix: str
) -> None:
    subject = subjects.prefixed(subject_prefix, subjects.BRAIN_TRUNCATE)
    decode = msgspec.msgpack.Decoder(TurnTruncateReply).decode
    good = TurnTruncate(session_id="s", turn_id="t", user_id="u", heard="Hi")
    # No brain yet: the voice worker's client says `busy` once its retry window is spent.
    impatient = BrainHistory(nc, subject_prefix=subject_prefix, truncate_retry_s=0.5)
    started = time.monotonic()
    with pytest.raises(Busy, match="no brain is answering"):
        await impatient.truncate("s", "t", "u", "Hi")
    assert 0.5 <= time.monotonic() - started < 5

    # A brain whose Postgres is not there: it answers, without memory.
    await brain_factory(
        subject_prefix=subject_prefix, dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    )
    bad: list[bytes] = [
        b"\xc1",
        encode({"v": 1}),
        encode({"v": 1, "session_id": "s", "turn_id": "t", "user_id": "", "heard": "x"}),
        encode({"v": 1, "session_id": "s", "turn_id": "t", "user_id": "u", "heard": "x" * 16_001}),
        encode({"v": 2, "session_id": "s", "turn_id": "t", "user_id": "u", "heard": "x"}),
    ]
    for data in bad:
        reply = await nc.request(subject, data, timeout=10)
        assert reply.headers is not None
        assert reply.headers["arc-schema"] == "brain.truncate.reply/1"
        error = decode(reply.data).error
        assert error is not None and error.code == "bad_request", (data[:40], error)
    wrong = await nc.request(subject, encode(good), timeout=10, headers=headers_for("x/1"))
    assert msgspec.msgpack.decode(wrong.data)["error"]["code"] == "bad_request"

    down = await nc.request(subject, encode(good), timeout=10, headers=headers_for(good.schema))
    assert msgspec.msgpack.decode(down.data)["error"]["code"] == "busy"
    with pytest.raises(Busy, match="memory is unavailable"):
        await impatient.truncate("s", "t", "u", "Hi")

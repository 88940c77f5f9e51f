"""Memory on the real Postgres + pgvector: recall across sessions of one user, isolation
between users, history, the transactional outbox event, and an outage with recovery."""

from __future__ import annotations

import asyncio
import json

import httpx
import psycopg
import pytest
from arc_stack.postgres import PostgresServer

from tests.fixtures.brain import BrainFactory, RunningBrain
from tests.integration.brain.helpers import Say, new_id

pytestmark = pytest.mark.integration


async def test_recall_across_sessions_of_the_same_user(
    brain_factory: BrainFactory, say: Say, subject_prefix: str
) -> None:
    await brain_factory(subject_prefix=subject_prefix)
    user = new_id("u")
    said = await say("Remember that my car is blue.", user_id=user)
    assert said == "Okay, I'll remember that your car is blue."
    await say("remember that my dog is called Rex", user_id=user)
    later = new_id("s")
    assert (
        await say("what colour is my car?", session_id=later, user_id=user)
        == "You told me that your car is blue."
    )
    assert await say("What's my dog's name?", session_id=later, user_id=user) == (
        "You told me that your dog is called Rex."
    )


async def test_memories_never_cross_users(
    brain_factory: BrainFactory, say: Say, subject_prefix: str
) -> None:
    await brain_factory(subject_prefix=subject_prefix)
    alice, bob, carol = new_id("alice"), new_id("bob"), new_id("carol")
    await say("remember that my car is blue", user_id=alice)
    await say("remember that my car is red", user_id=bob)
    assert await say("what colour is my car?", user_id=alice) == (
        "You told me that your car is blue."
    )
    assert await say("what colour is my car?", user_id=bob) == ("You told me that your car is red.")
    unknown = await say("what colour is my car?", user_id=carol)
    assert unknown.startswith("I don't know that yet")


async def test_latest_fact_wins_for_one_user(
    brain_factory: BrainFactory, say: Say, subject_prefix: str
) -> None:
    await brain_factory(subject_prefix=subject_prefix)
    user = new_id("u")
    await say("remember that my car is blue", user_id=user)
    await say("remember that my car is green", user_id=user)
    assert await say("what colour is my car?", user_id=user) == (
        "You told me that your car is green."
    )


async def test_turn_embedding_and_outbox_event_are_written_together(
    brain_factory: BrainFactory, say: Say, subject_prefix: str, postgres_server: PostgresServer
) -> None:
    await brain_factory(subject_prefix=subject_prefix)
    session, user = new_id("s"), new_id("u")
    await say("hello", session_id=session, user_id=user)
    summary = await say("summarise our conversation", session_id=session, user_id=user)
    assert summary == 'So far we\'ve had one exchange. You said "hello".'
    async with await psycopg.AsyncConnection.connect(postgres_server.dsn()) as conn:
        rows = await (
            await conn.execute(
                "SELECT role, content, embedding IS NOT NULL, vector_dims(embedding) "
                "FROM agents.conversations WHERE session_id = %s ORDER BY id",
                (session,),
            )
        ).fetchall()
        events = await (
            await conn.execute(
                "SELECT topic, type, payload FROM agents.outbox WHERE session_id = %s ORDER BY id",
                (session,),
            )
        ).fetchall()
    assert [(r[0], r[2]) for r in rows] == [
        ("user", True),
        ("assistant", False),
        ("user", True),
        ("assistant", False),
    ]
    assert rows[0][3] == 384
    assert len(events) == 2
    topic, kind, payload = events[0]
    assert (topic, kind) == ("persistent://arc/events/conversation", "conversation.turn")
    body = payload if isinstance(payload, dict) else json.loads(payload)
    assert body["user_text"] == "hello" and body["user_id"] == user
    assert body["route"] == "greeting" and body["assistant_text"].startswith("Hello!")


@pytest.mark.slow
async def test_postgres_outage_degrades_then_recovers_by_itself(
    brain_factory: BrainFactory, say: Say, subject_prefix: str, postgres_server: PostgresServer
) -> None:
    running: RunningBrain = await brain_factory(
        subject_prefix=subject_prefix, memory_probe_interval_s=0.2, memory_timeout_s=1.0
    )
    user, session = new_id("u"), new_id("s")
    await say("remember that my car is blue", session_id=session, user_id=user)
    http = httpx.AsyncClient(base_url=running.http_url)
    await postgres_server.stop()
    try:
        # Still answers, without memory, and says so in health and metrics.
        text = await say("hello", session_id=session, user_id=user)
        assert text.startswith("Hello!")
        recall = await say("what colour is my car?", session_id=session, user_id=user)
        assert recall == "My memory is unavailable right now, so I can't look that up."
        during = await say("remember that my bike is red", session_id=session, user_id=user)
        assert "offline" in during
        health = (await http.get("/healthz")).json()
        assert health["status"] == "degraded" and health["memory"]["available"] is False
        assert health["memory"]["backlog_turns"] >= 1
        metrics = (await http.get("/metrics")).text
        assert "arc_brain_memory_available 0.0" in metrics
    finally:
        await postgres_server.start()
    # Recovers by itself, and writes what it answered meanwhile.
    for _ in range(100):
        if running.brain.store.available and running.brain.store.backlog == 0:
            break
        await asyncio.sleep(0.1)
    assert running.brain.store.available
    health = (await http.get("/healthz")).json()
    assert health["status"] == "ok" and health["memory"]["outages"] >= 1
    assert "arc_brain_memory_available 1.0" in (await http.get("/metrics")).text
    assert await say("what colour is my bike?", user_id=user) == (
        "You told me that your bike is red."
    )
    await http.aclose()


async def test_a_backlogged_turn_that_cannot_be_written_is_counted_as_dropped_not_written(
    postgres_server: PostgresServer,
) -> None:
    import numpy as np
    from arc_brain.memory import MemoryStore, TurnRecord

    store = MemoryStore(postgres_server.dsn(), timeout_s=2.0)
    await store.open()
    try:

        def record(embedding: np.ndarray) -> TurnRecord:
            return TurnRecord(
                session_id=new_id("s"), turn_id=new_id("t"), user_id="u", user_text="hi",
                assistant_text="Hello!", embedding=embedding,
            )  # fmt: skip

        # A 3-dimension embedding in a 384-dimension column: Postgres refuses the row.
        store._backlog.extend([record(np.zeros(3, np.float32)), record(np.ones(384, np.float32))])
        await store._write_backlog()
        assert store.backlog == 0
        assert (store.stats.backlog_dropped, store.stats.backlog_written) == (1, 1)
    finally:
        await store.close()

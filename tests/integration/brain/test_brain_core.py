"""The brain's core without any entry point: the turn graph over a real Postgres, called
directly as the NATS and HTTP handlers call it."""

from __future__ import annotations

import asyncio

import pytest
from arc_brain.brain import Brain, TurnInput, TurnOutcome
from arc_brain.embedding import MiniLmEmbedder
from arc_brain.memory import MemoryStore
from arc_brain.settings import BrainOptions
from arc_stack.postgres import PostgresServer

from tests.integration.brain.helpers import new_id

pytestmark = pytest.mark.integration


async def test_reply_interrupt_and_truncate_without_nats(
    postgres_server: PostgresServer, brain_embedder: MiniLmEmbedder
) -> None:
    store = MemoryStore(postgres_server.dsn())
    await store.open()
    brain = await Brain.create(embedder=brain_embedder, store=store, options=BrainOptions())
    try:
        session, user = new_id("s"), new_id("u")
        outcome = TurnOutcome()
        whole = TurnInput(session, new_id("t"), user, "repeat after me: One. Two. Three.")
        chunks = [chunk async for chunk in brain.reply(whole, outcome)]
        assert chunks == ["One.", " Two.", " Three."]
        assert outcome.route == "repeat" and outcome.persisted is True
        assert outcome.first_delta_s is not None and outcome.text == "One. Two. Three."

        # The listener stops after the first sentence (barge-in): the turn is still recorded,
        # with what was said, and then cut down to what was heard.
        cut = TurnInput(session, new_id("t"), user, "repeat after me: Alpha. Beta. Gamma.")
        replies = brain.reply(cut)
        assert await anext(replies) == "Alpha."
        await replies.aclose()
        assert await brain.truncate(session, cut.turn_id, "Alph")
        lines = await brain.transcript(session)
        assert [(line.role, line.content, line.interrupted) for line in lines] == [
            ("user", "repeat after me: One. Two. Three.", False),
            ("assistant", "One. Two. Three.", False),
            ("user", "repeat after me: Alpha. Beta. Gamma.", False),
            ("assistant", "Alph", True),
        ]
        assert not await brain.truncate(session, "no-such-turn", "x")
    finally:
        await brain.aclose()
        await store.close()


async def test_brain_starts_and_answers_with_postgres_unreachable(
    brain_embedder: MiniLmEmbedder,
) -> None:
    # A port nothing listens on: start-up must not fail, answers come without memory.
    store = MemoryStore("postgresql://postgres@127.0.0.1:9/arc", timeout_s=0.3)
    await store.open()
    brain = await Brain.create(embedder=brain_embedder, store=store, options=BrainOptions())
    try:
        assert not store.available and brain.health()["status"] == "degraded"
        turn = TurnInput("s", new_id("t"), "u", "remember that my car is blue")
        outcome = TurnOutcome()
        text = "".join([chunk async for chunk in brain.reply(turn, outcome)])
        assert "offline" in text and outcome.persisted is False
        assert store.backlog == 1
    finally:
        await brain.aclose()
        await asyncio.wait_for(store.close(), timeout=5)

"""The brain's core without any entry point: the turn graph over a real Postgres, called
directly as the NATS and HTTP handlers call it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from arc_brain.brain import Brain, TurnInput, TurnOutcome
from arc_brain.embedding import Matrix, MiniLmEmbedder
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


async def test_a_rule_routed_answer_goes_out_before_the_utterance_is_embedded(
    postgres_server: PostgresServer,
    brain_embedder: MiniLmEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Arithmetic needs no embedding to be answered; the turn is still stored with it (persist
    embeds it after the answer), so later recall by meaning finds it. A turn routed by meaning
    waits for its embedding, as it must."""
    store = MemoryStore(postgres_server.dsn())
    await store.open()
    brain = await Brain.create(embedder=brain_embedder, store=store, options=BrainOptions())
    answering = asyncio.Event()
    embedded: list[tuple[list[str], bool]] = []  # texts, and whether the answer had begun
    embed_many = brain_embedder.embed_many

    async def watched(texts: Sequence[str]) -> Matrix:
        embedded.append((list(texts), answering.is_set()))
        return await embed_many(texts)

    monkeypatch.setattr(brain_embedder, "embed_many", watched)
    try:
        session, user = new_id("s"), new_id("u")
        question = "what's 12 times 7?"
        outcome = TurnOutcome()
        async for _chunk in brain.reply(TurnInput(session, new_id("t"), user, question), outcome):
            answering.set()
        assert outcome.route == "calculate" and "84" in outcome.text
        assert outcome.persisted is True
        assert embedded == [([question], True)]

        # Stored with the utterance's own embedding: from another session it is found again.
        found = await store.recall(
            user, new_id("s"), (await embed_many([question]))[0], k=4, min_similarity=0.99
        )
        assert [(m.kind, m.content) for m in found] == [("turn", question)]

        embedded.clear()
        answering.clear()
        timed = TurnOutcome()
        async for _chunk in brain.reply(
            TurnInput(session, new_id("t"), user, "what time is it?"), timed
        ):
            answering.set()
        assert timed.route == "time"
        assert embedded == [(["what time is it?"], False)]
    finally:
        await brain.aclose()
        await store.close()


async def test_a_cut_off_turn_is_recorded_with_the_embedding_it_already_had(
    postgres_server: PostgresServer,
    brain_embedder: MiniLmEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A barge-in cuts a turn before persist; its record reuses the utterance's embedding
    instead of queueing a second one on the embedder just as the person's next turn comes."""
    store = MemoryStore(postgres_server.dsn())
    await store.open()
    brain = await Brain.create(embedder=brain_embedder, store=store, options=BrainOptions())
    embedded: list[list[str]] = []
    embed_many = brain_embedder.embed_many

    async def watched(texts: Sequence[str]) -> Matrix:
        embedded.append(list(texts))
        return await embed_many(texts)

    monkeypatch.setattr(brain_embedder, "embed_many", watched)
    try:
        session, user = new_id("s"), new_id("u")
        cut = TurnInput(session, new_id("t"), user, "what time is it?")
        replies = brain.reply(cut)
        assert (await anext(replies)).startswith("It's ")
        await replies.aclose()
        # The record is written in the background; truncate waits for it.
        assert await brain.truncate(session, cut.turn_id, "It's")
        lines = await brain.transcript(session)
        assert [(line.role, line.interrupted) for line in lines] == [
            ("user", False),
            ("assistant", True),
        ]
        assert embedded == [["what time is it?"]]
        # And it is stored with that embedding: found again by meaning from another session.
        found = await store.recall(
            user, new_id("s"), (await embed_many(["what time is it?"]))[0], k=4,
            min_similarity=0.99,
        )  # fmt: skip
        assert [(m.kind, m.content) for m in found] == [("turn", "what time is it?")]
    finally:
        await brain.aclose()
        await store.close()


async def test_a_greeting_before_a_question_is_answered_as_the_question(
    postgres_server: PostgresServer, brain_embedder: MiniLmEmbedder
) -> None:
    """ "Hello," and the question after a pause at the comma reach the brain as one turn when
    the reply to "Hello" was never heard: the question is answered, every word is stored."""
    store = MemoryStore(postgres_server.dsn())
    await store.open()
    brain = await Brain.create(embedder=brain_embedder, store=store, options=BrainOptions())
    try:
        session, user = new_id("s"), new_id("u")
        routes = []
        for text in ("Hello? What can you do?", "Hi there. What time is it?", "Hello there."):
            outcome = TurnOutcome()
            turn = TurnInput(session, new_id("t"), user, text)
            said = "".join([chunk async for chunk in brain.reply(turn, outcome)])
            routes.append((outcome.route, said[:20]))
        assert [route for route, _ in routes] == ["help", "time", "greeting"], routes
        lines = await brain.transcript(session)
        assert [line.content for line in lines if line.role == "user"] == [
            "Hello? What can you do?",
            "Hi there. What time is it?",
            "Hello there.",
        ]
    finally:
        await brain.aclose()
        await store.close()

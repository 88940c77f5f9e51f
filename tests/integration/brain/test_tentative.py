"""Tentative turns (preemptive generation) against the real brain, NATS and Postgres: answered
at once, stored only on `brain.commit`, and gone without a trace on `brain.cancel`, whether the
cancel comes while the answer streams or after it ended."""

from __future__ import annotations

import asyncio

import pytest
from arc_brain.memory import TranscriptLine
from arc_common.streaming import StreamingClient
from arc_common.subjects import BRAIN_CANCEL, BRAIN_COMMIT, prefixed
from arc_common.wire import BrainRequest, Cancel, Commit, encode
from nats.aio.client import Client

from tests.fixtures.brain import RunningBrain
from tests.integration.brain.helpers import StartBrain, ask, new_id, request
from tests.integration.brain.test_llm import open_turn

pytestmark = pytest.mark.integration


async def _transcript(
    running: RunningBrain, session: str, *, settle_s: float
) -> list[TranscriptLine]:
    """The session's stored lines once `settle_s` passed with no change (writes are async)."""
    lines: list[TranscriptLine] = []
    deadline = asyncio.get_running_loop().time() + settle_s
    while asyncio.get_running_loop().time() < deadline:
        lines = await running.brain.transcript(session)
        await asyncio.sleep(0.05)
    return lines


async def _verdict(nc: Client, prefix: str, subject: str, message: Commit | Cancel) -> None:
    await nc.publish(prefixed(prefix, subject), encode(message))
    await nc.flush()


async def _guess(
    client: StreamingClient, prefix: str, session: str, text: str
) -> tuple[BrainRequest, str]:
    """Asks `text` as a tentative turn of `session`: the request, and what was answered."""
    req = request(text, session_id=session, user_id="u", tentative=True)
    chunks = await ask(client, prefix, req)
    return req, "".join(c.text or "" for c in chunks)


async def test_tentative_turn_is_stored_only_once_committed(
    module_brain: RunningBrain, client: StreamingClient, nc: Client
) -> None:
    prefix, session = module_brain.subject_prefix, new_id("s")
    req, said = await _guess(client, prefix, session, "what can you do?")
    assert "remember facts" in said
    assert await _transcript(module_brain, session, settle_s=0.3) == []
    await _verdict(nc, prefix, BRAIN_COMMIT, Commit(turn_id=req.turn_id))
    lines = await _transcript(module_brain, session, settle_s=0.5)
    assert [line.role for line in lines] == ["user", "assistant"]
    assert lines[0].content == "what can you do?" and "remember facts" in lines[1].content
    # The next turn is built on it: the history the brain reads back holds it.
    history = await module_brain.brain.store.history(session, 8)
    assert [t.user_text for t in history] == ["what can you do?"]


async def test_cancelled_finished_guess_leaves_no_trace(
    module_brain: RunningBrain, client: StreamingClient, nc: Client
) -> None:
    prefix, session = module_brain.subject_prefix, new_id("s")
    guess, _ = await _guess(client, prefix, session, "remember that my car is red")
    await _verdict(nc, prefix, BRAIN_CANCEL, Cancel(turn_id=guess.turn_id))
    # A commit arriving after the discard finds nothing to store.
    await _verdict(nc, prefix, BRAIN_COMMIT, Commit(turn_id=guess.turn_id))
    assert await _transcript(module_brain, session, settle_s=0.5) == []
    # Nor did the guess leave its fact behind: asked in a later turn, the brain does not know it.
    recall = request("what colour is my car?", session_id=session, user_id="u")
    answer = "".join(c.text or "" for c in await ask(client, prefix, recall))
    assert "red" not in answer.lower()


async def test_guess_cancelled_mid_stream_is_not_recorded_as_interrupted(
    double_brain: StartBrain, nc: Client, client: StreamingClient, subject_prefix: str
) -> None:
    running = await double_brain("slow")
    session = new_id("s")
    committed = request(
        f"talk for a long time {new_id('x')}", session_id=session, user_id="u", tentative=True
    )
    guess = request(
        f"talk for a long time {new_id('y')}", session_id=session, user_id="u", tentative=True
    )
    for req in (committed, guess):
        stream = open_turn(client, subject_prefix, req)
        async with stream:
            async for _chunk in stream:
                if req is committed:
                    # Confirmed while answering: it is stored, and cut short as interrupted.
                    await _verdict(nc, subject_prefix, BRAIN_COMMIT, Commit(turn_id=req.turn_id))
                break  # leaving early publishes brain.cancel
    lines = await _transcript(running, session, settle_s=0.8)
    users = [line.content for line in lines if line.role == "user"]
    assert users == [committed.text]
    assistant = [line for line in lines if line.role == "assistant"]
    assert len(assistant) == 1 and assistant[0].interrupted
    assert running.brain.tentative.is_tentative(guess.turn_id) is False
    assert len(running.brain.tentative) == 0

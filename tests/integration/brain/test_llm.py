"""The LLM path against a local server speaking OpenAI's streaming protocol over HTTP, with
the brain on real NATS and Postgres: streaming, memories in the prompt, retries before the
first token only, a stalled and a failing stream, and cancellation mid-stream."""

from __future__ import annotations

import time

import pytest
from arc_common.errors import BadRequest, Busy, Internal, Timeout, Unsupported
from arc_common.streaming import ReplyStream, StreamingClient
from arc_common.subjects import BRAIN_CANCEL, BRAIN_REQUEST, prefixed
from arc_common.wire import BrainRequest, Cancel, ReplyChunk, encode
from nats.aio.client import Client

from tests.fixtures.waiting import wait_until
from tests.integration.brain.helpers import Say, StartBrain, ask, new_id, request
from tests.integration.brain.openai_double import ANSWER, OpenAiDouble

pytestmark = pytest.mark.integration


def open_turn(client: StreamingClient, prefix: str, req: BrainRequest) -> ReplyStream:
    return client.stream(
        prefixed(prefix, BRAIN_REQUEST), req, cancel_subject=prefixed(prefix, BRAIN_CANCEL)
    )


async def cancel_mid_answer(
    nc: Client, client: StreamingClient, prefix: str, req: BrainRequest, *, after: int
) -> tuple[str, float]:
    """Publishes `brain.cancel` once `after` chunks of the answer arrived and checks that the
    turn then ended, cancelled, within 50 ms; what was said, and when the cancel went out."""
    stream = open_turn(client, prefix, req)
    chunks: list[ReplyChunk] = []
    cancelled_at = 0.0
    async for chunk in stream:
        chunks.append(chunk)
        if len(chunks) == after:
            cancelled_at = time.perf_counter()
            await nc.publish(prefixed(prefix, BRAIN_CANCEL), encode(Cancel(turn_id=req.turn_id)))
            break
    # The terminal `end` (reason cancelled) arrives promptly; read it off our stream.
    async for chunk in stream:
        chunks.append(chunk)
    ended_at = time.perf_counter()
    assert stream.end is not None and stream.end.reason == "cancelled"
    assert ended_at - cancelled_at < 0.05, f"stopped after {(ended_at - cancelled_at) * 1e3:.1f} ms"
    return "".join(c.text or "" for c in chunks), cancelled_at


async def test_llm_answer_streams_as_sentences_with_memories_in_prompt(
    double_brain: StartBrain, say: Say, client: StreamingClient, openai_double: OpenAiDouble
) -> None:
    subject_prefix = (await double_brain("ok")).subject_prefix
    user = new_id("u")
    # "remember that …" stays a built-in skill even with an LLM: the fact goes to memory.
    stored = await say("remember that my sister lives in Lisbon", user_id=user)
    assert stored == "Okay, I'll remember that your sister lives in Lisbon."
    # A question about the sister that is not asking for the stored fact goes to the model,
    # with the fact in its prompt ("where does my sister live?" is the recall skill's).
    question = f"Tell me about the city my sister lives in. ({new_id('q')})"
    chunks = await ask(
        client, subject_prefix, request(question, session_id=new_id("s"), user_id=user)
    )
    texts = [c.text or "" for c in chunks]
    assert "".join(texts) == ANSWER
    # The first sentence is long (>15 words): it is split at its first comma.
    assert texts == [
        "Dr. Smith paid $3.50 for the coffee,",
        " which was expensive for what it was, and he complained about it to everyone who "
        "would listen.",
        " Then he left.",
        " Goodbye!",
    ]
    sent = next(r for r in openai_double.requests if r["messages"][-1]["content"] == question)
    assert sent["stream"] is True
    assert sent["messages"][0]["role"] == "system"
    assert "my sister lives in Lisbon" in sent["messages"][-2]["content"]


async def test_an_answer_with_nothing_to_say_aloud_gets_a_spoken_one(
    double_brain: StartBrain, say: Say
) -> None:
    # Silence would leave the person waiting for an answer that never comes.
    await double_brain("unspeakable")
    text = await say("how do you feel?", user_id=new_id("u"))
    assert text == "Sorry, I don't have a good answer to that."


async def test_retry_before_first_token(double_brain: StartBrain, say: Say) -> None:
    running = await double_brain("flaky")
    text = await say(f"tell me a story {new_id('x')}", user_id=new_id("u"))
    assert text == ANSWER
    assert running.brain.llm is not None and running.brain.llm.retries == 1


async def test_not_found_model_is_unsupported_without_retry(
    double_brain: StartBrain, client: StreamingClient
) -> None:
    running = await double_brain("missing")
    with pytest.raises(Unsupported, match="404"):
        await ask(
            client, running.subject_prefix, request("tell me a story", session_id="s", user_id="u")
        )
    assert running.brain.llm is not None and running.brain.llm.retries == 0


async def test_stalled_stream_ends_with_timeout_after_the_words_so_far(
    double_brain: StartBrain, client: StreamingClient
) -> None:
    running = await double_brain("stall", stall_timeout_s=0.3)
    req = request(f"stall please {new_id('x')}", session_id=new_id("s"), user_id="u")
    stream = open_turn(client, running.subject_prefix, req)
    started = time.monotonic()
    with pytest.raises(Timeout, match="stalled"):
        await stream.collect()
    assert 0.25 < time.monotonic() - started < 3.0


@pytest.mark.parametrize("mode", ["error-mid", "drop-mid"])
async def test_stream_failing_mid_answer_is_internal_and_not_retried(
    double_brain: StartBrain, client: StreamingClient, openai_double: OpenAiDouble, mode: str
) -> None:
    running = await double_brain(mode)
    question = f"fail please {new_id('x')}"
    before = len(openai_double.requests)
    with pytest.raises(Internal, match=r"crashed|broke"):
        await ask(
            client, running.subject_prefix, request(question, session_id=new_id("s"), user_id="u")
        )
    assert len(openai_double.requests) == before + 1  # tokens were produced: no retry
    assert running.brain.llm is not None and running.brain.llm.retries == 0


async def test_cancel_stops_the_stream_within_50ms_and_records_what_was_said(
    double_brain: StartBrain, nc: Client, client: StreamingClient, openai_double: OpenAiDouble
) -> None:
    running = await double_brain("slow")
    session = new_id("s")
    req = request(f"talk for a long time {new_id('x')}", session_id=session, user_id="u")
    said, cancelled_at = await cancel_mid_answer(nc, client, running.subject_prefix, req, after=3)
    # The upstream HTTP stream was closed too, not left running for nobody (played out, the
    # slow stream would run ~15 s: a second is a generous bound that still tells them apart).
    await wait_until(
        lambda: req.text in openai_double.stream_closed, what="the upstream stream closed"
    )
    assert openai_double.stream_closed[req.text] - cancelled_at < 1.0
    # What was spoken before the cancel is recorded as an interrupted turn.
    await wait_until(
        lambda: running.brain.transcript(session), interval_s=0.02, what="the turn recorded"
    )
    lines = await running.brain.transcript(session)
    assistant = [line for line in lines if line.role == "assistant"]
    assert assistant and assistant[0].interrupted and assistant[0].content == said


async def test_busy_and_duplicate_turns(double_brain: StartBrain, client: StreamingClient) -> None:
    running = await double_brain("slow", max_concurrent_turns=1)
    subject_prefix = running.subject_prefix
    first = request(f"long one {new_id('x')}", session_id=new_id("s"), user_id="u")
    stream = open_turn(client, subject_prefix, first)
    async with stream:
        await anext(stream)  # the first turn is in progress
        with pytest.raises(Busy, match="maximum of 1"):
            await ask(client, subject_prefix, request("another", session_id="s2", user_id="u"))
        with pytest.raises(BadRequest, match="already in progress"):
            await ask(client, subject_prefix, first)
    # Leaving the stream cancelled the first turn; the brain serves again.
    service = running.runtime.service
    assert service is not None
    await wait_until(lambda: service.active_turns == 0, what="the first turn cancelled")
    assert await ask(
        client, subject_prefix, request("remember that I like tea", session_id="s3", user_id="u")
    )

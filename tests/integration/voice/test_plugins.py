"""The NATS plugins against a real NATS and small real streaming services that speak the
brain/tts contract, so each behaviour (streaming, cancel, errors) can be provoked at will."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pytest
from arc_common import subjects
from arc_common.errors import Busy
from arc_common.streaming import (
    Chunk,
    StreamingClient,
    StreamingEndpoint,
    StreamingService,
    TurnContext,
)
from arc_common.wire import BrainRequest, Cancel, TtsRequest
from arc_voice.plugins.brain_llm import BrainOptions, NatsBrainLLM
from arc_voice.plugins.tts import NatsTTS, TtsOptions
from livekit.agents import APIConnectOptions, APIError, APIStatusError
from livekit.agents.llm import ChatContext
from nats.aio.client import Client
from nats.aio.msg import Msg

from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration

NO_RETRY = APIConnectOptions(max_retry=0, retry_interval=0.0, timeout=5.0)


@dataclass
class Script:
    """What the test service answers, and what it saw."""

    deltas: list[str] = field(default_factory=lambda: ["Hello.", "I can help.", "Ask away."])
    delay_s: float = 0.0
    fail: Exception | None = None
    requests: list[msgspec.Struct] = field(default_factory=list)
    cancelled: list[float] = field(default_factory=list)


async def _serve(nc: Client, prefix: str, script: Script) -> AsyncIterator[StreamingService]:
    async def brain(req: BrainRequest, _ctx: TurnContext) -> AsyncIterator[Chunk]:
        script.requests.append(req)
        try:
            if script.fail is not None:
                raise script.fail
            for delta in script.deltas:
                await asyncio.sleep(script.delay_s)
                yield Chunk(kind="delta", text=delta)
        except asyncio.CancelledError:
            script.cancelled.append(time.monotonic())
            raise

    async def tts(req: TtsRequest, _ctx: TurnContext) -> AsyncIterator[Chunk]:
        script.requests.append(req)
        frame = np.full(req.sample_rate * req.frame_ms // 1000, 1000, np.int16).tobytes()
        try:
            for _ in range(10):  # 10 frames per unit
                await asyncio.sleep(script.delay_s)
                yield Chunk(kind="audio", pcm=frame, sample_rate=req.sample_rate)
        except asyncio.CancelledError:
            script.cancelled.append(time.monotonic())
            raise

    service = StreamingService(nc, name="voice-test-deps", version="1.0.0")
    # (name, request subject, queue group, cancel subject, request type, handler)
    contract: tuple[tuple[str, str, str, str, type[Any], Any], ...] = (
        (
            "brain",
            subjects.BRAIN_REQUEST,
            subjects.BRAIN_QUEUE,
            subjects.BRAIN_CANCEL,
            BrainRequest,
            brain,
        ),
        ("tts", subjects.TTS_REQUEST, subjects.TTS_QUEUE, subjects.TTS_CANCEL, TtsRequest, tts),
    )
    for name, request, queue, cancel, request_type, handler in contract:
        service.add(
            StreamingEndpoint(
                name=name,
                subject=subjects.prefixed(prefix, request),
                queue_group=queue,
                cancel_subject=subjects.prefixed(prefix, cancel),
                request_type=request_type,
                handler=handler,
            )
        )
    async with service:
        yield service


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
async def client(nc: Client, subject_prefix: str, script: Script) -> AsyncIterator[StreamingClient]:
    async for _service in _serve(nc, subject_prefix, script):
        async with StreamingClient(nc) as streaming:
            yield streaming


async def _cancels(nc: Client, subject: str) -> tuple[list[Cancel], object]:
    seen: list[Cancel] = []

    async def on(msg: Msg) -> None:
        seen.append(msgspec.msgpack.decode(msg.data, type=Cancel))

    sub = await nc.subscribe(subject, cb=on)
    return seen, sub


def _brain(client: StreamingClient, prefix: str, **options: Any) -> NatsBrainLLM:
    return NatsBrainLLM(
        client,
        BrainOptions(
            session_id="s1", user_id="alice", room="room-1", subject_prefix=prefix, **options
        ),
    )


def _ctx(*messages: tuple[str, str]) -> ChatContext:
    ctx = ChatContext.empty()
    for role, text in messages:
        ctx.add_message(role=role, content=text)  # type: ignore[arg-type]
    return ctx


async def test_brain_streams_deltas_for_the_latest_user_message(
    client: StreamingClient, subject_prefix: str, script: Script
) -> None:
    brain = _brain(client, subject_prefix)
    ctx = _ctx(("user", "first question"), ("assistant", "an answer"), ("user", "  What now?  "))
    collected = await brain.chat(chat_ctx=ctx, conn_options=NO_RETRY).collect()
    assert collected.text == "Hello. I can help. Ask away."
    [request] = script.requests
    assert isinstance(request, BrainRequest)
    assert request.text == "What now?"
    assert (request.session_id, request.user_id, request.room) == ("s1", "alice", "room-1")
    [turn] = brain.turns
    assert turn.turn_id == request.turn_id and turn.completed
    assert turn.first_delta_at is not None and turn.first_delta_at >= turn.started_at


async def test_closing_the_brain_stream_publishes_brain_cancel(
    client: StreamingClient, nc: Client, subject_prefix: str, script: Script
) -> None:
    script.delay_s = 0.2
    script.deltas = [f"Sentence {i}." for i in range(20)]
    seen, sub = await _cancels(nc, subjects.prefixed(subject_prefix, subjects.BRAIN_CANCEL))
    brain = _brain(client, subject_prefix)
    stream = brain.chat(chat_ctx=_ctx(("user", "Talk for a while.")), conn_options=NO_RETRY)
    first = await stream.__anext__()
    assert first.delta is not None and first.delta.content == "Sentence 0."
    closed_at = time.monotonic()
    await stream.aclose()
    await wait_until(
        lambda: script.cancelled, timeout_s=2, interval_s=0.005, what="the brain seeing the cancel"
    )
    await sub.unsubscribe()  # type: ignore[attr-defined]
    assert [c.turn_id for c in seen] == [brain.turns[0].turn_id]
    assert script.cancelled[0] - closed_at < 0.05
    assert not brain.turns[0].completed


async def test_brain_errors_become_typed_framework_errors(
    client: StreamingClient, subject_prefix: str, script: Script
) -> None:
    script.fail = Busy("all brains are busy")
    brain = _brain(client, subject_prefix, apology="")
    with pytest.raises(APIError) as raised:
        await brain.chat(chat_ctx=_ctx(("user", "hi")), conn_options=NO_RETRY).collect()
    assert "busy" in raised.value.message and raised.value.retryable
    with pytest.raises(APIStatusError) as no_user:
        await brain.chat(chat_ctx=_ctx(("assistant", "hi")), conn_options=NO_RETRY).collect()
    assert no_user.value.status_code == 400 and not no_user.value.retryable


async def test_a_busy_brain_is_asked_once_more_then_the_person_hears_an_apology(
    client: StreamingClient, subject_prefix: str, script: Script
) -> None:
    script.fail = Busy("all brains are busy")
    brain = _brain(client, subject_prefix, apology="Sorry, not now.")
    collected = await brain.chat(chat_ctx=_ctx(("user", "hi")), conn_options=NO_RETRY).collect()
    assert collected.text == "Sorry, not now."
    assert len(script.requests) == 2  # the retry a queue group may give to another replica


async def test_tts_sends_each_speakable_unit_and_pushes_its_frames(
    client: StreamingClient, subject_prefix: str, script: Script
) -> None:
    tts = NatsTTS(
        client, TtsOptions(session_id="s1", sample_rate=24000, subject_prefix=subject_prefix)
    )
    stream = tts.stream(conn_options=NO_RETRY)
    # The brain's units, the first one short and without a full stop: each goes as it is.
    stream.push_text("Hello there, my")
    stream.push_text(" friend. How are you?")
    stream.end_input()
    frames = [ev.frame async for ev in stream]
    await stream.aclose()
    texts = [r.text for r in script.requests if isinstance(r, TtsRequest)]
    assert texts == ["Hello there, my", "friend. How are you?"]
    assert all(r.sample_rate == 24000 for r in script.requests if isinstance(r, TtsRequest))
    samples = sum(f.samples_per_channel for f in frames)
    assert samples == 2 * 10 * 480  # two units of ten 20 ms frames at 24 kHz
    assert all(f.sample_rate == 24000 and f.num_channels == 1 for f in frames)
    [record] = tts.streams
    assert record.units == texts and record.audio_bytes == samples * 2


async def test_closing_the_tts_stream_publishes_tts_cancel(
    client: StreamingClient, nc: Client, subject_prefix: str, script: Script
) -> None:
    script.delay_s = 0.1
    seen, sub = await _cancels(nc, subjects.prefixed(subject_prefix, subjects.TTS_CANCEL))
    tts = NatsTTS(client, TtsOptions(session_id="s1", subject_prefix=subject_prefix))
    stream = tts.stream(conn_options=NO_RETRY)
    stream.push_text("A long sentence to say.")
    await stream.__anext__()
    await stream.aclose()
    await wait_until(
        lambda: script.cancelled, timeout_s=2, interval_s=0.005, what="the tts seeing the cancel"
    )
    await sub.unsubscribe()  # type: ignore[attr-defined]
    [request] = script.requests
    assert isinstance(request, TtsRequest)
    assert [c.turn_id for c in seen] == [request.turn_id]

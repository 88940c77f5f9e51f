"""The WebSocket transport's plain core: message checks, the input's real-time bound, and the
output's segments (the framework's playback bookkeeping) under pause, clear and pacing."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from arc_common.errors import ArcError
from arc_voice.ws_api import Start, Text, parse_message
from arc_voice.ws_transport import MAX_AHEAD_S, Outbox, SocketAudioInput, SocketAudioOutput
from livekit import rtc

pytestmark = pytest.mark.unit

START = {"type": "start", "user_id": "ann", "input_sample_rate": 16000, "output_sample_rate": 24000}


def test_a_start_is_read_with_its_defaults() -> None:
    start = parse_message(json.dumps(START))
    assert isinstance(start, Start)
    assert (start.frame_ms, start.pacing, start.greeting, start.session_id) == (
        20,
        "realtime",
        True,
        None,
    )
    assert isinstance(parse_message('{"type": "text", "text": "hi"}'), Text)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "bad_request"),
        ("nope", "bad_request"),
        ("3", "bad_request"),
        ('{"text": "no type"}', "bad_request"),
        ('{"type": "text", "text": ""}', "bad_request"),
        ('{"type": "text", "text": 5}', "bad_request"),
        ('{"type": "end", "why": 1}', "bad_request"),
        (json.dumps({**START, "user_id": "arc-agent-x"}), "bad_request"),
        (json.dumps({**START, "user_id": "ann\n"}), "bad_request"),
        (json.dumps({**START, "session_id": "XYZ"}), "bad_request"),
        (json.dumps({**START, "pacing": "slow"}), "bad_request"),
        (json.dumps({**START, "input_sample_rate": 7999}), "unsupported"),
        (json.dumps({**START, "input_sample_rate": 96000}), "unsupported"),
        (json.dumps({**START, "output_sample_rate": 44100}), "unsupported"),
        (json.dumps({**START, "frame_ms": 101}), "unsupported"),
        (json.dumps({**START, "lead_ms": 1001}), "unsupported"),
        (json.dumps({"type": "text", "text": "é" * 40_000}), "too_large"),
    ],
)
def test_bad_messages_get_contract_codes(raw: str, code: str) -> None:
    with pytest.raises(ArcError) as caught:
        parse_message(raw)
    assert caught.value.code.value == code


def _pcm(seconds: float, rate: int = 16000) -> bytes:
    return bytes(int(seconds * rate) * 2)


async def test_audio_past_a_second_ahead_of_the_clock_is_dropped_and_reported() -> None:
    told: list[float] = []
    audio = SocketAudioInput(16000, told.append)
    audio.hear(_pcm(MAX_AHEAD_S))  # a burst of one second is absorbed
    audio.hear(_pcm(0.5))  # past the bound: dropped
    audio.hear(_pcm(0.5))  # dropped too, but told at most once a second
    assert told == [pytest.approx(0.5)]
    frames = [await audio.__anext__() for _ in range(50)]
    assert all(f.sample_rate == 16000 and f.samples_per_channel == 320 for f in frames)
    assert audio._frames.empty()  # exactly the one accepted second, as 50 frames of 20 ms
    audio.end()
    with pytest.raises(StopAsyncIteration):
        await audio.__anext__()


async def test_telephone_audio_is_resampled_for_the_vad() -> None:
    audio = SocketAudioInput(8000, lambda _s: None)
    audio.hear(_pcm(0.2, 8000))
    audio.end()
    frames = [f async for f in audio]
    assert {f.sample_rate for f in frames} == {16000}
    assert sum(f.duration for f in frames) == pytest.approx(0.2, abs=0.03)


class _Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[float, Any]] = []

    async def text(self, data: str) -> None:
        self.sent.append((time.monotonic(), json.loads(data)))

    async def binary(self, data: bytes) -> None:
        self.sent.append((time.monotonic(), data))

    def events(self) -> list[str]:
        return [m["type"] for _, m in self.sent if isinstance(m, dict)]

    def audio_s(self, rate: int) -> float:
        return sum(len(m) for _, m in self.sent if isinstance(m, bytes)) / 2 / rate


def _frame(seconds: float, rate: int = 24000) -> rtc.AudioFrame:
    samples = int(seconds * rate)
    return rtc.AudioFrame(bytes(samples * 2), rate, 1, samples)


async def test_realtime_output_paces_frames_and_reports_the_segment_played() -> None:
    sink = _Sink()
    outbox = Outbox(sink.text, sink.binary)
    out = SocketAudioOutput(outbox, sample_rate=24000, frame_ms=20, pacing="realtime")
    out.start()
    finished: list[Any] = []
    out.on("playback_finished", finished.append)
    started = time.monotonic()
    await out.capture_frame(_frame(0.5))
    out.flush()
    event = await asyncio.wait_for(out.wait_for_playout(), 5)
    elapsed = time.monotonic() - started
    await out.aclose()
    await outbox.aclose()
    assert event.interrupted is False and event.playback_position == pytest.approx(0.5)
    assert elapsed >= 0.45, elapsed  # played in real time, not dumped at once
    assert sink.audio_s(24000) == pytest.approx(0.5)
    assert sink.events() == ["audio_start", "audio_end"]
    sizes = {len(m) for _, m in sink.sent if isinstance(m, bytes)}
    assert sizes == {24000 // 50 * 2}
    assert len(finished) == 1


async def test_clearing_stops_the_audio_and_reports_an_interrupted_segment() -> None:
    sink = _Sink()
    outbox = Outbox(sink.text, sink.binary)
    out = SocketAudioOutput(outbox, sample_rate=24000, frame_ms=20, pacing="realtime")
    out.start()
    await out.capture_frame(_frame(2.0))
    await asyncio.sleep(0.3)
    out.clear_buffer()
    out.flush()
    event = await asyncio.wait_for(out.wait_for_playout(), 5)
    await asyncio.sleep(0.2)
    await out.aclose()
    await outbox.aclose()
    assert event.interrupted is True
    assert 0.2 < event.playback_position < 0.6, event
    # Nothing sent after the clear beyond what was already in flight (SEND_AHEAD_S).
    assert sink.audio_s(24000) < 0.6
    assert [m for _, m in sink.sent if isinstance(m, dict)][-1] == {
        "type": "audio_end",
        "t": pytest.approx(0, abs=10_000),
        "interrupted": True,
    }


async def test_a_paused_output_sends_nothing_until_resumed_and_fast_pacing_does_not_wait() -> None:
    sink = _Sink()
    outbox = Outbox(sink.text, sink.binary)
    out = SocketAudioOutput(outbox, sample_rate=16000, frame_ms=40, pacing="fast")
    out.start()
    out.pause()
    await out.capture_frame(_frame(1.0, 16000))
    out.flush()
    await asyncio.sleep(0.2)
    assert sink.audio_s(16000) == 0
    started = time.monotonic()
    out.resume()
    event = await asyncio.wait_for(out.wait_for_playout(), 5)
    assert time.monotonic() - started < 0.3  # fast: a second of audio without waiting
    await out.aclose()
    await outbox.aclose()
    assert event.interrupted is False and sink.audio_s(16000) == pytest.approx(1.0)
    assert {len(m) for _, m in sink.sent if isinstance(m, bytes)} == {16000 // 25 * 2}

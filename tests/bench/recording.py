"""What recording a session costs (docs/recording.md).

1. The encoder: CPU seconds the recording thread spends per second of session (placing both
   voices on the timeline, resampling the person's 16 kHz to the file's rate, Opus encoding,
   writing OGG pages), measured with the thread's own CPU clock while a two-voice
   conversation of `RECORDING_BENCH_SECONDS` (default 120) is pushed through the same
   `RecordingWriter` the worker uses, on a simulated clock (so it runs as fast as it can).
2. Voice to voice with recording on against off: two copies of the mesh (brain, TTS and
   voice each a process, as `make run` runs them), one recording every session, asked the
   same spoken questions over `/v1/voice` in alternating order, turn by turn, as
   `BENCH=voice_tracing` does. Target: on / off ≤ 1.02. `RECORDING_BENCH_ROUNDS` (default
   20) sets the rounds; 0 skips this part.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from arc_voice.recording import BIT_RATE, COMPLEXITY, SAMPLE_RATE, RecordingWriter
from livekit import rtc

from tests.bench.copies import QUESTIONS, alternating_turns, on_off_row, start_copies
from tests.bench.report import load_average, section_header, write_section
from tests.bench.voice import run_dir
from tests.fixtures.voice import SpeechSynth

SECONDS = float(os.environ.get("RECORDING_BENCH_SECONDS", "120"))
ROUNDS = int(os.environ.get("RECORDING_BENCH_ROUNDS", "20"))
FRAME_S = 0.02


def _frames(pcm: bytes, rate: int, target: int) -> list[rtc.AudioFrame]:
    """`pcm` as 20 ms frames at `target` Hz (the person's 16 kHz, the agent's 24 kHz)."""
    frame = rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2)
    resampler = rtc.AudioResampler(rate, target, num_channels=1)
    out = resampler.push(frame) + resampler.flush()
    data = b"".join(bytes(f.data) for f in out)
    step = target // 50 * 2
    return [
        rtc.AudioFrame(data[i : i + step], target, 1, len(data[i : i + step]) // 2)
        for i in range(0, len(data) - step + 1, step)
    ]


def encoder_cost(speech: SpeechSynth, seconds: float = SECONDS) -> tuple[float, int]:
    """(thread CPU s per session s, file bytes per session s) for a conversation where the
    person and the agent take turns, with half a second of nobody between."""
    pcm, rate = speech.say(QUESTIONS[2])
    person = _frames(pcm, rate, 16_000)
    agent = _frames(pcm, rate, 24_000)
    now = [0.0]
    with tempfile.TemporaryDirectory() as folder:
        writer = RecordingWriter(Path(folder) / "bench.ogg", clock=lambda: now[0])
        writer.start()
        t, turn, block = 0.0, 0, 0.0
        while t < seconds:
            # A turn: one side speaks (the other is silent), then 0.5 s of nobody.
            frames = person if turn % 2 == 0 else agent
            for frame in [*frames, *[None] * 25]:
                if frame is not None and turn % 2 == 0:
                    writer.person(frame, at=t)
                elif frame is not None:
                    writer.agent(frame, at=t)
                t += FRAME_S
                if t - block >= 0.5:
                    # The simulated clock trails what was queued by 1 s and the producer
                    # waits a little every half second, so the encoder (which writes up to
                    # the clock) never passes audio it has not read yet.
                    block = t
                    now[0] = t - 1.0
                    time.sleep(0.02)
            turn += 1
        now[0] = t
        asyncio.run(writer.aclose())
        size = (Path(folder) / "bench.ogg").stat().st_size
    return writer.cpu_s / t, round(size / t)


async def voice_to_voice(speech: SpeechSynth) -> list[str]:
    async with AsyncExitStack() as stack:
        root = run_dir(stack)
        folder = {"ARC_VOICE__RECORDING__DIRECTORY": str(root / "recordings")}
        copies = {
            "on": {**folder, "ARC_VOICE__RECORDING__ENABLED": "true"},
            "off": {**folder, "ARC_VOICE__RECORDING__ENABLED": "false"},
        }
        urls, headers = await start_copies(stack, root, speech, copies, tag="rec")
        heard = await alternating_turns(urls, headers, speech, ROUNDS, "rec")
    return [
        f"Voice to voice over `/v1/voice`, {ROUNDS} rounds, each asking both copies the same "
        "question in alternating order; every service a process. Client's figure (last "
        "speech frame sent → first audible reply frame received), ms.",
        "",
        "| recording on p50 / p95 | off p50 / p95 | on / off p50 / p95 | "
        "median of on - off, same question | pairs |",
        "|---|---|---|---|---|",
        on_off_row(heard),
        "",
        "Target: on / off ≤ 1.02.",
    ]


def measure() -> str:
    load_at_start = load_average()
    speech = SpeechSynth()
    cpu, rate = encoder_cost(speech)
    lines = [
        section_header("Recording cost", "BENCH=recording make bench", load_at_start=load_at_start),
        f"Encoder: {SECONDS:.0f} s of a two-voice conversation through `RecordingWriter` "
        f"(stereo Opus {SAMPLE_RATE} Hz, {BIT_RATE // 1000} kb/s, complexity {COMPLEXITY}, "
        "OGG pages written as made): "
        f"**{cpu * 1000:.1f} ms of CPU per second of session** ({cpu * 100:.2f} % of one "
        f"core per recorded session), file {rate / 1000:.1f} kB/s. libopus' default "
        "complexity (10) measured 21-28 ms/s here.",
        "",
    ]
    if ROUNDS > 0:
        lines += asyncio.run(voice_to_voice(speech))
    return "\n".join(lines)


def main() -> str:
    body = measure()
    write_section("recording", body)
    return body

"""Voice to voice through a real LiveKit room, on the real local mesh (NATS, Postgres, the
brain, Piper TTS, Whisper tiny.en, Silero VAD), all on this machine.

- 20 turns: a scripted participant speaks a short question (Piper speech) and the clock runs
  from the end of its speech to the first audible agent frame it receives. The breakdown
  comes from the worker's own timestamps for the same turn: end-of-speech detection (the
  participant's last speech frame to the VAD's end of speech), STT (Whisper on the
  utterance), end-of-turn decision, brain first delta, TTS first chunk, and transport (the
  first frame handed to the agent's track to its arrival at the participant). Stages overlap
  slightly and the framework adds its own scheduling, so the parts need not sum exactly.
- 10 barge-ins: the participant talks over a long answer; the stop time runs from the VAD's
  confirmed speech onset to the agent's room audio being cleared (worker side), and to the
  last audible agent frame the participant receives (includes the WebRTC jitter buffer).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

from arc_common.nats_connection import connect
from arc_common.settings import NatsSettings
from arc_stack.livekit import LiveKitServer
from arc_stack.nats import NatsServer
from arc_stack.paths import state_dir
from arc_stack.postgres import PostgresServer
from arc_stack.server import free_port
from arc_tts.metrics import TtsMetrics
from arc_tts.settings import TtsOptions
from arc_tts.synthesizer import open_synthesizer
from arc_voice.caller import AUDIBLE_DB, RoomCaller, participant_token
from arc_voice.conversation import Conversation, agent_track_name
from arc_voice.models import VoiceModels
from arc_voice.settings import LiveKitSettings, VoiceOptions
from arc_voice.worker import VoiceWorker
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from tests.bench.report import Stats, section_header, write_section
from tests.fixtures.brain import brain_settings, model_dir, start_brain
from tests.fixtures.tts import running_worker
from tests.fixtures.voice import SpeechSynth, room_name

TURNS = 20
BARGE_INS = 10
QUESTIONS = ("What time is it?", "Hello there.", "What is the date today?", "Thank you.")
LONG_QUESTION = "What can you do?"


async def _conversation(worker: VoiceWorker, room: str, identity: str) -> Conversation:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        agent = worker.rooms.get(room)
        if agent is not None and identity in agent.conversations:
            return agent.conversations[identity]
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no conversation for {identity}")


async def _until(done: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _grew(items: list[Any], before: int) -> bool:
    return len(items) > before


def _ms(values: list[float]) -> str:
    stats = Stats.of([v * 1000 for v in values])
    return f"{stats.p50:.0f} | {stats.p95:.0f} | {stats.mean:.0f}"


async def _turns(caller: RoomCaller, conv: Conversation, speech: SpeechSynth) -> dict[str, Any]:
    rows: dict[str, list[float]] = {
        k: [] for k in ("v2v", "eos", "stt", "brain", "tts", "transport", "rest")
    }
    whisper = conv.deps.models.whisper
    for i in range(TURNS):
        pcm, rate = speech.say(QUESTIONS[i % len(QUESTIONS)])
        replies_before = len(conv.log.replies)
        spoken = await (await caller.say(pcm, rate))
        first = await caller.wait_audible(spoken.ended_at, within_s=30)
        await caller.wait_quiet(0.5, within_s=60)
        await _until(partial(_grew, conv.log.replies, replies_before), within_s=10)
        rows["v2v"].append(first - spoken.ended_at)
        if len(conv.log.replies) == replies_before:
            continue
        timing = conv.log.replies[-1]
        parts: dict[str, float | None] = {
            "eos": None
            if timing.user_stopped_at is None
            else timing.user_stopped_at - spoken.ended_at,
            # The utterance's Whisper inference: the latest one that finished after the VAD
            # declared the end of speech.
            "stt": next(
                (
                    took
                    for done, took in reversed(whisper.inference_log if whisper else [])
                    if timing.user_stopped_at is not None and done >= timing.user_stopped_at
                ),
                None,
            ),
            "brain": timing.brain_first_delta_s,
            "tts": timing.tts_first_chunk_s,
            "transport": None
            if timing.first_audio_out_at is None
            else first - timing.first_audio_out_at,
        }
        for key, value in parts.items():
            if value is not None:
                rows[key].append(value)
        if all(v is not None for v in parts.values()):
            rows["rest"].append(first - spoken.ended_at - sum(v or 0.0 for v in parts.values()))
    return rows


async def _barge_ins(
    caller: RoomCaller, conv: Conversation, speech: SpeechSynth
) -> tuple[list[float], list[float]]:
    pcm, rate = speech.say(LONG_QUESTION)
    spoken = await (await caller.say(pcm, rate))
    worker_ms: list[float] = []
    received_s: list[float] = []
    for _ in range(BARGE_INS):
        await caller.wait_audible(spoken.ended_at, within_s=30)
        await asyncio.sleep(0.7)
        count = len(conv.log.barge_ins)
        # The interruption is itself the long question: the agent stops, then answers it.
        spoken_future = await caller.say(pcm, rate, wait=False)
        await _until(partial(_grew, conv.log.barge_ins, count), within_s=10)
        spoken = await spoken_future
        if len(conv.log.barge_ins) == count:
            continue
        barge_in = conv.log.barge_ins[-1]
        if barge_in.stop_ms is not None:
            worker_ms.append(barge_in.stop_ms)
        audible = [
            h.at - barge_in.detected_at
            for h in caller.heard
            if barge_in.detected_at < h.at < spoken.ended_at and h.level > AUDIBLE_DB
        ]
        received_s.append(max(audible, default=0.0))
    await caller.wait_quiet(0.8, within_s=60)
    return worker_ms, received_s


async def measure() -> str:
    root = state_dir() / "bench-runs" / uuid.uuid4().hex[:8]
    speech = SpeechSynth()
    async with AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, root, True)
        nats = NatsServer(
            root / "nats", root / "nats-logs", port=free_port(), monitor_port=free_port()
        )
        pg = PostgresServer(root / "pgdata", root / "pg-logs", port=free_port(), database="arc")
        livekit = LiveKitServer(
            root / "livekit",
            root / "livekit-logs",
            port=free_port(),
            rtc_tcp_port=free_port(),
            udp_port=free_port(),
        )
        for server in (nats, pg, livekit):
            if isinstance(server, LiveKitServer):
                await server.install()
            await server.start()
            stack.push_async_callback(server.stop)
        prefix = "bench"
        from arc_brain.embedding import MiniLmEmbedder

        embedder = await asyncio.to_thread(MiniLmEmbedder, model_dir())
        stack.callback(embedder.close)
        await start_brain(
            stack, brain_settings(nats.url, pg.dsn(), subject_prefix=prefix), embedder
        )
        synthesizer = await stack.enter_async_context(open_synthesizer(TtsOptions(), TtsMetrics()))
        await stack.enter_async_context(running_worker(nats.url, synthesizer, prefix))

        options = VoiceOptions(greeting="")
        lk = LiveKitSettings(
            url=livekit.url, api_key=livekit.api_key, api_secret=SecretStr(livekit.api_secret)
        )
        models = await asyncio.to_thread(VoiceModels.load, options)
        stack.callback(models.close)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            pg.dsn(), min_size=1, max_size=4, open=False
        )
        await pool.open(wait=True)
        stack.push_async_callback(pool.close)
        nc = await connect(NatsSettings(url=nats.url), name="arc-voice-bench")
        stack.push_async_callback(nc.drain)
        worker = VoiceWorker(
            options=options, livekit=lk, models=models, nc=nc, pool=pool, subject_prefix=prefix
        )
        await worker.start()
        stack.push_async_callback(worker.aclose)

        room = room_name()
        await worker.join(room)
        identity = "bench-caller"
        token = participant_token(
            api_key=livekit.api_key, api_secret=livekit.api_secret, room=room, identity=identity
        )
        caller = RoomCaller(livekit.url, token, agent_track=agent_track_name(identity))
        await caller.connect()
        stack.push_async_callback(caller.aclose)
        await caller.wait_for_agent(within_s=30)
        conv = await _conversation(worker, room, identity)
        # One untimed turn warms every model and connection.
        pcm, rate = speech.say("Hello.")
        spoken = await (await caller.say(pcm, rate))
        await caller.wait_audible(spoken.ended_at, within_s=30)
        await caller.wait_quiet(0.8, within_s=60)

        rows = await _turns(caller, conv, speech)
        worker_stop, received_stop = await _barge_ins(caller, conv, speech)

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    v2v = Stats.of([v * 1000 for v in rows["v2v"]])
    body = section_header("Voice to voice (LiveKit room to room)", "make bench BENCH=voice")
    body += (
        f"{len(rows['v2v'])} turns of short questions (Piper speech) from a scripted participant "
        "in a real LiveKit room; the local mesh answers (Silero VAD, Whisper tiny.en int8, the "
        "brain's skills graph, Piper en_US-joe-medium), all on this machine "
        f"(load average at the end: {load}; the cores are shared with other work).\n\n"
        f"**Voice to voice: p50 {v2v.p50:.0f} ms, p95 {v2v.p95:.0f} ms** "
        "(target p95 ≤ 1000 ms).\n\n"
        "| stage (ms) | p50 | p95 | mean | n |\n|---|---:|---:|---:|---:|\n"
    )
    labels = {
        "v2v": "voice to voice (end of speech → first agent audio at the participant)",
        "eos": "end-of-speech detection (last speech frame sent → VAD end of speech)",
        "stt": "STT (Whisper tiny.en inference on the utterance)",
        "brain": "brain first delta (request → first delta)",
        "tts": "TTS first chunk (first text → first audio)",
        "transport": "transport (frame to the agent track → heard by the participant)",
        "rest": "the rest (framework scheduling, queues, NATS hops)",
    }
    for key, label in labels.items():
        if rows[key]:
            body += f"| {label} | {_ms(rows[key])} | {len(rows[key])} |\n"
    if worker_stop:
        body += (
            f"\n**Barge-in stop, {len(worker_stop)} interruptions**: confirmed speech onset → "
            f"agent room audio cleared p50 {Stats.of(worker_stop).p50:.2f} ms, p95 "
            f"{Stats.of(worker_stop).p95:.2f} ms (target ≤ 50 ms); → last audible agent frame at "
            f"the participant p50 {Stats.of([r * 1000 for r in received_stop]).p50:.0f} ms, p95 "
            f"{Stats.of([r * 1000 for r in received_stop]).p95:.0f} ms (includes the WebRTC "
            "jitter buffer and one 20 ms frame in flight).\n"
        )
    write_section("voice", body)
    return body


def main() -> str:
    return asyncio.run(measure())

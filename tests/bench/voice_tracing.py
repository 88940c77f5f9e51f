"""What tracing costs on voice to voice, from the client's side: two copies of the mesh, every
service a process of its own as `make run` runs it (brain, TTS, voice), one exporting every
span to a real Jaeger and one with tracing off, asked the same spoken questions over the
WebSocket transport in alternating order, turn by turn. Then Jaeger is stopped and the same
is done again: an OTLP endpoint that does not answer must not slow a turn.

Voice to voice is the client's figure: the frame holding the last speech sent → the first
audible reply frame received (`arc_voice.ws_client`). Target: on / off ≤ 1.03, with Jaeger
running and with it stopped.

`VOICE_TRACING_ROUNDS` (default 20) sets the rounds per phase (one turn per copy a round).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import uuid
from contextlib import AsyncExitStack

from arc_stack.jaeger import JaegerServer, jaeger_installed
from arc_stack.nats import NatsServer
from arc_stack.paths import state_dir
from arc_stack.postgres import PostgresServer
from arc_stack.server import free_port
from arc_voice.ws_client import take_turn

from tests.bench.report import Stats, load_average, section_header, write_section
from tests.bench.voice import _start_services
from tests.fixtures.voice import SpeechSynth

ROUNDS = int(os.environ.get("VOICE_TRACING_ROUNDS", "20"))
QUESTIONS = (
    "Hello, what can you do?",
    "What time is it?",
    "How many minutes are in three hours?",
    "Tell me a joke.",
    "What is two plus two?",
    "What day is it today?",
)


async def _phase(
    urls: dict[str, str], headers: dict[str, str], speech: SpeechSynth, tag: str
) -> dict[str, list[float]]:
    heard: dict[str, list[float]] = {name: [] for name in urls}
    order = list(urls)
    for i in range(ROUNDS):
        question = speech.say(QUESTIONS[i % len(QUESTIONS)])
        for name in order if i % 2 == 0 else reversed(order):
            turn = await take_turn(
                urls[name], headers, question, user_id=f"bench-{tag}-{name}", pacing="fast"
            )
            # A turn without a figure counts as NaN, so the rounds stay paired.
            v2v = turn.voice_to_voice_s
            heard[name].append(float("nan") if v2v is None else v2v * 1000)
    return heard


def _rows(phase: str, heard: dict[str, list[float]]) -> list[str]:
    pairs = [(a, b) for a, b in zip(heard["on"], heard["off"], strict=True) if a == a and b == b]
    on, off = Stats.of([a for a, _ in pairs]), Stats.of([b for _, b in pairs])
    # The same question to both copies in each round: the difference cancels the question
    # (its transcript decides the end-of-turn wait, its answer the brain's and TTS's time).
    paired = Stats.of([a - b for a, b in pairs])
    return [
        f"| {phase} | {on.p50:.0f} / {on.p95:.0f} | {off.p50:.0f} / {off.p95:.0f} | "
        f"{on.p50 / off.p50:.2f} / {on.p95 / off.p95:.2f} | {paired.p50:+.0f} | {len(pairs)} |"
    ]


async def measure() -> str:
    load_at_start = load_average()
    if not jaeger_installed():
        return "Jaeger is not built (`arc install`): nothing measured."
    root = state_dir() / "bench-runs" / uuid.uuid4().hex[:8]
    key = secrets.token_urlsafe(24)
    headers = {"authorization": f"Bearer {key}"}
    speech = SpeechSynth()
    async with AsyncExitStack() as stack:
        stack.callback(shutil.rmtree, root, True)
        nats = NatsServer(root / "nats", root / "logs", port=free_port(), monitor_port=free_port())
        pg = PostgresServer(root / "pg", root / "logs", port=free_port(), database="arc")
        jaeger = JaegerServer(
            root / "jaeger", root / "logs", otlp_port=free_port(), query_port=free_port()
        )
        for server in (nats, pg, jaeger):
            await server.install()
            await server.start()
            stack.push_async_callback(server.stop)
        common = {
            "ARC_HTTP__API_KEYS": key,
            "ARC_VOICE__GREETING": "",
            # The voice worker checks its LiveKit keys at start-up; no room is used here.
            "ARC_LIVEKIT__API_KEY": "bench",
            "ARC_LIVEKIT__API_SECRET": secrets.token_urlsafe(24),
            "ARC_LOG__LEVEL": "WARNING",
        }
        tracing = {
            "on": {"ARC_TELEMETRY__OTLP_ENDPOINT": jaeger.otlp_endpoint},
            "off": {"ARC_TELEMETRY__OTLP_ENDPOINT": ""},
        }
        urls: dict[str, str] = {}
        for name, env in tracing.items():
            ports = await _start_services(
                stack,
                root,
                f"trace{name}",
                nats_url=nats.url,
                dsn=pg.dsn(),
                names=("brain", "tts", "voice"),
                env={**common, **env},
            )
            urls[name] = f"ws://127.0.0.1:{ports['voice']}/v1/voice"
        # One turn each first: models warm, connections open.
        for url in urls.values():
            await take_turn(url, headers, speech.say(QUESTIONS[0]), user_id="warm", pacing="fast")
        running = await _phase(urls, headers, speech, "running")
        await jaeger.stop()
        stopped = await _phase(urls, headers, speech, "stopped")
    body = section_header(
        "Tracing on voice to voice",
        "BENCH=voice_tracing make bench",
        load_at_start=load_at_start,
    )
    lines = [
        body,
        f"{ROUNDS} rounds per phase; each round asks both copies the same question (Piper "
        "speech over `/v1/voice`), in alternating order. Every service is a process. "
        "Voice to voice from the client's side (last speech frame sent → first audible "
        "reply frame received), ms.",
        "",
        "| Jaeger | tracing on p50 / p95 | off p50 / p95 | on / off p50 / p95 | "
        "median of on - off, same question | pairs |",
        "|---|---|---|---|---|---|",
        *_rows("running", running),
        *_rows("stopped (OTLP refused)", stopped),
        "",
        "Target: on / off ≤ 1.03 in both phases.",
    ]
    return "\n".join(lines)


def main() -> str:
    body = asyncio.run(measure())
    write_section("voice_tracing", body)
    return body

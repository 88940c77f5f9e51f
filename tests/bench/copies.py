"""Two copies of the mesh that differ in one setting, every service a process of its own as
`make run` runs it (brain, TTS, voice), asked the same spoken questions over `/v1/voice` in
alternating order, turn by turn: how `BENCH=voice_tracing` and `BENCH=recording` weigh a
feature on voice to voice, from the client's side."""

from __future__ import annotations

import secrets
from contextlib import AsyncExitStack
from pathlib import Path

from arc_stack.nats import NatsServer
from arc_stack.postgres import PostgresServer
from arc_stack.server import ManagedServer, free_port
from arc_voice.ws_client import take_turn

from tests.bench.report import Stats
from tests.bench.voice import _start_services
from tests.fixtures.voice import SpeechSynth

QUESTIONS = (
    "Hello, what can you do?",
    "What time is it?",
    "How many minutes are in three hours?",
    "Tell me a joke.",
    "What is two plus two?",
    "What day is it today?",
)


async def start_copies(
    stack: AsyncExitStack,
    root: Path,
    speech: SpeechSynth,
    copies: dict[str, dict[str, str]],
    *,
    tag: str,
    servers: tuple[ManagedServer, ...] = (),
) -> tuple[dict[str, str], dict[str, str]]:
    """NATS, Postgres and `servers` started, then one mesh per copy, with the copy's settings
    over the common ones; each copy's `/v1/voice` URL, already answered once (models warm,
    connections open), and the headers that authenticate to them."""
    key = secrets.token_urlsafe(24)
    nats = NatsServer(root / "nats", root / "logs", port=free_port(), monitor_port=free_port())
    pg = PostgresServer(root / "pg", root / "logs", port=free_port(), database="arc")
    for server in (nats, pg, *servers):
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
    urls: dict[str, str] = {}
    for name, env in copies.items():
        ports = await _start_services(
            stack,
            root,
            f"{tag}{name}",
            nats_url=nats.url,
            dsn=pg.dsn(),
            names=("brain", "tts", "voice"),
            env={**common, **env},
        )
        urls[name] = f"ws://127.0.0.1:{ports['voice']}/v1/voice"
    headers = {"authorization": f"Bearer {key}"}
    for url in urls.values():
        await take_turn(url, headers, speech.say(QUESTIONS[0]), user_id="warm", pacing="fast")
    return urls, headers


async def alternating_turns(
    urls: dict[str, str], headers: dict[str, str], speech: SpeechSynth, rounds: int, tag: str
) -> dict[str, list[float]]:
    """Each copy's voice to voice (ms), round by round: the same question to every copy, the
    order reversed every other round."""
    heard: dict[str, list[float]] = {name: [] for name in urls}
    order = list(urls)
    for i in range(rounds):
        question = speech.say(QUESTIONS[i % len(QUESTIONS)])
        for name in order if i % 2 == 0 else reversed(order):
            turn = await take_turn(
                urls[name], headers, question, user_id=f"bench-{tag}-{name}", pacing="fast"
            )
            # A turn without a figure counts as NaN, so the rounds stay paired.
            v2v = turn.voice_to_voice_s
            heard[name].append(float("nan") if v2v is None else v2v * 1000)
    return heard


def on_off_row(heard: dict[str, list[float]], *leading: str) -> str:
    """A table row after the `leading` cells: the `on` and `off` copies' p50 / p95, their
    ratios, the median of on - off in the same round, and how many rounds both answered."""
    pairs = [(a, b) for a, b in zip(heard["on"], heard["off"], strict=True) if a == a and b == b]
    on, off = Stats.of([a for a, _ in pairs]), Stats.of([b for _, b in pairs])
    # The same question to both copies in each round: the difference cancels the question
    # (its transcript decides the end-of-turn wait, its answer the brain's and TTS's time).
    paired = Stats.of([a - b for a, b in pairs])
    cells = [
        *leading,
        f"{on.p50:.0f} / {on.p95:.0f}",
        f"{off.p50:.0f} / {off.p95:.0f}",
        f"{on.p50 / off.p50:.2f} / {on.p95 / off.p95:.2f}",
        f"{paired.p50:+.0f}",
        str(len(pairs)),
    ]
    return "| " + " | ".join(cells) + " |"

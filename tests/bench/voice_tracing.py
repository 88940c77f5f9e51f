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

import os
from contextlib import AsyncExitStack

from arc_stack.jaeger import JaegerServer, jaeger_installed
from arc_stack.server import free_port

from tests.bench.copies import alternating_turns, on_off_row, start_copies
from tests.bench.report import load_average, run_section, section_header
from tests.bench.voice import run_dir
from tests.fixtures.voice import SpeechSynth

ROUNDS = int(os.environ.get("VOICE_TRACING_ROUNDS", "20"))


async def measure() -> str:
    load_at_start = load_average()
    if not jaeger_installed():
        return "Jaeger is not built (`arc install`): nothing measured."
    speech = SpeechSynth()
    async with AsyncExitStack() as stack:
        root = run_dir(stack)
        jaeger = JaegerServer(
            root / "jaeger", root / "logs", otlp_port=free_port(), query_port=free_port()
        )
        tracing = {
            "on": {"ARC_TELEMETRY__OTLP_ENDPOINT": jaeger.otlp_endpoint},
            "off": {"ARC_TELEMETRY__OTLP_ENDPOINT": ""},
        }
        urls, headers = await start_copies(
            stack, root, speech, tracing, tag="trace", servers=(jaeger,)
        )
        running = await alternating_turns(urls, headers, speech, ROUNDS, "running")
        await jaeger.stop()
        stopped = await alternating_turns(urls, headers, speech, ROUNDS, "stopped")
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
        on_off_row(running, "running"),
        on_off_row(stopped, "stopped (OTLP refused)"),
        "",
        "Target: on / off ≤ 1.03 in both phases.",
    ]
    return "\n".join(lines)


def main() -> str:
    return run_section("voice_tracing", measure())

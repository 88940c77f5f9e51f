"""The Go SDK's streaming client against bare nats.go, over loopback NATS (issue 16).

The Go program (libs/go-sdk/internal/benchmark) runs both variants interleaved against one
responder written with bare nats.go: a 1 KB request answered by one 1 KB delta and `end`
(round trip), and the first of 50 audio chunks of 3840 B (first chunk). This module starts
the NATS server, builds and runs the program offline, and writes the section.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from arc_stack.go_sdk import go_environment, go_sdk_dir
from arc_stack.livekit import go_binary
from arc_stack.nats import NatsServer
from arc_stack.server import free_port

from tests.bench.report import Stats, section_header, write_section
from tests.bench.rpc import exchange_tables

ROUNDS = 2000
WARMUP = 200


async def _nats(root: Path) -> NatsServer:
    server = NatsServer(root / "data", root / "logs", port=free_port(), monitor_port=free_port())
    await server.start()
    return server


def measure() -> dict[str, dict[str, Stats]]:
    import asyncio

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        binary = root / "go-sdk-benchmark"
        env = go_environment(offline=True)
        subprocess.run(
            [go_binary(), "build", "-o", str(binary), "./internal/benchmark"],
            cwd=go_sdk_dir(), env=env, check=True,
        )  # fmt: skip
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(_nats(root))
        try:
            out = subprocess.run(
                [str(binary), "-nats", server.url, "-rounds", str(ROUNDS), "-warmup", str(WARMUP)],
                capture_output=True, text=True, check=True, timeout=600,
            )  # fmt: skip
        finally:
            loop.run_until_complete(server.stop())
            loop.close()
    raw = json.loads(out.stdout)
    return {
        key: {variant: Stats.of(samples) for variant, samples in raw[field].items()}
        for key, field in (("rtt", "round_trip_ms"), ("ttfc", "first_chunk_ms"))
    }


def render(results: dict[str, dict[str, Stats]]) -> str:
    lines = [
        section_header(
            "Go SDK streaming client over loopback NATS (issue 16)", "BENCH=go_sdk make bench"
        ),
        f"{ROUNDS} exchanges per variant after {WARMUP} warm-up rounds, interleaved, against one "
        "bare nats.go responder. Times in ms.",
        "",
        *exchange_tables(results, "sdk", "Go SDK / bare nats.go"),
    ]
    return "\n".join(lines) + "\n"


def main() -> str:
    body = render(measure())
    write_section("go_sdk", body)
    return body

"""What tracing costs on the RPC round trip: the same streamed exchange with tracing on and
off, interleaved round by round in one process.

"On" is what a traced service does on every turn: the requester opens a CLIENT span under the
turn's span and injects `traceparent`; the server extracts it and opens its SERVER span; spans
end into the batch processor, whose thread exports them over OTLP/HTTP to a real Jaeger (when
one is built; otherwise to an exporter that drops them, and the section says so). "Off" is the
no-op API every untraced process runs with. The figure is the ratio on / off (target ≤ 1.03).

`TRACING_BENCH_ROUNDS` (default 2000) sets the rounds, for a quick check.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nats
from arc_common.settings import TelemetrySettings
from arc_common.streaming import StreamingClient, StreamingService
from arc_common.tracing import build_provider
from arc_common.wire import BrainRequest
from arc_stack.jaeger import JaegerServer, jaeger_installed
from arc_stack.nats import NatsServer
from arc_stack.server import free_port
from nats.aio.client import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tests.bench.report import Stats, section_header, write_section
from tests.bench.rpc import echo_endpoint

ROUNDS = int(os.environ.get("TRACING_BENCH_ROUNDS", "2000"))
WARMUP = max(10, ROUNDS // 10)
TEXT_1K = "x" * 1024


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _use(provider: TracerProvider | None) -> None:
    """Switch this process's tracing on (an SDK provider) or off (the API's no-op default).
    OpenTelemetry sets its global provider once per process; the benchmark needs both in one
    run, so it sets the global directly (the code under test asks `tracing_enabled()`)."""
    trace._TRACER_PROVIDER = provider


async def _echo_service(nc: Client) -> StreamingService:
    service = StreamingService(nc, name="bench-tracing", version="0.0.1")
    service.add(echo_endpoint("trace.echo"))
    await service.start()
    return service


async def _exchange(client: StreamingClient, turn: str, traced: bool) -> float:
    request = BrainRequest(v=1, session_id="s", turn_id=turn, user_id="u", text=TEXT_1K)
    started = time.perf_counter()
    if traced:
        # The voice worker's turn span, as the parent of the request's CLIENT span.
        with trace.get_tracer("bench").start_as_current_span("voice.turn"):
            async with client.stream(
                "trace.echo", request, cancel_subject="trace.echo.cancel"
            ) as s:
                async for _ in s:
                    pass
    else:
        async with client.stream("trace.echo", request, cancel_subject="trace.echo.cancel") as s:
            async for _ in s:
                pass
    return time.perf_counter() - started


async def measure() -> tuple[dict[str, Stats], str]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = NatsServer(
            root / "nats", root / "logs", port=free_port(), monitor_port=free_port()
        )
        jaeger: JaegerServer | None = None
        if jaeger_installed():
            jaeger = JaegerServer(
                root / "jaeger", root / "logs", otlp_port=free_port(), query_port=free_port()
            )
        await server.start()
        provider: TracerProvider | None = None
        try:
            if jaeger is not None:
                await jaeger.start()
                settings = TelemetrySettings(otlp_endpoint=jaeger.otlp_endpoint)
                provider = build_provider(settings, service="bench-tracing")
                sink = f"OTLP/HTTP to a real Jaeger ({jaeger.otlp_endpoint})"
            else:
                provider = build_provider(TelemetrySettings(), service="bench", exporter=_Dropped())
                sink = "an exporter that drops them (Jaeger is not built: `make install`)"
            srv_nc = await nats.connect(server.url)
            cli_nc = await nats.connect(server.url)
            await _echo_service(srv_nc)
            client = StreamingClient(cli_nc)
            await client.start()
            samples: dict[str, list[float]] = {"on": [], "off": []}
            for i in range(WARMUP + ROUNDS):
                # Alternate which variant goes first so neither always gets the warmer cache.
                for variant in ("on", "off") if i % 2 == 0 else ("off", "on"):
                    _use(provider if variant == "on" else None)
                    took = await _exchange(client, f"{variant}{i}", variant == "on")
                    if i >= WARMUP:
                        samples[variant].append(took * 1000)
            _use(None)
            await client.close()
            await cli_nc.drain()
            await srv_nc.drain()
        finally:
            _use(None)
            if provider is not None:
                provider.shutdown()
            if jaeger is not None:
                await jaeger.stop()
            await server.stop()
    return {k: Stats.of(v) for k, v in samples.items()}, sink


def render(results: dict[str, Stats], sink: str) -> str:
    on, off = results["on"], results["off"]
    ratio50, ratio95 = on.p50 / off.p50, on.p95 / off.p95
    lines = [
        section_header("Tracing on vs off: RPC round trip (issue 11)", "BENCH=tracing make bench"),
        f"{ROUNDS} round trips per variant (1 KB request, one 1 KB chunk and the end) after "
        f"{WARMUP} warm-up rounds, interleaved in one process. Spans go to {sink}. Times in ms.",
        "",
        "| variant | p50 | p95 | mean |",
        "|---|---|---|---|",
        f"| tracing on | {on.p50:.3f} | {on.p95:.3f} | {on.mean:.3f} |",
        f"| tracing off | {off.p50:.3f} | {off.p95:.3f} | {off.mean:.3f} |",
        "",
        "| ratio on / off | p50 | p95 | target |",
        "|---|---|---|---|",
        f"| round trip | {ratio50:.3f} | {ratio95:.3f} | ≤ 1.03 |",
    ]
    return "\n".join(lines) + "\n"


def main() -> str:
    results, sink = asyncio.run(measure())
    body = render(results, sink)
    write_section("tracing", body)
    return body

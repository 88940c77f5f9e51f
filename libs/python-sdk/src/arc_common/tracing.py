"""Tracing: one OpenTelemetry tracer provider per service process, exporting over OTLP/HTTP.

`setup_tracing` installs it when `ARC_TELEMETRY__OTLP_ENDPOINT` is set (`make run` points it
at the local Jaeger) and leaves OpenTelemetry's no-op API in place when it is empty, so an
untraced process pays nothing but a few no-op calls.

Export never sits on a turn's path: a span's end only appends it to the batch processor's
queue; a background thread sends batches with a short timeout. An unreachable collector costs
that thread its retries and, once the queue is full, drops spans; it never blocks the loop.

The trace context crosses NATS in W3C `traceparent` headers (`arc_common.envelope`): the
streaming client opens a CLIENT span per request and injects it, the server extracts it and
opens the SERVER span under it (`arc_common.streaming`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from arc_common.envelope import tracing_enabled
from arc_common.settings import TelemetrySettings

log = logging.getLogger(__name__)

__all__ = [
    "Tracing",
    "attached",
    "build_provider",
    "current_ids",
    "current_trace_id",
    "setup_tracing",
    "tracing_enabled",
]


@dataclass
class Tracing:
    """The process's tracing, as `setup_tracing` left it; `provider` is None when off."""

    tracer: trace.Tracer
    provider: TracerProvider | None

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def shutdown(self) -> None:
        """Flush what is queued (bounded by the export timeout) and stop the exporter."""
        if self.provider is not None:
            self.provider.shutdown()


# Polled every few seconds by the supervisor and Prometheus: traced, they would bury the turns.
QUIET_PATHS = frozenset({"/healthz", "/metrics"})


class QuietRoutes(Sampler):
    """Drops the traces of health checks and metric scrapes (a request to one of
    `QUIET_PATHS` that starts a trace); everything else as `inner` decides."""

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if (
            kind is SpanKind.SERVER
            and attributes
            and attributes.get("url.path") in QUIET_PATHS
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"QuietRoutes({self._inner.get_description()})"


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector's base address (`http://host:4318`)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def build_provider(
    settings: TelemetrySettings, *, service: str, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider exporting in batches to the configured collector (or to `exporter`)."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=QuietRoutes(ParentBasedTraceIdRatio(settings.sample_ratio)),
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert settings.otlp_endpoint
        exporter = OTLPSpanExporter(
            endpoint=otlp_traces_url(settings.otlp_endpoint),
            timeout=settings.export_timeout_s,
        )
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=settings.max_queue_size,
            schedule_delay_millis=settings.schedule_delay_ms,
            export_timeout_millis=int(settings.export_timeout_s * 1000),
        )
    )
    return provider


def setup_tracing(settings: TelemetrySettings, *, service: str) -> Tracing:
    """Install the process's tracer provider from `settings`, or leave tracing off."""
    if not settings.otlp_endpoint:
        return Tracing(tracer=trace.get_tracer(service), provider=None)
    provider = build_provider(settings, service=service)
    trace.set_tracer_provider(provider)
    _instrument_libraries(provider)
    log.info("tracing to %s as %s", otlp_traces_url(settings.otlp_endpoint), service)
    return Tracing(tracer=provider.get_tracer(service), provider=provider)


def _instrument_libraries(provider: TracerProvider) -> None:
    """Spans for the libraries under the services, from OpenTelemetry's instrumentation
    package rather than by hand: every SQL statement through psycopg (memory recall,
    history, the outbox). HTTP needs none: FastAPI traces its requests itself once a
    provider is installed, and so does LiveKit Agents its session, turns and nodes."""
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    psycopg = PsycopgInstrumentor()
    if not psycopg.is_instrumented_by_opentelemetry:
        psycopg.instrument(tracer_provider=provider)


@contextmanager
def attached(ctx: otel_context.Context | None) -> Iterator[None]:
    """Run the block with `ctx` as the current trace context (no-op for None)."""
    if ctx is None:
        yield
        return
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, or None outside a recorded span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def current_trace_id() -> str | None:
    ids = current_ids()
    return ids[0] if ids else None

"""OpenTelemetry tracing (OTLP when configured, otherwise off) and Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from arc_common.settings import TelemetrySettings


@dataclass
class Telemetry:
    tracer: trace.Tracer
    provider: TracerProvider | None

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def setup_telemetry(settings: TelemetrySettings, *, service: str) -> Telemetry:
    """Install a tracer provider that exports over OTLP/HTTP, or leave the no-op API in place."""
    if not settings.otlp_endpoint:
        return Telemetry(tracer=trace.get_tracer(service), provider=None)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBasedTraceIdRatio(settings.sample_ratio),
    )
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return Telemetry(tracer=provider.get_tracer(service), provider=provider)


def metrics_payload(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The Prometheus exposition body and its content type, for any HTTP framework's /metrics."""
    return generate_latest(registry), CONTENT_TYPE_LATEST

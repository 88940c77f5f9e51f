"""NATS headers of the contract: `arc-schema` on every message, W3C trace context when traced."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SCHEMA_HEADER = "arc-schema"
# On every reply chunk of a streamed turn: the `$SRV.PING` subject of the service instance
# serving it. A requester waiting on a silent stream pings it; NATS answers "no responders"
# at once when that instance has gone (its connection closed with its process), so a dead
# server is noticed in about a second instead of at the stream's idle timeout.
SERVER_HEADER = "arc-server"
# A streamed request carrying `arc-ack: 1` is acknowledged at once by the instance that takes
# it: an empty message with `arc-ack: accepted` and its `arc-server`, so a requester also
# notices an instance that dies before its first chunk. Requests without it get no such
# message (older clients, the Go SDK).
ACK_HEADER = "arc-ack"
ACK_ASKED = "1"
ACK_ACCEPTED = "accepted"
_propagator = TraceContextTextMapPropagator()


def headers_for(schema: str, *, ctx: otel_context.Context | None = None) -> dict[str, str]:
    """Headers for an outgoing message: its schema plus the current (or given) trace context.
    Untraced messages skip the propagator: this sits on the hot path of every request."""
    headers = {SCHEMA_HEADER: schema}
    if trace.get_current_span(ctx).get_span_context().is_valid:
        _propagator.inject(headers, context=ctx)
    return headers


def tracing_enabled() -> bool:
    """False while no SDK tracer provider is installed (the API's no-op default)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def trace_context_from(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The remote trace context a message carries, to parent the work it starts."""
    return _propagator.extract(dict(headers) if headers else {})


def schema_of(headers: Mapping[str, str] | None) -> str | None:
    return headers.get(SCHEMA_HEADER) if headers else None

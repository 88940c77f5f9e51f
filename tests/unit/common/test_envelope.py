"""Trace context travels in NATS headers when (and only when) there is a trace."""

from __future__ import annotations

import pytest
from arc_common.envelope import SCHEMA_HEADER, headers_for, schema_of, trace_context_from
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

pytestmark = pytest.mark.unit


def test_untraced_message_carries_only_the_schema() -> None:
    assert headers_for("brain.request/1") == {SCHEMA_HEADER: "brain.request/1"}
    assert schema_of({SCHEMA_HEADER: "tts.request/1"}) == "tts.request/1"
    assert schema_of(None) is None


def test_trace_context_round_trips_through_headers() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("voice-turn") as span:
        headers = headers_for("brain.request/1")
        sent = span.get_span_context()
    assert headers["traceparent"].split("-")[1] == format(sent.trace_id, "032x")
    remote = trace.get_current_span(trace_context_from(headers)).get_span_context()
    assert remote.trace_id == sent.trace_id and remote.span_id == sent.span_id
    assert remote.is_remote

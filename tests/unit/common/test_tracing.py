"""Tracing in the plain core: `traceparent` across the streaming client and server (valid,
malformed, absent), an unreachable collector, trace ids in JSON logs and in outbox rows."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from arc_common.events import ConversationTurn
from arc_common.events.outbox import _row
from arc_common.logging import configure_logging
from arc_common.settings import LogSettings, TelemetrySettings
from arc_common.streaming import (
    Chunk,
    ReplyStream,
    StreamingClient,
    StreamingEndpoint,
    TurnContext,
)
from arc_common.streaming.server import _EndpointRunner, _Turn
from arc_common.tracing import build_provider, current_trace_id
from arc_common.wire import BrainRequest, ReplyChunk, encode
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from tests.fixtures.jaeger import CapturedSpans
from tests.unit.common.support import endpoint

pytestmark = pytest.mark.unit

_chunk = msgspec.msgpack.Decoder(ReplyChunk)
VALID_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass
class _Published:
    subject: str
    data: bytes
    reply: str
    headers: dict[str, str] | None


@dataclass
class FakeNats:
    """What the streaming helpers use of a NATS client, recording what they publish."""

    published: list[_Published] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=lambda: {"reconnects": 0})

    async def publish(
        self, subject: str, data: bytes, reply: str = "", headers: dict[str, str] | None = None
    ) -> None:
        self.published.append(_Published(subject, data, reply, headers))

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str, cb: Any = None) -> Any:
        return object()  # a subscription the client only holds

    def chunks(self) -> list[ReplyChunk]:
        return [_chunk.decode(p.data) for p in self.published]


def _endpoint() -> StreamingEndpoint[Any]:
    async def handle(req: BrainRequest, ctx: TurnContext) -> AsyncIterator[Chunk]:
        yield Chunk(kind="delta", text="Hello.")

    return endpoint(handle)


def _request() -> BrainRequest:
    return BrainRequest(v=1, session_id="s1", turn_id="t1", user_id="u1", text="Hi")


async def _serve(headers: dict[str, str]) -> FakeNats:
    nc = FakeNats()
    runner = _EndpointRunner(nc, _endpoint())  # type: ignore[arg-type]
    turn = _Turn("t1", "_INBOX.reply", time.perf_counter_ns())
    ctx = TurnContext(subject="brain.request", received_at=time.monotonic(), headers=headers)
    await runner.run_turn(turn, _request(), ctx)
    return nc


def _server_span(spans: CapturedSpans) -> ReadableSpan:
    [span] = [s for s in spans.finished() if s.kind is SpanKind.SERVER]
    return span


async def test_the_server_span_continues_the_requesters_trace(
    captured_spans: CapturedSpans,
) -> None:
    nc = await _serve({"traceparent": VALID_PARENT})

    assert [c.kind for c in nc.chunks()] == ["delta", "end"]
    span = _server_span(captured_spans)
    assert span.name == "brain.request"
    assert format(span.context.trace_id, "032x") == VALID_PARENT.split("-")[1]
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "garbage"},
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},
        {"traceparent": "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"traceparent": VALID_PARENT + "-extra-parts"},
        {"traceparent": "", "tracestate": "a=b"},
    ],
    ids=["absent", "garbage", "zero-trace", "zero-span", "bad-version", "extra", "empty"],
)
async def test_a_missing_or_malformed_traceparent_starts_a_new_trace_and_the_turn_runs(
    captured_spans: CapturedSpans, headers: dict[str, str]
) -> None:
    nc = await _serve(headers)

    assert [c.kind for c in nc.chunks()] == ["delta", "end"]
    span = _server_span(captured_spans)
    assert span.parent is None  # a root: a trace of its own
    assert span.context.trace_id != int(VALID_PARENT.split("-")[1], 16)


async def test_untraced_turns_open_no_span_and_run_the_same() -> None:
    nc = await _serve({"traceparent": "garbage"})

    assert [c.kind for c in nc.chunks()] == ["delta", "end"]


async def _open_stream(nc: FakeNats) -> ReplyStream:
    """A `brain.request` turn of a started client, under the caller's current span."""
    client = StreamingClient(nc)  # type: ignore[arg-type]
    await client.start()
    return client.stream("brain.request", _request(), cancel_subject="brain.cancel")


def _arrives(stream: ReplyStream, chunk: ReplyChunk) -> None:
    """`chunk` as the server's reply reaching the stream's inbox."""
    stream._inbox.push(_msg(encode(chunk)))


async def test_the_client_span_is_the_requests_parent_in_its_traceparent(
    captured_spans: CapturedSpans,
) -> None:
    nc = FakeNats()
    with trace.get_tracer("test").start_as_current_span("voice.turn") as turn:
        stream = await _open_stream(nc)
    _arrives(stream, ReplyChunk(v=1, turn_id="t1", seq=0, kind="end"))
    assert await stream.collect() == []

    [sent] = nc.published
    assert sent.headers is not None
    [client_span] = captured_spans.named("brain.request")
    assert client_span.kind is SpanKind.CLIENT
    assert client_span.parent is not None
    assert client_span.parent.span_id == turn.get_span_context().span_id
    _version, trace_id, span_id, _flags = sent.headers["traceparent"].split("-")
    assert trace_id == format(client_span.context.trace_id, "032x")
    assert span_id == format(client_span.context.span_id, "016x")


async def test_a_cancelled_request_is_an_event_on_its_client_span(
    captured_spans: CapturedSpans,
) -> None:
    nc = FakeNats()
    stream = await _open_stream(nc)
    _arrives(stream, ReplyChunk(v=1, turn_id="t1", seq=0, kind="delta", text="a"))
    async with stream:
        async for _ in stream:
            break  # the person barged in

    [span] = captured_spans.named("brain.request")
    assert [e.name for e in span.events] == ["first_chunk", "cancel"]
    assert [p.subject for p in nc.published] == ["brain.request", "brain.cancel"]


def _msg(data: bytes) -> Msg:
    return Msg(_client=None, data=data)  # type: ignore[arg-type]  # never answered through


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that accepts connections into its backlog and never answers: the worst
    collector, where every export waits for its timeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


async def test_an_unreachable_collector_neither_fails_nor_slows_turns(
    captured_spans: CapturedSpans, blackhole: int
) -> None:
    settings = TelemetrySettings(
        otlp_endpoint=f"http://127.0.0.1:{blackhole}", export_timeout_s=1.0, schedule_delay_ms=10
    )
    provider = build_provider(settings, service="test")
    [processor] = provider._active_span_processor._span_processors
    assert isinstance(processor, BatchSpanProcessor)
    captured_spans.use(processor)
    try:
        began = time.perf_counter()
        for _ in range(50):
            nc = await _serve({"traceparent": VALID_PARENT})
            assert [c.kind for c in nc.chunks()] == ["delta", "end"]
        elapsed = time.perf_counter() - began
        # Exports are stuck behind a collector that never answers the whole time; the turns
        # do not wait for them (50 turns take a few ms each on the core's own work).
        assert elapsed < 1.0, elapsed
        began = time.perf_counter()
        await asyncio.to_thread(processor.shutdown)
        # Shutdown gives up with the export timeout instead of hanging a service's exit.
        assert time.perf_counter() - began < 5.0
    finally:
        provider.shutdown()


def _json_lines(run: Any) -> list[dict[str, Any]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(LogSettings(level="INFO"), service="test")
    buffer = io.StringIO()
    root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
    try:
        run()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_logs_carry_the_current_trace_and_span_ids(captured_spans: CapturedSpans) -> None:
    tracer = trace.get_tracer("test")
    ids: list[tuple[str, str]] = []

    def run() -> None:
        logging.getLogger("arc.test").info("outside")
        with tracer.start_as_current_span("work") as span:
            ctx = span.get_span_context()
            ids.append((format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")))
            logging.getLogger("arc.test").info("inside")

    outside, inside = _json_lines(run)
    assert outside["trace_id"] is None and outside["span_id"] is None
    assert (inside["trace_id"], inside["span_id"]) == ids[0]
    assert inside["message"] == "inside" and inside["service"] == "test"


def test_untraced_json_logs_have_null_trace_ids() -> None:
    [line] = _json_lines(lambda: logging.getLogger("arc.test").warning("plain"))
    assert line["trace_id"] is None and line["level"] == "WARNING"


def test_an_outbox_row_written_in_a_trace_carries_its_id(captured_spans: CapturedSpans) -> None:
    event = ConversationTurn(
        session_id="s1", turn_id="t1", user_id="u1", user_text="Hi", assistant_text="Hello."
    )
    untraced = json.loads(_row(event)[-1])
    with trace.get_tracer("test").start_as_current_span("turn"):
        traced = json.loads(_row(event)[-1])
        expected = current_trace_id()

    assert "trace_id" not in untraced
    assert traced.pop("trace_id") == expected
    assert traced == untraced  # the event itself is unchanged: same schema, same fields

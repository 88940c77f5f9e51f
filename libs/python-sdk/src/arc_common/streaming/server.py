"""The serving side: validate requests, run one task per turn, own seq numbers, terminal
frames, cancellation and error codes. Handlers only yield chunks.

Built on nats.py's `micro` service so every Arc service is discoverable with `$SRV.PING`,
`$SRV.INFO` and `$SRV.STATS`. `micro` times its handler, which here only starts the turn and
returns; so the endpoint statistics `$SRV.STATS` reports are the turns' own, filled in through
the service's `stats_handler`: every request received, every one answered with a terminal
`error` (and the last such error), and the time from receiving each request to its terminal
message. A turn cancelled with `*.cancel` is not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
from nats import micro
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.micro.request import Request as MicroRequest
from nats.micro.service import EndpointStats, Service, ServiceVerb, control_subject
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from arc_common.envelope import (
    ACK_ACCEPTED,
    ACK_ASKED,
    ACK_HEADER,
    SCHEMA_HEADER,
    SERVER_HEADER,
    trace_context_from,
    tracing_enabled,
)
from arc_common.errors import ArcError, BadRequest, Busy, Internal, Timeout, TooLarge
from arc_common.logging import bound_turn
from arc_common.wire import (
    REPLY_SCHEMAS,
    Cancel,
    ErrorBody,
    ReplyChunk,
    Request,
    decode_or_reject,
    encode,
    peek_turn_id,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("arc_common.streaming")

Req = TypeVar("Req", bound=Request)

_cancel_decoder = msgspec.msgpack.Decoder(Cancel)


@dataclass(slots=True)
class Chunk:
    """What a handler yields: a `delta` (text) or an `audio` (pcm) chunk."""

    kind: str
    text: str | None = None
    pcm: bytes | None = None
    sample_rate: int | None = None

    def to_reply(self, turn_id: str, seq: int) -> ReplyChunk:
        """The wire chunk for this one; the turn and its numbering are the server's, not the
        handler's. `InProcessClient` builds its chunks here too, so both paths send alike."""
        return ReplyChunk(
            v=1,
            turn_id=turn_id,
            seq=seq,
            kind=self.kind,  # type: ignore[arg-type]
            text=self.text,
            pcm=self.pcm,
            sample_rate=self.sample_rate,
        )


@dataclass(slots=True)
class TurnContext:
    """What a handler knows about the turn beyond the request itself."""

    subject: str
    received_at: float
    deadline: float | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Req, TurnContext], AsyncIterator[Chunk]]


@dataclass
class StreamingEndpoint(Generic[Req]):
    name: str
    subject: str
    queue_group: str
    cancel_subject: str
    request_type: type[Req]
    handler: Handler[Req]
    max_concurrent_turns: int = 64
    max_payload_bytes: int = 64 * 1024
    # What else `$SRV.STATS` reports in the endpoint's `data`, read at each request for it
    # (the TTS worker's voices and free streams): what a caller can route by.
    capabilities: Callable[[], dict[str, Any]] | None = None
    # Also answer on `<subject>.<instance id>` (in the same queue group, of which this
    # instance is then the only member), so a caller that picked this instance by its
    # capabilities reaches it; `$SRV.STATS` gives the subject as `direct_subject`.
    direct: bool = False


class _Turn:
    __slots__ = ("cancelled", "received_ns", "reply", "seq", "task", "turn_id")

    def __init__(self, turn_id: str, reply: str, received_ns: int) -> None:
        self.turn_id = turn_id
        self.reply = reply
        self.received_ns = received_ns
        self.seq = 0
        self.cancelled = False
        self.task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class TurnStats:
    """One endpoint's statistics over its turns, as `$SRV.STATS` reports them."""

    requests: int = 0
    errors: int = 0
    cancelled: int = 0
    processing_ns: int = 0
    last_error: str = ""

    def finished(self, received_ns: int, error: ArcError | None = None) -> None:
        self.processing_ns += time.perf_counter_ns() - received_ns
        if error is not None:
            self.errors += 1
            self.last_error = f"{error.code.value}: {error.message}"[:512]


class _EndpointRunner(Generic[Req]):
    def __init__(
        self, nc: Client, endpoint: StreamingEndpoint[Req], ping_subject: str | None = None
    ) -> None:
        self.nc = nc
        self.endpoint = endpoint
        self.turns: dict[str, _Turn] = {}
        self.decoder = msgspec.msgpack.Decoder(endpoint.request_type)
        self.reply_schema = REPLY_SCHEMAS.get(endpoint.request_type.schema, "reply/1")
        self.reply_headers = {SCHEMA_HEADER: self.reply_schema}
        if ping_subject is not None:
            self.reply_headers[SERVER_HEADER] = ping_subject
        self.ack_headers = self.reply_headers | {ACK_HEADER: ACK_ACCEPTED}
        self.cancel_sub: Subscription | None = None
        self.direct_sub: Subscription | None = None
        self.direct_subject: str | None = None
        self.stats = TurnStats()

    async def publish(self, turn: _Turn, chunk: ReplyChunk) -> None:
        # Replies need no trace context: the requester already holds it.
        await self.nc.publish(turn.reply, encode(chunk), headers=self.reply_headers)

    async def publish_error(self, reply: str, turn_id: str, seq: int, error: ArcError) -> None:
        chunk = ReplyChunk(
            v=1,
            turn_id=turn_id,
            seq=seq,
            kind="error",
            error=ErrorBody(code=error.code.value, message=error.message),
        )
        await self.nc.publish(reply, encode(chunk), headers=self.reply_headers)

    async def on_request(self, request: MicroRequest) -> None:
        await self.on_msg(request._msg)

    async def on_msg(self, msg: Msg) -> None:
        received_ns = time.perf_counter_ns()
        self.stats.requests += 1
        reply = msg.reply
        if not reply:
            log.warning("request on %s without a reply subject dropped", msg.subject)
            self.stats.finished(received_ns, BadRequest("request without a reply subject"))
            return
        try:
            req = self.parse(msg.data)
        except ArcError as exc:
            await self.refuse(reply, peek_turn_id(msg.data), exc, received_ns)
            return
        if req.turn_id in self.turns:
            duplicate = BadRequest(f"turn {req.turn_id} is already in progress")
            await self.refuse(reply, req.turn_id, duplicate, received_ns)
            return
        if len(self.turns) >= self.endpoint.max_concurrent_turns:
            busy = Busy(
                f"{self.endpoint.name} is serving its maximum of "
                f"{self.endpoint.max_concurrent_turns} turns"
            )
            await self.refuse(reply, req.turn_id, busy, received_ns)
            return
        turn = _Turn(req.turn_id, reply, received_ns)
        ctx = TurnContext(
            subject=msg.subject, received_at=time.monotonic(), headers=msg.headers or {}
        )
        deadline_ms = getattr(req, "deadline_ms", None)
        if deadline_ms:
            ctx.deadline = ctx.received_at + deadline_ms / 1000
        self.turns[req.turn_id] = turn
        if ctx.headers.get(ACK_HEADER) == ACK_ASKED and SERVER_HEADER in self.reply_headers:
            # Before the turn's task exists, so it precedes the first chunk on the wire. Best
            # effort: without it the requester notices a death only at its own timeout, and
            # the turn must start (and be owned by its task) either way.
            try:
                await self.nc.publish(reply, b"", headers=self.ack_headers)
            except Exception as exc:
                log.warning("turn %s: acknowledgement not published: %r", req.turn_id, exc)
        turn.task = asyncio.create_task(self.run_turn(turn, req, ctx), name=f"turn:{req.turn_id}")

    async def refuse(self, reply: str, turn_id: str, error: ArcError, received_ns: int) -> None:
        """Answer a request that never becomes a turn with its one terminal `error`."""
        try:
            await self.publish_error(reply, turn_id, 0, error)
        finally:
            self.stats.finished(received_ns, error)

    def parse(self, data: bytes) -> Req:
        if len(data) > self.endpoint.max_payload_bytes:
            raise TooLarge(
                f"request is {len(data)} bytes; the limit is {self.endpoint.max_payload_bytes}"
            )
        req = decode_or_reject(
            self.decoder.decode,
            data,
            invalid=f"invalid {self.endpoint.request_type.schema}",
            malformed="payload is not a MessagePack map",
        )
        req.check()
        return req

    async def run_turn(self, turn: _Turn, req: Req, ctx: TurnContext) -> None:
        try:
            with bound_turn(req.session_id, req.turn_id):
                if not tracing_enabled():
                    await self._run(turn, req, ctx)
                    return
                # The requester's span, from its `traceparent`; a missing or malformed one
                # extracts as an empty context, and the turn starts a trace of its own.
                token = otel_context.attach(trace_context_from(ctx.headers))
                try:
                    with tracer.start_as_current_span(
                        req.schema.partition("/")[0],
                        kind=SpanKind.SERVER,
                        attributes={
                            "messaging.system": "nats",
                            "messaging.destination.name": ctx.subject,
                            "arc.endpoint": self.endpoint.name,
                            "arc.turn_id": req.turn_id,
                            "arc.session_id": req.session_id,
                        },
                        # A turn's failure is a terminal `error` chunk, recorded below.
                        record_exception=False,
                        set_status_on_exception=False,
                    ):
                        await self._run(turn, req, ctx)
                finally:
                    otel_context.detach(token)
        finally:
            self.turns.pop(turn.turn_id, None)

    async def _run(self, turn: _Turn, req: Req, ctx: TurnContext) -> None:
        error: ArcError | None = None
        try:
            if ctx.deadline is None:
                await self._stream(turn, req, ctx)
            else:
                async with asyncio.timeout(max(0.0, ctx.deadline - time.monotonic())):
                    await self._stream(turn, req, ctx)
            await self.publish(
                turn, ReplyChunk(v=1, turn_id=turn.turn_id, seq=turn.seq, kind="end")
            )
        except asyncio.CancelledError:
            if turn.cancelled:
                # Cancelled by a `*.cancel` message: close the stream cleanly for the requester.
                trace.get_current_span().add_event("cancel", {"arc.chunks_sent": turn.seq})
                self.stats.cancelled += 1
                await self.publish(
                    turn,
                    ReplyChunk(
                        v=1, turn_id=turn.turn_id, seq=turn.seq, kind="end", reason="cancelled"
                    ),
                )
                return
            error = Internal("the turn was cancelled by its server")
            raise
        except TimeoutError:
            error = Timeout("the request's deadline passed")
            await self.publish_error(turn.reply, turn.turn_id, turn.seq, error)
        except ArcError as exc:
            error = exc
            log.info("turn failed: %r", exc)
            await self.publish_error(turn.reply, turn.turn_id, turn.seq, exc)
        except Exception as exc:
            log.exception("turn failed unexpectedly")
            error = Internal(f"{type(exc).__name__}: {exc}")
            await self.publish_error(turn.reply, turn.turn_id, turn.seq, error)
        finally:
            self.stats.finished(turn.received_ns, error)
            log.debug(
                "turn %s on %s: %s after %d chunks",
                turn.turn_id,
                ctx.subject,
                "cancelled" if turn.cancelled else error.code.value if error else "ended",
                turn.seq,
            )
            if error is not None:
                trace.get_current_span().set_status(
                    Status(StatusCode.ERROR, f"{error.code.value}: {error.message}"[:256])
                )

    async def _stream(self, turn: _Turn, req: Req, ctx: TurnContext) -> None:
        async for item in self.endpoint.handler(req, ctx):
            await self.publish(turn, item.to_reply(turn.turn_id, turn.seq))
            turn.seq += 1

    async def on_cancel(self, msg: Msg) -> None:
        try:
            cancel = _cancel_decoder.decode(msg.data)
        except (msgspec.MsgspecError, UnicodeDecodeError):
            log.warning("undecodable message on %s ignored", msg.subject)
            return
        turn = self.turns.get(cancel.turn_id)
        if turn is None or turn.task is None or turn.cancelled:
            return
        turn.cancelled = True
        turn.task.cancel()

    async def cancel_all(self) -> None:
        tasks = [t.task for t in self.turns.values() if t.task is not None]
        for turn in self.turns.values():
            turn.cancelled = True
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _report_stats(endpoint: EndpointStats, stats: TurnStats, in_progress: int) -> dict[str, int]:
    """Put the turns' statistics in place of what `micro` measured around the handler (which
    only starts a turn), and return the extra figures for the endpoint's `data`. A turn in
    progress counts as a request, but adds its time only once it has ended."""
    endpoint.num_requests = stats.requests
    endpoint.num_errors = stats.errors
    endpoint.last_error = stats.last_error or None
    endpoint.processing_time = stats.processing_ns
    ended = stats.requests - in_progress
    endpoint.average_processing_time = stats.processing_ns // ended if ended > 0 else 0
    return {"turns_in_progress": in_progress, "turns_cancelled": stats.cancelled}


class StreamingService:
    """A named, versioned NATS micro service whose endpoints stream their replies.

    Use as an async context manager, or call `start()` and `stop()`; stopping cancels every
    turn in flight (each ends with `end`/`cancelled`) before the subscriptions go.
    """

    def __init__(self, nc: Client, *, name: str, version: str, description: str = "") -> None:
        self._nc = nc
        self._name = name
        self._version = version
        self._description = description
        self._endpoints: list[StreamingEndpoint[Any]] = []
        self._runners: list[_EndpointRunner[Any]] = []
        self._service: Service | None = None

    def add(self, endpoint: StreamingEndpoint[Any]) -> None:
        if self._service is not None:
            raise RuntimeError("endpoints must be added before start()")
        self._endpoints.append(endpoint)

    @property
    def instance_id(self) -> str:
        """This instance's id, as `$SRV.PING/INFO/STATS` announce it (once started)."""
        if self._service is None:
            raise RuntimeError("the service has not started")
        return self._service.id

    @property
    def active_turns(self) -> int:
        return sum(len(r.turns) for r in self._runners)

    async def start(self) -> None:
        self._service = await micro.add_service(
            self._nc,
            name=self._name,
            version=self._version,
            description=self._description,
            stats_handler=self._endpoint_stats,
        )
        ping = control_subject(ServiceVerb.PING, name=self._name, id=self._service.id)
        for endpoint in self._endpoints:
            runner: _EndpointRunner[Any] = _EndpointRunner(self._nc, endpoint, ping)
            # Cancels go to every worker (no queue group): only the one serving the turn acts.
            runner.cancel_sub = await self._nc.subscribe(
                endpoint.cancel_subject, cb=runner.on_cancel
            )
            await self._service.add_endpoint(
                name=endpoint.name,
                subject=endpoint.subject,
                queue_group=endpoint.queue_group,
                handler=runner.on_request,
            )
            if endpoint.direct:
                # A plain subscription, not a second `micro` endpoint: the turns (and their
                # statistics) are the one endpoint's, whichever subject brought them.
                runner.direct_subject = f"{endpoint.subject}.{self._service.id}"
                runner.direct_sub = await self._nc.subscribe(
                    runner.direct_subject, queue=endpoint.queue_group, cb=runner.on_msg
                )
            self._runners.append(runner)
        await self._nc.flush()

    def _endpoint_stats(self, endpoint: EndpointStats) -> dict[str, Any] | None:
        for runner in self._runners:
            if runner.endpoint.name == endpoint.name:
                data: dict[str, Any] = _report_stats(endpoint, runner.stats, len(runner.turns))
                if runner.endpoint.capabilities is not None:
                    data |= runner.endpoint.capabilities()
                if runner.direct_subject is not None:
                    data["direct_subject"] = runner.direct_subject
                return data
        return None

    def stats(self) -> dict[str, TurnStats]:
        """Each endpoint's turn statistics, by endpoint name (what `$SRV.STATS` reports)."""
        return {runner.endpoint.name: runner.stats for runner in self._runners}

    async def stop(self) -> None:
        for runner in self._runners:
            if runner.direct_sub is not None:
                with contextlib.suppress(Exception):
                    await runner.direct_sub.unsubscribe()
            await runner.cancel_all()
            if runner.cancel_sub is not None:
                with contextlib.suppress(Exception):
                    await runner.cancel_sub.unsubscribe()
        if self._service is not None:
            with contextlib.suppress(Exception):
                await self._service.stop()
            self._service = None
        self._runners.clear()
        with contextlib.suppress(Exception):
            await self._nc.flush()

    async def __aenter__(self) -> StreamingService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

"""The requesting side: send a request, yield its reply chunks in order, cancel on early exit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Self

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from arc_common.envelope import (
    ACK_ACCEPTED,
    ACK_ASKED,
    ACK_HEADER,
    SERVER_HEADER,
    headers_for,
    tracing_enabled,
)
from arc_common.errors import ArcError, Busy, Internal, Timeout, error_for
from arc_common.wire import REPLY_SCHEMAS, Cancel, ReplyChunk, Request, encode

log = logging.getLogger(__name__)

_chunk_decoder = msgspec.msgpack.Decoder(ReplyChunk)
tracer = trace.get_tracer("arc_common.streaming")
_NO_RESPONDERS = "503"
# How long a stream waits for its first chunk, and then between chunks, unless told.
DEFAULT_CHUNK_TIMEOUT_S = 5.0


class _Inbox:
    """Messages of one stream: a deque and at most one waiter. Lighter than asyncio.Queue,
    which matters at one wake-up per chunk."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Msg] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def push(self, msg: Msg) -> None:
        self._items.append(msg)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def pop(self, timeout: float) -> Msg:  # noqa: ASYNC109 - a timer, not a task per wait
        if self._items:
            return self._items.popleft()
        if timeout <= 0:
            raise TimeoutError
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return self._items.popleft()


class _ServerGone(Exception):
    """The instance serving a stream answers its ping with "no responders"."""


class _Reconnected(Exception):
    """This client's NATS connection was lost and made again while the stream was open."""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class StreamingClient:
    """Owns one wildcard inbox subscription shared by every stream it opens, so a request
    costs one publish rather than a subscribe/unsubscribe pair."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = ""
        self._sub: Subscription | None = None
        self._streams: dict[str, ReplyStream] = {}
        self._ids = itertools.count()
        # Cancels published without the caller awaiting them; kept here so none is collected
        # mid-flight, and awaited by `close`.
        self._background: set[asyncio.Task[None]] = set()

    @property
    def nc(self) -> Client:
        """The connection the streams use, for the fire-and-forget messages that go with them
        (`brain.commit`)."""
        return self._nc

    async def start(self) -> None:
        if self._sub is not None:
            return
        self._prefix = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(f"{self._prefix}.*", cb=self._dispatch)

    async def close(self) -> None:
        for stream in list(self._streams.values()):
            await stream.aclose()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _dispatch(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) + 1 :]
        stream = self._streams.get(token)
        if stream is not None:
            stream._inbox.push(msg)

    def stream(
        self,
        subject: str,
        request: Request,
        *,
        cancel_subject: str,
        first_chunk_timeout: float = DEFAULT_CHUNK_TIMEOUT_S,
        idle_timeout: float = DEFAULT_CHUNK_TIMEOUT_S,
        deadline: float | None = None,
        probe_after: float | None = 0.5,
    ) -> ReplyStream:
        """Open a streamed turn. Iterate the result (ideally inside `async with`); leaving early
        publishes `cancel_subject` so the server stops working for nobody.

        `first_chunk_timeout` bounds the wait for the first message, `idle_timeout` the gap
        between later ones, and `deadline` (seconds from now) the whole stream. After every
        `probe_after` seconds of silence, the server that sent the last chunk is pinged
        (`arc-server` header); if it has gone, the stream raises `Busy` then, not at its idle
        timeout. None: never ping.
        """
        if self._sub is None:
            raise RuntimeError("StreamingClient.start() was not awaited")
        token = str(next(self._ids))
        stream = ReplyStream(
            client=self,
            token=token,
            subject=subject,
            reply=f"{self._prefix}.{token}",
            request=request,
            cancel_subject=cancel_subject,
            first_chunk_timeout=first_chunk_timeout,
            idle_timeout=idle_timeout,
            deadline=None if deadline is None else time.monotonic() + deadline,
            probe_after=probe_after,
        )
        self._streams[token] = stream
        return stream


class ClosingStream:
    """A turn's chunks read inside `async with`: leaving the block, finished or not, closes
    the stream, so a server still answering is told to stop. Shared by `ReplyStream` and
    the in-process stream, which must leave a turn the same way."""

    async def aclose(self) -> None:
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _client_span(request: Request, subject: str) -> Span | None:
    """The CLIENT span of one streamed turn (`brain.request`, `tts.request`), a child of the
    caller's current span; None while tracing is off, so an untraced call pays nothing."""
    if not tracing_enabled():
        return None
    return tracer.start_span(
        request.schema.partition("/")[0],
        kind=SpanKind.CLIENT,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "arc.turn_id": request.turn_id,
        },
    )


# No generated repr: the request holds what the person said.
@dataclass(eq=False, kw_only=True, repr=False)
class ReplyStream(ClosingStream):
    """The chunks of one turn's reply, in order; the terminal `end` stops iteration, a terminal
    `error` raises the typed error the server reported."""

    client: StreamingClient
    token: str
    subject: str
    reply: str
    request: Request
    cancel_subject: str
    first_chunk_timeout: float
    idle_timeout: float
    deadline: float | None
    probe_after: float | None = None
    end: ReplyChunk | None = field(default=None, init=False)
    # The `$SRV.PING` subject of the instance serving the turn, once a chunk named it.
    _server: str | None = field(default=None, init=False)
    _inbox: _Inbox = field(default_factory=_Inbox, init=False)
    _sent: bool = field(default=False, init=False)
    _done: bool = field(default=False, init=False)
    _next_seq: int = field(default=0, init=False)
    # The connection's reconnect count when the request went out (see _next_message).
    _reconnects: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.turn_id = self.request.turn_id
        # Opened with the stream, under the caller's current span: its context travels in the
        # request's `traceparent`, so the server's span is its child.
        self._span = _client_span(self.request, self.subject)

    async def _send(self) -> None:
        self._sent = True
        self._reconnects = self.client._nc.stats["reconnects"]
        headers = headers_for(
            self.request.schema,
            ctx=None if self._span is None else trace.set_span_in_context(self._span),
        )
        if self.probe_after is not None:
            # The instance that takes the turn names itself at once, so that it can be
            # pinged even before its first chunk.
            headers[ACK_HEADER] = ACK_ASKED
        await self.client._nc.publish(
            self.subject, encode(self.request), reply=self.reply, headers=headers
        )

    async def __anext__(self) -> ReplyChunk:
        if self._done:
            raise StopAsyncIteration
        if not self._sent:
            await self._send()
        timeout = self.first_chunk_timeout if self._next_seq == 0 else self.idle_timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
        try:
            msg = await self._next_message(timeout)
        except TimeoutError:
            self._span_failed("timeout")
            await self._abandon()
            raise Timeout(f"no reply chunk on {self.subject} within {timeout:.2f}s") from None
        except _ServerGone as gone:
            self._span_failed("busy")
            await self._abandon()
            raise Busy(
                f"the server of turn {self.turn_id} on {self.subject} has gone ({gone})"
            ) from None
        except _Reconnected:
            self._span_failed("busy")
            await self._abandon()
            raise Busy(
                f"the NATS connection of turn {self.turn_id} on {self.subject} was lost "
                "mid-stream: chunks sent meanwhile are gone"
            ) from None
        chunk = self._decode(msg)
        if chunk.terminal:
            if chunk.kind == "error":
                body = chunk.error
                self._span_failed(body.code if body else "internal")
                self._finish()
                raise error_for(body.code, body.message) if body else Internal("error without body")
            if chunk.reason and self._span is not None:
                self._span.set_attribute("arc.end_reason", chunk.reason)
            self._finish()
            self.end = chunk
            raise StopAsyncIteration
        if self._next_seq == 1 and self._span is not None:
            self._span.add_event("first_chunk")
        return chunk

    async def _next_message(self, timeout: float) -> Msg:  # noqa: ASYNC109 - see _Inbox.pop
        """The next message within `timeout`; while it is silent, the known server is pinged
        every `probe_after`. NATS answers a ping to an instance whose connection closed (its
        process died) with "no responders" at once; a ping that is merely slow says nothing,
        and the timeout still bounds the wait. A stream that falls silent after this client's
        connection was lost and made again is given up at once: NATS keeps nothing for a
        subscriber that is away, so the chunks sent meanwhile will never come, and the server
        (alive, answering pings) would leave it waiting out the idle timeout (the chaos
        suite's NATS restart stalled an answer 10 s that way)."""
        until = time.monotonic() + timeout
        while True:
            remaining = until - time.monotonic()
            probe, server = self.probe_after, self._server
            if server is None or probe is None or remaining <= probe:
                msg = await self._inbox.pop(remaining)
            else:
                try:
                    msg = await self._inbox.pop(probe)
                except TimeoutError:
                    if self._reconnected:
                        raise _Reconnected from None
                    await self._ping(server, until)
                    continue
            if not self._acknowledges(msg):
                return msg

    async def _ping(self, server: str, until: float) -> None:
        try:
            await self.client._nc.request(
                server, b"", timeout=min(1.0, max(until - time.monotonic(), 0.01))
            )
        except nats.errors.NoRespondersError:
            if self._reconnected:
                # Asked across this client's reconnect: the server may not be back yet.
                raise _Reconnected from None
            raise _ServerGone(server) from None
        except Exception as exc:  # slow, refused or reconnecting: nothing learned
            log.debug("ping of %s: %r", server, exc)

    @property
    def _reconnected(self) -> bool:
        """Whether this client's NATS connection was lost and made again since the request."""
        return bool(self.client._nc.stats["reconnects"] != self._reconnects)

    def _acknowledges(self, msg: Msg) -> bool:
        """Whether `msg` is the serving instance's acknowledgement (no chunk: it only names
        the instance to ping)."""
        headers = msg.headers
        if not headers or headers.get(ACK_HEADER) != ACK_ACCEPTED:
            return False
        self._server = headers.get(SERVER_HEADER, self._server)
        return True

    def _span_failed(self, code: str) -> None:
        if self._span is not None and self._span.is_recording():
            self._span.set_status(Status(StatusCode.ERROR, code))
            self._span.set_attribute("arc.error_code", code)

    def _decode(self, msg: Msg) -> ReplyChunk:
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            self._span_failed("busy")
            self._finish()
            raise Busy(f"no worker is serving {self.subject}")
        try:
            chunk = _chunk_decoder.decode(msg.data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            self._fail_protocol()
            raise Internal(f"undecodable reply chunk on {self.subject}: {exc}") from exc
        if chunk.seq != self._next_seq:
            self._fail_protocol()
            raise Internal(f"reply chunk seq {chunk.seq} where {self._next_seq} was expected")
        if chunk.turn_id != self.turn_id:
            self._fail_protocol()
            raise Internal(f"reply chunk for turn {chunk.turn_id!r}, expected {self.turn_id!r}")
        self._next_seq += 1
        if msg.headers:
            self._server = msg.headers.get(SERVER_HEADER, self._server)
        return chunk

    def _fail_protocol(self) -> None:
        # The stream can no longer be trusted; tell the server to stop, without awaiting here.
        self._span_failed("internal")
        self._finish()
        task = asyncio.get_running_loop().create_task(self._publish_cancel())
        self.client._background.add(task)
        task.add_done_callback(self.client._background.discard)

    def _finish(self) -> None:
        self._done = True
        self.client._streams.pop(self.token, None)
        span, self._span = self._span, None
        if span is not None:
            span.end()

    async def _publish_cancel(self) -> None:
        try:
            await self.client._nc.publish(
                self.cancel_subject,
                encode(Cancel(turn_id=self.turn_id)),
                headers=headers_for(Cancel.schema),
            )
        except Exception as exc:
            # The server then works on until its own deadline; worth knowing, not failing for.
            log.warning(
                "cancel of turn %s on %s could not be published: %r",
                self.turn_id, self.cancel_subject, exc,
            )  # fmt: skip

    async def _abandon(self) -> None:
        was_open = not self._done and self._sent
        if was_open and self._span is not None:
            # The requester left before the end (barge-in, hang-up, timeout): the trace shows
            # where the turn was cut off.
            self._span.add_event("cancel", {"arc.chunks_received": self._next_seq})
        self._finish()
        if was_open:
            await self._publish_cancel()

    async def aclose(self) -> None:
        """Stop reading; if the server has not finished, it is told to cancel the turn."""
        await self._abandon()

    async def collect(self) -> list[ReplyChunk]:
        """Every non-terminal chunk; convenient for callers that do not stream."""
        chunks: list[ReplyChunk] = []
        async with self:
            async for chunk in self:
                chunks.append(chunk)
        return chunks


def reply_schema(request: Request) -> str:
    return REPLY_SCHEMAS.get(request.schema, "reply/1")


__all__ = ["ArcError", "ReplyStream", "StreamingClient"]

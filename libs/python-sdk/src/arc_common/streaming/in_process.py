"""The same streamed turns as `StreamingClient`, served by endpoint handlers in this process.

Only for measuring what the mesh's transport costs: the benchmark runs one voice pipeline
over NATS and one with the brain's and the TTS's own handlers called directly, interleaved,
and reports the ratio. Nothing in a service uses it; services talk over NATS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Required, TypedDict, Unpack

from nats.aio.client import Client

from arc_common.errors import ArcError, Internal, Timeout
from arc_common.streaming.client import DEFAULT_CHUNK_TIMEOUT_S, ClosingStream
from arc_common.streaming.server import Chunk, StreamingEndpoint, TurnContext
from arc_common.wire import ReplyChunk, Request


class ChunkStream(Protocol):
    """One turn's reply chunks: what the plugins read, from NATS or in process."""

    def __aiter__(self) -> AsyncIterator[ReplyChunk]: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class StreamOptions(TypedDict, total=False):
    """The keyword options every `stream` takes, as `StreamingClient.stream` explains them."""

    cancel_subject: Required[str]
    first_chunk_timeout: float
    idle_timeout: float
    deadline: float | None


class TurnStreams(Protocol):
    """What opens streamed turns: `StreamingClient` (NATS) or `InProcessClient`."""

    @property
    def nc(self) -> Client: ...

    def stream(
        self, subject: str, request: Request, **options: Unpack[StreamOptions]
    ) -> ChunkStream: ...


class InProcessClient:
    def __init__(self, nc: Client, endpoints: Sequence[StreamingEndpoint[Any]]) -> None:
        self._nc = nc
        self._endpoints = {e.subject: e for e in endpoints}

    @property
    def nc(self) -> Client:
        return self._nc

    def stream(
        self, subject: str, request: Request, **options: Unpack[StreamOptions]
    ) -> InProcessStream:
        endpoint = self._endpoints.get(subject)
        if endpoint is None:
            raise Internal(f"no in-process endpoint for {subject}")
        return InProcessStream(
            endpoint,
            request,
            options.get("first_chunk_timeout", DEFAULT_CHUNK_TIMEOUT_S),
            options.get("idle_timeout", DEFAULT_CHUNK_TIMEOUT_S),
        )


# No generated repr: the request holds what the person said.
@dataclass(eq=False, repr=False)
class InProcessStream(ClosingStream):
    endpoint: StreamingEndpoint[Any]
    request: Request
    first_chunk_timeout: float
    idle_timeout: float
    _chunks: AsyncIterator[Chunk] | None = field(default=None, init=False)
    _closed: bool = field(default=False, init=False)
    _seq: int = field(default=0, init=False)

    async def __anext__(self) -> ReplyChunk:
        if self._closed:
            raise StopAsyncIteration
        if self._chunks is None:
            self.request.check()  # the server validates every request: so does this path
            ctx = TurnContext(subject=self.endpoint.subject, received_at=time.monotonic())
            self._chunks = self.endpoint.handler(self.request, ctx)
        timeout = self.first_chunk_timeout if self._seq == 0 else self.idle_timeout
        try:
            async with asyncio.timeout(timeout):
                item = await anext(self._chunks)
        except TimeoutError:
            await self.aclose()
            raise Timeout(f"no chunk from {self.endpoint.name} within {timeout:.2f}s") from None
        except (StopAsyncIteration, ArcError):
            raise
        except Exception as exc:
            raise Internal(f"{type(exc).__name__}: {exc}") from exc
        chunk = item.to_reply(self.request.turn_id, self._seq)
        self._seq += 1
        return chunk

    async def aclose(self) -> None:
        """Leaving early closes the handler, as `*.cancel` cancels a served turn."""
        self._closed = True
        chunks, self._chunks = self._chunks, None
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()

"""`InProcessClient`: the benchmark's stand-in for the mesh must hand the voice pipeline the
same reply chunks a served turn sends, and leave a turn the way a NATS stream does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from arc_common.errors import BadRequest, Internal
from arc_common.streaming import Chunk, InProcessClient, TurnContext
from arc_common.wire import BrainRequest, ReplyChunk
from nats.aio.client import Client

from tests.unit.common.support import endpoint

pytestmark = pytest.mark.unit

SUBJECT = "arc.brain.request"


def _client(handler: Any) -> InProcessClient:
    # The in-process path never touches the connection; it is only handed on.
    return InProcessClient(cast(Client, None), [endpoint(handler, subject=SUBJECT)])


def _request(text: str = "hi") -> BrainRequest:
    return BrainRequest(v=1, session_id="s", turn_id="t-1", user_id="u", text=text)


def test_a_chunk_becomes_the_reply_chunk_the_server_sends() -> None:
    audio = Chunk(kind="audio", pcm=b"\x00\x01", sample_rate=24000).to_reply("t-9", 3)
    assert audio == ReplyChunk(
        v=1, turn_id="t-9", seq=3, kind="audio", pcm=b"\x00\x01", sample_rate=24000
    )
    delta = Chunk(kind="delta", text="It is nine.").to_reply("t-9", 0)
    assert (delta.kind, delta.text, delta.pcm, delta.seq) == ("delta", "It is nine.", None, 0)


async def test_chunks_are_numbered_for_the_turn_and_the_handler_closed_on_exit() -> None:
    closed = False

    async def handler(req: BrainRequest, ctx: TurnContext) -> AsyncIterator[Chunk]:
        nonlocal closed
        assert ctx.subject == SUBJECT
        try:
            for word in ("one", "two", "three"):
                yield Chunk(kind="delta", text=word)
        finally:
            closed = True

    stream = _client(handler).stream(SUBJECT, _request(), cancel_subject="arc.brain.cancel")
    async with stream:
        first = await anext(stream)
        second = await anext(stream)
    assert [(c.turn_id, c.seq, c.text) for c in (first, second)] == [
        ("t-1", 0, "one"),
        ("t-1", 1, "two"),
    ]
    assert closed  # left early: the handler is stopped, as `*.cancel` stops a served turn
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_the_request_is_checked_and_handler_failures_are_typed() -> None:
    async def failing(req: BrainRequest, ctx: TurnContext) -> AsyncIterator[Chunk]:
        raise RuntimeError("boom")
        yield Chunk(kind="delta")  # pragma: no cover - makes this an async generator

    client = _client(failing)
    with pytest.raises(BadRequest):
        await anext(client.stream(SUBJECT, _request("  "), cancel_subject="c"))
    with pytest.raises(Internal, match="RuntimeError: boom"):
        await anext(client.stream(SUBJECT, _request(), cancel_subject="c"))
    with pytest.raises(Internal, match="no in-process endpoint"):
        client.stream("arc.nowhere", _request(), cancel_subject="c")

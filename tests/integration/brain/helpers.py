"""Small helpers shared by the brain's integration tests."""

from __future__ import annotations

import uuid

from arc_common.streaming import StreamingClient
from arc_common.subjects import BRAIN_CANCEL, BRAIN_REQUEST, prefixed
from arc_common.wire import BrainRequest, ReplyChunk


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def request(
    text: str, *, session_id: str, user_id: str, turn_id: str | None = None, **extra: object
) -> BrainRequest:
    return BrainRequest(
        v=1,
        session_id=session_id,
        turn_id=turn_id or new_id("turn"),
        user_id=user_id,
        text=text,
        **extra,  # type: ignore[arg-type]
    )


async def ask(
    client: StreamingClient, prefix: str, req: BrainRequest, **timeouts: float
) -> list[ReplyChunk]:
    stream = client.stream(
        prefixed(prefix, BRAIN_REQUEST),
        req,
        cancel_subject=prefixed(prefix, BRAIN_CANCEL),
        **timeouts,
    )
    return await stream.collect()


async def answer_text(
    client: StreamingClient, prefix: str, text: str, *, session_id: str, user_id: str
) -> str:
    chunks = await ask(client, prefix, request(text, session_id=session_id, user_id=user_id))
    return "".join(c.text or "" for c in chunks)

"""NATS entry points: `brain.request` (queue group `brain`) and `brain.cancel`, per the contract,
`brain.commit` for tentative turns, and, request/reply in queue group `brain`,
`brain.session.delete` to forget one session's history and `brain.truncate` to keep only what
the person heard of an interrupted answer.

The streaming helper owns seq numbers, the terminal message, validation errors, deadlines and
cancellation; this handler only turns the brain's chunks into `delta` chunks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import msgspec
from arc_common.envelope import trace_context_from
from arc_common.errors import ArcError, ErrorCode
from arc_common.request_reply import answer
from arc_common.streaming import Chunk, StreamingEndpoint, TurnContext
from arc_common.subjects import (
    BRAIN_CANCEL,
    BRAIN_COMMIT,
    BRAIN_QUEUE,
    BRAIN_REQUEST,
    BRAIN_SESSION_DELETE,
    BRAIN_TRUNCATE,
    prefixed,
)
from arc_common.tracing import attached
from arc_common.wire import (
    BrainRequest,
    Cancel,
    Commit,
    SessionDelete,
    SessionDeleteReply,
    TurnTruncate,
    TurnTruncateReply,
)
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from arc_brain.brain import Brain, TurnInput
from arc_brain.memory import MemoryUnavailable

log = logging.getLogger(__name__)
_commit_decoder = msgspec.msgpack.Decoder(Commit)
_cancel_decoder = msgspec.msgpack.Decoder(Cancel)
# A memory outage is `busy` to a request/reply caller: the same request succeeds once
# Postgres is back.
_CODES: dict[type[ArcError], ErrorCode] = {MemoryUnavailable: ErrorCode.BUSY}


def brain_endpoint(
    brain: Brain, *, subject_prefix: str = "", max_concurrent_turns: int = 64
) -> StreamingEndpoint[BrainRequest]:
    async def handle(req: BrainRequest, ctx: TurnContext) -> AsyncIterator[Chunk]:
        async for text in brain.reply(TurnInput.of(req)):
            yield Chunk(kind="delta", text=text)

    return StreamingEndpoint(
        name="brain-request",
        subject=prefixed(subject_prefix, BRAIN_REQUEST),
        queue_group=BRAIN_QUEUE,
        cancel_subject=prefixed(subject_prefix, BRAIN_CANCEL),
        request_type=BrainRequest,
        handler=handle,
        max_concurrent_turns=max_concurrent_turns,
    )


async def subscribe_verdicts(
    nc: Client, brain: Brain, *, subject_prefix: str = ""
) -> list[Subscription]:
    """Every brain hears every verdict (no queue group): only the one holding the turn acts.

    `brain.cancel` of a turn still streaming is the streaming endpoint's business; here it
    discards a tentative turn that had already finished. Both are fire-and-forget messages, so
    an undecodable one is logged and dropped.

    `brain.session.delete` and `brain.truncate` are subscribed here too (in the queue group:
    one brain answers), since this is what the runtime calls for the brain's plain
    subscriptions.
    """

    async def on_commit(msg: Msg) -> None:
        try:
            commit = _commit_decoder.decode(msg.data)
        except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
            log.warning("undecodable brain.commit dropped: %s", exc)
            return
        # The commit's `traceparent` is the voice turn's: the held turn's record, and the
        # outbox event written with it, join that trace.
        with attached(trace_context_from(msg.headers)):
            known = brain.commit(commit.turn_id)
        if not known:
            log.debug("commit for a turn this brain does not hold: %s", commit.turn_id)

    async def on_cancel(msg: Msg) -> None:
        try:
            cancel = _cancel_decoder.decode(msg.data)
        except (msgspec.MsgspecError, UnicodeDecodeError):
            return  # the streaming endpoint already logs undecodable cancels
        brain.discard(cancel.turn_id)

    async def on_session_delete(msg: Msg) -> None:
        await answer_session_delete(nc, brain, msg)

    async def on_truncate(msg: Msg) -> None:
        await answer_truncate(nc, brain, msg)

    return [
        await nc.subscribe(prefixed(subject_prefix, BRAIN_COMMIT), cb=on_commit),
        await nc.subscribe(prefixed(subject_prefix, BRAIN_CANCEL), cb=on_cancel),
        # Not verdicts, but subscribed with them so every brain the runtime starts answers
        # them; in the queue group so one brain acts and one reply comes back.
        await nc.subscribe(
            prefixed(subject_prefix, BRAIN_SESSION_DELETE),
            queue=BRAIN_QUEUE,
            cb=on_session_delete,
        ),
        await nc.subscribe(
            prefixed(subject_prefix, BRAIN_TRUNCATE), queue=BRAIN_QUEUE, cb=on_truncate
        ),
    ]


async def answer_session_delete(nc: Client, brain: Brain, msg: Msg) -> None:
    """`brain.session.delete`: the session's turns are deleted and the reply says how many."""

    async def delete(request: SessionDelete) -> SessionDeleteReply:
        turns = await brain.store.delete_session(request.session_id)
        log.info("deleted session history", extra={"session_id": request.session_id})
        return SessionDeleteReply(v=1, deleted_turns=turns)

    await answer(
        nc, msg, SessionDelete, delete, lambda e: SessionDeleteReply(v=1, error=e), codes=_CODES
    )


async def answer_truncate(nc: Client, brain: Brain, msg: Msg) -> None:
    """`brain.truncate`: the turn's answer becomes what the person heard of it."""

    async def truncate(request: TurnTruncate) -> TurnTruncateReply:
        await brain.truncate(
            request.session_id, request.turn_id, request.heard, user_id=request.user_id
        )
        return TurnTruncateReply(v=1, truncated=True)

    await answer(
        nc, msg, TurnTruncate, truncate, lambda e: TurnTruncateReply(v=1, error=e), codes=_CODES
    )

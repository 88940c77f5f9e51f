"""NATS entry points: `brain.request` (queue group `brain`) and `brain.cancel`, per the contract,
and `brain.commit` for tentative turns.

The streaming helper owns seq numbers, the terminal message, validation errors, deadlines and
cancellation; this handler only turns the brain's chunks into `delta` chunks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import msgspec
from arc_common.envelope import trace_context_from
from arc_common.streaming import Chunk, StreamingEndpoint, TurnContext
from arc_common.subjects import BRAIN_CANCEL, BRAIN_COMMIT, BRAIN_QUEUE, BRAIN_REQUEST, prefixed
from arc_common.tracing import attached
from arc_common.wire import BrainRequest, Cancel, Commit
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from arc_brain.brain import Brain, TurnInput

log = logging.getLogger(__name__)
_commit_decoder = msgspec.msgpack.Decoder(Commit)
_cancel_decoder = msgspec.msgpack.Decoder(Cancel)


def brain_endpoint(
    brain: Brain, *, subject_prefix: str = "", max_concurrent_turns: int = 64
) -> StreamingEndpoint[BrainRequest]:
    async def handle(req: BrainRequest, ctx: TurnContext) -> AsyncIterator[Chunk]:
        turn = TurnInput(
            session_id=req.session_id,
            turn_id=req.turn_id,
            user_id=req.user_id,
            text=req.text,
            room=req.room,
            locale=req.locale,
            tentative=req.tentative,
        )
        async for text in brain.reply(turn):
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

    return [
        await nc.subscribe(prefixed(subject_prefix, BRAIN_COMMIT), cb=on_commit),
        await nc.subscribe(prefixed(subject_prefix, BRAIN_CANCEL), cb=on_cancel),
    ]

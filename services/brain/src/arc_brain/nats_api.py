"""NATS entry point: `brain.request` (queue group `brain`) and `brain.cancel`, per the contract.

The streaming helper owns seq numbers, the terminal message, validation errors, deadlines and
cancellation; this handler only turns the brain's chunks into `delta` chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from arc_common.streaming import Chunk, StreamingEndpoint, TurnContext
from arc_common.subjects import BRAIN_CANCEL, BRAIN_QUEUE, BRAIN_REQUEST, prefixed
from arc_common.wire import BrainRequest

from arc_brain.brain import Brain, TurnInput


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

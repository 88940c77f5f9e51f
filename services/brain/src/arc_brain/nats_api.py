"""NATS entry points: `brain.request` (queue group `brain`) and `brain.cancel`, per the contract,
`brain.commit` for tentative turns, and `brain.session.delete` (request/reply, queue group
`brain`) to forget one session's history.

The streaming helper owns seq numbers, the terminal message, validation errors, deadlines and
cancellation; this handler only turns the brain's chunks into `delta` chunks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import msgspec
from arc_common.envelope import headers_for, schema_of, trace_context_from
from arc_common.errors import ArcError, BadRequest, Busy
from arc_common.streaming import Chunk, StreamingEndpoint, TurnContext
from arc_common.subjects import (
    BRAIN_CANCEL,
    BRAIN_COMMIT,
    BRAIN_QUEUE,
    BRAIN_REQUEST,
    BRAIN_SESSION_DELETE,
    prefixed,
)
from arc_common.tracing import attached
from arc_common.wire import (
    BrainRequest,
    Cancel,
    Commit,
    ErrorBody,
    SessionDelete,
    SessionDeleteReply,
    encode,
)
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from arc_brain.brain import Brain, TurnInput
from arc_brain.memory import MemoryUnavailable

log = logging.getLogger(__name__)
_commit_decoder = msgspec.msgpack.Decoder(Commit)
_cancel_decoder = msgspec.msgpack.Decoder(Cancel)
_delete_decoder = msgspec.msgpack.Decoder(SessionDelete)
_DELETE_REPLY_HEADERS = headers_for(SessionDeleteReply.schema)


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

    `brain.session.delete` is subscribed here too (in the queue group: one brain answers),
    since this is what the runtime calls for the brain's plain subscriptions.
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

    return [
        await nc.subscribe(prefixed(subject_prefix, BRAIN_COMMIT), cb=on_commit),
        await nc.subscribe(prefixed(subject_prefix, BRAIN_CANCEL), cb=on_cancel),
        # Not a verdict, but subscribed with them so every brain the runtime starts answers
        # it; in the queue group so one brain deletes and one reply comes back.
        await nc.subscribe(
            prefixed(subject_prefix, BRAIN_SESSION_DELETE),
            queue=BRAIN_QUEUE,
            cb=on_session_delete,
        ),
    ]


def decode_session_delete(headers: dict[str, str] | None, data: bytes) -> SessionDelete:
    schema = schema_of(headers)
    if schema is not None and schema != SessionDelete.schema:
        raise BadRequest(f"arc-schema {schema!r} is not {SessionDelete.schema!r}")
    try:
        return _delete_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid {SessionDelete.schema}: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise BadRequest(f"{SessionDelete.schema} is not a MessagePack map") from None


async def answer_session_delete(nc: Client, brain: Brain, msg: Msg) -> None:
    """`brain.session.delete`: the session's turns are deleted and the reply says how many;
    bad input and a memory outage are answered with the contract's error codes (an outage is
    `busy`: the same request succeeds once Postgres is back)."""
    reply: SessionDeleteReply
    try:
        request = decode_session_delete(msg.headers, msg.data)
        with attached(trace_context_from(msg.headers)):
            turns = await brain.store.delete_session(request.session_id)
        log.info("deleted session history", extra={"session_id": request.session_id})
        reply = SessionDeleteReply(v=1, deleted_turns=turns)
    except MemoryUnavailable as exc:
        reply = SessionDeleteReply(v=1, error=ErrorBody(code=Busy.code.value, message=exc.message))
    except ArcError as exc:
        log.warning("brain.session.delete refused: %s", exc.message)
        reply = SessionDeleteReply(v=1, error=ErrorBody(code=exc.code.value, message=exc.message))
    except Exception as exc:
        # Answered all the same, so the caller is not left waiting for its timeout.
        log.exception("brain.session.delete failed")
        message = f"{type(exc).__name__}: could not delete the session's history"
        reply = SessionDeleteReply(v=1, error=ErrorBody(code="internal", message=message))
    if msg.reply:
        await nc.publish(msg.reply, encode(reply), headers=_DELETE_REPLY_HEADERS)

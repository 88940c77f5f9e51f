"""What the voice worker asks of the brain about conversation history, which the brain alone
writes: delete a session's turns (`brain.session.delete`, for an operator) and cut an
interrupted answer down to what the person heard (`brain.truncate`). Both are request/reply
in the brain's queue group; the brain's reply errors come back as the typed errors they name.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
import nats.errors
from arc_common import subjects
from arc_common.envelope import headers_for
from arc_common.errors import ArcError, Busy, Internal, Timeout, error_for
from arc_common.wire import (
    ErrorBody,
    SessionDelete,
    SessionDeleteReply,
    TurnTruncate,
    TurnTruncateReply,
    encode,
)
from nats.aio.client import Client
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

_Reply = TypeVar("_Reply", SessionDeleteReply, TurnTruncateReply)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ArcError) and exc.retryable


class BrainHistory:
    def __init__(
        self,
        nc: Client,
        *,
        subject_prefix: str = "",
        timeout_s: float = 5.0,
        truncate_retry_s: float = 10.0,
    ) -> None:
        self._nc = nc
        self._prefix = subject_prefix
        self._timeout = timeout_s
        self._truncate_retry_s = truncate_retry_s

    async def _ask(
        self,
        subject: str,
        request: SessionDelete | TurnTruncate,
        reply_type: type[_Reply],
        undone: str,
    ) -> _Reply:
        try:
            msg = await self._nc.request(
                subjects.prefixed(self._prefix, subject),
                encode(request),
                timeout=self._timeout,
                headers=headers_for(request.schema),
            )
        except nats.errors.NoRespondersError:
            raise Busy(f"no brain is answering; {undone}") from None
        except nats.errors.TimeoutError:
            raise Timeout(f"the brain did not answer in time; {undone}") from None
        try:
            reply = msgspec.msgpack.decode(msg.data, type=reply_type)
        except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
            raise Internal(f"undecodable {reply_type.schema}: {exc}") from None
        error: ErrorBody | None = reply.error
        if error is not None:
            raise error_for(error.code, f"brain: {error.message}")
        return reply

    async def delete(self, session_id: str) -> int:
        """How many turns of the session went (0 for one the brain never stored)."""
        reply = await self._ask(
            subjects.BRAIN_SESSION_DELETE,
            SessionDelete(session_id=session_id),
            SessionDeleteReply,
            "the session was not deleted",
        )
        if reply.deleted_turns is None:
            raise Internal(f"{SessionDeleteReply.schema} without deleted_turns")
        return reply.deleted_turns

    async def truncate(self, session_id: str, turn_id: str, user_id: str, heard: str) -> None:
        """History keeps only `heard` of the turn's answer. Retried while the brain says a
        retry can help (memory down, no brain answering) for `truncate_retry_s`: a brain
        restarting or a short database outage does not leave words the person never heard
        in the record; a longer one raises, and the brain's record keeps what it generated."""
        request = TurnTruncate(session_id=session_id, turn_id=turn_id, user_id=user_id, heard=heard)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_delay(self._truncate_retry_s),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            reraise=True,
        ):
            with attempt:
                reply = await self._ask(
                    subjects.BRAIN_TRUNCATE,
                    request,
                    TurnTruncateReply,
                    "the interrupted answer was not truncated",
                )
        if not reply.truncated:
            raise Internal(f"{TurnTruncateReply.schema} without truncated")

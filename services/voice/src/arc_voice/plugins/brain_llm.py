"""`NatsBrainLLM`: the brain service as a LiveKit Agents LLM.

The brain keeps each user's history itself, so a turn sends only the person's latest words;
the streamed deltas come back as chat chunks. Closing the stream early (barge-in, hang-up)
leaves the reply stream, which publishes `brain.cancel`.

Turns are tentative: the session may start one on a guess (preemptive generation) and throw it
away when the person goes on speaking. The brain stores a turn only once `resolve` sees its
answer start playing (`brain.commit`); the others are cancelled, which also discards them if
they had already finished.

The person is never left in silence by the brain: when its first words are slow (a busy
language model, a brain restarting), the stream says `hold_on_text` after `hold_on_after_s`
and goes on waiting; when no answer can come (no brain serving, a timeout, an error, a brain
that died mid-turn), a refused turn is tried once more (another replica of the queue group
may take it) and then the stream ends with `apology` instead of an error: the framework would
otherwise retry the dead brain for tens of seconds and then give up on the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arc_common import subjects
from arc_common.envelope import headers_for
from arc_common.errors import ArcError, BadRequest, ErrorCode
from arc_common.streaming import TurnStreams
from arc_common.tracing import attached
from arc_common.wire import BRAIN_TEXT_MAX, BrainRequest, Cancel, Commit, encode
from livekit.agents import APIConnectOptions, llm
from livekit.agents.llm import ChatChunk, ChatContext, ChoiceDelta, Tool
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from opentelemetry import context as otel_context

from arc_voice import metrics
from arc_voice.plugins.errors import api_error

log = logging.getLogger(__name__)


@dataclass
class BrainOptions:
    session_id: str
    user_id: str
    room: str | None = None
    locale: str | None = None
    subject_prefix: str = ""
    first_delta_timeout_s: float = 10.0
    idle_timeout_s: float = 15.0
    # Ask the brain to hold each turn until it is committed (see the module's docstring).
    tentative: bool = True
    # The trace context a request's span is opened under (the person's turn), if any.
    trace_context: Callable[[], otel_context.Context | None] | None = None
    # Said when the brain's first words take longer than this (None: never).
    hold_on_after_s: float | None = 2.0
    hold_on_text: str = "One moment."
    # Said instead of an answer that cannot come (empty: the error goes to the framework).
    apology: str = "Sorry, I can't answer that right now. Please ask me again in a moment."


@dataclass
class BrainTurn:
    """What one brain turn asked and answered, with its timings (monotonic seconds)."""

    turn_id: str
    user_text: str
    started_at: float
    # The chat item of the person's words this turn answers: the framework adds that item to
    # the conversation only for the generation it keeps.
    user_item_id: str | None = None
    verdict: bool | None = None  # True committed, False discarded, None not decided yet
    preemptive: bool | None = None  # kept, and started before the turn was confirmed
    first_delta_at: float | None = None
    ended_at: float | None = None
    deltas: list[str] = field(default_factory=list)
    completed: bool = False

    @property
    def answer(self) -> str:
        return "".join(self.deltas)


def last_user_message(chat_ctx: ChatContext) -> tuple[str, str]:
    """(item id of the person's latest words, everything they said since the agent last spoke).

    A turn the agent never answered aloud belongs to the next one: when the person pauses
    ("I would like to know, um …") long enough for the turn to be taken, then goes on before
    any answer was heard ("… what time it is"), the session holds two user messages in a row,
    and the brain is asked about the whole sentence, not its second half."""
    texts: list[str] = []
    latest: str | None = None
    for item in reversed(chat_ctx.items):
        if item.type != "message":
            continue
        if item.role == "assistant":
            break
        if item.role == "user":
            text = (item.text_content or "").strip()
            if text:
                texts.append(text)
                latest = latest or item.id
    if latest is None:
        raise BadRequest("the chat context holds no user message to answer")
    return latest, " ".join(reversed(texts))


def joined_delta(previous: str, delta: str) -> str:
    """Deltas are whole sentences or clauses; keep a space between them so the transcript and
    the speech do not run words together."""
    if previous and not previous[-1].isspace() and not delta[0].isspace():
        return " " + delta
    return delta


class NatsBrainLLM(llm.LLM[None]):
    def __init__(self, client: TurnStreams, options: BrainOptions) -> None:
        super().__init__()
        self._client = client
        self._opts = options
        self.turns: list[BrainTurn] = []

    async def resolve(self, user_item_id: str) -> BrainTurn | None:
        """The answer to `user_item_id` is being heard: commit its turn, and discard every
        earlier undecided one (guesses the session threw away, answers cut off before a word
        of them played). The kept turn, if any."""
        kept: BrainTurn | None = None
        for turn in self.turns:
            if turn.verdict is not None:
                continue
            if turn.user_item_id == user_item_id and kept is None:
                kept = turn
                turn.verdict = True
                await self._publish(subjects.BRAIN_COMMIT, Commit(turn_id=turn.turn_id))
            else:
                turn.verdict = False
                await self._publish(subjects.BRAIN_CANCEL, Cancel(turn_id=turn.turn_id))
        return kept

    async def _publish(self, subject: str, message: Commit | Cancel) -> None:
        if not self._opts.tentative:
            return
        await self._client.nc.publish(
            subjects.prefixed(self._opts.subject_prefix, subject),
            encode(message),
            headers=headers_for(message.schema),
        )

    @property
    def model(self) -> str:
        return "arc-brain"

    @property
    def provider(self) -> str:
        return "arc"

    def update_options(self, *, room: str | None = None, locale: str | None = None) -> None:
        if room is not None:
            self._opts.room = room
        if locale is not None:
            self._opts.locale = locale

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: list[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[Any] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> NatsBrainStream:
        return NatsBrainStream(
            self, client=self._client, opts=self._opts, chat_ctx=chat_ctx, conn_options=conn_options
        )


class NatsBrainStream(llm.LLMStream):
    def __init__(
        self,
        brain: NatsBrainLLM,
        *,
        client: TurnStreams,
        opts: BrainOptions,
        chat_ctx: ChatContext,
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(brain, chat_ctx=chat_ctx, tools=[], conn_options=conn_options)
        self._brain = brain
        self._client = client
        self._opts = opts

    async def _run(self) -> None:
        try:
            item_id, text = last_user_message(self._chat_ctx)
        except ArcError as exc:
            raise api_error(exc, service="brain") from exc
        text = text[:BRAIN_TEXT_MAX]
        said = _Said()
        hold_on = None
        if self._opts.hold_on_after_s is not None and self._opts.hold_on_text:
            hold_on = asyncio.get_running_loop().call_later(
                self._opts.hold_on_after_s, self._hold_on, said
            )
        try:
            try:
                await self._ask(item_id, text, said)
            except ArcError as exc:
                # Refused before a word (no brain serving, or a busy one): the queue group may
                # hand the same question to another replica.
                if not said.anything and exc.code is ErrorCode.BUSY:
                    await self._ask(item_id, text, said)
                else:
                    raise
        except ArcError as exc:
            if not self._opts.apology:
                raise api_error(exc, service="brain") from exc
            log.warning(
                "the brain gave no answer; apologising",
                extra={"code": exc.code.value, "session_id": self._opts.session_id},
            )
            metrics.BRAIN_STAND_INS.labels(kind="apology", reason=exc.code.value).inc()
            self._say(said, self._opts.apology)
        finally:
            if hold_on is not None:
                hold_on.cancel()

    def _hold_on(self, said: _Said) -> None:
        if not said.anything:
            metrics.BRAIN_STAND_INS.labels(kind="hold_on", reason="slow").inc()
            self._say(said, self._opts.hold_on_text)

    def _say(self, said: _Said, text: str) -> None:
        """A line of the voice worker's own in the answer's stream (not the brain's: the
        brain's turn record has only what the brain said)."""
        said.texts.append(joined_delta(said.texts[-1] if said.texts else "", text))
        self._event_ch.send_nowait(
            ChatChunk(
                id=f"arc-{uuid.uuid4().hex}",
                delta=ChoiceDelta(role="assistant", content=said.texts[-1]),
            )
        )

    async def _ask(self, item_id: str, text: str, said: _Said) -> None:
        # A fresh turn id per attempt: the brain refuses a turn id that is still in progress.
        turn = BrainTurn(
            turn_id=uuid.uuid4().hex,
            user_text=text,
            started_at=time.monotonic(),
            user_item_id=item_id,
        )
        self._brain.turns.append(turn)
        request = BrainRequest(
            v=1,
            session_id=self._opts.session_id,
            turn_id=turn.turn_id,
            user_id=self._opts.user_id,
            text=text,
            room=self._opts.room,
            locale=self._opts.locale,
            tentative=self._opts.tentative,
        )
        parent = self._opts.trace_context() if self._opts.trace_context else None
        with attached(parent):  # the request's span opens with the stream
            stream = self._client.stream(
                subjects.prefixed(self._opts.subject_prefix, subjects.BRAIN_REQUEST),
                request,
                cancel_subject=subjects.prefixed(self._opts.subject_prefix, subjects.BRAIN_CANCEL),
                first_chunk_timeout=self._opts.first_delta_timeout_s,
                idle_timeout=self._opts.idle_timeout_s,
            )
        try:
            async with stream:
                async for chunk in stream:
                    if chunk.kind != "delta" or not chunk.text:
                        continue
                    if turn.first_delta_at is None:
                        turn.first_delta_at = time.monotonic()
                    text = joined_delta(said.texts[-1] if said.texts else "", chunk.text)
                    turn.deltas.append(text)
                    said.texts.append(text)
                    self._event_ch.send_nowait(
                        ChatChunk(
                            id=turn.turn_id,
                            delta=ChoiceDelta(role="assistant", content=text),
                        )
                    )
            turn.completed = True
        finally:
            turn.ended_at = time.monotonic()


@dataclass
class _Said:
    """What one answer's stream has said so far: the brain's deltas and the worker's lines."""

    texts: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.texts)

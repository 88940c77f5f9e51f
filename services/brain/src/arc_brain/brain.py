"""The brain's core: answer a turn as a stream of speakable chunks.

Entry points (NATS, HTTP) call `Brain.reply`; everything below it is plain Python over the
turn graph. A turn that is cancelled mid-answer (barge-in) is still recorded, with what was
said so far and `interrupted`, by a background task the brain owns; the voice worker can then
cut it down to what the person actually heard with `truncate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from arc_common.wire import BrainRequest
from langgraph.graph.state import CompiledStateGraph

from arc_brain.embedding import MiniLmEmbedder, Vector
from arc_brain.graph import GraphParts, build_turn_graph
from arc_brain.llm import ChatCompletionsClient
from arc_brain.memory import MemoryStore, MemoryUnavailable, TranscriptLine, TurnRecord
from arc_brain.metrics import BrainMetrics
from arc_brain.sentences import SpeakableChunker
from arc_brain.settings import BrainOptions
from arc_brain.skills import Router, without_greeting
from arc_brain.tentative import Outcome, TentativeTurns

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnInput:
    session_id: str
    turn_id: str
    user_id: str
    text: str
    room: str | None = None
    locale: str | None = None
    # Stored only once committed (preemptive generation): see `arc_brain.tentative`.
    tentative: bool = False

    @classmethod
    def of(cls, request: BrainRequest) -> TurnInput:
        """The turn a checked `brain.request` asks for; the HTTP chat builds one too, so
        both entry points hand the brain the same turn."""
        return cls(
            session_id=request.session_id,
            turn_id=request.turn_id,
            user_id=request.user_id,
            text=request.text,
            room=request.room,
            locale=request.locale,
            tentative=request.tentative,
        )


@dataclass
class TurnOutcome:
    """What happened in a turn, filled in while it streams."""

    route: str | None = None
    first_delta_s: float | None = None
    persisted: bool | None = None
    text: str = ""


class Brain:
    def __init__(
        self,
        *,
        embedder: MiniLmEmbedder,
        store: MemoryStore,
        router: Router,
        options: BrainOptions,
        llm: ChatCompletionsClient | None = None,
        metrics: BrainMetrics | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.llm = llm
        self.options = options
        self.metrics = metrics or BrainMetrics()
        self._read_gauges_from_their_owners()
        self.tentative = TentativeTurns(options.tentative_ttl_s)
        self._graph: CompiledStateGraph[Any, Any, Any, Any] = build_turn_graph(
            GraphParts(
                embedder=embedder,
                store=store,
                router=router,
                llm=llm,
                system_prompt=options.llm.system_prompt,
                summary_prompt=options.llm.summary_prompt,
                llm_route_min_similarity=options.llm_route_min_similarity,
                llm_prompt_chars=options.llm.prompt_chars,
                llm_history_turns=options.llm.history_turns,
                history_turns=options.history_turns,
                recall_k=options.recall_k,
                recall_min_similarity=options.recall_min_similarity,
                hold=self.tentative.hold,
            )
        )
        self._active = 0
        self._background: set[asyncio.Task[None]] = set()
        self._late_writes: dict[tuple[str, str], asyncio.Task[None]] = {}

    @classmethod
    async def create(
        cls,
        *,
        embedder: MiniLmEmbedder,
        store: MemoryStore,
        options: BrainOptions,
        llm: ChatCompletionsClient | None = None,
        metrics: BrainMetrics | None = None,
    ) -> Brain:
        vectors = await embedder.embed_many(Router.example_texts())
        router = Router.from_examples(vectors, min_similarity=options.route_min_similarity)
        return cls(
            embedder=embedder,
            store=store,
            router=router,
            options=options,
            llm=llm,
            metrics=metrics,
        )

    async def reply(
        self, turn: TurnInput, outcome: TurnOutcome | None = None
    ) -> AsyncGenerator[str, None]:
        """Speakable chunks of the answer, in order. Joining them gives the whole answer."""
        outcome = outcome or TurnOutcome()
        started = time.monotonic()
        chunker = SpeakableChunker(first_clause_words=self.options.first_clause_words)
        said: list[str] = []
        utterance: Vector | None = None  # the utterance's embedding, once the graph has it
        finished = False
        self._active += 1
        self.metrics.active_turns.inc()
        self._expire_tentative()
        if turn.tentative:
            self.tentative.open(turn.turn_id)
        state = {
            "session_id": turn.session_id,
            "turn_id": turn.turn_id,
            "user_id": turn.user_id,
            "text": turn.text,
            "room": turn.room,
            "now": datetime.now().astimezone(),
        }
        try:
            stream = cast(
                AsyncGenerator[dict[str, Any], None],
                self._graph.astream(state, stream_mode="custom"),
            )
            async with contextlib.aclosing(stream) as events:
                async for event in events:
                    if "text" in event:
                        chunks = chunker.feed(event["text"])
                    elif "done" in event:
                        chunks = chunker.flush()
                    else:
                        if "route" in event:
                            outcome.route = event["route"]
                        if "embedding" in event:
                            utterance = event["embedding"]
                        if "persisted" in event:
                            outcome.persisted = event["persisted"]
                        continue
                    for chunk in chunks:
                        if outcome.first_delta_s is None:
                            outcome.first_delta_s = time.monotonic() - started
                            self.metrics.first_delta.labels(outcome.route or "unknown").observe(
                                outcome.first_delta_s
                            )
                        said.append(chunk)
                        yield chunk
            finished = True
            self.metrics.turns.labels(outcome.route or "unknown", "ok").inc()
            self.metrics.turn_seconds.labels(outcome.route or "unknown").observe(
                time.monotonic() - started
            )
        except (asyncio.CancelledError, GeneratorExit):
            self.metrics.turns.labels(outcome.route or "unknown", "cancelled").inc()
            # A guess that was never confirmed leaves no trace; a confirmed turn that was cut
            # off is recorded with what was said.
            if said and outcome.persisted is None and not self.tentative.is_tentative(turn.turn_id):
                try:
                    self._record_interrupted(turn, "".join(said), outcome.route, utterance)
                except RuntimeError:
                    # Closed outside a running loop (garbage-collected): nothing can run now.
                    log.warning("interrupted turn %s not recorded: no event loop", turn.turn_id)
            raise
        except Exception:
            self.metrics.turns.labels(outcome.route or "unknown", "error").inc()
            raise
        finally:
            if turn.tentative:
                verdict = self.tentative.finished(turn.turn_id, completed=finished)
                if verdict is not None:
                    self.metrics.tentative_turns.labels(verdict.value).inc()
            outcome.text = "".join(said)
            self._active -= 1
            self.metrics.active_turns.dec()
            if not finished:
                log.info("turn %s ended early after %d chunks", turn.turn_id, len(said))

    def commit(self, turn_id: str) -> bool:
        """`brain.commit`: the tentative turn answered the person's real turn, so it joins the
        history (now, or when its answer ends). False when no such turn is open here."""
        self._expire_tentative()
        known, record = self.tentative.commit(turn_id)
        if record is not None:
            self.metrics.tentative_turns.labels(Outcome.COMMITTED.value).inc()
            self._write_late(record.session_id, turn_id, self._save(record))
        return known

    def discard(self, turn_id: str) -> bool:
        """`brain.cancel` of a finished tentative turn: the guess was wrong; forget it."""
        if self.tentative.discard(turn_id):
            self.metrics.tentative_turns.labels(Outcome.DISCARDED.value).inc()
            return True
        return False

    def _expire_tentative(self) -> None:
        expired = self.tentative.expire()
        if expired:
            log.warning("%d tentative turns were neither committed nor cancelled", expired)
            self.metrics.tentative_turns.labels(Outcome.EXPIRED.value).inc(expired)

    async def _save(self, record: TurnRecord) -> None:
        try:
            await self.store.save_turn(record)
        except Exception:
            log.exception("could not store turn %s", record.turn_id)

    def _record_interrupted(
        self, turn: TurnInput, said: str, route: str | None, embedding: Vector | None
    ) -> None:
        """Record a cut-off turn in the background: the handler's task is being cancelled.
        `embedding` is the utterance's, when the graph had computed it: embedding it again
        would queue on the embedder's one thread just as the person's next turn arrives."""

        async def write() -> None:
            try:
                vector = embedding
                if vector is None:
                    vector = await self.embedder.embed(without_greeting(turn.text))
            except Exception:
                log.exception("could not record interrupted turn %s", turn.turn_id)
                return
            await self._save(
                TurnRecord(
                    session_id=turn.session_id,
                    turn_id=turn.turn_id,
                    user_id=turn.user_id,
                    user_text=turn.text,
                    assistant_text=said,
                    embedding=vector,
                    room=turn.room,
                    interrupted=True,
                    route=route,
                )
            )

        self._write_late(turn.session_id, turn.turn_id, write())

    def _write_late(self, session_id: str, turn_id: str, write: Coroutine[Any, Any, None]) -> None:
        """A write the brain owns after the turn's own task has gone; `truncate` waits for it."""
        key = (session_id, turn_id)
        task = asyncio.get_running_loop().create_task(write, name=f"record:{turn_id}")
        self._background.add(task)
        self._late_writes[key] = task

        def done(t: asyncio.Task[None]) -> None:
            self._background.discard(t)
            if self._late_writes.get(key) is t:
                del self._late_writes[key]

        task.add_done_callback(done)

    async def truncate(
        self, session_id: str, turn_id: str, heard: str, *, user_id: str | None = None
    ) -> bool:
        """History keeps only `heard` of the turn's answer. False when the turn is unknown and
        no `user_id` vouches for it (`MemoryStore.truncate`)."""
        pending = self._late_writes.get((session_id, turn_id))
        if pending is not None:
            await asyncio.shield(pending)
        return await self.store.truncate(session_id, turn_id, heard, user_id=user_id)

    async def transcript(self, session_id: str) -> list[TranscriptLine]:
        return await self.store.transcript(session_id)

    def _read_gauges_from_their_owners(self) -> None:
        """The store and the LLM client own these figures; the gauges read them when scraped
        instead of being copied after every turn and health check."""
        store, llm = self.store, self.llm
        self.metrics.memory_available.set_function(lambda: 1.0 if store.available else 0.0)
        self.metrics.memory_backlog.set_function(lambda: float(store.backlog))
        self.metrics.memory_outages.set_function(lambda: float(store.stats.outages))
        if llm is not None:
            self.metrics.llm_retries.set_function(lambda: float(llm.retries))

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.store.available else "degraded",
            "memory": {
                "available": self.store.available,
                "backlog_turns": self.store.backlog,
                "outages": self.store.stats.outages,
                "last_error": None if self.store.available else self.store.stats.last_error,
            },
            "answers_with": "llm" if self.llm is not None else "skills",
            "active_turns": self._active,
        }

    async def aclose(self) -> None:
        """Let in-flight background writes finish briefly, then cancel what remains."""
        if self._background:
            _, pending = await asyncio.wait(set(self._background), timeout=2.0)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


__all__ = ["Brain", "MemoryUnavailable", "TurnInput", "TurnOutcome"]

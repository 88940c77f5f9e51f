"""One turn as a LangGraph graph: load context → route → recall (when the answer uses
memories) → answer (skills or LLM) → persist.

Answer nodes stream their text through LangGraph's custom stream writer, so the caller can
speak the first sentence while the rest is still being produced. The graph is the plain core:
it needs an embedder, a memory store and (optionally) an LLM client, never NATS or HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, TypeVar, cast

from arc_common.envelope import tracing_enabled
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from opentelemetry import trace

from arc_brain.embedding import MiniLmEmbedder, Vector
from arc_brain.llm import ChatCompletionsClient, ChatMessage, Spoken, build_messages
from arc_brain.memory import (
    Fact,
    HistoryTurn,
    Memory,
    MemoryStore,
    MemoryUnavailable,
    TurnRecord,
)
from arc_brain.skills import (
    FactToKeep,
    Route,
    Routed,
    Router,
    SkillInput,
    answer,
    second_person,
    without_greeting,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("arc_brain.graph")

NOTHING_TO_SAY = "Sorry, I don't have a good answer to that."
# The answers that recall this user's memories, and so need the utterance's embedding first.
USES_MEMORIES = frozenset({Route.LLM, Route.RECALL})


class TurnState(TypedDict, total=False):
    session_id: str
    turn_id: str
    user_id: str
    text: str
    # What is routed and embedded: the text without the greetings said before it.
    asked: str
    room: str | None
    now: datetime
    embedding: Vector | None
    history: list[HistoryTurn]
    memories: list[Memory]
    memory_available: bool
    routed: Routed
    answer: str
    facts: tuple[FactToKeep, ...]
    persisted: bool


@dataclass
class GraphParts:
    embedder: MiniLmEmbedder
    store: MemoryStore
    router: Router
    llm: ChatCompletionsClient | None = None
    system_prompt: str = ""
    summary_prompt: str = ""
    # With a model, the exact skills answer only utterances this close to their examples.
    llm_route_min_similarity: float = 0.6
    # The model's prompt (instructions, memories, history, the turn), in characters: a
    # shorter prompt is a shorter prefill, the first word sooner.
    llm_prompt_chars: int = 3000
    llm_history_turns: int = 8
    history_turns: int = 8
    recall_k: int = 4
    recall_min_similarity: float = 0.3
    # Keeps a tentative turn's record back until it is committed; True when it did.
    hold: Callable[[TurnRecord], bool] = lambda _record: False


def build_turn_graph(parts: GraphParts) -> CompiledStateGraph[Any, Any, Any, Any]:
    async def load_context(state: TurnState) -> dict[str, Any]:
        """The session's history and, unless a rule routes the turn to an answer that uses no
        memories, the utterance's embedding, in parallel. A rule-routed answer (arithmetic, a
        statement, "repeat after me") does not wait for the embedding: persist computes it
        after the answer has gone out."""
        available = parts.store.available
        asked = without_greeting(state["text"])
        ruled = parts.router.by_rule(asked)
        embed = (
            asyncio.ensure_future(parts.embedder.embed(asked))
            if ruled is None or ruled.route in USES_MEMORIES
            else None
        )
        history: list[HistoryTurn] = []
        embedding: Vector | None = None
        try:
            if available:
                try:
                    history = await parts.store.history(state["session_id"], parts.history_turns)
                except MemoryUnavailable:
                    available = False
            if embed is not None:
                embedding = await embed
        finally:
            if embed is not None and not embed.done():
                embed.cancel()
        if embedding is not None:
            # The caller keeps it: a turn cut off before persist is recorded with it.
            get_stream_writer()({"embedding": embedding})
        context: dict[str, Any] = {
            "asked": asked,
            "embedding": embedding,
            "history": history,
            "memory_available": available,
        }
        if ruled is not None:
            context["routed"] = ruled
        return context

    async def recall(state: TurnState) -> dict[str, Any]:
        """This user's memories nearest to the utterance; only for answers that use them."""
        embedding = state.get("embedding")
        if not state.get("memory_available") or embedding is None:
            return {"memories": []}
        try:
            memories = await parts.store.recall(
                state["user_id"],
                state["session_id"],
                embedding,
                k=parts.recall_k,
                min_similarity=parts.recall_min_similarity,
            )
        except MemoryUnavailable:
            return {"memories": [], "memory_available": False}
        return {"memories": memories}

    def route(state: TurnState) -> dict[str, Any]:
        routed = state.get("routed")
        if routed is None:
            embedding = state.get("embedding")
            assert embedding is not None  # load_context embeds every turn no rule routed
            routed = (
                parts.router.by_meaning(embedding)
                if parts.llm is None
                else parts.router.by_meaning_with_llm(embedding, parts.llm_route_min_similarity)
            )
        get_stream_writer()({"route": routed.route.value})
        return {"routed": routed}

    def choose_answer(state: TurnState) -> str:
        route = state["routed"].route
        if route is Route.LLM or (route is Route.SUMMARISE and parts.llm is not None):
            return "answer_llm"
        return "answer_skill"

    def after_route(state: TurnState) -> str:
        # Recall costs database round trips: only the answers that use memories wait for it.
        if state["routed"].route in USES_MEMORIES:
            return "recall"
        return choose_answer(state)

    def say_whole(text: str) -> dict[str, Any]:
        """An answer known whole at once: streamed as one piece."""
        writer = get_stream_writer()
        writer({"text": text})
        writer({"done": True})
        return {"answer": text, "facts": ()}

    async def answer_skill(state: TurnState) -> dict[str, Any]:
        if state["routed"].route is Route.FORGET:
            return await forget(state)
        result = answer(
            SkillInput(
                text=state["text"],
                routed=state["routed"],
                now=state["now"],
                history=state.get("history", []),
                memories=state.get("memories", []),
                memory_available=state.get("memory_available", False),
                with_model=parts.llm is not None,
            )
        )
        writer = get_stream_writer()
        writer({"text": result.text})
        writer({"done": True})
        return {"answer": result.text, "facts": result.facts}

    async def forget(state: TurnState) -> dict[str, Any]:
        topic = state["routed"].payload or ""
        count: int | None = None
        if state.get("memory_available"):
            with contextlib.suppress(MemoryUnavailable):
                count = await parts.store.forget(state["user_id"], topic, state["routed"].slot)
        about = second_person(topic)
        if count is None:
            text = "My memory is unavailable right now, so I can't forget that yet."
        elif count == 0:
            text = f"I don't have anything about {about} to forget."
        else:
            text = f"Okay, I've forgotten what you told me about {about}."
        return say_whole(text)

    def llm_messages(state: TurnState) -> list[ChatMessage]:
        turns = [(t.user_text, t.assistant_text) for t in state.get("history", [])]
        if state["routed"].route is Route.SUMMARISE:
            # A summary is of the whole session loaded, whatever the answers are given.
            return build_messages(
                parts.summary_prompt,
                memories=[],
                history=turns,
                text=state["text"],
                max_chars=parts.llm_prompt_chars,
            )
        recent = turns[len(turns) - parts.llm_history_turns :] if parts.llm_history_turns else []
        return build_messages(
            parts.system_prompt,
            memories=[m.content for m in state.get("memories", []) if m.kind == "fact"],
            history=recent,
            text=state["text"],
            max_chars=parts.llm_prompt_chars,
        )

    async def answer_llm(state: TurnState) -> dict[str, Any]:
        assert parts.llm is not None
        if state["routed"].route is Route.SUMMARISE and not state.get("history"):
            return say_whole("We've only just started talking, so there's nothing to summarise.")
        writer = get_stream_writer()
        spoken = Spoken(parts.llm.settings.max_sentences)
        pieces: list[str] = []
        # Closed on leaving, whatever the way out (the answer is long enough, the turn is
        # cancelled): the request ends and the model server frees its slot now, not when the
        # generator is collected.
        async with contextlib.aclosing(parts.llm.stream(llm_messages(state))) as stream:
            async for piece in stream:
                if text := spoken.feed(piece):
                    pieces.append(text)
                    writer({"text": text})
                if spoken.done:
                    break
        if text := spoken.flush():
            pieces.append(text)
            writer({"text": text})
        if not any(ch.isalnum() for ch in "".join(pieces)):
            # A small model sometimes answers only with emoji or markup, which the voice
            # filter removes: silence would leave the person waiting for an answer.
            pieces.append(NOTHING_TO_SAY)
            writer({"text": NOTHING_TO_SAY})
        writer({"done": True})
        return {"answer": "".join(pieces), "facts": ()}

    async def persist(state: TurnState) -> dict[str, Any]:
        kept = state.get("facts", ())
        embedding = state.get("embedding")
        # The utterance (when routing did not need it) and each fact kept, in one batch.
        texts = ([state["asked"]] if embedding is None else []) + [f.content for f in kept]
        vectors = list(await parts.embedder.embed_many(texts)) if texts else []
        if embedding is None:
            embedding = vectors.pop(0)
        facts = [Fact(f.content, vector, f.slot) for f, vector in zip(kept, vectors, strict=True)]
        record = TurnRecord(
            session_id=state["session_id"],
            turn_id=state["turn_id"],
            user_id=state["user_id"],
            user_text=state["text"],
            assistant_text=state.get("answer", ""),
            embedding=embedding,
            room=state.get("room"),
            route=state["routed"].route.value,
            facts=facts,
        )
        if parts.hold(record):
            get_stream_writer()({"held": True})
            return {"persisted": False}
        written = await parts.store.save_turn(record)
        get_stream_writer()({"persisted": written})
        return {"persisted": written}

    graph = StateGraph(TurnState)
    graph.add_node("load_context", traced("load_context", load_context))
    graph.add_node("route", traced("route", route))
    graph.add_node("recall", traced("recall", recall))
    graph.add_node("answer_skill", traced("answer_skill", answer_skill))
    graph.add_node("answer_llm", traced("answer_llm", answer_llm))
    graph.add_node("persist", traced("persist", persist))
    graph.add_edge(START, "load_context")
    graph.add_edge("load_context", "route")
    graph.add_conditional_edges("route", after_route, ["recall", "answer_skill", "answer_llm"])
    graph.add_conditional_edges("recall", choose_answer, ["answer_skill", "answer_llm"])
    graph.add_edge("answer_skill", "persist")
    graph.add_edge("answer_llm", "persist")
    graph.add_edge("persist", END)
    return graph.compile()


Node = TypeVar("Node", bound=Callable[..., Any])


def traced(name: str, node: Node) -> Node:
    """The node with one span per run (`brain.<node>`), a child of the brain's server span:
    LangGraph runs each node in a task (or, when sync, a thread) that copies the caller's
    context. Defined here, not in a shared module, because LangGraph reads the wrapper's
    `state: TurnState` annotation in this module's namespace."""
    span_name = f"brain.{name}"

    def noted(span: trace.Span, result: Any) -> Any:
        routed = result.get("routed") if isinstance(result, dict) else None
        if isinstance(routed, Routed):
            span.set_attribute("arc.route", routed.route.value)
        return result

    if inspect.iscoroutinefunction(node):

        async def traced_async(state: TurnState) -> Any:
            if not tracing_enabled():
                return await node(state)
            with tracer.start_as_current_span(span_name) as span:
                return noted(span, await node(state))

        return cast(Node, traced_async)

    def traced_sync(state: TurnState) -> Any:
        if not tracing_enabled():
            return node(state)
        with tracer.start_as_current_span(span_name) as span:
            return noted(span, node(state))

    return cast(Node, traced_sync)

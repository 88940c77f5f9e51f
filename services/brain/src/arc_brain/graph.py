"""One turn as a LangGraph graph: load context → route → recall (when the answer uses
memories) → answer (skills or LLM) → persist.

Answer nodes stream their text through LangGraph's custom stream writer, so the caller can
speak the first sentence while the rest is still being produced. The graph is the plain core:
it needs an embedder, a memory store and (optionally) an LLM client, never NATS or HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from arc_brain.embedding import MiniLmEmbedder, Vector
from arc_brain.llm import ChatCompletionsClient, build_messages
from arc_brain.memory import HistoryTurn, Memory, MemoryStore, MemoryUnavailable, TurnRecord
from arc_brain.skills import Route, Routed, Router, SkillInput, answer

log = logging.getLogger(__name__)


class TurnState(TypedDict, total=False):
    session_id: str
    turn_id: str
    user_id: str
    text: str
    room: str | None
    now: datetime
    embedding: Vector | None
    history: list[HistoryTurn]
    memories: list[Memory]
    memory_available: bool
    routed: Routed
    answer: str
    fact: str | None
    persisted: bool


@dataclass
class GraphParts:
    embedder: MiniLmEmbedder
    store: MemoryStore
    router: Router
    llm: ChatCompletionsClient | None = None
    system_prompt: str = ""
    history_turns: int = 8
    recall_k: int = 4
    recall_min_similarity: float = 0.3
    # Keeps a tentative turn's record back until it is committed; True when it did.
    hold: Callable[[TurnRecord], bool] = lambda _record: False


def build_turn_graph(parts: GraphParts) -> CompiledStateGraph[Any, Any, Any, Any]:
    async def load_context(state: TurnState) -> dict[str, Any]:
        """The utterance's embedding and the session's history, in parallel."""
        available = parts.store.available
        embed = asyncio.ensure_future(parts.embedder.embed(state["text"]))
        history: list[HistoryTurn] = []
        try:
            if available:
                try:
                    history = await parts.store.history(state["session_id"], parts.history_turns)
                except MemoryUnavailable:
                    available = False
            embedding = await embed
        finally:
            if not embed.done():
                embed.cancel()
        return {"embedding": embedding, "history": history, "memory_available": available}

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
        by_rule = parts.router.by_rule(state["text"])
        if parts.llm is not None and by_rule is None:
            routed = Routed(Route.LLM)
        else:
            embedding = state.get("embedding")
            assert embedding is not None
            routed = parts.router.route(state["text"], embedding)
        get_stream_writer()({"route": routed.route.value})
        return {"routed": routed}

    def choose_answer(state: TurnState) -> str:
        return "answer_llm" if state["routed"].route is Route.LLM else "answer_skill"

    def after_route(state: TurnState) -> str:
        # Recall costs database round trips: only the answers that use memories wait for it.
        if state["routed"].route in (Route.LLM, Route.RECALL):
            return "recall"
        return choose_answer(state)

    async def answer_skill(state: TurnState) -> dict[str, Any]:
        result = answer(
            SkillInput(
                text=state["text"],
                routed=state["routed"],
                now=state["now"],
                history=state.get("history", []),
                memories=state.get("memories", []),
                memory_available=state.get("memory_available", False),
            )
        )
        writer = get_stream_writer()
        writer({"text": result.text})
        writer({"done": True})
        return {"answer": result.text, "fact": result.fact}

    async def answer_llm(state: TurnState) -> dict[str, Any]:
        assert parts.llm is not None
        messages = build_messages(
            parts.system_prompt,
            memories=[m.content for m in state.get("memories", [])],
            history=[(t.user_text, t.assistant_text) for t in state.get("history", [])],
            text=state["text"],
        )
        writer = get_stream_writer()
        pieces: list[str] = []
        async for piece in parts.llm.stream(messages):
            pieces.append(piece)
            writer({"text": piece})
        writer({"done": True})
        return {"answer": "".join(pieces), "fact": None}

    async def persist(state: TurnState) -> dict[str, Any]:
        fact = state.get("fact")
        fact_embedding = await parts.embedder.embed(fact) if fact else None
        record = TurnRecord(
            session_id=state["session_id"],
            turn_id=state["turn_id"],
            user_id=state["user_id"],
            user_text=state["text"],
            assistant_text=state.get("answer", ""),
            embedding=state.get("embedding"),
            room=state.get("room"),
            route=state["routed"].route.value,
            fact=fact,
            fact_embedding=fact_embedding,
        )
        if parts.hold(record):
            get_stream_writer()({"held": True})
            return {"persisted": False}
        written = await parts.store.save_turn(record)
        get_stream_writer()({"persisted": written})
        return {"persisted": written}

    graph = StateGraph(TurnState)
    graph.add_node("load_context", load_context)
    graph.add_node("route", route)
    graph.add_node("recall", recall)
    graph.add_node("answer_skill", answer_skill)
    graph.add_node("answer_llm", answer_llm)
    graph.add_node("persist", persist)
    graph.add_edge(START, "load_context")
    graph.add_edge("load_context", "route")
    graph.add_conditional_edges("route", after_route, ["recall", "answer_skill", "answer_llm"])
    graph.add_conditional_edges("recall", choose_answer, ["answer_skill", "answer_llm"])
    graph.add_edge("answer_skill", "persist")
    graph.add_edge("answer_llm", "persist")
    graph.add_edge("persist", END)
    return graph.compile()

"""One span per LangGraph node run, under the caller's span, for async and sync nodes."""

from __future__ import annotations

from typing import Any

import pytest
from arc_brain.graph import TurnState, traced
from langgraph.graph import END, START, StateGraph
from opentelemetry import trace

from tests.fixtures.jaeger import CapturedSpans

pytestmark = pytest.mark.unit


def _graph() -> Any:
    async def first(state: TurnState) -> dict[str, Any]:
        return {"answer": state["text"].upper()}

    def second(state: TurnState) -> dict[str, Any]:  # sync: LangGraph runs it in a thread
        return {"persisted": True}

    graph = StateGraph(TurnState)
    graph.add_node("first", traced("first", first))
    graph.add_node("second", traced("second", second))
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    graph.add_edge("second", END)
    return graph.compile()


async def test_each_node_is_a_child_span_of_the_turn(captured_spans: CapturedSpans) -> None:
    with trace.get_tracer("test").start_as_current_span("brain.request") as turn:
        result = await _graph().ainvoke({"text": "hi"})

    assert result["answer"] == "HI" and result["persisted"] is True
    nodes = {s.name: s for s in captured_spans.finished() if s.name != "brain.request"}
    assert set(nodes) == {"brain.first", "brain.second"}
    for span in nodes.values():
        assert span.parent is not None
        assert span.parent.span_id == turn.get_span_context().span_id


async def test_untraced_nodes_run_the_same_and_open_no_span() -> None:
    result = await _graph().ainvoke({"text": "hi"})

    assert result["answer"] == "HI" and result["persisted"] is True

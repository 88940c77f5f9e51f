"""Runs the eval's conversations through the brain's plain core and scores each answer."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass

from arc_brain.brain import Brain, TurnInput, TurnOutcome

from tests.eval.cases import CONVERSATIONS, Conversation, Turn


@dataclass(frozen=True)
class Scored:
    category: str
    turn: Turn
    answer: str
    route: str | None
    passed: bool


def score(turn: Turn, answer: str) -> bool:
    if turn.expect is not None and not re.search(turn.expect, answer, re.IGNORECASE):
        return False
    return turn.forbid is None or not re.search(turn.forbid, answer, re.IGNORECASE)


async def run_eval(
    brain: Brain, conversations: tuple[Conversation, ...] = CONVERSATIONS
) -> list[Scored]:
    """Every conversation in its own session; users are private to this run."""
    run = uuid.uuid4().hex[:8]
    scored: list[Scored] = []
    for conversation in conversations:
        session = f"eval-{run}-{uuid.uuid4().hex[:8]}"
        for turn in conversation.turns:
            outcome = TurnOutcome()
            pieces = [
                piece
                async for piece in brain.reply(
                    TurnInput(
                        session_id=session,
                        turn_id=uuid.uuid4().hex,
                        user_id=f"eval-{run}-{conversation.user}",
                        text=turn.say,
                    ),
                    outcome,
                )
            ]
            answer = "".join(pieces)
            scored.append(
                Scored(conversation.category, turn, answer, outcome.route, score(turn, answer))
            )
    return scored


def by_category(scored: list[Scored]) -> dict[str, tuple[int, int]]:
    """(passed, total) per category, in the order the categories first appear."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in scored:
        counts[s.category][0] += s.passed
        counts[s.category][1] += 1
    return {category: (p, t) for category, (p, t) in counts.items()}


def table(scored: list[Scored]) -> str:
    lines = ["| category | passed | rate |", "|---|---|---|"]
    for category, (passed, total) in by_category(scored).items():
        lines.append(f"| {category} | {passed}/{total} | {passed / total:.0%} |")
    passed = sum(s.passed for s in scored)
    lines.append(f"| **all** | {passed}/{len(scored)} | {passed / len(scored):.0%} |")
    return "\n".join(lines)

"""The conversation eval (tests/eval) against the default offline model, and against an
OpenAI-compatible endpoint standing in for a larger model: what the graph answers exactly
(memory, arithmetic, time and date, live-data honesty) passes ≥ 90 % whatever the model; the
general categories measure the model and are only reported (run with -s to see the table)."""

from __future__ import annotations

import pytest

from tests.eval.cases import EXACT
from tests.eval.runner import Scored, by_category, run_eval, table
from tests.integration.brain.helpers import StartBrain

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _assert_exact_categories(scored: list[Scored]) -> None:
    results = by_category(scored)
    for category in EXACT:
        passed, total = results[category]
        failures = [
            (s.turn.say, s.answer) for s in scored if s.category == category and not s.passed
        ]
        assert passed / total >= 0.9, (category, failures)


async def test_the_eval_with_the_default_offline_model(local_brain: StartBrain) -> None:
    running = await local_brain()
    scored = await run_eval(running.brain)
    print("\nSmolLM2-135M-Instruct (llama-server, 1 thread)\n" + table(scored))
    for s in scored:
        print(s.passed, s.route, repr(s.turn.say[:60]), "→", repr(s.answer[:150]))
    assert len(scored) >= 40
    _assert_exact_categories(scored)


async def test_the_eval_with_an_openai_compatible_endpoint(double_brain: StartBrain) -> None:
    running = await double_brain("ok")
    scored = await run_eval(running.brain)
    print("\nOpenAI-compatible endpoint (test double, canned answer)\n" + table(scored))
    _assert_exact_categories(scored)
    # Everything else reached the endpoint: its canned answer is what was said.
    assert all(s.route == "llm" for s in scored if s.category == "general knowledge")

"""`RestartPolicy`: when `make run` restarts a dead part, and when it gives up on it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from arc_stack.restarts import RestartPolicy, RestartRecord, record_path
from arc_stack.settings import StackSettings

pytestmark = pytest.mark.unit


def _delays(
    policy: RestartPolicy, deaths: Sequence[tuple[float, float | None]]
) -> list[float | None]:
    return [policy.on_death(now, up_for).delay_s for now, up_for in deaths]


def test_backoff_doubles_while_the_part_dies_soon_after_each_restart_and_is_capped() -> None:
    policy = RestartPolicy(
        first_delay_s=1, max_delay_s=8, stable_after_s=60, max_restarts=100, window_s=300
    )
    deaths = [(float(t), 2.0) for t in range(0, 60, 10)]
    assert _delays(policy, deaths) == [1, 2, 4, 8, 8, 8]


def test_a_death_while_starting_counts_like_a_quick_one() -> None:
    policy = RestartPolicy(first_delay_s=0.5, max_delay_s=30, max_restarts=10)
    assert _delays(policy, [(0, 5.0), (1, None), (3, None)]) == [0.5, 1, 2]


def test_backoff_resets_once_the_part_stayed_up_long_enough() -> None:
    policy = RestartPolicy(first_delay_s=1, max_delay_s=30, stable_after_s=60, max_restarts=100)
    assert _delays(policy, [(0, 1.0), (5, 1.0), (10, 1.0)]) == [1, 2, 4]
    # Up for a minute since its last restart: a fresh start of the backoff.
    assert _delays(policy, [(80, 60.0), (85, 1.0)]) == [1, 2]


def test_gives_up_after_more_than_the_limit_within_the_window() -> None:
    policy = RestartPolicy(first_delay_s=1, max_restarts=3, window_s=100)
    decisions = [policy.on_death(t, 1.0) for t in (0, 10, 20, 30)]
    assert [d.give_up for d in decisions] == [False, False, False, True]
    assert [d.deaths_in_window for d in decisions] == [1, 2, 3, 4]
    assert decisions[-1].delay_s is None


def test_deaths_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(first_delay_s=1, max_restarts=2, window_s=100)
    # Three deaths, but never more than two inside any 100 s: it never gives up.
    for now in (0, 60, 120, 180, 240, 300):
        decision = policy.on_death(now, 10.0)
        assert not decision.give_up, now
        assert decision.deaths_in_window <= 2


def test_no_restarts_allowed_means_the_first_death_stops_the_mesh() -> None:
    assert RestartPolicy(max_restarts=0).on_death(0, 100.0).give_up


@pytest.mark.parametrize(
    "bad",
    [
        {"first_delay_s": -1},
        {"first_delay_s": 10, "max_delay_s": 1},
        {"max_restarts": -1},
        {"window_s": 0},
    ],
)
def test_nonsense_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RestartPolicy(**bad)  # type: ignore[arg-type]


def test_the_stack_settings_build_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_SUPERVISOR_RESTART_LIMIT", "2")
    monkeypatch.setenv("ARC_SUPERVISOR_RESTART_WINDOW_S", "10")
    monkeypatch.setenv("ARC_SUPERVISOR_RESTART_DELAY_S", "0.25")
    policy = StackSettings().restart_policy()
    assert (policy.max_restarts, policy.window_s, policy.first_delay_s) == (2, 10, 0.25)
    assert _delays(policy, [(0, 1.0), (1, 1.0), (2, 1.0)]) == [0.25, 0.5, None]


def test_the_restart_record_round_trips(tmp_path: Path) -> None:
    record = RestartRecord()
    record.part("nats").up = True
    record.restarted("brain")
    record.part("brain").last_exit = -9
    record.write(record_path(tmp_path))
    read = RestartRecord.read(record_path(tmp_path))
    assert read == record
    assert read.parts["brain"].restarts == 1 and read.parts["brain"].last_restart
    record_path(tmp_path).write_text("{not json")
    assert RestartRecord.read(record_path(tmp_path)) is None
    assert RestartRecord.read(tmp_path / "missing.json") is None

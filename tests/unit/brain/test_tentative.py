"""The bookkeeping of tentative turns, without I/O."""

from __future__ import annotations

import time

import pytest
from arc_brain.memory import TurnRecord
from arc_brain.tentative import Outcome, TentativeTurns

pytestmark = pytest.mark.unit


def _record(turn_id: str) -> TurnRecord:
    return TurnRecord(
        session_id="s",
        turn_id=turn_id,
        user_id="u",
        user_text="hi",
        assistant_text="hello",
        embedding=None,
    )


def test_finished_turn_waits_for_its_commit() -> None:
    turns = TentativeTurns(ttl_s=60)
    turns.open("t1")
    assert turns.is_tentative("t1")
    assert turns.hold(_record("t1")) is True
    assert turns.finished("t1", completed=True) is None  # still waiting for a verdict
    known, record = turns.commit("t1")
    assert known and record is not None and record.turn_id == "t1"
    assert len(turns) == 0


def test_commit_while_answering_lets_the_turn_write_itself() -> None:
    turns = TentativeTurns(ttl_s=60)
    turns.open("t1")
    assert turns.commit("t1") == (True, None)
    assert not turns.is_tentative("t1")
    assert turns.hold(_record("t1")) is False  # the caller writes it now
    assert turns.finished("t1", completed=True) is Outcome.COMMITTED
    assert len(turns) == 0


def test_discard_and_cut_off_guesses_leave_nothing() -> None:
    turns = TentativeTurns(ttl_s=60)
    turns.open("done")
    turns.hold(_record("done"))
    assert turns.discard("done") is True
    assert turns.commit("done") == (False, None)
    turns.open("cut")
    assert turns.finished("cut", completed=False) is Outcome.DISCARDED
    assert turns.discard("never-opened") is False
    # A cancel for a turn still answering is the stream's to handle: it stays a guess until then.
    turns.open("live")
    assert turns.discard("live") is False and turns.is_tentative("live")
    assert turns.finished("live", completed=False) is Outcome.DISCARDED
    assert len(turns) == 0


def test_unknown_turns_are_not_tentative_and_committed_ones_are_not_discarded() -> None:
    turns = TentativeTurns(ttl_s=60)
    assert not turns.is_tentative("x")
    assert turns.hold(_record("x")) is False
    turns.open("c")
    turns.commit("c")
    assert turns.discard("c") is False


def test_turns_without_a_verdict_expire() -> None:
    turns = TentativeTurns(ttl_s=5)
    turns.open("old")
    turns.hold(_record("old"))
    turns.open("committed")
    turns.commit("committed")
    assert turns.expire(now=0.0) == 0

    assert turns.expire(now=time.monotonic() + 10) == 1
    assert len(turns) == 1  # the committed one is the turn's own to finish

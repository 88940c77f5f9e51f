"""Who left a room lately, and whose session a rejoin resumes."""

from __future__ import annotations

import pytest
from arc_voice.returning import ReturningPeople

pytestmark = pytest.mark.unit


def test_a_person_back_within_the_window_resumes_their_session_once() -> None:
    people = ReturningPeople(window_s=120.0)
    people.left("room-1", "ann", "s-ann", now=10.0)
    assert people.back("room-2", "ann", now=20.0) is None  # another room: a new session
    assert people.back("room-1", "bob", now=20.0) is None  # another person
    assert people.back("room-1", "ann", now=129.0) == "s-ann"
    assert people.back("room-1", "ann", now=130.0) is None  # once


def test_after_the_window_or_with_it_off_a_rejoin_is_a_new_session() -> None:
    people = ReturningPeople(window_s=120.0)
    people.left("room-1", "ann", "s-ann", now=10.0)
    assert people.back("room-1", "ann", now=130.5) is None
    assert len(people) == 0
    off = ReturningPeople(window_s=0.0)
    off.left("room-1", "ann", "s-ann", now=10.0)
    assert off.back("room-1", "ann", now=10.0) is None


def test_old_departures_are_forgotten_as_new_ones_come() -> None:
    people = ReturningPeople(window_s=60.0)
    for i in range(100):
        people.left("room", f"p{i}", f"s{i}", now=float(i))
    # Only the last minute's are kept: memory stays bounded by the window.
    assert len(people) == 61
    assert people.back("room", "p99", now=100.0) == "s99"

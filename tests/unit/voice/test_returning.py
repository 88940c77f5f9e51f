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


def test_departures_told_as_ages_are_kept_by_a_peer_with_its_own_clock() -> None:
    here = ReturningPeople(window_s=120.0)
    here.left("room-1", "ann", "s-ann", now=1000.0)
    [(room, who, session, ago)] = here.departures(now=1030.0)
    assert (room, who, session, ago) == ("room-1", "ann", "s-ann", 30.0)
    # The peer's clock reads 50: she left at -(30) there, and has 90 s of window left.
    peer = ReturningPeople(window_s=120.0)
    peer.heard(room, who, session, at=50.0 - ago, now=50.0)
    assert peer.back("room-1", "ann", now=139.0) == "s-ann"
    peer.heard(room, who, session, at=50.0 - ago, now=50.0)
    assert peer.back("room-1", "ann", now=141.0) is None  # past the window


def test_a_later_departure_wins_and_one_past_the_window_is_not_taken() -> None:
    people = ReturningPeople(window_s=60.0)
    people.left("room", "ann", "s-new", now=100.0)
    people.heard("room", "ann", "s-old", at=90.0, now=100.0)  # an older echo
    assert people.departures(now=100.0) == [("room", "ann", "s-new", 0.0)]
    people.heard("room", "bob", "s-bob", at=30.0, now=100.0)  # left 70 s ago
    assert len(people) == 1
    people.heard("room", "ann", "s-newer", at=105.0, now=106.0)
    assert people.back("room", "ann", now=106.0) == "s-newer"
    off = ReturningPeople(window_s=0.0)
    off.heard("room", "ann", "s", at=10.0, now=10.0)
    assert len(off) == 0


def test_someone_back_on_another_worker_is_forgotten_here() -> None:
    people = ReturningPeople(window_s=60.0)
    people.left("room", "ann", "s-ann", now=10.0)
    people.forget("room", "ann")
    people.forget("room", "nobody")
    assert people.back("room", "ann", now=11.0) is None

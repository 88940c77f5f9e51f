"""Joining a room again while the LiveKit server fails the join (5xx, a timeout), and not
when the join itself is refused."""

from __future__ import annotations

import pytest
from arc_voice.room_agent import join_room, passing_failure
from livekit import rtc

# What livekit-rtc raised in the chaos suite's run, LiveKit having answered 500 "could not
# find any available nodes" (its node stats were late on a starved box).
NO_NODES = "engine: signal failure: handshake error: 500 Internal Server Error"
REFUSED = "engine: signal failure: handshake error: 401 Unauthorized"


class FlakyRoom:
    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        self.calls = 0

    async def connect(self, url: str, token: str, options: rtc.RoomOptions) -> None:
        self.calls += 1
        if self.failures:
            raise rtc.ConnectError(self.failures.pop(0))


async def test_a_join_the_server_failed_is_tried_again_until_it_works() -> None:
    room = FlakyRoom([NO_NODES, NO_NODES])
    await join_room(room, "ws://lk", "token", retry_for_s=5.0)
    assert room.calls == 3


async def test_a_refused_join_fails_at_once() -> None:
    room = FlakyRoom([REFUSED, REFUSED])
    with pytest.raises(rtc.ConnectError, match="401"):
        await join_room(room, "ws://lk", "token", retry_for_s=5.0)
    assert room.calls == 1


async def test_a_server_that_keeps_failing_is_given_up_on() -> None:
    room = FlakyRoom([NO_NODES] * 100)
    with pytest.raises(rtc.ConnectError, match="500"):
        await join_room(room, "ws://lk", "token", retry_for_s=0.5)
    assert 2 <= room.calls < 100


@pytest.mark.parametrize(
    ("message", "passing"),
    [
        (NO_NODES, True),
        ("engine: signal failure: handshake error: 503 Service Unavailable", True),
        ("engine: connection timed out", True),
        (REFUSED, False),
        ("engine: signal failure: handshake error: 403 Forbidden", False),
        ("invalid url", False),
    ],
)
def test_which_failures_pass(message: str, passing: bool) -> None:
    assert passing_failure(rtc.ConnectError(message)) is passing
    assert not passing_failure(RuntimeError(message))

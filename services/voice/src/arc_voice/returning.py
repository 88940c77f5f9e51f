"""People who left a room and may come back: a page reloaded, a network that dropped, a
LiveKit server that restarted (its clients rejoin a new room of the same name). Coming back
within the window resumes the same session (the brain's memory of it, the sessions console's
one row) instead of starting a stranger's.

Plain state, owned by the worker and shared by its rooms: a room agent made again for the
same room (a new job after the room was closed) still finds who left it. Under LiveKit
dispatch the room they come back to may be given to another worker, so each worker tells its
peers who left its rooms in its beat (`departures`), and keeps what it hears (`heard`).
The caller passes the clock, so tests need no sleeping."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReturningPeople:
    window_s: float
    # (room, identity) → (session id, when they left)
    _left: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    def left(self, room: str, identity: str, session_id: str, now: float) -> None:
        self.heard(room, identity, session_id, at=now, now=now)
        self._forget_old(now)

    def back(self, room: str, identity: str, now: float) -> str | None:
        """The session to resume for someone (re)joining `room`, once; None: a new one."""
        self._forget_old(now)
        found = self._left.pop((room, identity), None)
        return None if found is None else found[0]

    def departures(self, now: float) -> list[tuple[str, str, str, float]]:
        """(room, identity, session id, seconds since they left) of everyone kept: what
        this worker's beat tells its peers (an age, since their clocks are not this one)."""
        self._forget_old(now)
        return [(room, who, session, now - at) for (room, who), (session, at) in self._left.items()]

    def heard(self, room: str, identity: str, session_id: str, at: float, now: float) -> None:
        """A departure, seen here or by another worker, kept unless a later one is known."""
        if self.window_s <= 0 or now - at > self.window_s:
            return
        known = self._left.get((room, identity))
        if known is None or known[1] <= at:
            self._left[(room, identity)] = (session_id, at)

    def forget(self, room: str, identity: str) -> None:
        """Someone is back in `room` on another worker: their session is resumed there."""
        self._left.pop((room, identity), None)

    def _forget_old(self, now: float) -> None:
        for key, (_, at) in list(self._left.items()):
            if now - at > self.window_s:
                del self._left[key]

    def __len__(self) -> int:
        return len(self._left)

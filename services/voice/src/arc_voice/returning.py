"""People who left a room and may come back: a page reloaded, a network that dropped, a
LiveKit server that restarted (its clients rejoin a new room of the same name). Coming back
within the window resumes the same session (the brain's memory of it, the sessions console's
one row) instead of starting a stranger's.

Plain state, owned by the worker and shared by its rooms: a room agent made again for the
same room (a new job after the room was closed) still finds who left it. The caller passes
the clock, so tests need no sleeping."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReturningPeople:
    window_s: float
    # (room, identity) → (session id, when they left)
    _left: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)

    def left(self, room: str, identity: str, session_id: str, now: float) -> None:
        if self.window_s > 0:
            self._left[(room, identity)] = (session_id, now)
        self._forget_old(now)

    def back(self, room: str, identity: str, now: float) -> str | None:
        """The session to resume for someone (re)joining `room`, once; None: a new one."""
        self._forget_old(now)
        found = self._left.pop((room, identity), None)
        return None if found is None else found[0]

    def _forget_old(self, now: float) -> None:
        for key, (_, at) in list(self._left.items()):
            if now - at > self.window_s:
                del self._left[key]

    def __len__(self) -> int:
        return len(self._left)

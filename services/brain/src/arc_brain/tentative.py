"""Tentative turns: answers given on a guess, stored only once the guess is confirmed.

The voice worker starts the brain on the transcript at the end of speech, before it knows the
person has finished their turn (preemptive generation). When the person goes on speaking,
that answer is thrown away, and so must be its row in the history: otherwise the next answer
is built on a question nobody asked. A tentative turn streams like any other, but its record
waits here until `brain.commit` says it answered the real turn; `brain.cancel`, or no word
within the time-to-live, drops it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from arc_brain.memory import TurnRecord


class Outcome(Enum):
    COMMITTED = "committed"
    DISCARDED = "discarded"
    EXPIRED = "expired"


@dataclass
class _Held:
    expires_at: float
    committed: bool = False
    record: TurnRecord | None = None


class TentativeTurns:
    """Which tentative turns are open, committed, or finished and waiting for their verdict.
    Plain state, no I/O: the brain writes what `commit` hands back."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._turns: dict[str, _Held] = {}

    def __len__(self) -> int:
        return len(self._turns)

    def open(self, turn_id: str) -> None:
        self._turns[turn_id] = _Held(expires_at=time.monotonic() + self._ttl_s)

    def is_tentative(self, turn_id: str) -> bool:
        """Open and not committed: its record must not be written yet."""
        held = self._turns.get(turn_id)
        return held is not None and not held.committed

    def hold(self, record: TurnRecord) -> bool:
        """Keep a finished turn's record until its verdict; False when it needs no holding
        (not tentative, or already committed), and the caller writes it now."""
        held = self._turns.get(record.turn_id)
        if held is None or held.committed:
            return False
        held.record = record
        return True

    def commit(self, turn_id: str) -> tuple[bool, TurnRecord | None]:
        """(known, record to write now). A turn still answering is marked committed, and its
        own persist step writes it when it finishes."""
        held = self._turns.get(turn_id)
        if held is None:
            return False, None
        if held.record is not None:
            del self._turns[turn_id]
            return True, held.record
        held.committed = True
        return True, None

    def discard(self, turn_id: str) -> bool:
        """Forget a finished turn that was not committed; True when there was one to forget.
        A turn still answering is left alone: the same cancel stops its stream, and `finished`
        drops it then (dropping it here first would make it look committed to the cancel path,
        which would record it as interrupted)."""
        held = self._turns.get(turn_id)
        if held is None or held.committed or held.record is None:
            return False
        del self._turns[turn_id]
        return True

    def finished(self, turn_id: str, *, completed: bool) -> Outcome | None:
        """The turn's stream ended. A committed turn needs no more bookkeeping; an uncommitted
        one that was cut off had no record to hold and is discarded."""
        held = self._turns.get(turn_id)
        if held is None:
            return None
        if held.committed:
            del self._turns[turn_id]
            return Outcome.COMMITTED
        if not completed or held.record is None:
            del self._turns[turn_id]
            return Outcome.DISCARDED
        return None

    def expire(self, now: float | None = None) -> int:
        """Drop turns whose verdict never came; how many were dropped."""
        now = time.monotonic() if now is None else now
        stale = [k for k, v in self._turns.items() if v.expires_at <= now and not v.committed]
        for key in stale:
            del self._turns[key]
        return len(stale)

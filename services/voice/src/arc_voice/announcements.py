"""Announcements other services ask the agent to speak (`agent.voice.announce`).

The message itself (`Announcement`, `decode_announcement`) is the contract's and lives in
`arc_common.wire`; this module is the voice worker's policy for speaking them.

Bursts are coalesced: everything that arrives within a window is spoken as one, flushed early
once the burst goes quiet. A higher category supersedes lower ones in the same batch
(shutdown over error over ready over init over info), so a room hears "shutting down", not
"ready" just before it. A room holds at most `max_pending` announcements waiting to be
spoken; when a new one arrives at a full queue, the least important one waiting (or the new
one, if it is the least important) is dropped. Every announcement queued ends exactly once
as spoken, superseded or dropped, and is reported so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import StrEnum

from arc_common.wire import (
    ANNOUNCE_TEXT_MAX,
    ANNOUNCEMENT_CATEGORIES,
    Announcement,
)

log = logging.getLogger(__name__)

# Higher supersedes lower; categories not listed rank with `info`.
CATEGORY_RANK: dict[str, int] = {name: i for i, name in enumerate(ANNOUNCEMENT_CATEGORIES)}
_QUIET_GAP_S = 0.3
DEFAULT_MAX_PENDING = 16
_RECENT_SPOKEN = 32


def rank(announcement: Announcement) -> int:
    return CATEGORY_RANK.get(announcement.category, 0)


class Outcome(StrEnum):
    SPOKEN = "spoken"
    SUPERSEDED = "superseded"  # a higher category arrived in the same burst
    DROPPED = "dropped"


class DropReason(StrEnum):
    QUEUE_FULL = "queue_full"  # more important ones filled the room's queue
    TOO_LONG = "too_long"  # the burst's texts together passed the length of one announcement
    ROOM_BUSY = "room_busy"  # the room never fell quiet
    NO_LISTENER = "no_listener"  # nobody in the room to speak to
    INTERRUPTED = "interrupted"  # talked over on every attempt
    CLOSED = "closed"  # the agent left the room before it was spoken
    FAILED = "failed"  # speaking raised


class Batch:
    """What one burst becomes: the announcement to speak, and how many of the burst it
    speaks for, were superseded, or did not fit."""

    __slots__ = ("merged", "represented", "superseded", "too_long")

    def __init__(
        self, merged: Announcement | None, represented: int, superseded: int, too_long: int
    ) -> None:
        self.merged = merged
        self.represented = represented
        self.superseded = superseded
        self.too_long = too_long


def plan_batch(batch: list[Announcement]) -> Batch:
    """One announcement for a burst: only the highest category survives; its texts are
    joined by priority (highest first), arrival order breaking ties, duplicates spoken once,
    and texts that would take the whole past `ANNOUNCE_TEXT_MAX` characters left out."""
    if not batch:
        return Batch(None, 0, 0, 0)
    top = max(rank(a) for a in batch)
    kept = [a for a in batch if rank(a) == top]
    ordered = [a for _, a in sorted(enumerate(kept), key=lambda p: (-p[1].priority, p[0]))]
    texts: list[str] = []
    spoken: list[Announcement] = []
    too_long = 0
    length = -1  # no separator before the first text
    for a in ordered:
        text = a.text.strip()
        if text in texts:
            spoken.append(a)
            continue
        if length + 1 + len(text) > ANNOUNCE_TEXT_MAX:
            too_long += 1
            continue
        texts.append(text)
        spoken.append(a)
        length += 1 + len(text)
    lead = ordered[0]
    merged = Announcement(
        text=" ".join(texts),
        priority=max(a.priority for a in spoken),
        category=lead.category,
        source=",".join(sorted({a.source for a in spoken}))[:256],
        room=lead.room,
    )
    return Batch(merged, len(spoken), len(batch) - len(kept), too_long)


def coalesce(batch: list[Announcement]) -> Announcement | None:
    return plan_batch(batch).merged


# Speaks one announcement; returns None once it was heard, or why it was not spoken.
Speak = Callable[[Announcement], Awaitable[DropReason | None]]
# Told what became of `count` announcements (`reason` for dropped ones).
Report = Callable[[Outcome, DropReason | None, int], None]


def _ignore(_outcome: Outcome, _reason: DropReason | None, _count: int) -> None:
    return None


class AnnouncementQueue:
    """Collects one room's announcements and speaks each coalesced batch, one at a time.

    `speak` is awaited to completion before the next batch, so two announcements never
    overlap; it is also where the room waits for silence before talking. At most
    `max_pending` announcements wait; `report` hears every outcome.
    """

    def __init__(
        self,
        speak: Speak,
        *,
        window_s: float,
        max_pending: int = DEFAULT_MAX_PENDING,
        report: Report = _ignore,
        quiet_gap_s: float = _QUIET_GAP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._speak = speak
        self._window = window_s
        self._quiet = min(quiet_gap_s, window_s)
        self._max_pending = max_pending
        self._report = report
        self._clock = clock
        self._pending: list[Announcement] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_hand = 0  # announcements of the batch being spoken right now
        # The most recent announcements spoken, for a health page or a test to read.
        self.spoken: deque[Announcement] = deque(maxlen=_RECENT_SPOKEN)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="announcements")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        left = len(self._pending) + self._in_hand
        self._pending.clear()
        self._in_hand = 0
        if left:
            self._report(Outcome.DROPPED, DropReason.CLOSED, left)

    def submit(self, announcement: Announcement) -> None:
        if len(self._pending) >= self._max_pending:
            victim = self._least_important()
            if _importance(announcement) < _importance(self._pending[victim]):
                self._drop_full(announcement)
                return
            self._drop_full(self._pending.pop(victim))
        self._pending.append(announcement)
        self._arrived.set()

    def _least_important(self) -> int:
        """Index of the pending announcement to give up first: lowest category, then lowest
        priority, then the oldest."""
        return min(range(len(self._pending)), key=lambda i: _importance(self._pending[i]))

    def _drop_full(self, announcement: Announcement) -> None:
        log.warning(
            "announcement dropped: room %s already holds %d waiting (%s, priority %d)",
            announcement.room,
            self._max_pending,
            announcement.category,
            announcement.priority,
        )
        self._report(Outcome.DROPPED, DropReason.QUEUE_FULL, 1)

    async def _collect(self) -> list[Announcement]:
        await self._arrived.wait()
        first = self._clock()
        while True:
            self._arrived.clear()
            left = first + self._window - self._clock()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(left, self._quiet))
            except TimeoutError:
                break  # the burst went quiet: no reason to wait out the window
        batch, self._pending = self._pending, []
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            plan = plan_batch(batch)
            if plan.superseded:
                self._report(Outcome.SUPERSEDED, None, plan.superseded)
            if plan.too_long:
                self._report(Outcome.DROPPED, DropReason.TOO_LONG, plan.too_long)
            if plan.merged is None:
                continue
            self._in_hand = plan.represented
            try:
                reason = await self._speak(plan.merged)
            except Exception:
                log.exception("speaking an announcement failed in room %s", plan.merged.room)
                reason = DropReason.FAILED
            self._in_hand = 0
            if reason is None:
                self.spoken.append(plan.merged)
                self._report(Outcome.SPOKEN, None, plan.represented)
            else:
                self._report(Outcome.DROPPED, reason, plan.represented)


def _importance(announcement: Announcement) -> tuple[int, int]:
    return (rank(announcement), announcement.priority)

"""Announcements other services ask the agent to speak (`agent.voice.announce`).

Bursts are coalesced: everything that arrives within a window is spoken as one, flushed early
once the burst goes quiet. A higher category supersedes lower ones in the same batch
(shutdown over ready over init), so a room hears "shutting down", not "ready" just before it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import msgspec
from arc_common.errors import BadRequest

# Higher supersedes lower; categories not listed rank with `info`.
CATEGORY_RANK: dict[str, int] = {"info": 0, "init": 1, "ready": 2, "shutdown": 3}
_QUIET_GAP_S = 0.3


class Announcement(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    v: int = 1
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    priority: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "info"
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] = "unknown"
    room: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]

    @property
    def rank(self) -> int:
        return CATEGORY_RANK.get(self.category, 0)


_decoder = msgspec.msgpack.Decoder(Announcement)


def decode_announcement(data: bytes) -> Announcement:
    try:
        announcement = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid announcement: {exc}") from None
    except msgspec.DecodeError:
        raise BadRequest("announcement is not a MessagePack map") from None
    if not announcement.text.strip():
        raise BadRequest("announcement text is empty")
    return announcement


def coalesce(batch: list[Announcement]) -> Announcement | None:
    """One announcement for a burst: only the highest category survives; its texts are
    joined by priority (highest first), arrival order breaking ties, duplicates dropped."""
    if not batch:
        return None
    top = max(a.rank for a in batch)
    kept = [a for a in batch if a.rank == top]
    ordered = sorted(enumerate(kept), key=lambda pair: (-pair[1].priority, pair[0]))
    texts: list[str] = []
    for _, a in ordered:
        text = a.text.strip()
        if text not in texts:
            texts.append(text)
    lead = ordered[0][1]
    sources = sorted({a.source for a in kept})
    return Announcement(
        text=" ".join(texts),
        priority=max(a.priority for a in kept),
        category=lead.category,
        source=",".join(sources)[:256],
        room=lead.room,
    )


Speak = Callable[[Announcement], Awaitable[None]]


class AnnouncementQueue:
    """Collects one room's announcements and speaks each coalesced batch, one at a time.

    `speak` is awaited to completion before the next batch, so two announcements never
    overlap; it is also where the room waits for silence before talking.
    """

    def __init__(
        self,
        speak: Speak,
        *,
        window_s: float,
        quiet_gap_s: float = _QUIET_GAP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._speak = speak
        self._window = window_s
        self._quiet = min(quiet_gap_s, window_s)
        self._clock = clock
        self._pending: list[Announcement] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.spoken: list[Announcement] = []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="announcements")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def submit(self, announcement: Announcement) -> None:
        self._pending.append(announcement)
        self._arrived.set()

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
            merged = coalesce(batch)
            if merged is None:
                continue
            await self._speak(merged)
            self.spoken.append(merged)

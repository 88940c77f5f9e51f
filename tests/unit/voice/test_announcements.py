import asyncio

import msgspec
import pytest
from arc_common.errors import BadRequest
from arc_voice.announcements import (
    Announcement,
    AnnouncementQueue,
    coalesce,
    decode_announcement,
)

pytestmark = pytest.mark.unit


def _a(text: str, category: str = "info", priority: int = 0, source: str = "svc") -> Announcement:
    return Announcement(text=text, category=category, priority=priority, source=source, room="r")


def test_decode_validates() -> None:
    good = msgspec.msgpack.encode({"text": "Deploy done.", "room": "r", "category": "ready"})
    assert decode_announcement(good).category == "ready"
    for bad in (
        b"\xc1",
        msgspec.msgpack.encode({"text": "x"}),  # no room
        msgspec.msgpack.encode({"text": "   ", "room": "r"}),
        msgspec.msgpack.encode({"text": "x", "room": "r", "priority": -1}),
        msgspec.msgpack.encode({"text": "x" * 2001, "room": "r"}),
    ):
        with pytest.raises(BadRequest):
            decode_announcement(bad)


def test_higher_category_supersedes_lower_ones() -> None:
    merged = coalesce(
        [_a("Starting up.", "init"), _a("All systems ready.", "ready"), _a("Index built.", "init")]
    )
    assert merged is not None
    assert merged.text == "All systems ready."
    merged = coalesce([_a("Ready.", "ready"), _a("Shutting down now.", "shutdown", source="ops")])
    assert merged is not None and merged.category == "shutdown"
    assert merged.text == "Shutting down now." and merged.source == "ops"


def test_same_category_joins_by_priority_without_duplicates() -> None:
    merged = coalesce(
        [
            _a("Low.", priority=1, source="a"),
            _a("High.", priority=9, source="b"),
            _a("Low.", priority=1, source="a"),
            _a("Middle.", priority=5, source="c"),
        ]
    )
    assert merged is not None
    assert merged.text == "High. Middle. Low."
    assert merged.priority == 9 and merged.source == "a,b,c"
    assert coalesce([]) is None


async def test_a_burst_is_spoken_once_and_one_at_a_time() -> None:
    spoken: list[str] = []
    speaking = asyncio.Lock()
    overlaps = 0

    async def speak(a: Announcement) -> None:
        nonlocal overlaps
        if speaking.locked():
            overlaps += 1
        async with speaking:
            spoken.append(a.text)
            await asyncio.sleep(0.05)

    queue = AnnouncementQueue(speak, window_s=0.3, quiet_gap_s=0.1)
    queue.start()
    try:
        queue.submit(_a("One.", "init"))
        await asyncio.sleep(0.02)
        queue.submit(_a("Two.", "ready"))
        await asyncio.sleep(0.5)
        queue.submit(_a("Three.", "info"))
        await asyncio.sleep(0.3)
    finally:
        await queue.aclose()
    assert spoken == ["Two.", "Three."]
    assert overlaps == 0


async def test_a_quiet_burst_flushes_before_the_window_ends() -> None:
    spoken_at: list[float] = []
    loop = asyncio.get_running_loop()

    async def speak(_a: Announcement) -> None:
        spoken_at.append(loop.time())

    queue = AnnouncementQueue(speak, window_s=5.0, quiet_gap_s=0.1)
    queue.start()
    try:
        submitted = loop.time()
        queue.submit(_a("Hello."))
        while not spoken_at:
            await asyncio.sleep(0.01)
            assert loop.time() - submitted < 2.0
    finally:
        await queue.aclose()
    assert spoken_at[0] - submitted < 0.5

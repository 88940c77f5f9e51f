import asyncio

import msgspec
import pytest
from arc_common import wire
from arc_common.errors import BadRequest
from arc_common.wire import Announcement, decode_announcement
from arc_voice.announcements import (
    AnnouncementQueue,
    DropReason,
    Outcome,
    coalesce,
    plan_batch,
)

from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.unit


def _a(text: str, category: str = "info", priority: int = 0, source: str = "svc") -> Announcement:
    return Announcement(text=text, category=category, priority=priority, source=source, room="r")


Reported = list[tuple[Outcome, DropReason | None, int]]


def _totals(reported: Reported) -> dict[str, int]:
    totals: dict[str, int] = {}
    for outcome, reason, count in reported:
        key = outcome.value if reason is None else f"{outcome.value}:{reason.value}"
        totals[key] = totals.get(key, 0) + count
    return totals


def test_the_message_is_the_contracts() -> None:
    assert Announcement.schema == "announce/1"
    # The wire form is unchanged by the move: every field, defaults included, in this order.
    encoded = wire.encode(Announcement(text="Hi.", room="lobby"))
    assert msgspec.msgpack.decode(encoded) == {
        "v": 1,
        "text": "Hi.",
        "priority": 0,
        "category": "info",
        "source": "unknown",
        "room": "lobby",
    }
    assert list(msgspec.msgpack.decode(encoded)) == [
        "v", "text", "priority", "category", "source", "room"
    ]  # fmt: skip


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
        await asyncio.sleep(0.02)  # within the burst's quiet gap: coalesced with the next
        queue.submit(_a("Two.", "ready"))
        await wait_until(lambda: spoken and not speaking.locked(), what="the burst spoken")
        queue.submit(_a("Three.", "info"))
        await wait_until(lambda: len(spoken) == 2 and not speaking.locked(), what="Three.")
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
        await wait_until(lambda: spoken_at, what="the announcement spoken")
    finally:
        await queue.aclose()
    # Generous against the 0.1 s quiet gap, yet well before the 5 s window would end.
    assert spoken_at[0] - submitted < 2.5


def test_error_outranks_ready_and_shutdown_outranks_error() -> None:
    merged = coalesce([_a("All systems ready.", "ready", 9), _a("The index failed.", "error")])
    assert merged is not None and merged.category == "error"
    assert merged.text == "The index failed."
    merged = coalesce([_a("The index failed.", "error", 9), _a("Going down.", "shutdown")])
    assert merged is not None and merged.text == "Going down."
    merged = coalesce([_a("Starting.", "init"), _a("Odd.", "weird"), _a("Disk full.", "error")])
    assert merged is not None and merged.text == "Disk full."


def test_a_batch_says_what_it_speaks_for_supersedes_and_cannot_fit() -> None:
    plan = plan_batch(
        [
            _a("Ready.", "ready"),
            _a("A" * 1500 + ".", "error", priority=5),
            _a("B" * 600 + ".", "error", priority=1),  # 1501 + 1 + 601 > 2000
            _a("A" * 1500 + ".", "error", priority=5),  # a duplicate is spoken once
            _a("Short.", "error", priority=0),
        ]
    )
    assert plan.merged is not None
    assert plan.merged.text == "A" * 1500 + ". Short."
    assert len(plan.merged.text) <= 2000
    assert (plan.represented, plan.superseded, plan.too_long) == (3, 1, 1)


async def test_a_full_queue_drops_the_least_important_and_counts_it() -> None:
    spoken: list[str] = []
    reported: Reported = []
    release = asyncio.Event()
    entered = asyncio.Event()
    second = asyncio.Event()

    async def speak(a: Announcement) -> DropReason | None:
        entered.set()
        await release.wait()
        spoken.append(a.text)
        if len(spoken) == 2:
            second.set()
        return None

    queue = AnnouncementQueue(
        speak,
        window_s=0.05,
        quiet_gap_s=0.01,
        max_pending=3,
        report=lambda outcome, reason, count: reported.append((outcome, reason, count)),
    )
    queue.start()
    try:
        queue.submit(_a("First.", "info"))
        await asyncio.wait_for(entered.wait(), timeout=5)  # held by `release` from now on
        queue.submit(_a("Old info.", "info", priority=1))
        queue.submit(_a("Ready.", "ready"))
        queue.submit(_a("New info.", "info", priority=1))
        assert queue.pending == 3
        # Full: the oldest of the least important (old info) gives way to an error.
        queue.submit(_a("Disk failed.", "error"))
        assert queue.pending == 3
        # Full, and a plain info of priority 0 is less important than all waiting: itself.
        queue.submit(_a("Trivia.", "info", priority=0))
        assert queue.pending == 3
        release.set()
        await asyncio.wait_for(second.wait(), timeout=5)
    finally:
        await queue.aclose()
    assert spoken == ["First.", "Disk failed."]
    assert _totals(reported) == {
        "dropped:queue_full": 2,
        "superseded": 2,  # ready and new info, under the error
        "spoken": 2,
    }


async def test_every_outcome_of_speaking_is_reported() -> None:
    reported: Reported = []
    answers: list[DropReason | None] = [DropReason.ROOM_BUSY, None]
    changed = asyncio.Event()

    async def speak(_a: Announcement) -> DropReason | None:
        return answers.pop(0)

    def report(outcome: Outcome, reason: DropReason | None, count: int) -> None:
        reported.append((outcome, reason, count))
        changed.set()

    queue = AnnouncementQueue(speak, window_s=0.05, quiet_gap_s=0.01, report=report)
    queue.start()
    try:
        queue.submit(_a("One.", "ready"))
        queue.submit(_a("Two.", "ready"))
        await asyncio.wait_for(changed.wait(), timeout=5)
        changed.clear()
        queue.submit(_a("Three."))
        await asyncio.wait_for(changed.wait(), timeout=5)
    finally:
        await queue.aclose()
    assert reported == [
        (Outcome.DROPPED, DropReason.ROOM_BUSY, 2),
        (Outcome.SPOKEN, None, 1),
    ]
    assert [a.text for a in queue.spoken] == ["Three."]


async def test_closing_the_room_counts_what_was_never_spoken() -> None:
    reported: Reported = []
    started = asyncio.Event()

    async def speak(_a: Announcement) -> DropReason | None:
        started.set()
        await asyncio.sleep(60)
        return None

    queue = AnnouncementQueue(
        speak,
        window_s=0.05,
        quiet_gap_s=0.01,
        report=lambda outcome, reason, count: reported.append((outcome, reason, count)),
    )
    queue.start()
    queue.submit(_a("Being said.", "ready"))
    queue.submit(_a("Also being said.", "ready"))
    await asyncio.wait_for(started.wait(), timeout=5)
    queue.submit(_a("Waiting."))
    await queue.aclose()
    assert reported == [(Outcome.DROPPED, DropReason.CLOSED, 3)]


def test_a_queue_needs_room_for_one() -> None:
    async def speak(_a: Announcement) -> None:
        return None

    with pytest.raises(ValueError):
        AnnouncementQueue(speak, window_s=1.0, max_pending=0)

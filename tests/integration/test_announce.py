"""`arc_common.announce.announce`, the client side of `agent.voice.announce`, against a real
NATS server: what goes on the wire, and what never leaves."""

from __future__ import annotations

import msgspec
import pytest
from arc_common.announce import announce
from arc_common.errors import BadRequest
from arc_common.subjects import prefixed
from arc_common.wire import Announcement
from nats.aio.client import Client

pytestmark = pytest.mark.integration


async def test_announce_publishes_the_contract_message_with_its_schema(
    nc: Client, subject_prefix: str
) -> None:
    sub = await nc.subscribe(prefixed(subject_prefix, "agent.voice.announce"))
    await nc.flush()
    sent = await announce(
        nc,
        "lobby",
        "We close in ten minutes.",
        category="shutdown",
        priority=7,
        source="facilities",
        subject_prefix=subject_prefix,
    )
    msg = await sub.next_msg(timeout=2)
    await sub.unsubscribe()
    assert msg.headers is not None and msg.headers["arc-schema"] == "announce/1"
    assert msgspec.msgpack.decode(msg.data) == {
        "v": 1,
        "text": "We close in ten minutes.",
        "priority": 7,
        "category": "shutdown",
        "source": "facilities",
        "room": "lobby",
    }
    assert sent == Announcement(
        text="We close in ten minutes.",
        priority=7,
        category="shutdown",
        source="facilities",
        room="lobby",
    )


@pytest.mark.parametrize(
    ("room", "text", "extra"),
    [
        ("lobby", "   ", {}),
        ("lobby", "x" * 2001, {}),
        ("", "Hello.", {}),
        ("lobby", "Hello.", {"priority": 1001}),
        ("lobby", "Hello.", {"category": "c" * 65}),
    ],
    ids=["blank", "too-long", "no-room", "priority", "category"],
)
async def test_a_bad_announcement_raises_and_sends_nothing(
    nc: Client, subject_prefix: str, room: str, text: str, extra: dict[str, object]
) -> None:
    sub = await nc.subscribe(prefixed(subject_prefix, "agent.voice.announce"))
    await nc.flush()
    with pytest.raises(BadRequest):
        await announce(nc, room, text, subject_prefix=subject_prefix, **extra)  # type: ignore[arg-type]
    await nc.flush()
    with pytest.raises(TimeoutError):
        await sub.next_msg(timeout=0.2)
    await sub.unsubscribe()

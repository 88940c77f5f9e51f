"""Ask the voice agent in a room to say something: `await announce(nc, "lobby", "We close at
six.", category="shutdown", source="facilities")`.

Fire-and-forget, as the contract has it: the announcement is validated here with the voice
worker's own rules (a bad one raises `BadRequest` before anything is sent), published on
`agent.voice.announce` with `arc-schema: announce/1` and the caller's trace context, and the
worker speaks it when the room falls quiet (it records `announcement.spoken` once it has).
"""

from __future__ import annotations

from nats.aio.client import Client

from arc_common.envelope import headers_for
from arc_common.subjects import VOICE_ANNOUNCE, prefixed
from arc_common.wire import Announcement, decode_announcement, encode


async def announce(
    nc: Client,
    room: str,
    text: str,
    *,
    category: str = "info",
    priority: int = 0,
    source: str = "unknown",
    subject_prefix: str = "",
) -> Announcement:
    """Publish one announcement for `room` and return it as sent."""
    message = Announcement(
        text=text, priority=priority, category=category, source=source, room=room
    )
    data = encode(message)
    # Constructing a struct checks no limits; decoding applies exactly the worker's rules.
    decode_announcement(data)
    await nc.publish(
        prefixed(subject_prefix, VOICE_ANNOUNCE), data, headers=headers_for(Announcement.schema)
    )
    return message

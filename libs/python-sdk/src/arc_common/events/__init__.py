"""Durable events: versioned schemas, validation, and the transactional outbox writer.

Services call `write_event(conn, event)` inside the transaction that changes the state the
event describes; the events service relays the outbox to Pulsar and consumes it.
"""

from arc_common.events.codec import decode, encode, to_builtins, validate
from arc_common.events.outbox import write_event, write_events
from arc_common.events.schemas import (
    EVENT_TYPES,
    SCHEMAS,
    TOPICS,
    AnnouncementSpoken,
    ConversationTurn,
    Event,
    SessionEnded,
    SessionStarted,
    TrackPublished,
    TrackUnpublished,
    TurnMetrics,
)

__all__ = [
    "EVENT_TYPES",
    "SCHEMAS",
    "TOPICS",
    "AnnouncementSpoken",
    "ConversationTurn",
    "Event",
    "SessionEnded",
    "SessionStarted",
    "TrackPublished",
    "TrackUnpublished",
    "TurnMetrics",
    "decode",
    "encode",
    "to_builtins",
    "validate",
    "write_event",
    "write_events",
]

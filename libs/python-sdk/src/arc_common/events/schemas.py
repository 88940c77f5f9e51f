"""The durable events of the v1 contract: one versioned schema per event type, in one place.

An event is a msgspec struct. Its class variables name its `TYPE`, schema `VERSION` and the
Pulsar `TOPIC` it travels on; its fields are the schema. The same struct validates an event
when a service writes it to the outbox and when a consumer reads it from Pulsar.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

import msgspec

from arc_common.subjects import TOPIC_AGENT_LIFECYCLE, TOPIC_CONVERSATION, TOPIC_SESSION_METRICS

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
# A turn's text is bounded by the brain's 4000-character request limit; answers may run longer.
Text = Annotated[str, msgspec.Meta(max_length=16_000)]
Millis = Annotated[float, msgspec.Meta(ge=0.0, le=3_600_000.0)]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]


def _now() -> datetime:
    return datetime.now(UTC)


class Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Base of every durable event: a unique id (consumers de-duplicate on it), when it
    happened (UTC) and the session it belongs to, which is also its ordering key."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]
    TOPIC: ClassVar[str]

    event_id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    occurred_at: UtcTime = msgspec.field(default_factory=_now)
    session_id: Id | None = None

    def check(self) -> None:
        """Rules a type annotation cannot express; raise `ValueError` with the reason."""
        return None


class ConversationTurn(Event, kw_only=True):
    """One user turn and the assistant's answer to it."""

    TYPE: ClassVar[str] = "conversation.turn"
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = TOPIC_CONVERSATION

    session_id: Id
    turn_id: Id
    user_id: Id
    user_text: Text
    assistant_text: Text
    interrupted: bool = False
    route: Name | None = None


class SessionStarted(Event, kw_only=True):
    TYPE: ClassVar[str] = "session.started"
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = TOPIC_AGENT_LIFECYCLE

    session_id: Id
    room: Name
    user_id: Id | None


class SessionEnded(Event, kw_only=True):
    TYPE: ClassVar[str] = "session.ended"
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = TOPIC_AGENT_LIFECYCLE

    session_id: Id
    room: Name
    user_id: Id | None
    reason: Name | None


TrackKind = Literal["audio", "video"]


class _Track(Event, kw_only=True):
    """A track published into or unpublished from a room. Both events describe the same
    track, so they share its fields, as the Go SDK's `Track` does; a v2 of either would be a
    struct of its own, like any other v2."""

    TOPIC: ClassVar[str] = TOPIC_AGENT_LIFECYCLE

    session_id: Id
    room: Name
    participant: Name
    track_sid: Id
    kind: TrackKind


class TrackPublished(_Track, kw_only=True):
    TYPE: ClassVar[str] = "track.published"
    VERSION: ClassVar[int] = 1


class TrackUnpublished(_Track, kw_only=True):
    TYPE: ClassVar[str] = "track.unpublished"
    VERSION: ClassVar[int] = 1


class AnnouncementSpoken(Event, kw_only=True):
    """An announcement was spoken into a room; it may belong to no session."""

    TYPE: ClassVar[str] = "announcement.spoken"
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = TOPIC_AGENT_LIFECYCLE

    room: Name
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    category: Name
    priority: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    source: Name


class TurnMetrics(Event, kw_only=True):
    """Latency breakdown of one voice turn, in milliseconds; a stage that did not run (or was
    not measured) is null."""

    TYPE: ClassVar[str] = "turn.metrics"
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str] = TOPIC_SESSION_METRICS

    session_id: Id
    turn_id: Id
    end_of_speech_ms: Millis | None = None
    stt_ms: Millis | None = None
    brain_first_delta_ms: Millis | None = None
    tts_first_chunk_ms: Millis | None = None
    transport_ms: Millis | None = None
    voice_to_voice_ms: Millis | None = None


EVENT_TYPES: tuple[type[Event], ...] = (
    ConversationTurn,
    SessionStarted,
    SessionEnded,
    TrackPublished,
    TrackUnpublished,
    AnnouncementSpoken,
    TurnMetrics,
)

# (type, version) -> schema. A v2 of a type is a new struct registered beside v1, so
# consumers keep reading what older writers left in the outbox and on the topics.
SCHEMAS: dict[tuple[str, int], type[Event]] = {(cls.TYPE, cls.VERSION): cls for cls in EVENT_TYPES}
TOPICS: frozenset[str] = frozenset(cls.TOPIC for cls in EVENT_TYPES)

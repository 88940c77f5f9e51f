"""Event schemas and their JSON wire form: what is valid, what is rejected and why."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest
from arc_common.errors import BadRequest, ErrorCode
from arc_common.events import (
    EVENT_TYPES,
    SCHEMAS,
    AnnouncementSpoken,
    ConversationTurn,
    Event,
    SessionEnded,
    SessionStarted,
    TrackPublished,
    TrackUnpublished,
    TurnMetrics,
    decode,
    encode,
    to_builtins,
    validate,
)
from arc_common.subjects import TOPIC_AGENT_LIFECYCLE, TOPIC_CONVERSATION, TOPIC_SESSION_METRICS

pytestmark = pytest.mark.unit

SAMPLES: list[Event] = [
    ConversationTurn(
        session_id="s", turn_id="t", user_id="u", user_text="hi", assistant_text="hello",
        interrupted=True, route="weather",
    ),
    SessionStarted(session_id="s", room="r", user_id="u"),
    SessionEnded(session_id="s", room="r", user_id=None, reason="hang-up"),
    TrackPublished(session_id="s", room="r", participant="p", track_sid="TR_1", kind="audio"),
    TrackUnpublished(session_id="s", room="r", participant="p", track_sid="TR_1", kind="video"),
    AnnouncementSpoken(room="r", text="Fire drill at noon", category="safety", priority=5,
                       source="ops"),
    TurnMetrics(session_id="s", turn_id="t", stt_ms=81.5, voice_to_voice_ms=700.0),
]  # fmt: skip


def test_every_type_has_a_sample_and_a_contract_topic() -> None:
    assert {type(e) for e in SAMPLES} == set(EVENT_TYPES)
    assert len(SCHEMAS) == len(EVENT_TYPES)
    topics = {cls.TYPE: cls.TOPIC for cls in EVENT_TYPES}
    assert topics["conversation.turn"] == TOPIC_CONVERSATION
    assert topics["turn.metrics"] == TOPIC_SESSION_METRICS
    assert {topics[t] for t in ("session.started", "track.published", "announcement.spoken")} == {
        TOPIC_AGENT_LIFECYCLE
    }


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).TYPE)
def test_round_trip_through_the_wire_form(event: Event) -> None:
    data = encode(event)
    body = msgspec.json.decode(data)
    assert body["type"] == type(event).TYPE and body["v"] == 1
    assert body["event_id"] == str(event.event_id)
    assert body["occurred_at"].endswith("Z")
    assert decode(data) == event


def test_defaults_give_a_fresh_id_and_a_utc_time() -> None:
    a, b = (
        SessionStarted(session_id="s", room="r", user_id=None),
        SessionStarted(session_id="s", room="r", user_id=None),
    )
    assert a.event_id != b.event_id and isinstance(a.event_id, uuid.UUID)
    assert a.occurred_at.tzinfo is not None
    assert abs((datetime.now(UTC) - a.occurred_at).total_seconds()) < 5


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (ConversationTurn(session_id="", turn_id="t", user_id="u", user_text="a",
                          assistant_text="b"), "length >= 1 - at `session_id`"),
        (TurnMetrics(session_id="s", turn_id="t", stt_ms=-3.0), ">= 0.0 - at `stt_ms`"),
        (TrackPublished(session_id="s", room="r", participant="p", track_sid="x",
                        kind="screen"), "at `kind`"),  # type: ignore[arg-type]
        (SessionStarted(session_id="s", room="r", user_id=None,
                        occurred_at=datetime(2026, 1, 1)), "timezone"),
        (AnnouncementSpoken(room="r", text="", category="c", priority=1, source="s"),
         "at `text`"),
        (AnnouncementSpoken(room="r", text="t", category="c", priority="high",  # type: ignore[arg-type]
                            source="s"), "Expected `int`"),
    ],
)  # fmt: skip
def test_invalid_events_are_rejected_with_the_reason(event: Event, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        validate(event)
    assert caught.value.code is ErrorCode.BAD_REQUEST
    assert not caught.value.retryable
    assert f"{type(event).TYPE}/v1" in caught.value.message
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not an event"),
        (b"[1, 2]", "not an event"),
        (b'{"type": "turn.metrics"}', "not an event"),
        (b'{"type": "turn.metrics", "v": 2, "session_id": "s"}', "unknown event schema"),
        (b'{"type": "turn.metrics", "v": 1, "session_id": "s"}', "missing required field"),
        (
            b'{"type": "turn.metrics", "v": 1, "event_id": "nope", "session_id": "s",'
            b' "turn_id": "t"}',
            "Invalid UUID",
        ),
    ],
)
def test_bad_bytes_on_read_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        decode(data)


def test_unknown_fields_from_a_newer_writer_are_ignored() -> None:
    body = to_builtins(SAMPLES[1])
    body["added_in_a_later_minor"] = 1
    assert decode(msgspec.json.encode(body)) == SAMPLES[1]


def test_a_struct_that_is_not_a_registered_schema_is_rejected() -> None:
    class Stray(SessionStarted, kw_only=True):
        TYPE = "stray.event"

    with pytest.raises(BadRequest, match="not a registered event schema"):
        validate(Stray(session_id="s", room="r", user_id=None))

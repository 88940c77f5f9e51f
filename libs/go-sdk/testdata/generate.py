"""Writes the golden contract files the Go SDK's tests read, using arc_common's own encoders.

    uv run --frozen python libs/go-sdk/testdata/generate.py

`tests/unit/common/test_go_sdk_golden.py` fails when the checked-in files differ from what
this produces now, so a field renamed in Python fails there, and the Go tests fail on a
field renamed in Go. Values are fixed (ids, times) so the bytes are reproducible.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from arc_common import events
from arc_common.errors import ArcError
from arc_common.streaming.server import StreamingEndpoint, _EndpointRunner
from arc_common.wire import (
    Announcement,
    BrainRequest,
    Cancel,
    Commit,
    ErrorBody,
    ReplyChunk,
    Request,
    TtsRequest,
    decode_announcement,
    encode,
)

HERE = Path(__file__).resolve().parent
AT = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=0x5EED_0000_0000_4000_8000_0000_0000_0000 + n)


def wire_messages() -> dict[str, bytes]:
    """The NATS messages of the contract, each as a service sends it."""
    pcm = bytes(range(256)) * 3 + bytes(192)  # 960 bytes: one 20 ms frame at 24 kHz
    return {
        "brain_request.msgpack": encode(
            BrainRequest(
                v=1,
                session_id="s-1",
                turn_id="t-1",
                user_id="u-1",
                text="What time is it?",
                room="lobby",
                locale="en-US",
                deadline_ms=8000,
                tentative=True,
            )
        ),
        "brain_request_minimal.msgpack": encode(
            BrainRequest(v=1, session_id="s-1", turn_id="t-2", user_id="u-1", text="hello")
        ),
        "tts_request.msgpack": encode(
            TtsRequest(
                v=1,
                session_id="s-1",
                turn_id="t-3",
                text="Hello there.",
                voice="en_US-joe-medium",
                sample_rate=24000,
                frame_ms=40,
            )
        ),
        "tts_request_defaults.msgpack": encode(
            TtsRequest(v=1, session_id="s-1", turn_id="t-4", text="Hi.")
        ),
        "reply_delta.msgpack": encode(
            ReplyChunk(v=1, turn_id="t-1", seq=0, kind="delta", text="It is nine.")
        ),
        "reply_audio.msgpack": encode(
            ReplyChunk(v=1, turn_id="t-3", seq=0, kind="audio", pcm=pcm, sample_rate=24000)
        ),
        "reply_end.msgpack": encode(ReplyChunk(v=1, turn_id="t-1", seq=1, kind="end")),
        "reply_end_cancelled.msgpack": encode(
            ReplyChunk(v=1, turn_id="t-1", seq=2, kind="end", reason="cancelled")
        ),
        "reply_error.msgpack": encode(
            ReplyChunk(
                v=1,
                turn_id="t-1",
                seq=0,
                kind="error",
                error=ErrorBody(
                    code="too_large", message="text has 4001 characters; the limit is 4000"
                ),
            )
        ),
        "cancel.msgpack": encode(Cancel(turn_id="t-1")),
        "commit.msgpack": encode(Commit(turn_id="t-1")),
        "announcement.msgpack": encode(
            Announcement(
                text="The building closes in ten minutes.",
                priority=5,
                category="shutdown",
                source="facilities",
                room="lobby",
            )
        ),
    }


def durable_events() -> list[events.Event]:
    common: dict[str, Any] = {"occurred_at": AT}
    return [
        events.ConversationTurn(
            event_id=_id(1), session_id="s-1", turn_id="t-1", user_id="u-1",
            user_text="What time is it?", assistant_text="It is nine.", route="skill", **common,
        ),
        events.SessionStarted(
            event_id=_id(2), session_id="s-1", room="lobby", user_id="u-1", **common
        ),
        events.SessionEnded(
            event_id=_id(3), session_id="s-1", room="lobby", user_id=None, reason="hangup", **common
        ),
        events.TrackPublished(
            event_id=_id(4), session_id="s-1", room="lobby", participant="agent-lobby",
            track_sid="TR_abc", kind="audio", **common,
        ),
        events.TrackUnpublished(
            event_id=_id(5), session_id="s-1", room="lobby", participant="agent-lobby",
            track_sid="TR_abc", kind="audio", **common,
        ),
        events.AnnouncementSpoken(
            event_id=_id(6), room="lobby", text="Closing soon.", category="shutdown",
            priority=5, source="facilities", **common,
        ),
        events.TurnMetrics(
            event_id=_id(7), session_id="s-1", turn_id="t-1", stt_ms=80.5,
            brain_first_delta_ms=120.0, voice_to_voice_ms=640.25, **common,
        ),
    ]  # fmt: skip


LIFECYCLE_ON_NATS = (
    events.SessionStarted,
    events.SessionEnded,
    events.TrackPublished,
    events.TrackUnpublished,
)


def event_files() -> dict[str, bytes]:
    """Durable events as JSON (Pulsar), and the lifecycle ones also as MessagePack the way
    the voice worker publishes them on NATS (arc_voice.lifecycle)."""
    out: dict[str, bytes] = {}
    for event in durable_events():
        name = type(event).TYPE.replace(".", "_")
        out[f"event_{name}.json"] = events.encode(event)
        if isinstance(event, LIFECYCLE_ON_NATS):
            out[f"event_{name}.msgpack"] = msgspec.msgpack.encode(events.to_builtins(event))
    return out


def _code(request_type: type[Request], data: bytes) -> str:
    """What the real serving code answers for `data`: '' when accepted, else the code."""
    runner: _EndpointRunner[Any] = _EndpointRunner(
        None,  # type: ignore[arg-type]  # parse() never touches the connection
        StreamingEndpoint(
            name="golden", subject="golden", queue_group="golden", cancel_subject="golden",
            request_type=request_type, handler=None,  # type: ignore[arg-type]
        ),
    )  # fmt: skip
    try:
        runner.parse(data)
    except ArcError as exc:
        return exc.code.value
    return ""


def _announcement_code(data: bytes) -> str:
    try:
        decode_announcement(data)
    except ArcError as exc:
        return exc.code.value
    return ""


def request_cases() -> list[dict[str, Any]]:
    """Requests and announcements, valid and not, with the code Python's real decoding gives
    each; the Go validation must give the same."""
    pack = msgspec.msgpack.encode
    brain = {"v": 1, "session_id": "s", "turn_id": "t", "user_id": "u", "text": "hi"}
    tts = {"v": 1, "session_id": "s", "turn_id": "t", "text": "hi"}
    ann = {"v": 1, "text": "hello", "room": "lobby"}
    raw: list[tuple[str, str, bytes]] = [
        ("brain", "valid", pack(brain)),
        ("brain", "not msgpack", b"\xc1\xff not msgpack"),
        ("brain", "an array", pack([1, 2, 3])),
        ("brain", "missing user_id", pack({k: v for k, v in brain.items() if k != "user_id"})),
        ("brain", "missing v", pack({k: v for k, v in brain.items() if k != "v"})),
        ("brain", "v 2", pack({**brain, "v": 2})),
        ("brain", "blank text", pack({**brain, "text": " \n\t "})),
        ("brain", "separator-only text", pack({**brain, "text": "\x1c\x1f"})),
        ("brain", "text 4001", pack({**brain, "text": "x" * 4001})),
        ("brain", "text 4000 wide chars padded", pack({**brain, "text": " " + "é" * 4000 + " "})),
        ("brain", "text as int", pack({**brain, "text": 5})),
        ("brain", "turn_id 129", pack({**brain, "turn_id": "t" * 129})),
        ("brain", "empty session_id", pack({**brain, "session_id": ""})),
        ("brain", "deadline 600001", pack({**brain, "deadline_ms": 600_001})),
        ("brain", "deadline negative", pack({**brain, "deadline_ms": -5})),
        ("brain", "deadline 600000", pack({**brain, "deadline_ms": 600_000})),
        ("brain", "unknown field", pack({**brain, "mood": "sunny"})),
        ("tts", "valid", pack(tts)),
        ("tts", "rate 44100", pack({**tts, "sample_rate": 44100})),
        ("tts", "every rate", pack({**tts, "sample_rate": 22050, "frame_ms": 10})),
        ("tts", "frame 30", pack({**tts, "frame_ms": 30})),
        ("tts", "text 2001", pack({**tts, "text": "z" * 2001})),
        ("tts", "rate as text", pack({**tts, "sample_rate": "fast"})),
        ("tts", "missing text", pack({k: v for k, v in tts.items() if k != "text"})),
        ("announcement", "valid", pack(ann)),
        ("announcement", "blank text", pack({**ann, "text": "   "})),
        ("announcement", "priority 1001", pack({**ann, "priority": 1001})),
        ("announcement", "category 65", pack({**ann, "category": "c" * 65})),
        ("announcement", "missing room", pack({"v": 1, "text": "hello"})),
        ("announcement", "not msgpack", b"\xc1"),
    ]
    codes = {
        "brain": lambda d: _code(BrainRequest, d),
        "tts": lambda d: _code(TtsRequest, d),
        "announcement": _announcement_code,
    }
    return [
        {
            "kind": kind,
            "name": name,
            "payload": base64.b64encode(data).decode(),
            "code": codes[kind](data),
        }
        for kind, name, data in raw
    ]


def build() -> dict[str, bytes]:
    files = {**wire_messages(), **event_files()}
    cases = json.dumps(request_cases(), indent=1, ensure_ascii=False) + "\n"
    files["request_cases.json"] = cases.encode()
    return files


def main() -> None:
    for name, data in sorted(build().items()):
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()

"""The v1 wire messages, as msgspec structs: decoding and validating is one fast step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec

from arc_common.errors import BadRequest, TooLarge, Unsupported

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]

SAMPLE_RATES: frozenset[int] = frozenset({8000, 16000, 22050, 24000, 48000})
FRAME_MS: frozenset[int] = frozenset({10, 20, 40})
BRAIN_TEXT_MAX = 4000
TTS_TEXT_MAX = 2000

Decoded = TypeVar("Decoded")


def decode_or_reject(
    decode: Callable[[bytes], Decoded],
    data: bytes,
    *,
    invalid: str,
    malformed: str,
) -> Decoded:
    """`decode(data)`, or the `BadRequest` its sender is answered: `invalid` with the schema's
    complaint when the data breaks it, `malformed` when it does not even parse."""
    try:
        return decode(data)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"{invalid}: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise BadRequest(malformed) from None


class Request(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=False):
    """A request that opens a streamed turn. `check` adds rules a type cannot express."""

    schema: ClassVar[str]
    v: Literal[1]
    session_id: Id
    turn_id: Id

    def check(self) -> None:
        return None


def _checked_text(text: str, limit: int) -> str:
    trimmed = text.strip()
    if not trimmed:
        raise BadRequest("text is empty")
    if len(trimmed) > limit:
        raise TooLarge(f"text has {len(trimmed)} characters; the limit is {limit}")
    return trimmed


class BrainRequest(Request, kw_only=True, omit_defaults=True):
    schema: ClassVar[str] = "brain.request/1"
    user_id: Id
    text: str
    room: str | None = None
    locale: str | None = None
    deadline_ms: Annotated[int, msgspec.Meta(gt=0, le=600_000)] | None = None
    # Answer now, store only on `brain.commit` (preemptive generation; see docs/brain.md).
    tentative: bool = False

    def check(self) -> None:
        self.text = _checked_text(self.text, BRAIN_TEXT_MAX)


class TtsRequest(Request, kw_only=True, omit_defaults=True):
    schema: ClassVar[str] = "tts.request/1"
    text: str
    voice: str | None = None
    sample_rate: int = 48000
    frame_ms: int = 20

    def check(self) -> None:
        self.text = _checked_text(self.text, TTS_TEXT_MAX)
        if self.sample_rate not in SAMPLE_RATES:
            raise Unsupported(
                f"sample_rate {self.sample_rate} is not one of {sorted(SAMPLE_RATES)}"
            )
        if self.frame_ms not in FRAME_MS:
            raise Unsupported(f"frame_ms {self.frame_ms} is not one of {sorted(FRAME_MS)}")


class ErrorBody(msgspec.Struct):
    code: str
    message: str


ChunkKind = Literal["delta", "audio", "end", "error"]


class ReplyChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One message of a reply stream (brain deltas or tts audio, then one terminal message).
    `v` has no default because `omit_defaults` would drop it from the wire."""

    v: Literal[1]
    turn_id: str
    seq: int
    kind: ChunkKind
    text: str | None = None
    pcm: bytes | None = None
    sample_rate: int | None = None
    reason: str | None = None
    error: ErrorBody | None = None

    @property
    def terminal(self) -> bool:
        return self.kind in ("end", "error")


class Cancel(msgspec.Struct, kw_only=True):
    schema: ClassVar[str] = "cancel/1"
    v: Literal[1] = 1
    turn_id: Id


class Commit(msgspec.Struct, kw_only=True):
    """`brain.commit`: the tentative turn `turn_id` answered the person's real turn; store it."""

    schema: ClassVar[str] = "brain.commit/1"
    v: Literal[1] = 1
    turn_id: Id


class SessionDelete(msgspec.Struct, kw_only=True):
    """`brain.session.delete`: forget every turn of `session_id` (request/reply)."""

    schema: ClassVar[str] = "brain.session.delete/1"
    v: Literal[1] = 1
    session_id: Id


class SessionDeleteReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The answer to `brain.session.delete`: how many turn rows went (0 for a session the
    brain never heard of: deleting is idempotent), or why it could not. `v` has no default
    because `omit_defaults` would drop it from the wire."""

    schema: ClassVar[str] = "brain.session.delete.reply/1"
    v: Literal[1]
    deleted_turns: int | None = None
    error: ErrorBody | None = None


# What a person heard of an answer; answers may run longer than a request's 4000 characters.
HEARD_TEXT_MAX = 16_000


class TurnTruncate(msgspec.Struct, kw_only=True):
    """`brain.truncate`: the answer of `turn_id` becomes `heard`, what the person heard of it
    before interrupting (request/reply, queue group `brain`). `heard` may be empty: cut off
    before the first word played. `user_id` lets a brain that has not seen the turn yet
    record it all the same (another replica may still be writing it)."""

    schema: ClassVar[str] = "brain.truncate/1"
    v: Literal[1] = 1
    session_id: Id
    turn_id: Id
    user_id: Id
    heard: Annotated[str, msgspec.Meta(max_length=HEARD_TEXT_MAX)]


class TurnTruncateReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The answer to `brain.truncate`: `truncated` true once history holds what was heard, or
    why it could not (`busy` while memory is down: the same request succeeds later)."""

    schema: ClassVar[str] = "brain.truncate.reply/1"
    v: Literal[1]
    truncated: bool | None = None
    error: ErrorBody | None = None


VOICE_NAME_MAX = 128


class VoiceAdmin(msgspec.Struct, kw_only=True):
    """`tts.admin.<instance>`: an operator lists one TTS worker's voices, or has it load a
    voice now (before its callers arrive) or unload one (request/reply, no queue group: the
    subject names the worker, by the id it announces in `$SRV.INFO`)."""

    schema: ClassVar[str] = "tts.admin/1"
    v: Literal[1] = 1
    action: Literal["list", "load", "unload"]
    voice: Annotated[str, msgspec.Meta(min_length=1, max_length=VOICE_NAME_MAX)] | None = None


class VoiceAdminReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The worker's voices after the action (`pinned`: loaded at start, never unloaded), or
    why the action was refused."""

    schema: ClassVar[str] = "tts.admin.reply/1"
    v: Literal[1]
    instance: str
    voices_resident: list[str] | None = None
    voices_installed: list[str] | None = None
    voices_pinned: list[str] | None = None
    error: ErrorBody | None = None


ANNOUNCE_TEXT_MAX = 2000
# The categories the voice worker ranks, lowest first: in one burst, a higher one supersedes
# the lower ones (docs/voice.md). Any other 1..64 character name is accepted and ranks with
# `info`.
ANNOUNCEMENT_CATEGORIES: tuple[str, ...] = ("info", "init", "ready", "error", "shutdown")


class Announcement(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """`agent.voice.announce`: text the agent in `room` speaks when the room is quiet.

    Every field goes on the wire, defaults included (no `omit_defaults`): the encoded bytes
    are the contract the Go SDK's golden files pin."""

    schema: ClassVar[str] = "announce/1"
    v: int = 1
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=ANNOUNCE_TEXT_MAX)]
    priority: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "info"
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] = "unknown"
    room: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class AnnounceReply(msgspec.Struct, kw_only=True):
    """The only reply an announcement gets: why it was refused (announcements are
    fire-and-forget; a sender that asked for a reply hears this, nothing on success)."""

    schema: ClassVar[str] = "announce.reply/1"
    v: Literal[1] = 1
    error: ErrorBody


_announcement_decoder = msgspec.msgpack.Decoder(Announcement)


def decode_announcement(data: bytes) -> Announcement:
    """Decode and validate an announcement; `BadRequest` names what is wrong."""
    announcement = decode_or_reject(
        _announcement_decoder.decode,
        data,
        invalid="invalid announcement",
        malformed="announcement is not a MessagePack map",
    )
    if not announcement.text.strip():
        raise BadRequest("announcement text is empty")
    return announcement


REPLY_SCHEMAS: dict[str, str] = {
    "brain.request/1": "brain.reply/1",
    "tts.request/1": "tts.reply/1",
    Announcement.schema: AnnounceReply.schema,
    SessionDelete.schema: SessionDeleteReply.schema,
    TurnTruncate.schema: TurnTruncateReply.schema,
    VoiceAdmin.schema: VoiceAdminReply.schema,
}

_encoder = msgspec.msgpack.Encoder()


def encode(message: msgspec.Struct | dict[str, Any]) -> bytes:
    return _encoder.encode(message)


def peek_turn_id(data: bytes) -> str:
    """Best-effort turn id from a payload that failed validation, so the error can name it."""
    try:
        raw = msgspec.msgpack.decode(data)
    # Invalid UTF-8 in a str field surfaces as UnicodeDecodeError, not DecodeError (found by
    # tests/unit/common/test_fuzz_entry_points.py): the refusal must still go out.
    except (msgspec.DecodeError, UnicodeDecodeError):
        return ""
    if isinstance(raw, dict):
        turn_id = raw.get("turn_id")
        if isinstance(turn_id, str):
            return turn_id[:128]
    return ""

"""Property-based fuzzing of every decoder that takes bytes from outside (issue 13): random
bytes, random MessagePack/JSON values, and mutations of valid payloads. Whatever arrives, the
answer is a valid request or a contract error; never another exception, never a hang.

At least 2 000 examples per entry point (hypothesis' `max_examples`); the database of found
examples is off and the generation derandomized, so every CI run tries the same inputs.
Found so far: invalid UTF-8 inside a MessagePack string made the refusal itself raise (no
answer went out), and an identity ending in a newline passed `^...$`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest
from arc_brain.http_api import ChatRequest
from arc_brain.http_api import _turn as chat_turn
from arc_common.errors import ArcError, ErrorCode
from arc_common.streaming.server import _EndpointRunner
from arc_common.wire import BrainRequest, TtsRequest, decode_announcement, peek_turn_id
from arc_tts.http_api import parse_body
from arc_voice.http_api import checked_identity
from arc_voice.worker import checked_room_name
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.unit.common.support import endpoint

pytestmark = pytest.mark.unit

EXAMPLES = 2000
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
CODES = {code.value for code in ErrorCode}

# Any MessagePack/JSON value, nested a little.
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=50)
    | st.binary(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
VALID_BRAIN = {
    "v": 1,
    "session_id": "s1",
    "turn_id": "t1",
    "user_id": "u1",
    "text": "What time is it?",
}
VALID_TTS = {"v": 1, "session_id": "s1", "turn_id": "t1", "text": "Hello there."}


def _mutations(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid payload with fields replaced, removed or added."""
    return st.builds(
        lambda replaced, dropped, extra: {
            **{k: v for k, v in valid.items() if k not in dropped},
            **replaced,
            **extra,
        },
        st.dictionaries(st.sampled_from(sorted(valid)), values, max_size=3),
        st.sets(st.sampled_from(sorted(valid)), max_size=2),
        st.dictionaries(st.text(max_size=12), values, max_size=2),
    )


def _runner(request_type: type[BrainRequest] | type[TtsRequest]) -> _EndpointRunner[Any]:
    async def never(req: Any, ctx: Any) -> Any:
        raise AssertionError("the fuzz tests only parse")
        yield

    # Parsing needs no NATS.
    return _EndpointRunner(None, endpoint(never, request_type=request_type))  # type: ignore[arg-type]


BRAIN = _runner(BrainRequest)
TTS = _runner(TtsRequest)


def _parses_or_refuses(runner: _EndpointRunner[Any], data: bytes) -> None:
    try:
        request = runner.parse(data)
    except ArcError as error:
        assert error.code.value in CODES and error.message
        assert error.code in {ErrorCode.BAD_REQUEST, ErrorCode.TOO_LARGE, ErrorCode.UNSUPPORTED}
        # The refusal names the turn when it can; finding it never raises either.
        assert isinstance(peek_turn_id(data), str)
        return
    request.check()  # what parse returned is valid by the contract's own rules


def _msgpack(value: Any) -> bytes:
    return msgspec.msgpack.encode(value)


@fuzz
@given(st.binary(max_size=300))
@example(data=b"\xa5\x00\x00\x00\x00\x80")
def test_brain_request_random_bytes(data: bytes) -> None:
    _parses_or_refuses(BRAIN, data)


# A valid request whose text is not UTF-8: msgspec raises UnicodeDecodeError, which the
# decoders once let through (the request went unanswered).
NOT_UTF8 = b"\x85\xa1v\x01\xaasession_id\xa1s\xa7turn_id\xa1t\xa7user_id\xa1u\xa4text\xa2\xff\xfe"


@fuzz
@given(st.one_of(values.map(_msgpack), _mutations(VALID_BRAIN).map(_msgpack)))
@example(data=NOT_UTF8)
def test_brain_request_mutated_payloads(data: bytes) -> None:
    _parses_or_refuses(BRAIN, data)


@fuzz
@given(st.one_of(st.binary(max_size=300), _mutations(VALID_TTS).map(_msgpack)))
@example(data=NOT_UTF8)
def test_tts_request_bytes_and_mutations(data: bytes) -> None:
    _parses_or_refuses(TTS, data)


@fuzz
@given(
    st.one_of(
        st.binary(max_size=300),
        _mutations({"text": "Closing in five minutes.", "room": "lobby", "v": 1}).map(_msgpack),
    )
)
@example(data=b"\x82\xa4text\xa2\xff\xfe\xa4room\xa1r")
def test_announcements(data: bytes) -> None:
    try:
        announcement = decode_announcement(data)
    except ArcError as error:
        assert error.code == ErrorCode.BAD_REQUEST and error.message
        return
    assert announcement.text.strip() and announcement.room


def _json(value: Any) -> bytes:
    return json.dumps(value, default=repr).encode()


@fuzz
@given(
    st.one_of(
        st.binary(max_size=300),
        values.map(_json),
        _mutations({"text": "Hello.", "sample_rate": 24000, "format": "pcm"}).map(_json),
    )
)
@example(raw=b'{"text": "\xff\xfe"}')
def test_tts_http_body(raw: bytes) -> None:
    try:
        speech, fmt = parse_body(raw)
    except ArcError as error:
        assert error.code.value in CODES and error.message
        return
    assert speech.text.strip() and fmt in ("wav", "pcm")


@fuzz
@given(
    st.one_of(
        st.binary(max_size=300),
        values.map(_json),
        _mutations({"session_id": "s", "user_id": "u", "text": "hi"}).map(_json),
    )
)
@example(raw=b'{"session_id": "s", "user_id": "u", "text": "\xff"}')
def test_brain_http_chat_body(raw: bytes) -> None:
    """What FastAPI does with a /chat body: the model first (a failure is 400
    `bad_request` through arc_common.http_errors), then the contract's rules."""
    try:
        body = ChatRequest.model_validate_json(raw)
    except ValidationError:
        return
    try:
        turn = chat_turn(body)
    except ArcError as error:
        assert error.code.value in CODES and error.message
        return
    assert turn.text.strip() and turn.session_id and turn.user_id


@fuzz
@given(st.text(max_size=300), st.text(max_size=300))
@example(room="lobby\n", identity="dana\n")
def test_room_names_and_identities(room: str, identity: str) -> None:
    for check, value in ((checked_room_name, room), (checked_identity, identity)):
        try:
            accepted = check(value)
        except ArcError as error:
            assert error.code == ErrorCode.BAD_REQUEST
            continue
        # Surrounding blanks are trimmed; what is kept has none inside and no "/".
        assert accepted == value.strip() if check is checked_room_name else accepted == value
        assert accepted and "/" not in accepted and not any(c.isspace() for c in accepted)


@fuzz
@given(st.one_of(st.binary(max_size=200), _mutations({"v": 1, "turn_id": "t1"}).map(_msgpack)))
@example(data=b"\x81\xa7turn_id\xa2\x80\x80")
def test_cancels(data: bytes) -> None:
    """`*.cancel` is fire-and-forget: whatever arrives is dropped or acted on, never raised."""

    class _Msg:
        subject = "fuzz.cancel"

        def __init__(self, payload: bytes) -> None:
            self.data = payload

    asyncio.run(BRAIN.on_cancel(_Msg(data)))  # type: ignore[arg-type]

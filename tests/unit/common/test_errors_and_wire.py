"""The plain core of arc_common: typed errors, wire validation, settings, log context."""

from __future__ import annotations

import json
import logging

import msgspec
import pytest
from arc_common.errors import (
    ArcError,
    BadRequest,
    Busy,
    Cancelled,
    ErrorCode,
    Internal,
    Timeout,
    TooLarge,
    Unsupported,
    error_for,
)
from arc_common.logging import bound_turn, configure_logging
from arc_common.settings import LogSettings, ServiceSettings
from arc_common.wire import (
    BrainRequest,
    Cancel,
    ErrorBody,
    ReplyChunk,
    TtsRequest,
    encode,
    peek_turn_id,
)
from pydantic import ValidationError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("cls", "code", "retryable"),
    [
        (BadRequest, "bad_request", False),
        (TooLarge, "too_large", False),
        (Unsupported, "unsupported", False),
        (Busy, "busy", True),
        (Timeout, "timeout", True),
        (Cancelled, "cancelled", False),
        (Internal, "internal", True),
    ],
)
def test_each_error_carries_its_code_and_retryability(
    cls: type[ArcError], code: str, retryable: bool
) -> None:
    err = cls("why")
    assert (err.code, err.retryable) == (code, retryable)
    rebuilt = error_for(code, "why")
    assert type(rebuilt) is cls and rebuilt.message == "why"


def test_error_codes_are_exactly_the_contracts() -> None:
    # ARCHITECTURE.md, "Errors": the only codes a terminal `error` may carry.
    contract = {
        "bad_request",
        "too_large",
        "unsupported",
        "busy",
        "timeout",
        "cancelled",
        "internal",
    }
    assert {code.value for code in ErrorCode} == contract


def test_an_error_reply_on_the_wire() -> None:
    chunk = ReplyChunk(
        v=1,
        turn_id="t",
        seq=2,
        kind="error",
        error=ErrorBody(code=Busy("full").code, message="full"),
    )
    assert msgspec.msgpack.decode(encode(chunk)) == {
        "v": 1, "turn_id": "t", "seq": 2, "kind": "error",
        "error": {"code": "busy", "message": "full"},
    }  # fmt: skip


def test_messages_name_the_contracts_schemas() -> None:
    # docs/foundation.md, "Headers": the `arc-schema` of each message.
    assert BrainRequest.schema == "brain.request/1"
    assert TtsRequest.schema == "tts.request/1"
    assert Cancel.schema == "cancel/1"


def test_unknown_error_code_from_a_peer_becomes_internal() -> None:
    err = error_for("exploded", "details")
    assert isinstance(err, Internal) and "exploded" in err.message


def test_brain_request_round_trips_and_trims() -> None:
    req = BrainRequest(v=1, session_id="s", turn_id="t", user_id="u", text="  hello  ")
    decoded = msgspec.msgpack.decode(encode(req), type=BrainRequest)
    decoded.check()
    assert decoded.text == "hello"
    raw = msgspec.msgpack.decode(encode(req))
    assert "room" not in raw and raw["v"] == 1  # optional fields stay off the wire


def test_brain_request_limits() -> None:
    with pytest.raises(TooLarge):
        BrainRequest(v=1, session_id="s", turn_id="t", user_id="u", text="x" * 4001).check()
    BrainRequest(v=1, session_id="s", turn_id="t", user_id="u", text="x" * 4000).check()
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(
            encode({"v": 1, "session_id": "", "turn_id": "t", "user_id": "u", "text": "x"}),
            type=BrainRequest,
        )
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(
            encode(
                {"v": 1, "session_id": "s", "turn_id": "t", "user_id": "u", "text": "x",
                 "deadline_ms": -5}
            ),
            type=BrainRequest,
        )  # fmt: skip


def test_reply_chunk_always_carries_version() -> None:
    raw = msgspec.msgpack.decode(encode(ReplyChunk(v=1, turn_id="t", seq=3, kind="end")))
    assert raw == {"v": 1, "turn_id": "t", "seq": 3, "kind": "end"}


def test_peek_turn_id_is_best_effort() -> None:
    assert peek_turn_id(encode({"turn_id": "abc", "v": 9})) == "abc"
    assert peek_turn_id(b"\xc1garbage") == ""
    assert peek_turn_id(msgspec.msgpack.encode([1, 2])) == ""
    assert peek_turn_id(encode({"turn_id": 5})) == ""


def test_settings_read_nested_arc_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_NATS__URL", "nats://10.0.0.1:4333")
    monkeypatch.setenv("ARC_NATS__CONNECT_ATTEMPTS", "3")
    monkeypatch.setenv("ARC_LOG__LEVEL", "DEBUG")
    settings = ServiceSettings()
    assert settings.nats.url == "nats://10.0.0.1:4333"
    assert settings.nats.connect_attempts == 3
    assert settings.log.level == "DEBUG"


def test_bad_settings_fail_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_NATS__CONNECT_ATTEMPTS", "zero")
    with pytest.raises(ValidationError) as info:
        ServiceSettings()
    assert "connect_attempts" in str(info.value)


def test_json_logs_carry_session_and_turn(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="INFO"), service="unit")
    try:
        with bound_turn("sess-1", "turn-9"):
            logging.getLogger("arc.test").info("hello %s", "world")
        logging.getLogger("arc.test").info("outside")
        lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    finally:
        logging.getLogger().handlers.clear()
    assert lines[0]["message"] == "hello world"
    assert lines[0]["session_id"] == "sess-1" and lines[0]["turn_id"] == "turn-9"
    assert lines[0]["service"] == "unit" and lines[0]["level"] == "INFO"
    assert lines[1]["turn_id"] is None

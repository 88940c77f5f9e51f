"""`POST /tts/stream` bodies: the contract's rules and codes, before any synthesis."""

from __future__ import annotations

import json

import pytest
from arc_common.errors import BadRequest, TooLarge, Unsupported
from arc_tts.http_api import MAX_BODY_BYTES, parse_body
from arc_tts.settings import TtsSettings

pytestmark = pytest.mark.unit


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_defaults_follow_the_contract() -> None:
    speech, fmt = parse_body(body(text="  hello  "))
    assert (speech.text, speech.voice, speech.sample_rate, speech.frame_ms) == (
        "hello",
        None,
        48000,
        20,
    )
    assert fmt == "wav"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"{not json", BadRequest),
        (b"[1, 2]", BadRequest),
        (body(), BadRequest),
        (body(text=""), BadRequest),
        (body(text="hi", format="mp3"), BadRequest),
        (body(text="hi", speed=2), BadRequest),
        (body(text="x" * 2001), TooLarge),
        (b" " * (MAX_BODY_BYTES + 1), TooLarge),
        (body(text="hi", sample_rate=44100), Unsupported),
        (body(text="hi", frame_ms=25), Unsupported),
    ],
)
def test_bad_bodies_get_contract_errors(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_body(raw)


def test_settings_read_nested_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARC_TTS__HTTP_PORT", "9099")
    monkeypatch.setenv("ARC_TTS__VOICE_DIRS", '["/tmp/voices"]')
    monkeypatch.setenv("ARC_NATS__SUBJECT_PREFIX", "dev")
    settings = TtsSettings()
    assert settings.tts.http_port == 9099
    assert [str(p) for p in settings.tts.voice_dirs] == ["/tmp/voices"]
    assert settings.nats.subject_prefix == "dev"
    assert settings.service_name == "arc-tts"

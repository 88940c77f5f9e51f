"""End of turn: settings to LiveKit's turn handling, and the transcript rule."""

from __future__ import annotations

import pytest
from arc_voice.settings import VoiceOptions
from arc_voice.turn_detection import (
    MODEL_MIN_VAD_SILENCE_S,
    UNLIKELY_THRESHOLD,
    TranscriptAwareTurnDetector,
    transcript_unfinished,
    turn_detection_options,
    vad_min_silence_s,
)
from livekit.agents.voice.turn import _StreamingTurnDetector

pytestmark = pytest.mark.unit


def test_vad_is_the_plain_timer() -> None:
    options = VoiceOptions(
        turn_detection="vad", endpointing_min_delay_s=0.1, endpointing_max_delay_s=0.9
    )
    detection, endpointing = turn_detection_options(options)
    assert detection == "vad"
    assert endpointing == {"min_delay": 0.1, "max_delay": 0.9}


def test_model_is_a_streaming_detector_with_the_measured_threshold() -> None:
    detection, endpointing = turn_detection_options(VoiceOptions(turn_detection="model"))
    assert isinstance(detection, TranscriptAwareTurnDetector)
    # The framework takes the audio path (and the bounded wait) only for this protocol.
    assert isinstance(detection, _StreamingTurnDetector)
    assert detection.unlikely_threshold == UNLIKELY_THRESHOLD
    assert detection.model == "turn-detector-v1-mini+transcript-rule"
    defaults = VoiceOptions()
    assert endpointing == {
        "min_delay": defaults.endpointing_min_delay_s,
        "max_delay": defaults.endpointing_max_delay_s,
    }


def test_threshold_and_delays_come_from_the_settings() -> None:
    options = VoiceOptions(
        turn_unlikely_threshold=0.4, endpointing_min_delay_s=0.05, endpointing_max_delay_s=1.5
    )
    detection, endpointing = turn_detection_options(options)
    assert isinstance(detection, TranscriptAwareTurnDetector)
    assert detection.unlikely_threshold == 0.4
    assert endpointing == {"min_delay": 0.05, "max_delay": 1.5}


def test_each_conversation_gets_its_own_detector() -> None:
    first, _ = turn_detection_options(VoiceOptions())
    second, _ = turn_detection_options(VoiceOptions())
    assert first is not second


@pytest.mark.parametrize(
    ("detection", "configured", "expected"),
    [
        ("model", 0.15, MODEL_MIN_VAD_SILENCE_S),
        ("model", 0.5, 0.5),
        ("vad", 0.15, 0.15),
    ],
)
def test_vad_silence_leaves_room_for_the_model(
    detection: str, configured: float, expected: float
) -> None:
    options = VoiceOptions.model_validate(
        {"turn_detection": detection, "vad_min_silence_s": configured}
    )
    assert vad_min_silence_s(options) == pytest.approx(expected)


def test_model_silence_is_what_livekit_checks_for() -> None:
    # AudioRecognition refuses a VAD with less than 200 ms + 50 ms of min silence.
    assert vad_min_silence_s(VoiceOptions()) >= 0.25


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for",
        "I'd like to book a table for.",
        "Can I get a",
        "Send a message to my",
        "I want to go to the",
        "I think that we should and",
        "The meeting is with",
        "I need a flight from London to",
        "My name is",
        "My order number is...",
        "So I was thinking, um",
        "I'd like to, uh.",
        "Book me a flight to… ",
        "I'm looking for",
        "Well,",
        "And then I",
        "It\u2019s",
        "What's the best way to get to the",
    ],
)
def test_unfinished_transcripts(text: str) -> None:
    assert transcript_unfinished(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "What's the weather like in Paris tomorrow?",
        "Please remind me to call my mother at 6.",
        "Set a timer for ten minutes.",
        "Yes, please.",
        "Thanks, that's all I needed.",
        "Who is this package for?",
        "Where are you calling from?",
        "What is it about?",
        "Can you check me in?",
        "Please turn the heating on.",
        "I think so.",
        "Yes, I can.",
        "I'd like to book a table",
    ],
)
def test_finished_transcripts(text: str) -> None:
    assert not transcript_unfinished(text)

"""A stream's opening silence is cut down to a short margin before its first sound."""

from __future__ import annotations

import numpy as np
import pytest
from arc_tts.onset import KEEP_MS, MAX_TRIM_MS, OnsetTrim

pytestmark = pytest.mark.unit

RATE = 24000


def ms(n: float) -> int:
    return int(RATE * n / 1000)


def tone(n: int, amplitude: float = 3000.0) -> np.ndarray:
    t = np.arange(n) / RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def floor_noise(n: int, seed: int = 0) -> np.ndarray:
    # Piper's floor: around -70 dBFS
    return np.random.default_rng(seed).normal(0, 10, n).astype(np.int16)


def feed(trim: OnsetTrim, audio: np.ndarray, piece: int) -> np.ndarray:
    out = b"".join(trim.push(audio[i : i + piece].tobytes()) for i in range(0, len(audio), piece))
    out += trim.flush()
    return np.frombuffer(out, np.int16)


@pytest.mark.parametrize("piece", [ms(1.3), ms(5), ms(17), ms(40), ms(1000)])
def test_the_opening_silence_goes_and_the_sound_is_untouched(piece: int) -> None:
    speech = tone(ms(300))
    audio = np.concatenate([floor_noise(ms(40)), speech, floor_noise(ms(50))])
    trim = OnsetTrim(RATE)
    out = feed(trim, audio, piece)
    # What is left before the sound is at most the margin (plus one window's rounding).
    lead = len(out) - len(speech) - ms(50)
    assert 0 <= lead <= ms(KEEP_MS + 5), lead
    np.testing.assert_array_equal(out[lead:], audio[ms(40) :])
    assert trim.cut_samples == ms(40) - lead


def test_audio_that_starts_with_sound_is_passed_as_it_is() -> None:
    audio = np.concatenate([tone(ms(100)), floor_noise(ms(30))])
    out = feed(OnsetTrim(RATE), audio, ms(20))
    np.testing.assert_array_equal(out, audio)


def test_a_long_opening_silence_is_cut_at_most_by_the_bound() -> None:
    audio = np.concatenate([np.zeros(ms(500), np.int16), tone(ms(100))])
    trim = OnsetTrim(RATE)
    out = feed(trim, audio, ms(20))
    assert trim.cut_samples == ms(MAX_TRIM_MS)
    np.testing.assert_array_equal(out, audio[ms(MAX_TRIM_MS) :])


def test_a_stream_with_no_sound_keeps_what_is_left_after_the_bound() -> None:
    short = np.zeros(ms(30), np.int16)
    out = feed(OnsetTrim(RATE), short, ms(7))
    # a silent stream shorter than the bound ends with the margin the trim held back
    assert len(out) <= ms(KEEP_MS + 5)
    assert not out.any()

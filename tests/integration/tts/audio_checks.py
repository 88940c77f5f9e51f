"""Measurements of received audio shared by the TTS tests."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def samples(pcm: bytes) -> NDArray[np.int16]:
    return np.frombuffer(pcm, dtype="<i2")


def rms_dbfs(audio: NDArray[np.int16]) -> float:
    power = float(np.mean(np.square(audio.astype(np.float64) / 32768.0)))
    return float(10 * np.log10(max(power, 1e-12)))


def frame_levels_db(audio: NDArray[np.int16], sample_rate: int) -> NDArray[np.float64]:
    """Energy of each 20 ms frame, in dBFS."""
    n = sample_rate // 50
    frames = audio[: len(audio) // n * n].astype(np.float64).reshape(-1, n) / 32768.0
    levels: NDArray[np.float64] = 10 * np.log10(
        np.maximum(np.mean(np.square(frames), axis=1), 1e-12)
    )
    return levels


def assert_speech_like(pcm: bytes, sample_rate: int, words: int) -> None:
    """Loud enough to be heard, shaped like syllables (energy rising and falling), and as long
    as the words take to say at a plausible pace (1.5 to 5 words per second)."""
    audio = samples(pcm)
    duration = len(audio) / sample_rate
    assert words / 5.0 <= duration <= words / 1.5 + 1.0, f"{duration:.2f}s for {words} words"
    assert rms_dbfs(audio) > -35.0, f"too quiet: {rms_dbfs(audio):.1f} dBFS"
    levels = frame_levels_db(audio, sample_rate)
    voiced = float(np.mean(levels > -40.0))
    assert 0.3 < voiced < 1.0, f"{voiced:.0%} of frames voiced"
    assert float(np.percentile(levels, 90) - np.percentile(levels, 10)) > 20.0

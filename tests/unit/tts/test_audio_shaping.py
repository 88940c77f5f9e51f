"""Resampling without drift, whole frames, and the streamed WAV header."""

from __future__ import annotations

import struct
from math import ceil

import numpy as np
import pytest
from arc_tts.framing import Framer, frame_unit_samples
from arc_tts.resampling import StreamResampler, to_pcm16
from arc_tts.wav import streaming_header

from tests.fixtures.contract import FRAME_UNIT_SAMPLES

pytestmark = pytest.mark.unit

RATES = [8000, 16000, 22050, 24000, 48000]


@pytest.mark.parametrize("target", RATES)
def test_resampled_total_matches_native_duration_whatever_the_piece_sizes(target: int) -> None:
    rng = np.random.default_rng(target)
    resampler = StreamResampler(22050, target)
    sizes = rng.integers(1, 30_000, size=40)
    total_out = 0
    native = 0
    for size in sizes:
        out = resampler.process(rng.uniform(-0.5, 0.5, int(size)).astype(np.float32))
        native += int(size)
        total_out += len(out)
        # After every piece, not just at the end: no drift accumulates along the stream.
        assert total_out == native * target // 22050
    assert resampler.emitted_samples == total_out


def test_ratio_is_exact_and_reduced() -> None:
    resampler = StreamResampler(22050, 48000)
    assert (resampler.up, resampler.down) == (320, 147)


def test_resampling_keeps_a_tone_at_its_frequency() -> None:
    t = np.arange(22050) / 22050
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = StreamResampler(22050, 48000).process(tone)
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * 48000 / len(out)
    assert abs(peak_hz - 440) < 2
    assert 0.45 < float(np.max(np.abs(out[1000:-1000]))) < 0.55


def test_pcm16_clips_instead_of_wrapping() -> None:
    pcm = to_pcm16(np.array([1.5, -1.5, 0.0], dtype=np.float32))
    assert struct.unpack("<3h", pcm) == (32767, -32767, 0)


@pytest.mark.parametrize(("rate_and_frame", "unit"), FRAME_UNIT_SAMPLES.items())
def test_frame_unit_is_the_smallest_whole_number_of_frames(
    rate_and_frame: tuple[int, int], unit: int
) -> None:
    assert frame_unit_samples(*rate_and_frame) == unit


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("frame_ms", [10, 20, 40])
def test_framer_emits_whole_frames_and_pads_only_the_last(rate: int, frame_ms: int) -> None:
    framer = Framer(rate, frame_ms, frames_per_chunk=3)
    unit = FRAME_UNIT_SAMPLES[(rate, frame_ms)] * 2  # bytes
    rng = np.random.default_rng(rate + frame_ms)
    pushed = 0
    chunks: list[bytes] = []
    for size in rng.integers(1, 5000, size=25):
        data = bytes(rng.integers(1, 255, size=int(size) * 2, dtype=np.uint8))
        pushed += len(data)
        chunks += framer.push(data)
    tail = framer.flush()
    assert all(len(c) % unit == 0 and 0 < len(c) <= 3 * unit for c in chunks + tail)
    body = b"".join(chunks + tail)
    assert len(body) == ceil(pushed / unit) * unit
    assert body[pushed:] == b"\x00" * (len(body) - pushed)
    assert framer.flush() == []


def test_framer_keeps_the_bytes_in_order() -> None:
    framer = Framer(8000, 10, frames_per_chunk=1)
    data = bytes(range(256)) * 5
    out = b"".join(framer.push(data[:100]) + framer.push(data[100:]) + framer.flush())
    assert out[: len(data)] == data


def test_streaming_wav_header_describes_s16le_mono() -> None:
    header = streaming_header(24000)
    assert len(header) == 44 and header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    fmt, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", header[20:36])
    assert (fmt, channels, rate, byte_rate, align, bits) == (1, 1, 24000, 48000, 2, 16)
    assert header[36:40] == b"data" and struct.unpack("<I", header[40:44])[0] == 0xFFFFFFFF

"""PCM cut into whole frames of `frame_ms`.

A frame is `rate * frame_ms / 1000` samples. The one pairing where that is not whole is
22050 Hz with 10 ms frames (220.5 samples); there a chunk always carries an even number of
10 ms frames (multiples of 441 samples), so every chunk still holds a whole number of frames.
"""

from __future__ import annotations

from fractions import Fraction

SAMPLE_BYTES = 2


def frame_unit_samples(sample_rate: int, frame_ms: int) -> int:
    """The smallest whole number of samples that is a whole number of frames."""
    per_frame = Fraction(sample_rate * frame_ms, 1000)
    return per_frame.numerator


class Framer:
    """Collects PCM bytes and hands them out in chunks of whole frames; `flush` pads the last
    partial frame with silence so the stream still ends on a frame boundary."""

    def __init__(self, sample_rate: int, frame_ms: int, frames_per_chunk: int) -> None:
        self.unit_bytes = frame_unit_samples(sample_rate, frame_ms) * SAMPLE_BYTES
        self.chunk_bytes = self.unit_bytes * frames_per_chunk
        self._pending = bytearray()

    def push(self, pcm: bytes) -> list[bytes]:
        self._pending += pcm
        whole = len(self._pending) - len(self._pending) % self.unit_bytes
        chunks = [
            bytes(self._pending[i : min(i + self.chunk_bytes, whole)])
            for i in range(0, whole, self.chunk_bytes)
        ]
        del self._pending[:whole]
        return chunks

    def flush(self) -> list[bytes]:
        if not self._pending:
            return []
        pad = self.unit_bytes - len(self._pending)
        last = bytes(self._pending) + b"\x00" * pad
        self._pending.clear()
        return [last]

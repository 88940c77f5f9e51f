"""Native-rate audio to the requested rate, piece by piece, with no drift.

Each piece is resampled with `scipy.signal.resample_poly` at the exact rational ratio
(22050 -> 48000 is 320/147). A piece on its own would come out as ceil(n * up / down)
samples, and those roundings add up across pieces; instead the resampler keeps the running
native count N and trims each piece so that the total emitted is always floor(N * up / down),
the native duration at the new rate to within one sample.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly  # type: ignore[import-untyped]


class StreamResampler:
    def __init__(self, native_rate: int, target_rate: int) -> None:
        divisor = gcd(native_rate, target_rate)
        self.up = target_rate // divisor
        self.down = native_rate // divisor
        self.native_rate = native_rate
        self.target_rate = target_rate
        self.native_samples = 0
        self.emitted_samples = 0

    def expected_samples(self, native_samples: int) -> int:
        return native_samples * self.up // self.down

    def process(self, audio: NDArray[np.float32]) -> NDArray[np.float32]:
        """Float samples in [-1, 1] at the native rate -> the same span at the target rate."""
        self.native_samples += len(audio)
        due = self.expected_samples(self.native_samples) - self.emitted_samples
        if self.up == self.down:
            out = audio
        else:
            out = resample_poly(audio, self.up, self.down).astype(np.float32, copy=False)
        # resample_poly returns ceil(n * up / down) >= due samples, so trimming suffices.
        out = out[:due]
        self.emitted_samples += len(out)
        return out


def to_pcm16(audio: NDArray[np.float32]) -> bytes:
    """Signed 16-bit little-endian bytes; resampling can overshoot [-1, 1] slightly, so clip."""
    scaled = np.clip(audio, -1.0, 1.0) * 32767.0
    return scaled.astype("<i2").tobytes()

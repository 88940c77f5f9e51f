"""Where the speech of a stream starts: Piper opens a sentence with 0-70 ms of near-silence
(its noise floor, under -60 dBFS), which the listener waits through before the first word.
A stream's opening silence is cut, down to a short margin before the first sound; the pauses
between its sentences are the voice's own and stay."""

from __future__ import annotations

import numpy as np

# Quieter than any speech sound (a soft "f" or "h" starts around -45 dBFS), louder than
# Piper's floor between words.
FLOOR_DBFS = -60.0
WINDOW_MS = 5
# Kept before the first window over the floor, so a consonant's soft attack is not clipped.
KEEP_MS = 5
# At most this much is cut: a stream that opens with a longer silence (a text of only
# punctuation) is played as it is after that.
MAX_TRIM_MS = 200


class OnsetTrim:
    """Fed the PCM (s16le mono) of one stream in order; hands back the same audio without
    its opening silence."""

    def __init__(self, sample_rate: int) -> None:
        self._window = sample_rate * WINDOW_MS // 1000
        self._keep = sample_rate * KEEP_MS // 1000
        self._max = sample_rate * MAX_TRIM_MS // 1000
        self._floor = 32768.0 * 10.0 ** (FLOOR_DBFS / 20.0)
        self._held = np.zeros(0, np.int16)
        self._cut = 0  # samples dropped so far
        self.done = False

    def push(self, pcm: bytes) -> bytes:
        if self.done:
            return pcm
        samples = np.concatenate([self._held, np.frombuffer(pcm, np.int16)])
        start = 0
        while start + self._window <= len(samples):
            window = samples[start : start + self._window].astype(np.float64)
            if np.sqrt(np.mean(window * window)) > self._floor:
                return self._finish(samples, max(0, start - self._keep))
            if self._cut + start + self._window > self._max:
                return self._finish(samples, max(0, self._max - self._cut))
            start += self._window
        # No sound yet: keep the margin's worth (and the partial window) for the next push.
        drop = max(0, start - self._keep)
        self._cut += drop
        self._held = samples[drop:]
        return b""

    def flush(self) -> bytes:
        """What is held back when the stream ends without a sound (silence stays silence)."""
        if self.done:
            return b""
        self.done = True
        held, self._held = self._held, np.zeros(0, np.int16)
        return held.tobytes()

    def _finish(self, samples: np.ndarray, offset: int) -> bytes:
        self.done = True
        self._cut += offset
        self._held = np.zeros(0, np.int16)
        return samples[offset:].tobytes()

    @property
    def cut_samples(self) -> int:
        return self._cut

"""An adaptive noise floor and the gate built on it, which keep background noise (a fan,
typing) from reaching the VAD, with a higher bar while the agent itself is speaking.

The floor is a minimum-statistics estimate: the lowest 100 ms mean level over the last few
seconds. Speech has gaps between words, so the floor stays at the room's background; a
steady noise becomes the new floor within one window. A frame opens the gate when it rises a
margin (dB) above the floor, and the gate holds open briefly so word endings survive.

Minimum statistics need a window longer than a stretch of speech: a conversation that opens
with speech (a socket client sending a recording, a person who talks at once) has no room
background in its first blocks, and the quietest of them is speech. Until a whole window has
been heard the floor is therefore held at or under a ceiling (a quiet room's level), so the
person's quieter words are not taken for background and gated away.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

SILENCE_DB = -96.0
_BLOCK_S = 0.1


def level_db(pcm: bytes | memoryview) -> float:
    """RMS level of 16-bit PCM in dB relative to full scale."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    if samples.size == 0:
        return SILENCE_DB
    rms = math.sqrt(float(np.mean(samples.astype(np.float64) ** 2)))
    if rms <= 0.0:
        return SILENCE_DB
    return max(SILENCE_DB, 20.0 * math.log10(rms / 32768.0))


@dataclass
class GateConfig:
    margin_db: float = 9.0
    speaking_margin_db: float = 15.0
    floor_window_s: float = 3.0
    hangover_s: float = 0.35
    learning_ceiling_db: float = -60.0


class AdaptiveNoiseFloor:
    """Minimum statistics over 100 ms blocks: each block's level is its mean power, so a
    steady noise gives steady blocks and the floor sits at the noise, not below it."""

    def __init__(self, window_s: float, *, learning_ceiling_db: float = 0.0) -> None:
        self._blocks: deque[float] = deque(maxlen=max(1, round(window_s / _BLOCK_S)))
        self._power = 0.0
        self._elapsed = 0.0
        self._learning_ceiling_db = learning_ceiling_db

    def update(self, level: float, duration_s: float) -> None:
        self._power += 10.0 ** (level / 10.0) * duration_s
        self._elapsed += duration_s
        if self._elapsed >= _BLOCK_S - 1e-9:
            self._blocks.append(_db(self._power / self._elapsed))
            self._power = 0.0
            self._elapsed = 0.0

    @property
    def learned(self) -> bool:
        """Whether a whole window has been heard (the minimum is then over enough audio)."""
        return len(self._blocks) == self._blocks.maxlen

    @property
    def estimate_db(self) -> float:
        """The quietest level heard in the window, whether or not a whole window was heard."""
        if self._blocks:
            return min(self._blocks)
        if self._elapsed > 0.0:
            return _db(self._power / self._elapsed)
        return SILENCE_DB

    @property
    def db(self) -> float:
        """The floor: the estimate, held at or under the ceiling until a window is heard."""
        estimate = self.estimate_db
        return estimate if self.learned else min(estimate, self._learning_ceiling_db)


def _db(power: float) -> float:
    return max(SILENCE_DB, 10.0 * math.log10(power)) if power > 0.0 else SILENCE_DB


class NoiseGate:
    """Decides frame by frame whether audio may reach the VAD."""

    def __init__(self, config: GateConfig) -> None:
        self.config = config
        self.floor = AdaptiveNoiseFloor(
            config.floor_window_s, learning_ceiling_db=config.learning_ceiling_db
        )
        self._hold_s = 0.0
        self.open = False
        self.loud = False  # the last frame itself was over the threshold (not the hangover)

    def threshold_db(self, *, agent_speaking: bool) -> float:
        if agent_speaking:
            # The ceiling keeps the person's first words from becoming the floor; over the
            # agent the bar is meant to be high (its echo must not cut it off, and LiveKit
            # lets no one cut the first 3 s of the first answer), so whatever was heard is
            # the floor, as a fan at the start of a greeting would be.
            return self.floor.estimate_db + self.config.speaking_margin_db
        return self.floor.db + self.config.margin_db

    def process(self, pcm: bytes | memoryview, duration_s: float, *, agent_speaking: bool) -> bool:
        """Feed one frame; True when it should pass (the gate is open)."""
        level = level_db(pcm)
        # Judge against the floor before this frame lowers or joins it.
        loud = level > self.threshold_db(agent_speaking=agent_speaking)
        self.loud = loud
        self.floor.update(level, duration_s)
        if loud:
            self._hold_s = self.config.hangover_s
            self.open = True
        elif self._hold_s > 0.0:
            self._hold_s -= duration_s
            self.open = True
        else:
            self.open = False
        return self.open

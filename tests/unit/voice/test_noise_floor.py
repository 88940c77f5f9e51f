"""The adaptive noise floor and gate on synthetic room sounds: a fan (steady brown noise),
typing (short clicks) and a voice-like tone burst at conversational level."""

import numpy as np
import pytest
from arc_voice.noise_floor import SILENCE_DB, AdaptiveNoiseFloor, GateConfig, NoiseGate, level_db

pytestmark = pytest.mark.unit

RATE = 16000
FRAME = RATE // 50  # 20 ms


def _pcm(samples: np.ndarray) -> bytes:
    return bytes(np.clip(samples, -32768, 32767).astype(np.int16).tobytes())


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2)))


def _fan(seconds: float, rms: float, seed: int = 1) -> np.ndarray:
    """A fan's hum: white noise through a gentle low-pass, steady in level."""
    rng = np.random.default_rng(seed)
    noise = np.convolve(rng.normal(size=int(RATE * seconds)), np.ones(8) / 8, mode="same")
    return noise / _rms(noise) * rms


def _voice(seconds: float, rms: float) -> np.ndarray:
    """Voiced sound with ~4 syllables a second, dipping to near silence between them."""
    t = np.arange(int(RATE * seconds)) / RATE
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0.05, None)
    voiced = syllables * (np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 360 * t))
    return voiced / _rms(voiced) * rms


def _frames(samples: np.ndarray) -> list[bytes]:
    return [_pcm(samples[i : i + FRAME]) for i in range(0, len(samples) - FRAME + 1, FRAME)]


def _open_fraction(gate: NoiseGate, samples: np.ndarray, *, speaking: bool = False) -> float:
    frames = _frames(samples)
    return sum(gate.process(f, FRAME / RATE, agent_speaking=speaking) for f in frames) / len(frames)


def test_level_of_silence_and_full_scale() -> None:
    assert level_db(bytes(640)) == SILENCE_DB
    assert level_db(b"") == SILENCE_DB
    full = _pcm(np.full(320, 32767))
    assert level_db(full) == pytest.approx(0.0, abs=0.01)


def test_floor_tracks_the_quietest_recent_level() -> None:
    floor = AdaptiveNoiseFloor(window_s=1.0)
    for _ in range(100):
        floor.update(-40.0, 0.02)
    assert floor.db == -40.0
    floor.update(-20.0, 0.02)
    assert floor.db == -40.0  # a loud frame does not raise it
    for _ in range(100):
        floor.update(-30.0, 0.02)
    assert floor.db == -30.0  # a steady louder noise becomes the floor within the window


def test_a_fan_alone_keeps_the_gate_shut_once_learned() -> None:
    gate = NoiseGate(GateConfig())
    _open_fraction(gate, _fan(3.0, 300))  # learning
    assert _open_fraction(gate, _fan(5.0, 300, seed=2)) < 0.05


def test_typing_opens_the_gate_only_briefly() -> None:
    gate = NoiseGate(GateConfig(hangover_s=0.1))
    room = _fan(2.0, 100)
    _open_fraction(gate, room)
    typing = _fan(4.0, 100, seed=3)
    for at in np.arange(0.3, 3.8, 0.25):  # a keystroke every 250 ms, 5 ms each
        start = int(at * RATE)
        typing[start : start + 80] += 12000 * np.sign(np.sin(np.arange(80)))
    assert _open_fraction(gate, typing) < 0.6


def test_speech_over_a_fan_passes_and_needs_more_while_the_agent_speaks() -> None:
    config = GateConfig(margin_db=9.0, speaking_margin_db=15.0)
    gate = NoiseGate(config)
    _open_fraction(gate, _fan(3.0, 300))
    loud = _fan(2.0, 300, seed=4) + _voice(2.0, 300 * 8)  # +18 dB
    assert _open_fraction(gate, loud) > 0.9
    # A voice only 12 dB over the fan counts while the agent is quiet, not while it speaks.
    gate_quiet = NoiseGate(config)
    gate_busy = NoiseGate(config)
    for g in (gate_quiet, gate_busy):
        _open_fraction(g, _fan(3.0, 1500))
    soft = _fan(2.0, 1500, seed=5) + _voice(2.0, 3500)
    assert _open_fraction(gate_quiet, soft) > 0.5
    assert _open_fraction(gate_busy, soft, speaking=True) < 0.2

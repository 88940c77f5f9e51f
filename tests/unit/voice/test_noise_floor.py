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


def _vowel(seconds: float, rms: float) -> np.ndarray:
    """A held vowel: voiced sound at one level, no gaps to learn a floor from."""
    t = np.arange(int(RATE * seconds)) / RATE
    voiced = np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 360 * t)
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
    # Learning: one window, then the hangover of the gate it held open meanwhile (until a
    # window is heard the floor is at most a quiet room's level, so the fan passed then).
    _open_fraction(gate, _fan(3.5, 300))
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
        _open_fraction(g, _fan(3.5, 1500))
    soft = _fan(2.0, 1500, seed=5) + _voice(2.0, 3500)
    assert _open_fraction(gate_quiet, soft) > 0.5
    assert _open_fraction(gate_busy, soft, speaking=True) < 0.2


def test_speech_from_the_first_frame_is_not_taken_for_the_floor() -> None:
    # No background before the words (a socket client sending a recording): the floor stays
    # at a quiet room's level until a whole window has been heard, so the gate stays open
    # on the voice. Taking its first blocks for the floor shut the gate after the hangover.
    gate = NoiseGate(GateConfig())
    assert _open_fraction(gate, _vowel(2.0, 3000)) == 1.0
    assert not gate.floor.learned
    # Without the ceiling (0 dBFS never binds) the voice became the floor and was gated away.
    assert _open_fraction(NoiseGate(GateConfig(learning_ceiling_db=0.0)), _vowel(2.0, 3000)) < 0.5


def test_once_a_window_is_heard_the_floor_is_the_rooms_even_above_the_ceiling() -> None:
    gate = NoiseGate(GateConfig(floor_window_s=3.0, learning_ceiling_db=-60.0))
    _open_fraction(gate, _fan(3.5, 1500))  # -27 dBFS, far over the ceiling
    assert gate.floor.learned
    # the quietest 100 ms of the fan: just under its overall level
    assert gate.floor.db == pytest.approx(20 * np.log10(1500 / 32768), abs=2.0)
    assert _open_fraction(gate, _fan(3.0, 1500, seed=6)) < 0.05


def test_over_the_agent_the_floor_is_what_was_heard_even_before_a_window() -> None:
    # A fan from the first frame of a greeting: the higher bar over the agent stands on what
    # was heard (the ceiling is for the person's own first words), so only the first frame's
    # hangover passes, as before the ceiling; with the agent quiet the fan passes until the
    # floor has learned it.
    assert _open_fraction(NoiseGate(GateConfig()), _fan(2.0, 300), speaking=True) < 0.2
    assert _open_fraction(NoiseGate(GateConfig()), _fan(2.0, 300)) > 0.9

"""How `make run` heals: when to restart a part that died, when to give up on it, and the
record of restarts that `make status` reads.

`RestartPolicy` is the plain core (no I/O, time passed in): the supervisor asks it, each time
a part dies, how long to wait before starting it again, or whether to stop the mesh.

Why not tenacity: tenacity retries one call until it succeeds. Here every restart succeeds
(the part comes up) and the deaths that count span those successes: the backoff grows while
a part dies soon after each restart, resets once it has stayed up for a while, and the
give-up rule counts deaths in a sliding window. That state *is* the policy; wrapped in
tenacity's callbacks it would be the same code, harder to read.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RestartDecision:
    """What to do about one death: restart after `delay_s`, or give up (`delay_s` None)."""

    delay_s: float | None
    # This death's number among the deaths inside the window (1 for the first).
    deaths_in_window: int

    @property
    def give_up(self) -> bool:
        return self.delay_s is None


@dataclass(eq=False, kw_only=True)
class RestartPolicy:
    """Exponential backoff (first, 2 * first, 4 * first … capped at `max_delay_s`), reset once a
    part has stayed up `stable_after_s`; more than `max_restarts` deaths within `window_s`
    seconds means the part keeps dying, and the mesh stops."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stable_after_s: float = 60.0
    max_restarts: int = 5
    window_s: float = 300.0
    _deaths: deque[float] = field(default_factory=deque, init=False, repr=False)
    # Deaths in a row, each soon after the part came up: the backoff's exponent.
    _streak: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.first_delay_s < 0 or self.max_delay_s < self.first_delay_s:
            raise ValueError("need 0 <= first_delay_s <= max_delay_s")
        if self.max_restarts < 0 or self.window_s <= 0 or self.stable_after_s < 0:
            raise ValueError("need max_restarts >= 0, window_s > 0, stable_after_s >= 0")

    def on_death(self, now: float, up_for_s: float | None) -> RestartDecision:
        """A part died at `now` (monotonic seconds) after running `up_for_s` seconds since it
        last came up (None: it died while starting)."""
        if up_for_s is not None and up_for_s >= self.stable_after_s:
            self._streak = 0
        self._deaths.append(now)
        while self._deaths and self._deaths[0] <= now - self.window_s:
            self._deaths.popleft()
        count = len(self._deaths)
        if count > self.max_restarts:
            return RestartDecision(None, count)
        delay = min(self.first_delay_s * 2**self._streak, self.max_delay_s)
        self._streak += 1
        return RestartDecision(delay, count)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class PartRecord:
    up: bool = False
    restarts: int = 0
    # UTC, ISO 8601, of the last restart that brought the part back up.
    last_restart: str | None = None
    # The last death's exit code (negative: the signal that killed it; None: unknown).
    last_exit: int | None = None


@dataclass
class RestartRecord:
    """`.arc/supervisor.json`: written by the supervisor of `make run` (from its start, so a
    new run starts at zero restarts), read by `make status`."""

    started_at: str = field(default_factory=_utc_now)
    pid: int = field(default_factory=os.getpid)
    parts: dict[str, PartRecord] = field(default_factory=dict)

    def part(self, name: str) -> PartRecord:
        return self.parts.setdefault(name, PartRecord())

    def restarted(self, name: str) -> None:
        record = self.part(name)
        record.restarts += 1
        record.last_restart = _utc_now()
        record.up = True

    def write(self, path: Path) -> None:
        """Atomically: `make status` may read it at any moment."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n")
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> RestartRecord | None:
        """The record, or None when there is none or it cannot be read."""
        try:
            data: Any = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        with contextlib.suppress(TypeError, AttributeError, KeyError, ValueError):
            return cls(
                started_at=str(data["started_at"]),
                pid=int(data["pid"]),
                parts={name: PartRecord(**fields) for name, fields in data["parts"].items()},
            )
        return None


def record_path(state: Path) -> Path:
    return state / "supervisor.json"

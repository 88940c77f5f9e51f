"""`make load` / `python -m tests.load`: the k6 load tests against a running `make run`.

    python -m tests.load [chat] [tts] [conversations] [--vus N] [--duration 30s]
                         [--stages 20s:2,40s:4] [--capacity 1,2,4,8]

Starts nothing: it reads the API key from `.arc/api-key` (or ARC_API_KEY) and the ports from
the same `ARC_*` settings as `make run`, checks that each service it drives answers its health
check, runs each script, and writes k6's JSON summary (`docs/load/<script>.json`) and a
markdown table into `docs/load.md`. `--capacity` runs chat and/or tts at each VU count for
`--duration` (20 s) and writes the ramp's table instead. Any variable a script reads
(`VUS`, `DURATION`, `STAGES`, thresholds, …; see each script's header) may be set in the
environment; the options here win over it. Exit status: 0 when every threshold held, 1 when
one failed, 2 when the mesh is not running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from pathlib import Path

import httpx
from arc_stack.paths import state_dir
from arc_stack.settings import StackSettings

from tests.bench.report import load_average
from tests.load import report
from tests.load.questions import ensure_questions
from tests.load.runner import SCRIPTS, K6Result, run_k6, stack_pids

# What `make load` runs when the environment says nothing else.
DEFAULTS: dict[str, dict[str, str]] = {
    "chat": {"VUS": "4", "DURATION": "30s"},
    "tts": {"VUS": "4", "DURATION": "30s"},
    "conversations": {"STAGES": "20s:2,40s:4,20s:0"},
}
# The processes a ramp reports CPU for (`make run`'s pid files), and k6 itself: on one box the
# load generator takes its share of the same cores.
CAPACITY_PROCESSES = {
    "chat": ["brain", "llm", "postgres", "nats", "k6", "machine"],
    "tts": ["tts", "k6", "machine"],
    "conversations": ["voice", "tts", "brain", "llm", "nats", "k6", "machine"],
}
# Script settings worth naming in a report when the environment sets them.
WORKLOAD_KNOBS = ("CHAT_TEXTS", "TTS_TEXT", "SAMPLE_RATE", "FRAME_MS", "THINK_MS", "TURNS")
SCRIPT_KNOBS = ("VUS", "DURATION", "STAGES")


def api_key(state: Path) -> str:
    key = os.environ.get("ARC_API_KEY")
    if key:
        return key
    path = state / "api-key"
    if not path.is_file():
        raise SystemExit(f"no {path}: start the mesh with `make run` first (docs/load.md)")
    return path.read_text().strip()


def endpoints(settings: StackSettings) -> dict[str, str]:
    host = "127.0.0.1"
    return {
        "BRAIN_URL": os.environ.get("BRAIN_URL", f"http://{host}:{settings.brain_http_port}"),
        "TTS_URL": os.environ.get("TTS_URL", f"http://{host}:{settings.tts_http_port}"),
        "VOICE_URL": os.environ.get(
            "VOICE_URL", f"ws://{host}:{settings.voice_http_port}/v1/voice"
        ),
    }


HEALTH = {"chat": "BRAIN_URL", "tts": "TTS_URL", "conversations": "VOICE_URL"}


def check_health(names: list[str], urls: dict[str, str]) -> list[str]:
    """What is not answering, as lines to print; empty when all are."""
    problems = []
    with httpx.Client(timeout=3.0) as client:
        for name in names:
            base = urls[HEALTH[name]].replace("ws://", "http://").replace("wss://", "https://")
            base = base.removesuffix("/v1/voice")
            try:
                status = client.get(f"{base}/healthz").status_code
            except httpx.HTTPError as exc:
                problems.append(f"{name}: {base} does not answer ({type(exc).__name__})")
                continue
            if status != 200:
                problems.append(f"{name}: {base}/healthz answered {status}")
    return problems


def script_env(name: str, args: argparse.Namespace) -> dict[str, str]:
    env = dict(DEFAULTS[name])
    if any(os.environ.get(knob) for knob in SCRIPT_KNOBS):
        env = {knob: os.environ[knob] for knob in SCRIPT_KNOBS if os.environ.get(knob)}
    if args.vus is not None:
        env = {"VUS": str(args.vus), "DURATION": env.get("DURATION", "30s")}
    if args.duration is not None:
        env["DURATION"] = args.duration
        env.pop("STAGES", None)
    if args.stages is not None:
        env = {"STAGES": args.stages}
    if "STAGES" in env:
        env["VUS"] = env["DURATION"] = ""  # a ramp: the scripts ignore VUS/DURATION
    return env


def shown(env: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in env.items() if v) or "the script's defaults"


async def run_one(
    name: str, env: dict[str, str], watch: dict[str, int], out: Path, logs: Path
) -> K6Result:
    script = SCRIPTS[name]
    knobs = {k: v for k, v in env.items() if k in SCRIPT_KNOBS}
    print(f"▸ k6 {script.name} ({shown(knobs)})", flush=True)
    # The summary goes where the report links it; k6's console output stays in .arc.
    result = await run_k6(
        script, env, out / f"{script.stem}.json", logs / f"{script.stem}.log", watch=watch
    )
    print(report.table(result))
    print(report.cpu_line(result) + report.verdict(result), flush=True)
    if result.returncode not in (0, 99):
        print(result.log[-3000:], file=sys.stderr)
    if result.value("chat_rate_limited", "count"):
        print(
            "  the brain refused requests with 429: restart `make run` with "
            "ARC_HTTP__RATE_LIMIT_PER_MINUTE=1000000 for a load test (docs/load.md)"
        )
    return result


async def main_async(args: argparse.Namespace) -> int:
    state = state_dir()
    settings = StackSettings()
    names: list[str] = args.scripts or (["chat", "tts"] if args.capacity else list(SCRIPTS))
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        print(f"✗ unknown script {', '.join(unknown)}; the scripts: {', '.join(SCRIPTS)}")
        return 2
    base = {**endpoints(settings), "ARC_API_KEY": api_key(state)}
    problems = check_health(names, base)
    if problems:
        print("✗ the mesh is not running (start it with `make run` in another terminal):")
        print("\n".join(f"  {p}" for p in problems))
        return 2
    if "conversations" in names:
        base["QUESTIONS"] = str(ensure_questions())
    watch = stack_pids(state)
    command = "python -m tests.load " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "make load"
    out = state / "load"
    held = True
    if args.capacity:
        levels = [int(v) for v in args.capacity.split(",")]
        for name in names:
            if name not in CAPACITY_PROCESSES:
                print(f"✗ no capacity ramp for {name}")
                return 2
            steps = []
            started_load = load_average()
            for vus in levels:
                env = {**base, "VUS": str(vus), "DURATION": args.duration or "20s", "STAGES": ""}
                step_dir = out / "capacity" / f"{name}-{vus}"
                result = await run_one(name, env, watch, step_dir, step_dir)
                steps.append(report.CapacityStep(vus, result, f"{os.getloadavg()[0]:.1f}"))
                if result.returncode not in (0, 99):
                    return 1
            processes = [p for p in CAPACITY_PROCESSES[name] if p in (*watch, "k6", "machine")]
            workload = shown({k: os.environ[k] for k in WORKLOAD_KNOBS if os.environ.get(k)})
            report.write_capacity(
                SCRIPTS[name].stem,
                steps,
                processes,
                command,
                load_at_start=started_load,
                tag=args.tag,
                workload=workload,
            )
        print(f"✓ written to {report.REPORT}")
        return 0
    for name in names:
        env = {**base, **script_env(name, args)}
        started_load = load_average()
        result = await run_one(name, env, watch, report.SUMMARIES, out)
        if result.returncode not in (0, 99):
            held = False
            continue
        held = held and result.thresholds_held
        if not args.no_report:
            report.write_run(
                result,
                command,
                shown({k: v for k, v in env.items() if k in SCRIPT_KNOBS}),
                started_load,
            )
    if not args.no_report:
        print(f"✓ written to {report.REPORT}")
    return 0 if held else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.load", description="k6 load tests against a running `make run`"
    )
    parser.add_argument("scripts", nargs="*", metavar="SCRIPT", help=", ".join(SCRIPTS))
    parser.add_argument("--vus", type=int, help="constant virtual users (clients)")
    parser.add_argument("--duration", help="how long, e.g. 30s (per step with --capacity)")
    parser.add_argument("--stages", help="a ramp, e.g. 20s:2,40s:4,20s:0")
    parser.add_argument("--capacity", metavar="VUS,VUS,…", help="a ramp of chat and/or tts")
    parser.add_argument("--tag", help="names this capacity ramp's section (a workload)")
    parser.add_argument("--no-report", action="store_true", help="leave docs/load.md alone")
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: runs the benchmarks (all, or those named in BENCH=a,b) and updates
docs/benchmarks.md section by section."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

# In the order `make bench` runs them; a service's benchmark counts once its module exists.
ALL_BENCHES = (
    "rpc",
    "tracing",
    "voice_tracing",
    "recording",
    "brain",
    "llm",
    "intent",
    "tts",
    "events",
    "turn",
    "voice",
    "voice_llm",
    "go_sdk",
)
BENCHES = tuple(b for b in ALL_BENCHES if importlib.util.find_spec(f"tests.bench.{b}") is not None)


def main() -> int:
    wanted = [b for b in os.environ.get("BENCH", "").split(",") if b] or list(BENCHES)
    unknown = [b for b in wanted if b not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}")
        return 2
    for name in wanted:
        print(f"▸ benchmark {name}", flush=True)
        module = importlib.import_module(f"tests.bench.{name}")
        print(module.main(), flush=True)
    print("docs/benchmarks.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

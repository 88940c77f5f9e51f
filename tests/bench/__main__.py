"""`make bench`: runs the benchmarks (all, or those named in BENCH=a,b) and updates
docs/benchmarks.md section by section."""

from __future__ import annotations

import importlib
import os
import sys

BENCHES = ("rpc",)


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

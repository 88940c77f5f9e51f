"""`entrypoint.sh migrate`: applies migrations/*.sql with the same runner as `make run`
(arc_stack.migrations: in order, each once, under an advisory lock), then exits. Run as a
one-shot compose service / Kubernetes Job before the services start."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, "/app/lib")

from arc_stack.migrations import apply_migrations


def main() -> int:
    dsn = os.environ.get("ARC_POSTGRES__DSN")
    if not dsn:
        print("migrate: ARC_POSTGRES__DSN is not set", file=sys.stderr)
        return 2
    applied = asyncio.run(apply_migrations(dsn, Path("/app/migrations")))
    print(f"migrate: applied {', '.join(applied) if applied else 'nothing (up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Stopping the background tasks a component owns."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

# How long a cancelled task may go on before it is cancelled again. A task can swallow one
# cancellation and carry on: Python 3.11's `asyncio.wait_for` loses it when the awaited
# future completes in the same step (nats.py's flush and request use it), and a library's
# cleanup that raises in a `finally` replaces it with an error that a retry loop catches. A
# voice benchmark hung for good in teardown on a `Periodic` that did so.
RECANCEL_S = 1.0


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None, recancel_s: float = RECANCEL_S) -> None:
    """Cancel every task (None: none was started) and wait until each has finished, so none
    outlives its owner; their cancellation is what was asked for, not an error to raise. A
    task still running `recancel_s` after a cancellation is cancelled again."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    for task in live:
        while not task.done():
            await asyncio.wait({task}, timeout=recancel_s)
            if not task.done():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""Catches a service's event loop blocked by synchronous work, and names the code that did it.

A voice turn, a NATS heartbeat and an HTTP health check all wait on one event loop; a
blocking call in it (a model loaded on the loop, a synchronous write, a lock held by a
native library) stalls every one of them, and from outside it looks like a slow network or
a slow model. asyncio only reports slow callbacks in its debug mode, which is too costly to
run in production. Here a task on the loop ticks every `tick_s`, and a daemon thread checks
the ticks: when the loop has not ticked for `report_after_s`, the thread logs the loop
thread's current stack once (the code holding the loop), and when the loop comes back the
task logs for how long it was held. Every lateness is observed in the
`arc_event_loop_lag_seconds` histogram.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Histogram

from arc_common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

LOOP_LAG = Histogram(
    "arc_event_loop_lag_seconds",
    "How late the event loop ran a timer due now: time it was held by other work",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

_STACK_FRAMES = 25


class LoopWatch:
    """The tick task's state, shared with the checking thread. Times are `time.monotonic()`."""

    def __init__(self, service: str, *, tick_s: float, report_after_s: float) -> None:
        if tick_s <= 0 or report_after_s <= tick_s:
            raise ValueError("need 0 < tick_s < report_after_s")
        self.service = service
        self.tick_s = tick_s
        self.report_after_s = report_after_s
        self.last_tick = time.monotonic()
        self.stalls = 0  # stalls reported by the thread, each once
        self._reported_tick: float | None = None
        self._loop_thread = threading.get_ident()
        self._stopped = threading.Event()

    async def tick(self) -> None:
        """Runs on the loop until cancelled."""
        lag = LOOP_LAG.labels(service=self.service)
        while True:
            due = time.monotonic() + self.tick_s
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            late = max(0.0, now - due)
            lag.observe(late)
            if late >= self.report_after_s:
                log.warning("event loop was held for %.1f s", late)
            self.last_tick = now

    def check(self) -> str | None:
        """The loop thread's stack when the loop has been held past `report_after_s` and this
        stall has not been reported yet; otherwise None."""
        last = self.last_tick
        if time.monotonic() - last < self.report_after_s or self._reported_tick == last:
            return None
        self._reported_tick = last
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return None
        self.stalls += 1
        return "".join(traceback.format_stack(frame, limit=_STACK_FRAMES))

    def watch(self) -> None:
        """The checking thread's body."""
        while not self._stopped.wait(self.tick_s):
            stack = self.check()
            if stack is not None:
                log.warning(
                    "event loop held for over %.1f s; it is running:\n%s",
                    self.report_after_s,
                    stack,
                )

    def stop(self) -> None:
        self._stopped.set()


@asynccontextmanager
async def watching_loop(
    service: str, *, tick_s: float = 0.25, report_after_s: float = 1.0
) -> AsyncIterator[LoopWatch]:
    """Watch the running loop for the life of the block."""
    watch = LoopWatch(service, tick_s=tick_s, report_after_s=report_after_s)
    ticker = asyncio.create_task(watch.tick(), name=f"{service}.loop_watch")
    thread = threading.Thread(target=watch.watch, name=f"{service}-loop-watch", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        watch.stop()
        await cancel_and_wait(ticker)
        thread.join(timeout=1.0)

"""A step run now and every `interval_s` after, by one task its owner starts and closes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class Periodic:
    """Runs `step` at start and then every `interval_s` until closed. A step that raises is
    logged (at `failure_level`, with `failure` as the message) and tried again next round:
    what it reads or cleans may be away for a while (Postgres, NATS), and the loop outlives
    that."""

    def __init__(
        self,
        step: Callable[[], Awaitable[object]],
        interval_s: float,
        *,
        name: str,
        log: logging.Logger,
        failure: str,
        failure_level: int = logging.ERROR,
    ) -> None:
        self._step = step
        self._interval_s = interval_s
        self._name = name
        self._log = log
        self._failure = failure
        self._failure_level = failure_level
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except Exception:
                self._log.log(self._failure_level, self._failure, exc_info=True)
            await asyncio.sleep(self._interval_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

"""A step run now and every `interval_s` after, by one task its owner starts and closes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field

from arc_common.tasks import cancel_and_wait


@dataclass(eq=False)
class Periodic:
    """Runs `step` at start and then every `interval_s` until closed. A step that raises is
    logged (at `failure_level`, with `failure` as the message) and tried again next round:
    what it reads or cleans may be away for a while (Postgres, NATS), and the loop outlives
    that."""

    step: Callable[[], Awaitable[object]]
    interval_s: float
    _: KW_ONLY
    name: str
    log: logging.Logger
    failure: str
    failure_level: int = logging.ERROR
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                self.log.log(self.failure_level, self.failure, exc_info=True)
            await asyncio.sleep(self.interval_s)

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

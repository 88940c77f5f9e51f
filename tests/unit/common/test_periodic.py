"""`Periodic`: a step now and every interval after, a failure logged and tried again, and
nothing run once it is closed."""

from __future__ import annotations

import asyncio
import logging

import pytest
from arc_common.periodic import Periodic

log = logging.getLogger("test-periodic")


async def test_a_failing_step_is_logged_and_tried_again_until_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    third = asyncio.Event()

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            third.set()
        if calls == 1:
            raise ConnectionError("away for a while")

    periodic = Periodic(step, 0.01, name="test-periodic", log=log, failure="step failed")
    assert not periodic.running
    periodic.start()
    assert periodic.running
    await asyncio.wait_for(third.wait(), timeout=5)
    await periodic.aclose()
    assert not periodic.running
    stopped_at = calls
    await asyncio.sleep(0.05)  # five intervals: a step still scheduled would have run
    assert calls == stopped_at
    [record] = [r for r in caplog.records if r.name == "test-periodic"]
    assert record.levelno == logging.ERROR and record.getMessage() == "step failed"
    assert record.exc_info is not None and isinstance(record.exc_info[1], ConnectionError)


async def test_closing_a_periodic_never_started_does_nothing() -> None:
    async def step() -> None:
        raise AssertionError("never run")

    await Periodic(step, 1.0, name="idle", log=log, failure="x").aclose()

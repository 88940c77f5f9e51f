"""`cancel_and_wait`: every task is stopped, even one that swallows a cancellation."""

from __future__ import annotations

import asyncio

import pytest
from arc_common.tasks import cancel_and_wait

pytestmark = pytest.mark.unit


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        # What a retry loop does when a cleanup's error replaces the CancelledError.
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, recancel_s=0.05), timeout=2)
    assert task.cancelled() and swallowed == 1


async def test_a_task_that_failed_raises_its_error_and_none_is_skipped() -> None:
    async def broken() -> None:
        raise RuntimeError("bug")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="bug"):
        await cancel_and_wait(None, task)

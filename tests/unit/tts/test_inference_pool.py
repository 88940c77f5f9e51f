"""The synthesis threads: earliest deadline first, cancelled jobs dropped or terminated."""

from __future__ import annotations

import asyncio
import threading
import time

import onnxruntime  # type: ignore[import-untyped]
import pytest
from arc_tts.inference_pool import InferencePool, PoolClosed

from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.unit


async def test_queued_jobs_run_earliest_deadline_first() -> None:
    pool = InferencePool(1)
    gate = threading.Event()
    order: list[str] = []

    def blocker() -> None:
        gate.wait(5)

    first = asyncio.ensure_future(pool.run(blocker, onnxruntime.RunOptions(), deadline=0.0))
    await wait_until(lambda: pool.running == 1)
    jobs = [
        asyncio.ensure_future(
            pool.run(lambda n=name: order.append(n), onnxruntime.RunOptions(), deadline=d)  # type: ignore[misc]
        )
        for name, d in (("late", 30.0), ("new stream", 1.0), ("middle", 10.0))
    ]
    await wait_until(lambda: pool.waiting == 3)
    gate.set()
    await asyncio.gather(first, *jobs)
    assert order == ["new stream", "middle", "late"]
    assert pool.waiting == 0 and pool.running == 0
    await pool.close()


async def test_errors_reach_the_caller() -> None:
    pool = InferencePool(1)

    def boom() -> None:
        raise ValueError("bad phonemes")

    with pytest.raises(ValueError, match="bad phonemes"):
        await pool.run(boom, onnxruntime.RunOptions(), deadline=0.0)
    assert await pool.run(lambda: 42, onnxruntime.RunOptions(), deadline=0.0) == 42
    await pool.close()


async def test_cancelled_caller_drops_a_queued_job_and_terminates_a_running_one() -> None:
    pool = InferencePool(1)
    running_options = onnxruntime.RunOptions()
    queued_ran = threading.Event()

    def until_terminated() -> None:
        deadline = time.monotonic() + 5
        while not running_options.terminate and time.monotonic() < deadline:
            time.sleep(0.001)

    running = asyncio.ensure_future(pool.run(until_terminated, running_options, deadline=0.0))
    queued = asyncio.ensure_future(pool.run(queued_ran.set, onnxruntime.RunOptions(), deadline=1.0))
    await wait_until(lambda: pool.running == 1 and pool.waiting == 1)
    queued.cancel()
    running.cancel()
    await asyncio.gather(running, queued, return_exceptions=True)
    # Left alone, the running job would go on for 5 s: ending well before shows it was stopped.
    await wait_until(lambda: pool.running == 0, timeout_s=2.5, what="the running job terminated")
    assert running_options.terminate
    assert pool.waiting == 0
    # A job due after the dropped one: once it has run, the dropped one would have run too.
    await pool.run(lambda: None, onnxruntime.RunOptions(), deadline=2.0)
    assert not queued_ran.is_set()
    await pool.close()


async def test_close_waits_for_threads_and_refuses_new_jobs() -> None:
    pool = InferencePool(2)
    await pool.close()
    assert all(not t.is_alive() for t in pool._threads)
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(lambda: 1, onnxruntime.RunOptions(), deadline=0.0)


async def test_closing_fails_the_queued_jobs_instead_of_leaving_them_waiting() -> None:
    pool = InferencePool(1)
    gate = threading.Event()
    running = asyncio.ensure_future(
        pool.run(lambda: gate.wait(5), onnxruntime.RunOptions(), deadline=0.0)
    )
    await wait_until(lambda: pool.running == 1)
    queued = asyncio.ensure_future(pool.run(lambda: 1, onnxruntime.RunOptions(), deadline=1.0))
    await wait_until(lambda: pool.waiting == 1)
    closing = asyncio.ensure_future(pool.close())
    with pytest.raises(PoolClosed):
        await asyncio.wait_for(queued, timeout=2)
    gate.set()
    await running
    await closing
    with pytest.raises(PoolClosed):
        await pool.run(lambda: 1, onnxruntime.RunOptions(), deadline=0.0)

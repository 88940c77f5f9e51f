"""The events service's retry policies: which errors are retried, the waits between tries
(their bounds, and the reset after a success), what is logged before each wait, and that a
stop (a cancellation) ends a wait at once."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref

import pulsar
import pytest
from arc_events import retries
from arc_events.relay import PassFailed, pass_retry_policy
from tenacity import RetryCallState

pytestmark = pytest.mark.unit


class Flaky:
    """Fails with the given errors, one per call, then returns 'done'."""

    def __init__(self, *errors: BaseException) -> None:
        self._errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self._errors:
            raise self._errors.pop(0)
        return "done"


class Sleeps:
    """Stands in for tenacity's sleep: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_relay_backs_off_from_a_tenth_doubling_up_to_the_maximum_with_jitter() -> None:
    sleeps = Sleeps()
    policy = pass_retry_policy(0.5).copy(sleep=sleeps)
    flaky = Flaky(*(PassFailed("publish: Timeout", database=False) for _ in range(6)))
    assert await policy(flaky) == "done"
    assert flaky.calls == 7
    # 0.1 x 2^n, plus up to 0.1 of jitter, never above 0.5.
    for wait, low in zip(sleeps.waits, [0.1, 0.2, 0.4, 0.5, 0.5, 0.5], strict=True):
        assert low <= wait <= min(low + 0.1, 0.5)
    assert sleeps.waits[-3:] == [0.5, 0.5, 0.5]


async def test_relay_waits_the_maximum_after_a_failed_outbox_read() -> None:
    sleeps = Sleeps()
    policy = pass_retry_policy(2.0).copy(sleep=sleeps)
    flaky = Flaky(*(PassFailed("outbox read: gone", database=True) for _ in range(3)))
    assert await policy(flaky) == "done"
    assert sleeps.waits == [2.0, 2.0, 2.0]


async def test_a_successful_pass_resets_the_relay_backoff() -> None:
    sleeps = Sleeps()
    policy = pass_retry_policy(60.0).copy(sleep=sleeps)
    for _ in range(2):
        flaky = Flaky(*(PassFailed("publish: Timeout", database=False) for _ in range(3)))
        assert await policy(flaky) == "done"
    # Two runs of three failures each start again from 0.1 s: 0.1, 0.2, 0.4 (+ jitter).
    assert len(sleeps.waits) == 6
    for wait, low in zip(sleeps.waits, [0.1, 0.2, 0.4] * 2, strict=True):
        assert low <= wait <= low + 0.1


async def test_each_wait_is_logged_with_the_error_and_the_delay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = pass_retry_policy(0.5).copy(sleep=Sleeps())
    with caplog.at_level(logging.WARNING, logger="arc_events.relay"):
        await policy(Flaky(PassFailed("outbox read: connection refused", database=True)))
    assert [r.getMessage() for r in caplog.records] == [
        "relay: outbox read: connection refused; retrying in 0.50 s"
    ]


async def test_errors_not_named_are_not_retried() -> None:
    sleeps = Sleeps()
    policy = retries.forever(
        retry_on=pulsar.PulsarException,
        wait=retries.fixed(0.01),
        log=logging.getLogger("test"),
        message="%s %s",
    ).copy(sleep=sleeps)
    flaky = Flaky(ValueError("a bug, not an outage"))
    with pytest.raises(ValueError, match="a bug"):
        await policy(flaky)
    assert flaky.calls == 1 and sleeps.waits == []


async def test_on_retry_sees_every_retried_error() -> None:
    seen: list[str] = []
    policy = retries.forever(
        retry_on=pulsar.PulsarException,
        wait=retries.doubling(0.2, 2.0),
        log=logging.getLogger("test"),
        message="%s %s",
        on_retry=lambda error: seen.append(str(error)),
    ).copy(sleep=Sleeps())
    flaky = Flaky(pulsar.Timeout("first"), pulsar.ConnectError("second"))
    assert await policy(flaky) == "done"
    assert seen == ["first", "second"]


async def test_a_stop_during_a_long_wait_ends_it_at_once() -> None:
    """The real sleep: a task cancelled while it waits 60 s before its next try ends at once,
    and the try is not repeated."""
    calls = 0
    waiting = asyncio.Event()

    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise PassFailed("outbox read: gone", database=True)

    policy = pass_retry_policy(60.0)
    original = policy.retrying.before_sleep
    assert original is not None

    def before_sleep(state: RetryCallState) -> None:
        original(state)
        waiting.set()

    watched = policy.copy(before_sleep=before_sleep)
    task: asyncio.Task[None] = asyncio.create_task(watched(always_fails))
    await asyncio.wait_for(waiting.wait(), timeout=5)
    began = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert time.monotonic() - began < 1.0
    assert calls == 1


async def test_a_cancelled_call_frees_what_its_try_held_at_once() -> None:
    """Without the garbage collector: a Pulsar client left for it is destroyed at exit, which
    aborts the process. A plain await frees it as soon as the task is gone; so must a policy."""

    class Held:
        pass

    held = Held()
    alive = weakref.ref(held)
    trying = asyncio.Event()

    async def attempt(client: Held) -> None:
        trying.set()
        await asyncio.sleep(60)

    policy = pass_retry_policy(0.5)
    gc.disable()
    try:
        task: asyncio.Task[None] = asyncio.create_task(policy(attempt, held))
        del held
        await asyncio.wait_for(trying.wait(), timeout=5)
        task.cancel()
        await asyncio.wait([task], timeout=5)
        assert task.cancelled()
        del task
        assert alive() is None
    finally:
        gc.enable()


async def test_a_cancellation_inside_a_try_is_not_retried() -> None:
    sleeps = Sleeps()
    policy = pass_retry_policy(0.5).copy(sleep=sleeps)
    flaky = Flaky(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await policy(flaky)
    assert flaky.calls == 1 and sleeps.waits == []

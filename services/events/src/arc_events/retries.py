"""Retry policies of the events service, on tenacity.

Each policy names which errors it retries, how long it waits between tries and what it logs
before each wait; anything else propagates at once. The service retries until it is stopped,
so no policy gives up. tenacity waits with `asyncio.sleep`, so a stop (a cancellation)
interrupts a wait at once, and a `CancelledError` raised inside a try is never retried.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_base, wait_exponential_jitter, wait_fixed

Errors = type[BaseException] | tuple[type[BaseException], ...]
P = ParamSpec("P")
T = TypeVar("T")


class Policy:
    """A tenacity `AsyncRetrying`, called the same way: `await policy(fn, *args)`.

    When the call ends in an error (a cancellation above all), tenacity's call state still
    holds that error, whose traceback holds the call state: a cycle that keeps everything
    the attempt referenced (a Pulsar client, its producers) alive until the garbage
    collector runs, possibly only at interpreter exit, where destroying a Pulsar client
    aborts the process. Clearing the finished frames frees them at once, as a plain await
    would."""

    def __init__(self, retrying: AsyncRetrying) -> None:
        self.retrying = retrying

    def copy(self, **changes: Any) -> Policy:
        """The same policy with tenacity parameters changed (`sleep`, `before_sleep`...)."""
        return Policy(self.retrying.copy(**changes))

    async def __call__(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result: T = await self.retrying(fn, *args, **kwargs)
        except BaseException as error:
            traceback.clear_frames(error.__traceback__)
            raise
        return result


def doubling(first_s: float, max_s: float) -> wait_base:
    """first_s, 2 x first_s, 4 x first_s, ... never above max_s, each plus a random jitter of
    up to first_s (still never above max_s), so peers that failed together retry apart."""
    return wait_exponential_jitter(multiplier=first_s, max=max_s, jitter=first_s)


def fixed(seconds: float) -> wait_base:
    return wait_fixed(seconds)


def forever(
    *,
    retry_on: Errors,
    wait: wait_base | Callable[[RetryCallState], float],
    log: logging.Logger,
    message: str,
    on_retry: Callable[[BaseException], None] | None = None,
) -> Policy:
    """Retries `retry_on` until cancelled. Before each wait it logs a warning from `message`,
    a %-format given the error and the wait in seconds, and calls `on_retry(error)`."""

    def before_sleep(state: RetryCallState) -> None:
        error = failure(state)
        if on_retry is not None:
            on_retry(error)
        log.warning(message, error, state.upcoming_sleep)

    return Policy(
        AsyncRetrying(retry=retry_if_exception_type(retry_on), wait=wait, before_sleep=before_sleep)
    )


def failure(state: RetryCallState) -> BaseException:
    """The error of the try that just failed."""
    outcome = state.outcome
    error = None if outcome is None else outcome.exception()
    if error is None:  # tenacity calls wait and before_sleep only after a failed try
        raise RuntimeError("no failed attempt to retry")
    return error

"""The event-loop watch: a loop held by blocking code is reported once, with the code that
held it, and how long it was held; a loop that runs freely reports nothing."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest
from arc_common.loop_watch import LoopWatch, watching_loop
from prometheus_client import REGISTRY


def _lag_count(service: str) -> float:
    return REGISTRY.get_sample_value("arc_event_loop_lag_seconds_count", {"service": service}) or 0


def _lag_over(service: str, bound: str) -> float:
    below = REGISTRY.get_sample_value(
        "arc_event_loop_lag_seconds_bucket", {"service": service, "le": bound}
    )
    return _lag_count(service) - (below or 0)


def hold_the_loop_for(seconds: float) -> None:
    time.sleep(seconds)  # the blocking call a service must never make on its loop


@pytest.fixture
def service(caplog: pytest.LogCaptureFixture) -> str:
    """A service name of its own (its histogram series start at zero), its warnings captured."""
    caplog.set_level(logging.WARNING, logger="arc_common.loop_watch")
    return f"watched-{uuid.uuid4().hex[:6]}"


async def test_a_held_loop_is_reported_with_the_code_holding_it(
    service: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with watching_loop(service, tick_s=0.05, report_after_s=0.3) as watch:
        await asyncio.sleep(0.2)
        hold_the_loop_for(0.8)
        await asyncio.sleep(0.2)
    assert watch.stalls == 1
    stacks = [r.getMessage() for r in caplog.records if "it is running" in r.getMessage()]
    assert len(stacks) == 1, stacks
    assert "hold_the_loop_for" in stacks[0] and "time.sleep" in stacks[0], stacks[0]
    held = [r.getMessage() for r in caplog.records if "was held for" in r.getMessage()]
    assert len(held) == 1, held
    seconds = float(held[0].split("held for ")[1].split(" s")[0])
    assert 0.6 <= seconds <= 1.5, held
    # The stall is in the histogram, in a bucket over half a second.
    assert _lag_over(service, "0.5") == 1


async def test_a_free_loop_reports_nothing_and_observes_each_tick(
    service: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with watching_loop(service, tick_s=0.05, report_after_s=0.5) as watch:
        for _ in range(10):
            await asyncio.sleep(0.03)
    assert watch.stalls == 0
    # Only the watch's own records: the session's event loop also carries other tests' clients.
    assert not [r for r in caplog.records if r.name == "arc_common.loop_watch"]
    assert _lag_count(service) >= 3
    assert _lag_over(service, "0.25") == 0


def test_each_stall_is_reported_once() -> None:
    watch = LoopWatch("once", tick_s=0.01, report_after_s=0.05)
    watch.last_tick = time.monotonic() - 1.0
    first = watch.check()
    assert first is not None and "test_each_stall_is_reported_once" in first
    assert watch.check() is None  # the same stall
    watch.last_tick = time.monotonic()
    assert watch.check() is None  # the loop ticked: no stall
    watch.last_tick = time.monotonic() - 1.0
    assert watch.check() is not None  # a new one
    assert watch.stalls == 2


@pytest.mark.parametrize(("tick_s", "report_after_s"), [(0.0, 1.0), (1.0, 1.0), (-1.0, 0.5)])
def test_settings_that_cannot_work_are_refused(tick_s: float, report_after_s: float) -> None:
    with pytest.raises(ValueError, match="tick_s"):
        LoopWatch("bad", tick_s=tick_s, report_after_s=report_after_s)

"""The events service's retries on real servers: a relay whose outbox reads fail keeps
retrying and, once the table is back, delivers every event once and in order; a stop during
a long backoff returns at once; and a consumer takes a backlog in batches no larger than
`consumer_batch_size`."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest
from arc_common.events import TurnMetrics, write_events
from arc_events.service import EventsService
from arc_events.settings import Role

from tests.fixtures.events import SettingsFactory, running
from tests.integration.events.support import Writer, audit_order, outbox_order, scalar, wait_until

pytestmark = pytest.mark.integration

AWAY = "ALTER TABLE agents.outbox RENAME TO outbox_away"
BACK = "ALTER TABLE agents.outbox_away RENAME TO outbox"


def _read_retries(caplog: pytest.LogCaptureFixture, delay: str = "") -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == "arc_events.relay"
        and r.getMessage().startswith("relay: outbox read:")
        and f"retrying in {delay}" in r.getMessage()
    )


async def test_failed_outbox_reads_are_retried_and_nothing_is_lost(
    events_settings: SettingsFactory, events_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="arc_events.relay")
    settings = events_settings(relay_workers=1)  # relay_retry_max_s = 0.5
    writer = Writer(events_dsn, sessions=5, per_tick=10, tick_s=0.0)
    async with running(settings, Role.RELAY, Role.AUDIT) as service:
        [relay] = service.relays

        async def audited_all() -> bool:
            return await scalar(events_dsn, "SELECT count(*) FROM agents.event_audit") == (
                writer.written
            )

        await writer.write_once_in_new_transaction()
        await wait_until(audited_all, timeout_s=60)
        # Events committed together with the table going away: the relay cannot read them.
        async with (
            await psycopg.AsyncConnection.connect(events_dsn) as conn,
            conn.transaction(),
        ):
            await writer.write_once(conn)
            await writer.write_once(conn)
            await conn.execute(AWAY)

        async def retried_thrice() -> bool:
            return _read_retries(caplog, "0.50 s") >= 3

        await wait_until(retried_thrice, timeout_s=30, interval_s=0.1)
        assert not relay.health.healthy and not relay.health.database_ok
        assert (relay.health.last_error or "").startswith("outbox")  # read or stats
        async with await psycopg.AsyncConnection.connect(events_dsn, autocommit=True) as conn:
            await conn.execute(BACK)
        await writer.write_once_in_new_transaction()
        await wait_until(audited_all, timeout_s=60)
        assert relay.health.healthy
    assert await scalar(events_dsn, "SELECT count(DISTINCT event_id) FROM agents.event_audit") == (
        writer.written
    )
    conversation = {s: ids[0::2] for s, ids in (await outbox_order(events_dsn)).items()}
    assert await audit_order(events_dsn) == conversation
    assert await scalar(events_dsn, "SELECT count(*) FROM agents.outbox WHERE sent_at IS NULL") == 0


async def test_a_stop_during_a_long_backoff_returns_at_once(
    events_settings: SettingsFactory, events_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="arc_events.relay")
    settings = events_settings(relay_retry_max_s=60.0, relay_workers=1)
    service = EventsService(
        settings.model_copy(
            update={"events": settings.events.model_copy(update={"roles": [Role.RELAY]})}
        )
    )
    stopped = False
    try:
        await service.start()
        [relay] = service.relays

        async def ready() -> bool:
            return relay.health.ready

        await wait_until(ready, timeout_s=30)
        async with await psycopg.AsyncConnection.connect(events_dsn, autocommit=True) as conn:
            await conn.execute(AWAY)

        async def waiting_a_minute() -> bool:
            return _read_retries(caplog, "60.00 s") >= 1

        await wait_until(waiting_a_minute, timeout_s=30, interval_s=0.05)
        began = time.monotonic()
        await service.stop()
        stopped = True
        took = time.monotonic() - began
    finally:
        if not stopped:
            await service.stop()
    # Generous for a busy machine; the wait it interrupted was 60 s.
    assert took < 5.0
    assert _read_retries(caplog) == 1


async def test_a_consumer_takes_a_backlog_in_bounded_batches(
    events_settings: SettingsFactory, events_dsn: str
) -> None:
    """The backlog waits on the broker before the consumer subscribes. Each consumer
    transaction stamps its rows with one `recorded_at`, so the stamps count the batches."""
    settings = events_settings(consumer_batch_size=100)
    backlog = 600
    async with await psycopg.AsyncConnection.connect(events_dsn) as conn:
        await write_events(
            conn,
            [
                TurnMetrics(session_id=f"s{i % 20}", turn_id=f"t{i}", stt_ms=1.0)
                for i in range(backlog)
            ],
        )
        await conn.commit()
    unsent = "SELECT count(*) FROM agents.outbox WHERE sent_at IS NULL"
    async with running(settings, Role.RELAY):

        async def relayed() -> bool:
            return await scalar(events_dsn, unsent) == 0

        await wait_until(relayed, timeout_s=60)
    async with running(settings, Role.ANALYTICS):

        async def applied() -> bool:
            return await scalar(events_dsn, "SELECT count(*) FROM agents.turn_metrics") == backlog

        await wait_until(applied, timeout_s=60)
    async with await psycopg.AsyncConnection.connect(events_dsn) as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM agents.turn_metrics GROUP BY recorded_at ORDER BY n DESC"
        )
        sizes = [int(row[0]) for row in await cur.fetchall()]
    assert sum(sizes) == backlog
    assert max(sizes) <= 100, "a batch larger than consumer_batch_size"
    # One message per transaction would make 600; batches of a few dozen make far fewer.
    assert len(sizes) <= backlog // 5, sizes

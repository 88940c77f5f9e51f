"""Several relays on one outbox: they split the buckets, never send a session's events out
of order, and a survivor takes over the buckets of a relay that stops."""

from __future__ import annotations

import asyncio

import pytest
from arc_events.leases import MEMBER_SPACE
from arc_events.settings import Role

from tests.fixtures.events import SettingsFactory, running
from tests.integration.events.support import Writer, audit_order, outbox_order, scalar, wait_until

pytestmark = pytest.mark.integration


async def test_two_relays_share_buckets_and_keep_session_order(
    events_settings: SettingsFactory, events_dsn: str
) -> None:
    # One relay a process here: the two processes share the buckets.
    settings = events_settings(relay_batch_size=200, relay_workers=1)
    writer = Writer(events_dsn, sessions=40, per_tick=20, tick_s=0.01)
    async with running(settings, Role.AUDIT), running(settings, Role.RELAY) as first:
        async with running(settings, Role.RELAY) as second:
            [one], [two] = first.relays, second.relays

            async def split() -> bool:
                return one.health.buckets == two.health.buckets == 32

            await wait_until(split, timeout_s=30)
            await writer.run_for(4.0)
            assert one.health.relayed > 0 and two.health.relayed > 0
        # The second relay is gone: the first takes every bucket and relays what is left.
        await writer.run_for(2.0)

        async def drained() -> bool:
            audited = await scalar(events_dsn, "SELECT count(*) FROM agents.event_audit")
            return audited == writer.written

        await wait_until(drained, timeout_s=90)
        assert one.health.buckets == 64
    written = await outbox_order(events_dsn)
    conversation = {s: ids[0::2] for s, ids in written.items()}  # turn, metrics, turn, ...
    assert await audit_order(events_dsn) == conversation
    assert await scalar(events_dsn, "SELECT count(*) FROM agents.outbox WHERE sent_at IS NULL") == 0


async def test_the_relays_of_one_process_split_the_buckets_at_their_first_rebalance(
    events_settings: SettingsFactory,
) -> None:
    # The next rebalance is a minute away: only the first can have split the buckets here.
    # Before the relays of a process waited for each other's member slots, the first to
    # count its peers could find itself alone and take all 64 buckets.
    settings = events_settings(relay_workers=2, relay_rebalance_interval_s=60)
    async with running(settings, Role.RELAY) as service:
        one, two = service.relays

        async def split() -> bool:
            return one.health.buckets == two.health.buckets == 32

        await wait_until(split, timeout_s=10)


async def test_a_relay_stopped_while_it_starts_leaves_no_member_lock(
    events_settings: SettingsFactory, events_dsn: str
) -> None:
    # A member lock that outlived its relay would be counted as a peer holding no buckets,
    # and its share of the outbox would go unrelayed.
    settings = events_settings(relay_workers=2)
    members = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s"
        " AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname ="
        " current_database())"
    )
    for delay_s in (0.0, 0.002, 0.005, 0.01, 0.02, 0.05):
        async with running(settings, Role.RELAY) as service:
            await asyncio.sleep(delay_s)
            relays = service.relays
        # `relays` keeps the stopped relays (and whatever connection they kept) alive; a
        # closed session's locks go as its backend exits, a moment after the close.
        assert len(relays) == 2

        async def released() -> bool:
            return await scalar(events_dsn, members, MEMBER_SPACE) == 0

        try:
            await wait_until(released, timeout_s=5)
        except AssertionError:
            pytest.fail(f"a member lock outlived relays stopped {delay_s} s after their start")

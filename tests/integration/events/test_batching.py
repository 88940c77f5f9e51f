"""Key-based producer batching on a real broker: a session with several events in a relay pass
reaches the broker as one entry, and every session's events still reach the consumer in the
order they were written, batched or not."""

from __future__ import annotations

import httpx
import pytest
from arc_common.subjects import TOPIC_CONVERSATION
from arc_events.pulsar_admin import topic_path
from arc_events.settings import Role

from tests.fixtures.events import SettingsFactory, running
from tests.integration.events.support import Writer, audit_order, outbox_order, scalar, wait_until

pytestmark = pytest.mark.integration


async def _entries_and_messages(admin_url: str, topic: str) -> tuple[int, int]:
    """(entries the broker stored, messages it took in) on `topic`."""
    async with httpx.AsyncClient(base_url=admin_url, timeout=10) as http:
        internal = (await http.get(f"/admin/v2/{topic_path(topic)}/internalStats")).json()
        stats = (await http.get(f"/admin/v2/{topic_path(topic)}/stats")).json()
    return int(internal["numberOfEntries"]), int(stats["msgInCounter"])


async def test_a_sessions_events_in_one_pass_are_one_entry_and_stay_in_order(
    events_settings: SettingsFactory, events_dsn: str
) -> None:
    settings = events_settings(relay_batch_size=1000, relay_workers=1)
    assert settings.events.relay_producer_batching  # the default
    # The backlog one relay pass takes: 8 sessions with 12 turns each, interleaved, and 30
    # sessions with one turn each (each turn also writes a metrics event, on another topic).
    busy = Writer(events_dsn, sessions=8, per_tick=8, tick_s=0.0)
    for _ in range(12):
        await busy.write_once_in_new_transaction()
    lone = Writer(events_dsn, sessions=30, per_tick=30, tick_s=0.0)
    await lone.write_once_in_new_transaction()
    turns = busy.written + lone.written

    async with running(settings, Role.AUDIT), running(settings, Role.RELAY):

        async def drained() -> bool:
            audited = await scalar(events_dsn, "SELECT count(*) FROM agents.event_audit")
            return audited == turns

        await wait_until(drained, timeout_s=60)
    written = await outbox_order(events_dsn)
    conversation = {s: ids[0::2] for s, ids in written.items()}  # turn, metrics, turn, ...
    assert await audit_order(events_dsn) == conversation
    assert await scalar(events_dsn, "SELECT count(*) FROM agents.outbox WHERE sent_at IS NULL") == 0

    topic = TOPIC_CONVERSATION + settings.events.topic_suffix
    entries, messages = await _entries_and_messages(settings.pulsar.admin_url, topic)
    assert messages == turns, (entries, messages)
    # Unbatched, every message is an entry (126 here). Batched: at most one entry per busy
    # session and pass, plus one per lone turn; a pass can be split by the relay's bucket
    # leases being taken in steps, so allow each busy session a few.
    assert entries <= 30 + 8 * 3, (entries, messages)

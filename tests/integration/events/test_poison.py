"""Poison on a topic (bytes that are not an event, an event breaking its schema, an unknown
type) is parked on the dead-letter topic, and the consumer keeps applying what follows."""

from __future__ import annotations

import asyncio
from functools import partial

import psycopg
import pulsar
import pytest
from arc_common.events import write_event
from arc_common.subjects import TOPIC_CONVERSATION
from arc_events.consumer import dead_letter_topic
from arc_events.settings import Role
from arc_stack.pulsar import PulsarServer

from tests.fixtures.events import SettingsFactory, running
from tests.integration.events.support import audit_order, turn, wait_until

pytestmark = pytest.mark.integration

POISON = [
    b"\x00\x01 not json at all",
    b'{"type": "conversation.turn", "v": 1, "session_id": "s-p", "turn_id": "t"}',
    b'{"type": "conversation.turn", "v": 7, "session_id": "s-p"}',
    b'{"type": "no.such.event", "v": 1}',
]


async def test_poison_is_parked_and_the_stream_goes_on(
    events_settings: SettingsFactory, events_dsn: str, events_pulsar: PulsarServer
) -> None:
    settings = events_settings()
    topic = TOPIC_CONVERSATION + settings.events.topic_suffix
    client = pulsar.Client(events_pulsar.service_url, operation_timeout_seconds=30)
    loop = asyncio.get_running_loop()
    try:
        producer = await loop.run_in_executor(None, client.create_producer, topic)
        for body in POISON:
            send = partial(producer.send, body, partition_key="s-p")
            await loop.run_in_executor(None, send)
        good = turn("s-p", 1)
        async with await psycopg.AsyncConnection.connect(events_dsn) as conn:
            await write_event(conn, good)
            await conn.commit()

        async with running(settings, Role.RELAY, Role.AUDIT) as service:

            async def applied() -> bool:
                return await audit_order(events_dsn) == {"s-p": [good.event_id]}

            await wait_until(applied, timeout_s=60)
            audit = service.consumers[0].health
            assert audit.parked == len(POISON)
            assert audit.healthy

        dlq = await loop.run_in_executor(
            None,
            lambda: client.subscribe(
                dead_letter_topic(topic, "audit"),
                "inspect",
                initial_position=pulsar.InitialPosition.Earliest,
            ),
        )
        parked = []
        for _ in POISON:
            message = await loop.run_in_executor(None, lambda: dlq.receive(timeout_millis=30_000))
            parked.append((message.data(), message.properties()["arc-dlq-reason"]))
        assert [body for body, _ in parked] == POISON
        reasons = [reason for _, reason in parked]
        assert reasons[0].startswith("not an event")
        assert "missing required field" in reasons[1]
        assert "unknown event schema conversation.turn/v7" in reasons[2]
        assert "unknown event schema no.such.event/v1" in reasons[3]
    finally:
        await loop.run_in_executor(None, client.close)

"""The real Pulsar standalone broker (Maven Central jars on Java 17): the tenant set-up the
mesh relies on, a keyed produce/consume round trip, and a restart that keeps the data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pulsar
import pytest
import pytest_asyncio
from arc_common import subjects
from arc_stack.pulsar import NAMESPACES, TENANT, PulsarServer, ensure_tenant
from pulsar import asyncio as pulsar_aio

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def client(pulsar_server: PulsarServer) -> AsyncIterator[pulsar_aio.Client]:
    c = pulsar_aio.Client(pulsar_server.service_url, operation_timeout_seconds=30)
    yield c
    await c.close()


def _topic(namespace: str = "events") -> str:
    return f"persistent://{TENANT}/{namespace}/test-{uuid.uuid4().hex[:10]}"


async def test_tenant_and_namespaces(pulsar_server: PulsarServer) -> None:
    async with httpx.AsyncClient(base_url=pulsar_server.admin_url, timeout=10) as admin:
        tenants = (await admin.get("/admin/v2/tenants")).json()
        assert TENANT in tenants
        namespaces = (await admin.get(f"/admin/v2/namespaces/{TENANT}")).json()
        assert sorted(namespaces) == sorted(f"{TENANT}/{ns}" for ns in NAMESPACES)
        for ns, (minutes, megabytes) in NAMESPACES.items():
            r = await admin.get(f"/admin/v2/namespaces/{TENANT}/{ns}/retention")
            assert r.json() == {"retentionTimeInMinutes": minutes, "retentionSizeInMB": megabytes}
            r = await admin.get(f"/admin/v2/namespaces/{TENANT}/{ns}/deduplication")
            assert r.json() is True
    # Every start runs the set-up again; it must be a no-op, not an error.
    await ensure_tenant(pulsar_server.admin_url)


def test_contract_topics_live_in_the_tenant() -> None:
    for topic in (
        subjects.TOPIC_CONVERSATION,
        subjects.TOPIC_AGENT_LIFECYCLE,
        subjects.TOPIC_SESSION_METRICS,
    ):
        namespace = topic.removeprefix(f"persistent://{TENANT}/").split("/")[0]
        assert namespace in NAMESPACES, topic


async def test_keyed_round_trip_keeps_order(client: pulsar_aio.Client) -> None:
    topic = _topic()
    consumer = await client.subscribe(
        topic,
        "round-trip",
        consumer_type=pulsar.ConsumerType.KeyShared,
        initial_position=pulsar.InitialPosition.Earliest,
    )
    producer = await client.create_producer(topic, producer_name=f"p-{uuid.uuid4().hex[:6]}")
    sent = [(f"session-{i % 3}", f"event-{i}".encode()) for i in range(30)]
    for key, payload in sent:
        await producer.send(payload, partition_key=key, properties={"event_id": payload.decode()})
    received: list[tuple[str, bytes]] = []
    for _ in sent:
        msg = await consumer.receive()
        received.append((msg.partition_key(), msg.data()))
        assert msg.properties()["event_id"] == msg.data().decode()
        await consumer.acknowledge(msg)
    assert sorted(received) == sorted(sent)
    for key in {k for k, _ in sent}:
        assert [p for k, p in received if k == key] == [p for k, p in sent if k == key]
    await producer.close()
    await consumer.close()


async def test_broker_drops_a_resent_sequence_id(client: pulsar_aio.Client) -> None:
    """Namespace de-duplication: what the outbox relay relies on after a retry."""
    topic = _topic()
    name = f"dedup-{uuid.uuid4().hex[:6]}"
    consumer = await client.subscribe(
        topic, "dedup", initial_position=pulsar.InitialPosition.Earliest
    )
    producer = await client.create_producer(topic, producer_name=name)
    await producer.send(b"first", sequence_id=1)
    await producer.send(b"second", sequence_id=2)
    await producer.close()
    # A new producer with the same name resumes from the broker's last sequence id.
    again = await client.create_producer(topic, producer_name=name)
    assert again.last_sequence_id() == 2
    await again.send(b"second, re-sent", sequence_id=2)
    await again.send(b"third", sequence_id=3)
    got = [(await consumer.receive()).data() for _ in range(3)]
    assert got == [b"first", b"second", b"third"]
    await again.close()
    await consumer.close()


@pytest.mark.slow
async def test_restart_keeps_unread_messages(pulsar_server: PulsarServer) -> None:
    topic = _topic("analytics")
    first = pulsar_aio.Client(pulsar_server.service_url, operation_timeout_seconds=30)
    consumer = await first.subscribe(topic, "durable")  # the subscription exists before sends
    producer = await first.create_producer(topic)
    for i in range(5):
        await producer.send(f"m{i}".encode())
    await first.close()

    await pulsar_server.stop()
    assert not await pulsar_server.healthy()
    await pulsar_server.start()

    second = pulsar_aio.Client(pulsar_server.service_url, operation_timeout_seconds=30)
    try:
        consumer = await second.subscribe(topic, "durable")
        got = []
        for _ in range(5):
            msg = await consumer.receive()
            got.append(msg.data())
            await consumer.acknowledge(msg)
        assert got == [f"m{i}".encode() for i in range(5)]
    finally:
        await second.close()

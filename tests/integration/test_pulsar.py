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
from arc_common.events import TOPICS
from arc_common.subjects import PULSAR_NAMESPACES, PULSAR_TENANT
from arc_events.pulsar_admin import PulsarAdmin
from arc_stack.pulsar import PulsarServer, ensure_tenant
from pulsar import asyncio as pulsar_aio

pytestmark = pytest.mark.integration

TENANT = PULSAR_TENANT
# What the contract asks of each namespace, written out here rather than read from the code.
RETENTION = {"events": (7 * 24 * 60, 1024), "analytics": (30 * 24 * 60, 1024)}


def _configured_cluster(server: PulsarServer) -> str:
    """The cluster named in the configuration the running broker was started with."""
    [name] = [
        line.split("=", 1)[1].strip()
        for line in server.config_path.read_text().splitlines()
        if line.startswith("clusterName=")
    ]
    return name


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
        # Created once standalone had registered its cluster, not before (then it has none).
        tenant = (await admin.get(f"/admin/v2/tenants/{TENANT}")).json()
        assert tenant["allowedClusters"] == [_configured_cluster(pulsar_server)], tenant
        namespaces = (await admin.get(f"/admin/v2/namespaces/{TENANT}")).json()
        assert sorted(namespaces) == sorted(f"{TENANT}/{ns}" for ns in RETENTION)
        for ns, (minutes, megabytes) in RETENTION.items():
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
        assert namespace in RETENTION, topic
    assert {ns.name for ns in PULSAR_NAMESPACES} == set(RETENTION)


async def test_the_events_service_sets_up_the_same_namespaces(
    pulsar_server: PulsarServer,
) -> None:
    """One set-up for the stack and the events service: from a namespace with no retention
    and de-duplication off, the events service's topic set-up restores the contract's policy
    (it used to give every namespace 7 days and leave de-duplication off), and leaves a
    retention an operator chose alone."""
    analytics = f"/admin/v2/namespaces/{TENANT}/analytics"
    events = f"/admin/v2/namespaces/{TENANT}/events"
    operator_choice = {"retentionTimeInMinutes": 60, "retentionSizeInMB": 10}
    async with httpx.AsyncClient(base_url=pulsar_server.admin_url, timeout=10) as admin:
        assert (await admin.delete(f"{analytics}/retention")).is_success
        assert (await admin.post(f"{analytics}/deduplication", json=False)).is_success
        assert (await admin.post(f"{events}/retention", json=operator_choice)).is_success
        setup = PulsarAdmin(pulsar_server.admin_url)
        try:
            await setup.ensure_topics(TOPICS)
        finally:
            await setup.aclose()
        try:
            r = await admin.get(f"{analytics}/retention")
            assert r.json() == {"retentionTimeInMinutes": 30 * 24 * 60, "retentionSizeInMB": 1024}
            assert (await admin.get(f"{analytics}/deduplication")).json() is True
            assert (await admin.get(f"{events}/retention")).json() == operator_choice
            for topic in TOPICS:
                path = topic.replace("persistent://", "/admin/v2/persistent/")
                assert (await admin.get(f"{path}/stats")).is_success, topic
        finally:
            restored = {"retentionTimeInMinutes": 7 * 24 * 60, "retentionSizeInMB": 1024}
            await admin.post(f"{events}/retention", json=restored)


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
    try:
        await first.subscribe(topic, "durable")  # the subscription exists before sends
        producer = await first.create_producer(topic)
        for i in range(5):
            await producer.send(f"m{i}".encode())
    finally:
        await first.close()

    await pulsar_server.stop()
    try:
        assert not await pulsar_server.healthy()
    finally:
        await pulsar_server.start()  # the broker is the session's: back up whatever happened

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

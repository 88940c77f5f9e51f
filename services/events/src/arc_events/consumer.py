"""A Pulsar consumer that applies events to Postgres exactly once in effect.

Each consumer is a Key_Shared subscription: run as many processes as needed, and the broker
keeps one session's events on one of them, in order. A batch of messages is decoded and
validated against the event schemas; poison (undecodable or schema-breaking) messages are
parked on the dead-letter topic `<topic>-<subscription>-DLQ` and acknowledged so they never
block the stream. The rest is applied in one transaction together with the batch's event
ids in `agents.processed_events`; an event id seen before is skipped, so redeliveries and
the relay's re-sends change nothing. Acknowledgements go out only after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import psycopg
import pulsar
from arc_common.errors import BadRequest
from arc_common.events import Event, decode
from psycopg_pool import AsyncConnectionPool

from arc_events import retries
from arc_events.metrics import EventsMetrics
from arc_events.settings import EventsOptions

log = logging.getLogger(__name__)

_RECEIVE_WAIT_MS = 500
_DRAIN_WAIT_MS = 1
_FIRST_SUBSCRIBE_RETRY_S = 0.2


@dataclass(frozen=True, slots=True)
class Received:
    """One decoded event and where it came from."""

    event: Event
    topic: str
    publish_time_ms: int


class Sink(Protocol):
    """What a consumer applies events to. `name` is the subscription and the consumer's key
    in `agents.processed_events`."""

    name: str
    topics: tuple[str, ...]

    async def store(self, conn: psycopg.AsyncConnection[Any], batch: Sequence[Received]) -> None:
        """Applies events not seen before, in order, inside the caller's transaction."""
        ...


def dead_letter_topic(topic: str, subscription: str) -> str:
    """Pulsar's own naming for a subscription's dead-letter topic."""
    base = topic.split("-partition-")[0]
    return f"{base}-{subscription}-DLQ"


async def claim_new(
    conn: psycopg.AsyncConnection[Any], consumer: str, batch: Sequence[Received]
) -> list[Received]:
    """The events of `batch` this consumer has not applied before, in batch order, each
    once; records them as applied in the caller's transaction."""
    if not batch:
        return []
    cur = await conn.execute(
        "INSERT INTO agents.processed_events (consumer, event_id)"
        " SELECT %s, unnest(%s::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id",
        (consumer, [r.event.event_id for r in batch]),
    )
    fresh: set[uuid.UUID] = {row[0] for row in await cur.fetchall()}
    out: list[Received] = []
    for received in batch:
        if received.event.event_id in fresh:
            fresh.discard(received.event.event_id)
            out.append(received)
    return out


def _take(consumer: pulsar.Consumer, limit: int) -> list[pulsar.Message]:
    """Blocks (in the consumer's own thread) for the first message, then drains what is
    already queued, up to `limit`."""
    try:
        messages = [consumer.receive(timeout_millis=_RECEIVE_WAIT_MS)]
    except pulsar.Timeout:
        return []
    while len(messages) < limit:
        try:
            messages.append(consumer.receive(timeout_millis=_DRAIN_WAIT_MS))
        except pulsar.Timeout:
            break
    return messages


def _acknowledge(consumer: pulsar.Consumer, messages: Sequence[pulsar.Message]) -> None:
    for message in messages:
        consumer.acknowledge(message)


def _close_all(
    client: pulsar.Client, consumer: pulsar.Consumer | None, producers: dict[str, pulsar.Producer]
) -> None:
    """Closes a session's Pulsar objects; the broker may be gone, which is why we are here."""
    for closable in [*producers.values(), *([consumer] if consumer else []), client]:
        try:
            closable.close()
        except pulsar.PulsarException as error:
            log.debug("closing %r: %s", closable, error)


@dataclass(slots=True)
class ConsumerHealth:
    subscribed: bool = False
    database_ok: bool = True
    last_error: str | None = None
    applied: int = 0
    duplicates: int = 0
    parked: int = 0

    @property
    def healthy(self) -> bool:
        return self.subscribed and self.database_ok


@dataclass(eq=False, repr=False)
class EventConsumer:
    new_client: Callable[[], pulsar.Client]
    pool: AsyncConnectionPool[Any]
    sink: Sink
    options: EventsOptions
    metrics: EventsMetrics
    health: ConsumerHealth = field(default_factory=ConsumerHealth, init=False)
    _dead_letters: dict[str, pulsar.Producer] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        # receive() blocks; it gets a thread of its own so it never holds up acks or sends.
        self._thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"recv-{self.sink.name}"
        )

    @property
    def name(self) -> str:
        return self.sink.name

    async def run(self) -> None:
        """Subscribes (retrying while the broker is away) and applies batches until
        cancelled."""
        try:
            while True:
                await self._connected_session()
        finally:
            self._thread.shutdown(wait=False, cancel_futures=True)

    async def _connected_session(self) -> None:
        """One client and subscription, until the connection has been gone for
        `consumer_reconnect_after_s`: the client's own reconnection backs off to a minute
        between tries, so after a long broker outage a fresh client catches up sooner."""
        loop = asyncio.get_running_loop()
        client = self.new_client()
        consumer: pulsar.Consumer | None = None
        try:
            consumer = await self._subscribe(client)
            lost_at: float | None = None
            while True:
                try:
                    messages = await loop.run_in_executor(
                        self._thread, _take, consumer, self.options.consumer_batch_size
                    )
                except pulsar.PulsarException as error:
                    log.warning("consumer %s: receive failed (%s); reconnecting", self.name, error)
                    return
                if messages:
                    lost_at = None
                    await self._handle(client, consumer, messages)
                    continue
                self.metrics.consumer_lag.labels(consumer=self.name).set(0)
                if consumer.is_connected():
                    lost_at = None
                    continue
                now = time.monotonic()
                lost_at = now if lost_at is None else lost_at
                if now - lost_at >= self.options.consumer_reconnect_after_s:
                    log.warning("consumer %s: disconnected for %.0f s; reconnecting",
                                self.name, now - lost_at)  # fmt: skip
                    self.health.last_error = "disconnected from the broker"
                    return
        finally:
            self.health.subscribed = False
            dead_letters, self._dead_letters = self._dead_letters, {}
            await loop.run_in_executor(None, _close_all, client, consumer, dead_letters)

    async def _subscribe(self, client: pulsar.Client) -> pulsar.Consumer:
        """Subscribes, retrying while the broker is away: from 0.2 s, doubling up to
        `relay_retry_max_s`."""

        def note(error: BaseException) -> None:
            self.health.last_error = f"subscribe: {error}"

        retrying = retries.forever(
            retry_on=pulsar.PulsarException,
            wait=retries.doubling(_FIRST_SUBSCRIBE_RETRY_S, self.options.relay_retry_max_s),
            log=log,
            message=f"consumer {self.name}: subscribe failed (%s); retrying in %.2f s",
            on_retry=note,
        )
        subscribe = partial(
            client.subscribe,
            [topic + self.options.topic_suffix for topic in self.sink.topics],
            self.sink.name,
            consumer_type=pulsar.ConsumerType.KeyShared,
            initial_position=pulsar.InitialPosition.Earliest,
            negative_ack_redelivery_delay_ms=self.options.consumer_redelivery_delay_ms,
            receiver_queue_size=max(self.options.consumer_batch_size * 2, 100),
        )
        loop = asyncio.get_running_loop()

        async def subscribe_once() -> pulsar.Consumer:
            return await loop.run_in_executor(None, subscribe)

        consumer = await retrying(subscribe_once)
        self.health.subscribed = True
        return consumer

    async def _handle(
        self, client: pulsar.Client, consumer: pulsar.Consumer, messages: list[pulsar.Message]
    ) -> None:
        loop = asyncio.get_running_loop()
        good: list[tuple[pulsar.Message, Received]] = []
        for message in messages:
            try:
                event = decode(message.data())
            except BadRequest as error:
                await self._park(client, consumer, message, error)
                continue
            received = Received(event, message.topic_name(), message.publish_timestamp())
            good.append((message, received))
        if not good:
            return
        batch = [received for _, received in good]
        try:
            async with self.pool.connection() as conn, conn.transaction():
                fresh = await claim_new(conn, self.name, batch)
                await self.sink.store(conn, fresh)
        except psycopg.Error as error:
            # Nothing was applied: the broker redelivers the whole batch after a delay.
            self.health.database_ok = False
            self.health.last_error = f"apply: {error}"
            log.warning("consumer %s: batch of %d not applied: %s", self.name, len(batch), error)
            for message, _ in good:
                consumer.negative_acknowledge(message)
            await asyncio.sleep(self.options.relay_retry_max_s)
            return
        self.health.database_ok = True
        await loop.run_in_executor(None, _acknowledge, consumer, [m for m, _ in good])
        duplicates = len(batch) - len(fresh)
        self.health.applied += len(fresh)
        self.health.duplicates += duplicates
        self.metrics.consumed.labels(consumer=self.name).inc(len(fresh))
        if duplicates:
            self.metrics.duplicates.labels(consumer=self.name).inc(duplicates)
        lag_s = max(time.time() - batch[-1].publish_time_ms / 1000, 0.0)
        self.metrics.consumer_lag.labels(consumer=self.name).set(lag_s)

    async def _park(
        self,
        client: pulsar.Client,
        consumer: pulsar.Consumer,
        message: pulsar.Message,
        error: BadRequest,
    ) -> None:
        """Moves a poison message to the dead-letter topic, then acknowledges it; if the
        dead-letter topic cannot take it, the message is redelivered later instead."""
        loop = asyncio.get_running_loop()
        topic = dead_letter_topic(message.topic_name(), self.name)
        log.warning(
            "consumer %s: parking a poison message from %s: %s",
            self.name,
            message.topic_name(),
            error.message,
        )
        try:
            if topic not in self._dead_letters:
                self._dead_letters[topic] = await loop.run_in_executor(
                    None, partial(client.create_producer, topic, batching_enabled=False)
                )
            producer = self._dead_letters[topic]
            properties = dict(message.properties())
            properties.update(
                {
                    "arc-dlq-reason": error.message[:1000],
                    "arc-dlq-source-topic": message.topic_name(),
                    "arc-dlq-source-message-id": str(message.message_id()),
                }
            )
            send = partial(producer.send, message.data(), properties=properties)
            if message.partition_key():
                send = partial(send, partition_key=message.partition_key())
            await loop.run_in_executor(None, send)
            await loop.run_in_executor(None, consumer.acknowledge, message)
        except pulsar.PulsarException as failure:
            log.warning(
                "consumer %s: dead-letter topic %s unavailable: %s", self.name, topic, failure
            )
            consumer.negative_acknowledge(message)
            return
        self.health.parked += 1
        self.metrics.parked.labels(consumer=self.name).inc()

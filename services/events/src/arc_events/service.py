"""The events service: the relay and/or the consumers of one process, with the resources
they share, opened in order and closed in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable
from functools import partial
from typing import Any

import httpx
from arc_common.errors import ArcError
from arc_common.events import TOPICS
from psycopg_pool import AsyncConnectionPool

from arc_events import retries
from arc_events.analytics import AnalyticsSink
from arc_events.audit import AuditSink
from arc_events.consumer import EventConsumer, Sink
from arc_events.metrics import EventsMetrics
from arc_events.publisher import PulsarPublisher
from arc_events.pulsar_admin import PulsarAdmin
from arc_events.pulsar_client import new_client
from arc_events.relay import OutboxRelay
from arc_events.settings import EventsSettings, Role

log = logging.getLogger(__name__)

_TOPIC_SETUP_RETRY_S = 5.0


def sinks_for(roles: Iterable[Role]) -> list[Sink]:
    by_role: dict[Role, Sink] = {Role.ANALYTICS: AnalyticsSink(), Role.AUDIT: AuditSink()}
    return [by_role[role] for role in dict.fromkeys(roles) if role in by_role]


class EventsService:
    def __init__(self, settings: EventsSettings) -> None:
        self.settings = settings
        self.metrics = EventsMetrics()
        self.roles = list(dict.fromkeys(settings.events.roles))
        self.relays: list[OutboxRelay] = []
        self.consumers: list[EventConsumer] = []
        self.topics_ready = False
        self._pool: AsyncConnectionPool[Any] | None = None
        self._admin: PulsarAdmin | None = None
        self._publishers: list[PulsarPublisher] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def __aenter__(self) -> EventsService:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        s = self.settings
        options = s.events
        dsn = s.postgres.dsn.get_secret_value()
        # Opened without waiting: a database that is still starting makes the service report
        # unhealthy and retry, rather than fail to start.
        self._pool = AsyncConnectionPool(
            dsn, min_size=s.postgres.pool_min, max_size=s.postgres.pool_max, open=False
        )
        await self._pool.open(wait=False)
        self._admin = PulsarAdmin(s.pulsar.admin_url)
        self._spawn("topics", self._ensure_topics())
        if Role.RELAY in self.roles:
            starting = asyncio.Barrier(options.relay_workers) if options.relay_workers > 1 else None
            for number in range(options.relay_workers):
                publisher = PulsarPublisher(
                    s.pulsar.service_url,
                    operation_timeout_s=s.pulsar.operation_timeout_s,
                    send_timeout_s=options.relay_send_timeout_s,
                    max_pending=options.relay_max_pending,
                    topic_suffix=options.topic_suffix,
                    batching=options.relay_producer_batching,
                )
                relay = OutboxRelay(dsn, self._pool, publisher, options, self.metrics)
                self._publishers.append(publisher)
                self.relays.append(relay)
                self._spawn(f"relay-{number}", relay.run(starting_with=starting))
            relays = self.relays
            self.metrics.relay_buckets.set_function(
                lambda: float(sum(r.health.buckets for r in relays))
            )
        sinks = sinks_for(self.roles)
        if sinks:
            client = partial(
                new_client, s.pulsar.service_url, operation_timeout_s=s.pulsar.operation_timeout_s
            )
            for sink in sinks:
                consumer = EventConsumer(client, self._pool, sink, options, self.metrics)
                self.consumers.append(consumer)
                self._spawn(f"consumer-{sink.name}", consumer.run())
                self._spawn(f"backlog-{sink.name}", self._watch_backlog(sink))

    def _spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work, name=name)
        task.add_done_callback(self._on_task_done)
        self._tasks[name] = task

    @staticmethod
    def _on_task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("events: task %s died", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for publisher in self._publishers:
            await publisher.close()
        if self._admin is not None:
            await self._admin.aclose()
        if self._pool is not None:
            await self._pool.close()

    async def _ensure_topics(self) -> None:
        """Topic set-up, retried every `_TOPIC_SETUP_RETRY_S` while the admin API fails."""
        admin = self._admin
        assert admin is not None
        topics = [t + self.settings.events.topic_suffix for t in TOPICS]
        retrying = retries.forever(
            retry_on=(ArcError, httpx.HTTPError, ValueError),
            wait=retries.fixed(_TOPIC_SETUP_RETRY_S),
            log=log,
            message="events: topic set-up failed (%r); retrying in %.0f s",
        )
        await retrying(admin.ensure_topics, topics)
        self.topics_ready = True

    async def _watch_backlog(self, sink: Sink) -> None:
        assert self._admin is not None
        suffix = self.settings.events.topic_suffix
        while True:
            for topic in sink.topics:
                try:
                    backlog = await self._admin.backlog(topic + suffix, sink.name)
                except (ArcError, httpx.HTTPError, ValueError) as error:
                    log.debug("events: backlog of %s unavailable: %r", topic, error)
                    continue
                if backlog is not None:
                    self.metrics.consumer_backlog.labels(consumer=sink.name, topic=topic).set(
                        backlog
                    )
            await asyncio.sleep(self.settings.events.stats_interval_s)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body for /healthz)."""
        body: dict[str, Any] = {"roles": [r.value for r in self.roles]}
        healthy = True
        dead = [name for name, task in self._tasks.items() if task.done() and name != "topics"]
        if dead:
            healthy = False
            body["dead_tasks"] = dead
        if self.relays:
            # The process's relays as one: healthy when each is, their buckets and counts summed.
            states = [r.health for r in self.relays]
            relays_ok = all(h.healthy for h in states)
            healthy = healthy and relays_ok
            body["relay"] = {
                "healthy": relays_ok,
                "ready": all(h.ready for h in states),
                "database_ok": all(h.database_ok for h in states),
                "broker_ok": all(h.broker_ok for h in states),
                "workers": len(states),
                "buckets": sum(h.buckets for h in states),
                "relayed": sum(h.relayed for h in states),
                "last_error": next((h.last_error for h in states if h.last_error), None),
            }
        for consumer in self.consumers:
            c = consumer.health
            healthy = healthy and c.healthy
            body[consumer.name] = {
                "healthy": c.healthy,
                "subscribed": c.subscribed,
                "database_ok": c.database_ok,
                "applied": c.applied,
                "duplicates": c.duplicates,
                "dead_lettered": c.parked,
                "last_error": c.last_error,
            }
        body["topics_ready"] = self.topics_ready
        body["status"] = "ok" if healthy else "unhealthy"
        return healthy, body

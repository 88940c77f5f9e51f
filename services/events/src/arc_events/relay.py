"""The outbox relay: publishes unsent outbox rows of the buckets it leases to their Pulsar
topics and marks them sent only after the broker acknowledged them.

Guarantees (see docs/events.md): every committed event is published at least once; a
session's events leave in outbox-id order through one relay at a time; a row is marked sent
only after its acknowledgement, so a broker outage or a killed relay delays events and loses
none. Re-sends after a crash are duplicates that consumers drop by `event_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pulsar
from arc_common.tasks import cancel_and_wait
from psycopg_pool import AsyncConnectionPool
from tenacity import RetryCallState

from arc_events import outbox_store, retries
from arc_events.leases import BucketLeases
from arc_events.metrics import EventsMetrics
from arc_events.outbox_store import OutboxRow
from arc_events.publisher import PulsarPublisher
from arc_events.settings import EventsOptions

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "arc_outbox"
_CLEANUP_EVERY_S = 60.0
_FIRST_RETRY_S = 0.1
# How long relays starting together wait for each other's member slots (a database that is
# slow to connect must not hold the ones already in).
_JOIN_WAIT_S = 5.0


class PassFailed(Exception):
    """A pass of the relay loop failed (a publish, or the outbox read); it is retried."""

    def __init__(self, message: str, *, database: bool) -> None:
        super().__init__(message)
        self.database = database


@dataclass(slots=True)
class _LoopState:
    """What the relay loop carries from one pass to the next. Marking a batch sent overlaps
    with reading and publishing the next one; the next read skips the rows still being
    marked. At most one mark is outstanding."""

    held: frozenset[int] = frozenset()
    next_rebalance: float = 0.0
    marking: asyncio.Task[None] | None = None
    marking_ids: list[int] = field(default_factory=list)

    async def finish_marking(self) -> None:
        if self.marking is not None:
            await self.marking
        self.marking, self.marking_ids = None, []


def pass_retry_policy(retry_max_s: float) -> retries.Policy:
    """How the relay retries a failed pass of its loop: after a failed publish (broker away
    or slow) it waits from 0.1 s, doubling up to `retry_max_s`; after a failed outbox read
    it waits `retry_max_s`. Each call of the policy starts afresh, so a pass that succeeds
    resets the backoff. Every wait is logged; a stop interrupts it at once."""
    broker = retries.doubling(_FIRST_RETRY_S, retry_max_s)

    def wait(state: RetryCallState) -> float:
        error = retries.failure(state)
        if isinstance(error, PassFailed) and error.database:
            return retry_max_s
        return broker(state)

    return retries.forever(
        retry_on=PassFailed, wait=wait, log=log, message="relay: %s; retrying in %.2f s"
    )


def split_acknowledged(
    rows: Sequence[OutboxRow], errors: Sequence[str | None]
) -> tuple[list[int], list[int]]:
    """(ids to mark sent, ids to retry). After a session's first failure in the batch, its
    later rows are retried too even if the broker took them: marking them sent would let them
    overtake the failed one. The re-sent copies are duplicates that consumers skip."""
    sent: list[int] = []
    retry: list[int] = []
    broken: set[str] = set()
    for row, error in zip(rows, errors, strict=True):
        if error is None and row.key not in broken:
            sent.append(row.id)
        else:
            broken.add(row.key)
            retry.append(row.id)
    return sent, retry


@dataclass(slots=True)
class RelayHealth:
    # Set once the relay has taken its first share of bucket leases.
    ready: bool = False
    database_ok: bool = True
    broker_ok: bool = True
    last_error: str | None = None
    buckets: int = 0
    relayed: int = 0

    @property
    def healthy(self) -> bool:
        return self.ready and self.database_ok and self.broker_ok


# No generated repr: the DSN may hold a password.
@dataclass(eq=False, repr=False)
class OutboxRelay:
    dsn: str
    pool: AsyncConnectionPool[Any]
    publisher: PulsarPublisher
    options: EventsOptions
    metrics: EventsMetrics
    health: RelayHealth = field(default_factory=RelayHealth, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        self._leases = BucketLeases(self.dsn)

    async def run(self, starting_with: asyncio.Barrier | None = None) -> None:
        """Runs until cancelled; owns its listener and maintenance tasks. `starting_with`:
        the barrier of the relays of this process that start together."""
        try:
            await self._join(starting_with)
            listener = asyncio.create_task(self._listen(), name="outbox-listen")
            maintenance = asyncio.create_task(self._maintain(), name="outbox-maintain")
            try:
                await self._relay_loop()
            finally:
                await cancel_and_wait(listener, maintenance)
        finally:
            # Also when stopped while joining: a member lock left open would be counted as a
            # peer that takes no buckets, and its share would go unrelayed.
            await self._leases.close()

    async def _join(self, peers: asyncio.Barrier | None) -> None:
        """Takes a member slot, then waits (bounded) until the relays starting with this one
        have theirs. Without the wait the first to count its peers could find itself alone,
        take all the buckets, and leave the others idle until its next rebalance."""
        try:
            await self._leases.join()
        except psycopg.Error as error:
            log.warning("relay: no member slot yet: %s", error)  # the first rebalance retries
        if peers is not None:
            with contextlib.suppress(TimeoutError, asyncio.BrokenBarrierError):
                async with asyncio.timeout(_JOIN_WAIT_S):
                    await peers.wait()

    async def _wait(self, seconds: float) -> None:
        """Until an outbox notification, or `seconds` (the polling fallback)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _rebalance(self) -> frozenset[int]:
        try:
            held = await self._leases.rebalance()
            self.health.database_ok = True
            self.health.ready = True
        except psycopg.Error as error:
            log.warning("relay: bucket leases lost: %s", error)
            self.health.database_ok = False
            self.health.last_error = f"leases: {error}"
            held = frozenset()
        self.health.buckets = len(held)
        return held

    async def _relay_loop(self) -> None:
        state = _LoopState()
        retrying = pass_retry_policy(self.options.relay_retry_max_s)
        try:
            while True:
                await retrying(self._relay_pass, state)  # each call starts from attempt 1
        finally:
            await cancel_and_wait(state.marking)

    async def _relay_pass(self, state: _LoopState) -> None:
        """Rebalances when due, then reads, publishes and starts marking one batch, or waits
        for work. Raises `PassFailed` when the batch must be retried."""
        options = self.options
        now = time.monotonic()
        if now >= state.next_rebalance:
            await state.finish_marking()  # a bucket given back must be fully marked
            state.held = await self._rebalance()
            state.next_rebalance = now + options.relay_rebalance_interval_s
        if not state.held:
            await asyncio.sleep(options.relay_rebalance_interval_s)
            return
        # Cleared before the read: a notification for a later commit wakes us.
        self._wake.clear()
        began = time.perf_counter()
        try:
            async with self.pool.connection() as conn:
                rows = await outbox_store.fetch_unsent(
                    conn, state.held, options.relay_batch_size, exclude=state.marking_ids
                )
        except psycopg.Error as error:
            raise self._failed(f"outbox read: {error}", database=True) from error
        if not rows:
            if state.marking is not None:
                await state.finish_marking()
                return  # rows skipped while being marked may have failed to mark
            idle = max(state.next_rebalance - time.monotonic(), 0.0)
            await self._wait(min(options.relay_poll_interval_s, idle))
            return
        sent, retry, errors = await self._publish(rows)
        if state.marking is not None:
            await state.marking
        state.marking = asyncio.create_task(self._record(rows, sent, retry, errors, began))
        state.marking_ids = [row.id for row in rows]
        if retry:
            await state.finish_marking()
            await self.publisher.reset()
            first = next((e for e in errors if e is not None), "ordering")
            raise self._failed(f"publish: {first}", database=False)

    async def _publish(
        self, rows: list[OutboxRow]
    ) -> tuple[list[int], list[int], list[str | None]]:
        """Publishes one batch: (ids acknowledged in order, ids to retry, per-row errors)."""
        try:
            errors = await self.publisher.publish(rows)
        except pulsar.PulsarException as error:  # no producer: the broker is unreachable
            errors = [f"{type(error).__name__}: {error}"] * len(rows)
        sent, retry = split_acknowledged(rows, errors)
        if retry:
            self.metrics.relay_failures.inc(len(retry))
        else:
            self.health.broker_ok = True
        return sent, retry, errors

    async def _record(
        self,
        rows: list[OutboxRow],
        sent: list[int],
        retry: list[int],
        errors: list[str | None],
        began: float,
    ) -> None:
        try:
            async with self.pool.connection() as conn:
                await outbox_store.mark_sent(conn, sent)
                if retry:
                    reason = next((e for e in errors if e is not None), "ordering")
                    await outbox_store.record_failure(conn, retry, reason)
        except psycopg.Error as error:
            # The broker has these rows but the outbox does not know: they are published
            # again later and consumers drop the copies by event id.
            self._note_error(f"outbox mark-sent: {error}", database=True)
            return
        self.metrics.relay_batch_seconds.observe(time.perf_counter() - began)
        sent_ids = set(sent)
        topics: dict[str, int] = {}
        for row in rows:
            if row.id in sent_ids:
                topics[row.topic] = topics.get(row.topic, 0) + 1
        for topic, count in topics.items():
            self.metrics.relayed.labels(topic=topic).inc(count)
        self.health.relayed += len(sent)
        self.health.database_ok = True

    def _note_error(self, message: str, *, database: bool) -> None:
        log.warning("relay: %s", message)
        self._failed(message, database=database)

    def _failed(self, message: str, *, database: bool) -> PassFailed:
        """Records a failure in the health report (the retry policy logs it)."""
        self.health.last_error = message
        if database:
            self.health.database_ok = False
        else:
            self.health.broker_ok = False
        return PassFailed(message, database=database)

    async def _listen(self) -> None:
        """Keeps a LISTEN connection; while it is lost the polling fallback carries on."""
        reconnect = retries.forever(
            retry_on=psycopg.Error,
            wait=retries.fixed(self.options.relay_retry_max_s),
            log=log,
            message="relay: LISTEN connection lost (%s); polling, reconnecting in %.2f s",
        )
        await reconnect(self._listen_once)

    async def _listen_once(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._wake.set()  # rows committed while nobody listened
            async for _ in conn.notifies():
                self._wake.set()

    async def _maintain(self) -> None:
        """Backlog figures for /metrics, and deletion of rows sent long ago."""
        options = self.options
        next_cleanup = time.monotonic() + _CLEANUP_EVERY_S
        while True:
            try:
                async with self.pool.connection() as conn:
                    backlog = await outbox_store.backlog(conn)
                    if options.outbox_sent_retention_h > 0 and time.monotonic() >= next_cleanup:
                        next_cleanup = time.monotonic() + _CLEANUP_EVERY_S
                        deleted = await outbox_store.delete_sent_before(
                            conn, options.outbox_sent_retention_h * 3600
                        )
                        if deleted:
                            log.info("relay: deleted %d outbox rows sent long ago", deleted)
                self.metrics.outbox_backlog.set(backlog.unsent)
                self.metrics.outbox_oldest_unsent_age.set(backlog.oldest_age_s)
            except psycopg.Error as error:
                self._note_error(f"outbox stats: {error}", database=True)
            await asyncio.sleep(options.stats_interval_s)

"""Durable events: outbox relay throughput and end-to-end event latency, on a real Postgres
and a real Pulsar standalone broker started for the run.

- relay throughput: a backlog of events already in `agents.outbox`, relayed by one process
  (the service with only the relay role) running one relay or two, interleaved, until every
  row is marked sent (events/s from outbox to acknowledged). The same backlog is also
  pushed through the relay's three steps by hand, timing each, to show what limits it.
- consumer throughput: the analytics consumer applying that backlog into `turn_metrics`.
- end-to-end latency under light load: one event every 50 ms written in its own transaction
  while the relay and the analytics consumer run; latency is from the writer's commit to the
  consumer's transaction (the row's `recorded_at`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
from arc_common.events import Event, TurnMetrics, write_event, write_events
from arc_common.settings import PostgresSettings
from arc_events import outbox_store
from arc_events.publisher import PulsarPublisher
from arc_events.service import EventsService
from arc_events.settings import EventsOptions, EventsSettings, PulsarSettings, Role
from arc_stack.paths import state_dir
from arc_stack.postgres import PostgresServer
from arc_stack.pulsar import PulsarServer
from arc_stack.server import free_port
from pydantic import SecretStr

from tests.bench.report import Stats, section_header, write_section

BACKLOG = 20_000
SESSIONS = 200
# A busier mesh's shape: as many sessions as events in a relay pass, so a session has one or
# two events per pass and producer batching has little to group.
MANY_SESSIONS = 10_000
INSERT_CHUNK = 5_000
BATCH_SIZES = (2000, 5000)
RELAY_WORKERS = (1, 2)
PRODUCER_BATCHING = (False, True)
DEFAULTS = EventsOptions()
ROUNDS = 3  # relay variants interleaved, each measured this many times; medians reported
LATENCY_EVENTS = 300
LATENCY_GAP_S = 0.05
SENT = "SELECT count(*) FROM agents.outbox WHERE sent_at IS NOT NULL"


def _settings(dsn: str, pulsar: PulsarServer, suffix: str, **options: Any) -> EventsSettings:
    return EventsSettings(
        postgres=PostgresSettings(dsn=SecretStr(dsn), pool_min=1, pool_max=4),
        pulsar=PulsarSettings(service_url=pulsar.service_url, admin_url=pulsar.admin_url),
        events=EventsOptions(http_port=0, topic_suffix=suffix, stats_interval_s=1.0, **options),
    )


def _metrics(first: int, n: int, sessions: int) -> list[Event]:
    return [
        TurnMetrics(session_id=f"s{i % sessions}", turn_id=f"t{i}", stt_ms=float(i % 300))
        for i in range(first, first + n)
    ]


async def _fill(dsn: str, n: int, sessions: int = SESSIONS) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        for start in range(0, n, INSERT_CHUNK):
            await write_events(conn, _metrics(start, min(INSERT_CHUNK, n - start), sessions))
            await conn.commit()


async def _wait_count(dsn: str, sql: str, target: int, timeout_s: float = 300) -> None:
    """Polls on one connection: a new connection per poll would load the machine measured."""
    deadline = time.monotonic() + timeout_s
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            row = await (await conn.execute(sql)).fetchone()
            if row is not None and int(row[0]) >= target:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sql} did not reach {target}")
            await asyncio.sleep(0.05)


async def _fresh_db(pg: PostgresServer) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    await pg.create_database(name)
    from arc_stack.migrations import apply_migrations

    await apply_migrations(pg.dsn(name))
    return pg.dsn(name)


async def _steady_rate(dsn: str) -> float:
    """Rows marked sent per second between the first batch's mark and the last one's."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FILTER (WHERE sent_at > (SELECT min(sent_at) FROM agents.outbox)),"
                " extract(epoch FROM max(sent_at) - min(sent_at)) FROM agents.outbox"
            )
        ).fetchone()
    assert row is not None
    return float(row[0]) / float(row[1])


@dataclass(frozen=True)
class RelayVariant:
    batch: int
    workers: int
    batching: bool
    sessions: int = SESSIONS

    def describe(self) -> str:
        relays = "1 relay" if self.workers == 1 else f"{self.workers} relays in one process"
        batching = "key-batched" if self.batching else "unbatched"
        return f"batch {self.batch}, {relays}, {batching}, {self.sessions:,} sessions"


async def _relay_throughput(
    pg: PostgresServer, pulsar: PulsarServer, variant: RelayVariant
) -> tuple[float, float]:
    """(events/s from the relays' start, events/s once the first batch is out) of one
    process running the variant's relays."""
    dsn = await _fresh_db(pg)
    await _fill(dsn, BACKLOG, variant.sessions)
    service = EventsService(_settings(
        dsn, pulsar, f"-b{uuid.uuid4().hex[:6]}", roles=[Role.RELAY],
        relay_batch_size=variant.batch, relay_workers=variant.workers,
        relay_producer_batching=variant.batching,
    ))  # fmt: skip
    began = time.perf_counter()
    await service.start()
    try:
        await _wait_count(dsn, SENT, BACKLOG)
    finally:
        elapsed = time.perf_counter() - began
        await service.stop()
    return BACKLOG / elapsed, await _steady_rate(dsn)


async def _relay_steps(
    pg: PostgresServer, pulsar: PulsarServer, options: EventsOptions
) -> dict[str, float]:
    """The relay's read / publish / mark-sent steps on one backlog, timed separately, with
    the batch size and producer the relay would have under `options`."""
    dsn = await _fresh_db(pg)
    await _fill(dsn, BACKLOG)
    publisher = PulsarPublisher(
        pulsar.service_url, operation_timeout_s=30, send_timeout_s=30,
        max_pending=options.relay_max_pending, topic_suffix=f"-s{uuid.uuid4().hex[:6]}",
        batching=options.relay_producer_batching,
    )  # fmt: skip
    spent = {"read": 0.0, "publish": 0.0, "mark sent": 0.0}
    everything = frozenset(range(64))
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await publisher.publish(await outbox_store.fetch_unsent(conn, everything, 1))  # warm-up
        while True:
            t0 = time.perf_counter()
            rows = await outbox_store.fetch_unsent(conn, everything, options.relay_batch_size)
            t1 = time.perf_counter()
            if not rows:
                break
            errors = await publisher.publish(rows)
            t2 = time.perf_counter()
            assert not any(errors), errors
            await outbox_store.mark_sent(conn, [r.id for r in rows])
            t3 = time.perf_counter()
            spent["read"] += t1 - t0
            spent["publish"] += t2 - t1
            spent["mark sent"] += t3 - t2
    await publisher.close()
    return spent


async def _consumer_throughput(pg: PostgresServer, pulsar: PulsarServer) -> tuple[float, float]:
    """(relay events/s, analytics consumer events/s) with both running on one backlog."""
    dsn = await _fresh_db(pg)
    await _fill(dsn, BACKLOG)
    service = EventsService(_settings(
        dsn, pulsar, f"-c{uuid.uuid4().hex[:6]}", roles=[Role.RELAY, Role.ANALYTICS],
        relay_batch_size=2000,
    ))  # fmt: skip
    began = time.perf_counter()
    await service.start()
    try:
        await _wait_count(dsn, SENT, BACKLOG)
        relayed = time.perf_counter() - began
        await _wait_count(dsn, "SELECT count(*) FROM agents.turn_metrics", BACKLOG)
        applied = time.perf_counter() - began
    finally:
        await service.stop()
    return BACKLOG / relayed, BACKLOG / applied


async def _latency(pg: PostgresServer, pulsar: PulsarServer) -> list[float]:
    dsn = await _fresh_db(pg)
    service = EventsService(
        _settings(dsn, pulsar, f"-l{uuid.uuid4().hex[:6]}", roles=[Role.RELAY, Role.ANALYTICS])
    )
    committed: dict[uuid.UUID, float] = {}
    await service.start()
    try:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            for i in range(LATENCY_EVENTS + 20):
                event = TurnMetrics(session_id=f"s{i % 10}", turn_id=f"t{i}", stt_ms=1.0)
                await write_event(conn, event)
                await conn.commit()
                if i >= 20:  # the first ones warm up producers and the consumer
                    committed[event.event_id] = time.time()
                await asyncio.sleep(LATENCY_GAP_S)
        await _wait_count(dsn, "SELECT count(*) FROM agents.turn_metrics", LATENCY_EVENTS + 20)
    finally:
        await service.stop()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        rows = await (
            await conn.execute("SELECT event_id, recorded_at FROM agents.turn_metrics")
        ).fetchall()
    recorded: dict[uuid.UUID, datetime] = {row[0]: row[1] for row in rows}
    return [(recorded[eid].astimezone(UTC).timestamp() - t) * 1000 for eid, t in committed.items()]


async def _run() -> str:
    root = state_dir() / "bench-events" / uuid.uuid4().hex[:8]
    pg = PostgresServer(root / "pgdata", root / "pglogs", port=free_port(), database="arc")
    pulsar = PulsarServer(
        root / "pulsar", root / "pulsar-logs",
        broker_port=free_port(), web_port=free_port(), bookie_port=free_port(),
    )  # fmt: skip
    await pulsar.install()
    await asyncio.gather(pg.start(), pulsar.start())
    load_before = os.getloadavg()[0]
    try:
        variants = [
            RelayVariant(b, w, k) for b in BATCH_SIZES for w in RELAY_WORKERS
            for k in PRODUCER_BATCHING
        ] + [
            RelayVariant(DEFAULTS.relay_batch_size, DEFAULTS.relay_workers, k, MANY_SESSIONS)
            for k in PRODUCER_BATCHING
        ]  # fmt: skip
        runs: dict[RelayVariant, list[tuple[float, float]]] = {v: [] for v in variants}
        for _ in range(ROUNDS):
            for variant in variants:
                runs[variant].append(await _relay_throughput(pg, pulsar, variant))
        relay_rates = {
            v: (statistics.median(r for r, _ in rs), statistics.median(s for _, s in rs))
            for v, rs in runs.items()
        }
        steps = await _relay_steps(pg, pulsar, DEFAULTS)
        both_relay, both_consumer = await _consumer_throughput(pg, pulsar)
        latencies = await _latency(pg, pulsar)
        load_after = os.getloadavg()[0]
    finally:
        await asyncio.gather(pulsar.stop(), pg.stop())
        shutil.rmtree(root, ignore_errors=True)

    step_total = sum(steps.values())
    lat = Stats.of(latencies)
    lines = [
        section_header("Durable events: outbox relay and consumers", "make bench"),
        f"Backlog of {BACKLOG:,} `turn.metrics` events over {SESSIONS} sessions (or "
        f"{MANY_SESSIONS:,}, where the row says so), already committed to `agents.outbox`; "
        "real Postgres 18 and Pulsar standalone on this machine. Key-batched: "
        "`ARC_EVENTS__RELAY_PRODUCER_BATCHING` (default on).\n",
        "| measurement | result |",
        "|---|---|",
    ]
    for variant, (rate, steady) in relay_rates.items():
        lines.append(f"| relay throughput, {variant.describe()} (outbox → broker ack → marked "
                     f"sent; median of {ROUNDS}) | {rate:,.0f} events/s from start-up, "
                     f"{steady:,.0f} events/s after the first batch |")  # fmt: skip
    lines += [
        f"| relay with the analytics consumer running beside it | {both_relay:,.0f} events/s |",
        f"| analytics consumer (Pulsar → `turn_metrics`, exactly once) "
        f"| {both_consumer:,.0f} events/s |",
        f"| end-to-end latency, commit → applied by the consumer, {lat.n} events at 20/s "
        f"| p50 {lat.p50:.1f} ms, p95 {lat.p95:.1f} ms |",
        "",
        f"Relay steps timed by hand (batch {DEFAULTS.relay_batch_size}, same backlog): "
        + ", ".join(f"{k} {v / step_total:.0%} ({BACKLOG / v:,.0f}/s alone)"
                    for k, v in steps.items())
        + f"; together {BACKLOG / step_total:,.0f} events/s.",
    ]  # fmt: skip

    def steady_of(variant: RelayVariant) -> float:
        return relay_rates[variant][1]

    def two_vs_one_at(batch: int) -> float:
        return steady_of(RelayVariant(batch, 2, True)) / steady_of(RelayVariant(batch, 1, True))

    two_vs_one = ", ".join(f"batch {b}: {two_vs_one_at(b):.2f}" for b in BATCH_SIZES)
    batched_vs_not = ", ".join(
        f"{v.describe()}: {steady_of(v) / steady_of(replace(v, batching=False)):.2f}"
        for v in variants
        if v.batching
    )
    lines += [
        "",
        "Two relays in one process against one (`ARC_EVENTS__RELAY_WORKERS`, default 2), "
        f"key-batched, steady events/s, interleaved in this run: {two_vs_one}.",
        "",
        f"Key-batched against unbatched, steady events/s, interleaved: {batched_vs_not}.",
    ]
    default = RelayVariant(
        DEFAULTS.relay_batch_size, DEFAULTS.relay_workers, DEFAULTS.relay_producer_batching
    )
    best = max(variants, key=steady_of)
    publish_share = steps["publish"] / step_total
    lines += [
        "",
        f"Target ≥ 10,000 events/s with the defaults ({default.describe()}): "
        f"{'met' if steady_of(default) >= 10_000 else 'not met'}, {steady_of(default):,.0f} "
        f"events/s steady. Best variant in this run: {best.describe()}, "
        f"{steady_of(best):,.0f} events/s steady. What limits it: the publish step, "
        f"{publish_share:.0%} of the relay's time, most of it waiting for the broker's "
        "acknowledgements (a cProfile of these hand-run steps on 2026-12-06 showed the process "
        "under one core, its loop idle in `epoll` for 85% of the time): the broker's JVM, "
        "Postgres and the relay share these 2 cores. Load average (1 min) "
        f"{load_before:.1f} at the start and {load_after:.1f} at the end of this run (other "
        "engineers' test runs share the machine).",
    ]
    body = "\n".join(lines) + "\n"
    write_section("events", body)
    return body


def main() -> str:
    return asyncio.run(_run())

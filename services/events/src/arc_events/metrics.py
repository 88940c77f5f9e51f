"""Prometheus metrics of one events process, in their own registry so several relays or
consumers in one process (tests, benchmarks) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector


class EventsMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # CPU, memory and open files of the process, as process_* (System health dashboard).
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.outbox_backlog = Gauge(
            "arc_events_outbox_backlog", "Outbox rows not yet acknowledged by Pulsar", registry=r
        )
        self.outbox_oldest_unsent_age = Gauge(
            "arc_events_outbox_oldest_unsent_age_seconds",
            "Age of the oldest outbox row not yet acknowledged by Pulsar",
            registry=r,
        )
        self.relayed = Counter(
            "arc_events_relayed", "Events published and acknowledged", ["topic"], registry=r
        )
        self.relay_failures = Counter(
            "arc_events_relay_failures",
            "Events whose publish failed (they are retried)",
            registry=r,
        )
        self.relay_batch_seconds = Histogram(
            "arc_events_relay_batch_seconds",
            "Read, publish and mark-sent time of one relay batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30),
            registry=r,
        )
        self.relay_buckets = Gauge(
            "arc_events_relay_buckets",
            "Outbox buckets whose lease this process's relays hold",
            registry=r,
        )
        self.consumed = Counter(
            "arc_events_consumed", "Events applied by a consumer", ["consumer"], registry=r
        )
        self.duplicates = Counter(
            "arc_events_duplicates_skipped",
            "Redelivered events a consumer had already applied",
            ["consumer"],
            registry=r,
        )
        self.parked = Counter(
            "arc_events_dead_lettered",
            "Poison messages parked on a dead-letter topic",
            ["consumer"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "arc_events_consumer_lag_seconds",
            "Time from publish to apply of the last event a consumer applied",
            ["consumer"],
            registry=r,
        )
        self.consumer_backlog = Gauge(
            "arc_events_consumer_backlog",
            "Messages waiting in the consumer's subscription, from the broker's stats",
            ["consumer", "topic"],
            registry=r,
        )

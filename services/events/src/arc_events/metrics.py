"""Prometheus metrics of one events process, in their own registry so several relays or
consumers in one process (tests, benchmarks) never collide."""

from __future__ import annotations

from arc_common.metrics import ServiceMetrics


class EventsMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.outbox_backlog = self.gauge(
            "arc_events_outbox_backlog", "Outbox rows not yet acknowledged by Pulsar"
        )
        self.outbox_oldest_unsent_age = self.gauge(
            "arc_events_outbox_oldest_unsent_age_seconds",
            "Age of the oldest outbox row not yet acknowledged by Pulsar",
        )
        self.relayed = self.counter(
            "arc_events_relayed", "Events published and acknowledged", ["topic"]
        )
        self.relay_failures = self.counter(
            "arc_events_relay_failures", "Events whose publish failed (they are retried)"
        )
        self.relay_batch_seconds = self.histogram(
            "arc_events_relay_batch_seconds",
            "Read, publish and mark-sent time of one relay batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30),
        )
        self.relay_buckets = self.gauge(
            "arc_events_relay_buckets", "Outbox buckets whose lease this process's relays hold"
        )
        self.consumed = self.counter(
            "arc_events_consumed", "Events applied by a consumer", ["consumer"]
        )
        self.duplicates = self.counter(
            "arc_events_duplicates_skipped",
            "Redelivered events a consumer had already applied",
            ["consumer"],
        )
        self.parked = self.counter(
            "arc_events_dead_lettered",
            "Poison messages parked on a dead-letter topic",
            ["consumer"],
        )
        self.consumer_lag = self.gauge(
            "arc_events_consumer_lag_seconds",
            "Time from publish to apply of the last event a consumer applied",
            ["consumer"],
        )
        self.consumer_backlog = self.gauge(
            "arc_events_consumer_backlog",
            "Messages waiting in the consumer's subscription, from the broker's stats",
            ["consumer", "topic"],
        )

"""The brain's Prometheus metrics, in a registry of its own so several brains can live in one
process (tests) without clashing."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class BrainMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # CPU, memory and open files of the process, as process_* (System health dashboard).
        ProcessCollector(registry=self.registry)
        self.turns = Counter(
            "arc_brain_turns",
            "Turns answered, by route and outcome (ok, cancelled, error).",
            ["route", "outcome"],
            registry=self.registry,
        )
        self.first_delta = Histogram(
            "arc_brain_first_delta_seconds",
            "From the turn's start to its first speakable chunk.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.turn_seconds = Histogram(
            "arc_brain_turn_seconds",
            "From the turn's start to its last chunk.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.memory_available = Gauge(
            "arc_brain_memory_available",
            "1 while Postgres (history and memory) answers, 0 while the brain runs without it.",
            registry=self.registry,
        )
        self.memory_backlog = Gauge(
            "arc_brain_memory_backlog_turns",
            "Turns answered during a Postgres outage, waiting to be written.",
            registry=self.registry,
        )
        self.memory_outages = Gauge(
            "arc_brain_memory_outages",
            "Postgres outages seen since start-up.",
            registry=self.registry,
        )
        self.llm_retries = Gauge(
            "arc_brain_llm_retries",
            "LLM requests retried before their first token, since start-up.",
            registry=self.registry,
        )
        self.tentative_turns = Counter(
            "arc_brain_tentative_turns",
            "Tentative (preemptive) turns by verdict: committed and stored, discarded, or "
            "expired without a verdict.",
            ["verdict"],
            registry=self.registry,
        )
        self.active_turns = Gauge(
            "arc_brain_active_turns", "Turns in progress.", registry=self.registry
        )
        # Every route's series exists from start-up at zero, so the first turn of a route is
        # an increase a rate() sees (a series born at 1 reads as no change, and a panel or
        # alert over it stays blank).
        from arc_brain.skills import Route  # here: skills imports half the brain

        for route in [*(r.value for r in Route), "unknown"]:
            self.first_delta.labels(route)
            self.turn_seconds.labels(route)
            for outcome in ("ok", "cancelled", "error"):
                self.turns.labels(route, outcome)

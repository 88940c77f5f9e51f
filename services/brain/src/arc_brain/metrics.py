"""The brain's Prometheus metrics, in a registry of its own so several brains can live in one
process (tests) without clashing."""

from __future__ import annotations

from arc_common.metrics import ServiceMetrics

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class BrainMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.turns = self.counter(
            "arc_brain_turns",
            "Turns answered, by route and outcome (ok, cancelled, error).",
            ["route", "outcome"],
        )
        self.first_delta = self.histogram(
            "arc_brain_first_delta_seconds",
            "From the turn's start to its first speakable chunk.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
        )
        self.turn_seconds = self.histogram(
            "arc_brain_turn_seconds",
            "From the turn's start to its last chunk.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
        )
        self.memory_available = self.gauge(
            "arc_brain_memory_available",
            "1 while Postgres (history and memory) answers, 0 while the brain runs without it.",
        )
        self.memory_backlog = self.gauge(
            "arc_brain_memory_backlog_turns",
            "Turns answered during a Postgres outage, waiting to be written.",
        )
        self.memory_outages = self.gauge(
            "arc_brain_memory_outages",
            "Postgres outages seen since start-up.",
        )
        self.llm_retries = self.gauge(
            "arc_brain_llm_retries",
            "LLM requests retried before their first token, since start-up.",
        )
        self.tentative_turns = self.counter(
            "arc_brain_tentative_turns",
            "Tentative (preemptive) turns by verdict: committed and stored, discarded, or "
            "expired without a verdict.",
            ["verdict"],
        )
        self.active_turns = self.gauge("arc_brain_active_turns", "Turns in progress.")
        # Every route's series exists from start-up at zero, so the first turn of a route is
        # an increase a rate() sees (a series born at 1 reads as no change, and a panel or
        # alert over it stays blank).
        from arc_brain.skills import Route  # here: skills imports half the brain

        for route in [*(r.value for r in Route), "unknown"]:
            self.first_delta.labels(route)
            self.turn_seconds.labels(route)
            for outcome in ("ok", "cancelled", "error"):
                self.turns.labels(route, outcome)

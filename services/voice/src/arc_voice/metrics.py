"""Prometheus metrics of the voice worker (served on `GET /metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_MS_BUCKETS = (5, 10, 20, 30, 50, 75, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000)

CONVERSATIONS_ACTIVE = Gauge(
    "arc_voice_conversations_active", "Conversations (one per person) in progress"
)
ROOMS_JOINED = Gauge("arc_voice_rooms_joined", "Rooms the agent is in")
TURNS = Counter("arc_voice_turns_total", "Brain turns answered", ["interrupted"])
BARGE_IN_STOP_MS = Histogram(
    "arc_voice_barge_in_stop_ms",
    "From confirmed speech over the agent to its audio being stopped (ms)",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500),
)
VOICE_TO_VOICE_MS = Histogram(
    "arc_voice_voice_to_voice_ms",
    "From the end of the person's speech to the agent's first audio frame (ms)",
    buckets=_MS_BUCKETS,
)
ANNOUNCEMENTS = Counter(
    "arc_voice_announcements_total",
    "Announcements received: queued for a room, for a room the agent is not in (no_room), or "
    "refused as invalid (rejected)",
    ["outcome"],
)
ANNOUNCEMENT_OUTCOMES = Counter(
    "arc_voice_announcement_outcomes_total",
    "What became of queued announcements: spoken, superseded by a higher category in the same "
    "burst, or dropped (see arc_voice_announcements_dropped_total for why)",
    ["outcome"],
)
ANNOUNCEMENTS_DROPPED = Counter(
    "arc_voice_announcements_dropped_total",
    "Queued announcements that were not spoken, by reason",
    ["reason"],
)
EVENT_STORE_FAILURES = Counter(
    "arc_voice_event_store_failures_total", "Events that could not be written to the outbox"
)
PREEMPTIVE = Counter(
    "arc_voice_preemptive_generations_total",
    "Person's turns answered by a generation started before the turn was confirmed (hit) or "
    "started over (miss), and guesses thrown away (discarded)",
    ["outcome"],
)
FALSE_INTERRUPTIONS = Counter(
    "arc_voice_false_interruptions_total",
    "Sounds over the agent without words (a cough, a backchannel) that paused it",
    ["resumed"],
)
LOUD_PAUSES = Counter(
    "arc_voice_loud_pauses_total",
    "Loud sounds over the agent that paused it before the VAD judged them: confirmed as "
    "speech, or resumed (the VAD did not confirm speech in time)",
    ["outcome"],
)

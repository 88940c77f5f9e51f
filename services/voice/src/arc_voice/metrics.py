"""Prometheus metrics of the voice worker (served on `GET /metrics`)."""

from __future__ import annotations

from arc_common.errors import ErrorCode
from prometheus_client import Counter, Gauge, Histogram

_MS_BUCKETS = (5, 10, 20, 30, 50, 75, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000)

CONVERSATIONS_ACTIVE = Gauge(
    "arc_voice_conversations_active", "Conversations (one per person) in progress"
)
ROOMS_JOINED = Gauge("arc_voice_rooms_joined", "Rooms the agent is in")
TURNS = Counter("arc_voice_turns_total", "Brain turns answered", ["interrupted"])
# The person is never left in silence: "one moment" when the brain is slow to start, an
# apology when it cannot answer (plugins/brain_llm.py).
BRAIN_STAND_INS = Counter(
    "arc_voice_brain_stand_ins_total",
    "Lines the voice worker said for the brain: hold_on (slow first words), apology (no answer)",
    ["kind", "reason"],
)
BARGE_IN_STOP_MS = Histogram(
    "arc_voice_barge_in_stop_ms",
    "From confirmed speech over the agent to its audio being stopped (ms)",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500),
)
# The stages the worker itself can time (latency.worker_stages). The person's side
# (latency.breakdown) adds transport, which only the listener can time.
TURN_STAGES = (
    "voice_to_voice",
    "end_of_speech",
    "transcript",
    "end_of_turn",
    "brain_first_delta",
    "tts_first_chunk",
    "barge_in_stop",
)
# Seconds, per stage of a turn (latency.STAGES says what each one times), so one query shows
# where a turn's time went: histogram_quantile(0.95, sum by (le, stage) (rate(..._bucket[5m]))).
TURN_STAGE_SECONDS = Histogram(
    "arc_voice_turn_stage_seconds",
    "Time of one stage of a turn as the voice worker sees it: voice_to_voice, end_of_speech, "
    "transcript (STT), end_of_turn, brain_first_delta, tts_first_chunk, barge_in_stop",
    ["stage"],
    buckets=(
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
        0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
    ),
)  # fmt: skip
INTERRUPTIONS = Counter(
    "arc_voice_interruptions_total",
    "Times the person spoke over the agent and its audio was stopped or paused (barge-ins)",
)
ERRORS = Counter(
    "arc_voice_errors_total",
    "Contract errors the voice worker got from a service, by service (brain, tts) and code",
    ["service", "code"],
)
NOISE_GATE_FRAMES_GATED = Counter(
    "arc_voice_noise_gate_frames_gated_total",
    "Microphone frames the noise gate replaced with silence before the VAD",
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
EVENT_BACKLOG = Gauge(
    "arc_voice_event_backlog",
    "Records of events waiting for Postgres to answer again (written in order once it does)",
)
TTS_RETRIES = Counter(
    "arc_voice_tts_retries_total",
    "Speakable units asked again of another TTS replica (none took it, or its speaker died)",
)
TTS_ROUTED = Counter(
    "arc_voice_tts_routed_total",
    "Speakable units by where they were sent: resident (a TTS worker that has the voice loaded)"
    " or queue (the queue group)",
    ["route"],
)
TRUNCATE_FAILURES = Counter(
    "arc_voice_truncate_failures_total",
    "Interrupted answers the brain could not cut down to what was heard (brain.truncate)",
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

# Every label value a query may ask for exists from start-up, at zero: a rate over a series
# that has never been written is "no data", not 0, and alerts and panels would stay blank.
for _service in ("brain", "tts"):
    for _code in ErrorCode:
        ERRORS.labels(service=_service, code=_code.value)
for _stage in TURN_STAGES:
    TURN_STAGE_SECONDS.labels(stage=_stage)
for _interrupted in ("true", "false"):
    TURNS.labels(interrupted=_interrupted)
for _outcome in ("queued", "no_room", "rejected"):
    ANNOUNCEMENTS.labels(outcome=_outcome)
for _outcome in ("spoken", "superseded", "dropped"):  # announcements.Outcome
    ANNOUNCEMENT_OUTCOMES.labels(outcome=_outcome)

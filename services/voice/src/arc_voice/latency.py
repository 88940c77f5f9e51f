"""Where one reply's time went, from the person's side.

The clock starts when the person's last frame of speech left their microphone and stops when
the first audible frame of the agent's answer reached them; the stages in between come from
the worker's own record of the turn (`ReplyTiming`). Both ends use `time.monotonic()`, which
on Linux is one clock for every process on the machine, so `make talk` (another process) and
the benchmark (the same process) compute the breakdown the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from arc_voice import metrics


@dataclass
class ReplyTiming:
    """Where one reply's time went, as the worker saw it (monotonic seconds)."""

    turn_id: str
    user_stopped_at: float | None  # the VAD declared the end of speech
    transcription_delay_s: float | None  # last speech → final transcript (framework's figure)
    end_of_turn_delay_s: float | None  # last speech → turn confirmed (framework's figure)
    brain_first_delta_s: float | None  # brain request → first delta
    tts_first_chunk_s: float | None  # first text to the TTS → first audio back
    first_audio_out_at: float | None  # the first frame went to the room track
    preemptive: bool | None = None  # answered by a generation started before confirmation

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplyTiming:
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        values["turn_id"] = str(values["turn_id"] or "")
        return cls(**values)


@dataclass
class Breakdown:
    voice_to_voice_s: float
    end_of_speech_s: float | None
    transcript_s: float | None
    end_of_turn_s: float | None
    brain_first_delta_s: float | None
    tts_first_chunk_s: float | None
    transport_s: float | None
    preemptive: bool | None


# Stage keys of `Breakdown`, in the order a reply passes them, with what each one times.
STAGES: dict[str, str] = {
    "voice_to_voice_s": "voice to voice (person's last speech frame sent → first audible agent "
    "frame received)",
    "end_of_speech_s": "end-of-speech detection (last speech frame sent → VAD end of speech)",
    "transcript_s": "final transcript (VAD's last speech → final transcript; overlaps the next)",
    "end_of_turn_s": "end of turn confirmed (VAD's last speech → turn committed)",
    "brain_first_delta_s": "brain first delta (request → first delta; may start before the turn "
    "is confirmed)",
    "tts_first_chunk_s": "TTS first chunk (first text → first audio)",
    "transport_s": "transport (first frame to the agent's track → heard by the person)",
}


def breakdown(timing: ReplyTiming, *, speech_ended_at: float, heard_at: float) -> Breakdown:
    return Breakdown(
        voice_to_voice_s=heard_at - speech_ended_at,
        end_of_speech_s=None
        if timing.user_stopped_at is None
        else timing.user_stopped_at - speech_ended_at,
        transcript_s=timing.transcription_delay_s,
        end_of_turn_s=timing.end_of_turn_delay_s,
        brain_first_delta_s=timing.brain_first_delta_s,
        tts_first_chunk_s=timing.tts_first_chunk_s,
        transport_s=None
        if timing.first_audio_out_at is None
        else heard_at - timing.first_audio_out_at,
        preemptive=timing.preemptive,
    )


def describe(result: Breakdown) -> str:
    """One line per stage, for a person reading a terminal."""
    lines = []
    for key, label in STAGES.items():
        value = getattr(result, key)
        shown = "—" if value is None else f"{value * 1000:.0f} ms"
        lines.append(f"  {label.split(' (')[0]:<32} {shown}")
    if result.preemptive is not None:
        lines.append(f"  {'preemptive generation':<32} {'hit' if result.preemptive else 'miss'}")
    return "\n".join(lines)


# The stages the worker itself can time, as `arc_voice_turn_stage_seconds{stage=...}`. The
# person's side (`breakdown`) adds transport, which only the listener can time: the worker does
# not know when its audio reached an ear (LiveKit's jitter panels stand in for it).
WORKER_STAGES = metrics.TURN_STAGES


def worker_stages(
    timing: ReplyTiming, user: Mapping[str, Any], reply: Mapping[str, Any]
) -> dict[str, float]:
    """The worker's view of one reply, by stage (seconds; stages it could not time are left
    out). `user` and `reply` are the framework's metrics of the person's message and of the
    reply: voice to voice is its `e2e_latency` (its end of speech → first frame out), and end
    of speech detection is from that end of speech (wall clock) to the VAD's decision."""
    stages: dict[str, float | None] = {
        "voice_to_voice": _number(reply.get("e2e_latency")),
        "transcript": timing.transcription_delay_s,
        "end_of_turn": timing.end_of_turn_delay_s,
        "brain_first_delta": timing.brain_first_delta_s,
        "tts_first_chunk": timing.tts_first_chunk_s,
        "end_of_speech": None,
    }
    spoke_until = _number(user.get("stopped_speaking_at"))
    if spoke_until is not None and timing.user_stopped_at is not None:
        stages["end_of_speech"] = max(
            0.0, timing.user_stopped_at - monotonic_from_wall(spoke_until)
        )
    return {stage: value for stage, value in stages.items() if value is not None and value >= 0}


def monotonic_from_wall(wall: float) -> float:
    """A wall-clock time (as the framework stamps its metrics) on the monotonic clock the
    rest of Arc measures with, by the offset between the two taken now."""
    return wall + time.monotonic() - time.time()


def observe_reply(
    timing: ReplyTiming, user: Mapping[str, Any], reply: Mapping[str, Any]
) -> dict[str, float]:
    """Record one reply's stages in Prometheus; returns what was recorded."""
    stages = worker_stages(timing, user, reply)
    for stage, seconds in stages.items():
        metrics.TURN_STAGE_SECONDS.labels(stage=stage).observe(seconds)
    return stages


def observe_barge_in(stop_ms: float | None) -> None:
    """One barge-in: counted, and its stop time (speech confirmed over the agent → its audio
    stopped) recorded when known."""
    metrics.INTERRUPTIONS.inc()
    if stop_ms is not None:
        metrics.BARGE_IN_STOP_MS.observe(stop_ms)
        metrics.TURN_STAGE_SECONDS.labels(stage="barge_in_stop").observe(stop_ms / 1000)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None

"""One trace per person's turn, rooted in the voice worker.

The framework (LiveKit Agents) runs STT, the turn decision, the brain and TTS calls and the
playout in tasks of its own, so no span can simply be "current" around a turn. Instead the
conversation marks what happens when it happens (end of speech, final transcript, turn
confirmed, interruption, first audio out) and this object keeps the turn's root span:

- `voice.turn` (root) starts at the end of the person's speech (or at the brain request, if
  the framework asks the brain before the VAD calls the end of speech) and ends when the
  answer has been played out or cut off;
- `brain.request` and `tts.request` are the streaming client's CLIENT spans, opened under the
  root because the plugins ask `brain_context()` / `reply_context()` for their parent; the
  brain's and the TTS's server spans are their children, through `traceparent`;
- `voice.stt` (end of speech → final transcript), `voice.end_of_turn` (final transcript →
  turn confirmed) and `voice.playout` (answer audio ready → first frame published to the
  room) are recorded at the end with the marked times: sequential, non-overlapping stages;
- an interruption (barge-in) is an event on the root.

With tracing off every method only stores a float.
"""

from __future__ import annotations

import time

from arc_common.envelope import tracing_enabled
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span

tracer = trace.get_tracer("arc_voice.turn")


def _clock_offset_ns() -> int:
    """Epoch nanoseconds minus monotonic nanoseconds, now: the marks are monotonic readings
    and spans take epoch times. Taken once per turn, so the turn's spans line up exactly."""
    return time.time_ns() - time.monotonic_ns()


class TurnTrace:
    def __init__(self, *, session_id: str, room: str, identity: str) -> None:
        self._attributes = {
            "arc.session_id": session_id,
            "arc.room": room,
            "arc.participant": identity,
        }
        self._root: Span | None = None
        # End of speech of the turn not yet answered: the root's start, and the last one
        # before the turn was taken (the STT stage starts there; a hesitation has two).
        self._first_eos: float | None = None
        self._last_eos: float | None = None
        self._final_at: float | None = None
        self._speaking = False  # the open turn's answer is already playing
        self._offset_ns = _clock_offset_ns()

    def _ns(self, monotonic_s: float) -> int:
        return int(monotonic_s * 1e9) + self._offset_ns

    # --- marks, from the conversation's event handlers -------------------------------------

    def speech_ended(self, at: float) -> None:
        if self._root is not None and self._speaking:
            # Over the answer (a barge-in): this speech belongs to the next turn.
            self._first_eos = self._first_eos or at
            self._last_eos = at
            return
        if self._root is None and self._first_eos is None:
            self._first_eos = at
        self._last_eos = at

    def transcript_final(self, at: float) -> None:
        self._final_at = at

    def interrupted(self, at: float) -> None:
        if self._root is not None:
            self._root.add_event("interruption", timestamp=self._ns(at))

    def answer_playing(self) -> None:
        self._speaking = True

    # --- parents for the plugins' requests -----------------------------------------------

    def brain_context(self) -> otel_context.Context | None:
        """The root's context, starting the root if the person's turn has none yet: at the
        end of their speech, or now when the framework asks the brain before the VAD has
        called the end of speech (preemptive generation on an early final transcript)."""
        if not tracing_enabled():
            return None
        if self._root is None:
            self._offset_ns = _clock_offset_ns()
            start = self._first_eos if self._first_eos is not None else time.monotonic()
            # A new trace per turn, whatever is current here: LiveKit Agents traces its whole
            # session as one trace of its own (`agent_session`, `llm_request`, ...); the turn
            # links to the span it was started from, for whoever wants that view too.
            framework = trace.get_current_span().get_span_context()
            self._root = tracer.start_span(
                "voice.turn",
                context=otel_context.Context(),
                start_time=self._ns(start),
                attributes=self._attributes,
                links=[Link(framework)] if framework.is_valid else None,
            )
            self._first_eos = None
            self._speaking = False
        return trace.set_span_in_context(self._root)

    def reply_context(self) -> otel_context.Context | None:
        """The open root's context (for TTS: the greeting and announcements have none, and
        each of their requests is a trace of its own)."""
        if self._root is None:
            return None
        return trace.set_span_in_context(self._root)

    # --- the end of a turn -----------------------------------------------------------------

    def finish(
        self,
        *,
        turn_id: str,
        interrupted: bool,
        confirmed_at: float | None,
        audio_ready_at: float | None,
        first_frame_at: float | None,
    ) -> otel_context.Context | None:
        """Record the turn's stages, end its root, and return the root's context (for the
        work that follows the turn: its outbox event carries this trace's id)."""
        root, self._root = self._root, None
        self._speaking = False
        if root is None:
            return None
        root.set_attribute("arc.turn_id", turn_id)
        root.set_attribute("arc.interrupted", interrupted)
        ctx = trace.set_span_in_context(root)
        eos, final = self._last_eos, self._final_at
        decided_from = eos
        if eos is not None and final is not None:
            # A streaming STT may finish before the VAD calls the end of speech: then the
            # stage is empty (the transcript was waiting), and says so.
            decided_from = max(final, eos)
            self._stage("voice.stt", eos, decided_from, ctx, {"arc.final_first": final < eos})
        if decided_from is not None and confirmed_at is not None and confirmed_at >= decided_from:
            self._stage("voice.end_of_turn", decided_from, confirmed_at, ctx)
        if audio_ready_at is not None and first_frame_at is not None:
            # Playout waits for both the answer's audio and the turn's confirmation.
            ready = max(audio_ready_at, confirmed_at or audio_ready_at)
            if first_frame_at >= ready:
                self._stage("voice.playout", ready, first_frame_at, ctx)
        root.end()
        self._final_at = None
        if self._first_eos is None:
            self._last_eos = None
        return ctx

    def close(self, reason: str) -> None:
        """The conversation ended with a turn still open: end its root, saying why."""
        root, self._root = self._root, None
        if root is not None:
            root.add_event("closed", {"arc.reason": reason})
            root.end()

    def _stage(
        self,
        name: str,
        start: float,
        end: float,
        ctx: otel_context.Context,
        attributes: dict[str, bool] | None = None,
    ) -> None:
        span = tracer.start_span(
            name, context=ctx, start_time=self._ns(start), attributes=attributes
        )
        span.end(end_time=self._ns(end))

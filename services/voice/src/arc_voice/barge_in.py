"""Stopping the agent's voice the moment the person is confirmed to be speaking over it.

The framework's own interruption first cancels the turn's generation tasks and only then
clears the audio output; measured here that takes hundreds of milliseconds. Barge-in instead
silences the room output first (synchronously, in the VAD callback that confirmed the
speech) and lets the framework's interruption (which cancels the brain and TTS streams, and
so publishes `brain.cancel` / `tts.cancel`) follow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice import io

log = logging.getLogger(__name__)


@dataclass
class BargeIn:
    """One interruption: when speech was confirmed and when the agent's audio was stopped."""

    detected_at: float
    stopped_at: float | None = None

    @property
    def stop_ms(self) -> float | None:
        return None if self.stopped_at is None else (self.stopped_at - self.detected_at) * 1000


def _room_source(output: io.AudioOutput) -> rtc.AudioSource | None:
    # The room output keeps up to 200 ms queued in its `rtc.AudioSource`, and clears that
    # queue only once its playout task notices the interruption; reaching the source (a
    # private attribute of LiveKit's room output) drops it now.
    source = getattr(output, "_audio_source", None)
    return source if isinstance(source, rtc.AudioSource) else None


def _output(session: AgentSession[None]) -> io.AudioOutput | None:
    try:
        return session.room_io.audio_output
    except RuntimeError:
        return session.output.audio


def pause_agent_audio(session: AgentSession[None], detected_at: float) -> BargeIn:
    """Silence the session's room audio now and leave the speech paused, for the framework to
    decide: it interrupts the speech once the person's words are transcribed, or resumes it
    when the sound had no words (its false-interruption handling). Pausing here, in the VAD
    callback that confirmed the speech, rather than waiting for the framework's own pause: in
    a room test that pause came only with the first final transcript, 0.7 s later.

    The up to 200 ms queued in the room's source are dropped, not held: they would play.
    `resume_stuck_output` is the safety net should the framework never take the pause over.
    """
    barge_in = BargeIn(detected_at=detected_at)
    chain = session.output.audio
    if chain is not None:
        chain.pause()
    output = _output(session)
    source = None if output is None else _room_source(output)
    if source is not None:
        source.clear_queue()
    barge_in.stopped_at = time.monotonic()
    return barge_in


def resume_stuck_output(session: AgentSession[None]) -> bool:
    """Resume a paused output under a speech the framework still counts as speaking (it
    neither interrupted nor resumed it); True when that was the case."""
    chain = session.output.audio
    if chain is None or session.agent_state != "speaking":
        return False
    chain.resume()
    return True


def stop_agent_audio(session: AgentSession[None], detected_at: float) -> BargeIn:
    """Silence the session's room audio now, then interrupt the current speech."""
    barge_in = BargeIn(detected_at=detected_at)
    output = _output(session)
    if output is not None:
        output.clear_buffer()
        source = _room_source(output)
        if source is not None:
            source.clear_queue()
    barge_in.stopped_at = time.monotonic()
    try:
        done = session.interrupt()
        # Nobody awaits the interruption; its outcome is only logged.
        done.add_done_callback(_log_failure)
    except RuntimeError as exc:
        # The current speech does not allow interruptions (none of ours do that today).
        log.info("barge-in could not interrupt: %s", exc)
    return barge_in


def _log_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.warning("barge-in interruption failed: %r", exc)

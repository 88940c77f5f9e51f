"""Stopping the agent's voice the moment the person is confirmed to be speaking over it.

The framework's own interruption first cancels the turn's generation tasks and only then
clears the audio output; measured here that takes hundreds of milliseconds. Barge-in instead
silences the room output first (synchronously, in the VAD callback that confirmed the
speech) and lets the framework's interruption (which cancels the brain and TTS streams, and
so publishes `brain.cancel` / `tts.cancel`) follow.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class QueuedAudio(Protocol):
    """What barge-in needs of the room's audio source: an `rtc.AudioSource`, or the
    recording's tap around one."""

    @property
    def queued_duration(self) -> float: ...

    def clear_queue(self) -> None: ...


# The room output's own bookkeeping of a dropped queue, which `drop_queued_audio` keeps as its
# playout task would (livekit-agents 1.8, `room_io/_output.py`).
_BOOKKEEPING = ("_source_pushed_duration", "_source_discarded_duration")
_REPORT_RUN_ARGS = ("offset", "ended_at", "resumes_at")


def _takes(method: object, names: tuple[str, ...]) -> bool:
    if not callable(method):
        return False
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return all(name in parameters for name in names)


def room_output(output: io.AudioOutput | None) -> Any | None:
    """The link of a session's audio output chain that feeds the room: LiveKit's room output,
    which holds an `rtc.AudioSource` at its private `_audio_source`, found under whatever
    wraps it (the framework's transcript synchroniser, on by default). None where the chain
    has no room output (a WebSocket session)."""
    link: Any = output
    while link is not None:
        if isinstance(getattr(link, "_audio_source", None), QueuedAudio):
            return link
        link = getattr(link, "next_in_chain", None)
    return None


def check_room_output(output: io.AudioOutput | None) -> None:
    """Fail a room session at its start when LiveKit's room output no longer has what
    barge-in reaches into: without it the agent would go on talking for the up to 200 ms
    queued in the room's source each time the person interrupts, and nothing would say so
    (it did, silently, until 2026-12-06: the synchroniser hid the source)."""
    link = room_output(output)
    if link is None:
        missing = ["_audio_source"]
    else:
        missing = [n for n in _BOOKKEEPING if not isinstance(getattr(link, n, None), int | float)]
        if not _takes(getattr(link, "_report_run", None), _REPORT_RUN_ARGS):
            missing.append(f"_report_run({', '.join(_REPORT_RUN_ARGS)})")
    if missing:
        raise RuntimeError(
            "livekit-agents changed: the room's audio output has no "
            f"{', '.join(missing)}, so barge-in cannot drop the audio queued for the room "
            "(arc_voice.barge_in)"
        )


def drop_queued_audio(output: io.AudioOutput | None) -> float:
    """Drop what the room's source still holds, now, and return its seconds.

    The room output keeps up to 200 ms queued in its source and drops that queue only when
    its playout task next wakes (a paused output: with the next frame, which may not come).
    This keeps the output's own bookkeeping of a dropped queue, as that task does: the
    dropped audio counts as discarded, so the position the framework reports as heard (and
    the answer kept as heard) leaves it out, and a resumed answer goes on after it."""
    link = room_output(output)
    if link is None:
        return 0.0
    source: QueuedAudio = link._audio_source
    queued = source.queued_duration
    if queued <= 0:
        return 0.0
    link._source_discarded_duration += queued
    link._report_run(
        offset=link._source_pushed_duration - queued,
        ended_at=time.time(),
        resumes_at=link._source_pushed_duration,
    )
    source.clear_queue()
    return queued


def pause_agent_audio(session: AgentSession[None], detected_at: float) -> BargeIn:
    """Silence the session's room audio now and leave the speech paused, for the framework to
    decide: it interrupts the speech once the person's words are transcribed, or resumes it
    when the sound had no words (its false-interruption handling). Pausing here, in the VAD
    callback that confirmed the speech, rather than waiting for the framework's own pause: in
    a room test that pause came only with the first final transcript, 0.7 s later.

    The up to 200 ms queued in the room's source are dropped, not held: they would play
    (a resumed answer goes on after them).
    `resume_stuck_output` is the safety net should the framework never take the pause over.
    """
    barge_in = BargeIn(detected_at=detected_at)
    chain = session.output.audio
    if chain is not None:
        chain.pause()
    drop_queued_audio(chain)
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
    # A room session's chain is the room I/O's own output (the room output under the
    # transcript synchroniser); a WebSocket session's, the socket's.
    output = session.output.audio
    if output is not None:
        output.clear_buffer()
        drop_queued_audio(output)
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

"""A conversation over a WebSocket: the framework's audio input, audio output and text output
read and write the socket (docs/websocket.md), where a room conversation gets LiveKit's room
I/O. Everything the person hears or the client is told goes through one `Outbox`, whose
single writer task keeps the socket's messages in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from arc_common.errors import ArcError, Busy
from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.utils.audio import AudioByteStream
from livekit.agents.voice import io
from livekit.agents.voice.events import (
    AgentStateChangedEvent,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)

from arc_voice.lifecycle import HeardTurn
from arc_voice.models import VAD_SAMPLE_RATE
from arc_voice.recording import SessionRecording

log = logging.getLogger(__name__)

Pacing = Literal["realtime", "fast"]

# Audio may run this far ahead of the wall clock (network bursts); past it the excess is
# dropped, so a client cannot fill the server's memory by sending faster than real time.
MAX_AHEAD_S = 1.0
# Frames the framework has not read yet; a worker too slow to keep up drops past this.
MAX_QUEUED_S = 5.0
# With real-time pacing the agent's audio is sent this far ahead of its play time (unless the
# client's `start` asks for another lead), for the client's jitter buffer; a barge-in can
# leave at most this much in the client.
SEND_AHEAD_S = 0.1
_BUSY_EVERY_S = 1.0


class Outbox:
    """The socket's one writer: JSON events and binary frames, in the order they are put."""

    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        send_bytes: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self._send_text = send_text
        self._send_bytes = send_bytes
        self._queue: asyncio.Queue[dict[str, Any] | bytes | None] = asyncio.Queue()
        self.opened_at = time.monotonic()
        self._task = asyncio.create_task(self._write(), name="ws-outbox")
        self.closed = False

    def event(self, kind: str, **fields: Any) -> None:
        if not self.closed:
            t = round((time.monotonic() - self.opened_at) * 1000, 1)
            self._queue.put_nowait({"type": kind, "t": t, **fields})

    def error(self, error: ArcError) -> None:
        self.event("error", code=error.code.value, message=error.message, retryable=error.retryable)

    def audio(self, pcm: bytes) -> None:
        if not self.closed:
            self._queue.put_nowait(pcm)

    async def _write(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                if isinstance(item, bytes):
                    await self._send_bytes(item)
                else:
                    await self._send_text(json.dumps(item, separators=(",", ":")))
            except Exception:  # the peer went away; the receive loop notices and ends
                self.closed = True
                return

    async def aclose(self) -> None:
        """Send what is queued, then stop writing."""
        if not self._task.done():
            self._queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await self._task
        self.closed = True


class SocketAudioInput(io.AudioInput):
    """The person's PCM16 from the socket, cut into 20 ms frames at the VAD's rate."""

    def __init__(self, sample_rate: int, on_busy: Callable[[float], None]) -> None:
        super().__init__(label="WebSocket")
        self._rate = sample_rate
        self._bytes = AudioByteStream(sample_rate, 1, samples_per_channel=sample_rate // 50)
        self._resampler = (
            None
            if sample_rate == VAD_SAMPLE_RATE
            # QUICK holds nothing back: MEDIUM delays the person's words by ~90 ms here, for
            # a quality the VAD and Whisper (which hear 16 kHz) do not use.
            else rtc.AudioResampler(
                sample_rate,
                VAD_SAMPLE_RATE,
                num_channels=1,
                quality=rtc.AudioResamplerQuality.QUICK,
            )
        )
        self._frames: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()
        self._queued_s = 0.0
        self._clock_start: float | None = None
        self._received_s = 0.0
        self._on_busy = on_busy
        self._dropped_s = 0.0
        self._busy_told_at = 0.0
        # Set when the session is recorded: what the worker accepts is what it hears.
        self.recording: SessionRecording | None = None

    def hear(self, pcm: bytes) -> None:
        """One binary message (its length is checked by the caller)."""
        seconds = len(pcm) / 2 / self._rate
        now = time.monotonic()
        if self._clock_start is None or now - self._clock_start > self._received_s:
            # A client that paused sending owes nothing for the gap.
            self._clock_start = now - self._received_s
        ahead = self._received_s + seconds - (now - self._clock_start)
        if ahead > MAX_AHEAD_S or self._queued_s + seconds > MAX_QUEUED_S:
            self._drop(seconds, now)
            return
        self._received_s += seconds
        # The message's audio was heard over the `seconds` before it arrived; its frames are
        # placed one after another from there (a burst of frames arrives at one instant).
        heard_at = now - seconds
        for frame in self._bytes.push(pcm):
            for out in self._resampler.push(frame) if self._resampler else [frame]:
                self._queued_s += out.duration
                self._frames.put_nowait(out)
                if self.recording is not None:
                    self.recording.person(out, heard_at)
                    heard_at += out.duration

    def _drop(self, seconds: float, now: float) -> None:
        self._dropped_s += seconds
        if now - self._busy_told_at >= _BUSY_EVERY_S:
            self._busy_told_at = now
            self._on_busy(self._dropped_s)

    def end(self) -> None:
        self._frames.put_nowait(None)

    async def __anext__(self) -> rtc.AudioFrame:
        frame = await self._frames.get()
        if frame is None:
            self._frames.put_nowait(None)  # every later read ends too
            raise StopAsyncIteration
        self._queued_s -= frame.duration
        return frame


class _SegmentEnd:
    """Marks the end of one answer's audio in the send queue (`flush`)."""


class SocketAudioOutput(io.AudioOutput):
    """The agent's speech as binary frames of `frame_ms`, paced in real time (so a barge-in
    leaves at most `SEND_AHEAD_S` in the client) or sent as fast as produced."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        sample_rate: int,
        frame_ms: int,
        pacing: Pacing,
        lead_s: float = SEND_AHEAD_S,
    ):
        super().__init__(
            label="WebSocket",
            capabilities=io.AudioOutputCapabilities(pause=True),
            sample_rate=sample_rate,
        )
        self._outbox = outbox
        self._bytes = AudioByteStream(
            sample_rate, 1, samples_per_channel=sample_rate * frame_ms // 1000
        )
        self._realtime = pacing == "realtime"
        self._lead_s = lead_s
        self._queue: asyncio.Queue[rtc.AudioFrame | _SegmentEnd] = asyncio.Queue()
        self._playing = asyncio.Event()
        self._playing.set()
        # Set by resume() and clear_buffer(): a paused sender must also wake to drop its
        # frames when the framework clears a paused answer (an interruption).
        self._wake = asyncio.Event()
        self._capturing = False
        self._interrupted = False
        self._started = False  # the current segment's first frame went out
        self._sent_s = 0.0
        self._clock_start = 0.0
        self._task: asyncio.Task[None] | None = None
        self.recording: SessionRecording | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._send(), name="ws-audio-out")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self._capturing = True
        for out in self._bytes.push(frame.data):
            self._queue.put_nowait(out)

    def flush(self) -> None:
        super().flush()
        if not self._capturing:
            return
        self._capturing = False
        for out in self._bytes.flush():
            self._queue.put_nowait(out)
        self._queue.put_nowait(_SegmentEnd())

    def clear_buffer(self) -> None:
        self._bytes.clear()
        ended = False
        while not self._queue.empty():
            ended |= isinstance(self._queue.get_nowait(), _SegmentEnd)
        if ended or self._capturing or self._started:
            self._interrupted = True
        if ended:
            self._queue.put_nowait(_SegmentEnd())
        self._wake.set()

    def pause(self) -> None:
        super().pause()
        self._playing.clear()

    def resume(self) -> None:
        super().resume()
        # Play time starts again from now: the pause is not owed.
        self._clock_start = time.monotonic() - self._sent_s
        self._playing.set()
        self._wake.set()

    async def _send(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, _SegmentEnd):
                await self._finish()
                continue
            while not self._playing.is_set() and not self._interrupted:
                self._wake.clear()
                await self._wake.wait()
            if self._interrupted:
                continue  # cleared while this frame waited
            if not self._started:
                self._started = True
                self._sent_s = 0.0
                self._clock_start = time.monotonic()
                self._outbox.event("audio_start")
                self.on_playback_started(created_at=time.time())
            if self._realtime:
                due = self._clock_start + self._sent_s - self._lead_s
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                    if self._interrupted or not self._playing.is_set():
                        continue
            self._outbox.audio(bytes(item.data))
            if self.recording is not None:
                # Where the client's clock plays it, paced or not (it plays frames in order).
                self.recording.agent(item, self._clock_start + self._sent_s)
            self._sent_s += item.duration

    async def _finish(self) -> None:
        interrupted = self._interrupted
        wait = self._clock_start + self._sent_s - time.monotonic()
        if self._realtime and not interrupted and wait > 0:
            # The segment has played when the client's clock reaches its end.
            await asyncio.sleep(wait)
        played = self._sent_s
        if self._realtime and interrupted:
            played = max(0.0, min(played, time.monotonic() - self._clock_start))
        if self._started:
            self._outbox.event("audio_end", interrupted=interrupted)
        self._started = False
        self._interrupted = False
        self._sent_s = 0.0
        self.on_playback_finished(playback_position=played, interrupted=interrupted)


class SocketTextOutput(io.TextOutput):
    """The agent's words, delta by delta, as the framework hands them to the speech."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__(label="WebSocket", next_in_chain=None)
        self._outbox = outbox

    async def capture_text(self, text: str) -> None:
        if text:
            self._outbox.event("agent_text", text=text)

    def flush(self) -> None:
        """Deltas go out as they come; nothing is held."""


_STATES = {"listening": "listening", "idle": "listening", "thinking": "thinking"}


class SocketTransport:
    """One WebSocket conversation's transport: the session's I/O, and the events the client
    is told about (VAD, transcripts, agent state, turn timings)."""

    place = "websocket"

    def __init__(
        self,
        outbox: Outbox,
        *,
        input_sample_rate: int,
        output_sample_rate: int,
        frame_ms: int,
        pacing: Pacing,
        voice: str | None,
        lead_s: float = SEND_AHEAD_S,
    ) -> None:
        self.outbox = outbox
        self.tts_sample_rate = output_sample_rate
        self.voice = voice
        self.audio_in = SocketAudioInput(input_sample_rate, self._busy)
        self.audio_out = SocketAudioOutput(
            outbox,
            sample_rate=output_sample_rate,
            frame_ms=frame_ms,
            pacing=pacing,
            lead_s=lead_s,
        )

    def _busy(self, dropped_s: float) -> None:
        self.outbox.error(
            Busy(
                f"audio is arriving faster than real time (or faster than the worker hears "
                f"it); {dropped_s:.2f} s dropped so far"
            )
        )

    async def start(
        self, session: AgentSession[None], agent: Agent, recording: SessionRecording | None
    ) -> None:
        self.audio_in.recording = self.audio_out.recording = recording
        session.input.audio = self.audio_in
        session.output.audio = self.audio_out
        session.output.transcription = SocketTextOutput(self.outbox)
        session.on("user_state_changed", self._on_user_state)
        session.on("user_input_transcribed", self._on_transcribed)
        session.on("agent_state_changed", self._on_agent_state)
        self.audio_out.start()
        await session.start(agent, record=False)

    async def aclose(self) -> None:
        self.audio_in.end()
        await self.audio_out.aclose()

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self.outbox.event("vad", event="start")
        elif ev.old_state == "speaking":
            self.outbox.event("vad", event="stop")

    def _on_transcribed(self, ev: UserInputTranscribedEvent) -> None:
        if ev.transcript:
            self.outbox.event("transcript", final=ev.is_final, text=ev.transcript)

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        state = "speaking" if ev.new_state == "speaking" else _STATES.get(ev.new_state)
        if state is not None:
            self.outbox.event("state", state=state)

    def interrupted(self) -> None:
        self.outbox.event("state", state="interrupted")

    def turn_heard(self, turn: HeardTurn) -> None:
        self.outbox.event("turn_metrics", **turn.timings())

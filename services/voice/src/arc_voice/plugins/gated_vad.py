"""`GatedVAD`: Silero VAD behind the adaptive noise gate.

Frames the gate holds back reach Silero as silence, so a fan or keyboard never starts a
turn or interrupts the agent, and the bar is higher while the agent speaks. Every confirmed
speech onset (speech lasting `min_speech_s`, the point where the session interrupts the
agent) is reported to `listeners` with its monotonic time, which is how barge-in stop times
are measured. Sooner than that, a sound loud enough to pass the gate while the agent speaks,
for `pause_on_loud_s` in a row, is reported to `loud_listeners` as a `LoudSound`: the worker
pauses the agent on it and lets the VAD confirm (or not) that it was speech. The gate runs as
frames arrive, Silero behind it as fast as the CPU allows (on a loaded box seconds behind), so
the VAD's verdict on a loud sound is awaited in the audio it has run over, not in wall time.

The session's stream also hands every event to whoever called `subscribe()`: the streaming
recogniser follows the session's VAD instead of running a second Silero and noise gate on
the same frames (one VAD per conversation).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import utils, vad

from arc_voice import metrics
from arc_voice.noise_floor import GateConfig, NoiseGate

AgentSpeaking = Callable[[], bool]
SpeechDetected = Callable[[float], None]


@dataclass(frozen=True)
class LoudSound:
    """A sound over the agent loud enough to pause it."""

    at: float  # monotonic time the gate heard it
    audio_s: float  # where in the stream's audio: seconds the gate had passed on by then
    stream: GatedVADStream

    async def judged(self, after_s: float, *, at_most_s: float) -> bool:
        """Return once the VAD has run over `after_s` of audio past the sound, so that had it
        been speech, the VAD would have confirmed it by now: True; False when `at_most_s` of
        wall time passed first (a stream that ended, a VAD that stalled)."""
        return await self.stream.heard_through(self.audio_s + after_s, at_most_s=at_most_s)


LoudHeard = Callable[[LoudSound], None]


class GatedVAD(vad.VAD):
    def __init__(
        self,
        inner: vad.VAD,
        gate: GateConfig,
        *,
        agent_speaking: AgentSpeaking = lambda: False,
        min_speech_s: float = 0.12,
        pause_on_loud_s: float = 0.0,
    ) -> None:
        super().__init__(capabilities=inner.capabilities)
        self._inner = inner
        self._gate = gate
        self.agent_speaking = agent_speaking
        self.min_speech_s = min_speech_s
        self.pause_on_loud_s = pause_on_loud_s
        self.listeners: list[SpeechDetected] = []
        self.loud_listeners: list[LoudHeard] = []
        self._subscribers: set[utils.aio.Chan[vad.VADEvent]] = set()

    @property
    def model(self) -> str:
        return f"gated-{self._inner.model}"

    @property
    def min_silence_duration(self) -> float | None:
        """The inner VAD's, so the framework's own check of it against the end-of-turn
        model's needs (it wants at least 0.25 s) sees through the gate."""
        value = getattr(self._inner, "min_silence_duration", None)
        if value is None:
            opts = getattr(self._inner, "_opts", None)
            value = getattr(opts, "min_silence_duration", None)
        return float(value) if isinstance(value, int | float) else None

    @property
    def provider(self) -> str:
        return self._inner.provider

    def stream(self) -> GatedVADStream:
        return GatedVADStream(self, self._inner.stream(), NoiseGate(self._gate))

    def subscribe(self) -> utils.aio.Chan[vad.VADEvent]:
        """A channel that receives every event of this VAD's streams from now on, until
        `unsubscribe`. Only one stream should run while anyone subscribes (the session's):
        two would interleave their events."""
        channel: utils.aio.Chan[vad.VADEvent] = utils.aio.Chan()
        self._subscribers.add(channel)
        return channel

    def unsubscribe(self, channel: utils.aio.Chan[vad.VADEvent]) -> None:
        self._subscribers.discard(channel)
        channel.close()

    def _publish(self, event: vad.VADEvent) -> None:
        for channel in list(self._subscribers):
            with contextlib.suppress(utils.aio.ChanClosed):
                channel.send_nowait(event)

    def _detected(self, at: float) -> None:
        for listener in list(self.listeners):
            listener(at)

    def _loud(self, sound: LoudSound) -> None:
        for listener in list(self.loud_listeners):
            listener(sound)


class GatedVADStream(vad.VADStream):
    def __init__(self, owner: GatedVAD, inner: vad.VADStream, gate: NoiseGate) -> None:
        self._owner = owner
        self._inner = inner
        self.gate = gate
        self._loud_s = 0.0  # consecutive loud audio over the agent
        self._loud_reported = False
        self.pushed_s = 0.0  # audio handed to Silero
        # Audio Silero has run inference over. A flush (LiveKit does one only with STT turn
        # detection, which Arc does not use) drops a partial window, up to 32 ms behind.
        self.heard_s = 0.0
        self._heard_more = asyncio.Event()
        # From the VAD's confirmation of a stretch of speech to its end: a loud sound over
        # the agent meanwhile is that speech, and no second confirmation will come for it.
        self.hearing_speech = False
        super().__init__(owner)

    async def _main_task(self) -> None:
        forward = asyncio.create_task(self._forward(), name="gated_vad.forward")
        try:
            await self._relay()
        finally:
            await utils.aio.cancel_and_wait(forward)
            await self._inner.aclose()

    async def _forward(self) -> None:
        async for item in self._input_ch:
            if isinstance(item, vad.VADStream._FlushSentinel):
                self._inner.flush()
                continue
            self._inner.push_frame(self._gated(item))
        self._inner.end_input()

    def _gated(self, frame: rtc.AudioFrame) -> rtc.AudioFrame:
        duration = frame.samples_per_channel / frame.sample_rate
        self.pushed_s += duration
        speaking = self._owner.agent_speaking()
        passes = self.gate.process(frame.data, duration, agent_speaking=speaking)
        self._watch_loudness(duration, speaking=speaking)
        if passes:
            return frame
        metrics.NOISE_GATE_FRAMES_GATED.inc()
        return rtc.AudioFrame.create(
            frame.sample_rate, frame.num_channels, frame.samples_per_channel
        )

    def _watch_loudness(self, duration: float, *, speaking: bool) -> None:
        if not self.gate.loud or not speaking:
            self._loud_s = 0.0
            if not self.gate.open:
                self._loud_reported = False  # the sound is over: the next one may pause again
            return
        self._loud_s += duration
        wanted = self._owner.pause_on_loud_s
        if wanted > 0 and not self._loud_reported and self._loud_s >= wanted:
            self._loud_reported = True
            self._owner._loud(LoudSound(time.monotonic(), self.pushed_s, self))

    async def heard_through(self, audio_s: float, *, at_most_s: float) -> bool:
        """Wait until Silero has run over the stream's audio up to `audio_s`; False if
        `at_most_s` pass first."""
        deadline = time.monotonic() + at_most_s
        while self.heard_s < audio_s:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._heard_more.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._heard_more.wait(), timeout=left)
        return True

    async def _relay(self) -> None:
        async for event in self._inner:
            if event.type == vad.VADEventType.INFERENCE_DONE:
                self.heard_s += sum(f.samples_per_channel / f.sample_rate for f in event.frames)
                self._heard_more.set()
            if (
                event.type == vad.VADEventType.START_OF_SPEECH
                or event.type == vad.VADEventType.END_OF_SPEECH
            ):
                self.hearing_speech = False
            elif (
                not self.hearing_speech
                and event.speaking
                and event.speech_duration >= self._owner.min_speech_s
            ):
                self.hearing_speech = True
                self._owner._detected(time.monotonic())
            # Subscribers first, so that the recogniser's task wakes before the session's:
            # the session's turn check asks it for the words of the speech just ended.
            self._owner._publish(event)
            self._event_ch.send_nowait(event)

"""`GatedVAD`: Silero VAD behind the adaptive noise gate.

Frames the gate holds back reach Silero as silence, so a fan or keyboard never starts a
turn or interrupts the agent, and the bar is higher while the agent speaks. Every confirmed
speech onset (speech lasting `min_speech_s`, the point where the session interrupts the
agent) is reported to `on_speech_detected` with its monotonic time, which is how barge-in
stop times are measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from livekit import rtc
from livekit.agents import utils, vad

from arc_voice.noise_floor import GateConfig, NoiseGate

AgentSpeaking = Callable[[], bool]
SpeechDetected = Callable[[float], None]


class GatedVAD(vad.VAD):
    def __init__(
        self,
        inner: vad.VAD,
        gate: GateConfig,
        *,
        agent_speaking: AgentSpeaking = lambda: False,
        min_speech_s: float = 0.12,
    ) -> None:
        super().__init__(capabilities=inner.capabilities)
        self._inner = inner
        self._gate = gate
        self.agent_speaking = agent_speaking
        self.min_speech_s = min_speech_s
        self.listeners: list[SpeechDetected] = []

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

    def _detected(self, at: float) -> None:
        for listener in list(self.listeners):
            listener(at)


class GatedVADStream(vad.VADStream):
    def __init__(self, owner: GatedVAD, inner: vad.VADStream, gate: NoiseGate) -> None:
        self._owner = owner
        self._inner = inner
        self.gate = gate
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
        if self.gate.process(frame.data, duration, agent_speaking=self._owner.agent_speaking()):
            return frame
        return rtc.AudioFrame.create(
            frame.sample_rate, frame.num_channels, frame.samples_per_channel
        )

    async def _relay(self) -> None:
        confirmed = False
        async for event in self._inner:
            if (
                event.type == vad.VADEventType.START_OF_SPEECH
                or event.type == vad.VADEventType.END_OF_SPEECH
            ):
                confirmed = False
            elif (
                not confirmed
                and event.speaking
                and event.speech_duration >= self._owner.min_speech_s
            ):
                confirmed = True
                self._owner._detected(time.monotonic())
            self._event_ch.send_nowait(event)

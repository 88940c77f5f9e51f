"""`StreamingWhisperSTT`: local Whisper that recognises while the person speaks.

The stream follows the session's VAD events and keeps the growing utterance: with
`shared_vad` it reads the events of the session's own `GatedVAD` stream (one Silero per
conversation); without it, it runs a stream of the VAD itself (as LiveKit's `StreamAdapter`
does), which is how it works outside a session. While the person speaks it re-recognises
the utterance after every `interim_interval_s` of new speech and emits INTERIM_TRANSCRIPT.
When the VAD first hears silence after speech it starts a *speculative final* on the
utterance so far; if no speech follows before the VAD's END_OF_SPEECH, that result is the
FINAL_TRANSCRIPT, so the words are ready at (or very soon after) the end of speech instead
of one decode later. Otherwise the final is decoded from the VAD's whole utterance.

All decodes run on the engine's threads. A new interim waits for the stream's running
decode to end (and then takes the newest audio); the speculative final does not wait: it
starts at the first silent window beside an interim still running (on the engine's other
worker), whose older words then go unreported. Stale work that has not started is
cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal

from arc_common.logging import said
from livekit import rtc
from livekit.agents import APIConnectOptions, stt, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.vad import VAD, VADEvent, VADEventType, VADStream

from arc_voice.backchannel import is_backchannel
from arc_voice.plugins.gated_vad import GatedVAD
from arc_voice.plugins.stt import Recognition, WhisperEngine, WhisperSTT, speech_data
from arc_voice.whisper_window import FULL_WINDOW_S

log = logging.getLogger(__name__)

# Silero keeps "speaking" while its smoothed speech probability stays over its deactivation
# threshold (activation 0.5 - 0.15 with the defaults the worker loads it with); a window at
# or under it is the silence that may end the utterance.
SILERO_SILENCE_PROBABILITY = 0.35

DecodePurpose = Literal["interim", "speculative", "final"]


@dataclass(frozen=True)
class FinalTiming:
    """How one final transcript came about. Times are `time.monotonic()`."""

    speech_ended_at: float
    ready_at: float
    recognition: Recognition
    speculative: bool
    interims: int
    # For a speculative final: from the first silent window to the start of its decode
    # (0 unless something held it back), and how many running interims it replaced.
    decode_waited_s: float | None = None
    superseded: int = 0

    @property
    def after_speech_end_s(self) -> float:
        """How long after the VAD's end of speech the final transcript was ready."""
        return max(0.0, self.ready_at - self.speech_ended_at)


@dataclass
class _Decode:
    purpose: DecodePurpose
    utterance: int
    future: Future[Recognition]
    waiter: asyncio.Future[Recognition]
    submitted_at: float
    superseded: bool = False  # a newer decode of the same utterance replaced it


@dataclass
class _Utterance:
    number: int
    request_id: str
    frames: list[rtc.AudioFrame]
    samples: int
    sample_rate: int
    interim_mark: int
    in_silence: bool = False
    silent_at: float = 0.0  # time.monotonic() of the first silent window of this silence
    superseded: int = 0
    speculative: _Decode | None = None
    final: _Decode | None = None  # the decode whose words are the final, once speech ended
    interims: int = 0
    ended: bool = False
    over_agent: bool = False  # it began while the agent was speaking

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate if self.sample_rate else 0.0


class StreamingWhisperSTT(WhisperSTT):
    """Streaming, interim-reporting STT over a shared `WhisperEngine` and the session's VAD."""

    def __init__(
        self,
        engine: WhisperEngine,
        vad: VAD,
        *,
        interim_interval_s: float = 0.3,
        speculative_final: bool = True,
        silence_probability: float = SILERO_SILENCE_PROBABILITY,
        shared_vad: bool = False,
    ) -> None:
        super().__init__(engine, streaming=True)
        if interim_interval_s < 0:
            raise ValueError("interim_interval_s cannot be negative")
        if shared_vad and not isinstance(vad, GatedVAD):
            raise ValueError("only a GatedVAD shares its session stream's events")
        self.vad = vad
        self.shared_vad = shared_vad
        self.interim_interval_s = interim_interval_s
        self.speculative_final = speculative_final
        self.silence_probability = silence_probability
        # Every final of every stream of this recogniser, newest last.
        self.finals: deque[FinalTiming] = deque(maxlen=256)
        self._streams: weakref.WeakSet[WhisperRecognizeStream] = weakref.WeakSet()

    def pending_words(self) -> asyncio.Future[Recognition] | None:
        """The decode of the speech that just fell silent, whose words are (or, if the person
        goes on, were about to be) its final transcript; None while nobody is silent after
        speech or no such decode has started. The end-of-turn rule waits on it so that it
        judges the words the person ended on, not the transcript of an earlier pause."""
        for stream in list(self._streams):
            if (waiter := stream.pending_words()) is not None:
                return waiter
        return None

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> WhisperRecognizeStream:
        stream = WhisperRecognizeStream(self, conn_options=conn_options)
        self._streams.add(stream)
        return stream


class WhisperRecognizeStream(stt.RecognizeStream):
    def __init__(self, owner: StreamingWhisperSTT, *, conn_options: APIConnectOptions) -> None:
        # Decodes are local: a failure is a bug or a broken model, not worth a retry.
        super().__init__(
            stt=owner, conn_options=APIConnectOptions(max_retry=0, timeout=conn_options.timeout)
        )
        self._owner = owner
        self._engine = owner.engine
        self._numbers = itertools.count(1)
        self._utterance: _Utterance | None = None
        self._busy: _Decode | None = None

    def pending_words(self) -> asyncio.Future[Recognition] | None:
        utterance = self._utterance
        if utterance is None:
            return None
        decode = utterance.final if utterance.ended else None
        if decode is None and utterance.in_silence:
            decode = utterance.speculative
        return None if decode is None else decode.waiter

    async def _run(self) -> None:
        vad = self._owner.vad
        if self._owner.shared_vad and isinstance(vad, GatedVAD):
            events = vad.subscribe()
            try:
                await self._follow(events, own=None)
            finally:
                vad.unsubscribe(events)
        else:
            vad_stream = vad.stream()
            try:
                await self._follow(vad_stream, own=vad_stream)
            finally:
                await vad_stream.aclose()

    async def _follow(self, events: AsyncIterable[VADEvent], *, own: VADStream | None) -> None:
        """Recognise along `events`; the input frames feed `own`, the stream this recogniser
        runs itself (None: the session's VAD hears the same frames already)."""

        async def forward_input() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    # The VAD forgets a half-heard utterance on flush; so does this stream.
                    if own is not None:
                        own.flush()
                    self._abandon()
                    continue
                if own is not None:
                    own.push_frame(item)
            if own is not None:
                own.end_input()

        async def recognise() -> None:
            async for event in events:
                if event.type == VADEventType.START_OF_SPEECH:
                    self._on_start(event)
                elif event.type == VADEventType.INFERENCE_DONE:
                    self._on_inference(event)
                elif event.type == VADEventType.END_OF_SPEECH:
                    await self._on_end(event)

        forward = asyncio.create_task(forward_input(), name="whisper_stream.forward_input")
        recognising = asyncio.create_task(recognise(), name="whisper_stream.recognise")
        try:
            if own is None:
                # The session's VAD outlives this stream: its input ending is the end, and a
                # recognition that fails ends it too.
                done, _ = await asyncio.wait(
                    (forward, recognising), return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()
            else:
                await asyncio.gather(forward, recognising)
        finally:
            await utils.aio.cancel_and_wait(forward, recognising)
            self._abandon()
            self._drop(self._busy)

    # -- VAD events ---------------------------------------------------------------------------

    def _on_start(self, event: VADEvent) -> None:
        self._abandon()
        frame = utils.merge_frames(event.frames) if event.frames else None
        samples = frame.samples_per_channel if frame is not None else 0
        self._utterance = _Utterance(
            number=next(self._numbers),
            request_id=uuid.uuid4().hex,
            frames=[frame] if frame is not None else [],
            samples=samples,
            sample_rate=frame.sample_rate if frame is not None else 0,
            interim_mark=samples,
            over_agent=isinstance(self._owner.vad, GatedVAD) and self._owner.vad.agent_speaking(),
        )
        self._send(stt.SpeechEventType.START_OF_SPEECH, self._utterance)

    def _on_inference(self, event: VADEvent) -> None:
        utterance = self._utterance
        if utterance is None or utterance.ended or not event.speaking:
            return
        for frame in event.frames:
            utterance.frames.append(frame)
            utterance.samples += frame.samples_per_channel
            utterance.sample_rate = utterance.sample_rate or frame.sample_rate
        silent = event.probability <= self._owner.silence_probability
        if silent and not utterance.in_silence:
            utterance.in_silence = True
            utterance.silent_at = time.monotonic()
        elif not silent and utterance.in_silence:
            # The person went on: a decode of the words so far is no longer the final.
            utterance.in_silence = False
            self._drop(utterance.speculative)
            utterance.speculative = None
        self._pump()

    async def _on_end(self, event: VADEvent) -> None:
        utterance = self._utterance
        if utterance is None:
            return
        utterance.ended = True
        ended_at = time.monotonic()
        speech_end_time = time.time() - event.silence_duration - event.inference_duration
        self._send(stt.SpeechEventType.END_OF_SPEECH, utterance, speech_end_time=speech_end_time)

        speculative = utterance.speculative
        if speculative is not None and not speculative.future.cancelled():
            decode = speculative
        else:
            self._drop(self._busy)
            audio = utils.merge_frames(event.frames) if event.frames else None
            if audio is None or audio.samples_per_channel == 0:
                self._utterance = None
                return
            decode = self._submit("final", utterance, [audio])
        utterance.final = decode
        recognition = await decode.waiter
        ready_at = time.monotonic()
        if self._utterance is utterance:
            self._utterance = None
        self._finish(utterance, decode, recognition, ended_at, ready_at, speech_end_time)
        self._pump()

    # -- decodes ------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start the most useful decode: the speculative final as soon as the person falls
        silent, an interim when none of this stream's decodes is in flight."""
        utterance = self._utterance
        if utterance is None or utterance.ended:
            return
        if utterance.samples == 0 or utterance.seconds >= FULL_WINDOW_S:
            return
        if utterance.in_silence:
            if self._owner.speculative_final and utterance.speculative is None:
                if self._supersede(self._busy):
                    utterance.superseded += 1
                # It doubles as an interim if the person goes on.
                utterance.interim_mark = utterance.samples
                utterance.speculative = self._submit(
                    "speculative", utterance, list(utterance.frames)
                )
            return
        if self._busy is not None:
            return
        interval = self._owner.interim_interval_s
        if interval > 0 and utterance.samples - utterance.interim_mark >= (
            interval * utterance.sample_rate
        ):
            utterance.interim_mark = utterance.samples
            self._submit("interim", utterance, list(utterance.frames))

    def _submit(
        self,
        purpose: DecodePurpose,
        utterance: _Utterance,
        frames: list[rtc.AudioFrame],
    ) -> _Decode:
        future = self._engine.submit(frames)
        decode = _Decode(
            purpose=purpose,
            utterance=utterance.number,
            future=future,
            waiter=asyncio.wrap_future(future),
            submitted_at=time.monotonic(),
        )
        self._busy = decode
        decode.waiter.add_done_callback(lambda _: self._done(decode))
        return decode

    def _done(self, decode: _Decode) -> None:
        if self._busy is decode:
            self._busy = None
        utterance = self._utterance
        if decode.waiter.cancelled():
            self._pump()
            return
        if (error := decode.waiter.exception()) is not None:
            if decode.purpose != "final":
                log.warning("interim recognition failed", exc_info=error)
            self._pump()
            return
        recognition = decode.waiter.result()
        fresh = (
            utterance is not None
            and utterance.number == decode.utterance
            and not utterance.ended
            and decode.purpose != "final"
            and not decode.superseded
            and self._owner.interim_interval_s > 0
        )
        if fresh and utterance is not None and recognition.text:
            utterance.interims += 1
            self._engine.record(recognition, "interim")
            # The words up to the first silence, still current: a preflight transcript, on
            # which the session starts its preemptive generation now rather than at the VAD's
            # end of speech (the final that follows carries the same words, so that guess is
            # kept). A backchannel over the agent is no one's turn, so it starts nothing.
            preflight = (
                decode.purpose == "speculative"
                and utterance.speculative is decode
                and not (utterance.over_agent and is_backchannel(recognition.text))
            )
            self._send(
                stt.SpeechEventType.PREFLIGHT_TRANSCRIPT
                if preflight
                else stt.SpeechEventType.INTERIM_TRANSCRIPT,
                utterance,
                alternatives=[speech_data(self._engine, recognition)],
            )
        self._pump()

    def _supersede(self, decode: _Decode | None) -> bool:
        """Give up `decode` for a decode of newer audio that must not wait for it: the
        speculative final, whose words may end the turn. One not started is cancelled; one
        running finishes on its worker (a decode cannot be stopped) while the newer one runs
        on the engine's other, and its words, older, are not reported. True if `decode` was
        running."""
        if decode is None or decode.purpose == "final":
            return False
        decode.superseded = True
        self._drop(decode)
        return decode.future.running()

    def _drop(self, decode: _Decode | None) -> None:
        """Cancel `decode` if it has not started; one already running finishes unused."""
        if decode is not None:
            decode.future.cancel()

    def _abandon(self) -> None:
        """Forget the utterance being heard (no end of speech will come for it). One whose
        end of speech came is left to its final."""
        utterance = self._utterance
        if utterance is None or utterance.ended:
            return
        self._utterance = None
        utterance.ended = True
        self._drop(self._busy)

    def _finish(
        self,
        utterance: _Utterance,
        decode: _Decode,
        recognition: Recognition,
        ended_at: float,
        ready_at: float,
        speech_end_time: float,
    ) -> None:
        speculative = decode.purpose == "speculative"
        timing = FinalTiming(
            speech_ended_at=ended_at,
            ready_at=ready_at,
            recognition=recognition,
            speculative=speculative,
            interims=utterance.interims,
            decode_waited_s=decode.submitted_at - utterance.silent_at if speculative else None,
            superseded=utterance.superseded,
        )
        self._owner.finals.append(timing)
        if utterance.over_agent and is_backchannel(recognition.text):
            # "Mm-hmm" said over the agent means "go on": without a final transcript the
            # session takes the pause it made as a false interruption and resumes.
            if recognition.text:
                log.info("backchannel over the agent, not a turn: %s", said(recognition.text))
        elif recognition.text:
            self._engine.record_final(
                recognition, ready_at=ready_at, waited_s=timing.after_speech_end_s
            )
            self._send(
                stt.SpeechEventType.FINAL_TRANSCRIPT,
                utterance,
                alternatives=[speech_data(self._engine, recognition)],
                speech_end_time=speech_end_time,
            )
        usage = stt.SpeechEvent(
            type=stt.SpeechEventType.RECOGNITION_USAGE,
            request_id=utterance.request_id,
            recognition_usage=stt.RecognitionUsage(audio_duration=utterance.seconds),
        )
        with contextlib.suppress(utils.aio.ChanClosed):
            self._event_ch.send_nowait(usage)

    def _send(
        self,
        kind: stt.SpeechEventType,
        utterance: _Utterance,
        *,
        alternatives: list[stt.SpeechData] | None = None,
        speech_end_time: float | None = None,
    ) -> None:
        event = stt.SpeechEvent(
            type=kind,
            request_id=utterance.request_id,
            alternatives=alternatives or [],
            speech_end_time=speech_end_time,
        )
        with contextlib.suppress(utils.aio.ChanClosed):
            self._event_ch.send_nowait(event)

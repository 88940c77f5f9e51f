"""The models the worker loads once per process and shares between every conversation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from livekit.agents import stt
from livekit.agents.vad import VAD
from livekit.plugins import deepgram, silero

from arc_voice.plugins.stt import WhisperEngine, WhisperOptions, bundled_model_dir
from arc_voice.plugins.whisper_stream import StreamingWhisperSTT
from arc_voice.settings import VoiceOptions
from arc_voice.turn_detection import prewarm as prewarm_turn_detection
from arc_voice.turn_detection import vad_min_silence_s

log = logging.getLogger(__name__)

VAD_SAMPLE_RATE: Literal[16000] = 16000


@dataclass
class VoiceModels:
    vad: VAD
    whisper: WhisperEngine | None

    @classmethod
    def load(cls, options: VoiceOptions) -> VoiceModels:
        """Blocking (model files, ONNX and CTranslate2 sessions): call from an executor."""
        silero_vad = silero.VAD.load(
            min_silence_duration=vad_min_silence_s(options),
            min_speech_duration=0.05,
            prefix_padding_duration=0.3,
            sample_rate=VAD_SAMPLE_RATE,
            force_cpu=True,
        )
        whisper = None
        if options.stt_engine == "whisper":
            whisper = WhisperEngine(
                WhisperOptions(
                    model_dir=options.whisper_model_dir or bundled_model_dir(),
                    beam_size=options.whisper_beam_size,
                    full_window=options.whisper_full_window,
                    workers=options.whisper_workers,
                    cpu_threads=options.whisper_threads,
                )
            )
        prewarm_turn_detection(options)
        log.info("voice models loaded", extra={"stt": options.stt_engine})
        return cls(vad=silero_vad, whisper=whisper)

    def recogniser(
        self,
        options: VoiceOptions,
        session_vad: VAD,
        http: aiohttp.ClientSession | None = None,
        *,
        shared_vad: bool = False,
    ) -> stt.STT[Any]:
        """The STT for one conversation. Whisper streams along the session's VAD (interims
        while the person speaks, the final at the VAD's end of speech): with `shared_vad`
        (a `GatedVAD` the session runs) it reads that stream's events, otherwise it runs a
        stream of `session_vad` itself. Deepgram needs the worker's HTTP session (outside a
        LiveKit job there is no ambient one)."""
        if options.stt_engine == "deepgram":
            if options.deepgram_api_key is None or http is None:
                raise ValueError("Deepgram needs an API key and an HTTP session")
            return deepgram.STT(
                api_key=options.deepgram_api_key.get_secret_value(),
                base_url=options.deepgram_base_url,
                language="en-US",
                http_session=http,
            )
        assert self.whisper is not None
        # An interval of 0 asks for recognition only at the end of speech (the baseline
        # before streaming), so no speculative final either.
        return StreamingWhisperSTT(
            self.whisper,
            session_vad,
            interim_interval_s=options.stt_interim_interval_s,
            speculative_final=options.stt_interim_interval_s > 0,
            shared_vad=shared_vad,
        )

    def close(self) -> None:
        if self.whisper is not None:
            self.whisper.close()

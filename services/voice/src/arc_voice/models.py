"""The models the worker loads once per process and shares between every conversation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from livekit.agents import stt
from livekit.agents.vad import VAD
from livekit.plugins import deepgram, silero

from arc_voice.plugins.stt import WhisperEngine, WhisperOptions, WhisperSTT, bundled_model_dir
from arc_voice.settings import VoiceOptions

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
            min_silence_duration=options.vad_min_silence_s,
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
                )
            )
        log.info("voice models loaded", extra={"stt": options.stt_engine})
        return cls(vad=silero_vad, whisper=whisper)

    def recogniser(
        self,
        options: VoiceOptions,
        session_vad: VAD,
        http: aiohttp.ClientSession | None = None,
    ) -> stt.STT[Any]:
        """The STT for one conversation; Whisper is not streaming, so the VAD cuts utterances.
        Deepgram needs the worker's HTTP session (outside a LiveKit job there is no ambient
        one)."""
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
        return stt.StreamAdapter(stt=WhisperSTT(self.whisper), vad=session_vad)

    def close(self) -> None:
        if self.whisper is not None:
            self.whisper.close()

"""The TTS service's one settings object: `ARC_TTS__*` for its own options, plus the shared
groups of `ServiceSettings` (`ARC_NATS__*`, `ARC_LOG__*`, `ARC_TELEMETRY__*`)."""

from __future__ import annotations

from pathlib import Path

from arc_common.settings import ServiceSettings
from pydantic import BaseModel, Field, model_validator


class TtsOptions(BaseModel):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8082, gt=0, lt=65536)
    default_voice: str = "en_US-joe-medium"
    # Folders holding further Piper voices as `<name>.onnx` + `<name>.onnx.json`.
    voice_dirs: list[Path] = Field(default_factory=list)
    # Voices loaded at start and kept, besides the default (a start-up fails if one is not
    # installed): a worker meant for those voices answers their first request without a load.
    preload_voices: list[str] = Field(default_factory=list)
    # Voices kept in memory at once (the default and preloaded ones count); least recently used
    # go first.
    max_resident_voices: int = Field(default=2, ge=1)
    # A voice unused this long is unloaded (never a pinned voice, never one in use).
    voice_idle_ttl_s: float = Field(default=600.0, gt=0)
    # A voice loaded less than this long ago is not unloaded to make room (the cap may be
    # passed meanwhile): requests alternating over more voices than fit would reload each time.
    min_voice_residency_s: float = Field(default=30.0, ge=0)
    # onnxruntime threads per inference; with `synthesis_workers` inferences at once the two
    # multiply, so on a 2-core box 1 x 2 keeps both cores busy without oversubscribing them.
    # Two threads made even a lone first piece up to 2x slower on a host shared with other
    # work, and faster only on an idle one (docs/tts.md, "First audio").
    intra_op_threads: int = Field(default=1, ge=1)
    synthesis_workers: int = Field(default=2, ge=1)
    # Decode each sentence in slices of frames (arc_tts.split_decoder): first audio after the
    # first slice instead of the whole sentence (65 vs 203 ms for "It's 3:52 AM, UTC.").
    sliced_decoding: bool = True
    # Frames in a sentence's first slice (11.6 ms of audio each at 22050 Hz): its decode is
    # the first audio's wait, and its audio covers the second slice's decode.
    first_slice_frames: int = Field(default=24, ge=8, le=512)
    # Where a voice's split graphs are cached (made once, ~3 s); unset: beside the voice's
    # model when that folder is writable, else ~/.cache/streaming-vits.
    split_cache_dir: Path | None = None
    # Streams served at once by this worker (NATS and HTTP together); more get `busy`.
    max_active_streams: int = Field(default=16, ge=1)
    # A piece of text longer than this is split at clause, then word boundaries, so that no
    # single inference runs long (it bounds wasted work after a cancel and the gap between
    # audio chunks).
    max_piece_chars: int = Field(default=160, ge=20)
    # Frames per audio message: small enough to start playback early, large enough that the
    # per-message cost stays negligible.
    frames_per_chunk: int = Field(default=5, ge=1)
    # Cut a stream's opening near-silence (Piper's 0-70 ms before the first sound), which the
    # listener would wait through before the first word (docs/tts.md, "First audio").
    trim_opening_silence: bool = True
    warmup_text: str = "Warming up."
    # Piper's synthesis scales; unset means the voice's own (from its .onnx.json). Zero noise
    # makes synthesis deterministic (used by tests that check exact lengths).
    length_scale: float | None = Field(default=None, gt=0)
    noise_scale: float | None = Field(default=None, ge=0)
    noise_w_scale: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _pinned_voices_fit(self) -> TtsOptions:
        pinned = {self.default_voice, *self.preload_voices}
        if len(pinned) > self.max_resident_voices:
            raise ValueError(
                f"the default and preloaded voices ({len(pinned)}) exceed "
                f"max_resident_voices ({self.max_resident_voices})"
            )
        return self


class TtsSettings(ServiceSettings):
    service_name: str = "arc-tts"
    tts: TtsOptions = TtsOptions()

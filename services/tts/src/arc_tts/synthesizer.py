"""The plain core: text in, frames of PCM at the requested rate out, as each piece is ready.

Inference runs on the synthesis threads of `InferencePool`; the event loop only awaits it, so
a cancelled stream stops at once (and the pool stops or drops its inference).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

import onnxruntime  # type: ignore[import-untyped]
from arc_common.envelope import tracing_enabled
from arc_common.errors import Busy
from opentelemetry import trace

from arc_tts.framing import Framer
from arc_tts.inference_pool import InferencePool
from arc_tts.metrics import TtsMetrics
from arc_tts.onset import OnsetTrim
from arc_tts.resampling import StreamResampler, to_pcm16
from arc_tts.segmentation import pieces
from arc_tts.settings import TtsOptions
from arc_tts.voices import Sentence, SynthesisScales, Voice, VoiceCatalog, VoiceRegistry

log = logging.getLogger(__name__)
tracer = trace.get_tracer("arc_tts.synthesizer")


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """Already validated against the contract (`TtsRequest.check`)."""

    text: str
    voice: str | None = None
    sample_rate: int = 48000
    frame_ms: int = 20


@dataclass(slots=True)
class PieceTiming:
    synthesis_s: float
    resample_s: float
    native_samples: int


class PieceRender:
    """One piece of text, a slice of audio per call (blocking: each call runs on the pool, so
    slices of other streams that are needed sooner can go between them)."""

    def __init__(self, voice: Voice, text: str, resampler: StreamResampler) -> None:
        self._voice = voice
        self._text = text
        self._resampler = resampler
        self._sentences: deque[list[int]] | None = None
        self._current: Sentence | None = None

    def next(self, run_options: onnxruntime.RunOptions) -> tuple[bytes, PieceTiming] | None:
        """PCM at the target rate for the next slice; None once the piece is done."""
        started = time.perf_counter()
        if self._sentences is None:
            self._sentences = deque(self._voice.phoneme_ids(self._text))
        while self._current is None or self._current.done:
            if not self._sentences:
                return None
            self._current = self._voice.begin(self._sentences.popleft(), run_options)
        audio = self._current.next(run_options)
        mark = time.perf_counter()
        pcm = to_pcm16(self._resampler.process(audio))
        resample_s = time.perf_counter() - mark
        return pcm, PieceTiming(mark - started, resample_s, len(audio))


def render_piece(
    voice: Voice, text: str, resampler: StreamResampler, run_options: onnxruntime.RunOptions
) -> tuple[bytes, PieceTiming]:
    """One whole piece of text to PCM at the target rate (blocking)."""
    render = PieceRender(voice, text, resampler)
    pcm = bytearray()
    total = PieceTiming(0.0, 0.0, 0)
    while (out := render.next(run_options)) is not None:
        pcm += out[0]
        total.synthesis_s += out[1].synthesis_s
        total.resample_s += out[1].resample_s
        total.native_samples += out[1].native_samples
    return bytes(pcm), total


@dataclass(eq=False, repr=False)
class Synthesizer:
    registry: VoiceRegistry
    pool: InferencePool
    options: TtsOptions
    metrics: TtsMetrics
    active: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.metrics.queue_depth.set_function(lambda: self.pool.waiting)
        self.metrics.resident_voices.set_function(lambda: len(self.registry.resident))

    async def admit(self, request: SpeechRequest) -> None:
        """Reject now what `stream` would reject, for entry points that must answer before
        streaming (HTTP status codes)."""
        if self.active >= self.options.max_active_streams:
            raise Busy(self._busy_message())
        if request.voice is not None:
            async with self.registry.lease(request.voice):
                pass

    def _busy_message(self) -> str:
        return f"this worker is serving its maximum of {self.options.max_active_streams} streams"

    async def stream(self, request: SpeechRequest) -> AsyncIterator[bytes]:
        """PCM chunks (s16le mono, whole frames) at `request.sample_rate`, each as soon as the
        piece of text it belongs to is synthesised."""
        if self.active >= self.options.max_active_streams:
            self.metrics.streams.labels("busy").inc()
            raise Busy(self._busy_message())
        self.active += 1
        self.metrics.active_streams.inc()
        outcome = "error"
        started = time.perf_counter()
        # Spans under the caller's (the `tts.request` server span): the wait for the first
        # audio, and one per piece of text synthesised. Not made current: they stay open
        # across this generator's yields, which run in the consumer's context.
        traced = tracing_enabled()
        started_ns = time.time_ns()
        piece_span: trace.Span | None = None
        try:
            async with self.registry.lease(request.voice) as voice:
                loop = asyncio.get_running_loop()
                # pysbd takes ~10 ms per 1000 characters: off the loop, but not behind inference.
                texts = await loop.run_in_executor(
                    None, pieces, request.text, self.options.max_piece_chars
                )
                resampler = StreamResampler(voice.sample_rate, request.sample_rate)
                framer = Framer(
                    request.sample_rate, request.frame_ms, self.options.frames_per_chunk
                )
                trim = self.options.trim_opening_silence
                onset = OnsetTrim(request.sample_rate) if trim else None
                first = True
                # When the listener will need the next piece: stream start + audio sent so far.
                play_clock = time.monotonic()
                for index, text in enumerate(texts):
                    if traced:
                        piece_span = tracer.start_span(
                            "tts.piece", attributes={"arc.piece": index, "arc.chars": len(text)}
                        )
                    render = PieceRender(voice, text, resampler)
                    while True:
                        run_options = onnxruntime.RunOptions()
                        out = await self.pool.run(
                            partial(render.next, run_options), run_options, deadline=play_clock
                        )
                        if out is None:
                            break
                        pcm, timing = out
                        if onset is not None:
                            pcm = onset.push(pcm)
                        play_clock += len(pcm) / 2 / request.sample_rate
                        self._observe(timing, voice.sample_rate)
                        for chunk in framer.push(pcm):
                            if first:
                                self.metrics.first_chunk_seconds.observe(
                                    time.perf_counter() - started
                                )
                                if traced:
                                    tracer.start_span(
                                        "tts.first_audio", start_time=started_ns
                                    ).end()
                                first = False
                            yield chunk
                    if piece_span is not None:
                        piece_span.end()
                        piece_span = None
                if onset is not None:
                    for chunk in framer.push(onset.flush()):
                        yield chunk
                for chunk in framer.flush():
                    yield chunk
            outcome = "completed"
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        finally:
            if piece_span is not None:  # cut off mid-piece (cancelled, failed)
                piece_span.add_event("cancel")
                piece_span.end()
            self.active -= 1
            self.metrics.active_streams.dec()
            self.metrics.streams.labels(outcome).inc()

    def _observe(self, timing: PieceTiming, native_rate: int) -> None:
        audio_s = timing.native_samples / native_rate
        if audio_s > 0:
            self.metrics.real_time_factor.observe(timing.synthesis_s / audio_s)
        self.metrics.audio_seconds.inc(audio_s)
        self.metrics.resample_seconds.inc(timing.resample_s)

    async def warm_up(self) -> None:
        """One short synthesis, so the first real request pays no cold start (onnxruntime
        allocates its arenas and picks its kernels on the first run)."""
        started = time.perf_counter()
        request = SpeechRequest(text=self.options.warmup_text)
        async for _ in self.stream(request):
            pass
        log.info("warm-up synthesis took %.3fs", time.perf_counter() - started)


@contextlib.asynccontextmanager
async def open_synthesizer(options: TtsOptions, metrics: TtsMetrics) -> AsyncIterator[Synthesizer]:
    """The synthesizer with its default (and preloaded) voices loaded and warmed up; closed in
    reverse order."""
    pool = InferencePool(options.synthesis_workers)
    scales = SynthesisScales(options.length_scale, options.noise_scale, options.noise_w_scale)
    registry = VoiceRegistry(
        VoiceCatalog(options.voice_dirs),
        partial(
            Voice.load,
            intra_op_threads=options.intra_op_threads,
            scales=scales,
            sliced=options.sliced_decoding,
            first_slice_frames=options.first_slice_frames,
            split_cache_dir=options.split_cache_dir,
        ),
        default_voice=options.default_voice,
        max_resident=options.max_resident_voices,
        idle_ttl_s=options.voice_idle_ttl_s,
        preload=options.preload_voices,
        min_residency_s=options.min_voice_residency_s,
    )
    try:
        await registry.start()
        try:
            synthesizer = Synthesizer(registry, pool, options, metrics)
            await synthesizer.warm_up()
            yield synthesizer
        finally:
            await registry.close()
    finally:
        await pool.close()

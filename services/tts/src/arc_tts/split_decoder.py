"""Piper (VITS) audio decoded a few hundred milliseconds at a time, so the first audio of a
sentence does not wait for the whole sentence.

A VITS voice is one ONNX graph, but it splits cleanly (`streaming-vits`, MIT): a frontend
(text encoder, durations, alignment, prior sampling; whole-input, where the prosody is
decided) and a decoder (flow + HiFi-GAN) that only sees a finite window of frames. The
frontend runs once per sentence; the decoder then runs over slices of frames with enough
context on each side that the slices join exactly (max difference ~2e-5 on joe-medium,
against a single full decode of the same frames; `tests/unit/tts/test_split_decoder.py`).

Measured here (1 onnxruntime thread, joe-medium): first audio of "It's 3:52 AM, UTC." in
65 ms instead of 203 ms for the whole sentence; the decoder costs ~0.75 ms per frame
(11.6 ms of audio), so each slice is decoded well within the audio already queued
(docs/tts.md, "First audio"). Slices cost the margins' extra decoding, ~10-30% more work
per sentence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime  # type: ignore[import-untyped]
from numpy.typing import NDArray

log = logging.getLogger(__name__)

# Frames of context decoded and thrown away on each side of a slice. streaming-vits'
# calibration finds 34/28 for a medium Piper voice (libritts_r); on joe-medium the slices then
# join a full decode within 2e-5 (its wider default, 48/40, gives the same).
MARGIN_LEFT = 34
MARGIN_RIGHT = 28
# Frames per slice after the first. A slice must be decoded before the audio queued ahead of
# it has played: at ~0.75 ms of work per frame (11.6 ms of audio) the second slice (128 + the
# margins) takes ~145 ms against the first slice's 280 ms of audio, and later slices far
# less than what is queued. Few slices keep the margins' extra work small: a two-second
# answer is two slices, ~60 frames more work than one whole decode.
LATER_SLICES = (128, 512)


@dataclass(frozen=True, slots=True)
class SplitGraphs:
    """A voice's frontend and decoder sessions (the split is cached on disk)."""

    frontend: onnxruntime.InferenceSession
    decoder: onnxruntime.InferenceSession
    frontend_inputs: frozenset[str]
    z_p: str
    mask: str
    hop: int  # audio samples per frame

    @classmethod
    def load(
        cls,
        model: Path,
        *,
        sample_rate: int,
        session_options: onnxruntime.SessionOptions,
        cache_dir: Path | None,
    ) -> SplitGraphs | None:
        """None when the graph cannot be split (a voice not built like Piper's VITS): the
        voice is then rendered whole, sentence by sentence, as before."""
        try:
            from streaming_vits import graph  # type: ignore[import-untyped]

            meta, folder = graph.ensure_split(
                model, sample_rate=sample_rate, cache=cache_dir, verbose=False
            )
            if meta.seam.g is not None:
                raise ValueError("multi-speaker voices are decoded whole")
            providers = ["CPUExecutionProvider"]
            frontend = onnxruntime.InferenceSession(
                str(folder / meta.frontend), sess_options=session_options, providers=providers
            )
            decoder = onnxruntime.InferenceSession(
                str(folder / meta.decoder), sess_options=session_options, providers=providers
            )
        except Exception as exc:  # any failure here falls back to whole sentences
            log.warning("voice %s is decoded whole, not in slices: %s", model.name, exc)
            return None
        return cls(
            frontend=frontend,
            decoder=decoder,
            frontend_inputs=frozenset(meta.frontend_inputs),
            z_p=meta.seam.z_p,
            mask=meta.seam.mask,
            hop=int(meta.hop),
        )

    def begin(
        self,
        phoneme_ids: list[int],
        scales: NDArray[np.float32],
        run_options: onnxruntime.RunOptions,
        *,
        first_slice: int,
    ) -> Slices:
        """Run the frontend over one sentence; its audio then comes out of `Slices.next`."""
        feed = {
            "input": np.array([phoneme_ids], dtype=np.int64),
            "input_lengths": np.array([len(phoneme_ids)], dtype=np.int64),
            "scales": scales,
        }
        out = self.frontend.run(
            None, {k: v for k, v in feed.items() if k in self.frontend_inputs}, run_options
        )
        return Slices(self, np.asarray(out[0]), np.asarray(out[1]), first_slice)


class Slices:
    """One sentence's decoder input, decoded slice by slice (blocking: on the pool)."""

    def __init__(
        self, graphs: SplitGraphs, z_p: NDArray[np.float32], mask: NDArray[np.float32], first: int
    ) -> None:
        self._graphs = graphs
        self._z_p = z_p
        self._mask = mask
        self._sizes = (first, *LATER_SLICES)
        self._next_frame = 0
        self._index = 0

    @property
    def frames(self) -> int:
        return int(self._z_p.shape[2])

    @property
    def done(self) -> bool:
        return self._next_frame >= self.frames

    def next(self, run_options: onnxruntime.RunOptions) -> NDArray[np.float32]:
        """The next slice's audio at the voice's rate (raw decoder output, not normalised)."""
        start = self._next_frame
        size = self._sizes[min(self._index, len(self._sizes) - 1)]
        end = min(start + size, self.frames)
        low, high = max(0, start - MARGIN_LEFT), min(self.frames, end + MARGIN_RIGHT)
        g = self._graphs
        out = g.decoder.run(
            None,
            {g.z_p: self._z_p[:, :, low:high], g.mask: self._mask[:, :, low:high]},
            run_options,
        )
        audio = np.asarray(out[0], dtype=np.float32).reshape(-1)
        skip = (start - low) * g.hop
        self._next_frame = end
        self._index += 1
        sliced: NDArray[np.float32] = audio[skip : skip + (end - start) * g.hop]
        return sliced

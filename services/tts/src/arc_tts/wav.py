"""A WAV header for a stream whose length is not known when it starts."""

from __future__ import annotations

import struct

# 0xFFFFFFFF in both size fields is the usual "length unknown" marker of streamed WAV; players
# and decoders (ffmpeg, sox, browsers) read until the data ends.
_UNKNOWN = 0xFFFFFFFF


def streaming_header(sample_rate: int, channels: int = 1, sample_bytes: int = 2) -> bytes:
    block_align = channels * sample_bytes
    return (
        b"RIFF"
        + struct.pack("<I", _UNKNOWN)
        + b"WAVEfmt "
        + struct.pack(
            "<IHHIIHH",
            16,
            1,  # PCM
            channels,
            sample_rate,
            sample_rate * block_align,
            block_align,
            sample_bytes * 8,
        )
        + b"data"
        + struct.pack("<I", _UNKNOWN)
    )

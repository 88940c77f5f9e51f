"""Cutting streamed text into units worth sending to the TTS service now.

The brain already streams speakable units, so this only has to notice where a unit ends
without waiting for the next one to begin (a general sentence tokenizer holds each sentence
back until it sees the next, which would add a whole brain delta to the first-audio latency).
"""

from __future__ import annotations

import re

from arc_common.wire import TTS_TEXT_MAX

# A unit ends at sentence or clause punctuation followed by a space or the end of the text.
_BOUNDARY = re.compile(r"[.!?;:…](?:[\"')\]]*)(?=\s|$)")
# Long unpunctuated runs are cut at a comma or a space so the TTS can start.
_SOFT_LIMIT = 240


class SpeakableBuffer:
    def __init__(self, *, soft_limit: int = _SOFT_LIMIT, hard_limit: int = TTS_TEXT_MAX) -> None:
        self._text = ""
        self._soft = soft_limit
        self._hard = hard_limit

    def push(self, text: str) -> list[str]:
        """Add text; return the units that are complete."""
        self._text += text
        units: list[str] = []
        while True:
            cut = self._cut_point()
            if cut is None:
                break
            unit, self._text = self._text[:cut], self._text[cut:]
            if unit.strip():
                units.append(unit.strip())
        return units

    def flush(self) -> list[str]:
        """Everything left, as units (the text ended or a segment was closed)."""
        rest, self._text = self._text, ""
        units = []
        while len(rest.strip()) > self._hard:
            cut = _soft_cut(rest, self._hard)
            units.append(rest[:cut].strip())
            rest = rest[cut:]
        if rest.strip():
            units.append(rest.strip())
        return units

    def _cut_point(self) -> int | None:
        match = _BOUNDARY.search(self._text)
        if match is not None and self._text[: match.end()].strip():
            return match.end()
        if len(self._text) > self._soft:
            return _soft_cut(self._text, self._soft)
        return None


def _soft_cut(text: str, limit: int) -> int:
    window = text[:limit]
    for sep in (",", " "):
        at = window.rfind(sep)
        if at > 0:
            return at + 1
    return limit

"""Speakable chunks from streamed text: whole sentences, and a long first sentence split at a
comma so speech can start early.

Sentence boundaries come from pysbd, which knows abbreviations, initials, decimals and
currency ("Dr. Smith paid $3.50." is one sentence). Text arrives in arbitrary pieces (LLM
tokens), so the last segment is held back until more text or the end shows it is complete.
"""

from __future__ import annotations

import re

import pysbd  # type: ignore[import-untyped]
from pysbd.lang.english import English  # type: ignore[import-untyped]

_BOUNDARY_HINT = re.compile(r"[.!?;:\n]")
# A clause break: a comma followed by space (so "1,000" never splits).
_CLAUSE_BREAK = re.compile(r",\s")
_MIN_CLAUSE_WORDS = 4
_ABBREVIATIONS = frozenset(English.Abbreviation.ABBREVIATIONS)
_CLOSERS = ")]}\"'\u201d\u2019"


def _ends_sentence(text: str) -> bool:
    """Whether held-back text certainly ends a sentence, so it can be spoken before the next
    token arrives. Doubtful cases (an abbreviation, an initial, a number that may go on as
    a decimal) wait for more text."""
    tail = text.rstrip().rstrip(_CLOSERS)
    if tail.endswith(("!", "?")):
        return True
    if not tail.endswith(".") or tail.endswith(".."):
        return tail.endswith("...")
    word = tail.split()[-1].rstrip(".").lstrip("([{\"'\u201c\u2018").lower()
    if len(word) <= 1 or "." in word or any(ch.isdigit() for ch in word):
        return False
    return word not in _ABBREVIATIONS


class SpeakableChunker:
    """Feed text pieces in order, take out speakable chunks. Each chunk after the first starts
    with one space, so joining the chunks gives the answer's natural text."""

    def __init__(self, *, first_clause_words: int = 15, language: str = "en") -> None:
        self._segmenter = pysbd.Segmenter(language=language, clean=False, char_span=False)
        self._first_clause_words = first_clause_words
        self._buffer = ""
        self._emitted = 0

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        chunks: list[str] = []
        if _BOUNDARY_HINT.search(text) or "\n" in self._buffer:
            segments = self._segments()
            # The last segment may still grow ("Dr." before " Smith"): keep it.
            for segment in segments[:-1]:
                chunks.extend(self._emit(segment))
            self._buffer = segments[-1] if segments else ""
            if self._buffer and _ends_sentence(self._buffer):
                chunks.extend(self._emit(self._buffer))
                self._buffer = ""
        if self._emitted == 0 and not chunks:
            chunks.extend(self._early_clause())
        return chunks

    def flush(self) -> list[str]:
        """Everything still held, at the end of the answer."""
        chunks: list[str] = []
        for segment in self._segments():
            chunks.extend(self._emit(segment))
        self._buffer = ""
        return chunks

    def _segments(self) -> list[str]:
        if not self._buffer.strip():
            return []
        segments: list[str] = self._segmenter.segment(self._buffer)
        return segments

    def _early_clause(self) -> list[str]:
        """The first sentence is long and still open: speak up to its first clause break."""
        if len(self._buffer.split()) <= self._first_clause_words:
            return []
        for match in _CLAUSE_BREAK.finditer(self._buffer):
            head = self._buffer[: match.start() + 1]
            if len(head.split()) >= _MIN_CLAUSE_WORDS:
                self._buffer = self._buffer[match.end() :]
                return self._emit(head)
        return []

    def _emit(self, segment: str) -> list[str]:
        text = " ".join(segment.split())
        if not text:
            return []
        if self._emitted == 0 and len(text.split()) > self._first_clause_words:
            # A complete but long first sentence: split it at its first clause break too.
            for match in _CLAUSE_BREAK.finditer(text):
                head = text[: match.start() + 1]
                if len(head.split()) >= _MIN_CLAUSE_WORDS:
                    self._emitted += 1
                    return [head, *self._emit(text[match.end() :])]
        chunk = text if self._emitted == 0 else " " + text
        self._emitted += 1
        return [chunk]


def speakable_chunks(text: str, *, first_clause_words: int = 15) -> list[str]:
    """All chunks of a text that is already complete."""
    chunker = SpeakableChunker(first_clause_words=first_clause_words)
    return [*chunker.feed(text), *chunker.flush()]

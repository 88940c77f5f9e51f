"""Text to speakable pieces, ordered for early first audio.

Sentences come from pysbd (rule-based, handles abbreviations and decimals). The first sentence
is cut again at its first clause boundary, so the first inference is as short as the text
allows; any piece longer than the cap is split at clause, then word boundaries, so that no one
inference runs long. Punctuation stays on each piece: Piper shapes the intonation from it.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pysbd  # type: ignore[import-untyped]

# A clause ends at , ; : or a dash, when a space follows ("1,000" and "well-known" stay whole);
# the dash stays with the words before it.
_CLAUSE_BREAK = re.compile(r"(?<=[,;:\u2014\u2013])\s+|(?<=\s-)\s+")


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False, char_span=False)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _segmenter().segment(text) if s.strip()]


def first_clause_split(sentence: str) -> list[str]:
    """`["Well,", "that is odd."]` for "Well, that is odd."; the sentence alone if it has no
    clause boundary with words after it."""
    match = _CLAUSE_BREAK.search(sentence)
    if match is None:
        return [sentence]
    head, tail = sentence[: match.start()].strip(), sentence[match.end() :].strip()
    if not head or not any(ch.isalnum() for ch in tail):
        return [sentence]
    return [head, tail]


def bounded(piece: str, max_chars: int) -> list[str]:
    """The piece cut at clause boundaries, then between words, into parts of at most
    `max_chars` (a single word longer than that stays whole)."""
    if len(piece) <= max_chars:
        return [piece]
    parts: list[str] = []
    for clause in _CLAUSE_BREAK.split(piece):
        units = [clause] if len(clause) <= max_chars else clause.split()
        for unit in units:
            if parts and len(parts[-1]) + 1 + len(unit) <= max_chars:
                parts[-1] = f"{parts[-1]} {unit}"
            else:
                parts.append(unit)
    return [p for p in (part.strip() for part in parts) if p]


def pieces(text: str, max_chars: int) -> list[str]:
    """Every piece of `text` in speaking order; joined with spaces they are the text again
    (up to whitespace)."""
    found = sentences(text)
    if not found:
        return []
    ordered = [*first_clause_split(found[0]), *found[1:]]
    return [part for piece in ordered for part in bounded(piece, max_chars)]

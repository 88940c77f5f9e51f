"""Text to speakable pieces, ordered for early first audio.

Sentences come from pysbd (rule-based, handles abbreviations and decimals). The first sentence
is cut again at its first clause boundary with at least two words on each side, so the first
inference is shorter where the text has a clause to spare; any piece longer than the cap is
split at clause, then word boundaries, so that no one inference runs long. Punctuation stays on
each piece: Piper shapes the intonation from it.

The brain already sends an answer's first piece short (`arc_brain.sentences`): it ends at the
earliest clause boundary with two or more words before it, so that piece never has a boundary
this cut would take, and is never cut again here. The cut matters for text that did not come
piece by piece from the brain (announcements, HTTP clients, a voice worker that joins deltas).
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


# A piece of one word would be said alone, with the intonation of a finished utterance.
_MIN_CLAUSE_WORDS = 2


def sentences(text: str) -> list[str]:
    found: list[str] = []
    for segment in _segmenter().segment(text):
        # pysbd ends a sentence at the "?" of a URL's query ("example.com/a?x=1"); a sentence
        # never ends inside a whitespace-free token.
        if found and not found[-1][-1:].isspace() and not segment[:1].isspace():
            found[-1] += segment
        else:
            found.append(segment)
    return [s.strip() for s in found if s.strip()]


def _words(text: str) -> int:
    return sum(any(ch.isalnum() for ch in token) for token in text.split())


def first_clause_split(sentence: str) -> list[str]:
    """`["Well, you see,", "that is odd."]` for "Well, you see, that is odd."; the sentence
    alone if no clause boundary has two words on each side."""
    for match in _CLAUSE_BREAK.finditer(sentence):
        head, tail = sentence[: match.start()].strip(), sentence[match.end() :].strip()
        if _words(tail) < _MIN_CLAUSE_WORDS:
            break
        if _words(head) >= _MIN_CLAUSE_WORDS:
            return [head, tail]
    return [sentence]


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

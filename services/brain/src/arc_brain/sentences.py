"""Speakable chunks from streamed text: whole sentences, with a short first piece so speech
can start early.

Sentence boundaries come from pysbd, which knows abbreviations, initials, decimals and
currency ("Dr. Smith paid $3.50." is one sentence). Text arrives in arbitrary pieces (LLM
tokens), so the last segment is held back until more text or the end shows it is complete.

The listener waits for the first piece: Piper renders a piece in one inference whose time
grows with its length (docs/tts.md, "First audio"), so the first sentence is cut after a few
words (`first_cut`). The cut keeps the voice's prosody: it falls at a natural boundary when
there is one, never inside a number, a time, a date, an abbreviation, a name or a URL, and
never leaves a one-word piece.
"""

from __future__ import annotations

import re
import unicodedata

import pysbd  # type: ignore[import-untyped]
from pysbd.lang.english import English  # type: ignore[import-untyped]

_BOUNDARY_HINT = re.compile(r"[.!?;:\n]")
_ABBREVIATIONS = frozenset(English.Abbreviation.ABBREVIATIONS)
_CLOSERS = ")]}\"'\u201d\u2019"
_OPENERS = "([{\"'\u201c\u2018"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that open a clause: a cut just before one is as natural as a comma.
_CLAUSE_WORDS = _words(
    """and but or so because which who whom whose when whenever while where whereas if unless
    although though since until then yet"""
)
# Words that bind to what follows (articles, determiners, prepositions, auxiliaries, subject
# pronouns): a piece never ends on one, and a cut just before one falls between phrases.
_FUNCTION_WORDS = _CLAUSE_WORDS | _words(
    """a an the this that these those my your his her its our their some any no every each all
    both of to in on at by for with from into onto about over under after before between
    through during without within against among around near than as like via per is am are was
    were be been being will would shall should can could may might must do does did has have
    had i we he she they not very"""
)
# Titles written without a period bind to the name after them ("Mr Smith").
_TITLES = _words("mr mrs ms dr prof st mt sr jr sir")
_NUMBER_WORDS = _words(
    """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred thousand million billion trillion point half quarter"""
)
_PAUSE_MARKS = (",", ";", ":", "\u2014", "\u2013", "...", "\u2026")
_DASHES = frozenset({"-", "--", "\u2014", "\u2013"})

# A piece of one word would be said alone, with the intonation of a finished utterance.
_MIN_HEAD_AT_PAUSE = 2
_MIN_HEAD = 3
_MIN_TAIL = 2
# Without a natural boundary the first sentence is cut only from this length on: a 5-word
# sentence renders in ~150 ms, and a 3 + 2 cut anywhere costs more prosody than it saves.
_MIN_WORDS_FOR_PLAIN_CUT = 6


def _bare(token: str) -> str:
    return token.strip(_OPENERS + _CLOSERS + ".,;:!?").lower()


def _is_word(token: str) -> bool:
    """Whether Piper says something for the token: letters or digits, or a symbol such as an
    emoji (espeak-ng reads 🎉 as "party popper")."""
    return any(ch.isalnum() or unicodedata.category(ch) == "So" for ch in token)


def _is_numeric(token: str) -> bool:
    return any(ch.isdigit() for ch in token) or _bare(token) in _NUMBER_WORDS


_PAUSE, _PHRASE, _PLAIN = 2, 1, 0


def _boundary(before: str, after: str) -> int | None:
    """What a cut between two tokens falls on: `_PAUSE` (after a pause mark), `_PHRASE`
    (before a clause or function word), `_PLAIN`; None where it would break a unit."""
    if not _is_word(after):
        return None  # a dash or a stray mark stays with the words before it
    if before in _DASHES or before.rstrip(_CLOSERS).endswith(_PAUSE_MARKS):
        return _PAUSE
    if before.rstrip(_CLOSERS).endswith("."):
        return None  # an abbreviation or initial inside a sentence: "Dr. Smith", "Jan. 3"
    if _is_numeric(before) or _is_numeric(after):
        return None  # "$3.50 each", "5 p.m.", "at 10:30", "two thousand", "gate 12"
    if _bare(before) in _FUNCTION_WORDS or _bare(before) in _TITLES:
        return None
    if before[:1].isupper() and after.lstrip(_OPENERS)[:1].isupper():
        return None  # inside a name: "New York", "Le Petit Bistro"
    return _PHRASE if _bare(after) in _FUNCTION_WORDS else _PLAIN


class _Undecided:
    def __repr__(self) -> str:
        return "UNDECIDED"


UNDECIDED = _Undecided()


def first_cut(text: str, max_words: int, *, complete: bool) -> int | _Undecided | None:
    """After how many whitespace tokens the first sentence's first piece ends; None for no cut.

    The piece ends at the earliest natural boundary (after a pause mark with at least two
    words, before a clause or function word with at least three) within `max_words` words;
    without one, at the last place within `max_words` words that breaks no unit, in a
    sentence of at least six words; without that either, at the sentence's first pause mark.
    At least two words always follow the cut.

    `complete=False`: `text` is the start of a sentence that goes on (its last token may be
    cut short); the answer is `UNDECIDED` until later text can no longer change it, so
    streamed text is cut exactly where the finished text would be.
    """
    tokens = text.split()
    whole = len(tokens) if complete or text[-1:].isspace() else len(tokens) - 1
    # A token that is a word stays one as it grows, so counting a partial token is safe.
    words_before = [0]
    for token in tokens:
        words_before.append(words_before[-1] + _is_word(token))
    total = words_before[-1]

    plain: list[int] = []
    window_end = None  # the first cut with more than `max_words` words before it
    for k in range(1, len(tokens) + 1):
        head = words_before[k]
        if head > max_words:
            window_end = k
            break
        if k >= whole:
            break  # the token after this cut is not whole yet
        boundary = _boundary(tokens[k - 1], tokens[k])
        if boundary is None:
            continue
        if boundary != _PLAIN and head >= (_MIN_HEAD_AT_PAUSE if boundary == _PAUSE else _MIN_HEAD):
            if total - head >= _MIN_TAIL:
                return k
            # Later cuts would leave even fewer words after them: only more text can help.
            return None if complete else UNDECIDED
        if head >= _MIN_HEAD:
            plain.append(k)
    if window_end is None and not complete:
        return UNDECIDED
    for k in reversed(plain):
        if total >= _MIN_WORDS_FOR_PLAIN_CUT and total - words_before[k] >= _MIN_TAIL:
            return k
        if not complete:
            return UNDECIDED  # more text may make the last one long enough
    if plain or window_end is None:
        return None
    # Nothing in the first words may be cut ("Dr. Smith paid $3.50 for the coffee, which ..."):
    # a long first sentence still starts sooner when cut at its first pause mark.
    for k in range(window_end, whole):
        if _boundary(tokens[k - 1], tokens[k]) == _PAUSE:
            if total - words_before[k] >= _MIN_TAIL:
                return k
            break
    return None if complete else UNDECIDED


def _ends_sentence(text: str) -> bool:
    """Whether held-back text certainly ends a sentence, so it can be spoken before the next
    token arrives. Doubtful cases (an abbreviation, an initial, a number that may go on as
    a decimal, a URL whose query may follow its "?") wait for more text."""
    tail = text.rstrip().rstrip(_CLOSERS)
    last = tail.split()[-1] if tail else ""
    if "://" in last or last.lower().startswith("www."):
        return False
    if tail.endswith(("!", "?")):
        return True
    if not tail.endswith(".") or tail.endswith(".."):
        return tail.endswith("...")
    word = last.rstrip(".").lstrip(_OPENERS).lower()
    if len(word) <= 1 or "." in word or any(ch.isdigit() for ch in word):
        return False
    return word not in _ABBREVIATIONS


class SpeakableChunker:
    """Feed text pieces in order, take out speakable chunks. Each chunk after the first starts
    with one space, so joining the chunks gives the answer's natural text.

    `first_clause_words`: the most words of the first piece when the first sentence is cut."""

    def __init__(self, *, first_clause_words: int = 5, language: str = "en") -> None:
        self._segmenter = pysbd.Segmenter(language=language, clean=False, char_span=False)
        self._first_clause_words = first_clause_words
        self._buffer = ""
        self._emitted = 0

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        chunks: list[str] = []
        # Until the first chunk the buffer is a few words, read whole each time: a sentence end
        # fed earlier ("It is 3." then " Then we") must not pass for the middle of a sentence.
        probe = self._buffer if self._emitted == 0 else text
        if _BOUNDARY_HINT.search(probe) or "\n" in self._buffer:
            segments = self._segments()
            # The last segment may still grow ("Dr." before " Smith"): keep it.
            for segment in segments[:-1]:
                chunks.extend(self._emit(segment))
            self._buffer = segments[-1] if segments else ""
            if self._buffer and _ends_sentence(self._buffer):
                chunks.extend(self._emit(self._buffer))
                self._buffer = ""
        if self._emitted == 0 and not chunks and self._buffer.strip():
            chunks.extend(self._early_piece())
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
        found: list[str] = self._segmenter.segment(self._buffer)
        # pysbd ends a sentence at the "?" of a URL's query ("example.com/a?x=1"); a sentence
        # never ends inside a whitespace-free token, so such pieces are joined again.
        segments: list[str] = []
        for segment in found:
            if segments and not segments[-1][-1:].isspace() and not segment[:1].isspace():
                segments[-1] += segment
            else:
                segments.append(segment)
        return segments

    def _early_piece(self) -> list[str]:
        """The first sentence is still open: its first piece, once the text so far decides
        where that ends."""
        cut = first_cut(self._buffer, self._first_clause_words, complete=False)
        if not isinstance(cut, int):
            return []
        held = re.match(rf"\s*((?:\S+\s+){{{cut}}})", self._buffer)
        assert held is not None  # `first_cut` counted `cut` whole tokens
        self._buffer = self._buffer[held.end() :]
        self._emitted += 1
        return [" ".join(held.group(1).split())]

    def _emit(self, segment: str) -> list[str]:
        text = " ".join(segment.split())
        if not text:
            return []
        if self._emitted == 0:
            cut = first_cut(text, self._first_clause_words, complete=True)
            if isinstance(cut, int):
                tokens = text.split(" ")
                self._emitted += 1
                return [" ".join(tokens[:cut]), *self._emit(" ".join(tokens[cut:]))]
        chunk = text if self._emitted == 0 else " " + text
        self._emitted += 1
        return [chunk]


def speakable_chunks(text: str, *, first_clause_words: int = 5) -> list[str]:
    """All chunks of a text that is already complete."""
    chunker = SpeakableChunker(first_clause_words=first_clause_words)
    return [*chunker.feed(text), *chunker.flush()]

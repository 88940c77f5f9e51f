"""Speakable chunking: sentence boundaries that respect abbreviations and numbers, and a short
first piece (2-5 words at a natural boundary) that never breaks a unit of speech."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest
from arc_brain.sentences import UNDECIDED, SpeakableChunker, first_cut, speakable_chunks

pytestmark = pytest.mark.unit


def fed(pieces: Iterable[str]) -> list[str]:
    chunker = SpeakableChunker()
    chunks: list[str] = []
    for piece in pieces:
        chunks.extend(chunker.feed(piece))
    return chunks + chunker.flush()


def streamed(text: str, piece: int) -> list[str]:
    return fed(text[i : i + piece] for i in range(0, len(text), piece))


def token_streamed(text: str) -> list[str]:
    """Fed as an LLM streams: words with their leading space, punctuation runs apart."""
    return fed(re.findall(r"\s*(?:\w+|[^\w\s]+)", text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith paid $3.50.", ["Dr. Smith paid $3.50."]),
        ("Dr. Smith paid $3.50. Then he left.", ["Dr. Smith paid $3.50.", " Then he left."]),
        ("Pi is about 3.14159. Mr. Jones agreed!", ["Pi is about 3.14159.", " Mr. Jones agreed!"]),
        ("It costs 1,000 dollars. Really? Yes", ["It costs 1,000 dollars.", " Really?", " Yes"]),
        ("She lives in the U.S. now. OK.", ["She lives in the U.S. now.", " OK."]),
    ],
)
def test_sentence_boundaries(text: str, expected: list[str]) -> None:
    assert speakable_chunks(text) == expected


@pytest.mark.parametrize(
    ("text", "first"),
    [
        # A pause mark after two words or more.
        ("Sure thing, I can help you with that right away.", "Sure thing,"),
        ("Yes, of course, I can do that.", "Yes, of course,"),
        ("Hmm \u2014 let me think about that for a second.", "Hmm \u2014 let me think"),
        # Before a clause word, before a function word.
        ("I will go and buy some bread for dinner tonight.", "I will go"),
        (
            "the quick brown fox jumps over the lazy dog with no punctuation",
            "the quick brown fox jumps",
        ),
        ("The weather in Paris is sunny today and warm.", "The weather in Paris"),
        ("Let me check the weather, okay?", "Let me check"),
        # No natural boundary: the last safe place within five words.
        ("Your table is ready right now.", "Your table is ready"),
        ("Big red trucks roll slowly downhill today", "Big red trucks roll slowly"),
    ],
)
def test_first_piece_is_short_and_ends_at_a_natural_boundary(text: str, first: str) -> None:
    chunks = speakable_chunks(text)
    assert chunks[0] == first
    assert "".join(chunks) == text


@pytest.mark.parametrize(
    ("text", "first"),
    [
        # Abbreviations, titles and names stay with what they name.
        ("Dr. Smith and Mr. Jones are waiting for you downstairs.", "Dr. Smith and Mr. Jones"),
        ("Mrs Smith and Mr Brown are waiting for you downstairs.", "Mrs Smith and Mr Brown"),
        ("Your flight to New York leaves at 7:45 from gate 12.", "Your flight to New York"),
        ("We can meet on Jan. 3 at the main entrance.", "We can meet"),
        # Times, decimals, amounts and spelled-out numbers stay whole.
        ("The meeting starts at 10:30 a.m. in the big room.", "The meeting starts"),
        (
            "See you at 5 p.m. tomorrow at the front desk.",
            "See you at 5 p.m. tomorrow at the front desk.",
        ),
        ("Pi is roughly 3.14159 and that is plenty.", "Pi is roughly 3.14159 and that is plenty."),
        (
            "Dr. Smith paid $3.50 for the coffee and cake.",
            "Dr. Smith paid $3.50 for the coffee and cake.",
        ),
        (
            "It costs two thousand five hundred dollars in total.",
            "It costs two thousand five hundred dollars in total.",
        ),
        # Nothing to cut in the first five words: the first pause mark.
        (
            "Dr. Smith paid $3.50 for the coffee, which was far too much for it.",
            "Dr. Smith paid $3.50 for the coffee,",
        ),
        # A URL is one token, and its "?" does not end the sentence.
        (
            "Visit https://example.com/a?x=1 for all the details. Then call me.",
            "Visit https://example.com/a?x=1 for all the details.",
        ),
    ],
)
def test_first_piece_never_breaks_a_unit(text: str, first: str) -> None:
    chunks = speakable_chunks(text)
    assert chunks[0] == first
    assert "".join(chunks) == text
    assert token_streamed(text) == chunks


def test_emoji_are_words_and_stay_whole() -> None:
    text = "Great news \U0001f389 your table is ready for you now."
    chunks = speakable_chunks(text)
    assert chunks == ["Great news \U0001f389", " your table is ready for you now."]
    assert token_streamed(text) == chunks


@pytest.mark.parametrize(
    "text",
    [
        "Hi there.",
        "Sure, I can do that.",  # 5 words, no cut with two words on each side of a pause
        "Well, that is odd.",  # one word before the comma
        "Thanks so much, Anna.",  # one word after it
        "It is what it is.",
        "Okay",
    ],
)
def test_short_sentences_stay_whole(text: str) -> None:
    assert speakable_chunks(text) == [text]


def test_no_piece_is_a_single_word_and_the_first_has_at_most_five() -> None:
    texts = [
        "Well, hello there, my friend. How are you today?",
        "When you reach the end of the old road past the mill, turn left at the oak tree.",
        "Okay, so here is the plan for tomorrow morning.",
        "The total was 2.5 million, or so they said.",
        "I found three great restaurants near your hotel in the city centre.",
    ]
    for text in texts:
        chunks = speakable_chunks(text)
        assert "".join(chunks) == text
        assert 2 <= len(chunks[0].split()) <= 5, chunks
        assert len(chunks[1].split()) >= 2, chunks


def test_first_clause_words_bounds_the_first_piece() -> None:
    text = "I found three great restaurants near your hotel in the city centre."
    assert speakable_chunks(text)[0] == "I found three great restaurants"
    assert speakable_chunks(text, first_clause_words=3) == [text]  # no safe cut in 3 words
    long = "When you reach the end of the old road past the mill, turn left."
    assert speakable_chunks(long, first_clause_words=12)[0] == "When you reach"


def test_later_sentences_are_not_cut() -> None:
    text = (
        "Sure. When you reach the end of the old road past the mill, turn left at the big oak "
        "tree and keep walking."
    )
    chunks = speakable_chunks(text)
    assert chunks == ["Sure.", text[len("Sure.") :]]


@pytest.mark.parametrize("piece", [1, 3, 7, 50])
def test_streamed_pieces_give_the_same_chunks(piece: int) -> None:
    text = "Dr. Smith paid $3.50. Then he left. The total was 2.5 million, or so they said."
    assert streamed(text, piece) == speakable_chunks(text)
    text = "The total was 2.5 million, or so they said. Then Dr. Smith paid $3.50 and left."
    assert streamed(text, piece) == speakable_chunks(text)


def test_first_piece_is_spoken_as_soon_as_the_text_decides_it() -> None:
    chunker = SpeakableChunker()
    assert chunker.feed("Sure thing,") == []
    assert chunker.feed(" I") == []  # one word after the comma: it may be the last
    assert chunker.feed(" can") == ["Sure thing,"]
    rest = chunker.feed(" help you with that.") + chunker.flush()
    assert rest == [" I can help you with that."]


def test_first_piece_waits_while_a_better_boundary_may_follow() -> None:
    chunker = SpeakableChunker()
    # Up to five words, a comma or a clause word may still come.
    for word in ["Big", " red", " trucks", " roll", " slowly", " downhill"]:
        assert chunker.feed(word) == []
    # "downhill" is whole now: no natural boundary within five words, so the last safe place.
    assert chunker.feed(" today") == ["Big red trucks roll slowly"]
    assert chunker.flush() == [" downhill today"]


def test_first_cut_is_undecided_until_later_text_cannot_change_it() -> None:
    assert first_cut("Sure thing, I", 5, complete=False) is UNDECIDED
    assert first_cut("Sure thing, I", 5, complete=True) is None
    assert first_cut("Sure thing, I c", 5, complete=False) == 2
    assert first_cut("The weather in Paris", 5, complete=False) is UNDECIDED
    # No natural boundary: the last safe place once two words follow it.
    assert first_cut("Big red trucks roll slowly downhill ", 5, complete=False) is UNDECIDED
    assert first_cut("Big red trucks roll slowly downhill t", 5, complete=False) == 5
    # Nothing may be cut in the first five words: a pause mark further on still may come.
    assert first_cut("Dr. Smith paid $3.50 for the coffee ", 5, complete=False) is UNDECIDED
    assert first_cut("Dr. Smith paid $3.50 for the coffee ", 5, complete=True) is None
    assert first_cut("Dr. Smith paid $3.50 for the coffee, which was ", 5, complete=False) == 7


def test_whitespace_only_input_gives_nothing() -> None:
    assert speakable_chunks("   \n ") == []


def test_a_finished_sentence_is_spoken_without_waiting_for_the_next_token() -> None:
    chunker = SpeakableChunker()
    assert chunker.feed("Sure.") == ["Sure."]
    assert chunker.feed(" Dr.") == []  # an abbreviation: the sentence may go on
    assert chunker.feed(" Smith paid $3.") == []  # a number: it may be a decimal
    assert chunker.feed("50 today!") == [" Dr. Smith paid $3.50 today!"]
    assert chunker.flush() == []


def test_a_url_query_does_not_end_a_streamed_sentence() -> None:
    chunker = SpeakableChunker()
    assert chunker.feed("Go to https://example.com/a?") == []
    chunks = chunker.feed("x=1 for all the details.") + chunker.flush()
    assert "".join(chunks) == "Go to https://example.com/a?x=1 for all the details."

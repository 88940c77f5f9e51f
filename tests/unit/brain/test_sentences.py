"""Speakable chunking: sentence boundaries that respect abbreviations and numbers, and an
early clause break for a long first sentence."""

from __future__ import annotations

import pytest
from arc_brain.sentences import SpeakableChunker, speakable_chunks

pytestmark = pytest.mark.unit


def streamed(text: str, piece: int) -> list[str]:
    chunker = SpeakableChunker()
    chunks: list[str] = []
    for i in range(0, len(text), piece):
        chunks.extend(chunker.feed(text[i : i + piece]))
    return chunks + chunker.flush()


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


def test_long_first_sentence_splits_at_a_comma_and_later_ones_do_not() -> None:
    text = (
        "When you reach the end of the old road past the mill, turn left at the big oak tree "
        "and keep walking. Later on, after the bridge, you will see a house with a red door "
        "and a garden full of roses and tulips."
    )
    chunks = speakable_chunks(text)
    assert chunks[0] == "When you reach the end of the old road past the mill,"
    assert chunks[1] == " turn left at the big oak tree and keep walking."
    assert chunks[2].startswith(" Later on, after the bridge,") and len(chunks) == 3
    assert "".join(chunks) == text


def test_short_first_sentence_is_not_split() -> None:
    assert speakable_chunks("Yes, of course, I can do that.") == ["Yes, of course, I can do that."]


@pytest.mark.parametrize("piece", [1, 3, 7, 50])
def test_streamed_pieces_give_the_same_sentences(piece: int) -> None:
    text = "Dr. Smith paid $3.50. Then he left. The total was 2.5 million, or so they said."
    assert streamed(text, piece) == speakable_chunks(text)


def test_long_first_sentence_is_spoken_before_it_ends() -> None:
    chunker = SpeakableChunker(first_clause_words=15)
    words = "The weather in the northern part of the country, as the forecast said, "
    assert chunker.feed(words) == []  # 13 words: not yet long
    early = chunker.feed("will be cold and wet ")
    assert early == ["The weather in the northern part of the country,"]
    rest = chunker.feed("tomorrow.") + chunker.flush()
    assert rest == [" as the forecast said, will be cold and wet tomorrow."]


def test_whitespace_only_input_gives_nothing() -> None:
    assert speakable_chunks("   \n ") == []


def test_a_finished_sentence_is_spoken_without_waiting_for_the_next_token() -> None:
    chunker = SpeakableChunker()
    assert chunker.feed("Sure.") == ["Sure."]
    assert chunker.feed(" Dr.") == []  # an abbreviation: the sentence may go on
    assert chunker.feed(" Smith paid $3.") == []  # a number: it may be a decimal
    assert chunker.feed("50 today!") == [" Dr. Smith paid $3.50 today!"]
    assert chunker.flush() == []

"""Text to pieces: sentences, the first clause first (never a one-word piece), nothing longer
than the cap."""

from __future__ import annotations

import pytest
from arc_tts.segmentation import bounded, first_clause_split, pieces, sentences

pytestmark = pytest.mark.unit


def test_sentences_respect_abbreviations_and_decimals() -> None:
    text = "Dr. Smith paid 3.50 dollars. Was it worth it? Yes!"
    assert sentences(text) == ["Dr. Smith paid 3.50 dollars.", "Was it worth it?", "Yes!"]


def test_sentences_are_not_cut_inside_a_url() -> None:
    text = "Visit https://example.com/a?x=1 for details. Then call us."
    assert sentences(text) == ["Visit https://example.com/a?x=1 for details.", "Then call us."]


def test_first_sentence_is_cut_at_its_first_clause_of_two_words_or_more() -> None:
    assert pieces("Well, hello there, my friend. How are you?", 160) == [
        "Well, hello there,",
        "my friend.",
        "How are you?",
    ]


@pytest.mark.parametrize(
    "piece",
    # First pieces as the brain sends them: never cut again.
    ["Sure thing,", "Yes, of course,", "Well, hello there,", "Your table is ready", "Hmm, okay."],
)
def test_a_short_first_piece_from_the_brain_stays_whole(piece: str) -> None:
    assert pieces(piece, 160) == [piece]


def test_later_sentences_stay_whole_when_short() -> None:
    assert pieces("Hi. Yes, I can, of course.", 160) == ["Hi.", "Yes, I can, of course."]


@pytest.mark.parametrize(
    "sentence",
    [
        "No clause here.",
        "It costs 1,000 dollars.",
        "A well-known fact.",
        "Trailing comma,",
        "Well, that is odd.",
        "That is odd, Sir.",
    ],
)
def test_no_split_without_a_real_clause_boundary(sentence: str) -> None:
    assert first_clause_split(sentence) == [sentence]


def test_dash_and_semicolon_are_clause_boundaries() -> None:
    assert first_clause_split("Wait a bit \u2014 stop now.") == ["Wait a bit \u2014", "stop now."]
    assert first_clause_split("One thing; two things.") == ["One thing;", "two things."]
    assert first_clause_split("Wait \u2014 stop.") == ["Wait \u2014 stop."]


def test_long_pieces_split_at_clauses_then_words() -> None:
    clauses = ", ".join(f"clause number {i}" for i in range(20)) + "."
    parts = bounded(clauses, 60)
    assert all(len(p) <= 60 for p in parts)
    assert " ".join(parts).split() == clauses.split()
    words = "word " * 100
    parts = bounded(words.strip(), 50)
    assert all(len(p) <= 50 for p in parts) and " ".join(parts).split() == words.split()


def test_pieces_keep_every_word_in_order() -> None:
    text = (
        "First, the overview. Then a very long sentence that goes on and on, with clauses, "
        "and more clauses; and then even more words until it passes the limit we set for "
        "one piece of text. Done."
    )
    parts = pieces(text, 60)
    assert " ".join(parts).split() == text.split()
    assert all(len(p) <= 60 for p in parts)
    assert parts[0] == "First, the overview."


def test_blank_text_has_no_pieces() -> None:
    assert pieces("   ", 100) == []

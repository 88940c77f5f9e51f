import pytest
from arc_voice.speakable import within_limit

pytestmark = pytest.mark.unit


def test_a_unit_within_the_limit_goes_as_it_is() -> None:
    assert within_limit("Your table is") == ["Your table is"]
    assert within_limit("  It costs 3.50 today; then more. ") == ["It costs 3.50 today; then more."]
    assert within_limit("   ") == []


def test_text_longer_than_the_tts_limit_is_cut_at_a_comma_or_space() -> None:
    pieces = within_limit("word " * 40, limit=50)
    assert len(pieces) == 4
    assert all(0 < len(p) <= 50 for p in pieces)
    assert " ".join(pieces).split() == ["word"] * 40
    assert within_limit("one two three, four five six", limit=16) == [
        "one two three,",
        "four five six",
    ]


def test_text_without_a_space_is_cut_at_the_limit() -> None:
    assert within_limit("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]

import pytest
from arc_voice.speakable import SpeakableBuffer

pytestmark = pytest.mark.unit


def test_a_unit_is_released_as_soon_as_it_ends() -> None:
    buffer = SpeakableBuffer()
    assert buffer.push("Hello there") == []
    assert buffer.push(". How are") == ["Hello there."]
    assert buffer.push(" you?") == ["How are you?"]
    assert buffer.flush() == []


def test_clause_punctuation_ends_a_unit_but_decimals_do_not() -> None:
    buffer = SpeakableBuffer()
    assert buffer.push("It costs 3.50 today; ") == ["It costs 3.50 today;"]
    assert buffer.push("then more") == []
    assert buffer.flush() == ["then more"]


def test_long_unpunctuated_text_is_cut_at_a_comma_or_space() -> None:
    buffer = SpeakableBuffer(soft_limit=20)
    units = buffer.push("one two three, four five six seven eight")
    assert units == ["one two three,", "four five six"]
    assert all(len(u) <= 20 for u in units)


def test_flush_splits_text_longer_than_the_tts_limit() -> None:
    buffer = SpeakableBuffer(soft_limit=10_000, hard_limit=50)
    buffer.push("word " * 40)
    units = buffer.flush()
    assert len(units) == 4
    assert all(0 < len(u) <= 50 for u in units)
    assert " ".join(units).split() == ["word"] * 40

"""Short-window Whisper's pure parts: window lengths, the token ceiling, loop cutting."""

from __future__ import annotations

import pytest
from arc_voice.whisper_window import cut_repetition, has_words, max_new_tokens, window_frames

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("duration_s", "step_s", "tail_s", "frames"),
    [
        (0.0, 1.0, 0.0, 100),  # never an empty window
        (0.2, 1.0, 0.0, 100),
        (1.0, 1.0, 0.0, 100),  # exactly one step stays one step
        (1.01, 1.0, 0.0, 200),
        (2.09, 1.0, 1.0, 400),  # audio plus a second of padding, rounded up
        (2.0, 1.0, 1.0, 300),
        (1.3, 0.5, 0.5, 200),
        (0.7, 0.25, 0.0, 76),  # whole steps of 25 frames, then even for the encoder's stride
        (29.5, 1.0, 1.0, 3000),  # never past Whisper's 30 s
        (45.0, 2.0, 0.0, 3000),
    ],
)
def test_window_is_the_audio_plus_tail_in_whole_steps(
    duration_s: float, step_s: float, tail_s: float, frames: int
) -> None:
    assert window_frames(duration_s, step_s=step_s, tail_s=tail_s) == frames


def test_window_lengths_repeat() -> None:
    lengths = {window_frames(d / 100, step_s=1.0, tail_s=1.0) for d in range(50, 500)}
    assert lengths == {200, 300, 400, 500, 600}


def test_window_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        window_frames(1.0, step_s=0.0, tail_s=0.0)
    with pytest.raises(ValueError):
        window_frames(-1.0, step_s=1.0, tail_s=0.0)


def test_token_ceiling_grows_with_the_audio() -> None:
    assert max_new_tokens(0.3) == 16
    assert max_new_tokens(2.0) == 24
    assert max_new_tokens(10.0) == 88
    # Fast speech: 20 words with numbers in 4 s is about 30 tokens.
    assert max_new_tokens(4.0) >= 30


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "What time is it? What time is it? What time is it? What",
            "What time is it?",
        ),
        (
            "Could you please stop for a moment? Could you please stop for",
            "Could you please stop for a moment?",
        ),
        ("Hello Hello Hello Hello Hello Hello", "Hello"),
        ("Stop! Stop! Stop! Stop!", "Stop!"),
        # case and punctuation do not hide a loop
        ("How do I make tea? how do i", "How do I make tea?"),
        ("thank you thank you", "thank you"),
        # a loop of two words back to the start is enough; one word is not
        ("Turn it down a bit. Turn it", "Turn it down a bit."),
        ("Turn it down a bit. Turn", "Turn it down a bit. Turn"),
    ],
)
def test_loops_back_to_the_start_are_cut(text: str, kept: str) -> None:
    assert cut_repetition(text) == kept


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello!",
        "bye bye",
        "very very good",
        "no, no, I said no",
        "Is it going to rain, is it going to snow?",
        "What is fifteen times twelve?",
        "the cat and the dog and the bird",
        # repeats that do not go back to the start are speech here
        "I said it again and again and again",
    ],
)
def test_speech_is_left_alone(text: str) -> None:
    assert cut_repetition(text) == text


def test_punctuation_alone_is_not_words() -> None:
    assert not has_words("")
    assert not has_words(" . ")
    assert not has_words("...!?")
    assert has_words("I")
    assert has_words("7")


def test_a_loop_cut_short_inside_its_last_word_is_cut() -> None:
    text = "Remember that my sister's birthday is on the third of March. Remember that my sister"
    assert cut_repetition(text) == "Remember that my sister's birthday is on the third of March."
    assert cut_repetition("Where are my keys? Where are my k") == "Where are my keys?"
    # but a different last word is not a loop
    assert cut_repetition("Call me now. Call me later") == "Call me now. Call me later"

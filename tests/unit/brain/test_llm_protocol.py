"""The OpenAI streaming protocol details that need no server: chunk content, status codes,
the prompt (an error event inside the stream is tested against the protocol double)."""

from __future__ import annotations

import pytest
from arc_brain.llm import Spoken, _content, _status_error, build_messages
from openai.types.chat import ChatCompletionChunk

pytestmark = pytest.mark.unit


def _chunk(delta: dict[str, str]) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
    )


def test_content_of_chunks() -> None:
    assert _content(_chunk({"content": "Hi"})) == "Hi"
    assert _content(_chunk({"role": "assistant"})) is None
    assert _content(_chunk({"content": ""})) is None


# docs/brain.md, "LLM providers": retries only for retryable failures (HTTP 429/5xx,
# timeouts); HTTP 404 is `unsupported`, other 4xx `bad_request`, 401/403 `internal` (not
# retryable). The codes are the contract's error codes, written out here.
@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "busy", True),
        (500, "internal", True),
        (502, "internal", True),
        (503, "internal", True),
        (504, "timeout", True),
        (408, "timeout", True),
        (404, "unsupported", False),
        (400, "bad_request", False),
        (409, "bad_request", False),
        (422, "bad_request", False),
        (401, "internal", False),
        (403, "internal", False),
    ],
)
def test_status_errors(status: int, code: str, retryable: bool) -> None:
    error = _status_error(status, "body")
    assert (error.code, error.retryable) == (code, retryable)
    assert str(status) in error.message and "body" in error.message


def test_prompt_holds_memories_and_history() -> None:
    messages = build_messages(
        "Be brief.",
        memories=["my car is blue"],
        history=[("hello", "Hi!"), ("how are you?", "")],
        text="what colour is my car?",
    )
    assert messages[0] == {"role": "system", "content": "Be brief."}
    # Memories after the history: the prefix before them is the previous turn's prompt.
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user", "system", "user"]
    assert "- my car is blue" in messages[-2]["content"]
    assert messages[-1]["content"] == "what colour is my car?"


def test_the_prompt_budget_drops_the_oldest_history_then_cuts_the_turn() -> None:
    history = [(f"question {i} " + "x" * 80, f"answer {i} " + "y" * 80) for i in range(10)]
    messages = build_messages(
        "Be brief.", memories=[], history=history, text="the turn", max_chars=600
    )
    contents = [m["content"] for m in messages]
    assert contents[-1] == "the turn"
    assert any(c.startswith("question 9 ") for c in contents)
    assert not any(c.startswith("question 0 ") for c in contents)
    assert sum(len(c) for c in contents) <= 600
    long = build_messages("Be brief.", memories=[], history=[], text="z" * 4000, max_chars=600)
    assert long[-1]["content"] == "z" * 591  # 600 less the 9 characters of "Be brief."


@pytest.mark.parametrize(
    ("pieces", "spoken"),
    [
        (["Hello", " **world**", "!"], "Hello world!"),
        (["Sure:\n", "1. ", "one", "\n- two 😀"], "Sure: one two "),
        (["It costs 3", ".50 dollars."], "It costs 3.50 dollars."),
        (["In 2024", " we went"], "In 2024 we went"),
        (["- first", "\n\n2) second"], "first second"),
        (
            ["# Title\n", "Text with `code` and [a link](http://x)."],
            "Title Text with code and a link.",
        ),
    ],
)
def test_spoken_text_drops_markup_lists_and_emoji(pieces: list[str], spoken: str) -> None:
    speaker = Spoken()
    assert "".join(speaker.feed(p) for p in pieces) + speaker.flush() == spoken


def _speak(speaker: Spoken, pieces: list[str]) -> str:
    """What the speaker lets through of the streamed pieces, stopping the model once done."""
    said = ""
    for piece in pieces:
        said += speaker.feed(piece)
        if speaker.done:
            break
    return said + speaker.flush()


@pytest.mark.parametrize(
    ("pieces", "limit", "spoken"),
    [
        (["One. Two", ". Three. Four."], 2, "One. Two."),
        (["It costs 3", ".50 dollars. Then", " more."], 1, "It costs 3.50 dollars."),
        (["Really?", " Yes! No."], 2, "Really? Yes!"),
        (["No end in sight"], 1, "No end in sight"),
        (["Short one."], 3, "Short one."),
    ],
)
def test_spoken_text_ends_after_the_sentence_limit(
    pieces: list[str], limit: int, spoken: str
) -> None:
    assert _speak(Spoken(limit), pieces) == spoken


@pytest.mark.parametrize(
    ("pieces", "spoken"),
    [
        # The local model's loop from the voice_llm benchmark, as its tokens streamed: the
        # second copy began in a piece already said, so nothing more is said once it ends.
        (
            ["The original", " text is:", ' "The original text', " is:", ' "The original'],
            'The original text is: "The original text',
        ),
        # A loop of a whole sentence, case and punctuation aside, within one piece: cut
        # before its second copy.
        (["I like the sea. i like the sea", ". I like"], "I like the sea."),
        (["Once upon a time", " once upon a", " time there was"], "Once upon a time once upon a"),
    ],
)
def test_spoken_text_ends_where_the_model_starts_to_loop(pieces: list[str], spoken: str) -> None:
    speaker = Spoken()
    assert _speak(speaker, pieces) == spoken
    assert speaker.done


@pytest.mark.parametrize(
    "text",
    [
        "No, no, no. Very, very good.",
        "I love sailing. I love the sea. I love the wind.",
        "It is what it is, and it is what it is.",
        "Row, row, row your boat, gently down the stream.",
    ],
)
def test_spoken_text_keeps_repetition_that_is_not_a_loop(text: str) -> None:
    speaker = Spoken()
    assert speaker.feed(text) + speaker.flush() == text
    assert not speaker.done

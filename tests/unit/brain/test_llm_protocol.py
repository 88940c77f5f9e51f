"""The OpenAI streaming protocol details that need no server: event parsing, status codes,
the prompt."""

from __future__ import annotations

import pytest
from arc_brain.llm import LlmError, _content, _status_error, build_messages
from arc_common.errors import BadRequest, Busy, ErrorCode, Timeout, Unsupported
from httpx_sse import ServerSentEvent

pytestmark = pytest.mark.unit


def test_content_of_chunks() -> None:
    chunk = '{"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}'
    assert _content(ServerSentEvent(data=chunk)) == "Hi"
    role_only = '{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}'
    assert _content(ServerSentEvent(data=role_only)) is None
    with pytest.raises(LlmError, match="overloaded"):
        _content(ServerSentEvent(data='{"error": {"message": "overloaded"}}'))
    with pytest.raises(LlmError, match="undecodable"):
        _content(ServerSentEvent(data="not json"))


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (429, Busy, True),
        (503, LlmError, True),
        (504, Timeout, True),
        (404, Unsupported, False),
        (400, BadRequest, False),
    ],
)
def test_status_errors(status: int, error_type: type, retryable: bool) -> None:
    error = _status_error(status, "body")
    assert isinstance(error, error_type) and error.retryable is retryable
    assert str(status) in error.message


def test_unauthorised_is_internal_and_not_retried() -> None:
    error = _status_error(401, "bad key")
    assert error.code is ErrorCode.INTERNAL and not error.retryable


def test_prompt_holds_memories_and_history() -> None:
    messages = build_messages(
        "Be brief.",
        memories=["my car is blue"],
        history=[("hello", "Hi!"), ("how are you?", "")],
        text="what colour is my car?",
    )
    assert messages[0]["role"] == "system" and "- my car is blue" in messages[0]["content"]
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user", "user"]
    assert messages[-1]["content"] == "what colour is my car?"

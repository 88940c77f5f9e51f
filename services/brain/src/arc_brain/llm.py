"""A streaming client for OpenAI-compatible Chat Completions (OpenAI, vLLM, Ollama,
llama-server), on the `openai` package's own client.

What stays ours is the policy: retry only before the first token (once part of an answer has
been spoken, a retry would say it twice), a stall timeout between tokens, a bound on answers
in flight, and errors typed with the contract's codes. Cancelling the consuming task closes
the HTTP response at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncGenerator, Sequence
from typing import Any, TypedDict, cast

import httpx2
import openai
from arc_common.errors import ArcError, BadRequest, Busy, Internal, Timeout, Unsupported
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from arc_brain.settings import LlmSettings

log = logging.getLogger(__name__)


class ChatMessage(TypedDict):
    role: str
    content: str


class LlmError(Internal):
    """The endpoint failed (bad status, broken stream, error event)."""


def _status_error(status: int, body: str) -> ArcError:
    detail = f"LLM endpoint answered HTTP {status}: {body[:300]}"
    if status == 429:
        return Busy(detail)
    if status in (408, 504):
        return Timeout(detail)
    if status >= 500:
        return LlmError(detail)
    if status == 404:
        return Unsupported(detail, retryable=False)
    if status in (401, 403):
        return Internal(detail, retryable=False)
    return BadRequest(detail)


def _typed(exc: openai.OpenAIError, before_first_token: bool) -> ArcError:
    """The contract's error for what the `openai` client raised."""
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc.status_code, exc.response.text)
    if isinstance(exc, openai.APITimeoutError):
        return Timeout(f"LLM endpoint timed out: {exc}")
    if isinstance(exc, openai.APIConnectionError):
        where = "unreachable" if before_first_token else "broke mid-answer"
        return LlmError(f"LLM endpoint {where}: {exc.__cause__ or exc!r}")
    if isinstance(exc, openai.APIError):  # an error event inside the stream
        return LlmError(f"LLM stream reported an error: {exc.message}")
    return LlmError(f"LLM client failed: {exc!r}")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ArcError) and exc.retryable


def _content(chunk: ChatCompletionChunk) -> str | None:
    """The text delta of one `chat.completion.chunk`."""
    for choice in chunk.choices:
        if choice.delta.content:
            return choice.delta.content
    return None


class ChatCompletionsClient:
    def __init__(self, settings: LlmSettings) -> None:
        if not settings.base_url:
            raise Unsupported("no LLM base URL configured")
        self.settings = settings
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            # A local server needs no key; the client insists on one.
            api_key=settings.api_key.get_secret_value() if settings.api_key else "none",
            # Retries are ours: before the first token only (`_stream`).
            max_retries=0,
            timeout=httpx2.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.stall_timeout_s,
                write=settings.connect_timeout_s,
                pool=settings.connect_timeout_s,
            ),
        )
        self.retries = 0
        self.in_flight = 0

    async def aclose(self) -> None:
        await self._client.close()

    def _payload(self, messages: Sequence[ChatMessage]) -> dict[str, Any]:
        return {
            "model": self.settings.model,
            # build_messages writes only system, user and assistant turns of plain text.
            "messages": cast(list[ChatCompletionMessageParam], list(messages)),
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        }

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        """Text deltas of the answer, as the endpoint produces them; `Busy` at once when
        `max_in_flight` answers are already streaming or waiting."""
        if self.in_flight >= self.settings.max_in_flight:
            raise Busy(f"the language model is busy with {self.in_flight} answers")
        self.in_flight += 1
        try:
            async with contextlib.aclosing(self._stream(messages)) as texts:
                async for text in texts:
                    yield text
        finally:
            self.in_flight -= 1

    async def _stream(self, messages: Sequence[ChatMessage]) -> AsyncGenerator[str, None]:
        opened: openai.AsyncStream[ChatCompletionChunk] | None = None
        first = ""
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception(_retryable),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.retries += 1
                    number = attempt.retry_state.attempt_number
                    log.info("retrying the LLM request (attempt %d)", number)
                opened, first = await self._open(messages)
        assert opened is not None
        chunks = aiter(opened)
        try:
            yield first
            while True:
                try:
                    async with asyncio.timeout(self.settings.stall_timeout_s):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise Timeout(
                        f"the LLM stream stalled for {self.settings.stall_timeout_s:.1f}s"
                    ) from None
                except openai.OpenAIError as exc:
                    raise _typed(exc, before_first_token=False) from exc
                except httpx2.TimeoutException as exc:
                    raise Timeout(f"the LLM stream stalled: {exc}") from exc
                except httpx2.HTTPError as exc:
                    raise LlmError(f"the LLM stream broke mid-answer: {exc!r}") from exc
                if text := _content(chunk):
                    yield text
        finally:
            await opened.close()

    async def _open(
        self, messages: Sequence[ChatMessage]
    ) -> tuple[openai.AsyncStream[ChatCompletionChunk], str]:
        """Send the request and read up to the first content token."""
        stream: openai.AsyncStream[ChatCompletionChunk] | None = None
        try:
            async with asyncio.timeout(self.settings.first_token_timeout_s):
                stream = await self._client.chat.completions.create(
                    **self._payload(messages), stream=True
                )
                async for chunk in stream:
                    if text := _content(chunk):
                        return stream, text
            raise LlmError("LLM stream ended before any token")
        except TimeoutError:
            if stream is not None:
                await stream.close()
            raise Timeout(
                f"no token from the LLM within {self.settings.first_token_timeout_s:.1f}s"
            ) from None
        except openai.OpenAIError as exc:
            if stream is not None:
                await stream.close()
            raise _typed(exc, before_first_token=True) from exc
        except httpx2.HTTPError as exc:
            if stream is not None:
                await stream.close()
            raise LlmError(f"LLM stream broke before any token: {exc!r}") from exc
        except BaseException:
            if stream is not None:
                await stream.close()
            raise


def build_messages(
    system_prompt: str,
    *,
    memories: Sequence[str],
    history: Sequence[tuple[str, str]],
    text: str,
    max_chars: int = 100_000,
) -> list[ChatMessage]:
    """The prompt: instructions, the session so far (newest kept first within `max_chars`),
    the recalled memories, the new turn (cut to what fits).

    The memories come after the history, not inside the instructions: they change from turn
    to turn, and everything before them is then the same prefix as the previous turn's
    prompt, which the model server keeps computed (only the new tail is processed)."""
    recalled = ""
    if memories:
        listed = "\n".join(f"- {m}" for m in memories)
        recalled = f"Things this user told you before (use them when relevant):\n{listed}"
    room = max(max_chars - len(system_prompt) - len(recalled), 200)
    text = text[:room]
    room -= len(text)
    kept: list[ChatMessage] = []
    for user_text, assistant_text in reversed(history):
        size = len(user_text) + len(assistant_text)
        if size > room:
            break
        room -= size
        if assistant_text:
            kept.append({"role": "assistant", "content": assistant_text})
        if user_text:
            kept.append({"role": "user", "content": user_text})
    messages: list[ChatMessage] = [{"role": "system", "content": system_prompt}, *reversed(kept)]
    if recalled:
        messages.append({"role": "system", "content": recalled})
    messages.append({"role": "user", "content": text})
    return messages


# Markdown and list markup a model writes out of habit, and emoji: none of it can be spoken.
_MARKUP = re.compile(r"[*_`#~|>]+|\[|\]\([^)]*\)|\]")
_LIST_MARKER = re.compile(r"\n\s*(?:[-•]|\d+[.)])\s+")
# A line break and what may become a list marker once the next piece arrives.
_OPEN_LINE = re.compile(r"\n[\s\-•0-9.)]*$")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\ufe0f\u200d]+"
)
_NEWLINES = re.compile(r"\s*\n+\s*")
# A sentence's end as it streams: the mark and the space after it (a decimal point has none).
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)")
# A word as a loop is recognised: case and the punctuation around it do not count.
_WORD = re.compile(r"\S+")
_WORD_EDGES = "\"'\u201c\u201d\u2018\u2019.,;:!?()[]\u2026-"
# A run of this many words said twice in a row is a loop (SmolLM2-135M, greedy, answered
# "Who wrote Romeo and Juliet?" with "The original text is:" over and over until its token
# limit). Shorter runs repeat in real speech ("no, no", "very, very").
LOOP_MIN_WORDS = 3
LOOP_MAX_WORDS = 16


class Spoken:
    """Turns a model's streamed text into what a voice may say: markup, list markers and emoji
    go, line breaks become spaces. A piece ending in a line break is held until the next one
    shows whether a list marker follows it. With `max_sentences`, the answer ends after that
    many sentences (`done` turns true; the caller stops the model): a small model asked for
    one or two sentences may still talk for a minute. The answer also ends where the model
    starts saying again, word for word, the run of words it has just said (a loop)."""

    def __init__(self, max_sentences: int | None = None) -> None:
        self._held = ""
        self._started = False
        self._max_sentences = max_sentences
        self._sentences = 0
        self._last = ""  # the last character said, for a sentence end split across pieces
        self._said = ""  # everything said so far, to hear the model loop
        self.done = False

    def feed(self, piece: str) -> str:
        if self.done:
            return ""
        text = self._held + piece
        self._held = ""
        if match := _OPEN_LINE.search(text):
            text, self._held = text[: match.start()], text[match.start() :]
        return self._said_once(self._limit(self._clean(text)))

    def flush(self) -> str:
        if self.done:
            return ""
        text, self._held = self._held, ""
        return self._said_once(self._limit(self._clean(text)))

    def _said_once(self, text: str) -> str:
        """`text` up to where the answer starts saying again the words it has just said (then
        `done`): a small model that loops would otherwise talk until its token limit."""
        if not text:
            return text
        before = len(self._said)
        said = self._said + text
        words = [(m.start(), m.group().strip(_WORD_EDGES).lower()) for m in _WORD.finditer(said)]
        # Only runs whose second copy ends in the new text: earlier ones were checked before.
        new_from = sum(1 for start, _ in words if start < before)
        for end in range(max(new_from, 2 * LOOP_MIN_WORDS), len(words) + 1):
            for size in range(LOOP_MIN_WORDS, min(LOOP_MAX_WORDS, end // 2) + 1):
                first = [w for _, w in words[end - 2 * size : end - size]]
                if all(first) and first == [w for _, w in words[end - size : end]]:
                    self.done = True
                    cut = max(words[end - size][0] - before, 0)
                    kept = text[:cut].rstrip()
                    self._said += kept
                    return kept
        self._said = said
        return text

    def _limit(self, text: str) -> str:
        if self._max_sentences is None or not text:
            return text
        for end in _SENTENCE_END.finditer(self._last + text):
            self._sentences += 1
            if self._sentences >= self._max_sentences:
                self.done = True
                return text[: max(end.start() + 1 - len(self._last), 0)]
        self._last = text[-1]
        return text

    def _clean(self, text: str) -> str:
        if not self._started:
            text = "\n" + text  # a list marker may open the answer
        text = _LIST_MARKER.sub("\n", text)
        text = _EMOJI.sub("", _MARKUP.sub("", text))
        text = _NEWLINES.sub(" ", text)
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        return text

"""A local server that speaks OpenAI's streaming Chat Completions protocol over real HTTP:
`POST /v1/chat/completions` with `stream: true` answers `text/event-stream` (chunked), one
`chat.completion.chunk` JSON per `data:` line, then `data: [DONE]`.

The request's `model` picks a behaviour, so one server serves every test:
- `ok`: streams `ANSWER` in small pieces;
- `slow`: a piece every 20 ms, for a long time (cancellation tests);
- `stall`: two pieces, then silence with the connection held open;
- `late`: `ANSWER` as `ok` does, after 1.5 s without a word (a busy model);
- `error-mid`: two pieces, then an error event and the end of the stream;
- `drop-mid`: two pieces, then the connection is cut;
- `flaky`: the first request of each conversation gets HTTP 503, the retry succeeds;
- `missing`: HTTP 404 model not found (not retryable);
- `sentence-first`: a whole short sentence as the first token, then `ANSWER` at a token
  every 10 ms (benchmarks);
- `unspeakable`: only emoji and markup, nothing a voice can say (as a small model sometimes
  answers).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from arc_brain.settings import LlmSettings
from arc_stack.server import free_port
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ANSWER = (
    "Dr. Smith paid $3.50 for the coffee, which was expensive for what it was, "
    "and he complained about it to everyone who would listen. Then he left. Goodbye!"
)


def _pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "test",
        "choices": [
            {
                "index": 0,
                "delta": {} if content is None else {"content": content},
                "finish_reason": finish,
            }
        ],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


LATE_S = 1.5


@dataclass
class OpenAiDouble:
    port: int = field(default_factory=free_port)
    requests: list[dict[str, Any]] = field(default_factory=list)
    first_token_sent: dict[str, float] = field(default_factory=dict)
    stream_closed: dict[str, float] = field(default_factory=dict)
    _flaky_seen: set[str] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def settings(self, mode: str, **extra: float) -> LlmSettings:
        """The brain's model settings for this double answering in `mode`, with timeouts
        short enough for a test."""
        return LlmSettings(
            base_url=self.base_url,
            api_key=SecretStr("sk-test"),
            model=mode,
            stall_timeout_s=extra.pop("stall_timeout_s", 5.0),
            first_token_timeout_s=extra.pop("first_token_timeout_s", 5.0),
            **extra,
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.completions, methods=["POST"])])

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        mode = body.get("model", "ok")
        key = body["messages"][-1]["content"]
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "only streaming is served"}}, 400)
        if mode == "missing":
            return JSONResponse({"error": {"message": "model 'missing' not found"}}, 404)
        if mode == "flaky" and key not in self._flaky_seen:
            self._flaky_seen.add(key)
            return JSONResponse({"error": {"message": "overloaded"}}, 503)
        return StreamingResponse(self._stream(mode, key), media_type="text/event-stream")

    async def _stream(self, mode: str, key: str) -> AsyncIterator[bytes]:
        try:
            yield _chunk("")  # OpenAI opens with an empty role delta
            if mode == "late":
                await asyncio.sleep(LATE_S)
            pieces = _pieces(ANSWER)
            if mode == "slow":
                pieces = _pieces(ANSWER * 20)
            if mode == "sentence-first":
                pieces = ["Sure.", *_pieces(" " + ANSWER)]
            if mode == "unspeakable":
                pieces = ["\U0001f600", " **", "\n- ", "\U0001f44d"]
            for i, piece in enumerate(pieces):
                if i == 0:
                    self.first_token_sent[key] = time.perf_counter()
                yield _chunk(piece)
                if mode == "slow":
                    await asyncio.sleep(0.02)
                if mode == "sentence-first":
                    await asyncio.sleep(0.01)  # a fast model's pace, not a burst
                if i == 1 and mode == "stall":
                    await asyncio.sleep(3600)
                if i == 1 and mode == "error-mid":
                    error = {"error": {"message": "the model crashed", "type": "server_error"}}
                    yield f"data: {json.dumps(error)}\n\n".encode()
                    return
                if i == 1 and mode == "drop-mid":
                    raise ConnectionResetError("dropped on purpose")
            yield _chunk(None, "stop")
            yield b"data: [DONE]\n\n"
        finally:
            self.stream_closed[key] = time.perf_counter()


async def start_double() -> tuple[OpenAiDouble, uvicorn.Server, asyncio.Task[None]]:
    double = OpenAiDouble()
    server = uvicorn.Server(
        uvicorn.Config(double.app(), host="127.0.0.1", port=double.port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return double, server, task

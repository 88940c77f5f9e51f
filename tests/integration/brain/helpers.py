"""Small helpers shared by the brain's integration tests."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from arc_common.settings import NatsSettings
from arc_common.streaming import StreamingClient
from arc_common.subjects import BRAIN_CANCEL, BRAIN_REQUEST, prefixed
from arc_common.wire import BrainRequest, ReplyChunk
from arc_stack.server import free_port

from tests.fixtures.brain import RunningBrain
from tests.fixtures.nats import nats_env

# What the `double_brain` and `local_brain` fixtures give: a brain on the test's namespace.
StartBrain = Callable[..., Awaitable[RunningBrain]]
# What the `say` fixture gives: a question's answer from the brain on the test's namespace.
Say = Callable[..., Awaitable[str]]


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def request(
    text: str, *, session_id: str, user_id: str, turn_id: str | None = None, **extra: object
) -> BrainRequest:
    return BrainRequest(
        v=1,
        session_id=session_id,
        turn_id=turn_id or new_id("turn"),
        user_id=user_id,
        text=text,
        **extra,  # type: ignore[arg-type]
    )


async def ask(
    client: StreamingClient, prefix: str, req: BrainRequest, **timeouts: float
) -> list[ReplyChunk]:
    stream = client.stream(
        prefixed(prefix, BRAIN_REQUEST),
        req,
        cancel_subject=prefixed(prefix, BRAIN_CANCEL),
        **timeouts,
    )
    return await stream.collect()


async def answer_text(
    client: StreamingClient, prefix: str, text: str, *, session_id: str, user_id: str
) -> str:
    chunks = await ask(client, prefix, request(text, session_id=session_id, user_id=user_id))
    return "".join(c.text or "" for c in chunks)


async def spawn_brain(
    *, nats: NatsSettings, dsn: str, llm_url: str, model: str, log_path: Path
) -> asyncio.subprocess.Process:
    """`python -m arc_brain` as `make run` starts it, on the given language model, once its
    `/healthz` says ok; the caller stops (or kills) it."""
    port = free_port()
    env = dict(
        os.environ,
        **nats_env(nats),
        ARC_POSTGRES__DSN=dsn,
        ARC_BRAIN__HTTP_PORT=str(port),
        ARC_BRAIN__LLM__BASE_URL=llm_url,
        ARC_BRAIN__LLM__MODEL=model,
        ARC_LOG__JSON="false",
    )
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "arc_brain", env=env, stdout=log, stderr=log
        )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        deadline = time.monotonic() + 90
        health: httpx.Response | None = None
        while time.monotonic() < deadline and proc.returncode is None:
            try:
                health = await http.get("/healthz")
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    if health is None or health.status_code != 200 or health.json()["status"] != "ok":
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log_text = await asyncio.to_thread(log_path.read_text)
        raise AssertionError(f"the brain did not start: {log_text[-3000:]}")
    return proc

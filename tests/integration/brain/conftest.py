"""Fixtures of the brain's integration tests: a client on the test's subject namespace, a
local OpenAI-protocol server, and brains on the test's namespace with a model behind them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
import pytest_asyncio
from arc_brain.embedding import MiniLmEmbedder
from arc_common.streaming import StreamingClient
from arc_stack.llm import LlamaServer
from arc_stack.postgres import PostgresServer
from nats.aio.client import Client

from tests.fixtures.brain import BrainFactory, RunningBrain, brain_settings, start_brain
from tests.fixtures.llm import local_llm
from tests.fixtures.nats import SessionNats
from tests.integration.brain.helpers import Say, StartBrain, answer_text, new_id
from tests.integration.brain.openai_double import OpenAiDouble, start_double


@pytest_asyncio.fixture(loop_scope="session")
async def client(nc: Client) -> AsyncIterator[StreamingClient]:
    async with StreamingClient(nc) as streaming:
        yield streaming


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def openai_double() -> AsyncIterator[OpenAiDouble]:
    double, server, task = await start_double()
    yield double
    server.should_exit = True
    await task


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def module_brain(
    nats_server: SessionNats, postgres_server: PostgresServer, brain_embedder: MiniLmEmbedder
) -> AsyncIterator[RunningBrain]:
    """One skills brain for a whole module, on a subject namespace of its own; tests that
    use it keep apart by their own session and user ids."""
    async with AsyncExitStack() as stack:
        settings = brain_settings(
            nats_server.settings("brain", subject_prefix=f"m{uuid.uuid4().hex[:10]}"),
            postgres_server.dsn(),
        )
        yield await start_brain(stack, settings, brain_embedder)


@pytest.fixture
def say(client: StreamingClient, subject_prefix: str) -> Say:
    """`await say(text, user_id=..., session_id=...)`: the answer of the brain on the test's
    subject namespace, in a session of its own unless `session_id` names one."""

    async def answer(text: str, *, user_id: str, session_id: str | None = None) -> str:
        session = session_id or new_id("s")
        return await answer_text(client, subject_prefix, text, session_id=session, user_id=user_id)

    return answer


@pytest.fixture
def double_brain(
    brain_factory: BrainFactory, subject_prefix: str, openai_double: OpenAiDouble
) -> StartBrain:
    """`await double_brain(mode, stall_timeout_s=..., **BrainOptions)`: a brain on the test's
    subject namespace whose model is the OpenAI double answering in `mode`."""

    async def start(mode: str, *, stall_timeout_s: float = 5.0, **options: Any) -> RunningBrain:
        llm = openai_double.settings(mode, stall_timeout_s=stall_timeout_s)
        running: RunningBrain = await brain_factory(
            subject_prefix=subject_prefix, llm=llm, **options
        )
        return running

    return start


@pytest.fixture
def local_brain(
    brain_factory: BrainFactory, subject_prefix: str, llm_server: LlamaServer
) -> StartBrain:
    """`await local_brain(**LlmSettings overrides)`: a brain on the test's subject namespace
    with the local model as `make run` sets it up."""

    async def start(**overrides: object) -> RunningBrain:
        running: RunningBrain = await brain_factory(
            subject_prefix=subject_prefix, llm=local_llm(llm_server, **overrides)
        )
        return running

    return start

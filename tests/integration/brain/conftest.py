"""Fixtures of the brain's integration tests: a client on the test's subject namespace and a
local OpenAI-protocol server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest_asyncio
from arc_brain.embedding import MiniLmEmbedder
from arc_common.streaming import StreamingClient
from arc_stack.nats import NatsServer
from arc_stack.postgres import PostgresServer
from nats.aio.client import Client

from tests.fixtures.brain import RunningBrain, brain_settings, start_brain
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
    nats_server: NatsServer, postgres_server: PostgresServer, brain_embedder: MiniLmEmbedder
) -> AsyncIterator[RunningBrain]:
    """One skills brain for a whole module, on a subject namespace of its own; tests that
    use it keep apart by their own session and user ids."""
    async with AsyncExitStack() as stack:
        settings = brain_settings(
            nats_server.url, postgres_server.dsn(), subject_prefix=f"m{uuid.uuid4().hex[:10]}"
        )
        yield await start_brain(stack, settings, brain_embedder)

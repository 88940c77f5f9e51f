"""The brain's resources, opened in order and closed in reverse: embedding model, memory
store, LLM client, the brain itself, the NATS connection and its streaming service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from types import TracebackType

from arc_common.nats_connection import connect
from arc_common.streaming import StreamingService
from nats.aio.client import Client

from arc_brain import __version__
from arc_brain.brain import Brain
from arc_brain.embedding import MiniLmEmbedder, bundled_model_dir
from arc_brain.llm import ChatCompletionsClient
from arc_brain.memory import MemoryStore
from arc_brain.metrics import BrainMetrics
from arc_brain.nats_api import brain_endpoint, subscribe_verdicts
from arc_brain.settings import BrainSettings

log = logging.getLogger(__name__)


async def load_embedder(model_dir: Path | None) -> MiniLmEmbedder:
    """Reading 90 MB of weights is blocking file I/O: done in a worker thread."""
    directory = model_dir or bundled_model_dir()
    return await asyncio.to_thread(MiniLmEmbedder, directory)


class BrainRuntime:
    def __init__(
        self,
        settings: BrainSettings,
        *,
        embedder: MiniLmEmbedder | None = None,
    ) -> None:
        self.settings = settings
        self._given_embedder = embedder
        self._stack = contextlib.AsyncExitStack()
        self.metrics = BrainMetrics()
        self.brain: Brain | None = None
        self.nc: Client | None = None
        self.service: StreamingService | None = None

    async def __aenter__(self) -> BrainRuntime:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _open(self) -> None:
        options = self.settings.brain
        stack = self._stack
        if self._given_embedder is not None:
            embedder = self._given_embedder
        else:
            embedder = await load_embedder(options.embedding_model_dir)
            stack.callback(embedder.close)
        pg = self.settings.postgres
        store = MemoryStore(
            pg.dsn.get_secret_value(),
            pool_min=pg.pool_min,
            pool_max=pg.pool_max,
            timeout_s=options.memory_timeout_s,
            probe_interval_s=options.memory_probe_interval_s,
            backlog=options.memory_backlog,
        )
        await store.open()
        stack.push_async_callback(store.close)
        llm: ChatCompletionsClient | None = None
        if options.llm.base_url:
            llm = ChatCompletionsClient(options.llm)
            stack.push_async_callback(llm.aclose)
        self.brain = await Brain.create(
            embedder=embedder, store=store, options=options, llm=llm, metrics=self.metrics
        )
        stack.push_async_callback(self.brain.aclose)
        self.nc = await connect(self.settings.nats, name=self.settings.service_name)
        stack.push_async_callback(self._drain_nats)
        self.service = StreamingService(
            self.nc, name="brain", version=__version__, description="Arc brain: streamed answers"
        )
        self.service.add(
            brain_endpoint(
                self.brain,
                subject_prefix=self.settings.nats.subject_prefix,
                max_concurrent_turns=options.max_concurrent_turns,
            )
        )
        await self.service.start()
        stack.push_async_callback(self.service.stop)
        for sub in await subscribe_verdicts(
            self.nc, self.brain, subject_prefix=self.settings.nats.subject_prefix
        ):
            stack.push_async_callback(sub.unsubscribe)
        log.info(
            "brain ready",
            extra={"answers_with": "llm" if llm else "skills", "memory": store.available},
        )

    async def _drain_nats(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    @property
    def nats_connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

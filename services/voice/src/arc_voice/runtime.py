"""Opening and closing the worker's resources in order: NATS, Postgres, models, the worker,
and under LiveKit dispatch (`ARC_VOICE__DISPATCH__MODE=livekit`) its registration with the
LiveKit server; closed in reverse."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

from arc_common.nats_connection import connection
from psycopg_pool import AsyncConnectionPool

from arc_voice.dispatch import DispatchClient
from arc_voice.http_api import Health
from arc_voice.models import VoiceModels
from arc_voice.settings import VoiceSettings
from arc_voice.worker import VoiceWorker

log = logging.getLogger(__name__)


class VoiceRuntime:
    def __init__(self, settings: VoiceSettings) -> None:
        self.settings = settings
        self.worker: VoiceWorker | None = None
        self.dispatch: DispatchClient | None = None
        self._stack = AsyncExitStack()
        self._nc: Any = None
        self._pool: AsyncConnectionPool[Any] | None = None

    async def __aenter__(self) -> VoiceRuntime:
        settings = self.settings
        try:
            self._nc = await self._stack.enter_async_context(
                connection(settings.nats, name=settings.service_name)
            )
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                settings.postgres.dsn.get_secret_value(),
                min_size=settings.postgres.pool_min,
                max_size=settings.postgres.pool_max,
                open=False,
            )
            # Not waiting for Postgres: the worker can talk without it; events that cannot be
            # stored are counted and logged (see EventRecorder).
            await pool.open(wait=False)
            self._pool = pool
            self._stack.push_async_callback(pool.close)
            models = await asyncio.to_thread(VoiceModels.load, settings.voice)
            self._stack.callback(models.close)
            dispatched = settings.voice.dispatch.mode == "livekit"
            # Under dispatch the start-up rooms are dispatched like any other, not joined.
            options = settings.voice.model_copy(update={"rooms": []}) if dispatched else None
            worker = VoiceWorker(
                options=options or settings.voice,
                livekit=settings.livekit,
                models=models,
                nc=self._nc,
                pool=pool,
                subject_prefix=settings.nats.subject_prefix,
            )
            self._stack.push_async_callback(worker.aclose)
            await worker.start()
            if dispatched:
                dispatch = DispatchClient(
                    worker,
                    settings=settings.voice.dispatch,
                    livekit=settings.livekit,
                    nc=self._nc,
                    subject_prefix=settings.nats.subject_prefix,
                    http_url=f"http://{settings.voice.http_host}:{settings.voice.http_port}",
                )
                # Closed before the worker: unregistered first, so no job lands mid-shutdown.
                self._stack.push_async_callback(dispatch.aclose)
                await dispatch.start()
                self.dispatch = dispatch
                for room in settings.voice.rooms:
                    await dispatch.dispatch(room)
            self.worker = worker
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.worker = None
        self.dispatch = None
        await self._stack.aclose()

    def health(self) -> Health:
        worker = self.worker
        nats_ok = self._nc is not None and bool(self._nc.is_connected)
        pool_stats: dict[str, int] = self._pool.get_stats() if self._pool is not None else {}
        routes = worker.deps.tts_routes if worker is not None else None
        detail: dict[str, Any] = {
            "nats": "connected" if nats_ok else "disconnected",
            "worker": "running" if worker is not None else "starting",
            "rooms": sorted(worker.rooms) if worker is not None else [],
            "websocket_conversations": len(worker.sockets) if worker is not None else 0,
            "postgres_pool": {k: pool_stats.get(k, 0) for k in ("pool_size", "pool_available")},
            "event_store_failures": worker.recorder.failures if worker is not None else 0,
            "event_backlog": len(worker.recorder.backlog) if worker is not None else 0,
            "stt": self.settings.voice.stt_engine,
            # TTS workers whose stats (loaded voices) this worker routes by (docs/tts.md).
            "tts_workers": len(routes.instances) if routes is not None else 0,
            "dispatch": self.dispatch.detail() if self.dispatch is not None else {"mode": "direct"},
        }
        return Health(healthy=worker is not None and nats_ok, detail=detail)

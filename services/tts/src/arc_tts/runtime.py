"""Everything a running TTS worker holds, opened in order and closed in reverse: metrics, the
synthesizer (voices loaded and warmed up), the NATS connection, the `micro` service and the
voice admin subject."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from arc_common.nats_connection import connection
from arc_common.streaming import StreamingService
from nats.aio.client import Client

from arc_tts.http_api import Health
from arc_tts.metrics import TtsMetrics
from arc_tts.settings import TtsSettings
from arc_tts.synthesizer import Synthesizer, open_synthesizer
from arc_tts.voice_admin import voice_admin
from arc_tts.worker import tts_service


@dataclass(slots=True)
class TtsRuntime:
    settings: TtsSettings
    metrics: TtsMetrics
    synthesizer: Synthesizer
    nc: Client
    service: StreamingService

    def health(self) -> Health:
        nats_ok = self.nc.is_connected
        resident = self.synthesizer.registry.resident
        voice_ok = self.synthesizer.registry.default_voice in resident
        return Health(
            healthy=nats_ok and voice_ok,
            detail={
                "status": "ok" if nats_ok and voice_ok else "degraded",
                "nats": "connected" if nats_ok else "disconnected",
                "default_voice": self.synthesizer.registry.default_voice,
                "resident_voices": resident,
                "active_streams": self.synthesizer.active,
                "queue_depth": self.synthesizer.pool.waiting,
            },
        )


@contextlib.asynccontextmanager
async def tts_runtime(settings: TtsSettings) -> AsyncIterator[TtsRuntime]:
    metrics = TtsMetrics()
    # The voice loads before NATS: a worker joins the queue group only once it can answer fast.
    async with (
        open_synthesizer(settings.tts, metrics) as synthesizer,
        connection(settings.nats, name=settings.service_name) as nc,
        tts_service(nc, synthesizer, settings.nats.subject_prefix) as service,
        voice_admin(nc, synthesizer.registry, service.instance_id, settings.nats.subject_prefix),
    ):
        yield TtsRuntime(settings, metrics, synthesizer, nc, service)

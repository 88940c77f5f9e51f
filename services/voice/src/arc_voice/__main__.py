"""`python -m arc_voice`: the voice worker with its HTTP server (health, metrics, the browser
page and its tokens) on ARC_VOICE__HTTP_HOST:ARC_VOICE__HTTP_PORT (127.0.0.1:8083)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from arc_common.logging import configure_logging
from arc_common.telemetry import setup_telemetry
from fastapi import FastAPI
from pydantic import ValidationError

from arc_voice.http_api import create_app
from arc_voice.runtime import VoiceRuntime
from arc_voice.settings import VoiceSettings


def build_app(settings: VoiceSettings) -> FastAPI:
    runtime = VoiceRuntime(settings)
    app = create_app(settings.voice, settings.livekit, lambda: runtime.worker, runtime.health)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with runtime:
            yield

    app.router.lifespan_context = lifespan
    return app


def main() -> int:
    try:
        settings = VoiceSettings()
    except ValidationError as exc:
        print(f"arc-voice: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log, service=settings.service_name)
    telemetry = setup_telemetry(settings.telemetry, service=settings.service_name)
    try:
        uvicorn.run(
            build_app(settings),
            host=settings.voice.http_host,
            port=settings.voice.http_port,
            log_config=None,
            access_log=False,
        )
    finally:
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

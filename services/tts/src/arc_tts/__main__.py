"""`python -m arc_tts`: the TTS worker, on NATS (`tts.request`) and HTTP (default :8082)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType

import uvicorn
from arc_common.logging import configure_logging
from arc_common.telemetry import setup_telemetry

from arc_tts.http_api import create_app
from arc_tts.runtime import tts_runtime
from arc_tts.settings import TtsSettings

log = logging.getLogger("arc_tts")


def _keep_running_on_stop_signal() -> None:
    """uvicorn turns SIGINT/SIGTERM into a graceful HTTP shutdown, then re-raises the signal
    to the handler that was there before it; with Python's defaults that kills the process
    before the runtime below closes (NATS drained, turns ended, voices released). A handler
    of ours that only logs lets `serve` return and the runtime close in order."""

    def note(signum: int, frame: FrameType | None) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, note)


async def serve(settings: TtsSettings) -> None:
    telemetry = setup_telemetry(settings.telemetry, service=settings.service_name)
    try:
        async with tts_runtime(settings) as runtime:
            app = create_app(runtime.synthesizer, runtime.metrics, runtime.health)
            config = uvicorn.Config(
                app,
                host=settings.tts.http_host,
                port=settings.tts.http_port,
                lifespan="off",
                log_config=None,
                access_log=False,
                # Streaming responses still open after this are cancelled, not waited for.
                timeout_graceful_shutdown=5,
            )
            log.info(
                "arc-tts serving on NATS %s and http://%s:%d",
                settings.nats.url,
                settings.tts.http_host,
                settings.tts.http_port,
            )
            _keep_running_on_stop_signal()
            await uvicorn.Server(config).serve()
        log.info("arc-tts stopped")
    finally:
        telemetry.shutdown()


def main() -> None:
    settings = TtsSettings()
    configure_logging(settings.log, service=settings.service_name)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()

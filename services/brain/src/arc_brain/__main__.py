"""`python -m arc_brain`: the brain on NATS (`brain.request`, `brain.cancel`) and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator

import uvicorn
from arc_common.logging import configure_logging
from arc_common.telemetry import setup_telemetry
from pydantic import ValidationError

from arc_brain.http_api import create_app
from arc_brain.settings import BrainSettings


class _Server(uvicorn.Server):
    """uvicorn, except that a stop by SIGINT or SIGTERM ends with exit status 0 after the
    graceful shutdown: uvicorn re-raises the signal, which makes `make stop` look like a
    crash (status -15)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve(settings: BrainSettings) -> None:
    telemetry = setup_telemetry(settings.telemetry, service=settings.service_name)
    try:
        app = create_app(settings)
        config = uvicorn.Config(
            app,
            host=settings.brain.http_host,
            port=settings.brain.http_port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        await _Server(config).serve()
    finally:
        telemetry.shutdown()


def main() -> None:
    try:
        settings = BrainSettings()
    except ValidationError as exc:
        # A configuration mistake: say which setting and why, without a traceback.
        problems = "; ".join(
            f"ARC_{'__'.join(str(p).upper() for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        sys.exit(f"arc_brain: invalid settings: {problems}")
    configure_logging(settings.log, service=settings.service_name)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()

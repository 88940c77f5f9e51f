"""`python -m arc_tts`: the TTS worker, on NATS (`tts.request`) and HTTP (default :8082).
Start, stop and bad settings as every service: `arc_common.service`."""

from __future__ import annotations

from arc_common.http_security import HttpGuard
from arc_common.service import load_settings, run_service

from arc_tts.http_api import create_app
from arc_tts.runtime import tts_runtime
from arc_tts.settings import TtsSettings


def main() -> None:
    settings = load_settings(TtsSettings)
    run_service(
        settings,
        tts_runtime,
        lambda runtime: create_app(
            runtime.synthesizer, runtime.metrics, runtime.health, HttpGuard(settings.http)
        ),
        host=settings.tts.http_host,
        port=settings.tts.http_port,
    )


if __name__ == "__main__":
    main()

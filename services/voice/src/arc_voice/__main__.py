"""`python -m arc_voice`: the voice worker with its HTTP server (health, metrics, the browser
page and its tokens) on ARC_VOICE__HTTP_HOST:ARC_VOICE__HTTP_PORT (127.0.0.1:8083).
Start, stop and bad settings as every service: `arc_common.service`."""

from __future__ import annotations

from arc_common.http_security import HttpGuard
from arc_common.service import load_settings, run_service

from arc_voice.http_api import create_app
from arc_voice.runtime import VoiceRuntime
from arc_voice.settings import VoiceSettings


def main() -> None:
    settings = load_settings(VoiceSettings)
    run_service(
        settings,
        VoiceRuntime,
        lambda runtime: create_app(
            settings.voice,
            settings.livekit,
            lambda: runtime.worker,
            runtime.health,
            HttpGuard(settings.http),
            dispatch=lambda: runtime.dispatch,
        ),
        host=settings.voice.http_host,
        port=settings.voice.http_port,
    )


if __name__ == "__main__":
    main()

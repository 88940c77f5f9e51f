"""`python -m arc_brain`: the brain on NATS (`brain.request`, `brain.cancel`) and HTTP.
Start, stop and bad settings as every service: `arc_common.service`."""

from __future__ import annotations

from arc_common.service import load_settings, run_service

from arc_brain.http_api import create_app
from arc_brain.runtime import BrainRuntime
from arc_brain.settings import BrainSettings


def main() -> None:
    settings = load_settings(BrainSettings)
    run_service(
        settings,
        BrainRuntime,
        lambda runtime: create_app(settings, runtime),
        host=settings.brain.http_host,
        port=settings.brain.http_port,
    )


if __name__ == "__main__":
    main()

"""`python -m arc_events [relay|analytics|audit ...]`: the relay and both consumers in one
process by default, or only the roles named (to scale them separately)."""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from arc_common.logging import configure_logging
from arc_common.telemetry import setup_telemetry

from arc_events.app import create_app
from arc_events.settings import EventsSettings, Role


def _parse_roles(argv: list[str] | None) -> list[Role] | None:
    parser = argparse.ArgumentParser(prog="python -m arc_events", description=__doc__)
    names = [r.value for r in Role]
    # No `choices=`: with nargs="*", Python 3.11's argparse rejects an empty list against them.
    parser.add_argument(
        "roles",
        nargs="*",
        metavar="{" + ",".join(names) + "}",
        help="what to run (default: ARC_EVENTS__ROLES, which defaults to all three)",
    )
    args = parser.parse_args(argv)
    unknown = [r for r in args.roles if r not in names]
    if unknown:
        parser.error(f"unknown role(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    return [Role(r) for r in args.roles] or None


async def _serve(settings: EventsSettings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.events.http_host,
        port=settings.events.http_port,
        log_config=None,
        access_log=False,
    )
    await uvicorn.Server(config).serve()


def main(argv: list[str] | None = None) -> None:
    roles = _parse_roles(argv)
    settings = EventsSettings()
    if roles is not None:
        settings.events.roles = roles
    configure_logging(settings.log, service=settings.service_name)
    telemetry = setup_telemetry(settings.telemetry, service=settings.service_name)
    try:
        asyncio.run(_serve(settings))
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()

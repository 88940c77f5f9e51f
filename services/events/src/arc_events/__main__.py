"""`python -m arc_events [relay|analytics|audit ...]`: the relay and both consumers in one
process by default, or only the roles named (to scale them separately). Start, stop and bad
settings as every service: `arc_common.service`."""

from __future__ import annotations

import argparse

from arc_common.service import load_settings, run_service

from arc_events.app import create_app
from arc_events.service import EventsService
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


def main(argv: list[str] | None = None) -> None:
    roles = _parse_roles(argv)
    settings = load_settings(EventsSettings)
    if roles is not None:
        settings.events.roles = roles
    run_service(
        settings,
        EventsService,
        create_app,
        host=settings.events.http_host,
        port=settings.events.http_port,
        # The Pulsar clients are closed by then; their C++ side can still abort while the
        # interpreter tears down (seen in CI: exit -6 after "arc-events stopped").
        skip_teardown=True,
    )


if __name__ == "__main__":
    main()

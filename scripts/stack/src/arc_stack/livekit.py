"""LiveKit server, built with `go install` from the Go module proxy and run with `--dev`."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from arc_stack.install_lock import exclusive
from arc_stack.paths import cache_dir
from arc_stack.server import ManagedServer, ServerStartError, http_ok, run_step

LIVEKIT_VERSION = "v1.13.5"
LIVEKIT_MODULE = "github.com/livekit/livekit-server"
LIVEKIT_PACKAGE = f"{LIVEKIT_MODULE}/cmd/server"
# A cold build (module download and compile) takes minutes on 2 cores.
INSTALL_TIMEOUT_S = 1800.0


def livekit_binary_dir(version: str = LIVEKIT_VERSION) -> Path:
    return cache_dir() / "livekit" / version


def go_binary() -> str:
    found = shutil.which("go")
    if found is not None:
        return found
    # The official tarball's location; `make run` may start without it on PATH.
    default = Path("/usr/local/go/bin/go")
    if default.is_file():
        return str(default)
    raise ServerStartError(
        "livekit install: the Go toolchain (`go`, 1.26 or newer) is not on PATH "
        "nor at /usr/local/go/bin/go; it is needed to build livekit-server"
    )


def _yaml_str(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar, so any key or secret round-trips.
    return json.dumps(value)


@dataclass(eq=False, kw_only=True)
class LiveKitServer(ManagedServer):
    name = "livekit"
    config_file = "livekit.yaml"

    port: int = 7880
    rtc_tcp_port: int = 7881
    udp_port: int = 7882
    # Without keys, a key pair made for this server alone (never the well-known dev keys,
    # which anyone could sign tokens with). The secret stays out of the repr.
    api_key: str = field(default_factory=lambda: f"arc{secrets.token_hex(6)}")
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # `--dev` alone means debug logging, which grows the log by megabytes per session.
    log_level: str = "info"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def binary_path(self) -> Path:
        return livekit_binary_dir() / "livekit-server"

    async def install(self) -> None:
        binary = self.binary_path
        if binary.is_file():
            return
        target_dir = binary.parent
        async with exclusive(target_dir.parent / f".{LIVEKIT_VERSION}.lock"):
            if binary.is_file():  # another process built it while we waited
                return
            target_dir.mkdir(parents=True, exist_ok=True)
            # A private GOBIN per build, so `livekit-server` only ever appears whole, by rename.
            staging = target_dir / f".gobin-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            try:
                await self._go_install(staging)
                built = staging / "server"
                if not built.is_file():
                    raise ServerStartError(
                        f"livekit install: `go install` succeeded but left no {built}; "
                        f"log: {self.install_log_path}"
                    )
                os.replace(built, binary)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    async def _go_install(self, gobin: Path) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        argv = [go_binary(), "install", f"{LIVEKIT_PACKAGE}@{LIVEKIT_VERSION}"]
        env = {
            **os.environ,
            "GOBIN": str(gobin),
            "CGO_ENABLED": "0",
            # `go install pkg@version` ignores any go.work or go.mod around it, but a GOFLAGS
            # of -mod=vendor from the caller's shell would still break it.
            "GOFLAGS": "-buildvcs=false",
        }
        await run_step(
            argv,
            self.install_log_path,
            what="livekit install",
            label="go install",
            command=f"go install {LIVEKIT_PACKAGE}@{LIVEKIT_VERSION}",
            timeout_s=INSTALL_TIMEOUT_S,
            shown=f"GOBIN={gobin} CGO_ENABLED=0 {' '.join(argv)}",
            env=env,
            cwd=gobin,
        )

    def config_text(self) -> str:
        # Every port is explicit so a private server can run beside `make run`. Prometheus,
        # the debug handler and TURN stay off (their ports default to 0 / disabled), so
        # nothing else binds a port. node_ip set by hand also means no STUN lookups.
        return "\n".join(
            [
                "# Written by arc_stack.livekit on every start; edits are overwritten.",
                f"port: {self.port}",
                "bind_addresses: [127.0.0.1]",
                "rtc:",
                f"  tcp_port: {self.rtc_tcp_port}",
                f"  udp_port: {self.udp_port}",
                "  node_ip: 127.0.0.1",
                "  use_external_ip: false",
                "  enable_loopback_candidate: true",
                # Media only on loopback: the node IP is 127.0.0.1, nothing else could use it.
                "  ips:",
                "    includes: [127.0.0.1/32]",
                "turn:",
                "  enabled: false",
                "keys:",
                f"  {_yaml_str(self.api_key)}: {_yaml_str(self.api_secret)}",
                "logging:",
                f"  level: {self.log_level}",
                "",
            ]
        )

    def command(self) -> list[str]:
        if not self.binary_path.is_file():
            raise ServerStartError(
                f"livekit-server {LIVEKIT_VERSION} is not built at {self.binary_path}: "
                "run `make install` (or LiveKitServer.install()) first"
            )
        return [
            str(self.binary_path),
            "--dev",
            "--config", str(self.config_path),
            "--bind", "127.0.0.1",
            "--node-ip", "127.0.0.1",
        ]  # fmt: skip

    def environment(self) -> Mapping[str, str]:
        # The server reads these variables and lets them override the config file (and an
        # empty value would reset a setting to its default), so one left in the caller's
        # shell, e.g. LIVEKIT_KEYS for another project, is replaced by what this server uses.
        consistent = {
            "LIVEKIT_CONFIG": self.config_text(),
            "LIVEKIT_KEYS": f"{_yaml_str(self.api_key)}: {_yaml_str(self.api_secret)}",
            "UDP_PORT": str(self.udp_port),
            "NODE_IP": "127.0.0.1",
            "REDIS_HOST": "",
        }
        return {name: value for name, value in consistent.items() if name in os.environ}

    async def healthy(self) -> bool:
        return await http_ok(self.http_url, body="OK")

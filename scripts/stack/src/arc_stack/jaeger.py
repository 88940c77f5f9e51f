"""Jaeger (the v2 binary: an OpenTelemetry Collector with Jaeger's storage and query), built
from the Go module proxy and run with in-memory storage on loopback.

The module table of this machine says to add `cmd/jaeger` to a module with `go get -tool`: the
arc cache holds a small tools module (`jaeger/<version>/module`) whose go.mod pins Jaeger and
its dependencies, and `go build` there writes the binary beside it. A stamp named after the
version and the Go toolchain makes a later install a no-op.

The module build has no UI: Jaeger's web assets are built with npm and embedded only in its
release binaries, so `/` serves a placeholder page. The query API (`/api/services`,
`/api/traces?service=...`) is complete, and it is what the tests and docs use.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from arc_stack.go_sdk import go_version, run_go_step
from arc_stack.install_lock import exclusive
from arc_stack.livekit import go_binary
from arc_stack.paths import cache_dir
from arc_stack.server import ManagedServer, ServerStartError, http_ok

JAEGER_VERSION = "v1.76.0"
JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_PACKAGE = f"{JAEGER_MODULE}/cmd/jaeger"
# Cold on 2 cores: the module download (~30 s) and compiling the collector's dependency tree
# (docs/tracing.md has the measured time).
INSTALL_TIMEOUT_S = 2400.0


def jaeger_dir(version: str = JAEGER_VERSION) -> Path:
    return cache_dir() / "jaeger" / version


def jaeger_binary(version: str = JAEGER_VERSION) -> Path:
    return jaeger_dir(version) / "jaeger"


def _stamp(go: str) -> Path:
    # A new Go toolchain rebuilds: the binary's security fixes come with it.
    return jaeger_dir() / f"built-with-{go_version(go) or 'unknown-go'}.done"


def _go_environment() -> dict[str, str]:
    return {
        **os.environ,
        "CGO_ENABLED": "0",
        # `go get -tool` writes the tools module's go.mod; a caller's -mod=vendor would
        # break the build, and the build must not switch toolchains either.
        "GOFLAGS": "-buildvcs=false",
        "GOTOOLCHAIN": "local",
    }


def jaeger_installed() -> bool:
    return jaeger_binary().is_file()


async def install_jaeger(log_dir: Path, say: Callable[[str], None] = print) -> None:
    """Build `cmd/jaeger` once into the arc cache; a no-op when the stamp is there."""
    binary = jaeger_binary()
    try:
        go = go_binary()
    except ServerStartError:
        if binary.is_file():  # built before; without Go it can still run
            return
        raise
    stamp = _stamp(go)
    if stamp.is_file() and binary.is_file():
        return
    began = time.monotonic()
    target = jaeger_dir()
    target.mkdir(parents=True, exist_ok=True)
    async with exclusive(target.parent / f".{JAEGER_VERSION}.lock"):
        if stamp.is_file() and binary.is_file():  # another process built it while we waited
            return
        log_path = log_dir / "jaeger-install.log"
        env = _go_environment()
        module = target / "module"
        module.mkdir(exist_ok=True)
        if not (module / "go.mod").is_file():
            await _step([go, "mod", "init", "arc.local/jaeger-tools"], log_path, env, module)
        await _step(
            [go, "get", "-tool", f"{JAEGER_PACKAGE}@{JAEGER_VERSION}"], log_path, env, module
        )
        # Built under a private name and renamed, so `jaeger` only ever appears whole.
        staging = target / f".jaeger-{os.getpid()}"
        try:
            await _step(
                [go, "build", "-trimpath", "-o", str(staging), JAEGER_PACKAGE],
                log_path,
                env,
                module,
                nice=True,
            )
            os.replace(staging, binary)
        finally:
            staging.unlink(missing_ok=True)
        for old in target.glob("built-with-*.done"):
            old.unlink()
        stamp.touch()
    say(f"✓ jaeger {JAEGER_VERSION} built ({time.monotonic() - began:.1f}s)")


async def _step(
    argv: list[str], log_path: Path, env: Mapping[str, str], cwd: Path, *, nice: bool = False
) -> None:
    await run_go_step(
        argv,
        log_path,
        env,
        cwd,
        what="jaeger install",
        timeout_s=INSTALL_TIMEOUT_S,
        label_words=2,
        nice=nice,
    )


@dataclass(eq=False, kw_only=True)
class JaegerServer(ManagedServer):
    """Jaeger v2 with in-memory storage: OTLP/HTTP in, the query API out, both on loopback.
    Traces live as long as the process (at most `max_traces` of them)."""

    name = "jaeger"
    config_file = "jaeger.yaml"

    otlp_port: int = 4318
    query_port: int = 16686
    max_traces: int = 100_000

    @property
    def otlp_endpoint(self) -> str:
        """What a service's `ARC_TELEMETRY__OTLP_ENDPOINT` is set to."""
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    async def install(self) -> None:
        await install_jaeger(self.log_dir, say=lambda _line: None)

    def config_text(self) -> str:
        # Only the two ports asked for are opened. The query's gRPC API and the collector's
        # own metrics would otherwise take fixed ports (16685, 8888) and a second Jaeger (a
        # test's, beside `make run`) could not start: gRPC gets a port the kernel picks, the
        # collector's metrics are off. Health is the query API answering (no healthcheck
        # extension, no extra port).
        return "\n".join(
            [
                "# Written by arc_stack.jaeger on every start; edits are overwritten.",
                "service:",
                "  extensions: [jaeger_storage, jaeger_query]",
                "  pipelines:",
                "    traces:",
                "      receivers: [otlp]",
                "      processors: [batch]",
                "      exporters: [jaeger_storage_exporter]",
                "  telemetry:",
                "    resource:",
                "      service.name: jaeger",
                "    metrics:",
                "      level: none",
                "    logs:",
                "      level: info",
                "extensions:",
                "  jaeger_query:",
                "    storage:",
                "      traces: memstore",
                # Its own spans would go to an OTLP/gRPC collector on 4317: none is there.
                "    enable_tracing: false",
                "    http:",
                f"      endpoint: 127.0.0.1:{self.query_port}",
                "    grpc:",
                "      endpoint: 127.0.0.1:0",
                "  jaeger_storage:",
                "    backends:",
                "      memstore:",
                "        memory:",
                f"          max_traces: {self.max_traces}",
                "receivers:",
                "  otlp:",
                "    protocols:",
                "      http:",
                f"        endpoint: 127.0.0.1:{self.otlp_port}",
                "processors:",
                "  batch:",
                # Stored within ~200 ms of arriving: a test reads a trace right after its turn.
                "    timeout: 200ms",
                "exporters:",
                "  jaeger_storage_exporter:",
                "    trace_storage: memstore",
                "",
            ]
        )

    def command(self) -> list[str]:
        binary = jaeger_binary()
        if not binary.is_file():
            raise ServerStartError(
                f"jaeger {JAEGER_VERSION} is not built at {binary}: "
                "run `make install` (or arc_stack.jaeger.install_jaeger) first"
            )
        return [str(binary), "--config", str(self.config_path)]

    async def healthy(self) -> bool:
        return await http_ok(f"{self.query_url}/api/services")


def jaeger_available() -> bool:
    """True when a build can happen or has happened (for fixtures that skip without Go)."""
    return (
        jaeger_installed()
        or shutil.which("go") is not None
        or Path("/usr/local/go/bin/go").is_file()
    )

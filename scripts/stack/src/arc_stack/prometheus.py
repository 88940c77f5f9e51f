"""Prometheus from Debian's `prometheus` package (2.42: `prometheus` and `promtool`),
scraping every part of the mesh that serves Prometheus metrics, with Arc's alert rules.

What it scrapes (`ScrapeTargets`): NATS through `arc_stack.nats_metrics` (nats-server serves
only JSON, and its official exporter cannot be obtained here), Pulsar's `/metrics` on its
admin port, LiveKit's Prometheus port, each Arc service's `/metrics`, and the supervisor of
`make run` itself (`scrape_supervisor`: restarts and which parts are up).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from arc_stack.install_lock import exclusive
from arc_stack.livekit import LiveKitServer
from arc_stack.paths import cache_dir, repo_root
from arc_stack.server import ManagedServer, ServerStartError, http_ok, log_tail, run_logged

DEBIAN_PACKAGE = "prometheus"
PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
PROMTOOL_BINARY = Path("/usr/bin/promtool")
# apt-get update plus a 22 MB download and unpack; minutes on a slow mirror.
INSTALL_TIMEOUT_S = 900.0


def deployments_dir() -> Path:
    return repo_root() / "deployments" / "prometheus"


def alert_rules_path() -> Path:
    return deployments_dir() / "alerts.yml"


def installed() -> bool:
    return PROMETHEUS_BINARY.is_file() and PROMTOOL_BINARY.is_file()


async def install_prometheus(log_dir: Path, say: Callable[[str], None] | None = print) -> None:
    """Install Debian's `prometheus` with apt-get when `prometheus` or `promtool` is missing;
    a no-op (one stat per binary) when both are there. Needs root; otherwise the error says
    the one command to run. The package's own service is not started (no init system here,
    and `make run` starts its own Prometheus on loopback)."""
    if installed():
        return
    async with exclusive(cache_dir() / "prometheus" / ".apt.lock"):
        if installed():  # another process installed it while we waited
            return
        if os.geteuid() != 0:
            raise ServerStartError(
                "prometheus is not installed and installing it needs root: run "
                "`sudo apt-get install --no-install-recommends prometheus` (Debian 12 ships "
                "2.42), or leave it out with ARC_STACK_SKIP=prometheus"
            )
        apt = shutil.which("apt-get")
        if apt is None:
            raise ServerStartError(
                "prometheus is not installed and this machine has no apt-get: install "
                "Prometheus 2.42 or newer so that `prometheus` and `promtool` are in /usr/bin"
            )
        log_path = log_dir / "prometheus-install.log"
        if say is not None:
            say("  … installing Prometheus from Debian (apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = [apt, "install", "-y", "--no-install-recommends", DEBIAN_PACKAGE]
        code = await run_logged(
            install, log_path, label="apt-get install", timeout_s=INSTALL_TIMEOUT_S, env=env
        )
        if code != 0:
            # Stale package lists are the usual cause: refresh them once and try again.
            await run_logged(
                [apt, "update"], log_path, label="apt-get update", timeout_s=INSTALL_TIMEOUT_S
            )
            code = await run_logged(
                install, log_path, label="apt-get install", timeout_s=INSTALL_TIMEOUT_S, env=env
            )
        if code != 0 or not installed():
            raise ServerStartError(
                f"prometheus install: `apt-get install {DEBIAN_PACKAGE}` failed with exit code "
                f"{code}; log: {log_path}\n{log_tail(log_path)}"
            )


@dataclass
class ScrapeJob:
    """One Prometheus job: where to scrape and under which path."""

    name: str
    targets: list[str]
    metrics_path: str = "/metrics"


@dataclass
class ScrapeTargets:
    jobs: list[ScrapeJob] = field(default_factory=list)

    def add(self, name: str, *addresses: str, metrics_path: str = "/metrics") -> None:
        self.jobs.append(ScrapeJob(name, list(addresses), metrics_path))


def prometheus_config(
    targets: ScrapeTargets,
    *,
    scrape_interval_s: float,
    rule_files: Sequence[Path],
    self_address: str,
) -> str:
    """The server's configuration. JSON is valid YAML, and `json` needs no extra package."""
    interval = f"{int(scrape_interval_s * 1000)}ms"
    jobs = [ScrapeJob("prometheus", [self_address]), *targets.jobs]
    config = {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            # A scrape must end before the next one starts.
            "scrape_timeout": interval,
            "external_labels": {"mesh": "arc-local"},
        },
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job.name,
                "metrics_path": job.metrics_path,
                "static_configs": [{"targets": job.targets}],
            }
            for job in jobs
        ],
    }
    return (
        "# Written by arc_stack.prometheus on every start; edits are overwritten.\n"
        + json.dumps(config, indent=2)
        + "\n"
    )


@dataclass(eq=False, kw_only=True)
class PrometheusServer(ManagedServer):
    name = "prometheus"
    config_file = "prometheus.yml"

    port: int = 9090
    targets: ScrapeTargets = field(default_factory=ScrapeTargets)
    scrape_interval_s: float = 5.0
    rule_files: Sequence[Path] = field(default_factory=lambda: [alert_rules_path()])
    retention: str = "2d"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        return prometheus_config(
            self.targets,
            scrape_interval_s=self.scrape_interval_s,
            rule_files=self.rule_files,
            self_address=f"127.0.0.1:{self.port}",
        )

    async def install(self) -> None:
        await install_prometheus(self.log_dir, say=None)

    async def prepare(self) -> None:
        await super().prepare()
        await check_config(self.config_path)

    def command(self) -> list[str]:
        if not PROMETHEUS_BINARY.is_file():
            raise ServerStartError(
                f"prometheus is not installed at {PROMETHEUS_BINARY}: run `make install` first"
            )
        return [
            str(PROMETHEUS_BINARY),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # POST /-/reload picks up edited alert rules without a restart.
            "--web.enable-lifecycle",
        ]

    async def healthy(self) -> bool:
        return await http_ok(f"{self.url}/-/ready")


def scrape_supervisor(parts: Sequence[ManagedServer], port: int) -> None:
    """Have the Prometheus among `parts` (if any) scrape the supervisor's restart metrics
    (`arc_supervisor_*`, served by `make run` itself on `port`) as the job `supervisor`."""
    for part in parts:
        if isinstance(part, PrometheusServer) and all(
            job.name != "supervisor" for job in part.targets.jobs
        ):
            part.targets.add("supervisor", f"127.0.0.1:{port}")


async def promtool(*args: str) -> tuple[int, str]:
    """Run `promtool` and return its exit code and combined output."""
    if not installed():
        raise ServerStartError(f"promtool is not installed at {PROMTOOL_BINARY}")
    proc = await asyncio.create_subprocess_exec(
        str(PROMTOOL_BINARY),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


async def check_config(path: Path) -> None:
    """`promtool check config` (which also checks the rule files it names); a bad config
    fails the start with promtool's own words instead of a crash loop."""
    code, out = await promtool("check", "config", str(path))
    if code != 0:
        raise ServerStartError(f"prometheus config {path} is invalid:\n{out}")


@dataclass(eq=False, kw_only=True)
class MeteredLiveKitServer(LiveKitServer):
    """The LiveKit server with its Prometheus endpoint on `metrics_port` (loopback; the
    server binds its Prometheus listener to the same `--bind` address). LiveKit reads every
    config key from a `LIVEKIT_<KEY>` variable too, which is how the port is set here."""

    metrics_port: int

    def environment(self) -> Mapping[str, str]:
        return {**super().environment(), "LIVEKIT_PROMETHEUS_PORT": str(self.metrics_port)}

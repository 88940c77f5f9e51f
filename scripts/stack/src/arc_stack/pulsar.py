"""Pulsar standalone (broker + one bookie + RocksDB metadata) on Java 17, from the official
binary distribution on Maven Central (see deployments/pulsar/pom.xml)."""

from __future__ import annotations

import hashlib
import os
import shutil
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from arc_common.errors import ArcError
from arc_common.subjects import ensure_pulsar_namespaces

from arc_stack.install_lock import exclusive
from arc_stack.paths import cache_dir, repo_root
from arc_stack.server import ManagedServer, ServerStartError, http_ok, run_step

DEPLOYMENT_DIR = Path("deployments") / "pulsar"
# The cluster standalone registers (`clusterName` of the configuration it is given), which the
# stack waits for and the tenant allows.
CLUSTER = "standalone"
# A cold download of the distribution (about 245 MB) on a slow link.
INSTALL_TIMEOUT_S = 1800.0

# The flags the official `bin/pulsar` launcher passes on Java 17: Netty, BookKeeper and the
# metrics code reach into JDK internals, and the metadata drivers are chosen by property.
JVM_FLAGS = (
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.util.zip=ALL-UNNAMED",
    "--add-opens", "java.base/java.nio=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-opens", "java.base/sun.net=ALL-UNNAMED",
    "--add-opens", "java.management/sun.management=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.platform=ALL-UNNAMED",
    "-Dlog4j2.is.webapp=false",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djute.maxbuffer=10485760",
    "-Djava.net.preferIPv4Stack=true",
    "-Dbookkeeper.metadata.bookie.drivers="
    "org.apache.pulsar.metadata.bookkeeper.PulsarMetadataBookieDriver",
    "-Dbookkeeper.metadata.client.drivers="
    "org.apache.pulsar.metadata.bookkeeper.PulsarMetadataClientDriver",
)  # fmt: skip
# Sized for a 2-core machine that also runs the rest of the mesh.
JVM_MEMORY = (
    "-Xms256m",
    "-Xmx768m",
    "-XX:MaxDirectMemorySize=512m",
    "-XX:+UseG1GC",
    "-XX:ParallelGCThreads=2",
    "-XX:ConcGCThreads=1",
    "-XX:+ExitOnOutOfMemoryError",
)


def deployment_dir() -> Path:
    return repo_root() / DEPLOYMENT_DIR


def _tool(name: str, why: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ServerStartError(f"pulsar: `{name}` is not on PATH; it is needed {why}")
    return found


def pulsar_lib_dir() -> Path:
    """The unpacked jars, keyed on the pom so a version change installs afresh."""
    pom = (deployment_dir() / "pom.xml").read_bytes()
    return cache_dir() / "pulsar" / hashlib.sha256(pom).hexdigest()[:12] / "lib"


@dataclass(eq=False, kw_only=True)
class PulsarServer(ManagedServer):
    name = "pulsar"
    # The JVM, the bookie and the broker start in 20-60 s on 2 busy cores.
    start_timeout_s = 240.0
    config_file = "standalone.conf"

    broker_port: int = 6650
    web_port: int = 8080
    bookie_port: int = 3181
    log_level: str = "info"

    @property
    def service_url(self) -> str:
        return f"pulsar://127.0.0.1:{self.broker_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # -- install -------------------------------------------------------------------------

    async def install(self) -> None:
        lib = pulsar_lib_dir()
        if (lib.parent / ".complete").is_file():
            return
        async with exclusive(lib.parent.parent / f".{lib.parent.name}.lock"):
            if (lib.parent / ".complete").is_file():  # another process installed it meanwhile
                return
            staging = lib.parent / f".staging-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            try:
                await self._unpack(staging)
                unpacked = sorted(staging.glob("apache-pulsar-*/lib"))
                if len(unpacked) != 1 or not any(unpacked[0].glob("*pulsar-broker-*.jar")):
                    raise ServerStartError(
                        f"pulsar install: the distribution unpacked without a lib/ holding "
                        f"pulsar-broker; log: {self.install_log_path}"
                    )
                shutil.rmtree(lib, ignore_errors=True)
                os.replace(unpacked[0], lib)
                (lib.parent / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n"))
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    async def _unpack(self, staging: Path) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            _tool("mvn", "to fetch the Pulsar jars from Maven Central"),
            "-B",
            "-q",
            "-f", str(deployment_dir() / "pom.xml"),
            "dependency:unpack-dependencies",
            f"-DoutputDirectory={staging}",
            # Markers under staging, so nothing of the install lands in the checkout.
            f"-DmarkersDirectory={staging / '.markers'}",
        ]  # fmt: skip
        await run_step(
            argv,
            self.install_log_path,
            what="pulsar install",
            label="mvn",
            command="mvn dependency:unpack-dependencies",
            timeout_s=INSTALL_TIMEOUT_S,
            cwd=staging,
        )

    # -- run -----------------------------------------------------------------------------

    def config_text(self) -> str:
        template = string.Template((deployment_dir() / "standalone.conf").read_text())
        return template.substitute(
            cluster=CLUSTER,
            broker_port=self.broker_port,
            web_port=self.web_port,
            data_dir=self.data_dir,
            loopback_interface="lo",
            bookie_http_enabled="false",
            bookie_http_port=0,
        )

    def command(self) -> list[str]:
        lib = pulsar_lib_dir()
        if not (lib.parent / ".complete").is_file():
            raise ServerStartError(
                f"pulsar jars are not installed at {lib}: run `make install` "
                "(or PulsarServer.install()) first"
            )
        return [
            _tool("java", "to run the Pulsar broker (Java 17)"),
            *JVM_MEMORY,
            *JVM_FLAGS,
            f"-Dlog4j.configurationFile={deployment_dir() / 'log4j2.xml'}",
            f"-Dpulsar.log.level={self.log_level}",
            "-cp", f"{lib}/*",
            "org.apache.pulsar.PulsarStandaloneStarter",
            "--config", str(self.config_path),
            "--metadata-dir", str(self.data_dir / "metadata"),
            "--bookkeeper-dir", str(self.data_dir / "bookkeeper"),
            "--bookkeeper-port", str(self.bookie_port),
            "--advertised-address", "127.0.0.1",
            "--no-functions-worker",
            "--no-stream-storage",
        ]  # fmt: skip

    def environment(self) -> Mapping[str, str]:
        # A PULSAR_* or JAVA_TOOL_OPTIONS from the caller's shell would change this broker.
        return {"JAVA_TOOL_OPTIONS": ""} if "JAVA_TOOL_OPTIONS" in os.environ else {}

    async def healthy(self) -> bool:
        # The broker's own health check writes and reads a heartbeat topic: it passes only
        # when the bookie, the metadata store and the broker all work. Standalone registers
        # its cluster through its own admin API only after the broker is up, so the health
        # check can pass first, and a tenant created then names no cluster (a CI run: HTTP
        # 412 "Clusters cannot be empty or blank"): up means the cluster is there too.
        health = f"{self.admin_url}/admin/v2/brokers/health"
        cluster = f"{self.admin_url}/admin/v2/clusters/{CLUSTER}"
        broker_up = await http_ok(health, timeout_s=5.0, body="ok")
        return broker_up and await http_ok(cluster, timeout_s=5.0)

    async def after_start(self) -> None:
        await ensure_tenant(self.admin_url)


async def ensure_tenant(admin_url: str) -> None:
    """The contract's tenant and namespaces (`arc_common.subjects.ensure_pulsar_namespaces`,
    which the events service runs too); idempotent, so every start may run it."""
    async with httpx.AsyncClient(base_url=admin_url, timeout=30.0) as client:
        try:
            await ensure_pulsar_namespaces(client)
        except ArcError as exc:
            raise ServerStartError(f"pulsar: {exc.message}") from None

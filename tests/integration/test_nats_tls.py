"""NATS over TLS (`ARC_NATS__TLS_*`), against a real nats-server with a certificate made here
by openssl: a client that trusts the CA talks; one without TLS, or trusting another CA, is
refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest
import pytest_asyncio
from arc_common.nats_connection import connect
from arc_common.settings import NatsSettings
from arc_stack.nats import NatsServer
from arc_stack.server import free_port

pytestmark = pytest.mark.integration


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
        cwd=directory,
    )  # fmt: skip


def _server_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by the test CA `ca`."""
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return directory / "server.pem", directory / "server.key"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tls_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NatsServer]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates (Debian's openssl)")
    root: Path = tmp_path_factory.mktemp("nats-tls")
    certs = root / "certs"
    certs.mkdir()
    _ca(certs, "ca")
    _ca(certs, "other-ca")
    server = NatsServer(
        root / "data",
        root / "logs",
        port=free_port(),
        monitor_port=free_port(),
        tls=_server_certificate(certs),
    )
    await server.start()
    yield server
    await server.stop()


def _settings(server: NatsServer, **tls: Path) -> NatsSettings:
    return NatsSettings(
        url=f"tls://127.0.0.1:{server.port}", connect_attempts=1, connect_timeout_s=3, **tls
    )


async def test_a_client_that_trusts_the_ca_talks_over_tls(tls_server: NatsServer) -> None:
    assert tls_server.tls is not None
    ca = tls_server.tls[0].parent / "ca.pem"
    nc = await connect(_settings(tls_server, tls_ca_file=ca), name="tls-test")
    try:
        sub = await nc.subscribe("tls.check")
        await nc.publish("tls.check", b"over tls")
        message = await sub.next_msg(timeout=5)
        assert message.data == b"over tls"
        # The server's own view: this connection is TLS.
        async with httpx.AsyncClient(timeout=5) as http:
            monitor = f"http://127.0.0.1:{tls_server.monitor_port}/connz"
            connections = (await http.get(monitor)).json()["connections"]
        assert [c["name"] for c in connections] == ["tls-test"], connections
        assert connections[0]["tls_version"].startswith("1."), connections
    finally:
        await nc.close()


async def test_plain_or_untrusted_clients_are_refused(tls_server: NatsServer) -> None:
    assert tls_server.tls is not None
    other = tls_server.tls[0].parent / "other-ca.pem"
    plain = NatsSettings(
        url=f"nats://127.0.0.1:{tls_server.port}",
        connect_attempts=1,
        connect_timeout_s=3,
        max_reconnect_attempts=0,
    )
    untrusted = _settings(tls_server, tls_ca_file=other).model_copy(
        update={"max_reconnect_attempts": 0}
    )
    for settings in (plain, untrusted):
        # Refused: nats.py does not surface the failed handshake, it never becomes connected
        # (the trusted client above connects in milliseconds); the server says why.
        with pytest.raises((OSError, nats.errors.Error)):
            nc = await asyncio.wait_for(connect(settings, name="tls-test"), timeout=5)
            await nc.close()
    log = tls_server.log_path.read_text()
    assert log.count("TLS handshake error") >= 2, log[-2000:]

"""`python -m arc_events` as `make run` starts it, on a real Postgres: HTTP up, and on SIGTERM
or SIGINT a drain (consumers, relay, Pulsar clients and the pool closed in order) and exit
status 0. The broker is left unreachable on purpose: a stop must not wait for it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from arc_stack.server import free_ports

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_python_m_arc_events_serves_and_drains_on_a_stop_signal(
    events_dsn: str, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    http_port, broker_port, admin_port = free_ports(3)
    env = dict(
        os.environ,
        ARC_POSTGRES__DSN=events_dsn,
        ARC_PULSAR__SERVICE_URL=f"pulsar://127.0.0.1:{broker_port}",
        ARC_PULSAR__ADMIN_URL=f"http://127.0.0.1:{admin_port}",
        ARC_PULSAR__OPERATION_TIMEOUT_S="5",
        ARC_EVENTS__HTTP_PORT=str(http_port),
        ARC_LOG__JSON="false",
    )
    log_path = tmp_path / "events.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "arc_events", env=env, stdout=log, stderr=log
        )
    try:
        body: dict[str, object] = {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.returncode is None and not body:
                try:
                    body = (await http.get("/healthz")).json()
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        assert body.get("roles") == ["relay", "analytics", "audit"], log_path.read_text()
        # Running, with its tasks live, but not healthy without a broker.
        assert body["status"] == "unhealthy" and "dead_tasks" not in body
        proc.send_signal(stop_signal)
        began = time.monotonic()
        code = await asyncio.wait_for(proc.wait(), timeout=30)
        took = time.monotonic() - began
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log_text = log_path.read_text()
    assert code == 0, log_text
    # `make stop` gives a service 15 s before SIGKILL.
    assert took < 15, log_text
    assert f"stopping on {stop_signal.name}" in log_text
    assert "arc-events stopped" in log_text
    assert "Traceback" not in log_text

"""`python -m arc_brain` as `make run` starts it: settings from the environment, NATS and
HTTP up, a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import httpx
import pytest
from arc_common.streaming import StreamingClient
from arc_stack.nats import NatsServer
from arc_stack.postgres import PostgresServer
from arc_stack.server import free_port

from tests.integration.brain.helpers import answer_text, new_id

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_python_m_arc_brain_serves_and_stops_cleanly(
    nats_server: NatsServer,
    postgres_server: PostgresServer,
    client: StreamingClient,
    subject_prefix: str,
) -> None:
    port = free_port()
    env = dict(
        os.environ,
        ARC_NATS__URL=nats_server.url,
        ARC_NATS__SUBJECT_PREFIX=subject_prefix,
        ARC_POSTGRES__DSN=postgres_server.dsn(),
        ARC_BRAIN__HTTP_PORT=str(port),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arc_brain",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 90
            health: httpx.Response | None = None
            while time.monotonic() < deadline and proc.returncode is None:
                try:
                    health = await http.get("/healthz")
                    if health.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            assert health is not None and health.status_code == 200, "brain never became healthy"
            assert health.json()["status"] == "ok"
        text = await answer_text(
            client, subject_prefix, "hello", session_id=new_id("s"), user_id=new_id("u")
        )
        assert text.startswith("Hello!")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=20)
    assert code == 0

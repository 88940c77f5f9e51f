"""`arc_stack.nats_metrics` against a real nats-server: what Prometheus scrapes for NATS."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from arc_common.nats_connection import connect
from arc_stack.nats_metrics import NatsCollector
from arc_stack.server import free_port
from prometheus_client import CollectorRegistry

from tests.fixtures.nats import SessionNats

pytestmark = pytest.mark.integration


def _registry(monitor_url: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(NatsCollector(monitor_url))
    return registry


async def test_counts_follow_the_messages_the_server_carries(nats_server: SessionNats) -> None:
    registry = _registry(f"http://127.0.0.1:{nats_server.monitor_port}")

    def value(name: str) -> float:
        sample = registry.get_sample_value(name)
        assert sample is not None, name
        return sample

    assert value("nats_up") == 1.0
    before_in, before_conns = value("gnatsd_varz_in_msgs"), value("gnatsd_varz_connections")
    nc = await connect(nats_server.settings(), name="metrics-test")
    try:
        for i in range(50):
            await nc.publish(f"metrics.test.{i}", b"x" * 10)
        await nc.flush()
        # /varz is the server's own count, updated as it reads: give it a moment.
        deadline = time.monotonic() + 5
        while value("gnatsd_varz_in_msgs") - before_in < 50:
            assert time.monotonic() < deadline, value("gnatsd_varz_in_msgs") - before_in
            await asyncio.sleep(0.1)
        assert value("gnatsd_varz_connections") >= before_conns + 1
        assert value("gnatsd_varz_in_bytes") >= 500
        assert value("gnatsd_varz_mem") > 1_000_000  # a running Go process
    finally:
        await nc.drain()


async def test_an_unreachable_server_is_reported_down_not_as_zeros() -> None:
    registry = _registry(f"http://127.0.0.1:{free_port()}")
    assert registry.get_sample_value("nats_up") == 0.0
    assert registry.get_sample_value("gnatsd_varz_connections") is None


async def test_the_exporter_process_serves_metrics_and_stops_on_sigterm(
    nats_server: SessionNats,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ARC_NATS_MONITOR_URL": f"http://127.0.0.1:{nats_server.monitor_port}",
        "ARC_NATS_METRICS_PORT": str(port),
    }
    process = subprocess.Popen(  # noqa: ASYNC220 (spawning does not block)
        [sys.executable, "-m", "arc_stack.nats_metrics"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = ""
        async with httpx.AsyncClient(timeout=2.0) as client:
            deadline = time.monotonic() + 30
            while "gnatsd_varz_connections" not in body:
                assert process.poll() is None and time.monotonic() < deadline, body
                try:
                    body = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
        assert "nats_up 1.0" in body
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 10)
    assert code == 0

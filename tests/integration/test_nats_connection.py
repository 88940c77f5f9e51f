"""The NATS connection every service opens (`arc_common.nats_connection.connect`), against the
session's real nats-server."""

from __future__ import annotations

import asyncio
import logging
import time

import nats.errors
import pytest
from arc_common.nats_connection import connect
from arc_common.settings import NatsSettings
from arc_stack.server import free_port
from nats.aio.client import Client
from nats.aio.msg import Msg

pytestmark = pytest.mark.integration


async def _cancel_mid_flush(nc: Client) -> None:
    """Start a flush and cancel it once its PING is out and it waits for the PONG: what a
    service's periodic task (the voice worker's TTS stats refresh) meets when it is stopped."""
    flush = asyncio.ensure_future(nc.flush())
    # Two turns of the loop: the PING is written and the flush waits on its PONG.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    flush.cancel()
    await asyncio.gather(flush, return_exceptions=True)


async def test_a_cancelled_flush_leaves_the_connection_working(
    nats_settings: NatsSettings, subject_prefix: str
) -> None:
    # nats.py 2.16 sets the result of the oldest PING's future when its PONG comes; a
    # cancelled flush left that future cancelled, the InvalidStateError ended the read loop,
    # and the connection went deaf while it still said connected (CI of 2026-12-07: a voice
    # worker's drain at teardown timed out after 10 s).
    nc = await connect(nats_settings, name="arc-test-cancelled-flush")
    try:
        subject = f"{subject_prefix}.echo"

        async def echo(msg: Msg) -> None:
            await msg.respond(msg.data)

        await nc.subscribe(subject, cb=echo)
        for round_ in range(20):
            await _cancel_mid_flush(nc)
            await nc.flush(timeout=2)
            reply = await nc.request(subject, f"{round_}".encode(), timeout=2)
            assert reply.data == f"{round_}".encode()
        assert nc.is_connected
    finally:
        await nc.drain()


async def test_a_server_that_never_answers_fails_start_up_after_the_attempts_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """nats.py alone retries a dead first server forever (under the settings' reconnect budget
    of -1): a service pointed at the wrong port hung at start-up, logging every 0.5 s."""
    port = free_port()
    settings = NatsSettings(url=f"nats://127.0.0.1:{port}", connect_attempts=3)
    caplog.set_level(logging.WARNING, logger="arc_common.nats_connection")
    started = time.monotonic()
    with pytest.raises(nats.errors.NoServersError):
        await asyncio.wait_for(connect(settings, name="arc-test-dead-server"), timeout=30)
    # Three attempts of two tries each, paced by nats.py's 0.5 s wait and the backoff.
    assert time.monotonic() - started < 15
    # This client's own failures: the session's loop may carry another client's too.
    failures = [
        r for r in caplog.records if f"Connect call failed ('127.0.0.1', {port})" in r.getMessage()
    ]
    assert len(failures) == 6, [r.getMessage() for r in failures]


async def test_once_connected_the_client_reconnects_as_the_settings_say(
    nats_settings: NatsSettings,
) -> None:
    nc = await connect(nats_settings, name="arc-test-reconnect-budget")
    try:
        assert nc.options["max_reconnect_attempts"] == nats_settings.max_reconnect_attempts == -1
    finally:
        await nc.drain()

"""Connecting to NATS: auth from settings, retried start-up, reconnects, drain on shutdown."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
from nats.aio.client import Client
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from arc_common.settings import NatsSettings

log = logging.getLogger(__name__)


class _Client(Client):
    """nats.py's client, with one defect mended: its `_process_pong` sets the result of the
    oldest PING's future, and a flush cancelled while it waited (a periodic task stopped
    mid-flush, or flush's own timeout) left that future cancelled. The InvalidStateError
    ended the read loop, so the connection stopped receiving while it still reported itself
    connected, and the next flush or drain timed out (nats-io/nats.py#624 is the same defect
    in the flusher). PONGs answer PINGs in order, so the oldest entry is this PONG's."""

    async def _process_pong(self) -> None:
        if self._pongs and self._pongs[0].done():
            self._pongs.pop(0)
            self._pongs_received += 1
            self._pings_outstanding = 0
            return
        await super()._process_pong()


def _options(settings: NatsSettings, name: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "servers": [settings.url],
        "name": settings.name or name,
        "connect_timeout": settings.connect_timeout_s,
        "reconnect_time_wait": settings.reconnect_wait_s,
        "max_reconnect_attempts": settings.max_reconnect_attempts,
        "allow_reconnect": True,
    }
    if settings.user:
        options["user"] = settings.user
    if settings.password:
        options["password"] = settings.password.get_secret_value()
    if settings.token:
        options["token"] = settings.token.get_secret_value()
    if settings.creds_file:
        options["user_credentials"] = str(settings.creds_file)
    if settings.uses_tls:
        options["tls"] = _tls_context(settings)

    async def disconnected() -> None:
        log.warning("nats disconnected", extra={"nats_url": settings.url})

    async def reconnected() -> None:
        log.info("nats reconnected", extra={"nats_url": settings.url})

    async def error(exc: Exception) -> None:
        log.warning("nats error: %s", exc, extra={"nats_url": settings.url})

    options.update(disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error)
    return options


def _tls_context(settings: NatsSettings) -> ssl.SSLContext:
    """Verifies the server against `tls_ca_file` (the system's CAs when unset); presents a
    client certificate when one is configured."""
    context = ssl.create_default_context(
        cafile=str(settings.tls_ca_file) if settings.tls_ca_file else None
    )
    if settings.tls_cert_file is not None:
        key = str(settings.tls_key_file) if settings.tls_key_file else None
        context.load_cert_chain(str(settings.tls_cert_file), key)
    return context


async def connect(settings: NatsSettings, *, name: str) -> Client:
    """Connect, retrying the first connection with exponential backoff (a server that is still
    starting is the normal case under `make run`)."""
    options = _options(settings, name)
    # nats.py retries a first server that does not answer for as long as reconnects are
    # allowed (forever under -1 or 0), so one attempt here would never end and
    # `connect_attempts` would mean nothing: each attempt tries the server twice (nats.py's
    # reconnect budget of 1), this loop paces the attempts, and the connection gets the
    # settings' reconnect budget once it is up.
    first_connection = {**options, "max_reconnect_attempts": 1}
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(settings.connect_attempts),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        retry=retry_if_exception_type((OSError, nats.errors.NoServersError, TimeoutError)),
        reraise=True,
    ):
        with attempt:
            nc = _Client()
            await nc.connect(**first_connection)
            nc.options["max_reconnect_attempts"] = settings.max_reconnect_attempts
            return nc
    raise AssertionError("unreachable")  # pragma: no cover


@asynccontextmanager
async def connection(settings: NatsSettings, *, name: str) -> AsyncIterator[Client]:
    """A connection for the lifespan of a service: drained (in-flight replies flushed) on exit."""
    nc = await connect(settings, name=name)
    try:
        yield nc
    finally:
        if not nc.is_closed:
            await nc.drain()

"""The test session's own NATS server holds the services under test to the permission matrix
`make run` applies: no anonymous client gets in, and each service connects as its own user."""

from __future__ import annotations

import httpx
import nats
import pytest
from nats.errors import Error as NatsError

from tests.fixtures.brain import RunningBrain
from tests.fixtures.nats import SessionNats
from tests.fixtures.tts import TtsWorker

pytestmark = [pytest.mark.integration]


async def test_an_anonymous_client_is_refused(nats_server: SessionNats) -> None:
    with pytest.raises((NatsError, OSError)):
        await nats.connect(
            nats_server.url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False
        )


async def test_the_services_under_test_connect_as_their_own_users(
    nats_server: SessionNats, brain_service: RunningBrain, tts_service: TtsWorker
) -> None:
    async with httpx.AsyncClient() as http:
        connz = await http.get(f"http://127.0.0.1:{nats_server.monitor_port}/connz?auth=1")
    users = {c.get("name", ""): c.get("authorized_user") for c in connz.json()["connections"]}
    assert users.get("arc-tts-test-worker") == "tts", users
    brains = [user for name, user in users.items() if "brain" in name]
    assert brains and set(brains) == {"brain"}, users
    assert None not in users.values(), users

"""The real LiveKit server (`livekit-server --dev`, built from the Go module proxy): the room
service API, access tokens it accepts, and a participant joining over the signalling socket."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
import pytest_asyncio
from arc_stack.livekit import LIVEKIT_VERSION, LiveKitServer
from livekit import api
from livekit.protocol import rtc as proto_rtc

pytestmark = pytest.mark.integration

# The signalling protocol revision the current client SDKs speak.
SIGNAL_PROTOCOL = 16


def _room_name() -> str:
    return f"arc-test-{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture(loop_scope="session")
async def lkapi(livekit_server: LiveKitServer) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    yield client
    await client.aclose()


def _join_token(server: LiveKitServer, identity: str, room: str) -> str:
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(identity)
        .with_name(identity.title())
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_ttl(datetime.timedelta(minutes=5))
        .to_jwt()
    )


async def test_health_and_version(livekit_server: LiveKitServer) -> None:
    assert livekit_server.running
    assert livekit_server.binary_path.parts[-2] == LIVEKIT_VERSION
    async with httpx.AsyncClient(timeout=2.0) as client:
        r = await client.get(livekit_server.http_url)
    assert r.status_code == 200
    assert r.text.strip() == "OK"
    assert await livekit_server.healthy()


async def test_install_is_a_no_op_when_built(livekit_server: LiveKitServer) -> None:
    before = livekit_server.binary_path.stat().st_mtime_ns
    await livekit_server.install()
    assert livekit_server.binary_path.stat().st_mtime_ns == before


async def test_room_lifecycle(lkapi: api.LiveKitAPI) -> None:
    name = _room_name()
    created = await lkapi.room.create_room(
        api.CreateRoomRequest(name=name, empty_timeout=60, max_participants=4)
    )
    assert created.name == name
    assert created.sid.startswith("RM_")
    assert created.max_participants == 4

    listed = await lkapi.room.list_rooms(api.ListRoomsRequest())
    assert name in {room.name for room in listed.rooms}
    only = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[name]))
    assert [room.sid for room in only.rooms] == [created.sid]

    await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))
    after = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[name]))
    assert after.rooms == []


@pytest.mark.parametrize(
    "keys",
    [
        ("ours", "not-the-secret"),
        # The server runs with `--dev` (loopback media) but with keys of its own: tokens signed
        # with LiveKit's published dev keys open nothing.
        ("devkey", "secret"),
    ],
    ids=["wrong-secret", "dev-keys"],
)
async def test_other_keys_are_refused(livekit_server: LiveKitServer, keys: tuple[str, str]) -> None:
    assert (livekit_server.api_key, livekit_server.api_secret) != ("devkey", "secret")
    key, secret = keys
    client = api.LiveKitAPI(
        livekit_server.url, livekit_server.api_key if key == "ours" else key, secret
    )
    try:
        with pytest.raises(api.TwirpError) as refused:
            await client.room.list_rooms(api.ListRoomsRequest())
        assert refused.value.status == 401
    finally:
        await client.aclose()


def test_access_token_round_trips(livekit_server: LiveKitServer) -> None:
    room = _room_name()
    token = _join_token(livekit_server, "caller-1", room)

    claims = api.TokenVerifier(livekit_server.api_key, livekit_server.api_secret).verify(token)
    assert claims.identity == "caller-1"
    assert claims.name == "Caller-1"
    assert claims.video is not None
    assert claims.video.room_join is True
    assert claims.video.room == room

    with pytest.raises(Exception, match=r"[Ss]ignature"):
        api.TokenVerifier(livekit_server.api_key, "another-secret").verify(token)


async def test_participant_joins_over_signalling(
    livekit_server: LiveKitServer, lkapi: api.LiveKitAPI
) -> None:
    """A participant that completes the signalling join (no media) is in the room: what the
    voice worker and a browser do first. The `livekit` rtc SDK is not a dependency here."""
    room = _room_name()
    await lkapi.room.create_room(api.CreateRoomRequest(name=room))
    token = _join_token(livekit_server, "caller-2", room)
    url = f"{livekit_server.url}/rtc"
    params = {"access_token": token, "protocol": str(SIGNAL_PROTOCOL), "auto_subscribe": "1"}
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(url, params=params) as ws:
            message = await ws.receive(timeout=10)
            assert message.type == aiohttp.WSMsgType.BINARY, message
            response = proto_rtc.SignalResponse()
            response.ParseFromString(message.data)
            assert response.WhichOneof("message") == "join"
            join = response.join
            assert join.room.name == room
            assert join.participant.identity == "caller-2"
            assert join.server_info.version == LIVEKIT_VERSION.removeprefix("v")

            listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
            assert [p.identity for p in listed.participants] == ["caller-2"]
            assert listed.participants[0].sid == join.participant.sid
    finally:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))

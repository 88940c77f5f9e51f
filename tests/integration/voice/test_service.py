"""`python -m arc_voice` as a real process on the test session's NATS, LiveKit and Postgres:
health, metrics, joining rooms, tokens for the browser page, and bad input answered with the
contract's error codes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
import pytest_asyncio
from arc_common import subjects
from arc_stack.livekit import LiveKitServer
from arc_stack.postgres import PostgresServer
from arc_tts.synthesizer import Synthesizer
from arc_voice.models import VoiceModels
from arc_voice.plugins.stt import to_whisper_audio
from arc_voice.talk import main as talk_main
from arc_voice.talk import read_wav, write_wav
from livekit import api, rtc
from nats.aio.client import Client

from tests.fixtures.brain import BrainFactory
from tests.fixtures.http_auth import API_KEY, AUTH
from tests.fixtures.nats import SessionNats
from tests.fixtures.tts import running_worker
from tests.fixtures.voice import SpeechSynth, VoiceProcess, room_name
from tests.fixtures.voice import voice_process as start_voice_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]


PREFIX = f"t{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def voice_process(
    nats_server: SessionNats,
    livekit_server: LiveKitServer,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[VoiceProcess]:
    """One worker process for the module (start-up loads the models: seconds)."""
    async with start_voice_process(
        nats=nats_server.settings("voice", subject_prefix=PREFIX),
        dsn=postgres_server.dsn(),
        livekit=livekit_server,
        log_path=tmp_path_factory.mktemp("voice") / "arc_voice.log",
    ) as running:
        yield running
    # A drain (HTTP stopped, rooms left, NATS drained) and exit status 0: arc_common.service.
    log_text = running.log_path.read_text()
    assert running.returncode == 0, log_text[-3000:]
    assert "stopping on SIGTERM" in log_text and "arc-voice stopped" in log_text, log_text[-3000:]


async def test_health_metrics_and_the_page(voice_process: VoiceProcess) -> None:
    async with httpx.AsyncClient(base_url=voice_process.url, timeout=5.0) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["detail"]["nats"] == "connected"
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert "arc_voice_rooms_joined" in metrics.text
        page = await client.get("/")
        assert page.status_code == 200 and "livekit-client" in page.text
        script = await client.get("/static/talk.js")
        assert script.status_code == 200 and "setMicrophoneEnabled" in script.text


async def test_token_joins_the_agent_to_the_room(
    voice_process: VoiceProcess, livekit_server: LiveKitServer
) -> None:
    room = room_name()
    async with httpx.AsyncClient(base_url=voice_process.url, timeout=20.0, headers=AUTH) as client:
        answer = await client.get("/token", params={"room": room, "identity": "dana"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["room"] == room and body["identity"] == "dana"
        grants = api.TokenVerifier(livekit_server.api_key, livekit_server.api_secret).verify(
            body["token"]
        )
        assert grants.identity == "dana" and grants.video is not None
        assert grants.video.room == room and grants.video.room_join
        # The smallest grants a person needs: their microphone, data, nothing else.
        assert grants.video.can_publish_sources == ["microphone"]
        assert not grants.video.room_admin and not grants.video.room_create
        assert not grants.video.can_update_own_metadata
        rooms = (await client.get("/rooms")).json()["rooms"]
        assert room in rooms
    lk = api.LiveKitAPI(livekit_server.url, livekit_server.api_key, livekit_server.api_secret)
    try:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    finally:
        await lk.aclose()
    assert [p.identity for p in listed.participants] == ["arc-agent"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/token", {"room": "has space", "identity": "erin"}),
        ("/token", {"room": "ok-room", "identity": "arc-agent-fake"}),
        ("/token", {"room": "ok-room", "identity": "bad/identity"}),
    ],
)
async def test_bad_input_gets_a_contract_error(
    voice_process: VoiceProcess, path: str, params: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=voice_process.url, timeout=5.0, headers=AUTH) as client:
        answer = await client.get(path, params=params)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "bad_request"
        assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/token?room=r1&identity=ann"),
        ("GET", "/rooms"),
        ("GET", "/rooms/r1/people/ann/replies"),
        ("POST", "/rooms/r1/agent"),
        ("DELETE", "/rooms/r1/agent"),
    ],
)
async def test_private_routes_need_the_api_key(
    voice_process: VoiceProcess, method: str, path: str
) -> None:
    """Tokens and room control are refused without the key or with a wrong one (401, the
    contract's `bad_request`), and the same route answers with the key right after."""
    async with httpx.AsyncClient(base_url=voice_process.url, timeout=20.0) as client:
        for headers in (
            {},
            {"authorization": "Bearer " + "x" * len(API_KEY)},
            {"x-api-key": API_KEY[:-1]},
            {"authorization": f"Basic {API_KEY}"},
        ):
            refused = await client.request(method, path, headers=headers)
            assert refused.status_code == 401, (headers, refused.text)
            assert refused.json()["error"]["code"] == "bad_request", refused.text
        allowed = await client.request(method, path, headers={"x-api-key": API_KEY})
        assert allowed.status_code == 200, allowed.text


async def test_a_bad_announcement_is_refused_and_the_worker_keeps_serving(
    voice_process: VoiceProcess, nc: Client
) -> None:
    subject = subjects.prefixed(PREFIX, subjects.VOICE_ANNOUNCE)
    valid = msgspec.msgpack.encode({"text": "Hello.", "room": "r"})
    for payload, headers in (
        (b"\xc1not msgpack", None),
        (msgspec.msgpack.encode({"text": "", "room": "r"}), {"arc-schema": "announce/1"}),
        (valid, {"arc-schema": "brain.request/1"}),  # a message that says it is another
    ):
        reply = await nc.request(subject, payload, timeout=5.0, headers=headers)
        assert reply.headers is not None and reply.headers["arc-schema"] == "announce.reply/1"
        body = msgspec.msgpack.decode(reply.data)
        assert body["v"] == 1
        assert body["error"]["code"] == "bad_request" and body["error"]["message"]
    async with httpx.AsyncClient(base_url=voice_process.url, timeout=5.0) as client:
        metrics = (await client.get("/metrics")).text
        assert 'arc_voice_announcements_total{outcome="rejected"} 3.0' in metrics
        assert (await client.get("/healthz")).status_code == 200


def test_generate_token_script(livekit_server: LiveKitServer) -> None:
    script = Path(__file__).parents[3] / "scripts" / "livekit" / "generate-token"
    env = {
        **os.environ,
        "ARC_LIVEKIT__API_KEY": livekit_server.api_key,
        "ARC_LIVEKIT__API_SECRET": livekit_server.api_secret,
    }
    done = subprocess.run(
        [sys.executable, str(script), "--room", "demo", "--identity", "zoe", "--ttl", "120"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    grants = api.TokenVerifier(livekit_server.api_key, livekit_server.api_secret).verify(
        done.stdout.strip()
    )
    assert grants.identity == "zoe" and grants.video is not None
    assert grants.video.room == "demo" and grants.video.room_join and grants.video.can_publish
    refused = subprocess.run(
        [sys.executable, str(script), "--room", "demo", "--identity", "x", "--ttl", "5"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert refused.returncode == 2 and "--ttl" in refused.stderr


async def test_talk_takes_one_turn_from_a_file(
    voice_process: VoiceProcess,
    nats_server: SessionNats,
    tts_synthesizer: Synthesizer,
    brain_factory: BrainFactory,
    speech: SpeechSynth,
    voice_models: VoiceModels,
    tmp_path: Path,
) -> None:
    await brain_factory(subject_prefix=PREFIX)
    pcm, rate = speech.say("What time is it?")
    question, reply = tmp_path / "question.wav", tmp_path / "reply.wav"
    # A recording's trailing silence is not part of the question: the agent answers during it,
    # and the latency must count from the end of the speech, not from the end of the file.
    write_wav(question, pcm + bytes(2 * rate), rate)
    async with running_worker(nats_server, tts_synthesizer, PREFIX):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arc_voice.talk",
            str(question),
            str(reply),
            env=voice_process.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), 120)
        finally:
            if process.returncode is None:  # timed out: no talk client left behind
                process.kill()
                await process.wait()
    assert process.returncode == 0, output.decode()[-2000:]
    printed = output.decode()
    v2v = re.search(r"voice-to-voice (\d+) ms from the end of your speech", printed)
    eos = re.search(r"end-of-speech detection\s+(\d+) ms", printed)
    assert v2v is not None and eos is not None, printed
    # The VAD needs at least its silence window after the speech before it can call the end,
    # and the reply cannot be heard before that: counted from the file's end (a second later)
    # the figure would be smaller than the end-of-speech stage, or not found at all.
    assert int(eos.group(1)) >= 100, printed
    assert int(v2v.group(1)) > int(eos.group(1)), printed
    for stage in ("final transcript", "brain first delta", "TTS first chunk", "transport"):
        assert re.search(rf"{stage}\s+\d+ ms", printed), printed
    audio, reply_rate = read_wav(reply)
    assert len(audio) / 2 / reply_rate > 0.8
    assert voice_models.whisper is not None
    text = await voice_models.whisper.transcribe(
        to_whisper_audio(rtc.AudioFrame(audio, reply_rate, 1, len(audio) // 2))
    )
    assert len(text.split()) >= 3, text


async def test_talk_refuses_a_file_that_is_not_a_wav(
    voice_process: VoiceProcess, tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"not a wav at all")
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        code = await asyncio.to_thread(talk_main, [str(bogus), str(tmp_path / "out.wav")])
    assert code == 2 and "not a WAV file" in stderr.getvalue()
    # A path that is not there, or a folder: one line, exit 2, no traceback.
    for unreadable, why in ((tmp_path / "missing.wav", "No such file"), (tmp_path, "directory")):
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            code = await asyncio.to_thread(talk_main, [str(unreadable), str(tmp_path / "o.wav")])
        said = stderr.getvalue()
        assert code == 2 and "cannot be read" in said and why in said, said
        assert "Traceback" not in said


def test_generate_token_script_needs_the_servers_keys() -> None:
    script = Path(__file__).parents[3] / "scripts" / "livekit" / "generate-token"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARC_LIVEKIT__")}
    done = subprocess.run(
        [sys.executable, str(script), "--room", "demo", "--identity", "zoe"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 2 and "ARC_LIVEKIT__API_SECRET" in done.stderr, done.stderr
    assert done.stdout == ""

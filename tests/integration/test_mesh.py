"""`make run` / `make status` / `make stop` as a person uses them: the real `arc` command
line, every part on private ports and a private state directory."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
from arc_common.streaming import StreamingClient
from arc_stack.paths import state_dir
from arc_stack.server import free_port
from arc_voice.ws_client import describe, take_turn

from tests.fixtures.voice import SpeechSynth
from tests.integration.brain.helpers import ask, request

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARC = [sys.executable, "-m", "arc_stack.cli"]


def _env(state: Path) -> dict[str, str]:
    ports = {
        "ARC_NATS_PORT": free_port(),
        "ARC_NATS_MONITOR_PORT": free_port(),
        "ARC_NATS_METRICS_PORT": free_port(),
        "ARC_POSTGRES_PORT": free_port(),
        "ARC_PULSAR_PORT": free_port(),
        "ARC_PULSAR_ADMIN_PORT": free_port(),
        "ARC_PULSAR_BOOKIE_PORT": free_port(),
        "ARC_LIVEKIT_PORT": free_port(),
        "ARC_LIVEKIT_RTC_TCP_PORT": free_port(),
        "ARC_LIVEKIT_UDP_PORT": free_port(),
        "ARC_BRAIN_HTTP_PORT": free_port(),
        "ARC_TTS_HTTP_PORT": free_port(),
        "ARC_VOICE_HTTP_PORT": free_port(),
        "ARC_EVENTS_HTTP_PORT": free_port(),
        "ARC_LLM_PORT": free_port(),
        "ARC_LIVEKIT_PROMETHEUS_PORT": free_port(),
        "ARC_PROMETHEUS_PORT": free_port(),
        "ARC_JAEGER_OTLP_PORT": free_port(),
        "ARC_JAEGER_QUERY_PORT": free_port(),
    }
    return {**os.environ, "ARC_STATE_DIR": str(state), **{k: str(v) for k, v in ports.items()}}


def _status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ARC, "status"], env=env, capture_output=True, text=True, timeout=60)


QUESTION = "What time is it?"


def _secrets_in_logs(state: Path, said: list[str]) -> list[str]:
    """Which of the mesh's secrets, or of the words of a conversation, a log of the running
    mesh holds: every part's own log under the state directory (docs/security.md, "Logs")."""
    passwords = json.loads((state / "nats-users.json").read_text())
    livekit = json.loads((state / "livekit-keys.json").read_text())
    secrets = {
        **{f"NATS password of {user}": password for user, password in passwords.items()},
        "LiveKit secret": livekit["secret"],
        "API key": (state / "api-key").read_text().strip(),
        **{f"words said: {text!r}": text for text in said},
    }
    logs = sorted((state / "logs").glob("*.log"))
    assert len(logs) >= 8, logs  # the servers' and the services' logs are all there
    return [
        f"{what} in {log.name}"
        for log in logs
        for what, value in secrets.items()
        if value in log.read_text(errors="replace")
    ]


async def _ask_as_voice(state: Path, env: dict[str, str]) -> str:
    url = f"nats://127.0.0.1:{env['ARC_NATS_PORT']}"
    with pytest.raises(nats.errors.Error, match=r"(?i)authorization"):
        await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
    password = json.loads((state / "nats-users.json").read_text())["voice"]
    nc = await nats.connect(url, user="voice", password=password, allow_reconnect=False)
    try:
        async with StreamingClient(nc) as client:
            chunks = await ask(client, "", request(QUESTION, session_id="mesh", user_id="mesh"))
    finally:
        await nc.close()
    return "".join(c.text or "" for c in chunks)


SPOKEN = "What can you do?"


async def _speak_to_the_worker(state: Path, env: dict[str, str]) -> list[str]:
    """One spoken turn through the mesh's voice worker (its socket, with the API key), so its
    speech-to-text, its turn and its playout log what they log at the default level: what the
    worker heard and each piece the agent said."""
    url = f"ws://127.0.0.1:{env['ARC_VOICE_HTTP_PORT']}/v1/voice"
    key = (state / "api-key").read_text().strip()
    turn = await take_turn(
        url, {"authorization": f"Bearer {key}"}, SpeechSynth().say(SPOKEN), user_id="mesh-speaker"
    )
    heard = [e["text"] for e in turn.of_type("transcript") if e["final"]]
    said = [e["text"] for e in turn.of_type("agent_text")]
    # The whole exchange as text: a repr of the events is cut short in pytest's report.
    exchange = describe(turn, turn.events[0][0]) if turn.events else "no events"
    assert heard and "what can you do" in heard[-1].lower() and said, exchange
    return [*heard, *said]


def _tts_workers_seen(env: dict[str, str], wanted: int) -> int:
    """How many TTS workers the voice worker routes by, once it sees `wanted` (or 30 s)."""
    url = f"http://127.0.0.1:{env['ARC_VOICE_HTTP_PORT']}/healthz"
    deadline = time.monotonic() + 30
    seen = -1
    while time.monotonic() < deadline and seen != wanted:
        seen = int(httpx.get(url, timeout=5).json()["detail"].get("tts_workers", -1))
        time.sleep(0.5)
    return seen


@pytest.fixture
def state() -> Iterator[Path]:
    # Under .arc/ rather than pytest's tmp dir: Postgres runs as a system user that cannot
    # traverse pytest's private (0700) temporary directories.
    path = state_dir() / "test-runs" / f"mesh-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_run_status_and_ctrl_c_stop_the_whole_mesh(tmp_path: Path, state: Path) -> None:
    env = _env(state)
    before = _status(env)
    assert before.returncode == 1
    assert "not answering" in before.stdout

    log = (tmp_path / "run.log").open("w+")
    run = subprocess.Popen([*ARC, "run"], env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            text = Path(log.name).read_text()
            if "Arc is up" in text or run.poll() is not None:
                break
            time.sleep(1)
        text = Path(log.name).read_text()
        assert "Arc is up" in text, text[-3000:]
        for part in ("nats", "postgres", "pulsar", "livekit"):
            assert f"✓ {part} is up" in text

        status = _status(env)
        assert status.returncode == 0, status.stdout
        assert status.stdout.count("healthy") >= 4

        # NATS serves only its users: the brain answers a turn asked as the voice worker,
        # and an anonymous client is refused.
        answer = asyncio.run(_ask_as_voice(state, env))
        assert answer.startswith("It's "), answer

        # `arc voices` reaches every TTS worker as the operator; the default voice is pinned.
        voices = subprocess.run([*ARC, "voices"], env=env, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        assert voices.returncode == 0, voices.stdout + voices.stderr
        lines = voices.stdout.splitlines()
        assert lines and all("loaded en_US-joe-medium (pinned)" in line for line in lines), lines
        refused = subprocess.run([*ARC, "voices", "unload", "en_US-joe-medium"], env=env,
                                 capture_output=True, text=True, timeout=120)  # fmt: skip
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert refused.stdout.count("refused (bad_request)") == len(lines), refused.stdout
        # The voice worker reads every TTS worker's loaded voices as the `voice` user.
        assert _tts_workers_seen(env, len(lines)) == len(lines)

        # A spoken turn through the voice worker, whose words must not reach its log either.
        spoken = asyncio.run(_speak_to_the_worker(state, env))

        # A second `arc run` refuses rather than fighting over the ports.
        second = subprocess.run([*ARC, "run"], env=env, capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        assert second.returncode == 1 and "already running" in second.stdout

        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert run.wait(timeout=120) == 0
        text = Path(log.name).read_text()
        assert "Arc stopped." in text
        # Nothing secret, and nothing the person or the agent said, reached a log.
        assert _secrets_in_logs(state, [QUESTION, answer, *spoken]) == []
        after = _status(env)
        assert after.returncode == 1
        assert "healthy" not in after.stdout.replace("not answering", "")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        subprocess.run([*ARC, "stop"], env=env, capture_output=True, timeout=120)

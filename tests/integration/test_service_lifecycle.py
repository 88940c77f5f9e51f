"""The service lifecycle every `python -m arc_*` shares (arc_common.service), with real
processes: a bad setting is exactly one stderr line naming the `ARC_...` variable, its value
and the problem, no traceback, exit status 2 (no server is needed: nothing starts); a stop
signal during start-up cancels it, closes what was opened and exits 0. The drain of a running
service is tested per service (brain/events `test_entry_point.py`, tts `test_tts_nats.py`,
voice `test_service.py`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("module", "variable", "value", "line"),
    [
        (
            "arc_brain",
            "ARC_BRAIN__HTTP_PORT",
            "notaport",
            "brain: invalid setting: ARC_BRAIN__HTTP_PORT='notaport': Input should be a "
            "valid integer, unable to parse string as an integer",
        ),
        (
            "arc_tts",
            "ARC_TTS__FRAMES_PER_CHUNK",
            "0",
            "arc-tts: invalid setting: ARC_TTS__FRAMES_PER_CHUNK='0': Input should be "
            "greater than or equal to 1",
        ),
        (
            "arc_events",
            "ARC_EVENTS__ROLES",
            '["relay", "mailer"]',
            "arc-events: invalid setting: ARC_EVENTS__ROLES[1]='mailer': Input should be "
            "'relay', 'analytics' or 'audit'",
        ),
        (
            "arc_voice",
            "ARC_VOICE__STT",
            "whisperx",
            "arc-voice: invalid setting: ARC_VOICE__STT='whisperx': Input should be "
            "'whisper' or 'deepgram'",
        ),
        (
            "arc_voice",
            "ARC_LIVEKIT__API_KEY",
            "devkey",
            "arc-voice: invalid setting: ARC_LIVEKIT__*: the LiveKit development keys (devkey "
            "/ secret) are refused: set ARC_LIVEKIT__API_KEY and ARC_LIVEKIT__API_SECRET "
            "(`make run` makes local ones), or ARC_LIVEKIT__ALLOW_DEV_KEYS=true for a "
            "throwaway dev server",
        ),
    ],
    ids=["brain", "tts", "events", "voice", "voice-dev-keys"],
)
def test_bad_setting_is_one_stderr_line_and_exit_2(
    module: str, variable: str, value: str, line: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ARC_")}
    # Keys of its own, as `make run` gives: the one bad setting is the test's.
    livekit = {"ARC_LIVEKIT__API_KEY": "arc0123456789ab", "ARC_LIVEKIT__API_SECRET": "s" * 43}
    done = subprocess.run(
        [sys.executable, "-m", module],
        env={**env, **livekit, variable: value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == line + "\n"
    assert done.stdout == ""


_NEVER_READY = textwrap.dedent(
    """
    import asyncio
    import contextlib

    from arc_common.service import run_service
    from arc_common.settings import ServiceSettings


    @contextlib.asynccontextmanager
    async def never_ready(settings):
        print("opening", flush=True)
        try:
            await asyncio.sleep(3600)  # a model that takes for ever to load
            yield None
        finally:
            print("closed", flush=True)


    run_service(
        ServiceSettings(service_name="demo"),
        never_ready,
        lambda resources: None,
        host="127.0.0.1",
        port=0,
    )
    """
)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_stop_signal_during_start_up_closes_what_opened_and_exits_0(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    script = tmp_path / "never_ready.py"
    script.write_text(_NEVER_READY)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ARC_")}
    process = subprocess.Popen(
        [sys.executable, str(script)],
        env={**env, "ARC_LOG__JSON": "false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "opening\n"
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out == "closed\n", err
    assert f"stopping on {stop_signal.name}: start-up cancelled" in err
    assert "demo stopped" in err
    assert "Traceback" not in err


def test_failed_start_up_is_logged_and_exits_1(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text(
        _NEVER_READY.replace(
            "await asyncio.sleep(3600)  # a model that takes for ever to load",
            "raise ConnectionRefusedError('nats://127.0.0.1:1')",
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ARC_")}
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**env, "ARC_LOG__JSON": "false"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == "opening\nclosed\n"
    assert "demo failed" in done.stderr
    assert "ConnectionRefusedError: nats://127.0.0.1:1" in done.stderr

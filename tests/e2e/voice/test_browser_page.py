"""The browser page in headless Chromium with a fake microphone fed from a WAV file: it gets
a token from the worker, joins the room with the LiveKit JavaScript client, asks a question
and hears an audible reply. Chromium is driven over the DevTools protocol."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from arc_voice.http_api import default_client_js
from arc_voice.talk import write_wav

from tests.e2e.voice.test_room_to_room import _conversation
from tests.fixtures.brain import BrainFactory
from tests.fixtures.http_auth import API_KEY
from tests.fixtures.tts import TtsWorker
from tests.fixtures.voice import (
    SpeechSynth,
    VoiceFactory,
    room_name,
    serve_voice_http,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or not default_client_js().is_file(),
    reason="needs Chromium (apt-get install chromium) and the page's JavaScript client "
    "(npm ci --prefix services/voice/web)",
)


class DevTools:
    """A minimal Chrome DevTools Protocol client: commands and their answers."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self._ws.send_str(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads((await self._ws.receive()).data)
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        return result["result"].get("value")


@contextlib.asynccontextmanager
async def _chromium(microphone: Path, profile: Path) -> AsyncIterator[DevTools]:
    assert CHROMIUM is not None
    process = subprocess.Popen(  # noqa: ASYNC220 (spawning does not block)
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            assert time.monotonic() < deadline, "Chromium did not start"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            pages = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
            async with http.ws_connect(url, max_msg_size=0) as ws:
                yield DevTools(ws)
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()


@needs_browser
async def test_the_browser_page_talks_to_the_agent(
    voice_factory: VoiceFactory,
    brain_factory: BrainFactory,
    tts_worker: TtsWorker,
    speech: SpeechSynth,
    subject_prefix: str,
    tmp_path: Path,
) -> None:
    await brain_factory(subject_prefix=subject_prefix)
    harness = await voice_factory(greeting="")
    pcm, rate = speech.say("What time is it?")
    # Chromium loops the file: a question, then long enough a pause for the whole answer.
    silence = np.zeros(rate * 6, np.int16).tobytes()
    microphone = tmp_path / "question.wav"
    write_wav(microphone, np.zeros(rate, np.int16).tobytes() + pcm + silence, rate)
    room = room_name()
    async with serve_voice_http(harness) as page_url, _chromium(microphone, tmp_path / "p") as tab:
        await tab.call("Page.enable")
        # The link `make run` prints: the key in the fragment, which the page keeps.
        await tab.call("Page.navigate", url=f"{page_url}/#key={API_KEY}")
        deadline = time.monotonic() + 20
        while await tab.evaluate("typeof LivekitClient") != "object":
            assert time.monotonic() < deadline, "the page did not load the LiveKit client"
            await asyncio.sleep(0.1)
        assert await tab.evaluate("location.hash") == "", "the key stayed in the address bar"
        await tab.evaluate(
            f"document.getElementById('room').value = {json.dumps(room)};"
            "document.getElementById('identity').value = 'browser-user';"
            "document.getElementById('join').click(); true"
        )
        conversation = await _conversation(harness, room, "browser-user")
        deadline = time.monotonic() + 60
        peak = -120.0
        while peak < -40.0:
            assert time.monotonic() < deadline, (
                f"no audible reply (peak {peak:.1f} dBFS); page log: "
                + str(await tab.evaluate("document.getElementById('log').innerText"))
            )
            await asyncio.sleep(0.2)
            peak = float(await tab.evaluate("window.arcAgentPeakDb"))
    assert any("time" in t.lower() for t in conversation.log.transcripts)
    assert conversation.brain.turns and conversation.brain.turns[0].answer

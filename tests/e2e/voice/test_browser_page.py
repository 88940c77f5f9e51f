"""The browser page in headless Chromium with a fake microphone fed from a WAV file: it gets
a token from the worker, joins the room with the LiveKit JavaScript client, asks a question
and hears an audible reply. Chromium is driven over the DevTools protocol."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
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


async def _until(tab: DevTools, expression: str, within_s: float, what: str) -> Any:
    """Poll a page expression until it is truthy; on timeout, say what the page showed."""
    deadline = time.monotonic() + within_s
    while True:
        value = await tab.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            page = await tab.evaluate(
                "JSON.stringify({states: window.arcStates,"
                " problem: document.getElementById('problem').textContent,"
                " transcript: document.getElementById('transcript').innerText,"
                " log: document.getElementById('log').innerText})"
            )
            raise AssertionError(f"{what} within {within_s:.0f} s; the page: {page}")
        await asyncio.sleep(0.2)


def _lines(role: str) -> str:
    return (
        f"[...document.querySelectorAll('#transcript li[data-role=\"{role}\"]')]"
        ".map(li => ({text: li.textContent, final: li.dataset.final}))"
    )


async def _screenshot(tab: DevTools, path: Path, width: int, height: int, mobile: bool) -> None:
    await tab.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=mobile,
    )
    shot = await tab.call("Page.captureScreenshot", format="png")
    await asyncio.to_thread(_save, path, base64.b64decode(shot["data"]))


def _save(path: Path, png: bytes) -> None:
    path.write_bytes(png)
    # Where a person wants to look at them: the test's temp dir is gone after the run.
    keep = os.environ.get("ARC_TEST_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


@needs_browser
async def test_the_browser_page_talks_to_the_agent(
    voice_factory: VoiceFactory,
    brain_factory: BrainFactory,
    tts_worker: TtsWorker,
    speech: SpeechSynth,
    subject_prefix: str,
    tmp_path: Path,
) -> None:
    """The talk page joins, the person asks aloud and then types: the page shows their final
    transcript, the agent's words, the agent's states in order and a latency row, and the
    typed question is answered too."""
    await brain_factory(subject_prefix=subject_prefix)
    harness = await voice_factory(greeting="")
    pcm, rate = speech.say("What time is it?")
    # Chromium loops the file: a question, then a pause long enough for the rest of the test.
    silence = np.zeros(rate * 40, np.int16).tobytes()
    microphone = tmp_path / "question.wav"
    write_wav(microphone, np.zeros(rate, np.int16).tobytes() + pcm + silence, rate)
    room = room_name()
    async with serve_voice_http(harness) as page_url, _chromium(microphone, tmp_path / "p") as tab:
        await tab.call("Page.enable")
        # The link `make run` prints: the key in the fragment, which the page keeps.
        await tab.call("Page.navigate", url=f"{page_url}/#key={API_KEY}")
        await _until(tab, "typeof LivekitClient === 'object'", 20, "the LiveKit client loaded")
        assert await tab.evaluate("location.hash") == "", "the key stayed in the address bar"
        await tab.evaluate(
            f"document.getElementById('room').value = {json.dumps(room)};"
            "document.getElementById('identity').value = 'browser-user';"
            "document.getElementById('join').click(); true"
        )
        conversation = await _conversation(harness, room, "browser-user")

        heard = await _until(
            tab,
            f"{_lines('user')}.filter(l => l.final === 'true' && /time/i.test(l.text)).length",
            60,
            "no final transcript of the question",
        )
        assert heard
        await _until(
            tab,
            "document.querySelectorAll('#latency tbody tr td.heard').length &&"
            " !document.querySelector('#latency tbody tr td.heard').textContent.includes('—')",
            60,
            "no latency row with the page's own reply time",
        )
        said = await tab.evaluate(_lines("agent"))
        assert said and any(line["text"].strip() for line in said), said
        assert float(await tab.evaluate("window.arcAgentPeakDb")) > -40.0, "the reply was silent"
        await _until(
            tab,
            "window.arcStates.slice(-1)[0] === 'listening'",
            30,
            "the agent did not go back to listening",
        )
        states: list[str] = await tab.evaluate("window.arcStates")
        # The agent's states, in order: it listened, thought, spoke and listened again.
        order = iter(states)
        assert all(
            state in order for state in ("listening", "thinking", "speaking", "listening")
        ), states
        heard_ms = await tab.evaluate(
            "parseInt(document.querySelector('#latency tbody tr td.heard').textContent)"
        )
        assert 0 < heard_ms < 15_000, heard_ms

        # Typed instead of spoken: the message reaches the agent as a user turn.
        agent_lines = len(said)
        await tab.evaluate(
            "document.getElementById('message').value = 'What is 12 times 12?';"
            "document.getElementById('chat').requestSubmit(); true"
        )
        await _until(
            tab,
            f"{_lines('agent')}.slice({agent_lines}).some(l => /144|hundred/i.test(l.text))",
            60,
            "no answer to the typed question",
        )
        await _screenshot(tab, tmp_path / "talk-desktop.png", 1280, 900, mobile=False)
        await _screenshot(tab, tmp_path / "talk-phone.png", 390, 844, mobile=True)
        overflow = await tab.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        assert not overflow, "the page scrolls sideways at phone width"
    assert any("time" in t.lower() for t in conversation.log.transcripts)
    assert conversation.brain.turns and conversation.brain.turns[0].answer
    assert (tmp_path / "talk-phone.png").stat().st_size > 10_000

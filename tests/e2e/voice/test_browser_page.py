"""The browser page in headless Chromium with a fake microphone fed from a WAV file: it gets
a token from the worker, joins the room with the LiveKit JavaScript client, asks a question
and hears an audible reply. Chromium is driven over the DevTools protocol. In headless
Firefox (WebDriver BiDi), whose fake microphone can only play a tone, the test feeds the
page's microphone itself; a spoken and a typed question are answered aloud."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from arc_voice.http_api import default_client_js
from arc_voice.settings import LiveKitSettings
from arc_voice.talk import write_wav

from tests.fixtures.browser import (
    CHROMIUM,
    FIREFOX,
    PULSEAUDIO,
    DevTools,
    Page,
    chromium,
    firefox,
)
from tests.fixtures.http_auth import API_KEY
from tests.fixtures.voice import (
    QuietVoice,
    SpeechSynth,
    VoiceHarness,
    room_name,
    serve_voice_http,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

needs_browser = pytest.mark.skipif(
    CHROMIUM is None or not default_client_js().is_file(),
    reason="needs Chromium (apt-get install chromium) and the page's JavaScript client "
    "(npm ci --prefix services/voice/web)",
)
needs_firefox = pytest.mark.skipif(
    FIREFOX is None or PULSEAUDIO is None or not default_client_js().is_file(),
    reason="needs Firefox (apt-get install firefox-esr) and the page's JavaScript client "
    "(npm ci --prefix services/voice/web)",
)


# Installed before the page joins: records, for the person's own transcript, every stream
# LiveKit sends (`lk.transcription_final` "true" or "false") and every state of the person's
# lines on the page, so a test can tell interim transcripts were shown before the final one.
_WATCH_USER_LINES = """
window.arcUserStreams = [];
window.arcUserLineStates = [];
const register = LivekitClient.Room.prototype.registerTextStreamHandler;
LivekitClient.Room.prototype.registerTextStreamHandler = function (topic, handler) {
  const room = this;
  return register.call(this, topic, (reader, from) => {
    const attributes = reader.info.attributes || {};
    const mine = [...room.localParticipant.trackPublications.values()]
      .some((p) => p.trackSid === attributes["lk.transcribed_track_id"]);
    if (topic === "lk.transcription" && mine) {
      window.arcUserStreams.push(attributes["lk.transcription_final"]);
    }
    return handler(reader, from);
  });
};
new MutationObserver(() => {
  for (const li of document.querySelectorAll('#transcript li[data-role="user"]')) {
    const state = li.dataset.final + ":" + li.textContent;
    if (!window.arcUserLineStates.includes(state)) window.arcUserLineStates.push(state);
  }
}).observe(document.getElementById("transcript"),
  { subtree: true, childList: true, characterData: true, attributes: true });
true
"""


def _lines(role: str) -> str:
    return (
        f"[...document.querySelectorAll('#transcript li[data-role=\"{role}\"]')]"
        ".map(li => ({text: li.textContent, final: li.dataset.final}))"
    )


async def _join(tab: Page, page_url: str, room: str, identity: str) -> None:
    """Open the link `make run` prints (the key in the fragment, which the page keeps out of
    the address bar) and join `room` as `identity`."""
    await tab.until("typeof LivekitClient === 'object'", "the LiveKit client loaded", 20)
    assert await tab.evaluate("location.hash") == "", "the key stayed in the address bar"
    await tab.evaluate(
        f"document.getElementById('room').value = {json.dumps(room)};"
        f"document.getElementById('identity').value = {json.dumps(identity)}; true"
    )
    await tab.click("#join")


# Installed before the page joins: the microphone LiveKit's client asks for is a stream the
# test writes speech into with `arcSay(base64 PCM, rate)` (`say_into`), which resolves when it
# has played. Its AudioContext starts on the page's first click (Firefox keeps one made
# without a person's gesture suspended).
TEST_MICROPHONE = """
(() => {
  const ctx = new AudioContext({ sampleRate: 48000 });
  const out = ctx.createMediaStreamDestination();
  navigator.mediaDevices.getUserMedia = async () => out.stream;
  document.addEventListener("click", () => ctx.resume(), { capture: true });
  window.arcSay = (b64, rate) => new Promise((done) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const pcm = new Int16Array(bytes.buffer);
    const buffer = ctx.createBuffer(1, pcm.length, rate);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(out);
    source.onended = () => done(true);
    source.start();
  });
  return true;
})()
"""


async def say_into(tab: Page, pcm: bytes, rate: int, *, wait: bool = True) -> None:
    """Speak `pcm` into the page's microphone (`TEST_MICROPHONE` installed); with `wait`,
    return once it has played."""
    call = f"arcSay({json.dumps(base64.b64encode(pcm).decode())}, {rate})"
    await tab.evaluate(call if wait else f"{call}, true")


@contextlib.asynccontextmanager
async def talk_page(
    harness: VoiceHarness,
    profile: Path,
    *,
    microphone: Path | None = None,
    livekit: LiveKitSettings | None = None,
) -> AsyncIterator[tuple[DevTools, str]]:
    """The worker's talk page in headless Chromium (with `microphone`, a fake one playing that
    WAV; with `livekit`, tokens that send the browser there), opened from the link `make run`
    prints and its LiveKit client loaded; yields the tab and the page's base URL."""
    async with (
        serve_voice_http(harness, livekit=livekit) as page_url,
        chromium(profile, microphone=microphone) as tab,
    ):
        await tab.call("Page.enable")
        await open_talk_page(tab, page_url)
        yield tab, page_url


async def open_talk_page(tab: DevTools, page_url: str) -> None:
    """Open the link `make run` prints (the key after `#key=`); return once the page's
    LiveKit client has loaded."""
    await tab.call("Page.navigate", url=f"{page_url}/#key={API_KEY}")
    await tab.until("typeof LivekitClient === 'object'", "the LiveKit client loaded", 20)


async def _ask_typed(tab: Page, agent_lines: int) -> None:
    """Type a question: it reaches the agent as a user turn, and the answer shows."""
    await tab.evaluate(
        "document.getElementById('message').value = 'What is 12 times 12?';"
        "document.getElementById('chat').requestSubmit(); true"
    )
    await tab.until(
        f"{_lines('agent')}.slice({agent_lines}).some(l => /144|hundred/i.test(l.text))",
        "no answer to the typed question",
        within_s=60,
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
    quiet_voice: QuietVoice,
    speech: SpeechSynth,
    tmp_path: Path,
) -> None:
    """The talk page joins, the person asks aloud and then types: the page shows their final
    transcript, the agent's words, the agent's states in order and a latency row, and the
    typed question is answered too."""
    harness, _ = quiet_voice
    # Long enough for interim transcripts (one every 0.3 s of speech) before the final.
    pcm, rate = speech.say("Could you please tell me what time it is right now?")
    # Chromium loops the file: a question, then a pause long enough for the rest of the test.
    silence = np.zeros(rate * 40, np.int16).tobytes()
    microphone = tmp_path / "question.wav"
    write_wav(microphone, np.zeros(rate, np.int16).tobytes() + pcm + silence, rate)
    room = room_name()
    async with talk_page(harness, tmp_path / "p", microphone=microphone) as (tab, page_url):
        await tab.evaluate(_WATCH_USER_LINES)
        await _join(tab, page_url, room, "browser-user")
        conversation = await harness.conversation(room, "browser-user")

        heard = await tab.until(
            f"{_lines('user')}.filter(l => l.final === 'true' && /time/i.test(l.text)).length",
            "no final transcript of the question",
            within_s=60,
        )
        assert heard
        # Interim transcripts reached the page while the person spoke, and their words were
        # on the page, marked not final, before the final line.
        streams: list[str] = await tab.evaluate("window.arcUserStreams")
        assert "false" in streams and streams.index("false") < streams.index("true"), streams
        shown: list[str] = await tab.evaluate("window.arcUserLineStates")
        first_final = next(i for i, s in enumerate(shown) if s.startswith("true:"))
        assert any(s.startswith("false:") and s != "false:" for s in shown[:first_final]), shown
        await tab.until(
            "document.querySelectorAll('#latency tbody tr td.heard').length &&"
            " !document.querySelector('#latency tbody tr td.heard').textContent.includes('—')",
            "no latency row with the page's own reply time",
            within_s=60,
        )
        said = await tab.evaluate(_lines("agent"))
        assert said and any(line["text"].strip() for line in said), said
        assert float(await tab.evaluate("window.arcAgentPeakDb")) > -40.0, "the reply was silent"
        await tab.until(
            "window.arcStates.slice(-1)[0] === 'listening'",
            "the agent did not go back to listening",
            within_s=30,
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
        await _ask_typed(tab, len(said))
        await _screenshot(tab, tmp_path / "talk-desktop.png", 1280, 900, mobile=False)
        await _screenshot(tab, tmp_path / "talk-phone.png", 390, 844, mobile=True)
        overflow = await tab.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        assert not overflow, "the page scrolls sideways at phone width"
    assert any("time" in t.lower() for t in conversation.log.transcripts)
    assert conversation.brain.turns and conversation.brain.turns[0].answer
    assert (tmp_path / "talk-phone.png").stat().st_size > 10_000


@needs_firefox
async def test_the_page_in_firefox_hears_a_question_and_answers_a_typed_one(
    quiet_voice: QuietVoice, speech: SpeechSynth, tmp_path: Path
) -> None:
    """Firefox: the page joins the room, the person asks aloud (the test's microphone) and the
    page shows their final words, its microphone meter moving, and the agent's answer; muted,
    a typed question is answered in the transcript and aloud (the page's own meter of the
    agent's track); and the page fits a phone's width."""
    harness, _ = quiet_voice
    room = room_name()
    async with (
        serve_voice_http(harness) as page_url,
        firefox(tmp_path / "firefox", url=f"{page_url}/#key={API_KEY}") as tab,
    ):
        await tab.until("typeof LivekitClient === 'object'", "the LiveKit client loaded", 20)
        await tab.evaluate(TEST_MICROPHONE)
        await _join(tab, page_url, room, "firefox-user")
        await harness.conversation(room, "firefox-user")
        await tab.until("!document.getElementById('mute').disabled", "the page joined", 30)
        await tab.until("(window.arcStates || []).includes('listening')", "the agent listening", 30)
        # The page's meters run on an AudioContext, which Firefox runs only with an audio
        # output: the fixture's null sink is one.
        await say_into(tab, *speech.say_plain("What time is it?"), wait=False)
        await tab.until(
            "document.getElementById('mic-level').value > 0.2", "the microphone meter moved", 30
        )
        await tab.until(
            f"{_lines('user')}.some(l => l.final === 'true' && /time/i.test(l.text))",
            "no final transcript of the spoken question",
            within_s=60,
        )
        await tab.until(
            f"{_lines('agent')}.some(l => /it's|o'clock|UTC/i.test(l.text))",
            "no answer to the spoken question",
            within_s=60,
        )
        await tab.until(
            "arcStates.slice(-1)[0] === 'listening'", "the agent did not finish speaking", 30
        )
        await tab.click("#mute")
        agent_lines = len(await tab.evaluate(_lines("agent")))
        await _ask_typed(tab, agent_lines)
        await tab.until(
            "arcStates.slice(-1)[0] === 'listening'", "the agent did not finish speaking", 30
        )
        peak_db = float(await tab.evaluate("window.arcAgentPeakDb"))
        print(f"\nthe answers' peak on the page's meter in Firefox: {peak_db:.1f} dBFS")
        assert peak_db > -40.0, peak_db
        assert await tab.evaluate("document.getElementById('mic-level').value") == 0  # muted
        png = await tab.screenshot(390, 844)
        await asyncio.to_thread(_save, tmp_path / "talk-firefox-phone.png", png)
        overflow = await tab.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        assert not overflow, "the page scrolls sideways at phone width in Firefox"
    assert (tmp_path / "talk-firefox-phone.png").stat().st_size > 10_000

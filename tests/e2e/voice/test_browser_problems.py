"""What the talk page tells the person when something is wrong, in headless Chromium: a
microphone the browser refuses, a voice server that has gone away, and an agent that is not in
the room 10 s after joining. Each is a plain sentence in the page's alert, and the page stays
usable (typing still works without a microphone; Join can be tried again). And the page is
used with the keyboard alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from arc_stack.server import free_port
from arc_voice.talk import write_wav

from tests.e2e.voice.test_browser_page import (
    _ask_typed,
    _join,
    _lines,
    needs_browser,
    open_talk_page,
    talk_page,
)
from tests.fixtures.browser import DevTools, Page, chromium
from tests.fixtures.voice import QuietVoice, room_name, serve_voice_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROBLEM = "document.getElementById('problem')"
# The browser's answer when a person blocks the microphone for the page.
_BLOCKED_MICROPHONE = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
true
"""


async def _problem(tab: Page, words: str, within_s: float) -> str:
    text: str = await tab.until(
        f"!{PROBLEM}.hidden && {PROBLEM}.textContent.includes({words!r}) && {PROBLEM}.textContent",
        f"the page's alert saying {words!r}",
        within_s=within_s,
    )
    return text


@needs_browser
async def test_a_blocked_microphone_is_explained_and_typing_still_works(
    quiet_voice: QuietVoice, tmp_path: Path
) -> None:
    harness, _ = quiet_voice
    async with talk_page(harness, tmp_path / "profile") as (tab, page_url):
        await tab.evaluate(_BLOCKED_MICROPHONE)
        await _join(tab, page_url, room_name(), "no-mic")
        said = await _problem(tab, "microphone is blocked", 30)
        assert "type below" in said, said
        assert await tab.evaluate("document.getElementById('mute').disabled")
        assert await tab.evaluate("document.getElementById('problem').getAttribute('role')") == (
            "alert"
        )
        await tab.until("(window.arcStates || []).includes('listening')", "the agent listening", 30)
        await _ask_typed(tab, 0)


@needs_browser
async def test_a_voice_server_gone_and_an_agent_not_there_are_explained(
    quiet_voice: QuietVoice, tmp_path: Path
) -> None:
    harness, _ = quiet_voice
    async with chromium(tmp_path / "profile") as tab:
        async with serve_voice_http(harness) as page_url:
            await tab.call("Page.enable")
            await open_talk_page(tab, page_url)
        # The server stops after the page loaded (`make run` ended): Join says so.
        await _join(tab, page_url, room_name(), "too-late")
        said = await _problem(tab, "Cannot reach the Arc voice server", 15)
        assert page_url.removesuffix("/") in said and "make run" in said, said
        assert not await tab.evaluate("document.getElementById('join').disabled")

        async with serve_voice_http(harness) as page_url:
            await open_talk_page(tab, page_url)
            room = room_name()
            await _join(tab, page_url, room, "alone")
            await tab.until("!document.getElementById('leave').disabled", "the page joined", 30)
            # The agent the join brought leaves at once (its worker told to): 10 s after
            # joining, the page says the agent is not there and where to look.
            assert await harness.worker.leave(room)
            said = await _problem(tab, "did not join the room within 10 s", 30)
            assert "make status" in said, said


@needs_browser
async def test_a_livekit_server_out_of_reach_is_explained(
    quiet_voice: QuietVoice, tmp_path: Path
) -> None:
    """The voice server answers, but the LiveKit URL its token gives cannot be reached (a
    LiveKit server that is down, a URL the browser cannot route to): the page names that
    server, not the voice server, and Join can be tried again."""
    harness, _ = quiet_voice
    nowhere = harness.worker.livekit.model_copy(update={"url": f"ws://127.0.0.1:{free_port()}"})
    async with talk_page(harness, tmp_path / "profile", livekit=nowhere) as (tab, page_url):
        await _join(tab, page_url, room_name(), "no-livekit")
        said = await _problem(tab, "Cannot reach the LiveKit server", 60)
        assert nowhere.url in said and "Arc voice server" not in said, said
        assert not await tab.evaluate("document.getElementById('join').disabled")
        assert await tab.evaluate("document.getElementById('leave').disabled")


async def _press(tab: DevTools, key: str) -> None:
    """One key as a person presses it (trusted input, which moves focus and clicks)."""
    codes = {"Tab": 9, "Enter": 13}
    common = {"key": key, "code": key, "windowsVirtualKeyCode": codes[key]}
    # Enter's character is what activates a button or submits a form.
    text = "\r" if key == "Enter" else ""
    await tab.call("Input.dispatchKeyEvent", type="keyDown", text=text, **common)
    await tab.call("Input.dispatchKeyEvent", type="keyUp", **common)


async def _tab_to(tab: DevTools, element_id: str, within: int = 12) -> list[str]:
    """Press Tab until `element_id` has the focus; the ids passed on the way."""
    passed = []
    for _ in range(within):
        await _press(tab, "Tab")
        focused = await tab.evaluate("document.activeElement.id")
        passed.append(focused)
        if focused == element_id:
            return passed
    raise AssertionError(f"Tab never reached #{element_id}: {passed}")


@needs_browser
async def test_the_page_is_used_with_the_keyboard_alone(
    quiet_voice: QuietVoice, tmp_path: Path
) -> None:
    """Join, mute and a typed question, with Tab and Enter only: every control is in the
    tab order in reading order, and Enter on it does what a click does."""
    harness, _ = quiet_voice
    # A microphone that hears nothing: Chromium has none of its own here.
    microphone = tmp_path / "silence.wav"
    write_wav(microphone, bytes(32_000), 16_000)
    async with talk_page(harness, tmp_path / "profile", microphone=microphone) as (tab, _):
        await tab.evaluate(f"document.getElementById('room').value = {room_name()!r}; true")
        assert await _tab_to(tab, "join") == ["room", "identity", "join"]
        await _press(tab, "Enter")
        await tab.until("!document.getElementById('mute').disabled", "the page joined", 30)
        await tab.until("(window.arcStates || []).includes('listening')", "the agent listening", 30)
        await tab.evaluate("document.getElementById('identity').focus(); true")
        assert await _tab_to(tab, "mute") == ["mute"]  # Join is disabled once joined
        await _press(tab, "Enter")
        assert await tab.evaluate(
            "document.getElementById('mute').getAttribute('aria-pressed')"
        ) == ("true")
        await _tab_to(tab, "message")
        for letter in "What is 12 times 12?":
            await tab.call("Input.insertText", text=letter)
        await _press(tab, "Enter")
        await tab.until(
            f"{_lines('agent')}.some(l => /144|hundred/i.test(l.text))",
            "no answer to the question typed with the keyboard",
            within_s=60,
        )

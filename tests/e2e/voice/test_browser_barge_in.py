"""Barge-in on the talk page, in headless Chromium: the person speaks over the agent's answer,
the agent stops, and the page's transcript of the answer ends where it was cut (livekit-agents
releases the agent's words in step with its audio), with the turn's latency row marked cut.

The microphone is a WAV played when the test says, not one looped from the start: the page's
`getUserMedia` is given a WebAudio stream the test feeds, so the interruption lands while the
agent is speaking however long the answer takes to start on a loaded machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.voice.test_browser_page import (
    TEST_MICROPHONE,
    _join,
    _lines,
    needs_browser,
    say_into,
    talk_page,
)
from tests.fixtures.voice import QuietVoice, SpeechSynth, room_name

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


@needs_browser
async def test_barge_in_cuts_the_agents_transcript_on_the_page(
    quiet_voice: QuietVoice, speech: SpeechSynth, tmp_path: Path
) -> None:
    harness, _ = quiet_voice
    room = room_name()
    question = speech.say_plain("What can you do?")
    interruption = speech.say_plain("Please tell me the date instead.")

    async with talk_page(harness, tmp_path / "profile") as (tab, page_url):
        await tab.evaluate(TEST_MICROPHONE)
        await _join(tab, page_url, room, "cutter")
        await tab.until("(window.arcStates || []).includes('listening')", "the agent listening", 30)
        conversation = harness.worker.rooms[room].conversations["cutter"]

        await say_into(tab, *question)
        # 3.5 s into the answer's audio (its ten-odd seconds list the agent's skills), the
        # person speaks over it. Not sooner: livekit-agents ignores interruptions for the first
        # 3 s of a session's first answer (`aec_warmup_duration`, the time a browser's echo
        # canceller takes to settle), and the person's words then are dropped.
        await tab.until(
            f"window.arcAgentPeakDb > -40 && {_lines('agent')}.length",
            "the agent did not start answering",
            within_s=60,
        )
        await tab.evaluate("new Promise((done) => setTimeout(() => done(true), 3500))")
        await say_into(tab, *interruption)
        await tab.until(
            "[...document.querySelectorAll('#latency tbody tr td:first-child')]"
            ".some(td => td.textContent.includes('(cut)'))",
            "no latency row marked cut",
            within_s=60,
        )
        await tab.until(
            f"{_lines('agent')}.length >= 2", "no answer to the interruption", within_s=60
        )
        shown = [line["text"] for line in await tab.evaluate(_lines("agent"))]

    answers = [t.answer for t in conversation.brain.turns if t.verdict and t.answer]
    assert len(answers) >= 2, conversation.brain.turns
    whole, cut = _words(answers[0]), _words(shown[0])
    print(f"\nthe answer: {len(whole)} words; the page showed {len(cut)} before the cut")
    # What the page shows of the cut answer is its beginning, and not all of it.
    assert cut and cut == whole[: len(cut)], (shown[0], answers[0])
    assert len(cut) < len(whole), (shown[0], answers[0])
    assert any(t.turn.interrupted for t in conversation.log.turns)

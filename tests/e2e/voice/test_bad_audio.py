"""Bad audio through a real room (issue 9): telephone-band speech, clipped speech, noise with
no words in it, and a minute-long monologue. Nothing crashes, words get a sensible answer,
noise gets none, and the conversation goes on afterwards."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import re
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from arc_voice.caller import RoomCaller, resample, speech_bounds
from arc_voice.conversation import Conversation

from tests.fixtures.voice import SpeechSynth, Talk
from tests.fixtures.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WEEKDAY = re.compile(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b")


async def _answers(
    caller: RoomCaller, conversation: Conversation, pcm: bytes, rate: int
) -> list[str]:
    """What the agent answered to this speech: the brain turns it kept from then on. Under
    load a clipped question's tail can be taken as a turn of its own ("... today?"), so the
    question's answer need not be the last one."""
    kept_before = sum(1 for t in conversation.brain.turns if t.verdict)
    spoken = await (await caller.say(pcm, rate))
    try:
        await caller.wait_audible(spoken.speech_ended_at, within_s=60)
    except TimeoutError:
        return []
    await caller.wait_quiet(0.8, within_s=90)
    return [t.answer for t in conversation.brain.turns if t.verdict][kept_before:]


def _telephone(speech: SpeechSynth, text: str) -> tuple[bytes, int]:
    """Speech as a phone line carries it: 8 kHz samples (nothing above 4 kHz)."""
    pcm, rate = speech.say_plain(text)
    return resample(pcm, rate, 8000), 8000


def _clipped(speech: SpeechSynth, text: str) -> tuple[bytes, int]:
    """Speech six times too loud for the microphone: a third of it flat at full scale."""
    pcm, rate = speech.say_plain(text)
    loud = np.frombuffer(pcm, np.int16).astype(np.int32) * 6
    return np.clip(loud, -32768, 32767).astype(np.int16).tobytes(), rate


def _noise(seconds: float, rate: int = 16000) -> tuple[bytes, int]:
    """Broadband noise at about -30 dBFS (a fan or a street), no words in it."""
    rng = np.random.default_rng(5)
    hiss = rng.normal(0.0, 1000.0, int(seconds * rate))
    return np.clip(hiss, -32768, 32767).astype(np.int16).tobytes(), rate


def _monologue(speech: SpeechSynth, seconds: float) -> tuple[bytes, int]:
    """One breath of speech about `seconds` long: sentences with their silences cut, 60 ms
    apart, so the VAD hears one utterance (longer than Whisper's 30 s window)."""
    sentences = (
        "Let me tell you about the trip we took last summer along the coast.",
        "We started early every morning and drove until the light was gone.",
        "The villages were small and the people were kind to strangers.",
        "Every evening we found a place to eat by the water and talked for hours.",
    )
    takes = [speech.say_plain(text) for text in sentences]
    rate = takes[0][1]
    gap = b"\x00\x00" * int(rate * 0.06)
    trimmed = [pcm[slice(*speech_bounds(pcm, rate))] + gap for pcm, _ in takes]
    pieces: list[bytes] = []
    while sum(len(p) for p in pieces) < seconds * rate * 2:
        pieces += trimmed
    return b"".join(pieces), rate


def _rss_mb() -> float:
    """Resident memory now, after a collection and with glibc's free pages handed back (the
    peak says little: a long decode needs its buffers once, and on a loaded machine more
    threads hold arenas of freed memory at the moment of reading)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _turns(conversation: Conversation) -> list[tuple[str, bool | None, str]]:
    """What each brain turn was asked, whether it was kept, and how its answer began: what a
    failed assertion needs to tell a mis-heard question from a mis-routed one."""
    return [(t.user_text, t.verdict, t.answer[:40]) for t in conversation.brain.turns]


def _finals_after(conversation: Conversation, since: float) -> str:
    return " ".join(text for at, final, text in conversation.log.heard if final and at > since)


async def test_telephone_band_and_clipped_questions_are_answered(
    talk: Talk, speech: SpeechSynth
) -> None:
    caller, conversation = await talk("gil")

    answers = await _answers(caller, conversation, *_telephone(speech, "What time is it?"))
    times = [a for a in answers if a.startswith("It's ")]
    assert times, _turns(conversation)
    assert datetime.now().astimezone().strftime("%p") in times[0], times

    # Not "What day is it today?": Whisper tiny.en hears that as "What they is it today?" even
    # unclipped, and once (CI, 2026-12-07) through the room as "What there is it to be?",
    # which no skill answers. This one it hears right clean and clipped.
    answers = await _answers(caller, conversation, *_clipped(speech, "What's the date today?"))
    assert any(WEEKDAY.search(a) for a in answers), _turns(conversation)


# Two minutes of speech played in real time, 60 s of noise that must stay unanswered, and the
# decodes: ~4 min on a quiet box, over the suite's 300 s on a CI box twice as slow.
@pytest.mark.timeout(1200)
async def test_noise_gets_no_answer_and_a_monologue_is_survived(
    talk: Talk, speech: SpeechSynth
) -> None:
    caller, conversation = await talk("hal")

    # Four seconds of hiss: nobody said anything, so nothing is asked and nothing is said.
    turns_before = len(conversation.brain.turns)
    assert await _answers(caller, conversation, *_noise(4.0)) == []
    assert len(conversation.brain.turns) == turns_before, conversation.log.heard

    # A minute without a pause, three times: no crash, and the turn ends with the words heard.
    # This process also runs the STT, VAD and TTS models, whose buffers grow once to the
    # largest input seen (a long decode, the longest answer sentence): on a loaded CI box that
    # growth spread over the first two minutes (+120, +95 MB). A leak (an utterance that kept
    # its frames or decodes) grows the process every minute, so the smaller growth of the
    # last two minutes is the one bounded.
    pcm, rate = _monologue(speech, 60.0)
    assert len(pcm) / 2 / rate > 55
    rss = [_rss_mb()]
    for _ in range(3):
        since = (await (await caller.say(pcm, rate))).started_at
        # Whisper decodes a long utterance once it ends: two 30 s windows for a minute.
        await wait_until(
            partial(_finals_after, conversation, since),
            timeout_s=180,
            interval_s=0.2,
            what="a final transcript of the minute",
        )
        heard = _finals_after(conversation, since)
        assert "trip" in heard.lower(), conversation.log.heard[-3:]
        await caller.wait_quiet(1.0, within_s=120)
        await asyncio.sleep(2.0)  # the answer to it has played out
        rss.append(_rss_mb())
    print(f"RSS after each minute: {rss} MB")
    assert min(rss[2] - rss[1], rss[3] - rss[2]) < 50, f"RSS after each minute: {rss} MB"

    # And the conversation goes on.
    answers = await _answers(caller, conversation, *speech.say_plain("What time is it?"))
    assert any(a.startswith("It's ") for a in answers), _turns(conversation)

"""A conversation's limits (`ARC_VOICE__MAX_SESSION_S`, `ARC_VOICE__MAX_TURNS`) through a
real room: at the limit the agent says why, in words the person hears, and the session ends
with its reason recorded."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from arc_voice.caller import RoomCaller
from arc_voice.conversation import Conversation
from arc_voice.models import VoiceModels

from tests.fixtures.brain import RunningBrain
from tests.fixtures.tts import TtsWorker
from tests.fixtures.voice import SpeechSynth, VoiceFactory, VoiceHarness, transcribe

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIMIT_FAREWELL = "That is all the time we have today. Goodbye."


async def _heard(caller: RoomCaller, models: VoiceModels, since: float) -> str:
    await caller.wait_quiet(1.0, within_s=60)
    audio = caller.audio_between(since, time.monotonic())
    return (await transcribe(models, audio, caller.heard_rate)).lower()


async def _last_words(caller: RoomCaller, models: VoiceModels) -> str:
    """Whisper's words for the last 1.2 s of the agent's audio the person heard: a second look
    for the last word. Whisper heard the whole farewell as "... that is all the time we have
    today." once in CI (2026-12-07) although its last 0.4 s ("Goodbye.") had reached the
    person: a short last word after a pause is what it drops."""
    last = caller.last_audible()
    assert last is not None
    audio = caller.audio_between(last - 1.2, last + 0.1)
    return (await transcribe(models, audio, caller.heard_rate)).lower()


def _said_goodbye(text: str) -> bool:
    return "bye" in text or re.search(r"\bby\b", text) is not None


async def _goodbye_heard(heard: str, caller: RoomCaller, models: VoiceModels) -> tuple[bool, str]:
    """Whether the farewell's last word is in the whole transcript or, failing that, in
    Whisper's words for the last audio heard; and those words (empty when not needed)."""
    if _said_goodbye(heard):
        return True, ""
    last_words = await _last_words(caller, models)
    return _said_goodbye(last_words), last_words


def _what_was_sent(caller: RoomCaller, conversation: Conversation, since: float) -> str:
    """For a failed assertion: the units the agent synthesised and how much audio came back
    for each, against the audible stretches the caller received (a lost word is then either
    never sent, sent and not heard, or heard and not recognised)."""
    sent = [
        (unit, round(stream.audio_bytes / 2 / conversation.tts.sample_rate, 2))
        for stream in conversation.tts.streams
        for unit in stream.units
    ]
    frames = caller.audible_between(since, time.monotonic())
    stretches: list[list[float]] = []
    for at in frames:
        if stretches and at - stretches[-1][1] < 0.3:
            stretches[-1][1] = at
        else:
            stretches.append([at, at])
    heard = [(round(a - since, 2), round(b - since, 2)) for a, b in stretches]
    return f"sent (unit, seconds of its stream): {sent}; audible (s after join): {heard}"


async def _ended(harness: VoiceHarness, session_id: str) -> tuple[str, str]:
    [(status, reason)] = await harness.poll_rows(
        "SELECT status, end_reason FROM agents.sessions WHERE session_id = %s AND status = 'ended'",
        session_id,
    )
    events = await harness.poll_rows(
        "SELECT payload->>'reason' FROM agents.outbox WHERE session_id = %s "
        "AND type = 'session.ended'",
        session_id,
    )
    assert events == [(reason,)], events
    return status, reason


async def test_at_the_turn_limit_the_answer_ends_then_the_agent_says_why_and_leaves(
    voice_factory: VoiceFactory,
    voice_brain: RunningBrain,
    speech: SpeechSynth,
    voice_models: VoiceModels,
) -> None:
    harness = await voice_factory(greeting="", max_turns=1, limit_farewell=LIMIT_FAREWELL)
    caller, conversation = await harness.talk_to("hana")
    pcm, rate = speech.say_plain("What time is it?")
    spoken = await (await caller.say(pcm, rate))
    await caller.wait_audible(spoken.ended_at, within_s=30)
    # The goodbye is played before the session closes; the gap between the answer and it
    # (a TTS start) can pass a second on a loaded box, so listen until the end.
    await asyncio.wait_for(conversation.wait_closed(), timeout=60)
    heard = await _heard(caller, voice_models, spoken.ended_at)
    # The answer ("It's 6:36 PM UTC.") first, then the farewell. Whisper is loose with both:
    # "It's" came out as "At", Piper's "Goodbye" as "good bye" or "bye bye"; so the answer is
    # matched by its digits and the farewell by its first sentence, and its last word (played
    # to its end) in the last audio heard.
    goodbye, last_words = await _goodbye_heard(heard, caller, voice_models)
    assert "time we have" in heard and goodbye, (
        f"heard {heard!r}, ending {last_words!r}; "
        f"{_what_was_sent(caller, conversation, spoken.ended_at)}"
    )
    answer = re.search(r"\d", heard)
    assert answer is not None and answer.start() < heard.index("time we have"), heard
    assert conversation.end_reason == "turn_limit"
    assert await _ended(harness, conversation.session_id) == ("ended", "turn_limit")


async def test_at_the_time_limit_the_agent_says_why_and_the_session_ends(
    voice_factory: VoiceFactory, tts_worker: TtsWorker, voice_models: VoiceModels
) -> None:
    harness = await voice_factory(
        greeting="", max_session_s=3.0, idle_timeout_s=60.0, limit_farewell=LIMIT_FAREWELL
    )
    caller, conversation = await harness.talk_to("ivan")
    joined = time.monotonic()
    said_at = await caller.wait_audible(joined, within_s=30)
    assert said_at - joined >= 2.0, said_at - joined
    await asyncio.wait_for(conversation.wait_closed(), timeout=60)
    heard = await _heard(caller, voice_models, joined)
    goodbye, last_words = await _goodbye_heard(heard, caller, voice_models)
    assert "time we have" in heard and goodbye, (
        f"heard {heard!r}, ending {last_words!r}; {_what_was_sent(caller, conversation, joined)}"
    )
    assert conversation.end_reason == "time_limit"
    assert await _ended(harness, conversation.session_id) == ("ended", "time_limit")

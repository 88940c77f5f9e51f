"""A person who leaves a room and comes back soon (a reloaded page, a dropped network, a
LiveKit server that restarted) resumes their session, greeted as someone who came back; the
chaos suite's LiveKit restart started a stranger's session instead."""

from __future__ import annotations

import asyncio
import time

import pytest
from arc_voice.models import VoiceModels

from tests.fixtures.tts import TtsWorker
from tests.fixtures.voice import VoiceFactory, greeted, room_name, transcribe

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_a_person_who_leaves_and_rejoins_resumes_their_session(
    voice_factory: VoiceFactory, tts_worker: TtsWorker, voice_models: VoiceModels
) -> None:
    harness = await voice_factory(
        greeting="Hello there, what can I do?", welcome_back="Welcome back.", rejoin_resume_s=60
    )
    room = room_name()
    agent = await harness.worker.join(room)
    first = await harness.caller(room, "rita")
    await greeted(first)
    session_id = (await harness.conversation(room, "rita")).session_id

    await first.room.disconnect()  # the page reloads
    deadline = time.monotonic() + 15
    while "rita" in agent.conversations:
        assert time.monotonic() < deadline, "the agent did not notice the person leave"
        await asyncio.sleep(0.05)

    second = await harness.caller(room, "rita")
    joined = time.monotonic()
    await second.wait_for_agent()
    start = await second.wait_audible(joined, within_s=20)
    end = await second.wait_quiet(0.8, within_s=20)
    heard = await transcribe(
        voice_models, second.audio_between(start - 0.05, end + 0.05), second.heard_rate
    )
    assert "welcome back" in heard.lower(), heard
    assert "hello there" not in heard.lower(), heard
    resumed = await harness.conversation(room, "rita")
    assert resumed.session_id == session_id

    # Someone else joining is a new session, greeted as new.
    other = await harness.caller(room, "sam")
    assert (await harness.conversation(room, "sam")).session_id != session_id
    await other.wait_for_agent()

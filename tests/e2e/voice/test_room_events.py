"""Announcements, idle timeout and lifecycle events, through a real room."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest
from arc_common import subjects
from arc_voice.models import VoiceModels
from nats.aio.client import Client

from tests.fixtures.brain import RunningBrain
from tests.fixtures.tts import TtsWorker
from tests.fixtures.voice import SpeechSynth, VoiceFactory, transcribe

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _announce(room: str, text: str, category: str, priority: int = 0) -> bytes:
    body: dict[str, Any] = {
        "text": text,
        "room": room,
        "category": category,
        "priority": priority,
        "source": "deployer",
    }
    return msgspec.msgpack.encode(body)


async def test_a_burst_of_announcements_is_spoken_once_and_never_over_the_person(
    voice_factory: VoiceFactory,
    voice_brain: RunningBrain,
    speech: SpeechSynth,
    voice_models: VoiceModels,
    nc: Client,
    subject_prefix: str,
) -> None:
    harness = await voice_factory(greeting="", announce_window_s=1.0)
    caller, conversation = await harness.talk_to("frank")
    room = conversation.place

    # The person is talking when the burst arrives: the agent waits for them. One fixed take
    # with no comma: a random pause after "Hello there," could end the turn there (a CI run
    # heard the agent greet back mid-sentence), which is not what this test is about.
    pcm, rate = speech.say_plain("How are you doing on this fine day?")
    talking = await caller.say(pcm, rate, wait=False)
    await asyncio.sleep(0.5)
    subject = subjects.prefixed(subject_prefix, subjects.VOICE_ANNOUNCE)
    published_at = time.monotonic()
    await nc.publish(subject, _announce(room, "The index is warming up.", "init"))
    await nc.publish(subject, _announce(room, "All systems are ready.", "ready", 5))
    await nc.publish(subject, _announce(room, "Caches are loading.", "init"))
    await nc.flush()
    spoken = await talking
    first = await caller.wait_audible(published_at, within_s=30)
    assert first > spoken.ended_at, "the agent spoke over the person"

    rows = await harness.poll_rows(
        "SELECT payload->>'text', payload->>'category' FROM agents.outbox "
        "WHERE type = 'announcement.spoken' AND payload->>'room' = %s",
        room,
        within_s=60,
    )
    assert rows == [("All systems are ready.", "ready")]
    agent = harness.worker.rooms[room]
    assert [a.text for a in agent.announcements.spoken] == ["All systems are ready."]
    # It was heard: Whisper finds the ready announcement in the agent's audio.
    await caller.wait_quiet(1.0, within_s=60)
    audio = caller.audio_between(spoken.ended_at, time.monotonic())
    heard = await transcribe(voice_models, audio, caller.heard_rate)
    assert "ready" in heard.lower(), heard
    assert "warming" not in heard.lower() and "caches" not in heard.lower(), heard


async def test_an_idle_session_says_goodbye_and_ends(
    voice_factory: VoiceFactory,
    tts_worker: TtsWorker,
) -> None:
    harness = await voice_factory(greeting="", idle_timeout_s=2.0, farewell="Goodbye for now.")
    caller, conversation = await harness.talk_to("gina")
    joined = time.monotonic()
    farewell_at = await caller.wait_audible(joined, within_s=15)
    assert farewell_at - joined >= 1.5
    await conversation.wait_closed()
    assert conversation.end_reason == "idle"
    rows = await harness.poll_rows(
        "SELECT type, payload->>'reason' FROM agents.outbox WHERE session_id = %s "
        "AND type IN ('session.started', 'session.ended') ORDER BY id",
        conversation.session_id,
        want=2,
    )
    assert rows == [("session.started", None), ("session.ended", "idle")]
    [(status, reason)] = await harness.poll_rows(
        "SELECT status, end_reason FROM agents.sessions WHERE session_id = %s",
        conversation.session_id,
    )
    assert (status, reason) == ("ended", "idle")


async def test_leaving_ends_the_session_with_its_events(
    voice_factory: VoiceFactory,
    tts_worker: TtsWorker,
    nc: Client,
    subject_prefix: str,
) -> None:
    started: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []

    async def on_started(msg: Any) -> None:
        started.append(msgspec.msgpack.decode(msg.data))

    async def on_ended(msg: Any) -> None:
        ended.append(msgspec.msgpack.decode(msg.data))

    await nc.subscribe(subjects.prefixed(subject_prefix, subjects.SESSION_STARTED), cb=on_started)
    await nc.subscribe(subjects.prefixed(subject_prefix, subjects.SESSION_ENDED), cb=on_ended)
    harness = await voice_factory(greeting="")
    caller, conversation = await harness.talk_to("hugo")
    await caller.aclose()
    await asyncio.wait_for(conversation.wait_closed(), 15)
    await harness.poll_rows(
        "SELECT 1 FROM agents.outbox WHERE session_id = %s AND type = 'session.ended'",
        conversation.session_id,
    )
    rows = await harness.poll_rows(
        "SELECT type, payload->>'participant', payload->>'reason' FROM agents.outbox "
        "WHERE session_id = %s ORDER BY id",
        conversation.session_id,
    )
    types = [t for t, _, _ in rows]
    assert "session.started" in types and types[-1] == "session.ended"
    assert ("track.published", "hugo", None) in rows
    assert ("track.published", "arc-agent", None) in rows
    assert rows[-1][2] == "participant_left"
    assert [m["session_id"] for m in started] == [conversation.session_id]
    assert [m["reason"] for m in ended] == ["participant_left"]
    assert started[0]["type"] == "session.started" and started[0]["user_id"] == "hugo"

"""Announcements, idle timeout and lifecycle events, through a real room."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest
from arc_common import subjects
from arc_voice.models import VoiceModels
from arc_voice.plugins.stt import to_whisper_audio
from livekit import rtc
from nats.aio.client import Client

from tests.e2e.voice.test_room_to_room import _conversation, _poll_rows
from tests.fixtures.brain import BrainFactory
from tests.fixtures.tts import TtsWorker
from tests.fixtures.voice import SpeechSynth, VoiceFactory, room_name

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
    brain_factory: BrainFactory,
    tts_worker: TtsWorker,
    speech: SpeechSynth,
    voice_models: VoiceModels,
    nc: Client,
    subject_prefix: str,
) -> None:
    await brain_factory(subject_prefix=subject_prefix)
    harness = await voice_factory(greeting="", announce_window_s=1.0)
    room = room_name()
    await harness.worker.join(room)
    caller = await harness.caller(room, "frank")
    await caller.wait_for_agent()
    await _conversation(harness, room, "frank")

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

    rows = await _poll_rows(
        harness,
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
    assert voice_models.whisper is not None
    audio = caller.audio_between(spoken.ended_at, time.monotonic())
    heard = await voice_models.whisper.transcribe(
        to_whisper_audio(rtc.AudioFrame(audio, caller.heard_rate, 1, len(audio) // 2))
    )
    assert "ready" in heard.lower(), heard
    assert "warming" not in heard.lower() and "caches" not in heard.lower(), heard


async def test_an_idle_session_says_goodbye_and_ends(
    voice_factory: VoiceFactory,
    tts_worker: TtsWorker,
) -> None:
    harness = await voice_factory(greeting="", idle_timeout_s=2.0, farewell="Goodbye for now.")
    room = room_name()
    await harness.worker.join(room)
    caller = await harness.caller(room, "gina")
    await caller.wait_for_agent()
    conversation = await _conversation(harness, room, "gina")
    joined = time.monotonic()
    farewell_at = await caller.wait_audible(joined, within_s=15)
    assert farewell_at - joined >= 1.5
    await conversation.wait_closed()
    assert conversation.end_reason == "idle"
    rows = await _poll_rows(
        harness,
        "SELECT type, payload->>'reason' FROM agents.outbox WHERE session_id = %s "
        "AND type IN ('session.started', 'session.ended') ORDER BY id",
        conversation.session_id,
        want=2,
    )
    assert rows == [("session.started", None), ("session.ended", "idle")]
    [(status, reason)] = await _poll_rows(
        harness,
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
    room = room_name()
    await harness.worker.join(room)
    caller = await harness.caller(room, "hugo")
    await caller.wait_for_agent()
    conversation = await _conversation(harness, room, "hugo")
    await caller.aclose()
    await asyncio.wait_for(conversation.wait_closed(), 15)
    await _poll_rows(
        harness,
        "SELECT 1 FROM agents.outbox WHERE session_id = %s AND type = 'session.ended'",
        conversation.session_id,
    )
    rows = await _poll_rows(
        harness,
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

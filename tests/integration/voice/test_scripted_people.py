"""The benchmark's scripted people in their own process (`tests/bench/people.py`), in a real
LiveKit room: what one says the other hears, on the same clock as this process, and a bad
request is answered without ending the process."""

from __future__ import annotations

import time

import pytest
from arc_stack.livekit import LiveKitServer
from arc_voice.caller import participant_token

from tests.bench.people import RemoteTimeout, start_people
from tests.fixtures.voice import SpeechSynth, room_name

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_a_person_in_the_other_process_is_heard_on_this_processs_clock(
    livekit_server: LiveKitServer, speech: SpeechSynth
) -> None:
    people = await start_people()
    try:
        room = room_name()

        def token(identity: str) -> str:
            return participant_token(
                api_key=livekit_server.api_key,
                api_secret=livekit_server.api_secret,
                room=room,
                identity=identity,
            )

        speaker = await people.caller(livekit_server.url, token("speaker"), None)
        listener = await people.caller(livekit_server.url, token("listener"), None)
        await listener.wait_for_agent(within_s=20)  # subscribed to the speaker's microphone
        pcm, rate = speech.say("Hello there, can you hear me?")
        asked_at = time.monotonic()
        spoken = await (await speaker.say(pcm, rate))
        assert asked_at < spoken.speech_started_at < spoken.speech_ended_at <= spoken.ended_at
        assert spoken.ended_at < time.monotonic() + 0.5  # its clock is this process's

        heard = await listener.wait_audible(spoken.speech_started_at, within_s=5)
        assert spoken.speech_started_at < heard < spoken.speech_started_at + 1.0
        assert await listener.first_audible_after(spoken.speech_started_at) == heard
        audible = await listener.audible_between(spoken.speech_started_at, spoken.ended_at + 1)
        assert len(audible) * 0.02 > (spoken.speech_ended_at - spoken.speech_started_at) / 2
        with pytest.raises(RemoteTimeout):
            await listener.wait_audible(time.monotonic() + 60, within_s=0.2)

        with pytest.raises(RuntimeError, match="unknown op"):
            await people.call("sing", key=speaker.key)
        with pytest.raises(RuntimeError, match="no person"):
            await people.call("wait_quiet", key=99, quiet_s=1, within_s=1)
        assert await listener.wait_quiet(0.3, within_s=10) >= heard  # still serving
    finally:
        await people.aclose()
    assert people.process.returncode == 0

"""A scripted person in a room of the chaos mesh: joins (LiveKit dispatches an agent), asks
questions aloud, and hears the answers, which Whisper writes down so a report can say what
the person heard while a part of the mesh was failing."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass

from arc_voice.caller import AUDIBLE_DB, RoomCaller, Utterance, participant_token
from arc_voice.plugins.stt import WhisperEngine, to_whisper_audio
from arc_voice.room_agent import agent_track_name
from livekit import rtc

from tests.chaos.mesh import ChaosMesh
from tests.fixtures.voice import SpeechSynth

TIME_QUESTION = "What time is it?"
# The brain's clock skill: "It's 4:35 PM UTC." Whisper tiny.en writes it loosely ("At 605 PM
# UTC.", "It's 612 pdm, UDC.", "It's 6A in TM UTC." for 6:08): three digits, or the zone or
# a.m./p.m. that no other answer here has (the apology, the notices, the list of skills).
TIME_ANSWER = re.compile(r"\d\D{0,3}\d\D{0,3}\d|\bu[tdc]c\b|\b[ap]\.?\s?m\b", re.I)
# How long the agent may stay silent before a pause counts as the end of what it said.
QUIET_S = 1.5


@dataclass
class Answer:
    asked_at: float  # the person's last speech frame went out
    first_audible: float | None
    text: str

    @property
    def good(self) -> bool:
        return self.first_audible is not None and bool(TIME_ANSWER.search(self.text))


class Person:
    def __init__(
        self, mesh: ChaosMesh, speech: SpeechSynth, ears: WhisperEngine, room: str, name: str
    ) -> None:
        self.mesh = mesh
        self.speech = speech
        self.ears = ears
        self.room = room
        self.name = name
        self.caller: RoomCaller | None = None
        self.answers: list[Answer] = []

    async def join(self, within_s: float = 60.0) -> None:
        """Join the room (a new one is dispatched an agent) and hear the greeting out."""
        token = participant_token(
            api_key=self.mesh.livekit_key,
            api_secret=self.mesh.livekit_secret,
            room=self.room,
            identity=self.name,
            agent_name=self.mesh.agent_name,
        )
        caller = RoomCaller(self.mesh.livekit_url, token, agent_track=agent_track_name(self.name))
        joined = time.monotonic()
        await caller.connect()
        self.caller = caller
        await caller.wait_for_agent(within_s)
        await caller.wait_audible(joined, within_s)
        await caller.wait_quiet(QUIET_S, within_s)

    async def leave(self) -> None:
        if self.caller is not None:
            with contextlib.suppress(Exception):
                await self.caller.aclose()
            self.caller = None

    @property
    def connected(self) -> bool:
        return (
            self.caller is not None
            and self.caller.room.connection_state == rtc.ConnectionState.CONN_CONNECTED
        )

    @property
    def agent_present(self) -> bool:
        return self.caller is not None and any(
            p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            for p in self.caller.room.remote_participants.values()
        )

    def audible_s(self, start: float, end: float) -> float:
        """How much of the agent's audio between `start` and `end` was audible."""
        assert self.caller is not None
        return sum(
            len(h.pcm) / 2 / self.caller.heard_rate
            for h in self.caller.heard
            if start <= h.at <= end and h.level > AUDIBLE_DB
        )

    async def say(self, text: str) -> asyncio.Future[Utterance]:
        """Start saying `text`; the future is done when the last frame has gone out."""
        assert self.caller is not None
        pcm, rate = self.speech.say(text)
        return await self.caller.say(pcm, rate, wait=False)

    async def hear(self, since: float, within_s: float) -> tuple[float | None, str]:
        """What the agent said after `since`: when it was first audible and its words, once it
        has been quiet for a while (or nothing within `within_s`)."""
        assert self.caller is not None
        try:
            first = await self.caller.wait_audible(since, within_s)
        except TimeoutError:
            return None, ""
        with contextlib.suppress(TimeoutError):
            await self.caller.wait_quiet(QUIET_S, 60.0)
        return first, await self.words(since, time.monotonic())

    async def words(self, start: float, end: float) -> str:
        assert self.caller is not None
        audio = self.caller.audio_between(start, end)
        if len(audio) < 2 * self.caller.heard_rate // 10:
            return ""
        frame = rtc.AudioFrame(audio, self.caller.heard_rate, 1, len(audio) // 2)
        return (await self.ears.transcribe(to_whisper_audio(frame))).strip()

    async def ask(self, question: str = TIME_QUESTION, within_s: float = 20.0) -> Answer:
        spoken = await (await self.say(question))
        first, text = await self.hear(spoken.speech_ended_at, within_s)
        answer = Answer(spoken.speech_ended_at, first, text)
        self.answers.append(answer)
        return answer

"""One person's conversation with the agent: an `AgentSession` bound to that participant's
microphone, wired to the brain and TTS over NATS, with its own session id and memory (user id
= participant identity), barge-in bookkeeping, idle timeout, and durable turn records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
from arc_common.events import TurnMetrics
from arc_common.streaming import StreamingClient
from livekit import rtc
from livekit.agents import Agent, AgentSession, llm
from livekit.agents.voice import room_io
from livekit.agents.voice.events import (
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    UserStateChangedEvent,
)

from arc_voice import metrics
from arc_voice.barge_in import BargeIn, stop_agent_audio
from arc_voice.lifecycle import EventRecorder, HeardTurn
from arc_voice.models import VAD_SAMPLE_RATE, VoiceModels
from arc_voice.noise_floor import GateConfig
from arc_voice.plugins.brain_llm import BrainOptions, BrainTurn, NatsBrainLLM
from arc_voice.plugins.gated_vad import GatedVAD
from arc_voice.plugins.tts import NatsTTS, TtsOptions
from arc_voice.session_state import SessionState, State
from arc_voice.settings import VoiceOptions

log = logging.getLogger(__name__)


@dataclass
class ConversationDeps:
    """What every conversation in the worker shares."""

    options: VoiceOptions
    models: VoiceModels
    client: StreamingClient
    recorder: EventRecorder
    subject_prefix: str = ""
    http: aiohttp.ClientSession | None = None


@dataclass
class StoredTurn:
    turn: HeardTurn
    stored: bool


@dataclass
class ReplyTiming:
    """Where one reply's time went, as the worker saw it (for metrics and the benchmark)."""

    turn_id: str
    user_stopped_at: float | None  # monotonic: the VAD declared the end of speech
    transcription_delay_s: float | None
    end_of_turn_delay_s: float | None
    brain_first_delta_s: float | None
    tts_first_chunk_s: float | None
    first_audio_out_at: float | None  # monotonic: the first frame went to the room track


@dataclass
class ConversationLog:
    turns: list[StoredTurn] = field(default_factory=list)
    barge_ins: list[BargeIn] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)
    user_stops: list[float] = field(default_factory=list)
    replies: list[ReplyTiming] = field(default_factory=list)


def agent_track_name(identity: str) -> str:
    return f"arc-agent-for-{identity}"[:256]


class Conversation:
    def __init__(self, *, room: rtc.Room, identity: str, deps: ConversationDeps) -> None:
        self.room = room
        self.identity = identity
        self.track_name = agent_track_name(identity)
        self.session_id = uuid.uuid4().hex
        self.deps = deps
        opts = deps.options
        self.state = SessionState()
        self.log = ConversationLog()
        self._ended = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle_task: asyncio.Task[None] | None = None
        self._recorded_turns: set[str] = set()
        self.end_reason: str | None = None

        self.brain = NatsBrainLLM(
            deps.client,
            BrainOptions(
                session_id=self.session_id,
                user_id=identity,
                room=room.name,
                subject_prefix=deps.subject_prefix,
                first_delta_timeout_s=opts.brain_first_delta_timeout_s,
                idle_timeout_s=opts.brain_idle_timeout_s,
            ),
        )
        self.tts = NatsTTS(
            deps.client,
            TtsOptions(
                session_id=self.session_id,
                sample_rate=opts.tts_sample_rate,
                voice=opts.voice,
                subject_prefix=deps.subject_prefix,
                first_chunk_timeout_s=opts.tts_first_chunk_timeout_s,
                idle_timeout_s=opts.tts_idle_timeout_s,
            ),
        )
        barge = opts.barge_in
        self.vad = GatedVAD(
            deps.models.vad,
            GateConfig(
                margin_db=barge.margin_db,
                speaking_margin_db=barge.speaking_margin_db,
                floor_window_s=barge.floor_window_s,
                hangover_s=barge.hangover_s,
            ),
            agent_speaking=lambda: self.state.state is State.SPEAKING,
            min_speech_s=barge.min_speech_s,
        )
        self.vad.listeners.append(self._on_speech_detected)
        self.session: AgentSession[None] = AgentSession(
            stt=deps.models.recogniser(opts, self.vad, deps.http),
            vad=self.vad,
            llm=self.brain,
            tts=self.tts,
            turn_handling={
                "turn_detection": "vad",
                "endpointing": {"min_delay": opts.endpointing_min_delay_s, "max_delay": 3.0},
                "interruption": {
                    "enabled": True,
                    "mode": "vad",
                    "min_duration": barge.min_speech_s,
                    "resume_false_interruption": False,
                    "false_interruption_timeout": None,
                    "discard_audio_if_uninterruptible": True,
                },
                "preemptive_generation": {"enabled": False},
            },
            user_away_timeout=None,
        )
        self.session.on("agent_state_changed", self._on_agent_state)
        self.session.on("user_state_changed", self._on_user_state)
        self.session.on("conversation_item_added", self._on_item_added)
        self.session.on("close", lambda _ev: self._ended.set())

    async def start(self) -> None:
        opts = self.deps.options
        await self.session.start(
            Agent(instructions="Arc voice agent; the brain service holds the instructions."),
            room=self.room,
            room_options=room_io.RoomOptions(
                participant_identity=self.identity,
                text_input=False,
                audio_input=room_io.AudioInputOptions(
                    sample_rate=VAD_SAMPLE_RATE, frame_size_ms=20, pre_connect_audio=False
                ),
                audio_output=room_io.AudioOutputOptions(
                    sample_rate=opts.tts_sample_rate,
                    track_name=self.track_name,
                ),
                close_on_disconnect=False,
            ),
            session_host=False,
            record=False,
        )
        self.state.participant_joined()
        metrics.CONVERSATIONS_ACTIVE.inc()
        await self.deps.recorder.session_started(self.session_id, self.room.name, self.identity)
        if opts.greeting:
            self.session.say(opts.greeting, allow_interruptions=True)
        self._idle_task = asyncio.create_task(self._watch_idle(), name=f"idle:{self.identity}")

    @property
    def speaking(self) -> bool:
        return self.state.state in (State.SPEAKING, State.THINKING) or self.state.user_speaking

    async def say(self, text: str) -> bool:
        """Speak `text` (an announcement); True once played to the end, False when the
        person interrupted it."""
        handle = self.session.say(text, allow_interruptions=True, add_to_chat_ctx=False)
        await handle.wait_for_playout()
        return not handle.interrupted

    async def wait_closed(self) -> None:
        await self._ended.wait()

    async def aclose(self, reason: str) -> None:
        if self.end_reason is not None:
            return
        self.end_reason = reason
        if self._idle_task is not None and self._idle_task is not asyncio.current_task():
            self._idle_task.cancel()
            await asyncio.gather(self._idle_task, return_exceptions=True)
        await self.session.aclose()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.state.state is not State.WAITING:
            metrics.CONVERSATIONS_ACTIVE.dec()
        self.state.participant_left()
        await self.deps.recorder.session_ended(
            self.session_id, self.room.name, self.identity, reason
        )

    # --- events -------------------------------------------------------------------------

    def _spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_speech_detected(self, at: float) -> None:
        if self.state.state is State.SPEAKING:
            barge_in = stop_agent_audio(self.session, at)
            self.log.barge_ins.append(barge_in)
            if barge_in.stop_ms is not None:
                metrics.BARGE_IN_STOP_MS.observe(barge_in.stop_ms)
            self.state.interrupted()

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        self.state.agent_state(ev.new_state)

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.old_state == "speaking" and ev.new_state != "speaking":
            self.log.user_stops.append(time.monotonic())
        self.state.user_state(ev.new_state)

    def _on_item_added(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage):
            return
        if item.role == "user":
            self.log.transcripts.append(item.text_content or "")
            return
        if item.role != "assistant":
            return
        turn = self._latest_unrecorded_turn()
        if turn is None:
            return  # the greeting or an announcement: not a brain turn
        self._recorded_turns.add(turn.turn_id)
        heard = (item.text_content or "").strip()
        user_metrics = self._last_user_metrics()
        self.log.replies.append(self._timing(turn, user_metrics, item.metrics))
        heard_turn = HeardTurn(
            session_id=self.session_id,
            turn_id=turn.turn_id,
            user_id=self.identity,
            user_text=turn.user_text,
            assistant_text=heard,
            interrupted=item.interrupted,
            metrics=TurnMetrics(
                session_id=self.session_id,
                turn_id=turn.turn_id,
                end_of_speech_ms=_ms(user_metrics.get("end_of_turn_delay")),
                stt_ms=_ms(user_metrics.get("transcription_delay")),
                brain_first_delta_ms=_ms(
                    None if turn.first_delta_at is None else turn.first_delta_at - turn.started_at
                ),
                tts_first_chunk_ms=_ms(item.metrics.get("tts_node_ttfb")),
                voice_to_voice_ms=_ms(item.metrics.get("e2e_latency")),
            ),
        )
        metrics.TURNS.labels(interrupted=str(item.interrupted).lower()).inc()
        if heard_turn.metrics and heard_turn.metrics.voice_to_voice_ms is not None:
            metrics.VOICE_TO_VOICE_MS.observe(heard_turn.metrics.voice_to_voice_ms)
        self._spawn(self._store_turn(heard_turn), name=f"store:{turn.turn_id}")

    def _timing(
        self, turn: BrainTurn, user: dict[str, float], reply: llm.MetricsReport
    ) -> ReplyTiming:
        # The framework stamps wall-clock times; the rest of Arc measures on the monotonic
        # clock, so convert with the offset between the two taken now.
        offset = time.monotonic() - time.time()
        started = reply.get("started_speaking_at")
        stops = [t for t in self.log.user_stops if t <= turn.started_at]
        tts = self.tts.streams[-1] if self.tts.streams else None
        return ReplyTiming(
            turn_id=turn.turn_id,
            user_stopped_at=stops[-1] if stops else None,
            transcription_delay_s=user.get("transcription_delay"),
            end_of_turn_delay_s=user.get("end_of_turn_delay"),
            brain_first_delta_s=(
                None if turn.first_delta_at is None else turn.first_delta_at - turn.started_at
            ),
            tts_first_chunk_s=(
                None
                if tts is None or tts.first_audio_at is None or tts.first_text_at is None
                else tts.first_audio_at - tts.first_text_at
            ),
            first_audio_out_at=None if started is None else started + offset,
        )

    def _latest_unrecorded_turn(self) -> BrainTurn | None:
        for turn in reversed(self.brain.turns):
            if turn.turn_id in self._recorded_turns:
                return None
            if turn.deltas or turn.ended_at is not None:
                return turn
        return None

    def _last_user_metrics(self) -> dict[str, float]:
        for item in reversed(self.session.history.items):
            if isinstance(item, llm.ChatMessage) and item.role == "user":
                return {k: v for k, v in item.metrics.items() if isinstance(v, float)}
        return {}

    async def _store_turn(self, turn: HeardTurn) -> None:
        stored = await self.deps.recorder.turn(turn)
        self.log.turns.append(StoredTurn(turn=turn, stored=stored))

    async def _watch_idle(self) -> None:
        limit = self.deps.options.idle_timeout_s
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            if self.state.idle_for() >= limit:
                break
        farewell = self.deps.options.farewell
        if farewell:
            with contextlib.suppress(Exception):
                await self.say(farewell)
        await self.aclose("idle")


def _ms(seconds: float | None) -> float | None:
    if seconds is None or seconds < 0:
        return None
    return round(seconds * 1000, 3)

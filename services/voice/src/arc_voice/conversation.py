"""One person's conversation with the agent: an `AgentSession` bound to that person's
microphone, wired to the brain and TTS over NATS, with its own session id and memory (user id
= the person's identity), barge-in bookkeeping, idle timeout, and durable turn records.

The same conversation runs behind two transports: a LiveKit room (`room_agent`) and a
WebSocket (`ws_transport`); a `Transport` only says where the audio comes from and goes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from arc_common.events import TurnMetrics
from arc_common.streaming import TurnStreams
from arc_common.tracing import attached
from livekit.agents import Agent, AgentSession, llm
from livekit.agents.voice.events import (
    AgentFalseInterruptionEvent,
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)
from livekit.agents.voice.turn import TurnHandlingOptions

from arc_voice import metrics
from arc_voice.barge_in import BargeIn, pause_agent_audio, resume_stuck_output, stop_agent_audio
from arc_voice.latency import ReplyTiming, monotonic_from_wall, observe_barge_in, observe_reply
from arc_voice.lifecycle import EventRecorder, HeardTurn
from arc_voice.models import VoiceModels
from arc_voice.noise_floor import GateConfig
from arc_voice.plugins.brain_llm import BrainOptions, BrainTurn, NatsBrainLLM
from arc_voice.plugins.gated_vad import GatedVAD, LoudSound
from arc_voice.plugins.tts import NatsTTS, TtsOptions
from arc_voice.recording import RecordingRows, RecordingWriter, SessionRecording, recording_path
from arc_voice.returning import ReturningPeople
from arc_voice.session_state import SessionState, State
from arc_voice.settings import VoiceOptions
from arc_voice.tts_routes import TtsRoutes
from arc_voice.turn_detection import follow_transcripts, turn_detection_options
from arc_voice.turn_trace import TurnTrace

log = logging.getLogger(__name__)


@dataclass
class ConversationDeps:
    """What every conversation in the worker shares."""

    options: VoiceOptions
    models: VoiceModels
    client: TurnStreams
    recorder: EventRecorder
    subject_prefix: str = ""
    http: aiohttp.ClientSession | None = None
    # `agents.recordings` (None: recordings get a file but no row).
    recordings: RecordingRows | None = None
    # Who left which room lately, to resume their session if they come back.
    returning: ReturningPeople | None = None
    # Which TTS worker has which voice loaded (None: every unit to the queue group).
    tts_routes: TtsRoutes | None = None


@dataclass
class StoredTurn:
    turn: HeardTurn
    stored: bool


@dataclass
class ConversationLog:
    turns: list[StoredTurn] = field(default_factory=list)
    barge_ins: list[BargeIn] = field(default_factory=list)
    # Pauses on loudness alone, before the VAD confirmed speech; resumed: unconfirmed.
    loud_pauses: list[tuple[BargeIn, bool]] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)
    user_stops: list[float] = field(default_factory=list)
    replies: list[ReplyTiming] = field(default_factory=list)
    # Per person's turn: True when the answer came from a generation started before the turn
    # was confirmed (preemptive hit), False when it had to start over (a miss).
    preemptive: list[bool] = field(default_factory=list)
    discarded_turns: int = 0
    # What the STT said while the person spoke: (monotonic time, final?, text).
    heard: list[tuple[float, bool, str]] = field(default_factory=list)
    false_interruptions: list[bool] = field(default_factory=list)  # resumed?


def turn_handling(opts: VoiceOptions) -> TurnHandlingOptions:
    """How the session decides turns and interruptions, from the worker's settings."""
    detection, endpointing = turn_detection_options(opts)
    resume = opts.false_interruption_timeout_s > 0
    return {
        "turn_detection": detection,
        "endpointing": endpointing,
        "interruption": {
            "enabled": True,
            "mode": "vad",
            "min_duration": opts.barge_in.min_speech_s,
            # A sound over the agent pauses it; with no words within the timeout it goes on.
            "resume_false_interruption": resume,
            "false_interruption_timeout": opts.false_interruption_timeout_s if resume else None,
            "discard_audio_if_uninterruptible": True,
        },
        "preemptive_generation": {
            "enabled": opts.preemptive_generation,
            # The first TTS piece is the other half of the first audio: start it with the brain.
            "preemptive_tts": True,
        },
    }


class ArcAgent(Agent):
    """The session's agent: the brain holds the instructions; this only notes when the
    framework confirms a person's turn (before it picks a preemptive generation or starts
    one), which is how preemptive hits are told from misses."""

    def __init__(self, on_turn_confirmed: Callable[[], None]) -> None:
        super().__init__(instructions="Arc voice agent; the brain service holds the instructions.")
        self._on_turn_confirmed = on_turn_confirmed

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        self._on_turn_confirmed()


class Transport(Protocol):
    """Where a conversation's audio comes from and where the agent's goes."""

    # The room's name; brain requests, traces and lifecycle events carry it.
    place: str
    tts_sample_rate: int
    voice: str | None

    async def start(
        self, session: AgentSession[None], agent: Agent, recording: SessionRecording | None
    ) -> None:
        """Bind the session's input and output to this transport and start it; when the
        session is recorded, copy the person's audio as it arrives and the agent's as it
        goes out to `recording`."""

    def interrupted(self) -> None:
        """The person's speech stopped the agent (barge-in)."""

    def turn_heard(self, turn: HeardTurn) -> None:
        """One of the agent's answers has played (or was cut off), with its timings."""


class Conversation:
    def __init__(
        self,
        *,
        transport: Transport,
        identity: str,
        deps: ConversationDeps,
        session_id: str | None = None,
        record: bool | None = None,
    ) -> None:
        self.transport = transport
        self.place = transport.place
        self.identity = identity
        self.session_id = session_id or uuid.uuid4().hex
        self.deps = deps
        opts = deps.options
        self.state = SessionState()
        self.log = ConversationLog()
        self._ended = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recorded_turns: set[str] = set()
        # The session's time limit (docs/voice.md); cancelled when it ends first.
        self._time_limit: asyncio.TimerHandle | None = None
        # The reasons a goodbye is already under way for, so each is said once.
        self._leaving: set[str] = set()
        self.end_reason: str | None = None
        # Recorded when the worker's setting says so, unless the session's own choice (the
        # room's metadata, the socket's `start`) says otherwise.
        self.recorded = opts.recording.enabled if record is None else record
        self.recording: SessionRecording | None = None
        self.trace = TurnTrace(session_id=self.session_id, room=self.place, identity=identity)

        self.brain = NatsBrainLLM(
            deps.client,
            BrainOptions(
                session_id=self.session_id,
                user_id=identity,
                room=self.place,
                subject_prefix=deps.subject_prefix,
                first_delta_timeout_s=opts.brain_first_delta_timeout_s,
                idle_timeout_s=opts.brain_idle_timeout_s,
                hold_on_after_s=opts.hold_on_after_s or None,
                hold_on_text=opts.hold_on_text,
                apology=opts.apology,
                trace_context=self.trace.brain_context,
            ),
        )
        self.tts = NatsTTS(
            deps.client,
            TtsOptions(
                session_id=self.session_id,
                sample_rate=transport.tts_sample_rate,
                voice=transport.voice,
                subject_prefix=deps.subject_prefix,
                first_chunk_timeout_s=opts.tts_first_chunk_timeout_s,
                idle_timeout_s=opts.tts_idle_timeout_s,
                trace_context=self.trace.reply_context,
            ),
            routes=deps.tts_routes,
        )
        barge = opts.barge_in
        self.vad = GatedVAD(
            deps.models.vad,
            GateConfig(
                margin_db=barge.margin_db,
                speaking_margin_db=barge.speaking_margin_db,
                floor_window_s=barge.floor_window_s,
                hangover_s=barge.hangover_s,
                learning_ceiling_db=barge.learning_ceiling_db,
            ),
            agent_speaking=lambda: self.state.state is State.SPEAKING,
            min_speech_s=barge.min_speech_s,
            pause_on_loud_s=barge.pause_on_loud_s,
        )
        self.vad.listeners.append(self._on_speech_detected)
        self.vad.loud_listeners.append(self._on_loud)
        self.session: AgentSession[None] = AgentSession(
            stt=deps.models.recogniser(opts, self.vad, deps.http, shared_vad=True),
            vad=self.vad,
            llm=self.brain,
            tts=self.tts,
            turn_handling=turn_handling(opts),
            # The framework's markdown filter holds each delta's last word back until the next
            # delta arrives (it waits for a split token), which delays the first audio by a
            # whole brain step; the brain speaks plain text, so only emoji are dropped here.
            tts_text_transforms=["filter_emoji"],
            # The framework marks the person "away" once they and the agent have both been
            # silent this long; the conversation then says goodbye and ends (_on_user_state).
            user_away_timeout=opts.idle_timeout_s,
        )
        follow_transcripts(self.session)
        self._turn_confirmed_at: float | None = None
        self._answering_item: str | None = None
        # Until then the framework ignores speech over the agent (its AEC warm-up, from the
        # first time the agent speaks) and gives the STT silence instead of the person's words.
        self._warm_up_ends_at: float | None = None
        self.session.on("agent_state_changed", self._on_agent_state)
        self.session.on("user_state_changed", self._on_user_state)
        self.session.on("conversation_item_added", self._on_item_added)
        self.session.on("close", lambda _ev: self._ended.set())
        self.session.on("agent_false_interruption", self._on_false_interruption)
        self.session.on("user_input_transcribed", self._on_transcribed)

    async def start(self, *, greet: bool = True) -> None:
        """Start listening; with `greet`, open with the recording notice (when recorded) and
        the greeting. Without it the client shows the notice itself (docs/recording.md)."""
        opts = self.deps.options
        if self.recorded:
            await self._start_recording()
        await self.transport.start(self.session, ArcAgent(self._turn_confirmed), self.recording)
        self.state.participant_joined()
        metrics.CONVERSATIONS_ACTIVE.inc()
        await self.deps.recorder.session_started(self.session_id, self.place, self.identity)
        if opts.max_session_s:
            self._time_limit = asyncio.get_running_loop().call_later(
                opts.max_session_s, self._time_up
            )
        if not greet:
            return
        notice = opts.recording.notice if self.recording is not None else ""
        if notice:
            # One utterance with the greeting (two would leave a gap of a TTS start between
            # them), not interruptible: the person hears that they are recorded.
            opening = f"{notice} {opts.greeting}".strip()
            self.session.say(opening, allow_interruptions=False, add_to_chat_ctx=False)
        elif opts.greeting:
            self.session.say(opts.greeting, allow_interruptions=True)

    async def _start_recording(self) -> None:
        path = recording_path(self.deps.options.recording.directory, self.session_id)
        recording = SessionRecording(RecordingWriter(path), self.deps.recordings, self.session_id)
        try:
            await recording.start()
        except OSError:
            # A full or read-only disk must not cost the conversation itself.
            log.exception("session %s goes unrecorded: %s cannot be written", self.session_id, path)
            return
        self.recording = recording

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
        if self._time_limit is not None:
            self._time_limit.cancel()
        await self.session.aclose()
        self.trace.close(reason)
        # The idle goodbye closes the conversation from one of these tasks: not itself.
        others = [t for t in self._tasks if t is not asyncio.current_task()]
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        if self.state.state is not State.WAITING:
            metrics.CONVERSATIONS_ACTIVE.dec()
        self.state.participant_left()
        if self.recording is not None:
            # After the session closed: nothing more is heard or said, and the file ends now.
            await self.recording.aclose()
        await self.deps.recorder.session_ended(self.session_id, self.place, self.identity, reason)

    # --- events -------------------------------------------------------------------------

    def _spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_speech_detected(self, at: float) -> None:
        if self.state.state is State.SPEAKING:
            if not self.deps.options.false_interruption_timeout_s:
                barge_in = stop_agent_audio(self.session, at)
            else:
                # The framework decides (words: interrupt; only a sound: resume), but the
                # person must not hear the agent while it makes up its mind.
                barge_in = pause_agent_audio(self.session, at)
                self._spawn(self._release_pause(), name=f"release:{self.identity}")
            self.log.barge_ins.append(barge_in)
            self.trace.interrupted(at)
            observe_barge_in(barge_in.stop_ms)
            self.state.interrupted()
            self.transport.interrupted()

    @property
    def warmed_up(self) -> bool:
        """Whether LiveKit's AEC warm-up is over: before it, nothing the person says or does
        interrupts or pauses the agent."""
        return self._warm_up_ends_at is not None and time.monotonic() >= self._warm_up_ends_at

    def _on_loud(self, sound: LoudSound) -> None:
        if self.state.state is not State.SPEAKING:
            log.debug("a loud sound while %s does not pause anything", self.state.state)
            return
        if self._warm_up_ends_at is None or sound.at < self._warm_up_ends_at:
            # Paused now, the person's words would not be heard (the framework withholds
            # them from the STT during its warm-up) and the answer would sit paused.
            log.debug("a loud sound in the AEC warm-up does not pause the agent")
            return
        if sound.stream.hearing_speech:
            # The VAD confirmed this speech before the agent began (its answer started in the
            # person's pause just as they went on): it will not confirm it again, so a pause
            # waiting for that would resume the agent over them. Their speech: a barge-in.
            self._on_speech_detected(sound.at)
            return
        paused = pause_agent_audio(self.session, sound.at)
        self._spawn(self._confirm_or_resume(paused, sound), name=f"confirm:{self.identity}")

    async def _confirm_or_resume(self, paused: BargeIn, sound: LoudSound) -> None:
        """The loud sound that paused the agent must be confirmed as speech by the VAD within
        `confirm_within_s` of the audio after it; if it is not, the answer goes on (what was
        queued in the room's source is lost). Counted in audio, not wall time: on a loaded
        box Silero runs behind the gate ("VAD inference is slower than realtime"), and a
        wall-clock wait can resume the agent over the person before the VAD has heard them."""
        window = self.deps.options.barge_in.confirm_within_s
        await sound.judged(window, at_most_s=window + _VAD_LAG_AT_MOST_S)
        confirmed = any(b.detected_at >= paused.detected_at for b in self.log.barge_ins)
        resumed = not confirmed and resume_stuck_output(self.session)
        if resumed:
            self.state.agent_state("speaking")
        self.log.loud_pauses.append((paused, resumed))
        metrics.LOUD_PAUSES.labels(outcome="resumed" if resumed else "confirmed").inc()

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        self.state.agent_state(ev.new_state)
        if ev.new_state == "speaking" and self._warm_up_ends_at is None:
            warm_up = self.session.options.aec_warmup_duration or 0.0
            self._warm_up_ends_at = time.monotonic() + warm_up
        if ev.new_state == "speaking" and self._answering_item is not None:
            item, self._answering_item = self._answering_item, None
            self.trace.answer_playing()
            # In the turn's trace: the brain's stored turn and its outbox event join it.
            with attached(self.trace.reply_context()):
                self._spawn(self._resolve(item), name=f"resolve:{item}")

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.old_state == "speaking" and ev.new_state != "speaking":
            self.log.user_stops.append(time.monotonic())
            self.trace.speech_ended(self.log.user_stops[-1])
        self.state.user_state(ev.new_state)
        if ev.new_state == "away" and self.end_reason is None:
            self._spawn(
                self._leave("idle", self.deps.options.farewell), name=f"idle:{self.identity}"
            )

    async def _release_pause(self) -> None:
        """Once the person has been quiet past the false-interruption timeout, the framework
        has interrupted or resumed the paused speech; if it did neither, resume it here."""
        wait = self.deps.options.false_interruption_timeout_s + 0.5
        quiet_since: float | None = None
        while quiet_since is None or time.monotonic() - quiet_since < wait:
            await asyncio.sleep(0.1)
            if self.state.user_speaking:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
        if resume_stuck_output(self.session):
            # The framework's state never left "speaking", so no event will say the agent
            # speaks again; without this the next words over the answer would not pause it
            # (a CI run heard the agent 1.5 s into "Wait, stop" after a resumed "Yeah").
            self.state.agent_state("speaking")
            log.info("resumed a paused answer the framework left paused")

    def _on_transcribed(self, ev: UserInputTranscribedEvent) -> None:
        self.log.heard.append((time.monotonic(), ev.is_final, ev.transcript))
        if ev.is_final and ev.transcript:
            self.trace.transcript_final(self.log.heard[-1][0])
        del self.log.heard[:-64]  # the recent ones are what a reader looks at

    def _turn_confirmed(self) -> None:
        self._turn_confirmed_at = time.monotonic()

    def _on_false_interruption(self, ev: AgentFalseInterruptionEvent) -> None:
        self.log.false_interruptions.append(ev.resumed)
        metrics.FALSE_INTERRUPTIONS.labels(resumed=str(ev.resumed).lower()).inc()

    def _on_item_added(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage):
            return
        if item.role == "user":
            self.log.transcripts.append(item.text_content or "")
            # The framework adds the person's words once it has scheduled a reply to them; the
            # brain turn behind that reply is committed when its first audio plays (below), so
            # a reply cut off before anyone heard it leaves no trace in the history.
            self._answering_item = item.id
            return
        if item.role != "assistant":
            return
        turn = self._latest_unrecorded_turn()
        if turn is None:
            return  # the greeting or an announcement: not a brain turn
        self._recorded_turns.add(turn.turn_id)
        limit = self.deps.options.max_turns
        if limit and len(self._recorded_turns) >= limit:
            self._spawn(
                self._leave("turn_limit", self.deps.options.limit_farewell),
                name=f"turn-limit:{self.identity}",
            )
        heard = (item.text_content or "").strip()
        user_metrics = self._last_user_metrics()
        self.log.replies.append(self._timing(turn, user_metrics, item.metrics))
        self._mark_recording(turn.turn_id, user_metrics, self.log.replies[-1])
        observe_reply(self.log.replies[-1], user_metrics, item.metrics)
        tts = self.tts.streams[-1] if self.tts.streams else None
        turn_trace = self.trace.finish(
            turn_id=turn.turn_id,
            interrupted=item.interrupted,
            confirmed_at=self._turn_confirmed_at,
            audio_ready_at=None if tts is None else tts.first_audio_at,
            first_frame_at=self.log.replies[-1].first_audio_out_at,
        )
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
        self.transport.turn_heard(heard_turn)
        with attached(turn_trace):  # the turn's outbox event carries its trace id
            self._spawn(self._store_turn(heard_turn), name=f"store:{turn.turn_id}")

    def _mark_recording(self, turn_id: str, user: dict[str, float], reply: ReplyTiming) -> None:
        """Place the turn's two lines on the recording's timeline (the sessions console's
        player follows them): the person's from when they began to speak, the answer's from
        its first frame out. Stamped by the brain's rows instead, a line showed up a turn late."""
        if self.recording is None:
            return
        started = user.get("started_speaking_at")  # wall clock, as the framework stamps it
        if started is not None:
            self.recording.mark(turn_id, "user", monotonic_from_wall(started))
        if reply.first_audio_out_at is not None:
            self.recording.mark(turn_id, "assistant", reply.first_audio_out_at)

    def _timing(
        self, turn: BrainTurn, user: dict[str, float], reply: llm.MetricsReport
    ) -> ReplyTiming:
        started = reply.get("started_speaking_at")
        # The end of speech this reply answers: the last one before its audio went out (the
        # brain may have started before it, on a preflight transcript).
        out_at = None if started is None else monotonic_from_wall(started)
        stops = [t for t in self.log.user_stops if out_at is None or t <= out_at]
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
            first_audio_out_at=out_at,
            preemptive=turn.preemptive,
        )

    def _latest_unrecorded_turn(self) -> BrainTurn | None:
        for turn in reversed(self.brain.turns):
            if turn.turn_id in self._recorded_turns:
                return None
            if turn.verdict is False:
                continue  # a guess the framework threw away: nobody heard it
            if turn.deltas or turn.ended_at is not None:
                return turn
        return None

    def _last_user_metrics(self) -> dict[str, float]:
        for item in reversed(self.session.history.items):
            if isinstance(item, llm.ChatMessage) and item.role == "user":
                return {k: v for k, v in item.metrics.items() if isinstance(v, float)}
        return {}

    async def _resolve(self, user_item_id: str) -> None:
        confirmed_at = self._turn_confirmed_at
        undecided = [t for t in self.brain.turns if t.verdict is None]
        try:
            kept = await self.brain.resolve(user_item_id)
        except Exception:
            # The turn still plays; only its storage is at stake (the brain drops it on expiry).
            log.exception("could not commit the brain turn for %s", user_item_id)
            return
        discarded = sum(1 for t in undecided if t is not kept)
        self.log.discarded_turns += discarded
        if discarded:
            metrics.PREEMPTIVE.labels(outcome="discarded").inc(discarded)
        if kept is not None and self.deps.options.preemptive_generation:
            hit = confirmed_at is not None and kept.started_at < confirmed_at
            kept.preemptive = hit
            self.log.preemptive.append(hit)
            metrics.PREEMPTIVE.labels(outcome="hit" if hit else "miss").inc()

    async def _store_turn(self, turn: HeardTurn) -> None:
        stored = await self.deps.recorder.turn(turn)
        self.log.turns.append(StoredTurn(turn=turn, stored=stored))

    async def _leave(self, reason: str, farewell: str) -> None:
        if self.end_reason is not None or reason in self._leaving:
            return
        self._leaving.add(reason)
        if farewell:
            # Queued behind the answer playing, if any: that answer ends first. Not
            # interruptible: the person hears why the conversation ends.
            with contextlib.suppress(Exception):
                handle = self.session.say(
                    farewell, allow_interruptions=reason == "idle", add_to_chat_ctx=False
                )
                await handle.wait_for_playout()
                # Played out here is not yet heard there: the last frames are still in the
                # network and the person's jitter buffer, and closing now cut a goodbye's
                # last word (seen in an e2e run on a loaded box).
                await asyncio.sleep(_FAREWELL_TAIL_S)
        await self.aclose(reason)

    def _time_up(self) -> None:
        self._spawn(
            self._leave("time_limit", self.deps.options.limit_farewell),
            name=f"time-limit:{self.identity}",
        )


_FAREWELL_TAIL_S = 0.5
# How far behind the gate Silero may run before a loud pause is judged without it: beyond
# this the VAD is stalled, and the agent must not stay silent for it.
_VAD_LAG_AT_MOST_S = 3.0


def _ms(seconds: float | None) -> float | None:
    if seconds is None or seconds < 0:
        return None
    return round(seconds * 1000, 3)

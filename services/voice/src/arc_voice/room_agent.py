"""The agent in one LiveKit room: joins it, starts a conversation for every person who joins
(each with their own session and memory), ends it when they leave, records track events, and
speaks the room's announcements one at a time, never over anyone."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from arc_common.wire import Announcement
from livekit import api, rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.voice import room_io
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from arc_voice import metrics
from arc_voice.announcements import AnnouncementQueue, DropReason, Outcome
from arc_voice.barge_in import check_room_output
from arc_voice.conversation import Conversation, ConversationDeps
from arc_voice.lifecycle import HeardTurn
from arc_voice.models import VAD_SAMPLE_RATE
from arc_voice.recording import RecordedInput, SessionRecording, tap_room_output
from arc_voice.settings import LiveKitSettings

log = logging.getLogger(__name__)

_HUMAN_KINDS = (
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
)
# How long an announcement waits for the room to fall silent before it gives up, how long
# the silence must last (so it does not step into a pause between two of the person's
# sentences, or the gap before the agent's reply), and how often it is retried when the
# person talks over it.
_ANNOUNCE_MAX_WAIT_S = 30.0
_ANNOUNCE_QUIET_S = 0.6
_ANNOUNCE_ATTEMPTS = 3
# The text stream topic on which each heard turn's timings reach the person.
TURN_METRICS_TOPIC = "arc.turn_metrics"
# The agent's participant attribute that tells a page the room's conversations are recorded.
RECORDING_ATTRIBUTE = "arc.recording"


# A join the server failed (5xx) or that timed out is tried again for this long. LiveKit
# answers 500 "could not find any available nodes" while its own node stats are over 5 s
# old, which a starved server on a loaded box does for a few seconds (the chaos suite's run
# saw it while Pulsar restarted); the SDK's own three retries all fall within 0.1 s.
JOIN_RETRY_S = 10.0
_PASSING = re.compile(r"\b50[0-4]\b|Internal Server Error|Service Unavailable|timed? ?out", re.I)


class Joinable(Protocol):
    async def connect(self, url: str, token: str, options: rtc.RoomOptions) -> None: ...


def passing_failure(error: BaseException) -> bool:
    """A join failure worth trying again: the server's (5xx) or a timeout, not a refused
    token or a malformed URL."""
    return isinstance(error, rtc.ConnectError) and bool(_PASSING.search(str(error)))


async def join_room(
    room: Joinable, url: str, token: str, *, retry_for_s: float = JOIN_RETRY_S
) -> None:
    """`room.connect`, tried again with backoff while the failure is the server's."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(passing_failure),
        wait=wait_exponential(multiplier=0.25, max=2.0),
        stop=stop_after_delay(retry_for_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    ):
        with attempt:
            await room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))


def room_records(metadata: str | None) -> bool | None:
    """The room's own choice, from its LiveKit metadata (`{"record": false}`, set when the
    room is created or with UpdateRoomMetadata); None leaves it to the worker's setting."""
    if not metadata:
        return None
    try:
        data = json.loads(metadata)
    except ValueError:
        return None  # metadata that is not ours (plain text) says nothing about recording
    record = data.get("record") if isinstance(data, dict) else None
    return record if isinstance(record, bool) else None


def agent_token(livekit: LiveKitSettings, *, room: str, identity: str, ttl_s: int = 3600) -> str:
    return (
        api.AccessToken(livekit.api_key, livekit.api_secret.get_secret_value())
        .with_identity(identity)
        .with_name("Arc")
        .with_kind("agent")
        .with_grants(
            api.VideoGrants(
                room_join=True,
                room=room,
                can_publish=True,
                can_subscribe=True,
                can_publish_data=True,
                # The session publishes its state as the `lk.agent.state` attribute (the talk
                # page and any LiveKit client show it); without this grant that is refused.
                can_update_own_metadata=True,
                agent=True,
            )
        )
        .with_ttl(datetime.timedelta(seconds=ttl_s))
        .to_jwt()
    )


def agent_track_name(identity: str) -> str:
    return f"arc-agent-for-{identity}"[:256]


class RoomTransport:
    """A conversation heard through one participant's microphone in a LiveKit room and
    answered on a track of the agent's own, named for them."""

    def __init__(self, room: rtc.Room, identity: str, *, tts_sample_rate: int, voice: str | None):
        self.room = room
        self.place = room.name
        self.identity = identity
        self.track_name = agent_track_name(identity)
        self.tts_sample_rate = tts_sample_rate
        self.voice = voice
        # Timings on their way to the person; each send is short, and owned here till done.
        self._sending: set[asyncio.Task[None]] = set()

    async def start(
        self, session: AgentSession[None], agent: Agent, recording: SessionRecording | None
    ) -> None:
        await session.start(
            agent,
            room=self.room,
            room_options=room_io.RoomOptions(
                participant_identity=self.identity,
                text_input=True,
                audio_input=room_io.AudioInputOptions(
                    sample_rate=VAD_SAMPLE_RATE, frame_size_ms=20, pre_connect_audio=False
                ),
                audio_output=room_io.AudioOutputOptions(
                    sample_rate=self.tts_sample_rate, track_name=self.track_name
                ),
                close_on_disconnect=False,
            ),
            session_host=False,
            record=False,
        )
        check_room_output(session.output.audio)
        if recording is None:
            return
        # The room I/O exists only once the session has started; the framework's own recorder
        # wraps it at the same point.
        if session.input.audio is not None:
            session.input.audio = RecordedInput(session.input.audio, recording)
        tap_room_output(session.output.audio, recording)
        try:
            await self.room.local_participant.set_attributes({RECORDING_ATTRIBUTE: "on"})
        except Exception:
            log.exception("could not show the recording notice on the agent's attributes")

    def interrupted(self) -> None:
        """The room hears the agent stop; nothing more to tell."""

    def turn_heard(self, turn: HeardTurn) -> None:
        """The turn's timings go to the person on the `arc.turn_metrics` text stream (the
        talk page's latency row), whichever worker serves the room."""
        task = asyncio.create_task(self._send_timings(turn), name=f"timings:{turn.turn_id}")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_timings(self, turn: HeardTurn) -> None:
        try:
            await self.room.local_participant.send_text(
                json.dumps(turn.timings()),
                topic=TURN_METRICS_TOPIC,
                destination_identities=[self.identity],
            )
        except Exception:  # the person left, the room closed: only the page's row is lost
            log.debug("could not send turn timings to %s", self.identity, exc_info=True)


def greeted_with(deps: ConversationDeps, greeting: str) -> ConversationDeps:
    """`deps` for a conversation that opens with `greeting` instead of the usual one (a
    resumed session: the person came back, or the agent did)."""
    return dataclasses.replace(deps, options=deps.options.model_copy(update={"greeting": greeting}))


class RoomAgent:
    def __init__(self, name: str, deps: ConversationDeps, livekit: LiveKitSettings) -> None:
        self.name = name
        self._deps = deps
        self._welcome_back_deps = greeted_with(deps, deps.options.welcome_back)
        self._livekit = livekit
        self.room = rtc.Room()
        self.conversations: dict[str, Conversation] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Conversations being closed are awaited, never cancelled, when the room closes: a
        # half-closed AgentSession would keep generating after its NATS client is gone.
        self._closing: set[asyncio.Task[Any]] = set()
        self.announcements = AnnouncementQueue(
            self._speak_announcement,
            window_s=deps.options.announce_window_s,
            max_pending=deps.options.announce_queue_max,
            report=_count_announcements,
        )
        self.closed = False

    async def start(self) -> None:
        room = self.room
        room.on("participant_connected", self._on_participant_connected)
        room.on("participant_disconnected", self._on_participant_disconnected)
        room.on("track_published", self._on_track_published)
        room.on("track_unpublished", self._on_track_unpublished)
        room.on("local_track_published", self._on_local_track_published)
        room.on("local_track_unpublished", self._on_local_track_unpublished)
        # An agent whose media path broke hears nobody while it still shows in the room: the
        # operator's log says when the connection dropped, came back, or a track was lost.
        room.on("reconnecting", lambda: log.warning("room %s: connection lost", self.name))
        room.on("reconnected", lambda: log.info("room %s: connection resumed", self.name))
        room.on("disconnected", self._on_disconnected)
        room.on("track_subscription_failed", self._on_subscription_failed)
        url, token = self._connection()
        await join_room(room, url, token)
        self.announcements.start()
        for participant in room.remote_participants.values():
            self._on_participant_connected(participant)

    def _connection(self) -> tuple[str, str]:
        """Where and as whom to join: a token of the worker's own (a dispatched job brings
        LiveKit's)."""
        token = agent_token(
            self._livekit, room=self.name, identity=self._deps.options.agent_identity
        )
        return self._livekit.url, token

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.announcements.aclose()
        await asyncio.gather(
            *(c.aclose("agent_left") for c in list(self.conversations.values())),
            return_exceptions=True,
        )
        self.conversations.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()

    def _on_disconnected(self, reason: rtc.DisconnectReason.ValueType) -> None:
        # Info, not a warning: LiveKit deleting a room its people left is the usual way out.
        if not self.closed:
            log.info("room %s: disconnected by %s", self.name, rtc.DisconnectReason.Name(reason))

    def _on_subscription_failed(
        self, participant: rtc.RemoteParticipant, track_sid: str, error: str
    ) -> None:
        log.warning(
            "room %s: could not subscribe to %s of %s: %s",
            self.name,
            track_sid,
            participant.identity,
            error,
        )

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("room task %s failed", task.get_name(), exc_info=exc)

    # --- participants -------------------------------------------------------------------

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        returning = self._deps.returning
        session_id = None
        if returning is not None and participant.kind in _HUMAN_KINDS:
            session_id = returning.back(self.name, participant.identity, time.monotonic())
        if session_id is None:
            self._converse(participant)
            return
        if self._converse(participant, session_id=session_id, deps=self._welcome_back_deps):
            log.info(
                "%s came back to room %s: resuming session %s",
                participant.identity,
                self.name,
                session_id,
            )

    def _converse(
        self,
        participant: rtc.RemoteParticipant,
        *,
        session_id: str | None = None,
        deps: ConversationDeps | None = None,
    ) -> bool:
        """Start a conversation with a person who joined (a resumed one keeps `session_id`);
        False for an agent, a recorder or someone already talked to."""
        if participant.kind not in _HUMAN_KINDS or participant.identity in self.conversations:
            return False
        opts = self._deps.options
        transport = RoomTransport(
            self.room, participant.identity, tts_sample_rate=opts.tts_sample_rate, voice=opts.voice
        )
        conversation = Conversation(
            transport=transport,
            identity=participant.identity,
            deps=deps or self._deps,
            session_id=session_id,
            record=room_records(self.room.metadata),
        )
        self.conversations[participant.identity] = conversation
        self._spawn(self._run_conversation(conversation), name=f"conv:{participant.identity}")
        return True

    async def _run_conversation(self, conversation: Conversation) -> None:
        try:
            await conversation.start()
            await conversation.wait_closed()
        finally:
            await conversation.aclose(conversation.end_reason or "session_closed")
            if self.conversations.get(conversation.identity) is conversation:
                del self.conversations[conversation.identity]

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        conversation = self.conversations.pop(participant.identity, None)
        if conversation is not None:
            if self._deps.returning is not None:
                self._deps.returning.left(
                    self.name, participant.identity, conversation.session_id, time.monotonic()
                )
            task = asyncio.create_task(conversation.aclose("participant_left"), name="conv-close")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            task.add_done_callback(self._done)

    # --- tracks -------------------------------------------------------------------------

    def _track_event(
        self, *, published: bool, participant: str, owner: str, sid: str, kind: int
    ) -> None:
        conversation = self.conversations.get(owner)
        if conversation is None:
            return
        self._spawn(
            self._deps.recorder.track(
                published=published,
                session_id=conversation.session_id,
                room=self.name,
                participant=participant,
                track_sid=sid,
                kind="video" if kind == rtc.TrackKind.KIND_VIDEO else "audio",
            ),
            name="track-event",
        )

    def _on_track_published(
        self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        self._track_event(
            published=True,
            participant=participant.identity,
            owner=participant.identity,
            sid=publication.sid,
            kind=publication.kind,
        )

    def _on_track_unpublished(
        self, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        self._track_event(
            published=False,
            participant=participant.identity,
            owner=participant.identity,
            sid=publication.sid,
            kind=publication.kind,
        )

    def _owner_of_local(self, publication: rtc.LocalTrackPublication) -> str | None:
        for identity in self.conversations:
            if publication.name == agent_track_name(identity):
                return identity
        return None

    def _on_local_track_published(
        self, publication: rtc.LocalTrackPublication, track: rtc.Track
    ) -> None:
        owner = self._owner_of_local(publication)
        if owner is not None:
            self._track_event(
                published=True,
                participant=self.room.local_participant.identity,
                owner=owner,
                sid=publication.sid,
                kind=publication.kind,
            )

    def _on_local_track_unpublished(self, publication: rtc.LocalTrackPublication) -> None:
        owner = self._owner_of_local(publication)
        if owner is not None:
            self._track_event(
                published=False,
                participant=self.room.local_participant.identity,
                owner=owner,
                sid=publication.sid,
                kind=publication.kind,
            )

    # --- announcements ------------------------------------------------------------------

    def announce(self, announcement: Announcement) -> None:
        self.announcements.submit(announcement)

    async def _room_quiet(self) -> bool:
        """Wait until nobody (agent or person) has talked for `_ANNOUNCE_QUIET_S`."""
        deadline = time.monotonic() + _ANNOUNCE_MAX_WAIT_S
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < _ANNOUNCE_QUIET_S:
            if time.monotonic() > deadline:
                return False
            if any(c.speaking for c in self.conversations.values()):
                quiet_since = time.monotonic()
            await asyncio.sleep(0.05)
        return True

    async def _speak_announcement(self, announcement: Announcement) -> DropReason | None:
        # Never two voices at once, never over a person: speak only into a quiet room, and
        # start again when the person talks over it.
        for _attempt in range(_ANNOUNCE_ATTEMPTS):
            if not await self._room_quiet():
                log.warning("announcement dropped: room %s never fell quiet", self.name)
                return DropReason.ROOM_BUSY
            speaker = next(iter(self.conversations.values()), None)
            if speaker is None:
                log.info("announcement not spoken: nobody is in room %s", self.name)
                return DropReason.NO_LISTENER
            if await speaker.say(announcement.text):
                break
        else:
            log.warning("announcement dropped: interrupted %d times", _ANNOUNCE_ATTEMPTS)
            return DropReason.INTERRUPTED
        await self._deps.recorder.announcement(
            room=self.name,
            text=announcement.text,
            category=announcement.category,
            priority=announcement.priority,
            source=announcement.source,
        )
        return None


def _count_announcements(outcome: Outcome, reason: DropReason | None, count: int) -> None:
    metrics.ANNOUNCEMENT_OUTCOMES.labels(outcome=outcome.value).inc(count)
    if reason is not None:
        metrics.ANNOUNCEMENTS_DROPPED.labels(reason=reason.value).inc(count)

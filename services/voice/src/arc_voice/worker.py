"""The voice worker: shared resources (NATS, Postgres, models) and the rooms it is in.

Rooms are joined on request (start-up list, `POST /rooms/{room}/agent`, or a browser asking
for a token); announcements arrive on `agent.voice.announce` and go to the named room.
WebSocket conversations (`/v1/voice`) share the same resources.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from arc_common import subjects
from arc_common.envelope import SCHEMA_HEADER, schema_of
from arc_common.errors import ArcError, BadRequest
from arc_common.streaming import StreamingClient
from arc_common.wire import Announcement, AnnounceReply, ErrorBody, decode_announcement, encode
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from psycopg_pool import AsyncConnectionPool

from arc_voice import metrics
from arc_voice.brain_history import BrainHistory
from arc_voice.conversation import Conversation, ConversationDeps
from arc_voice.lifecycle import EventRecorder
from arc_voice.models import VoiceModels
from arc_voice.recording import RecordingRows, RetentionSweeper
from arc_voice.returning import ReturningPeople
from arc_voice.room_agent import RoomAgent
from arc_voice.settings import LiveKitSettings, VoiceOptions
from arc_voice.tts_routes import TtsRoutes

log = logging.getLogger(__name__)

_ROOM_NAME_MAX = 256
_REPLY_HEADERS = {SCHEMA_HEADER: AnnounceReply.schema}


def checked_room_name(room: str) -> str:
    name = room.strip()
    if not name or len(name) > _ROOM_NAME_MAX or any(c.isspace() or c == "/" for c in name):
        raise BadRequest(f"invalid room name {room!r}: 1..256 characters, no spaces or '/'")
    return name


class VoiceWorker:
    def __init__(
        self,
        *,
        options: VoiceOptions,
        livekit: LiveKitSettings,
        models: VoiceModels,
        nc: Client,
        pool: AsyncConnectionPool[Any] | None,
        subject_prefix: str = "",
    ) -> None:
        self.options = options
        self.livekit = livekit
        self._nc = nc
        self._client = StreamingClient(nc)
        self._prefix = subject_prefix
        # Postgres (None: the worker talks without it); the sessions API reads through it too.
        self.pool = pool
        # The brain writes conversation history; the worker asks it to delete and truncate.
        self.history = BrainHistory(nc, subject_prefix=subject_prefix)
        self.recorder = EventRecorder(pool, nc, subject_prefix, self.history)
        self.deps = ConversationDeps(
            options=options,
            models=models,
            client=self._client,
            recorder=self.recorder,
            subject_prefix=subject_prefix,
            recordings=RecordingRows(pool),
            returning=ReturningPeople(options.rejoin_resume_s),
            tts_routes=TtsRoutes(
                nc, subject_prefix=subject_prefix, refresh_s=options.tts_route_refresh_s
            ),
        )
        recording = options.recording
        # Runs even with recording off: files from when it was on still expire.
        self._retention = RetentionSweeper(recording.directory, recording.retention_days, pool)
        self.rooms: dict[str, RoomAgent] = {}
        # Conversations over `/v1/voice`; each socket's handler owns its own, this set is
        # how the worker finds them (metrics, shutdown).
        self.sockets: set[Conversation] = set()
        self._joining: dict[str, asyncio.Task[RoomAgent]] = {}
        self._announce_sub: Subscription | None = None
        self.rejected_announcements = 0

    async def start(self) -> None:
        if self.options.stt_engine == "deepgram":
            self.deps.http = aiohttp.ClientSession()
        await self._client.start()
        if self.deps.tts_routes is not None:
            self.deps.tts_routes.start()
        self._announce_sub = await self._nc.subscribe(
            subjects.prefixed(self._prefix, subjects.VOICE_ANNOUNCE), cb=self._on_announce
        )
        if self.options.recording.enabled:
            # Made now so a folder that cannot be made stops the worker at start, not later.
            self.options.recording.directory.mkdir(parents=True, exist_ok=True)
        self._retention.start()
        for room in self.options.rooms:
            await self.join(room)

    async def aclose(self) -> None:
        await self._retention.aclose()
        if self._announce_sub is not None:
            await self._announce_sub.unsubscribe()
            self._announce_sub = None
        for task in self._joining.values():
            task.cancel()
        await asyncio.gather(*self._joining.values(), return_exceptions=True)
        await asyncio.gather(*(r.aclose() for r in self.rooms.values()), return_exceptions=True)
        self.rooms.clear()
        await asyncio.gather(
            *(c.aclose("agent_left") for c in list(self.sockets)), return_exceptions=True
        )
        # After the conversations, whose endings are events too.
        await self.recorder.aclose()
        if self.deps.tts_routes is not None:
            await self.deps.tts_routes.aclose()
        await self._client.close()
        if self.deps.http is not None:
            await self.deps.http.close()
            self.deps.http = None

    async def join(self, room: str) -> RoomAgent:
        """Join `room` (once: concurrent calls share one join)."""
        name = checked_room_name(room)
        existing = self.rooms.get(name)
        if existing is not None and not existing.closed:
            return existing
        task = self._joining.get(name)
        if task is None:
            task = asyncio.create_task(self._join(name), name=f"join:{name}")
            self._joining[name] = task
            task.add_done_callback(lambda _t: self._joining.pop(name, None))
        return await asyncio.shield(task)

    async def _join(self, name: str) -> RoomAgent:
        agent = RoomAgent(name, self.deps, self.livekit)
        await agent.start()
        self.rooms[name] = agent
        metrics.ROOMS_JOINED.set(len(self.rooms))
        log.info("joined room %s", name)
        return agent

    async def leave(self, room: str) -> bool:
        agent = self.rooms.pop(room, None)
        if agent is None:
            return False
        await agent.aclose()
        metrics.ROOMS_JOINED.set(len(self.rooms))
        return True

    async def _on_announce(self, msg: Msg) -> None:
        try:
            schema = schema_of(msg.headers)
            if schema is not None and schema != Announcement.schema:
                raise BadRequest(f"arc-schema {schema!r} is not {Announcement.schema!r}")
            announcement = decode_announcement(msg.data)
        except ArcError as exc:
            self.rejected_announcements += 1
            metrics.ANNOUNCEMENTS.labels(outcome="rejected").inc()
            log.warning("announcement rejected: %s", exc.message)
            await self._answer(msg, exc)
            return
        agent = self.rooms.get(announcement.room)
        if agent is None:
            metrics.ANNOUNCEMENTS.labels(outcome="no_room").inc()
            log.info("announcement for room %s, which the agent is not in", announcement.room)
            return
        metrics.ANNOUNCEMENTS.labels(outcome="queued").inc()
        agent.announce(announcement)

    async def _answer(self, msg: Msg, error: ArcError) -> None:
        """Announcements are fire-and-forget; a sender that asked for a reply hears why its
        message was refused, with the contract's error code."""
        if msg.reply:
            body = AnnounceReply(error=ErrorBody(code=error.code.value, message=error.message))
            await self._nc.publish(msg.reply, encode(body), headers=_REPLY_HEADERS)

"""LiveKit agent dispatch for the voice worker (docs/dispatch.md).

The worker registers on the LiveKit server's agent endpoint (`/agent`, the protocol of
`livekit.protocol.agent` that livekit-agents' `AgentServer` speaks) under the configured agent
name, answers availability requests against a hard cap of sessions, joins the rooms it is
assigned with the job's own token on the worker's one event loop (so every conversation
shares the models and the NATS client), and reports its load after every change.

LiveKit's open-source server does not re-dispatch the jobs of a worker that died (its
`deregisterJob` leaves the dispatch as it was, livekit/agents#1472), so the workers do it
among themselves: each publishes a beat on NATS every `BEAT_INTERVAL_S` with the rooms it
serves and the session of every person in them; when a worker's beats stop for
`DEAD_AFTER_S`, or sooner when a probe of a late worker finds its NATS connection gone (or
it says goodbye on a clean stop), the surviving worker with the smallest
id asks LiveKit (AgentDispatchService) for a new dispatch of each of its rooms, carrying the
sessions in the dispatch's metadata, and whichever worker gets the job resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import aiohttp
import msgspec
import nats.errors
from arc_common import subjects
from arc_common.envelope import SCHEMA_HEADER
from livekit import api, rtc
from livekit.protocol import agent, models
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from arc_voice import metrics
from arc_voice.conversation import ConversationDeps
from arc_voice.room_agent import RoomAgent, greeted_with
from arc_voice.settings import DispatchSettings, LiveKitSettings
from arc_voice.worker import VoiceWorker, checked_room_name

log = logging.getLogger(__name__)

# The subject of the workers' beats (under the NATS subject prefix) and its schema.
WORKER_BEAT_SUBJECT = subjects.VOICE_WORKER_BEAT
WORKER_BEAT_SCHEMA = "voice.worker/1"
# A beat every half second, a worker taken for dead after three missed ones: the re-dispatch
# bound is about DEAD_AFTER_S plus one dispatch round trip (docs/dispatch.md). Shorter would
# take a worker whose loop stalled for a moment for dead; that costs a hiccup, not a loss
# (the new agent takes the room over with the same identity and the same sessions).
BEAT_INTERVAL_S = 0.5
DEAD_AFTER_S = 1.5
# A worker whose beat is this late is probed on its own subject (`<beat subject>.<id>`): a
# process that died has lost its NATS connection, and NATS answers "no responders" at once,
# so its rooms go without waiting out DEAD_AFTER_S. A probe answered, or merely slow (a
# stalled loop still holds its subscription), proves nothing; DEAD_AFTER_S still applies.
PROBE_AFTER_S = 0.7
PROBE_TIMEOUT_S = 0.5
# LiveKit drops a dispatch it finds no available worker for at that instant ("no servers
# available", seen on a loaded box right after a kill) and does not try it again. The
# re-dispatching worker checks each room this long after, and dispatches a room that still
# has no agent again, up to this many times.
REDISPATCH_CHECK_S = 5.0
REDISPATCH_TRIES = 3
# While this worker's own NATS connection is down, and this long after it is back, a silent
# peer proves nothing: the peers' beats had no way in, and they reconnect at their own pace
# (nats.py waits `reconnect_wait_s` between tries). Without it a NATS restart made every
# worker take every other for dead and re-dispatch its rooms mid-answer (the chaos suite).
BLIND_GRACE_S = 2.0
# The status is sent after every change; this resend keeps the server's view fresh anyway
# (livekit-agents sends it every 2.5 s).
STATUS_INTERVAL_S = 2.5
# A slot promised in an availability answer is held this long for the assignment (the
# server's own AssignJobTimeout is 7.5 s).
ASSIGNMENT_TIMEOUT_S = 7.5
RECONNECT_MAX_DELAY_S = 5.0
# Said once by an agent that took over a conversation from a worker that died.
BACK_LINE = "Sorry, I lost you for a moment. I'm back."


# --- the cap ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capacity:
    """The hard cap of sessions on one worker and what it means for LiveKit: load is the share
    of the cap in use, FULL at the cap, and no new job past it."""

    max_sessions: int
    # The server offers a job only where the load a worker last reported is under its
    # `agents.target_load` (JobRequestAffinity: sum of target - load; nothing above 0 and the
    # dispatch fails "no servers available"). Reporting the share of the cap itself would
    # take a worker out at 70 % of it: a survivor holding five rooms of six took no sixth
    # after a kill (CI, 2026-12-05). So the share is reported scaled to stay under it.
    server_target_load: float = 0.7

    def load(self, sessions: int) -> float:
        return min(1.0, sessions / self.max_sessions)

    def reported_load(self, sessions: int) -> float:
        """What LiveKit is told: below the server's target while a slot is free, 1 at the cap
        (where the FULL status keeps jobs away anyway)."""
        if self.full(sessions):
            return 1.0
        return self.server_target_load * sessions / self.max_sessions

    def full(self, sessions: int) -> bool:
        return sessions >= self.max_sessions

    def accepts(self, sessions: int) -> bool:
        return sessions < self.max_sessions


def count_sessions(people_per_room: Iterable[int], *, sockets: int, reserved: int) -> int:
    """Sessions a worker carries: one per person in each room it serves (a room where nobody
    has arrived yet still holds its slot: the person is on their way), one per WebSocket
    conversation, and one per slot promised to LiveKit but not assigned yet."""
    return sum(max(1, people) for people in people_per_room) + sockets + reserved


# --- beats between workers ----------------------------------------------------------------


class Departure(msgspec.Struct, kw_only=True):
    """Someone who left a room of a worker lately (docs/dispatch.md, "Coming back")."""

    room: str
    identity: str
    session_id: str
    # Seconds since they left, as the sender counted: the workers' clocks are not shared.
    ago_s: float


class WorkerBeat(msgspec.Struct, kw_only=True):
    """A worker's beat: who it is and, per room it serves, each person's session id."""

    v: int = 1
    worker_id: str
    agent_name: str
    rooms: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    # A worker stopping in order says so, and its rooms are re-dispatched at once.
    leaving: bool = False
    # Its HTTP address: a room's per-turn timings live on the worker serving it, and the
    # others send a client there (`GET /rooms/{room}/people/{identity}/replies`).
    http_url: str = ""
    # The people who left its rooms within the rejoin window: a room closes once its people
    # have gone, and the one they open again on coming back may go to any worker, which
    # resumes their session from this.
    left: list[Departure] = msgspec.field(default_factory=list)


@dataclass
class Peer:
    last_seen: float
    rooms: dict[str, dict[str, str]]
    http_url: str = ""


@dataclass
class PeerTable:
    """The other workers under the same agent name, as their beats tell. Plain logic: the
    caller passes the clock, so tests need no sleeping."""

    me: str
    dead_after_s: float = DEAD_AFTER_S
    blind_grace_s: float = BLIND_GRACE_S
    blind_until: float = 0.0
    peers: dict[str, Peer] = field(default_factory=dict)

    def beat(self, beat: WorkerBeat, now: float) -> dict[str, dict[str, str]] | None:
        """Record a beat; a goodbye returns the leaving worker's rooms."""
        if beat.worker_id == self.me:
            return None
        if beat.leaving:
            self.peers.pop(beat.worker_id, None)
            return beat.rooms
        self.peers[beat.worker_id] = Peer(now, beat.rooms, beat.http_url)
        return None

    def serving(self, room: str) -> str | None:
        """The HTTP address of the live peer serving `room`, if one says so."""
        for peer in self.peers.values():
            if room in peer.rooms and peer.http_url:
                return peer.http_url
        return None

    def serves(self, room: str) -> bool:
        """Whether a live peer says it serves `room`."""
        return any(room in peer.rooms for peer in self.peers.values())

    def late(self, now: float, after_s: float) -> list[str]:
        """The workers whose last beat is older than `after_s`: worth a probe."""
        return [w for w, peer in self.peers.items() if now - peer.last_seen > after_s]

    def gone(self, worker_id: str) -> dict[str, dict[str, str]]:
        """Forget a worker known to have stopped (its probe had no responder); its rooms."""
        peer = self.peers.pop(worker_id, None)
        return {} if peer is None else peer.rooms

    def listening(self, now: float, connected: bool) -> bool:
        """Whether a peer's silence means anything `now`, given whether this worker's own
        NATS connection is up. While it is down, and BLIND_GRACE_S after, every peer counts
        as heard: their beats had no way in."""
        if not connected:
            self.blind_until = now + self.blind_grace_s
        if now < self.blind_until:
            for peer in self.peers.values():
                peer.last_seen = now
            return False
        return True

    def dead(self, now: float) -> dict[str, dict[str, str]]:
        """Forget the workers silent for longer than `dead_after_s`; their rooms."""
        rooms: dict[str, dict[str, str]] = {}
        for worker_id, peer in list(self.peers.items()):
            if now - peer.last_seen > self.dead_after_s:
                del self.peers[worker_id]
                rooms.update(peer.rooms)
        return rooms

    def leads(self) -> bool:
        """One survivor re-dispatches, so a room gets one new dispatch, not one per worker:
        the live worker with the smallest id."""
        return all(self.me < worker_id for worker_id in self.peers)


def resume_metadata(sessions: Mapping[str, str]) -> str:
    return json.dumps({"arc_resume": dict(sessions)})


def resumed_sessions(metadata: str) -> dict[str, str]:
    """The sessions a re-dispatch carries (identity → session id); {} for any other job."""
    if not metadata:
        return {}
    try:
        data = json.loads(metadata)
    except ValueError:
        return {}  # metadata someone else set on their dispatch: not ours to read
    resume = data.get("arc_resume") if isinstance(data, dict) else None
    if not isinstance(resume, dict):
        return {}
    return {str(k): str(v) for k, v in resume.items() if isinstance(v, str)}


def agent_endpoint(url: str) -> str:
    """The server's agent worker endpoint for a LiveKit URL (ws/wss or http/https)."""
    parsed = urlparse(url)
    scheme = {"http": "ws", "https": "wss"}.get(parsed.scheme, parsed.scheme)
    return f"{scheme}://{parsed.netloc}{parsed.path.rstrip('/')}/agent"


# --- a room served for a job --------------------------------------------------------------


class DispatchedRoomAgent(RoomAgent):
    """`RoomAgent` joining with the job's token (identity and permissions come from LiveKit)
    and resuming the sessions a re-dispatch carries, with the back line as their greeting."""

    def __init__(
        self,
        name: str,
        deps: ConversationDeps,
        livekit: LiveKitSettings,
        *,
        url: str,
        token: str,
        resume: Mapping[str, str],
    ) -> None:
        super().__init__(name, deps, livekit)
        self._url = url
        self._token = token
        self._resume = dict(resume)
        self._resumed_deps = greeted_with(deps, BACK_LINE)
        self.resumed: dict[str, str] = {}

    def _connection(self) -> tuple[str, str]:
        return self._url, self._token

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        session_id = self._resume.pop(participant.identity, None)
        if session_id is None:
            # Not in the re-dispatch's sessions: someone new, or someone coming back.
            super()._on_participant_connected(participant)
        elif self._converse(participant, session_id=session_id, deps=self._resumed_deps):
            self.resumed[participant.identity] = session_id
            log.info("resuming session %s in room %s", session_id, self.name)


@dataclass
class Job:
    id: str
    room: str
    agent: RoomAgent | None = None


# --- the worker's side of LiveKit's agent protocol ----------------------------------------


class DispatchClient:
    """Registers the worker with LiveKit and serves the jobs it is given; beats and
    re-dispatches beside it. One task each, all on the worker's loop, closed as a unit."""

    def __init__(
        self,
        worker: VoiceWorker,
        *,
        settings: DispatchSettings,
        livekit: LiveKitSettings,
        nc: Client,
        subject_prefix: str = "",
        http_url: str = "",
    ) -> None:
        self.worker = worker
        self.http_url = http_url
        self.settings = settings
        self.livekit = livekit
        self.capacity = Capacity(settings.max_sessions, settings.server_target_load)
        self.id = uuid.uuid4().hex
        self.peers = PeerTable(self.id)
        self.livekit_worker_id: str | None = None
        self.jobs: dict[str, Job] = {}
        self.redispatched = 0
        self._nc = nc
        self._subject = subjects.prefixed(subject_prefix, WORKER_BEAT_SUBJECT)
        self._probing: set[str] = set()
        # The NATS connection's reconnect count at the last look (`_hearing`).
        self._reconnects = 0
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._sub: Subscription | None = None
        self._probe_sub: Subscription | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_status: tuple[int, float] | None = None
        self._closed = False

    # lifecycle

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()
        self._sub = await self._nc.subscribe(self._subject, cb=self._on_beat)
        self._probe_sub = await self._nc.subscribe(f"{self._subject}.{self.id}", cb=self._on_probe)
        self._spawn(self._connection(), "dispatch:connection")
        self._spawn(self._beats(), "dispatch:beats")

    async def aclose(self) -> None:
        """Unregister first (LiveKit stops sending jobs), then say goodbye so a surviving
        worker takes the rooms over at once, then leave them."""
        self._closed = True
        rooms = self._served_rooms()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        for sub in (self._sub, self._probe_sub):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        with contextlib.suppress(Exception):
            await self._publish_beat(rooms, leaving=True)
        for job in list(self.jobs.values()):
            await self._leave(job)
        if self._http is not None:
            await self._http.close()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("dispatch task %s failed", task.get_name(), exc_info=exc)

    # load

    def sessions(self) -> int:
        rooms = [r for r in self.worker.rooms.values() if not r.closed]
        # A job holds its slot from the availability answer until its room is among the
        # worker's rooms (the assignment and the room connection take a while): counting it
        # only as a room would open a gap in the cap while it connects.
        pending = sum(
            1
            for job in self.jobs.values()
            if job.agent is None or self.worker.rooms.get(job.room) is not job.agent
        )
        return count_sessions(
            (len(r.conversations) for r in rooms),
            sockets=len(self.worker.sockets),
            reserved=pending,
        )

    def detail(self) -> dict[str, Any]:
        sessions = self.sessions()
        return {
            "mode": "livekit",
            "agent_name": self.settings.agent_name,
            "registered": self.livekit_worker_id is not None,
            "worker_id": self.livekit_worker_id,
            "jobs": sorted(job.room for job in self.jobs.values()),
            "sessions": sessions,
            "max_sessions": self.capacity.max_sessions,
            "load": self.capacity.load(sessions),
            "peers": len(self.peers.peers),
            "returning": 0
            if self.worker.deps.returning is None
            else len(self.worker.deps.returning),
            "redispatched": self.redispatched,
        }

    async def _send(self, message: agent.WorkerMessage) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return  # the next registration reports the state afresh
        await ws.send_bytes(message.SerializeToString())

    async def _report_status(self, *, force: bool = False) -> None:
        sessions = self.sessions()
        status = (
            agent.WorkerStatus.WS_FULL
            if self.capacity.full(sessions)
            else agent.WorkerStatus.WS_AVAILABLE
        )
        key = (status, self.capacity.reported_load(sessions))
        if not force and key == self._last_status:
            return
        self._last_status = key
        message = agent.WorkerMessage()
        message.update_worker.status = status
        message.update_worker.load = key[1]
        message.update_worker.job_count = len(self.jobs)
        await self._send(message)

    # connection

    async def _connection(self) -> None:
        attempt = 0
        while not self._closed:
            try:
                await self._session()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LiveKit agent connection lost: %s", exc)
            self._ws = None
            self.livekit_worker_id = None
            attempt += 1
            await asyncio.sleep(min(RECONNECT_MAX_DELAY_S, 0.5 * attempt))

    async def _session(self) -> None:
        assert self._http is not None
        token = (
            api.AccessToken(self.livekit.api_key, self.livekit.api_secret.get_secret_value())
            .with_grants(api.VideoGrants(agent=True))
            .to_jwt()
        )
        async with self._http.ws_connect(
            agent_endpoint(self.livekit.url),
            headers={"Authorization": f"Bearer {token}"},
            heartbeat=30.0,
        ) as ws:
            register = agent.WorkerMessage()
            register.register.type = agent.JobType.JT_ROOM
            register.register.agent_name = self.settings.agent_name
            register.register.allowed_permissions.CopyFrom(
                models.ParticipantPermission(
                    can_publish=True,
                    can_subscribe=True,
                    can_publish_data=True,
                    # the session's `lk.agent.state` attribute (as agent_token grants it)
                    can_update_metadata=True,
                    agent=True,
                )
            )
            await ws.send_bytes(register.SerializeToString())
            first = agent.ServerMessage()
            first.ParseFromString(await ws.receive_bytes(timeout=10.0))
            if not first.HasField("register"):
                raise RuntimeError("LiveKit did not answer the registration")
            self.livekit_worker_id = first.register.worker_id
            self._ws = ws
            log.info(
                "registered with LiveKit as agent %r (worker %s)%s",
                self.settings.agent_name,
                self.livekit_worker_id,
                "" if self.settings.agent_name else ": unnamed, dispatched to every new room",
            )
            await self._report_status(force=True)
            status = self._spawn(self._status_loop(), "dispatch:status")
            try:
                async for raw in ws:
                    if raw.type != aiohttp.WSMsgType.BINARY:
                        continue
                    message = agent.ServerMessage()
                    message.ParseFromString(raw.data)
                    self._on_server_message(message)
            finally:
                status.cancel()
        if not self._closed:
            raise RuntimeError(f"closed by the server ({ws.close_code})")

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            await self._report_status(force=True)

    def _on_server_message(self, message: agent.ServerMessage) -> None:
        which = message.WhichOneof("message")
        if which == "availability":
            self._answer_availability(message.availability)
        elif which == "assignment":
            assignment = message.assignment
            self._spawn(self._run_job(assignment), f"job:{assignment.job.id}")
        elif which == "termination":
            job = self.jobs.get(message.termination.job_id)
            if job is not None:
                self._spawn(self._end(job, agent.JobStatus.JS_SUCCESS), "job-terminated")

    # jobs

    def _answer_availability(self, request: agent.AvailabilityRequest) -> None:
        """Answered at once, in the same callback that counted the sessions: two requests
        arriving together cannot both take the last slot (livekit/agents#4884)."""
        job = request.job
        answer = agent.WorkerMessage()
        answer.availability.job_id = job.id
        room = job.room.name
        if room in self.worker.rooms or any(j.room == room for j in self.jobs.values()):
            # Already there (an explicit dispatch to a room it serves): a second agent with
            # the same identity would push the first one out. Done, not refused, so LiveKit
            # does not hand it to another worker.
            answer.availability.available = False
            answer.availability.terminate = True
        elif self._closed or not self.capacity.accepts(self.sessions()):
            answer.availability.available = False
        else:
            answer.availability.available = True
            answer.availability.participant_identity = self.worker.options.agent_identity
            answer.availability.participant_name = "Arc"
            self._spawn(self._release_unassigned(job.id), f"reserve:{job.id}")
            self.jobs[job.id] = Job(job.id, room)
        self._spawn(self._send_then_report(answer), f"availability:{job.id}")

    async def _send_then_report(self, message: agent.WorkerMessage) -> None:
        await self._send(message)
        await self._report_status()

    async def _release_unassigned(self, job_id: str) -> None:
        await asyncio.sleep(ASSIGNMENT_TIMEOUT_S)
        job = self.jobs.get(job_id)
        if job is not None and job.agent is None:
            log.warning("job %s was never assigned; its slot is free again", job_id)
            self.jobs.pop(job_id, None)
            await self._report_status()

    async def _run_job(self, assignment: agent.JobAssignment) -> None:
        job_info = assignment.job
        job = self.jobs.get(job_info.id)
        if job is None or job.agent is not None:
            log.warning("assignment of job %s that this worker did not promise", job_info.id)
            job = Job(job_info.id, job_info.room.name)
            self.jobs[job.id] = job
        try:
            name = checked_room_name(job.room)
            room_agent = DispatchedRoomAgent(
                name,
                self.worker.deps,
                self.livekit,
                url=assignment.url or self.livekit.url,
                token=assignment.token,
                resume=resumed_sessions(job_info.metadata),
            )
            job.agent = room_agent
            ended = asyncio.Event()
            room_agent.room.on("disconnected", lambda *_: ended.set())
            await room_agent.start()
        except Exception as exc:
            log.exception("job %s in room %s failed to start", job.id, job.room)
            await self._end(job, agent.JobStatus.JS_FAILED, str(exc))
            return
        self.worker.rooms[name] = room_agent
        metrics.ROOMS_JOINED.set(len(self.worker.rooms))
        log.info("joined room %s for job %s", name, job.id)
        await self._job_status(job.id, agent.JobStatus.JS_RUNNING)
        await self._report_status()
        # The room ends the job: LiveKit closes it once only agents are left in it.
        await ended.wait()
        await self._end(job, agent.JobStatus.JS_SUCCESS)

    async def _job_status(self, job_id: str, status: agent.JobStatus, error: str = "") -> None:
        message = agent.WorkerMessage()
        message.update_job.job_id = job_id
        message.update_job.status = status
        message.update_job.error = error
        await self._send(message)

    async def _leave(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        if job.agent is None:
            return
        if self.worker.rooms.get(job.room) is job.agent:
            del self.worker.rooms[job.room]
            metrics.ROOMS_JOINED.set(len(self.worker.rooms))
        await job.agent.aclose()

    async def _end(self, job: Job, status: agent.JobStatus, error: str = "") -> None:
        if self.jobs.get(job.id) is not job:
            return
        await self._leave(job)
        await self._job_status(job.id, status, error)
        await self._report_status()

    # beats and re-dispatch

    def _served_rooms(self) -> dict[str, dict[str, str]]:
        return {
            name: {who: c.session_id for who, c in room.conversations.items()}
            for name, room in self.worker.rooms.items()
            if not room.closed
        }

    async def _publish_beat(self, rooms: dict[str, dict[str, str]], *, leaving: bool) -> None:
        beat = WorkerBeat(
            worker_id=self.id,
            agent_name=self.settings.agent_name,
            rooms=rooms,
            leaving=leaving,
            http_url=self.http_url,
            left=self._departures(),
        )
        await self._nc.publish(
            self._subject,
            msgspec.msgpack.encode(beat),
            headers={SCHEMA_HEADER: WORKER_BEAT_SCHEMA},
        )

    def _departures(self) -> list[Departure]:
        returning = self.worker.deps.returning
        if returning is None:
            return []
        return [
            Departure(room=room, identity=who, session_id=session, ago_s=ago)
            for room, who, session, ago in returning.departures(time.monotonic())
        ]

    def _learn_departures(self, beat: WorkerBeat) -> None:
        """Keep who left a peer's rooms, and forget whoever a peer is talking to again. A
        departure echoed back by a peer while the person is here again is not taken back."""
        returning = self.worker.deps.returning
        if returning is None or beat.worker_id == self.id:
            return
        now = time.monotonic()
        for room, people in beat.rooms.items():
            for identity in people:
                returning.forget(room, identity)
        for gone in beat.left:
            here = self.worker.rooms.get(gone.room)
            if here is not None and gone.identity in here.conversations:
                continue
            returning.heard(gone.room, gone.identity, gone.session_id, now - gone.ago_s, now)

    async def _beats(self) -> None:
        while True:
            try:
                await self._publish_beat(self._served_rooms(), leaving=False)
            except Exception as exc:  # NATS reconnecting: the next beat tries again
                log.warning("worker beat not sent: %s", exc)
            now = time.monotonic()
            if not self._hearing(now):
                await asyncio.sleep(BEAT_INTERVAL_S / 2)
                continue
            for worker_id in self.peers.late(now, PROBE_AFTER_S):
                if worker_id not in self._probing:
                    self._probing.add(worker_id)
                    self._spawn(self._probe(worker_id), f"probe:{worker_id}")
            orphans = self.peers.dead(now)
            if orphans:
                await self._redispatch(orphans)
            await asyncio.sleep(BEAT_INTERVAL_S / 2)

    def _hearing(self, now: float) -> bool:
        """`PeerTable.listening` with this worker's NATS connection: down, or made again
        since the last look (a drop shorter than a beat tick is seen by its reconnect)."""
        reconnects = self._nc.stats["reconnects"]
        fresh = reconnects != self._reconnects
        self._reconnects = reconnects
        return self.peers.listening(now, self._nc.is_connected and not fresh)

    async def _probe(self, worker_id: str) -> None:
        try:
            await self._nc.request(f"{self._subject}.{worker_id}", b"", timeout=PROBE_TIMEOUT_S)
        except nats.errors.NoRespondersError:
            if not self._hearing(time.monotonic()):
                return  # it may not have reconnected yet (BLIND_GRACE_S)
            orphans = self.peers.gone(worker_id)
            if orphans:
                log.info("worker %s has no NATS connection any more: taken for dead", worker_id)
                await self._redispatch(orphans)
        except Exception as exc:  # a timeout or a reconnect: DEAD_AFTER_S decides
            log.debug("probe of worker %s: %r", worker_id, exc)
        finally:
            self._probing.discard(worker_id)

    async def _on_probe(self, msg: Msg) -> None:
        if msg.reply:
            await self._nc.publish(msg.reply, b"")

    async def _on_beat(self, msg: Msg) -> None:
        try:
            beat = msgspec.msgpack.decode(msg.data, type=WorkerBeat)
        except msgspec.DecodeError as exc:
            log.warning("undecodable worker beat dropped: %s", exc)
            return
        if beat.agent_name != self.settings.agent_name:
            return
        self._learn_departures(beat)
        orphans = self.peers.beat(beat, time.monotonic())
        if orphans:
            self._spawn(self._redispatch(orphans), "redispatch")

    def _livekit_api(self) -> api.LiveKitAPI:
        """The server API on the worker's own HTTP session (nothing to open per call)."""
        return api.LiveKitAPI(
            self.livekit.url,
            self.livekit.api_key,
            self.livekit.api_secret.get_secret_value(),
            session=self._http,
        )

    async def _redispatch(self, rooms: dict[str, dict[str, str]]) -> None:
        if not self.peers.leads() or self._closed:
            return
        # A room nobody is talking in is left to close on its own.
        wanted = {room: people for room, people in rooms.items() if people}
        if not wanted:
            return
        log.info("re-dispatching %d rooms of a worker that stopped beating", len(wanted))
        await self._redispatch_all(wanted)
        self._spawn(self._confirm_redispatch(wanted), "redispatch-check")

    async def _redispatch_all(self, rooms: dict[str, dict[str, str]]) -> None:
        async with self._livekit_api() as lkapi:
            # All at once: one after another, each room would wait for the ones before it.
            await asyncio.gather(
                *(self._redispatch_one(lkapi, room, people) for room, people in rooms.items())
            )

    def _has_agent(self, room: str) -> bool:
        return (
            room in self.worker.rooms
            or any(job.room == room for job in self.jobs.values())
            or self.peers.serves(room)
        )

    async def _confirm_redispatch(self, rooms: dict[str, dict[str, str]]) -> None:
        """Dispatch again the rooms that still have no agent a while after (REDISPATCH_*)."""
        for attempt in range(2, REDISPATCH_TRIES + 2):
            await asyncio.sleep(REDISPATCH_CHECK_S)
            rooms = {room: people for room, people in rooms.items() if not self._has_agent(room)}
            if not rooms or self._closed:
                return
            log.warning(
                "%d re-dispatched rooms have no agent %.0f s later: dispatching again (try %d)",
                len(rooms),
                REDISPATCH_CHECK_S,
                attempt,
            )
            await self._redispatch_all(rooms)

    async def _redispatch_one(
        self, lkapi: api.LiveKitAPI, room: str, people: dict[str, str]
    ) -> None:
        try:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=self.settings.agent_name,
                    room=room,
                    metadata=resume_metadata(people),
                )
            )
        except Exception as exc:
            log.warning("re-dispatch of room %s failed: %s", room, exc)
            return
        self.redispatched += 1
        log.info("re-dispatched room %s (%d sessions to resume)", room, len(people))

    async def dispatch(self, room: str) -> None:
        """An explicit dispatch of `room` to this agent name: the HTTP join path's way in when
        the worker runs under LiveKit dispatch."""
        async with self._livekit_api() as lkapi:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=self.settings.agent_name, room=checked_room_name(room)
                )
            )

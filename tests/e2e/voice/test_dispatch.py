"""LiveKit agent dispatch with two real voice worker processes: rooms spread over both, and
when one is killed mid-answer its rooms get an agent again, which resumes the same sessions.

Measured numbers are printed (run with `-s`) and written down in docs/dispatch.md."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
from arc_common.settings import NatsSettings
from arc_stack.livekit import LiveKitServer
from arc_voice.caller import RoomCaller, participant_token
from arc_voice.dispatch import BEAT_INTERVAL_S
from arc_voice.room_agent import agent_track_name
from livekit import rtc
from psycopg_pool import AsyncConnectionPool

from tests.fixtures.brain import BrainFactory
from tests.fixtures.http_auth import AUTH
from tests.fixtures.nats import SessionNats
from tests.fixtures.tts import TtsWorker
from tests.fixtures.voice import SpeechSynth, VoiceProcess, room_name, voice_process

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOMS = 6
# Generous for a shared 2-core machine; the target (3 s) is printed, not asserted.
REDISPATCH_WITHIN_S = 15.0
# A worker's HTTP answer on a box a CI neighbour slows fourfold: bounds a hang only.
HTTP_TIMEOUT_S = 30.0


async def open_room(
    stack: AsyncExitStack, livekit: LiveKitServer, identity: str, agent_name: str | None
) -> RoomCaller:
    """A person joining a room of their own, which their join creates, until `stack` closes.
    With `agent_name`, their token's room configuration asks for that agent (what the voice
    worker's `GET /token` hands out under dispatch): the room is dispatched to it with no
    further call. Without, the token is plain (automatic dispatch's walk-in)."""
    token = participant_token(
        api_key=livekit.api_key,
        api_secret=livekit.api_secret,
        room=room_name(),
        identity=identity,
        agent_name=agent_name,
    )
    caller = RoomCaller(livekit.url, token, agent_track=agent_track_name(identity))
    await caller.connect()
    stack.push_async_callback(caller.aclose)
    return caller


def agent_sid(caller: RoomCaller) -> str | None:
    for participant in caller.room.remote_participants.values():
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            return participant.sid
    return None


async def served_rooms(client: httpx.AsyncClient, worker: VoiceProcess) -> dict[str, list[str]]:
    response = await client.get(f"{worker.url}/rooms", headers=AUTH)
    response.raise_for_status()
    rooms: dict[str, list[str]] = response.json()["rooms"]
    return rooms


async def wait_for(what: str, check: Any, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def dispatch_workers(
    count: int,
    *,
    max_sessions: int,
    nats: NatsSettings,
    livekit: LiveKitServer,
    dsn: str,
    logs: Path,
    agent_name: str | None = None,
) -> AsyncIterator[list[VoiceProcess]]:
    """Worker processes under dispatch, registered with LiveKit before they are yielded; by
    default under an agent name of their own, so no other test's worker is given their rooms
    ("": unnamed, dispatched to every new room)."""
    env = {
        "ARC_VOICE__DISPATCH__MODE": "livekit",
        "ARC_VOICE__DISPATCH__AGENT_NAME": (
            f"arc-{nats.subject_prefix}" if agent_name is None else agent_name
        ),
        "ARC_VOICE__DISPATCH__MAX_SESSIONS": str(max_sessions),
    }
    async with AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(
                stack.enter_async_context(
                    voice_process(
                        nats=nats,
                        dsn=dsn,
                        livekit=livekit,
                        log_path=logs / f"voice-{i}.log",
                        extra_env=env,
                    )
                )
                for i in range(count)
            )
        )
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            for worker in started:
                await wait_for("registration", lambda w=worker: dispatch_detail(client, w), 30)
        yield list(started)


def dispatch_lines(worker: VoiceProcess) -> str:
    """The worker's log lines about dispatch: jobs joined, re-dispatches, resumed sessions."""
    marks = ("re-dispatch", "dispatching again", "joined room", "resuming session", "job ")
    lines = worker.log_path.read_text().splitlines()
    return "\n".join(line for line in lines if any(m in line for m in marks))


async def dispatch_detail(client: httpx.AsyncClient, worker: VoiceProcess) -> dict[str, Any]:
    """The worker's dispatch state once it is registered, else {}."""
    detail: dict[str, Any] = (await client.get(f"{worker.url}/healthz")).json()["detail"]
    dispatch: dict[str, Any] = detail["dispatch"]
    return dispatch if dispatch.get("registered") else {}


SpawnWorkers = Callable[..., AbstractAsyncContextManager[list[VoiceProcess]]]


@pytest.fixture
def spawn_workers(
    nats_server: SessionNats,
    livekit_server: LiveKitServer,
    migrated_dsn: str,
    subject_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> SpawnWorkers:
    """`dispatch_workers` on this test's servers and subjects: `spawn_workers(count, ...)`."""
    return functools.partial(
        dispatch_workers,
        nats=nats_server.settings("voice", subject_prefix=subject_prefix),
        livekit=livekit_server,
        dsn=migrated_dsn,
        logs=tmp_path_factory.mktemp("dispatch"),
    )


@pytest_asyncio.fixture(loop_scope="session")
async def workers(spawn_workers: SpawnWorkers) -> AsyncIterator[tuple[VoiceProcess, VoiceProcess]]:
    # Room for all six on the survivor (the cap has its own test below).
    async with spawn_workers(2, max_sessions=ROOMS) as started:
        yield started[0], started[1]


async def test_rooms_spread_over_two_workers_and_come_back_when_one_is_killed(
    workers: tuple[VoiceProcess, VoiceProcess],
    brain_factory: BrainFactory,
    tts_worker: TtsWorker,
    speech: SpeechSynth,
    livekit_server: LiveKitServer,
    migrated_dsn: str,
    subject_prefix: str,
) -> None:
    await brain_factory(subject_prefix=subject_prefix)
    agent_name = f"arc-{subject_prefix}"
    callers: dict[str, RoomCaller] = {}
    async with AsyncExitStack() as stack, httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
        # Six people, each opening a room of their own: every room is dispatched on join.
        for i in range(ROOMS):
            caller = await open_room(stack, livekit_server, f"person-{i}", agent_name)
            callers[caller.room.name] = caller

        held: dict[int, dict[str, list[str]]] = {}

        async def all_served() -> bool:
            for n, worker in enumerate(workers):
                held[n] = await served_rooms(client, worker)
            served = {room for rooms in held.values() for room, people in rooms.items() if people}
            return served >= set(callers)

        await wait_for("every room to have its agent", all_served, 60)
        split = [len(held[0]), len(held[1])]
        print(f"\nrooms per worker after dispatch: {split}")
        assert all(split), f"one worker got every room: {split}"

        # Kill the worker that holds rooms while it answers in one of them, after one
        # finished turn there (the brain keeps a turn once its answer is heard: that one is
        # the memory the resumed session must keep).
        victim, survivor = (workers[0], workers[1])
        victim_rooms = sorted(held[0])
        asked = victim_rooms[0]
        asker = callers[asked]
        await asker.wait_for_agent()

        async def agents_seen() -> bool:
            return all(agent_sid(callers[room]) for room in victim_rooms)

        await wait_for("every caller to see its agent", agents_seen, 30)
        sids = {room: agent_sid(callers[room]) for room in victim_rooms}
        pcm, rate = speech.say_plain("Hello what can you do?")
        spoken = await (await asker.say(pcm, rate))
        await asker.wait_audible(spoken.ended_at, within_s=60)
        await asker.wait_quiet(1.0, within_s=60)

        # The room's timings live on the worker serving it; the other one sends a client
        # there (what `make talk` follows), by the address in the serving worker's beat.
        [identity] = held[0][asked]
        path = f"/rooms/{asked}/people/{identity}/replies"
        elsewhere = await client.get(f"{survivor.url}{path}", headers=AUTH)
        assert elsewhere.status_code == 307, elsewhere.text
        assert elsewhere.headers["location"] == f"{victim.url}{path}"

        async def timed() -> bool:
            answer = await client.get(elsewhere.headers["location"], headers=AUTH)
            return bool(answer.status_code == 200 and answer.json()["replies"])

        # A reply is timed once it has played out: "what can you do" gets a long answer (9 s
        # on a quiet box), and a loaded box's slow TTS stretches it with gaps (a CI run waited
        # 30 s in vain), so this only bounds a hang.
        await wait_for("the serving worker's timings of the first turn", timed, 120)
        pcm, rate = speech.say("Tell me a short story about a cat.")
        spoken = await (await asker.say(pcm, rate))
        await asker.wait_audible(spoken.ended_at, within_s=60)
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        print(f"SIGKILL at {datetime.datetime.now().time()} (survivor's log clock)")

        back_after: dict[str, float] = {}

        async def agents_back() -> bool:
            for room in victim_rooms:
                sid = agent_sid(callers[room])
                if room not in back_after and sid is not None and sid != sids[room]:
                    back_after[room] = time.monotonic() - killed_at
            return len(back_after) == len(victim_rooms)

        try:
            await wait_for("an agent in every room of the killed worker", agents_back, 60)
        except AssertionError as exc:
            # What the survivor did about it is the diagnosis (its log goes with the tmp dir).
            raise AssertionError(f"{exc}\n{dispatch_lines(survivor)}") from None
        worst = max(back_after.values())
        print(
            f"re-dispatch after SIGKILL: worst {worst:.2f} s over {len(back_after)} rooms "
            f"({', '.join(f'{s:.2f}' for s in sorted(back_after.values()))}); "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        assert worst < REDISPATCH_WITHIN_S, back_after

        # The survivor serves every room now; the asker hears the one line that it is back.
        async def survivor_has_all() -> bool:
            rooms = await served_rooms(client, survivor)
            return all(rooms.get(room) for room in callers)

        await wait_for("the survivor to hold every room", survivor_has_all, 30)
        back = await asker.wait_audible(killed_at + back_after[asked], within_s=30)
        await asker.wait_quiet(0.8, within_s=30)

        # The same session goes on: one session for the person, and a new question is
        # answered within it.
        pcm, rate = speech.say("What is the capital of France?")
        spoken = await (await asker.say(pcm, rate))
        answered = await asker.wait_audible(max(spoken.ended_at, back), within_s=60)
        assert answered > spoken.ended_at - 0.5
        await asker.wait_quiet(1.0, within_s=60)

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(migrated_dsn, min_size=1, open=False)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT DISTINCT session_id FROM agents.sessions WHERE room = %s", (asked,)
            )
            sessions = [row[0] for row in await cur.fetchall()]
            assert len(sessions) == 1, sessions
            deadline = time.monotonic() + 20
            while True:
                cur = await conn.execute(
                    "SELECT count(*) FROM agents.conversations WHERE session_id = %s AND "
                    "role = 'user'",
                    (sessions[0],),
                )
                row = await cur.fetchone()
                turns = row[0] if row else 0
                if turns >= 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            # The questions before and after the kill are turns of the one session.
            assert turns >= 2, turns
    finally:
        await pool.close()
    survivor_log = survivor.log_path.read_text()
    assert "resuming session" in survivor_log, survivor_log[-3000:]
    # Where the re-dispatch time went, from the survivor's side.
    print(dispatch_lines(survivor))


async def test_a_worker_at_its_cap_is_full_and_takes_no_more_rooms(
    spawn_workers: SpawnWorkers, livekit_server: LiveKitServer, subject_prefix: str
) -> None:
    """One worker capped at four sessions: four rooms are served, a fifth is declined (no
    agent comes), and the worker reports itself full. The fourth is the one a stock server
    refuses a worker that reports three quarters of its cap as its load (above the server's
    `agents.target_load`, 0.7)."""
    cap = 4
    async with (
        spawn_workers(1, max_sessions=cap) as (worker,),
        AsyncExitStack() as stack,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client,
    ):
        agent_name = f"arc-{subject_prefix}"
        callers = []
        for i in range(cap + 1):
            caller = await open_room(stack, livekit_server, f"person-{i}", agent_name)
            callers.append(caller)
            if i < cap:
                await wait_for(f"room {i + 1}'s agent", lambda c=caller: _has_agent(c), 30)

        async def full() -> bool:
            detail = await dispatch_detail(client, worker)
            return detail.get("load") == 1.0 and detail.get("sessions") == cap

        await wait_for("the worker to report itself full", full, 15)
        # LiveKit asked, was declined, and has no other worker: the last room stays empty.
        await asyncio.sleep(5.0)
        assert agent_sid(callers[cap]) is None
        assert sorted(await served_rooms(client, worker)) == sorted(
            c.room.name for c in callers[:cap]
        )


async def _has_agent(caller: RoomCaller) -> bool:
    return agent_sid(caller) is not None


async def test_unnamed_workers_get_every_new_room_and_take_over_a_killed_ones(
    spawn_workers: SpawnWorkers, livekit_server: LiveKitServer
) -> None:
    """Automatic dispatch: workers registered without an agent name get a room that a person
    opens with a plain token (no room configuration); when the serving one is SIGKILLed, the
    other takes the room over (its re-dispatch asks for the unnamed agent)."""
    async with (
        spawn_workers(2, max_sessions=2, agent_name="") as pair,
        AsyncExitStack() as stack,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client,
    ):
        caller = await open_room(stack, livekit_server, "walk-in", None)
        room = caller.room.name
        await wait_for("an agent in a room nobody asked one for", lambda: _has_agent(caller), 30)
        first = agent_sid(caller)

        async def serving() -> list[VoiceProcess]:
            return [w for w in pair if (await served_rooms(client, w)).get(room)]

        async def one_serves() -> bool:
            return len(await serving()) == 1

        await wait_for("one worker to list the person in the room", one_serves, 30)
        [victim] = await serving()
        [survivor] = [w for w in pair if w is not victim]
        await caller.wait_for_agent()
        # The survivor learns the room, and the person's session, from the victim's beats.
        await asyncio.sleep(3 * BEAT_INTERVAL_S)
        os.kill(victim.pid, signal.SIGKILL)

        async def taken_over() -> bool:
            sid = agent_sid(caller)
            return sid is not None and sid != first and room in await served_rooms(client, survivor)

        await wait_for("the survivor to take the room over", taken_over, REDISPATCH_WITHIN_S)
        assert "resuming session" in survivor.log_path.read_text()


async def test_a_person_back_in_a_room_another_worker_gets_resumes_their_session(
    spawn_workers: SpawnWorkers, livekit_server: LiveKitServer, migrated_dsn: str
) -> None:
    """A person leaves; their room closes once only its agent is left in it; they come back
    (a page reloaded later, a restarted LiveKit server) to a room of the same name, which is
    dispatched anew, here to the other worker (the first was killed): that worker learned
    from the first one's beats who left, and resumes their session instead of starting a
    stranger's."""
    async with (
        spawn_workers(2, max_sessions=2, agent_name="") as pair,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client,
    ):
        room = room_name()
        token = participant_token(
            api_key=livekit_server.api_key,
            api_secret=livekit_server.api_secret,
            room=room,
            identity="rita",
            agent_name=None,
        )
        first = RoomCaller(livekit_server.url, token, agent_track=agent_track_name("rita"))
        await first.connect()
        try:
            await first.wait_for_agent()

            async def serving() -> list[VoiceProcess]:
                return [w for w in pair if "rita" in (await served_rooms(client, w)).get(room, [])]

            await wait_for("a worker talking to rita", lambda: _count(serving(), 1), 30)
            [victim] = await serving()
            [other] = [w for w in pair if w is not victim]
        finally:
            await first.aclose()

        # LiveKit closes the room once only the agent is left (its departure timeout, 20 s
        # by default), which ends the victim's job.
        async def closed() -> bool:
            return room not in await served_rooms(client, victim)

        await wait_for("the room to close after rita left", closed, 60)

        async def told() -> bool:
            return bool((await dispatch_detail(client, other)).get("returning"))

        await wait_for("the other worker to hear who left", told, 10)
        os.kill(victim.pid, signal.SIGKILL)

        second = RoomCaller(livekit_server.url, token, agent_track=agent_track_name("rita"))
        await second.connect()
        try:
            await second.wait_for_agent()

            async def resumed() -> bool:
                return "rita came back to room" in other.log_path.read_text()

            await wait_for("the other worker to resume rita's session", resumed, 30)
        finally:
            await second.aclose()

    async with await psycopg.AsyncConnection.connect(migrated_dsn) as conn:
        cur = await conn.execute(
            "SELECT DISTINCT session_id FROM agents.sessions WHERE room = %s", (room,)
        )
        sessions = [row[0] for row in await cur.fetchall()]
    assert len(sessions) == 1, sessions
    assert f"resuming session {sessions[0]}" in other.log_path.read_text()


async def _count(workers: Awaitable[list[VoiceProcess]], n: int) -> bool:
    return len(await workers) == n

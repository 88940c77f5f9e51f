"""The dispatch client's plain logic: the cap, the session count, the peer table that decides
when a worker is dead and who re-dispatches its rooms, and the resume metadata."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

import msgspec
from arc_voice.dispatch import (
    Capacity,
    Departure,
    DispatchClient,
    PeerTable,
    WorkerBeat,
    agent_endpoint,
    count_sessions,
    resume_metadata,
    resumed_sessions,
)
from arc_voice.returning import ReturningPeople
from arc_voice.settings import DispatchSettings, LiveKitSettings, VoiceOptions
from arc_voice.worker import VoiceWorker
from livekit.protocol import agent
from nats.aio.client import Client
from nats.aio.msg import Msg


def test_load_is_the_share_of_the_cap_and_full_at_the_cap() -> None:
    cap = Capacity(max_sessions=2)
    assert cap.load(0) == 0.0
    assert cap.load(1) == 0.5
    assert cap.load(2) == 1.0
    assert cap.load(5) == 1.0
    assert cap.accepts(1) and not cap.full(1)
    assert cap.full(2) and not cap.accepts(2)


def test_the_load_livekit_is_told_stays_under_its_target_until_the_cap() -> None:
    """LiveKit offers no job to a worker whose reported load is at or above the server's
    `agents.target_load` (0.7): a worker with a free slot must report less, whatever its cap."""
    for max_sessions in (1, 2, 4, 6, 50):
        cap = Capacity(max_sessions=max_sessions, server_target_load=0.7)
        for sessions in range(max_sessions):
            assert cap.reported_load(sessions) < 0.7, (max_sessions, sessions)
        assert cap.reported_load(max_sessions) == 1.0
    # a busier worker still reports more, so the server's weighting prefers the idler one
    cap = Capacity(max_sessions=6, server_target_load=0.7)
    assert [round(cap.reported_load(n), 3) for n in range(7)] == [
        0.0,
        0.117,
        0.233,
        0.35,
        0.467,
        0.583,
        1.0,
    ]


def test_sessions_count_people_sockets_and_promised_slots() -> None:
    # a room whose person has not arrived yet still holds a slot
    assert count_sessions([0, 1, 3], sockets=2, reserved=1) == 1 + 1 + 3 + 2 + 1
    assert count_sessions([], sockets=0, reserved=0) == 0


def test_a_silent_worker_is_dead_after_the_bound_and_its_rooms_are_returned_once() -> None:
    table = PeerTable("b", dead_after_s=1.5)
    table.beat(WorkerBeat(worker_id="a", agent_name="arc", rooms={"r1": {"ann": "s1"}}), 10.0)
    table.beat(WorkerBeat(worker_id="c", agent_name="arc", rooms={"r2": {}}), 10.0)
    assert table.dead(11.4) == {}
    table.beat(WorkerBeat(worker_id="c", agent_name="arc", rooms={"r2": {}}), 11.4)
    assert table.dead(11.6) == {"r1": {"ann": "s1"}}
    assert table.dead(11.7) == {}
    assert set(table.peers) == {"c"}


def test_silence_while_this_worker_could_not_hear_nats_kills_no_one() -> None:
    """A NATS restart silences every beat; a worker whose own connection was down judges no
    peer by it, until BLIND_GRACE_S after it is back, and then by silence since then."""
    table = PeerTable("b", dead_after_s=1.5, blind_grace_s=2.0)
    table.beat(WorkerBeat(worker_id="a", agent_name="arc", rooms={"r1": {"p": "s1"}}), 10.0)
    assert table.listening(10.2, connected=True)
    assert not table.listening(10.5, connected=False)  # NATS went away
    assert not table.listening(12.0, connected=False)
    assert not table.listening(13.9, connected=True)  # back at 12.0: grace until 14.0
    assert table.late(13.9, 0.7) == [] and table.dead(13.9) == {}
    assert table.listening(14.1, connected=True)
    # "a" never beats again: dead 1.5 s after it was last excused, not at once.
    assert table.dead(15.3) == {}
    assert table.dead(15.5) == {"r1": {"p": "s1"}}


def test_a_late_worker_is_worth_a_probe_and_one_found_gone_hands_over_its_rooms() -> None:
    table = PeerTable("b", dead_after_s=1.5)
    table.beat(WorkerBeat(worker_id="a", agent_name="arc", rooms={"r1": {"p": "s1"}}), 10.0)
    table.beat(WorkerBeat(worker_id="c", agent_name="arc", rooms={"r2": {"q": "s2"}}), 10.5)
    assert table.late(10.6, 0.7) == []
    assert table.late(10.8, 0.7) == ["a"]
    assert table.gone("a") == {"r1": {"p": "s1"}}
    assert table.gone("a") == {}  # once
    assert list(table.peers) == ["c"] and table.dead(10.8) == {}


def test_a_goodbye_hands_over_the_rooms_at_once() -> None:
    table = PeerTable("b")
    table.beat(WorkerBeat(worker_id="a", agent_name="arc", rooms={"r": {"x": "s"}}), 0.0)
    gone = table.beat(
        WorkerBeat(worker_id="a", agent_name="arc", rooms={"r": {"x": "s"}}, leaving=True), 0.1
    )
    assert gone == {"r": {"x": "s"}}
    assert table.peers == {}


def test_own_beats_are_ignored_and_the_smallest_live_id_leads() -> None:
    table = PeerTable("b")
    assert table.beat(WorkerBeat(worker_id="b", agent_name="arc", leaving=True), 0.0) is None
    assert table.leads()
    table.beat(WorkerBeat(worker_id="c", agent_name="arc"), 0.0)
    assert table.leads()
    table.beat(WorkerBeat(worker_id="a", agent_name="arc"), 0.0)
    assert not table.leads()


def test_resume_metadata_round_trips_and_foreign_metadata_resumes_nothing() -> None:
    assert resumed_sessions(resume_metadata({"ann": "s1"})) == {"ann": "s1"}
    assert resumed_sessions("") == {}
    assert resumed_sessions("plain text") == {}
    assert resumed_sessions('{"arc_resume": [1]}') == {}
    assert resumed_sessions('{"other": 1}') == {}


def test_agent_endpoint_from_any_livekit_url() -> None:
    assert agent_endpoint("ws://127.0.0.1:7880") == "ws://127.0.0.1:7880/agent"
    assert agent_endpoint("https://lk.example.com/") == "wss://lk.example.com/agent"


class _Worker:
    """What the dispatch client reads of the voice worker."""

    def __init__(self) -> None:
        self.rooms: dict[str, Any] = {}
        self.sockets: set[Any] = set()
        self.options = VoiceOptions()
        self.deps = SimpleNamespace(returning=ReturningPeople(window_s=120.0))


async def test_requests_arriving_together_never_take_more_than_the_cap() -> None:
    client = DispatchClient(
        cast(VoiceWorker, _Worker()),
        settings=DispatchSettings(mode="livekit", max_sessions=2),
        livekit=LiveKitSettings(allow_dev_keys=True),
        nc=cast(Client, None),
    )
    sent: list[agent.WorkerMessage] = []

    async def send(message: agent.WorkerMessage) -> None:
        sent.append(message)

    client._send = send  # type: ignore[method-assign]  # no LiveKit connection here
    for i in range(3):
        request = agent.AvailabilityRequest()
        request.job.id = f"job-{i}"
        request.job.room.name = f"room-{i}"
        # No await between the three: the slots are taken in the callback itself.
        client._answer_availability(request)
    again = agent.AvailabilityRequest()
    again.job.id = "job-again"
    again.job.room.name = "room-0"
    client._answer_availability(again)
    await asyncio.sleep(0.05)
    answers = {m.availability.job_id: m.availability for m in sent if m.HasField("availability")}
    assert answers["job-0"].available and answers["job-1"].available
    assert answers["job-0"].participant_identity == "arc-agent"
    assert not answers["job-2"].available and not answers["job-2"].terminate
    # a room already being served: done, so LiveKit does not send a second agent elsewhere
    assert not answers["job-again"].available and answers["job-again"].terminate
    assert client.sessions() == 2
    statuses = [m.update_worker for m in sent if m.HasField("update_worker")]
    assert statuses[-1].status == agent.WorkerStatus.WS_FULL
    assert statuses[-1].load == 1.0
    for task in list(client._tasks):
        task.cancel()
    await asyncio.gather(*client._tasks, return_exceptions=True)


def test_a_room_counts_as_served_while_a_live_peer_says_so() -> None:
    table = PeerTable("b", dead_after_s=1.5)
    table.beat(WorkerBeat(worker_id="c", agent_name="arc", rooms={"r1": {"ann": "s1"}}), now=0.0)
    assert table.serves("r1") and not table.serves("r2")
    table.dead(now=2.0)  # c went silent: its rooms are nobody's now
    assert not table.serves("r1")


class _Msg:
    def __init__(self, beat: WorkerBeat) -> None:
        self.data = msgspec.msgpack.encode(beat)


async def test_a_person_who_left_a_peers_room_resumes_their_session_here() -> None:
    """A peer's beat tells who left its rooms; the room they open again may be given to this
    worker, which then resumes their session. Someone a peer is talking to again, or someone
    talking here, is not kept."""
    worker = _Worker()
    worker.rooms["r-here"] = SimpleNamespace(conversations={"cy": object()}, closed=False)
    client = DispatchClient(
        cast(VoiceWorker, worker),
        settings=DispatchSettings(mode="livekit", agent_name="arc"),
        livekit=LiveKitSettings(allow_dev_keys=True),
        nc=cast(Client, None),
    )
    left = [
        Departure(room="r1", identity="ann", session_id="s-ann", ago_s=5.0),
        Departure(room="r2", identity="bob", session_id="s-bob", ago_s=5.0),
        Departure(room="r-here", identity="cy", session_id="s-cy-old", ago_s=1.0),
    ]
    await client._on_beat(cast(Msg, _Msg(WorkerBeat(worker_id="p", agent_name="arc", left=left))))
    await client._on_beat(
        cast(
            Msg,
            _Msg(
                WorkerBeat(
                    worker_id="o",
                    agent_name="other",
                    left=[Departure(room="r3", identity="dee", session_id="s-dee", ago_s=1.0)],
                )
            ),
        )
    )  # another agent name's workers are not ours
    returning = worker.deps.returning
    assert client.detail()["returning"] == 2
    # bob is back, in a room of a third worker: his departure goes.
    await client._on_beat(
        cast(Msg, _Msg(WorkerBeat(worker_id="q", agent_name="arc", rooms={"r2": {"bob": "s-bob"}})))
    )
    now = time.monotonic()
    assert returning.back("r2", "bob", now) is None
    assert returning.back("r1", "ann", now) == "s-ann"
    assert returning.back("r-here", "cy", now) is None
    assert returning.back("r3", "dee", now) is None
    # What this worker's own beat tells: its own departures, with their age.
    returning.left("r9", "eve", "s-eve", time.monotonic() - 2.0)
    [told] = client._departures()
    assert (told.room, told.identity, told.session_id) == ("r9", "eve", "s-eve")
    assert 2.0 <= told.ago_s < 10.0

"""The chaos suite (issue 14, item 7): one conversation per fault in a room of a whole mesh
(`tests.chaos.mesh`), the fault injected mid-turn, and for each: what the person heard, how
long until the next good turn, and what was lost (every answer the person heard is a turn in
Postgres; every event the services wrote reached Pulsar and its consumer exactly once).

`make chaos` runs it and writes the table to docs/benchmarks.md (section `chaos`); `-s`
prints each fault's story as it happens."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
import pytest
import pytest_asyncio
from arc_voice.plugins.stt import WhisperEngine, WhisperOptions, bundled_model_dir

from tests.bench.report import load_average, section_header, write_section
from tests.chaos.mesh import ChaosMesh, chaos_mesh
from tests.chaos.person import TIME_QUESTION, Answer, Person
from tests.fixtures.voice import SpeechSynth

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(900)]

# After the fault the person asks the time every few seconds until an answer is right.
RECOVERY_WITHIN_S = 180.0
ASK_EVERY_S = 3.0
# Events still on their way to Pulsar's consumer after the mesh has healed.
DRAIN_WITHIN_S = 180.0
LONG_QUESTION = "What can you do?"
RETRY_LINE = "asking another replica"

Moment = Literal["end of speech", "mid-answer"]


@dataclass
class Outcome:
    fault: str
    moment: Moment
    heard: str = ""
    heard_s: float = 0.0
    heard_after_s: float | None = None  # fault → the first audible frame after it
    next_good_s: float | None = None
    # The good turn's own answer time: its question's end → its first audible frame.
    good_answer_s: float | None = None
    asked: int = 0
    answered: int = 0
    turns_stored: int = 0
    events_written: int = 0
    events_delivered: int = 0
    events_unsent: int = 0
    notes: list[str] = field(default_factory=list)
    event_types: dict[str, int] = field(default_factory=dict)
    every_turn: int = 0  # the person's turns the brain kept, whatever they asked

    def turns_unrecorded(self, metrics_die_with_it: int = 0) -> int:
        """Kept turns without their conversation.turn or turn.metrics event, beyond the
        metrics a killed voice worker took with it."""
        missing_turns = self.every_turn - self.event_types.get("conversation.turn", 0)
        missing_metrics = self.every_turn - self.event_types.get("turn.metrics", 0)
        return max(0, missing_turns) + max(0, missing_metrics - metrics_die_with_it)

    @property
    def turns_lost(self) -> int:
        return max(0, self.answered - self.turns_stored)

    @property
    def events_lost(self) -> int:
        return self.events_written - self.events_delivered


OUTCOMES: dict[str, Outcome] = {}


@dataclass
class Fault:
    name: str
    moment: Moment
    inject: Callable[[ChaosMesh, Person], Coroutine[Any, Any, str]]
    question: str = LONG_QUESTION
    # Turns whose turn.metrics died with the process measuring them (the voice worker
    # answering when it was killed).
    metrics_die_with_it: int = 0


async def _kill_serving_voice(mesh: ChaosMesh, person: Person) -> str:
    victim = await mesh.serving_voice(person.room)
    assert victim is not None, "no voice worker lists the room"
    mesh.kill(victim)
    return f"killed {victim.name}, the worker serving the room"


async def _kill_brains(mesh: ChaosMesh, person: Person) -> str:
    for part in mesh.replicas("brain"):
        mesh.kill(part)
    return "killed both brain replicas"


async def _kill_a_tts(mesh: ChaosMesh, person: Person) -> str:
    # The queue group spreads an answer's units over both replicas: one of them is likely
    # streaming a unit; the voice workers' logs say whether a unit went to the other.
    retries = mesh.log_count("voice", RETRY_LINE)
    victim = mesh.replicas("tts")[0]
    mesh.kill(victim)
    await asyncio.sleep(5.0)
    moved = mesh.log_count("voice", RETRY_LINE) - retries
    return f"killed {victim.name}; units handed to the other replica: {moved}"


async def _kill(mesh: ChaosMesh, part: Any, why: str) -> str:
    mesh.kill(part)
    return f"killed {part.name} ({why})"


async def _kill_events(mesh: ChaosMesh, person: Person) -> str:
    return await _kill(mesh, mesh.part("events"), "relay and consumers")


async def _restart_nats(mesh: ChaosMesh, person: Person) -> str:
    return await _kill(mesh, mesh.part("nats"), "the supervisor starts it again")


async def _restart_livekit(mesh: ChaosMesh, person: Person) -> str:
    return await _kill(mesh, mesh.part("livekit"), "the supervisor starts it again")


def _outage(
    part: str, seconds: float, how: signal.Signals = signal.SIGTERM
) -> Callable[[ChaosMesh, Person], Coroutine[Any, Any, str]]:
    async def inject(mesh: ChaosMesh, person: Person) -> str:
        async with mesh.held_down(part, how):
            await asyncio.sleep(seconds)
        return f"{part} stopped for {seconds:.0f} s"

    return inject


async def _stall_brains(mesh: ChaosMesh, person: Person) -> str:
    with mesh.frozen(mesh.replicas("brain")):
        await asyncio.sleep(2.0)
    return "both brain replicas stopped (SIGSTOP) for 2 s"


FAULTS = [
    Fault("voice worker SIGKILL", "mid-answer", _kill_serving_voice, metrics_die_with_it=1),
    Fault("brain SIGKILL (both replicas)", "end of speech", _kill_brains, TIME_QUESTION),
    Fault("TTS SIGKILL (one replica of two)", "mid-answer", _kill_a_tts),
    Fault("events SIGKILL", "end of speech", _kill_events, TIME_QUESTION),
    Fault("NATS restart (SIGKILL)", "mid-answer", _restart_nats),
    Fault("slow brain (2 s stall)", "end of speech", _stall_brains, TIME_QUESTION),
    # SIGINT is Postgres's fast shutdown; its SIGTERM waits for every client to leave.
    Fault("Postgres stopped 30 s", "mid-answer", _outage("postgres", 30.0, signal.SIGINT)),
    Fault("Pulsar stopped 60 s", "mid-answer", _outage("pulsar", 60.0)),
    Fault("LiveKit server restart (SIGKILL)", "mid-answer", _restart_livekit),
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mesh() -> AsyncIterator[ChaosMesh]:
    started_load = load_average()
    async with chaos_mesh() as running:
        yield running
    _report(started_load)


@pytest.fixture(scope="module")
def ears() -> Iterator[WhisperEngine]:
    engine = WhisperEngine(WhisperOptions(model_dir=bundled_model_dir()))
    yield engine
    engine.close()


async def _recover(person: Person, fault_at: float, outcome: Outcome) -> None:
    """Ask the time until the answer is right; a person whose connection dropped joins
    again, as a page reload would."""
    deadline = fault_at + RECOVERY_WITHIN_S
    while time.monotonic() < deadline:
        if person.connected and not person.agent_present:
            # A person waits for the agent to be back in the room before asking.
            await asyncio.sleep(0.1)
            continue
        if not person.connected:
            await asyncio.sleep(2.0)
            if not person.connected:
                outcome.notes.append(
                    f"the person's connection dropped; rejoined at "
                    f"+{time.monotonic() - fault_at:.1f} s"
                )
                await person.leave()
                with contextlib.suppress(TimeoutError, Exception):
                    await person.join(within_s=30.0)
                continue
        answer = await person.ask()
        outcome.asked += 1
        if answer.good:
            assert answer.first_audible is not None
            outcome.answered += 1
            if outcome.next_good_s is None:
                outcome.next_good_s = answer.first_audible - fault_at
                outcome.good_answer_s = answer.first_audible - answer.asked_at
            return
        outcome.notes.append(
            f"+{answer.asked_at - fault_at:.1f} s asked the time, heard: "
            f"{answer.text or '(nothing)'}"
        )
        if answer.first_audible is None:
            # Something answered (an apology, a notice): ask again at once; silence: a while.
            await asyncio.sleep(ASK_EVERY_S)


async def _account(
    mesh: ChaosMesh, room: str, outcome: Outcome, metrics_die_with_it: int = 0
) -> None:
    """Turns and events of the room's sessions, once every event has had time to arrive."""
    async with await psycopg.AsyncConnection.connect(mesh.dsn, autocommit=True) as conn:

        async def one(sql: str, *args: object) -> Any:
            row = await (await conn.execute(sql, args)).fetchone()
            return row[0] if row else None

        sessions = [
            row[0]
            for row in await (
                await conn.execute(
                    "SELECT DISTINCT session_id FROM agents.sessions WHERE room = %s", (room,)
                )
            ).fetchall()
        ]
        deadline = time.monotonic() + DRAIN_WITHIN_S
        while True:
            written = await one(
                "SELECT count(*) FROM agents.outbox WHERE session_id = ANY(%s)", sessions
            )
            unsent = await one(
                "SELECT count(*) FROM agents.outbox WHERE session_id = ANY(%s) AND sent_at IS NULL",
                sessions,
            )
            # Each written event found in the sink that consumes its topic from Pulsar (the
            # audit log: conversation and lifecycle; the turn metrics: analytics).
            delivered = await one(
                "SELECT count(*) FROM agents.outbox o WHERE o.session_id = ANY(%s) AND ("
                "EXISTS (SELECT 1 FROM agents.event_audit a WHERE a.event_id = o.event_id) OR "
                "EXISTS (SELECT 1 FROM agents.turn_metrics m WHERE m.event_id = o.event_id))",
                sessions,
            )
            # The time questions the person heard answered, each a turn the brain must keep
            # (a turn answered while Postgres was down is written once it is back).
            stored = await one(
                "SELECT count(*) FROM agents.conversations WHERE session_id = ANY(%s) "
                "AND role = 'user' AND content ILIKE '%%time%%'",
                sessions,
            )
            # Each turn the brain kept is recorded twice in the outbox: its conversation.turn
            # and the voice worker's turn.metrics (a lost one would not show in the counts
            # above). Both writers keep what Postgres refused during an outage and write it
            # once they reconnect: the voice worker's pool only after its own reconnect
            # backoff, seconds after the brain's (a run settled before it: 1 of 3 metrics).
            every_turn = await one(
                "SELECT count(*) FROM agents.conversations WHERE session_id = ANY(%s) "
                "AND role = 'user'",
                sessions,
            )
            by_type: dict[str, int] = dict(
                await (
                    await conn.execute(
                        "SELECT type, count(*) FROM agents.outbox WHERE session_id = ANY(%s) "
                        "GROUP BY type",
                        (sessions,),
                    )
                ).fetchall()
            )
            recorded = (
                by_type.get("conversation.turn", 0) >= every_turn
                and by_type.get("turn.metrics", 0) >= every_turn - metrics_die_with_it
            )
            settled = (
                unsent == 0 and delivered >= written and stored >= outcome.answered and recorded
            )
            if settled or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
    outcome.event_types = by_type
    outcome.every_turn = every_turn
    outcome.notes.append(
        f"{every_turn} turns kept, {by_type.get('conversation.turn', 0)} conversation.turn "
        f"and {by_type.get('turn.metrics', 0)} turn.metrics events"
    )
    outcome.turns_stored = stored
    outcome.events_written, outcome.events_unsent, outcome.events_delivered = (
        written,
        unsent,
        delivered,
    )
    if len(sessions) != 1:
        outcome.notes.append(f"{len(sessions)} sessions in the room")


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_the_mesh_survives(
    fault: Fault, mesh: ChaosMesh, speech: SpeechSynth, ears: WhisperEngine
) -> None:
    await mesh.wait_up()
    outcome = Outcome(fault.name, fault.moment)
    OUTCOMES[fault.name] = outcome
    room = f"chaos-{uuid.uuid4().hex[:8]}"
    person = Person(mesh, speech, ears, room, "caller")
    try:
        await person.join()
        before = await person.ask()
        assert before.good, f"the mesh did not answer before the fault: {before.text!r}"
        outcome.asked, outcome.answered = 1, 1

        spoken = await (await person.say(fault.question))
        if fault.moment == "mid-answer":
            assert person.caller is not None
            await person.caller.wait_audible(spoken.speech_ended_at, within_s=30)
            await asyncio.sleep(0.5)
        fault_at = time.monotonic()
        injecting = asyncio.create_task(fault.inject(mesh, person), name="chaos:fault")
        # What the person hears from the fault on, until the agent has been quiet a while.
        first, outcome.heard = await person.hear(fault_at, within_s=8.0)
        if first is not None:
            outcome.heard_after_s = first - fault_at
        outcome.heard_s = person.audible_s(fault_at, time.monotonic())
        if first is not None and fault.question == TIME_QUESTION:
            faulted = Answer(spoken.speech_ended_at, first, outcome.heard)
            if faulted.good:
                # The turn in flight at the fault was answered right: it is the next good
                # turn (the one asked after it must be good too).
                outcome.answered += 1
                outcome.next_good_s = first - fault_at
                outcome.good_answer_s = first - spoken.speech_ended_at
        await _recover(person, fault_at, outcome)
        outcome.notes.insert(0, await injecting)
        await mesh.wait_up()
        await _account(mesh, room, outcome, fault.metrics_die_with_it)
    finally:
        await person.leave()
        print(f"\n{fault.name}: {outcome}", flush=True)

    assert outcome.next_good_s is not None, f"no good turn within {RECOVERY_WITHIN_S:.0f} s"
    assert outcome.turns_lost == 0, outcome
    assert outcome.events_unsent == 0 and outcome.events_lost == 0, outcome
    assert outcome.turns_unrecorded(fault.metrics_die_with_it) == 0, (
        outcome.every_turn,
        outcome.event_types,
    )


INTRO = """\
One conversation per fault in a room of a whole local mesh (two brains, two TTS workers, two
voice workers under LiveKit dispatch, the events service, NATS, Postgres, Pulsar, LiveKit; the
supervisor restarts what dies, as under `make run`). The person asks the time, then a question
during which the fault is injected; what they heard from the fault on is Whisper's transcript
of the agent's audio (a mid-answer fault's transcript starts inside a word, which Whisper
often writes as "you."). Next good turn: fault → the first audible frame of a right answer to
the time, asked once the agent had finished speaking and was in the room (a mid-answer fault's
figure holds the rest of the answer in flight, several seconds); in brackets that turn's own
answer time, end of the question → first audible frame. Turns heard / kept: time questions
answered audibly / kept by the brain in Postgres. Events: the room's sessions' outbox rows /
found in the sink that consumes their topic from Pulsar / still unsent.
"""


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _report(load_at_start: str) -> None:
    rows = [OUTCOMES.get(f.name) for f in FAULTS]
    lines = [
        "| fault | when | what the person heard (audible s, from fault + s) "
        "| next good turn (its answer) s | turns heard / kept "
        "| events written / delivered / unsent |",
        "|---|---|---|---:|---:|---:|",
    ]
    for fault, outcome in zip(FAULTS, rows, strict=True):
        if outcome is None:
            lines.append(f"| {fault.name} | {fault.moment} | not run | | | |")
            continue
        after = "" if outcome.heard_after_s is None else f", from +{outcome.heard_after_s:.1f}"
        good = "none" if outcome.next_good_s is None else f"{outcome.next_good_s:.1f}"
        if outcome.good_answer_s is not None:
            good += f" ({outcome.good_answer_s:.1f})"
        lines.append(
            f"| {fault.name} | {fault.moment} | {_cell(outcome.heard) or '(silence)'} "
            f"({outcome.heard_s:.1f}{after}) | {good} "
            f"| {outcome.answered} / {outcome.turns_stored} "
            f"| {outcome.events_written} / {outcome.events_delivered} / "
            f"{outcome.events_unsent} |"
        )
    notes = [
        f"- {o.fault}: " + "; ".join(_cell(n) for n in o.notes)
        for o in (r for r in rows if r is not None)
        if o.notes
    ]
    body = (
        section_header("Chaos (issue 14)", "make chaos", load_at_start=load_at_start)
        + INTRO
        + "\n"
        + "\n".join(lines)
        + "\n"
    )
    if notes:
        body += "\nWhat happened, per fault:\n\n" + "\n".join(notes) + "\n"
    print("\n" + body, flush=True)
    if all(rows):
        write_section("chaos", body)

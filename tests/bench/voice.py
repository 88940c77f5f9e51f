"""Voice to voice through a real LiveKit room, on the real local mesh (NATS, Postgres, the
brain, Piper TTS, Whisper tiny.en, Silero VAD, LiveKit's end-of-turn model), on this machine.

Every figure is taken from the person's side: the scripted participant's clock runs from the
frame holding the last audible sample of their speech leaving their microphone to the first
audible frame of the agent's answer reaching them (`arc_voice.latency`). The stages come from
the worker's own record of the same turn.

Variants run interleaved, one turn each per round in a rotating order, so the machine's noise
falls on all of them alike:
- `after`: the pipeline as it ships (settings' defaults);
- `before`: the same code with the settings of before issue 9 (`VoiceOptions.
  before_latency_work`: padded-window Whisper after the end of speech, 0.35 s silence timer, no
  end-of-turn model, no preemptive generation);
- `in-process`: `after`, with the brain's and the TTS's own handlers called in this process
  instead of over NATS (the mesh's own cost).
Then, for `after` only: quiet turns interleaved with turns under a CPU-bound busy loop, two
conversations at once, sentences with a 400 ms hesitation (cut off or not; also for
`before`), barge-ins (speech onset → last audible agent frame), and backchannels and coughs
over the answer (does the agent stop for good?).

The brain and the TTS run as their own processes (`python -m arc_brain`, `python -m arc_tts`,
as `make run` starts them), so the NATS variants cross NATS and process boundaries as a user's
turn does; the in-process variant's brain and TTS live in this process, on a subject prefix of
their own. The voice workers live in this process; the scripted people in one of their own
(`tests.bench.people`), so that their microphones and WebRTC stacks do not load the workers'
event loop and GIL as no user's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from arc_brain.embedding import MiniLmEmbedder
from arc_brain.nats_api import brain_endpoint
from arc_common.nats_connection import connect
from arc_common.settings import NatsSettings
from arc_common.streaming import InProcessClient, StreamingEndpoint
from arc_stack.livekit import LiveKitServer
from arc_stack.nats import NatsServer
from arc_stack.paths import state_dir
from arc_stack.postgres import PostgresServer
from arc_stack.server import free_port
from arc_stack.service import ServiceProcess
from arc_tts.metrics import TtsMetrics
from arc_tts.settings import TtsOptions
from arc_tts.synthesizer import open_synthesizer
from arc_tts.worker import tts_endpoint
from arc_voice.caller import participant_token
from arc_voice.conversation import Conversation
from arc_voice.latency import STAGES, Breakdown, breakdown
from arc_voice.models import VoiceModels
from arc_voice.plugins.gated_vad import LoudSound
from arc_voice.room_agent import agent_track_name
from arc_voice.settings import LiveKitSettings, VoiceOptions
from arc_voice.worker import VoiceWorker
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from tests.bench.people import People, RemoteCaller, start_people
from tests.bench.report import Stats, load_average, section_header, write_section
from tests.fixtures.brain import brain_settings, model_dir, start_brain
from tests.fixtures.speakers import Speaker, speakers
from tests.fixtures.voice import room_name

ROUNDS = 30  # turns per variant
CONTENTION_ROUNDS = 12  # quiet/busy pairs
CONCURRENT_ROUNDS = 8  # two conversations at once, each round
BARGE_INS = 10
BACKCHANNELS = 9
QUESTIONS = (
    "What time is it?",
    "Hello there.",
    "What day is it?",
    "Could you please tell me what time it is right now?",
    "Thank you.",
    "Can you summarize what we have talked about so far?",
    "What is today's date?",
    "Good morning, I hope you are having a lovely day.",
    "Please repeat after me: the quick brown fox jumps over the lazy dog.",
    "Do you know what time it is?",
)
HESITATIONS = (
    ("Could you tell me", "what time it is?"),
    ("I'd like to know", "the date today."),
    ("Please repeat after me, um", "the weather is nice."),
    ("What I want is", "a summary of our talk."),
    ("Tell me the time and", "the date, please."),
)
LONG_QUESTION = "What can you do?"
INTERRUPTION = "Stop please, what time is it?"
BACKCHANNELS_SAID = ("Yeah.", "Okay.")
BUSY_LOOP_S = 600  # the bound on the background load, should the benchmark die under it
BENCH_IDLE_TIMEOUT_S = 3600.0
# The barge-in variant without the early pause: only the VAD's confirmation pauses the agent
# (ARC_VOICE__BARGE_IN__PAUSE_ON_LOUD_S=0).
VAD_ONLY = "VAD confirmation only"
IN_PROCESS = "bench-in-process"  # the subject prefix of the in-process variant's services


@dataclass
class Rig:
    """One voice worker with its own settings, in its own room, and the person talking to it."""

    name: str
    worker: VoiceWorker
    caller: RemoteCaller
    conversation: Conversation
    # One line per turn that got no audible answer: what the worker heard and did with it.
    misses: list[str] = field(default_factory=list)


@dataclass
class Results:
    turns: dict[str, list[Breakdown]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)  # turns with no audible answer


async def _until(done: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def _conversation(worker: VoiceWorker, room: str, identity: str) -> Conversation:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        agent = worker.rooms.get(room)
        if agent is not None and identity in agent.conversations:
            return agent.conversations[identity]
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no conversation for {identity}")


async def _turn(rig: Rig, pcm: bytes, rate: int) -> Breakdown | None:
    """One question and its answer; None when nothing audible came back."""
    conv = rig.conversation
    before = len(conv.log.replies)
    committed_before = len(conv.log.transcripts)
    turns_before = len(conv.brain.turns)
    spoken = await (await rig.caller.say(pcm, rate))
    try:
        heard = await rig.caller.wait_audible(spoken.speech_ended_at, within_s=20)
    except TimeoutError:
        since = spoken.speech_started_at
        stt = [text for at, final, text in conv.log.heard if final and at >= since]
        rig.misses.append(
            f"STT finals {stt}; committed {conv.log.transcripts[committed_before:]}; brain turns "
            f"{[(t.user_text, t.verdict) for t in conv.brain.turns[turns_before:]]}; agent state "
            f"{conv.session.agent_state}"
        )
        return None
    await rig.caller.wait_quiet(0.6, within_s=60)
    await _until(lambda: len(conv.log.replies) > before, within_s=10)
    if len(conv.log.replies) == before:
        # Heard, but the worker kept no timing of a reply for it (nothing to time it by).
        rig.misses.append(
            f"audible {(heard - spoken.speech_ended_at) * 1000:.0f} ms after the speech, but "
            f"no reply record; committed {conv.log.transcripts[committed_before:]}; brain "
            f"turns {[(t.user_text, t.verdict) for t in conv.brain.turns[turns_before:]]}"
        )
        return None
    timing = conv.log.replies[-1]
    return breakdown(timing, speech_ended_at=spoken.speech_ended_at, heard_at=heard)


def _record(results: Results, key: str, result: Breakdown | None) -> None:
    if result is None:
        results.missing[key] = results.missing.get(key, 0) + 1
    else:
        results.turns.setdefault(key, []).append(result)


def _voice_of(turn: int, voices: list[Speaker]) -> Speaker:
    """The voice of the `turn`th question: alternating, and shifted by one after each pass
    over the questions, so each question is heard in every voice (with as many questions as
    voices' multiples, plain alternation gave each question one voice for the whole run)."""
    return voices[(turn + turn // len(QUESTIONS)) % len(voices)]


async def _interleaved(rigs: list[Rig], voices: list[Speaker], results: Results) -> None:
    for i in range(ROUNDS):
        voice = _voice_of(i, voices)
        pcm, rate = voice.say(QUESTIONS[i % len(QUESTIONS)])
        order = rigs[i % len(rigs) :] + rigs[: i % len(rigs)]
        for rig in order:
            _record(results, rig.name, await _turn(rig, pcm, rate))


@contextlib.asynccontextmanager
async def _busy_core() -> AsyncIterator[None]:
    """A CPU-bound loop on one core, bounded in time, stopped on leaving."""
    code = f"import time\nt = time.monotonic() + {BUSY_LOOP_S}\nwhile time.monotonic() < t: pass"
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
    try:
        yield
    finally:
        process.kill()
        await process.wait()


async def _contention(rig: Rig, voices: list[Speaker], results: Results) -> None:
    for i in range(CONTENTION_ROUNDS):
        voice = _voice_of(i, voices)
        pcm, rate = voice.say(QUESTIONS[(i * 3) % len(QUESTIONS)])
        _record(results, "quiet", await _turn(rig, pcm, rate))
        async with _busy_core():
            await asyncio.sleep(0.5)  # the scheduler has seen the load by the time she speaks
            _record(results, "busy core", await _turn(rig, pcm, rate))


async def _concurrent(rigs: tuple[Rig, Rig], voices: list[Speaker], results: Results) -> None:
    for i in range(CONCURRENT_ROUNDS):
        turns = [
            _turn(rig, *voices[(i + k) % len(voices)].say(QUESTIONS[(i + 5 * k) % len(QUESTIONS)]))
            for k, rig in enumerate(rigs)
        ]
        for result in await asyncio.gather(*turns):
            _record(results, "two conversations", result)


@dataclass
class Hesitation:
    whole: int = 0
    # One line per cut: the voice, the sentence, how it was cut and the words the brain kept,
    # so that a run says why (the words Whisper wrote, or the timing).
    cuts: list[str] = field(default_factory=list)


async def _hesitations(rigs: list[Rig], voices: list[Speaker]) -> dict[str, Hesitation]:
    """A sentence with a 400 ms pause in it is answered as one turn. It was cut off when the
    agent spoke into the pause, or when the worker committed more than one turn of the
    person's for it (the first half answered on its own, whether or not that answer was
    heard). Counted on the turns the framework committed, not on the words: Whisper mishearing
    a half (espeak's "What I want is" as "Well, type 1 is...") is not a cut."""
    counts = {rig.name: Hesitation() for rig in rigs}
    for voice in voices:
        for first, second in HESITATIONS:
            pcm, rate = voice.say_with_pause(first, second, 0.4)
            for rig in rigs:
                conv = rig.conversation
                # The last sentence's answers all told (a cut one has two), so none of them
                # plays into this one.
                await rig.caller.wait_quiet(2.0, within_s=60)
                turns_before = len(conv.brain.turns)
                committed_before = len(conv.log.transcripts)
                spoken = await (await rig.caller.say(pcm, rate))
                # The answer to the sentence's end, not only what was said into the pause: an
                # answer left to come would play into the next sentence and count it as cut.
                with contextlib.suppress(TimeoutError):
                    await rig.caller.wait_audible(spoken.speech_ended_at, within_s=15)
                await rig.caller.wait_quiet(0.8, within_s=60)
                early = await rig.caller.first_audible_after(spoken.speech_started_at)
                await asyncio.sleep(0.3)  # the kept turn is resolved as its audio starts
                committed = conv.log.transcripts[committed_before:]
                spoke_early = early is not None and early < spoken.speech_ended_at
                if spoke_early or len(committed) > 1:
                    how = "spoke into the pause" if spoke_early else "two turns"
                    kept = [t for t in conv.brain.turns[turns_before:] if t.verdict]
                    counts[rig.name].cuts.append(
                        f"{voice.name}: “{first} … {second}”: {how}; committed "
                        + (" / ".join(f"“{text}”" for text in committed) or "nothing")
                        + "; the brain kept "
                        + (" / ".join(f"“{t.user_text}”" for t in kept) or "nothing")
                    )
                else:
                    counts[rig.name].whole += 1
    return counts


async def _long_answer(rig: Rig, voice: Speaker) -> float:
    """Ask for the long answer; when its audio started."""
    pcm, rate = voice.say(LONG_QUESTION)
    spoken = await (await rig.caller.say(pcm, rate))
    return await rig.caller.wait_audible(spoken.speech_ended_at, within_s=20)


@dataclass
class Interruption:
    """One barge-in, from the person's side, with the worker's own marks in between."""

    total_s: float  # speech onset leaving the microphone → last audible agent frame arriving
    paused_s: float | None  # onset → paused on loudness alone (before the VAD confirmed)
    confirmed_s: float | None  # onset → the VAD confirmed speech over the agent
    silenced_s: float | None  # confirmation → the room output paused and its queue dropped
    # The worker's first silencing (the loud pause, else the confirmed barge-in) → the last
    # audible frame at the person: the way back, which the pause cannot shorten.
    way_back_s: float | None
    # Each loud sound the gate reported during the interruption: ms after the onset, the
    # conversation's state then, whether the VAD was already hearing confirmed speech.
    loud: list[tuple[float, str, bool]] = field(default_factory=list)


def _loud_sounds(rig: Rig) -> list[tuple[float, str, bool]]:
    """Every loud sound the rig's gate reports from now on, with the conversation's state as
    the worker's own listener is about to read it."""
    heard: list[tuple[float, str, bool]] = []
    conversation = rig.conversation

    def note(sound: LoudSound) -> None:
        heard.append((sound.at, conversation.state.state.value, sound.stream.hearing_speech))

    conversation.vad.loud_listeners.insert(0, note)
    return heard


async def _barge_ins(rigs: list[Rig], voices: list[Speaker]) -> dict[str, list[Interruption]]:
    """Speech onset of the interruption (its first audible frame leaving the microphone) to the
    last audible frame of the interrupted answer reaching the person, one rig after the other
    each round."""
    stops: dict[str, list[Interruption]] = {rig.name: [] for rig in rigs}
    loud = {rig.name: _loud_sounds(rig) for rig in rigs}
    for i in range(BARGE_INS):
        voice = voices[i % len(voices)]
        for rig in rigs:
            await _long_answer(rig, voice)
            await asyncio.sleep(0.7)
            pcm, rate = voice.say(INTERRUPTION)
            spoken = await (await rig.caller.say(pcm, rate))
            onset = spoken.speech_started_at
            # The answer to the interruption cannot start before the interruption ends.
            heard = await rig.caller.audible_between(onset, spoken.speech_ended_at)
            marks = [b for b in rig.conversation.log.barge_ins if b.detected_at >= onset - 0.1]
            first = marks[0] if marks else None
            pauses = [
                p for p, _ in rig.conversation.log.loud_pauses if p.detected_at >= onset - 0.1
            ]
            silenced = [b.stopped_at for b in (*pauses[:1], *marks[:1]) if b.stopped_at is not None]
            stops[rig.name].append(
                Interruption(
                    total_s=(max(heard) - onset) if heard else 0.0,
                    paused_s=(pauses[0].detected_at - onset) if pauses else None,
                    confirmed_s=None if first is None else first.detected_at - onset,
                    silenced_s=None
                    if first is None or first.stopped_at is None
                    else first.stopped_at - first.detected_at,
                    way_back_s=(max(heard) - min(silenced)) if heard and silenced else None,
                    loud=[
                        (round((at - onset) * 1000), state, hearing)
                        for at, state, hearing in loud[rig.name]
                        if onset - 0.1 <= at <= spoken.speech_ended_at
                    ],
                )
            )
            await rig.caller.wait_quiet(0.8, within_s=60)
    return stops


def _cough(rate: int = 16000, seconds: float = 0.25) -> tuple[bytes, int]:
    """A burst of shaped noise as loud as speech: a sound with no words in it."""
    rng = np.random.default_rng(7)
    n = int(rate * seconds)
    envelope = np.sin(np.linspace(0, np.pi, n)) ** 2
    noise = rng.normal(0, 0.3, n) * envelope
    return (np.clip(noise, -1, 1) * 20000).astype(np.int16).tobytes(), rate


@dataclass
class Backchannels:
    stopped: dict[str, int] = field(default_factory=dict)
    tried: dict[str, int] = field(default_factory=dict)


async def _backchannels(rig: Rig, voices: list[Speaker]) -> Backchannels:
    """A backchannel or a cough one second into a long answer. The agent stopped for good
    when nothing of it is heard from 0.3 s to 3 s after the sound ended."""
    result = Backchannels()
    sounds: list[tuple[str, Callable[[], tuple[bytes, int]]]] = [
        *(
            (f"'{said.lower().rstrip('.')}'", partial(voices[0].say, said))
            for said in BACKCHANNELS_SAID
        ),
        ("cough", _cough),
    ]
    for i in range(BACKCHANNELS):
        label, make = sounds[i % len(sounds)]
        await _long_answer(rig, voices[i % len(voices)])
        await asyncio.sleep(1.0)
        pcm, rate = make()
        spoken = await (await rig.caller.say(pcm, rate))
        await asyncio.sleep(3.2)
        after = await rig.caller.audible_between(spoken.ended_at + 0.3, spoken.ended_at + 3.0)
        result.tried[label] = result.tried.get(label, 0) + 1
        if not after:
            result.stopped[label] = result.stopped.get(label, 0) + 1
        await rig.caller.wait_quiet(0.8, within_s=90)
    return result


async def _rig(
    stack: AsyncExitStack,
    name: str,
    options: VoiceOptions,
    *,
    nats_url: str,
    livekit: LiveKitServer,
    pool: AsyncConnectionPool[Any],
    people: People,
    prefix: str,
    models: VoiceModels | None = None,
    in_process: list[StreamingEndpoint[Any]] | None = None,
) -> Rig:
    lk = LiveKitSettings(
        url=livekit.url, api_key=livekit.api_key, api_secret=SecretStr(livekit.api_secret)
    )
    if models is None:
        models = await asyncio.to_thread(VoiceModels.load, options)
        stack.callback(models.close)
    nc = await connect(NatsSettings(url=nats_url), name=f"arc-voice-bench-{name}")
    stack.push_async_callback(nc.drain)
    worker = VoiceWorker(
        options=options, livekit=lk, models=models, nc=nc, pool=pool, subject_prefix=prefix
    )
    if in_process is not None:
        worker.deps.client = InProcessClient(nc, in_process)
    await worker.start()
    stack.push_async_callback(worker.aclose)
    room = room_name()
    await worker.join(room)
    identity = f"bench-{name.replace(' ', '-')}"
    token = participant_token(
        api_key=livekit.api_key, api_secret=livekit.api_secret, room=room, identity=identity
    )
    caller = await people.caller(livekit.url, token, agent_track_name(identity))
    stack.push_async_callback(caller.aclose)
    await caller.wait_for_agent(within_s=30)
    conv = await _conversation(worker, room, identity)
    return Rig(name, worker, caller, conv)


def run_dir(stack: AsyncExitStack) -> Path:
    """A folder of its own for one run's servers and logs, removed when `stack` closes."""
    root = state_dir() / "bench-runs" / uuid.uuid4().hex[:8]
    stack.callback(shutil.rmtree, root, True)
    return root


async def _mesh(
    stack: AsyncExitStack,
) -> tuple[Path, NatsServer, PostgresServer, LiveKitServer, AsyncConnectionPool[Any]]:
    """The run's folder (`run_dir`), the servers every voice benchmark runs on, private to this
    run, and a Postgres pool for the voice workers; all stopped by `stack`. The scripted people
    come from `_people`."""
    root = run_dir(stack)
    nats = NatsServer(root / "nats", root / "nats-logs", port=free_port(), monitor_port=free_port())
    pg = PostgresServer(root / "pgdata", root / "pg-logs", port=free_port(), database="arc")
    livekit = LiveKitServer(
        root / "livekit",
        root / "livekit-logs",
        port=free_port(),
        rtc_tcp_port=free_port(),
        udp_port=free_port(),
    )
    for server in (nats, pg, livekit):
        await server.install()
        await server.start()
        stack.push_async_callback(server.stop)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        pg.dsn(), min_size=1, max_size=4, open=False
    )
    await pool.open(wait=True)
    stack.push_async_callback(pool.close)
    return root, nats, pg, livekit, pool


async def _people(stack: AsyncExitStack) -> People:
    """The process the scripted people live in, ended by `stack` after their rooms."""
    people = await start_people()
    stack.push_async_callback(people.aclose)
    return people


async def _start_services(
    stack: AsyncExitStack,
    root: Path,
    prefix: str,
    *,
    nats_url: str,
    dsn: str,
    brain_env: dict[str, str] | None = None,
    names: tuple[str, ...] = ("brain", "tts"),
    env: dict[str, str] | None = None,
) -> dict[str, int]:
    """Start the named services as processes, as `make run` does; their HTTP ports."""
    ports: dict[str, int] = {}
    for name in names:
        ports[name] = free_port()
        service = ServiceProcess(
            name,
            f"arc_{name}",
            f"http://127.0.0.1:{ports[name]}/healthz",
            root / f"{prefix}-{name}",
            root / f"{prefix}-{name}-logs",
            env={
                "ARC_NATS__URL": nats_url,
                "ARC_NATS__SUBJECT_PREFIX": prefix,
                "ARC_POSTGRES__DSN": dsn,
                **(env or {}),
                **(brain_env or {} if name == "brain" else {}),
                f"ARC_{name.upper()}__HTTP_PORT": str(ports[name]),
            },
        )
        await service.start()
        stack.push_async_callback(service.stop)
    return ports


def _row(label: str, values: list[float]) -> str:
    stats = Stats.of([v * 1000 for v in values])
    return f"| {label} | {stats.p50:.0f} | {stats.p95:.0f} | {stats.mean:.0f} | {stats.n} |\n"


def _stage_table(turns: list[Breakdown]) -> str:
    body = "| stage (ms) | p50 | p95 | mean | n |\n|---|---:|---:|---:|---:|\n"
    for key, label in STAGES.items():
        values = [v for t in turns if (v := getattr(t, key)) is not None]
        if values:
            body += _row(label, values)
    return body


def _v2v(results: Results, key: str) -> list[float]:
    return [t.voice_to_voice_s for t in results.turns.get(key, [])]


def _ratio(results: Results, num: str, den: str) -> str:
    a, b = Stats.of(_v2v(results, num)), Stats.of(_v2v(results, den))
    return f"{a.p50 / b.p50:.2f} (p50) / {a.p95 / b.p95:.2f} (p95)"


def _p50_p95(seconds: list[float], digits: int) -> str:
    if not seconds:
        return "—"
    stats = Stats.of([v * 1000 for v in seconds])
    return f"{stats.p50:.{digits}f} / {stats.p95:.{digits}f}"


def _met(value: float, target: float) -> str:
    return "met" if value <= target else "NOT met"


async def measure() -> str:
    load_at_start = load_average()
    voices = speakers()
    results = Results()
    async with AsyncExitStack() as stack:
        root, nats, pg, livekit, pool = await _mesh(stack)
        prefix = "bench"
        # The mesh as `make run` runs it: the brain and the TTS are processes of their own.
        await _start_services(stack, root, prefix, nats_url=nats.url, dsn=pg.dsn())
        # The in-process variant's brain and TTS, on a prefix of their own so that the
        # services above never see its requests (its commits still go over NATS).
        embedder = await asyncio.to_thread(MiniLmEmbedder, model_dir())
        stack.callback(embedder.close)
        brain = await start_brain(
            stack,
            brain_settings(NatsSettings(url=nats.url, subject_prefix=IN_PROCESS), pg.dsn()),
            embedder,
        )
        synthesizer = await stack.enter_async_context(open_synthesizer(TtsOptions(), TtsMetrics()))
        people = await _people(stack)
        rig = partial(
            _rig, stack, nats_url=nats.url, livekit=livekit, pool=pool, people=people, prefix=prefix
        )

        # A person silent for longer than the idle timeout is left by the agent, and a rig
        # waits through the other variants' turns for many minutes.
        after_options = VoiceOptions(greeting="", idle_timeout_s=BENCH_IDLE_TIMEOUT_S)
        after = await rig("after", after_options)
        before = await rig(
            "before",
            VoiceOptions.before_latency_work(greeting="", idle_timeout_s=BENCH_IDLE_TIMEOUT_S),
        )
        in_process = await rig(
            "in-process",
            after_options,
            models=after.worker.deps.models,
            in_process=[
                brain_endpoint(brain.brain, subject_prefix=IN_PROCESS),
                tts_endpoint(synthesizer, IN_PROCESS),
            ],
            prefix=IN_PROCESS,
        )
        second = await rig("second", after_options, models=after.worker.deps.models)

        # One untimed turn each warms every model and connection.
        for warm in (after, before, in_process, second):
            await _turn(warm, *voices[0].say("Hello."))

        rigs = [after, before, in_process]
        await _interleaved(rigs, voices, results)
        await _contention(after, voices, results)
        await _concurrent((after, second), voices, results)
        hesitations = await _hesitations([after, before], voices)
        vad_only = await rig(
            VAD_ONLY,
            after_options.model_copy(
                update={
                    "barge_in": after_options.barge_in.model_copy(update={"pause_on_loud_s": 0.0})
                }
            ),
            models=after.worker.deps.models,
        )
        await _turn(vad_only, *voices[0].say("Hello."))
        stops = await _barge_ins([after, vad_only], voices)
        backchannels = {r.name: await _backchannels(r, voices) for r in (after, vad_only)}
        preemptive = list(after.conversation.log.preemptive)
        rigs_of_run = (after, before, in_process, second, vad_only)

    after_v2v = Stats.of([v * 1000 for v in _v2v(results, "after")])
    before_v2v = Stats.of([v * 1000 for v in _v2v(results, "before")])
    quiet = Stats.of([v * 1000 for v in _v2v(results, "quiet")])
    busy = Stats.of([v * 1000 for v in _v2v(results, "busy core")])
    two = Stats.of([v * 1000 for v in _v2v(results, "two conversations")])
    voice_names = " and ".join(v.name for v in voices)

    body = section_header(
        "Voice to voice (LiveKit room to room, issue 9)",
        "make bench BENCH=voice",
        load_at_start=load_at_start,
    )
    body += (
        f"{ROUNDS} turns per variant of {len(QUESTIONS)} questions, short and long, spoken by "
        f"{voice_names} from a scripted participant in a real LiveKit room; the local mesh "
        "answers (Silero VAD, Whisper tiny.en int8, LiveKit's v1-mini end-of-turn model, the "
        "brain's skills graph, Piper en_US-joe-medium), all on this machine. Variants "
        "interleaved turn by turn. Times from the person's side: the frame holding their last "
        "audible speech leaving the microphone → the first audible frame of the answer "
        "arriving. The brain and the TTS are processes of their own, as `make run` starts them; "
        "the voice workers share the benchmark's process (and the in-process variant's brain "
        "and TTS with them); the scripted people live in a process of their own "
        "(`tests/bench/people.py`; before 2026-12-05 they shared the workers' process).\n\n"
        f"**Voice to voice, as shipped: p50 {after_v2v.p50:.0f} ms, p95 {after_v2v.p95:.0f} ms** "
        f"(targets p50 ≤ 450: {_met(after_v2v.p50, 450)}; p95 ≤ 600: "
        f"{_met(after_v2v.p95, 600)}). Before issue 9's changes, same run: p50 "
        f"{before_v2v.p50:.0f} ms, p95 {before_v2v.p95:.0f} ms; ratio after / before "
        f"{_ratio(results, 'after', 'before')}.\n\n"
        "| variant | p50 | p95 | mean | n |\n|---|---:|---:|---:|---:|\n"
    )
    for key in ("after", "before", "in-process"):
        if _v2v(results, key):
            body += _row(key, _v2v(results, key))
    body += (
        f"\nThe mesh's own cost: over NATS / in process {_ratio(results, 'after', 'in-process')}"
        " (target ≤ 1.02).\n"
    )
    if results.missing:
        missing = ", ".join(f"{k}: {v}" for k, v in results.missing.items())
        body += (
            "\nTurns left out above (no audible answer within 20 s, or an answer the worker "
            f"kept no reply record of): {missing}.\n"
        )
        for ran in rigs_of_run:
            body += "".join(f"- {ran.name}: {line}\n" for line in ran.misses)
    hits = sum(preemptive)
    body += (
        "\nWhere the time went, as shipped (stages overlap: the brain and the first TTS piece "
        "start on the transcript at the end of speech, before the turn is confirmed):\n\n"
        + _stage_table(results.turns.get("after", []))
        + f"\nPreemptive generation: {hits} of {len(preemptive)} answers came from a generation "
        f"started before the turn was confirmed ({hits / max(1, len(preemptive)):.0%} hits); "
        f"{after.conversation.log.discarded_turns} guesses were thrown away (cancelled, not "
        "stored).\n\nBefore issue 9 (same run):\n\n" + _stage_table(results.turns.get("before", []))
    )
    body += (
        f"\n**Under contention** ({CONTENTION_ROUNDS} quiet and {CONTENTION_ROUNDS} loaded "
        "turns interleaved; the load is a CPU-bound busy loop in another process, one core's "
        f"worth): quiet p50 {quiet.p50:.0f} / p95 {quiet.p95:.0f} ms, busy core p50 "
        f"{busy.p50:.0f} / p95 {busy.p95:.0f} ms: p95 ratio {busy.p95 / quiet.p95:.2f} (target ≤ "
        f"1.3: {_met(busy.p95 / quiet.p95, 1.3)}). Two conversations speaking at the same "
        f"moment ({two.n} answers): p50 {two.p50:.0f} / p95 {two.p95:.0f} ms, p95 ratio to quiet "
        f"{two.p95 / quiet.p95:.2f} (target ≤ 1.3: {_met(two.p95 / quiet.p95, 1.3)}).\n"
    )
    body += "\n**End of turn, sentences with a 400 ms hesitation** (cut off: the agent spoke "
    body += "into the pause, or the worker committed the sentence as two turns):\n\n"
    body += "| variant | cut off | whole |\n"
    body += "|---|---:|---:|\n"
    for name, count in hesitations.items():
        cut = len(count.cuts)
        body += f"| {name} | {cut} ({cut / max(1, cut + count.whole):.0%}) | {count.whole} |\n"
    for name, count in hesitations.items():
        if count.cuts:
            body += f"\nCut off, {name}:\n" + "".join(f"- {line}\n" for line in count.cuts)
    loud = VoiceOptions().barge_in
    body += (
        f"\n**Barge-in, {BARGE_INS} interruptions per variant, from the person's side** (onset "
        "of their speech leaving the microphone → last audible frame of the agent's answer "
        "arriving; includes VAD confirmation and both jitter buffers; target p95 ≤ 250 ms), "
        "with the worker's own marks in between. `after` (as shipped) pauses the agent as soon "
        f"as a sound has been over the noise gate's bar for {loud.pause_on_loud_s * 1000:.0f} ms "
        f"and lets the VAD confirm it within {loud.confirm_within_s:g} s "
        f"(`ARC_VOICE__BARGE_IN__PAUSE_ON_LOUD_S`, docs/voice.md); `{VAD_ONLY}` (that setting "
        f"0) pauses it once the VAD has confirmed {loud.min_speech_s:g} s of speech over it; "
        "interleaved:\n\n"
        "| variant | onset → paused on loudness p50 / p95 | onset → confirmed p50 / p95 | "
        "confirmed → silenced p50 / p95 | first silenced → last audible p50 / p95 | "
        "onset → last audible p50 / p95 | met |\n"
        "|---|---:|---:|---:|---:|---:|---|\n"
    )
    for name, runs in stops.items():
        paused = _p50_p95([r.paused_s for r in runs if r.paused_s is not None], 0)
        confirmed = _p50_p95([r.confirmed_s for r in runs if r.confirmed_s is not None], 0)
        silenced = _p50_p95([r.silenced_s for r in runs if r.silenced_s is not None], 1)
        way_back = _p50_p95([r.way_back_s for r in runs if r.way_back_s is not None], 0)
        heard = Stats.of([r.total_s * 1000 for r in runs])
        body += (
            f"| {name} | {paused} | {confirmed} | {silenced} | {way_back} | "
            f"{heard.p50:.0f} / {heard.p95:.0f} | "
            f"{_met(heard.p95, 250)} |\n"
        )
    for name, runs in stops.items():
        unpaused = [r for r in runs if r.paused_s is None]
        if name == VAD_ONLY or not unpaused:
            continue
        body += (
            f"\n{name}: {len(unpaused)} of {len(runs)} interruptions had no loud pause on "
            "record when the interruption ended; the loud sounds the gate reported in them "
            "(ms after the onset, the conversation's state, whether the VAD was already hearing "
            "confirmed speech):\n\n"
        )
        body += "".join(f"- {r.loud or 'none'}\n" for r in unpaused)
    body += (
        "\n**Backchannels and coughs one second into an answer** (the agent stopped for good "
        "when nothing of it was heard 0.3 to 3 s after the sound):\n\n"
        "| variant | sound | stopped the agent | tried |\n|---|---|---:|---:|\n"
    )
    for name, result in backchannels.items():
        for label, tried in result.tried.items():
            stopped = result.stopped.get(label, 0)
            body += f"| {name} | {label} | {stopped} | {tried} |\n"
    write_section("voice", body)
    return body


def main() -> str:
    return asyncio.run(measure())

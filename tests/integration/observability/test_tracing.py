"""One spoken turn through a real room makes one trace in a real Jaeger, with spans from the
voice worker, the brain and the TTS, each process as `make run` starts it (`python -m ...`
with `ARC_TELEMETRY__OTLP_ENDPOINT` pointing at Jaeger)."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from arc_common.settings import TelemetrySettings
from arc_common.tracing import build_provider
from arc_stack.livekit import LiveKitServer
from arc_stack.server import free_port
from arc_stack.service import ServiceProcess

from tests.fixtures.jaeger import RunningJaeger
from tests.fixtures.nats import SessionNats, nats_env
from tests.fixtures.voice import SpeechSynth, join_room

pytestmark = [pytest.mark.integration]

Span = dict[str, Any]


async def test_spans_exported_over_otlp_are_served_by_the_query_api(
    jaeger_server: RunningJaeger,
) -> None:
    service = f"probe-{uuid.uuid4().hex[:8]}"
    provider = build_provider(
        TelemetrySettings(otlp_endpoint=jaeger_server.otlp_endpoint, schedule_delay_ms=10),
        service=service,
    )
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
        pass
    provider.shutdown()  # flushes

    traces = await _eventually(lambda: jaeger_server.query.traces(service), within_s=10)
    [found] = traces
    by_name = {s["operationName"]: s for s in found["spans"]}
    assert set(by_name) == {"outer", "inner"}
    assert _parent(by_name["inner"]) == by_name["outer"]["spanID"]


# --- one spoken turn through the whole mesh ----------------------------------------------------


class Mesh:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.ports = {name: free_port() for name in ("brain", "tts", "voice")}
        self.processes: dict[str, ServiceProcess] = {}

    def process(self, name: str, module: str, extra: dict[str, str]) -> ServiceProcess:
        port = self.ports[name]
        proc = ServiceProcess(
            name,
            module,
            f"http://127.0.0.1:{port}/healthz",
            self.root / name,
            self.root / "logs",
            env={**self.env, f"ARC_{name.upper()}__HTTP_PORT": str(port), **extra},
        )
        self.processes[name] = proc
        return proc

    def log_lines(self, name: str) -> list[dict[str, Any]]:
        lines = []
        for line in self.processes[name].log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
        return lines


@pytest_asyncio.fixture(loop_scope="session")
async def traced_mesh(
    tmp_path: Path,
    nats_server: SessionNats,
    livekit_server: LiveKitServer,
    migrated_dsn: str,
    jaeger_server: RunningJaeger,
    subject_prefix: str,
) -> AsyncIterator[tuple[Mesh, str]]:
    room = f"arc-trace-{uuid.uuid4().hex[:8]}"
    nats_of = functools.partial(nats_server.settings, subject_prefix=subject_prefix)
    env = {
        "ARC_POSTGRES__DSN": migrated_dsn,
        "ARC_LIVEKIT__URL": livekit_server.url,
        "ARC_LIVEKIT__API_KEY": livekit_server.api_key,
        "ARC_LIVEKIT__API_SECRET": livekit_server.api_secret,
        # The test's LiveKit runs `--dev` on loopback, with its development keys.
        "ARC_LIVEKIT__ALLOW_DEV_KEYS": "true",
        "ARC_TELEMETRY__OTLP_ENDPOINT": jaeger_server.otlp_endpoint,
        "ARC_TELEMETRY__SCHEDULE_DELAY_MS": "100",
        "ARC_LOG__JSON": "true",
        # The skills answer (no model server in this test): "two plus two" is arithmetic.
        "ARC_BRAIN__LLM__BASE_URL": "",
    }
    mesh = Mesh(tmp_path, env)
    processes = [
        # Debug: the streaming server logs each turn's end (inside its span) at that level.
        mesh.process(
            "brain",
            "arc_brain",
            {**nats_env(nats_of("brain")), "ARC_LOG__LEVEL": "DEBUG"},
        ),
        mesh.process("tts", "arc_tts", nats_env(nats_of("tts"))),
        mesh.process(
            "voice",
            "arc_voice",
            {
                **nats_env(nats_of("voice")),
                "ARC_VOICE__ROOMS": json.dumps([room]),
                "ARC_VOICE__GREETING": "",
            },
        ),
    ]
    async with AsyncExitStack() as stack:
        for proc in processes:
            stack.push_async_callback(proc.stop)
        await asyncio.gather(*(p.start() for p in processes))
        yield mesh, room


@pytest.mark.slow
@pytest.mark.e2e
async def test_one_spoken_turn_is_one_trace_across_voice_brain_and_tts(
    traced_mesh: tuple[Mesh, str],
    livekit_server: LiveKitServer,
    jaeger_server: RunningJaeger,
    speech: SpeechSynth,
    migrated_dsn: str,
) -> None:
    mesh, room = traced_mesh
    identity = f"tracy-{uuid.uuid4().hex[:6]}"
    caller = await join_room(livekit_server, room, identity)
    try:
        await caller.wait_for_agent(within_s=60)
        pcm, rate = speech.say("What is two plus two?")
        spoken = await (await caller.say(pcm, rate))
        await caller.wait_audible(spoken.speech_ended_at, within_s=60)
        await caller.wait_quiet(1.0, within_s=60)
    finally:
        await caller.aclose()

    async def complete_turn() -> list[dict[str, Any]]:
        found = await jaeger_server.query.traces("arc-voice", operation="voice.turn")
        ready = [t for t in found if {"arc-tts", "brain"} <= _services(t)]
        return ready if ready and all(_named(t, "voice.playout") for t in ready) else []

    traces = await _eventually(complete_turn, within_s=30)
    assert traces, await _what_jaeger_has(jaeger_server)
    # Exactly one trace for the one turn (the greeting is off; nothing else was said).
    [found] = await jaeger_server.query.traces("arc-voice", operation="voice.turn")
    assert found["traceID"] == traces[0]["traceID"]
    spans = found["spans"]
    by_id = {s["spanID"]: s for s in spans}
    assert {"arc-voice", "brain", "arc-tts"} <= _services(found)

    [root] = [s for s in spans if _parent(s) is None]
    assert root["operationName"] == "voice.turn"
    assert _service(found, root) == "arc-voice"

    # The voice worker's stages are children of the root.
    stages = {}
    for name in ("voice.stt", "voice.end_of_turn", "voice.playout"):
        [stage] = _named(found, name)
        assert _parent(stage) == root["spanID"], name
        stages[name] = stage
    # The brain: voice's CLIENT span under the root, the brain's SERVER span under it, one span
    # per graph node under that.
    brain_servers = [s for s in _named(found, "brain.request") if _kind(s) == "server"]
    assert brain_servers
    for server in brain_servers:
        assert _service(found, server) == "brain"
        client = by_id[_parent(server)]
        assert client["operationName"] == "brain.request" and _kind(client) == "client"
        assert _service(found, client) == "arc-voice"
        assert _parent(client) == root["spanID"]
    answered = [
        s
        for s in brain_servers
        if any(_parent(n) == s["spanID"] for n in _named(found, "brain.persist"))
        or any(_parent(n) == s["spanID"] for n in _named(found, "brain.answer_skill"))
    ]
    assert answered, [s["operationName"] for s in spans]
    nodes = {
        n["operationName"]
        for n in spans
        if _parent(n) == answered[-1]["spanID"] and n["operationName"].startswith("brain.")
    }
    assert {"brain.load_context", "brain.route", "brain.answer_skill"} <= nodes, nodes
    # The TTS: the same shape, with the wait for first audio and one span per piece.
    tts_servers = [s for s in _named(found, "tts.request") if _kind(s) == "server"]
    assert tts_servers
    for server in tts_servers:
        assert _service(found, server) == "arc-tts"
        client = by_id[_parent(server)]
        assert _kind(client) == "client" and _parent(client) == root["spanID"]
        children = {s["operationName"] for s in spans if _parent(s) == server["spanID"]}
        assert {"tts.first_audio", "tts.piece"} <= children, children

    # Durations add up: the sequential stages fit inside the root, one after another.
    ordered = [stages[n] for n in ("voice.stt", "voice.end_of_turn", "voice.playout")]
    for before, after in itertools.pairwise(ordered):
        assert before["startTime"] + before["duration"] <= after["startTime"] + 1
    assert root["duration"] >= sum(s["duration"] for s in ordered)
    for span in spans:
        if _service(found, span) == "arc-voice":
            assert span["startTime"] >= root["startTime"] - 1, span["operationName"]

    # Logs link to the trace: the brain's JSON lines in this turn carry its ids, the span id
    # one of the trace's spans.
    trace_id = found["traceID"]
    logged = [line for line in mesh.log_lines("brain") if line.get("trace_id") == trace_id]
    assert any(line["logger"] == "arc_common.streaming.server" for line in logged), logged
    assert all(line["span_id"] in by_id for line in logged)

    # The turn's outbox events carry the trace id (voice's turn.metrics; the brain's
    # conversation.turn, written when the voice worker committed the turn).
    session = _tag(root, "arc.session_id")
    rows = await _eventually(lambda: _outbox(migrated_dsn, session, trace_id), within_s=10)
    assert {"turn.metrics", "conversation.turn"} <= {row[0] for row in rows}, rows


async def _outbox(dsn: str, session: str, trace_id: str) -> list[tuple[str, str | None]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT type, payload->>'trace_id' FROM agents.outbox WHERE session_id = %s",
            (session,),
        )
        rows = [(str(t), p) for t, p in await cur.fetchall()]
    traced = [r for r in rows if r[1] == trace_id]
    return traced if {"turn.metrics", "conversation.turn"} <= {r[0] for r in traced} else []


async def _what_jaeger_has(jaeger: RunningJaeger) -> str:
    """For a failure message: each service's traces, as lists of span names."""
    lines = []
    for service in await jaeger.query.services():
        for found in await jaeger.query.traces(service):
            names = sorted(f"{_service(found, s)}:{s['operationName']}" for s in found["spans"])
            lines.append(f"{service} {found['traceID']}: {', '.join(names)}")
    return "\n".join(lines) or "Jaeger has no traces"


# --- reading Jaeger's JSON ---------------------------------------------------------------------


async def _eventually(fetch: Any, within_s: float) -> Any:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        found = await fetch()
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.3)


def _parent(span: Span) -> str | None:
    for ref in span["references"]:
        if ref["refType"] == "CHILD_OF":
            return str(ref["spanID"])
    return None


def _tag(span: Span, key: str) -> Any:
    for tag in span["tags"]:
        if tag["key"] == key:
            return tag["value"]
    return None


def _kind(span: Span) -> Any:
    return _tag(span, "span.kind")


def _named(found: dict[str, Any], name: str) -> list[Span]:
    return [s for s in found["spans"] if s["operationName"] == name]


def _service(found: dict[str, Any], span: Span) -> str:
    return str(found["processes"][span["processID"]]["serviceName"])


def _services(found: dict[str, Any]) -> set[str]:
    return {str(p["serviceName"]) for p in found["processes"].values()}

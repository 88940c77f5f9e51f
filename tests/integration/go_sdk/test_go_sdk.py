"""The Go SDK (libs/go-sdk) against the real servers: pytest starts NATS, the brain, the TTS
worker, Pulsar with the events relay and LiveKit through the usual fixtures, then runs
`go vet`, `gofmt` and `go test` with the servers' addresses in ARC_TEST_* variables.

Go runs offline (GOPROXY=off): `arc install` downloaded the modules (arc_stack.go_sdk). Each
run is verbose so the assertions can check that the intended tests ran rather than skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import msgspec
import psycopg
import pulsar
import pytest
import pytest_asyncio
from arc_brain.settings import LlmSettings
from arc_common import subjects
from arc_common.events import ConversationTurn, SessionStarted, TurnMetrics, write_events
from arc_common.wire import Announcement, decode_announcement
from arc_events.settings import Role
from arc_stack.go_sdk import go_environment, go_sdk_dir, staticcheck_binary
from arc_stack.livekit import LiveKitServer, go_binary
from arc_voice.caller import AUDIBLE_DB
from arc_voice.lifecycle import EventRecorder
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import SecretStr

from tests.fixtures.brain import BrainFactory
from tests.fixtures.events import SettingsFactory, running
from tests.fixtures.nats import SessionNats
from tests.fixtures.tts import TtsWorker
from tests.fixtures.voice import VoiceFactory, room_name
from tests.integration.brain.openai_double import OpenAiDouble, start_double
from tests.integration.events.support import scalar, wait_until

pytestmark = pytest.mark.integration

# `arc install` compiled everything (`go vet`), so a run only links its test binary; the
# limit stays under pytest's own 300 s so a stuck run shows Go's output, not a bare timeout.
GO_TIMEOUT_S = 240.0


async def run_go(
    *args: str, env: Mapping[str, str] | None = None, timeout_s: float = GO_TIMEOUT_S
) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        go_binary(),
        *args,
        cwd=go_sdk_dir(),
        env={**go_environment(offline=True), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -1, f"timed out after {timeout_s}s\n{out.decode(errors='replace')}"
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def go_test(package: str, run: str) -> tuple[str, ...]:
    return ("test", "-count=1", "-v", "-run", run, package)


def assert_ran(code: int, output: str, *tests: str) -> None:
    """Go exited 0 and each named test passed (not skipped) — a wrong variable name would
    otherwise turn the run into a row of skips that pass."""
    print(output)  # shown with -s, and on failure
    assert code == 0, f"go exited {code}:\n{output[-12000:]}"
    skipped = re.findall(r"--- SKIP: (\S+)", output)
    assert not skipped, f"skipped {skipped}:\n{output[-6000:]}"
    for test in tests:
        assert re.search(rf"--- PASS: {re.escape(test)}\b", output), (
            f"{test} did not pass:\n{output[-6000:]}"
        )


async def test_go_formatted_vetted_checked_and_unit_tests_pass() -> None:
    proc = await asyncio.create_subprocess_exec(
        str(Path(go_binary()).with_name("gofmt")),
        "-l",
        ".",
        cwd=go_sdk_dir(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    unformatted, _ = await proc.communicate()
    assert proc.returncode == 0 and not unformatted.strip(), (
        f"gofmt -l lists files to format:\n{unformatted.decode()}"
    )
    code, out = await run_go("vet", "./...")
    assert code == 0, f"go vet:\n{out}"
    checker = staticcheck_binary()
    assert checker.is_file(), f"no staticcheck at {checker}: run `make install`"
    proc = await asyncio.create_subprocess_exec(
        str(checker),
        "./...",
        cwd=go_sdk_dir(),
        env=go_environment(offline=True),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    findings, _ = await proc.communicate()
    assert proc.returncode == 0, f"staticcheck:\n{findings.decode()}"
    # No servers: the integration tests skip, everything else runs (golden files included).
    code, out = await run_go("test", "-count=1", "./...")
    assert code == 0, f"go test ./...:\n{out[-12000:]}"
    for package in ("wire", "events", "envelope", "token", "durable", "streaming"):
        assert re.search(rf"^ok\s+\S+/{package}\s", out, re.M), f"{package} did not run:\n{out}"


@pytest_asyncio.fixture(loop_scope="session")
async def slow_llm() -> AsyncIterator[OpenAiDouble]:
    """The OpenAI-protocol stand-in (a paid API's wire protocol, the one double allowed): its
    `slow` model keeps a turn streaming long enough to cancel it."""
    double, server, task = await start_double()
    yield double
    server.should_exit = True
    await task


async def test_go_streaming_client_against_real_brain_and_tts(
    nats_server: SessionNats,
    brain_factory: BrainFactory,
    tts_worker: TtsWorker,
    slow_llm: OpenAiDouble,
    subject_prefix: str,
) -> None:
    brain = await brain_factory(subject_prefix=f"{subject_prefix}b")
    slow = await brain_factory(
        subject_prefix=f"{subject_prefix}s",
        llm=LlmSettings(
            base_url=slow_llm.base_url, api_key=SecretStr("sk-test"), model="slow",
            stall_timeout_s=5.0, first_token_timeout_s=5.0,
        ),
    )  # fmt: skip
    code, out = await run_go(
        *go_test("./streaming/", "Integration"),
        env={
            # Some of these tests also play the server (a brain that fails on purpose).
            "ARC_TEST_NATS_URL": nats_server.url_as("operator"),
            "ARC_TEST_BRAIN_PREFIX": brain.subject_prefix,
            "ARC_TEST_SLOW_BRAIN_PREFIX": slow.subject_prefix,
            "ARC_TEST_TTS_PREFIX": tts_worker.subject_prefix,
        },
    )
    assert_ran(
        code,
        out,
        "TestIntegrationAskStreamsSpeakableDeltas",
        "TestIntegrationBrainErrorsAreTyped",
        "TestIntegrationSpeakWholeFramesAtEachRate/48000",
        "TestIntegrationSpeakWholeFramesAtEachRate/8000",
        "TestIntegrationCancelledContextCancelsTheTurn",
        "TestIntegrationContextDeadlineIsTimeoutAndCancels",
        "TestIntegrationTraceContextInHeaders",
        "TestIntegrationBrokenRepliesAreTypedErrors",
        "TestIntegrationNoResponderIsBusy",
        "TestIntegrationSilentServerTimesOut",
        "TestIntegrationClosedClientRefusesNewTurns",
        "TestIntegrationCommitPublishesTheContractMessage",
    )


async def test_go_announcement_decodes_with_the_voice_workers_code(
    nats_server: SessionNats, nc: Client, subject_prefix: str
) -> None:
    received: list[Announcement] = []

    async def on_announce(msg: Msg) -> None:
        received.append(decode_announcement(msg.data))

    sub = await nc.subscribe(
        subjects.prefixed(subject_prefix, subjects.VOICE_ANNOUNCE), cb=on_announce
    )
    await nc.flush()
    code, out = await run_go(
        *go_test("./events/", "TestIntegrationAnnounce"),
        env={
            "ARC_TEST_NATS_URL": nats_server.url_as("announcer"),
            "ARC_TEST_ANNOUNCE_PREFIX": subject_prefix,
            "ARC_TEST_ANNOUNCE_ROOM": "go-lobby",
        },
    )
    assert_ran(code, out, "TestIntegrationAnnounce")
    await wait_until(lambda: _true(bool(received)), timeout_s=5, interval_s=0.02)
    await sub.unsubscribe()
    assert received == [
        Announcement(
            text="The building closes in ten minutes.", priority=7, category="shutdown",
            source="go-sdk", room="go-lobby",
        )
    ]  # fmt: skip


async def _true(value: bool) -> bool:
    return value


async def test_go_lifecycle_subscription_reads_the_voice_workers_events(
    nats_server: SessionNats, nc: Client, subject_prefix: str
) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    ready = asyncio.Event()

    async def on_ready(_msg: Msg) -> None:
        ready.set()

    sub = await nc.subscribe(f"{subject_prefix}.go-sdk.ready", cb=on_ready)
    await nc.flush()
    go = asyncio.create_task(
        run_go(
            *go_test("./events/", "TestIntegrationLifecycleFromVoiceRecorder"),
            env={
                # It also signals the test on a subject of its own: beyond any service's grants.
                "ARC_TEST_NATS_URL": nats_server.url_as("operator"),
                "ARC_TEST_LIFECYCLE_PREFIX": subject_prefix,
                "ARC_TEST_LIFECYCLE_SESSION": session,
            },
        )
    )
    ready_wait = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({go, ready_wait}, return_when=asyncio.FIRST_COMPLETED)
    if go in done:
        ready_wait.cancel()
        code, out = go.result()
        pytest.fail(f"go test ended before it subscribed (exit {code}):\n{out[-6000:]}")
    await sub.unsubscribe()
    # The voice worker's own recorder, with no database: it validates and publishes on NATS.
    recorder = EventRecorder(None, nc, subject_prefix)
    await recorder.session_started(session, "go-room", "go-user")
    track = {"session_id": session, "room": "go-room", "participant": "caller", "kind": "audio"}
    await recorder.track(published=True, track_sid="TR_go", **track)
    await recorder.track(published=False, track_sid="TR_go", **track)
    await recorder.session_ended(session, "go-room", "go-user", "hangup")
    await nc.flush()
    code, out = await go
    assert_ran(code, out, "TestIntegrationLifecycleFromVoiceRecorder")


async def test_go_pulsar_consumer_reads_what_the_python_relay_wrote(
    events_settings: SettingsFactory, events_dsn: str
) -> None:
    settings = events_settings()
    session = f"s-{uuid.uuid4().hex[:8]}"
    written = [
        SessionStarted(session_id=session, room="go-room", user_id="u1"),
        ConversationTurn(
            session_id=session, turn_id="t1", user_id="u1", user_text="hi", assistant_text="Hello!"
        ),
        TurnMetrics(session_id=session, turn_id="t1", stt_ms=80.0, voice_to_voice_ms=640.0),
    ]
    async with await psycopg.AsyncConnection.connect(events_dsn) as conn:
        await write_events(conn, written)
        await conn.commit()
    unsent = "SELECT count(*) FROM agents.outbox WHERE sent_at IS NULL"
    async with running(settings, Role.RELAY):
        await wait_until(lambda: _zero(events_dsn, unsent), timeout_s=60)
        # The relay forgets it sent them (a crash between the broker's ack and marking the
        # rows): every event reaches the topics a second time.
        async with await psycopg.AsyncConnection.connect(events_dsn) as conn:
            await conn.execute("UPDATE agents.outbox SET sent_at = NULL")
            await conn.commit()
        await wait_until(lambda: _zero(events_dsn, unsent), timeout_s=60)
    suffix = settings.events.topic_suffix
    poison = [b"not json", msgspec.json.encode({"type": "session.started", "v": 1})]
    await asyncio.to_thread(
        _produce, settings.pulsar.service_url, subjects.TOPIC_CONVERSATION + suffix, poison
    )
    code, out = await run_go(
        *go_test("./durable/", "TestIntegrationConsumerReadsRelayedEventsOnce"),
        env={
            "ARC_TEST_PULSAR_URL": settings.pulsar.service_url,
            "ARC_TEST_TOPIC_SUFFIX": suffix,
            "ARC_TEST_EXPECTED_EVENTS": json.dumps({str(e.event_id): e.TYPE for e in written}),
            "ARC_TEST_EXPECTED_POISON": str(len(poison)),
        },
    )
    assert_ran(code, out, "TestIntegrationConsumerReadsRelayedEventsOnce")
    assert f"{len(written)} events, {len(written)} duplicates skipped, 2 poison" in out, out


async def _zero(dsn: str, sql: str) -> bool:
    return await scalar(dsn, sql) == 0


def _produce(service_url: str, topic: str, payloads: list[bytes]) -> None:
    client = pulsar.Client(service_url, operation_timeout_seconds=30)
    try:
        producer = client.create_producer(topic)
        for payload in payloads:
            producer.send(payload)
    finally:
        client.close()


async def test_go_tokens_against_livekit(livekit_server: LiveKitServer) -> None:
    code, out = await run_go(
        *go_test("./token/", "LiveKit|Join"),
        env={
            "ARC_TEST_LIVEKIT_URL": livekit_server.url,
            "ARC_TEST_LIVEKIT_API_KEY": livekit_server.api_key,
            "ARC_TEST_LIVEKIT_API_SECRET": livekit_server.api_secret,
        },
    )
    assert_ran(code, out, "TestLiveKitServerValidatesToken", "TestJoinCreatesRoomWithAgentDispatch")


async def test_go_example_asks_and_speaks(
    nats_server: SessionNats,
    brain_factory: BrainFactory,
    tts_worker: TtsWorker,
    subject_prefix: str,
    tmp_path: Path,
) -> None:
    await brain_factory(subject_prefix=subject_prefix)
    wav = tmp_path / "answer.wav"
    code, out = await run_go(
        "run", "./examples/ask", "-nats", nats_server.url_as("voice"), "-prefix", subject_prefix,
        "-speak", str(wav), "hello there",
    )  # fmt: skip
    assert code == 0, out
    assert out.startswith("Hello!"), out
    data = wav.read_bytes()
    seconds = (len(data) - 44) / (2 * 24000)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and seconds > 0.5, (len(data), out)


@pytest.mark.e2e
async def test_go_announcement_is_spoken_into_a_room(
    nats_server: SessionNats,
    voice_factory: VoiceFactory,
    tts_worker: TtsWorker,
    migrated_dsn: str,
) -> None:
    """End to end: the voice worker is in a room with a listener; the announcement Go
    publishes is spoken (the listener hears the agent) and recorded as
    `announcement.spoken`."""
    harness = await voice_factory(greeting="")
    room = room_name()
    await harness.worker.join(room)
    listener = await harness.caller(room, "go-listener")
    await listener.wait_for_agent()
    await asyncio.sleep(1.0)  # the room is quiet; nothing has been said
    assert not [h for h in listener.heard if h.level > AUDIBLE_DB]
    code, out = await run_go(
        *go_test("./events/", "TestIntegrationAnnounce"),
        env={
            "ARC_TEST_NATS_URL": nats_server.url_as("announcer"),
            "ARC_TEST_ANNOUNCE_PREFIX": harness.subject_prefix,
            "ARC_TEST_ANNOUNCE_ROOM": room,
        },
    )
    assert_ran(code, out, "TestIntegrationAnnounce")
    spoken = (
        "SELECT count(*) FROM agents.outbox WHERE type = 'announcement.spoken' "
        "AND payload->>'room' = %s AND payload->>'source' = 'go-sdk' "
        "AND payload->>'text' = 'The building closes in ten minutes.'"
    )

    async def recorded() -> bool:
        return await scalar(migrated_dsn, spoken, room) == 1

    await wait_until(recorded, timeout_s=60)
    audible_s = sum(len(h.pcm) for h in listener.heard if h.level > AUDIBLE_DB) / (
        2 * listener.heard_rate
    )
    # "The building closes in ten minutes." takes about two seconds to say.
    assert audible_s > 1.0, f"the listener heard {audible_s:.2f} s of the agent"

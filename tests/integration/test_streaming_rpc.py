"""The streaming request/reply of the contract, against a real NATS server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from arc_common.errors import ArcError, BadRequest, Busy, Internal, Timeout, TooLarge, Unsupported
from arc_common.nats_connection import connect
from arc_common.settings import NatsSettings
from arc_common.streaming import (
    Chunk,
    ReplyStream,
    StreamingClient,
    StreamingEndpoint,
    StreamingService,
    TurnContext,
)
from arc_common.subjects import prefixed
from arc_common.wire import BrainRequest, Cancel, ReplyChunk, TtsRequest, encode
from arc_stack.nats import NatsServer
from arc_stack.server import free_port
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self) -> None:
        self.cancelled: dict[str, float] = {}
        self.started: dict[str, asyncio.Event] = {}


def brain_request(turn_id: str = "turn-1", text: str = "hello", **extra: object) -> BrainRequest:
    return BrainRequest(
        v=1,
        session_id="s-1",
        turn_id=turn_id,
        user_id="u-1",
        text=text,
        **extra,  # type: ignore[arg-type]
    )


async def _started_service(
    nc: Client,
    prefix: str,
    recorder: Recorder,
    *,
    chunks: int = 3,
    max_turns: int = 64,
    name: str = "test-brain",
) -> StreamingService:
    async def handler(req: BrainRequest, ctx: TurnContext) -> AsyncIterator[Chunk]:
        recorder.started.setdefault(req.turn_id, asyncio.Event()).set()
        if req.text == "crash":
            raise RuntimeError("boom")
        if req.text == "reject":
            raise Unsupported("no such skill")
        try:
            if req.text == "forever":
                for i in range(10_000):
                    yield Chunk(kind="delta", text=f"part {i}. ")
                    await asyncio.sleep(0.01)
            if req.text == "silent":
                await asyncio.sleep(60)
            if req.text == "slow":
                await asyncio.sleep(0.2)
            if req.text in ("pause", "then-silent"):
                yield Chunk(kind="delta", text="First. ")
                await asyncio.sleep(1.6 if req.text == "pause" else 60)
            for i in range(chunks):
                yield Chunk(kind="delta", text=f"{req.text} {i}. ")
        except asyncio.CancelledError:
            recorder.cancelled[req.turn_id] = time.monotonic()
            raise

    service = StreamingService(nc, name=name, version="0.0.1")
    service.add(
        StreamingEndpoint(
            name="brain-request",
            subject=prefixed(prefix, "brain.request"),
            queue_group="brain",
            cancel_subject=prefixed(prefix, "brain.cancel"),
            request_type=BrainRequest,
            handler=handler,
            max_concurrent_turns=max_turns,
        )
    )
    await service.start()
    return service


StartService = Callable[..., Awaitable[StreamingService]]


@pytest_asyncio.fixture(loop_scope="session")
async def start_service() -> AsyncIterator[StartService]:
    """`_started_service`, each service stopped when the test ends, passed or not."""
    services: list[StreamingService] = []

    async def start(*args: Any, **kwargs: Any) -> StreamingService:
        service = await _started_service(*args, **kwargs)
        services.append(service)
        return service

    try:
        yield start
    finally:
        for service in reversed(services):
            await service.stop()


async def test_chunks_arrive_in_order_with_one_terminal(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    recorder = Recorder()
    await start_service(nc, subject_prefix, recorder, chunks=5)
    async with StreamingClient(nc) as client:
        stream = client.stream(
            prefixed(subject_prefix, "brain.request"),
            brain_request(text="hi"),
            cancel_subject=prefixed(subject_prefix, "brain.cancel"),
        )
        chunks = await stream.collect()
    assert [c.seq for c in chunks] == [0, 1, 2, 3, 4]
    assert [c.text for c in chunks] == [f"hi {i}. " for i in range(5)]
    assert stream.end is not None and stream.end.seq == 5 and stream.end.kind == "end"


async def _raw_request(nc: Client, prefix: str, headers: dict[str, str]) -> Subscription:
    """A brain.request published by hand (no client of ours), with `headers` besides its
    schema; the subscription hears what comes back."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(
        prefixed(prefix, "brain.request"),
        encode(brain_request()),
        reply=inbox,
        headers={"arc-schema": "brain.request/1", **headers},
    )
    return sub


async def test_raw_reply_stream_has_headers_and_single_terminal(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    """Check the wire itself, without our client: seq, schema header, exactly one terminal."""
    recorder = Recorder()
    await start_service(nc, subject_prefix, recorder, chunks=3)
    sub = await _raw_request(nc, subject_prefix, {})
    messages = []
    while True:
        msg = await sub.next_msg(timeout=2)
        messages.append(msg)
        if msgspec.msgpack.decode(msg.data)["kind"] in ("end", "error"):
            break
    with pytest.raises(TimeoutError):
        await sub.next_msg(timeout=0.2)  # nothing after the terminal message
    decoded = [msgspec.msgpack.decode(m.data) for m in messages]
    assert [d["seq"] for d in decoded] == [0, 1, 2, 3]
    assert [d["kind"] for d in decoded] == ["delta", "delta", "delta", "end"]
    assert all(d["v"] == 1 and d["turn_id"] == "turn-1" for d in decoded)
    assert all(m.headers and m.headers["arc-schema"] == "brain.reply/1" for m in messages)
    # Each names the instance serving the turn, by the subject that pings it.
    servers = {m.headers["arc-server"] for m in messages if m.headers}
    assert len(servers) == 1 and servers.pop().startswith("$SRV.PING.test-brain."), servers


async def test_a_request_that_asks_is_acknowledged_before_its_first_chunk(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    """`arc-ack: 1` on the request: the instance taking the turn first sends an empty message
    naming itself, then the turn's chunks as usual (seq from 0). Without the header (above)
    no such message is sent."""
    await start_service(nc, subject_prefix, Recorder(), chunks=2)
    sub = await _raw_request(nc, subject_prefix, {"arc-ack": "1"})
    ack = await sub.next_msg(timeout=2)
    assert ack.data == b""
    assert ack.headers and ack.headers["arc-ack"] == "accepted"
    assert ack.headers["arc-server"].startswith("$SRV.PING.test-brain."), ack.headers
    decoded = [msgspec.msgpack.decode((await sub.next_msg(timeout=2)).data) for _ in range(3)]
    assert [(d["seq"], d["kind"]) for d in decoded] == [(0, "delta"), (1, "delta"), (2, "end")]


def _payload(**fields: object) -> bytes:
    base: dict[str, object] = {"v": 1, "session_id": "s", "turn_id": "t", "user_id": "u"}
    return msgspec.msgpack.encode({**base, **fields})


BAD_INPUTS = {
    "garbage": (b"\xc1\xff garbage", "bad_request"),
    "not-a-map": (msgspec.msgpack.encode([1, 2, 3]), "bad_request"),
    "missing-text": (_payload(), "bad_request"),
    "wrong-version": (_payload(v=2, text="x"), "bad_request"),
    "wrong-type": (_payload(text=42), "bad_request"),
    "blank-text": (_payload(text="   "), "bad_request"),
    "text-too-long": (_payload(text="x" * 4001), "too_large"),
    "oversize-payload": (b"\x80" * 70_000, "too_large"),
    # A MessagePack string that is not UTF-8 (found by the fuzz tests: it once went unanswered).
    "invalid-utf8-text": (
        b"\x85\xa1v\x01\xaasession_id\xa1s\xa7turn_id\xa1t\xa7user_id\xa1u\xa4text\xa2\xff\xfe",
        "bad_request",
    ),
}


@pytest.mark.parametrize(("payload", "code"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
async def test_bad_input_gets_error_code_and_server_keeps_serving(
    nc: Client, subject_prefix: str, payload: bytes, code: str, start_service: StartService
) -> None:
    recorder = Recorder()
    await start_service(nc, subject_prefix, recorder)
    reply = await nc.request(prefixed(subject_prefix, "brain.request"), payload, timeout=2)
    chunk = msgspec.msgpack.decode(reply.data, type=ReplyChunk)
    assert chunk.kind == "error" and chunk.seq == 0
    assert chunk.error is not None and chunk.error.code == code
    assert chunk.error.message
    # The same worker still answers a good request.
    async with StreamingClient(nc) as client:
        chunks = await client.stream(
            prefixed(subject_prefix, "brain.request"),
            brain_request(turn_id="after-bad"),
            cancel_subject=prefixed(subject_prefix, "brain.cancel"),
        ).collect()
    assert len(chunks) == 3


async def test_handler_errors_map_to_codes(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    recorder = Recorder()
    await start_service(nc, subject_prefix, recorder)
    async with StreamingClient(nc) as client:
        for text, error in (("crash", Internal), ("reject", Unsupported)):
            stream = client.stream(
                prefixed(subject_prefix, "brain.request"),
                brain_request(turn_id=f"t-{text}", text=text),
                cancel_subject=prefixed(subject_prefix, "brain.cancel"),
            )
            with pytest.raises(error) as info:
                await stream.collect()
            assert info.value.retryable is (error is Internal)


async def test_cancel_stops_the_turn_within_50ms(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    recorder = Recorder()
    service = await start_service(nc, subject_prefix, recorder)
    async with StreamingClient(nc) as client:
        stream = client.stream(
            prefixed(subject_prefix, "brain.request"),
            brain_request(turn_id="long", text="forever"),
            cancel_subject=prefixed(subject_prefix, "brain.cancel"),
        )
        async with stream:
            got = [await stream.__anext__() for _ in range(3)]
            assert [c.seq for c in got] == [0, 1, 2]
            sent_at = time.monotonic()
            await nc.publish(
                prefixed(subject_prefix, "brain.cancel"), encode(Cancel(turn_id="long"))
            )
            # Drain until the terminal: it must be `end` with reason `cancelled`.
            async for _chunk in stream:
                pass
            ended_at = time.monotonic()
        assert stream.end is not None and stream.end.reason == "cancelled"
    assert recorder.cancelled["long"] - sent_at < 0.050
    assert ended_at - sent_at < 0.050
    assert service.active_turns == 0


async def test_leaving_early_publishes_cancel(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    recorder = Recorder()
    await start_service(nc, subject_prefix, recorder)
    cancels = await nc.subscribe(prefixed(subject_prefix, "brain.cancel"))
    async with StreamingClient(nc) as client:
        stream = client.stream(
            prefixed(subject_prefix, "brain.request"),
            brain_request(turn_id="early", text="forever"),
            cancel_subject=prefixed(subject_prefix, "brain.cancel"),
        )
        async with stream:
            async for chunk in stream:
                if chunk.seq == 1:
                    break
        left_at = time.monotonic()
    msg = await cancels.next_msg(timeout=1)
    assert msgspec.msgpack.decode(msg.data, type=Cancel).turn_id == "early"
    await wait_until(lambda: "early" in recorder.cancelled, what="the turn cancelled")
    assert recorder.cancelled["early"] - left_at < 0.050


async def test_deadlines_on_both_sides(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    recorder = Recorder()
    await start_service(nc, subject_prefix, recorder)
    async with StreamingClient(nc) as client:
        # Server-side deadline from the request.
        with pytest.raises(Timeout):
            await client.stream(
                prefixed(subject_prefix, "brain.request"),
                brain_request(turn_id="dl-server", text="silent", deadline_ms=100),
                cancel_subject=prefixed(subject_prefix, "brain.cancel"),
            ).collect()
        # Client-side: no first chunk in time; the server is told to cancel.
        started = time.monotonic()
        with pytest.raises(Timeout):
            await client.stream(
                prefixed(subject_prefix, "brain.request"),
                brain_request(turn_id="dl-client", text="silent"),
                cancel_subject=prefixed(subject_prefix, "brain.cancel"),
                first_chunk_timeout=0.2,
            ).collect()
        # Generous, but well under the 5 s default it must not have fallen back to.
        assert time.monotonic() - started < 2.5
    await wait_until(lambda: "dl-client" in recorder.cancelled, what="the server told to cancel")


async def test_no_worker_is_busy_and_capacity_limit(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    async with StreamingClient(nc) as client:
        with pytest.raises(Busy):
            await client.stream(
                prefixed(subject_prefix, "brain.request"),
                brain_request(),
                cancel_subject=prefixed(subject_prefix, "brain.cancel"),
            ).collect()
        recorder = Recorder()
        service = await start_service(nc, subject_prefix, recorder, max_turns=1)
        first = client.stream(
            prefixed(subject_prefix, "brain.request"),
            brain_request(turn_id="hold", text="silent"),
            cancel_subject=prefixed(subject_prefix, "brain.cancel"),
        )
        async with first:
            task = asyncio.create_task(first.__anext__())
            await wait_until(lambda: service.active_turns == 1, what="the first turn admitted")
            with pytest.raises(Busy) as info:
                await client.stream(
                    prefixed(subject_prefix, "brain.request"),
                    brain_request(turn_id="second"),
                    cancel_subject=prefixed(subject_prefix, "brain.cancel"),
                ).collect()
            assert info.value.retryable
            task.cancel()


async def test_queue_group_spreads_turns_over_workers(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    recorders = [Recorder(), Recorder()]
    for r in recorders:
        await start_service(nc, subject_prefix, r)
    async with StreamingClient(nc) as client:
        streams = [
            client.stream(
                prefixed(subject_prefix, "brain.request"),
                brain_request(turn_id=f"q-{i}"),
                cancel_subject=prefixed(subject_prefix, "brain.cancel"),
            ).collect()
            for i in range(40)
        ]
        results = await asyncio.gather(*streams)
    assert all(len(r) == 3 for r in results)
    counts = [len(r.started) for r in recorders]
    assert sum(counts) == 40 and min(counts) > 0


async def test_service_is_discoverable_with_micro(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    await start_service(nc, subject_prefix, Recorder())
    reply = await nc.request("$SRV.PING.test-brain", b"", timeout=2)
    info = msgspec.json.decode(reply.data)
    assert info["name"] == "test-brain" and info["version"] == "0.0.1"


async def test_srv_stats_reports_the_turns_themselves(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    """`$SRV.STATS` counts every request, every terminal `error` (not a cancelled turn), and
    the time from each request to its terminal message: three 200 ms turns add 600 ms."""
    name = f"stats-{subject_prefix}"
    recorder = Recorder()
    await start_service(nc, subject_prefix, recorder, name=name)
    subject = prefixed(subject_prefix, "brain.request")
    cancel = prefixed(subject_prefix, "brain.cancel")
    async with StreamingClient(nc) as client:
        for i in range(3):
            chunks = await client.stream(
                subject, brain_request(turn_id=f"slow-{i}", text="slow"), cancel_subject=cancel
            ).collect()
            assert len(chunks) == 3
        reply = await nc.request(subject, b"\xc1 not msgpack", timeout=2)
        assert msgspec.msgpack.decode(reply.data, type=ReplyChunk).kind == "error"
        for text, error in (("crash", Internal), ("reject", Unsupported)):
            with pytest.raises(error):
                await client.stream(
                    subject, brain_request(turn_id=f"t-{text}", text=text), cancel_subject=cancel
                ).collect()
        stream = client.stream(
            subject, brain_request(turn_id="to-cancel", text="forever"), cancel_subject=cancel
        )
        async with stream:
            await stream.__anext__()
            await nc.publish(cancel, encode(Cancel(turn_id="to-cancel")))
            async for _chunk in stream:
                pass
        assert stream.end is not None and stream.end.reason == "cancelled"
    reply = await nc.request(f"$SRV.STATS.{name}", b"", timeout=2)
    stats = msgspec.json.decode(reply.data)
    [endpoint] = stats["endpoints"]
    assert endpoint["name"] == "brain-request" and endpoint["subject"] == subject
    assert endpoint["num_requests"] == 7
    assert endpoint["num_errors"] == 3  # undecodable, crash, reject; the cancel is not one
    assert endpoint["last_error"].startswith("unsupported: no such skill")
    assert endpoint["processing_time"] >= 600_000_000, endpoint  # ns: three 200 ms turns
    assert endpoint["processing_time"] < 60_000_000_000, endpoint  # and not absurd
    assert endpoint["average_processing_time"] >= 600_000_000 // 7
    assert endpoint["data"] == {"turns_in_progress": 0, "turns_cancelled": 1}


def test_tts_request_validation_rules() -> None:
    ok = TtsRequest(v=1, session_id="s", turn_id="t", text=" hi ", sample_rate=16000, frame_ms=10)
    ok.check()
    assert ok.text == "hi"
    with pytest.raises(Unsupported):
        TtsRequest(v=1, session_id="s", turn_id="t", text="hi", sample_rate=44100).check()
    with pytest.raises(Unsupported):
        TtsRequest(v=1, session_id="s", turn_id="t", text="hi", frame_ms=30).check()
    with pytest.raises(TooLarge):
        TtsRequest(v=1, session_id="s", turn_id="t", text="x" * 2001).check()
    with pytest.raises(BadRequest):
        TtsRequest(v=1, session_id="s", turn_id="t", text="").check()
    assert issubclass(Busy, ArcError)


async def _silent_after_one_chunk(client: StreamingClient, prefix: str) -> ReplyStream:
    """A stream whose server sent its first chunk and then falls silent (alive), read up to
    that chunk; idle timeout 10 s, pinged after 0.5 s of silence."""
    stream = client.stream(
        prefixed(prefix, "brain.request"),
        brain_request(text="then-silent"),
        cancel_subject=prefixed(prefix, "brain.cancel"),
        idle_timeout=10.0,
        probe_after=0.5,
    )
    first = await anext(stream)
    assert first.text == "First. "
    return stream


async def test_a_server_that_dies_mid_stream_is_noticed_within_a_second(
    nc: Client, nats_settings: NatsSettings, subject_prefix: str
) -> None:
    """The serving instance's connection goes as it does when its process is killed: the
    stream says so after one silent `probe_after`, not at its 10 s idle timeout."""
    server_nc = await connect(nats_settings, name="arc-test-dying")
    service = await _started_service(server_nc, subject_prefix, Recorder())
    try:
        async with StreamingClient(nc) as client:
            stream = await _silent_after_one_chunk(client, subject_prefix)
            died = time.monotonic()
            await server_nc.close()
            with pytest.raises(Busy, match="has gone"):
                await anext(stream)
            noticed = time.monotonic() - died
    finally:
        with contextlib.suppress(Exception):
            await service.stop()
    assert 0.5 <= noticed < 2.0, noticed


async def test_a_silent_server_that_is_alive_is_pinged_and_waited_for(
    nc: Client, subject_prefix: str, start_service: StartService
) -> None:
    await start_service(nc, subject_prefix, Recorder(), chunks=1)
    pings: list[str] = []

    async def count(msg: Msg) -> None:
        pings.append(msg.subject)

    sub = await nc.subscribe("$SRV.PING.test-brain.*", cb=count)
    try:
        async with StreamingClient(nc) as client:
            chunks = await client.stream(
                prefixed(subject_prefix, "brain.request"),
                brain_request(text="pause"),
                cancel_subject=prefixed(subject_prefix, "brain.cancel"),
                idle_timeout=5.0,
                probe_after=0.5,
            ).collect()
    finally:
        await sub.unsubscribe()
    assert [c.text for c in chunks] == ["First. ", "pause 0. "]
    # 1.6 s of silence: pinged every 0.5 s, answered each time (by the micro service).
    assert len(pings) >= 2, pings


async def test_a_server_that_dies_before_its_first_chunk_is_noticed_within_a_second(
    nc: Client, nats_settings: NatsSettings, subject_prefix: str
) -> None:
    """The instance took the turn (its acknowledgement named it) and dies while working on
    it: the stream says so after one silent `probe_after`, not at its first-chunk timeout."""
    server_nc = await connect(nats_settings, name="arc-test-dying-early")
    recorder = Recorder()
    service = await _started_service(server_nc, subject_prefix, recorder)
    try:
        async with StreamingClient(nc) as client:
            stream = client.stream(
                prefixed(subject_prefix, "brain.request"),
                brain_request(turn_id="early", text="silent"),
                cancel_subject=prefixed(subject_prefix, "brain.cancel"),
                first_chunk_timeout=10.0,
                probe_after=0.5,
            )
            first = asyncio.ensure_future(anext(stream))
            # A stream that already ended (an error reply, a timeout) cannot start the turn:
            # say how it ended rather than wait out the bound (CI, 2026-12-08: 20 s, no cause).
            await wait_until(
                lambda: "early" in recorder.started or first.done(), what="the turn started"
            )
            assert "early" in recorder.started, f"the stream ended first: {first!r}"
            died = time.monotonic()
            await server_nc.close()
            with pytest.raises(Busy, match="has gone"):
                await first
            noticed = time.monotonic() - died
    finally:
        with contextlib.suppress(Exception):
            await service.stop()
    assert noticed < 2.0, noticed


async def test_a_stream_silent_after_a_nats_restart_is_given_up_not_waited_out(
    tmp_path_factory: pytest.TempPathFactory, subject_prefix: str
) -> None:
    """NATS restarts mid-stream; the server (alive, answering pings) sent its next chunks while
    the client was away, and NATS kept none. The stream says `busy` once it is silent after
    the reconnect, not at its 10 s idle timeout: the TTS plugin then asks another replica."""
    root = tmp_path_factory.mktemp("nats-restart")
    server = NatsServer(root / "data", root / "logs", port=free_port(), monitor_port=free_port())
    await server.start()
    settings = NatsSettings(url=f"nats://127.0.0.1:{server.port}")
    client_nc = await connect(settings, name="arc-test-client")
    server_nc = await connect(settings, name="arc-test-server")
    service = await _started_service(server_nc, subject_prefix, Recorder())
    try:
        async with StreamingClient(client_nc) as client:
            stream = await _silent_after_one_chunk(client, subject_prefix)
            server.kill()
            restarted = time.monotonic()
            await server.start()
            with pytest.raises(Busy, match="lost mid-stream"):
                await anext(stream)
            noticed = time.monotonic() - restarted
    finally:
        with contextlib.suppress(Exception):
            await service.stop()
        await server_nc.close()
        await client_nc.close()
        await server.stop()
    # The reconnect (nats.py retries every 0.5 s) and one silent probe_after.
    assert noticed < 4.0, noticed

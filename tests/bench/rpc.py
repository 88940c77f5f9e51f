"""Streaming RPC over loopback NATS: Arc's SDK against the same exchange in bare nats-py.

Two exchanges, each measured for both variants, interleaved round by round:
- round trip: a 1 KB request answered by one 1 KB chunk and the terminal message;
- time to first chunk of a 50-chunk reply of 3840-byte chunks (20 ms of 48 kHz audio each).
The bare variant puts the same bytes on the wire (the same MessagePack payloads and the
contract's `arc-schema` header, to a wildcard reply inbox), written directly with nats-py:
no validation, typed errors, seq checks, deadlines, cancellation or service discovery. The
ratio is therefore the cost of the SDK itself, not of the contract's wire format.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import nats
from arc_common.streaming import Chunk, StreamingClient, StreamingEndpoint, StreamingService
from arc_common.streaming.server import Handler, Req, TurnContext
from arc_common.wire import BrainRequest, TtsRequest
from arc_stack.nats import NatsServer
from arc_stack.server import free_port
from nats.aio.client import Client
from nats.aio.msg import Msg

from tests.bench.report import Stats, section_header, write_section

ROUNDS = 2000
WARMUP = 200
AUDIO_CHUNK = b"\x01\x02" * 1920
TEXT_1K = "x" * 1024


async def _echo(req: BrainRequest, ctx: TurnContext) -> AsyncIterator[Chunk]:
    yield Chunk(kind="delta", text=req.text)


def _endpoint(
    name: str, subject: str, request_type: type[Req], handler: Handler[Req]
) -> StreamingEndpoint[Req]:
    return StreamingEndpoint(
        name=name,
        subject=subject,
        queue_group="q",
        cancel_subject=f"{subject}.cancel",
        request_type=request_type,
        handler=handler,
    )


def echo_endpoint(subject: str) -> StreamingEndpoint[BrainRequest]:
    """The round trip's server side (also `tracing`'s): one delta echoing the request's text,
    then the end."""
    return _endpoint("echo", subject, BrainRequest, _echo)


async def _arc_services(nc: Client) -> StreamingService:
    async def audio(req: TtsRequest, ctx: TurnContext) -> AsyncIterator[Chunk]:
        for _ in range(50):
            yield Chunk(kind="audio", pcm=AUDIO_CHUNK, sample_rate=48000)

    service = StreamingService(nc, name="bench", version="0.0.1")
    service.add(echo_endpoint("arc.echo"))
    service.add(_endpoint("audio", "arc.audio", TtsRequest, audio))
    await service.start()
    return service


REQ_BRAIN = {"arc-schema": "brain.request/1"}
REQ_TTS = {"arc-schema": "tts.request/1"}
REPLY_BRAIN = {"arc-schema": "brain.reply/1"}
REPLY_TTS = {"arc-schema": "tts.reply/1"}


async def _bare_services(nc: Client) -> None:
    async def send(
        msg: Msg, headers: dict[str, str], turn_id: str, seq: int, kind: str, **fields: object
    ) -> None:
        chunk = {"v": 1, "turn_id": turn_id, "seq": seq, "kind": kind, **fields}
        await nc.publish(msg.reply, msgspec.msgpack.encode(chunk), headers=headers)

    async def echo(msg: Msg) -> None:
        req = msgspec.msgpack.decode(msg.data)
        await send(msg, REPLY_BRAIN, req["turn_id"], 0, "delta", text=req["text"])
        await send(msg, REPLY_BRAIN, req["turn_id"], 1, "end")

    async def audio(msg: Msg) -> None:
        req = msgspec.msgpack.decode(msg.data)
        for seq in range(50):
            await send(
                msg, REPLY_TTS, req["turn_id"], seq, "audio", pcm=AUDIO_CHUNK, sample_rate=48000
            )
        await send(msg, REPLY_TTS, req["turn_id"], 50, "end")

    async def spawn(handler: object) -> object:
        async def cb(msg: Msg) -> None:
            asyncio.get_running_loop().create_task(handler(msg))  # type: ignore[operator]

        return cb

    await nc.subscribe("bare.echo", queue="q", cb=await spawn(echo))  # type: ignore[arg-type]
    await nc.subscribe("bare.audio", queue="q", cb=await spawn(audio))  # type: ignore[arg-type]


class BareClient:
    """The bare-nats-py requester: one wildcard inbox, a queue per request, decode to dicts."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.queues: dict[str, asyncio.Queue[Msg]] = {}
        self.prefix = nc.new_inbox()
        self.n = 0

    async def start(self) -> None:
        async def cb(msg: Msg) -> None:
            self.queues[msg.subject.rsplit(".", 1)[1]].put_nowait(msg)

        await self.nc.subscribe(f"{self.prefix}.*", cb=cb)

    async def exchange(
        self, subject: str, payload: dict[str, object], headers: dict[str, str], first_only: bool
    ) -> float:
        self.n += 1
        token = str(self.n)
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        self.queues[token] = queue
        started = time.perf_counter()
        await self.nc.publish(
            subject,
            msgspec.msgpack.encode(payload),
            reply=f"{self.prefix}.{token}",
            headers=headers,
        )
        first: float | None = None
        while True:
            msg = await queue.get()
            chunk = msgspec.msgpack.decode(msg.data)
            if first is None:
                first = time.perf_counter() - started
            if chunk["kind"] in ("end", "error"):
                break
        del self.queues[token]
        return first if first_only else time.perf_counter() - started


async def _arc_exchange(
    client: StreamingClient,
    subject: str,
    request: BrainRequest | TtsRequest,
    cancel: str,
    first_only: bool,
) -> float:
    started = time.perf_counter()
    first: float | None = None
    async with client.stream(subject, request, cancel_subject=cancel) as stream:
        async for _chunk in stream:
            if first is None:
                first = time.perf_counter() - started
    return first if (first_only and first is not None) else time.perf_counter() - started


async def measure() -> dict[str, dict[str, Stats]]:
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(
            Path(tmp) / "data", Path(tmp) / "logs", port=free_port(), monitor_port=free_port()
        )
        await server.start()
        try:
            # Separate connections for servers and clients, as in the real mesh.
            srv_nc = await nats.connect(server.url)
            cli_nc = await nats.connect(server.url)
            await _arc_services(srv_nc)
            await _bare_services(srv_nc)
            await srv_nc.flush()
            arc = StreamingClient(cli_nc)
            await arc.start()
            bare = BareClient(cli_nc)
            await bare.start()
            samples: dict[str, dict[str, list[float]]] = {
                "rtt": {"arc": [], "bare": []},
                "ttfc": {"arc": [], "bare": []},
            }
            for i in range(WARMUP + ROUNDS):
                turn = f"t{i}"
                brain = BrainRequest(v=1, session_id="s", turn_id=turn, user_id="u", text=TEXT_1K)
                tts = TtsRequest(v=1, session_id="s", turn_id=turn, text="hello")
                bare_brain = msgspec.to_builtins(brain)
                bare_tts = msgspec.to_builtins(tts)
                # Alternate which variant goes first so neither always gets the warmer cache.
                order = ("arc", "bare") if i % 2 == 0 else ("bare", "arc")
                for variant in order:
                    if variant == "arc":
                        rtt = await _arc_exchange(arc, "arc.echo", brain, "arc.echo.cancel", False)
                        ttfc = await _arc_exchange(arc, "arc.audio", tts, "arc.audio.cancel", True)
                    else:
                        rtt = await bare.exchange("bare.echo", bare_brain, REQ_BRAIN, False)
                        ttfc = await bare.exchange("bare.audio", bare_tts, REQ_TTS, True)
                    if i >= WARMUP:
                        samples["rtt"][variant].append(rtt * 1000)
                        samples["ttfc"][variant].append(ttfc * 1000)
            await arc.close()
            await cli_nc.drain()
            await srv_nc.drain()
        finally:
            await server.stop()
    return {k: {v: Stats.of(s) for v, s in d.items()} for k, d in samples.items()}


EXCHANGES = {"rtt": "round trip, 1 KB request", "ttfc": "first chunk of 50 x 3840 B"}


def exchange_tables(results: dict[str, dict[str, Stats]], ours: str, ratio: str) -> list[str]:
    """Each exchange's figures for `ours` and `bare`, then their ratio against the 1.2 target
    (the Python client against nats-py here, the Go SDK against nats.go in `go_sdk`)."""
    lines = ["| exchange | variant | p50 | p95 | mean |", "|---|---|---|---|---|"]
    for key, label in EXCHANGES.items():
        for variant in (ours, "bare"):
            s = results[key][variant]
            lines.append(f"| {label} | {variant} | {s.p50:.3f} | {s.p95:.3f} | {s.mean:.3f} |")
    lines += ["", f"| ratio {ratio} | p50 | p95 | target |", "|---|---|---|---|"]
    for key, label in EXCHANGES.items():
        a, b = results[key][ours], results[key]["bare"]
        lines.append(f"| {label} | {a.p50 / b.p50:.2f} | {a.p95 / b.p95:.2f} | ≤ 1.2 |")
    return lines


def render(results: dict[str, dict[str, Stats]]) -> str:
    lines = [
        section_header("Streaming RPC over loopback NATS (issue 2)", "make bench"),
        f"{ROUNDS} exchanges per variant after {WARMUP} warm-up rounds, interleaved. Times in ms.",
        "",
        *exchange_tables(results, "arc", "arc / bare nats-py"),
    ]
    rtt95 = results["rtt"]["arc"].p95
    lines += [
        "",
        f"Arc round trip p95: {rtt95:.3f} ms (target < 1 ms: {'met' if rtt95 < 1 else 'NOT met'}).",
    ]
    return "\n".join(lines) + "\n"


def main() -> str:
    results = asyncio.run(measure())
    body = render(results)
    write_section("rpc", body)
    return body

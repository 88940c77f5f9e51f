"""`POST /tts/stream`, `/healthz` and `/metrics` over real HTTP with the real voice."""

from __future__ import annotations

import struct
import time

import httpx
import pytest
from arc_tts.synthesizer import Synthesizer

from tests.fixtures.http_auth import AUTH
from tests.integration.tts.audio_checks import assert_speech_like

pytestmark = pytest.mark.integration


async def test_wav_stream_is_playable_speech_that_arrives_as_it_is_made(tts_http: str) -> None:
    text = "Hello from the speech service. This second sentence comes later, as it is made."
    arrivals: list[tuple[float, bytes]] = []
    async with (
        httpx.AsyncClient(base_url=tts_http, timeout=30, headers=AUTH) as http,
        http.stream("POST", "/tts/stream", json={"text": text, "sample_rate": 24000}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        async for part in response.aiter_raw():
            arrivals.append((time.perf_counter(), part))
    data = b"".join(part for _, part in arrivals)
    channels, rate, _, _, bits = struct.unpack("<HIIHH", data[22:36])
    assert (data[:4], data[8:12], data[36:40]) == (b"RIFF", b"WAVE", b"data")
    assert (channels, rate, bits) == (1, 24000, 16)
    pcm = data[44:]
    assert len(pcm) % (480 * 2) == 0
    assert_speech_like(pcm, 24000, words=14)
    # Streamed: the first audio is out well before the last (the later pieces were still
    # being synthesised), not one body written at the end.
    first_audio = next(t for t, part in arrivals if part and part[:4] != b"RIFF")
    assert arrivals[-1][0] - first_audio > 0.05, [round(t - first_audio, 3) for t, _ in arrivals]


async def test_raw_pcm_stream_has_whole_frames(tts_http: str) -> None:
    async with httpx.AsyncClient(base_url=tts_http, timeout=30, headers=AUTH) as http:
        response = await http.post(
            "/tts/stream",
            json={
                "text": "Raw audio, please.",
                "sample_rate": 8000,
                "frame_ms": 40,
                "format": "pcm",
            },
        )
    assert response.status_code == 200
    assert response.headers["x-sample-rate"] == "8000"
    assert len(response.content) % (320 * 2) == 0
    assert_speech_like(response.content, 8000, words=3)


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"{oops", 400, "bad_request"),
        (b'{"text": ""}', 400, "bad_request"),
        (b'{"text": "hi", "format": "ogg"}', 400, "bad_request"),
        (b'{"text": "' + b"a" * 2001 + b'"}', 413, "too_large"),
        (b'{"text": "hi", "sample_rate": 11025}', 422, "unsupported"),
        (b'{"text": "hi", "frame_ms": 5}', 422, "unsupported"),
        (b'{"text": "hi", "voice": "nobody"}', 422, "unsupported"),
    ],
)
async def test_bad_requests_get_json_errors_and_the_service_keeps_serving(
    tts_http: str, payload: bytes, status: int, code: str
) -> None:
    async with httpx.AsyncClient(base_url=tts_http, timeout=30, headers=AUTH) as http:
        response = await http.post(
            "/tts/stream", content=payload, headers={"content-type": "application/json"}
        )
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
        again = await http.post("/tts/stream", json={"text": "Fine.", "format": "pcm"})
        assert again.status_code == 200 and len(again.content) > 0


async def test_health_and_metrics(tts_http: str, tts_synthesizer: Synthesizer) -> None:
    async with httpx.AsyncClient(base_url=tts_http, timeout=10, headers=AUTH) as http:
        await http.post("/tts/stream", json={"text": "Count me.", "format": "pcm"})
        health = await http.get("/healthz")
        metrics = await http.get("/metrics")
    assert health.status_code == 200
    assert tts_synthesizer.registry.default_voice in health.json()["resident_voices"]
    text = metrics.text
    for name in (
        "arc_tts_first_chunk_seconds_bucket",
        "arc_tts_real_time_factor_bucket",
        "arc_tts_active_streams",
        "arc_tts_queue_depth",
        'arc_tts_streams_total{outcome="completed"}',
    ):
        assert name in text, name


async def test_speech_needs_the_api_key(tts_http: str) -> None:
    async with httpx.AsyncClient(base_url=tts_http, timeout=10) as anonymous:
        for headers in ({}, {"x-api-key": "not-the-key-not-the-key"}):
            refused = await anonymous.post("/tts/stream", json={"text": "Hi."}, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "bad_request"
        assert (await anonymous.get("/healthz")).status_code == 200
        allowed = await anonymous.post(
            "/tts/stream", json={"text": "Hi.", "format": "pcm"}, headers=AUTH
        )
        assert allowed.status_code == 200 and len(allowed.content) > 0

"""The HTTP entry point: `POST /tts/stream` (streamed WAV or raw PCM), `GET /healthz`,
`GET /metrics`. Input is checked with the same rules as `tts.request`; a rejected request gets
a 4xx/5xx JSON body `{"error": {"code", "message"}}` with the contract's error code."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import msgspec
from arc_common.errors import ArcError, TooLarge
from arc_common.http_errors import error_response, install_error_handlers
from arc_common.http_security import HttpGuard
from arc_common.telemetry import metrics_payload
from arc_common.wire import TtsRequest, decode_or_reject
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from arc_tts.metrics import TtsMetrics
from arc_tts.synthesizer import SpeechRequest, Synthesizer
from arc_tts.wav import streaming_header

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class SpeechBody(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    voice: str | None = None
    sample_rate: int = 48000
    frame_ms: int = 20
    format: Literal["wav", "pcm"] = "wav"


_body_decoder = msgspec.json.Decoder(SpeechBody)


@dataclass(slots=True)
class Health:
    healthy: bool
    detail: dict[str, object]


def parse_body(raw: bytes) -> tuple[SpeechRequest, Literal["wav", "pcm"]]:
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    body = decode_or_reject(
        _body_decoder.decode, raw, invalid="invalid body", malformed="body is not JSON"
    )
    # The contract's own rules (text length, rates, frame sizes) and their error codes.
    checked = TtsRequest(
        v=1,
        session_id="http",
        turn_id=uuid.uuid4().hex,
        text=body.text,
        voice=body.voice,
        sample_rate=body.sample_rate,
        frame_ms=body.frame_ms,
    )
    checked.check()
    speech = SpeechRequest(
        text=checked.text,
        voice=checked.voice,
        sample_rate=checked.sample_rate,
        frame_ms=checked.frame_ms,
    )
    return speech, body.format


def create_app(
    synthesizer: Synthesizer, metrics: TtsMetrics, health: Callable[[], Health], guard: HttpGuard
) -> FastAPI:
    """Speech needs an API key (`guard`); health and metrics are public."""
    app = FastAPI(title="Arc TTS", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    guard.install(app)

    @app.post("/tts/stream", response_model=None, dependencies=[Depends(guard.require_key)])
    async def tts_stream(request: Request) -> Response:
        try:
            speech, fmt = parse_body(await request.body())
            await synthesizer.admit(speech)
        except ArcError as exc:
            return error_response(exc)

        async def body() -> AsyncIterator[bytes]:
            if fmt == "wav":
                yield streaming_header(speech.sample_rate)
            try:
                async for pcm in synthesizer.stream(speech):
                    yield pcm
            except ArcError as exc:
                # Headers are gone already; the client sees a short body, the log says why.
                log.warning("http stream ended early: %r", exc)

        # Raw PCM is little-endian, so not audio/L16 (which RFC 2586 makes big-endian).
        media = "audio/wav" if fmt == "wav" else "application/octet-stream"
        headers = {
            "X-Sample-Rate": str(speech.sample_rate),
            "X-Frame-Ms": str(speech.frame_ms),
            "X-Audio-Format": "s16le; channels=1",
        }
        return StreamingResponse(body(), media_type=media, headers=headers)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        state = health()
        return JSONResponse(state.detail, status_code=200 if state.healthy else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        payload, content_type = metrics_payload(metrics.registry)
        return Response(payload, media_type=content_type)

    return app

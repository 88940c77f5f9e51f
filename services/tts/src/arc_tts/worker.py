"""The NATS entry point: `tts.request` (queue group `tts`) and `tts.cancel`, as a `micro`
service named `arc-tts` so workers are found with `$SRV.PING` / `$SRV.STATS`; each worker's
stats carry its voices (resident and installed), sample rates and free streams. Each worker
also answers on `tts.request.<its id>`, where a voice worker sends a unit whose voice this
worker has loaded (docs/tts.md, "Routing by resident voice")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

from arc_common.streaming import Chunk, StreamingEndpoint, StreamingService, TurnContext
from arc_common.subjects import TTS_CANCEL, TTS_QUEUE, TTS_REQUEST, TTS_SERVICE, prefixed
from arc_common.wire import SAMPLE_RATES, TtsRequest
from nats.aio.client import Client

from arc_tts.synthesizer import SpeechRequest, Synthesizer

SERVICE_NAME = TTS_SERVICE
ENDPOINT_NAME = "tts-request"


def tts_endpoint(synthesizer: Synthesizer, subject_prefix: str) -> StreamingEndpoint[TtsRequest]:
    async def handle(request: TtsRequest, ctx: TurnContext) -> AsyncIterator[Chunk]:
        speech = SpeechRequest(
            text=request.text,
            voice=request.voice,
            sample_rate=request.sample_rate,
            frame_ms=request.frame_ms,
        )
        async for pcm in synthesizer.stream(speech):
            yield Chunk(kind="audio", pcm=pcm, sample_rate=request.sample_rate)

    def capabilities() -> dict[str, Any]:
        registry = synthesizer.registry
        return {
            "voices_resident": registry.resident,
            "voices_installed": registry.installed(),
            "sample_rates": sorted(SAMPLE_RATES),
            "free_streams": max(0, synthesizer.options.max_active_streams - synthesizer.active),
        }

    return StreamingEndpoint(
        name=ENDPOINT_NAME,
        subject=prefixed(subject_prefix, TTS_REQUEST),
        queue_group=TTS_QUEUE,
        cancel_subject=prefixed(subject_prefix, TTS_CANCEL),
        request_type=TtsRequest,
        handler=handle,
        # The synthesizer's own cap answers `busy` too; this one is the NATS helper's guard.
        max_concurrent_turns=synthesizer.options.max_active_streams,
        capabilities=capabilities,
        direct=True,
    )


def tts_service(nc: Client, synthesizer: Synthesizer, subject_prefix: str) -> StreamingService:
    """Not yet started: use as `async with` or call `start()` / `stop()`."""
    service = StreamingService(
        nc,
        name=SERVICE_NAME,
        version=version("arc-tts"),
        description="Piper text to speech, streamed as PCM frames",
    )
    service.add(tts_endpoint(synthesizer, subject_prefix))
    return service

"""`NatsTTS`: the TTS service as a streaming LiveKit Agents TTS.

Text arrives as the brain streams it; each unit the session pushes (a brain delta: a sentence
or clause, the first one short) becomes one `tts.request` as it is, and its PCM frames are
pushed to the room as they arrive. Requests run one after another: the TTS
synthesises faster than real time, so the next unit's audio is ready while the previous one
still plays, and order needs no bookkeeping. Closing the stream (barge-in) leaves the reply
stream in flight, which publishes `tts.cancel`. A unit whose voice only some TTS workers have
loaded goes to one of them (`TtsRoutes`); any other to the queue group.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from arc_common import subjects
from arc_common.errors import ArcError, ErrorCode, Internal
from arc_common.streaming import TurnStreams
from arc_common.tracing import attached
from arc_common.wire import TtsRequest
from livekit.agents import APIConnectOptions, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from opentelemetry import context as otel_context

from arc_voice import metrics
from arc_voice.plugins.errors import api_error
from arc_voice.speakable import within_limit
from arc_voice.tts_routes import TtsRoutes

log = logging.getLogger(__name__)


@dataclass
class TtsOptions:
    session_id: str
    sample_rate: int = 24000
    voice: str | None = None
    subject_prefix: str = ""
    frame_ms: int = 20
    first_chunk_timeout_s: float = 10.0
    idle_timeout_s: float = 10.0
    # The trace context a request's span is opened under (the person's turn), if any.
    trace_context: Callable[[], otel_context.Context | None] | None = None


@dataclass
class TtsTurn:
    """One synthesis stream: the units it sent and when its first audio came back."""

    started_at: float
    first_text_at: float | None = None
    first_audio_at: float | None = None
    units: list[str] = field(default_factory=list)
    audio_bytes: int = 0


class NatsTTS(tts.TTS[None]):
    def __init__(
        self, client: TurnStreams, options: TtsOptions, routes: TtsRoutes | None = None
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True),
            sample_rate=options.sample_rate,
            num_channels=1,
        )
        self._client = client
        self._opts = options
        self._routes = routes
        self.streams: list[TtsTurn] = []

    @property
    def model(self) -> str:
        return "arc-tts"

    @property
    def provider(self) -> str:
        return "arc"

    def update_options(self, *, voice: str | None = None) -> None:
        self._opts.voice = voice

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return self._synthesize_with_stream(text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> NatsSynthesizeStream:
        return NatsSynthesizeStream(
            self, client=self._client, opts=self._opts, routes=self._routes, conn=conn_options
        )


@dataclass
class _Pushed:
    """How much of one unit's audio has gone to the emitter (bytes of 16-bit PCM)."""

    bytes: int = 0


class NatsSynthesizeStream(tts.SynthesizeStream):
    def __init__(
        self,
        owner: NatsTTS,
        *,
        client: TurnStreams,
        opts: TtsOptions,
        routes: TtsRoutes | None,
        conn: APIConnectOptions,
    ) -> None:
        super().__init__(tts=owner, conn_options=conn)
        self._owner = owner
        self._client = client
        self._opts = opts
        self._routes = routes
        self._queue = subjects.prefixed(opts.subject_prefix, subjects.TTS_REQUEST)

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        request_id = uuid.uuid4().hex
        record = TtsTurn(started_at=time.monotonic())
        self._owner.streams.append(record)
        output_emitter.initialize(
            request_id=request_id,
            sample_rate=self._opts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            frame_size_ms=self._opts.frame_ms,
            stream=True,
        )
        output_emitter.start_segment(segment_id=request_id)
        async for data in self._input_ch:
            if isinstance(data, self._FlushSentinel):
                continue
            for unit in within_limit(data):
                await self._speak(unit, output_emitter, record)
        output_emitter.end_segment()

    async def _speak(self, text: str, emitter: tts.AudioEmitter, record: TtsTurn) -> None:
        if record.first_text_at is None:
            record.first_text_at = time.monotonic()
            self._mark_started()
        record.units.append(text)
        pushed = _Pushed()
        direct = self._routes.subject_for(self._opts.voice) if self._routes else None
        metrics.TTS_ROUTED.labels(route="resident" if direct else "queue").inc()
        try:
            await self._speak_once(text, emitter, record, pushed, subject=direct or self._queue)
        except ArcError as exc:
            if exc.code is not ErrorCode.BUSY:
                raise api_error(exc, service="tts") from exc
            if direct and self._routes:
                self._routes.failed(direct)
            # No replica took the unit, or the one speaking it died (docs/voice.md): the
            # queue group hands it to another. Every byte that arrived is played (it is
            # queued ahead of the person's ear), so the new audio goes on from the same
            # point of the unit rather than from its first word, which repeated what
            # had arrived (the chaos suite heard two sentences twice).
            log.warning(
                "tts: %s; asking another replica, going on after %.2f s of the unit",
                exc.message,
                pushed.bytes / 2 / self._opts.sample_rate,
            )
            metrics.TTS_RETRIES.inc()
            try:
                await self._speak_once(
                    text, emitter, record, _Pushed(), subject=self._queue, skip=pushed.bytes
                )
            except ArcError as again:
                raise api_error(again, service="tts") from again

    async def _speak_once(
        self,
        text: str,
        emitter: tts.AudioEmitter,
        record: TtsTurn,
        pushed: _Pushed,
        *,
        subject: str,
        skip: int = 0,
    ) -> None:
        """Speak `text` through the replica(s) on `subject`; the first `skip` bytes of its
        audio (the part an earlier replica delivered) are dropped."""
        request = TtsRequest(
            v=1,
            session_id=self._opts.session_id,
            turn_id=uuid.uuid4().hex,
            text=text,
            voice=self._opts.voice,
            sample_rate=self._opts.sample_rate,
            frame_ms=self._opts.frame_ms,
        )
        parent = self._opts.trace_context() if self._opts.trace_context else None
        with attached(parent):  # the request's span opens with the stream
            stream = self._client.stream(
                subject,
                request,
                cancel_subject=subjects.prefixed(self._opts.subject_prefix, subjects.TTS_CANCEL),
                first_chunk_timeout=self._opts.first_chunk_timeout_s,
                idle_timeout=self._opts.idle_timeout_s,
            )
        async with stream:
            async for chunk in stream:
                if chunk.kind != "audio" or not chunk.pcm:
                    continue
                if chunk.sample_rate not in (None, self._opts.sample_rate):
                    raise Internal(
                        f"tts answered at {chunk.sample_rate} Hz, "
                        f"{self._opts.sample_rate} Hz was asked for"
                    )
                pcm = chunk.pcm
                if skip:
                    dropped = min(skip, len(pcm))
                    skip -= dropped
                    pcm = pcm[dropped:]
                    if not pcm:
                        continue
                if record.first_audio_at is None:
                    record.first_audio_at = time.monotonic()
                record.audio_bytes += len(pcm)
                pushed.bytes += len(pcm)
                emitter.push(pcm)

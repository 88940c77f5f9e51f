"""`/v1/voice`: one conversation per WebSocket (docs/websocket.md). The socket's messages are
checked here, once; the conversation behind them is the same as a room's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from typing import Annotated, Literal

from arc_common.errors import ArcError, BadRequest, Busy, TooLarge, Unsupported
from arc_common.http_security import HttpGuard
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from arc_voice.barge_in import stop_agent_audio
from arc_voice.conversation import Conversation
from arc_voice.worker import VoiceWorker
from arc_voice.ws_transport import Outbox, SocketTransport

log = logging.getLogger(__name__)

MAX_TEXT_MESSAGE_BYTES = 64 * 1024
TTS_SAMPLE_RATES = (8000, 16000, 22050, 24000, 48000)
_IDENTITY = re.compile(r"[A-Za-z0-9_.@-]{1,128}")
_SESSION_ID = re.compile(r"[0-9a-f]{8,64}")


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Start(_Message):
    type: Literal["start"]
    user_id: str
    session_id: str | None = None
    input_sample_rate: int
    output_sample_rate: int
    frame_ms: int = 20
    voice: str | None = Field(default=None, min_length=1, max_length=64)
    pacing: Literal["realtime", "fast"] = "realtime"
    lead_ms: int = 100
    greeting: bool = True
    # Record this conversation (docs/recording.md); unset: the worker's setting decides.
    record: bool | None = None


class Text(_Message):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=2000)


class Interrupt(_Message):
    type: Literal["interrupt"]


class End(_Message):
    type: Literal["end"]


ClientMessage = Annotated[Start | Text | Interrupt | End, Field(discriminator="type")]
_MESSAGE: TypeAdapter[Start | Text | Interrupt | End] = TypeAdapter(ClientMessage)


def parse_message(raw: str) -> Start | Text | Interrupt | End:
    """One client text message, or the contract error that answers it."""
    if len(raw.encode()) > MAX_TEXT_MESSAGE_BYTES:
        raise TooLarge(f"a text message is at most {MAX_TEXT_MESSAGE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"not JSON: {exc.msg} at {exc.pos}") from None
    if not isinstance(data, dict):
        raise BadRequest("a message is a JSON object with a 'type'")
    try:
        message = _MESSAGE.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"invalid message: {where}: {first['msg']}") from None
    if isinstance(message, Start):
        check_start(message)
    return message


def check_start(start: Start) -> None:
    if not _IDENTITY.fullmatch(start.user_id) or start.user_id.startswith("arc-agent"):
        raise BadRequest("user_id must be 1..128 letters, digits or _ . @ - (not 'arc-agent…')")
    if start.session_id is not None and not _SESSION_ID.fullmatch(start.session_id):
        raise BadRequest("session_id must be 8..64 lower-case hex digits")
    if not 8000 <= start.input_sample_rate <= 48000:
        raise Unsupported("input_sample_rate must be 8000..48000")
    if start.output_sample_rate not in TTS_SAMPLE_RATES:
        raise Unsupported(f"output_sample_rate must be one of {TTS_SAMPLE_RATES}")
    if not 10 <= start.frame_ms <= 100:
        raise Unsupported("frame_ms must be 10..100")
    if not 0 <= start.lead_ms <= 1000:
        raise Unsupported("lead_ms must be 0..1000")


class SocketSession:
    """One socket: waits for `start`, then feeds the conversation until either side ends."""

    def __init__(self, ws: WebSocket, worker: VoiceWorker) -> None:
        self.ws = ws
        self.worker = worker
        self.outbox = Outbox(ws.send_text, ws.send_bytes)
        self.transport: SocketTransport | None = None
        self.conversation: Conversation | None = None
        self._watch: asyncio.Task[None] | None = None
        self._end_reason = "client_disconnected"

    async def run(self) -> None:
        try:
            await self._receive()
        finally:
            await self._close()

    async def _receive(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    self._hear(message["bytes"])
                elif message.get("text") is not None and await self._handle(
                    parse_message(message["text"])
                ):
                    return
            except ArcError as exc:
                self.outbox.error(exc)

    def _hear(self, pcm: bytes) -> None:
        if self.transport is None:
            raise BadRequest("send 'start' before any audio")
        if len(pcm) % 2:
            raise BadRequest("audio is PCM16: a binary message has an even number of bytes")
        self.transport.audio_in.hear(pcm)

    async def _handle(self, message: Start | Text | Interrupt | End) -> bool:
        """Act on one message; True when the conversation is over."""
        if isinstance(message, Start):
            if self.conversation is not None:
                raise BadRequest("the conversation has started already")
            await self._start(message)
            return False
        conversation = self.conversation
        if conversation is None:
            raise BadRequest(f"send 'start' before '{message.type}'")
        if isinstance(message, End):
            self._end_reason = "client_end"
            return True
        if conversation.session.agent_state == "speaking":
            stop_agent_audio(conversation.session, time.monotonic())
        if isinstance(message, Text):
            conversation.session.generate_reply(user_input=message.text)
        return False

    async def _start(self, start: Start) -> None:
        transport = SocketTransport(
            self.outbox,
            input_sample_rate=start.input_sample_rate,
            output_sample_rate=start.output_sample_rate,
            frame_ms=start.frame_ms,
            pacing=start.pacing,
            voice=start.voice or self.worker.options.voice,
            lead_s=start.lead_ms / 1000,
        )
        conversation = Conversation(
            transport=transport,
            identity=start.user_id,
            deps=self.worker.deps,
            session_id=start.session_id,
            record=start.record,
        )
        self.transport, self.conversation = transport, conversation
        self.worker.sockets.add(conversation)
        # Ready before the session starts: its first events (the agent listening) follow it,
        # and audio sent from now on waits in the input until the session reads it.
        self.outbox.event(
            "ready",
            session_id=conversation.session_id,
            input_sample_rate=start.input_sample_rate,
            output_sample_rate=start.output_sample_rate,
            frame_ms=start.frame_ms,
            pacing=start.pacing,
            # A recorded conversation is announced here too: a client that asked for no
            # greeting hears no spoken notice, so it must show this one.
            recording=conversation.recorded,
            notice=self.worker.options.recording.notice if conversation.recorded else None,
        )
        await conversation.start(greet=start.greeting)
        self._watch = asyncio.create_task(self._until_closed(conversation), name="ws-watch")

    async def _until_closed(self, conversation: Conversation) -> None:
        """The conversation can end on its own (idle goodbye): tell the client and close."""
        await conversation.wait_closed()
        self.outbox.event("ended", reason=conversation.end_reason or "session_closed")
        await self.outbox.aclose()
        with contextlib.suppress(Exception):
            await self.ws.close(1000)

    async def _close(self) -> None:
        conversation = self.conversation
        if conversation is not None:
            if self._watch is not None:
                self._watch.cancel()
            await conversation.aclose(self._end_reason)
            self.worker.sockets.discard(conversation)
            self.outbox.event("ended", reason=conversation.end_reason or self._end_reason)
        if self.transport is not None:
            await self.transport.aclose()
        await self.outbox.aclose()
        with contextlib.suppress(Exception):
            await self.ws.close(1000)


async def serve_socket(ws: WebSocket, worker: VoiceWorker | None, guard: HttpGuard) -> None:
    await ws.accept()
    refusal: tuple[ArcError, int] | None = None
    try:
        guard.check_key(ws.headers)
    except ArcError as exc:
        refusal = (exc, 1008)
    if refusal is None and worker is None:
        refusal = (Busy("the voice worker is still starting"), 1013)
    if refusal is not None:
        error, code = refusal
        # The same error event a conversation's socket sends, through the same writer.
        outbox = Outbox(ws.send_text, ws.send_bytes)
        outbox.error(error)
        await outbox.aclose()
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.close(code)
        return
    assert worker is not None
    await SocketSession(ws, worker).run()

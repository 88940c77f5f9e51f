"""`python -m arc_voice.ws_client IN.wav OUT.wav`: one turn over the WebSocket transport.

Connects to the voice worker's `/v1/voice` (docs/websocket.md), streams IN.wav in real time
as the person's microphone (then silence, as a microphone keeps sending), prints every event
with its time, and writes the agent's spoken reply to OUT.wav.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from arc_voice.caller import AUDIBLE_DB, speech_bounds
from arc_voice.noise_floor import level_db
from arc_voice.settings import VoiceSettings
from arc_voice.talk import (
    TalkError,
    api_key_headers,
    read_wav,
    run_client,
    turn_parser,
    write_wav,
)

FRAME_MS = 20


@dataclass
class SocketTurn:
    """What one turn over the socket looked like from the client (monotonic seconds)."""

    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    reply: bytearray = field(default_factory=bytearray)
    speech_ended_at: float | None = None  # the frame holding the last speech was sent
    first_audible_at: float | None = None  # the first audible reply frame arrived
    output_sample_rate: int = 24000

    @property
    def voice_to_voice_s(self) -> float | None:
        if self.speech_ended_at is None or self.first_audible_at is None:
            return None
        return self.first_audible_at - self.speech_ended_at

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event.get("type") == kind]


class SocketCaller:
    """A scripted person on the WebSocket: sends audio in real time and keeps what comes
    back, with arrival times."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, turn: SocketTurn) -> None:
        self.ws = ws
        self.turn = turn
        self.changed = asyncio.Event()
        self.frames: list[tuple[float, float]] = []  # each reply frame: arrival, level (dB)
        self._reader = asyncio.create_task(self._read(), name="ws-client-read")
        self._silence_task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async for message in self.ws:
            now = time.monotonic()
            if message.type == aiohttp.WSMsgType.BINARY:
                self.turn.reply.extend(message.data)
                self.frames.append((now, level_db(message.data)))
                if self.turn.first_audible_at is None and self.frames[-1][1] > AUDIBLE_DB:
                    self.turn.first_audible_at = now
            elif message.type == aiohttp.WSMsgType.TEXT:
                self.turn.events.append((now, json.loads(message.data)))
            self.changed.set()

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def wait_for(self, kind: str, *, within_s: float, after: int = 0) -> dict[str, Any]:
        """The first event of `kind` among the events from index `after` on."""
        deadline = time.monotonic() + within_s
        while True:
            for _, event in self.turn.events[after:]:
                if event.get("type") == kind:
                    return event
            if self._reader.done():
                raise TalkError(f"the socket closed before a {kind!r} event")
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind!r} event within {within_s} s")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                continue

    async def say(self, pcm: bytes, rate: int) -> None:
        """Send `pcm` in real time, 20 ms a message; notes when the last speech went out."""
        step = rate * FRAME_MS // 1000 * 2
        _, speech_end = speech_bounds(pcm, rate)
        start = time.monotonic()
        for i, offset in enumerate(range(0, len(pcm), step)):
            await asyncio.sleep(max(0.0, start + i * FRAME_MS / 1000 - time.monotonic()))
            await self.ws.send_bytes(pcm[offset : offset + step])
            if offset < speech_end <= offset + step:
                self.turn.speech_ended_at = time.monotonic()

    def keep_sending_silence(self, rate: int) -> None:
        """A microphone keeps sending after the person stops; so does this, until closed."""
        self._silence_task = asyncio.create_task(self._silence(rate), name="ws-client-silence")

    async def _silence(self, rate: int) -> None:
        frame = bytes(rate * FRAME_MS // 1000 * 2)
        start = time.monotonic()
        i = 0
        while True:
            i += 1
            await asyncio.sleep(max(0.0, start + i * FRAME_MS / 1000 - time.monotonic()))
            await self.ws.send_bytes(frame)

    async def stop_silence(self) -> None:
        if self._silence_task is not None:
            self._silence_task.cancel()
            await asyncio.gather(self._silence_task, return_exceptions=True)
            self._silence_task = None

    async def aclose(self) -> None:
        for task in (self._silence_task, self._reader):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._silence_task, self._reader) if t is not None),
            return_exceptions=True,
        )


async def take_turn(
    url: str,
    headers: dict[str, str],
    speech: tuple[bytes, int],
    *,
    user_id: str = "ws-cli",
    output_sample_rate: int = 24000,
    reply_within_s: float = 30.0,
    pacing: str = "realtime",
) -> SocketTurn:
    """Connect, say `speech`, and keep what came back until the reply has played."""
    pcm, rate = speech
    turn = SocketTurn(output_sample_rate=output_sample_rate)
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(url, headers=headers, heartbeat=None)
        except aiohttp.ClientError as exc:
            raise TalkError(f"the voice worker at {url} is not reachable: {exc}") from exc
        caller = SocketCaller(ws, turn)
        try:
            await caller.send_json(
                {
                    "type": "start",
                    "user_id": user_id,
                    "input_sample_rate": rate,
                    "output_sample_rate": output_sample_rate,
                    "greeting": False,
                    "pacing": pacing,
                }
            )
            ready = await caller.wait_for("ready", within_s=30)
            if ready.get("type") != "ready":
                raise TalkError(f"the worker refused the conversation: {ready}")
            # The reply can start while the file's trailing silence is still being sent.
            mark = len(turn.events)
            await caller.say(pcm, rate)
            caller.keep_sending_silence(rate)
            await caller.wait_for("audio_start", within_s=reply_within_s, after=mark)
            await caller.wait_for("audio_end", within_s=120, after=mark)
            await caller.wait_for("turn_metrics", within_s=5, after=mark)
            await caller.send_json({"type": "end"})
            await caller.wait_for("ended", within_s=10)
        finally:
            await caller.aclose()
            await ws.close()
    return turn


def describe(turn: SocketTurn, opened_at: float) -> str:
    lines = []
    for at, event in turn.events:
        fields = {k: v for k, v in event.items() if k not in ("type", "t")}
        detail = " ".join(f"{k}={v!r}" for k, v in fields.items())
        lines.append(f"{(at - opened_at) * 1000:8.0f} ms  {event.get('type')}  {detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = turn_parser("arc_voice.ws_client", __doc__)
    parser.add_argument("--url", help="default: ws://ARC_VOICE__HTTP_HOST:PORT/v1/voice")
    parser.add_argument("--user", default="ws-cli")
    parser.add_argument("--output-rate", type=int, default=24000)
    args = parser.parse_args(argv)
    return run_client("ws_client", lambda: _take_turn(args))


def _take_turn(args: argparse.Namespace) -> int:
    speech = read_wav(args.input)
    settings = VoiceSettings()
    headers = api_key_headers(settings)
    options = settings.voice
    url = args.url or f"ws://{options.http_host}:{options.http_port}/v1/voice"
    opened_at = time.monotonic()
    turn = asyncio.run(
        take_turn(
            url,
            headers,
            speech,
            user_id=args.user,
            output_sample_rate=args.output_rate,
            reply_within_s=args.reply_within,
        )
    )
    print(describe(turn, opened_at))
    write_wav(args.output, bytes(turn.reply), turn.output_sample_rate)
    v2v = turn.voice_to_voice_s
    print(
        f"reply written to {args.output}"
        + (
            ""
            if v2v is None
            else f" (voice-to-voice {v2v * 1000:.0f} ms from the end of your speech)"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

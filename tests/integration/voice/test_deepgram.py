"""The Deepgram path, against a stand-in for Deepgram's streaming API on a local socket: it
speaks the real wire protocol (`/v1/listen` websocket, `Authorization: Token`, linear16
audio in, `SpeechStarted` / `Results` JSON out) and recognises with the local Whisper, so the
worker's Deepgram wiring is exercised end to end without the paid service."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import ClientSession, WSMsgType, web
from arc_stack.server import free_port
from arc_voice.caller import resample
from arc_voice.models import VoiceModels
from arc_voice.noise_floor import level_db
from arc_voice.settings import VoiceOptions
from livekit import rtc
from livekit.agents import stt
from pydantic import SecretStr

from tests.fixtures.voice import SpeechSynth

pytestmark = [pytest.mark.integration, pytest.mark.slow]

API_KEY = "dg-test-key"


@dataclass
class DeepgramDouble:
    models: VoiceModels
    requests: list[dict[str, str]] = field(default_factory=list)
    refused: int = 0

    async def listen(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Token {API_KEY}":
            self.refused += 1
            return web.Response(status=401, text='{"err_code":"INVALID_AUTH"}')
        query = dict(request.query)
        self.requests.append(query)
        if query.get("encoding") != "linear16":
            return web.Response(status=400, text='{"err_code":"UNSUPPORTED_ENCODING"}')
        rate = int(query.get("sample_rate", "16000"))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        speech = bytearray()
        silence_s = 0.0
        started = False
        offset_s = 0.0
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                if json.loads(msg.data).get("type") == "CloseStream":
                    break
                continue
            if msg.type != WSMsgType.BINARY:
                continue
            chunk_s = len(msg.data) / 2 / rate
            loud = level_db(msg.data) > -45.0
            if loud and not started:
                started = True
                await ws.send_str(json.dumps({"type": "SpeechStarted", "timestamp": offset_s}))
            if started:
                speech.extend(msg.data)
                silence_s = 0.0 if loud else silence_s + chunk_s
                if silence_s >= 0.4:
                    await ws.send_str(json.dumps(await self._results(bytes(speech), rate)))
                    speech.clear()
                    started = False
            offset_s += chunk_s
        await ws.close()
        return ws

    async def _results(self, pcm: bytes, rate: int) -> dict[str, object]:
        assert self.models.whisper is not None
        samples = np.frombuffer(resample(pcm, rate, 16000), np.int16)
        audio = (samples / 32768.0).astype(np.float32)
        text = await self.models.whisper.transcribe(audio)
        duration = len(pcm) / 2 / rate
        words = text.split()
        step = duration / max(1, len(words))
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": duration,
            "start": 0.0,
            "is_final": True,
            "speech_final": True,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": 0.9,
                        "words": [
                            {
                                "word": w.strip(".,?!").lower(),
                                "punctuated_word": w,
                                "start": i * step,
                                "end": (i + 1) * step,
                                "confidence": 0.9,
                            }
                            for i, w in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {"request_id": str(uuid.uuid4()), "model_info": {"name": "double"}},
        }


@pytest_asyncio.fixture(loop_scope="session")
async def deepgram(voice_models: VoiceModels) -> AsyncIterator[tuple[DeepgramDouble, str]]:
    double = DeepgramDouble(voice_models)
    app = web.Application()
    app.router.add_get("/v1/listen", double.listen)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield double, f"http://127.0.0.1:{port}/v1/listen"
    await runner.cleanup()


async def test_a_deepgram_key_routes_speech_through_deepgram(
    deepgram: tuple[DeepgramDouble, str], voice_models: VoiceModels, speech: SpeechSynth
) -> None:
    double, url = deepgram
    options = VoiceOptions(deepgram_api_key=SecretStr(API_KEY), deepgram_base_url=url)
    assert options.stt_engine == "deepgram"
    pcm, rate = speech.say("What time is it?")
    audio = resample(pcm, rate, 16000)
    quiet = bytes(16000)  # 0.5 s
    samples = np.frombuffer(quiet + audio + quiet * 3, np.int16)
    async with ClientSession() as http:
        recogniser = voice_models.recogniser(options, voice_models.vad, http)
        stream = recogniser.stream()
        finals: list[str] = []
        events: list[stt.SpeechEventType] = []

        async def feed() -> None:
            for i in range(0, len(samples) - 320 + 1, 320):
                frame = samples[i : i + 320]
                stream.push_frame(rtc.AudioFrame(frame.tobytes(), 16000, 1, 320))
                await asyncio.sleep(0.005)

        feeder = asyncio.create_task(feed())
        async with asyncio.timeout(30):
            async for event in stream:
                events.append(event.type)
                if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                    finals.append(event.alternatives[0].text)
                if event.type == stt.SpeechEventType.END_OF_SPEECH:
                    break
        await feeder
        await stream.aclose()
    assert events[0] == stt.SpeechEventType.START_OF_SPEECH
    assert finals and "time is it" in finals[0].lower(), finals
    [query] = double.requests
    assert query["encoding"] == "linear16" and query["language"] == "en-US"
    assert double.refused == 0

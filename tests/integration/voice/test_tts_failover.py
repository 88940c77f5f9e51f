"""The voice worker's TTS plugin against two real TTS replicas (`python -m arc_tts`): the one
speaking a unit is SIGKILLed mid-unit, and the unit is spoken again by the other, the audio
resuming within 2 s, instead of the answer stopping at the stream's 10 s idle timeout."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from arc_common.streaming import StreamingClient
from arc_voice import metrics
from arc_voice.plugins.tts import NatsTTS, TtsOptions
from livekit.agents import APIConnectOptions
from nats.aio.client import Client

from tests.fixtures.tts import TtsProcess

pytestmark = pytest.mark.integration

NO_RETRY = APIConnectOptions(max_retry=0, retry_interval=0.0, timeout=30.0)
UNIT = " ".join(
    f"Sentence {i} of a long answer keeps the synthesizer busy for a while." for i in range(8)
)


async def _speaking(replicas: list[TtsProcess]) -> TtsProcess:
    async with httpx.AsyncClient(timeout=5.0) as http:
        for replica in replicas:
            health = (await http.get(f"{replica.http_url}/healthz")).json()
            if health["active_streams"] > 0:
                return replica
    raise AssertionError("no replica is speaking the unit")


async def test_a_tts_replica_killed_mid_unit_is_replaced_by_another(
    nc: Client, subject_prefix: str, tts_subprocess: Callable[..., Awaitable[TtsProcess]]
) -> None:
    replicas = list(
        await asyncio.gather(tts_subprocess(subject_prefix), tts_subprocess(subject_prefix))
    )
    retries_before = metrics.TTS_RETRIES._value.get()
    async with StreamingClient(nc) as client:
        plugin = NatsTTS(client, TtsOptions(session_id="s-failover", subject_prefix=subject_prefix))
        stream = plugin.stream(conn_options=NO_RETRY)
        stream.push_text(UNIT)
        stream.end_input()
        arrivals: list[float] = []
        killed_at: float | None = None
        samples = 0
        async for event in stream:
            arrivals.append(time.monotonic())
            samples += event.frame.samples_per_channel
            if killed_at is None:
                victim = await _speaking(replicas)
                await asyncio.to_thread(victim.kill)
                killed_at = time.monotonic()
        await stream.aclose()
    assert killed_at is not None
    assert metrics.TTS_RETRIES._value.get() == retries_before + 1
    # Frames already on their way still arrive after the kill; the stall is the longest
    # silence between frames from then on: the dead replica noticed, the unit asked again.
    after = [killed_at, *(at for at in arrivals if at > killed_at)]
    assert len(after) > 1, "no audio after the kill"
    stall = max(b - a for a, b in itertools.pairwise(after))
    print(f"\ntts replica SIGKILL mid-unit: longest silence after the kill {stall:.2f} s")
    assert stall < 2.0, stall
    # The unit was spoken whole by the survivor: ~8 sentences, several seconds at 24 kHz.
    assert samples / 24000 > 8.0, samples / 24000

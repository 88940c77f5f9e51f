"""Routing by resident voice, against two real TTS workers (`python -m arc_tts`) on a real
NATS server: units in a voice one worker has loaded all go to that worker (through the queue
group, about half would land on the other, which would load the voice first); when that
worker dies, the next unit goes through the queue group to the survivor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from arc_common.streaming import StreamingClient
from arc_common.subjects import TTS_SERVICE
from arc_stack.voices import ask, tts_instances
from arc_voice import metrics
from arc_voice.plugins.tts import NatsTTS, TtsOptions
from arc_voice.tts_routes import TtsRoutes
from livekit.agents import APIConnectOptions
from nats.aio.client import Client
from nats.micro.service import ServiceVerb, control_subject

from tests.fixtures.tts import EXTRA_VOICE, TtsProcess

pytestmark = pytest.mark.integration

NO_RETRY = APIConnectOptions(max_retry=0, retry_interval=0.0, timeout=30.0)
UNITS = 6


async def _requests(nc: Client, instance: str) -> int:
    """How many `tts.request`s the worker has taken, by its own `$SRV.STATS`."""
    subject = control_subject(ServiceVerb.STATS, name=TTS_SERVICE, id=instance)
    stats = json.loads((await nc.request(subject, b"", timeout=5)).data)
    [endpoint] = stats["endpoints"]
    return int(endpoint["num_requests"])


async def _speak(plugin: NatsTTS, text: str) -> float:
    """Seconds of audio the plugin got for `text`."""
    stream = plugin.stream(conn_options=NO_RETRY)
    stream.push_text(text)
    stream.end_input()
    samples = 0
    async for event in stream:
        samples += event.frame.samples_per_channel
    await stream.aclose()
    return samples / 24000


async def test_units_go_to_the_worker_that_has_their_voice_loaded(
    nc: Client,
    subject_prefix: str,
    tts_voice_dir: Path,
    tts_subprocess: Callable[..., Awaitable[TtsProcess]],
) -> None:
    env = {"ARC_TTS__VOICE_DIRS": json.dumps([str(tts_voice_dir)])}
    processes = await asyncio.gather(
        tts_subprocess(subject_prefix, **env), tts_subprocess(subject_prefix, **env)
    )
    holder, other = await tts_instances(nc, subject_prefix)
    loaded = await ask(nc, holder, "load", EXTRA_VOICE, subject_prefix=subject_prefix)
    assert loaded.error is None and EXTRA_VOICE in (loaded.voices_resident or []), loaded

    routes = TtsRoutes(nc, subject_prefix=subject_prefix, refresh_s=2.0)
    await routes.refresh()
    assert len(routes.instances) == 2, routes.instances
    direct = routes.subject_for(EXTRA_VOICE)
    assert direct is not None and direct.endswith(f".{holder}"), (direct, holder)
    assert routes.subject_for(None) is None  # the default voice: every worker has it

    before = {i: await _requests(nc, i) for i in (holder, other)}
    routed_before = metrics.TTS_ROUTED.labels(route="resident")._value.get()
    async with StreamingClient(nc) as client:
        plugin = NatsTTS(
            client,
            TtsOptions(session_id="s-routes", voice=EXTRA_VOICE, subject_prefix=subject_prefix),
            routes=routes,
        )
        for n in range(UNITS):
            assert await _speak(plugin, f"Unit number {n} in the loaded voice.") > 0.5

        after = {i: await _requests(nc, i) for i in (holder, other)}
        assert after[holder] - before[holder] == UNITS, (before, after)
        assert after[other] == before[other], (before, after)
        assert metrics.TTS_ROUTED.labels(route="resident")._value.get() == routed_before + UNITS
        # The other worker never had to load the voice.
        listed = await ask(nc, other, "list", subject_prefix=subject_prefix)
        assert EXTRA_VOICE not in (listed.voices_resident or []), listed

        # The holder dies; the routes have not heard yet. The unit sent to it finds no one,
        # and the queue group gives it to the survivor, which loads the voice and speaks.
        [victim] = [p for p in processes if EXTRA_VOICE in await _resident(p)]
        await asyncio.to_thread(victim.kill)
        retries = metrics.TTS_RETRIES._value.get()
        assert await _speak(plugin, "Still here after the worker died.") > 0.5
        assert metrics.TTS_RETRIES._value.get() == retries + 1
        assert routes.subject_for(EXTRA_VOICE) is None  # not asked again until it answers
        listed = await ask(nc, other, "list", subject_prefix=subject_prefix)
        assert EXTRA_VOICE in (listed.voices_resident or []), listed


async def _resident(process: TtsProcess) -> list[str]:
    """The voices a worker process has loaded, as its /healthz says."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        health = (await http.get(f"{process.http_url}/healthz")).json()
    return list(health["resident_voices"])

"""A scripted person in a room: publishes a microphone fed from PCM (speech, then silence, in
real time) and records the agent's reply track with arrival times.

Used by `python -m arc_voice.talk`, the end-to-end tests and the latency benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from livekit import api, rtc

from arc_voice.noise_floor import level_db

MIC_RATE = 48000
FRAME_MS = 20
# Agent audio quieter than this is silence (the decoder keeps producing frames after it stops).
AUDIBLE_DB = -50.0


def participant_token(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    identity: str,
    ttl_s: int = 3600,
    agent_name: str | None = None,
) -> str:
    """A person's token: one room, their microphone and data (typed messages), nothing else
    (no camera or screen, no room administration, no changing their own metadata). With
    `agent_name`, joining a room that is new to the server dispatches that agent to it
    (LiveKit dispatch, docs/dispatch.md)."""
    token = api.AccessToken(api_key, api_secret)
    if agent_name is not None:
        token = token.with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=agent_name)])
        )
    return (
        token.with_identity(identity)
        .with_name(identity)
        .with_grants(
            api.VideoGrants(
                room_join=True,
                room=room,
                can_publish=True,
                can_publish_sources=["microphone"],
                can_publish_data=True,
                can_subscribe=True,
                can_update_own_metadata=False,
            )
        )
        .with_ttl(datetime.timedelta(seconds=ttl_s))
        .to_jwt()
    )


def resample(pcm: bytes, rate: int, target: int = MIC_RATE) -> bytes:
    if rate == target:
        return pcm
    resampler = rtc.AudioResampler(rate, target, quality=rtc.AudioResamplerQuality.HIGH)
    frame = rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2)
    out = [*resampler.push(frame), *resampler.flush()]
    return b"".join(bytes(f.data) for f in out)


@dataclass
class Heard:
    at: float
    level: float
    pcm: bytes


@dataclass
class Utterance:
    started_at: float
    ended_at: float  # the last frame of the clip went out (trailing silence included)
    speech_started_at: float  # the frame holding the first audible speech went out
    speech_ended_at: float  # the frame holding the last audible speech went out


def speech_bounds(pcm: bytes, rate: int, frame_ms: int = FRAME_MS) -> tuple[int, int]:
    """Byte offsets of the first frame of speech and just past the last one in `pcm`: a
    recording's leading and trailing silence (or room tone) is not part of what the person
    said, and a latency measured from the end of the file would hide it. Speech is a frame
    within 40 dB of the clip's loudest frame and above the level that counts as audible."""
    step = rate * frame_ms // 1000 * 2
    levels = [level_db(pcm[i : i + step]) for i in range(0, len(pcm), step)]
    if not levels:
        return 0, 0
    floor = max(AUDIBLE_DB, max(levels) - 40.0)
    loud = [i for i, level in enumerate(levels) if level > floor]
    if not loud:
        return 0, 0
    return loud[0] * step, min(len(pcm), (loud[-1] + 1) * step)


@dataclass
class RoomCaller:
    url: str
    token: str
    agent_track: str | None = None
    room: rtc.Room = field(default_factory=rtc.Room)
    heard: list[Heard] = field(default_factory=list)
    heard_rate: int = MIC_RATE
    # A real microphone never sends digital zeros: between (and under) the person's words it
    # carries the room's noise. Audio models judge a pause differently on exact silence (the
    # end-of-turn model calls three times as many finished sentences unfinished), so the
    # scripted person's silence is a faint noise at this level (dBFS); None: exact zeros.
    noise_floor_db: float | None = -60.0

    def __post_init__(self) -> None:
        self._pending: deque[tuple[bytes, tuple[int, int], asyncio.Future[Utterance] | None]] = (
            deque()
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._source = rtc.AudioSource(MIC_RATE, 1, queue_size_ms=200)
        self._subscribed = asyncio.Event()
        self._new_audio = asyncio.Event()

    async def connect(self) -> None:
        self.room.on("track_subscribed", self._on_track)
        await self.room.connect(self.url, self.token, rtc.RoomOptions(auto_subscribe=True))
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self._source)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        self._start(self._pump(), "mic")

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()

    def _start(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_for_agent(self, within_s: float = 30.0) -> None:
        await asyncio.wait_for(self._subscribed.wait(), within_s)

    def _on_track(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        if self.agent_track is not None and publication.name != self.agent_track:
            return
        self._subscribed.set()
        self._start(self._listen(track), f"listen:{publication.sid}")

    async def _listen(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=self.heard_rate, num_channels=1)
        try:
            async for event in stream:
                pcm = bytes(event.frame.data)
                self.heard.append(Heard(time.monotonic(), level_db(pcm), pcm))
                self._new_audio.set()
        finally:
            await stream.aclose()

    async def _pump(self) -> None:
        """The microphone: queued speech, else silence, one 20 ms frame per 20 ms."""
        samples = MIC_RATE * FRAME_MS // 1000
        noise = _room_noise(samples, self.noise_floor_db)
        silence = bytes(samples * 2)
        next_at = time.monotonic()
        speech = b""
        offset = 0
        bounds = (0, 0)
        current: asyncio.Future[Utterance] | None = None
        started_at = 0.0
        marks: list[float] = []  # when the first and the last frame of speech went out
        next_index = 0
        while True:
            if offset >= len(speech) and self._pending:
                speech, bounds, current = self._pending.popleft()
                offset = 0
                started_at = time.monotonic()
                marks = []
            if offset < len(speech):
                chunk = speech[offset : offset + samples * 2].ljust(samples * 2, b"\0")
                offset += samples * 2
            else:
                chunk = silence
            if noise is not None:
                chunk = _mixed(chunk, noise[(next_index := (next_index + 1) % len(noise))])
            await self._source.capture_frame(rtc.AudioFrame(chunk, MIC_RATE, 1, samples))
            # When this frame leaves for the room: after everything queued before it. A stall
            # of this loop (the machine is busy) is caught up by sending frames back to back,
            # and the source then stays that far ahead for good, so "captured" is not "sent".
            out_at = time.monotonic() + self._source.queued_duration
            # The first mark once the frame holding speech's first byte is out, the second once
            # the frame holding its last byte is.
            if current is not None and not marks and offset > bounds[0]:
                marks.append(out_at)
            if current is not None and len(marks) == 1 and offset >= bounds[1]:
                marks.append(out_at)
            if current is not None and offset >= len(speech):
                if not current.done():
                    now = out_at
                    marks += [now] * (2 - len(marks))
                    current.set_result(Utterance(started_at, now, marks[0], marks[1]))
                current = None
            next_at += FRAME_MS / 1000
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def say(self, pcm: bytes, rate: int, *, wait: bool = True) -> asyncio.Future[Utterance]:
        """Queue speech; with `wait`, return once its last frame has gone out."""
        done: asyncio.Future[Utterance] = asyncio.get_running_loop().create_future()
        mic = resample(pcm, rate)
        self._pending.append((mic, speech_bounds(mic, MIC_RATE), done))
        if wait:
            await done
        return done

    def first_audible_after(self, after: float) -> float | None:
        for heard in self.heard:
            if heard.at >= after and heard.level > AUDIBLE_DB:
                return heard.at
        return None

    def audible_between(self, start: float, end: float) -> list[float]:
        """When each audible frame of the agent's arrived, strictly between the two times."""
        return [h.at for h in self.heard if start < h.at < end and h.level > AUDIBLE_DB]

    def last_audible(self) -> float | None:
        for heard in reversed(self.heard):
            if heard.level > AUDIBLE_DB:
                return heard.at
        return None

    async def wait_audible(self, after: float, within_s: float) -> float:
        """When the agent's audio first became audible after `after`."""
        deadline = time.monotonic() + within_s
        while True:
            found = self.first_audible_after(after)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the agent said nothing audible")
            self._new_audio.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_audio.wait(), timeout=min(left, 0.5))

    async def wait_quiet(self, quiet_s: float, within_s: float) -> float:
        """Wait until the agent has been silent for `quiet_s`; returns its last audible time."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            last = self.last_audible() or 0.0
            if time.monotonic() - last >= quiet_s:
                return last
            await asyncio.sleep(0.05)
        raise TimeoutError("the agent kept talking")

    def audio_between(self, start: float, end: float) -> bytes:
        return b"".join(h.pcm for h in self.heard if start <= h.at <= end)


def _room_noise(samples: int, level_db: float | None) -> list[npt.NDArray[np.int32]] | None:
    """A second of white noise at `level_db` RMS, as 20 ms frames to add under the mic."""
    if level_db is None:
        return None
    rng = np.random.default_rng(20261202)
    amplitude = 32768.0 * 10 ** (level_db / 20)
    noise = rng.normal(0.0, amplitude, samples * 50).astype(np.int32)
    return [noise[i * samples : (i + 1) * samples] for i in range(50)]


def _mixed(chunk: bytes, noise: npt.NDArray[np.int32]) -> bytes:
    mixed = np.frombuffer(chunk, np.int16).astype(np.int32) + noise
    out: bytes = np.clip(mixed, -32768, 32767).astype(np.int16).tobytes()
    return out


def pcm_seconds(pcm: bytes, rate: int) -> float:
    return len(pcm) / 2 / rate


def rms_db(pcm: bytes) -> float:
    return level_db(np.frombuffer(pcm, dtype=np.int16).tobytes())

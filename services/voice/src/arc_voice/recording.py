"""Per-session recordings (docs/recording.md): the person's and the agent's voices in one
stereo OGG/Opus file (channel 0 the person, channel 1 the agent) on one timeline that starts
when the session does, registered in `agents.recordings`, and deleted after the retention.

The file is written as the session goes, not at its end: the encoder thread encodes every
`FLUSH_INTERVAL_S` what is settled (everything older than `HOLD_S`, which waits for audio
that reports its time late), and the OGG muxer writes each page to the file at once. A
SIGKILL of the worker therefore leaves a playable file that misses about the last second
(tests/e2e/voice/test_recording.py kills one mid-answer). Opus in OGG needs no trailer: a
reader takes the length from the last page.

Where the audio comes from: the person's frames as they arrive from the transport, the
agent's at the moment they go out to the person (the WebSocket sender's play clock, or the
room's audio source with what is already queued in it), so the file holds what each side
heard, when they heard it, and an interrupted answer stops where it was cut.

Beside the file, `<name>.marks.jsonl` places each turn on its timeline (when the person began
to speak, when the answer's first audio went out), written by the same thread as the audio:
the sessions console's player highlights the transcript line being heard from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import av
import numpy as np
from arc_common.periodic import Periodic
from livekit import rtc
from livekit.agents.voice import io
from psycopg_pool import AsyncConnectionPool

from arc_voice.barge_in import room_output

log = logging.getLogger(__name__)

MIME_TYPE = "audio/ogg"
SUFFIX = ".ogg"
MARKS_SUFFIX = ".marks.jsonl"
# Opus takes 8, 12, 16, 24 or 48 kHz; the TTS speaks at 24 kHz by default, and the person's
# 16 kHz (the VAD's rate) is resampled up to it.
SAMPLE_RATE = 24_000
# Stereo voice: ~16 kb/s a channel is transparent enough for listening back to a call.
BIT_RATE = 32_000
# libopus' complexity (0-10, 10 its default): 5 halves the encoder's CPU for a loss nobody
# hears in speech (tests/bench/recording.py measures it).
COMPLEXITY = 5
# How often settled audio is encoded and written, and how long audio may report its time
# late before its place in the file is written (silence then, and the late audio dropped).
FLUSH_INTERVAL_S = 0.5
HOLD_S = 0.3
# OGG page length: the muxer writes a page once it holds this much audio.
PAGE_DURATION_US = 200_000
# A frame that starts this close to where its run left off continues the run (arrival
# jitter); further away, the run starts again where the frame says.
RESYNC_TOLERANCE_S = 0.1
# While recording, the row's duration is brought up to date this often, so a session that
# never ended (a crashed worker) still says roughly how long its file is.
PROGRESS_INTERVAL_S = 5.0
RETENTION_INTERVAL_S = 3600.0

PERSON, AGENT = 0, 1


def marks_path(path: Path) -> Path:
    """Where the transcript marks of the recording at `path` are kept: beside it."""
    return path.with_suffix(MARKS_SUFFIX)


@dataclass
class _Mark:
    turn_id: str
    role: str
    at: float


@dataclass
class _Audio:
    channel: int
    at: float  # monotonic time at which the frame's first sample was heard
    frame: rtc.AudioFrame


@dataclass
class _Close:
    at: float


@dataclass
class _Unheard:
    channel: int
    at: float  # monotonic: audio placed from here on was dropped before it played


class _Channel:
    """One voice on the file's timeline: runs of audio placed where they were heard."""

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self.placed: list[tuple[int, np.ndarray[Any, np.dtype[np.float32]]]] = []
        self._resampler: rtc.AudioResampler | None = None
        self._source_rate: int | None = None
        # The open run: where it started (seconds on the timeline), how much input it has
        # had (seconds) and where its next output sample goes (the resampler lags its input).
        self._run_start: float | None = None
        self._run_in = 0.0
        self._next = 0
        self.dropped = 0

    def push(self, start_s: float, frame: rtc.AudioFrame) -> None:
        expected = None if self._run_start is None else self._run_start + self._run_in
        if (
            expected is None
            or abs(start_s - expected) > RESYNC_TOLERANCE_S
            or frame.sample_rate != self._source_rate
        ):
            self.end_run()
            self._run_start, self._run_in = start_s, 0.0
            self._next = round(start_s * self._rate)
            self._source_rate = frame.sample_rate
            if frame.sample_rate != self._rate:
                self._resampler = rtc.AudioResampler(frame.sample_rate, self._rate, num_channels=1)
        self._run_in += frame.samples_per_channel / frame.sample_rate
        mono = _mono(frame)
        if self._resampler is None:
            self._place([mono])
        else:
            self._place(self._resampler.push(mono))

    def unheard_from(self, start: int) -> None:
        """Take out what was placed from sample `start` on: it never played. What is already
        written stays (it is older than the hold, so it had played)."""
        self.end_run()
        kept: list[tuple[int, np.ndarray[Any, np.dtype[np.float32]]]] = []
        for pos, samples in self.placed:
            if pos < start:
                kept.append((pos, samples[: start - pos]))
        self.placed = kept

    def end_run(self) -> None:
        if self._resampler is not None:
            self._place(self._resampler.flush())
            self._resampler = None
        self._run_start = None
        self._source_rate = None

    def _place(self, frames: list[rtc.AudioFrame]) -> None:
        parts = [np.frombuffer(f.data, dtype=np.int16) for f in frames if f.samples_per_channel]
        if not parts:
            return
        samples = np.concatenate(parts).astype(np.float32) / 32768.0
        self.placed.append((self._next, samples))
        self._next += len(samples)

    def take(self, start: int, end: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The channel over samples [start, end), silent where nothing was heard."""
        block = np.zeros(end - start, dtype=np.float32)
        keep: list[tuple[int, np.ndarray[Any, np.dtype[np.float32]]]] = []
        for pos, samples in self.placed:
            stop = pos + len(samples)
            if pos >= end:
                keep.append((pos, samples))
                continue
            if pos < start:
                # Heard after its place was written (it reported its time too late).
                self.dropped += min(stop, start) - pos
            lo, hi = max(pos, start), min(stop, end)
            if hi > lo:
                block[lo - start : hi - start] += samples[lo - pos : hi - pos]
            if stop > end:
                keep.append((end, samples[end - pos :]))
        self.placed = keep
        return block


def _mono(frame: rtc.AudioFrame) -> rtc.AudioFrame:
    if frame.num_channels == 1:
        return frame
    data = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, frame.num_channels)
    mono = data.mean(axis=1).astype(np.int16)
    return rtc.AudioFrame(mono.tobytes(), frame.sample_rate, 1, len(mono))


class RecordingWriter:
    """A stereo OGG/Opus file written by its own thread as the audio comes. `person` and
    `agent` only queue (safe from the event loop); the encoder never runs on the loop."""

    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int = SAMPLE_RATE,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        hold_s: float = HOLD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._rate = sample_rate
        self._interval = flush_interval_s
        self._hold = hold_s
        self._clock = clock
        self._queue: queue.SimpleQueue[_Audio | _Mark | _Unheard | _Close] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None
        # Samples written to the file so far (read from the loop: one int, no lock needed).
        self.written = 0
        self.failed = False
        # CPU seconds the encoder thread spent (encoding and writing), for the benchmark.
        self.cpu_s = 0.0

    @property
    def duration_s(self) -> float:
        return self.written / self._rate

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = self._clock()
        self._thread = threading.Thread(
            target=self._run, name=f"recording:{self.path.name}", daemon=True
        )
        self._thread.start()

    def person(self, frame: rtc.AudioFrame, at: float | None = None) -> None:
        """The person's audio, heard at `at` (monotonic; default: it has just arrived)."""
        self._put(PERSON, frame, self._clock() - frame.duration if at is None else at)

    def agent(self, frame: rtc.AudioFrame, at: float) -> None:
        """The agent's audio, played to the person from `at` (monotonic)."""
        self._put(AGENT, frame, at)

    def agent_unheard(self, at: float) -> None:
        """The agent's audio placed from `at` (monotonic) on was dropped before it played
        (a barge-in dropped the room's queue): it leaves the file."""
        if self._thread is not None and not self.failed:
            self._queue.put(_Unheard(AGENT, at))

    def mark(self, turn_id: str, role: str, at: float) -> None:
        """A transcript line of `role` ("user" or "assistant") of a turn began at `at`
        (monotonic): the person started speaking, or the answer's first audio went out."""
        if self._thread is not None and not self.failed:
            self._queue.put(_Mark(turn_id, role, at))

    def _put(self, channel: int, frame: rtc.AudioFrame, at: float) -> None:
        if self._thread is not None and not self.failed:
            self._queue.put(_Audio(channel, at, frame))

    async def aclose(self) -> float:
        """End the file where the session ends (now); its duration in seconds."""
        if self._thread is None:
            return 0.0
        self._queue.put(_Close(self._clock()))
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        return self.duration_s

    def _run(self) -> None:
        assert self.started_at is not None
        t0 = self.started_at
        channels = [_Channel(self._rate), _Channel(self._rate)]
        cpu_start = time.thread_time()
        try:
            with av.open(
                str(self.path),
                mode="w",
                format="ogg",
                # Each page goes to the file as soon as it is made: a crash loses only what
                # was not yet encoded, never a written page waiting in a buffer.
                container_options={
                    "flush_packets": "1",
                    "page_duration": str(PAGE_DURATION_US),
                },
            ) as container:
                stream = container.add_stream("libopus", rate=self._rate, layout="stereo")
                stream.bit_rate = BIT_RATE
                stream.codec_context.options = {"compression_level": str(COMPLEXITY)}

                def encode(until: float) -> None:
                    end = round(until * self._rate)
                    if end <= self.written:
                        return
                    block = np.stack([c.take(self.written, end) for c in channels])
                    frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                    frame.sample_rate = self._rate
                    for packet in stream.encode(frame):
                        container.mux(packet)
                    self.written = end

                next_flush = self._clock() + self._interval
                while True:
                    try:
                        item = self._queue.get(timeout=max(0.0, next_flush - self._clock()))
                    except queue.Empty:
                        item = None
                    if isinstance(item, _Close):
                        for channel in channels:
                            channel.end_run()
                        encode(item.at - t0)
                        break
                    if isinstance(item, _Mark):
                        self._write_mark(item, t0)
                    elif isinstance(item, _Unheard):
                        channels[item.channel].unheard_from(round((item.at - t0) * self._rate))
                    elif item is not None:
                        channels[item.channel].push(item.at - t0, item.frame)
                    if self._clock() >= next_flush:
                        encode(self._clock() - t0 - self._hold)
                        self.cpu_s = time.thread_time() - cpu_start
                        # From now, not from the last due time: a thread that was held up
                        # does not run a string of flushes to catch up.
                        next_flush = self._clock() + self._interval
                for packet in stream.encode(None):
                    container.mux(packet)
        except Exception:
            self.failed = True
            log.exception("recording %s failed; the file ends where it stopped", self.path)
        finally:
            self.cpu_s = time.thread_time() - cpu_start
            dropped = [c.dropped for c in channels]
            if any(dropped):
                log.info(
                    "recording %s: late audio dropped (samples per channel) %s", self.path, dropped
                )

    def _write_mark(self, mark: _Mark, t0: float) -> None:
        line = {
            "turn_id": mark.turn_id,
            "role": mark.role,
            "offset_ms": max(0, round((mark.at - t0) * 1000)),
        }
        # Appended and closed at once, like the audio's pages: a crash keeps every mark made.
        with marks_path(self.path).open("a", encoding="utf-8") as marks:
            marks.write(json.dumps(line) + "\n")


def read_marks(path: Path) -> dict[tuple[str, str], int]:
    """(turn id, role) → offset in ms of the recording at `path`, from its marks; empty when
    it has none (recorded before marks, or nothing said). A torn last line (a crash mid-write)
    or a foreign line is skipped."""
    try:
        text = marks_path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    marks: dict[tuple[str, str], int] = {}
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
            key = (str(line["turn_id"]), str(line["role"]))
            offset = int(line["offset_ms"])
        except (ValueError, KeyError, TypeError):
            continue
        # A turn's first mark stands: the person began speaking once.
        marks.setdefault(key, offset)
    return marks


def recording_path(directory: Path, session_id: str, now: datetime.datetime | None = None) -> Path:
    """`<directory>/<YYYY-MM-DD>/<session_id>-<HHMMSS>.ogg`, absolute: a WebSocket client may
    reuse a session id, and a second conversation must not overwrite the first's file."""
    now = now or datetime.datetime.now(datetime.UTC)
    name = f"{session_id}-{now:%H%M%S%f}{SUFFIX}"
    return directory.resolve() / f"{now:%Y-%m-%d}" / name


class SessionRecording:
    """One session's file and its `agents.recordings` row: the row is written when the file
    opens (duration null), its duration kept up to date while recording and set at the end."""

    def __init__(self, writer: RecordingWriter, rows: RecordingRows | None, session_id: str):
        self.writer = writer
        self._rows = rows
        self.session_id = session_id
        self.row_id: int | None = None
        self._progress: asyncio.Task[None] | None = None

    @property
    def uri(self) -> str:
        return self.writer.path.as_uri()

    async def start(self) -> None:
        self.writer.start()
        if self._rows is not None:
            self.row_id = await self._rows.register(self.session_id, self.uri, MIME_TYPE)
            if self.row_id is not None:
                self._progress = asyncio.create_task(
                    self._keep_duration(self.row_id), name=f"recording-progress:{self.session_id}"
                )

    async def _keep_duration(self, row_id: int) -> None:
        assert self._rows is not None
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            await self._rows.set_duration(row_id, round(self.writer.duration_s * 1000))

    def person(self, frame: rtc.AudioFrame, at: float | None = None) -> None:
        self.writer.person(frame, at)

    def agent(self, frame: rtc.AudioFrame, at: float) -> None:
        self.writer.agent(frame, at)

    def agent_unheard(self, at: float) -> None:
        self.writer.agent_unheard(at)

    def mark(self, turn_id: str, role: str, at: float) -> None:
        self.writer.mark(turn_id, role, at)

    async def aclose(self) -> float:
        if self._progress is not None:
            self._progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._progress
            self._progress = None
        seconds = await self.writer.aclose()
        if self._rows is not None and self.row_id is not None:
            await self._rows.set_duration(self.row_id, round(seconds * 1000))
        return seconds


class RecordingRows:
    """`agents.recordings`, as the voice worker (its only writer) uses it. A database outage
    costs the row, never the conversation or the file (the retention sweep still finds it)."""

    def __init__(self, pool: AsyncConnectionPool[Any] | None) -> None:
        self._pool = pool
        self.failures = 0

    async def register(self, session_id: str, uri: str, mime_type: str) -> int | None:
        if self._pool is None:
            return None
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    "INSERT INTO agents.recordings (session_id, turn_id, uri, mime_type) "
                    "VALUES (%s, NULL, %s, %s) RETURNING id",
                    (session_id, uri, mime_type),
                )
                row = await cur.fetchone()
        except Exception:
            self.failures += 1
            log.exception("could not register the recording %s of session %s", uri, session_id)
            return None
        return None if row is None else int(row[0])

    async def set_duration(self, row_id: int, duration_ms: int) -> None:
        if self._pool is None:
            return
        try:
            async with self._pool.connection() as conn:
                await conn.execute(
                    "UPDATE agents.recordings SET duration_ms = %s WHERE id = %s",
                    (duration_ms, row_id),
                )
        except Exception:
            self.failures += 1
            log.exception("could not store the duration of recording %s", row_id)


# --- taps: where each transport's audio is copied into the recording ---------------------


class RecordedInput(io.AudioInput):
    """Passes the person's microphone through, copying each frame into the recording."""

    def __init__(self, source: io.AudioInput, recording: SessionRecording) -> None:
        super().__init__(label="Recording", source=source)
        self._inner = source
        self._recording = recording

    async def __anext__(self) -> rtc.AudioFrame:
        frame = await self._inner.__anext__()
        self._recording.person(frame)
        return frame


class RecordedSource:
    """Stands in for a room output's `rtc.AudioSource`: a frame captured into the source is
    heard once what is queued ahead of it has played."""

    def __init__(self, source: rtc.AudioSource, recording: SessionRecording) -> None:
        self._source = source
        self._recording = recording

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        self._recording.agent(frame, time.monotonic() + self._source.queued_duration)
        await self._source.capture_frame(frame)

    @property
    def queued_duration(self) -> float:
        return self._source.queued_duration

    def clear_queue(self) -> None:
        # What was queued never plays (a barge-in, or the framework dropping a paused queue).
        self._recording.agent_unheard(time.monotonic())
        self._source.clear_queue()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def tap_room_output(output: io.AudioOutput | None, recording: SessionRecording) -> bool:
    """Record what LiveKit's room output sends. The framework has no public hook at the
    point where audio leaves for the room, so this wraps its private source; when that
    moves, the recording keeps only the person (and says so, loudly)."""
    sink = room_output(output)
    if sink is None or not isinstance(source := sink._audio_source, rtc.AudioSource):
        log.error(
            "the room's audio output has no rtc.AudioSource at `_audio_source` any more "
            "(livekit-agents changed): recording %s without the agent's voice",
            recording.uri,
        )
        return False
    sink._audio_source = RecordedSource(source, recording)
    return True


# --- retention ---------------------------------------------------------------------------


def expired_files(directory: Path, cutoff: float) -> list[Path]:
    """Recording files under `directory` last written before `cutoff` (a Unix time)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob(f"*{SUFFIX}") if p.stat().st_mtime < cutoff)


def remove_recording(path: Path) -> bool:
    """Delete one recording file and its marks; whether the file was there."""
    with contextlib.suppress(FileNotFoundError):
        marks_path(path).unlink()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def remove_files(paths: list[Path], directory: Path) -> int:
    """Delete `paths` (only those inside `directory`) and the day folders they leave empty."""
    root = directory.resolve()
    removed = 0
    for path in paths:
        if not path.resolve().is_relative_to(root):
            log.warning("not deleting %s: outside the recordings folder %s", path, root)
            continue
        removed += remove_recording(path)
        parent = path.parent
        if parent.resolve() != root:
            with contextlib.suppress(OSError):
                parent.rmdir()  # only when empty
    return removed


async def remove_expired(
    directory: Path,
    retention_days: float,
    pool: AsyncConnectionPool[Any] | None,
    *,
    now: float | None = None,
) -> tuple[int, int]:
    """Delete recordings older than `retention_days` (0: none): the rows created before the
    cutoff and their files, then any file in the folder last written before it (a file whose
    row was never written: Postgres was down). Returns (files, rows) deleted."""
    if retention_days <= 0:
        return 0, 0
    cutoff = (now if now is not None else time.time()) - retention_days * 86_400
    root = await asyncio.to_thread(directory.resolve)
    rows = 0
    files: list[Path] = []
    if pool is not None:
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "DELETE FROM agents.recordings WHERE created_at < to_timestamp(%s) "
                    "AND uri LIKE %s RETURNING uri",
                    (cutoff, _like_prefix(root.as_uri() + "/")),
                )
                uris = [str(uri) for (uri,) in await cur.fetchall()]
            rows = len(uris)
            files = [Path(unquote(urlsplit(uri).path)) for uri in uris]
        except Exception:
            log.exception("could not delete expired recording rows; files only this time")
    files += await asyncio.to_thread(expired_files, root, cutoff)
    removed = await asyncio.to_thread(remove_files, sorted(set(files)), root)
    if removed or rows:
        log.info("retention: deleted %d recording files and %d rows", removed, rows)
    return removed, rows


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching strings that start with `text` (its own % and _ literal)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class RetentionSweeper:
    """Deletes expired recordings at start and every `interval_s`, until closed."""

    def __init__(
        self,
        directory: Path,
        retention_days: float,
        pool: AsyncConnectionPool[Any] | None,
        *,
        interval_s: float = RETENTION_INTERVAL_S,
    ) -> None:
        self._directory = directory
        self._days = retention_days
        self._pool = pool
        self._sweeps = Periodic(
            self._sweep,
            interval_s,
            name="recording-retention",
            log=log,
            failure="recording retention sweep failed; trying again later",
        )

    def start(self) -> None:
        if self._days > 0:
            self._sweeps.start()

    async def _sweep(self) -> None:
        await remove_expired(self._directory, self._days, self._pool)

    async def aclose(self) -> None:
        await self._sweeps.aclose()

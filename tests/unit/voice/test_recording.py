"""The recording writer on synthetic voices (no mesh): both channels land where they were
heard, the file is as long as the session, a SIGKILL leaves a playable file, and the
retention sweep deletes what is old and only that."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from arc_voice.recording import (
    MIME_TYPE,
    SAMPLE_RATE,
    RecordingWriter,
    SessionRecording,
    expired_files,
    marks_path,
    read_marks,
    recording_path,
    remove_expired,
)
from arc_voice.room_agent import room_records
from livekit import rtc

from tests.fixtures.recordings import decode

RATE_IN = 16_000  # the person's frames, as the VAD hears them
RATE_OUT = 24_000  # the agent's, as the TTS speaks


def tone(seconds: float, rate: int, hz: float, frame_ms: int = 20) -> list[rtc.AudioFrame]:
    n = rate * frame_ms // 1000
    t = np.arange(round(seconds * rate)) / rate
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return [
        rtc.AudioFrame(pcm[i : i + n].tobytes(), rate, 1, len(pcm[i : i + n]))
        for i in range(0, len(pcm), n)
    ]


def play(put: Callable[..., None], seconds: float, rate: int, hz: float, at: float) -> None:
    """Hand `put` (a writer's `person` or `agent`) a tone in 20 ms frames heard from `at` on."""
    for i, frame in enumerate(tone(seconds, rate, hz)):
        put(frame, at=at + i * 0.02)


def held_writer(path: Path, now: list[float]) -> RecordingWriter:
    """A started writer on the test's clock (`now[0]`) that settles nothing before the end
    (hold_s): the fake clock jumps, real arrival does not."""
    writer = RecordingWriter(path, clock=lambda: now[0], hold_s=10.0)
    writer.start()
    return writer


def rms_db(audio: np.ndarray[Any, Any], rate: int, channel: int, a: float, b: float) -> float:
    part = audio[channel, round(a * rate) : round(b * rate)]
    return float(20 * np.log10(np.sqrt(np.mean(part**2)) + 1e-9))


async def test_each_voice_is_on_its_channel_at_the_time_it_was_heard(tmp_path: Path) -> None:
    t0 = 1000.0
    now = [t0]
    writer = held_writer(tmp_path / "a.ogg", now)
    # The person speaks 0.5-1.5 s (frames arriving one by one), the agent answers 2.0-3.0 s.
    play(writer.person, 1.0, RATE_IN, 300, at=t0 + 0.5)
    play(writer.agent, 1.0, RATE_OUT, 500, at=t0 + 2.0)
    now[0] = t0 + 3.5
    seconds = await writer.aclose()

    assert seconds == pytest.approx(3.5, abs=0.01)
    audio, rate = decode(writer.path)
    assert audio.shape[1] / rate == pytest.approx(3.5, abs=0.05)
    person = [rms_db(audio, rate, 0, a, b) for a, b in ((0.6, 1.4), (2.1, 2.9), (0.0, 0.4))]
    agent = [rms_db(audio, rate, 1, a, b) for a, b in ((0.6, 1.4), (2.1, 2.9), (3.1, 3.5))]
    assert person[0] > -20 and person[1] < -50 and person[2] < -50, person
    assert agent[0] < -50 and agent[1] > -20 and agent[2] < -50, agent
    # The person's voice is where it was heard: starts within 30 ms of 0.5 s.
    loud = np.flatnonzero(np.abs(audio[0]) > 0.05)
    assert abs(loud[0] / rate - 0.5) < 0.03 and abs(loud[-1] / rate - 1.5) < 0.03


async def test_agent_audio_dropped_before_it_played_leaves_the_file(tmp_path: Path) -> None:
    """A barge-in drops what the room's source still held: the agent's channel ends where the
    drop was, the person's is untouched, and an answer resumed later is kept."""
    t0 = 1000.0
    now = [t0]
    writer = held_writer(tmp_path / "cut.ogg", now)
    play(writer.person, 1.0, RATE_IN, 300, at=t0 + 2.2)
    # Queued to play 2.0-3.0 s; dropped at 2.5 s; the answer resumes at 3.5 s for 0.5 s.
    play(writer.agent, 1.0, RATE_OUT, 500, at=t0 + 2.0)
    writer.agent_unheard(t0 + 2.5)
    play(writer.agent, 0.5, RATE_OUT, 500, at=t0 + 3.5)
    now[0] = t0 + 4.5
    await writer.aclose()

    audio, rate = decode(writer.path)
    agent = [rms_db(audio, rate, 1, a, b) for a, b in ((2.05, 2.45), (2.55, 3.45), (3.55, 3.95))]
    assert agent[0] > -20 and agent[1] < -50 and agent[2] > -20, agent
    assert rms_db(audio, rate, 0, 2.3, 3.1) > -20
    # The agent's voice stops within 30 ms of the drop.
    loud = np.flatnonzero(np.abs(audio[1, : round(3.4 * rate)]) > 0.05)
    assert abs(loud[-1] / rate - 2.5) < 0.03, loud[-1] / rate


async def test_audio_that_reports_its_time_too_late_is_dropped_not_misplaced(
    tmp_path: Path,
) -> None:
    now = [0.0]
    writer = RecordingWriter(tmp_path / "late.ogg", clock=lambda: now[0], flush_interval_s=0.05)
    writer.start()
    deadline = time.monotonic() + 30  # a busy machine may hold the writer's thread back
    while writer.written < 1.0 * SAMPLE_RATE:  # it writes up to the clock less HOLD_S
        assert time.monotonic() < deadline, writer.written
        now[0] += 0.1
        await asyncio.sleep(0.05)
    play(writer.agent, 0.5, RATE_OUT, 500, at=0.2)  # "played" 0.2-0.7 s: long written
    now[0] += 1.0
    await writer.aclose()
    audio, rate = decode(writer.path)
    assert rms_db(audio, rate, 1, 0.0, audio.shape[1] / rate) < -50


CRASHING_WRITER = """
import os, sys, time
import numpy as np
from livekit import rtc
from arc_voice.recording import RecordingWriter
writer = RecordingWriter(__import__("pathlib").Path(sys.argv[1]))
writer.start()
n = 320
pcm = (0.3 * 32767 * np.sin(2 * np.pi * 300 * np.arange(n) / 16000)).astype(np.int16).tobytes()
start = time.monotonic()
sent = 0
while sent < 4.0:
    writer.person(rtc.AudioFrame(pcm, 16000, 1, n))
    sent += 0.02
    time.sleep(max(0.0, start + sent - time.monotonic()))
print(f"{time.monotonic() - writer.started_at:.3f}", flush=True)
os.kill(os.getpid(), 9)
"""


def test_a_sigkill_leaves_a_playable_file_missing_at_most_two_seconds(tmp_path: Path) -> None:
    path = tmp_path / "killed.ogg"
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    elapsed = float(done.stdout.strip())
    audio, rate = decode(path)
    seconds = audio.shape[1] / rate
    print(f"ran {elapsed:.2f} s, file {seconds:.2f} s")
    assert elapsed - 2.0 <= seconds <= elapsed + 0.1
    assert rms_db(audio, rate, 0, 0.2, seconds - 0.2) > -20


async def test_a_session_recording_without_a_database_still_writes_its_file(
    tmp_path: Path,
) -> None:
    path = recording_path(tmp_path, "abcd1234")
    assert path.is_absolute() and path.suffix == ".ogg" and path.name.startswith("abcd1234-")
    recording = SessionRecording(RecordingWriter(path), None, "abcd1234")
    await recording.start()
    assert recording.uri.startswith("file:///") and recording.row_id is None
    for frame in tone(0.4, RATE_IN, 300):
        recording.person(frame)
    await asyncio.sleep(0.5)
    seconds = await recording.aclose()
    assert seconds > 0.4 and path.exists() and MIME_TYPE == "audio/ogg"


async def test_retention_deletes_old_files_and_keeps_new_ones(tmp_path: Path) -> None:
    now = time.time()
    old = tmp_path / "2026-01-01" / "old-000000.ogg"
    new = tmp_path / "2026-12-01" / "new-000000.ogg"
    other = tmp_path / "notes.txt"
    for path in (old, new, other, marks_path(old)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    os.utime(old, (now - 40 * 86_400, now - 40 * 86_400))
    os.utime(other, (now - 40 * 86_400, now - 40 * 86_400))

    assert expired_files(tmp_path, now - 30 * 86_400) == [old]
    assert await remove_expired(tmp_path, 0, None, now=now) == (0, 0)  # 0: kept for good
    assert old.exists()
    assert await remove_expired(tmp_path, 30, None, now=now) == (1, 0)
    # Its marks and its empty day folder go with it.
    assert not old.exists() and not marks_path(old).exists() and not old.parent.exists()
    assert new.exists() and other.exists()
    assert expired_files(tmp_path / "missing", now) == []


@pytest.mark.parametrize(
    ("metadata", "choice"),
    [
        ('{"record": false}', False),
        ('{"record": true, "topic": "support"}', True),
        ('{"record": "no"}', None),  # not a boolean: the setting decides
        ('["record"]', None),
        ("plain text someone else put there", None),
        ("", None),
        (None, None),
    ],
)
def test_a_rooms_metadata_can_turn_recording_on_or_off(
    metadata: str | None, choice: bool | None
) -> None:
    assert room_records(metadata) is choice


async def test_turn_marks_are_placed_on_the_files_timeline(tmp_path: Path) -> None:
    """Each mark is written beside the file at its offset from the recording's start, the
    first of a (turn, role) standing; a torn or foreign line is skipped."""
    now = [500.0]
    path = tmp_path / "s.ogg"
    writer = held_writer(path, now)
    writer.mark("t1", "user", 501.25)
    writer.mark("t1", "assistant", 503.5)
    writer.mark("t1", "user", 509.0)  # a second start of the same line: the first stands
    writer.mark("t0", "user", 499.0)  # before the file began: its start
    now[0] = 510.0
    await writer.aclose()
    with marks_path(path).open("a") as marks:
        marks.write('{"turn_id": "t9", "role": "user"}\nnot json\n{"turn_id": "t2", "ro')
    assert marks_path(path) == tmp_path / "s.marks.jsonl"
    assert read_marks(path) == {("t1", "user"): 1250, ("t1", "assistant"): 3500, ("t0", "user"): 0}
    assert read_marks(tmp_path / "none.ogg") == {}

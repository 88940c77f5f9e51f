"""Session recordings (docs/recording.md) on the real mesh, over the WebSocket transport:
the file of a finished conversation holds the person on channel 0 while they spoke and the
agent on channel 1 while its answer played, is as long as the session and registered in
`agents.recordings`; a worker killed with SIGKILL mid-answer leaves a playable file that
misses at most the last 2 s."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp
import numpy as np
import psycopg
import pytest
import pytest_asyncio
from arc_stack.livekit import LiveKitServer
from arc_voice.caller import speech_bounds
from arc_voice.models import VoiceModels
from arc_voice.recording import SessionRecording, read_marks, remove_expired
from arc_voice.sessions_api import store_for_worker
from arc_voice.ws_client import SocketTurn
from psycopg_pool import AsyncConnectionPool

from tests.fixtures.brain import RunningBrain
from tests.fixtures.nats import SessionNats
from tests.fixtures.recordings import decode
from tests.fixtures.voice import (
    SpeechSynth,
    VoiceFactory,
    VoiceHarness,
    serve_voice_http,
    socket_call,
    transcribe,
    voice_process,
)
from tests.fixtures.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OUT_RATE = 24_000
# One fixed take with no comma: Piper's random pause after "Hello," can end the turn there,
# and the answer to "Hello" then plays over the rest of the question (a CI run's agent channel
# was at -25 dBFS while the person spoke), which is not what these tests are about.
QUESTION = "Hello what can you do?"


def level(audio: np.ndarray[Any, Any], rate: int, channel: int, a: float, b: float) -> float:
    """RMS level (dBFS) of one channel over [a, b) seconds."""
    part = audio[channel, max(0, round(a * rate)) : round(b * rate)]
    assert part.size > rate // 20, (channel, a, b, audio.shape)
    return float(20 * np.log10(np.sqrt(np.mean(part**2)) + 1e-9))


def onset(audio: np.ndarray[Any, Any], rate: int, channel: int, after: float = 0.0) -> float:
    """Where the channel first gets loud (10 ms windows over -35 dBFS), after `after` s."""
    win = rate // 100
    x = audio[channel, round(after * rate) :]
    windows = x[: len(x) // win * win].reshape(-1, win)
    loud = np.flatnonzero(np.sqrt(np.mean(windows**2, axis=1)) > 10 ** (-35 / 20))
    assert loud.size, f"channel {channel} is silent after {after} s"
    return after + float(loud[0]) * win / rate


async def _file_start(harness: VoiceHarness, session_id: str) -> float:
    """When the session's file starts (monotonic): the worker runs in this process, so its
    clock is the caller's. `ready`'s arrival is not used: on a loaded machine it reached the
    caller 0.37 s after the file had started (CI, 2026-12-05)."""

    def recording() -> SessionRecording | None:
        for c in harness.worker.sockets:
            if c.session_id == session_id and not c.end_reason:
                return c.recording
        return None

    # `ready` goes out before the file's row is written; the recording is set after it.
    await wait_until(recording, timeout_s=10, what=f"session {session_id} being recorded")
    found = recording()
    assert found is not None and found.writer.started_at is not None
    return found.writer.started_at


def _file_at(uri: str, folder: Path) -> Path:
    """The file a row's uri names: absolute, inside the recordings folder, and there."""
    path = Path(urlparse(uri).path)
    assert path.is_absolute() and path.is_relative_to(folder.resolve()) and path.exists(), uri
    return path


@pytest_asyncio.fixture(loop_scope="session")
async def recorded_mesh(
    voice_factory: VoiceFactory, voice_brain: RunningBrain, tmp_path: Path
) -> AsyncIterator[tuple[VoiceHarness, str, Path]]:
    folder = tmp_path / "recordings"
    # No spoken notice: the client below asks for no greeting and gets the notice in `ready`.
    harness = await voice_factory(
        greeting="", recording={"enabled": True, "directory": str(folder), "notice": ""}
    )
    async with serve_voice_http(harness) as url:
        yield harness, url.replace("http://", "ws://") + "/v1/voice", folder


async def test_a_recorded_conversation_has_both_voices_at_the_right_times(
    recorded_mesh: tuple[VoiceHarness, str, Path], speech: SpeechSynth
) -> None:
    harness, url, folder = recorded_mesh
    pcm, rate = speech.say_plain(QUESTION)
    speech_start, speech_end = speech_bounds(pcm, rate)
    turn = SocketTurn(output_sample_rate=OUT_RATE)
    async with (
        aiohttp.ClientSession() as http,
        socket_call(http, url, turn, user_id="rita", input_sample_rate=rate) as (caller, ready),
    ):
        started_at = await _file_start(harness, ready["session_id"])
        await asyncio.sleep(1.0)  # a second of nothing before the person speaks
        said_at = time.monotonic()
        mark = len(turn.events)
        await caller.say(pcm, rate)
        caller.keep_sending_silence(rate)
        await caller.wait_for("audio_start", within_s=60, after=mark)
        await caller.wait_for("audio_end", within_s=120, after=mark)
        await asyncio.sleep(1.0)  # and a second of silence after the answer
        await caller.send_json({"type": "end"})
        ended = await caller.wait_for("ended", within_s=20)

    assert ready["recording"] is True and ready["notice"] == "", ready
    session_id = ready["session_id"]
    rows = await harness.poll_rows(
        "SELECT uri, mime_type, duration_ms, turn_id FROM agents.recordings "
        "WHERE session_id = %s AND duration_ms IS NOT NULL",
        session_id,
    )
    assert len(rows) == 1, rows
    uri, mime, duration_ms, turn_id = rows[0]
    assert mime == "audio/ogg" and turn_id is None and uri.startswith("file:///")
    path = _file_at(uri, folder)

    audio, out_rate = decode(path)
    seconds = audio.shape[1] / out_rate
    # As long as the session: from `ready` to `ended` on the server's clock.
    session_s = (ended["t"] - ready["t"]) / 1000
    print(f"file {seconds:.2f} s, session {session_s:.2f} s, row {duration_ms} ms")
    assert abs(seconds - session_s) < 0.5
    assert abs(duration_ms / 1000 - seconds) < 0.1

    # Times on the file's timeline: the recording starts as the server sends `ready`.
    def at(kind: str) -> float:
        event = next(e for _, e in turn.events[mark:] if e["type"] == kind)
        return float(event["t"] - ready["t"]) / 1000

    answers = [e for _, e in turn.events[mark:] if e["type"] in ("audio_start", "audio_end")]
    played = [
        ((a["t"] - ready["t"]) / 1000, (b["t"] - ready["t"]) / 1000)
        for a, b in zip(answers[::2], answers[1::2], strict=False)
    ]
    reply_from, reply_to = played[-1]
    # The person: loud from where their speech was sent (the shared clock, the file's start
    # as zero), within 0.3 s; and on their channel only.
    expected = said_at - started_at + speech_start / 2 / rate
    person_onset = onset(audio, out_rate, 0)
    assert abs(person_onset - expected) < 0.3, (person_onset, expected)
    speaking = (expected + 0.1, said_at - started_at + speech_end / 2 / rate - 0.1)
    assert level(audio, out_rate, 0, *speaking) > -30
    assert level(audio, out_rate, 1, *speaking) < -50
    assert level(audio, out_rate, 0, 0.0, 0.9) < -50  # before they spoke: nothing
    # The agent: its channel loud while the answer played, and the person's quiet.
    assert reply_to - reply_from > 0.6, played
    answer = (reply_from + 0.1, reply_to - 0.1)
    assert level(audio, out_rate, 1, *answer) > -30
    assert level(audio, out_rate, 0, *answer) < -50
    agent_onset = onset(audio, out_rate, 1, after=speaking[1])
    assert abs(agent_onset - reply_from) < 0.3, (agent_onset, reply_from, at("audio_start"))
    assert level(audio, out_rate, 1, reply_to + 0.2, seconds) < -50  # after it: nothing
    # Each line's place on the file's timeline, which the console's player follows: the
    # person's where their voice starts on their channel, the answer's where the agent's does.
    marks = read_marks(path)
    [turn_id] = {turn for turn, _ in marks}
    assert abs(marks[(turn_id, "user")] / 1000 - person_onset) < 0.4, (marks, person_onset)
    assert abs(marks[(turn_id, "assistant")] / 1000 - agent_onset) < 0.3, (marks, agent_onset)


async def test_a_resumed_session_is_served_as_a_part_per_conversation(
    recorded_mesh: tuple[VoiceHarness, str, Path], speech: SpeechSynth
) -> None:
    """A client that comes back with its session id (as a person who rejoins a room does)
    gets a second file; the sessions API serves both as parts of the session and places each
    line in the part it was heard in, where the person's voice starts in that file."""
    harness, url, folder = recorded_mesh
    session_id = uuid.uuid4().hex
    pcm, rate = speech.say_plain(QUESTION)
    speech_start = speech_bounds(pcm, rate)[0] / 2 / rate
    said: list[float] = []  # where the question starts on each file's timeline
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            turn = SocketTurn(output_sample_rate=OUT_RATE)
            async with socket_call(
                http, url, turn, user_id="rita", session_id=session_id, input_sample_rate=rate
            ) as (caller, ready):
                started_at = await _file_start(harness, ready["session_id"])
                await asyncio.sleep(0.5)
                said.append(time.monotonic() - started_at + speech_start)
                mark = len(turn.events)
                await caller.say(pcm, rate)
                caller.keep_sending_silence(rate)
                await caller.wait_for("audio_end", within_s=120, after=mark)
                await caller.send_json({"type": "end"})
                await caller.wait_for("ended", within_s=20)

    rows = await harness.poll_rows(
        "SELECT uri FROM agents.recordings WHERE session_id = %s AND duration_ms IS NOT NULL "
        "ORDER BY created_at",
        session_id,
    )
    assert len(rows) == 2, rows
    store = store_for_worker(harness.worker, folder)
    view = await store.view(session_id)
    assert [r.uri for r in view.recordings] == [uri for (uri,) in rows]
    asked = [line for line in view.lines if line.role == "user"]
    assert [line.part for line in asked] == [0, 1], view.lines
    for line, (uri,) in zip(asked, rows, strict=True):
        path, _ = await store.recording(session_id, line.part or 0)
        assert path == _file_at(uri, folder)
        audio, out_rate = decode(path)
        person = onset(audio, out_rate, 0)
        assert abs(line.offset_ms / 1000 - person) < 0.4, (line, person)
        assert abs(person - said[line.part or 0]) < 0.3, (person, said)
    answers = [line.part for line in view.lines if line.role == "assistant"]
    assert answers == [0, 1], view.lines


async def test_a_socket_can_turn_recording_off_for_its_session(
    recorded_mesh: tuple[VoiceHarness, str, Path],
) -> None:
    harness, url, folder = recorded_mesh
    turn = SocketTurn(output_sample_rate=OUT_RATE)
    async with (
        aiohttp.ClientSession() as http,
        socket_call(http, url, turn, user_id="quiet", input_sample_rate=16000, record=False) as (
            caller,
            ready,
        ),
    ):
        await caller.send_json({"type": "end"})
        await caller.wait_for("ended", within_s=20)
    assert ready["recording"] is False and ready["notice"] is None
    await asyncio.sleep(0.5)
    rows = await harness.poll_rows(
        "SELECT id FROM agents.recordings WHERE session_id = %s",
        ready["session_id"],
        within_s=1.0,
    )
    assert rows == []
    assert not list(folder.rglob(f"{ready['session_id']}-*.ogg"))


async def test_a_worker_killed_mid_answer_leaves_a_playable_file(
    nats_server: SessionNats,
    livekit_server: LiveKitServer,
    migrated_dsn: str,
    voice_brain: RunningBrain,
    subject_prefix: str,
    speech: SpeechSynth,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "recordings"
    pcm, rate = speech.say_plain(QUESTION)
    turn = SocketTurn(output_sample_rate=OUT_RATE)
    async with (
        voice_process(
            nats=nats_server.settings("voice", subject_prefix=subject_prefix),
            dsn=migrated_dsn,
            livekit=livekit_server,
            log_path=tmp_path / "voice.log",
            # Off by default; the socket's `start` turns it on for its session.
            extra_env={
                "ARC_VOICE__RECORDING__ENABLED": "false",
                "ARC_VOICE__RECORDING__DIRECTORY": str(folder),
            },
        ) as process,
        aiohttp.ClientSession() as http,
        socket_call(
            http,
            process.socket_url,
            turn,
            ready_within_s=60,
            user_id="kim",
            input_sample_rate=rate,
            record=True,
        ) as (caller, ready),
    ):
        ready_at = turn.events[0][0]
        mark = len(turn.events)
        await caller.say(pcm, rate)
        caller.keep_sending_silence(rate)
        await caller.wait_for("audio_start", within_s=60, after=mark)
        starts = [e for _, e in turn.events[mark:] if e["type"] == "audio_start"]
        await asyncio.sleep(1.5)
        os.kill(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # Reaped here; the fixture then finds it gone.
        await asyncio.to_thread(os.waitpid, process.pid, 0)

    assert ready["recording"] is True
    files = list(folder.rglob(f"{ready['session_id']}-*.ogg"))
    assert len(files) == 1, files
    audio, out_rate = decode(files[0])
    seconds = audio.shape[1] / out_rate
    lived = killed_at - ready_at
    print(f"worker lived {lived:.2f} s into the session, file {seconds:.2f} s")
    assert lived - 2.0 <= seconds <= lived + 0.3
    # What it has of the answer is there: the agent's channel is loud after the answer began.
    reply_from = (starts[-1]["t"] - ready["t"]) / 1000
    assert level(audio, out_rate, 1, reply_from + 0.05, min(reply_from + 0.4, seconds)) > -35
    assert level(audio, out_rate, 0, 0.2, reply_from - 0.5) > -40  # and the question
    # Registered as the session went; a reader takes the length from the file (no end came).
    async with await psycopg.AsyncConnection.connect(migrated_dsn) as conn:
        cur = await conn.execute(
            "SELECT uri, mime_type FROM agents.recordings WHERE session_id = %s",
            (ready["session_id"],),
        )
        rows = await cur.fetchall()
    assert rows == [(files[0].resolve().as_uri(), "audio/ogg")]


async def test_a_room_conversation_is_recorded_with_its_spoken_notice(
    voice_factory: VoiceFactory,
    voice_brain: RunningBrain,
    speech: SpeechSynth,
    voice_models: VoiceModels,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "recordings"
    harness = await voice_factory(
        greeting="Hi there.", recording={"enabled": True, "directory": str(folder)}
    )
    caller, conversation = await harness.talk_to("nora")
    greeting_at = await caller.wait_audible(0.0, within_s=30)
    greeting_end = await caller.wait_quiet(1.0, within_s=30)
    assert conversation.recording is not None
    t0 = conversation.recording.writer.started_at
    assert t0 is not None
    attributes = harness.worker.rooms[conversation.place].room.local_participant.attributes
    assert attributes.get("arc.recording") == "on", attributes
    # The person hears that they are recorded before the greeting.
    heard = caller.audio_between(greeting_at - 0.05, greeting_end + 0.05)
    opening = await transcribe(voice_models, heard, caller.heard_rate)
    assert "recorded" in opening.lower(), (opening, len(heard) / 2 / caller.heard_rate)

    pcm, rate = speech.say_plain(QUESTION)
    spoken = await (await caller.say(pcm, rate))
    reply_at = await caller.wait_audible(spoken.ended_at, within_s=60)
    reply_end = await caller.wait_quiet(1.0, within_s=60)
    await caller.aclose()  # the person leaves: the session, and its file, end
    # The session is marked ended once its file is closed and its duration final.
    rows = await harness.poll_rows(
        "SELECT r.uri, r.mime_type, r.duration_ms FROM agents.recordings r "
        "JOIN agents.sessions s USING (session_id) WHERE session_id = %s AND s.status = 'ended'",
        conversation.session_id,
        within_s=30,
    )
    assert len(rows) == 1, rows
    uri, mime, duration_ms = rows[0]
    assert mime == "audio/ogg"
    audio, out_rate = decode(_file_at(uri, folder))
    seconds = audio.shape[1] / out_rate
    assert abs(duration_ms / 1000 - seconds) < 0.1

    # On the file's timeline (the worker and the caller share this process's clock): the
    # agent heard where the caller heard it (less the room's transport), the person where
    # their speech left the microphone.
    question = (spoken.speech_started_at - t0, spoken.speech_ended_at - t0)
    answer = (reply_at - t0, reply_end - t0)
    greeting = (greeting_at - t0, greeting_end - t0)
    print(f"file {seconds:.2f} s; greeting {greeting}, question {question}, answer {answer}")
    assert abs(onset(audio, out_rate, 1) - greeting[0]) < 0.3
    assert abs(onset(audio, out_rate, 0) - question[0]) < 0.3
    assert abs(onset(audio, out_rate, 1, after=question[1]) - answer[0]) < 0.3
    assert level(audio, out_rate, 0, question[0] + 0.1, question[1] - 0.1) > -30
    assert level(audio, out_rate, 1, question[0] + 0.1, question[1] - 0.1) < -50
    assert level(audio, out_rate, 1, answer[0] + 0.1, answer[1] - 0.1) > -30
    assert level(audio, out_rate, 1, greeting[0] + 0.1, greeting[1] - 0.1) > -30


async def test_retention_deletes_old_rows_with_their_files(
    migrated_dsn: str, tmp_path: Path
) -> None:
    folder = (tmp_path / "recordings").resolve()
    session = uuid.uuid4().hex
    old, new, elsewhere = (folder / "old.ogg", folder / "new.ogg", tmp_path / "elsewhere.ogg")
    for path in (old, new, elsewhere):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"OggS")
    async with AsyncConnectionPool(migrated_dsn, min_size=1, max_size=1, open=False) as pool:
        async with pool.connection() as conn:
            for path, age_days in ((old, 40), (new, 1), (elsewhere, 40)):
                await conn.execute(
                    "INSERT INTO agents.recordings (session_id, uri, mime_type, created_at) "
                    "VALUES (%s, %s, 'audio/ogg', now() - make_interval(days => %s))",
                    (session, path.as_uri(), age_days),
                )
        files, rows = await remove_expired(folder, 30, pool)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT uri FROM agents.recordings WHERE session_id = %s ORDER BY uri",
                (session,),
            )
            left = [uri for (uri,) in await cur.fetchall()]
    assert (files, rows) == (1, 1)
    assert not old.exists() and new.exists()
    # A row whose file is outside the recordings folder is not this worker's to delete.
    assert elsewhere.exists() and left == sorted([new.as_uri(), elsewhere.as_uri()])

"""The sessions API as `python -m arc_voice` builds it (`create_app` over a voice worker and
its Postgres pool), served by uvicorn, on the session's real Postgres with the real brain
over real NATS for deleting turns. Rows are seeded with SQL as their owners write them; the
recording is a real stereo OGG/Opus file made here with PyAV."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import av
import httpx
import msgspec
import numpy as np
import pytest
import pytest_asyncio
from arc_common import subjects
from arc_common.envelope import headers_for
from arc_common.nats_connection import connect
from arc_common.wire import SessionDelete, SessionDeleteReply, encode
from arc_voice.http_api import Health, create_app
from arc_voice.models import VoiceModels
from arc_voice.recording import marks_path
from arc_voice.settings import LiveKitSettings, RecordingSettings, VoiceOptions
from arc_voice.worker import VoiceWorker
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from tests.fixtures.brain import BrainFactory
from tests.fixtures.browser import CHROMIUM, chromium
from tests.fixtures.http_auth import API_KEY, AUTH, http_guard
from tests.fixtures.nats import SessionNats
from tests.fixtures.serving import serve_app

pytestmark = [pytest.mark.integration]

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def write_ogg(path: Path, seconds: float = 24.0) -> bytes:
    """Stereo Opus in Ogg at 48 kHz, as the recorder writes: a tone per channel."""
    n = int(48_000 * seconds)
    t = np.arange(n) / 48_000
    left = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    right = (0.3 * np.sin(2 * np.pi * 660 * t) * 32767).astype(np.int16)
    interleaved = np.empty(2 * n, dtype=np.int16)
    interleaved[0::2], interleaved[1::2] = left, right
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            interleaved.reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = 48_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path.read_bytes()


@dataclass
class Env:
    url: str
    pool: AsyncConnectionPool[Any]
    recordings: Path
    tag: str  # unique per test: users, rooms and sessions carry it

    def client(self, *, auth: bool = True) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=AUTH if auth else {}, timeout=10)

    async def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall() if cur.description else []


@pytest_asyncio.fixture(loop_scope="session")
async def env(
    nats_server: SessionNats,
    migrated_dsn: str,
    brain_factory: BrainFactory,
    subject_prefix: str,
    tmp_path: Path,
) -> AsyncIterator[Env]:
    """The real brain on the test's subjects, and the voice service's HTTP app built as
    `python -m arc_voice` builds it, over a worker that is constructed (its pool and NATS
    connection are what the sessions API uses) but not started: no room is needed here."""
    await brain_factory(subject_prefix=subject_prefix)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        migrated_dsn, min_size=1, max_size=4, open=False
    )
    await pool.open(wait=True)
    nc = await connect(nats_server.settings(), name="arc-voice-sessions-test")
    options = VoiceOptions(recording=RecordingSettings(directory=recordings))
    worker = VoiceWorker(
        options=options,
        livekit=LiveKitSettings(api_key="arc-test", api_secret=SecretStr("x" * 32)),
        models=cast(VoiceModels, None),  # never used: no conversation runs
        nc=nc,
        pool=pool,
        subject_prefix=subject_prefix,
    )
    app = create_app(
        options,
        worker.livekit,
        lambda: worker,
        lambda: Health(healthy=True, detail={}),
        http_guard(),
    )
    try:
        async with serve_app(app) as url:
            yield Env(url, pool, recordings, uuid.uuid4().hex[:8])
    finally:
        await nc.drain()
        await pool.close()


@dataclass
class Seeded:
    first: str  # ended, user A, room 1, two turns (the second interrupted), a recording
    second: str  # ended, user A, room 2, no turns
    third: str  # active, user B, room 1
    audio: bytes
    audio_path: Path
    user_a: str
    user_b: str
    room_1: str
    room_2: str


async def seed(env: Env) -> Seeded:
    tag = env.tag
    s1, s2, s3 = (f"{n}{tag}" for n in ("one", "two", "three"))
    user_a, user_b, room_1, room_2 = f"ann-{tag}", f"bob-{tag}", f"lobby-{tag}", f"desk-{tag}"
    audio_path = env.recordings / "2026" / f"{s1}.ogg"
    audio = write_ogg(audio_path)
    # Where the worker placed each line on the recording's timeline as it was heard (turn 2's
    # interrupted answer has none: it is placed by its row, at 21 s).
    marks_path(audio_path).write_text(
        "".join(
            json.dumps({"turn_id": turn, "role": role, "offset_ms": ms}) + "\n"
            for turn, role, ms in (
                ("t1", "user", 5000),
                ("t1", "assistant", 8900),
                ("t2", "user", 17500),
            )
        )
    )
    session_sql = (
        "INSERT INTO agents.sessions (session_id, user_id, room, status, started_at, ended_at, "
        "end_reason) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )
    await env.sql(session_sql, s1, user_a, room_1, "ended", T0, T0 + timedelta(minutes=1), "hangup")
    await env.sql(
        session_sql,
        s2,
        user_a,
        room_2,
        "ended",
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=1, seconds=30),
        "idle",
    )
    await env.sql(session_sql, s3, user_b, room_1, "active", T0 + timedelta(hours=2), None, None)
    turn_sql = (
        "INSERT INTO agents.conversations (session_id, turn_id, user_id, role, content, "
        "interrupted, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )
    # Turn 2's interrupted answer is written by a truncation before the brain writes the turn:
    # its row comes first by id, yet the person's line must still come first.
    await env.sql(
        turn_sql,
        s1,
        "t2",
        user_a,
        "assistant",
        "You're very welc",
        True,
        T0 + timedelta(seconds=21),
    )
    await env.sql(
        turn_sql,
        s1,
        "t1",
        user_a,
        "user",
        "What is the weather in Paris?",
        False,
        T0 + timedelta(seconds=8),
    )
    await env.sql(
        turn_sql,
        s1,
        "t1",
        user_a,
        "assistant",
        "Sunny and 20 degrees in Paris.",
        False,
        T0 + timedelta(seconds=8),
    )
    await env.sql(
        turn_sql,
        s1,
        "t2",
        user_a,
        "user",
        "Thanks, that was really helpful!",
        False,
        T0 + timedelta(seconds=20),
    )
    metrics_sql = (
        "INSERT INTO agents.turn_metrics (event_id, session_id, turn_id, occurred_at, "
        "end_of_speech_ms, stt_ms, brain_first_delta_ms, tts_first_chunk_ms, transport_ms, "
        "voice_to_voice_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    # (turn, seconds after T0, then the stage timings in the columns' order)
    for turn_id, at_s, *timings in (
        ("t1", 9, 300.0, 120.0, 250.0, 180.0, 20.0, 870.0),
        ("t2", 21, 280.0, 110.0, 200.0, 150.0, None, 760.0),
    ):
        await env.sql(
            metrics_sql, uuid.uuid4(), s1, turn_id, T0 + timedelta(seconds=at_s), *timings
        )
    await env.sql(
        "INSERT INTO agents.recordings (session_id, turn_id, uri, mime_type, duration_ms, "
        "created_at) VALUES (%s, NULL, %s, 'audio/ogg', 24000, %s)",
        s1,
        audio_path.as_uri(),
        T0,
    )
    payload = {
        "session_id": s1,
        "user_text": "What is the weather in Paris?",
        "assistant_text": "Sunny",
    }
    for table in ("outbox", "event_audit"):
        await env.sql(
            f"INSERT INTO agents.{table} (event_id, topic, type, schema_version, session_id, "
            "occurred_at, payload) VALUES (%s, %s, 'conversation.turn', 1, %s, %s, %s)",
            uuid.uuid4(),
            subjects.TOPIC_CONVERSATION,
            s1,
            T0,
            Jsonb(payload),
        )
    return Seeded(s1, s2, s3, audio, audio_path, user_a, user_b, room_1, room_2)


async def test_list_and_filters(env: Env) -> None:
    s = await seed(env)
    async with env.client() as http:

        async def ids(**params: str) -> list[str]:
            answer = await http.get("/v1/sessions", params=params)
            assert answer.status_code == 200, answer.text
            return [row["session_id"] for row in answer.json()["sessions"]]

        assert await ids(user_id=s.user_a) == [s.second, s.first]  # newest first
        assert await ids(user_id=s.user_b) == [s.third]
        assert await ids(room=s.room_1) == [s.third, s.first]
        assert await ids(room=s.room_1, user_id=s.user_a) == [s.first]
        since = (T0 + timedelta(minutes=30)).isoformat()
        until = (T0 + timedelta(minutes=90)).isoformat()
        assert await ids(user_id=s.user_a, since=since) == [s.second]
        assert await ids(user_id=s.user_a, until=until) == [s.second, s.first]
        assert await ids(user_id=s.user_a, since=since, until=until) == [s.second]
        assert await ids(user_id=s.user_a, until=since) == [s.first]
        assert await ids(user_id=s.user_a, limit="1") == [s.second]
        # A time without a zone is UTC.
        assert await ids(user_id=s.user_a, since="2026-11-30T09:30:00") == [s.second]

        row = (await http.get("/v1/sessions", params={"user_id": s.user_a})).json()["sessions"][1]
        assert row["turns"] == 2
        assert row["has_recording"] is True
        assert row["duration_ms"] == 60_000
        assert row["status"] == "ended"

        for bad in ({"limit": "0"}, {"limit": "501"}, {"since": "yesterday"}):
            answer = await http.get("/v1/sessions", params=bad)
            assert answer.status_code == 400, bad
            assert answer.json()["error"]["code"] == "bad_request"


async def test_view_has_transcript_timings_summary_and_sentiment(env: Env) -> None:
    s = await seed(env)
    async with env.client() as http:
        answer = await http.get(f"/v1/sessions/{s.first}")
    assert answer.status_code == 200, answer.text
    view = answer.json()
    lines = [(x["turn_id"], x["role"], x["content"], x["interrupted"]) for x in view["transcript"]]
    assert lines == [
        ("t1", "user", "What is the weather in Paris?", False),
        ("t1", "assistant", "Sunny and 20 degrees in Paris.", False),
        ("t2", "user", "Thanks, that was really helpful!", False),
        ("t2", "assistant", "You're very welc", True),
    ]
    # From the recording's marks where there are, else from when the row was stored.
    assert [x["offset_ms"] for x in view["transcript"]] == [5000, 8900, 17500, 21000]
    timings = view["turn_timings"]
    assert [t["turn_id"] for t in timings] == ["t1", "t2"]
    assert timings[0]["stt_ms"] == 120.0
    assert timings[0]["voice_to_voice_ms"] == 870.0
    assert timings[1]["transport_ms"] is None
    assert view["latency"]["p50_voice_to_voice_ms"] == pytest.approx(815.0)
    assert view["recording"] == {"mime_type": "audio/ogg", "duration_ms": 24000}
    assert "uri" not in json.dumps(view["recording"])  # where the file lies is not told
    assert view["sentiment"]["label"] == "positive"
    assert view["summary"].startswith("2 turns. The person opened with: “What is the weather")
    assert "interrupted the agent 1 time" in view["summary"]

    async with env.client() as http:
        empty = (await http.get(f"/v1/sessions/{s.second}")).json()
    assert empty["transcript"] == []
    assert empty["sentiment"] == {"label": "neutral", "score": 0.0}
    assert empty["recording"] is None


async def test_recording_whole_and_ranges(env: Env) -> None:
    s = await seed(env)
    size = len(s.audio)
    path = f"/v1/sessions/{s.first}/recording"
    async with env.client() as http:
        whole = await http.get(path)
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "audio/ogg"
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.content == s.audio

        for header, start, end in [
            ("bytes=0-99", 0, 99),
            ("bytes=100-1099", 100, 1099),
            (f"bytes={size - 10}-", size - 10, size - 1),
            ("bytes=-500", size - 500, size - 1),
            (f"bytes=1000-{size + 5000}", 1000, size - 1),
        ]:
            part = await http.get(path, headers={"range": header})
            assert part.status_code == 206, (header, part.text)
            assert part.content == s.audio[start : end + 1], header
            assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
            assert int(part.headers["content-length"]) == end - start + 1

        for header in (
            f"bytes={size}-",
            f"bytes={size + 10}-{size + 20}",
            "bytes=50-10",
            "bytes=0-1,4-5",
            "bytes=x",
        ):
            refused = await http.get(path, headers={"range": header})
            assert refused.status_code == 416, header
            assert refused.headers["content-range"] == f"bytes */{size}"
            assert refused.json()["error"]["code"] == "bad_request"

        # No recording: 404 with the contract's body.
        none = await http.get(f"/v1/sessions/{s.second}/recording")
        assert none.status_code == 404
        assert none.json()["error"]["code"] == "bad_request"


@dataclass
class Resumed:
    session: str
    files: list[Path]
    audio: list[bytes]


async def seed_resumed(env: Env) -> Resumed:
    """A person who came back resumed their session, and the worker recorded the second
    conversation to a file of its own (12 s, then 8 s from 2 minutes on): two turns heard in
    the first, two in the second and a typed line there (no mark)."""
    session = f"back{env.tag}"
    files = [env.recordings / "2026" / f"{session}-{n}.ogg" for n in (1, 2)]
    audio = [write_ogg(files[0], 12.0), write_ogg(files[1], 8.0)]
    for path, turn, offsets in ((files[0], "t1", (2000, 4500)), (files[1], "t2", (1500, 3800))):
        marks_path(path).write_text(
            "".join(
                json.dumps({"turn_id": turn, "role": role, "offset_ms": ms}) + "\n"
                for role, ms in zip(("user", "assistant"), offsets, strict=True)
            )
        )
    resumed_at = T0 + timedelta(minutes=2)
    await env.sql(
        "INSERT INTO agents.sessions (session_id, user_id, room, status, started_at, ended_at) "
        "VALUES (%s, %s, %s, 'ended', %s, %s)",
        session,
        f"rita-{env.tag}",
        f"lobby-{env.tag}",
        T0,
        resumed_at + timedelta(seconds=8),
    )
    turns = (
        ("t1", "user", "What time is it?", T0 + timedelta(seconds=5)),
        ("t1", "assistant", "It is nine o'clock.", T0 + timedelta(seconds=5)),
        ("t2", "user", "I am back, what is two plus two?", resumed_at + timedelta(seconds=4)),
        ("t2", "assistant", "Four.", resumed_at + timedelta(seconds=4)),
        # Typed in the second conversation: no mark, placed by its row.
        ("t3", "user", "thanks", resumed_at + timedelta(seconds=6.5)),
    )
    for turn, role, content, at in turns:
        await env.sql(
            "INSERT INTO agents.conversations (session_id, turn_id, user_id, role, content, "
            "interrupted, created_at) VALUES (%s, %s, %s, %s, %s, false, %s)",
            session,
            turn,
            f"rita-{env.tag}",
            role,
            content,
            at,
        )
    # Inserted newest first: the parts are in the order they were recorded, not by row id.
    for path, seconds, at in ((files[1], 8000, resumed_at), (files[0], 12000, T0)):
        await env.sql(
            "INSERT INTO agents.recordings (session_id, turn_id, uri, mime_type, duration_ms, "
            "created_at) VALUES (%s, NULL, %s, 'audio/ogg', %s, %s)",
            session,
            path.as_uri(),
            seconds,
            at,
        )

    return Resumed(session, files, audio)


async def test_a_resumed_session_serves_each_conversations_recording(env: Env) -> None:
    """Both files of a resumed session are parts of it, served by `part`, and each line is
    placed in the part it was heard in."""
    resumed = await seed_resumed(env)
    session, files, audio = resumed.session, resumed.files, resumed.audio
    async with env.client() as http:
        view = (await http.get(f"/v1/sessions/{session}")).json()
        first = await http.get(f"/v1/sessions/{session}/recording")
        second = await http.get(f"/v1/sessions/{session}/recording", params={"part": "1"})
        ranged = await http.get(
            f"/v1/sessions/{session}/recording",
            params={"part": "1"},
            headers={"range": "bytes=10-99"},
        )
        beyond = await http.get(f"/v1/sessions/{session}/recording", params={"part": "2"})
        bad = [
            await http.get(f"/v1/sessions/{session}/recording", params={"part": value})
            for value in ("-1", "one", "100000")
        ]
        text = (await http.get(f"/v1/sessions/{session}/export", params={"format": "text"})).text

    assert [(r["part"], r["duration_ms"]) for r in view["recordings"]] == [(0, 12000), (1, 8000)]
    assert view["recording"] == {"mime_type": "audio/ogg", "duration_ms": 12000}
    assert "file:" not in json.dumps(view["recordings"])
    placed = [(x["turn_id"], x["role"], x["part"], x["offset_ms"]) for x in view["transcript"]]
    assert placed == [
        ("t1", "user", 0, 2000),
        ("t1", "assistant", 0, 4500),
        ("t2", "user", 1, 1500),
        ("t2", "assistant", 1, 3800),
        ("t3", "user", 1, 6500),
    ]
    assert first.status_code == 200 and first.content == audio[0]
    assert second.status_code == 200 and second.content == audio[1]
    assert ranged.status_code == 206 and ranged.content == audio[1][10:100]
    assert ranged.headers["content-range"] == f"bytes 10-99/{len(audio[1])}"
    assert beyond.status_code == 404
    assert "no part 2" in beyond.json()["error"]["message"]
    for answer in bad:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "bad_request"
    assert "[part 2 00:01] user: I am back, what is two plus two?" in text

    async with env.client() as http:
        deleted = await http.delete(f"/v1/sessions/{session}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["recordings_removed"] == 2
    assert not any(path.exists() or marks_path(path).exists() for path in files)


async def test_recording_outside_the_directory_is_refused(env: Env, tmp_path: Path) -> None:
    s = await seed(env)
    secret = tmp_path / "secret.ogg"
    secret.write_bytes(b"not yours")
    escaping = env.recordings.as_uri() + "/../secret.ogg"
    for uri in (secret.as_uri(), escaping, "file:///etc/passwd"):
        await env.sql("UPDATE agents.recordings SET uri = %s WHERE session_id = %s", uri, s.first)
        async with env.client() as http:
            answer = await http.get(f"/v1/sessions/{s.first}/recording")
        assert answer.status_code == 403, uri
        body = answer.json()
        assert body["error"]["code"] == "bad_request"
        assert str(tmp_path) not in answer.text
        assert "passwd" not in answer.text
    # Deleting the session must not delete a file its row points to outside the directory.
    await env.sql("UPDATE agents.recordings SET uri = %s WHERE session_id = %s", escaping, s.first)
    async with env.client() as http:
        deleted = await http.delete(f"/v1/sessions/{s.first}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["recordings_removed"] == 0
    assert secret.read_bytes() == b"not yours"
    assert s.audio_path.exists()  # not the row's file any more: kept too


async def test_export_json_and_text(env: Env) -> None:
    s = await seed(env)
    async with env.client() as http:
        as_json = await http.get(f"/v1/sessions/{s.first}/export", params={"format": "json"})
        as_text = await http.get(f"/v1/sessions/{s.first}/export", params={"format": "text"})
        default = await http.get(f"/v1/sessions/{s.first}/export")
        bad = await http.get(f"/v1/sessions/{s.first}/export", params={"format": "pdf"})
    assert as_json.status_code == 200
    assert (
        as_json.headers["content-disposition"] == f'attachment; filename="session-{s.first}.json"'
    )
    body = as_json.json()
    assert body["session_id"] == s.first
    assert len(body["transcript"]) == 4
    assert default.json() == body
    assert as_text.status_code == 200
    assert as_text.headers["content-type"].startswith("text/plain")
    assert as_text.headers["content-disposition"].endswith(f'session-{s.first}.txt"')
    text = as_text.text
    assert text.startswith(f"Session {s.first}\n")
    assert "[00:05] user: What is the weather in Paris?\n" in text
    assert "[00:21] assistant: You're very welc [interrupted]\n" in text
    assert "Sentiment: positive" in text
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_request"


async def test_delete(env: Env) -> None:
    s = await seed(env)
    async with env.client() as http:
        # Still active: refused without force.
        active = await http.delete(f"/v1/sessions/{s.third}")
        assert active.status_code == 409
        assert active.json()["error"]["code"] == "bad_request"

        answer = await http.delete(f"/v1/sessions/{s.first}")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "deleted": True,
            "session_id": s.first,
            "deleted_turns": 2,
            "recordings_removed": 1,
            "events_marked": 2,
        }
        # The brain deleted the turns; the file and its row are gone; the session is marked.
        assert (
            await env.sql("SELECT 1 FROM agents.conversations WHERE session_id = %s", s.first) == []
        )
        assert await env.sql("SELECT 1 FROM agents.recordings WHERE session_id = %s", s.first) == []
        assert not s.audio_path.exists() and not marks_path(s.audio_path).exists()
        [(deleted_at, metadata)] = await env.sql(
            "SELECT deleted_at, metadata FROM agents.sessions WHERE session_id = %s", s.first
        )
        assert deleted_at is not None
        assert metadata["deletion"] == {"deleted_turns": 2, "recordings_removed": 1}
        for table in ("outbox", "event_audit"):
            [(marked, payload)] = await env.sql(
                f"SELECT session_deleted_at, payload FROM agents.{table} WHERE session_id = %s",
                s.first,
            )
            assert marked is not None
            assert payload["user_text"] == payload["assistant_text"] == "[deleted]"
            assert payload["session_id"] == s.first

        for path in ("", "/recording", "/export"):
            gone = await http.get(f"/v1/sessions/{s.first}{path}")
            assert gone.status_code == 404, path
            assert gone.json()["error"]["code"] == "bad_request"
        again = await http.delete(f"/v1/sessions/{s.first}")
        assert again.status_code == 404
        listed = (await http.get("/v1/sessions", params={"user_id": s.user_a})).json()
        assert [r["session_id"] for r in listed["sessions"]] == [s.second]

        # An active session goes with force=true.
        forced = await http.delete(f"/v1/sessions/{s.third}", params={"force": "true"})
        assert forced.status_code == 200, forced.text
        assert forced.json()["deleted_turns"] == 0


async def test_brain_answers_session_delete_with_contract_errors(
    env: Env, nats_server: SessionNats, subject_prefix: str
) -> None:
    """The brain's half alone: bad input gets `bad_request`, a good request its count."""
    nc = await connect(nats_server.settings(), name="arc-test-delete")
    subject = subjects.prefixed(subject_prefix, subjects.BRAIN_SESSION_DELETE)
    decode = msgspec.msgpack.Decoder(SessionDeleteReply).decode
    try:
        for data in (b"\xc1", encode({"v": 1}), encode({"v": 1, "session_id": ""})):
            reply = await nc.request(subject, data, timeout=5)
            assert reply.headers is not None
            assert reply.headers["arc-schema"] == SessionDeleteReply.schema
            assert decode(reply.data).error is not None
            assert decode(reply.data).error.code == "bad_request"  # type: ignore[union-attr]
        wrong = await nc.request(
            subject,
            encode(SessionDelete(session_id="x")),
            timeout=5,
            headers=headers_for("brain.request/1"),
        )
        assert decode(wrong.data).error.code == "bad_request"  # type: ignore[union-attr]
        good = await nc.request(
            subject,
            encode(SessionDelete(session_id=f"none-{env.tag}")),
            timeout=5,
            headers=headers_for(SessionDelete.schema),
        )
        assert decode(good.data) == SessionDeleteReply(v=1, deleted_turns=0)
        assert msgspec.msgpack.decode(good.data) == {"v": 1, "deleted_turns": 0}
    finally:
        await nc.drain()


async def test_bad_input_and_keys(env: Env) -> None:
    s = await seed(env)
    async with env.client() as http:
        unknown = await http.get(f"/v1/sessions/nope{env.tag}")
        assert unknown.status_code == 404
        assert unknown.json() == {
            "error": {"code": "bad_request", "message": f"no session nope{env.tag}"}
        }
        for bad_id in ("..", ".hidden", "a%20b", "x" * 129, "%2E%2E"):
            for method, suffix in (("GET", ""), ("GET", "/recording"), ("DELETE", "")):
                answer = await http.request(method, f"/v1/sessions/{bad_id}{suffix}")
                assert answer.status_code in (400, 404), (bad_id, suffix)
                if answer.status_code == 400:
                    assert answer.json()["error"]["code"] == "bad_request"
        assert (await http.get("/v1/sessions/..%2F..%2Fetc")).status_code in (400, 404)
        traversal = await http.get("/v1/sessions/a..b")
        assert traversal.status_code == 404  # a valid id that names nothing
        assert (await http.get("/v1/sessions/-x")).status_code == 400
        assert (await http.get("/v1/sessions/a b")).status_code == 400

    async with env.client(auth=False) as anonymous:
        for method, path in (
            ("GET", "/v1/sessions"),
            ("GET", f"/v1/sessions/{s.first}"),
            ("GET", f"/v1/sessions/{s.first}/recording"),
            ("GET", f"/v1/sessions/{s.first}/export"),
            ("DELETE", f"/v1/sessions/{s.first}"),
        ):
            answer = await anonymous.request(method, path)
            assert answer.status_code == 401, path
            assert answer.json()["error"]["code"] == "bad_request"
            wrong = await anonymous.request(method, path, headers={"x-api-key": "w" * 40})
            assert wrong.status_code == 401, path
        # The console page itself is public, like the talk page.
        page = await anonymous.get("/sessions")
        assert page.status_code == 200
        assert "/static/sessions.js" in page.text
        assert (await anonymous.get("/static/sessions.js")).status_code == 200
    assert s.audio_path.exists()  # nothing above deleted anything


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
async def test_the_console_keeps_the_newest_list_when_answers_cross(
    env: Env, tmp_path: Path
) -> None:
    """An older list's answer arriving after a newer one's does not replace it: the page's
    first, unfiltered list overwrote a filtered one on a loaded CI box."""
    s = await seed(env)
    async with chromium(tmp_path / "profile", url=f"{env.url}/sessions#key={API_KEY}") as tab:
        await tab.until("document.readyState === 'complete' && window.arcSessions", "page load")
        # Every unfiltered list is answered a second late, so the filtered one asked after it
        # arrives first.
        await tab.evaluate(
            "const real = window.fetch;"
            "window.fetch = (url, options) => String(url).includes('user_id=')"
            "  ? real(url, options)"
            "  : new Promise((done) => setTimeout(done, 1000)).then(() => real(url, options));"
        )
        await tab.evaluate("document.getElementById('filters').requestSubmit()")
        await tab.evaluate(
            f"document.querySelector('[name=user_id]').value = {json.dumps(s.user_a)};"
            "document.getElementById('filters').requestSubmit()"
        )
        rows = "document.querySelectorAll('#sessions tbody tr').length"
        assert await tab.until(f"{rows} === 2 && {rows}", "two sessions listed") == 2
        await asyncio.sleep(1.5)  # the unfiltered answer has come and gone
        assert await tab.evaluate(rows) == 2


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
async def test_console_in_chromium(env: Env, tmp_path: Path) -> None:
    """The console finds a session by user, shows its transcript, latency bars, summary and
    sentiment, plays its recording, and highlights the line at the player's position; the
    key leaves the address bar."""
    s = await seed(env)
    async with chromium(tmp_path / "profile", url=f"{env.url}/sessions#key={API_KEY}") as tab:
        await tab.until("document.readyState === 'complete' && window.arcSessions", "page load")
        assert await tab.evaluate("location.hash") == ""
        await tab.evaluate(
            f"document.querySelector('[name=user_id]').value = {json.dumps(s.user_a)};"
            "document.getElementById('filters').requestSubmit()"
        )
        rows = "document.querySelectorAll('#sessions tbody tr').length"
        assert await tab.until(f"{rows} === 2 && {rows}", "two sessions listed") == 2
        await tab.evaluate(f"document.querySelector('tr[data-session-id={s.first}]').click()")
        await tab.until(f"window.arcSessions.shown === {json.dumps(s.first)}", "session shown")
        assert await tab.evaluate("document.querySelectorAll('#transcript li').length") == 4
        assert (
            await tab.evaluate("document.querySelectorAll('#transcript li.interrupted').length")
            == 1
        )
        assert await tab.evaluate("document.querySelectorAll('#latency .turn').length") == 2
        assert await tab.evaluate("document.querySelectorAll('#latency .bar .stage').length") == 9
        assert (await tab.evaluate("document.getElementById('sentiment').className")).endswith(
            "positive"
        )
        assert "weather" in await tab.evaluate("document.getElementById('summary').textContent")
        await tab.until(
            "document.getElementById('audio').src.startsWith('blob:')"
            " && document.getElementById('audio').readyState >= 1",
            "the recording loaded",
        )
        duration = await tab.evaluate("document.getElementById('audio').duration")
        assert duration == pytest.approx(24.0, abs=0.1)
        for seconds, line in ((20.5, 2), (9.0, 1), (6.0, 0), (23.0, 3), (1.0, None)):
            await tab.evaluate(f"document.getElementById('audio').currentTime = {seconds}")
            await tab.until(
                f"window.arcSessions.highlighted === {json.dumps(line)}"
                " && document.getElementById('audio').seeking === false",
                f"line {line} highlighted at {seconds} s",
            )


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
async def test_console_plays_each_part_of_a_resumed_session(env: Env, tmp_path: Path) -> None:
    """The console shows a part per conversation: a line plays in its own part, the
    highlight follows the part playing, and the end of one part plays on into the next."""
    resumed = await seed_resumed(env)
    async with chromium(tmp_path / "profile", url=f"{env.url}/sessions#key={API_KEY}") as tab:
        await tab.until("document.readyState === 'complete' && window.arcSessions", "page load")
        await tab.evaluate(
            f"document.querySelector('[name=room]').value = {json.dumps(f'lobby-{env.tag}')};"
            "document.getElementById('filters').requestSubmit()"
        )
        row = f"document.querySelector('tr[data-session-id={resumed.session}]')"
        await tab.until(f"{row} !== null", "the session listed")
        await tab.evaluate(f"{row}.click()")
        await tab.until(f"window.arcSessions.shown === {json.dumps(resumed.session)}", "shown")
        audio = "document.getElementById('audio')"
        loaded = f"window.arcSessions.part === %d && {audio}.readyState >= 1"
        await tab.until(loaded % 0, "the first part loaded")
        assert await tab.evaluate(f"{audio}.duration") == pytest.approx(12.0, abs=0.1)
        buttons = "Array.from(document.querySelectorAll('#parts button'), (b) => b.textContent)"
        assert await tab.evaluate(buttons) == ["Conversation 1 (00:12)", "Conversation 2 (00:08)"]
        stamps = "Array.from(document.querySelectorAll('#transcript .when'), (w) => w.textContent)"
        assert await tab.evaluate(stamps) == [
            "#1 00:02",
            "#1 00:04",
            "#2 00:01",
            "#2 00:03",
            "#2 00:06",
        ]

        async def heard_at(seconds: float, line: int | None) -> None:
            await tab.evaluate(f"{audio}.currentTime = {seconds}")
            await tab.until(
                f"window.arcSessions.highlighted === {json.dumps(line)} && !{audio}.seeking",
                f"line {line} highlighted at {seconds} s",
            )

        # In part 1, only its own lines are highlighted: 5 s is past line 1, not line 2 or 3
        # (whose offsets, in part 2, are smaller).
        await heard_at(5.0, 1)
        await heard_at(1.0, None)
        # A line of the second conversation plays in its own part.
        await tab.evaluate("document.querySelectorAll('#transcript li')[3].click()")
        await tab.until(loaded % 1, "the second part loaded")
        assert await tab.evaluate(f"{audio}.duration") == pytest.approx(8.0, abs=0.1)
        await tab.until("window.arcSessions.highlighted === 3", "the clicked line highlighted")
        await heard_at(7.0, 4)
        # Back in the first, played to its end: the second plays on.
        await tab.evaluate("document.querySelectorAll('#parts button')[0].click()")
        await tab.until(loaded % 0, "the first part again")
        await tab.evaluate(f"{audio}.currentTime = 11.5; {audio}.play()")
        await tab.until(
            f"window.arcSessions.part === 1 && !{audio}.paused && {audio}.currentTime > 0",
            "the second part playing on",
            within_s=20,
        )

"""Past sessions, for operators: listing, one session's transcript with its timings, its
recording, export, deletion, and a summary and sentiment label for each.

The plain core of the sessions API (`sessions_api.py` puts HTTP on it; docs/sessions.md).
Reads are plain SQL over the tables their owners write: `sessions` and `recordings` (this
worker), `conversations` (the brain), `turn_metrics` (the events service's analytics sink).
Deleting a session's turns is the brain's business, asked over NATS (`brain.session.delete`);
the recording file and row, and the marks on the session and its events, are this worker's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

from arc_common.errors import BadRequest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from arc_voice.recording import read_marks, remove_recording

log = logging.getLogger(__name__)

# What a session id may be: the worker makes uuid hex ids, the brain's HTTP chat takes the
# caller's; either way letters, digits and `_ . : @ -`, starting with a letter or digit (so
# `..` and friends never get as far as a query).
_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
LIST_LIMIT_MAX = 500
# A bound for the `part` query, far above any session's conversations.
RECORDING_PARTS_MAX = 10_000


class SessionNotFound(BadRequest):
    """No such session (or it was deleted): the contract's `bad_request`, read as 404."""

    http_status = 404


class SessionActive(BadRequest):
    """The session is still going: its recording is being written and its turns stored."""

    http_status = 409


class RecordingRefused(BadRequest):
    """The stored location of a recording is not inside the recordings directory."""

    http_status = 403


class RangeNotSatisfiable(BadRequest):
    """A `Range` header this API does not serve; `size` goes into `Content-Range: */size`."""

    http_status = 416

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


def checked_session_id(session_id: str) -> str:
    if not _SESSION_ID.fullmatch(session_id):
        raise BadRequest(
            "session id must be 1..128 letters, digits or _ . : @ -, starting with a letter "
            "or digit"
        )
    return session_id


# --- byte ranges -----------------------------------------------------------------------------

_RANGE = re.compile(r"\s*bytes\s*=\s*(?:(\d+)\s*-\s*(\d*)|-\s*(\d+))\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in `Content-Range`

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a `Range` header asks of a `size`-byte file, or None for the whole
    file (no header, or a unit other than bytes, which RFC 9110 says to ignore). Served:
    `bytes=a-b`, `bytes=a-` and `bytes=-n` (the last n bytes); `b` past the end means the end.
    Anything else, several ranges included, is `RangeNotSatisfiable` (416): audio players ask
    for one range at a time, and a clear refusal beats a multipart answer nobody reads."""
    if header is None or not header.strip():
        return None
    unit = header.split("=", 1)[0].strip().lower()
    if "=" in header and unit != "bytes":
        return None
    match = _RANGE.fullmatch(header)
    if match is None:
        raise RangeNotSatisfiable(
            "only one byte range is served: bytes=a-b, bytes=a- or bytes=-n", size=size
        )
    first, last, suffix = match.groups()
    if suffix is not None:
        n = int(suffix)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable("an empty suffix range selects nothing", size=size)
        return ByteRange(max(size - n, 0), size - 1)
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable(f"the range starts past the end ({size} bytes)", size=size)
    end = size - 1 if not last else min(int(last), size - 1)
    if end < start:
        raise RangeNotSatisfiable("the range ends before it starts", size=size)
    return ByteRange(start, end)


# --- summary and sentiment -------------------------------------------------------------------

# A small valence lexicon in the manner of VADER and AFINN (words people say to a voice
# agent, scored -3..3 by hand); enough to tell a thanking caller from an annoyed one.
_VALENCE: dict[str, float] = {
    **dict.fromkeys(("love", "excellent", "amazing", "wonderful", "fantastic", "perfect"), 3.0),
    **dict.fromkeys(("awesome", "brilliant", "delighted", "thrilled", "superb"), 3.0),
    **dict.fromkeys(("great", "thanks", "thank", "happy", "glad", "helpful", "nice"), 2.0),
    **dict.fromkeys(("good", "enjoy", "enjoyed", "pleased", "appreciate", "cool", "like"), 1.5),
    **dict.fromkeys(("fine", "okay", "ok", "works", "worked", "right", "yes", "please"), 0.5),
    **dict.fromkeys(("hate", "terrible", "awful", "horrible", "useless", "worst"), -3.0),
    **dict.fromkeys(("furious", "disgusting", "pathetic", "stupid", "garbage"), -3.0),
    **dict.fromkeys(("bad", "angry", "annoyed", "annoying", "frustrated", "broken"), -2.0),
    **dict.fromkeys(("wrong", "upset", "sad", "disappointed", "problem", "fail", "failed"), -2.0),
    **dict.fromkeys(("confused", "slow", "worse", "poor", "unhappy", "sorry", "issue"), -1.5),
    **dict.fromkeys(("no", "not", "never", "stop", "again", "waiting", "late"), -0.5),
}
_NEGATION_TEXT = """
    not no never nothing hardly don't dont isn't isnt wasn't didn't didnt doesn't doesnt can't
    cant won't"""
_NEGATIONS = frozenset(_NEGATION_TEXT.split())
_BOOSTERS: dict[str, float] = {
    **dict.fromkeys(("very", "really", "so", "extremely", "totally", "absolutely"), 1.5),
    **dict.fromkeys(("super", "incredibly", "truly"), 1.5),
    **dict.fromkeys(("slightly", "somewhat", "kinda", "barely", "little"), 0.5),
}
# Words that carry valence alone but also work as negators or fillers: scored only when no
# other sentiment word is around them (see `_clause_score`).
_WEAK = frozenset(("no", "not", "never", "please", "yes", "right", "like", "again"))
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
# VADER's normalisation constant: a raw sum of valences maps into -1..1 as x / sqrt(x² + alpha).
_ALPHA = 15.0
_THRESHOLD = 0.05

# Words too common to be a topic.
_STOPWORD_TEXT = """
    a about after again all also am an and any are as at be been before being but by can
    could did do does doing don't for from get got had has have having he her here hers him his
    how i i'd i'll i'm i've if in into is it it's its just know let let's like me might more
    most my no nor not now of off on once only or other our out over please really say said
    she should so some such tell than that that's the their them then there these they this
    those through to too up us very want was we well were what when where which while who why
    will with would yeah yes you your hi hello hey okay ok thanks thank one two can't what's
    need make much many maybe sure right go going way something anything"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())

Label = Literal["positive", "neutral", "negative"]


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: Label
    # -1 (very negative) .. 1 (very positive), VADER's "compound" scale.
    score: float


def _clause_score(words: list[str]) -> float:
    total = 0.0
    strong = any(w in _VALENCE and w not in _WEAK for w in words)
    for i, word in enumerate(words):
        valence = _VALENCE.get(word)
        if valence is None or (strong and word in _WEAK):
            continue
        window = words[max(0, i - 3) : i]
        for before in window:
            valence *= _BOOSTERS.get(before, 1.0)
        if any(w in _NEGATIONS for w in window):
            # "not good" is mildly negative, "not bad" mildly positive (VADER's 0.74).
            valence *= -0.74
        total += valence
    return total


def sentiment(texts: Iterable[str]) -> Sentiment:
    """Lexicon-based sentiment of what the person said: each word's valence, scaled by a
    booster before it, flipped by a negation within three words before it; clauses after a
    "but" count 1.5x (what follows "but" is what the person means). Neutral within ±0.05."""
    raw = 0.0
    for text in texts:
        for sentence in re.split(r"[.!?;]+", text.lower()):
            clauses = re.split(r"\bbut\b", sentence)
            for n, clause in enumerate(clauses):
                weight = 1.5 if n > 0 else 1.0
                raw += weight * _clause_score(_WORD.findall(clause))
    score = raw / math.sqrt(raw * raw + _ALPHA) if raw else 0.0
    label: Label = (
        "positive" if score >= _THRESHOLD else "negative" if score <= -_THRESHOLD else "neutral"
    )
    return Sentiment(label, round(score, 3))


def topics(texts: Iterable[str], k: int = 3) -> list[str]:
    """The person's most repeated content words (ties: the first said), as a topic hint."""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for word in (w for text in texts for w in _WORD.findall(text.lower())):
        if len(word) < 4 or word in _STOPWORDS or word in _VALENCE:
            continue
        counts[word] += 1
        first_seen.setdefault(word, len(first_seen))
    ranked = sorted(counts, key=lambda w: (-counts[w], first_seen[w]))
    return ranked[:k]


def _clip(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def summarize(lines: Sequence[Line]) -> str:
    """An extractive summary: how long, what the person came for (their first words), what
    they kept talking about, and how often they cut the agent off. Computed on read, so it
    follows the transcript as it is now (an interrupted answer as it was heard)."""
    said = [line.content for line in lines if line.role == "user" and line.content.strip()]
    turns = len({line.turn_id for line in lines})
    if not said and turns == 0:
        return "No words from the person in this session."
    if not said:
        return f"{turns} turn{'s' * (turns != 1)}; the person said nothing that was kept."
    parts = [f"{turns} turn{'s' * (turns != 1)}. The person opened with: “{_clip(said[0])}”"]
    found = topics(said)
    if found:
        parts.append(f"Topics: {', '.join(found)}.")
    if len(said) > 1:
        parts.append(f"Last: “{_clip(said[-1], 100)}”")
    cut = sum(1 for line in lines if line.role == "assistant" and line.interrupted)
    if cut:
        parts.append(f"They interrupted the agent {cut} time{'s' * (cut != 1)}.")
    return " ".join(parts)


# --- what a session is, as read --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionFilter:
    user_id: str | None = None
    room: str | None = None
    since: datetime | None = None  # started at or after
    until: datetime | None = None  # started before
    limit: int = 50


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    user_id: str | None
    room: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    turns: int
    has_recording: bool

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = None if self.ended_at is None else self.ended_at.isoformat()
        ended = self.ended_at
        data["duration_ms"] = (
            None if ended is None else round((ended - self.started_at).total_seconds() * 1000)
        )
        return data


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the transcript, placed for following the recording: `part` is the index of
    the recording it was heard in (a resumed session has one per conversation; None when the
    session has no recording), `offset_ms` its place from that recording's start (from the
    session's start when there is none)."""

    turn_id: str
    role: str
    content: str
    interrupted: bool
    created_at: datetime
    offset_ms: int
    part: int | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


_STAGES = (
    "end_of_speech_ms",
    "stt_ms",
    "brain_first_delta_ms",
    "tts_first_chunk_ms",
    "transport_ms",
    "voice_to_voice_ms",
)


@dataclass(frozen=True, slots=True)
class TurnTiming:
    turn_id: str
    occurred_at: datetime
    stages: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        return {"turn_id": self.turn_id, "occurred_at": self.occurred_at.isoformat(), **self.stages}


@dataclass(frozen=True, slots=True)
class Recording:
    uri: str
    mime_type: str
    duration_ms: int | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        # Where the file lies is not told, only its type and length.
        return {"mime_type": self.mime_type, "duration_ms": self.duration_ms}


@dataclass(frozen=True, slots=True)
class SessionView:
    session: SessionRow
    lines: list[Line]
    timings: list[TurnTiming]
    recordings: list[Recording]
    summary: str
    sentiment: Sentiment
    latency: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The API's and the JSON export's body: `recordings` has one part per conversation
        (in order; `GET .../recording?part=N` serves each), and `recording` is the first, as
        before parts."""
        parts = [
            {"part": n, **r.to_json(), "started_at": r.created_at.isoformat()}
            for n, r in enumerate(self.recordings)
        ]
        return {
            **self.session.to_json(),
            "summary": self.summary,
            "sentiment": {"label": self.sentiment.label, "score": self.sentiment.score},
            "recording": self.recordings[0].to_json() if self.recordings else None,
            "recordings": parts,
            "transcript": [line.to_json() for line in self.lines],
            "turn_timings": [t.to_json() for t in self.timings],
            "latency": self.latency,
        }


def render_text(view: SessionView) -> str:
    """The plain-text export: a header, then one line per utterance with its offset."""
    s = view.session
    head = [
        f"Session {s.session_id}",
        f"User: {s.user_id or '-'}   Room: {s.room or '-'}   Status: {s.status}",
        f"Started: {s.started_at.isoformat()}   Ended: "
        f"{s.ended_at.isoformat() if s.ended_at else '-'}",
        f"Summary: {view.summary}",
        f"Sentiment: {view.sentiment.label} ({view.sentiment.score:+.3f})",
        "",
    ]
    body = []
    several = len(view.recordings) > 1
    for line in view.lines:
        seconds = line.offset_ms // 1000
        stamp = f"{seconds // 60:02d}:{seconds % 60:02d}"
        if several and line.part is not None:
            stamp = f"part {line.part + 1} {stamp}"
        cut = " [interrupted]" if line.interrupted else ""
        body.append(f"[{stamp}] {line.role}: {line.content}{cut}")
    return "\n".join(head + body) + "\n"


def recording_path(uri: str, directory: Path) -> Path:
    """The file a `file://` recording uri names, only when it lies inside `directory`
    (symbolic links resolved): a row pointing anywhere else, by `..` or otherwise, is refused
    and the refusal does not say where it pointed."""
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path:
        raise RecordingRefused("the recording is not a local file this service serves")
    root = directory.resolve()
    path = Path(unquote(parts.path)).resolve()
    if not path.is_relative_to(root) or path == root:
        raise RecordingRefused("the recording lies outside the recordings directory")
    return path


# --- the brain's half of deleting ------------------------------------------------------------


class HistoryEraser(Protocol):
    async def delete(self, session_id: str) -> int: ...


# --- the store -------------------------------------------------------------------------------

_LIST = """
SELECT s.session_id, s.user_id, s.room, s.status, s.started_at, s.ended_at, s.end_reason,
       (SELECT count(DISTINCT c.turn_id) FROM agents.conversations c
        WHERE c.session_id = s.session_id) AS turns,
       EXISTS (SELECT 1 FROM agents.recordings r WHERE r.session_id = s.session_id)
           AS has_recording
FROM agents.sessions s
WHERE s.deleted_at IS NULL
  AND (%(user_id)s::text IS NULL OR s.user_id = %(user_id)s)
  AND (%(room)s::text IS NULL OR s.room = %(room)s)
  AND (%(since)s::timestamptz IS NULL OR s.started_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR s.started_at < %(until)s)
ORDER BY s.started_at DESC, s.session_id
LIMIT %(limit)s
"""

_ONE = _LIST.replace(
    "WHERE s.deleted_at IS NULL", "WHERE s.deleted_at IS NULL AND s.session_id = %(session_id)s"
)

# A turn's rows in the order they happened: the turn's first row sets its place, and within
# a turn the person speaks before the agent (the brain writes both rows at once; a truncation
# by another brain replica may have written the answer's row before them, docs/brain.md).
_LINES = """
SELECT turn_id, role, content, interrupted, created_at
FROM agents.conversations
WHERE session_id = %s
ORDER BY min(created_at) OVER (PARTITION BY turn_id), turn_id,
         CASE role WHEN 'user' THEN 0 WHEN 'assistant' THEN 1 ELSE 2 END, id
"""

_TIMINGS = sql.SQL("""
SELECT turn_id, occurred_at, {stages}
FROM agents.turn_metrics
WHERE session_id = %s
ORDER BY occurred_at, turn_id
""").format(stages=sql.SQL(", ").join(map(sql.Identifier, _STAGES)))

_LATENCY = """
SELECT avg_stt_ms, avg_brain_first_delta_ms, avg_tts_first_chunk_ms,
       p50_voice_to_voice_ms, p95_voice_to_voice_ms
FROM agents.session_turn_summary
WHERE session_id = %s
"""

# One file per conversation of the session (a resumed session has several), in the order
# they were made.
_RECORDINGS = """
SELECT uri, mime_type, duration_ms, created_at
FROM agents.recordings
WHERE session_id = %s
ORDER BY created_at, id
"""

_RECORDING_URIS = "SELECT uri FROM agents.recordings WHERE session_id = %s"
_DELETE_RECORDINGS = "DELETE FROM agents.recordings WHERE session_id = %s"
_MARK_SESSION = """
UPDATE agents.sessions
SET deleted_at = now(), metadata = metadata || %s
WHERE session_id = %s AND deleted_at IS NULL
"""
# The session's events keep their shape (consumers still decode them) but lose the words.
_MARK_EVENTS = """
UPDATE agents.{table}
SET session_deleted_at = now(),
    payload = CASE WHEN type = 'conversation.turn'
                   THEN payload || '{{"user_text": "[deleted]", "assistant_text": "[deleted]"}}'
                   ELSE payload END
WHERE session_id = %s AND session_deleted_at IS NULL
"""


@dataclass(frozen=True, slots=True)
class Deleted:
    session_id: str
    deleted_turns: int
    recordings_removed: int
    events_marked: int

    def to_json(self) -> dict[str, Any]:
        return {"deleted": True, **asdict(self)}


def _offset_ms(at: datetime, start: datetime) -> int:
    return max(0, round((at - start).total_seconds() * 1000))


class SessionStore:
    """The queries and the deletion, over the worker's Postgres pool and the brain."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], eraser: HistoryEraser, recordings: Path
    ) -> None:
        self._pool = pool
        self._eraser = eraser
        self._recordings = recordings

    async def list_sessions(self, query: SessionFilter) -> list[SessionRow]:
        if not 1 <= query.limit <= LIST_LIMIT_MAX:
            raise BadRequest(f"limit must be 1..{LIST_LIMIT_MAX}")
        params = {
            "user_id": query.user_id,
            "room": query.room,
            "since": query.since,
            "until": query.until,
            "limit": query.limit,
        }
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_LIST, params)
            return [SessionRow(**row) for row in await cur.fetchall()]

    async def session(self, session_id: str) -> SessionRow:
        params = {
            "session_id": checked_session_id(session_id),
            "user_id": None,
            "room": None,
            "since": None,
            "until": None,
            "limit": 1,
        }
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_ONE, params)
            row = await cur.fetchone()
        if row is None:
            raise SessionNotFound(f"no session {session_id}")
        return SessionRow(**row)

    async def view(self, session_id: str) -> SessionView:
        """The session with its transcript, timings, recording, summary and sentiment (the
        last two computed now from the transcript: cheap, and never stale)."""
        row = await self.session(session_id)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_LINES, (session_id,))
            rows = await cur.fetchall()
            await cur.execute(_TIMINGS, (session_id,))
            timing_rows = await cur.fetchall()
            await cur.execute(_LATENCY, (session_id,))
            latency = await cur.fetchone() or {}
            await cur.execute(_RECORDINGS, (session_id,))
            recordings = [Recording(**r) for r in await cur.fetchall()]
        marks = await asyncio.to_thread(lambda: [self._marks(r.uri) for r in recordings])
        timings = [
            TurnTiming(t["turn_id"], t["occurred_at"], {k: t[k] for k in _STAGES})
            for t in timing_rows
        ]
        lines = _timed_lines(rows, row.started_at, recordings, marks)
        return SessionView(
            session=row,
            lines=lines,
            timings=timings,
            recordings=recordings,
            summary=summarize(lines),
            sentiment=sentiment(line.content for line in lines if line.role == "user"),
            latency={k: None if v is None else float(v) for k, v in latency.items()},
        )

    async def recording(self, session_id: str, part: int = 0) -> tuple[Path, str]:
        """The file of the session's recording `part` (0: its first conversation) and its
        media type; 404 when there is none (or its file is gone), 403 when its row points
        outside the recordings directory."""
        await self.session(session_id)
        async with self._pool.connection() as conn:
            cur = await conn.execute(_RECORDINGS, (session_id,))
            rows = await cur.fetchall()
        if not rows:
            raise SessionNotFound(f"session {session_id} has no recording")
        if part >= len(rows):
            raise SessionNotFound(
                f"session {session_id} has {len(rows)} recording part(s); no part {part}"
            )
        uri, mime_type = rows[part][0], rows[part][1]
        try:
            path = recording_path(uri, self._recordings)
        except RecordingRefused:
            log.warning(
                "recording of session %s points outside the recordings directory: %r",
                session_id,
                uri,
            )
            raise
        if not path.is_file():
            raise SessionNotFound(f"the recording of session {session_id} is missing")
        return path, mime_type

    async def delete(self, session_id: str, *, force: bool = False) -> Deleted:
        """Delete the session: its turns (by the brain), its recording files and rows, then
        mark the session and its events deleted. The order makes a failure safe to retry:
        nothing is marked until the words are gone, and each step finds its work done the
        second time."""
        row = await self.session(session_id)
        if row.status == "active" and not force:
            raise SessionActive(
                f"session {session_id} is still active; end it first (or pass force=true)"
            )
        turns = await self._eraser.delete(session_id)
        async with self._pool.connection() as conn:
            cur = await conn.execute(_RECORDING_URIS, (session_id,))
            uris = [uri for (uri,) in await cur.fetchall()]
        removed = sum([self._remove_file(session_id, uri) for uri in uris])
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(_DELETE_RECORDINGS, (session_id,))
            mark = {"deleted_turns": turns, "recordings_removed": removed}
            await conn.execute(_MARK_SESSION, (Jsonb({"deletion": mark}), session_id))
            marked = 0
            for table in ("outbox", "event_audit"):
                cur = await conn.execute(_MARK_EVENTS.format(table=table), (session_id,))
                marked += cur.rowcount
        log.info(
            "deleted session %s: %d turns, %d recordings, %d events marked",
            session_id,
            turns,
            removed,
            marked,
        )
        return Deleted(session_id, turns, removed, marked)

    def _marks(self, uri: str) -> dict[tuple[str, str], int]:
        try:
            return read_marks(recording_path(uri, self._recordings))
        except RecordingRefused:
            return {}  # the recording itself is refused, and logged, where it is asked for

    def _remove_file(self, session_id: str, uri: str) -> bool:
        try:
            path = recording_path(uri, self._recordings)
        except RecordingRefused:
            # Never delete a file this service does not own, whatever a row says.
            log.warning(
                "recording of session %s outside the recordings directory kept: %r", session_id, uri
            )
            return False
        return remove_recording(path)


def _timed_lines(
    rows: Sequence[dict[str, Any]],
    start: datetime,
    recordings: Sequence[Recording],
    marks: Sequence[dict[tuple[str, str], int]],
) -> list[Line]:
    """Each line's place in the recordings: the part whose marks have it (the person began to
    speak, the answer's first audio went out), else the part that was being recorded when its
    row was stored, at that time from the part's start. The brain stores a turn's rows
    together once the answer is generated, so a line placed by its row shows up about a turn
    late (a typed message, a recording made before marks). With no recording, from the
    session's start."""
    lines = []
    for r in rows:
        key = (r["turn_id"], r["role"])
        part = next((n for n, found in enumerate(marks) if key in found), None)
        if part is not None:
            offset = marks[part][key]
        elif recordings:
            part = _part_at(recordings, r["created_at"])
            offset = _offset_ms(r["created_at"], recordings[part].created_at)
        else:
            offset = _offset_ms(r["created_at"], start)
        lines.append(
            Line(
                r["turn_id"],
                r["role"],
                r["content"],
                r["interrupted"],
                r["created_at"],
                offset,
                part,
            )
        )
    return lines


def _part_at(recordings: Sequence[Recording], at: datetime) -> int:
    """The last part begun by `at` (the first when `at` is before them all)."""
    begun = [n for n, r in enumerate(recordings) if r.created_at <= at]
    return begun[-1] if begun else 0

"""Conversation history and per-user memory in Postgres + pgvector.

Every call is bounded by a short timeout. When Postgres is unreachable the store says so at
once (`MemoryUnavailable`) instead of making each turn wait, keeps the turns it could not
write in a bounded backlog, and a probe task it owns brings it back (and writes the backlog)
as soon as Postgres answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from arc_common.errors import Internal
from arc_common.events import ConversationTurn, write_event
from pgvector.psycopg import register_vector_async
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from arc_brain.embedding import Vector

log = logging.getLogger(__name__)

# Failures that mean "the database is not there", as opposed to a bug in a query.
_OUTAGE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, TimeoutError, OSError)


class MemoryUnavailable(Internal):
    """Postgres cannot be reached; the turn goes on without memory."""


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    turn_id: str
    user_text: str
    assistant_text: str
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class Memory:
    """Something the user said before: a fact they asked to keep, or an earlier turn."""

    content: str
    similarity: float
    created_at: datetime
    kind: str  # "fact" | "turn"


@dataclass(frozen=True, slots=True)
class Fact:
    """A fact to keep for the user, in their words; a newer fact in the same slot replaces
    the older one."""

    content: str
    embedding: Vector
    slot: str | None = None


@dataclass(slots=True)
class TurnRecord:
    session_id: str
    turn_id: str
    user_id: str
    user_text: str
    assistant_text: str
    embedding: Vector | None
    room: str | None = None
    interrupted: bool = False
    route: str | None = None
    facts: list[Fact] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    turn_id: str
    user_id: str
    role: str
    content: str
    interrupted: bool
    created_at: datetime


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Each new pool connection: numpy arrays travel as pgvector's binary `vector`, and HNSW
    scans filtered by user keep going until they find enough of that user's rows."""
    await register_vector_async(conn)
    await conn.execute("SET hnsw.iterative_scan = relaxed_order")


_HISTORY = """
SELECT turn_id, role, content, interrupted
FROM agents.conversations
WHERE session_id = %s AND role IN ('user', 'assistant')
ORDER BY created_at DESC, id DESC
LIMIT %s
"""

# One round trip for both kinds of memory; each half can use its own HNSW index.
_RECALL = """
(SELECT 'fact' AS kind, content, 1 - (embedding <=> %(q)b) AS similarity, created_at
 FROM agents.memories
 WHERE user_id = %(user)s
 ORDER BY embedding <=> %(q)b
 LIMIT %(k)s)
UNION ALL
(SELECT 'turn' AS kind, content, 1 - (embedding <=> %(q)b) AS similarity, created_at
 FROM agents.conversations
 WHERE user_id = %(user)s AND role = 'user' AND embedding IS NOT NULL
   AND session_id <> %(session)s
 ORDER BY embedding <=> %(q)b
 LIMIT %(k)s)
"""

_INSERT_SESSION = """
INSERT INTO agents.sessions (session_id, user_id, room) VALUES (%s, %s, %s)
ON CONFLICT (session_id) DO NOTHING
"""

_INSERT_TURN = """
INSERT INTO agents.conversations
    (session_id, turn_id, user_id, role, content, embedding, interrupted)
VALUES (%s, %s, %s, %s, %s, %b, %s)
ON CONFLICT (session_id, turn_id, role) DO NOTHING
RETURNING id
"""

_INSERT_FACT = """
INSERT INTO agents.memories (user_id, session_id, turn_id, content, embedding, slot)
VALUES (%s, %s, %s, %s, %b, %s)
ON CONFLICT (session_id, turn_id, content) DO NOTHING
"""

_REPLACE_SLOT = "DELETE FROM agents.memories WHERE user_id = %s AND slot = %s"

# By slot when the topic maps to one ("sister" forgets "sister" and "sister:lives"), else by
# the topic's words in the fact.
_FORGET = """
DELETE FROM agents.memories
WHERE user_id = %(user)s
  AND ((%(slot)s::text IS NOT NULL AND (slot = %(slot)s OR slot LIKE %(slot)s || ':%%'))
       OR content ILIKE '%%' || %(topic)s || '%%')
"""

# Returns the person's words of the turn, which a second `conversation.turn` event carries.
_TRUNCATE = """
UPDATE agents.conversations a SET content = %(heard)s, interrupted = true
WHERE a.session_id = %(session)s AND a.turn_id = %(turn)s AND a.role = 'assistant'
RETURNING a.user_id,
    (SELECT u.content FROM agents.conversations u
     WHERE u.session_id = a.session_id AND u.turn_id = a.turn_id AND u.role = 'user')
"""

# A truncation for a turn this brain has not stored: the replica that answered it may still be
# writing it. What was heard is written now; that replica's insert then finds the answer's row
# and keeps it (`_INSERT_TURN` does nothing on conflict), and its event carries the heard text.
_TRUNCATE_AHEAD = """
INSERT INTO agents.conversations (session_id, turn_id, user_id, role, content, interrupted)
VALUES (%(session)s, %(turn)s, %(user)s, 'assistant', %(heard)s, true)
ON CONFLICT (session_id, turn_id, role) DO UPDATE SET content = EXCLUDED.content, interrupted = true
"""

_ANSWER_STORED = """
SELECT content, interrupted FROM agents.conversations
WHERE session_id = %s AND turn_id = %s AND role = 'assistant'
"""

# Every row of the session's history; `turn_id`s come back so the reply counts turns, not the
# two rows (person, agent) each turn has.
_DELETE_SESSION = """
DELETE FROM agents.conversations WHERE session_id = %s RETURNING turn_id
"""

_EXPORT = """
SELECT turn_id, user_id, role, content, interrupted, created_at
FROM agents.conversations
WHERE session_id = %s
ORDER BY created_at, id
"""


@dataclass
class MemoryStats:
    outages: int = 0
    recoveries: int = 0
    backlog_written: int = 0
    backlog_dropped: int = 0
    last_error: str | None = None


class MemoryStore:
    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int = 1,
        pool_max: int = 8,
        timeout_s: float = 0.5,
        probe_interval_s: float = 1.0,
        backlog: int = 10_000,
    ) -> None:
        self._dsn = dsn
        self._timeout = timeout_s
        self._probe_interval = probe_interval_s
        self._pool = AsyncConnectionPool(
            dsn,
            min_size=pool_min,
            max_size=pool_max,
            open=False,
            timeout=timeout_s,
            # No check on checkout (it costs a round trip per call): after an outage the probe
            # runs `pool.check()`, which drops the connections the outage broke.
            kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout_s * 2))},
            configure=_configure,
            name="brain-memory",
        )
        self._available = False
        self._down = asyncio.Event()
        self._backlog: deque[TurnRecord] = deque()
        self._backlog_max = backlog
        self._probe: asyncio.Task[None] | None = None
        self.stats = MemoryStats()

    @property
    def available(self) -> bool:
        return self._available

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    async def open(self) -> None:
        """Never fails on an absent database: the brain starts and answers without memory."""
        await self._pool.open(wait=False)
        if await self._ping():
            self._available = True
        else:
            self._mark_down("not reachable at start-up")
        self._probe = asyncio.create_task(self._probe_loop(), name="memory-probe")

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        if self._backlog:
            log.warning("%d unwritten turns dropped at shutdown", len(self._backlog))
        await self._pool.close(timeout=2.0)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if not self._available:
            raise MemoryUnavailable("memory is unavailable: Postgres is not reachable")
        try:
            async with asyncio.timeout(self._timeout), self._pool.connection() as conn:
                yield conn
        except _OUTAGE as exc:
            self._mark_down(f"{type(exc).__name__}: {exc}")
            raise MemoryUnavailable(f"memory is unavailable: {exc}") from exc

    def _mark_down(self, reason: str) -> None:
        if self._available or self.stats.outages == 0:
            log.warning("memory unavailable, answering without it: %s", reason)
        if self._available:
            self.stats.outages += 1
        self._available = False
        self.stats.last_error = reason
        self._down.set()

    async def _ping(self) -> bool:
        try:
            async with (
                asyncio.timeout(self._timeout * 2),
                await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=max(1, round(self._timeout * 2))
                ) as conn,
            ):
                await conn.execute("SELECT 1 FROM agents.conversations LIMIT 0")
            return True
        except (*_OUTAGE, psycopg.Error) as exc:
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            return False

    async def _probe_loop(self) -> None:
        while True:
            await self._down.wait()
            await asyncio.sleep(self._probe_interval)
            if not await self._ping():
                continue
            # Drop connections the outage broke before turns use the pool again.
            with contextlib.suppress(*_OUTAGE, psycopg.Error):
                async with asyncio.timeout(self._timeout * 4):
                    await self._pool.check()
            self._available = True
            self._down.clear()
            self.stats.recoveries += 1
            log.info("memory is back; writing %d backlogged turns", len(self._backlog))
            await self._write_backlog()

    async def _write_backlog(self) -> None:
        while self._backlog and self._available:
            record = self._backlog[0]
            try:
                await self._save(record)
            except MemoryUnavailable:
                return
            except Exception:
                # One bad record must not block the others (or kill the probe task).
                log.exception("backlogged turn %s could not be written; dropped", record.turn_id)
                self.stats.backlog_dropped += 1
            else:
                self.stats.backlog_written += 1
            self._backlog.popleft()

    async def history(self, session_id: str, turns: int) -> list[HistoryTurn]:
        """The session's last `turns` exchanges, oldest first."""
        if turns <= 0:
            return []
        async with self._connection() as conn:
            cur = await conn.execute(_HISTORY, (session_id, turns * 2))
            rows = await cur.fetchall()
        by_turn: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        for turn_id, role, content, interrupted in reversed(rows):
            if turn_id not in by_turn:
                by_turn[turn_id] = {"user": "", "assistant": "", "interrupted": False}
                order.append(turn_id)
            by_turn[turn_id][role] = content
            if role == "assistant":
                by_turn[turn_id]["interrupted"] = interrupted
        return [
            HistoryTurn(t, by_turn[t]["user"], by_turn[t]["assistant"], by_turn[t]["interrupted"])
            for t in order
        ]

    async def recall(
        self, user_id: str, session_id: str, query: Vector, *, k: int, min_similarity: float
    ) -> list[Memory]:
        """This user's facts and earlier turns (other sessions) nearest to `query`, best first.
        Filtering by user is in the SQL itself: another user's rows are never read."""
        params = {"q": query, "user": user_id, "session": session_id, "k": k}
        async with self._connection() as conn:
            rows = await (await conn.execute(_RECALL, params)).fetchall()
        found = [
            Memory(content, float(similarity), created_at, kind)
            for kind, content, similarity, created_at in rows
            if similarity >= min_similarity
        ]
        found.sort(key=lambda m: m.similarity, reverse=True)
        return found[:k]

    async def save_turn(self, record: TurnRecord) -> bool:
        """Writes the turn, its embedding, any fact and the outbox event in one transaction.
        Returns False when Postgres is down and the turn waits in the backlog instead."""
        try:
            await self._save(record)
            return True
        except MemoryUnavailable:
            if len(self._backlog) >= self._backlog_max:
                self._backlog.popleft()
                self.stats.backlog_dropped += 1
            self._backlog.append(record)
            return False

    async def _save(self, r: TurnRecord) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_INSERT_SESSION, (r.session_id, r.user_id, r.room))
            cur = await conn.execute(
                _INSERT_TURN,
                (r.session_id, r.turn_id, r.user_id, "user", r.user_text, r.embedding, False),
            )
            if await cur.fetchone() is None:
                return  # written before (a retried turn): nothing new to record
            answer, interrupted = r.assistant_text, r.interrupted
            cur = await conn.execute(
                _INSERT_TURN,
                (r.session_id, r.turn_id, r.user_id, "assistant", answer, None, interrupted),
            )
            if await cur.fetchone() is None:
                # A truncation got here first (`_TRUNCATE_AHEAD`): what was heard stands.
                cur = await conn.execute(_ANSWER_STORED, (r.session_id, r.turn_id))
                stored = await cur.fetchone()
                assert stored is not None  # the conflict was on this very row
                answer, interrupted = stored
            for fact in r.facts:
                if fact.slot is not None:
                    await conn.execute(_REPLACE_SLOT, (r.user_id, fact.slot))
                await conn.execute(
                    _INSERT_FACT,
                    (r.user_id, r.session_id, r.turn_id, fact.content, fact.embedding, fact.slot),
                )
            await write_event(
                conn,
                ConversationTurn(
                    session_id=r.session_id,
                    turn_id=r.turn_id,
                    user_id=r.user_id,
                    user_text=r.user_text,
                    assistant_text=answer,
                    interrupted=interrupted,
                    route=r.route,
                ),
            )

    async def forget(self, user_id: str, topic: str, slot: str | None) -> int:
        """Delete this user's facts about `topic`; how many there were."""
        params = {"user": user_id, "topic": topic, "slot": slot}
        async with self._connection() as conn:
            cur = await conn.execute(_FORGET, params)
            return cur.rowcount

    async def truncate(
        self, session_id: str, turn_id: str, heard: str, *, user_id: str | None = None
    ) -> bool:
        """Keep only what the person heard of an interrupted answer, and say so durably: a
        second `conversation.turn` event for the turn, written with the change, supersedes
        the first. False when no such turn is stored, unless `user_id` is given: then the
        caller knows the turn exists (it played it), and what was heard is written ahead of
        the turn itself."""
        for record in self._backlog:
            if record.session_id == session_id and record.turn_id == turn_id:
                record.assistant_text = heard
                record.interrupted = True
                return True
        params = {"heard": heard, "session": session_id, "turn": turn_id, "user": user_id}
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(_TRUNCATE, params)
            stored = await cur.fetchone()
            if stored is None:
                if user_id is None:
                    return False
                await conn.execute(_TRUNCATE_AHEAD, params)
                return True
            owner, user_text = stored
            if user_text is not None:  # else only an earlier truncation wrote the turn
                await write_event(
                    conn,
                    ConversationTurn(
                        session_id=session_id,
                        turn_id=turn_id,
                        user_id=owner,
                        user_text=user_text,
                        assistant_text=heard,
                        interrupted=True,
                    ),
                )
            return True

    async def delete_session(self, session_id: str) -> int:
        """Forget the session's conversation history: its turns in Postgres and any still
        waiting in the backlog (else they would come back once Postgres does). How many turns
        went; 0 for a session never stored, so asking twice is harmless. Facts the person asked
        to keep (`agents.memories`) are theirs across sessions and stay; `forget` removes
        those."""
        async with self._connection() as conn:
            cur = await conn.execute(_DELETE_SESSION, (session_id,))
            rows = await cur.fetchall()
        # Only once Postgres answered: a failed delete leaves everything as it was.
        waiting = [r for r in self._backlog if r.session_id == session_id]
        for record in waiting:
            self._backlog.remove(record)
        return len({turn_id for (turn_id,) in rows} | {r.turn_id for r in waiting})

    async def transcript(self, session_id: str) -> list[TranscriptLine]:
        async with self._connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(_EXPORT, (session_id,))
            rows = await cur.fetchall()
        return [TranscriptLine(*row) for row in rows]

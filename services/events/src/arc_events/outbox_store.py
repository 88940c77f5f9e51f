"""The relay's SQL over `agents.outbox`: unsent rows of the buckets it holds, marking rows
sent once the broker acknowledged them, and the backlog figures for /metrics."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: uuid.UUID
    topic: str
    type: str
    schema_version: int
    session_id: str | None
    occurred_at: datetime
    payload: bytes

    @property
    def key(self) -> str:
        """The Pulsar message key: one session's events share it, so they stay in order
        through Key_Shared consumers; an event without a session is its own key."""
        return self.session_id if self.session_id is not None else str(self.event_id)


@dataclass(frozen=True, slots=True)
class Backlog:
    unsent: int
    oldest_age_s: float


_FETCH = (
    "SELECT id, event_id, topic, type, schema_version, session_id, occurred_at,"
    " convert_to(payload::text, 'UTF8')"
    " FROM agents.outbox WHERE sent_at IS NULL AND relay_bucket = ANY(%s)"
    " AND NOT (id = ANY(%s)) ORDER BY id LIMIT %s"
)


async def fetch_unsent(
    conn: psycopg.AsyncConnection[Any],
    buckets: Collection[int],
    limit: int,
    *,
    exclude: Collection[int] = (),
) -> list[OutboxRow]:
    """Unsent rows of `buckets` (less `exclude`, rows being marked sent), oldest first. Rows
    are read, not locked: the bucket lease makes this relay the only one publishing them."""
    if not buckets:
        return []
    cur = await conn.execute(_FETCH, (sorted(buckets), list(exclude), limit))
    return [OutboxRow(*row) for row in await cur.fetchall()]


async def mark_sent(conn: psycopg.AsyncConnection[Any], ids: Sequence[int]) -> None:
    if ids:
        await conn.execute(
            "UPDATE agents.outbox SET sent_at = now(), attempts = attempts + 1"
            " WHERE id = ANY(%s) AND sent_at IS NULL",
            (list(ids),),
        )


async def record_failure(
    conn: psycopg.AsyncConnection[Any], ids: Sequence[int], error: str
) -> None:
    if ids:
        await conn.execute(
            "UPDATE agents.outbox SET attempts = attempts + 1, last_error = %s"
            " WHERE id = ANY(%s) AND sent_at IS NULL",
            (error[:1000], list(ids)),
        )


async def backlog(conn: psycopg.AsyncConnection[Any]) -> Backlog:
    cur = await conn.execute(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
        " FROM agents.outbox WHERE sent_at IS NULL"
    )
    row = await cur.fetchone()
    assert row is not None  # an aggregate always returns one row
    return Backlog(unsent=int(row[0]), oldest_age_s=float(row[1]))


async def delete_sent_before(conn: psycopg.AsyncConnection[Any], age_s: float) -> int:
    cur = await conn.execute(
        "DELETE FROM agents.outbox WHERE sent_at < now() - make_interval(secs => %s)",
        (age_s,),
    )
    return cur.rowcount

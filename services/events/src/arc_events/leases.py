"""Leases on the outbox's relay buckets, held as Postgres session advisory locks.

Every outbox row belongs to one of `BUCKETS` buckets (by session; see migration 0003). A
relay publishes only rows of buckets it holds, so each session's events go out through one
relay at a time, in id order, however many relays run. A lease dies with its connection,
so a relay killed with SIGKILL frees its buckets as soon as Postgres notices, and a peer
picks them up at its next rebalance.

Relays share the buckets evenly: each also holds one "member" lock, and counts the member
locks in `pg_locks` to learn how many peers are alive.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import psycopg

log = logging.getLogger(__name__)

BUCKETS = 64  # fixed by the generated column `agents.outbox.relay_bucket`
MAX_MEMBERS = 1024
# Advisory-lock key spaces (the first of the two int4 keys): "ARCM" members, "ARCB" buckets.
MEMBER_SPACE = 0x4152434D
BUCKET_SPACE = 0x41524342

_COUNT_MEMBERS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid = %s AND objsubid = 2"
)


def fair_share(members: int, buckets: int = BUCKETS) -> int:
    """How many buckets one relay should hold when `members` relays are alive."""
    return math.ceil(buckets / max(members, 1))


def preferred_order(slot: int, share: int, buckets: int = BUCKETS) -> list[int]:
    """The order in which member `slot` tries buckets: starting at its own stripe, so peers
    rarely race for the same ones."""
    start = (slot * share) % buckets
    return [(start + i) % buckets for i in range(buckets)]


class BucketLeases:
    """The bucket leases of one relay, on a dedicated autocommit connection."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._slot = -1
        self._held: set[int] = set()

    @property
    def held(self) -> frozenset[int]:
        return frozenset(self._held)

    @property
    def slot(self) -> int:
        return self._slot

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            await conn.close()  # ends the session, which releases every lease at once

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        try:
            for slot in range(MAX_MEMBERS):
                cur = await conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (MEMBER_SPACE, slot)
                )
                row = await cur.fetchone()
                if row is not None and row[0]:
                    self._slot = slot
                    return conn
        except BaseException:
            # Cancelled or failed between its locks: a member lock must not outlive this.
            await conn.close()
            raise
        await conn.close()
        raise RuntimeError(f"more than {MAX_MEMBERS} relays share this outbox")

    async def join(self) -> None:
        """Takes this relay's member slot, if it holds none: from then on its peers count it.
        On a database error it holds nothing and raises."""
        if self._conn is None or self._conn.closed:
            self._held.clear()
            self._conn = await self._connect()

    async def rebalance(self) -> frozenset[int]:
        """Takes free buckets up to this relay's fair share, gives back any above it, and
        returns what it holds. Call it only between batches: a bucket given back here may be
        published by a peer at once. On a lost connection it holds nothing and raises."""
        try:
            await self.join()
            conn = self._conn
            assert conn is not None
            cur = await conn.execute(_COUNT_MEMBERS, (MEMBER_SPACE,))
            row = await cur.fetchone()
            share = fair_share(int(row[0]) if row else 1)
            for bucket in sorted(self._held, reverse=True)[: max(len(self._held) - share, 0)]:
                await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (BUCKET_SPACE, bucket))
                self._held.discard(bucket)
            for bucket in preferred_order(self._slot, share):
                if len(self._held) >= share:
                    break
                if bucket in self._held:
                    continue
                cur = await conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (BUCKET_SPACE, bucket)
                )
                got = await cur.fetchone()
                if got is not None and got[0]:
                    self._held.add(bucket)
        except psycopg.Error:
            self._held.clear()
            lost, self._conn = self._conn, None
            if lost is not None and not lost.closed:
                await lost.close()
            raise
        return self.held

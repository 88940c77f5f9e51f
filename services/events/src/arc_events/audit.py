"""The conversation audit sink: every conversation and lifecycle event, as received, in
`agents.event_audit` (one row per event id, in arrival order)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
from arc_common.events import to_builtins
from arc_common.subjects import TOPIC_AGENT_LIFECYCLE, TOPIC_CONVERSATION

from arc_events.consumer import Received

_INSERT = (
    "INSERT INTO agents.event_audit (event_id, topic, type, schema_version, session_id,"
    " occurred_at, payload) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
    " ON CONFLICT (event_id) DO NOTHING"
)
_json = msgspec.json.Encoder()


class AuditSink:
    name = "audit"
    topics: tuple[str, ...] = (TOPIC_CONVERSATION, TOPIC_AGENT_LIFECYCLE)

    async def store(self, conn: psycopg.AsyncConnection[Any], batch: Sequence[Received]) -> None:
        rows = [
            (
                r.event.event_id,
                type(r.event).TOPIC,
                type(r.event).TYPE,
                type(r.event).VERSION,
                r.event.session_id,
                r.event.occurred_at,
                _json.encode(to_builtins(r.event)).decode(),
            )
            for r in batch
        ]
        if rows:
            async with conn.cursor() as cur:
                await cur.executemany(_INSERT, rows)

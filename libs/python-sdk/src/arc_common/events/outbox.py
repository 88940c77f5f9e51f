"""Writing events into `agents.outbox`, inside the caller's transaction.

The caller commits: an event is stored if and only if the state it describes is. The relay
(`python -m arc_events relay`) publishes it to its Pulsar topic afterwards.

An event written inside a traced span carries that trace's id as `trace_id` beside `type` and
`v` in the stored JSON: envelope metadata, not a schema field (the v1 schemas stay as they
are; every reader ignores keys it does not know), so a Pulsar consumer can link its own spans
to the turn that caused the event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import psycopg

from arc_common.events.codec import to_builtins, validate
from arc_common.events.schemas import Event
from arc_common.tracing import current_trace_id

_INSERT = (
    "INSERT INTO agents.outbox "
    "(event_id, topic, type, schema_version, session_id, occurred_at, payload) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
)
_json = msgspec.json.Encoder()


def _row(event: Event) -> tuple[Any, ...]:
    checked = validate(event)
    cls = type(checked)
    body = to_builtins(checked)
    trace_id = current_trace_id()
    if trace_id is not None:
        body["trace_id"] = trace_id
    payload = _json.encode(body).decode()
    return (
        checked.event_id,
        cls.TOPIC,
        cls.TYPE,
        cls.VERSION,
        checked.session_id,
        checked.occurred_at,
        payload,
    )


async def write_event(conn: psycopg.AsyncConnection[Any], event: Event) -> None:
    """Validates `event` (`BadRequest` when invalid, nothing written) and inserts it into the
    outbox in `conn`'s current transaction."""
    row = _row(event)
    async with conn.cursor() as cur:
        await cur.execute(_INSERT, row)


async def write_events(conn: psycopg.AsyncConnection[Any], events: Iterable[Event]) -> None:
    """`write_event` for many events in one round trip; all are validated before any is
    written."""
    rows = [_row(event) for event in events]
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(_INSERT, rows)

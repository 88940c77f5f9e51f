"""The analytics sink: `turn.metrics` events become rows of `agents.turn_metrics`, which the
view `agents.session_turn_summary` rolls up per session for dashboards."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from arc_common.events import TurnMetrics
from arc_common.subjects import TOPIC_SESSION_METRICS

from arc_events.consumer import Received

log = logging.getLogger(__name__)

_INSERT = (
    "INSERT INTO agents.turn_metrics (event_id, session_id, turn_id, occurred_at,"
    " end_of_speech_ms, stt_ms, brain_first_delta_ms, tts_first_chunk_ms, transport_ms,"
    " voice_to_voice_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (event_id) DO NOTHING"
)


class AnalyticsSink:
    name = "analytics"
    topics: tuple[str, ...] = (TOPIC_SESSION_METRICS,)

    async def store(self, conn: psycopg.AsyncConnection[Any], batch: Sequence[Received]) -> None:
        rows = []
        for received in batch:
            event = received.event
            if not isinstance(event, TurnMetrics):
                # A newer event type on this topic: acknowledged, recorded as processed, and
                # left for a version of this sink that knows it.
                log.info("analytics: skipping %s event %s", type(event).TYPE, event.event_id)
                continue
            rows.append((
                event.event_id, event.session_id, event.turn_id, event.occurred_at,
                event.end_of_speech_ms, event.stt_ms, event.brain_first_delta_ms,
                event.tts_first_chunk_ms, event.transport_ms, event.voice_to_voice_ms,
            ))  # fmt: skip
        if rows:
            async with conn.cursor() as cur:
                await cur.executemany(_INSERT, rows)

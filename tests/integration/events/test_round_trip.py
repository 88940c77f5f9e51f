"""Outbox to Pulsar to consumers, on a real broker and a real Postgres: each event applied
exactly once in effect, even when the relay sends it again."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from arc_common.events import SessionStarted, TurnMetrics, write_event
from arc_events.app import create_app
from arc_events.service import EventsService

from tests.fixtures.events import SettingsFactory, running
from tests.integration.events.support import audit_order, scalar, turn, wait_until

pytestmark = pytest.mark.integration


async def test_event_written_with_a_turn_arrives_once(
    events_settings: SettingsFactory, events_dsn: str
) -> None:
    settings = events_settings()
    started = SessionStarted(session_id="s-1", room="room-1", user_id="u1")
    first = turn("s-1", 1)
    metrics = TurnMetrics(
        session_id="s-1", turn_id="t1", stt_ms=80.0, brain_first_delta_ms=120.0,
        tts_first_chunk_ms=90.0, voice_to_voice_ms=640.0,
    )  # fmt: skip
    async with await psycopg.AsyncConnection.connect(events_dsn) as conn:
        await conn.execute(
            "INSERT INTO agents.sessions (session_id, user_id, room) VALUES ('s-1', 'u1', 'room-1')"
        )
        await write_event(conn, started)
        await write_event(conn, first)
        await write_event(conn, metrics)
        await conn.commit()

    async with running(settings) as service:

        async def delivered() -> bool:
            audited = await scalar(events_dsn, "SELECT count(*) FROM agents.event_audit")
            measured = await scalar(events_dsn, "SELECT count(*) FROM agents.turn_metrics")
            return audited == 2 and measured == 1

        await wait_until(delivered, timeout_s=60)
        # Order is kept per session within a topic; these two travel on different topics.
        audited = await audit_order(events_dsn)
        assert sorted(audited["s-1"]) == sorted([started.event_id, first.event_id])
        unsent = "SELECT count(*) FROM agents.outbox WHERE sent_at IS NULL"
        assert await scalar(events_dsn, unsent) == 0

        # The relay forgets it sent them (as after a crash between ack and mark-sent): the
        # broker gets every event again, and the consumers must change nothing.
        async with await psycopg.AsyncConnection.connect(events_dsn) as conn:
            await conn.execute("UPDATE agents.outbox SET sent_at = NULL")
            await conn.commit()

        async def resent_and_skipped() -> bool:
            audit = next(c for c in service.consumers if c.name == "audit").health
            analytics = next(c for c in service.consumers if c.name == "analytics").health
            return audit.duplicates >= 2 and analytics.duplicates >= 1

        await wait_until(resent_and_skipped, timeout_s=60)
        assert await scalar(events_dsn, "SELECT count(*) FROM agents.event_audit") == 2
        assert await scalar(events_dsn, "SELECT count(*) FROM agents.turn_metrics") == 1
        async with await psycopg.AsyncConnection.connect(events_dsn) as conn:
            cur = await conn.execute(
                "SELECT turns, p95_voice_to_voice_ms, avg_stt_ms FROM agents.session_turn_summary"
                " WHERE session_id = 's-1'"
            )
            assert await cur.fetchone() == (1, 640.0, 80.0)
            cur = await conn.execute(
                "SELECT payload->>'room' FROM agents.event_audit WHERE type = 'session.started'"
            )
            assert await cur.fetchone() == ("room-1",)


async def test_health_and_metrics_endpoints(events_settings: SettingsFactory) -> None:
    async with EventsService(events_settings()) as service:
        app = create_app(service)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://events") as http:

            async def healthy() -> bool:
                return (await http.get("/healthz")).status_code == 200

            await wait_until(healthy, timeout_s=60)
            body = (await http.get("/healthz")).json()
            assert body["status"] == "ok"
            assert body["relay"]["buckets"] == 64
            assert body["audit"]["subscribed"] and body["analytics"]["subscribed"]
            text = (await http.get("/metrics")).text
            for name in (
                "arc_events_outbox_backlog",
                "arc_events_outbox_oldest_unsent_age_seconds",
                "arc_events_relay_buckets 64.0",
            ):
                assert name in text

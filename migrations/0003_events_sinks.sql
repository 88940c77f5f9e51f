-- Events service: relay partitioning of the outbox, consumer idempotency, and the rows the
-- analytics and audit consumers keep. Every statement is idempotent.

-- Each outbox row belongs to one of 64 relay buckets, chosen by its ordering key (the
-- session, or the event itself when it has none). A relay publishes only the buckets whose
-- advisory-lock lease it holds, so one session's events are relayed by one relay at a time,
-- in id order. hashtext is immutable, so the bucket never changes once stored.
ALTER TABLE agents.outbox ADD COLUMN IF NOT EXISTS relay_bucket smallint
    GENERATED ALWAYS AS (
        ((hashtext(coalesce(session_id, event_id::text)) & 2147483647) % 64)::smallint
    ) STORED;
CREATE INDEX IF NOT EXISTS outbox_unsent_bucket
    ON agents.outbox (relay_bucket, id) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent_at ON agents.outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Which events each consumer has already applied: a consumer inserts here in the same
-- transaction as its own rows, so a redelivered event is skipped, not applied twice.
CREATE TABLE IF NOT EXISTS agents.processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Analytics sink: one row per `turn.metrics` event.
CREATE TABLE IF NOT EXISTS agents.turn_metrics (
    event_id              uuid PRIMARY KEY,
    session_id            text NOT NULL,
    turn_id               text NOT NULL,
    occurred_at           timestamptz NOT NULL,
    end_of_speech_ms      double precision,
    stt_ms                double precision,
    brain_first_delta_ms  double precision,
    tts_first_chunk_ms    double precision,
    transport_ms          double precision,
    voice_to_voice_ms     double precision,
    recorded_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS turn_metrics_session_occurred
    ON agents.turn_metrics (session_id, occurred_at);
CREATE INDEX IF NOT EXISTS turn_metrics_occurred ON agents.turn_metrics (occurred_at);

-- What a dashboard reads: turns per session and each stage's latency.
CREATE OR REPLACE VIEW agents.session_turn_summary AS
SELECT
    session_id,
    count(*)                                                          AS turns,
    min(occurred_at)                                                  AS first_turn_at,
    max(occurred_at)                                                  AS last_turn_at,
    avg(stt_ms)                                                       AS avg_stt_ms,
    avg(brain_first_delta_ms)                                         AS avg_brain_first_delta_ms,
    avg(tts_first_chunk_ms)                                           AS avg_tts_first_chunk_ms,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY voice_to_voice_ms)    AS p50_voice_to_voice_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY voice_to_voice_ms)   AS p95_voice_to_voice_ms
FROM agents.turn_metrics
GROUP BY session_id;

-- Audit sink: every conversation and lifecycle event, as received. `id` records arrival
-- order, so a session's history reads back in the order its events were applied.
CREATE TABLE IF NOT EXISTS agents.event_audit (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    topic           text NOT NULL,
    type            text NOT NULL,
    schema_version  integer NOT NULL,
    session_id      text,
    occurred_at     timestamptz NOT NULL,
    payload         jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS event_audit_session ON agents.event_audit (session_id, id);
CREATE INDEX IF NOT EXISTS event_audit_type_occurred ON agents.event_audit (type, occurred_at);

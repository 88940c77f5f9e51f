-- Schema `agents`: sessions, conversation turns with their embeddings, recordings, outbox.
-- Every statement is idempotent so the file can be re-applied safely.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS agents;

CREATE TABLE IF NOT EXISTS agents.sessions (
    session_id  text PRIMARY KEY,
    user_id     text,
    room        text,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    end_reason  text,
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE IF NOT EXISTS agents.conversations (
    id           bigserial PRIMARY KEY,
    session_id   text NOT NULL,
    turn_id      text NOT NULL,
    user_id      text NOT NULL,
    role         text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content      text NOT NULL,
    -- all-MiniLM-L6-v2 sentence embeddings
    embedding    vector(384),
    interrupted  boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, turn_id, role)
);
CREATE INDEX IF NOT EXISTS conversations_embedding_hnsw
    ON agents.conversations USING hnsw (embedding vector_cosine_ops);
CREATE INDEX IF NOT EXISTS conversations_session_created
    ON agents.conversations (session_id, created_at);
CREATE INDEX IF NOT EXISTS conversations_user_created
    ON agents.conversations (user_id, created_at);

CREATE TABLE IF NOT EXISTS agents.recordings (
    id           bigserial PRIMARY KEY,
    session_id   text NOT NULL,
    turn_id      text,
    uri          text NOT NULL,
    mime_type    text NOT NULL,
    duration_ms  integer CHECK (duration_ms >= 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS recordings_session ON agents.recordings (session_id);

CREATE TABLE IF NOT EXISTS agents.outbox (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    topic           text NOT NULL,
    type            text NOT NULL,
    schema_version  integer NOT NULL CHECK (schema_version >= 1),
    session_id      text,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON agents.outbox (id) WHERE sent_at IS NULL;

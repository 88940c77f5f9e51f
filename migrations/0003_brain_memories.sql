-- The brain's per-user memory: facts a user asked it to remember ("remember that my car is
-- blue"), each with its all-MiniLM-L6-v2 embedding for recall by cosine similarity.
-- Recall always filters by user_id, so one user's facts never answer another's questions.
-- Idempotent: safe to re-apply.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS agents;

CREATE TABLE IF NOT EXISTS agents.memories (
    id          bigserial PRIMARY KEY,
    user_id     text NOT NULL,
    session_id  text NOT NULL,
    turn_id     text NOT NULL,
    content     text NOT NULL,
    embedding   vector(384) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, turn_id)
);
CREATE INDEX IF NOT EXISTS memories_embedding_hnsw
    ON agents.memories USING hnsw (embedding vector_cosine_ops);
CREATE INDEX IF NOT EXISTS memories_user_created
    ON agents.memories (user_id, created_at DESC);

-- Deleting a session (docs/sessions.md): the session row stays as a tombstone with the time
-- it was deleted, so the API answers 404 for it and an audit can still see that it existed
-- and when it went; the words go (turns deleted by the brain, recording file and row removed
-- by the voice worker). The session's durable events are marked with the same time and lose
-- the people's words from their payloads. Every statement is idempotent.
ALTER TABLE agents.sessions ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
ALTER TABLE agents.outbox ADD COLUMN IF NOT EXISTS session_deleted_at timestamptz;
ALTER TABLE agents.event_audit ADD COLUMN IF NOT EXISTS session_deleted_at timestamptz;

-- The console lists the newest sessions first, filtered by user or room.
CREATE INDEX IF NOT EXISTS sessions_started ON agents.sessions (started_at DESC);
CREATE INDEX IF NOT EXISTS sessions_user_started ON agents.sessions (user_id, started_at DESC);
CREATE INDEX IF NOT EXISTS sessions_room_started ON agents.sessions (room, started_at DESC);

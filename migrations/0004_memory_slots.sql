-- Facts stated in ordinary speech ("my name is Dana", "my sister lives in Lyon") carry a slot,
-- what the fact is about ("name", "sister"): a newer fact in the same slot replaces the older
-- one ("actually my name is Dani"), and "forget my sister" deletes by slot. One turn may state
-- several facts ("my name is Dana and I love sailing"), so the one-fact-per-turn key goes.
-- Idempotent: safe to re-apply.
ALTER TABLE agents.memories ADD COLUMN IF NOT EXISTS slot text;
ALTER TABLE agents.memories DROP CONSTRAINT IF EXISTS memories_session_id_turn_id_key;
CREATE UNIQUE INDEX IF NOT EXISTS memories_turn_content
    ON agents.memories (session_id, turn_id, content);
CREATE INDEX IF NOT EXISTS memories_user_slot ON agents.memories (user_id, slot);

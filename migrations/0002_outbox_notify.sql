-- Wake relays as soon as an outbox row commits (LISTEN arc_outbox); they still poll as a fallback.
CREATE OR REPLACE FUNCTION agents.outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('arc_outbox', '');
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS outbox_notify ON agents.outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON agents.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION agents.outbox_notify();

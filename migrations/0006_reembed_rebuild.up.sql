-- 0006_reembed_rebuild: what shadow mode's copy of memories needs. A shadow re-embed writes the
-- new vectors into a copy of memories (pgmemctl_memories_next, made by pgmemctl reembed), while
-- a trigger on memories logs the id of every row the application inserts, updates or deletes
-- into pgmemctl_reembed_log; those rows are copied again before the copy takes memories' place.

CREATE TABLE pgmemctl_reembed_log (
    seq       bigserial PRIMARY KEY,
    id        uuid NOT NULL,
    logged_at timestamptz NOT NULL DEFAULT now()
);

-- SECURITY DEFINER: the application's role writes memories, not necessarily this table.
CREATE FUNCTION pgmemctl_reembed_log_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT
    AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO pgmemctl_reembed_log (id) VALUES (OLD.id);
    ELSIF TG_OP = 'UPDATE' AND OLD.id IS DISTINCT FROM NEW.id THEN
        INSERT INTO pgmemctl_reembed_log (id) VALUES (OLD.id), (NEW.id);
    ELSE
        INSERT INTO pgmemctl_reembed_log (id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END
$$;

-- The phases of a shadow re-embed: backfill (the copy is filled), index (its indexes are built),
-- replay (logged changes are copied again), validate (swapped; the foreign keys re-pointed
-- NOT VALID are being validated). definition_md5: memories' columns, indexes, constraints and
-- triggers when the copy was made, so that DDL on memories during the run is noticed.
ALTER TABLE pgmemctl_reembed_state DROP CONSTRAINT pgmemctl_reembed_state_phase_check;
ALTER TABLE pgmemctl_reembed_state ADD CONSTRAINT pgmemctl_reembed_state_phase_check
    CHECK (phase IN ('backfill', 'index', 'replay', 'swap', 'validate'));
ALTER TABLE pgmemctl_reembed_state ADD COLUMN definition_md5 text;

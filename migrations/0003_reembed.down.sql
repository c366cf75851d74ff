-- 0003_reembed (down): drops what 0003_reembed.up.sql created and restores 0001's trigger function.
DROP TRIGGER IF EXISTS memories_reembed_invalidate ON memories;
DROP FUNCTION pgmemctl_reembed_invalidate();
DROP TABLE pgmemctl_reembed_state;
CREATE OR REPLACE FUNCTION pgmemctl_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

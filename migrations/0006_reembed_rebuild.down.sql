-- 0006_reembed_rebuild, undone. An unfinished shadow re-embed of the copy design is dropped
-- with it (its copy and trigger first); memories itself is untouched.
DROP TRIGGER IF EXISTS memories_reembed_log ON memories;
DROP TABLE IF EXISTS pgmemctl_memories_next;
DELETE FROM pgmemctl_reembed_state WHERE definition_md5 IS NOT NULL OR phase IN ('replay', 'validate');
ALTER TABLE pgmemctl_reembed_state DROP COLUMN definition_md5;
ALTER TABLE pgmemctl_reembed_state DROP CONSTRAINT pgmemctl_reembed_state_phase_check;
ALTER TABLE pgmemctl_reembed_state ADD CONSTRAINT pgmemctl_reembed_state_phase_check
    CHECK (phase IN ('backfill', 'index', 'swap'));
DROP FUNCTION pgmemctl_reembed_log_change();
DROP TABLE pgmemctl_reembed_log;

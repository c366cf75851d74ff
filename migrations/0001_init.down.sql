-- 0001_init (down): drops everything 0001_init.up.sql created.
DROP TABLE pgmemctl_copy_index_rebuilds;
DROP TABLE pgmemctl_copy_rejects;
DROP TABLE pgmemctl_copy_progress;
DROP TABLE embedding_model;
DROP TABLE domains;
DROP TABLE review_events;
DROP TABLE edges;
DROP TABLE scheduling;
DROP TABLE memories;
DROP FUNCTION pgmemctl_touch_updated_at();
DROP FUNCTION pgmemctl_tags_text(text[]);
-- The extension stays when anything outside this schema still uses it.
DO $$
BEGIN
    DROP EXTENSION IF EXISTS vector;
EXCEPTION WHEN dependent_objects_still_exist THEN
    RAISE NOTICE 'extension vector kept: other objects depend on it';
END $$;

-- 0005_copy_identity: what `pgmemctl copy` checks before it resumes after a checkpoint, so that
-- another store sharing the first memory (a backup, a copy, a fork) is not taken for the one
-- copied. Per checkpoint row: source_rows, the number of source rows with
-- range_start < rowid <= last_rowid when they were copied, and fingerprint, the 128-bit sum of
-- a SHA-256 per row of each row's rowid and key (knowledge_nodes: id; the edge tables:
-- source_id, target_id and the type), as 32 hex digits. NULL: not recorded (checkpoints written
-- before this migration, and the scheduling rows, which mirror the knowledge_nodes ranges).
ALTER TABLE pgmemctl_copy_progress
    ADD COLUMN source_rows bigint,
    ADD COLUMN fingerprint text,
    ADD CONSTRAINT pgmemctl_copy_progress_identity CHECK (
        (source_rows IS NULL) = (fingerprint IS NULL) AND source_rows >= 0 AND fingerprint ~ '^[0-9a-f]{32}$');

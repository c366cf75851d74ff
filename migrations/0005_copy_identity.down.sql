-- 0005_copy_identity (down): the checkpoints keep their rowids and counters; the row counts and
-- fingerprints go (a later run of a newer pgmemctl checks those rows against the target once).
ALTER TABLE pgmemctl_copy_progress
    DROP CONSTRAINT pgmemctl_copy_progress_identity,
    DROP COLUMN source_rows,
    DROP COLUMN fingerprint;

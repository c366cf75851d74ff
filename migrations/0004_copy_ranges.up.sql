-- 0004_copy_ranges: `pgmemctl copy --jobs N` copies disjoint rowid ranges of a source table at
-- once, each with its own checkpoint. A checkpoint row now belongs to one range of its table:
-- rows with range_start < rowid <= range_end (NULL: no upper bound, the last range), of which
-- (range_start, last_rowid] are committed. A row written before this migration is the one open
-- range of its table from rowid 0.
ALTER TABLE pgmemctl_copy_progress
    ADD COLUMN range_start bigint NOT NULL DEFAULT 0,
    ADD COLUMN range_end   bigint,
    ADD CONSTRAINT pgmemctl_copy_progress_range CHECK (range_end IS NULL OR range_end > range_start),
    DROP CONSTRAINT pgmemctl_copy_progress_pkey,
    ADD PRIMARY KEY (source_id, source_table, range_start);

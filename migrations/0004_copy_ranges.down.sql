-- 0004_copy_ranges (down): back to one checkpoint per (source store, source table). The ranges
-- of a table merge into one row: the lowest unfinished checkpoint (rows after it are copied
-- again on the next run, where they are found present), with the counters summed.
CREATE TEMP TABLE pgmemctl_copy_progress_merged ON COMMIT DROP AS
SELECT source_id, source_table,
       coalesce(min(last_rowid) FILTER (WHERE range_end IS NULL OR last_rowid < range_end), max(last_rowid)) AS last_rowid,
       sum(rows_copied)::bigint AS rows_copied, sum(rows_rejected)::bigint AS rows_rejected, max(updated_at) AS updated_at
  FROM pgmemctl_copy_progress GROUP BY source_id, source_table;
DELETE FROM pgmemctl_copy_progress;
ALTER TABLE pgmemctl_copy_progress
    DROP CONSTRAINT pgmemctl_copy_progress_pkey,
    DROP CONSTRAINT pgmemctl_copy_progress_range,
    DROP COLUMN range_start,
    DROP COLUMN range_end,
    ADD PRIMARY KEY (source_id, source_table);
INSERT INTO pgmemctl_copy_progress (source_id, source_table, last_rowid, rows_copied, rows_rejected, updated_at)
SELECT source_id, source_table, last_rowid, rows_copied, rows_rejected, updated_at FROM pgmemctl_copy_progress_merged;

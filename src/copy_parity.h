/* copy_parity.h — proof after a copy that nothing was lost: counts by key and a content,
 * vector and FSRS comparison on a sample of memories. */
#ifndef PGMEMCTL_COPY_PARITY_H
#define PGMEMCTL_COPY_PARITY_H

#include "copy.h"
#include "copy_map.h"
#include "sqlite_src.h"

/* Compares the source (rows up to each table's checkpoint, minus the rows recorded as
 * skipped in pgmemctl_copy_rejects) with the target:
 *   - memories, scheduling, edges: distinct source keys accepted vs those present in the target
 *     (keys streamed into a temporary table with COPY, then joined);
 *   - a sample of every k-th accepted memory in rowid order, at least 1 % and at least 100 (or
 *     all when fewer): SHA-256 of content (server side: sha256(convert_to(content, 'UTF8'))),
 *     the vector bytes (pgvector's vector_send vs the source BLOB re-encoded), and the FSRS
 *     fields (stability, difficulty, state, reps, lapses, next_review).
 * Fills res->parity*, res->sample_* and res->parity_mismatches; sets res->parity_ok.
 * Returns false (logged) when the check itself could not run. */
bool copy_parity(pg_conn *c, sqlite_src *src, const node_query *nq, const map_ctx *ctx, const char *source_id,
                 const int64_t last_rowid[3], copy_result *res);

#endif

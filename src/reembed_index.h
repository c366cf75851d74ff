/* reembed_index.h — the HNSW index of a re-embed: the old index's parameters, the build (plain
 * or CONCURRENTLY, resuming over an invalid leftover), and the recall@10 check of the new index
 * against exact search. */
#ifndef PGMEMCTL_REEMBED_INDEX_H
#define PGMEMCTL_REEMBED_INDEX_H

#include "pg.h"
#include "recall_exact.h"

#include <stdbool.h>
#include <stddef.h>

/* The shadow column's index of pgmemctl versions before the copy design (dropped by --abort). */
#define REEMBED_NEXT_INDEX "idx_memories_embedding_next_hnsw"

typedef struct {
    char opclass[64];    /* e.g. "vector_cosine_ops" */
    char op[4];          /* its distance operator: <=>, <->, <#> or <+> */
    int m, ef_construction;
} reembed_index_info;

/* Reads opclass, m and ef_construction of idx_memories_embedding_hnsw; when it does not exist
 * (or has pgvector's defaults) uses vector_cosine_ops, m = 16, ef_construction = 64 (migration
 * 0002's and pgvector's defaults). False with err on a query error or an opclass without a known
 * operator. */
bool reembed_index_params(pg_conn *c, reembed_index_info *ix, char *err, size_t errlen);

/* Sets ix->op from ix->opclass; false with err for an opclass without a known operator. */
bool reembed_index_op(reembed_index_info *ix, char *err, size_t errlen);

/* Builds `name` on table(column) with ix's opclass and parameters, CONCURRENTLY when asked,
 * with maintenance_work_mem (e.g. "1GB"; NULL leaves it) for the session. A valid index of that
 * name is kept as is (an earlier run built it); an invalid one (a build that was interrupted) is
 * dropped first. Must be called outside a transaction. False with err on failure. */
bool reembed_build_index(pg_conn *c, const reembed_index_info *ix, const char *table, const char *column, const char *name,
                         bool concurrently, const char *maintenance_work_mem, char *err, size_t errlen);

/* recall@10 of the index on table(column) (table: "memories" or shadow mode's copy): for up to `sample` query vectors drawn at random
 * from the column, the share of the index scan's 10 results (enable_seqscan = off, the session's
 * hnsw.ef_search) that are at most as far as the exact 10th neighbour (enable_indexscan = off),
 * so that equally distant rows count alike; averaged over the queries.
 * *recall is -1 and *queries 0 when the column has no vectors. False with err on error. */
bool reembed_recall(pg_conn *c, const reembed_index_info *ix, const char *table, const char *column, int sample,
                    double *recall,
                    int *queries, char *err, size_t errlen);

/* The same with the exact neighbours known already (recall_exact.h, k = 10, over the vectors the
 * table was filled with): only the index scans run, with ex's query vectors; a result counts as
 * a hit when it is at most the exact 10th distance + 1e-5 (client and server sum in different
 * orders). */
bool reembed_recall_known(pg_conn *c, const reembed_index_info *ix, const char *table, const char *column,
                          const recall_exact *ex, double *recall, int *queries, char *err, size_t errlen);

#endif

/* bench_int.h — what the modules of pgmemctl bench share: the embedded SQL, the sample (a file
 * or generated; scratch loads and the held-out query set), the query set, the measurement passes, the
 * pgbench comparison. Not for use outside bench*.c. */
#ifndef PGMEMCTL_BENCH_INT_H
#define PGMEMCTL_BENCH_INT_H

#include "bench.h"
#include "pg.h"

#include <stdbool.h>
#include <stdint.h>

/* The text of sql/<name> compiled into the binary (scripts/embed-files); NULL if absent (a
 * build error, logged). Static, do not free. */
const char *bench_sql(const char *name);

/* Words in a full-text query (websearch_to_tsquery ANDs them). */
#define BENCH_QUERY_WORDS 2

/* One query of the query set. */
typedef struct {
    char *vector;     /* pgvector text form of the query vector */
    char *text;       /* full-text query (bench_query_words of the memory's content), may be "" */
    char *domains;    /* text[] literal such as {"games"} for hybrid_domain, or NULL */
} bench_query;

typedef struct {
    bench_query *q;
    int n;
} bench_query_set;

void bench_query_set_free(bench_query_set *qs);

/* ---- the sample file (bench_scratch.c) ---------------------------------------------------- */

typedef struct bench_sample bench_sample;

/* Opens a vestige SQLite store made by the sample builder (knowledge_nodes + node_embeddings),
 * read-only; *rows = memories that have an embedding, *dim = their dimension (from the first
 * one). Returns NULL after logging when the file cannot be used. Close with bench_sample_close. */
bench_sample *bench_sample_open(const char *path, int64_t *rows, int *dim);

/* A generated sample of any size: memory i is sample_text_memory(seed, i) (short notes on 30
 * topics, the topic as first tag and domain) with its builtin:hash-dim embedding, computed when
 * it is loaded or queried; nothing is read or written. dim: 1..VEC_MAX_DIM (the caller checks).
 * Returns NULL after logging (out of memory). Close with bench_sample_close. */
bench_sample *bench_sample_generate(uint64_t seed, int dim);

/* Closes a sample from bench_sample_open or bench_sample_generate; NULL-safe. */
void bench_sample_close(bench_sample *s);

/* The query set: n memories of the sample from position offset (0-based: rowid order in a
 * file, the index of a generated one) on: their vector, the words of their content, and their
 * first tag (a file's Debian section, a generated memory's topic) as the domain filter.
 * Returns false after logging. */
bool bench_sample_queries(bench_sample *s, int64_t offset, int n, bench_query_set *out);

/* Creates the scratch schema pgmemctl_bench_<backend pid> (name in st->schema; leftovers of
 * earlier runs whose backend is gone are dropped first), puts it first on search_path, creates
 * the store's schema there (migration 0001_init, as pgmemctl migrate does) with embedding
 * vector(dim), loads the first rows memories of the sample (file or generated) with binary COPY
 * (domains = the first tag), runs VACUUM ANALYZE and, unless
 * req->no_index, builds the HNSW index with req's m, ef_construction and maintenance_work_mem,
 * watching pgvector's notice about maintenance_work_mem. Fills st's load figures. False after
 * logging; the caller drops the schema either way (bench_scratch_drop). */
bool bench_scratch_load(pg_conn *c, const bench_request *req, bench_sample *s, int64_t rows, int dim,
                        bench_store *st);

/* Drops st->schema (CASCADE) if set and resets search_path. Logs a warning on failure. */
void bench_scratch_drop(pg_conn *c, bench_store *st);

/* ---- measuring (bench_query.c) ------------------------------------------------------------ */

/* The target's query set: the first n memories with a vector by id (their vector, words of
 * their content, their domains when not empty). */
bool bench_target_queries(pg_conn *c, int n, bench_query_set *out);

/* Every series of st: per kind (hybrid_domain only when some query has domains) and ef_search
 * (efs, nef values; a store without HNSW gets one series per kind with ef_search 0), warm-up
 * then one timed pass over the query set, recall against exact results. Appends to st->series.
 * The session must be read-only already. False after logging (a statement failed). */
bool bench_measure_series(pg_conn *c, const bench_request *req, const bench_query_set *qs, const int *efs, int nef,
                          bench_store *st);

/* QPS of the hybrid query at st->default_ef for each concurrency level: max level connections
 * opened with req->conninfo (session set up as c's: search_path, read-only, ef_search), warmed,
 * started together, driven asynchronously for req->duration seconds. search_path: the
 * schema-qualified path to set ("" for none). False after logging. */
bool bench_measure_qps(const bench_request *req, const bench_query_set *qs, const char *search_path,
                       bench_store *st);

/* The client-overhead comparison (sql/bench_overhead.sql) run by pgmemctl on c and by pgbench
 * (req->pgbench or found), alternately, twice each; fills st->overhead. A missing pgbench or a
 * pgbench failure is not an error: st->overhead.ran stays false with the reason. False only
 * when pgmemctl's own statements fail (logged). */
bool bench_measure_overhead(pg_conn *c, const bench_request *req, int nqueries, const char *search_path,
                            bench_store *st);

/* Monotonic seconds. */
double bench_now(void);

#endif

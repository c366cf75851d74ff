/* bench.h — `pgmemctl bench`: latency, recall and throughput of the memory store's searches
 * (vector top-k, full-text, hybrid RRF), on the target store as it is (read-only) or on scratch
 * stores loaded from a sample file; what the run measured, in one result struct that
 * bench_render.c turns into the JSON document and the stderr table. */
#ifndef PGMEMCTL_BENCH_H
#define PGMEMCTL_BENCH_H

#include "pg.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Query kinds, in the order they are measured and reported. */
typedef enum { BK_VECTOR, BK_FTS, BK_HYBRID, BK_HYBRID_DOMAIN, BK_COUNT } bench_kind;

/* "vector", "fts", "hybrid", "hybrid_domain". */
const char *bench_kind_name(bench_kind k);

/* True for the kinds that use the HNSW index (measured per ef_search, with recall). */
bool bench_kind_uses_hnsw(bench_kind k);

typedef struct {
    const char *display;       /* password-free conninfo, for the report */
    const char *conninfo;      /* to open the --concurrency connections; NULL: libpq defaults */
    const int64_t *scratch;    /* scratch sizes (rows), nscratch of them; 0 of them: the target */
    int nscratch;
    const char *sample;        /* --sample FILE.db (vestige SQLite from the sample builder); NULL:
                                  scratch stores of generated memories (sample_text.h) */
    uint64_t seed;             /* generated memories: --seed */
    int dim;                   /* generated memories: --dim, their builtin:hash-DIM embedding */
    int queries;               /* --queries: query-set size (>= 1) */
    int k;                     /* --k (1..1000) */
    int fetch;                 /* candidates per side of the hybrid query (4 * k) */
    const int *ef_search;      /* --ef-search values, nef of them, ascending, distinct */
    int nef;
    const int *concurrency;    /* --concurrency levels, nconc of them */
    int nconc;
    double duration;           /* --duration seconds per concurrency level */
    int warmup;                /* --warmup queries before each measured series */
    bool raw;                  /* keep every latency sample in the result */
    bool no_index;             /* scratch: no HNSW index (every search exact) */
    int hnsw_m, hnsw_ef_construction;
    const char *maintenance_work_mem; /* scratch: for the HNSW build */
    const char *pgbench;       /* pgbench binary; NULL: look for it; "" = skip the comparison */
} bench_request;

/* Latency distribution in milliseconds. */
typedef struct {
    int n;
    double p50, p95, p99, max, mean;
} bench_dist;

/* One measured series: a kind at one ef_search (0 for fts and for stores without HNSW). */
typedef struct {
    bench_kind kind;
    int ef_search;
    int queries;               /* measured (warm-up excluded) */
    int errors;
    bench_dist ms;
    double rows_mean;          /* rows returned per query */
    double recall;             /* recall@k against exact search; < 0 when not applicable */
    int index_used;            /* EXPLAIN of the first query scans the HNSW index: 1 yes, 0 no
                                  (the planner chose exact search), -1 not applicable */
    int64_t recall_hits, recall_total;
    double *samples_ms;        /* in query order; only with --raw (else NULL) */
} bench_series;

typedef struct {
    int concurrency;
    double seconds;            /* from the barrier to the last answer */
    int64_t queries, errors;
    double qps;
    bench_dist ms;
} bench_qps;

typedef struct {
    bool ran;
    char reason[512];          /* why not, or a warning */
    char binary[256];
    int transactions;          /* measured per client */
    double pgmemctl_p50, pgbench_p50, ratio;
    bench_dist pgmemctl_ms, pgbench_ms;
} bench_overhead;

typedef struct {
    bool scratch;
    char schema[64];           /* scratch schema (dropped at the end), "" for the target */
    int64_t rows;              /* memories */
    int64_t rows_with_vector;
    int dimension;             /* 0 when unknown (no vector column typmod and no rows) */
    /* the HNSW index on memories.embedding */
    bool has_index;
    char index_name[128], index_opclass[64], index_def[512];
    int index_m, index_ef_construction;  /* pgvector's defaults when not set */
    int64_t index_bytes, table_bytes;
    /* scratch load */
    double load_seconds, load_rows_per_second, index_seconds;
    char maintenance_work_mem[32];
    int parallel_workers;      /* max_parallel_maintenance_workers during the build */
    int graph_fit;             /* 1 fit, 0 did not (pgvector's notice), -1 no build */
    char graph_notice[256];
    /* queries */
    int nqueries, nqueries_domain;
    double fts_hit_rate;       /* share of queries whose full-text search matched something */
    double fts_matches_mean;   /* memories a full-text query matches (all of them get ranked) */
    int64_t fts_matches_max;
    double exact_first_distance, exact_kth_distance; /* mean cosine distance of the exact 1st and
                                  k-th neighbour of the vector queries: how far apart the k nearest
                                  are (close values: a hard set for HNSW) */
    int default_ef;            /* the session's hnsw.ef_search: the headline series */
    bench_series *series;
    int nseries;
    bench_qps *qps;
    int nqps;
    bench_overhead overhead;
} bench_store;

typedef struct {
    char server_version[64], pgvector_version[32];
    int server_version_num;
    char shared_buffers[32], maintenance_work_mem[32], work_mem[32], effective_cache_size[32];
    char max_parallel_maintenance_workers[16], max_parallel_workers_per_gather[16];
    char hnsw_ef_search[16], hnsw_iterative_scan[32];  /* "" when the setting does not exist */
    int client_cpus;
    int libpq_version;
    bool vector_created;       /* this run created the vector extension (scratch runs only) */
} bench_env;

typedef struct {
    bench_env env;
    bench_store *stores;       /* one per scratch size, or one for the target */
    int nstores;
    char started_at[40];
    double seconds;
    char error[512];           /* set when the run failed */
    bool refused;              /* failed before measuring or writing anything: the database or the
                                  sample cannot be benchmarked (no vector extension that this role
                                  may create, sample too small or unreadable); the command exits 2 */
} bench_result;

/* Runs the benchmark on c (a connection to the target database) as req says: with scratch
 * sizes, checks the sample (req->sample, or generated memories) holds the largest size plus the
 * query set, creates the vector extension when the database lacks it (CREATE EXTENSION vector,
 * kept afterwards; refused when the server has no pgvector or the role may not create it, with
 * the statement to run), then for each size creates the scratch schema
 * pgmemctl_bench_<backend pid>, loads the first N memories of the sample with binary COPY,
 * builds the HNSW index (unless no_index), measures, and drops the schema — also after a
 * failure. Without, measures the store's own memories table with the session and every
 * transaction read-only. Measurement: the query set (scratch: the sample's memories after the
 * largest size, held out of every store; target: the first req->queries memories with a vector
 * by id), then for each kind and ef_search, warm-up then one timed pass over the query set
 * (monotonic clock around each statement), recall against the exact results computed once per
 * kind with SET LOCAL enable_indexscan = off; QPS per concurrency level; the pgbench comparison.
 * Fills *res (release with bench_result_free). Returns false after logging when the run failed;
 * res->error then holds the reason and what was measured so far stays in res. */
bool bench_run(pg_conn *c, const bench_request *req, bench_result *res);
void bench_result_free(bench_result *res);

/* The JSON document of a run (report_new("bench") plus "status", "database", "options",
 * "environment", "stores", "targets"). req is the request it ran with. Caller frees. NULL when
 * out of memory. */
cJSON *bench_render_json(const bench_request *req, const bench_result *res);

/* The human summary table of a document made by bench_render_json (or read from a file), on
 * out: per store the load, the latency table per kind and ef_search, the QPS and the client
 * overhead, then the targets. */
void bench_render_table(const cJSON *doc, FILE *out);

/* The design targets checked against a document's stores (a JSON array of {store, name, value,
 * limit, met}): hybrid p50 < 10 ms and p99 < 30 ms, recall@k >= 0.95 of vector and hybrid at the
 * default ef_search, pgbench ratio <= 1.05. Sets *missed to the number not met. Caller frees. */
cJSON *bench_targets(const cJSON *stores, int *missed);

/* Writes an SVG chart of a document's stores to path with gnuplot (gnuplot_bin, e.g. "gnuplot"):
 * recall@k against p50 latency per ef_search, one line per kind and store; QPS against
 * concurrency, one line per store. The data and script go through a temporary directory that is
 * removed afterwards. Returns false after logging (gnuplot missing or failing, no data). */
bool bench_plot(const cJSON *doc, const char *path, const char *gnuplot_bin);

#endif

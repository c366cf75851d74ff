/* copy_int.h — what the parts of `pgmemctl copy` share: the run's shared state, the workers
 * (one connection each), the rowid ranges they copy and the per-range stream (copy_stream.c).
 * Internal to copy*.c. */
#ifndef PGMEMCTL_COPY_INT_H
#define PGMEMCTL_COPY_INT_H

#include "copy.h"
#include "copy_map.h"
#include "pg.h"
#include "sqlite_src.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* The upper bound of the last (open) range of a table: rows appended to the source after a
 * run belong to it, so a re-run copies them. */
#define COPY_RANGE_OPEN INT64_MAX

/* A rowid range of one source table: rows with start < rowid <= end. Rows (start, last] are
 * committed (its checkpoint, pgmemctl_copy_progress.last_rowid). A finished bounded range has
 * last == end; the open range is never finished. */
typedef struct {
    const char *table;   /* "knowledge_nodes", "memory_connections" or "knowledge_edges" (static) */
    int64_t start, end, last;
    int64_t read_from;   /* where this run reads: last, or start with --verify-existing */
    bool persisted;      /* its row exists in pgmemctl_copy_progress */
} copy_range;

/* A rejection waiting for its batch to commit. */
typedef struct {
    const char *table;
    int64_t rowid;
    char key[160];
    map_reject r;
} pending_reject;

typedef struct {
    pending_reject *v;
    int n, cap;
} pending_list;

/* Appends a rejection (key truncated to fit). False when out of memory. */
bool pending_add(pending_list *l, const char *table, int64_t rowid, const char *key, const map_reject *r);

/* The run, shared by every worker. Fields below `mu` change while workers run and are read or
 * written only with mu held; the others are set before the workers start. */
typedef struct {
    const copy_request *req;
    copy_result *res;
    const char *source_path;  /* the SQLite file (each stream opens its own read-only connection) */
    node_query nq;
    map_ctx ctx;
    bool staging;             /* the planned write path is the conflict-safe one */
    int64_t *rej_nodes;       /* rowids of skipped nodes (this run and earlier ones), sorted for
                                 the edge phase; unsorted additions (dry run) while nodes copy */
    size_t nrej_nodes, caprej_nodes;
    int64_t nodes_done;       /* edge phase: every node with rowid <= this was copied or rejected */

    pthread_mutex_t mu;
    pthread_cond_t changed;   /* a worker finished (or committed, for the progress line) */
    bool stop;                /* a worker failed: the others stop after their open batch */
    bool failed;
    copy_range *ranges;       /* the current phase's work list */
    int nranges;
    int next_range;           /* the next range a worker takes */
    int running;              /* workers still running in this phase */
    int64_t committed_rows;   /* source rows of this phase whose batch committed (progress) */
} copy_shared;

/* One connection and what it needs to copy ranges through it. */
typedef struct {
    copy_shared *sh;
    pg_conn *c;
    int index;                /* 0 holds the run's advisory lock */
    bool staging;             /* this connection writes through the staging tables */
    bool staging_ready;
    pthread_t thread;
} copy_worker;

/* Fails the run: the first failure's message and outcome go to res (later ones are logged
 * only), and every worker stops after its open batch. Thread-safe. */
void copy_fail(copy_shared *sh, copy_outcome o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* copy_fail with the connection's last error and SQLSTATE after what. */
void copy_pg_fail(copy_shared *sh, pg_conn *c, const char *what);

/* Copies the rows (r->read_from, r->end] of r->table through w's connection: a reader thread
 * reads, validates and encodes batches of req->batch_size source rows into a bounded queue
 * while this thread streams them, each batch committed with its checkpoint and rejections in
 * one transaction. Updates r->last as batches commit, and res (with sh->mu). A direct-path
 * batch that meets a key the target has (23505) or a deadlock with another stream (40P01) is
 * rolled back and redone from its checkpoint through the staging tables. Returns false when the
 * run failed (copy_fail called) or sh->stop was set. */
bool copy_stream_range(copy_worker *w, copy_range *r);

/* Records rejections inside the open transaction of c (dry run: nothing). Sets
 * p->r.action = NULL for rejections an earlier run had recorded already. */
bool copy_record_rejects(copy_shared *sh, pg_conn *c, pending_list *l);

/* After their transaction committed: counts, lists and logs the rejections (with sh->mu held
 * by the caller), then empties l. */
void copy_publish_rejects(copy_shared *sh, pending_list *l);

/* ---- ranges (copy_ranges.c) ------------------------------------------------------------------ */

/* Loads the ranges recorded for (source_id, table) in pgmemctl_copy_progress, or one open
 * range from rowid 0 when there are none, and splits the unfinished ones until there are
 * `jobs` of them (each split halves the range with the most rows left to read, by row count in
 * src; ranges with fewer than 2 rows left are not split). With persist, the new layout is
 * written in one transaction before anything is copied; otherwise (dry run) it stays in memory.
 * from_start: this run re-reads every range from its start (--verify-existing). *out is newly
 * allocated (free); *n its length. False on error (copy_fail called). */
bool copy_ranges_plan(copy_shared *sh, pg_conn *c, sqlite_src *src, const char *table, int jobs, bool persist,
                      bool from_start, copy_range **out, int *n);

/* Highest checkpoint of the ranges: with every range finished, each row with rowid <= it was
 * read. 0 for none. */
int64_t copy_ranges_last(const copy_range *r, int n);

/* The range's checkpoint row: upserts (source_id, table, range_start) adding copied/rejected to
 * its counters; last_rowid only grows. Inside the caller's transaction. */
bool copy_checkpoint(copy_shared *sh, pg_conn *c, const char *table, int64_t range_start, int64_t last_rowid,
                     int64_t copied, int64_t rejected);

#endif

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

/* A fingerprint of a set of source rows: the lane-wise sum (mod 2^64) of the first 16 bytes of
 * each row's SHA-256 (copy_fp_row). A sum, so it does not depend on the order the rows were read
 * in and a range's fingerprint is the sum of its batches'. Stored as 32 hex digits
 * (pgmemctl_copy_progress.fingerprint, migration 0005). */
typedef struct {
    uint64_t lo, hi;
} copy_fp;

/* A rowid range of one source table: rows with start < rowid <= end. Rows (start, last] are
 * committed (its checkpoint, pgmemctl_copy_progress.last_rowid). A finished bounded range has
 * last == end; the open range is never finished. */
typedef struct {
    const char *table;   /* "knowledge_nodes", "memory_connections" or "knowledge_edges" (static) */
    int64_t start, end, last;
    int64_t read_from;   /* where this run reads: last, or start with --verify-existing */
    bool persisted;      /* its row exists in pgmemctl_copy_progress */
    /* the source rows (start, last] as recorded with the checkpoint: their count and fingerprint;
     * known is false when none was recorded (pgmemctl_copy_progress.fingerprint NULL) */
    bool known;
    int64_t rows;
    copy_fp fp;
    /* the same for the rows (start, read_from] behind this run's reading position, which each
     * committed batch adds to and records as the new checkpoint's */
    bool run_known;
    int64_t run_rows;
    copy_fp run_fp;
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
    struct copy_identity_fix *fix; /* ranges whose new count and fingerprint copy_identity_record
                                      writes (copy_identity.c) */
    int nfix;

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

/* The range's checkpoint row: upserts (source_id, table, range_start) with last_rowid, adding
 * copied/rejected to its counters; rows and fp (NULL: not known) are the count and fingerprint of
 * the source rows (range_start, last_rowid]. Inside the caller's transaction. */
bool copy_checkpoint(copy_shared *sh, pg_conn *c, const char *table, int64_t range_start, int64_t last_rowid,
                     int64_t copied, int64_t rejected, int64_t rows, const copy_fp *fp);

/* ---- store identity (copy_identity.c) ------------------------------------------------------- */

/* acc += x, lane by lane (mod 2^64). */
void copy_fp_add(copy_fp *acc, const copy_fp *x);

/* fp as 32 lowercase hex digits and a NUL (lo first, each lane big-endian). */
void copy_fp_hex(const copy_fp *fp, char out[33]);

/* Parses copy_fp_hex's form; false for anything else. */
bool copy_fp_parse(const char *hex, copy_fp *out);

/* SHA-256 state reused from row to row (OpenSSL EVP). One per thread. */
typedef struct copy_fp_hasher copy_fp_hasher;

/* NULL when out of memory. Free with copy_fp_hasher_free (NULL is fine). */
copy_fp_hasher *copy_fp_hasher_new(void);
void copy_fp_hasher_free(copy_fp_hasher *h);

/* Adds the current row of st to fp: the SHA-256 of its rowid (result column 0, as 8 bytes
 * little-endian) and, for each of the ncols result columns in cols, the value's SQLite type (1
 * byte), its length (4 bytes little-endian) and its bytes (sqlite3_column_blob: text as stored,
 * numbers as SQLite's text form). Call it before anything else reads those columns (a type
 * conversion would change what sqlite3_column_type says). False when the digest failed. */
bool copy_fp_row(copy_fp_hasher *h, copy_fp *fp, sqlite3_stmt *st, const int *cols, int ncols);

/* Before anything is written (dry runs too; not with --verify-existing, which re-reads the whole
 * store): checks that the rows up to every checkpoint recorded under this store id are still the
 * ones that were copied. For each checkpointed range, one indexed pass of SQLite over the source
 * rows (range_start, last_rowid] computes their count and fingerprint and compares them with
 * those recorded. Where they differ, or none were recorded (checkpoints of an earlier version),
 * each of those rows is looked up in the target (memories by id, edges by source, target and
 * type, or a rejection recorded for that rowid and key): when every one is there, only rows were
 * removed from the source and nothing would be skipped, so the run goes on and
 * copy_identity_record records the new counts; otherwise the run is refused (COPY_REFUSED,
 * copy_fail) with what differs, per table. Sets res->identity_check and res->identity.
 * False when refused or failed. */
bool copy_identity_check(copy_shared *sh, pg_conn *c, sqlite_src *src);

/* Records the counts and fingerprints copy_identity_check computed for the ranges it verified
 * against the target (one transaction; nothing to do otherwise; not in a dry run). False on
 * error (copy_fail called). */
bool copy_identity_record(copy_shared *sh, pg_conn *c);

#endif

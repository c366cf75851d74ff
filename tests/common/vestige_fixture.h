/* vestige_fixture.h — small vestige SQLite stores built from C for the copy tests (the V1–V4
 * tables pgmemctl copy reads, plus ignored ones), raw inserts of bad values, a cached real sample
 * from pgmemctl-sample, SQLite/SHA-256 shortcuts and a spawn that exposes the child's pid.
 *
 * Like testutil.h, every helper asserts (cr_assert) instead of returning an error, and returned
 * strings / buffers are malloc'd and freed by the caller with free(). */
#ifndef PGMEMCTL_VESTIGE_FIXTURE_H
#define PGMEMCTL_VESTIGE_FIXTURE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- building stores ------------------------------------------------------------------------ */

typedef enum {
    VF_V4, /* vestige schema V4: knowledge_nodes with valid_from/valid_until/scope/memory_system,
            * node_embeddings, fsrs_cards, memory_connections, knowledge_edges, plus intentions
            * and the FTS5 table knowledge_fts (whose shadow tables copy ignores) */
    VF_V3  /* an older vestige: no knowledge_edges table, no valid_from/valid_until/scope columns */
} vf_shape;

typedef struct vf_store vf_store;

/* Creates a new store file at path (which must not exist) with the tables of shape. Embeddings
 * added by vf_add_node have dim dimensions and model "vf-fixture-model" (see vf_set_model). */
vf_store *vf_create(const char *path, vf_shape shape, int dim);

/* Opens an existing store read-write (to append rows); dim/model as for vf_create. */
vf_store *vf_open(const char *path, int dim);

/* Model name written to node_embeddings.model by later vf_add_node calls (copied). */
void vf_set_model(vf_store *s, const char *model);

/* Closes the file and frees s. */
void vf_close(vf_store *s);

sqlite3 *vf_db(vf_store *s);

/* Runs one or more SQL statements on the store. */
void vf_exec(vf_store *s, const char *sql);

/* A good memory. Only id and content are required; the rest has vestige-like defaults. */
typedef struct {
    const char *id;          /* canonical UUID text */
    const char *content;
    const char *node_type;   /* NULL: "fact" */
    const char *tags;        /* JSON array text; NULL: "[]" */
    const char *created_at;  /* RFC 3339; NULL: VF_CREATED_AT */
    const char *updated_at;  /* NULL: VF_UPDATED_AT */
    bool no_embedding;       /* no node_embeddings row */
    const float *embedding;  /* dim floats; NULL: vf_embedding(id, ...) */
    bool card;               /* also an fsrs_cards row (vf_add_card defaults) */
} vf_node;

#define VF_CREATED_AT "2025-03-14T09:26:53.589793+00:00"
#define VF_UPDATED_AT "2025-03-15T10:00:00Z"

/* Inserts knowledge_nodes (+ node_embeddings, + fsrs_cards); returns the node's rowid. */
int64_t vf_add_node(vf_store *s, const vf_node *n);

/* Shortcut: node number i (id vf_uuid(i), content vf_content(i), tags ["fixture","n<i>"]),
 * with an embedding and, when card, an fsrs card. Returns the rowid. */
int64_t vf_add_good_node(vf_store *s, int i, bool card);

/* fsrs_cards row for memory_id: difficulty 4.5, stability 12.25, state "review", reps 3,
 * lapses 1, last_review/due_date RFC 3339. Returns its rowid. */
int64_t vf_add_card(vf_store *s, const char *memory_id);

/* memory_connections / knowledge_edges rows (created_at RFC 3339). Return the rowid. */
int64_t vf_add_connection(vf_store *s, const char *source_id, const char *target_id, const char *link_type,
                          double strength);
int64_t vf_add_edge(vf_store *s, const char *source_id, const char *target_id, const char *edge_type, double weight);

/* node_embeddings row with an arbitrary BLOB (len bytes) and declared dimensions. */
int64_t vf_add_embedding_blob(vf_store *s, const char *node_id, const void *blob, size_t len, int dimensions);

/* ---- raw rows (bad-value tests) ----------------------------------------------------------- */

typedef enum { VF_NULL, VF_INT, VF_REAL, VF_TEXT, VF_BLOB } vf_kind;

typedef struct {
    const char *col;
    vf_kind kind;
    int64_t i;
    double r;
    const void *p; /* TEXT / BLOB bytes */
    int len;       /* TEXT: -1 = up to the NUL; BLOB: byte count. An explicit TEXT length may
                    * include NUL bytes or invalid UTF-8: they are stored as they are. */
} vf_val;

#define VF_V_NULL(c) ((vf_val){.col = (c), .kind = VF_NULL})
#define VF_V_INT(c, v) ((vf_val){.col = (c), .kind = VF_INT, .i = (v)})
#define VF_V_REAL(c, v) ((vf_val){.col = (c), .kind = VF_REAL, .r = (v)})
#define VF_V_TEXT(c, s) ((vf_val){.col = (c), .kind = VF_TEXT, .p = (s), .len = -1})
#define VF_V_TEXTN(c, s, n) ((vf_val){.col = (c), .kind = VF_TEXT, .p = (s), .len = (int) (n)})
#define VF_V_BLOB(c, b, n) ((vf_val){.col = (c), .kind = VF_BLOB, .p = (b), .len = (int) (n)})

/* INSERT INTO table (cols…) VALUES (…) with exactly these values bound (no conversion beyond
 * SQLite's column affinity). Returns the new rowid. */
int64_t vf_insert(vf_store *s, const char *table, const vf_val *vals, int nvals);

/* A knowledge_nodes row with the good defaults for every NOT NULL column, overridden by vals
 * (matched by column name). Returns its rowid. No embedding, no card. */
int64_t vf_insert_node(vf_store *s, const char *id, const vf_val *overrides, int noverrides);

/* ---- deterministic values ------------------------------------------------------------------- */

/* "00000000-0000-4000-8000-<12 digits of i>" (a valid UUID v4 text). */
void vf_uuid(int i, char out[37]);

/* "fixture memory <i>: the quick brown fox studies <word>" — a unique content per i. */
char *vf_content(int i);

/* The default embedding of a node: dim values, multiples of 1/16 in [-1, 1) (exact as float
 * and as short decimal text), never all zero, derived from the id text. */
void vf_embedding(const char *id, int dim, float *out);

/* The default embedding in pgvector text form "[v1,v2,…]". */
char *vf_embedding_text(const char *id, int dim);

/* dim floats as vestige's little-endian float32 BLOB (4 * dim bytes, malloc'd). */
unsigned char *vf_f32le(const float *v, int dim);

/* ---- reading SQLite files --------------------------------------------------------------- */

/* First column of the first row of sql on the file at path (opened read-only). */
long long vf_sqlite_int(const char *path, const char *sql);
char *vf_sqlite_text(const char *path, const char *sql);            /* NULL for NULL / no row */
unsigned char *vf_sqlite_blob(const char *path, const char *sql, size_t *len);

/* ---- files ------------------------------------------------------------------------------- */

/* A real sample store (pgmemctl-sample fed `apt-cache dumpavail`, seed 1) of n memories and dim
 * dimensions. Built once and cached under $TMPDIR/pgmemctl-test-samples-<uid>/ (keyed by n, dim
 * and the sample binary's size and mtime; built under a lock, published with rename), so
 * concurrent test workers and later runs share it. TREAT THE FILE AS READ-ONLY: copy it
 * (vf_copy_file) before changing it. The binary is $PGMEMCTL_REPO/bin/pgmemctl-sample when it
 * exists, else pgmemctl-sample next to $PGMEMCTL_BIN. Returns the path. */
char *vf_sample(long n, int dim);

/* Copies src to dir/name; returns the new path. */
char *vf_copy_file(const char *src, const char *dir, const char *name);

/* SHA-256 of a file's bytes (OpenSSL EVP) as 64 lower-case hex digits plus NUL. */
void vf_sha256_file(const char *path, char out[65]);

/* ---- a child process with a known pid ----------------------------------------------------- */

/* Starts $PGMEMCTL_BIN like tu_spawn (stdin /dev/null, working directory "/", no PG* or
 * DATABASE_URL in the environment) but returns its pid, so that a test can signal it;
 * stdout/stderr go to the files out_path / err_path (created or truncated). */
pid_t vf_spawn(const char *const *argv, const char *out_path, const char *err_path);

/* Waits for pid (at most timeout_s seconds, then SIGKILL and a failed assertion); returns the
 * exit status, or 128 + signal number when it died of a signal. */
int vf_wait(pid_t pid, double timeout_s);

#endif

/* upgrade_proof.h — the proof after a major upgrade: a per-database snapshot taken on the old
 * side (row counts of every user table, a checksum over a sample of each vector column's bytes,
 * the vector extension's version), the same snapshot taken on the new side and compared, plus
 * checks that only concern the new side: every HNSW/IVFFlat index valid and chosen by the planner
 * for a distance query, `vector`'s extversion equal to the newest the new server offers, and the
 * server's major version. Used by `pgmemctl upgrade` for both methods. */
#ifndef PGMEMCTL_UPGRADE_PROOF_H
#define PGMEMCTL_UPGRADE_PROOF_H

#include "pg.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* One vector column (type vector, halfvec, sparsevec — any type owned by the extension
 * `vector`) of a table. */
typedef struct {
    char *column;        /* column name */
    char *type;          /* format_type, e.g. "vector(768)" */
    int64_t sampled;     /* rows in the sample (non-NULL values included in the checksum) */
    char *checksum;      /* md5 hex (32 chars) over the sample's binary send representation
                            (the type's typsend, e.g. pgvector's vector_send: int16 dim, int16
                            unused, dim float4, big-endian), in primary-key order; NULL when the
                            table has no primary key (then only the row count is compared) */
} proof_vector_col;

/* One user table (relkind 'r' or 'm'; not in pg_catalog, information_schema, pg_toast* or
 * pg_temp*; not a member of an extension). A partitioned parent ('p') holds no rows of its own:
 * it is not listed, its partitions are (each an 'r' table), so no row is counted twice. A
 * materialized view that is not populated counts 0 rows and gets no checksums. */
typedef struct {
    char *schema;
    char *table;
    int64_t rows;        /* exact count(*) */
    /* vector columns in column order; a checksum covers the first sample_rows rows in
       primary-key order (collatable key columns compared COLLATE "C", so the sample does not
       depend on the operating system's collation), NULL values skipped */
    proof_vector_col *vcols;
    int nvcols;
} proof_table;

/* One database's snapshot. */
typedef struct {
    char *db;            /* database name */
    proof_table *tables; /* sorted by schema, then table (byte order) */
    int ntables;
    char *vector_version; /* extversion of `vector` in this database, NULL when not installed */
} proof_snapshot;

/* Takes the snapshot of the database c is connected to (named dbname, for messages).
 * sample_rows (> 0): rows per vector column in the checksum sample, chosen as the sample_rows
 * smallest primary-key values. Runs its queries in whatever transaction c is in (the caller may
 * hold a REPEATABLE READ transaction with an exported snapshot); opens none itself. Returns
 * false (error logged, naming the database and table) on a query error; *out is then empty.
 * Release with proof_snapshot_free. */
bool proof_snapshot_take(pg_conn *c, const char *dbname, int sample_rows, proof_snapshot *out);
/* Frees everything s holds and empties it; NULL or an empty snapshot allowed. */
void proof_snapshot_free(proof_snapshot *s);

/* One difference found by the proof. */
typedef struct {
    char *db;       /* database, NULL for cluster-wide checks */
    char *check;    /* "rows", "vector_checksum", "table_missing", "table_extra", "index_invalid",
                       "index_not_used", "extversion", "extension_missing", "server_version",
                       "database_missing", "query_error" */
    char *object;   /* e.g. "public.memories", "public.memories.embedding", "memories_embedding_hnsw",
                       "vector", "server" */
    char *expected; /* what the old side had / what is required (text) */
    char *actual;   /* what the new side has (text) */
} proof_mismatch;

/* The proof's totals and every difference. */
typedef struct {
    int databases;          /* databases compared */
    int tables;             /* tables compared */
    int64_t rows;           /* rows counted on the new side, over all compared tables */
    int vector_columns;     /* vector columns whose checksum was compared */
    int64_t vectors_sampled; /* values in those checksums (new side) */
    int indexes;            /* HNSW/IVFFlat indexes checked on the new side */
    int indexes_used;       /* of those, chosen by the planner for a distance query */
    int plan_skipped;       /* partial or expression indexes: validity checked, plan not */
    proof_mismatch *mismatches;
    int nmismatches;
    int ncap;
} proof_result;

/* res starts zeroed ({0}); every function below adds to it. */

/* Compares `before` (taken on the old side) with the database c_new is connected to on the new
 * side: takes the same snapshot there (same sample_rows) and records a mismatch for every table
 * missing, extra, with another row count or another checksum. Then checks, on that database:
 * every index whose access method is hnsw or ivfflat is indisvalid and indisready, and (unless
 * partial or on an expression) an EXPLAIN (FORMAT JSON) of
 *   SELECT 1 FROM t ORDER BY col <op> (SELECT col FROM t WHERE col IS NOT NULL LIMIT 1) LIMIT 10
 * with enable_seqscan off (SET LOCAL inside a transaction it opens and rolls back), where <op> is
 * the ordering operator (pg_amop, amoppurpose 'o') of the index's opfamily, names the index; and
 * when `vector` is installed, its extversion equals the newest version the new server offers
 * (the highest of pg_available_extension_versions by numeric dotted order; a mismatch names
 * both; `vector` installed on the old side but not on the new one is "extension_missing").
 * Mismatches carry before->db as their database. Adds to res's totals (a table counts when it
 * exists on both sides; a vector column when both sides have a checksum). Returns false only
 * when it could not run (connection error: the snapshot or a catalog query failed with no
 * SQLSTATE or one of class 08 / 57P, logged); any other query error is a "query_error" mismatch
 * naming the object (the database, or the index whose EXPLAIN failed), not a false return. When
 * c_new is already inside a transaction, each EXPLAIN runs in a savepoint that is rolled back. */
bool proof_check_db(pg_conn *c_new, const proof_snapshot *before, int sample_rows, proof_result *res);

/* Records a mismatch when the server c is connected to is not of major version want_major
 * (e.g. 17, compared with server_version_num / 10000). Returns false on a query error. */
bool proof_check_server(pg_conn *c, int want_major, proof_result *res);

/* Appends a mismatch (every string copied; db, object, expected and actual may be NULL), e.g.
 * "database_missing" for a database of the old side absent on the new side. Out of memory:
 * logged, the mismatch is recorded without its texts or, failing that, dropped. */
void proof_add_mismatch(proof_result *res, const char *db, const char *check, const char *object,
                        const char *expected, const char *actual);

/* True when res has no mismatch. */
bool proof_passed(const proof_result *res);

/* {"passed", "databases", "tables", "rows", "vector_columns", "vectors_sampled", "indexes",
 *  "indexes_used", "plan_skipped", "mismatches": [{"database", "check", "object", "expected",
 *  "actual"}]}. NULL when out of memory. Caller owns it. */
cJSON *proof_render(const proof_result *res);

/* Logs each mismatch as an error line ("proof: database d: rows of public.t: old 100, new 99"). */
void proof_log_mismatches(const proof_result *res);

/* Frees the mismatches and zeroes res; NULL allowed. */
void proof_result_free(proof_result *res);

/* Compares two dotted versions component by component as integers ("0.10.0" > "0.8.0"; a
 * missing component counts as 0, so "0.8" equals "0.8.0"; a non-numeric tail of a component such
 * as "1beta2" is dropped). Returns <0, 0 or >0. Texts that are not versions (NULL counts as "")
 * are ordered by strcmp, so the order is stable. Same rules as verify's version constraints. */
int proof_version_cmp(const char *a, const char *b);

#endif

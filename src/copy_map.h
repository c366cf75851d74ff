/* copy_map.h — the vestige → pgmemctl mapping, one source row at a time: builds the SQLite
 * queries from the columns the file really has, validates every value, and encodes the
 * memories / scheduling / edges tuples in PostgreSQL's binary COPY format.
 *
 * Mapping (documented column by column in pgmemctl-copy(1)):
 *   knowledge_nodes.id/content/node_type/tags/created_at/updated_at → memories columns;
 *   every other knowledge_nodes column → memories.metadata under its own name;
 *   node_embeddings.embedding (LE float32 BLOB) → memories.embedding;
 *   fsrs_cards (or the node's own FSRS columns when it has no card) → scheduling;
 *   memory_connections and knowledge_edges → edges (other columns → edges.metadata). */
#ifndef PGMEMCTL_COPY_MAP_H
#define PGMEMCTL_COPY_MAP_H

#include "sqlite_values.h"
#include "copy_binary.h"
#include "sqlite_src.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *model;    /* the store's embedding model (registry name), NULL if none */
    int dim;              /* the store's dimension, 0 if none */
    epoch_unit epoch;     /* how integer timestamps are read */
} map_ctx;

/* One problem found in a source row. action says what happened to the data:
 * "row_skipped", "embedding_nulled", "scheduling_skipped", "edge_skipped". */
typedef struct {
    char field[64];
    char reason[256];
    const char *action;
} map_reject;

typedef struct {
    bool row_ok;          /* the target row is written */
    map_reject rej[4];
    int nrej;
} map_outcome;

/* ---- nodes ---------------------------------------------------------------------------------- */

typedef struct {
    char *sql;            /* SELECT … WHERE n.rowid > ?1 ORDER BY n.rowid LIMIT ?2 */
    char *sql_one;        /* same, for one row: WHERE n.rowid = ?1 */
    char **cols;          /* knowledge_nodes columns, result columns 1..ncols */
    int ncols;
    int i_id, i_content, i_node_type, i_tags, i_created, i_updated;       /* -1 if absent */
    int i_stability, i_difficulty, i_reps, i_lapses, i_state, i_next_review, i_sched_days,
        i_retrieval;
    int e_base;           /* result index of embedding, dimensions, model */
    int c_base;           /* result index of card rowid, difficulty, stability, state, reps, lapses,
                             last_review, due_date, elapsed_days, scheduled_days */
    bool has_embeddings, has_cards;
} node_query;

/* Builds the node query from the file's schema. Fails (logged) when knowledge_nodes lacks id or
 * content. Free with node_query_free. */
bool node_query_build(sqlite_src *s, node_query *q);
void node_query_free(node_query *q);

typedef struct {
    double stability, difficulty, retrievability;
    bool has_retrievability, has_last_review, has_next_review, from_card;
    const char *state;
    size_t state_len;
    int64_t last_review, next_review;      /* µs since 2000-01-01 UTC */
    int32_t reps, lapses, scheduled_days, elapsed_days;
} sched_values;

typedef struct {
    int64_t rowid;
    char key[80];                /* the source id as text (truncated, for reports) */
    unsigned char id[16];
    const char *content, *node_type;
    size_t content_len, node_type_len;
    tags_list tags;
    int64_t created_at, updated_at;
    char *metadata;              /* JSON object text (owned) */
    const void *emb;             /* NULL when missing or rejected */
    int emb_dim;
    bool emb_present;            /* the source had an embedding (even if rejected) */
    bool sched_ok;
    sched_values sched;
} node_values;

/* The key a knowledge_nodes row is reported and recorded under (rejections,
 * pgmemctl_copy_rejects.source_key): result column col of st (the id) as text_printable makes
 * it (valid UTF-8), at most 64 bytes, or "rowid N" when it is NULL. key: size bytes,
 * NUL-terminated. */
void copy_map_node_key(sqlite3_stmt *st, int col, int64_t rowid, char *key, size_t size);

/* The same for an edge row: "source -> target (type)" from those result columns, each made
 * printable and at most 40 bytes (empty when NULL). */
void copy_map_edge_key(sqlite3_stmt *st, int i_src, int i_tgt, int i_type, char *key, size_t size);

/* Reads the current row of st (a node_query statement) into v and o. Pointers in v point into
 * SQLite's row memory: valid until the next sqlite3_step. Returns false only when out of
 * memory. Call node_values_clear before reusing v. */
bool copy_map_node(const node_query *q, sqlite3_stmt *st, const map_ctx *ctx, node_values *v, map_outcome *o);
void node_values_clear(node_values *v);

/* Appends one tuple for COPY memories (id, content, node_type, tags, embedding, metadata,
 * created_at, updated_at) FROM STDIN (FORMAT binary). */
#define COPY_MEMORIES_COLUMNS "(id, content, node_type, tags, embedding, metadata, created_at, updated_at)"
void copy_encode_memory(pgbuf *b, const node_values *v);

/* Appends one tuple for COPY scheduling COPY_SCHEDULING_COLUMNS. */
#define COPY_SCHEDULING_COLUMNS                                                                    \
    "(memory_id, stability, difficulty, retrievability, state, last_review, next_review, reps, "   \
    "lapses, scheduled_days, elapsed_days)"
void copy_encode_schedule(pgbuf *b, const node_values *v);

/* ---- edges ---------------------------------------------------------------------------------- */

typedef struct {
    const char *table;           /* "memory_connections" or "knowledge_edges" */
    char *sql;                   /* SELECT e.rowid, e.…, rowid of the source and target nodes
                                    WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT ?2 */
    char **cols;
    int ncols;
    int i_src, i_tgt, i_type, i_weight, i_created;
} edge_query;

/* Builds the query for table (memory_connections: link_type/strength; knowledge_edges:
 * edge_type/weight). Fails (logged) when a required column is missing. */
bool edge_query_build(sqlite_src *s, const char *table, edge_query *q);
void edge_query_free(edge_query *q);

typedef struct {
    int64_t rowid;
    char key[160];               /* "source→target (type)" for reports */
    unsigned char src[16], tgt[16];
    const char *type;
    size_t type_len;
    double weight;
    int64_t created_at;
    char *metadata;              /* owned */
    int64_t src_node, tgt_node;  /* rowid of the endpoint in the source's knowledge_nodes, 0 if none */
} edge_values;

#define COPY_EDGES_COLUMNS "(source_id, target_id, edge_type, weight, created_at, metadata)"
bool copy_map_edge(const edge_query *q, sqlite3_stmt *st, const map_ctx *ctx, edge_values *v, map_outcome *o);
void edge_values_clear(edge_values *v);
void copy_encode_edge(pgbuf *b, const edge_values *v);

#endif

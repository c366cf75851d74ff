/* bench_scratch.c — the scratch stores of pgmemctl bench: the sample file (vestige SQLite from
 * the sample builder, builtin embeddings), the held-out query set, binary COPY into a scratch
 * schema, the HNSW build, and the drop. */
#include "bench_int.h"
#include "bench_stats.h"
#include "log.h"
#include "migrations_gen.h"
#include "parse.h"
#include "pgcopy.h"
#include "sqlite_src.h"
#include "vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bench_sample {
    sqlite_src src;
};

const char *bench_sql(const char *name)
{
    for (int i = 0; i < embedded_sql_count; i++)
        if (!strcmp(embedded_sql[i].name, name))
            return embedded_sql[i].data;
    log_error("bench: internal error: no embedded sql/%s", name);
    return NULL;
}

void bench_query_set_free(bench_query_set *qs)
{
    for (int i = 0; i < qs->n; i++) {
        free(qs->q[i].vector);
        free(qs->q[i].text);
        free(qs->q[i].domains);
    }
    free(qs->q);
    qs->q = NULL;
    qs->n = 0;
}

/* Rows of the sample in load order: memories with their embedding, by rowid. */
#define SAMPLE_ROWS_SQL                                                                                     \
    "SELECT n.id, n.content, n.node_type, n.tags, e.embedding FROM knowledge_nodes n "                     \
    "JOIN node_embeddings e ON e.node_id = n.id ORDER BY n.rowid LIMIT ?1 OFFSET ?2"

bench_sample *bench_sample_open(const char *path, int64_t *rows, int *dim)
{
    bench_sample *s = calloc(1, sizeof *s);
    if (!s) {
        log_error("out of memory");
        return NULL;
    }
    if (!sqlite_src_open(&s->src, path)) {
        free(s);
        return NULL;
    }
    if (!sqlite_src_has_table(&s->src, "knowledge_nodes") || !sqlite_src_has_table(&s->src, "node_embeddings")) {
        log_error("bench: %s is not a vestige store (no knowledge_nodes and node_embeddings tables); build one "
                  "with pgmemctl-sample or scripts/make-vestige-sample",
                  path);
        bench_sample_close(s);
        return NULL;
    }
    sqlite3_stmt *st = sqlite_src_prepare(&s->src, "SELECT count(*), (SELECT length(embedding) FROM node_embeddings "
                                                   "e JOIN knowledge_nodes n ON n.id = e.node_id ORDER BY n.rowid "
                                                   "LIMIT 1) FROM node_embeddings e JOIN knowledge_nodes n ON "
                                                   "n.id = e.node_id");
    bool ok = st && sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        *rows = sqlite3_column_int64(st, 0);
        int bytes = sqlite3_column_int(st, 1);
        *dim = bytes / 4;
        ok = *rows > 0 && bytes > 0 && bytes % 4 == 0 && *dim <= VEC_MAX_DIM;
        if (!ok)
            log_error("bench: %s holds no usable embeddings (%lld rows, first embedding %d bytes)", path,
                      (long long) *rows, bytes);
    } else if (st) {
        log_error("bench: could not read %s: %s", path, sqlite3_errmsg(s->src.db));
    }
    sqlite3_finalize(st);
    if (!ok) {
        bench_sample_close(s);
        return NULL;
    }
    return s;
}

void bench_sample_close(bench_sample *s)
{
    if (!s)
        return;
    sqlite_src_close(&s->src);
    free(s);
}

/* The first tag of a vestige tags JSON array, newly allocated, or NULL. */
static char *first_tag(const char *json, size_t len)
{
    tags_list t;
    char why[128];
    if (!tags_parse(json ? json : "", json ? len : 0, &t, why, sizeof why) || t.n == 0) {
        tags_free(&t);
        return NULL;
    }
    char *out = strdup(t.items[0]);
    tags_free(&t);
    return out;
}

/* A text[] literal {"a"} for one element (quotes and backslashes escaped). */
static char *array_literal(const char *item)
{
    size_t n = strlen(item);
    char *out = malloc(2 * n + 5);
    if (!out)
        return NULL;
    char *o = out;
    *o++ = '{';
    *o++ = '"';
    for (const char *p = item; *p; p++) {
        if (*p == '"' || *p == '\\')
            *o++ = '\\';
        *o++ = *p;
    }
    *o++ = '"';
    *o++ = '}';
    *o = '\0';
    return out;
}

bool bench_sample_queries(bench_sample *s, int64_t offset, int n, bench_query_set *out)
{
    memset(out, 0, sizeof *out);
    out->q = calloc((size_t) n, sizeof *out->q);
    sqlite3_stmt *st = sqlite_src_prepare(&s->src, SAMPLE_ROWS_SQL);
    float *v = malloc(VEC_MAX_DIM * sizeof *v);
    bool ok = out->q && st && v;
    if (!ok && st)
        log_error("out of memory");
    if (ok) {
        sqlite3_bind_int64(st, 1, n);
        sqlite3_bind_int64(st, 2, offset);
    }
    int rc = SQLITE_DONE;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *blob = sqlite3_column_blob(st, 4);
        int bytes = sqlite3_column_bytes(st, 4);
        int dim = 0;
        if (vec_check_f32le(blob, (size_t) bytes, &dim) != VEC_OK) {
            log_error("bench: sample memory %s has an unusable embedding", (const char *) sqlite3_column_text(st, 0));
            ok = false;
            break;
        }
        for (int j = 0; j < dim; j++) { /* little-endian float32 */
            uint32_t bits = (uint32_t) blob[4 * j] | (uint32_t) blob[4 * j + 1] << 8 |
                            (uint32_t) blob[4 * j + 2] << 16 | (uint32_t) blob[4 * j + 3] << 24;
            memcpy(&v[j], &bits, 4);
        }
        bench_query *q = &out->q[out->n];
        const char *content = (const char *) sqlite3_column_text(st, 1);
        q->vector = vec_to_text(v, dim);
        q->text = bench_query_words(content ? content : "", (size_t) sqlite3_column_bytes(st, 1), BENCH_QUERY_WORDS);
        char *tag = first_tag((const char *) sqlite3_column_text(st, 3), (size_t) sqlite3_column_bytes(st, 3));
        q->domains = tag ? array_literal(tag) : NULL;
        free(tag);
        out->n++;
        if (!q->vector || !q->text) {
            log_error("out of memory");
            ok = false;
        }
    }
    if (ok && rc != SQLITE_DONE) {
        log_error("bench: reading the sample: %s", sqlite3_errmsg(s->src.db));
        ok = false;
    }
    if (ok && out->n < n) {
        log_error("bench: the sample has only %d memories for the query set after the first %lld", out->n,
                  (long long) offset);
        ok = false;
    }
    sqlite3_finalize(st);
    free(v);
    if (!ok)
        bench_query_set_free(out);
    return ok;
}

/* ---- the scratch schema ------------------------------------------------------------------- */

static bool run_logged(pg_conn *c, const char *sql, const char *what)
{
    if (pg_run(c, sql, 0, NULL))
        return true;
    log_error("bench: %s: %s%s%s%s", what, pg_errmsg(c), pg_sqlstate(c)[0] ? " (SQLSTATE " : "", pg_sqlstate(c),
              pg_sqlstate(c)[0] ? ")" : "");
    return false;
}

/* Drops the scratch schemas of earlier runs whose backend has gone (killed runs). */
static void drop_leftovers(pg_conn *c)
{
    pg_result *r = pg_exec(c,
                           "SELECT nspname FROM pg_namespace WHERE nspname ~ '^pgmemctl_bench_[0-9]+$' "
                           "AND substr(nspname, 16)::int NOT IN (SELECT pid FROM pg_stat_activity)",
                           0, NULL);
    if (!r)
        return;
    for (int i = 0; i < pg_ntuples(r); i++) {
        char *q = pg_quote_ident(c, pg_value(r, i, 0));
        if (!q)
            continue;
        char sql[200];
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", q);
        if (pg_run(c, sql, 0, NULL))
            log_info("bench: dropped %s, left by an interrupted run", pg_value(r, i, 0));
        free(q);
    }
    pg_clear(r);
}

/* Sends the buffer to the COPY when it is large, or always when force. */
static bool flush_copy(pg_conn *c, pgbuf *b, bool force)
{
    if (b->oom) {
        log_error("bench: out of memory encoding the COPY data");
        return false;
    }
    if (!force && b->len < (1u << 20))
        return true;
    bool ok = pg_copy_put(c, b->data, b->len);
    pgbuf_reset(b);
    if (!ok)
        log_error("bench: COPY into the scratch store failed: %s", pg_errmsg(c));
    return ok;
}

static bool copy_rows(pg_conn *c, bench_sample *s, int64_t rows, int dim, int64_t *copied)
{
    sqlite3_stmt *st = sqlite_src_prepare(&s->src, SAMPLE_ROWS_SQL);
    if (!st)
        return false;
    sqlite3_bind_int64(st, 1, rows);
    sqlite3_bind_int64(st, 2, 0);
    if (!pg_copy_begin(c, "COPY memories (id, content, node_type, tags, domains, embedding) FROM STDIN "
                          "(FORMAT binary)")) {
        log_error("bench: COPY into the scratch store: %s", pg_errmsg(c));
        sqlite3_finalize(st);
        return false;
    }
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_header(&b);
    bool ok = true;
    int rc;
    *copied = 0;
    while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *) sqlite3_column_text(st, 0);
        unsigned char uuid[16];
        const unsigned char *blob = sqlite3_column_blob(st, 4);
        int bytes = sqlite3_column_bytes(st, 4), vdim = 0;
        tags_list tags;
        char why[128];
        if (!id || !parse_uuid(id, strlen(id), uuid) || vec_check_f32le(blob, (size_t) bytes, &vdim) != VEC_OK ||
            vdim != dim ||
            !tags_parse((const char *) sqlite3_column_text(st, 3), (size_t) sqlite3_column_bytes(st, 3), &tags, why,
                        sizeof why)) {
            log_error("bench: sample memory %s is not usable (id, embedding of %d dimensions, or tags)",
                      id ? id : "(null)", dim);
            ok = false;
            break;
        }
        const char *content = (const char *) sqlite3_column_text(st, 1);
        const char *type = (const char *) sqlite3_column_text(st, 2);
        pgcopy_tuple_begin(&b, 6);
        pgcopy_uuid(&b, uuid);
        pgcopy_text(&b, content ? content : "", (size_t) sqlite3_column_bytes(st, 1));
        pgcopy_text(&b, type ? type : "fact", type ? (size_t) sqlite3_column_bytes(st, 2) : 4);
        pgcopy_text_array(&b, (const char *const *) tags.items, tags.lens, tags.n);
        pgcopy_text_array(&b, (const char *const *) tags.items, tags.lens, tags.n > 0 ? 1 : 0);
        pgcopy_vector_f32le(&b, blob, dim);
        tags_free(&tags);
        ok = flush_copy(c, &b, false);
        (*copied)++;
    }
    if (ok && rc != SQLITE_DONE) {
        log_error("bench: reading the sample: %s", sqlite3_errmsg(s->src.db));
        ok = false;
    }
    sqlite3_finalize(st);
    if (ok) {
        pgcopy_trailer(&b);
        ok = flush_copy(c, &b, true);
    } else {
        pg_copy_abort(c, "pgmemctl bench: bad sample row");
    }
    pgbuf_free(&b);
    int64_t stored = 0;
    if (ok && !pg_copy_end(c, &stored)) {
        log_error("bench: COPY into the scratch store failed: %s", pg_errmsg(c));
        ok = false;
    }
    return ok;
}

bool bench_scratch_load(pg_conn *c, const bench_request *req, bench_sample *s, int64_t rows, int dim,
                        bench_store *st)
{
    drop_leftovers(c);
    snprintf(st->schema, sizeof st->schema, "pgmemctl_bench_%d", pg_backend_pid(c));
    st->scratch = true;
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", st->schema);
    if (!run_logged(c, sql, "creating the scratch schema")) {
        st->schema[0] = '\0';
        return false;
    }
    /* the scratch schema first, then the session's own path (where the vector type lives) */
    const char *sp[] = {st->schema};
    if (!pg_run(c, "SELECT set_config('search_path', quote_ident($1) || ', ' || current_setting('search_path'), false)",
                1, sp)) {
        log_error("bench: setting search_path: %s", pg_errmsg(c));
        return false;
    }
    /* the store's own schema: migration 0001 (memories with its generated full-text column and
     * secondary indexes, and the tables around it), created in the scratch schema */
    const char *ddl = NULL;
    for (int i = 0; i < embedded_migrations_count; i++)
        if (!strcmp(embedded_migrations[i].name, "0001_init.up.sql"))
            ddl = embedded_migrations[i].data;
    if (!ddl || !pg_run_script(c, ddl)) {
        log_error("bench: creating the scratch store: %s", ddl ? pg_errmsg(c) : "no embedded migration 0001");
        return false;
    }
    snprintf(sql, sizeof sql, "ALTER TABLE memories ALTER COLUMN embedding TYPE vector(%d)", dim);
    if (!run_logged(c, sql, "stamping the vector dimension"))
        return false;

    log_info("bench: loading %lld memories (%d dimensions) into %s.memories with binary COPY", (long long) rows, dim,
             st->schema);
    double t0 = bench_now();
    int64_t copied = 0;
    if (!copy_rows(c, s, rows, dim, &copied))
        return false;
    st->load_seconds = bench_now() - t0;
    st->load_rows_per_second = st->load_seconds > 0 ? (double) copied / st->load_seconds : 0;
    if (!run_logged(c, "VACUUM (ANALYZE) memories", "VACUUM ANALYZE of the scratch store"))
        return false;
    log_info("bench: loaded %lld memories in %.2f s (%.0f rows/s)", (long long) copied, st->load_seconds,
             st->load_rows_per_second);
    st->graph_fit = -1;
    if (req->no_index)
        return true;

    const char *params[] = {req->maintenance_work_mem};
    if (!pg_run(c, "SELECT set_config('maintenance_work_mem', $1, false)", 1, params)) {
        log_error("bench: maintenance_work_mem \"%s\": %s", req->maintenance_work_mem, pg_errmsg(c));
        return false;
    }
    bool found;
    char *mwm = pg_query_text(c, "SELECT current_setting('maintenance_work_mem')", 0, NULL, &found);
    snprintf(st->maintenance_work_mem, sizeof st->maintenance_work_mem, "%s", found ? mwm : "?");
    free(mwm);
    char *workers = pg_query_text(c, "SELECT current_setting('max_parallel_maintenance_workers')", 0, NULL, &found);
    st->parallel_workers = found ? atoi(workers) : 0;
    free(workers);
    snprintf(sql, sizeof sql,
             "CREATE INDEX idx_memories_embedding_hnsw ON memories USING hnsw (embedding vector_cosine_ops) "
             "WITH (m = %d, ef_construction = %d)",
             req->hnsw_m, req->hnsw_ef_construction);
    log_info("bench: %s (maintenance_work_mem %s)", sql, st->maintenance_work_mem);
    pg_notices_begin(c);
    t0 = bench_now();
    bool ok = run_logged(c, sql, "building the HNSW index");
    st->index_seconds = bench_now() - t0;
    char *notices = pg_notices_end(c);
    if (ok) {
        const char *hit = notices ? strstr(notices, "no longer fits into maintenance_work_mem") : NULL;
        st->graph_fit = hit ? 0 : 1;
        if (hit) {
            const char *line = hit;
            while (line > notices && line[-1] != '\n')
                line--;
            size_t len = strcspn(line, "\n");
            snprintf(st->graph_notice, sizeof st->graph_notice, "%.*s", (int) len, line);
        }
        log_info("bench: HNSW index built in %.2f s; the graph %s maintenance_work_mem", st->index_seconds,
                 st->graph_fit ? "fit in" : "did not fit in");
    }
    free(notices);
    if (ok)
        pg_run(c, "RESET maintenance_work_mem", 0, NULL);
    return ok && run_logged(c, "ANALYZE memories", "ANALYZE of the scratch store");
}

void bench_scratch_drop(pg_conn *c, bench_store *st)
{
    if (!st->schema[0])
        return;
    pg_rollback(c);
    char sql[160];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", st->schema);
    if (!pg_run(c, "SET default_transaction_read_only = off", 0, NULL) || !pg_run(c, sql, 0, NULL))
        log_warn("bench: could not drop the scratch schema %s: %s (drop it by hand)", st->schema, pg_errmsg(c));
    else
        log_info("bench: dropped the scratch schema %s", st->schema);
    pg_run(c, "RESET search_path", 0, NULL);
}

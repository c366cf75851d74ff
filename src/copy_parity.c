/* copy_parity.c — after a copy, proves the target holds what the source has: counts by key
 * for memories, scheduling and edges, and a byte-level comparison on a sample of memories. */
#include "copy_parity.h"
#include "log.h"
#include "vec.h"

#include <openssl/evp.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MISMATCHES 20

typedef struct {
    int64_t *v;
    size_t n;
} rowid_set;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static bool rowid_set_has(const rowid_set *s, int64_t r)
{
    return s->n && bsearch(&r, s->v, s->n, sizeof r, cmp_i64) != NULL;
}

/* Rowids of source_table recorded with one of the actions (a PostgreSQL array literal). */
static bool load_rejected(pg_conn *c, const char *source_id, const char *table, const char *actions, rowid_set *out)
{
    out->v = NULL;
    out->n = 0;
    pg_result *r = pg_exec(c,
                           "SELECT DISTINCT source_rowid FROM pgmemctl_copy_rejects WHERE source_id = $1"
                           " AND source_table = $2 AND action = ANY($3::text[]) ORDER BY 1",
                           3, (const char *[]){source_id, table, actions});
    if (!r) {
        log_error("parity: reading pgmemctl_copy_rejects: %s", pg_errmsg(c));
        return false;
    }
    out->n = (size_t) pg_ntuples(r);
    out->v = malloc((out->n ? out->n : 1) * sizeof *out->v);
    if (!out->v) {
        pg_clear(r);
        return false;
    }
    for (size_t i = 0; i < out->n; i++)
        out->v[i] = strtoll(pg_value(r, (int) i, 0), NULL, 10);
    pg_clear(r);
    return true;
}

static void mismatch(copy_result *res, const char *id, const char *what, const char *expected, const char *found)
{
    if (cJSON_GetArraySize(res->parity_mismatches) >= MAX_MISMATCHES)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "what", what);
    cJSON_AddStringToObject(o, "expected", expected);
    cJSON_AddStringToObject(o, "found", found ? found : "(none)");
    cJSON_AddItemToArray(res->parity_mismatches, o);
}

/* len bytes as 2 * len lowercase hex digits and a NUL (as PostgreSQL's encode(…, 'hex')). A
 * table lookup: a sprintf per byte was a third of the client's instructions in the parity sample
 * (musl's printf is slow). */
static void hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static bool sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return false;
    hex_encode(md, mdlen, out);
    return true;
}

/* Streaming a temporary table with COPY: begin (logs the failure), put (sends when the buffer is
 * large), finish (sends the rest and the trailer). */
static bool stream_begin(pg_conn *c, const char *copy_sql, pgbuf *b)
{
    pgbuf_init(b);
    if (!pg_copy_begin(c, copy_sql)) {
        log_error("parity: %s", pg_errmsg(c));
        return false;
    }
    pgcopy_header(b);
    return true;
}

static bool stream_put(pg_conn *c, pgbuf *b)
{
    if (b->len < 256 * 1024)
        return true;
    bool ok = !b->oom && pg_copy_put(c, b->data, b->len);
    pgbuf_reset(b);
    return ok;
}

static bool stream_finish(pg_conn *c, pgbuf *b, bool ok, const char *what)
{
    pgcopy_trailer(b);
    ok = ok && !b->oom && pg_copy_put(c, b->data, b->len) && pg_copy_end(c, NULL);
    if (!ok)
        log_error("parity: streaming %s: %s", what, pg_errmsg(c));
    pgbuf_free(b);
    return ok;
}

/* Streams accepted node ids into pgmemctl_parity_nodes and picks the sample rowids. */
static bool stream_nodes(pg_conn *c, sqlite_src *src, int64_t last, const rowid_set *rej, const rowid_set *sched_rej,
                         int64_t **sample, size_t *nsample, int64_t *unparsable)
{
    int64_t total = 0;
    sqlite3_stmt *st = sqlite_src_prepare(src, "SELECT count(*) FROM knowledge_nodes WHERE rowid <= ?1");
    if (!st)
        return false;
    sqlite3_bind_int64(st, 1, last);
    if (sqlite3_step(st) == SQLITE_ROW)
        total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    int64_t accepted = total - (int64_t) rej->n;
    int64_t want = accepted / 100 + (accepted % 100 != 0);
    if (want < 100)
        want = 100;
    int64_t k = accepted > want ? accepted / want : 1;
    *sample = malloc((size_t) (want + 2) * 2 * sizeof **sample);
    *nsample = 0;
    if (!*sample)
        return false;

    st = sqlite_src_prepare(src, "SELECT rowid, id FROM knowledge_nodes WHERE rowid <= ?1 ORDER BY rowid");
    if (!st)
        return false;
    sqlite3_bind_int64(st, 1, last);
    pgbuf b;
    if (!stream_begin(c, "COPY pgmemctl_parity_nodes (id, sched) FROM STDIN (FORMAT binary)", &b)) {
        sqlite3_finalize(st);
        return false;
    }
    int64_t seen = 0;
    bool ok = true;
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        int64_t rowid = sqlite3_column_int64(st, 0);
        if (rowid_set_has(rej, rowid))
            continue;
        unsigned char id[16];
        const char *t = (const char *) sqlite3_column_text(st, 1);
        if (!t || !parse_uuid(t, (size_t) sqlite3_column_bytes(st, 1), id)) {
            (*unparsable)++; /* accepted yet not a UUID cannot happen; count it as missing if it does */
            continue;
        }
        pgcopy_tuple_begin(&b, 2);
        pgcopy_uuid(&b, id);
        pgcopy_bool(&b, !rowid_set_has(sched_rej, rowid));
        if (seen % k == 0 && (int64_t) *nsample < want * 2)
            (*sample)[(*nsample)++] = rowid;
        seen++;
        ok = stream_put(c, &b);
    }
    sqlite3_finalize(st);
    return stream_finish(c, &b, ok, "node ids");
}

static bool stream_edges(pg_conn *c, sqlite_src *src, const char *table, const char *type_col, int64_t last,
                         const rowid_set *rej)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT rowid, source_id, target_id, \"%s\" FROM \"%s\" WHERE rowid <= ?1", type_col,
             table);
    sqlite3_stmt *st = sqlite_src_prepare(src, sql);
    if (!st)
        return false;
    sqlite3_bind_int64(st, 1, last);
    pgbuf b;
    if (!stream_begin(c, "COPY pgmemctl_parity_edges (s, t, type) FROM STDIN (FORMAT binary)", &b)) {
        sqlite3_finalize(st);
        return false;
    }
    bool ok = true;
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        if (rowid_set_has(rej, sqlite3_column_int64(st, 0)))
            continue;
        unsigned char s[16], t[16];
        const char *ss = (const char *) sqlite3_column_text(st, 1), *ts = (const char *) sqlite3_column_text(st, 2);
        const char *ty = (const char *) sqlite3_column_text(st, 3);
        pgcopy_tuple_begin(&b, 3);
        if (ss && parse_uuid(ss, (size_t) sqlite3_column_bytes(st, 1), s))
            pgcopy_uuid(&b, s);
        else
            pgcopy_null(&b);
        if (ts && parse_uuid(ts, (size_t) sqlite3_column_bytes(st, 2), t))
            pgcopy_uuid(&b, t);
        else
            pgcopy_null(&b);
        pgcopy_text(&b, ty ? ty : "", ty ? (size_t) sqlite3_column_bytes(st, 3) : 0);
        ok = stream_put(c, &b);
    }
    sqlite3_finalize(st);
    return stream_finish(c, &b, ok, table);
}

/* Expected values of one sampled memory, computed from the source with the copy's mapping. */
typedef struct {
    char id[37];
    char content_sha[65];
    char *vector_hex;           /* NULL: expect no vector */
    bool sched;
    sched_values sv;
} expected_row;

/* Compares one chunk of sampled rows (memory stays bounded: vectors are held per chunk). */
static bool sample_chunk(pg_conn *c, sqlite_src *src, const node_query *nq, const map_ctx *ctx,
                         const int64_t *rowids, size_t n, copy_result *res)
{
    expected_row *ex = calloc(n ? n : 1, sizeof *ex);
    char *arr = malloc(n * 38 + 3);
    sqlite3_stmt *st = sqlite_src_prepare(src, nq->sql_one);
    bool ok = ex && arr && st;
    size_t m = 0;
    for (size_t i = 0; ok && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, rowids[i]);
        if (sqlite3_step(st) != SQLITE_ROW)
            continue;
        node_values v = {0};
        map_outcome o;
        if (!copy_map_node(nq, st, ctx, &v, &o)) {
            ok = false;
            break;
        }
        if (o.row_ok) {
            expected_row *e = &ex[m++];
            uuid_format(v.id, e->id);
            ok = sha256_hex(v.content, v.content_len, e->content_sha);
            if (v.emb) {
                size_t blen = 4 + 4 * (size_t) v.emb_dim;
                unsigned char *bin = malloc(blen);
                e->vector_hex = malloc(blen * 2 + 1);
                if (!bin || !e->vector_hex)
                    ok = false;
                else {
                    vec_f32le_to_pgbinary(v.emb, v.emb_dim, bin);
                    hex_encode(bin, blen, e->vector_hex);
                }
                free(bin);
            }
            e->sched = v.sched_ok;
            e->sv = v.sched;
            e->sv.state = NULL; /* points into the row; compared below through a copy */
            if (v.sched_ok) {
                char *state = strndup(v.sched.state, v.sched.state_len);
                e->sv.state = state;
                ok = ok && state;
            }
        }
        node_values_clear(&v);
    }
    if (st)
        sqlite3_finalize(st);
    res->sample_size += (int64_t) m;
    pg_result *r = NULL;
    if (ok) {
        char *o = arr;
        *o++ = '{';
        for (size_t i = 0; i < m; i++) {
            if (i)
                *o++ = ',';
            memcpy(o, ex[i].id, 36);
            o += 36;
        }
        strcpy(o, "}");
        r = pg_exec(c,
                    "SELECT m.id::text, encode(sha256(convert_to(m.content, 'UTF8')), 'hex'),"
                    " encode(vector_send(m.embedding), 'hex'), s.memory_id IS NOT NULL, s.stability::text,"
                    " s.difficulty::text, s.state, s.reps, s.lapses,"
                    " ((extract(epoch FROM s.next_review) - 946684800) * 1000000)::bigint"
                    " FROM memories m LEFT JOIN scheduling s ON s.memory_id = m.id WHERE m.id = ANY($1::uuid[])",
                    1, (const char *[]){arr});
        if (!r) {
            log_error("parity: reading the sample: %s", pg_errmsg(c));
            ok = false;
        }
    }
    for (size_t i = 0; ok && i < m; i++) {
        expected_row *e = &ex[i];
        int row = -1;
        for (int j = 0; j < pg_ntuples(r) && row < 0; j++)
            if (!strcmp(pg_value(r, j, 0), e->id))
                row = j;
        if (row < 0) {
            res->sample_content_mismatch++;
            mismatch(res, e->id, "row", "present", "missing");
            continue;
        }
        if (strcmp(pg_value(r, row, 1), e->content_sha) != 0) {
            res->sample_content_mismatch++;
            mismatch(res, e->id, "content_sha256", e->content_sha, pg_value(r, row, 1));
        }
        bool has_vec = !pg_isnull(r, row, 2);
        if (has_vec != (e->vector_hex != NULL) || (has_vec && strcmp(pg_value(r, row, 2), e->vector_hex) != 0)) {
            res->sample_vector_mismatch++;
            mismatch(res, e->id, "embedding", e->vector_hex ? "vector bytes as in the source" : "NULL",
                     has_vec ? "different vector bytes" : "NULL");
        }
        bool has_sched = !strcmp(pg_value(r, row, 3), "t");
        bool fsrs_ok = has_sched == e->sched;
        if (fsrs_ok && has_sched) {
            const sched_values *sv = &e->sv;
            bool nr_null = pg_isnull(r, row, 9);
            fsrs_ok = strtod(pg_value(r, row, 4), NULL) == sv->stability &&
                      strtod(pg_value(r, row, 5), NULL) == sv->difficulty && !strcmp(pg_value(r, row, 6), sv->state) &&
                      atoi(pg_value(r, row, 7)) == sv->reps && atoi(pg_value(r, row, 8)) == sv->lapses &&
                      nr_null == !sv->has_next_review &&
                      (nr_null || strtoll(pg_value(r, row, 9), NULL, 10) == sv->next_review);
        }
        if (!fsrs_ok) {
            res->sample_fsrs_mismatch++;
            mismatch(res, e->id, "fsrs", "stability, difficulty, state, reps, lapses, next_review as in the source",
                     has_sched ? "different values" : "no scheduling row");
        }
    }
    pg_clear(r);
    for (size_t i = 0; i < m; i++) {
        free(ex[i].vector_hex);
        free((char *) ex[i].sv.state);
    }
    free(ex);
    free(arr);
    return ok;
}

#define SAMPLE_CHUNK 100

static bool sample_compare(pg_conn *c, sqlite_src *src, const node_query *nq, const map_ctx *ctx,
                           const int64_t *rowids, size_t n, copy_result *res)
{
    res->sample_size = 0;
    for (size_t i = 0; i < n; i += SAMPLE_CHUNK)
        if (!sample_chunk(c, src, nq, ctx, rowids + i, n - i < SAMPLE_CHUNK ? n - i : SAMPLE_CHUNK, res))
            return false;
    return true;
}

bool copy_parity(pg_conn *c, sqlite_src *src, const node_query *nq, const map_ctx *ctx, const char *source_id,
                 const int64_t last_rowid[3], copy_result *res)
{
    rowid_set rej = {0}, sched_rej = {0}, mc_rej = {0}, ke_rej = {0};
    int64_t *sample = NULL;
    size_t nsample = 0;
    int64_t unparsable = 0;
    bool has_mc = sqlite_src_has_table(src, "memory_connections"), has_ke = sqlite_src_has_table(src, "knowledge_edges");
    bool ok = load_rejected(c, source_id, "knowledge_nodes", "{row_skipped}", &rej) &&
              load_rejected(c, source_id, "knowledge_nodes", "{scheduling_skipped}", &sched_rej) &&
              load_rejected(c, source_id, "memory_connections", "{edge_skipped}", &mc_rej) &&
              load_rejected(c, source_id, "knowledge_edges", "{edge_skipped}", &ke_rej);
    ok = ok && pg_begin(c) &&
         pg_run(c, "CREATE TEMP TABLE pgmemctl_parity_nodes (id uuid, sched bool) ON COMMIT DROP", 0, NULL) &&
         pg_run(c, "CREATE TEMP TABLE pgmemctl_parity_edges (s uuid, t uuid, type text) ON COMMIT DROP", 0, NULL);
    ok = ok && stream_nodes(c, src, last_rowid[0], &rej, &sched_rej, &sample, &nsample, &unparsable);
    ok = ok && (!has_mc || stream_edges(c, src, "memory_connections", "link_type", last_rowid[1], &mc_rej));
    ok = ok && (!has_ke || stream_edges(c, src, "knowledge_edges", "edge_type", last_rowid[2], &ke_rej));
    pg_result *r = NULL;
    if (ok) {
        r = pg_exec(c,
                    "SELECT (SELECT count(DISTINCT id) FROM pgmemctl_parity_nodes),"
                    " (SELECT count(DISTINCT p.id) FROM pgmemctl_parity_nodes p JOIN memories m ON m.id = p.id),"
                    " (SELECT count(DISTINCT id) FROM pgmemctl_parity_nodes WHERE sched),"
                    " (SELECT count(DISTINCT p.id) FROM pgmemctl_parity_nodes p JOIN scheduling s"
                    "   ON s.memory_id = p.id WHERE p.sched),"
                    " (SELECT count(*) FROM (SELECT DISTINCT s, t, type FROM pgmemctl_parity_edges) k),"
                    " (SELECT count(*) FROM (SELECT DISTINCT s, t, type FROM pgmemctl_parity_edges) k"
                    "   JOIN edges e ON e.source_id = k.s AND e.target_id = k.t AND e.edge_type = k.type)",
                    0, NULL);
        if (!r)
            log_error("parity: counting: %s", pg_errmsg(c));
        ok = r != NULL;
    }
    if (ok) {
        static const char *names[3] = {"memories", "scheduling", "edges"};
        for (int t = 0; t < 3; t++) {
            snprintf(res->parity[t].table, sizeof res->parity[t].table, "%s", names[t]);
            res->parity[t].expected = strtoll(pg_value(r, 0, 2 * t), NULL, 10);
            res->parity[t].found = strtoll(pg_value(r, 0, 2 * t + 1), NULL, 10);
        }
        res->parity[0].expected += unparsable;
    }
    pg_clear(r);
    if (ok)
        pg_commit(c);
    else
        pg_rollback(c);
    ok = ok && sample_compare(c, src, nq, ctx, sample, nsample, res);
    if (ok) {
        res->parity_ok = res->sample_content_mismatch == 0 && res->sample_vector_mismatch == 0 &&
                         res->sample_fsrs_mismatch == 0;
        for (int t = 0; t < 3; t++)
            if (res->parity[t].expected != res->parity[t].found) {
                res->parity_ok = false;
                log_error("parity: %s: the source has %" PRId64 " accepted rows, the target holds %" PRId64,
                          res->parity[t].table, res->parity[t].expected, res->parity[t].found);
            }
        if (res->sample_content_mismatch + res->sample_vector_mismatch + res->sample_fsrs_mismatch)
            log_error("parity: sample of %" PRId64 " memories: %" PRId64 " content, %" PRId64 " vector and %" PRId64
                      " FSRS mismatches",
                      res->sample_size, res->sample_content_mismatch, res->sample_vector_mismatch,
                      res->sample_fsrs_mismatch);
        else if (res->parity_ok)
            log_info("parity: %" PRId64 " memories, %" PRId64 " scheduling rows, %" PRId64
                     " edges present; sample of %" PRId64 " identical (content, vectors, FSRS)",
                     res->parity[0].found, res->parity[1].found, res->parity[2].found, res->sample_size);
    }
    free(rej.v);
    free(sched_rej.v);
    free(mc_rej.v);
    free(ke_rej.v);
    free(sample);
    return ok;
}

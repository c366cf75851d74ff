/* copy.c — drives `pgmemctl copy`: source inspection, registry and typmod, write-path choice,
 * batched binary COPY with checkpoints, index drop/rebuild, ANALYZE and the parity check. */
#include "copy.h"
#include "copy_map.h"
#include "copy_parity.h"
#include "log.h"
#include "pgcopy.h"
#include "progress.h"
#include "sqlite_src.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Session advisory lock: one copy at a time per database ("pgmemcpy"). */
#define COPY_LOCK_KEY INT64_C(0x70676d656d637079)
#define FLUSH_BYTES (256 * 1024)

static const char *VESTIGE_TABLES[] = {"knowledge_nodes", "node_embeddings", "fsrs_cards", "memory_connections",
                                       "knowledge_edges"};

/* A rejection waiting for its batch to commit. */
typedef struct {
    const char *table;
    int64_t rowid;
    char key[160];
    map_reject r;
} pending_reject;

typedef struct {
    pg_conn *c;
    const copy_request *req;
    copy_result *res;
    sqlite_src src;
    node_query nq;
    map_ctx ctx;
    bool staging;                  /* conflict-safe path in use */
    bool staging_ready;
    pending_reject *pend;
    int npend, cappend;
    pgbuf buf, sched;
    int64_t *rej_nodes;            /* rowids of skipped nodes (this run and earlier ones), sorted */
    size_t nrej_nodes, caprej_nodes;
    int64_t last_rowid[3];         /* checkpoints: knowledge_nodes, memory_connections, knowledge_edges */
} copy_state;

static void fail(copy_state *s, copy_outcome o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(copy_state *s, copy_outcome o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->message, sizeof s->res->message, fmt, ap);
    va_end(ap);
    s->res->outcome = o;
    log_error("%s", s->res->message);
}

static void pg_fail(copy_state *s, const char *what)
{
    fail(s, COPY_FAILED, "%s: %s%s%s%s", what, pg_errmsg(s->c), pg_sqlstate(s->c)[0] ? " (SQLSTATE " : "",
         pg_sqlstate(s->c), pg_sqlstate(s->c)[0] ? ")" : "");
}

/* ---- rejections ----------------------------------------------------------------------------- */

static bool pend_add(copy_state *s, const char *table, int64_t rowid, const char *key, const map_reject *r)
{
    if (s->npend == s->cappend) {
        int nc = s->cappend ? s->cappend * 2 : 64;
        pending_reject *np = realloc(s->pend, (size_t) nc * sizeof *np);
        if (!np)
            return false;
        s->pend = np;
        s->cappend = nc;
    }
    pending_reject *p = &s->pend[s->npend++];
    p->table = table;
    p->rowid = rowid;
    snprintf(p->key, sizeof p->key, "%s", key);
    p->r = *r;
    return true;
}

/* Records pending rejections inside the open transaction (or, dry run, only counts them).
 * Sets p->r.action = NULL for rejections an earlier run had recorded already. */
static bool pend_record(copy_state *s)
{
    for (int i = 0; i < s->npend; i++) {
        pending_reject *p = &s->pend[i];
        if (s->req->dry_run)
            continue;
        char rowid[32];
        snprintf(rowid, sizeof rowid, "%" PRId64, p->rowid);
        pg_result *r = pg_exec(s->c,
                               "INSERT INTO pgmemctl_copy_rejects (source_id, source_table, source_rowid, source_key,"
                               " field, reason, action) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                               7,
                               (const char *[]){s->res->source_id, p->table, rowid, p->key, p->r.field, p->r.reason,
                                                p->r.action});
        if (!r)
            return false;
        if (pg_cmd_tuples(r) == 0)
            p->r.action = NULL; /* known from an earlier run */
        pg_clear(r);
    }
    return true;
}

/* After the batch committed: report, count and list the new rejections. */
static void pend_publish(copy_state *s)
{
    copy_result *res = s->res;
    for (int i = 0; i < s->npend; i++) {
        pending_reject *p = &s->pend[i];
        if (!p->r.action)
            continue;
        res->rejects_total++;
        if (!strcmp(p->r.action, "embedding_nulled"))
            res->emb_rejected++;
        else if (!strcmp(p->r.action, "scheduling_skipped"))
            res->sched_rejected++;
        else if (!strcmp(p->r.action, "orphan_skipped"))
            res->orphans++;
        cJSON *o = cJSON_CreateObject();
        if (!o)
            continue;
        cJSON_AddStringToObject(o, "table", p->table);
        cJSON_AddNumberToObject(o, "rowid", (double) p->rowid);
        cJSON_AddStringToObject(o, "id", p->key);
        cJSON_AddStringToObject(o, "field", p->r.field);
        cJSON_AddStringToObject(o, "reason", p->r.reason);
        cJSON_AddStringToObject(o, "action", p->r.action);
        if (s->req->rejects_file) {
            char *line = cJSON_PrintUnformatted(o);
            if (line) {
                fprintf(s->req->rejects_file, "%s\n", line);
                cJSON_free(line);
            }
        }
        if (res->rejects_total <= s->req->max_listed_rejects) {
            cJSON_AddItemToArray(res->rejects, o);
            if (res->rejects_total <= 20)
                log_warn("%s rowid %" PRId64 " (%s): %s: %s — %s", p->table, p->rowid, p->key, p->r.field,
                         p->r.reason, p->r.action);
        } else {
            cJSON_Delete(o);
        }
    }
    s->npend = 0;
}

/* ---- target helpers ------------------------------------------------------------------------- */

static bool checkpoint(copy_state *s, const char *table, int64_t last_rowid, int64_t copied, int64_t rejected)
{
    char a[32], b[32], c[32];
    snprintf(a, sizeof a, "%" PRId64, last_rowid);
    snprintf(b, sizeof b, "%" PRId64, copied);
    snprintf(c, sizeof c, "%" PRId64, rejected);
    return pg_run(s->c,
                  "INSERT INTO pgmemctl_copy_progress AS p (source_id, source_table, last_rowid, rows_copied,"
                  " rows_rejected) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_id, source_table) DO UPDATE SET"
                  " last_rowid = GREATEST(p.last_rowid, EXCLUDED.last_rowid),"
                  " rows_copied = p.rows_copied + EXCLUDED.rows_copied,"
                  " rows_rejected = p.rows_rejected + EXCLUDED.rows_rejected, updated_at = now()",
                  5, (const char *[]){s->res->source_id, table, a, b, c});
}

static bool ensure_staging(copy_state *s)
{
    if (s->staging_ready)
        return true;
    if (!pg_run(s->c,
                "CREATE TEMP TABLE IF NOT EXISTS pgmemctl_stage_memories (LIKE memories INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS;",
                0, NULL) ||
        !pg_run(s->c,
                "CREATE TEMP TABLE IF NOT EXISTS pgmemctl_stage_scheduling (LIKE scheduling INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS",
                0, NULL) ||
        !pg_run(s->c,
                "CREATE TEMP TABLE IF NOT EXISTS pgmemctl_stage_edges (LIKE edges INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS",
                0, NULL)) {
        pg_fail(s, "could not create the staging tables");
        return false;
    }
    s->staging_ready = true;
    return true;
}

/* Sends the buffer to the open COPY when it is large (or always when force). */
static bool flush(copy_state *s, pgbuf *b, bool force)
{
    if (b->oom)
        return false;
    if (b->len == 0 || (!force && b->len < FLUSH_BYTES))
        return true;
    bool ok = s->req->dry_run || pg_copy_put(s->c, b->data, b->len);
    pgbuf_reset(b);
    return ok;
}

/* Runs COPY table FROM STDIN with the bytes already in b (header, tuples, trailer). */
static bool copy_buffer(copy_state *s, const char *copy_sql, pgbuf *b, int64_t *rows)
{
    if (!pg_copy_begin(s->c, copy_sql))
        return false;
    if (!pg_copy_put(s->c, b->data, b->len))
        return false;
    return pg_copy_end(s->c, rows);
}

/* Moving staged rows into the target. [0]: keys the target already has are left alone (rows
 * from elsewhere); [1] (--verify-existing): rows that differ from the source are updated.
 * DISTINCT ON: one row per key even if the source holds a key twice (an id in two cases).
 * Each returns (inserted, updated). */
#define MERGE_RESULT ") SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up"
static const char *MERGE_MEMORIES[2] = {
    "WITH up AS (INSERT INTO memories " COPY_MEMORIES_COLUMNS " SELECT DISTINCT ON (id) id, content, node_type,"
    " tags, embedding, metadata, created_at, updated_at FROM pgmemctl_stage_memories ORDER BY id"
    " ON CONFLICT (id) DO NOTHING RETURNING true AS ins" MERGE_RESULT,
    "WITH up AS (INSERT INTO memories AS t " COPY_MEMORIES_COLUMNS " SELECT DISTINCT ON (id) id, content,"
    " node_type, tags, embedding, metadata, created_at, updated_at FROM pgmemctl_stage_memories ORDER BY id"
    " ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, node_type = EXCLUDED.node_type,"
    " tags = EXCLUDED.tags, embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata,"
    " created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at"
    " WHERE (t.content, t.node_type, t.tags, t.embedding, t.metadata, t.created_at, t.updated_at)"
    " IS DISTINCT FROM (EXCLUDED.content, EXCLUDED.node_type, EXCLUDED.tags, EXCLUDED.embedding,"
    " EXCLUDED.metadata, EXCLUDED.created_at, EXCLUDED.updated_at)"
    " RETURNING (t.xmax = 0) AS ins" MERGE_RESULT};
static const char *MERGE_SCHEDULING[2] = {
    "WITH up AS (INSERT INTO scheduling " COPY_SCHEDULING_COLUMNS " SELECT DISTINCT ON (memory_id) memory_id,"
    " stability, difficulty, retrievability, state, last_review, next_review, reps, lapses, scheduled_days,"
    " elapsed_days FROM pgmemctl_stage_scheduling s WHERE EXISTS (SELECT 1 FROM memories m WHERE m.id = s.memory_id)"
    " ORDER BY memory_id ON CONFLICT (memory_id) DO NOTHING RETURNING true AS ins" MERGE_RESULT,
    "WITH up AS (INSERT INTO scheduling AS t " COPY_SCHEDULING_COLUMNS " SELECT DISTINCT ON (memory_id) memory_id,"
    " stability, difficulty, retrievability, state, last_review, next_review, reps, lapses, scheduled_days,"
    " elapsed_days FROM pgmemctl_stage_scheduling s WHERE EXISTS (SELECT 1 FROM memories m WHERE m.id = s.memory_id)"
    " ORDER BY memory_id ON CONFLICT (memory_id) DO UPDATE SET stability = EXCLUDED.stability,"
    " difficulty = EXCLUDED.difficulty, retrievability = EXCLUDED.retrievability, state = EXCLUDED.state,"
    " last_review = EXCLUDED.last_review, next_review = EXCLUDED.next_review, reps = EXCLUDED.reps,"
    " lapses = EXCLUDED.lapses, scheduled_days = EXCLUDED.scheduled_days, elapsed_days = EXCLUDED.elapsed_days"
    " WHERE (t.stability, t.difficulty, t.retrievability, t.state, t.last_review, t.next_review, t.reps,"
    " t.lapses, t.scheduled_days, t.elapsed_days) IS DISTINCT FROM (EXCLUDED.stability, EXCLUDED.difficulty,"
    " EXCLUDED.retrievability, EXCLUDED.state, EXCLUDED.last_review, EXCLUDED.next_review, EXCLUDED.reps,"
    " EXCLUDED.lapses, EXCLUDED.scheduled_days, EXCLUDED.elapsed_days)"
    " RETURNING (t.xmax = 0) AS ins" MERGE_RESULT};
static const char *MERGE_EDGES[2] = {
    "WITH up AS (INSERT INTO edges " COPY_EDGES_COLUMNS " SELECT DISTINCT ON (source_id, target_id, edge_type)"
    " source_id, target_id, edge_type, weight, created_at, metadata FROM pgmemctl_stage_edges"
    " ORDER BY source_id, target_id, edge_type ON CONFLICT DO NOTHING RETURNING true AS ins" MERGE_RESULT,
    "WITH up AS (INSERT INTO edges AS t " COPY_EDGES_COLUMNS " SELECT DISTINCT ON (source_id, target_id, edge_type)"
    " source_id, target_id, edge_type, weight, created_at, metadata FROM pgmemctl_stage_edges"
    " ORDER BY source_id, target_id, edge_type ON CONFLICT (source_id, target_id, edge_type) DO UPDATE"
    " SET weight = EXCLUDED.weight, created_at = EXCLUDED.created_at, metadata = EXCLUDED.metadata"
    " WHERE (t.weight, t.created_at, t.metadata) IS DISTINCT FROM"
    " (EXCLUDED.weight, EXCLUDED.created_at, EXCLUDED.metadata)"
    " RETURNING (t.xmax = 0) AS ins" MERGE_RESULT};

/* Moves staged rows into the target with one of the MERGE_* statements. */
static bool stage_merge(copy_state *s, const char *const sql[2], int64_t *inserted, int64_t *updated)
{
    pg_result *r = pg_exec(s->c, sql[s->req->verify_existing ? 1 : 0], 0, NULL);
    if (!r)
        return false;
    *inserted = strtoll(pg_value(r, 0, 0), NULL, 10);
    *updated = strtoll(pg_value(r, 0, 1), NULL, 10);
    pg_clear(r);
    return true;
}

/* --verify-existing: the batch's source rows are re-validated, so their earlier rejection
 * records are replaced by whatever this run finds. */
static bool forget_rejects(copy_state *s, const char *table, int64_t after, int64_t upto)
{
    if (!s->req->verify_existing)
        return true;
    char a[32], b[32];
    snprintf(a, sizeof a, "%" PRId64, after);
    snprintf(b, sizeof b, "%" PRId64, upto);
    return pg_run(s->c,
                  "DELETE FROM pgmemctl_copy_rejects WHERE source_id = $1 AND source_table = $2"
                  " AND source_rowid > $3 AND source_rowid <= $4",
                  4, (const char *[]){s->res->source_id, table, a, b});
}

/* ---- nodes ---------------------------------------------------------------------------------- */

static int cmp_id(const void *a, const void *b) { return memcmp(a, b, 16); }

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static bool rej_node_add(copy_state *s, int64_t rowid)
{
    if (s->nrej_nodes == s->caprej_nodes) {
        size_t nc = s->caprej_nodes ? s->caprej_nodes * 2 : 64;
        int64_t *n = realloc(s->rej_nodes, nc * sizeof *n);
        if (!n)
            return false;
        s->rej_nodes = n;
        s->caprej_nodes = nc;
    }
    s->rej_nodes[s->nrej_nodes++] = rowid;
    return true;
}

/* Adds the nodes earlier runs of this store skipped, then sorts the set. */
static bool load_rejected_nodes(copy_state *s)
{
    if (!s->req->dry_run || s->res->rejects_previous > 0) {
        pg_result *r = pg_exec(s->c,
                               "SELECT source_rowid FROM pgmemctl_copy_rejects WHERE source_id = $1"
                               " AND source_table = 'knowledge_nodes' AND action = 'row_skipped'",
                               1, (const char *[]){s->res->source_id});
        if (!r) {
            pg_fail(s, "reading pgmemctl_copy_rejects");
            return false;
        }
        for (int i = 0; i < pg_ntuples(r); i++)
            if (!rej_node_add(s, strtoll(pg_value(r, i, 0), NULL, 10))) {
                pg_clear(r);
                fail(s, COPY_FAILED, "out of memory");
                return false;
            }
        pg_clear(r);
    }
    if (s->nrej_nodes > 1)
        qsort(s->rej_nodes, s->nrej_nodes, sizeof *s->rej_nodes, cmp_i64);
    return true;
}

typedef enum { BATCH_OK, BATCH_DONE, BATCH_RETRY_STAGING, BATCH_FAILED } batch_status;

/* What a batch's outcome means for the loop over a table: 1 go on, 0 the table is done, -1 the
 * run failed. A direct batch that met a key the target already had was rolled back: the rest
 * of the run takes the staging path, starting with that batch again. */
static int batch_next(copy_state *s, batch_status b, const char *table, int64_t last)
{
    if (b == BATCH_RETRY_STAGING) {
        s->staging = true;
        s->res->write_path = "staging";
        snprintf(s->res->write_path_reason, sizeof s->res->write_path_reason,
                 "switched after %s rowid %" PRId64 ": a key already existed in the target", table, last);
        return 1;
    }
    return b == BATCH_OK ? 1 : b == BATCH_DONE ? 0 : -1;
}

/* One batch of knowledge_nodes rows after *last: memories + scheduling, rejects, checkpoint,
 * all in one transaction. */
static batch_status node_batch(copy_state *s, sqlite3_stmt *st, int64_t *last, progress *pr)
{
    copy_result *res = s->res;
    const copy_request *req = s->req;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, *last);
    sqlite3_bind_int(st, 2, req->batch_size);
    bool dry = req->dry_run;
    node_values v = {0}; /* before the first goto: the error paths clear it */
    if (!dry) {
        if (!pg_begin(s->c)) {
            pg_fail(s, "BEGIN");
            return BATCH_FAILED;
        }
        if (s->staging && !ensure_staging(s))
            goto fail_tx;
        const char *sql = s->staging ? "COPY pgmemctl_stage_memories " COPY_MEMORIES_COLUMNS " FROM STDIN (FORMAT binary)"
                                     : "COPY memories " COPY_MEMORIES_COLUMNS " FROM STDIN (FORMAT binary)";
        if (!pg_copy_begin(s->c, sql))
            goto pgerr;
    }
    pgbuf_reset(&s->buf);
    pgbuf_reset(&s->sched);
    pgcopy_header(&s->buf);
    pgcopy_header(&s->sched);
    int64_t nread = 0, nmem = 0, nsched = 0, nrej = 0, emb = 0, embmiss = 0, fromcard = 0, batch_last = *last;
    s->npend = 0;
    map_outcome o;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t rowid = sqlite3_column_int64(st, 0);
        if (rowid == batch_last && nread > 0) { /* a node joined to two embeddings or cards */
            map_reject r = {.action = "extra_row_ignored"};
            snprintf(r.field, sizeof r.field, "id");
            snprintf(r.reason, sizeof r.reason,
                     "node has more than one node_embeddings or fsrs_cards row: the first was used");
            pend_add(s, "knowledge_nodes", rowid, v.key, &r);
            continue;
        }
        nread++;
        batch_last = rowid;
        node_values_clear(&v);
        if (!copy_map_node(&s->nq, st, &s->ctx, &v, &o)) {
            fail(s, COPY_FAILED, "out of memory at knowledge_nodes rowid %" PRId64, rowid);
            goto fail_tx;
        }
        for (int k = 0; k < o.nrej; k++)
            pend_add(s, "knowledge_nodes", rowid, v.key, &o.rej[k]);
        if (!o.row_ok) {
            nrej++;
            if (dry && !rej_node_add(s, rowid)) { /* real runs read them back from the target */
                fail(s, COPY_FAILED, "out of memory");
                goto fail_tx;
            }
            continue;
        }
        copy_encode_memory(&s->buf, &v);
        nmem++;
        emb += v.emb != NULL;
        embmiss += !v.emb_present;
        if (v.sched_ok) {
            copy_encode_schedule(&s->sched, &v);
            nsched++;
            fromcard += v.sched.from_card;
        }
        if (!flush(s, &s->buf, false))
            goto pgerr;
        progress_update(pr, res->nodes.read + nread);
    }
    node_values_clear(&v);
    if (rc != SQLITE_DONE) {
        fail(s, COPY_FAILED, "%s: reading knowledge_nodes after rowid %" PRId64 ": %s", s->src.path, batch_last,
             sqlite3_errmsg(s->src.db));
        goto fail_tx;
    }
    pgcopy_trailer(&s->buf);
    pgcopy_trailer(&s->sched);
    if (s->buf.oom || s->sched.oom) {
        fail(s, COPY_FAILED, "out of memory building a batch");
        goto fail_tx;
    }
    int64_t ins_mem = nmem, ins_sched = nsched, upd_mem = 0, upd_sched = 0;
    if (!dry) {
        if (!flush(s, &s->buf, true) || !pg_copy_end(s->c, NULL))
            goto pgerr;
        if (!copy_buffer(s, s->staging ? "COPY pgmemctl_stage_scheduling " COPY_SCHEDULING_COLUMNS " FROM STDIN (FORMAT binary)"
                                       : "COPY scheduling " COPY_SCHEDULING_COLUMNS " FROM STDIN (FORMAT binary)",
                         &s->sched, NULL))
            goto pgerr;
        if (s->staging && (!stage_merge(s, MERGE_MEMORIES, &ins_mem, &upd_mem) ||
                           !stage_merge(s, MERGE_SCHEDULING, &ins_sched, &upd_sched)))
            goto pgerr;
        if (!forget_rejects(s, "knowledge_nodes", *last, batch_last))
            goto pgerr;
        if (!pend_record(s) || (nread > 0 && (!checkpoint(s, "knowledge_nodes", batch_last, ins_mem, nrej) ||
                                              !checkpoint(s, "scheduling", batch_last, ins_sched, 0))))
            goto pgerr;
        if (!pg_commit(s->c))
            goto pgerr;
    }
    res->nodes.read += nread;
    res->nodes.copied += ins_mem;
    res->nodes.updated += upd_mem;
    res->sched_updated += upd_sched;
    res->nodes.already_present += nmem - ins_mem - upd_mem;
    res->nodes.rejected += nrej;
    res->sched_copied += ins_sched;
    res->sched_from_cards += fromcard;
    res->sched_from_nodes += nsched - fromcard;
    res->emb_copied += emb;
    res->emb_missing += embmiss;
    pend_publish(s);
    *last = batch_last;
    return nread < req->batch_size ? BATCH_DONE : BATCH_OK;
pgerr:
    if (!s->staging && !strcmp(pg_sqlstate(s->c), "23505")) {
        log_info("a key in the batch after rowid %" PRId64 " already exists in the target (%s): switching to the "
                 "conflict-safe staging path",
                 *last, pg_errmsg(s->c));
        pg_rollback(s->c);
        s->npend = 0;
        return BATCH_RETRY_STAGING;
    }
    pg_fail(s, "copying knowledge_nodes");
fail_tx:
    node_values_clear(&v);
    pg_rollback(s->c);
    return BATCH_FAILED;
}

static bool copy_nodes(copy_state *s)
{
    copy_result *res = s->res;
    int64_t last = s->last_rowid[0];
    res->nodes.resumed_after = last;
    sqlite3_stmt *st = sqlite_src_prepare(&s->src, s->nq.sql);
    if (!st) {
        fail(s, COPY_FAILED, "%s: could not read knowledge_nodes", s->src.path);
        return false;
    }
    int64_t total = 0;
    sqlite3_stmt *cnt = sqlite_src_prepare(&s->src, "SELECT count(*) FROM knowledge_nodes WHERE rowid > ?1");
    if (cnt) {
        sqlite3_bind_int64(cnt, 1, last);
        if (sqlite3_step(cnt) == SQLITE_ROW)
            total = sqlite3_column_int64(cnt, 0);
        sqlite3_finalize(cnt);
    }
    if (last > 0)
        log_info("memories: %" PRId64 " copied by earlier runs; resuming after source rowid %" PRId64 " (%" PRId64
                 " rows to read)",
                 res->nodes.copied_before, last, total);
    progress *pr = progress_start("memories", total, "rows");
    int step;
    do
        step = batch_next(s, node_batch(s, st, &last, pr), "knowledge_nodes", last);
    while (step > 0);
    bool ok = step == 0;
    progress_finish(pr);
    sqlite3_finalize(st);
    s->last_rowid[0] = last;
    return ok && load_rejected_nodes(s);
}

/* ---- edges ---------------------------------------------------------------------------------- */

/* Fills found[i] for each endpoint: present in the target's memories. ids: n × 16 bytes. */
static bool endpoints_exist(copy_state *s, const unsigned char *ids, int n, bool *found)
{
    char *arr = malloc((size_t) n * 38 + 3);
    if (!arr)
        return false;
    char *o = arr;
    *o++ = '{';
    for (int i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        uuid_format(ids + 16 * i, o);
        o += 36;
    }
    *o++ = '}';
    *o = '\0';
    pg_result *r = pg_exec(s->c, "SELECT id::text FROM memories WHERE id = ANY($1::uuid[])", 1, (const char *[]){arr});
    free(arr);
    if (!r)
        return false;
    int nt = pg_ntuples(r);
    unsigned char *have = malloc((size_t) (nt ? nt : 1) * 16);
    if (!have) {
        pg_clear(r);
        return false;
    }
    for (int i = 0; i < nt; i++)
        parse_uuid(pg_value(r, i, 0), 36, have + 16 * i);
    pg_clear(r);
    qsort(have, (size_t) nt, 16, cmp_id);
    for (int i = 0; i < n; i++) {
        found[i] = bsearch(ids + 16 * i, have, (size_t) nt, 16, cmp_id) != NULL;
    }
    free(have);
    return true;
}

/* An edge endpoint is known good without asking the target when it is a source node at or
 * before the node checkpoint that was not rejected. */
static bool endpoint_local(const copy_state *s, int64_t node_rowid)
{
    return node_rowid > 0 && node_rowid <= s->last_rowid[0] &&
           !(s->nrej_nodes && bsearch(&node_rowid, s->rej_nodes, s->nrej_nodes, sizeof node_rowid, cmp_i64));
}

static void reject_dangling(copy_state *s, const edge_query *q, const edge_values *v, bool src_ok)
{
    map_reject r = {.action = "edge_skipped"};
    snprintf(r.field, sizeof r.field, "%s", src_ok ? "target_id" : "source_id");
    char u[37];
    uuid_format(src_ok ? v->tgt : v->src, u);
    snprintf(r.reason, sizeof r.reason, "dangling: memory %s was not copied", u);
    pend_add(s, q->table, v->rowid, v->key, &r);
}

/* One batch of edges after *last. Rows whose endpoints are known copied stream straight into
 * the COPY; the rest (an endpoint outside this store's copied nodes) are checked against the
 * target afterwards and sent in a second COPY, or rejected as dangling. */
static batch_status edge_batch(copy_state *s, const edge_query *q, sqlite3_stmt *st, int64_t *last, copy_table_stats *ts,
                               progress *pr)
{
    const copy_request *req = s->req;
    bool dry = req->dry_run;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, *last);
    sqlite3_bind_int(st, 2, req->batch_size);
    s->npend = 0;
    const char *copy_sql = s->staging ? "COPY pgmemctl_stage_edges " COPY_EDGES_COLUMNS " FROM STDIN (FORMAT binary)"
                                      : "COPY edges " COPY_EDGES_COLUMNS " FROM STDIN (FORMAT binary)";
    edge_values *unk = NULL; /* edges with an endpoint to look up in the target (owned copies) */
    int nunk = 0, capunk = 0;
    int64_t nread = 0, nrej = 0, nsent = 0, dangling = 0, batch_last = *last;
    batch_status ret = BATCH_FAILED;
    edge_values v = {0};
    map_outcome o;
    int rc;
    if (!dry && (!pg_begin(s->c) || (s->staging && !ensure_staging(s)) || !pg_copy_begin(s->c, copy_sql)))
        goto pgerr;
    pgbuf_reset(&s->buf);
    pgcopy_header(&s->buf);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        nread++;
        edge_values_clear(&v);
        if (!copy_map_edge(q, st, &s->ctx, &v, &o)) {
            fail(s, COPY_FAILED, "out of memory");
            goto abort;
        }
        batch_last = v.rowid;
        for (int k = 0; k < o.nrej; k++)
            pend_add(s, q->table, v.rowid, v.key, &o.rej[k]);
        if (!o.row_ok) {
            nrej++;
            continue;
        }
        if (endpoint_local(s, v.src_node) && endpoint_local(s, v.tgt_node)) {
            copy_encode_edge(&s->buf, &v);
            nsent++;
            if (!flush(s, &s->buf, false))
                goto pgerr;
        } else { /* keep a copy: the type text lives in SQLite's row memory */
            if (nunk == capunk) {
                capunk = capunk ? capunk * 2 : 16;
                edge_values *nu = realloc(unk, (size_t) capunk * sizeof *nu);
                if (!nu) {
                    fail(s, COPY_FAILED, "out of memory");
                    goto abort;
                }
                unk = nu;
            }
            char *type = strndup(v.type, v.type_len);
            if (!type) {
                fail(s, COPY_FAILED, "out of memory");
                goto abort;
            }
            unk[nunk] = v;
            unk[nunk++].type = type;
            v.metadata = NULL; /* moved */
        }
        progress_update(pr, ts->read + nread);
    }
    edge_values_clear(&v);
    if (rc != SQLITE_DONE) {
        fail(s, COPY_FAILED, "%s: reading %s after rowid %" PRId64 ": %s", s->src.path, q->table, batch_last,
             sqlite3_errmsg(s->src.db));
        goto abort;
    }
    pgcopy_trailer(&s->buf);
    if (s->buf.oom) {
        fail(s, COPY_FAILED, "out of memory");
        goto abort;
    }
    if (!dry && (!flush(s, &s->buf, true) || !pg_copy_end(s->c, NULL)))
        goto pgerr;
    if (nunk > 0) {
        unsigned char *ids = malloc((size_t) nunk * 32);
        bool *found = malloc((size_t) nunk * 2 * sizeof *found);
        bool ok = ids && found;
        for (int i = 0; ok && i < nunk; i++) {
            memcpy(ids + 32 * i, unk[i].src, 16);
            memcpy(ids + 32 * i + 16, unk[i].tgt, 16);
        }
        ok = ok && endpoints_exist(s, ids, 2 * nunk, found);
        pgbuf_reset(&s->buf);
        pgcopy_header(&s->buf);
        int nsecond = 0;
        for (int i = 0; ok && i < nunk; i++) {
            bool src_ok = found[2 * i] || endpoint_local(s, unk[i].src_node);
            bool tgt_ok = found[2 * i + 1] || endpoint_local(s, unk[i].tgt_node);
            if (src_ok && tgt_ok) {
                copy_encode_edge(&s->buf, &unk[i]);
                nsecond++;
            } else {
                reject_dangling(s, q, &unk[i], src_ok);
                dangling++;
                nrej++;
            }
        }
        pgcopy_trailer(&s->buf);
        free(ids);
        free(found);
        if (!ok) {
            pg_fail(s, "checking edge endpoints in the target");
            goto abort;
        }
        if (!dry && nsecond > 0 && !copy_buffer(s, copy_sql, &s->buf, NULL))
            goto pgerr;
        nsent += nsecond;
    }
    int64_t inserted = nsent, updated = 0;
    if (!dry) {
        if ((s->staging && !stage_merge(s, MERGE_EDGES, &inserted, &updated)) ||
            !forget_rejects(s, q->table, *last, batch_last))
            goto pgerr;
        if (!pend_record(s) || (nread > 0 && !checkpoint(s, q->table, batch_last, inserted, nrej)) ||
            !pg_commit(s->c))
            goto pgerr;
    }
    ts->read += nread;
    ts->copied += inserted;
    ts->updated += updated;
    ts->already_present += nsent - inserted - updated;
    ts->rejected += nrej;
    s->res->edges_dangling += dangling;
    pend_publish(s);
    *last = batch_last;
    ret = nread < req->batch_size ? BATCH_DONE : BATCH_OK;
    goto out;
pgerr:
    if (!s->staging && !strcmp(pg_sqlstate(s->c), "23505")) {
        log_info("an edge in the batch after %s rowid %" PRId64 " already exists in the target (%s): switching to "
                 "the conflict-safe staging path",
                 q->table, *last, pg_errmsg(s->c));
        ret = BATCH_RETRY_STAGING;
    } else {
        char what[96];
        snprintf(what, sizeof what, "copying %s", q->table);
        pg_fail(s, what);
    }
abort:
    pg_rollback(s->c);
    s->npend = 0;
out:
    edge_values_clear(&v);
    for (int i = 0; i < nunk; i++) {
        free((char *) unk[i].type);
        edge_values_clear(&unk[i]);
    }
    free(unk);
    return ret;
}

static bool copy_edges(copy_state *s, const char *table, int slot, copy_table_stats *ts)
{
    int64_t last = s->last_rowid[slot];
    ts->resumed_after = last;
    edge_query q;
    if (!edge_query_build(&s->src, table, &q)) {
        edge_query_free(&q);
        fail(s, COPY_FAILED, "%s: cannot read %s", s->src.path, table);
        return false;
    }
    sqlite3_stmt *st = sqlite_src_prepare(&s->src, q.sql);
    if (!st) {
        edge_query_free(&q);
        fail(s, COPY_FAILED, "%s: cannot read %s", s->src.path, table);
        return false;
    }
    progress *pr = progress_start(table, -1, "rows");
    int step;
    do
        step = batch_next(s, edge_batch(s, &q, st, &last, ts, pr), table, last);
    while (step > 0);
    bool ok = step == 0;
    progress_finish(pr);
    sqlite3_finalize(st);
    edge_query_free(&q);
    s->last_rowid[slot] = last;
    return ok;
}

/* fsrs_cards / node_embeddings rows whose node does not exist. */
static bool copy_orphans(copy_state *s)
{
    static const struct { const char *table, *col; } T[] = {{"fsrs_cards", "memory_id"}, {"node_embeddings", "node_id"}};
    for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
        if (!sqlite_src_has_table(&s->src, T[t].table))
            continue;
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT x.rowid, x.%s FROM %s x WHERE NOT EXISTS (SELECT 1 FROM knowledge_nodes n WHERE n.id = x.%s)",
                 T[t].col, T[t].table, T[t].col);
        sqlite3_stmt *st = sqlite_src_prepare(&s->src, sql);
        if (!st)
            return false;
        s->npend = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            map_reject r = {.action = "orphan_skipped"};
            snprintf(r.field, sizeof r.field, "%s", T[t].col);
            snprintf(r.reason, sizeof r.reason, "no knowledge_nodes row has this id");
            const unsigned char *k = sqlite3_column_text(st, 1);
            pend_add(s, T[t].table, sqlite3_column_int64(st, 0), k ? (const char *) k : "(null)", &r);
        }
        sqlite3_finalize(st);
        if (s->npend == 0)
            continue;
        if (!s->req->dry_run && (!pg_begin(s->c) || !pend_record(s) || !pg_commit(s->c))) {
            pg_fail(s, "recording orphan rows");
            pg_rollback(s->c);
            return false;
        }
        pend_publish(s);
    }
    return true;
}

/* ---- setup ---------------------------------------------------------------------------------- */

static bool inspect_source(copy_state *s)
{
    copy_result *res = s->res;
    char **tables = NULL;
    int nt = sqlite_src_tables(&s->src, &tables);
    if (nt < 0) {
        fail(s, COPY_REFUSED, "%s: cannot list tables", s->src.path);
        return false;
    }
    for (int i = 0; i < nt; i++) {
        bool known = false;
        for (size_t k = 0; k < sizeof VESTIGE_TABLES / sizeof *VESTIGE_TABLES; k++)
            known = known || !strcmp(tables[i], VESTIGE_TABLES[k]);
        if (!known)
            cJSON_AddItemToArray(res->tables_ignored, cJSON_CreateString(tables[i]));
    }
    sqlite_src_free_names(tables, nt);
    for (size_t k = 0; k < sizeof VESTIGE_TABLES / sizeof *VESTIGE_TABLES; k++) {
        if (sqlite_src_has_table(&s->src, VESTIGE_TABLES[k]))
            continue;
        if (k == 0) {
            fail(s, COPY_REFUSED, "%s: no knowledge_nodes table: not a vestige memory store", s->src.path);
            return false;
        }
        cJSON_AddItemToArray(res->tables_missing, cJSON_CreateString(VESTIGE_TABLES[k]));
        log_info("note: %s has no %s table (an older vestige version): skipped", s->src.path, VESTIGE_TABLES[k]);
    }
    if (!node_query_build(&s->src, &s->nq)) {
        fail(s, COPY_REFUSED, "%s: knowledge_nodes does not have vestige's columns", s->src.path);
        return false;
    }
    if (!sqlite_src_identity(&s->src, res->source_id)) {
        fail(s, COPY_FAILED, "%s: could not compute the store's identity", s->src.path);
        return false;
    }
    if (s->nq.has_embeddings) { /* the store's model: the most common well-formed (model, dimension) */
        sqlite3_stmt *st = sqlite_src_prepare(
            &s->src, "SELECT model, dimensions FROM node_embeddings WHERE typeof(embedding) = 'blob'"
                     " AND length(embedding) = 4 * dimensions AND dimensions BETWEEN 1 AND 16000"
                     " GROUP BY model, dimensions ORDER BY count(*) DESC, model LIMIT 1");
        if (!st) {
            fail(s, COPY_REFUSED, "%s: node_embeddings does not have vestige's columns", s->src.path);
            return false;
        }
        if (sqlite3_step(st) == SQLITE_ROW) {
            const unsigned char *m = sqlite3_column_text(st, 0);
            snprintf(res->model, sizeof res->model, "%s", m ? (const char *) m : "unknown");
            res->dimension = sqlite3_column_int(st, 1);
        }
        sqlite3_finalize(st);
    }
    return true;
}

/* Registry and typmod: refuse a mismatch before writing; stamp the first model. */
static bool check_registry(copy_state *s)
{
    copy_result *res = s->res;
    bool found;
    char *ok = pg_query_text(s->c,
                             "SELECT (to_regclass('memories') IS NOT NULL AND to_regclass('embedding_model') IS NOT NULL"
                             " AND to_regclass('pgmemctl_copy_progress') IS NOT NULL"
                             " AND to_regclass('pgmemctl_copy_rejects') IS NOT NULL)::text",
                             0, NULL, &found);
    bool schema = found && !strcmp(ok, "true");
    free(ok);
    if (!schema) {
        fail(s, COPY_REFUSED, "the target %s does not hold the memory-store schema: run `pgmemctl migrate up` first",
             pg_display(s->c));
        return false;
    }
    pg_result *r = pg_exec(s->c,
                           "SELECT (SELECT name FROM embedding_model WHERE active),"
                           " (SELECT dimension FROM embedding_model WHERE active),"
                           " (SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memories'::regclass"
                           "  AND attname = 'embedding')",
                           0, NULL);
    if (!r) {
        pg_fail(s, "reading the embedding_model registry");
        return false;
    }
    bool has_reg = !pg_isnull(r, 0, 0);
    char reg_name[256] = "";
    int reg_dim = has_reg ? atoi(pg_value(r, 0, 1)) : 0;
    int typmod = pg_isnull(r, 0, 2) ? -1 : atoi(pg_value(r, 0, 2));
    if (has_reg)
        snprintf(reg_name, sizeof reg_name, "%s", pg_value(r, 0, 0));
    pg_clear(r);
    if (res->dimension == 0) { /* no vectors in the source: nothing to check */
        if (has_reg) {
            snprintf(res->model, sizeof res->model, "%s", reg_name);
            res->dimension = reg_dim;
        }
    } else if (has_reg && (strcmp(reg_name, res->model) != 0 || reg_dim != res->dimension)) {
        fail(s, COPY_REFUSED,
             "the target's vectors come from model \"%s\" (%d dimensions) but this store's come from \"%s\" "
             "(%d dimensions): mixing them would make search meaningless. Copy into an empty store, or re-embed "
             "(pgmemctl reembed) one side so both use the same model",
             reg_name, reg_dim, res->model, res->dimension);
        return false;
    } else if (!has_reg && typmod > 0 && typmod != res->dimension) {
        fail(s, COPY_REFUSED, "memories.embedding is vector(%d) but this store's vectors have %d dimensions", typmod,
             res->dimension);
        return false;
    } else if (!has_reg && !s->req->dry_run) {
        char dim[16];
        snprintf(dim, sizeof dim, "%d", res->dimension);
        char alter[96];
        snprintf(alter, sizeof alter, "ALTER TABLE memories ALTER COLUMN embedding TYPE vector(%d)", res->dimension);
        if (!pg_begin(s->c) ||
            !pg_run(s->c, "INSERT INTO embedding_model (name, dimension, hash, active) VALUES ($1, $2, NULL, true)", 2,
                    (const char *[]){res->model, dim}) ||
            (typmod <= 0 && !pg_run(s->c, alter, 0, NULL)) || !pg_commit(s->c)) {
            pg_fail(s, "registering the embedding model");
            pg_rollback(s->c);
            return false;
        }
        res->registry_stamped = true;
        log_info("registered embedding model \"%s\" (%d dimensions)%s", res->model, res->dimension,
                 typmod <= 0 ? " and stamped memories.embedding" : "");
    }
    s->ctx.model = res->model[0] ? res->model : NULL;
    s->ctx.dim = res->dimension;
    return true;
}

/* Checkpoints of this source and the write path. */
static bool plan_writes(copy_state *s, int64_t *target_memories)
{
    copy_result *res = s->res;
    pg_result *r = pg_exec(s->c,
                           "SELECT coalesce(max(last_rowid) FILTER (WHERE source_table = 'knowledge_nodes'), 0),"
                           " coalesce(max(last_rowid) FILTER (WHERE source_table = 'memory_connections'), 0),"
                           " coalesce(max(last_rowid) FILTER (WHERE source_table = 'knowledge_edges'), 0),"
                           " coalesce(sum(rows_copied) FILTER (WHERE source_table = 'knowledge_nodes'), 0),"
                           " coalesce(sum(rows_copied) FILTER (WHERE source_table = 'scheduling'), 0),"
                           " coalesce(sum(rows_copied) FILTER (WHERE source_table IN"
                           "  ('memory_connections', 'knowledge_edges')), 0),"
                           " (SELECT count(*) FROM memories), (SELECT count(*) FROM scheduling),"
                           " (SELECT count(*) FROM edges),"
                           " (SELECT count(*) FROM pgmemctl_copy_rejects WHERE source_id = $1),"
                           " coalesce(sum(rows_copied) FILTER (WHERE source_table = 'memory_connections'), 0),"
                           " coalesce(sum(rows_copied) FILTER (WHERE source_table = 'knowledge_edges'), 0)"
                           " FROM pgmemctl_copy_progress WHERE source_id = $1",
                           1, (const char *[]){res->source_id});
    if (!r) {
        pg_fail(s, "reading pgmemctl_copy_progress");
        return false;
    }
    int64_t v[12];
    for (int i = 0; i < 12; i++)
        v[i] = strtoll(pg_value(r, 0, i), NULL, 10);
    pg_clear(r);
    res->rejects_previous = v[9];
    *target_memories = v[6];
    if (!s->req->verify_existing) {
        res->nodes.copied_before = v[3];
        res->mc.copied_before = v[10];
        res->ke.copied_before = v[11];
    }
    if (s->req->verify_existing) {
        s->staging = true;
        res->write_path = "staging";
        snprintf(res->write_path_reason, sizeof res->write_path_reason,
                 "--verify-existing: the whole source is re-read and every key checked against the target");
        return true; /* and from rowid 0 */
    }
    s->last_rowid[0] = v[0];
    s->last_rowid[1] = v[1];
    s->last_rowid[2] = v[2];
    if (v[6] == v[3] && v[7] == v[4] && v[8] == v[5]) {
        res->write_path = "direct";
        snprintf(res->write_path_reason, sizeof res->write_path_reason,
                 v[6] == 0 ? "the target is empty" : "the target holds only rows earlier runs of this store copied");
    } else {
        s->staging = true;
        res->write_path = "staging";
        snprintf(res->write_path_reason, sizeof res->write_path_reason,
                 "the target holds rows from elsewhere (memories %" PRId64 ", scheduling %" PRId64 ", edges %" PRId64
                 " vs %" PRId64 "/%" PRId64 "/%" PRId64 " checkpointed for this store)",
                 v[6], v[7], v[8], v[3], v[4], v[5]);
    }
    return true;
}

/* With an empty memories table, drop its HNSW indexes for the load (recorded first, so a
 * crash cannot lose them: the next run rebuilds from the record). */
static bool drop_hnsw(copy_state *s)
{
    pg_result *r = pg_exec(s->c,
                           "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
                           " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
                           " WHERE i.indrelid = 'memories'::regclass AND a.amname = 'hnsw'",
                           0, NULL);
    if (!r) {
        pg_fail(s, "listing HNSW indexes");
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < pg_ntuples(r); i++) {
        const char *name = pg_value(r, i, 0), *def = pg_value(r, i, 1);
        char *drop = malloc(strlen(name) + 16);
        ok = drop != NULL;
        if (ok)
            sprintf(drop, "DROP INDEX %s", name); /* regclass text is already quoted */
        ok = ok && pg_begin(s->c) &&
             pg_run(s->c,
                    "INSERT INTO pgmemctl_copy_index_rebuilds (index_name, definition) VALUES ($1, $2)"
                    " ON CONFLICT (index_name) DO UPDATE SET definition = EXCLUDED.definition",
                    2, (const char *[]){name, def}) &&
             pg_run(s->c, drop, 0, NULL) && pg_commit(s->c);
        free(drop);
        if (!ok) {
            pg_fail(s, "dropping the HNSW index for the load");
            pg_rollback(s->c);
        } else {
            log_info("dropped %s for the load (rebuilt afterwards)", name);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "index", name);
            cJSON_AddStringToObject(o, "action", "dropped_for_load");
            cJSON_AddItemToArray(s->res->indexes, o);
        }
    }
    pg_clear(r);
    return ok;
}

static bool rebuild_indexes(copy_state *s)
{
    double t0 = progress_now();
    char workers[96];
    snprintf(workers, sizeof workers, "SET max_parallel_maintenance_workers = %d", s->req->parallel_workers);
    if (!pg_run(s->c, "SELECT set_config('maintenance_work_mem', $1, false)", 1,
                (const char *[]){s->req->maintenance_work_mem}) ||
        !pg_run(s->c, workers, 0, NULL)) {
        pg_fail(s, "setting maintenance_work_mem / max_parallel_maintenance_workers for the index build");
        return false;
    }
    pg_result *r = pg_exec(s->c, "SELECT index_name, definition FROM pgmemctl_copy_index_rebuilds ORDER BY index_name",
                           0, NULL);
    if (!r) {
        pg_fail(s, "reading pgmemctl_copy_index_rebuilds");
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < pg_ntuples(r); i++) {
        const char *name = pg_value(r, i, 0);
        double t1 = progress_now();
        log_info("building %s …", name);
        /* the definition may name an index that exists again (a crash after the build): then
         * only the record is removed */
        bool found;
        char *exists = pg_query_text(s->c, "SELECT to_regclass($1) IS NOT NULL", 1, (const char *[]){name}, &found);
        bool have = found && !strcmp(exists, "t");
        free(exists);
        ok = pg_begin(s->c) && (have || pg_run(s->c, pg_value(r, i, 1), 0, NULL)) &&
             pg_run(s->c, "DELETE FROM pgmemctl_copy_index_rebuilds WHERE index_name = $1", 1,
                    (const char *[]){name}) &&
             pg_commit(s->c);
        if (!ok) {
            pg_fail(s, "rebuilding the index dropped for the load (the record is kept; a re-run retries)");
            pg_rollback(s->c);
            break;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "index", name);
        cJSON_AddStringToObject(o, "action", "rebuilt");
        cJSON_AddNumberToObject(o, "seconds", (double) (int64_t) ((progress_now() - t1) * 1000) / 1000.0);
        cJSON_AddItemToArray(s->res->indexes, o);
        log_info("built %s in %.1f s", name, progress_now() - t1);
    }
    pg_clear(r);
    if (ok) { /* the schema's own HNSW index, deferred until the column had a dimension */
        bool found;
        char *fn = pg_query_text(s->c, "SELECT to_regprocedure('pgmemctl_ensure_hnsw()') IS NOT NULL", 0, NULL, &found);
        bool have_fn = found && !strcmp(fn, "t");
        free(fn);
        double t1 = progress_now();
        char *built = have_fn ? pg_query_text(s->c, "SELECT pgmemctl_ensure_hnsw()", 0, NULL, &found) : NULL;
        if (have_fn && !found) {
            pg_fail(s, "building idx_memories_embedding_hnsw");
            ok = false;
        } else if (built && !strcmp(built, "t")) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "index", "idx_memories_embedding_hnsw");
            cJSON_AddStringToObject(o, "action", "created");
            cJSON_AddNumberToObject(o, "seconds", (double) (int64_t) ((progress_now() - t1) * 1000) / 1000.0);
            cJSON_AddItemToArray(s->res->indexes, o);
            log_info("built idx_memories_embedding_hnsw in %.1f s", progress_now() - t1);
        }
        free(built);
    }
    pg_run(s->c, "RESET maintenance_work_mem", 0, NULL);
    pg_run(s->c, "RESET max_parallel_maintenance_workers", 0, NULL);
    s->res->seconds_index = progress_now() - t0;
    return ok;
}

/* ---- entry ---------------------------------------------------------------------------------- */

void copy_run(pg_conn *c, const copy_request *req, copy_result *res)
{
    memset(res, 0, sizeof *res);
    res->outcome = COPY_OK;
    res->write_path = req->dry_run ? "none" : "direct";
    res->tables_ignored = cJSON_CreateArray();
    res->tables_missing = cJSON_CreateArray();
    res->rejects = cJSON_CreateArray();
    res->indexes = cJSON_CreateArray();
    res->parity_mismatches = cJSON_CreateArray();
    copy_state s = {.c = c, .req = req, .res = res};
    s.ctx.epoch = req->epoch;
    pgbuf_init(&s.buf);
    pgbuf_init(&s.sched);
    double t0 = progress_now();
    bool locked = false;

    if (!sqlite_src_open(&s.src, req->from)) {
        fail(&s, COPY_REFUSED, "%s: cannot read the source store", req->from);
        goto out;
    }
    snprintf(res->source_path, sizeof res->source_path, "%s", s.src.path);
    if (!inspect_source(&s))
        goto out;
    if (!req->dry_run) {
        int holder = 0;
        int got = pg_advisory_lock(c, COPY_LOCK_KEY, 0, &holder);
        if (got == 0) {
            fail(&s, COPY_FAILED, "another pgmemctl copy is running on this database (backend pid %d)", holder);
            goto out;
        }
        if (got < 0) {
            pg_fail(&s, "could not take the copy lock");
            goto out;
        }
        locked = true;
    }
    if (!check_registry(&s))
        goto out;
    int64_t target_memories = 0;
    if (!plan_writes(&s, &target_memories))
        goto out;
    if (req->dry_run) { /* say which path a real run would take */
        char why[sizeof res->write_path_reason + 64];
        snprintf(why, sizeof why, "dry run; a real run would take the %s path: %s", res->write_path,
                 res->write_path_reason);
        snprintf(res->write_path_reason, sizeof res->write_path_reason, "%.*s",
                 (int) sizeof res->write_path_reason - 1, why);
        res->write_path = "none";
    }
    log_info("%s %s → %s (%s path: %s)", req->dry_run ? "reading" : "copying", s.src.path, pg_display(c),
             res->write_path, res->write_path_reason);
    if (!req->dry_run && target_memories == 0 && !drop_hnsw(&s))
        goto out;

    double td = progress_now();
    if (!copy_nodes(&s))
        goto out;
    if (sqlite_src_has_table(&s.src, "memory_connections") && !copy_edges(&s, "memory_connections", 1, &res->mc))
        goto out;
    if (sqlite_src_has_table(&s.src, "knowledge_edges") && !copy_edges(&s, "knowledge_edges", 2, &res->ke))
        goto out;
    if (!copy_orphans(&s))
        goto out;
    res->seconds_data = progress_now() - td;

    if (!req->dry_run) {
        if (!rebuild_indexes(&s))
            goto out;
        double ta = progress_now();
        bool changed = res->nodes.copied + res->sched_copied + res->mc.copied + res->ke.copied > 0 ||
                       cJSON_GetArraySize(res->indexes) > 0;
        if (changed && !pg_run(c, "ANALYZE memories, scheduling, edges", 0, NULL)) {
            pg_fail(&s, "ANALYZE");
            goto out;
        }
        res->seconds_analyze = progress_now() - ta;
        double tp = progress_now();
        res->parity_ran = true;
        if (!copy_parity(c, &s.src, &s.nq, &s.ctx, res->source_id, s.last_rowid, res)) {
            fail(&s, COPY_FAILED, "the parity check could not run");
            goto out;
        }
        res->seconds_parity = progress_now() - tp;
        if (!res->parity_ok) {
            fail(&s, COPY_FAILED,
                 "parity check failed: the target does not hold what the source has (see \"parity\"). If the "
                 "source changed after it was copied (vestige kept running), `pgmemctl copy --verify-existing` "
                 "re-reads it and updates the rows that differ");
            goto out;
        }
    }
    if (res->rejects_total > 0)
        res->outcome = COPY_REJECTED;
out:
    if (locked)
        pg_advisory_unlock(c, COPY_LOCK_KEY);
    res->seconds_total = progress_now() - t0;
    pgbuf_free(&s.buf);
    pgbuf_free(&s.sched);
    free(s.pend);
    free(s.rej_nodes);
    node_query_free(&s.nq);
    sqlite_src_close(&s.src);
}

void copy_result_free(copy_result *res)
{
    cJSON_Delete(res->tables_ignored);
    cJSON_Delete(res->tables_missing);
    cJSON_Delete(res->rejects);
    cJSON_Delete(res->indexes);
    cJSON_Delete(res->parity_mismatches);
    memset(res, 0, sizeof *res);
}

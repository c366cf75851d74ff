/* copy_stream.c — one rowid range of one source table copied through one connection: a reader
 * thread reads, validates and encodes the rows into binary COPY chunks while this thread sends
 * them, so the client's work overlaps the server's. Each batch is one transaction: its rows,
 * its rejections and its checkpoint commit together. */
#include "copy_int.h"
#include "copy_queue.h"
#include "log.h"
#include "copy_binary.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (256 * 1024)       /* COPY data per queued chunk */
/* How far a reader may run ahead of its connection: 8 MB shared by the streams, at least 1 MB
 * and at most 4 MB each (16 chunks: enough to cover the end of one batch and the start of the
 * next, when the connection waits on the server). */
#define QUEUE_BYTES_ALL (8 * 1024 * 1024)
#define QUEUE_BYTES_MIN (1024 * 1024)
#define QUEUE_BYTES_MAX (4 * 1024 * 1024)
#define MAX_RETRIES 20                 /* batches redone after a key conflict or deadlock */

/* ---- rejections ----------------------------------------------------------------------------- */

bool pending_add(pending_list *l, const char *table, int64_t rowid, const char *key, const map_reject *r)
{
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 16;
        pending_reject *nv = realloc(l->v, (size_t) nc * sizeof *nv);
        if (!nv)
            return false;
        l->v = nv;
        l->cap = nc;
    }
    pending_reject *p = &l->v[l->n++];
    p->table = table;
    p->rowid = rowid;
    snprintf(p->key, sizeof p->key, "%s", key);
    p->r = *r;
    return true;
}

bool copy_record_rejects(copy_shared *sh, pg_conn *c, pending_list *l)
{
    if (sh->req->dry_run)
        return true;
    for (int i = 0; i < l->n; i++) {
        pending_reject *p = &l->v[i];
        char rowid[32];
        snprintf(rowid, sizeof rowid, "%" PRId64, p->rowid);
        pg_result *r = pg_exec(c,
                               "INSERT INTO pgmemctl_copy_rejects (source_id, source_table, source_rowid, source_key,"
                               " field, reason, action) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                               7,
                               (const char *[]){sh->res->source_id, p->table, rowid, p->key, p->r.field, p->r.reason,
                                                p->r.action});
        if (!r)
            return false;
        if (pg_cmd_tuples(r) == 0)
            p->r.action = NULL; /* known from an earlier run */
        pg_clear(r);
    }
    return true;
}

void copy_publish_rejects(copy_shared *sh, pending_list *l)
{
    copy_result *res = sh->res;
    for (int i = 0; i < l->n; i++) {
        pending_reject *p = &l->v[i];
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
        if (sh->req->rejects_file) {
            char *line = cJSON_PrintUnformatted(o);
            if (line) {
                fprintf(sh->req->rejects_file, "%s\n", line);
                cJSON_free(line);
            }
        }
        if (res->rejects_total <= sh->req->max_listed_rejects) {
            cJSON_AddItemToArray(res->rejects, o);
            if (res->rejects_total <= 20)
                log_warn("%s rowid %" PRId64 " (%s): %s: %s — %s", p->table, p->rowid, p->key, p->r.field,
                         p->r.reason, p->r.action);
        } else {
            cJSON_Delete(o);
        }
    }
    l->n = 0;
}

/* ---- messages from the reader --------------------------------------------------------------- */

typedef enum { MSG_DATA, MSG_BATCH } msg_kind;

/* A DATA message carries COPY bytes of the batch's main table (memories or edges): the first
 * chunk of a batch starts with the COPY header, the last ends with the trailer. The BATCH
 * message that follows closes the batch: what else must commit with it. */
typedef struct {
    msg_kind kind;
    pgbuf data;             /* DATA */
    pgbuf sched;            /* BATCH, nodes: the whole COPY scheduling (header to trailer) */
    pending_list pend;      /* BATCH: the batch's rejections */
    edge_values *unk;       /* BATCH, edges: rows with an endpoint to look up in the target */
    int nunk, capunk;
    int64_t *skipped;       /* BATCH, nodes, dry run: rowids of nodes that were rejected */
    int nskipped, capskipped;
    int64_t after, last;    /* the batch holds the source rows (after, last] */
    copy_fp fp;             /* BATCH: the fingerprint of those rows (nread of them) */
    bool range_done;        /* no rows of the range come after it */
    int64_t nread, nrej, nmem, nsched, emb, embmiss, fromcard, nsent;
} copy_msg;

static void msg_free(void *p)
{
    copy_msg *m = p;
    if (!m)
        return;
    pgbuf_free(&m->data);
    pgbuf_free(&m->sched);
    free(m->pend.v);
    for (int i = 0; i < m->nunk; i++) {
        free((char *) m->unk[i].type);
        edge_values_clear(&m->unk[i]);
    }
    free(m->unk);
    free(m->skipped);
    free(m);
}

static size_t msg_bytes(const copy_msg *m)
{
    return m->data.len + m->sched.len + (size_t) m->pend.n * sizeof(pending_reject) +
           (size_t) m->nunk * sizeof(edge_values) + 64;
}

typedef struct {
    copy_shared *sh;
    const copy_range *r;
    int64_t from;           /* read rows after this rowid */
    copy_queue *q;
    bool failed;            /* the reader failed (copy_fail was called) */
    copy_fp_hasher *hash;   /* the batches' fingerprints */
    int keys[3];            /* the result columns the rows are fingerprinted by */
    int nkeys;
    pthread_t thread;
} reader;

/* Queues m; false when the stream was cancelled (m is freed) or out of memory (failed). */
static bool put(reader *rd, copy_msg *m)
{
    if (copy_queue_push(rd->q, m, msg_bytes(m)))
        return true;
    if (!copy_queue_cancelled(rd->q)) {
        copy_fail(rd->sh, COPY_FAILED, "out of memory queueing a batch");
        rd->failed = true;
    }
    msg_free(m);
    return false;
}

static copy_msg *msg_new(msg_kind kind)
{
    copy_msg *m = calloc(1, sizeof *m);
    if (m)
        m->kind = kind;
    return m;
}

/* The batch's current DATA chunk is full (or the batch ends): queue it and start another. */
static bool flush_chunk(reader *rd, copy_msg **chunk, bool last)
{
    if (!last && (*chunk)->data.len < CHUNK_BYTES)
        return true;
    if ((*chunk)->data.oom) {
        copy_fail(rd->sh, COPY_FAILED, "out of memory encoding %s", rd->r->table);
        rd->failed = true;
        return false;
    }
    copy_msg *m = *chunk;
    *chunk = NULL;
    if (!put(rd, m))
        return false;
    if (!last && !(*chunk = msg_new(MSG_DATA))) {
        copy_fail(rd->sh, COPY_FAILED, "out of memory");
        rd->failed = true;
        return false;
    }
    return true;
}

static void reader_oom(reader *rd, int64_t rowid)
{
    copy_fail(rd->sh, COPY_FAILED, "out of memory at %s rowid %" PRId64, rd->r->table, rowid);
    rd->failed = true;
}

static bool skipped_add(copy_msg *m, int64_t rowid)
{
    if (m->nskipped == m->capskipped) {
        int nc = m->capskipped ? m->capskipped * 2 : 16;
        int64_t *n = realloc(m->skipped, (size_t) nc * sizeof *n);
        if (!n)
            return false;
        m->skipped = n;
        m->capskipped = nc;
    }
    m->skipped[m->nskipped++] = rowid;
    return true;
}

/* Starts a batch after rd->from: binds the statement and allocates the BATCH message and the
 * first DATA chunk (with the COPY header). False (failed) when out of memory. */
static bool batch_start(reader *rd, sqlite3_stmt *st, copy_msg **batch, copy_msg **chunk)
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, rd->from);
    sqlite3_bind_int(st, 2, rd->sh->req->batch_size);
    *batch = msg_new(MSG_BATCH);
    *chunk = msg_new(MSG_DATA);
    if (!*batch || !*chunk) {
        reader_oom(rd, rd->from);
        return false;
    }
    (*batch)->after = (*batch)->last = rd->from;
    pgcopy_header(&(*chunk)->data);
    return true;
}

/* Ends a batch whose rows were stepped with result rc (nrows rows, the range ended early when
 * done): the trailer, then the last chunk and the BATCH message are queued (ownership passes).
 * Returns 1 when the range goes on, 0 when it is done, -1 on failure or cancel. */
static int batch_end(reader *rd, sqlite_src *src, int rc, int64_t nrows, bool done, copy_msg *batch, copy_msg *chunk)
{
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        copy_fail(rd->sh, COPY_FAILED, "%s: reading %s after rowid %" PRId64 ": %s", src->path, rd->r->table,
                  batch->last, sqlite3_errmsg(src->db));
        rd->failed = true;
        goto fail;
    }
    if (rc == SQLITE_DONE && nrows < rd->sh->req->batch_size)
        done = true;
    pgcopy_trailer(&chunk->data);
    if (batch->sched.len > 0)
        pgcopy_trailer(&batch->sched);
    if (batch->sched.oom) {
        reader_oom(rd, batch->last);
        goto fail;
    }
    batch->range_done = done;
    rd->from = batch->last;
    if (!flush_chunk(rd, &chunk, true)) {
        msg_free(batch);
        return -1;
    }
    if (!put(rd, batch))
        return -1;
    return done ? 0 : 1;
fail:
    msg_free(batch);
    msg_free(chunk);
    return -1;
}

/* Reads one batch of knowledge_nodes after rd->from. Returns 1 when the range goes on, 0 when
 * it is done, -1 on failure or cancel. */
static int read_node_batch(reader *rd, sqlite_src *src, sqlite3_stmt *st)
{
    copy_shared *sh = rd->sh;
    const copy_request *req = sh->req;
    copy_msg *batch, *chunk;
    if (!batch_start(rd, st, &batch, &chunk))
        goto fail;
    pgcopy_header(&batch->sched);
    node_values v = {0};
    map_outcome o;
    int64_t nrows = 0;
    bool done = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        nrows++;
        int64_t rowid = sqlite3_column_int64(st, 0);
        if (rowid > rd->r->end) {
            done = true;
            break;
        }
        if (rowid == batch->last && batch->nread > 0) { /* a node joined to two embeddings or cards */
            map_reject r = {.action = "extra_row_ignored"};
            snprintf(r.field, sizeof r.field, "id");
            snprintf(r.reason, sizeof r.reason,
                     "node has more than one node_embeddings or fsrs_cards row: the first was used");
            if (!pending_add(&batch->pend, "knowledge_nodes", rowid, v.key, &r)) {
                reader_oom(rd, rowid);
                goto fail_v;
            }
            continue;
        }
        batch->nread++;
        batch->last = rowid;
        if (!copy_fp_row(rd->hash, &batch->fp, st, rd->keys, rd->nkeys)) {
            reader_oom(rd, rowid);
            goto fail_v;
        }
        node_values_clear(&v);
        if (!copy_map_node(&sh->nq, st, &sh->ctx, &v, &o)) {
            reader_oom(rd, rowid);
            goto fail_v;
        }
        for (int k = 0; k < o.nrej; k++)
            if (!pending_add(&batch->pend, "knowledge_nodes", rowid, v.key, &o.rej[k])) {
                reader_oom(rd, rowid);
                goto fail_v;
            }
        if (!o.row_ok) {
            batch->nrej++;
            if (req->dry_run && !skipped_add(batch, rowid)) { /* real runs read them back from the target */
                reader_oom(rd, rowid);
                goto fail_v;
            }
            continue;
        }
        copy_encode_memory(&chunk->data, &v);
        batch->nmem++;
        batch->emb += v.emb != NULL;
        batch->embmiss += !v.emb_present;
        if (v.sched_ok) {
            copy_encode_schedule(&batch->sched, &v);
            batch->nsched++;
            batch->fromcard += v.sched.from_card;
        }
        if (!flush_chunk(rd, &chunk, false))
            goto fail_v;
    }
    node_values_clear(&v);
    return batch_end(rd, src, rc, nrows, done, batch, chunk);
fail_v:
    node_values_clear(&v);
fail:
    msg_free(batch);
    msg_free(chunk);
    return -1;
}

/* An edge endpoint is known good without asking the target when it is a source node at or
 * before the node checkpoint that was not rejected. */
static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static bool endpoint_local(const copy_shared *sh, int64_t node_rowid)
{
    return node_rowid > 0 && node_rowid <= sh->nodes_done &&
           !(sh->nrej_nodes && bsearch(&node_rowid, sh->rej_nodes, sh->nrej_nodes, sizeof node_rowid, cmp_i64));
}

/* Reads one batch of edges after rd->from. Rows whose endpoints are known copied go into the
 * COPY chunks; the others travel with the BATCH message, to be checked against the target. */
static int read_edge_batch(reader *rd, sqlite_src *src, const edge_query *q, sqlite3_stmt *st)
{
    copy_shared *sh = rd->sh;
    copy_msg *batch, *chunk;
    if (!batch_start(rd, st, &batch, &chunk))
        goto fail;
    edge_values v = {0};
    map_outcome o;
    int64_t nrows = 0;
    bool done = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        nrows++;
        if (sqlite3_column_int64(st, 0) > rd->r->end) {
            done = true;
            break;
        }
        edge_values_clear(&v);
        if (!copy_fp_row(rd->hash, &batch->fp, st, rd->keys, rd->nkeys)) {
            reader_oom(rd, batch->last);
            goto fail_v;
        }
        if (!copy_map_edge(q, st, &sh->ctx, &v, &o)) {
            reader_oom(rd, batch->last);
            goto fail_v;
        }
        batch->nread++;
        batch->last = v.rowid;
        for (int k = 0; k < o.nrej; k++)
            if (!pending_add(&batch->pend, q->table, v.rowid, v.key, &o.rej[k])) {
                reader_oom(rd, v.rowid);
                goto fail_v;
            }
        if (!o.row_ok) {
            batch->nrej++;
            continue;
        }
        if (endpoint_local(sh, v.src_node) && endpoint_local(sh, v.tgt_node)) {
            copy_encode_edge(&chunk->data, &v);
            batch->nsent++;
            if (!flush_chunk(rd, &chunk, false))
                goto fail_v;
            continue;
        }
        /* keep a copy: the type text lives in SQLite's row memory */
        if (batch->nunk == batch->capunk) {
            int nc = batch->capunk ? batch->capunk * 2 : 16;
            edge_values *nu = realloc(batch->unk, (size_t) nc * sizeof *nu);
            if (!nu) {
                reader_oom(rd, v.rowid);
                goto fail_v;
            }
            batch->unk = nu;
            batch->capunk = nc;
        }
        char *type = strndup(v.type, v.type_len);
        if (!type) {
            reader_oom(rd, v.rowid);
            goto fail_v;
        }
        batch->unk[batch->nunk] = v;
        batch->unk[batch->nunk++].type = type;
        v.metadata = NULL; /* moved */
    }
    edge_values_clear(&v);
    return batch_end(rd, src, rc, nrows, done, batch, chunk);
fail_v:
    edge_values_clear(&v);
fail:
    msg_free(batch);
    msg_free(chunk);
    return -1;
}

static void *reader_main(void *arg)
{
    reader *rd = arg;
    copy_shared *sh = rd->sh;
    const char *table = rd->r->table;
    bool nodes = !strcmp(table, "knowledge_nodes");
    sqlite_src src = {0};
    edge_query q = {0};
    sqlite3_stmt *st = NULL;
    if (!sqlite_src_open(&src, sh->source_path)) {
        copy_fail(sh, COPY_FAILED, "%s: cannot open the source again for reading %s", sh->source_path, table);
        rd->failed = true;
        goto out;
    }
    if (!nodes && !edge_query_build(&src, table, &q)) {
        copy_fail(sh, COPY_FAILED, "%s: cannot read %s", src.path, table);
        rd->failed = true;
        goto out;
    }
    st = sqlite_src_prepare(&src, nodes ? sh->nq.sql : q.sql);
    if (!st) {
        copy_fail(sh, COPY_FAILED, "%s: cannot read %s", src.path, table);
        rd->failed = true;
        goto out;
    }
    if (!(rd->hash = copy_fp_hasher_new())) {
        copy_fail(sh, COPY_FAILED, "out of memory");
        rd->failed = true;
        goto out;
    }
    if (nodes) { /* the fingerprint's key columns, as copy_identity.c reads them */
        rd->keys[0] = sh->nq.i_id + 1;
        rd->nkeys = 1;
    } else {
        rd->keys[0] = q.i_src + 1;
        rd->keys[1] = q.i_tgt + 1;
        rd->keys[2] = q.i_type + 1;
        rd->nkeys = 3;
    }
    int step;
    do
        step = nodes ? read_node_batch(rd, &src, st) : read_edge_batch(rd, &src, &q, st);
    while (step > 0 && !copy_queue_cancelled(rd->q));
out:
    copy_fp_hasher_free(rd->hash);
    sqlite3_finalize(st);
    if (!nodes)
        edge_query_free(&q);
    sqlite_src_close(&src);
    copy_queue_close(rd->q);
    return NULL;
}

/* ---- the connection's side ------------------------------------------------------------------ */

static bool ensure_staging(copy_worker *w)
{
    if (w->staging_ready)
        return true;
    if (!pg_run(w->c,
                "CREATE TEMP TABLE IF NOT EXISTS pgmemctl_stage_memories (LIKE memories INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS;",
                0, NULL) ||
        !pg_run(w->c,
                "CREATE TEMP TABLE IF NOT EXISTS pgmemctl_stage_scheduling (LIKE scheduling INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS",
                0, NULL) ||
        !pg_run(w->c,
                "CREATE TEMP TABLE IF NOT EXISTS pgmemctl_stage_edges (LIKE edges INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS",
                0, NULL))
        return false;
    w->staging_ready = true;
    return true;
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
static bool stage_merge(copy_worker *w, const char *const sql[2], int64_t *inserted, int64_t *updated)
{
    pg_result *r = pg_exec(w->c, sql[w->sh->req->verify_existing ? 1 : 0], 0, NULL);
    if (!r)
        return false;
    *inserted = strtoll(pg_value(r, 0, 0), NULL, 10);
    *updated = strtoll(pg_value(r, 0, 1), NULL, 10);
    pg_clear(r);
    return true;
}

/* --verify-existing: the batch's source rows are re-validated, so their earlier rejection
 * records are replaced by whatever this run finds. */
static bool forget_rejects(copy_worker *w, const char *table, int64_t after, int64_t upto)
{
    if (!w->sh->req->verify_existing)
        return true;
    char a[32], b[32];
    snprintf(a, sizeof a, "%" PRId64, after);
    snprintf(b, sizeof b, "%" PRId64, upto);
    return pg_run(w->c,
                  "DELETE FROM pgmemctl_copy_rejects WHERE source_id = $1 AND source_table = $2"
                  " AND source_rowid > $3 AND source_rowid <= $4",
                  4, (const char *[]){w->sh->res->source_id, table, a, b});
}

static int cmp_id(const void *a, const void *b) { return memcmp(a, b, 16); }

/* Fills found[i] for each endpoint: present in the target's memories. ids: n × 16 bytes. */
static bool endpoints_exist(pg_conn *c, const unsigned char *ids, int n, bool *found)
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
    pg_result *r = pg_exec(c, "SELECT id::text FROM memories WHERE id = ANY($1::uuid[])", 1, (const char *[]){arr});
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
    for (int i = 0; i < n; i++)
        found[i] = bsearch(ids + 16 * i, have, (size_t) nt, 16, cmp_id) != NULL;
    free(have);
    return true;
}

static bool reject_dangling(copy_msg *m, const char *table, const edge_values *v, bool src_ok)
{
    map_reject r = {.action = "edge_skipped"};
    snprintf(r.field, sizeof r.field, "%s", src_ok ? "target_id" : "source_id");
    char u[37];
    uuid_format(src_ok ? v->tgt : v->src, u);
    snprintf(r.reason, sizeof r.reason, "dangling: memory %s was not copied", u);
    return pending_add(&m->pend, table, v->rowid, v->key, &r);
}

typedef enum { ST_OK, ST_FAILED, ST_RETRY, ST_OOM } step_status;

/* Edges with an endpoint outside this store's copied nodes: looked up in the target, then sent
 * in a second COPY, or rejected as dangling. Inside the batch's transaction. */
static step_status edges_second_pass(copy_worker *w, const char *table, const char *copy_sql, copy_msg *m,
                                     int64_t *dangling)
{
    int n = m->nunk;
    unsigned char *ids = malloc((size_t) n * 32);
    bool *found = malloc((size_t) n * 2 * sizeof *found);
    pgbuf b;
    pgbuf_init(&b);
    step_status ret = ST_OOM;
    if (!ids || !found)
        goto out;
    for (int i = 0; i < n; i++) {
        memcpy(ids + 32 * i, m->unk[i].src, 16);
        memcpy(ids + 32 * i + 16, m->unk[i].tgt, 16);
    }
    if (!endpoints_exist(w->c, ids, 2 * n, found)) {
        ret = ST_FAILED;
        goto out;
    }
    pgcopy_header(&b);
    int nsecond = 0;
    for (int i = 0; i < n; i++) {
        bool src_ok = found[2 * i] || endpoint_local(w->sh, m->unk[i].src_node);
        bool tgt_ok = found[2 * i + 1] || endpoint_local(w->sh, m->unk[i].tgt_node);
        if (src_ok && tgt_ok) {
            copy_encode_edge(&b, &m->unk[i]);
            nsecond++;
        } else {
            if (!reject_dangling(m, table, &m->unk[i], src_ok))
                goto out;
            (*dangling)++;
            m->nrej++;
        }
    }
    pgcopy_trailer(&b);
    if (b.oom)
        goto out;
    if (!w->sh->req->dry_run && nsecond > 0 &&
        (!pg_copy_begin(w->c, copy_sql) || !pg_copy_put(w->c, b.data, b.len) || !pg_copy_end(w->c, NULL))) {
        ret = ST_FAILED;
        goto out;
    }
    m->nsent += nsecond;
    ret = ST_OK;
out:
    pgbuf_free(&b);
    free(ids);
    free(found);
    return ret;
}

/* The batch's transaction after its last COPY chunk: the rest of the batch, rejections,
 * checkpoint, COMMIT; then its figures go to the result. */
static step_status finish_batch(copy_worker *w, copy_range *r, copy_msg *m)
{
    copy_shared *sh = w->sh;
    copy_result *res = sh->res;
    bool dry = sh->req->dry_run, nodes = !strcmp(r->table, "knowledge_nodes");
    bool bounded = r->end != COPY_RANGE_OPEN;
    int64_t ck = m->range_done && bounded ? r->end : m->last;
    int64_t ins = nodes ? m->nmem : m->nsent, upd = 0, ins_sched = m->nsched, upd_sched = 0, dangling = 0;
    if (!dry && !pg_copy_end(w->c, NULL))
        return ST_FAILED;
    if (nodes) {
        if (!dry && !(pg_copy_begin(w->c, w->staging ? "COPY pgmemctl_stage_scheduling " COPY_SCHEDULING_COLUMNS
                                                         " FROM STDIN (FORMAT binary)"
                                                       : "COPY scheduling " COPY_SCHEDULING_COLUMNS
                                                         " FROM STDIN (FORMAT binary)") &&
                      pg_copy_put(w->c, m->sched.data, m->sched.len) && pg_copy_end(w->c, NULL)))
            return ST_FAILED;
        if (!dry && w->staging &&
            (!stage_merge(w, MERGE_MEMORIES, &ins, &upd) || !stage_merge(w, MERGE_SCHEDULING, &ins_sched, &upd_sched)))
            return ST_FAILED;
    } else {
        if (m->nunk > 0) {
            step_status st = edges_second_pass(w, r->table,
                                               w->staging ? "COPY pgmemctl_stage_edges " COPY_EDGES_COLUMNS
                                                            " FROM STDIN (FORMAT binary)"
                                                          : "COPY edges " COPY_EDGES_COLUMNS " FROM STDIN (FORMAT binary)",
                                               m, &dangling);
            if (st != ST_OK)
                return st;
        }
        ins = m->nsent;
        if (!dry && w->staging && !stage_merge(w, MERGE_EDGES, &ins, &upd))
            return ST_FAILED;
    }
    /* the checkpoint becomes (start, ck], with the count and fingerprint of those source rows: a
     * --verify-existing run, which reads from the start, moves it back to where it is */
    copy_fp fp = r->run_fp;
    copy_fp_add(&fp, &m->fp);
    int64_t rows = r->run_rows + m->nread;
    if (!dry) {
        bool write_ck = m->nread > 0 || ck != r->last;
        const copy_fp *kfp = r->run_known ? &fp : NULL;
        if (!forget_rejects(w, r->table, m->after, m->last) || !copy_record_rejects(sh, w->c, &m->pend) ||
            (write_ck && !copy_checkpoint(sh, w->c, r->table, r->start, ck, ins, m->nrej, rows, kfp)) ||
            (write_ck && nodes && !copy_checkpoint(sh, w->c, "scheduling", r->start, ck, ins_sched, 0, 0, NULL)) ||
            !pg_commit(w->c))
            return ST_FAILED;
    }
    r->last = ck;
    r->run_fp = r->fp = fp;
    r->run_rows = r->rows = rows;
    r->known = r->run_known;
    pthread_mutex_lock(&sh->mu);
    if (nodes) {
        res->nodes.read += m->nread;
        res->nodes.copied += ins;
        res->nodes.updated += upd;
        res->nodes.already_present += m->nmem - ins - upd;
        res->nodes.rejected += m->nrej;
        res->sched_copied += ins_sched;
        res->sched_updated += upd_sched;
        res->sched_from_cards += m->fromcard;
        res->sched_from_nodes += m->nsched - m->fromcard;
        res->emb_copied += m->emb;
        res->emb_missing += m->embmiss;
        for (int i = 0; i < m->nskipped; i++) { /* dry run: the edge phase must know them */
            if (sh->nrej_nodes == sh->caprej_nodes) {
                size_t nc = sh->caprej_nodes ? sh->caprej_nodes * 2 : 64;
                int64_t *n = realloc(sh->rej_nodes, nc * sizeof *n);
                if (!n) {
                    pthread_mutex_unlock(&sh->mu);
                    return ST_OOM;
                }
                sh->rej_nodes = n;
                sh->caprej_nodes = nc;
            }
            sh->rej_nodes[sh->nrej_nodes++] = m->skipped[i];
        }
    } else {
        copy_table_stats *ts = !strcmp(r->table, "memory_connections") ? &res->mc : &res->ke;
        ts->read += m->nread;
        ts->copied += ins;
        ts->updated += upd;
        ts->already_present += m->nsent - ins - upd;
        ts->rejected += m->nrej;
        res->edges_dangling += dangling;
    }
    copy_publish_rejects(sh, &m->pend);
    sh->committed_rows += m->nread;
    pthread_cond_broadcast(&sh->changed);
    pthread_mutex_unlock(&sh->mu);
    return ST_OK;
}

static bool retryable(pg_conn *c, bool staging)
{
    const char *st = pg_sqlstate(c);
    return (!staging && !strcmp(st, "23505")) || !strcmp(st, "40P01");
}

/* Streams what rd queues until the range is done. in_copy tracks an open COPY to abort. */
static step_status consume(copy_worker *w, copy_range *r, reader *rd, int64_t *committed)
{
    copy_shared *sh = w->sh;
    bool dry = sh->req->dry_run, nodes = !strcmp(r->table, "knowledge_nodes");
    bool in_batch = false;
    const char *main_copy = nodes ? (w->staging ? "COPY pgmemctl_stage_memories " COPY_MEMORIES_COLUMNS
                                                  " FROM STDIN (FORMAT binary)"
                                                : "COPY memories " COPY_MEMORIES_COLUMNS " FROM STDIN (FORMAT binary)")
                                  : (w->staging ? "COPY pgmemctl_stage_edges " COPY_EDGES_COLUMNS
                                                  " FROM STDIN (FORMAT binary)"
                                                : "COPY edges " COPY_EDGES_COLUMNS " FROM STDIN (FORMAT binary)");
    void *item;
    while (copy_queue_pop(rd->q, &item)) {
        copy_msg *m = item;
        step_status st = ST_OK;
        if (m->kind == MSG_DATA) {
            if (!in_batch) {
                pthread_mutex_lock(&sh->mu);
                bool stop = sh->stop;
                pthread_mutex_unlock(&sh->mu);
                if (stop) {
                    msg_free(m);
                    return ST_FAILED;
                }
                if (!dry && (!pg_begin(w->c) || (w->staging && !ensure_staging(w)) || !pg_copy_begin(w->c, main_copy)))
                    st = ST_FAILED;
                in_batch = true;
            }
            if (st == ST_OK && !dry && !pg_copy_put(w->c, m->data.data, m->data.len))
                st = ST_FAILED;
        } else {
            in_batch = false;
            st = finish_batch(w, r, m);
            if (st == ST_OK)
                *committed = m->last;
        }
        msg_free(m);
        if (st == ST_OOM) {
            copy_fail(sh, COPY_FAILED, "out of memory copying %s", r->table);
            pg_rollback(w->c);
            return ST_FAILED;
        }
        if (st != ST_OK) {
            if (retryable(w->c, w->staging)) {
                log_info("%s: the batch after rowid %" PRId64 " met %s (%s): redoing it through the conflict-safe "
                         "staging path",
                         r->table, *committed,
                         !strcmp(pg_sqlstate(w->c), "40P01") ? "a deadlock with another stream"
                                                             : "a key the target already has",
                         pg_errmsg(w->c));
                pg_rollback(w->c);
                return ST_RETRY;
            }
            char what[96];
            snprintf(what, sizeof what, "copying %s", r->table);
            copy_pg_fail(sh, w->c, what);
            pg_rollback(w->c);
            return ST_FAILED;
        }
    }
    if (in_batch && !dry) /* the reader stopped inside a batch: it failed */
        pg_copy_abort(w->c, "the source could not be read");
    pg_rollback(w->c);
    return rd->failed ? ST_FAILED : ST_OK;
}

bool copy_stream_range(copy_worker *w, copy_range *r)
{
    copy_shared *sh = w->sh;
    for (int attempt = 0;; attempt++) {
        reader rd = {.sh = sh, .r = r, .from = r->read_from};
        int jobs = sh->req->jobs > 0 ? sh->req->jobs : 1;
        size_t budget = QUEUE_BYTES_ALL / (size_t) jobs;
        rd.q = copy_queue_new(budget < QUEUE_BYTES_MIN ? QUEUE_BYTES_MIN : budget > QUEUE_BYTES_MAX ? QUEUE_BYTES_MAX : budget);
        if (!rd.q) {
            copy_fail(sh, COPY_FAILED, "out of memory");
            return false;
        }
        if (pthread_create(&rd.thread, NULL, reader_main, &rd) != 0) {
            copy_queue_free(rd.q);
            copy_fail(sh, COPY_FAILED, "could not start a reader thread for %s", r->table);
            return false;
        }
        int64_t committed = r->read_from;
        step_status st = consume(w, r, &rd, &committed);
        if (st != ST_OK)
            copy_queue_cancel(rd.q, msg_free);
        pthread_join(rd.thread, NULL);
        void *left;
        while (copy_queue_pop(rd.q, &left)) /* nothing is left after a clean end; be safe */
            msg_free(left);
        copy_queue_free(rd.q);
        if (st == ST_OK)
            return true;
        if (st != ST_RETRY)
            return false;
        if (attempt >= MAX_RETRIES) {
            copy_fail(sh, COPY_FAILED, "%s: the batch after rowid %" PRId64 " conflicted %d times in a row; giving up",
                      r->table, committed, attempt + 1);
            return false;
        }
        r->read_from = committed; /* redo from the last committed batch, through the staging tables */
        if (!w->staging) {
            w->staging = true;
            pthread_mutex_lock(&sh->mu);
            sh->res->write_path = "staging";
            snprintf(sh->res->write_path_reason, sizeof sh->res->write_path_reason,
                     "switched after %s rowid %" PRId64 ": a key already existed in the target", r->table, committed);
            pthread_mutex_unlock(&sh->mu);
        }
    }
}

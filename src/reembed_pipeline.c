/* reembed_pipeline.c — the embedding pipeline every mode of a re-embed writes through: keyset
 * batches read from memories, embedded on a thread while the previous batch is written (binary
 * COPY into the staging table, then the mode's INSERT or UPDATE, with the state row's progress, in
 * one transaction), rejected rows reported; and the registry and state rows. */
#include "reembed_int.h"
#include "log.h"
#include "sqlite_values.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTED_REJECTS 1000
#define STAGE REEMBED_STAGE
#define ZERO_UUID REEMBED_ZERO_UUID

void reembed_finish(rstate *s, reembed_outcome o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->message, sizeof s->res->message, fmt, ap);
    va_end(ap);
    s->res->outcome = o;
    if (o == REEMBED_FAILED || o == REEMBED_REFUSED)
        log_error("reembed: %s", s->res->message);
}

/* Fails with the connection's error and what was being done. */
void reembed_fail_sql(rstate *s, const char *what)
{
    char err[512];
    pg_error_text(s->c, err, sizeof err);
    /* class 53: disk full, out of memory, too many connections */
    if (!strncmp(pg_sqlstate(s->c), "53", 2) && s->req->mode == REEMBED_SHADOW && !s->req->only_missing)
        reembed_finish(s, REEMBED_FAILED,
                       "%s: %s. memories is untouched and keeps serving; free space (a shadow re-embed needs about"
                       " %lld MB more while it runs) and run pgmemctl reembed again, or give the space back with"
                       " `pgmemctl reembed --abort` (drops the copy pgmemctl_memories_next)",
                       what, err, (long long) (s->res->plan.extra_bytes / 1048576));
    else
        reembed_finish(s, REEMBED_FAILED, "%s: %s", what, err);
}

/* ---- writing a batch --------------------------------------------------------------------- */

static void add_reject(rstate *s, const char *id, const char *reason)
{
    s->res->rows_rejected++;
    if (!s->res->rejects)
        s->res->rejects = cJSON_CreateArray();
    if (cJSON_GetArraySize(s->res->rejects) < MAX_LISTED_REJECTS) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "reason", reason);
        cJSON_AddStringToObject(o, "action", "embedding_nulled");
        cJSON_AddItemToArray(s->res->rejects, o);
    }
    log_warn("reembed: memory %s: %s; it is left without a vector", id, reason);
    if (s->nrejected == s->caprejected) {
        int cap = s->caprejected ? s->caprejected * 2 : 64;
        char **n = realloc(s->rejected, (size_t) cap * sizeof *n);
        if (!n)
            return;
        s->rejected = n;
        s->caprejected = cap;
    }
    s->rejected[s->nrejected++] = strdup(id);
}

char *reembed_rejected_ids(const rstate *s)
{
    size_t len = 3 + (size_t) s->nrejected * 37;
    char *a = malloc(len), *w = a;
    if (!a)
        return NULL;
    *w++ = '{';
    for (int i = 0; i < s->nrejected; i++) {
        if (!s->rejected[i])
            continue;
        w += sprintf(w, "%s%s", w > a + 1 ? "," : "", s->rejected[i]);
    }
    *w++ = '}';
    *w = 0;
    return a;
}

/* The UPDATE that moves a staged batch into memories (in-place and --only-missing). The
 * staging table has no statistics, so the planner would hash-join it with a scan of all of
 * memories for every batch: the id list makes the primary key's index find the rows (measured
 * at 100,000 memories: 77 ms a batch of 256 rows by seq scan, 5 ms by the index). */
#define BY_STAGED_IDS " AND m.id = ANY (ARRAY(SELECT id FROM " STAGE "))"
static const char *update_sql(const rstate *s)
{
    if (s->req->only_missing)
        return "UPDATE memories m SET embedding = st.v FROM " STAGE " st"
               " WHERE m.id = st.id AND md5(m.content) = st.content_md5 AND m.embedding IS NULL" BY_STAGED_IDS;
    return "UPDATE memories m SET embedding = st.v FROM " STAGE " st WHERE m.id = st.id" BY_STAGED_IDS;
}

int64_t reembed_stage(rstate *s, const reembed_batch *b)
{
    int dim = embed_dimension(s->emb);
    pgbuf_reset(&s->buf);
    pgcopy_header(&s->buf);
    int64_t staged = 0;
    for (int i = 0; i < b->n; i++) {
        unsigned char u[16];
        const char *id = pg_value(b->rows, i, 0);
        bool ok = b->status[i] == EMBED_OK;
        if (!ok && !s->stage_rejected)
            continue;
        if (!parse_uuid(id, strlen(id), u)) {
            reembed_finish(s, REEMBED_FAILED, "memory id %s is not a uuid", id);
            return -1;
        }
        pgcopy_tuple_begin(&s->buf, 3);
        pgcopy_uuid(&s->buf, u);
        pgcopy_text(&s->buf, pg_value(b->rows, i, 2), strlen(pg_value(b->rows, i, 2)));
        if (ok)
            pgcopy_vector_floats(&s->buf, b->vec + (size_t) i * (size_t) dim, dim);
        else
            pgcopy_null(&s->buf);
        staged++;
    }
    pgcopy_trailer(&s->buf);
    if (s->buf.oom) {
        reembed_finish(s, REEMBED_FAILED, "out of memory encoding a batch");
        return -1;
    }
    if (staged > 0 &&
        (!pg_copy_begin(s->c, "COPY " STAGE " (id, content_md5, v) FROM STDIN (FORMAT binary)") ||
         !pg_copy_put(s->c, s->buf.data, s->buf.len) || !pg_copy_end(s->c, NULL))) {
        reembed_fail_sql(s, "staging a batch of vectors");
        return -1;
    }
    return staged;
}

bool reembed_stage_table(rstate *s)
{
    if (!pg_run(s->c, "CREATE TEMP TABLE IF NOT EXISTS " STAGE " (id uuid, content_md5 text, v vector) ON COMMIT DELETE ROWS",
                0, NULL)) {
        reembed_fail_sql(s, "creating the staging table");
        return false;
    }
    return true;
}

/* Writes one batch in one transaction with the state row's progress. */
static bool write_batch(rstate *s, const reembed_batch *b)
{
    double t0 = progress_now();
    if (!pg_begin(s->c)) {
        reembed_fail_sql(s, "starting a batch");
        return false;
    }
    int64_t updated = 0, staged = reembed_stage(s, b);
    if (staged < 0) {
        pg_rollback(s->c);
        return false;
    }
    if (staged > 0) {
        pg_result *u = pg_exec(s->c, s->apply_sql ? s->apply_sql : update_sql(s), 0, NULL);
        if (!u) {
            reembed_fail_sql(s, "writing a batch of vectors");
            pg_rollback(s->c);
            return false;
        }
        updated = pg_cmd_tuples(u);
        pg_clear(u);
        if (s->stage_rejected)
            for (int i = 0; i < b->n; i++)
                updated -= b->status[i] != EMBED_OK;
    }
    if (s->have_state) {
        char nrows[32];
        snprintf(nrows, sizeof nrows, "%lld", (long long) updated);
        const char *last = pg_value(b->rows, b->n - 1, 0);
        if (!pg_run(s->c,
                    "UPDATE pgmemctl_reembed_state SET rows_done = rows_done + $1::bigint, updated_at = now(),"
                    " last_id = CASE WHEN mode = 'in-place' THEN $2::uuid ELSE last_id END",
                    2, (const char *[]){nrows, last})) {
            reembed_fail_sql(s, "recording progress");
            pg_rollback(s->c);
            return false;
        }
    }
    if (!pg_commit(s->c)) {
        reembed_fail_sql(s, "committing a batch");
        return false;
    }
    s->res->seconds_write += progress_now() - t0;
    s->res->rows_updated += updated;
    return true;
}

void reembed_batch_free(reembed_batch *b)
{
    if (!b)
        return;
    pg_clear(b->rows);
    free(b->texts);
    free(b->lens);
    free(b->status);
    free(b->vec);
    free(b);
}

reembed_batch *reembed_batch_new(rstate *s, pg_result *r)
{
    int n = pg_ntuples(r), dim = embed_dimension(s->emb);
    reembed_batch *b = calloc(1, sizeof *b);
    if (b) {
        b->rows = r;
        b->n = n;
        b->emb = s->emb;
        b->exact = s->exact;
        b->texts = calloc((size_t) n + 1, sizeof *b->texts);
        b->lens = calloc((size_t) n + 1, sizeof *b->lens);
        b->status = calloc((size_t) n + 1, 1);
        b->vec = calloc(((size_t) n + 1) * (size_t) dim, sizeof *b->vec);
    }
    if (!b || !b->texts || !b->lens || !b->status || !b->vec) {
        if (b)
            reembed_batch_free(b);
        else
            pg_clear(r);
        reembed_finish(s, REEMBED_FAILED, "out of memory for a batch of %d rows", n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        b->texts[i] = pg_value(r, i, 1);
        b->lens[i] = (size_t) pg_getlength(r, i, 1);
    }
    return b;
}

/* The embedding half of a batch, on its own thread while the main thread writes the previous
 * batch (the embedder is used by one thread at a time; the connection only by the main one). */
static void *embed_thread(void *arg)
{
    reembed_batch *b = arg;
    double t0 = progress_now();
    b->ok = embed_batch_status(b->emb, b->texts, b->lens, (size_t) b->n, b->vec, b->status, b->err, sizeof b->err);
    b->seconds = progress_now() - t0;
    if (b->ok && b->exact) {
        bool *ok = malloc((size_t) b->n + 1);
        if (ok) {
            for (int i = 0; i < b->n; i++)
                ok[i] = b->status[i] == EMBED_OK;
            recall_exact_add(b->exact, b->vec, ok, b->n);
            free(ok);
        }
    }
    return NULL;
}

/* Reads the next batch after `last` (NULL and *done when there is none). */
static reembed_batch *read_batch(rstate *s, const char *sql, const char *last, int limit, bool *done)
{
    *done = false;
    char *rej = reembed_rejected_ids(s), lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    /* The next rows in primary-key order, read in that order: the planner, estimating
     * `embedding IS NULL` from a mostly filled column's statistics, otherwise scans and sorts
     * the whole table for every batch. The rows still to do lie after `last`. */
    pg_result *r = NULL;
    if (pg_begin(s->c) &&
        pg_run(s->c, "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)",
               0, NULL))
        r = pg_exec(s->c, sql, 3, (const char *[]){last, lim, rej ? rej : "{}"});
    free(rej);
    if (!r || !pg_commit(s->c)) {
        reembed_fail_sql(s, "reading memories");
        pg_rollback(s->c);
        pg_clear(r);
        return NULL;
    }
    if (pg_ntuples(r) == 0) {
        pg_clear(r);
        *done = true;
        return NULL;
    }
    return reembed_batch_new(s, r);
}

static bool start_embed(rstate *s, reembed_batch *b)
{
    if (pthread_create(&b->thread, NULL, embed_thread, b) != 0) {
        reembed_finish(s, REEMBED_FAILED, "could not start the embedding thread");
        return false;
    }
    b->started = true;
    return true;
}

/* Reports b's rejected rows, after its embedding; false when the embedder failed. */
static bool embedded(rstate *s, reembed_batch *b)
{
    /* the counters are read only while no embedding thread runs */
    embed_get_stats(s->emb, &s->joined_stats);
    s->res->seconds_embed += b->seconds;
    if (!b->ok) {
        reembed_finish(s, REEMBED_FAILED, "the embedder failed: %s", b->err);
        return false;
    }
    for (int i = 0; i < b->n; i++)
        if (b->status[i] != EMBED_OK)
            add_reject(s, pg_value(b->rows, i, 0),
                       b->status[i] == EMBED_EMPTY ? "empty content: nothing to embed"
                                                   : "content longer than the model's input limit (--on-long-input reject)");
    return true;
}

/* Waits for b's embedding; reports its rejected rows. False when the embedder failed. */
static bool join_embed(rstate *s, reembed_batch *b)
{
    if (!b->started)
        return false;
    pthread_join(b->thread, NULL);
    b->started = false;
    return embedded(s, b);
}

bool reembed_embed_now(rstate *s, reembed_batch *b)
{
    embed_thread(b);
    return embedded(s, b);
}

/* One keyset pass over the rows still to embed, from s->keyset_start (or the beginning). The
 * embedder works on batch k+1 while batch k is written. *seen counts the rows read. */
static bool backfill_pass(rstate *s, int64_t *seen)
{
    char sql[512];
    if (s->select_sql)
        snprintf(sql, sizeof sql, "%s", s->select_sql);
    else
        snprintf(sql, sizeof sql,
                 "SELECT id::text, content, md5(content) FROM memories WHERE %s AND id > $1::uuid"
                 " AND NOT (id = ANY ($3::uuid[])) ORDER BY memories.id LIMIT $2::int",
                 s->req->only_missing ? "embedding IS NULL" : "true");
    char last[40];
    snprintf(last, sizeof last, "%s", s->keyset_start[0] ? s->keyset_start : ZERO_UUID);
    int limit = s->req->batch_size * (embed_is_http(s->emb) ? (s->req->eopt.concurrency > 0 ? s->req->eopt.concurrency : 4) : 1);
    *seen = 0;
    bool done = false, ok = true;
    reembed_batch *cur = read_batch(s, sql, last, limit, &done);
    if (!cur)
        return done;
    ok = start_embed(s, cur);
    while (ok) {
        ok = join_embed(s, cur);
        if (!ok)
            break;
        snprintf(last, sizeof last, "%s", pg_value(cur->rows, cur->n - 1, 0));
        reembed_batch *next = read_batch(s, sql, last, limit, &done);
        if (!next && !done) {
            ok = false;
            break;
        }
        if (next && !start_embed(s, next)) {
            reembed_batch_free(next);
            ok = false;
            break;
        }
        ok = write_batch(s, cur);
        if (ok) {
            snprintf(s->state_last_id, sizeof s->state_last_id, "%s", last);
            *seen += cur->n;
            s->done += cur->n;
            if (embed_is_http(s->emb)) {
                const embed_stats st = s->joined_stats;
                char detail[128];
                snprintf(detail, sizeof detail, "%d requests in flight, %lld sent, %lld retries",
                         next ? s->req->eopt.concurrency : 0, st.requests, st.retries);
                progress_detail(s->prog, detail);
            }
            progress_update(s->prog, s->done);
        }
        reembed_batch_free(cur);
        cur = next;
        if (!cur)
            break;
        if (!ok) {
            /* let the embedding in flight end before its batch is freed */
            if (cur->started) {
                pthread_join(cur->thread, NULL);
                cur->started = false;
            }
            break;
        }
    }
    if (cur && cur->started)
        pthread_join(cur->thread, NULL);
    reembed_batch_free(cur);
    return ok;
}

/* Backfills until a pass finds nothing left (--only-missing: rows added meanwhile come round
 * again; at most 20 passes), or once (s->single_pass). */
bool reembed_backfill(rstate *s)
{
    if (!reembed_stage_table(s))
        return false;
    s->prog = progress_start("re-embedding", s->res->plan.rows_to_embed, "rows");
    bool ok = true;
    for (int pass = 0; ok && pass < 20; pass++) {
        int64_t seen;
        ok = backfill_pass(s, &seen);
        if (!ok || seen == 0 || s->single_pass)
            break;
        if (pass > 0)
            log_info("reembed: %lld memories were added while the others were embedded: embedded too", (long long) seen);
    }
    if (ok)
        progress_finish(s->prog);
    else
        progress_stopped(s->prog);
    s->prog = NULL;
    return ok;
}

/* ---- the registry ------------------------------------------------------------------------ */

bool reembed_register_model(rstate *s)
{
    const reembed_model *m = &s->res->plan.new_model;
    char dim[16];
    snprintf(dim, sizeof dim, "%d", m->dimension);
    if (!pg_run(s->c, "UPDATE embedding_model SET active = false WHERE active AND name <> $1", 1,
                (const char *[]){m->name}) ||
        !pg_run(s->c,
                "INSERT INTO embedding_model (name, dimension, hash, active) VALUES ($1, $2::int, NULLIF($3, ''), true)"
                " ON CONFLICT (name) DO UPDATE SET dimension = EXCLUDED.dimension, hash = EXCLUDED.hash,"
                " active = true, created_at = now()",
                3, (const char *[]){m->name, dim, m->hash})) {
        reembed_fail_sql(s, "updating embedding_model");
        return false;
    }
    return true;
}

bool reembed_insert_state(rstate *s, const char *mode)
{
    const reembed_plan *p = &s->res->plan;
    char dim[16], odim[16];
    snprintf(dim, sizeof dim, "%d", p->new_model.dimension);
    snprintf(odim, sizeof odim, "%d", p->old_model.dimension);
    if (!pg_run(s->c,
                "INSERT INTO pgmemctl_reembed_state (mode, model, dimension, hash, old_model, old_dimension)"
                " VALUES ($1, $2, $3::int, $4, NULLIF($5, ''), NULLIF($6, '0')::int) ON CONFLICT DO NOTHING",
                6, (const char *[]){mode, p->new_model.name, dim, p->new_model.hash, p->old_model.name, odim})) {
        reembed_fail_sql(s, "recording the re-embed's target");
        return false;
    }
    s->have_state = true;
    return true;
}


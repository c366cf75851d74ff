/* reembed.c — re-encodes the store's memories under a new embedding model: planning, the
 * keyset backfill (embed, binary COPY into a temporary table, UPDATE … FROM), the shadow
 * column's swap and the in-place rewrite. The index build and its recall check live in
 * reembed_index.c. */
#include "reembed_int.h"
#include "log.h"
#include "sqlite_values.h"
#include "copy_binary.h"
#include "progress.h"
#include "reembed_index.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- reading the store ------------------------------------------------------------------- */

static bool read_registry(rstate *s)
{
    reembed_model *m = &s->res->plan.old_model;
    pg_result *r = pg_exec(s->c, "SELECT name, dimension, coalesce(hash, '') FROM embedding_model WHERE active", 0, NULL);
    if (!r) {
        reembed_fail_sql(s, "reading embedding_model");
        return false;
    }
    if (pg_ntuples(r) > 0) {
        m->present = true;
        snprintf(m->name, sizeof m->name, "%s", pg_value(r, 0, 0));
        m->dimension = atoi(pg_value(r, 0, 1));
        snprintf(m->hash, sizeof m->hash, "%s", pg_value(r, 0, 2));
    }
    pg_clear(r);
    return true;
}

static bool read_state(rstate *s)
{
    pg_result *r = pg_exec(s->c,
                           "SELECT mode, model, dimension, coalesce(hash, ''), phase, coalesce(last_id::text, '')"
                           " FROM pgmemctl_reembed_state",
                           0, NULL);
    if (!r) {
        reembed_fail_sql(s, "reading pgmemctl_reembed_state");
        return false;
    }
    bool ok = true;
    if (pg_ntuples(r) > 0) {
        const reembed_model *nm = &s->res->plan.new_model;
        const char *mode = s->req->mode == REEMBED_SHADOW ? "shadow" : "in-place";
        bool same = !strcmp(pg_value(r, 0, 0), mode) && !strcmp(pg_value(r, 0, 1), nm->name) &&
                    atoi(pg_value(r, 0, 2)) == nm->dimension && !strcmp(pg_value(r, 0, 3), nm->hash);
        if (s->req->only_missing || !same) {
            reembed_finish(s, REEMBED_REFUSED,
                   "an interrupted %s re-embed to %s (%s dimensions) is not finished: run it again with --model %s%s,"
                   " or undo it with `pgmemctl reembed --abort`",
                   pg_value(r, 0, 0), pg_value(r, 0, 1), pg_value(r, 0, 2), pg_value(r, 0, 1),
                   strcmp(pg_value(r, 0, 0), "shadow") ? " --mode in-place" : "");
            ok = false;
        } else {
            s->have_state = true;
            s->res->plan.resuming = true;
            snprintf(s->state_phase, sizeof s->state_phase, "%s", pg_value(r, 0, 4));
            snprintf(s->state_last_id, sizeof s->state_last_id, "%s", pg_value(r, 0, 5));
        }
    }
    pg_clear(r);
    return ok;
}

static bool count_plan(rstate *s)
{
    reembed_plan *p = &s->res->plan;
    if (!pg_query_int64(s->c, "SELECT count(*) FROM memories", 0, NULL, &p->rows_total)) {
        reembed_fail_sql(s, "counting memories");
        return false;
    }
    char sql[512];
    const char *after = s->keyset_start[0] ? s->keyset_start : ZERO_UUID;
    snprintf(sql, sizeof sql,
             "SELECT count(*), coalesce(sum(ceil(octet_length(content) / 4.0)), 0)::bigint FROM memories"
             " WHERE %s AND id > $1::uuid",
             s->req->only_missing ? "embedding IS NULL" : "true");
    pg_result *r = pg_exec(s->c, sql, 1, (const char *[]){after});
    if (!r) {
        reembed_fail_sql(s, "counting the rows to embed");
        return false;
    }
    p->rows_to_embed = atoll(pg_value(r, 0, 0));
    p->tokens_estimated = atoll(pg_value(r, 0, 1));
    pg_clear(r);
    /* past the backfill (in place) or the copy (shadow), only the index build and what follows are left */
    if (s->have_state && strcmp(s->state_phase, "backfill") != 0)
        p->rows_to_embed = p->tokens_estimated = 0;
    return true;
}

/* Seconds per row of the builtin embedder, measured on up to 200 of the store's texts; 0 for
 * HTTP embedders (nothing may be sent in a plan). */
static double sample_rate(rstate *s)
{
    if (strncmp(s->res->plan.new_model.name, "builtin:", 8) != 0)
        return 0;
    pg_result *r = pg_exec(s->c, "SELECT content FROM memories LIMIT 200", 0, NULL);
    if (!r)
        return 0;
    int n = pg_ntuples(r), dim = embed_dimension(s->emb);
    double per_row = 0;
    float *v = malloc((size_t) dim * sizeof *v);
    if (v && n > 0) {
        double t0 = progress_now();
        for (int i = 0; i < n; i++)
            embed_hash_text(pg_value(r, i, 0), (size_t) pg_getlength(r, i, 0), dim, v);
        per_row = (progress_now() - t0) / n;
    }
    free(v);
    pg_clear(r);
    return per_row;
}

static void make_backup_command(rstate *s)
{
    char date[16];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%d", &tm);
    snprintf(s->res->plan.backup_command, sizeof s->res->plan.backup_command,
             "pg_dump --dbname='%s' --format=custom --table=memories --table=embedding_model --table=scheduling"
             " --file=pgmemctl-before-reembed-%s.dump",
             s->req->display ? s->req->display : "", date);
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

/* ---- in place ---------------------------------------------------------------------------- */

/* The index to rebuild: what the state recorded when an earlier run dropped it, else the
 * current one's parameters. */
static bool in_place_index(rstate *s, reembed_index_info *ix)
{
    if (!reembed_index_params(s->c, ix, s->res->message, sizeof s->res->message)) {
        s->res->outcome = REEMBED_FAILED;
        return false;
    }
    pg_result *r = pg_exec(s->c,
                           "SELECT index_opclass, index_m, index_ef_construction FROM pgmemctl_reembed_state"
                           " WHERE index_opclass IS NOT NULL",
                           0, NULL);
    if (!r) {
        reembed_fail_sql(s, "reading pgmemctl_reembed_state");
        return false;
    }
    if (pg_ntuples(r) > 0 && s->have_state) {
        reembed_index_info saved = *ix;
        snprintf(saved.opclass, sizeof saved.opclass, "%s", pg_value(r, 0, 0));
        saved.m = atoi(pg_value(r, 0, 1));
        saved.ef_construction = atoi(pg_value(r, 0, 2));
        *ix = saved;
        if (!reembed_index_op(ix, s->res->message, sizeof s->res->message)) {
            s->res->outcome = REEMBED_FAILED;
            pg_clear(r);
            return false;
        }
    }
    pg_clear(r);
    return true;
}

static void run_in_place(rstate *s)
{
    reembed_index_info ix;
    if (!in_place_index(s, &ix))
        return;
    if (!s->have_state || !strcmp(s->state_phase, "backfill")) {
        char m[16], ef[16];
        snprintf(m, sizeof m, "%d", ix.m);
        snprintf(ef, sizeof ef, "%d", ix.ef_construction);
        /* the index goes first (updating it row by row is the slow part), then the typmod, so
         * vectors of the new dimension fit */
        if (!pg_begin(s->c) || !reembed_insert_state(s, "in-place") ||
            !pg_run(s->c,
                    "UPDATE pgmemctl_reembed_state SET index_opclass = coalesce(index_opclass, $1),"
                    " index_m = coalesce(index_m, $2::int), index_ef_construction = coalesce(index_ef_construction, $3::int)",
                    3, (const char *[]){ix.opclass, m, ef}) ||
            !pg_run(s->c, "DROP INDEX IF EXISTS idx_memories_embedding_hnsw", 0, NULL) ||
            !pg_run(s->c, "ALTER TABLE memories ALTER COLUMN embedding TYPE vector", 0, NULL) || !pg_commit(s->c)) {
            if (s->res->outcome != REEMBED_FAILED)
                reembed_fail_sql(s, "preparing memories.embedding");
            pg_rollback(s->c);
            return;
        }
        s->stage_rejected = true; /* a rejected row gets NULL, never its old model's vector */
        s->single_pass = true;
        snprintf(s->keyset_start, sizeof s->keyset_start, "%s", s->state_last_id);
        if (!reembed_backfill(s))
            return;
        char sql[256];
        snprintf(sql, sizeof sql, "ALTER TABLE memories ALTER COLUMN embedding TYPE vector(%d)",
                 s->res->plan.new_model.dimension);
        if (!pg_begin(s->c) || !pg_run(s->c, sql, 0, NULL) || !reembed_register_model(s) ||
            !pg_run(s->c, "UPDATE pgmemctl_reembed_state SET phase = 'index', updated_at = now()", 0, NULL) ||
            !pg_commit(s->c)) {
            if (s->res->outcome != REEMBED_FAILED)
                reembed_fail_sql(s, "setting the dimension of memories.embedding");
            pg_rollback(s->c);
            return;
        }
    }
    double t0 = progress_now();
    if (!reembed_build_index(s->c, &ix, "memories", "embedding", "idx_memories_embedding_hnsw", s->req->concurrent_index,
                             s->req->maintenance_work_mem, s->res->message, sizeof s->res->message)) {
        s->res->outcome = REEMBED_FAILED;
        return;
    }
    s->res->seconds_index = progress_now() - t0;
    s->res->index_built = true;
    if (!pg_run(s->c, "DELETE FROM pgmemctl_reembed_state", 0, NULL))
        reembed_fail_sql(s, "clearing pgmemctl_reembed_state");
}

/* ---- the run ----------------------------------------------------------------------------- */

static bool open_embedder(rstate *s)
{
    reembed_plan *p = &s->res->plan;
    const char *spec = s->req->model;
    if (s->req->only_missing && !spec) {
        if (!p->old_model.present) {
            reembed_finish(s, REEMBED_REFUSED, "--only-missing embeds with the registry's model, and embedding_model has none");
            return false;
        }
        spec = p->old_model.name;
    }
    if (!spec) {
        reembed_finish(s, REEMBED_REFUSED, "--model is required (e.g. builtin:hash-384, openai:text-embedding-3-small)");
        return false;
    }
    char err[512] = "";
    s->emb = embed_open_opts(spec, &s->req->eopt, err, sizeof err);
    if (!s->emb) {
        reembed_finish(s, REEMBED_REFUSED, "model %s: %s", spec, err);
        return false;
    }
    bool probed = embed_dimension(s->emb) == 0 && !s->req->dry_run;
    if (probed && !embed_probe(s->emb, err, sizeof err)) {
        reembed_finish(s, REEMBED_FAILED, "could not learn the dimension of %s: %s", spec, err);
        return false;
    }
    /* An HTTP embedder answers one request before anything is written, so a wrong key, URL or
     * model stops the run with the schema untouched (the probe already did when it ran). */
    if (embed_is_http(s->emb) && !s->req->dry_run && !probed) {
        static const char text[] = "pgmemctl dimension probe";
        const char *texts[] = {text};
        size_t lens[] = {sizeof text - 1};
        unsigned char st[1];
        float *v = malloc((size_t) embed_dimension(s->emb) * sizeof *v);
        bool ok = v && embed_batch_status(s->emb, texts, lens, 1, v, st, err, sizeof err);
        free(v);
        if (!ok) {
            reembed_finish(s, REEMBED_FAILED, "%s does not answer: %s", spec, err[0] ? err : "out of memory");
            return false;
        }
    }
    snprintf(p->new_model.name, sizeof p->new_model.name, "%s", embed_model_name(s->emb));
    p->new_model.dimension = embed_dimension(s->emb);
    snprintf(p->new_model.hash, sizeof p->new_model.hash, "%s", embed_model_hash(s->emb));
    p->new_model.present = true;
    return true;
}

/* The same model: name and dimension equal, and the fingerprints too when the registry has one
 * (`copy` registers a store's model by name and dimension only). a is the registry's. */
static bool same_model(const reembed_model *a, const reembed_model *b)
{
    return a->present && b->present && !strcmp(a->name, b->name) && a->dimension == b->dimension &&
           (!a->hash[0] || !strcmp(a->hash, b->hash));
}

static void run_locked(rstate *s)
{
    const reembed_request *req = s->req;
    reembed_plan *p = &s->res->plan;
    if (!read_registry(s) || !open_embedder(s))
        return;
    if (req->only_missing && !same_model(&p->old_model, &p->new_model)) {
        reembed_finish(s, REEMBED_REFUSED,
               "--only-missing embeds with the registry's model %s (%d dimensions); %s is another model: leave out"
               " --model, or re-embed everything without --only-missing",
               p->old_model.name, p->old_model.dimension, p->new_model.name);
        return;
    }
    if (!read_state(s))
        return;
    if (!req->only_missing && !s->have_state && same_model(&p->old_model, &p->new_model)) {
        reembed_finish(s, REEMBED_NOTHING, "nothing to do: the store already uses %s (%d dimensions, same fingerprint)",
               p->new_model.name, p->new_model.dimension);
        return;
    }
    bool shadow = !req->only_missing && req->mode == REEMBED_SHADOW;
    if (shadow && !reembed_shadow_prepare(s))
        return;
    if (!req->only_missing && req->mode == REEMBED_IN_PLACE)
        snprintf(s->keyset_start, sizeof s->keyset_start, "%s", s->state_last_id);
    if (!count_plan(s))
        return;
    double per_row = sample_rate(s);
    int per_request = req->batch_size < 2048 ? req->batch_size : 2048;
    bool http = strncmp(p->new_model.name, "builtin:", 8) != 0;
    double embed_s;
    if (http) {
        p->requests_estimated = (p->rows_to_embed + per_request - 1) / per_request;
        int conc = req->eopt.concurrency > 0 ? req->eopt.concurrency : 4;
        embed_s = (double) p->requests_estimated * 1.0 / conc;
    } else {
        embed_s = (double) p->rows_to_embed * per_row;
    }
    /* Writing overlaps embedding (the pipeline in backfill_pass), so the longer of the two.
     * Write rates measured by bench-reembed (100,000 memories, 2 cores): shadow mode's copy,
     * about 20,000 rows/s (and then the index builds, not counted here); --only-missing's update
     * is also inserted into the HNSW index on embedding, about 300 rows/s; in place, with that
     * index dropped, about 5,000 rows/s. */
    double rate = shadow ? 20000.0 : req->only_missing ? 300.0 : 5000.0;
    double write_s = (double) p->rows_to_embed / rate;
    p->seconds_estimated = embed_s > write_s ? embed_s : write_s;
    make_backup_command(s);
    if (req->dry_run) {
        reembed_finish(s, REEMBED_OK, "dry run: %lld of %lld memories would be embedded with %s, nothing written or sent",
               (long long) p->rows_to_embed, (long long) p->rows_total, p->new_model.name);
        return;
    }
    if (req->confirm && !req->confirm(p, req->confirm_arg)) {
        reembed_finish(s, REEMBED_DECLINED, "not confirmed: nothing was changed");
        return;
    }
    if (p->resuming)
        log_info("reembed: resuming the interrupted %s re-embed to %s", p->mode, p->new_model.name);
    if (req->only_missing) {
        if (!reembed_backfill(s))
            return;
    } else if (req->mode == REEMBED_SHADOW) {
        reembed_run_shadow(s);
    } else {
        run_in_place(s);
    }
    if (s->res->outcome == REEMBED_OK && s->res->rows_rejected > 0)
        reembed_finish(s, REEMBED_REJECTED, "%lld memories could not be embedded and have no vector (see rejects)",
               (long long) s->res->rows_rejected);
    else if (s->res->outcome == REEMBED_OK)
        reembed_finish(s, REEMBED_OK, "%lld memories embedded with %s (%d dimensions)%s", (long long) s->res->rows_updated,
               p->new_model.name, p->new_model.dimension,
               req->only_missing ? "" : "; embedding_model and idx_memories_embedding_hnsw updated");
}

void reembed_run(pg_conn *c, const reembed_request *req, reembed_result *res)
{
    memset(res, 0, sizeof *res);
    res->recall_at_10 = -1;
    res->plan.mode = req->only_missing ? "only-missing" : req->mode == REEMBED_SHADOW ? "shadow" : "in-place";
    rstate s = {.c = c, .req = req, .res = res};
    pgbuf_init(&s.buf);
    double t0 = progress_now();
    bool found;
    char *ready = pg_query_text(c, "SELECT to_regclass('pgmemctl_reembed_state') IS NOT NULL", 0, NULL, &found);
    bool have_schema = ready && !strcmp(ready, "t");
    free(ready);
    if (!found) {
        reembed_fail_sql(&s, "connecting");
        return;
    }
    if (!have_schema) {
        reembed_finish(&s, REEMBED_REFUSED, "this database has no pgmemctl schema at version 3 or later: run `pgmemctl migrate up`");
        return;
    }
    int holder = 0;
    int lk = req->dry_run ? 1 : pg_advisory_lock(c, REEMBED_LOCK_KEY, req->lock_timeout, &holder);
    if (lk < 0) {
        reembed_fail_sql(&s, "taking the re-embed lock");
    } else if (lk == 0) {
        reembed_finish(&s, REEMBED_FAILED, "another pgmemctl reembed is running on this database (pid %d): wait for it", holder);
    } else {
        run_locked(&s);
        if (!req->dry_run)
            pg_advisory_unlock(c, REEMBED_LOCK_KEY);
    }
    if (s.emb) {
        embed_get_stats(s.emb, &res->stats); /* the probe and check request included */
    }
    embed_close(s.emb);
    for (int i = 0; i < s.nrejected; i++)
        free(s.rejected[i]);
    free(s.rejected);
    pgbuf_free(&s.buf);
    res->seconds_total = progress_now() - t0;
}

void reembed_abort(pg_conn *c, const reembed_request *req, reembed_result *res)
{
    memset(res, 0, sizeof *res);
    res->recall_at_10 = -1;
    res->plan.mode = "abort";
    rstate s = {.c = c, .req = req, .res = res};
    int holder = 0;
    int lk = pg_advisory_lock(c, REEMBED_LOCK_KEY, req->lock_timeout, &holder);
    if (lk < 0) {
        reembed_fail_sql(&s, "taking the re-embed lock");
        return;
    }
    if (lk == 0) {
        reembed_finish(&s, REEMBED_FAILED, "another pgmemctl reembed is running on this database (pid %d)", holder);
        return;
    }
    bool found;
    char *mode = pg_query_text(c, "SELECT mode FROM pgmemctl_reembed_state", 0, NULL, &found);
    if (!found) {
        if (pg_errmsg(c)[0])
            reembed_fail_sql(&s, "reading pgmemctl_reembed_state");
        else
            reembed_finish(&s, REEMBED_NOTHING, "nothing to undo: no re-embed was interrupted");
        free(mode);
        pg_advisory_unlock(c, REEMBED_LOCK_KEY);
        return;
    }
    bool in_place = !strcmp(mode, "in-place");
    free(mode);
    if (in_place) {
        reembed_finish(&s, REEMBED_REFUSED,
               "the interrupted re-embed is in-place: the old vectors are already overwritten, so it cannot be"
               " undone; run it again to finish it");
        pg_advisory_unlock(c, REEMBED_LOCK_KEY);
        return;
    }
    if (reembed_shadow_abort(&s))
        reembed_finish(&s, REEMBED_OK,
                       "the interrupted shadow re-embed was undone: its copy of memories is dropped; memories is untouched");
    pg_advisory_unlock(c, REEMBED_LOCK_KEY);
}

void reembed_result_free(reembed_result *res)
{
    cJSON_Delete(res->rejects);
    res->rejects = NULL;
}

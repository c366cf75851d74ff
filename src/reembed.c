/* reembed.c — re-encodes the store's memories under a new embedding model: the plan, the run
 * under the re-embed lock, in-place mode, --abort. The embedding pipeline is in
 * reembed_pipeline.c, shadow mode in reembed_shadow.c, the index build and its recall check in
 * reembed_index.c. */
#include "reembed_int.h"
#include "log.h"
#include "progress.h"
#include "reembed_index.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ZERO_UUID REEMBED_ZERO_UUID

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

/* copy.c — drives `pgmemctl copy`: source inspection, registry and typmod, write-path choice,
 * the connections and rowid ranges of the parallel streams (copy_stream.c does one range), the
 * node phase before the edge phase, index drop/rebuild, ANALYZE and the parity check. */
#include "copy.h"
#include "copy_int.h"
#include "copy_map.h"
#include "copy_parity.h"
#include "log.h"
#include "progress.h"
#include "sqlite_src.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Session advisory lock: one copy at a time per database ("pgmemcpy"). */
#define COPY_LOCK_KEY INT64_C(0x70676d656d637079)

static const char *VESTIGE_TABLES[] = {"knowledge_nodes", "node_embeddings", "fsrs_cards", "memory_connections",
                                       "knowledge_edges"};

void copy_fail(copy_shared *sh, copy_outcome o, const char *fmt, ...)
{
    char msg[sizeof sh->res->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&sh->mu);
    bool first = !sh->failed;
    if (first) {
        snprintf(sh->res->message, sizeof sh->res->message, "%s", msg);
        sh->res->outcome = o;
    }
    sh->failed = sh->stop = true;
    pthread_cond_broadcast(&sh->changed);
    pthread_mutex_unlock(&sh->mu);
    log_error("%s", msg);
}

void copy_pg_fail(copy_shared *sh, pg_conn *c, const char *what)
{
    char err[512];
    copy_fail(sh, COPY_FAILED, "%s: %s", what, pg_error_text(c, err, sizeof err));
}

/* ---- rejected nodes ------------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/* Adds the nodes earlier runs of this store skipped (real runs: this run's too, they are
 * committed), then sorts the set for the edge phase. */
static bool load_rejected_nodes(copy_shared *sh, pg_conn *c)
{
    if (!sh->req->dry_run || sh->res->rejects_previous > 0) {
        pg_result *r = pg_exec(c,
                               "SELECT source_rowid FROM pgmemctl_copy_rejects WHERE source_id = $1"
                               " AND source_table = 'knowledge_nodes' AND action = 'row_skipped'",
                               1, (const char *[]){sh->res->source_id});
        if (!r) {
            copy_pg_fail(sh, c, "reading pgmemctl_copy_rejects");
            return false;
        }
        size_t need = sh->nrej_nodes + (size_t) pg_ntuples(r);
        if (need > sh->caprej_nodes) {
            int64_t *n = realloc(sh->rej_nodes, (need ? need : 1) * sizeof *n);
            if (!n) {
                pg_clear(r);
                copy_fail(sh, COPY_FAILED, "out of memory");
                return false;
            }
            sh->rej_nodes = n;
            sh->caprej_nodes = need;
        }
        for (int i = 0; i < pg_ntuples(r); i++)
            sh->rej_nodes[sh->nrej_nodes++] = strtoll(pg_value(r, i, 0), NULL, 10);
        pg_clear(r);
    }
    if (sh->nrej_nodes > 1)
        qsort(sh->rej_nodes, sh->nrej_nodes, sizeof *sh->rej_nodes, cmp_i64);
    return true;
}

/* ---- the streams ---------------------------------------------------------------------------- */

static bool unfinished(const copy_range *r) { return r->end == COPY_RANGE_OPEN || r->read_from < r->end; }

static void *worker_main(void *arg)
{
    copy_worker *w = arg;
    copy_shared *sh = w->sh;
    for (;;) {
        copy_range *r = NULL;
        pthread_mutex_lock(&sh->mu);
        while (!r && !sh->stop && sh->next_range < sh->nranges) {
            copy_range *c = &sh->ranges[sh->next_range++];
            if (unfinished(c))
                r = c;
        }
        pthread_mutex_unlock(&sh->mu);
        if (!r || !copy_stream_range(w, r))
            break;
    }
    pthread_mutex_lock(&sh->mu);
    sh->running--;
    pthread_cond_broadcast(&sh->changed);
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

/* Copies every unfinished range of ranges[0..n) with up to nw workers, one range per worker at
 * a time, while this thread draws the progress line. total: rows to read (progress). */
static bool run_phase(copy_shared *sh, copy_worker *ws, int nw, copy_range *ranges, int n, const char *label,
                      int64_t total)
{
    int nwork = 0;
    for (int i = 0; i < n; i++)
        nwork += unfinished(&ranges[i]);
    pthread_mutex_lock(&sh->mu);
    sh->ranges = ranges;
    sh->nranges = n;
    sh->next_range = 0;
    sh->committed_rows = 0;
    sh->running = 0;
    pthread_mutex_unlock(&sh->mu);
    progress *pr = progress_start(label, total, "rows");
    int started = 0;
    for (int i = 0; i < nw && i < nwork; i++) {
        pthread_mutex_lock(&sh->mu);
        sh->running++;
        pthread_mutex_unlock(&sh->mu);
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            pthread_mutex_lock(&sh->mu);
            sh->running--;
            pthread_mutex_unlock(&sh->mu);
            copy_fail(sh, COPY_FAILED, "could not start copy stream %d", i + 1);
            break;
        }
        started++;
    }
    pthread_mutex_lock(&sh->mu);
    while (sh->running > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sh->changed, &sh->mu, &ts);
        int64_t done = sh->committed_rows;
        pthread_mutex_unlock(&sh->mu);
        progress_update(pr, done);
        pthread_mutex_lock(&sh->mu);
    }
    bool ok = !sh->failed;
    int64_t done = sh->committed_rows;
    sh->ranges = NULL;
    sh->nranges = 0;
    pthread_mutex_unlock(&sh->mu);
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    progress_update(pr, done);
    if (ok)
        progress_finish(pr);
    else
        progress_stopped(pr);
    return ok;
}

/* Source rows the unfinished ranges will read. */
static int64_t rows_to_read(sqlite_src *src, const copy_range *r, int n)
{
    if (n == 0)
        return 0;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE rowid > ?1 AND rowid <= ?2", r[0].table);
    sqlite3_stmt *st = sqlite_src_prepare(src, sql);
    int64_t total = 0;
    for (int i = 0; st && i < n; i++) {
        if (!unfinished(&r[i]))
            continue;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, r[i].read_from);
        sqlite3_bind_int64(st, 2, r[i].end);
        if (sqlite3_step(st) == SQLITE_ROW)
            total += sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return total;
}

/* The lowest rowid a range is read after, for the JSON's resumed_after_rowid. */
static int64_t first_read(const copy_range *r, int n)
{
    int64_t first = COPY_RANGE_OPEN;
    for (int i = 0; i < n; i++)
        if (unfinished(&r[i]) && r[i].read_from < first)
            first = r[i].read_from;
    return first == COPY_RANGE_OPEN ? 0 : first;
}

/* knowledge_nodes in ranges, every one committed before any edge is read. *last: the highest
 * checkpoint afterwards. */
static bool copy_nodes(copy_shared *sh, copy_worker *ws, int nw, sqlite_src *src, int64_t *last)
{
    copy_result *res = sh->res;
    copy_range *r = NULL;
    int n = 0;
    if (!copy_ranges_plan(sh, ws[0].c, src, "knowledge_nodes", nw, !sh->req->dry_run, sh->req->verify_existing, &r,
                          &n))
        return false;
    res->nodes.resumed_after = first_read(r, n);
    res->nodes.ranges = n;
    int64_t total = rows_to_read(src, r, n);
    if (res->nodes.resumed_after > 0 || n > 1)
        log_info("memories: %" PRId64 " copied by earlier runs; %" PRId64 " rows to read in %d range%s, from rowid %" PRId64
                 " on",
                 res->nodes.copied_before, total, n, n == 1 ? "" : "s", res->nodes.resumed_after);
    bool ok = run_phase(sh, ws, nw, r, n, "memories", total);
    *last = copy_ranges_last(r, n);
    free(r);
    return ok && load_rejected_nodes(sh, ws[0].c);
}

/* memory_connections and knowledge_edges, both tables' ranges in one work list. last[0..1]:
 * their highest checkpoints afterwards. */
static bool copy_edges(copy_shared *sh, copy_worker *ws, int nw, sqlite_src *src, int64_t last[2])
{
    static const char *T[2] = {"memory_connections", "knowledge_edges"};
    copy_table_stats *ts[2] = {&sh->res->mc, &sh->res->ke};
    copy_range *all = NULL;
    int nall = 0, nt[2] = {0, 0};
    int64_t total = 0;
    bool ok = true;
    for (int t = 0; ok && t < 2; t++) {
        if (!sqlite_src_has_table(src, T[t]))
            continue;
        edge_query q;
        ok = edge_query_build(src, T[t], &q);
        edge_query_free(&q);
        if (!ok) {
            copy_fail(sh, COPY_FAILED, "%s: cannot read %s", src->path, T[t]);
            break;
        }
        copy_range *r;
        int n;
        ok = copy_ranges_plan(sh, ws[0].c, src, T[t], nw, !sh->req->dry_run, sh->req->verify_existing, &r, &n);
        if (!ok)
            break;
        ts[t]->resumed_after = first_read(r, n);
        ts[t]->ranges = n;
        total += rows_to_read(src, r, n);
        copy_range *na = realloc(all, (size_t) (nall + n) * sizeof *na);
        if (!na) {
            free(r);
            copy_fail(sh, COPY_FAILED, "out of memory");
            ok = false;
            break;
        }
        all = na;
        memcpy(all + nall, r, (size_t) n * sizeof *r);
        nall += n;
        nt[t] = n;
        free(r);
    }
    if (ok && nall)
        ok = run_phase(sh, ws, nw, all, nall, "edges", total);
    last[0] = ok ? copy_ranges_last(all, nt[0]) : 0;
    last[1] = ok && nt[1] ? copy_ranges_last(all + nt[0], nt[1]) : 0;
    free(all);
    return ok;
}

/* ---- connections ---------------------------------------------------------------------------- */

/* Refuses (before anything is written) more streams than the server has free connections for:
 * max_connections less the reserved slots and the backends already connected, and (for roles
 * that are not superusers, as PostgreSQL's own check in InitPostgres) the role's and the
 * database's connection limits. extra: connections needed beyond the caller's. */
static bool check_free_connections(copy_shared *sh, pg_conn *c, int extra)
{
    pg_result *r = pg_exec(
        c,
        "SELECT current_setting('max_connections')::int"
        " - CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN 0"
        "   ELSE current_setting('superuser_reserved_connections')::int"
        "        + coalesce(current_setting('reserved_connections', true)::int, 0) END"
        " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
        " (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user),"
        " (SELECT count(*) FROM pg_stat_activity WHERE usename = current_user AND backend_type = 'client backend'),"
        " (SELECT datconnlimit FROM pg_database WHERE datname = current_database()),"
        " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        "  AND backend_type = 'client backend'),"
        " current_setting('max_connections')::int,"
        " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)::int",
        0, NULL);
    if (!r) {
        copy_pg_fail(sh, c, "checking the server's free connections");
        return false;
    }
    int64_t v[7];
    for (int i = 0; i < 7; i++)
        v[i] = strtoll(pg_value(r, 0, i), NULL, 10);
    pg_clear(r);
    bool super = v[6] != 0; /* superusers are not held to the role's or the database's limit */
    int64_t free_server = v[0], free_role = v[1] < 0 || super ? INT64_MAX : v[1] - v[2],
            free_db = v[3] < 0 || super ? INT64_MAX : v[3] - v[4];
    const char *what = NULL;
    int64_t have = free_server;
    if (free_role < have) {
        have = free_role;
        what = "the role's connection limit (rolconnlimit)";
    }
    if (free_db < have) {
        have = free_db;
        what = "the database's connection limit (datconnlimit)";
    }
    if (extra <= have)
        return true;
    if (!what)
        copy_fail(sh, COPY_REFUSED,
                  "--jobs %d needs %d more connections but the server has %" PRId64 " free (max_connections %" PRId64
                  ", less reserved slots and the sessions already connected): use --jobs %" PRId64 " or fewer",
                  extra + 1, extra, have < 0 ? 0 : have, v[5], have + 1 > 1 ? have + 1 : 1);
    else
        copy_fail(sh, COPY_REFUSED,
                  "--jobs %d needs %d more connections but %s leaves %" PRId64 " free: use --jobs %" PRId64 " or fewer",
                  extra + 1, extra, what, have < 0 ? 0 : have, have + 1 > 1 ? have + 1 : 1);
    return false;
}

/* The streams' connections beyond the first (the caller's), opened before anything is written.
 * A connection that cannot be opened refuses the run. */
static bool open_workers(copy_shared *sh, copy_worker *ws, int n, pg_conn *c)
{
    ws[0] = (copy_worker){.sh = sh, .c = c, .index = 0, .staging = sh->staging};
    for (int i = 1; i < n; i++) {
        ws[i] = (copy_worker){.sh = sh, .index = i, .staging = sh->staging};
        ws[i].c = pg_connect(sh->req->conninfo, "pgmemctl copy", sh->req->wait_seconds);
        if (!ws[i].c) {
            copy_fail(sh, COPY_REFUSED, "could not open connection %d of --jobs %d: %s", i + 1, n, log_last_error());
            return false;
        }
    }
    return true;
}

/* fsrs_cards / node_embeddings rows whose node does not exist. */
static bool copy_orphans(copy_shared *sh, pg_conn *c, sqlite_src *src)
{
    pending_list pend = {0};
    static const struct { const char *table, *col; } T[] = {{"fsrs_cards", "memory_id"}, {"node_embeddings", "node_id"}};
    for (size_t t = 0; t < sizeof T / sizeof T[0]; t++) {
        if (!sqlite_src_has_table(src, T[t].table))
            continue;
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT x.rowid, x.%s FROM %s x WHERE NOT EXISTS (SELECT 1 FROM knowledge_nodes n WHERE n.id = x.%s)",
                 T[t].col, T[t].table, T[t].col);
        sqlite3_stmt *st = sqlite_src_prepare(src, sql);
        if (!st)
            return false;
        pend.n = 0;
        bool ok = true;
        while (sqlite3_step(st) == SQLITE_ROW) {
            map_reject r = {.action = "orphan_skipped"};
            snprintf(r.field, sizeof r.field, "%s", T[t].col);
            snprintf(r.reason, sizeof r.reason, "no knowledge_nodes row has this id");
            const unsigned char *k = sqlite3_column_text(st, 1);
            ok = ok && pending_add(&pend, T[t].table, sqlite3_column_int64(st, 0), k ? (const char *) k : "(null)", &r);
        }
        sqlite3_finalize(st);
        if (!ok) {
            copy_fail(sh, COPY_FAILED, "out of memory");
            free(pend.v);
            return false;
        }
        if (pend.n == 0)
            continue;
        if (!sh->req->dry_run && (!pg_begin(c) || !copy_record_rejects(sh, c, &pend) || !pg_commit(c))) {
            copy_pg_fail(sh, c, "recording orphan rows");
            pg_rollback(c);
            free(pend.v);
            return false;
        }
        pthread_mutex_lock(&sh->mu);
        copy_publish_rejects(sh, &pend);
        pthread_mutex_unlock(&sh->mu);
    }
    free(pend.v);
    return true;
}

/* ---- setup ---------------------------------------------------------------------------------- */

static bool inspect_source(copy_shared *sh, sqlite_src *src)
{
    copy_result *res = sh->res;
    char **tables = NULL;
    int nt = sqlite_src_tables(src, &tables);
    if (nt < 0) {
        copy_fail(sh, COPY_REFUSED, "%s: cannot list tables", src->path);
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
        if (sqlite_src_has_table(src, VESTIGE_TABLES[k]))
            continue;
        if (k == 0) {
            copy_fail(sh, COPY_REFUSED, "%s: no knowledge_nodes table: not a vestige memory store", src->path);
            return false;
        }
        cJSON_AddItemToArray(res->tables_missing, cJSON_CreateString(VESTIGE_TABLES[k]));
        log_info("note: %s has no %s table (an older vestige version): skipped", src->path, VESTIGE_TABLES[k]);
    }
    if (!node_query_build(src, &sh->nq)) {
        copy_fail(sh, COPY_REFUSED, "%s: knowledge_nodes does not have vestige's columns", src->path);
        return false;
    }
    if (!sqlite_src_identity(src, res->source_id)) {
        copy_fail(sh, COPY_FAILED, "%s: could not compute the store's identity", src->path);
        return false;
    }
    if (sh->nq.has_embeddings) { /* the store's model: the most common well-formed (model, dimension) */
        sqlite3_stmt *st = sqlite_src_prepare(
            src, "SELECT model, dimensions FROM node_embeddings WHERE typeof(embedding) = 'blob'"
                     " AND length(embedding) = 4 * dimensions AND dimensions BETWEEN 1 AND 16000"
                     " GROUP BY model, dimensions ORDER BY count(*) DESC, model LIMIT 1");
        if (!st) {
            copy_fail(sh, COPY_REFUSED, "%s: node_embeddings does not have vestige's columns", src->path);
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

/* The memory-store schema, with pgmemctl_copy_progress's identity columns (migration 0005). */
static bool check_schema(copy_shared *sh, pg_conn *c)
{
    bool found;
    char *ok = pg_query_text(c,
                             "SELECT CASE WHEN to_regclass('memories') IS NULL OR to_regclass('embedding_model') IS NULL"
                             " OR to_regclass('pgmemctl_copy_progress') IS NULL"
                             " OR to_regclass('pgmemctl_copy_rejects') IS NULL THEN 'none'"
                             " WHEN NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('pgmemctl_copy_progress')"
                             "  AND attname = 'fingerprint' AND NOT attisdropped) THEN 'old' ELSE 'ok' END",
                             0, NULL, &found);
    bool schema = found && !strcmp(ok, "ok"), old = found && !strcmp(ok, "old");
    free(ok);
    if (old)
        copy_fail(sh, COPY_REFUSED,
                  "the target %s holds an older memory-store schema (pgmemctl_copy_progress has no fingerprint column,"
                  " migration 0005): run `pgmemctl migrate up` first",
                  pg_display(c));
    else if (!schema)
        copy_fail(sh, COPY_REFUSED, "the target %s does not hold the memory-store schema: run `pgmemctl migrate up` first",
                  pg_display(c));
    return schema;
}

/* Registry and typmod: refuse a mismatch before writing. *stamp: the model is to be registered
 * (stamp_registry), with typmod the column's current one. */
static bool check_registry(copy_shared *sh, pg_conn *c, bool *stamp, int *typmod_out)
{
    copy_result *res = sh->res;
    *stamp = false;
    pg_result *r = pg_exec(c,
                           "SELECT (SELECT name FROM embedding_model WHERE active),"
                           " (SELECT dimension FROM embedding_model WHERE active),"
                           " (SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memories'::regclass"
                           "  AND attname = 'embedding')",
                           0, NULL);
    if (!r) {
        copy_pg_fail(sh, c, "reading the embedding_model registry");
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
        copy_fail(sh, COPY_REFUSED,
             "the target's vectors come from model \"%s\" (%d dimensions) but this store's come from \"%s\" "
             "(%d dimensions): mixing them would make search meaningless. Copy into an empty store, or re-embed "
             "(pgmemctl reembed) one side so both use the same model",
             reg_name, reg_dim, res->model, res->dimension);
        return false;
    } else if (!has_reg && typmod > 0 && typmod != res->dimension) {
        copy_fail(sh, COPY_REFUSED, "memories.embedding is vector(%d) but this store's vectors have %d dimensions", typmod,
             res->dimension);
        return false;
    } else if (!has_reg && !sh->req->dry_run) {
        *stamp = true;
        *typmod_out = typmod;
    }
    sh->ctx.model = res->model[0] ? res->model : NULL;
    sh->ctx.dim = res->dimension;
    return true;
}

/* Registers the store's model and stamps the column's dimension (after every check passed). */
static bool stamp_registry(copy_shared *sh, pg_conn *c, int typmod)
{
    copy_result *res = sh->res;
    char dim[16];
    snprintf(dim, sizeof dim, "%d", res->dimension);
    char alter[96];
    snprintf(alter, sizeof alter, "ALTER TABLE memories ALTER COLUMN embedding TYPE vector(%d)", res->dimension);
    if (!pg_begin(c) ||
        !pg_run(c, "INSERT INTO embedding_model (name, dimension, hash, active) VALUES ($1, $2, NULL, true)", 2,
                (const char *[]){res->model, dim}) ||
        (typmod <= 0 && !pg_run(c, alter, 0, NULL)) || !pg_commit(c)) {
        copy_pg_fail(sh, c, "registering the embedding model");
        pg_rollback(c);
        return false;
    }
    res->registry_stamped = true;
    log_info("registered embedding model \"%s\" (%d dimensions)%s", res->model, res->dimension,
             typmod <= 0 ? " and stamped memories.embedding" : "");
    return true;
}

/* Checkpoints of this source and the write path. */
static bool plan_writes(copy_shared *sh, pg_conn *c, int64_t *target_memories)
{
    copy_result *res = sh->res;
    pg_result *r = pg_exec(c,
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
        copy_pg_fail(sh, c, "reading pgmemctl_copy_progress");
        return false;
    }
    int64_t v[12];
    for (int i = 0; i < 12; i++)
        v[i] = strtoll(pg_value(r, 0, i), NULL, 10);
    pg_clear(r);
    res->rejects_previous = v[9];
    *target_memories = v[6];
    if (!sh->req->verify_existing) {
        res->nodes.copied_before = v[3];
        res->mc.copied_before = v[10];
        res->ke.copied_before = v[11];
    }
    if (sh->req->verify_existing) {
        sh->staging = true;
        res->write_path = "staging";
        snprintf(res->write_path_reason, sizeof res->write_path_reason,
                 "--verify-existing: the whole source is re-read and every key checked against the target");
        return true; /* and from rowid 0 */
    }
    if (v[6] == v[3] && v[7] == v[4] && v[8] == v[5]) {
        res->write_path = "direct";
        snprintf(res->write_path_reason, sizeof res->write_path_reason,
                 v[6] == 0 ? "the target is empty" : "the target holds only rows earlier runs of this store copied");
    } else {
        sh->staging = true;
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
static bool drop_hnsw(copy_shared *sh, pg_conn *c)
{
    pg_result *r = pg_exec(c,
                           "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
                           " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
                           " WHERE i.indrelid = 'memories'::regclass AND a.amname = 'hnsw'",
                           0, NULL);
    if (!r) {
        copy_pg_fail(sh, c, "listing HNSW indexes");
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < pg_ntuples(r); i++) {
        const char *name = pg_value(r, i, 0), *def = pg_value(r, i, 1);
        char *drop = malloc(strlen(name) + 16);
        ok = drop != NULL;
        if (ok)
            sprintf(drop, "DROP INDEX %s", name); /* regclass text is already quoted */
        ok = ok && pg_begin(c) &&
             pg_run(c,
                    "INSERT INTO pgmemctl_copy_index_rebuilds (index_name, definition) VALUES ($1, $2)"
                    " ON CONFLICT (index_name) DO UPDATE SET definition = EXCLUDED.definition",
                    2, (const char *[]){name, def}) &&
             pg_run(c, drop, 0, NULL) && pg_commit(c);
        free(drop);
        if (!ok) {
            copy_pg_fail(sh, c, "dropping the HNSW index for the load");
            pg_rollback(c);
        } else {
            log_info("dropped %s for the load (rebuilt afterwards)", name);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "index", name);
            cJSON_AddStringToObject(o, "action", "dropped_for_load");
            cJSON_AddItemToArray(sh->res->indexes, o);
        }
    }
    pg_clear(r);
    return ok;
}

static bool rebuild_indexes(copy_shared *sh, pg_conn *c)
{
    double t0 = progress_now();
    char workers[96];
    snprintf(workers, sizeof workers, "SET max_parallel_maintenance_workers = %d", sh->req->parallel_workers);
    if (!pg_run(c, "SELECT set_config('maintenance_work_mem', $1, false)", 1,
                (const char *[]){sh->req->maintenance_work_mem}) ||
        !pg_run(c, workers, 0, NULL)) {
        copy_pg_fail(sh, c, "setting maintenance_work_mem / max_parallel_maintenance_workers for the index build");
        return false;
    }
    pg_result *r = pg_exec(c, "SELECT index_name, definition FROM pgmemctl_copy_index_rebuilds ORDER BY index_name",
                           0, NULL);
    if (!r) {
        copy_pg_fail(sh, c, "reading pgmemctl_copy_index_rebuilds");
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
        char *exists = pg_query_text(c, "SELECT to_regclass($1) IS NOT NULL", 1, (const char *[]){name}, &found);
        bool have = found && !strcmp(exists, "t");
        free(exists);
        ok = pg_begin(c) && (have || pg_run(c, pg_value(r, i, 1), 0, NULL)) &&
             pg_run(c, "DELETE FROM pgmemctl_copy_index_rebuilds WHERE index_name = $1", 1,
                    (const char *[]){name}) &&
             pg_commit(c);
        if (!ok) {
            copy_pg_fail(sh, c, "rebuilding the index dropped for the load (the record is kept; a re-run retries)");
            pg_rollback(c);
            break;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "index", name);
        cJSON_AddStringToObject(o, "action", "rebuilt");
        cJSON_AddNumberToObject(o, "seconds", (double) (int64_t) ((progress_now() - t1) * 1000) / 1000.0);
        cJSON_AddItemToArray(sh->res->indexes, o);
        log_info("built %s in %.1f s", name, progress_now() - t1);
    }
    pg_clear(r);
    if (ok) { /* the schema's own HNSW index, deferred until the column had a dimension */
        bool found;
        char *fn = pg_query_text(c, "SELECT to_regprocedure('pgmemctl_ensure_hnsw()') IS NOT NULL", 0, NULL, &found);
        bool have_fn = found && !strcmp(fn, "t");
        free(fn);
        double t1 = progress_now();
        char *built = have_fn ? pg_query_text(c, "SELECT pgmemctl_ensure_hnsw()", 0, NULL, &found) : NULL;
        if (have_fn && !found) {
            copy_pg_fail(sh, c, "building idx_memories_embedding_hnsw");
            ok = false;
        } else if (built && !strcmp(built, "t")) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "index", "idx_memories_embedding_hnsw");
            cJSON_AddStringToObject(o, "action", "created");
            cJSON_AddNumberToObject(o, "seconds", (double) (int64_t) ((progress_now() - t1) * 1000) / 1000.0);
            cJSON_AddItemToArray(sh->res->indexes, o);
            log_info("built idx_memories_embedding_hnsw in %.1f s", progress_now() - t1);
        }
        free(built);
    }
    pg_run(c, "RESET maintenance_work_mem", 0, NULL);
    pg_run(c, "RESET max_parallel_maintenance_workers", 0, NULL);
    sh->res->seconds_index = progress_now() - t0;
    return ok;
}

/* ---- entry ---------------------------------------------------------------------------------- */

void copy_run(pg_conn *c, const copy_request *req, copy_result *res)
{
    memset(res, 0, sizeof *res);
    res->outcome = COPY_OK;
    res->write_path = req->dry_run ? "none" : "direct";
    res->jobs = req->jobs;
    res->tables_ignored = cJSON_CreateArray();
    res->identity = cJSON_CreateArray();
    res->tables_missing = cJSON_CreateArray();
    res->rejects = cJSON_CreateArray();
    res->indexes = cJSON_CreateArray();
    res->parity_mismatches = cJSON_CreateArray();
    copy_shared sh = {.req = req, .res = res};
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.changed, NULL);
    sh.ctx.epoch = req->epoch;
    sqlite_src src = {0};
    int jobs = req->jobs > 0 ? req->jobs : 1;
    copy_worker *ws = calloc((size_t) jobs, sizeof *ws);
    int nws = 0;
    double t0 = progress_now();
    bool locked = false;

    if (!ws) {
        copy_fail(&sh, COPY_FAILED, "out of memory");
        goto out;
    }
    if (!sqlite_src_open(&src, req->from)) {
        copy_fail(&sh, COPY_REFUSED, "%s: cannot read the source store", req->from);
        goto out;
    }
    sh.source_path = src.path;
    snprintf(res->source_path, sizeof res->source_path, "%s", src.path);
    if (!inspect_source(&sh, &src))
        goto out;
    if (jobs > 1 && !check_free_connections(&sh, c, jobs - 1))
        goto out;
    if (!req->dry_run) {
        int holder = 0;
        int got = pg_advisory_lock(c, COPY_LOCK_KEY, 0, &holder);
        if (got == 0) {
            copy_fail(&sh, COPY_FAILED, "another pgmemctl copy is running on this database (backend pid %d)", holder);
            goto out;
        }
        if (got < 0) {
            copy_pg_fail(&sh, c, "could not take the copy lock");
            goto out;
        }
        locked = true;
    }
    bool stamp = false;
    int typmod = -1;
    if (!check_schema(&sh, c) || !check_registry(&sh, c, &stamp, &typmod))
        goto out;
    double ti = progress_now();
    bool same_store = copy_identity_check(&sh, c, &src);
    res->seconds_identity = progress_now() - ti;
    if (!same_store)
        goto out;
    /* every check passed: from here on the run writes */
    if ((stamp && !stamp_registry(&sh, c, typmod)) || !copy_identity_record(&sh, c))
        goto out;
    int64_t target_memories = 0;
    if (!plan_writes(&sh, c, &target_memories))
        goto out;
    nws = jobs;
    if (!open_workers(&sh, ws, jobs, c))
        goto out;
    if (req->dry_run) { /* say which path a real run would take */
        char why[sizeof res->write_path_reason + 64];
        snprintf(why, sizeof why, "dry run; a real run would take the %s path: %s", res->write_path,
                 res->write_path_reason);
        snprintf(res->write_path_reason, sizeof res->write_path_reason, "%.*s",
                 (int) sizeof res->write_path_reason - 1, why);
        res->write_path = "none";
    }
    log_info("%s %s → %s (%s path: %s; %d stream%s)", req->dry_run ? "reading" : "copying", src.path, pg_display(c),
             res->write_path, res->write_path_reason, jobs, jobs == 1 ? "" : "s");
    if (!req->dry_run && target_memories == 0 && !drop_hnsw(&sh, c))
        goto out;

    double td = progress_now();
    int64_t last[3] = {0, 0, 0};
    if (!copy_nodes(&sh, ws, jobs, &src, &last[0]))
        goto out;
    sh.nodes_done = last[0];
    if (!copy_edges(&sh, ws, jobs, &src, last + 1))
        goto out;
    if (!copy_orphans(&sh, c, &src))
        goto out;
    res->seconds_data = progress_now() - td;

    if (!req->dry_run) {
        if (!rebuild_indexes(&sh, c))
            goto out;
        double ta = progress_now();
        bool changed = res->nodes.copied + res->sched_copied + res->mc.copied + res->ke.copied > 0 ||
                       cJSON_GetArraySize(res->indexes) > 0;
        if (changed && !pg_run(c, "ANALYZE memories, scheduling, edges", 0, NULL)) {
            copy_pg_fail(&sh, c, "ANALYZE");
            goto out;
        }
        res->seconds_analyze = progress_now() - ta;
        double tp = progress_now();
        res->parity_ran = true;
        if (!copy_parity(c, &src, &sh.nq, &sh.ctx, res->source_id, last, res)) {
            copy_fail(&sh, COPY_FAILED, "the parity check could not run");
            goto out;
        }
        res->seconds_parity = progress_now() - tp;
        if (!res->parity_ok) {
            copy_fail(&sh, COPY_FAILED,
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
    for (int i = 1; i < nws; i++)
        pg_close(ws[i].c);
    free(ws);
    res->seconds_total = progress_now() - t0;
    free(sh.rej_nodes);
    free(sh.fix);
    node_query_free(&sh.nq);
    sqlite_src_close(&src);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.changed);
}

void copy_result_free(copy_result *res)
{
    cJSON_Delete(res->tables_ignored);
    cJSON_Delete(res->identity);
    cJSON_Delete(res->tables_missing);
    cJSON_Delete(res->rejects);
    cJSON_Delete(res->indexes);
    cJSON_Delete(res->parity_mismatches);
    memset(res, 0, sizeof *res);
}

/* bench_query.c — the measurements of pgmemctl bench: the target's query set, timed passes of
 * each query kind per ef_search with recall against exact search, and QPS with several
 * connections driven asynchronously from one thread. */
#include "bench_int.h"
#include "bench_stats.h"
#include "log.h"
#include "migrations_gen.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

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

const char *bench_kind_name(bench_kind k)
{
    static const char *const names[] = {"vector", "fts", "hybrid", "hybrid_domain"};
    return k >= 0 && k < BK_COUNT ? names[k] : "?";
}

bool bench_kind_uses_hnsw(bench_kind k) { return k != BK_FTS; }

bool bench_target_queries(pg_conn *c, int n, bench_query_set *out)
{
    memset(out, 0, sizeof *out);
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    const char *params[] = {nbuf};
    pg_result *r = pg_exec(c,
                           "SELECT embedding::text, left(content, 4000), "
                           "CASE WHEN cardinality(domains) > 0 THEN domains::text END "
                           "FROM memories WHERE embedding IS NOT NULL ORDER BY id LIMIT $1::int",
                           1, params);
    if (!r) {
        log_error("bench: reading the query set from memories: %s", pg_errmsg(c));
        return false;
    }
    int rows = pg_ntuples(r);
    out->q = calloc((size_t) (rows ? rows : 1), sizeof *out->q);
    bool ok = out->q != NULL;
    for (int i = 0; ok && i < rows; i++) {
        bench_query *q = &out->q[out->n++];
        q->vector = strdup(pg_value(r, i, 0));
        q->text = bench_query_words(pg_value(r, i, 1), (size_t) pg_getlength(r, i, 1), BENCH_QUERY_WORDS);
        q->domains = pg_isnull(r, i, 2) ? NULL : strdup(pg_value(r, i, 2));
        ok = q->vector && q->text && (pg_isnull(r, i, 2) || q->domains);
    }
    pg_clear(r);
    if (!ok)
        log_error("out of memory");
    else if (out->n == 0) {
        log_error("bench: memories has no row with an embedding: nothing to search for");
        ok = false;
    }
    if (!ok)
        bench_query_set_free(out);
    return ok;
}

/* ---- one statement per kind ------------------------------------------------------------------ */

typedef struct {
    const char *sql;
    int nparams;
    const char *params[5];
    char kbuf[16], fetchbuf[16];
} stmt;

/* The statement of kind k for query q (params point into q and s). */
static void make_stmt(stmt *s, bench_kind k, const bench_query *q, const bench_request *req)
{
    snprintf(s->kbuf, sizeof s->kbuf, "%d", req->k);
    snprintf(s->fetchbuf, sizeof s->fetchbuf, "%d", req->fetch);
    switch (k) {
    case BK_VECTOR:
        s->sql = bench_sql("search_vector.sql");
        s->nparams = 2;
        s->params[0] = q->vector;
        s->params[1] = s->kbuf;
        break;
    case BK_FTS:
        s->sql = bench_sql("search_fts.sql");
        s->nparams = 2;
        s->params[0] = q->text;
        s->params[1] = s->kbuf;
        break;
    default:
        s->sql = bench_sql("search_hybrid.sql");
        s->nparams = 5;
        s->params[0] = q->vector;
        s->params[1] = q->text;
        s->params[2] = s->kbuf;
        s->params[3] = s->fetchbuf;
        s->params[4] = k == BK_HYBRID_DOMAIN ? q->domains : NULL;
        break;
    }
}

/* The queries a kind runs over: every query, or for hybrid_domain those with domains. */
static bool kind_takes(bench_kind k, const bench_query *q) { return k != BK_HYBRID_DOMAIN || q->domains; }

/* Result ids of one run of the query set: ids[i] holds up to k ids (NULL when the query was
 * not run for this kind). */
typedef struct {
    char **ids; /* n * k slots */
    int *count;
    int n, k;
} id_table;

static bool ids_new(id_table *t, int n, int k)
{
    t->n = n;
    t->k = k;
    t->ids = calloc((size_t) n * (size_t) k, sizeof *t->ids);
    t->count = calloc((size_t) n, sizeof *t->count);
    return t->ids && t->count;
}

static void ids_free(id_table *t)
{
    if (t->ids)
        for (int i = 0; i < t->n * t->k; i++)
            free(t->ids[i]);
    free(t->ids);
    free(t->count);
    memset(t, 0, sizeof *t);
}

static bool ids_store(id_table *t, int qi, const pg_result *r)
{
    int rows = pg_ntuples(r);
    if (rows > t->k)
        rows = t->k;
    for (int j = 0; j < t->count[qi]; j++) {
        free(t->ids[qi * t->k + j]);
        t->ids[qi * t->k + j] = NULL;
    }
    t->count[qi] = 0;
    for (int j = 0; j < rows; j++) {
        char *id = strdup(pg_value(r, j, 0));
        if (!id)
            return false;
        t->ids[qi * t->k + j] = id;
        t->count[qi]++;
    }
    return true;
}

static bool set_ef(pg_conn *c, int ef)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%d", ef);
    const char *params[] = {buf};
    if (pg_run(c, "SELECT set_config('hnsw.ef_search', $1, false)", 1, params))
        return true;
    log_error("bench: setting hnsw.ef_search to %d: %s", ef, pg_errmsg(c));
    return false;
}

/* Exact results of kind k for every query: one READ ONLY transaction with index scans off, so
 * the vector side is a sequential scan and sort over every row. */
static bool exact_ids(pg_conn *c, bench_kind k, const bench_query_set *qs, const bench_request *req, id_table *t,
                      bench_store *st)
{
    double d1 = 0, dk = 0;
    int nd = 0;
    if (!pg_run(c, "BEGIN READ ONLY", 0, NULL) || !pg_run(c, "SET LOCAL enable_indexscan = off", 0, NULL)) {
        log_error("bench: starting the exact search: %s", pg_errmsg(c));
        pg_rollback(c);
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < qs->n; i++) {
        if (!kind_takes(k, &qs->q[i]))
            continue;
        stmt s = {0};
        make_stmt(&s, k, &qs->q[i], req);
        pg_result *r = pg_exec(c, s.sql, s.nparams, s.params);
        if (!r) {
            log_error("bench: exact %s search %d: %s", bench_kind_name(k), i + 1, pg_errmsg(c));
            ok = false;
            break;
        }
        ok = ids_store(t, i, r);
        if (k == BK_VECTOR && pg_ntuples(r) > 0 && !pg_isnull(r, 0, 1) && !pg_isnull(r, pg_ntuples(r) - 1, 1)) {
            d1 += strtod(pg_value(r, 0, 1), NULL);
            dk += strtod(pg_value(r, pg_ntuples(r) - 1, 1), NULL);
            nd++;
        }
        pg_clear(r);
    }
    if (ok && nd > 0) {
        st->exact_first_distance = d1 / nd;
        st->exact_kth_distance = dk / nd;
    }
    if (ok && !pg_commit(c)) {
        log_error("bench: ending the exact search: %s", pg_errmsg(c));
        ok = false;
    }
    pg_rollback(c);
    return ok;
}

/* Warm-up then one timed pass of kind k over the query set; results into got (may be NULL). */
static bool timed_pass(pg_conn *c, bench_kind k, const bench_query_set *qs, const bench_request *req, int ef,
                       const id_table *exact, bench_series *out)
{
    memset(out, 0, sizeof *out);
    out->kind = k;
    out->ef_search = ef;
    out->recall = -1;
    double *ms = malloc((size_t) qs->n * sizeof *ms);
    id_table got = {0};
    if (!ms || (exact && !ids_new(&got, qs->n, req->k))) {
        free(ms);
        ids_free(&got);
        log_error("out of memory");
        return false;
    }
    int eligible = 0;
    for (int i = 0; i < qs->n; i++)
        eligible += kind_takes(k, &qs->q[i]);
    bool ok = true;
    /* warm-up: the first queries of the set, not timed */
    for (int w = 0, i = 0; ok && w < req->warmup && eligible > 0; i = (i + 1) % qs->n) {
        if (!kind_takes(k, &qs->q[i]))
            continue;
        stmt s = {0};
        make_stmt(&s, k, &qs->q[i], req);
        pg_result *r = pg_exec(c, s.sql, s.nparams, s.params);
        if (!r) {
            log_error("bench: %s warm-up: %s", bench_kind_name(k), pg_errmsg(c));
            ok = false;
        }
        pg_clear(r);
        w++;
    }
    int64_t rows = 0;
    for (int i = 0; ok && i < qs->n; i++) {
        if (!kind_takes(k, &qs->q[i]))
            continue;
        stmt s = {0};
        make_stmt(&s, k, &qs->q[i], req);
        double t0 = bench_now();
        pg_result *r = pg_exec(c, s.sql, s.nparams, s.params);
        double t1 = bench_now();
        if (!r) {
            log_error("bench: %s query %d: %s", bench_kind_name(k), i + 1, pg_errmsg(c));
            out->errors++;
            ok = false;
            break;
        }
        ms[out->queries++] = (t1 - t0) * 1000.0;
        rows += pg_ntuples(r);
        if (exact && !ids_store(&got, i, r)) {
            log_error("out of memory");
            ok = false;
        }
        pg_clear(r);
    }
    if (ok) {
        ok = bench_dist_of(ms, out->queries, &out->ms);
        out->rows_mean = out->queries ? (double) rows / out->queries : 0;
        if (exact) {
            for (int i = 0; i < qs->n; i++) {
                if (!kind_takes(k, &qs->q[i]))
                    continue;
                out->recall_hits += bench_overlap((const char *const *) &got.ids[i * got.k], got.count[i],
                                                  (const char *const *) &exact->ids[i * exact->k], exact->count[i]);
                out->recall_total += exact->count[i];
            }
            out->recall = out->recall_total ? (double) out->recall_hits / (double) out->recall_total : 1.0;
        }
    }
    if (ok && req->raw) {
        out->samples_ms = ms;
        ms = NULL;
    }
    free(ms);
    ids_free(&got);
    return ok;
}

/* Whether the plan of kind k for query q scans the index: 1 yes, 0 no, -2 EXPLAIN failed (logged). */
static int uses_index(pg_conn *c, bench_kind k, const bench_query *q, const bench_request *req, const char *index)
{
    stmt s = {0};
    make_stmt(&s, k, q, req);
    size_t len = strlen(s.sql) + 32;
    char *sql = malloc(len);
    if (!sql) {
        log_error("out of memory");
        return -2;
    }
    snprintf(sql, len, "EXPLAIN (COSTS OFF) %s", s.sql);
    pg_result *r = pg_exec(c, sql, s.nparams, s.params);
    free(sql);
    if (!r) {
        log_error("bench: EXPLAIN of the %s query: %s", bench_kind_name(k), pg_errmsg(c));
        return -2;
    }
    int used = 0;
    for (int i = 0; i < pg_ntuples(r) && !used; i++) {
        const char *line = pg_value(r, i, 0);
        const char *at = strstr(line, index);
        used = at && strstr(line, "Index") && (at[strlen(index)] == ' ' || at[strlen(index)] == '\0');
    }
    pg_clear(r);
    return used;
}

static bool push_series(bench_store *st, const bench_series *s)
{
    bench_series *grown = realloc(st->series, (size_t) (st->nseries + 1) * sizeof *grown);
    if (!grown) {
        log_error("out of memory");
        return false;
    }
    st->series = grown;
    st->series[st->nseries++] = *s;
    return true;
}

bool bench_measure_series(pg_conn *c, const bench_request *req, const bench_query_set *qs, const int *efs, int nef,
                          bench_store *st)
{
    st->nqueries = qs->n;
    st->nqueries_domain = 0;
    for (int i = 0; i < qs->n; i++)
        st->nqueries_domain += qs->q[i].domains != NULL;
    for (int ki = 0; ki < BK_COUNT; ki++) {
        bench_kind k = (bench_kind) ki;
        if (k == BK_HYBRID_DOMAIN && st->nqueries_domain == 0) {
            log_info("bench: no query memory has domains: hybrid_domain not measured");
            continue;
        }
        id_table exact = {0};
        bool hnsw = bench_kind_uses_hnsw(k) && st->has_index;
        if (bench_kind_uses_hnsw(k)) {
            if (!ids_new(&exact, qs->n, req->k)) {
                log_error("out of memory");
                return false;
            }
            log_info("bench: %s: exact search of %d queries (enable_indexscan = off) for recall@%d",
                     bench_kind_name(k), k == BK_HYBRID_DOMAIN ? st->nqueries_domain : qs->n, req->k);
            if (!exact_ids(c, k, qs, req, &exact, st)) {
                ids_free(&exact);
                return false;
            }
        }
        int first = 0;
        while (first < qs->n && !kind_takes(k, &qs->q[first]))
            first++;
        int passes = hnsw ? nef : 1;
        for (int e = 0; e < passes; e++) {
            int ef = hnsw ? efs[e] : 0;
            if (hnsw && !set_ef(c, ef)) {
                ids_free(&exact);
                return false;
            }
            int used = hnsw ? uses_index(c, k, &qs->q[first], req, st->index_name) : -1;
            if (used == -2) {
                ids_free(&exact);
                return false;
            }
            bench_series s;
            bool ok = timed_pass(c, k, qs, req, ef, bench_kind_uses_hnsw(k) ? &exact : NULL, &s);
            s.index_used = used;
            if (ok && !push_series(st, &s)) {
                free(s.samples_ms);
                ok = false;
            }
            if (!ok) {
                ids_free(&exact);
                return false;
            }
            if (k == BK_FTS) {
                /* how many memories each full-text query matches: every match is ranked (the
                 * cost of fts and of the hybrid's fts side), and rows_mean alone hides empty answers */
                int hits = 0;
                double matched = 0;
                for (int i = 0; i < qs->n; i++) {
                    const char *params[] = {qs->q[i].text};
                    int64_t n = 0;
                    if (!pg_query_int64(c, "SELECT count(*) FROM memories WHERE search_vec @@ "
                                           "websearch_to_tsquery('english', $1)", 1, params, &n)) {
                        log_error("bench: counting full-text matches: %s", pg_errmsg(c));
                        ids_free(&exact);
                        return false;
                    }
                    hits += n > 0;
                    matched += (double) n;
                    if (n > st->fts_matches_max)
                        st->fts_matches_max = n;
                }
                st->fts_hit_rate = qs->n ? (double) hits / qs->n : 0;
                st->fts_matches_mean = qs->n ? matched / qs->n : 0;
            }
            char recall[48] = "";
            if (s.recall >= 0)
                snprintf(recall, sizeof recall, ", recall@%d %.3f", req->k, s.recall);
            log_info("bench: %-13s ef_search %4d: p50 %.2f ms, p99 %.2f ms%s%s", bench_kind_name(k), ef, s.ms.p50,
                     s.ms.p99, recall, used == 0 ? " (the planner chose exact search, not the index)" : "");
        }
        ids_free(&exact);
        if (hnsw && !set_ef(c, st->default_ef))
            return false;
    }
    return true;
}

/* ---- QPS ------------------------------------------------------------------------------------ */

typedef struct {
    pg_conn *c;
    double sent_at;
    int query;
    bool busy;
} client;

static bool setup_session(pg_conn *c, const char *search_path, int ef)
{
    char efbuf[16];
    snprintf(efbuf, sizeof efbuf, "%d", ef);
    const char *p1[] = {search_path};
    const char *p2[] = {efbuf};
    bool ok = pg_run(c, "SET default_transaction_read_only = on", 0, NULL) &&
              (!search_path[0] || pg_run(c, "SELECT set_config('search_path', $1, false)", 1, p1)) &&
              (ef <= 0 || pg_run(c, "SELECT set_config('hnsw.ef_search', $1, false)", 1, p2));
    if (!ok)
        log_error("bench: setting up a session: %s", pg_errmsg(c));
    return ok;
}

/* One concurrency level: n clients, barrier start, req->duration seconds. */
static bool qps_level(client *cl, int n, const bench_request *req, const bench_query_set *qs, bench_qps *out)
{
    memset(out, 0, sizeof *out);
    out->concurrency = n;
    size_t cap = 4096, count = 0;
    double *ms = malloc(cap * sizeof *ms);
    struct pollfd *fds = calloc((size_t) n, sizeof *fds);
    if (!ms || !fds) {
        free(ms);
        free(fds);
        log_error("out of memory");
        return false;
    }
    int next = 0;
    bool ok = true;
    double t0 = bench_now(), end = t0 + req->duration, last = t0;
    for (int i = 0; i < n && ok; i++) { /* the barrier: every client starts now */
        stmt s = {0};
        cl[i].query = next++ % qs->n;
        make_stmt(&s, BK_HYBRID, &qs->q[cl[i].query], req);
        cl[i].sent_at = bench_now();
        cl[i].busy = pg_send(cl[i].c, s.sql, s.nparams, s.params);
        if (!cl[i].busy) {
            log_error("bench: sending a query: %s", pg_errmsg(cl[i].c));
            ok = false;
        }
    }
    int busy = 0;
    for (int i = 0; i < n; i++)
        busy += cl[i].busy;
    while (busy > 0) {
        for (int i = 0; i < n; i++) {
            fds[i].fd = cl[i].busy ? pg_socket(cl[i].c) : -1;
            fds[i].events = POLLIN;
            fds[i].revents = 0;
        }
        int pr = poll(fds, (nfds_t) n, 1000);
        if (pr < 0 && errno != EINTR) {
            log_error("bench: poll: %s", strerror(errno));
            ok = false;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (!cl[i].busy || !(fds[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            pg_result *r = NULL;
            int st = pg_poll(cl[i].c, &r);
            if (st == 0)
                continue;
            double now = bench_now();
            cl[i].busy = false;
            busy--;
            if (st < 0 || !r) {
                out->errors++;
                log_error("bench: concurrent query failed: %s", pg_errmsg(cl[i].c));
                if (st < 0)
                    ok = false;
            } else {
                if (count == cap) {
                    double *g = realloc(ms, 2 * cap * sizeof *ms);
                    if (!g) {
                        pg_clear(r);
                        ok = false;
                        break;
                    }
                    ms = g;
                    cap *= 2;
                }
                ms[count++] = (now - cl[i].sent_at) * 1000.0;
                last = now;
            }
            pg_clear(r);
            if (ok && now < end) {
                stmt s = {0};
                cl[i].query = next++ % qs->n;
                make_stmt(&s, BK_HYBRID, &qs->q[cl[i].query], req);
                cl[i].sent_at = bench_now();
                if (pg_send(cl[i].c, s.sql, s.nparams, s.params)) {
                    cl[i].busy = true;
                    busy++;
                } else {
                    log_error("bench: sending a query: %s", pg_errmsg(cl[i].c));
                    ok = false;
                }
            }
        }
        if (!ok) { /* drain what is in flight so the connections are closed idle */
            for (int i = 0; i < n; i++)
                while (cl[i].busy) {
                    pg_result *r = NULL;
                    struct pollfd one = {pg_socket(cl[i].c), POLLIN, 0};
                    if (poll(&one, 1, 5000) <= 0)
                        break;
                    int st = pg_poll(cl[i].c, &r);
                    pg_clear(r);
                    if (st != 0)
                        cl[i].busy = false;
                }
            break;
        }
    }
    out->queries = (int64_t) count;
    out->seconds = last - t0;
    out->qps = out->seconds > 0 ? (double) count / out->seconds : 0;
    if (ok && !bench_dist_of(ms, (int) count, &out->ms))
        ok = false;
    free(ms);
    free(fds);
    return ok;
}

bool bench_measure_qps(const bench_request *req, const bench_query_set *qs, const char *search_path,
                       bench_store *st)
{
    int maxc = 0;
    for (int i = 0; i < req->nconc; i++)
        if (req->concurrency[i] > maxc)
            maxc = req->concurrency[i];
    if (maxc == 0)
        return true;
    client *cl = calloc((size_t) maxc, sizeof *cl);
    st->qps = calloc((size_t) req->nconc, sizeof *st->qps);
    if (!cl || !st->qps) {
        free(cl);
        log_error("out of memory");
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < maxc; i++) {
        cl[i].c = pg_connect(req->conninfo, "pgmemctl bench", 0);
        ok = cl[i].c && setup_session(cl[i].c, search_path, st->has_index ? st->default_ef : 0);
        if (ok) { /* warm the session: plan caches, the index's top pages */
            stmt s = {0};
            make_stmt(&s, BK_HYBRID, &qs->q[i % qs->n], req);
            pg_result *r = pg_exec(cl[i].c, s.sql, s.nparams, s.params);
            if (!r)
                log_error("bench: warming a connection: %s", pg_errmsg(cl[i].c));
            ok = r != NULL;
            pg_clear(r);
        }
    }
    for (int l = 0; ok && l < req->nconc; l++) {
        ok = qps_level(cl, req->concurrency[l], req, qs, &st->qps[st->nqps]);
        if (ok) {
            const bench_qps *q = &st->qps[st->nqps++];
            log_info("bench: hybrid at concurrency %d: %.0f queries/s over %.1f s (p50 %.2f ms, p99 %.2f ms)",
                     q->concurrency, q->qps, q->seconds, q->ms.p50, q->ms.p99);
        }
    }
    for (int i = 0; i < maxc; i++)
        pg_close(cl[i].c);
    free(cl);
    return ok;
}

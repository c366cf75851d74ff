/* bench_render.c — pgmemctl bench's outputs: the JSON document, the design targets, and the
 * human table on stderr (read back from the JSON, so a saved run prints the same way). */
#include "bench.h"
#include "bench_stats.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double r3(double v) { return round(v * 1000.0) / 1000.0; }

static cJSON *dist_json(const bench_dist *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "p50", r3(d->p50));
    cJSON_AddNumberToObject(o, "p95", r3(d->p95));
    cJSON_AddNumberToObject(o, "p99", r3(d->p99));
    cJSON_AddNumberToObject(o, "max", r3(d->max));
    cJSON_AddNumberToObject(o, "mean", r3(d->mean));
    return o;
}

static cJSON *int_list(const int *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static void add_setting(cJSON *o, const char *name, const char *v) { report_add_str(o, name, v[0] ? v : NULL); }

static cJSON *store_json(const bench_request *req, const bench_store *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "scratch", st->scratch);
    report_add_str(o, "schema", st->scratch ? st->schema : NULL);
    report_add_int(o, "rows", st->rows);
    report_add_int(o, "rows_with_vector", st->rows_with_vector);
    cJSON_AddNumberToObject(o, "dimension", st->dimension);
    report_add_int(o, "table_bytes", st->table_bytes);
    if (st->has_index) {
        cJSON *ix = cJSON_AddObjectToObject(o, "index");
        cJSON_AddStringToObject(ix, "name", st->index_name);
        cJSON_AddStringToObject(ix, "method", "hnsw");
        cJSON_AddStringToObject(ix, "opclass", st->index_opclass);
        cJSON_AddNumberToObject(ix, "m", st->index_m);
        cJSON_AddNumberToObject(ix, "ef_construction", st->index_ef_construction);
        report_add_int(ix, "bytes", st->index_bytes);
        cJSON_AddStringToObject(ix, "definition", st->index_def);
    } else {
        cJSON_AddNullToObject(o, "index");
    }
    if (st->scratch) {
        cJSON *ld = cJSON_AddObjectToObject(o, "load");
        report_add_int(ld, "rows", st->rows);
        cJSON_AddStringToObject(ld, "method", "COPY (FORMAT binary)");
        report_add_seconds(ld, "seconds", st->load_seconds);
        cJSON_AddNumberToObject(ld, "rows_per_second", round(st->load_rows_per_second));
        if (st->graph_fit >= 0) {
            report_add_seconds(ld, "index_build_seconds", st->index_seconds);
            cJSON_AddStringToObject(ld, "maintenance_work_mem", st->maintenance_work_mem);
            cJSON_AddNumberToObject(ld, "max_parallel_maintenance_workers", st->parallel_workers);
            cJSON_AddBoolToObject(ld, "graph_fit_in_maintenance_work_mem", st->graph_fit == 1);
            report_add_str(ld, "notice", st->graph_notice[0] ? st->graph_notice : NULL);
        } else {
            cJSON_AddNullToObject(ld, "index_build_seconds");
        }
    }
    cJSON *q = cJSON_AddObjectToObject(o, "queries");
    cJSON_AddNumberToObject(q, "count", st->nqueries);
    cJSON_AddNumberToObject(q, "with_domains", st->nqueries_domain);
    cJSON_AddStringToObject(q, "source", !st->scratch  ? "the first memories with a vector, by id"
                                         : req->sample ? "sample memories held out of the store"
                                                       : "generated memories held out of the store");
    cJSON_AddNumberToObject(q, "fts_hit_rate", r3(st->fts_hit_rate));
    cJSON_AddNumberToObject(q, "fts_matches_mean", round(st->fts_matches_mean * 10) / 10);
    report_add_int(q, "fts_matches_max", st->fts_matches_max);
    cJSON_AddNumberToObject(q, "exact_first_distance_mean", round(st->exact_first_distance * 1e4) / 1e4);
    cJSON_AddNumberToObject(q, "exact_kth_distance_mean", round(st->exact_kth_distance * 1e4) / 1e4);
    cJSON_AddNumberToObject(o, "default_ef_search", st->default_ef);
    cJSON *lat = cJSON_AddArrayToObject(o, "latency");
    for (int i = 0; i < st->nseries; i++) {
        const bench_series *s = &st->series[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "kind", bench_kind_name(s->kind));
        if (s->ef_search > 0)
            cJSON_AddNumberToObject(x, "ef_search", s->ef_search);
        else
            cJSON_AddNullToObject(x, "ef_search");
        cJSON_AddNumberToObject(x, "queries", s->queries);
        cJSON_AddItemToObject(x, "ms", dist_json(&s->ms));
        cJSON_AddNumberToObject(x, "rows_mean", r3(s->rows_mean));
        if (s->index_used >= 0)
            cJSON_AddBoolToObject(x, "index_used", s->index_used == 1);
        else
            cJSON_AddNullToObject(x, "index_used");
        if (s->recall >= 0) {
            cJSON_AddNumberToObject(x, "recall", r3(s->recall));
            report_add_int(x, "recall_hits", s->recall_hits);
            report_add_int(x, "recall_total", s->recall_total);
        } else {
            cJSON_AddNullToObject(x, "recall");
        }
        if (req->raw && s->samples_ms) {
            cJSON *a = cJSON_AddArrayToObject(x, "samples_ms");
            for (int j = 0; j < s->queries; j++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber(round(s->samples_ms[j] * 1e4) / 1e4));
        }
        cJSON_AddItemToArray(lat, x);
    }
    cJSON *tp = cJSON_AddArrayToObject(o, "throughput");
    for (int i = 0; i < st->nqps; i++) {
        const bench_qps *p = &st->qps[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "kind", "hybrid");
        cJSON_AddNumberToObject(x, "ef_search", st->has_index ? st->default_ef : 0);
        cJSON_AddNumberToObject(x, "concurrency", p->concurrency);
        report_add_seconds(x, "seconds", p->seconds);
        report_add_int(x, "queries", p->queries);
        report_add_int(x, "errors", p->errors);
        cJSON_AddNumberToObject(x, "qps", round(p->qps * 10) / 10);
        cJSON_AddItemToObject(x, "ms", dist_json(&p->ms));
        cJSON_AddItemToArray(tp, x);
    }
    const bench_overhead *ov = &st->overhead;
    cJSON *oj = cJSON_AddObjectToObject(o, "client_overhead");
    cJSON_AddBoolToObject(oj, "ran", ov->ran);
    cJSON_AddStringToObject(oj, "statement", "sql/bench_overhead.sql");
    report_add_str(oj, "pgbench", ov->binary[0] ? ov->binary : NULL);
    if (ov->ran) {
        cJSON_AddNumberToObject(oj, "transactions", ov->transactions);
        cJSON_AddNumberToObject(oj, "pgmemctl_p50_ms", r3(ov->pgmemctl_p50));
        cJSON_AddNumberToObject(oj, "pgbench_p50_ms", r3(ov->pgbench_p50));
        cJSON_AddNumberToObject(oj, "ratio", r3(ov->ratio));
        cJSON_AddItemToObject(oj, "pgmemctl_ms", dist_json(&ov->pgmemctl_ms));
        cJSON_AddItemToObject(oj, "pgbench_ms", dist_json(&ov->pgbench_ms));
    } else {
        cJSON_AddStringToObject(oj, "reason", ov->reason);
    }
    return o;
}

/* ---- targets ------------------------------------------------------------------------------ */

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* The series of kind at ef_search ef (ef <= 0: the one without ef_search), or NULL. */
static const cJSON *series_of(const cJSON *store, const char *kind, double ef)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, get(store, "latency"))
    {
        const cJSON *k = get(s, "kind");
        double e = bench_jnum(s, "ef_search", 0);
        if (cJSON_IsString(k) && !strcmp(k->valuestring, kind) && e == (cJSON_IsObject(get(store, "index")) ? ef : 0))
            return s;
    }
    return NULL;
}

static void target(cJSON *arr, const char *store, const char *name, double value, const char *op, double limit,
                   int *missed)
{
    bool met = !strcmp(op, "<") ? value < limit : !strcmp(op, "<=") ? value <= limit : value >= limit;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "store", store);
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddNumberToObject(t, "value", r3(value));
    cJSON_AddStringToObject(t, "op", op);
    cJSON_AddNumberToObject(t, "limit", limit);
    cJSON_AddBoolToObject(t, "met", met);
    cJSON_AddItemToArray(arr, t);
    *missed += !met;
}

cJSON *bench_targets(const cJSON *stores, int *missed)
{
    cJSON *arr = cJSON_CreateArray();
    *missed = 0;
    const cJSON *st;
    cJSON_ArrayForEach(st, stores)
    {
        char label[48], name[96];
        bench_store_label(st, label, sizeof label);
        double ef = bench_jnum(st, "default_ef_search", 40);
        const cJSON *h = series_of(st, "hybrid", ef);
        if (h) {
            snprintf(name, sizeof name, "hybrid p50 ms (ef_search %.0f)", ef);
            target(arr, label, name, bench_jnum(get(h, "ms"), "p50", 0), "<", 10, missed);
            snprintf(name, sizeof name, "hybrid p99 ms (ef_search %.0f)", ef);
            target(arr, label, name, bench_jnum(get(h, "ms"), "p99", 0), "<", 30, missed);
        }
        static const char *const kinds[] = {"vector", "hybrid"};
        for (int i = 0; i < 2; i++) {
            const cJSON *s = series_of(st, kinds[i], ef);
            if (s && cJSON_IsNumber(get(s, "recall"))) {
                snprintf(name, sizeof name, "%s recall@k (ef_search %.0f)", kinds[i], ef);
                target(arr, label, name, bench_jnum(s, "recall", 0), ">=", 0.95, missed);
            }
        }
        const cJSON *ov = get(st, "client_overhead");
        if (cJSON_IsTrue(get(ov, "ran")))
            target(arr, label, "client overhead: pgmemctl p50 / pgbench p50", bench_jnum(ov, "ratio", 0), "<=", 1.05,
                   missed);
    }
    return arr;
}

cJSON *bench_render_json(const bench_request *req, const bench_result *res)
{
    cJSON *doc = report_new("bench");
    if (!doc)
        return NULL;
    cJSON_AddStringToObject(doc, "status", res->refused ? "refused" : res->error[0] ? "failed" : "ok");
    if (res->error[0])
        cJSON_AddStringToObject(doc, "error", res->error);
    report_add_str(doc, "database", req->display);
    cJSON_AddStringToObject(doc, "started_at", res->started_at);
    report_add_seconds(doc, "seconds", res->seconds);
    cJSON *op = cJSON_AddObjectToObject(doc, "options");
    cJSON_AddStringToObject(op, "mode", req->nscratch > 0 ? "scratch" : "target");
    if (req->nscratch > 0) {
        cJSON *a = cJSON_AddArrayToObject(op, "scratch");
        for (int i = 0; i < req->nscratch; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber((double) req->scratch[i]));
        report_add_str(op, "sample", req->sample);
        if (req->sample) {
            cJSON_AddNullToObject(op, "generated");
        } else {
            cJSON *g = cJSON_AddObjectToObject(op, "generated");
            cJSON_AddNumberToObject(g, "seed", (double) req->seed);
            cJSON_AddNumberToObject(g, "dimension", req->dim);
            char model[32];
            snprintf(model, sizeof model, "builtin:hash-%d", req->dim);
            cJSON_AddStringToObject(g, "embedding_model", model);
        }
        cJSON_AddBoolToObject(op, "no_index", req->no_index);
        cJSON_AddNumberToObject(op, "m", req->hnsw_m);
        cJSON_AddNumberToObject(op, "ef_construction", req->hnsw_ef_construction);
    }
    cJSON_AddNumberToObject(op, "queries", req->queries);
    cJSON_AddNumberToObject(op, "k", req->k);
    cJSON_AddNumberToObject(op, "fetch", req->fetch);
    cJSON_AddItemToObject(op, "ef_search", int_list(req->ef_search, req->nef));
    cJSON_AddItemToObject(op, "concurrency", int_list(req->concurrency, req->nconc));
    cJSON_AddNumberToObject(op, "duration", req->duration);
    cJSON_AddNumberToObject(op, "warmup", req->warmup);
    cJSON_AddBoolToObject(op, "raw", req->raw);

    const bench_env *e = &res->env;
    cJSON *env = cJSON_AddObjectToObject(doc, "environment");
    add_setting(env, "server_version", e->server_version);
    cJSON_AddNumberToObject(env, "server_version_num", e->server_version_num);
    add_setting(env, "pgvector", e->pgvector_version);
    cJSON_AddBoolToObject(env, "pgvector_created_by_this_run", e->vector_created);
    cJSON *set = cJSON_AddObjectToObject(env, "settings");
    add_setting(set, "shared_buffers", e->shared_buffers);
    add_setting(set, "maintenance_work_mem", e->maintenance_work_mem);
    add_setting(set, "max_parallel_maintenance_workers", e->max_parallel_maintenance_workers);
    add_setting(set, "max_parallel_workers_per_gather", e->max_parallel_workers_per_gather);
    add_setting(set, "work_mem", e->work_mem);
    add_setting(set, "effective_cache_size", e->effective_cache_size);
    add_setting(set, "hnsw.ef_search", e->hnsw_ef_search);
    add_setting(set, "hnsw.iterative_scan", e->hnsw_iterative_scan);
    cJSON_AddNumberToObject(env, "client_cpus", e->client_cpus);
    cJSON_AddNumberToObject(env, "libpq_version", e->libpq_version);

    cJSON *stores = cJSON_AddArrayToObject(doc, "stores");
    for (int i = 0; i < res->nstores; i++)
        cJSON_AddItemToArray(stores, store_json(req, &res->stores[i]));
    int missed = 0;
    cJSON_AddItemToObject(doc, "targets", bench_targets(stores, &missed));
    cJSON_AddNumberToObject(doc, "targets_missed", missed);
    return doc;
}

/* ---- the table ---------------------------------------------------------------------------- */

static const char *str_or(const cJSON *o, const char *k, const char *dflt)
{
    const cJSON *x = get(o, k);
    return cJSON_IsString(x) ? x->valuestring : dflt;
}

static void human_bytes(double b, char *buf, size_t len)
{
    if (b >= 1 << 30)
        snprintf(buf, len, "%.2f GB", b / (1 << 30));
    else if (b >= 1 << 20)
        snprintf(buf, len, "%.1f MB", b / (1 << 20));
    else
        snprintf(buf, len, "%.0f kB", b / 1024);
}

void bench_render_table(const cJSON *doc, FILE *out)
{
    const cJSON *env = get(doc, "environment"), *opt = get(doc, "options");
    const cJSON *set = get(env, "settings");
    fprintf(out, "pgmemctl bench: PostgreSQL %s, pgvector %s; shared_buffers %s, hnsw.ef_search %s, "
                 "hnsw.iterative_scan %s; %.0f client CPUs\n",
            str_or(env, "server_version", "?"), str_or(env, "pgvector", "?"), str_or(set, "shared_buffers", "?"),
            str_or(set, "hnsw.ef_search", "?"), str_or(set, "hnsw.iterative_scan", "n/a"),
            bench_jnum(env, "client_cpus", 0));
    double k = bench_jnum(opt, "k", 10);
    const cJSON *st;
    cJSON_ArrayForEach(st, get(doc, "stores"))
    {
        char label[48], size[32];
        bench_store_label(st, label, sizeof label);
        const cJSON *ix = get(st, "index");
        fprintf(out, "\n%s: %.0f memories, %.0f dimensions", label, bench_jnum(st, "rows", 0), bench_jnum(st, "dimension", 0));
        if (cJSON_IsObject(ix)) {
            human_bytes(bench_jnum(ix, "bytes", 0), size, sizeof size);
            fprintf(out, ", %s (hnsw %s, m %.0f, ef_construction %.0f, %s)\n", str_or(ix, "name", "?"),
                    str_or(ix, "opclass", "?"), bench_jnum(ix, "m", 0), bench_jnum(ix, "ef_construction", 0), size);
        } else {
            fprintf(out, ", no HNSW index (exact search)\n");
        }
        const cJSON *ld = get(st, "load");
        if (cJSON_IsObject(ld)) {
            fprintf(out, "  load: %.0f rows in %.2f s, %.0f rows/s (binary COPY)", bench_jnum(ld, "rows", 0),
                    bench_jnum(ld, "seconds", 0), bench_jnum(ld, "rows_per_second", 0));
            if (cJSON_IsNumber(get(ld, "index_build_seconds")))
                fprintf(out, "; HNSW build %.2f s, graph %s maintenance_work_mem (%s)",
                        bench_jnum(ld, "index_build_seconds", 0),
                        cJSON_IsTrue(get(ld, "graph_fit_in_maintenance_work_mem")) ? "fit in" : "did NOT fit in",
                        str_or(ld, "maintenance_work_mem", "?"));
            fprintf(out, "\n");
        }
        const cJSON *q = get(st, "queries");
        fprintf(out, "  %.0f queries (%s)\n", bench_jnum(q, "count", 0), str_or(q, "source", "?"));
        fprintf(out, "  full text: %.0f%% of the queries match, %.0f memories on average (at most %.0f), all ranked\n",
                100 * bench_jnum(q, "fts_hit_rate", 0), bench_jnum(q, "fts_matches_mean", 0),
                bench_jnum(q, "fts_matches_max", 0));
        fprintf(out, "  vectors: exact cosine distance of the 1st neighbour %.3f, of the %.0fth %.3f (means)\n",
                bench_jnum(q, "exact_first_distance_mean", 0), k, bench_jnum(q, "exact_kth_distance_mean", 0));
        fprintf(out, "  %-14s %9s %8s %8s %8s %8s %9s %6s  %s\n", "kind", "ef_search", "p50 ms", "p95 ms", "p99 ms",
                "max ms", "recall", "rows", "plan");
        const cJSON *s;
        cJSON_ArrayForEach(s, get(st, "latency"))
        {
            const cJSON *ms = get(s, "ms");
            char ef[16] = "-", rec[16] = "-";
            if (cJSON_IsNumber(get(s, "ef_search")))
                snprintf(ef, sizeof ef, "%.0f", bench_jnum(s, "ef_search", 0));
            if (cJSON_IsNumber(get(s, "recall")))
                snprintf(rec, sizeof rec, "%.3f", bench_jnum(s, "recall", 0));
            const cJSON *used = get(s, "index_used");
            fprintf(out, "  %-14s %9s %8.2f %8.2f %8.2f %8.2f %9s %6.1f  %s\n", str_or(s, "kind", "?"), ef,
                    bench_jnum(ms, "p50", 0), bench_jnum(ms, "p95", 0), bench_jnum(ms, "p99", 0), bench_jnum(ms, "max", 0), rec,
                    bench_jnum(s, "rows_mean", 0),
                    cJSON_IsBool(used) ? (cJSON_IsTrue(used) ? "hnsw" : "exact (planner)") : "-");
        }
        fprintf(out, "  (recall@%.0f against exact search with enable_indexscan = off)\n", k);
        const cJSON *tp = get(st, "throughput");
        if (cJSON_GetArraySize(tp) > 0) {
            fprintf(out, "  hybrid QPS:");
            cJSON_ArrayForEach(s, tp)
            {
                fprintf(out, "  %.0f at concurrency %.0f (p99 %.2f ms)", bench_jnum(s, "qps", 0),
                        bench_jnum(s, "concurrency", 0), bench_jnum(get(s, "ms"), "p99", 0));
            }
            fprintf(out, "\n");
        }
        const cJSON *ov = get(st, "client_overhead");
        if (cJSON_IsTrue(get(ov, "ran")))
            fprintf(out, "  client overhead: pgmemctl p50 %.3f ms / pgbench p50 %.3f ms = %.3f\n",
                    bench_jnum(ov, "pgmemctl_p50_ms", 0), bench_jnum(ov, "pgbench_p50_ms", 0), bench_jnum(ov, "ratio", 0));
        else
            fprintf(out, "  client overhead: not measured (%s)\n", str_or(ov, "reason", "?"));
    }
    const cJSON *t;
    if (cJSON_GetArraySize(get(doc, "targets")) > 0)
        fprintf(out, "\ntargets:\n");
    cJSON_ArrayForEach(t, get(doc, "targets"))
    {
        fprintf(out, "  %-6s %-14s %-46s %9.3f %-2s %-6g\n", cJSON_IsTrue(get(t, "met")) ? "met" : "MISSED",
                str_or(t, "store", "?"), str_or(t, "name", "?"), bench_jnum(t, "value", 0), str_or(t, "op", "?"),
                bench_jnum(t, "limit", 0));
    }
}

/* bench.c — pgmemctl bench's run: the environment block, the store's shape (rows, dimension,
 * HNSW index), and for the target or each scratch size the load, the query set and the
 * measurements (bench_scratch.c, bench_query.c, bench_pgbench.c). */
#include "bench_int.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One setting into buf ("" when it does not exist). */
static void setting(pg_conn *c, const char *name, char *buf, size_t len)
{
    const char *params[] = {name};
    bool found;
    char *v = pg_query_text(c, "SELECT current_setting($1, true)", 1, params, &found);
    snprintf(buf, len, "%s", found ? v : "");
    free(v);
}

/* The version of the vector extension installed in c's database into env; with may_create
 * (a scratch run, which writes anyway) creates it first when it is missing. Sets *refused when
 * the database has none and it cannot be created: nothing was written then. */
static bool vector_extension(pg_conn *c, bool may_create, bench_env *env, bool *refused)
{
    bool found;
    char *v = pg_query_text(c, "SELECT extversion FROM pg_extension WHERE extname = 'vector'", 0, NULL, &found);
    if (!found && pg_errmsg(c)[0]) {
        log_error("bench: reading pg_extension: %s", pg_errmsg(c));
        free(v);
        return false;
    }
    if (!found && !may_create) {
        log_error("bench: the vector extension is not installed in this database, so it holds no memory store to "
                  "measure (CREATE EXTENSION vector, then pgmemctl migrate up and copy or reembed)");
        *refused = true;
    } else if (!found) {
        free(v);
        char *who = pg_query_text(c, "SELECT format('database %I as role %I', current_database(), current_user)", 0,
                                  NULL, &found);
        char *avail = pg_query_text(c, "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'", 0,
                                    NULL, &found);
        if (!found) {
            log_error("bench: the vector extension is not installed in this database and the server has no pgvector "
                      "to install (pg_available_extensions has no vector): install pgvector on the database server "
                      "(Debian: apt-get install postgresql-%d-pgvector), then run CREATE EXTENSION vector; in %s",
                      pg_server_version(c) / 10000, who ? who : "this database");
            *refused = true;
            v = NULL;
        } else if (!pg_run(c, "CREATE EXTENSION IF NOT EXISTS vector", 0, NULL)) {
            char err[512];
            log_error("bench: the vector extension is not installed and this role may not create it: %s. "
                      "Have a superuser (or a role that may) run, in %s: CREATE EXTENSION vector;",
                      pg_error_text(c, err, sizeof err), who ? who : "this database");
            *refused = true;
            v = NULL;
        } else {
            v = pg_query_text(c, "SELECT extversion FROM pg_extension WHERE extname = 'vector'", 0, NULL, &found);
            env->vector_created = true;
            log_info("bench: created the vector extension %s in %s (CREATE EXTENSION vector); it stays installed",
                     v ? v : "?", who ? who : "this database");
        }
        free(who);
        free(avail);
    }
    if (v)
        snprintf(env->pgvector_version, sizeof env->pgvector_version, "%s", v);
    free(v);
    return env->pgvector_version[0] != '\0';
}

static bool read_env(pg_conn *c, bool may_create, bench_env *env, bool *refused)
{
    if (!vector_extension(c, may_create, env, refused))
        return false;
    /* loads pgvector's library in this session, so that its settings (hnsw.*) exist */
    if (!pg_run(c, "SELECT NULL::vector", 0, NULL)) {
        log_error("bench: the vector type is not usable on this session's search_path: %s", pg_errmsg(c));
        return false;
    }
    setting(c, "server_version", env->server_version, sizeof env->server_version);
    env->server_version_num = pg_server_version(c);
    setting(c, "shared_buffers", env->shared_buffers, sizeof env->shared_buffers);
    setting(c, "maintenance_work_mem", env->maintenance_work_mem, sizeof env->maintenance_work_mem);
    setting(c, "work_mem", env->work_mem, sizeof env->work_mem);
    setting(c, "effective_cache_size", env->effective_cache_size, sizeof env->effective_cache_size);
    setting(c, "max_parallel_maintenance_workers", env->max_parallel_maintenance_workers,
            sizeof env->max_parallel_maintenance_workers);
    setting(c, "max_parallel_workers_per_gather", env->max_parallel_workers_per_gather,
            sizeof env->max_parallel_workers_per_gather);
    setting(c, "hnsw.ef_search", env->hnsw_ef_search, sizeof env->hnsw_ef_search);
    setting(c, "hnsw.iterative_scan", env->hnsw_iterative_scan, sizeof env->hnsw_iterative_scan);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    env->client_cpus = cpus > 0 ? (int) cpus : 0;
    env->libpq_version = pg_lib_version();
    return true;
}

/* Rows, dimension, the HNSW index and sizes of the memories table on the search_path. */
static bool inspect_store(pg_conn *c, bench_store *st)
{
    if (!pg_query_int64(c, "SELECT count(*) FROM memories", 0, NULL, &st->rows) ||
        !pg_query_int64(c, "SELECT count(embedding) FROM memories", 0, NULL, &st->rows_with_vector) ||
        !pg_query_int64(c, "SELECT pg_total_relation_size('memories'::regclass)", 0, NULL, &st->table_bytes)) {
        log_error("bench: reading the memories table: %s", pg_errmsg(c));
        return false;
    }
    int64_t dim = 0;
    if (!pg_query_int64(c,
                        "SELECT coalesce(nullif(a.atttypmod, -1), (SELECT vector_dims(embedding) FROM memories "
                        "WHERE embedding IS NOT NULL LIMIT 1), 0) FROM pg_attribute a "
                        "WHERE a.attrelid = 'memories'::regclass AND a.attname = 'embedding'",
                        0, NULL, &dim)) {
        log_error("bench: memories has no usable embedding column: %s", pg_errmsg(c));
        return false;
    }
    st->dimension = (int) dim;
    pg_result *r = pg_exec(c,
                           "SELECT c.relname, pg_get_indexdef(c.oid), opc.opcname, pg_relation_size(c.oid), "
                           "  coalesce((SELECT option_value FROM pg_options_to_table(c.reloptions) "
                           "            WHERE option_name = 'm'), '16'), "
                           "  coalesce((SELECT option_value FROM pg_options_to_table(c.reloptions) "
                           "            WHERE option_name = 'ef_construction'), '64') "
                           "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                           "JOIN pg_am am ON am.oid = c.relam JOIN pg_opclass opc ON opc.oid = i.indclass[0] "
                           "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                           "WHERE i.indrelid = 'memories'::regclass AND am.amname = 'hnsw' AND a.attname = 'embedding' "
                           "  AND i.indisvalid AND i.indisready AND i.indpred IS NULL "
                           "ORDER BY c.relname LIMIT 1",
                           0, NULL);
    if (!r) {
        log_error("bench: reading the indexes of memories: %s", pg_errmsg(c));
        return false;
    }
    st->has_index = pg_ntuples(r) > 0;
    if (st->has_index) {
        snprintf(st->index_name, sizeof st->index_name, "%s", pg_value(r, 0, 0));
        snprintf(st->index_def, sizeof st->index_def, "%s", pg_value(r, 0, 1));
        snprintf(st->index_opclass, sizeof st->index_opclass, "%s", pg_value(r, 0, 2));
        st->index_bytes = strtoll(pg_value(r, 0, 3), NULL, 10);
        st->index_m = atoi(pg_value(r, 0, 4));
        st->index_ef_construction = atoi(pg_value(r, 0, 5));
        if (strcmp(st->index_opclass, "vector_cosine_ops"))
            log_warn("bench: %s uses %s, but the searches order by cosine distance (<=>): it will not serve them",
                     st->index_name, st->index_opclass);
    } else {
        log_warn("bench: memories.embedding has no valid HNSW index: every vector search is exact (a sequential "
                 "scan)");
    }
    pg_clear(r);
    return true;
}

/* The ef_search values to measure: the request's plus the session's default, ascending. */
static int *ef_list(const bench_request *req, int def, int *n)
{
    int *v = malloc((size_t) (req->nef + 1) * sizeof *v);
    if (!v)
        return NULL;
    int m = 0;
    bool have = def <= 0;
    for (int i = 0; i < req->nef; i++) {
        if (!have && def < req->ef_search[i]) {
            v[m++] = def;
            have = true;
        }
        if (req->ef_search[i] == def)
            have = true;
        v[m++] = req->ef_search[i];
    }
    if (!have)
        v[m++] = def;
    *n = m;
    return v;
}

static bool current_search_path(pg_conn *c, char *buf, size_t len)
{
    bool found;
    char *v = pg_query_text(c, "SELECT current_setting('search_path')", 0, NULL, &found);
    snprintf(buf, len, "%s", found ? v : "");
    free(v);
    return found;
}

/* Measures the store on c's search_path (already loaded, session read-only). */
static bool measure_store(pg_conn *c, const bench_request *req, const bench_env *env, const bench_query_set *qs,
                          const char *search_path, bench_store *st)
{
    if (!inspect_store(c, st))
        return false;
    st->default_ef = atoi(env->hnsw_ef_search);
    if (st->default_ef <= 0)
        st->default_ef = 40; /* pgvector's default */
    log_info("bench: %s: %lld memories, %d dimensions, %s%s", st->scratch ? st->schema : "memories",
             (long long) st->rows, st->dimension, st->has_index ? "HNSW index " : "no HNSW index",
             st->has_index ? st->index_name : "");
    int nef = 0;
    int *efs = ef_list(req, st->default_ef, &nef);
    if (!efs) {
        log_error("out of memory");
        return false;
    }
    bool ok = bench_measure_series(c, req, qs, efs, nef, st) && bench_measure_qps(req, qs, search_path, st) &&
              bench_measure_overhead(c, req, qs->n < req->queries ? qs->n : req->queries, search_path, st);
    free(efs);
    return ok;
}

static bool run_target(pg_conn *c, const bench_request *req, bench_result *res)
{
    bench_store *st = &res->stores[0];
    res->nstores = 1;
    bench_query_set qs = {0};
    char sp[512];
    bool ok = current_search_path(c, sp, sizeof sp) && bench_target_queries(c, req->queries, &qs);
    if (ok)
        log_info("bench: %d queries: the first memories with a vector by id (vectors and words of their content)",
                 qs.n);
    ok = ok && measure_store(c, req, &res->env, &qs, sp, st);
    bench_query_set_free(&qs);
    return ok;
}

/* The sample of a scratch run: the file, checked to hold the largest store and the query set
 * after it, or generated memories. NULL after logging (res->refused when it is the sample's
 * fault). */
static bench_sample *open_sample(const bench_request *req, int64_t largest, int *dim, bench_result *res)
{
    if (!req->sample) {
        *dim = req->dim;
        return bench_sample_generate(req->seed, req->dim);
    }
    int64_t sample_rows = 0;
    bench_sample *s = bench_sample_open(req->sample, &sample_rows, dim);
    if (s && sample_rows < largest + req->queries) {
        int64_t left = sample_rows - largest;
        if (left > 0)
            log_error("bench: --queries %d is more than the %lld memories %s has after the largest scratch store "
                      "(--scratch %lld of its %lld; the query set is held out of the stores): use --queries %lld or "
                      "less, build a larger sample (%lld memories), or leave out --sample to generate the memories",
                      req->queries, (long long) left, req->sample, (long long) largest, (long long) sample_rows,
                      (long long) left, (long long) largest + req->queries);
        else
            log_error("bench: %s has %lld memories with an embedding; --scratch %lld and --queries %d need %lld (the "
                      "query set is held out of the stores): build a larger sample, or leave out --sample to "
                      "generate the memories",
                      req->sample, (long long) sample_rows, (long long) largest, req->queries,
                      (long long) largest + req->queries);
        bench_sample_close(s);
        s = NULL;
    }
    res->refused = s == NULL;
    return s;
}

static bool run_scratch(pg_conn *c, const bench_request *req, bench_result *res)
{
    int64_t largest = 0;
    int dim = 0;
    for (int i = 0; i < req->nscratch; i++)
        if (req->scratch[i] > largest)
            largest = req->scratch[i];
    bench_sample *s = open_sample(req, largest, &dim, res);
    if (!s)
        return false;
    if (!read_env(c, true, &res->env, &res->refused)) {
        bench_sample_close(s);
        return false;
    }
    if (!req->sample)
        log_info("bench: generating the scratch memories (seed %llu, builtin:hash-%d embeddings)",
                 (unsigned long long) req->seed, req->dim);
    bench_query_set qs = {0};
    bool ok = bench_sample_queries(s, largest, req->queries, &qs);
    if (ok)
        log_info("bench: %d queries: %s memories %lld..%lld, held out of every scratch store", qs.n,
                 req->sample ? "sample" : "generated", (long long) largest + 1, (long long) largest + qs.n);
    for (int i = 0; ok && i < req->nscratch; i++) {
        bench_store *st = &res->stores[res->nstores++];
        ok = bench_scratch_load(c, req, s, req->scratch[i], dim, st);
        char sp[512];
        ok = ok && current_search_path(c, sp, sizeof sp) &&
             pg_run(c, "SET default_transaction_read_only = on", 0, NULL);
        ok = ok && measure_store(c, req, &res->env, &qs, sp, st);
        bench_scratch_drop(c, st);
    }
    bench_query_set_free(&qs);
    bench_sample_close(s);
    return ok;
}

bool bench_run(pg_conn *c, const bench_request *req, bench_result *res)
{
    memset(res, 0, sizeof *res);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(res->started_at, sizeof res->started_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    double t0 = bench_now();
    int n = req->nscratch > 0 ? req->nscratch : 1;
    res->stores = calloc((size_t) n, sizeof *res->stores);
    if (!res->stores) {
        log_error("out of memory");
        snprintf(res->error, sizeof res->error, "out of memory");
        return false;
    }
    /* a target is never written: every transaction of this session is read-only from here on */
    bool ok = req->nscratch > 0 || pg_run(c, "SET default_transaction_read_only = on", 0, NULL);
    if (!ok)
        log_error("bench: could not make the session read-only: %s", pg_errmsg(c));
    if (ok)
        ok = req->nscratch > 0 ? run_scratch(c, req, res)
                               : read_env(c, false, &res->env, &res->refused) && run_target(c, req, res);
    res->seconds = bench_now() - t0;
    if (!ok)
        snprintf(res->error, sizeof res->error, "%s", log_last_error()[0] ? log_last_error() : "the run failed");
    return ok;
}

void bench_result_free(bench_result *res)
{
    for (int i = 0; i < res->nstores; i++) {
        bench_store *st = &res->stores[i];
        for (int j = 0; j < st->nseries; j++)
            free(st->series[j].samples_ms);
        free(st->series);
        free(st->qps);
    }
    free(res->stores);
    memset(res, 0, sizeof *res);
}

/* test_bench.c — integration tests of `pgmemctl bench` against the sandbox cluster: scratch runs
 * of 1,000 memories from a real sample (structure and sanity of every figure, the chart read by
 * xmllint, the scratch schema dropped), exact search giving recall 1, `bench --scratch 1000`
 * alone on a fresh database (generated memories, the vector extension created), generated
 * stores that repeat with their seed and take more queries than memories, the refusals (a role
 * that may not create the extension, a sample too small), read-only behaviour on a
 * target store (pg_stat_user_tables write counters and the catalog unchanged, connected with a
 * password that is never printed), --compare on
 * two files, and usage errors. Timings are never asserted beyond their sanity (p50 <= p99,
 * QPS > 0): the machine is shared. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/testutil.h"
#include "common/vestige_fixture.h"

TestSuite(bench, .fini = tu_leak_check, .timeout = 600);

#define QUERIES 40
#define SECRET "sandbox-secret-pw" /* scripts/pg-sandbox's role pgmemctl_pw */
#define QUERIES_S "40"

static const cJSON *get(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert(x, "no \"%s\" in %s", k, o && o->string ? o->string : "object");
    return x;
}

/* A fresh database with the vector extension (what a scratch run needs). */
static char *vector_db(void)
{
    char *db = tu_fresh_db();
    tu_exec(db, "CREATE EXTENSION vector");
    return db;
}

/* The series of kind at ef_search ef (0: null ef_search) in a store, or NULL. */
static const cJSON *series(const cJSON *store, const char *kind, int ef)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, get(store, "latency"))
    {
        const cJSON *e = get(s, "ef_search");
        int sef = cJSON_IsNumber(e) ? (int) e->valuedouble : 0;
        if (!strcmp(tu_json_str(s, "kind"), kind) && sef == ef)
            return s;
    }
    return NULL;
}

/* Sanity of one latency series: queries, ordered percentiles, samples with --raw. */
static void check_series(const cJSON *s, int queries, bool raw)
{
    const char *kind = tu_json_str(s, "kind");
    cr_assert_eq((int) tu_json_num(s, "queries"), queries, "%s: queries", kind);
    const cJSON *ms = get(s, "ms");
    double p50 = tu_json_num(ms, "p50"), p95 = tu_json_num(ms, "p95"), p99 = tu_json_num(ms, "p99"),
           max = tu_json_num(ms, "max");
    cr_assert(p50 > 0 && p50 <= p95 && p95 <= p99 && p99 <= max, "%s: p50 %g p95 %g p99 %g max %g", kind, p50, p95,
              p99, max);
    if (raw) {
        const cJSON *samples = tu_json_array(s, "samples_ms");
        cr_assert_eq(cJSON_GetArraySize(samples), queries, "%s: samples", kind);
        double smax = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, samples) smax = fmax(smax, x->valuedouble);
        cr_assert(fabs(smax - max) < 0.01, "%s: the largest sample %g is not max %g", kind, smax, max);
    }
}

/* No scratch schema is left in db. */
static void expect_no_scratch_schema(const char *db)
{
    long long n = tu_query_int(db, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pgmemctl_bench_%'");
    cr_assert_eq(n, 0, "a scratch schema was left behind");
}

Test(bench, scratch_1000_structure_recall_qps_overhead_and_chart)
{
    char *sample = vf_sample(1000 + QUERIES, 768);
    char *db = vector_db();
    char *dir = tu_tempdir();
    char *svg = tu_printf("%s/chart.svg", dir);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", db, "bench", "--scratch", "1000", "--sample", sample,
                                                   "--queries", QUERIES_S, "--warmup", "3", "--ef-search", "10,40",
                                                   "--concurrency", "1,2", "--duration", "0.5", "--raw", "--plot", svg,
                                                   NULL});
    tu_expect_status(&r, 0, "bench --scratch 1000");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "command"), "bench");
    cr_assert_str_eq(tu_json_str(doc, "status"), "ok");
    cr_assert_str_eq(tu_json_str(doc, "plot"), svg);

    const cJSON *env = get(doc, "environment"), *set = get(env, "settings");
    cr_assert(tu_contains(tu_json_str(env, "server_version"), "15"));
    cr_assert(strlen(tu_json_str(env, "pgvector")) > 0);
    static const char *const settings[] = {"shared_buffers", "maintenance_work_mem",
                                           "max_parallel_maintenance_workers", "hnsw.ef_search"};
    for (size_t i = 0; i < sizeof settings / sizeof *settings; i++)
        cr_assert(strlen(tu_json_str(set, settings[i])) > 0, "setting %s", settings[i]);
    cr_assert(cJSON_IsString(get(set, "hnsw.iterative_scan")), "pgvector 0.8 has hnsw.iterative_scan");
    cr_assert_geq(tu_json_num(env, "client_cpus"), 1);

    const cJSON *stores = tu_json_array(doc, "stores");
    cr_assert_eq(cJSON_GetArraySize(stores), 1);
    const cJSON *st = cJSON_GetArrayItem(stores, 0);
    cr_assert(tu_json_bool(st, "scratch"));
    cr_assert_eq(tu_json_num(st, "rows"), 1000);
    cr_assert_eq(tu_json_num(st, "dimension"), 768);
    const cJSON *ix = get(st, "index");
    cr_assert_str_eq(tu_json_str(ix, "opclass"), "vector_cosine_ops");
    cr_assert_eq(tu_json_num(ix, "m"), 16);
    cr_assert_eq(tu_json_num(ix, "ef_construction"), 64);
    cr_assert_gt(tu_json_num(ix, "bytes"), 0);
    const cJSON *load = get(st, "load");
    cr_assert_eq(tu_json_num(load, "rows"), 1000);
    cr_assert_gt(tu_json_num(load, "rows_per_second"), 0);
    cr_assert_gt(tu_json_num(load, "index_build_seconds"), 0);
    cr_assert(tu_json_bool(load, "graph_fit_in_maintenance_work_mem"), "1,000 vectors fit in 1GB");
    cr_assert_str_eq(tu_json_str(load, "maintenance_work_mem"), "1GB");

    const cJSON *q = get(st, "queries");
    cr_assert_eq(tu_json_num(q, "count"), QUERIES);
    int with_domains = (int) tu_json_num(q, "with_domains");
    cr_assert_eq(with_domains, QUERIES, "every sample memory has a section tag");
    double hit = tu_json_num(q, "fts_hit_rate");
    cr_assert(hit >= 0 && hit <= 1);
    cr_assert_eq(tu_json_num(st, "default_ef_search"), 40);

    /* every kind present; HNSW kinds at each ef_search with recall in [0, 1] */
    static const char *const hnsw_kinds[] = {"vector", "hybrid", "hybrid_domain"};
    static const int efs[] = {10, 40};
    for (size_t i = 0; i < 3; i++)
        for (size_t e = 0; e < 2; e++) {
            const cJSON *s = series(st, hnsw_kinds[i], efs[e]);
            cr_assert(s, "no %s series at ef_search %d", hnsw_kinds[i], efs[e]);
            check_series(s, QUERIES, true);
            double recall = tu_json_num(s, "recall");
            cr_assert(recall >= 0 && recall <= 1, "%s recall %g", hnsw_kinds[i], recall);
            /* recall is counted over the whole query set: k exact results per query (fewer only
             * where a domain has fewer than k memories) */
            double total = tu_json_num(s, "recall_total");
            if (i < 2)
                cr_assert_eq(total, QUERIES * 10.0, "%s: recall over the whole query set", hnsw_kinds[i]);
            else
                cr_assert(total > QUERIES * 5.0 && total <= QUERIES * 10.0, "hybrid_domain: recall_total %g", total);
            cr_assert_eq(tu_json_num(s, "recall"), round(tu_json_num(s, "recall_hits") / total * 1000) / 1000);
            cr_assert(cJSON_IsBool(get(s, "index_used")));
        }
    /* the vector query at ef_search 10 scans the index (a 1,000-row table, LIMIT 10) */
    cr_assert(tu_json_bool(series(st, "vector", 10), "index_used"));
    const cJSON *fts = series(st, "fts", 0);
    cr_assert(fts, "no fts series");
    check_series(fts, QUERIES, true);
    cr_assert(cJSON_IsNull(get(fts, "recall")));
    cr_assert_eq(cJSON_GetArraySize(get(st, "latency")), 7, "3 HNSW kinds x 2 ef_search + fts");

    const cJSON *tp = tu_json_array(st, "throughput");
    cr_assert_eq(cJSON_GetArraySize(tp), 2);
    int want_c[] = {1, 2}, i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, tp)
    {
        cr_assert_eq(tu_json_num(x, "concurrency"), want_c[i++]);
        cr_assert_gt(tu_json_num(x, "qps"), 0);
        cr_assert_gt(tu_json_num(x, "queries"), 0);
        cr_assert_eq(tu_json_num(x, "errors"), 0);
        cr_assert(tu_json_num(get(x, "ms"), "p50") <= tu_json_num(get(x, "ms"), "p99"));
    }
    const cJSON *ov = get(st, "client_overhead");
    cr_assert(tu_json_bool(ov, "ran"), "pgbench comparison did not run: %s", cJSON_Print(ov));
    cr_assert_eq(tu_json_num(ov, "transactions"), 2 * QUERIES);
    cr_assert_gt(tu_json_num(ov, "pgbench_p50_ms"), 0);
    cr_assert_gt(tu_json_num(ov, "ratio"), 0);

    const cJSON *targets = tu_json_array(doc, "targets");
    cr_assert_eq(cJSON_GetArraySize(targets), 5, "hybrid p50 and p99, vector and hybrid recall, overhead");

    /* progress and the table on stderr */
    cr_assert(tu_contains(r.err, "hybrid_domain"), "%s", r.err);
    cr_assert(tu_contains(r.err, "client overhead: pgmemctl p50"), "%s", r.err);
    cr_assert(tu_contains(r.err, "dropped the scratch schema"), "%s", r.err);
    expect_no_scratch_schema(db);

    /* the chart: a valid SVG document */
    char *svgtext = tu_read_file(svg);
    cr_assert(tu_contains(svgtext, "<svg"), "not an SVG");
    cr_assert(tu_contains(svgtext, "recall@10"), "the recall chart's title is missing");
    free(svgtext);
    char *cmd = tu_printf("xmllint --noout '%s' 2>&1", svg);
    int rc = system(cmd);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "xmllint rejects %s", svg);
    free(cmd);

    /* the run against itself: every figure matched, no change */
    char *saved = tu_write_file(dir, "run.json", r.out);
    tu_run_result c = tu_run((const char *const[]){"pgmemctl", "bench", "--compare", saved, saved, "--max-regression",
                                                   "0", NULL});
    tu_expect_status(&c, 0, "bench --compare run.json run.json");
    cJSON *cmp = tu_json(c.out);
    const cJSON *figs = tu_json_array(get(cmp, "compare"), "figures");
    cr_assert_gt(cJSON_GetArraySize(figs), 20);
    cJSON_ArrayForEach(x, figs) cr_assert_eq(tu_json_num(x, "change_pct"), 0);
    cr_assert_eq(cJSON_GetArraySize(get(get(cmp, "compare"), "unmatched")), 0);
    cJSON_Delete(cmp);
    tu_run_free(&c);

    free(saved);
    cJSON_Delete(doc);
    tu_run_free(&r);
    tu_rmtree(dir);
    free(dir);
    free(svg);
    tu_drop_db(db);
    free(db);
    free(sample);
}

Test(bench, scratch_without_index_is_exact_search_with_recall_1)
{
    char *sample = vf_sample(1000 + QUERIES, 768);
    char *db = vector_db();
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-q", "-d", db, "bench", "--scratch", "1000",
                                                   "--sample", sample, "--no-index", "--queries", QUERIES_S, "--warmup",
                                                   "0", "--concurrency", "1", "--duration", "0.3", "--no-pgbench", NULL});
    tu_expect_status(&r, 0, "bench --no-index");
    cr_assert_str_eq(r.err, "", "-q prints nothing on stderr: %s", r.err);
    cJSON *doc = tu_json(r.out);
    const cJSON *st = cJSON_GetArrayItem(tu_json_array(doc, "stores"), 0);
    cr_assert(cJSON_IsNull(get(st, "index")));
    cr_assert(cJSON_IsNull(get(get(st, "load"), "index_build_seconds")));
    int hnsw_kinds = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, get(st, "latency"))
    {
        check_series(s, QUERIES, false);
        cr_assert(cJSON_IsNull(get(s, "ef_search")));
        if (!strcmp(tu_json_str(s, "kind"), "fts"))
            continue;
        hnsw_kinds++;
        cr_assert_eq(tu_json_num(s, "recall"), 1.0, "%s: exact search against exact search", tu_json_str(s, "kind"));
        cr_assert_eq(tu_json_num(s, "recall_hits"), tu_json_num(s, "recall_total"));
        cr_assert_gt(tu_json_num(s, "recall_total"), 0);
    }
    cr_assert_eq(hnsw_kinds, 3, "vector, hybrid, hybrid_domain");
    const cJSON *ov = get(st, "client_overhead");
    cr_assert(!tu_json_bool(ov, "ran"));
    cr_assert(tu_contains(tu_json_str(ov, "reason"), "--no-pgbench"));
    expect_no_scratch_schema(db);
    cJSON_Delete(doc);
    tu_run_free(&r);
    tu_drop_db(db);
    free(db);
    free(sample);
}

/* The write counters of every user table, as one string. */
static char *write_counters(const char *db)
{
    return tu_query_value(db, "SELECT string_agg(format('%s.%s ins %s upd %s del %s hot %s', schemaname, relname,"
                              " n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd), '; ' ORDER BY schemaname, relname)"
                              " FROM pg_stat_user_tables");
}

Test(bench, target_store_is_only_read)
{
    char *db = tu_fresh_db();
    tu_run_result m = tu_run((const char *const[]){"pgmemctl", "-d", db, "migrate", "up", NULL});
    tu_expect_status(&m, 0, "migrate up");
    tu_run_free(&m);
    tu_exec(db, "INSERT INTO embedding_model (name, dimension) VALUES ('builtin:hash-16', 16);"
                "ALTER TABLE memories ALTER COLUMN embedding TYPE vector(16);"
                "INSERT INTO memories (id, content, tags, domains, embedding)"
                " SELECT gen_random_uuid(), 'memory ' || g || ' about postgres vector search and indexes',"
                "        ARRAY['tag' || (g % 7)], CASE WHEN g % 2 = 0 THEN ARRAY['domain' || (g % 3)] ELSE '{}' END,"
                "        (SELECT array_agg(sin(g * i + i))::vector FROM generate_series(1, 16) i)"
                " FROM generate_series(1, 400) g;"
                "SELECT pgmemctl_ensure_hnsw();");
    tu_exec(db, "VACUUM ANALYZE memories");
    char *before = write_counters(db);
    char *snap = tu_catalog_snapshot(db);
    long long scans_before = tu_query_int(db, "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) "
                                              "FROM pg_stat_user_tables WHERE relname = 'memories'");
    /* as the role with a password (over TCP, scram): pgbench and the extra connections must get it
     * without it ever being printed, -v included */
    char *host = tu_test_host(), *port = tu_test_port(), *dbname = tu_db_name(db);
    char *pwuri = tu_printf(strchr(host, ':') ? "postgresql://pgmemctl_pw:" SECRET "@[%s]:%s/%s"
                                              : "postgresql://pgmemctl_pw:" SECRET "@%s:%s/%s",
                            host, port, dbname);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-v", "-d", pwuri, "bench", "--queries", "30", "--warmup",
                                                   "2", "--ef-search", "40", "--concurrency", "1,2", "--duration", "0.3",
                                                   NULL});
    tu_expect_status(&r, 0, "bench on the target");
    cr_assert_not(tu_contains(r.out, SECRET), "the password appears on stdout");
    cr_assert_not(tu_contains(r.err, SECRET), "the password appears on stderr");
    free(host);
    free(port);
    free(dbname);
    free(pwuri);
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(get(doc, "options"), "mode"), "target");
    const cJSON *st = cJSON_GetArrayItem(tu_json_array(doc, "stores"), 0);
    cr_assert(!tu_json_bool(st, "scratch"));
    cr_assert_eq(tu_json_num(st, "rows"), 400);
    cr_assert_eq(tu_json_num(st, "dimension"), 16);
    cr_assert_str_eq(tu_json_str(get(st, "index"), "name"), "idx_memories_embedding_hnsw");
    cr_assert(!cJSON_GetObjectItemCaseSensitive(st, "load"), "a target has no load figures");
    long long with_domains = tu_query_int(db, "SELECT count(*) FROM (SELECT domains FROM memories WHERE embedding IS "
                                              "NOT NULL ORDER BY id LIMIT 30) q WHERE cardinality(domains) > 0");
    cr_assert_gt(with_domains, 0);
    cr_assert_eq(tu_json_num(get(st, "queries"), "with_domains"), with_domains);
    for (int k = 0; k < 4; k++) {
        static const char *const kinds[] = {"vector", "fts", "hybrid", "hybrid_domain"};
        cr_assert(series(st, kinds[k], k == 1 ? 0 : 40), "no %s series", kinds[k]);
    }
    cr_assert_eq(tu_json_num(series(st, "hybrid_domain", 40), "queries"),
                 tu_json_num(get(st, "queries"), "with_domains"));
    cr_assert_gt(tu_json_num(get(st, "queries"), "fts_hit_rate"), 0.9, "the words of stored contents match");
    cr_assert(tu_json_bool(get(st, "client_overhead"), "ran"));
    cJSON_Delete(doc);
    tu_run_free(&r);

    char *after = write_counters(db);
    cr_assert_str_eq(after, before, "bench wrote to the target store");
    char *snap2 = tu_catalog_snapshot(db);
    cr_assert_str_eq(snap2, snap, "bench changed the target's catalog");
    long long scans_after = tu_query_int(db, "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) "
                                             "FROM pg_stat_user_tables WHERE relname = 'memories'");
    cr_assert_gt(scans_after, scans_before + 100, "the counters did move: bench read memories");
    free(before);
    free(after);
    free(snap);
    free(snap2);
    tu_drop_db(db);
    free(db);
}

/* A small bench document with one scratch store of 1000 memories. */
static char *doc_text(double p50, double p95, double qps, double recall)
{
    return tu_printf("{\"command\": \"bench\", \"started_at\": \"2026-01-0%dT00:00:00Z\", \"stores\": [{"
                     "\"scratch\": true, \"rows\": 1000,"
                     "\"load\": {\"rows_per_second\": 5000, \"index_build_seconds\": 0.5},"
                     "\"index\": {\"bytes\": 4000000},"
                     "\"latency\": [{\"kind\": \"hybrid\", \"ef_search\": 40, \"ms\": {\"p50\": %g, \"p95\": %g,"
                     " \"p99\": 4}, \"recall\": %g}, {\"kind\": \"fts\", \"ef_search\": null,"
                     " \"ms\": {\"p50\": 0.1, \"p95\": 0.2, \"p99\": 0.3}, \"recall\": null}],"
                     "\"throughput\": [{\"concurrency\": 1, \"qps\": %g}],"
                     "\"client_overhead\": {\"ran\": true, \"ratio\": 1.0}}]}",
                     p50 == 2 ? 1 : 2, p50, p95, recall, qps);
}

static const cJSON *figure(const cJSON *cmp, const char *name)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, tu_json_array(cmp, "figures"))
    {
        if (!strcmp(tu_json_str(x, "figure"), name))
            return x;
    }
    cr_assert_fail("no figure \"%s\"", name);
    return NULL;
}

Test(bench, compare_two_files)
{
    char *dir = tu_tempdir();
    char *o = doc_text(2, 3, 100, 0.9), *n = doc_text(3, 3.3, 80, 0.9);
    char *old_path = tu_write_file(dir, "old.json", o), *new_path = tu_write_file(dir, "new.json", n);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "bench", "--compare", old_path, new_path, NULL});
    tu_expect_status(&r, 0, "compare without a limit");
    cJSON *doc = tu_json(r.out);
    const cJSON *cmp = get(doc, "compare");
    cr_assert_str_eq(tu_json_str(cmp, "old"), "2026-01-01T00:00:00Z");
    const cJSON *p50 = figure(cmp, "hybrid ef_search=40 p50 ms");
    cr_assert_str_eq(tu_json_str(p50, "store"), "scratch 1000");
    cr_assert_eq(tu_json_num(p50, "old"), 2);
    cr_assert_eq(tu_json_num(p50, "new"), 3);
    cr_assert_eq(tu_json_num(p50, "change_pct"), 50);
    cr_assert_str_eq(tu_json_str(p50, "better"), "lower");
    cr_assert_eq(tu_json_num(figure(cmp, "QPS at concurrency 1"), "change_pct"), -20);
    cr_assert_str_eq(tu_json_str(figure(cmp, "QPS at concurrency 1"), "better"), "higher");
    cr_assert_eq(tu_json_num(figure(cmp, "hybrid ef_search=40 recall"), "change_pct"), 0);
    cr_assert_eq(tu_json_num(figure(cmp, "fts p50 ms"), "change_pct"), 0);
    cr_assert_eq(tu_json_num(cmp, "regressions"), 0, "no limit, no regression");
    cr_assert(tu_contains(r.err, "+50.0%"), "%s", r.err);
    cJSON_Delete(doc);
    tu_run_free(&r);

    /* beyond 25 %: the p50 (+50 %) is a regression; QPS (-20 %) and p95 (+10 %) are not */
    r = tu_run((const char *const[]){"pgmemctl", "bench", "--compare", old_path, new_path, "--max-regression", "25",
                                     NULL});
    tu_expect_status(&r, 3, "compare with --max-regression 25");
    doc = tu_json(r.out);
    cmp = get(doc, "compare");
    cr_assert_eq(tu_json_num(cmp, "regressions"), 1);
    cr_assert(tu_json_bool(figure(cmp, "hybrid ef_search=40 p50 ms"), "regression"));
    cr_assert(!tu_json_bool(figure(cmp, "QPS at concurrency 1"), "regression"));
    cr_assert(tu_contains(r.err, "REGRESSION"), "%s", r.err);
    cJSON_Delete(doc);
    tu_run_free(&r);

    /* improvements are never regressions, however large */
    r = tu_run((const char *const[]){"pgmemctl", "bench", "--compare", new_path, old_path, "--max-regression", "10",
                                     NULL});
    tu_expect_status(&r, 0, "the reverse comparison: every figure got better or stayed");
    doc = tu_json(r.out);
    cr_assert_eq(tu_json_num(get(doc, "compare"), "regressions"), 0);
    cr_assert_eq(tu_json_num(figure(get(doc, "compare"), "hybrid ef_search=40 p50 ms"), "change_pct"), -33.3);
    cJSON_Delete(doc);
    tu_run_free(&r);

    /* not a bench document, a missing file */
    char *other = tu_write_file(dir, "other.json", "{\"command\": \"verify\"}");
    r = tu_run((const char *const[]){"pgmemctl", "bench", "--compare", old_path, other, NULL});
    tu_expect_status(&r, 2, "compare with a verify document");
    cr_assert(tu_contains(r.err, "not the JSON of pgmemctl bench"), "%s", r.err);
    tu_run_free(&r);
    char *missing = tu_printf("%s/missing.json", dir);
    r = tu_run((const char *const[]){"pgmemctl", "bench", "--compare", missing, old_path, NULL});
    tu_expect_status(&r, 2, "compare with a missing file");
    tu_run_free(&r);

    free(missing);
    free(other);
    free(o);
    free(n);
    free(old_path);
    free(new_path);
    tu_rmtree(dir);
    free(dir);
}

Test(bench, usage_errors_exit_2_before_connecting)
{
    /* a database that does not exist: reaching the connection would be exit 1, not 2 */
    const char *db = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1";
    static const char *const cases[][8] = {
        {"--k", "0", NULL},
        {"--queries", "0", NULL},
        {"--ef-search", "0,40", NULL},
        {"--ef-search", "40,x", NULL},
        {"--concurrency", "", NULL},
        {"--duration", "0", NULL},
        {"--sample", "/tmp/x.db", NULL},
        {"--no-index", NULL},
        {"--max-regression", "5", NULL},
        {"unexpected", NULL},
        {"--scratch", "0", "--sample", "/tmp/x.db", NULL},
        {"--m", "40", "--ef-construction", "64", "--scratch", "10", "--sample", "/tmp/x.db"},
        {"--seed", "5", NULL},
        {"--dim", "64", NULL},
        {"--scratch", "10", "--sample", "/tmp/x.db", "--seed", "2", NULL},
        {"--scratch", "10", "--sample", "/tmp/x.db", "--dim", "64", NULL},
        {"--scratch", "10", "--dim", "0", NULL},
        {"--scratch", "10", "--dim", "2001", NULL},
        {"--scratch", "10", "--no-index", "--dim", "16001", NULL},
        {"--scratch", "10", "--seed", "-1", NULL},
        {"--bogus", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[16] = {"pgmemctl", "-d", db, "bench"};
        int a = 4;
        for (int j = 0; j < 8 && cases[i][j]; j++)
            argv[a++] = cases[i][j];
        argv[a] = NULL;
        tu_run_result r = tu_run(argv);
        char what[128];
        snprintf(what, sizeof what, "case %zu (%s %s)", i, cases[i][0], cases[i][1] ? cases[i][1] : "");
        tu_expect_status(&r, 2, what);
        cJSON *doc = tu_json(r.out);
        cr_assert_str_eq(tu_json_str(doc, "status"), "usage_error", "%s", what);
        cJSON_Delete(doc);
        tu_run_free(&r);
    }
}

/* The vector extension's version in db, or NULL when it is not installed. */
static char *vector_version(const char *db)
{
    return tu_query_value(db, "SELECT extversion FROM pg_extension WHERE extname = 'vector'");
}

Test(bench, scratch_alone_on_a_fresh_database)
{
    /* no extension, no sample, no option: what a new user types first */
    char *db = tu_fresh_db();
    cr_assert_null(vector_version(db), "a fresh database has no vector extension");
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", db, "bench", "--scratch", "1000", NULL});
    tu_expect_status(&r, 0, "bench --scratch 1000 alone");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "ok");

    /* the extension was created, and stays */
    char *ver = vector_version(db);
    cr_assert_not_null(ver, "the vector extension was not created");
    const cJSON *env = get(doc, "environment");
    cr_assert_str_eq(tu_json_str(env, "pgvector"), ver);
    cr_assert(tu_json_bool(env, "pgvector_created_by_this_run"));
    cr_assert(tu_contains(r.err, "created the vector extension"), "%s", r.err);
    free(ver);

    /* generated memories: seed 1, 768 dimensions */
    const cJSON *op = get(doc, "options");
    cr_assert(cJSON_IsNull(get(op, "sample")));
    const cJSON *gen = get(op, "generated");
    cr_assert_eq(tu_json_num(gen, "seed"), 1);
    cr_assert_eq(tu_json_num(gen, "dimension"), 768);
    cr_assert_str_eq(tu_json_str(gen, "embedding_model"), "builtin:hash-768");
    const cJSON *st = cJSON_GetArrayItem(tu_json_array(doc, "stores"), 0);
    cr_assert_eq(tu_json_num(st, "rows"), 1000);
    cr_assert_eq(tu_json_num(st, "rows_with_vector"), 1000);
    cr_assert_eq(tu_json_num(st, "dimension"), 768);
    cr_assert_str_eq(tu_json_str(get(st, "index"), "name"), "idx_memories_embedding_hnsw");
    const cJSON *q = get(st, "queries");
    cr_assert_eq(tu_json_num(q, "count"), 200);
    cr_assert_eq(tu_json_num(q, "with_domains"), 200, "every generated memory has a topic");
    cr_assert_str_eq(tu_json_str(q, "source"), "generated memories held out of the store");
    /* text that behaves like text: most queries find other memories, none finds them all */
    cr_assert_gt(tu_json_num(q, "fts_hit_rate"), 0.5);
    cr_assert_lt(tu_json_num(q, "fts_matches_max"), 500);
    /* and vectors whose neighbours are near but not identical */
    double d1 = tu_json_num(q, "exact_first_distance_mean"), d10 = tu_json_num(q, "exact_kth_distance_mean");
    cr_assert(d1 > 0 && d1 < d10 && d10 < 1, "neighbour distances %g, %g", d1, d10);

    /* hybrid latency and recall at the default ef_search, and the table on stderr */
    const cJSON *h = series(st, "hybrid", 40);
    cr_assert(h, "no hybrid series at ef_search 40");
    check_series(h, 200, false);
    double recall = tu_json_num(h, "recall");
    cr_assert(recall >= 0.9 && recall <= 1, "hybrid recall %g", recall);
    cr_assert(series(st, "hybrid_domain", 40), "no hybrid_domain series");
    cr_assert(tu_contains(r.err, "hybrid                40"), "no hybrid row in the table:\n%s", r.err);
    cr_assert(tu_contains(r.err, "hybrid recall@k (ef_search 40)"), "%s", r.err);
    cr_assert_gt(cJSON_GetArraySize(tu_json_array(st, "throughput")), 0);
    expect_no_scratch_schema(db);
    cJSON_Delete(doc);
    tu_run_free(&r);
    tu_drop_db(db);
    free(db);
}

/* A short generated run: the JSON document (status 0 asserted). */
static cJSON *generated_run(const char *db, const char *seed, const char *scratch, const char *queries)
{
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-q", "-d", db, "bench", "--scratch", scratch, "--seed",
                                                   seed, "--dim", "64", "--queries", queries, "--warmup", "0",
                                                   "--ef-search", "40", "--concurrency", "1", "--duration", "0.2",
                                                   "--no-pgbench", NULL});
    tu_expect_status(&r, 0, "a generated bench run");
    cJSON *doc = tu_json(r.out);
    tu_run_free(&r);
    return doc;
}

/* What a generated store's queries found: equal for equal stores and query sets. */
static char *query_figures(const cJSON *doc)
{
    const cJSON *st = cJSON_GetArrayItem(tu_json_array(doc, "stores"), 0);
    const cJSON *q = get(st, "queries");
    return tu_printf("rows %g dim %g fts %g/%g/%g exact %g/%g vector rows %g", tu_json_num(st, "rows"),
                     tu_json_num(st, "dimension"), tu_json_num(q, "fts_hit_rate"), tu_json_num(q, "fts_matches_mean"),
                     tu_json_num(q, "fts_matches_max"), tu_json_num(q, "exact_first_distance_mean"),
                     tu_json_num(q, "exact_kth_distance_mean"), tu_json_num(series(st, "vector", 40), "rows_mean"));
}

Test(bench, generated_stores_repeat_with_their_seed_and_take_more_queries_than_memories)
{
    char *db = vector_db();
    /* 300 memories and 400 queries: the query set is generated past the store, never from it */
    cJSON *a = generated_run(db, "1", "300", "400"), *b = generated_run(db, "1", "300", "400"),
          *c = generated_run(db, "2", "300", "400");
    const cJSON *st = cJSON_GetArrayItem(tu_json_array(a, "stores"), 0);
    cr_assert_eq(tu_json_num(st, "rows"), 300);
    cr_assert_eq(tu_json_num(st, "dimension"), 64);
    cr_assert_eq(tu_json_num(get(st, "queries"), "count"), 400);
    cr_assert_eq(tu_json_num(series(st, "hybrid", 40), "queries"), 400);
    char *fa = query_figures(a), *fb = query_figures(b), *fc = query_figures(c);
    cr_assert_str_eq(fa, fb, "the same seed gave another store or query set");
    cr_assert_str_neq(fa, fc, "another seed gave the same store and query set");
    expect_no_scratch_schema(db);
    free(fa);
    free(fb);
    free(fc);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    tu_drop_db(db);
    free(db);
}

Test(bench, scratch_refused_when_the_role_may_not_create_the_vector_extension)
{
    char *db = tu_fresh_db();
    char *role = tu_printf("pgmemctl_bench_noext_%d", (int) getpid());
    char *sql = tu_printf("DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN", role, role);
    tu_exec(db, sql);
    free(sql);
    char *host = tu_test_host(), *port = tu_test_port(), *dbname = tu_db_name(db);
    char *uri = tu_printf(strchr(host, ':') ? "postgresql://%s@[%s]:%s/%s" : "postgresql://%s@%s:%s/%s", role, host,
                          port, dbname);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", uri, "bench", "--scratch", "100", NULL});
    tu_expect_status(&r, 2, "a role that may not create the extension");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
    cJSON_Delete(doc);
    /* the reason, and the statement to have run, naming the database and the role */
    cr_assert(tu_contains(r.err, "may not create it"), "%s", r.err);
    cr_assert(tu_contains(r.err, "SQLSTATE 42501"), "%s", r.err);
    cr_assert(tu_contains(r.err, "CREATE EXTENSION vector;"), "%s", r.err);
    char *where = tu_printf("in database %s as role %s", dbname, role);
    cr_assert(tu_contains(r.err, where), "%s", r.err);
    free(where);
    tu_run_free(&r);
    cr_assert_null(vector_version(db));
    expect_no_scratch_schema(db);

    /* once a superuser has run it, the same role's run works */
    tu_exec(db, "CREATE EXTENSION vector");
    sql = tu_printf("GRANT CREATE ON DATABASE \"%s\" TO %s", dbname, role);
    tu_exec(db, sql);
    free(sql);
    r = tu_run((const char *const[]){"pgmemctl", "-q", "-d", uri, "bench", "--scratch", "100", "--queries", "10",
                                     "--warmup", "0", "--ef-search", "40", "--concurrency", "1", "--duration", "0.2",
                                     "--no-pgbench", NULL});
    tu_expect_status(&r, 0, "the same role after CREATE EXTENSION vector");
    doc = tu_json(r.out);
    cr_assert_not(tu_json_bool(get(doc, "environment"), "pgvector_created_by_this_run"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    expect_no_scratch_schema(db);
    tu_drop_db(db);
    sql = tu_printf("DROP ROLE %s", role);
    tu_exec(tu_test_url(), sql);
    free(sql);
    free(host);
    free(port);
    free(dbname);
    free(uri);
    free(role);
    free(db);
}

Test(bench, scratch_refused_with_a_sample_too_small_before_writing)
{
    char *sample = vf_sample(1000 + QUERIES, 768);
    char *db = tu_fresh_db();
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", db, "bench", "--scratch", "1000", "--sample", sample,
                                                   "--queries", "200", NULL});
    tu_expect_status(&r, 2, "sample too small for 1000 + 200");
    cr_assert(tu_contains(r.err, "--queries 200 is more than the " QUERIES_S " memories"), "%s", r.err);
    cr_assert(tu_contains(r.err, "use --queries " QUERIES_S " or less"), "%s", r.err);
    cr_assert(tu_contains(r.err, "build a larger sample (1200 memories)"), "%s", r.err);
    cr_assert(tu_contains(r.err, "leave out --sample"), "%s", r.err);
    tu_run_free(&r);
    r = tu_run((const char *const[]){"pgmemctl", "-d", db, "bench", "--scratch", "2000", "--sample", sample, NULL});
    tu_expect_status(&r, 2, "sample smaller than the store");
    cr_assert(tu_contains(r.err, "build a larger sample"), "%s", r.err);
    tu_run_free(&r);
    /* refused before anything was written: not even the extension */
    cr_assert_null(vector_version(db));
    expect_no_scratch_schema(db);
    tu_drop_db(db);
    free(db);
    free(sample);
}

/* test_bench_stats.c — unit tests for bench_stats.c: quantiles (Hyndman-Fan definition 7),
 * latency distributions, recall overlap, list options, query words, and the comparison of two
 * bench documents. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"
#include "common/testutil.h"

TestSuite(bench_stats, .fini = tu_leak_check);

Test(bench_stats, quantiles_interpolate_between_closest_ranks)
{
    const double x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    cr_assert_float_eq(bench_quantile(x, 10, 0.5), 5.5, 1e-12);     /* h = 4.5 */
    cr_assert_float_eq(bench_quantile(x, 10, 0.95), 9.55, 1e-12);   /* h = 8.55 */
    cr_assert_float_eq(bench_quantile(x, 10, 0.99), 9.91, 1e-12);
    cr_assert_float_eq(bench_quantile(x, 10, 0), 1, 1e-12);
    cr_assert_float_eq(bench_quantile(x, 10, 1), 10, 1e-12);
    const double one[] = {7};
    cr_assert_float_eq(bench_quantile(one, 1, 0.99), 7, 1e-12);
    cr_assert_float_eq(bench_quantile(x, 0, 0.5), 0, 1e-12);
    /* numpy.percentile([0, 10, 20, 1000], 95) = 853.0 */
    const double y[] = {0, 10, 20, 1000};
    cr_assert_float_eq(bench_quantile(y, 4, 0.95), 853.0, 1e-9);
}

Test(bench_stats, distribution_of_unsorted_samples)
{
    double s[100];
    for (int i = 0; i < 100; i++)
        s[i] = (double) ((i * 37) % 100) + 1; /* 1..100 shuffled */
    bench_dist d;
    cr_assert(bench_dist_of(s, 100, &d));
    cr_assert_eq(d.n, 100);
    cr_assert_float_eq(d.p50, 50.5, 1e-9);
    cr_assert_float_eq(d.p95, 95.05, 1e-9);
    cr_assert_float_eq(d.p99, 99.01, 1e-9);
    cr_assert_float_eq(d.max, 100, 1e-9);
    cr_assert_float_eq(d.mean, 50.5, 1e-9);
    cr_assert_eq(s[0], 1, "the samples are not reordered");
    cr_assert(bench_dist_of(s, 0, &d));
    cr_assert_eq(d.n, 0);
    cr_assert_eq(d.max, 0);
}

Test(bench_stats, overlap_counts_each_id_once)
{
    const char *exact[] = {"a", "b", "c", "d"};
    const char *got[] = {"b", "x", "b", "d", "y"};
    cr_assert_eq(bench_overlap(got, 5, exact, 4), 2);
    cr_assert_eq(bench_overlap(exact, 4, exact, 4), 4);
    cr_assert_eq(bench_overlap(got, 0, exact, 4), 0);
    cr_assert_eq(bench_overlap(got, 5, exact, 0), 0);
}

Test(bench_stats, lists)
{
    long long *v;
    int n;
    char why[128];
    cr_assert(bench_parse_list(" 100, 40 ,40,20", 1, 1000, true, &v, &n, why, sizeof why), "%s", why);
    cr_assert_eq(n, 3);
    cr_assert(v[0] == 20 && v[1] == 40 && v[2] == 100);
    free(v);
    cr_assert(bench_parse_list("4,1,2", 1, 64, false, &v, &n, why, sizeof why));
    cr_assert(n == 3 && v[0] == 4 && v[1] == 1 && v[2] == 2, "the order given is kept");
    free(v);
    cr_assert(!bench_parse_list("", 1, 10, true, &v, &n, why, sizeof why));
    cr_assert_str_eq(why, "empty list");
    cr_assert_null(v);
    cr_assert(!bench_parse_list("1,,2", 1, 10, true, &v, &n, why, sizeof why));
    cr_assert_str_eq(why, "item 2 is empty");
    cr_assert(!bench_parse_list("1,x2", 1, 10, true, &v, &n, why, sizeof why));
    cr_assert_str_eq(why, "item 2 (\"x2\") is not an integer");
    cr_assert(!bench_parse_list("5,0", 1, 10, true, &v, &n, why, sizeof why));
    cr_assert_str_eq(why, "item 2 (0) is outside 1..10");
    cr_assert(!bench_parse_list("99999999999999999999", 1, 10, true, &v, &n, why, sizeof why));
}

Test(bench_stats, query_words)
{
    const char *c = "libfoo-dev: Development files for the FOO library, with examples\n\nThis package "
                    "contains the headers of libfoo 2.0 and its documentation.";
    char *w = bench_query_words(c, strlen(c), 3);
    /* the subject word is skipped, "files" is kept, "with" is a stop word, "foo" too short */
    cr_assert_str_eq(w, "development files library");
    free(w);
    w = bench_query_words(c, strlen(c), 2);
    cr_assert_str_eq(w, "development files");
    free(w);
    const char *d = "memory 12 about postgres vector search and postgres indexes";
    w = bench_query_words(d, strlen(d), 3);
    cr_assert_str_eq(w, "postgres vector search", "\"about\" is a stop word; repeats are skipped");
    free(w);
    const char *e = "x: a1b2 v2.0 some_thing path/to/file www.example.org ünïcode";
    w = bench_query_words(e, strlen(e), 3);
    cr_assert_str_eq(w, "", "words glued to digits, '_', '/', '.' or non-ASCII are skipped");
    free(w);
    w = bench_query_words("", 0, 2);
    cr_assert_str_eq(w, "");
    free(w);
}

static cJSON *doc(double p50, double qps, double recall, bool with_fts)
{
    char *text = tu_printf("{\"command\": \"bench\", \"started_at\": \"t%g\", \"stores\": [{\"scratch\": true, "
                           "\"rows\": 1000, \"latency\": [{\"kind\": \"vector\", \"ef_search\": 40, \"ms\": {\"p50\": "
                           "%g, \"p95\": 2, \"p99\": 3}, \"recall\": %g}%s], \"throughput\": [{\"concurrency\": 2, "
                           "\"qps\": %g}]}, {\"scratch\": false, \"rows\": 5, \"latency\": []}]}",
                           p50, p50, recall,
                           with_fts ? ", {\"kind\": \"fts\", \"ef_search\": null, \"ms\": {\"p50\": 1}, "
                                      "\"recall\": null}"
                                    : "",
                           qps);
    cJSON *d = cJSON_Parse(text);
    cr_assert_not_null(d);
    free(text);
    return d;
}

static const cJSON *fig(const cJSON *cmp, const char *store, const char *name)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(cmp, "figures"))
    {
        if (!strcmp(cJSON_GetObjectItem(x, "store")->valuestring, store) &&
            !strcmp(cJSON_GetObjectItem(x, "figure")->valuestring, name))
            return x;
    }
    return NULL;
}

Test(bench_stats, compare_directions_limits_and_unmatched)
{
    cJSON *a = doc(1.0, 100, 0.95, true), *b = doc(1.5, 120, 0.90, false);
    char err[128];
    cJSON *cmp = bench_compare(a, b, 10, err, sizeof err);
    cr_assert_not_null(cmp, "%s", err);
    const cJSON *p50 = fig(cmp, "scratch 1000", "vector ef_search=40 p50 ms");
    cr_assert_not_null(p50);
    cr_assert_float_eq(cJSON_GetObjectItem(p50, "change_pct")->valuedouble, 50, 1e-9);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(p50, "regression")), "+50 %% latency beyond 10 %%");
    const cJSON *qps = fig(cmp, "scratch 1000", "QPS at concurrency 2");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(qps, "regression")), "more QPS is better");
    const cJSON *rec = fig(cmp, "scratch 1000", "vector ef_search=40 recall");
    cr_assert_float_eq(cJSON_GetObjectItem(rec, "change_pct")->valuedouble, -5.3, 1e-9);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(rec, "regression")), "-5.3 %% is within 10 %%");
    cr_assert_eq(cJSON_GetObjectItem(cmp, "regressions")->valuedouble, 1);
    const cJSON *un = cJSON_GetObjectItem(cmp, "unmatched");
    cr_assert_eq(cJSON_GetArraySize(un), 1, "fts p50 is only in the old document");
    cr_assert(tu_contains(cJSON_GetArrayItem(un, 0)->valuestring, "(old only)"));
    cJSON_Delete(cmp);

    cmp = bench_compare(a, b, -1, err, sizeof err);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(cmp, "max_regression_pct")));
    cr_assert_eq(cJSON_GetObjectItem(cmp, "regressions")->valuedouble, 0, "no limit: nothing flagged");
    cJSON_Delete(cmp);

    cJSON *v = cJSON_Parse("{\"command\": \"verify\", \"checks\": []}");
    cr_assert_null(bench_compare(a, v, 10, err, sizeof err));
    cr_assert(tu_contains(err, "new document is not the JSON of pgmemctl bench"), "%s", err);
    cJSON_Delete(v);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* test_upgrade_proof_unit.c — unit tests of upgrade_proof.c without a server: the version order,
 * the result's JSON document and the log lines of its mismatches. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "upgrade_proof.h"

TestSuite(upgrade_proof_unit, .fini = tu_leak_check);

static int sign(int v) { return (v > 0) - (v < 0); }

Test(upgrade_proof_unit, version_cmp)
{
    static const struct {
        const char *a, *b;
        int want;
    } cases[] = {
        {"0.10.0", "0.8.0", 1}, /* numeric components, not text */
        {"0.8.0", "0.10.0", -1},
        {"0.8.0", "0.8.0", 0},
        {"0.8", "0.8.0", 0},     /* a missing component is 0 */
        {"0.8.1", "0.8", 1},
        {"1.0.0", "0.99.99", 1},
        {"17", "9.6", 1},
        {"0.7.4", "0.8.0", -1},
        {"2.0beta1", "2.0", 0},  /* a non-numeric tail is dropped */
        {" 0.8.0 ", "0.8.0", 0}, /* surrounding white space */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_expect_eq(sign(proof_version_cmp(cases[i].a, cases[i].b)), cases[i].want, "\"%s\" vs \"%s\"", cases[i].a,
                     cases[i].b);
        cr_expect_eq(sign(proof_version_cmp(cases[i].b, cases[i].a)), -cases[i].want, "\"%s\" vs \"%s\" reversed",
                     cases[i].b, cases[i].a);
    }
    /* not versions: still a stable, antisymmetric order */
    cr_expect_eq(proof_version_cmp("abc", "abc"), 0);
    cr_expect_eq(sign(proof_version_cmp("abc", "abd")), -sign(proof_version_cmp("abd", "abc")));
    cr_expect_neq(proof_version_cmp(NULL, "0.8.0"), 0);
    cr_expect_eq(proof_version_cmp(NULL, NULL), 0);
}

static proof_result sample_result(void)
{
    proof_result res = {0};
    res.databases = 2;
    res.tables = 5;
    res.rows = 1234;
    res.vector_columns = 3;
    res.vectors_sampled = 250;
    res.indexes = 4;
    res.indexes_used = 3;
    res.plan_skipped = 1;
    proof_add_mismatch(&res, "mem", "rows", "public.memories", "100", "99");
    proof_add_mismatch(&res, NULL, "server_version", "server", "17", "16");
    proof_add_mismatch(&res, "mem", "database_missing", "mem", NULL, NULL);
    return res;
}

Test(upgrade_proof_unit, render)
{
    proof_result res = {0};
    cr_expect(proof_passed(&res));
    cJSON *doc = proof_render(&res);
    cr_assert(doc);
    cr_expect(tu_json_bool(doc, "passed"));
    cr_expect_eq(cJSON_GetArraySize(tu_json_array(doc, "mismatches")), 0);
    cJSON_Delete(doc);

    res = sample_result();
    cr_expect_not(proof_passed(&res));
    doc = proof_render(&res);
    cr_assert(doc);
    cr_expect_not(tu_json_bool(doc, "passed"));
    static const struct {
        const char *name;
        double v;
    } nums[] = {{"databases", 2},      {"tables", 5},  {"rows", 1234},       {"vector_columns", 3},
                {"vectors_sampled", 250}, {"indexes", 4}, {"indexes_used", 3}, {"plan_skipped", 1}};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
        cr_expect_eq(tu_json_num(doc, nums[i].name), nums[i].v, "%s", nums[i].name);
    const cJSON *arr = tu_json_array(doc, "mismatches");
    cr_assert_eq(cJSON_GetArraySize(arr), 3);
    const cJSON *m0 = cJSON_GetArrayItem(arr, 0), *m1 = cJSON_GetArrayItem(arr, 1), *m2 = cJSON_GetArrayItem(arr, 2);
    cr_expect_str_eq(tu_json_str(m0, "database"), "mem");
    cr_expect_str_eq(tu_json_str(m0, "check"), "rows");
    cr_expect_str_eq(tu_json_str(m0, "object"), "public.memories");
    cr_expect_str_eq(tu_json_str(m0, "expected"), "100");
    cr_expect_str_eq(tu_json_str(m0, "actual"), "99");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(m1, "database")));
    cr_expect_str_eq(tu_json_str(m1, "check"), "server_version");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(m2, "expected")));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(m2, "actual")));
    cr_expect_eq(cJSON_GetArraySize(m0), 5);
    cJSON_Delete(doc);
    proof_result_free(&res);
    cr_expect_eq(res.nmismatches, 0);
    cr_expect_null(res.mismatches);
}

Test(upgrade_proof_unit, log_lines)
{
    proof_result res = sample_result();
    tu_stderr_begin();
    proof_log_mismatches(&res);
    char *err = tu_stderr_end();
    cr_expect(tu_contains(err, "error: proof: database mem: rows of public.memories: old 100, new 99\n"), "%s", err);
    cr_expect(tu_contains(err, "error: proof: server_version of server: expected 17, found 16\n"), "%s", err);
    cr_expect(tu_contains(err, "error: proof: database mem: database_missing of mem: old -, new -\n"), "%s", err);
    free(err);
    proof_result_free(&res);
}

Test(upgrade_proof_unit, many_mismatches)
{
    proof_result res = {0};
    char obj[32];
    for (int i = 0; i < 100; i++) {
        snprintf(obj, sizeof obj, "t%d", i);
        proof_add_mismatch(&res, "db", "table_missing", obj, "present", "missing");
    }
    cr_assert_eq(res.nmismatches, 100);
    cr_expect_str_eq(res.mismatches[99].object, "t99");
    cr_expect_str_eq(res.mismatches[0].object, "t0");
    proof_result_free(&res);
}

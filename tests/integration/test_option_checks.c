/* test_option_checks.c — every option value is checked before anything is written: values out of
 * range or of the wrong type are refused by the option table (exit 2, one error naming the
 * option, the value and what is allowed), and values that become server settings are tried by
 * the server itself right after connecting (exit 2 with the server's words). Each refusal leaves
 * the database as it was: no memories, no progress rows, the HNSW index untouched. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "common/reembed_fixture.h"
#include "common/testutil.h"
#include "common/vestige_fixture.h"

TestSuite(option_checks, .fini = tu_leak_check, .timeout = 180);

#define PGM(uri, ...) tu_run((const char *const[]){"pgmemctl", "-d", (uri), __VA_ARGS__, NULL})

/* Adds good memories from..to to the vestige store at path (created when from is 1). */
static void add_nodes(const char *path, int from, int to)
{
    vf_store *s = from == 1 ? vf_create(path, VF_V4, 16) : vf_open(path, 16);
    vf_exec(s, "BEGIN");
    for (int i = from; i <= to; i++)
        vf_add_good_node(s, i, i % 2 == 0);
    vf_exec(s, "COMMIT");
    vf_close(s);
}

/* A small vestige store of n good memories in dir. */
static char *small_store(const char *dir, int n)
{
    char *path = tu_printf("%s/store.db", dir);
    add_nodes(path, 1, n);
    return path;
}

/* What a refused copy must leave as it was: the rows and the indexes of memories. */
static char *store_state(const char *uri)
{
    return tu_query_value(uri, "SELECT (SELECT count(*) FROM memories) || '|' || (SELECT count(*) FROM edges) || '|' ||"
                               " (SELECT count(*) FROM pgmemctl_copy_progress) || '|' ||"
                               " (SELECT string_agg(indexname || ':' || indexdef, ',' ORDER BY indexname)"
                               "  FROM pg_indexes WHERE tablename = 'memories')");
}

/* runs r must be a refusal: exit 2, want in stderr and only one error line. */
static void expect_refused(tu_run_result *r, const char *want, const char *what)
{
    tu_expect_status(r, 2, what);
    cr_expect(tu_contains(r->err, want), "%s: expected \"%s\" on stderr, got: %s", what, want, r->err);
    const char *first = strstr(r->err, "error:");
    cr_expect(first && !strstr(first + 1, "error:"), "%s: one error, got: %s", what, r->err);
}

Test(option_checks, copy_maintenance_work_mem_checked_before_the_first_write)
{
    char *dir = tu_tempdir();
    char *src = small_store(dir, 12);
    char *uri = tu_migrated_db();
    tu_run_result first = PGM(uri, "copy", "--from", src);
    tu_expect_status(&first, 0, "the first copy");
    tu_run_free(&first);
    add_nodes(src, 13, 20); /* what a second copy would add */
    char *before = store_state(uri);
    cr_assert(tu_contains(before, "idx_memories_embedding_hnsw"), "the copied store has its HNSW index: %s", before);
    const struct {
        const char *value, *want;
    } cases[] = {
        {"abc", "copy: option --maintenance-work-mem: expected a size with a unit"},
        {"0", "copy: option --maintenance-work-mem: expected a size with a unit"},
        {"0kB", "copy: --maintenance-work-mem 0kB: must be 1MB or more"},
        {"-1GB", "copy: --maintenance-work-mem -1GB: must be 1MB or more"},
        /* syntax and lower end pass; the server knows its upper end */
        {"99999TB", "copy: --maintenance-work-mem 99999TB: the server does not accept it as maintenance_work_mem: "
                    "invalid value for parameter \"maintenance_work_mem\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_run_result r = PGM(uri, "copy", "--from", src, "--maintenance-work-mem", cases[i].value);
        expect_refused(&r, cases[i].want, cases[i].value);
        cJSON *j = tu_json(r.out);
        cr_expect_str_eq(tu_json_str(j, "status"), "usage_error", "%s", r.out);
        cJSON_Delete(j);
        tu_run_free(&r);
        char *after = store_state(uri);
        cr_expect_str_eq(after, before, "--maintenance-work-mem %s changed the store", cases[i].value);
        free(after);
    }
    /* from the config file and the environment alike */
    char *yaml = tu_write_file(dir, "pgmemctl.yaml", "copy:\n  maintenance_work_mem: 99999TB\n");
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-c", yaml, "-d", uri, "copy", "--from", src, NULL});
    expect_refused(&r, "the server does not accept it as maintenance_work_mem", "config file");
    tu_run_free(&r);
    r = tu_run_env((const char *const[]){"pgmemctl", "-d", uri, "copy", "--from", src, NULL},
                   (const char *const[]){"PGMEMCTL_COPY_MAINTENANCE_WORK_MEM=lots", NULL});
    expect_refused(&r, "environment variable PGMEMCTL_COPY_MAINTENANCE_WORK_MEM: expected a size", "environment");
    tu_run_free(&r);
    char *after = store_state(uri);
    cr_expect_str_eq(after, before);
    free(after);

    /* and a good value copies */
    r = PGM(uri, "copy", "--from", src, "--maintenance-work-mem", "64MB");
    tu_expect_status(&r, 0, "copy with 64MB");
    tu_run_free(&r);
    cr_expect_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 20);
    cr_expect_eq(tu_query_int(uri, "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_memories_embedding_hnsw'"),
                 1);
    free(before);
    free(yaml);
    tu_drop_db(uri);
    free(uri);
    free(src);
    tu_rmtree(dir);
    free(dir);
}

Test(option_checks, negative_durations_refused_by_every_command)
{
    char *dir = tu_tempdir();
    char *src = small_store(dir, 3);
    char *uri = tu_migrated_db();
    char *before = store_state(uri);
    const struct {
        const char *const argv[12];
        const char *want;
    } cases[] = {
        {{"pgmemctl", "-d", uri, "copy", "--from", src, "--wait", "-1", NULL}, "copy: --wait -1: must be 0 or more seconds"},
        {{"pgmemctl", "-d", uri, "reembed", "--model", "builtin:hash-384", "--lock-timeout", "-1", "--yes", NULL},
         "reembed: --lock-timeout -1: must be 0 or more seconds"},
        {{"pgmemctl", "-d", uri, "reembed", "--model", "builtin:hash-384", "--wait", "-2s", "--yes", NULL},
         "reembed: --wait -2s: must be 0 or more seconds"},
        {{"pgmemctl", "-d", uri, "migrate", "up", "--lock-timeout", "-5", NULL},
         "migrate: --lock-timeout -5: must be 0 or more seconds"},
        {{"pgmemctl", "-d", uri, "migrate", "status", "--wait", "-1", NULL}, "migrate: --wait -1: must be 0 or more seconds"},
        {{"pgmemctl", "-d", uri, "verify", "--wait", "-1", NULL}, "verify: --wait -1: must be 0 or more seconds"},
        {{"pgmemctl", "-d", uri, "verify", "--check-timeout", "-1", NULL},
         "verify: --check-timeout -1: must be between 0 and 2147483 seconds"},
        {{"pgmemctl", "-d", uri, "verify", "--retry-interval", "0", NULL},
         "verify: --retry-interval 0: must be more than 0 seconds"},
        {{"pgmemctl", "-d", uri, "bench", "--wait", "-1", NULL}, "bench: --wait -1: must be 0 or more seconds"},
        {{"pgmemctl", "-d", uri, "bench", "--duration", "0", NULL},
         "bench: --duration 0: must be more than 0 and at most 3600 seconds"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_run_result r = tu_run(cases[i].argv);
        expect_refused(&r, cases[i].want, cases[i].want);
        tu_run_free(&r);
    }
    char *after = store_state(uri);
    cr_expect_str_eq(after, before, "a refused run changed the store");
    cr_expect_eq(tu_query_int(uri, "SELECT count(*) FROM pg_class WHERE relname = 'pgmemctl_memories_next'"),
                 0);
    free(after);
    free(before);
    tu_drop_db(uri);
    free(uri);
    free(src);
    tu_rmtree(dir);
    free(dir);
}

Test(option_checks, one_error_for_the_one_bad_option)
{
    char *uri = tu_fresh_db();
    const struct {
        const char *const argv[12];
        const char *want;
    } cases[] = {
        {{"pgmemctl", "-d", uri, "bench", "--queries", "-5", NULL}, "bench: --queries -5: must be between 1 and 100000"},
        {{"pgmemctl", "-d", uri, "bench", "--k", "1001", NULL}, "bench: --k 1001: must be between 1 and 1000"},
        {{"pgmemctl", "-d", uri, "bench", "--scratch", "10", "--m", "16", "--ef-construction", "20", NULL},
         "bench: --ef-construction 20: must be at least 2 * --m (32)"},
        {{"pgmemctl", "-d", uri, "copy", "--from", "x.db", "--jobs", "65", NULL}, "copy: --jobs 65: must be between 1 and 64"},
        {{"pgmemctl", "-d", uri, "copy", "--from", "x.db", "--epoch-unit", "us", NULL},
         "copy: --epoch-unit us: must be one of s, ms"},
        {{"pgmemctl", "-d", uri, "reembed", "--mode", "swap", NULL},
         "reembed: --mode swap: must be one of shadow, in-place"},
        {{"pgmemctl", "-d", uri, "reembed", "--min-recall", "1.5", NULL},
         "reembed: --min-recall 1.5: must be between 0 and 1"},
        {{"pgmemctl", "-d", uri, "verify", "--format", "xml", NULL},
         "verify: --format xml: must be one of json, human, junit, tap"},
        {{"pgmemctl", "upgrade", "--jobs", "0", NULL}, "upgrade: --jobs 0: must be between 1 and 256"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_run_result r = tu_run(cases[i].argv);
        expect_refused(&r, cases[i].want, cases[i].want);
        cr_expect_not(tu_contains(r.err, ".."), "no list of ranges: %s", r.err);
        tu_run_free(&r);
    }
    tu_run_result r = tu_run_env((const char *const[]){"pgmemctl", "-d", uri, "bench", NULL},
                                 (const char *const[]){"PGMEMCTL_BENCH_QUERIES=0", NULL});
    expect_refused(&r, "environment variable PGMEMCTL_BENCH_QUERIES (--queries) 0: must be between 1 and 100000",
                   "environment");
    tu_run_free(&r);
    tu_drop_db(uri);
    free(uri);
}

Test(option_checks, reembed_server_settings_checked_before_anything_changes)
{
    char *db = rf_store_768(40);
    char *before = tu_query_value(db, "SELECT string_agg(name || ':' || dimension || ':' || active, ',' ORDER BY name)"
                                      " FROM embedding_model");
    char *ix = tu_query_value(db, "SELECT string_agg(indexdef, ',' ORDER BY indexname) FROM pg_indexes"
                                  " WHERE tablename = 'memories'");
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes", "--maintenance-work-mem", "99999TB");
    expect_refused(&r, "reembed: --maintenance-work-mem 99999TB: the server does not accept it as maintenance_work_mem",
                   "reembed 99999TB");
    tu_run_free(&r);
    char *after = tu_query_value(db, "SELECT string_agg(name || ':' || dimension || ':' || active, ',' ORDER BY name)"
                                     " FROM embedding_model");
    char *ix_after = tu_query_value(db, "SELECT string_agg(indexdef, ',' ORDER BY indexname) FROM pg_indexes"
                                        " WHERE tablename = 'memories'");
    cr_expect_str_eq(after, before);
    cr_expect_str_eq(ix_after, ix);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pg_class WHERE relname = 'pgmemctl_memories_next'"),
                 0);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pgmemctl_reembed_state"), 0);
    free(before);
    free(after);
    free(ix);
    free(ix_after);
    tu_drop_db(db);
    free(db);
}

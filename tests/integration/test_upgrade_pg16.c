/* test_upgrade_pg16.c — `pgmemctl upgrade-pg16-to-pg17` from a real PostgreSQL 16.14 server (the
 * server-only package of scripts/install-deps --with-pg16: no headers, so no pgvector) to 17: the
 * dump method with its default restore settings, done and proven on a database without vector
 * columns, and the logical method likewise; the pg_upgrade method refused by the preflight, which
 * names what the installation lacks; a restore setting the target rejects refused before anything
 * changes. The pgvector paths
 * are tested 15 -> 17 (test_upgrade.c).
 *
 * Environment (scripts/run-tests): PGMEMCTL_PG16_BINDIR and PGMEMCTL_PG17_BINDIR. */
#include "common/testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(upgrade_pg16, .fini = tu_leak_check, .timeout = 600);

static const char *pg16(void) { return tu_env_dir("PGMEMCTL_PG16_BINDIR"); }
static const char *pg17(void) { return tu_env_dir("PGMEMCTL_PG17_BINDIR"); }

static void sb_stop(const char *name, bool keep)
{
    free(keep ? tu_sandbox((const char *[]){"stop", "--keep", name, NULL})
              : tu_sandbox((const char *[]){"stop", name, NULL}));
}

/* The URI of database db on the server of uri (which ends in "/postgres"). */
static char *db_uri(const char *uri, const char *db)
{
    return tu_printf("%.*s/%s", (int) (strrchr(uri, '/') - uri), uri, db);
}

/* A store without pgvector in database store16 of the 16 sandbox: a table with an identity key, a
 * GIN full-text index and 1000 rows; a table without a primary key (37 rows); a view; a role with
 * a grant. */
static void make_store(const char *uri)
{
    tu_exec(uri, "CREATE DATABASE store16");
    char *s = db_uri(uri, "store16");
    tu_exec(s, "CREATE ROLE reader16 LOGIN; "
               "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL); "
               "INSERT INTO notes (body) SELECT 'note number ' || g || ' about postgres upgrades' "
               "  FROM generate_series(1, 1000) g; "
               "CREATE INDEX notes_fts ON notes USING gin (to_tsvector('english', body)); "
               "CREATE TABLE events (at timestamptz DEFAULT now(), kind text); "
               "INSERT INTO events (kind) SELECT 'k' || (g % 5) FROM generate_series(1, 37) g; "
               "CREATE VIEW recent AS SELECT id, body FROM notes WHERE id > 990; "
               "GRANT SELECT ON notes, recent TO reader16");
    free(s);
}

static const cJSON *check_named(const cJSON *doc, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, tu_json_array(cJSON_GetObjectItemCaseSensitive(doc, "preflight"), "checks"))
    {
        if (!strcmp(tu_json_str(c, "name"), name))
            return c;
    }
    return NULL;
}

static const cJSON *setting_named(const cJSON *doc, const char *name)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, tu_json_array(doc, "settings"))
    {
        if (!strcmp(tu_json_str(s, "name"), name))
            return s;
    }
    cr_assert_fail("no setting %s in the JSON", name);
    return NULL;
}

/* Index of the first (first = true) or last phase called name; -1 when absent. */
static int phase_at(const cJSON *doc, const char *name, bool first)
{
    int i = 0, at = -1;
    const cJSON *p;
    cJSON_ArrayForEach(p, tu_json_array(doc, "phases"))
    {
        if (!strcmp(tu_json_str(p, "name"), name) && (at < 0 || !first))
            at = i;
        i++;
    }
    return at;
}

static int cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int) n : 1;
}

Test(upgrade_pg16, dump_from_a_real_16_without_pgvector_is_done_and_proven_with_the_default_settings)
{
    char *old = tu_sandbox_name("u16-", "src"), *new = tu_sandbox_name("u16-", "dst");
    char *from = tu_pg16_sandbox(old);
    char *to = tu_sandbox((const char *[]){"start", "--bindir", pg17(), new, NULL});
    make_store(from);
    char *src_store = db_uri(from, "store16"), *dst_store = db_uri(to, "store16");
    char *catalog = tu_catalog_snapshot(src_store);

    const char *argv[] = {"pgmemctl", "upgrade-pg16-to-pg17", "--method", "dump", "--from", from, "--to", to,
                          "--tools-bindir", pg17(), NULL};
    tu_run_result r = tu_run(argv);
    tu_expect_status(&r, 0, "upgrade-pg16-to-pg17 --method dump from 16.14");
    cr_assert(tu_contains(r.err, "16.14 -> 17.") && tu_contains(r.err, "done and proven"), "%s", r.err);
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "upgraded");
    cr_assert_str_eq(tu_json_str(doc, "preset"), "upgrade-pg16-to-pg17");
    const cJSON *jfrom = cJSON_GetObjectItemCaseSensitive(doc, "from"), *jto = cJSON_GetObjectItemCaseSensitive(doc, "to");
    cr_assert_eq(tu_json_num(jfrom, "major"), 16);
    cr_assert(!strncmp(tu_json_str(jfrom, "version"), "16.14", 5), "%s", tu_json_str(jfrom, "version"));
    cr_assert_eq(tu_json_num(jto, "major"), 17);

    /* no pgvector anywhere: the preflight says so and passes, the proof counts rows only */
    const cJSON *ext = check_named(doc, "extensions_available");
    cr_assert(ext && tu_json_bool(ext, "passed") && tu_contains(tu_json_str(ext, "detail"), "no pgvector"));
    const cJSON *vec = cJSON_GetObjectItemCaseSensitive(doc, "vector");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(vec, "before")));
    cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(vec, "after")));
    const cJSON *proof = cJSON_GetObjectItemCaseSensitive(doc, "proof");
    cr_assert(tu_json_bool(proof, "passed"));
    cr_assert_eq(tu_json_num(proof, "databases"), 2, "store16 and postgres");
    cr_assert_eq(tu_json_num(proof, "tables"), 2);
    cr_assert_eq(tu_json_num(proof, "rows"), 1037);
    cr_assert_eq(tu_json_num(proof, "vector_columns"), 0);
    cr_assert_eq(tu_json_num(proof, "indexes"), 0);
    cr_assert_eq(cJSON_GetArraySize(tu_json_array(proof, "mismatches")), 0);

    /* the default settings, with where they came from */
    int want_jobs = cpus() < 8 ? cpus() : 8, want_workers = cpus() - 1 < 7 ? cpus() - 1 : 7;
    cr_assert_eq(tu_json_num(doc, "jobs"), want_jobs);
    const cJSON *s = setting_named(doc, "jobs");
    cr_assert_str_eq(tu_json_str(s, "source"), "default");
    cr_assert(tu_contains(tu_json_str(s, "rule"), "CPU count"));
    s = setting_named(doc, "max_parallel_maintenance_workers");
    cr_assert_str_eq(tu_json_str(s, "source"), "default");
    cr_assert_eq(atoi(tu_json_str(s, "value")), want_workers);
    s = setting_named(doc, "maintenance_work_mem");
    cr_assert(!strcmp(tu_json_str(s, "source"), "default") || !strcmp(tu_json_str(s, "source"), "target"));
    cr_assert(tu_contains(tu_json_str(s, "rule"), "on this host"), "a loopback target is local: %s",
              tu_json_str(s, "rule"));
    char *plan = cJSON_PrintUnformatted(tu_json_array(doc, "plan"));
    char *pgopt = tu_printf("PGOPTIONS -c maintenance_work_mem=%s -c max_parallel_maintenance_workers=%d",
                            tu_json_str(s, "value"), want_workers);
    cr_assert(tu_contains(plan, pgopt), "%s not in the plan: %s", pgopt, plan);
    const cJSON *mwm = check_named(doc, "maintenance_work_mem");
    cr_assert(mwm && tu_json_bool(mwm, "passed"));

    /* the downtime ends with the restores; the statistics come after it */
    double down = tu_json_num(doc, "downtime_seconds"), stats = tu_json_num(doc, "statistics_seconds");
    cr_assert(down > 0 && stats >= 0 && down + stats <= tu_json_num(doc, "total_seconds"), "%g %g", down, stats);
    cr_assert(tu_contains(tu_json_str(doc, "downtime_until"), "restored"));
    int last_restore = phase_at(doc, "restore", false), first_analyze = phase_at(doc, "analyze", true);
    cr_assert(last_restore >= 0 && first_analyze > last_restore, "restore %d, analyze %d", last_restore,
              first_analyze);
    cr_assert_geq(phase_at(doc, "extensions", true), 0);
    cJSON_Delete(doc);
    tu_run_free(&r);

    /* the target: rows, the index, the role and its grant, the identity's next value, statistics */
    cr_assert_eq(tu_query_int(to, "SELECT current_setting('server_version_num')::int") / 10000, 17);
    cr_assert_eq(tu_query_int(dst_store, "SELECT count(*) FROM notes"), 1000);
    cr_assert_eq(tu_query_int(dst_store, "SELECT count(*) FROM events"), 37);
    cr_assert_eq(tu_query_int(dst_store, "SELECT count(*) FROM recent"), 10);
    cr_assert_eq(tu_query_int(dst_store, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                         "WHERE c.relname = 'notes_fts' AND i.indisvalid"),
                 1);
    cr_assert_eq(tu_query_int(dst_store, "SELECT count(*) FROM notes WHERE to_tsvector('english', body) @@ "
                                         "to_tsquery('english', 'upgrades')"),
                 1000);
    cr_assert(tu_query_int(dst_store, "SELECT has_table_privilege('reader16', 'notes', 'SELECT')::int") == 1);
    tu_exec(dst_store, "INSERT INTO notes (body) VALUES ('after the upgrade')");
    cr_assert_eq(tu_query_int(dst_store, "SELECT max(id) FROM notes"), 1001);
    cr_assert_gt(tu_query_int(dst_store, "SELECT count(*) FROM pg_stats WHERE tablename = 'notes'"), 0);
    /* the source is untouched */
    char *catalog2 = tu_catalog_snapshot(src_store);
    cr_assert_str_eq(catalog2, catalog);
    cr_assert_eq(tu_query_int(src_store, "SELECT count(*) FROM notes"), 1000);

    sb_stop(old, false);
    sb_stop(new, false);
    free(plan);
    free(pgopt);
    free(catalog);
    free(catalog2);
    free(src_store);
    free(dst_store);
    free(from);
    free(to);
    free(old);
    free(new);
}

Test(upgrade_pg16, pg_upgrade_from_the_server_only_16_is_refused_naming_what_it_lacks)
{
    char *old = tu_sandbox_name("u16-", "old"), *new = tu_sandbox_name("u16-", "new");
    char *from = tu_pg16_sandbox(old);
    make_store(from);
    sb_stop(old, true);
    const char *b = getenv("PGMEMCTL_SANDBOX_DIR");
    char *base = strdup(b && *b ? b : "/tmp/pgmemctl-sandbox");
    char *old_data = tu_printf("%s/%s/data", base, old), *new_parent = tu_printf("%s/%s", base, new);
    char *new_data = tu_printf("%s/data", new_parent);
    cr_assert(mkdir(new_parent, 0755) == 0 || errno == EEXIST);

    const char *argv[] = {"pgmemctl",      "upgrade-pg16-to-pg17", "--old-bindir",  pg16(), "--new-bindir",
                          pg17(),          "--old-datadir",        old_data,        "--new-datadir", new_data,
                          "--mode",        "link",                 NULL};
    tu_run_result r = tu_run(argv);
    tu_expect_status(&r, 2, "pg_upgrade from an installation without pg_controldata");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
    const cJSON *c = check_named(doc, "old_bindir");
    cr_assert(c && !tu_json_bool(c, "passed"), "%s", r.out);
    cr_assert(tu_contains(tu_json_str(c, "detail"), "pg_controldata"));
    cr_assert(tu_contains(tu_json_str(c, "detail"), "--method dump"));
    cr_assert_eq(cJSON_GetArraySize(tu_json_array(doc, "phases")), 1, "only the preflight ran");
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_neq(access(new_data, F_OK), 0, "the refused run created %s", new_data);
    /* the old cluster starts again, as it was */
    char *again = tu_pg16_sandbox(old);
    char *store = db_uri(again, "store16");
    cr_assert_eq(tu_query_int(store, "SELECT count(*) FROM notes"), 1000);
    sb_stop(old, false);
    rmdir(new_parent);
    free(store);
    free(again);
    free(from);
    free(base);
    free(old_data);
    free(new_parent);
    free(new_data);
    free(old);
    free(new);
}

Test(upgrade_pg16, given_settings_are_kept_and_one_the_target_rejects_is_refused_before_anything_changes)
{
    char *old = tu_sandbox_name("u16-", "src"), *new = tu_sandbox_name("u16-", "dst");
    char *from = tu_pg16_sandbox(old);
    char *to = tu_sandbox((const char *[]){"start", "--bindir", pg17(), new, NULL});
    make_store(from);
    /* maintenance_work_mem's maximum is 2147483647kB: 4TB is a valid size that the server rejects */
    const char *argv[] = {"pgmemctl", "upgrade-pg16-to-pg17", "--method", "dump", "--from", from, "--to", to,
                          "--tools-bindir", pg17(), "--jobs", "1", "--maintenance-workers", "0",
                          "--maintenance-work-mem", "4TB", NULL};
    enum { MWM_ARG = 15 };
    tu_run_result r = tu_run(argv);
    tu_expect_status(&r, 2, "a maintenance_work_mem the target rejects");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
    const cJSON *c = check_named(doc, "maintenance_work_mem");
    cr_assert(c && !tu_json_bool(c, "passed"), "%s", r.out);
    cr_assert(tu_contains(tu_json_str(c, "detail"), "rejects") && tu_contains(tu_json_str(c, "detail"), "4TB"));
    c = check_named(doc, "max_parallel_maintenance_workers");
    cr_assert(c && tu_json_bool(c, "passed"));
    cr_assert_eq(tu_json_num(doc, "jobs"), 1);
    for (const char *const *n = (const char *const[]){"jobs", "maintenance_work_mem",
                                                      "max_parallel_maintenance_workers", NULL};
         *n; n++)
        cr_assert_str_eq(tu_json_str(setting_named(doc, *n), "source"), "option", "%s", *n);
    cr_assert_str_eq(tu_json_str(setting_named(doc, "max_parallel_maintenance_workers"), "value"), "0");
    cr_assert_eq(phase_at(doc, "dump", true), -1, "nothing was dumped");
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_eq(tu_query_int(to, "SELECT count(*) FROM pg_database WHERE datname = 'store16'"), 0);
    cr_assert_eq(tu_query_int(to, "SELECT count(*) FROM pg_roles WHERE rolname = 'reader16'"), 0);

    /* the same with a size it accepts: restored with the given settings, proven */
    cr_assert_str_eq(argv[MWM_ARG], "4TB");
    argv[MWM_ARG] = "256MB";
    r = tu_run(argv);
    tu_expect_status(&r, 0, "the dump with --jobs 1 --maintenance-workers 0 --maintenance-work-mem 256MB");
    doc = tu_json(r.out);
    cr_assert(tu_json_bool(cJSON_GetObjectItemCaseSensitive(doc, "proof"), "passed"));
    char *plan = cJSON_PrintUnformatted(tu_json_array(doc, "plan"));
    cr_assert(tu_contains(plan, "pg_restore -j 1") &&
                  tu_contains(plan, "-c maintenance_work_mem=256MB -c max_parallel_maintenance_workers=0"),
              "%s", plan);
    cJSON_Delete(doc);
    tu_run_free(&r);
    char *dst_store = db_uri(to, "store16");
    cr_assert_eq(tu_query_int(dst_store, "SELECT count(*) FROM notes"), 1000);
    sb_stop(old, false);
    sb_stop(new, false);
    free(plan);
    free(dst_store);
    free(from);
    free(to);
    free(old);
    free(new);
}

/* The logical method from a real 16.14 (started with wal_level = logical) to 17: done and proven,
 * the identity's sequence carried over, nothing of the replication left on the source. */
Test(upgrade_pg16, logical_from_a_real_16_without_pgvector_is_done_and_proven)
{
    char *old = tu_sandbox_name("u16-", "lsrc"), *new = tu_sandbox_name("u16-", "ldst");
    char *from = tu_sandbox((const char *[]){"start", "--bindir", pg16(), "--set", "wal_level=logical", old, NULL});
    cr_assert_eq(tu_query_int(from, "SELECT current_setting('server_version_num')::int") / 10000, 16);
    char *to = tu_sandbox((const char *[]){"start", "--bindir", pg17(), new, NULL});
    make_store(from);
    char *src_store = db_uri(from, "store16"), *dst_store = db_uri(to, "store16");
    /* the logical method wants a key or a replica identity on every table */
    tu_exec(src_store, "ALTER TABLE events REPLICA IDENTITY FULL");
    char *work = tu_tempdir();
    const char *argv[] = {"pgmemctl",       "upgrade-pg16-to-pg17", "--method", "logical", "--from", from, "--to", to,
                          "--tools-bindir", pg17(),                 "--work-dir", work,     NULL};
    tu_run_result r = tu_run(argv);
    tu_expect_status(&r, 0, "upgrade-pg16-to-pg17 --method logical from 16.14");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "upgraded", "%s", r.err);
    cr_assert_str_eq(tu_json_str(doc, "method"), "logical");
    cr_assert_eq(tu_json_num(cJSON_GetObjectItemCaseSensitive(doc, "from"), "major"), 16);
    const cJSON *proof = cJSON_GetObjectItemCaseSensitive(doc, "proof");
    cr_assert(tu_json_bool(proof, "passed"));
    cr_assert_eq(tu_json_num(proof, "rows"), 1037);
    cr_assert_eq(tu_json_num(proof, "vector_columns"), 0);
    double down = tu_json_num(doc, "downtime_seconds");
    cr_assert(down > 0 && down < tu_json_num(doc, "total_seconds"), "downtime %g", down);
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_eq(tu_query_int(dst_store, "SELECT count(*) FROM notes"), 1000);
    cr_assert_eq(tu_query_int(dst_store, "SELECT count(*) FROM events"), 37);
    cr_assert_eq(tu_query_int(dst_store, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                         "WHERE c.relname = 'notes_fts' AND i.indisvalid"),
                 1);
    tu_exec(dst_store, "INSERT INTO notes (body) VALUES ('after the upgrade')");
    cr_assert_eq(tu_query_int(dst_store, "SELECT max(id) FROM notes"), 1001, "the identity's sequence was not copied");
    cr_assert_eq(tu_query_int(from, "SELECT count(*) FROM pg_replication_slots"), 0);
    cr_assert_eq(tu_query_int(src_store, "SELECT count(*) FROM pg_publication"), 0);
    sb_stop(old, false);
    sb_stop(new, false);
    tu_rmtree(work);
    free(work);
    free(src_store);
    free(dst_store);
    free(from);
    free(to);
    free(old);
    free(new);
}

/* test_migrate.c — integration tests of `pgmemctl migrate` (and the CLI frame around it) against
 * the sandbox cluster: every test works on its own fresh database and asserts exit codes, the
 * JSON summary, the tracking table and the catalog. */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/testutil.h"
#include "migrate.h"

TestSuite(migrate, .fini = tu_leak_check, .timeout = 60);
TestSuite(migrate_secrets, .fini = tu_leak_check, .timeout = 60);
TestSuite(cli, .fini = tu_leak_check, .timeout = 60);

/* `pgmemctl -d URI ARGS…` */
#define PGM(uri, ...) tu_run((const char *const[]){"pgmemctl", "-d", (uri), __VA_ARGS__, NULL})
/* `pgmemctl ARGS…` */
#define PGM0(...) tu_run((const char *const[]){"pgmemctl", __VA_ARGS__, NULL})

/* The newest of the built-in migrations (migrations/0001..0006). */
#define LATEST 6

#define PW_ROLE "pgmemctl_pw"
#define PW_SECRET "sandbox-secret-pw"

/* Asserts the exit status, showing both streams when it differs. */
static long long json_int(const cJSON *o, const char *name) { return (long long) tu_json_num(o, name); }

static int array_size(const cJSON *o, const char *name) { return cJSON_GetArraySize(tu_json_array(o, name)); }

static bool table_exists(const char *uri, const char *name)
{
    char *sql = tu_printf("SELECT to_regclass('%s') IS NOT NULL", name);
    char *v = tu_query_value(uri, sql);
    bool yes = v && !strcmp(v, "t");
    free(v);
    free(sql);
    return yes;
}

static long long tracking_rows(const char *uri, const char *where)
{
    if (!table_exists(uri, MIGRATE_TABLE))
        return -1;
    char *sql = tu_printf("SELECT count(*) FROM " MIGRATE_TABLE " WHERE %s", where);
    long long n = tu_query_int(uri, sql);
    free(sql);
    return n;
}

/* A migrations directory with the given files: names[i] holds sql[i]. */
static char *migrations_dir(const char *const *files)
{
    char *dir = tu_tempdir();
    for (int i = 0; files[i]; i += 2)
        free(tu_write_file(dir, files[i], files[i + 1]));
    return dir;
}

static const char T1_UP[] = "CREATE TABLE t1 (id int PRIMARY KEY, v text NOT NULL);\n"
                            "INSERT INTO t1 VALUES (1, 'same'), (2, 'same'), (3, 'other');\n";
static const char T1_DOWN[] = "DROP TABLE t1;\n";

/* ---- up ---------------------------------------------------------------------------------- */

Test(migrate, up_applies_everything_then_nothing_to_do)
{
    char *db = tu_fresh_db();
    tu_run_result r = PGM(db, "migrate", "up");
    tu_expect_status(&r, 0, "first up");
    cJSON *j = tu_json(r.out);
    cr_expect_str_eq(tu_json_str(j, "command"), "migrate");
    cr_expect_str_eq(tu_json_str(j, "action"), "up");
    cr_expect_str_eq(tu_json_str(j, "status"), "ok");
    cr_expect_str_eq(tu_json_str(j, "migrations"), "embedded");
    cr_expect_eq(json_int(j, "version_before"), 0);
    cr_expect_eq(json_int(j, "version_after"), LATEST);
    const cJSON *applied = tu_json_array(j, "applied");
    cr_assert_eq(cJSON_GetArraySize(applied), LATEST);
    cr_expect_eq(json_int(cJSON_GetArrayItem(applied, 0), "version"), 1);
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(applied, 0), "name"), "init");
    cr_expect_eq(json_int(cJSON_GetArrayItem(applied, 1), "version"), 2);
    cr_expect(tu_json_bool(cJSON_GetArrayItem(applied, 1), "ok"));
    cJSON_Delete(j);
    cr_expect(tu_contains(r.err, "applying 0001_init"), "%s", r.err);
    tu_run_free(&r);

    static const char *const tables[] = {"memories", "scheduling", "edges", "review_events", "domains",
                                         "embedding_model", "pgmemctl_copy_progress", "pgmemctl_copy_rejects",
                                         "pgmemctl_copy_index_rebuilds", MIGRATE_TABLE};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        cr_expect(table_exists(db, tables[i]), "table %s missing", tables[i]);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"), 1);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pg_proc WHERE proname = 'pgmemctl_ensure_hnsw'"), 1);
    cr_expect_eq(tracking_rows(db, "true"), LATEST);
    cr_expect_eq(tracking_rows(db, "success AND checksum ~ '^[0-9a-f]{64}$' AND execution_ms >= 0"), LATEST);
    cr_expect_eq(tracking_rows(db, "version = 1 AND name = 'init'"), 1);
    cr_expect_eq(tracking_rows(db, "version = 2 AND name = 'hnsw'"), 1);
    cr_expect_eq(tracking_rows(db, "version = 3 AND name = 'reembed'"), 1);
    /* the recorded checksum is the SHA-256 of the file in the repository */
    char *path = tu_printf("%s/migrations/0001_init.up.sql", tu_repo());
    char *sql = tu_read_file(path), sum[65];
    cr_assert(migration_checksum(sql, strlen(sql), sum));
    char *recorded = tu_query_value(db, "SELECT checksum FROM " MIGRATE_TABLE " WHERE version = 1");
    cr_expect_str_eq(recorded, sum);
    free(recorded);
    free(sql);
    free(path);

    r = PGM(db, "migrate", "up");
    tu_expect_status(&r, 0, "second up");
    j = tu_json(r.out);
    cr_expect_str_eq(tu_json_str(j, "status"), "ok");
    cr_expect_eq(json_int(j, "version_before"), LATEST);
    cr_expect_eq(json_int(j, "version_after"), LATEST);
    cr_expect_eq(array_size(j, "applied"), 0);
    cJSON_Delete(j);
    cr_expect(tu_contains(r.err, "nothing to do"), "%s", r.err);
    tu_run_free(&r);
    cr_expect_eq(tracking_rows(db, "true"), LATEST);
    tu_drop_db(db);
    free(db);
}

Test(migrate, up_to_stops_at_version)
{
    char *db = tu_fresh_db();
    tu_run_result r = PGM(db, "migrate", "up", "--to", "1");
    tu_expect_status(&r, 0, "up --to 1");
    cJSON *j = tu_json(r.out);
    cr_expect_eq(json_int(j, "version_after"), 1);
    cr_expect_eq(array_size(j, "applied"), 1);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect(table_exists(db, "memories"));
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pg_proc WHERE proname = 'pgmemctl_ensure_hnsw'"), 0);
    cr_expect_eq(tracking_rows(db, "true"), 1);
    tu_drop_db(db);
    free(db);
}

Test(migrate, up_down_up_gives_identical_catalog)
{
    char *db = tu_fresh_db();
    tu_run_result r = PGM(db, "migrate", "up");
    tu_expect_status(&r, 0, "up");
    tu_run_free(&r);
    char *first = tu_catalog_snapshot(db);
    cr_expect(tu_contains(first, "relation|public.memories|"), "snapshot lacks memories:\n%s", first);
    cr_expect(tu_contains(first, "extension|vector|"), "snapshot lacks vector:\n%s", first);
    cr_expect(tu_contains(first, "trigger|public.memories|memories_touch_updated_at|"), "%s", first);

    r = PGM(db, "migrate", "down", "--to", "0");
    tu_expect_status(&r, 0, "down --to 0");
    cJSON *j = tu_json(r.out);
    cr_expect_eq(json_int(j, "version_after"), 0);
    const cJSON *rev = tu_json_array(j, "reverted");
    cr_assert_eq(cJSON_GetArraySize(rev), LATEST);
    cr_expect_eq(json_int(cJSON_GetArrayItem(rev, 0), "version"), LATEST, "reverted newest first");
    cr_expect_eq(json_int(cJSON_GetArrayItem(rev, LATEST - 1), "version"), 1);
    cJSON_Delete(j);
    tu_run_free(&r);
    char *empty = tu_catalog_snapshot(db);
    cr_expect_not(tu_contains(empty, "memories"), "down --to 0 left objects behind:\n%s", empty);
    cr_expect_not(tu_contains(empty, "extension|vector|"), "%s", empty);
    cr_expect_eq(tracking_rows(db, "true"), 0);

    r = PGM(db, "migrate", "up");
    tu_expect_status(&r, 0, "up again");
    tu_run_free(&r);
    char *second = tu_catalog_snapshot(db);
    cr_expect_str_eq(first, second, "catalog differs after up/down/up");
    free(first);
    free(empty);
    free(second);
    tu_drop_db(db);
    free(db);
}

/* ---- down -------------------------------------------------------------------------------- */

static char *db_at_latest(void)
{
    char *db = tu_fresh_db();
    tu_run_result r = PGM(db, "migrate", "up");
    tu_expect_status(&r, 0, "up");
    tu_run_free(&r);
    return db;
}

Test(migrate, down_defaults_to_one_step)
{
    char *db = db_at_latest();
    tu_exec(db, "INSERT INTO pgmemctl_copy_progress (source_id, source_table, range_start, range_end, last_rowid,"
                " rows_copied, source_rows, fingerprint) VALUES ('s', 'knowledge_nodes', 0, 100, 100, 100, 100,"
                " '0123456789abcdef0123456789abcdef'), ('s', 'knowledge_nodes', 100, 200, 150, 50, 50,"
                " 'fedcba9876543210fedcba9876543210'), ('s', 'knowledge_nodes', 200, NULL, 260, 60, NULL, NULL)");
    /* 0006's down drops shadow mode's change log, its trigger function and the state's new
     * column and phases */
    tu_exec(db, "INSERT INTO pgmemctl_reembed_log (id) VALUES (gen_random_uuid())");
    tu_run_result r = PGM(db, "migrate", "down");
    tu_expect_status(&r, 0, "down");
    cJSON *j = tu_json(r.out);
    cr_expect_eq(json_int(j, "version_after"), LATEST - 1);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect_not(table_exists(db, "pgmemctl_reembed_log"));
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pg_proc WHERE proname = 'pgmemctl_reembed_log_change'"), 0);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM information_schema.columns WHERE table_name ="
                                  " 'pgmemctl_reembed_state' AND column_name = 'definition_md5'"),
                 0);
    /* 0005's down drops the row counts and fingerprints; the checkpoints stay */
    r = PGM(db, "migrate", "down");
    tu_expect_status(&r, 0, "down");
    j = tu_json(r.out);
    cr_expect_eq(json_int(j, "version_after"), LATEST - 2);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM information_schema.columns WHERE table_name ="
                                  " 'pgmemctl_copy_progress' AND column_name IN ('source_rows', 'fingerprint')"),
                 0);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pgmemctl_copy_progress WHERE range_start IN (0, 100, 200)"), 3);
    /* 0004's down merges a table's rowid ranges into one checkpoint: the lowest unfinished one,
     * with the counters summed */
    r = PGM(db, "migrate", "down");
    tu_expect_status(&r, 0, "down");
    j = tu_json(r.out);
    cr_expect_eq(json_int(j, "version_before"), LATEST - 2);
    cr_expect_eq(json_int(j, "version_after"), LATEST - 3);
    const cJSON *rev = tu_json_array(j, "reverted");
    cr_assert_eq(cJSON_GetArraySize(rev), 1);
    cr_expect_eq(json_int(cJSON_GetArrayItem(rev, 0), "version"), LATEST - 2);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect(table_exists(db, "pgmemctl_reembed_state"));
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM information_schema.columns WHERE table_name ="
                                  " 'pgmemctl_copy_progress' AND column_name IN ('range_start', 'range_end')"),
                 0);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pgmemctl_copy_progress"), 1);
    cr_expect_eq(tu_query_int(db, "SELECT last_rowid * 1000 + rows_copied FROM pgmemctl_copy_progress"), 150 * 1000 + 210);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pg_proc WHERE proname = 'pgmemctl_ensure_hnsw'"), 1);
    cr_expect(table_exists(db, "memories"));
    cr_expect_eq(tracking_rows(db, "true"), LATEST - 3);
    cr_expect_eq(tracking_rows(db, "version = 1"), 1);
    tu_drop_db(db);
    free(db);
}

Test(migrate, down_steps_all)
{
    char *db = db_at_latest();
    tu_run_result r = PGM(db, "migrate", "down", "--steps", "6");
    tu_expect_status(&r, 0, "down --steps 6");
    cJSON *j = tu_json(r.out);
    cr_expect_eq(json_int(j, "version_after"), 0);
    cr_expect_eq(array_size(j, "reverted"), LATEST);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect_not(table_exists(db, "memories"));
    cr_expect_eq(tracking_rows(db, "true"), 0);
    /* nothing left to revert */
    r = PGM(db, "migrate", "down");
    tu_expect_status(&r, 0, "down at version 0");
    j = tu_json(r.out);
    cr_expect_eq(array_size(j, "reverted"), 0);
    cJSON_Delete(j);
    tu_run_free(&r);
    tu_drop_db(db);
    free(db);
}

Test(migrate, down_to_1)
{
    char *db = db_at_latest();
    tu_run_result r = PGM(db, "migrate", "down", "--to", "1");
    tu_expect_status(&r, 0, "down --to 1");
    cJSON *j = tu_json(r.out);
    cr_expect_eq(json_int(j, "version_after"), 1);
    cr_expect_eq(array_size(j, "reverted"), LATEST - 1);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect(table_exists(db, "memories"));
    cr_expect_eq(tracking_rows(db, "true"), 1);
    tu_drop_db(db);
    free(db);
}

Test(migrate, down_without_down_file_refuses_before_reverting)
{
    char *db = tu_fresh_db();
    char *dir = migrations_dir((const char *const[]){"0001_t.up.sql", T1_UP, "0001_t.down.sql", T1_DOWN,
                                                     "0002_u.up.sql", "CREATE TABLE u (a int);\n", NULL});
    tu_run_result r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "up");
    tu_run_free(&r);
    char *before = tu_catalog_snapshot(db);

    r = PGM(db, "migrate", "down", "--steps", "2", "--migrations-dir", dir);
    tu_expect_status(&r, 2, "down --steps 2 without 0002's down file");
    cJSON *j = tu_json(r.out);
    cr_expect_str_eq(tu_json_str(j, "status"), "refused");
    cr_expect(tu_contains(tu_json_str(j, "error"), "0002_u.down.sql is missing"), "%s", r.out);
    cr_expect_eq(array_size(j, "reverted"), 0);
    cJSON_Delete(j);
    tu_run_free(&r);

    r = PGM(db, "migrate", "down", "--migrations-dir", dir);
    tu_expect_status(&r, 2, "down without 0002's down file");
    tu_run_free(&r);

    char *after = tu_catalog_snapshot(db);
    cr_expect_str_eq(before, after, "the catalog changed although down was refused");
    cr_expect_eq(tracking_rows(db, "true"), 2);
    free(before);
    free(after);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

/* ---- concurrency, failures, drift --------------------------------------------------------- */

Test(migrate, concurrent_ups_apply_each_migration_once)
{
    char *db = tu_fresh_db();
    const char *const argv[] = {"pgmemctl", "-d", db, "migrate", "up", NULL};
    tu_proc *a = tu_spawn(argv, NULL);
    tu_proc *b = tu_spawn(argv, NULL);
    tu_run_result ra = tu_wait(a), rb = tu_wait(b);
    tu_expect_status(&ra, 0, "first concurrent up");
    tu_expect_status(&rb, 0, "second concurrent up");
    cJSON *ja = tu_json(ra.out), *jb = tu_json(rb.out);
    cr_expect_eq(array_size(ja, "applied") + array_size(jb, "applied"), LATEST, "each migration applied once in all");
    cr_expect_eq(json_int(ja, "version_after"), LATEST);
    cr_expect_eq(json_int(jb, "version_after"), LATEST);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    tu_run_free(&ra);
    tu_run_free(&rb);
    cr_expect_eq(tracking_rows(db, "true"), LATEST);
    cr_expect_eq(tu_query_int(db, "SELECT count(DISTINCT version) FROM " MIGRATE_TABLE), LATEST);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pg_class WHERE relname = 'memories'"), 1);
    cr_expect_eq(tu_query_int(db, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"), 1);
    tu_drop_db(db);
    free(db);
}

Test(migrate, lock_held_elsewhere_times_out)
{
    char *db = tu_fresh_db();
    PGconn *holder = PQconnectdb(db);
    cr_assert_eq(PQstatus(holder), CONNECTION_OK, "%s", PQerrorMessage(holder));
    char *sql = tu_printf("SELECT pg_advisory_lock(%lld)", (long long) MIGRATE_LOCK_KEY);
    PGresult *res = PQexec(holder, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(holder));
    PQclear(res);
    free(sql);
    int pid = PQbackendPID(holder);

    tu_run_result r = PGM(db, "migrate", "up", "--lock-timeout", "0.5");
    PQfinish(holder);
    tu_expect_status(&r, 1, "up while another session holds the lock");
    cJSON *j = tu_json(r.out);
    char *want = tu_printf("holds the lock (backend pid %d); gave up after 0.5 s", pid);
    cr_expect(tu_contains(tu_json_str(j, "error"), want), "expected \"%s\" in:\n%s", want, r.out);
    free(want);
    cJSON_Delete(j);
    cr_expect(r.seconds >= 0.4 && r.seconds < 10, "took %.2f s", r.seconds);
    tu_run_free(&r);
    cr_expect_not(table_exists(db, "memories"));
    tu_drop_db(db);
    free(db);
}

Test(migrate, failing_migration_leaves_nothing_behind)
{
    char *db = tu_fresh_db();
    char *dir = migrations_dir((const char *const[]){
        "0001_t.up.sql", T1_UP,
        "0002_bad.up.sql", "CREATE TABLE t2 (a int);\nINSERT INTO t2 VALUES (1);\nSELECT * FROM no_such_table;\n",
        NULL});
    tu_run_result r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 1, "up with a failing 0002");
    cJSON *j = tu_json(r.out);
    cr_expect_str_eq(tu_json_str(j, "status"), "failed");
    cr_expect_eq(json_int(j, "version_after"), 1);
    cr_expect(tu_contains(tu_json_str(j, "error"), "0002_bad.up.sql failed: relation \"no_such_table\" does not exist"),
              "%s", r.out);
    const cJSON *applied = tu_json_array(j, "applied");
    cr_assert_eq(cJSON_GetArraySize(applied), 2);
    cr_expect(tu_json_bool(cJSON_GetArrayItem(applied, 0), "ok"));
    cr_expect_not(tu_json_bool(cJSON_GetArrayItem(applied, 1), "ok"));
    cJSON_Delete(j);
    cr_expect(tu_contains(r.err, "0002_bad.up.sql"), "%s", r.err);
    cr_expect(tu_contains(r.err, "SQLSTATE 42P01"), "%s", r.err);
    tu_run_free(&r);

    cr_expect_not(table_exists(db, "t2"), "0002's table survived the rollback");
    cr_expect(table_exists(db, "t1"));
    cr_expect_eq(tracking_rows(db, "version = 2"), 0);
    cr_expect_eq(tracking_rows(db, "version = 1 AND success"), 1);

    /* fixed: the next run applies it */
    free(tu_write_file(dir, "0002_bad.up.sql", "CREATE TABLE t2 (a int);\n"));
    r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "up after the fix");
    tu_run_free(&r);
    cr_expect(table_exists(db, "t2"));
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

Test(migrate, checksum_drift_refused_until_repaired)
{
    char *db = tu_fresh_db();
    char *dir = migrations_dir((const char *const[]){"0001_t.up.sql", T1_UP, "0001_t.down.sql", T1_DOWN,
                                                     "0002_u.up.sql", "CREATE TABLE u (a int);\n", NULL});
    tu_run_result r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "up");
    tu_run_free(&r);

    char *edited = tu_printf("%s-- an afterthought\n", T1_UP);
    char *path = tu_write_file(dir, "0001_t.up.sql", edited);
    r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 2, "up after editing an applied file");
    cJSON *j = tu_json(r.out);
    cr_expect_str_eq(tu_json_str(j, "status"), "refused");
    cr_expect(tu_contains(tu_json_str(j, "error"), path), "the error should name %s:\n%s", path, r.out);
    cr_expect(tu_contains(tu_json_str(j, "error"), "repair --version 1"), "%s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);

    r = PGM(db, "migrate", "status", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "status with drift");
    j = tu_json(r.out);
    cr_expect_eq(json_int(j, "problems"), 1);
    const cJSON *st = tu_json_array(j, "migrations_status");
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(st, 0), "state"), "changed");
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(st, 1), "state"), "applied");
    cJSON_Delete(j);
    tu_run_free(&r);

    r = PGM(db, "migrate", "repair", "--version", "1", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "repair --version 1");
    j = tu_json(r.out);
    cr_expect(tu_contains(tu_json_str(j, "result"), "re-stamped"), "%s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);
    char sum[65];
    cr_assert(migration_checksum(edited, strlen(edited), sum));
    char *recorded = tu_query_value(db, "SELECT checksum FROM " MIGRATE_TABLE " WHERE version = 1");
    cr_expect_str_eq(recorded, sum);
    free(recorded);

    r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "up after repair");
    tu_run_free(&r);

    /* repairing what needs no repair */
    r = PGM(db, "migrate", "repair", "--version", "1", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "repair of an unchanged migration");
    cr_expect(tu_contains(r.out, "nothing to repair"), "%s", r.out);
    tu_run_free(&r);
    r = PGM(db, "migrate", "repair", "--version", "9", "--migrations-dir", dir);
    tu_expect_status(&r, 2, "repair of an unknown version");
    cr_expect(tu_contains(r.out, "version 9 has no row"), "%s", r.out);
    tu_run_free(&r);
    free(edited);
    free(path);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

Test(migrate, crlf_only_change_is_not_drift)
{
    char *db = tu_fresh_db();
    char *dir = migrations_dir((const char *const[]){"0001_t.up.sql", T1_UP, NULL});
    tu_run_result r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "up");
    tu_run_free(&r);
    free(tu_write_file(dir, "0001_t.up.sql",
                       "CREATE TABLE t1 (id int PRIMARY KEY, v text NOT NULL);\r\n"
                       "INSERT INTO t1 VALUES (1, 'same'), (2, 'same'), (3, 'other');\r\n"));
    r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "up after converting to CRLF");
    tu_run_free(&r);
    r = PGM(db, "migrate", "status", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "status");
    cJSON *j = tu_json(r.out);
    cr_expect_eq(json_int(j, "problems"), 0);
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(tu_json_array(j, "migrations_status"), 0), "state"), "applied");
    cJSON_Delete(j);
    tu_run_free(&r);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

Test(migrate, applied_file_missing_and_out_of_order_refused)
{
    char *db = tu_fresh_db();
    char *dir = migrations_dir((const char *const[]){"0001_t.up.sql", T1_UP, "0003_w.up.sql",
                                                     "CREATE TABLE w (a int);\n", NULL});
    tu_run_result r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "up");
    tu_run_free(&r);

    /* a new migration numbered below the applied 0003 */
    free(tu_write_file(dir, "0002_late.up.sql", "CREATE TABLE late (a int);\n"));
    r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 2, "up with a pending migration below the applied version");
    cr_expect(tu_contains(r.out, "renumber"), "%s", r.out);
    tu_run_free(&r);
    cr_expect_not(table_exists(db, "late"));

    /* the applied 0003's file is gone */
    char *p2 = tu_printf("%s/0002_late.up.sql", dir), *p3 = tu_printf("%s/0003_w.up.sql", dir);
    unlink(p2);
    unlink(p3);
    free(p2);
    free(p3);
    r = PGM(db, "migrate", "status", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "status");
    cJSON *j = tu_json(r.out);
    const cJSON *st = tu_json_array(j, "migrations_status");
    cr_assert_eq(cJSON_GetArraySize(st), 2);
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(st, 1), "state"), "file_missing");
    cr_expect_eq(json_int(j, "problems"), 1);
    cJSON_Delete(j);
    tu_run_free(&r);
    r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 2, "up with an applied file missing");
    cr_expect(tu_contains(r.out, "0003_w is applied but has no file"), "%s", r.out);
    tu_run_free(&r);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

/* ---- no-transaction migrations ----------------------------------------------------------- */

Test(migrate, no_transaction_create_index_concurrently)
{
    char *db = tu_fresh_db();
    char *dir = migrations_dir((const char *const[]){
        "0001_t.up.sql", T1_UP,
        "0002_idx.up.sql", "-- pgmemctl:no-transaction\nCREATE INDEX CONCURRENTLY t1_v_idx ON t1 (v);\n",
        "0002_idx.down.sql", "-- pgmemctl:no-transaction\nDROP INDEX CONCURRENTLY t1_v_idx;\n", NULL});
    tu_run_result r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "up with CREATE INDEX CONCURRENTLY");
    cr_expect(tu_contains(r.err, "(no transaction)"), "%s", r.err);
    tu_run_free(&r);
    char *valid = tu_query_value(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't1_v_idx'::regclass");
    cr_expect_str_eq(valid, "t");
    free(valid);
    cr_expect_eq(tracking_rows(db, "version = 2 AND success"), 1);

    r = PGM(db, "migrate", "down", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "down with DROP INDEX CONCURRENTLY");
    tu_run_free(&r);
    cr_expect_not(table_exists(db, "t1_v_idx"));
    cr_expect_eq(tracking_rows(db, "version = 2"), 0);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

Test(migrate, no_transaction_failure_recorded_until_repaired)
{
    char *db = tu_fresh_db();
    char *dir = migrations_dir((const char *const[]){
        "0001_t.up.sql", T1_UP,
        "0002_uniq.up.sql", "-- pgmemctl:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY t1_v_key ON t1 (v);\n",
        NULL});
    tu_run_result r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 1, "up with a failing CREATE UNIQUE INDEX CONCURRENTLY");
    cr_expect(tu_contains(r.err, "0002_uniq.up.sql"), "%s", r.err);
    cJSON *j = tu_json(r.out);
    cr_expect_str_eq(tu_json_str(j, "status"), "failed");
    cr_expect(tu_contains(tu_json_str(j, "error"), "could not create unique index \"t1_v_key\""),
              "the JSON error should give the reason: %s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect_eq(tracking_rows(db, "version = 2 AND NOT success"), 1, "the failure is recorded");
    char *valid = tu_query_value(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't1_v_key'::regclass");
    cr_expect_str_eq(valid, "f", "the failed build leaves an invalid index");
    free(valid);

    r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 1, "up after a recorded failure");
    j = tu_json(r.out);
    const char *err = tu_json_str(j, "error");
    cr_expect(tu_contains(err, "t1_v_key"), "the message should name the invalid index: %s", err);
    cr_expect(tu_contains(err, "repair --version 2"), "%s", err);
    cJSON_Delete(j);
    tu_run_free(&r);

    r = PGM(db, "migrate", "status", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "status");
    j = tu_json(r.out);
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(tu_json_array(j, "migrations_status"), 1), "state"), "failed");
    cJSON_Delete(j);
    tu_run_free(&r);

    tu_exec(db, "DROP INDEX t1_v_key");
    free(tu_write_file(dir, "0002_uniq.up.sql",
                       "-- pgmemctl:no-transaction\nCREATE INDEX CONCURRENTLY t1_v_key ON t1 (v);\n"));
    r = PGM(db, "migrate", "repair", "--version", "2", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "repair --version 2");
    tu_run_free(&r);
    cr_expect_eq(tracking_rows(db, "version = 2"), 0);
    r = PGM(db, "migrate", "up", "--migrations-dir", dir);
    tu_expect_status(&r, 0, "up after repair");
    tu_run_free(&r);
    valid = tu_query_value(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't1_v_key'::regclass");
    cr_expect_str_eq(valid, "t");
    free(valid);
    cr_expect_eq(tracking_rows(db, "version = 2 AND success"), 1);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

/* ---- dry run, status --------------------------------------------------------------------- */

Test(migrate, dry_run_touches_nothing)
{
    char *db = tu_fresh_db();
    char *before = tu_catalog_snapshot(db);
    tu_run_result r = PGM(db, "migrate", "up", "--dry-run");
    tu_expect_status(&r, 0, "up --dry-run");
    cJSON *j = tu_json(r.out);
    cr_expect(tu_json_bool(j, "dry_run"));
    const cJSON *plan = tu_json_array(j, "plan");
    cr_assert_eq(cJSON_GetArraySize(plan), LATEST);
    cr_expect(tu_contains(tu_json_str(cJSON_GetArrayItem(plan, 0), "sql"), "CREATE TABLE memories"));
    cr_expect(tu_contains(tu_json_str(cJSON_GetArrayItem(plan, 1), "sql"), "pgmemctl_ensure_hnsw"));
    cr_expect_eq(json_int(j, "version_after"), 0);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect_not(table_exists(db, MIGRATE_TABLE), "dry run created the tracking table");
    char *after = tu_catalog_snapshot(db);
    cr_expect_str_eq(before, after);

    /* and a dry-run down reverts nothing */
    r = PGM(db, "migrate", "up");
    tu_expect_status(&r, 0, "up");
    tu_run_free(&r);
    r = PGM(db, "migrate", "down", "--to", "0", "--dry-run");
    tu_expect_status(&r, 0, "down --dry-run");
    j = tu_json(r.out);
    cr_expect_eq(array_size(j, "plan"), LATEST);
    cr_expect(tu_contains(tu_json_str(cJSON_GetArrayItem(tu_json_array(j, "plan"), LATEST - 1), "sql"),
                          "DROP TABLE memories"));
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect(table_exists(db, "memories"));
    cr_expect_eq(tracking_rows(db, "true"), LATEST);
    free(before);
    free(after);
    tu_drop_db(db);
    free(db);
}

Test(migrate, status_json)
{
    char *db = tu_fresh_db();
    tu_run_result r = PGM(db, "migrate", "status");
    tu_expect_status(&r, 0, "status on a fresh database");
    cJSON *j = tu_json(r.out);
    cr_expect_str_eq(tu_json_str(j, "action"), "status");
    cr_expect_eq(json_int(j, "current_version"), 0);
    cr_expect_eq(json_int(j, "pending"), LATEST);
    cr_expect_eq(json_int(j, "problems"), 0);
    const cJSON *st = tu_json_array(j, "migrations_status");
    cr_assert_eq(cJSON_GetArraySize(st), LATEST);
    for (int i = 0; i < LATEST; i++) {
        const cJSON *m = cJSON_GetArrayItem(st, i);
        cr_expect_eq(json_int(m, "version"), i + 1);
        cr_expect_str_eq(tu_json_str(m, "state"), "pending");
        cr_expect(tu_json_bool(m, "has_down"));
        cr_expect(cJSON_IsNull(cJSON_GetObjectItem(m, "applied_at")));
        cr_expect_eq(strlen(tu_json_str(m, "checksum")), 64);
    }
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_expect_not(table_exists(db, MIGRATE_TABLE), "status created the tracking table");

    r = PGM(db, "migrate", "up", "--to", "1");
    tu_expect_status(&r, 0, "up --to 1");
    tu_run_free(&r);
    r = PGM(db, "migrate", "status");
    tu_expect_status(&r, 0, "status at version 1");
    j = tu_json(r.out);
    cr_expect_eq(json_int(j, "current_version"), 1);
    cr_expect_eq(json_int(j, "pending"), LATEST - 1);
    st = tu_json_array(j, "migrations_status");
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(st, 0), "state"), "applied");
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(st, 0), "name"), "init");
    cr_expect(cJSON_IsString(cJSON_GetObjectItem(cJSON_GetArrayItem(st, 0), "applied_at")));
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(st, 1), "state"), "pending");
    cJSON_Delete(j);
    tu_run_free(&r);
    tu_drop_db(db);
    free(db);
}

/* ---- config file through the binary ------------------------------------------------------ */

/* A run that ended before it had a result prints exactly one document naming the error. */
static void expect_error_document(const tu_run_result *r, const char *command, const char *status, const char *needle)
{
    cJSON *j = tu_json(r->out);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "command");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "exit_code");
    cr_expect(cJSON_IsString(c) && !strcmp(c->valuestring, command), "command in %s", r->out);
    cr_expect(cJSON_IsString(st) && !strcmp(st->valuestring, status), "status in %s", r->out);
    cr_expect(cJSON_IsNumber(code) && code->valueint == r->status, "exit_code in %s", r->out);
    cr_expect(cJSON_IsString(err) && tu_contains(err->valuestring, needle), "error in %s", r->out);
    cJSON_Delete(j);
}

Test(migrate, config_file_database_and_errors)
{
    char *db = tu_fresh_db();
    char *dir = tu_tempdir();
    char *yaml = tu_printf("database: \"%s\"\nmigrate:\n  lock_timeout: 5\n", db);
    char *good = tu_write_file(dir, "good.yaml", yaml);
    tu_run_result r = PGM0("-c", good, "migrate", "status");
    tu_expect_status(&r, 0, "status with the database from the config file");
    cJSON *j = tu_json(r.out);
    cr_expect_eq(json_int(j, "pending"), LATEST);
    cJSON_Delete(j);
    tu_run_free(&r);

    char *bad = tu_write_file(dir, "bad.yaml", "migrate:\n  wait: 1\n  lock_timout: 5\n");
    r = PGM(db, "-c", bad, "migrate", "status");
    tu_expect_status(&r, 2, "bad config");
    char *want = tu_printf("%s:3:3: unknown key \"lock_timout\" in section \"migrate\"", bad);
    cr_expect(tu_contains(r.err, want), "expected \"%s\" in:\n%s", want, r.err);
    expect_error_document(&r, "migrate", "usage_error", want);
    free(want);
    tu_run_free(&r);

    char *typo = tu_write_file(dir, "type.yaml", "migrate:\n  lock_timeout: soon\n");
    r = PGM(db, "-c", typo, "migrate", "up");
    tu_expect_status(&r, 2, "wrong type in config");
    want = tu_printf("%s:2:3: migrate.lock_timeout: expected a number", typo);
    cr_expect(tu_contains(r.err, want), "expected \"%s\" in:\n%s", want, r.err);
    free(want);
    tu_run_free(&r);
    cr_expect_not(table_exists(db, MIGRATE_TABLE));
    free(yaml);
    free(good);
    free(bad);
    free(typo);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

/* ---- passwords --------------------------------------------------------------------------- */

static void expect_no_secret(const tu_run_result *r, const char *secret, const char *what)
{
    cr_expect_not(tu_contains(r->out, secret), "%s: \"%s\" on stdout:\n%s", what, secret, r->out);
    cr_expect_not(tu_contains(r->err, secret), "%s: \"%s\" on stderr:\n%s", what, secret, r->err);
}

/* postgresql://pgmemctl_pw:<password>@host:port/<db of uri> */
static char *pw_uri(const char *db, const char *password)
{
    char *host = tu_test_host(), *port = tu_test_port(), *name = tu_db_name(db);
    char *u = tu_printf("postgresql://" PW_ROLE ":%s@%s:%s/%s", password, host, port, name);
    free(host);
    free(port);
    free(name);
    return u;
}

static char *pw_kv(const char *db, const char *password)
{
    char *host = tu_test_host(), *port = tu_test_port(), *name = tu_db_name(db);
    char *u = tu_printf("host=%s port=%s dbname=%s user=" PW_ROLE " password=%s", host, port, name, password);
    free(host);
    free(port);
    free(name);
    return u;
}

Test(migrate_secrets, uri_password_never_printed)
{
    char *db = tu_fresh_db();
    char *uri = pw_uri(db, PW_SECRET);
    tu_run_result r = PGM(uri, "migrate", "up");
    tu_expect_status(&r, 0, "up with a password in the URI");
    expect_no_secret(&r, PW_SECRET, "up");
    cJSON *j = tu_json(r.out);
    cr_expect(tu_contains(tu_json_str(j, "database"), PW_ROLE ":********@"), "%s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);

    r = PGM(uri, "-v", "migrate", "status");
    tu_expect_status(&r, 0, "status -v");
    expect_no_secret(&r, PW_SECRET, "status -v");
    tu_run_free(&r);
    r = tu_run((const char *const[]){"pgmemctl", "-v", "-d", uri, "migrate", "down", "--dry-run", NULL});
    tu_expect_status(&r, 0, "-v down --dry-run");
    expect_no_secret(&r, PW_SECRET, "-v down --dry-run");
    tu_run_free(&r);
    free(uri);
    tu_drop_db(db);
    free(db);
}

Test(migrate_secrets, wrong_password_never_printed)
{
    char *db = tu_fresh_db();
    const char *wrong = "wrong-pw-4711-zz";
    char *uri = pw_uri(db, wrong);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-v", "-d", uri, "migrate", "up", NULL});
    tu_expect_status(&r, 1, "up with a wrong password");
    expect_no_secret(&r, wrong, "wrong password, URI");
    cr_expect(tu_contains(r.err, "password authentication failed"), "%s", r.err);
    tu_run_free(&r);
    free(uri);

    char *kv = pw_kv(db, wrong);
    r = PGM(kv, "migrate", "status");
    tu_expect_status(&r, 1, "status with a wrong password (keyword/value)");
    expect_no_secret(&r, wrong, "wrong password, keyword/value");
    tu_run_free(&r);
    free(kv);
    cr_expect_not(table_exists(db, MIGRATE_TABLE));
    tu_drop_db(db);
    free(db);
}

Test(migrate_secrets, keyword_value_password_never_printed)
{
    char *db = tu_fresh_db();
    char *kv = pw_kv(db, PW_SECRET);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-v", "-d", kv, "migrate", "up", NULL});
    tu_expect_status(&r, 0, "up with keyword/value conninfo");
    expect_no_secret(&r, PW_SECRET, "keyword/value");
    cJSON *j = tu_json(r.out);
    cr_expect(tu_contains(tu_json_str(j, "database"), "password=********"), "%s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);
    free(kv);
    tu_drop_db(db);
    free(db);
}

Test(migrate_secrets, environment_passwords_never_printed)
{
    char *db = tu_fresh_db();
    /* DATABASE_URL */
    char *uri = pw_uri(db, PW_SECRET);
    char *env = tu_printf("DATABASE_URL=%s", uri);
    tu_run_result r =
        tu_run_env((const char *const[]){"pgmemctl", "-v", "migrate", "up", NULL}, (const char *const[]){env, NULL});
    tu_expect_status(&r, 0, "up with DATABASE_URL");
    expect_no_secret(&r, PW_SECRET, "DATABASE_URL");
    tu_run_free(&r);
    free(env);
    free(uri);

    /* PGPASSWORD with a password-less URI */
    char *host = tu_test_host(), *port = tu_test_port(), *name = tu_db_name(db);
    char *nopw = tu_printf("postgresql://" PW_ROLE "@%s:%s/%s", host, port, name);
    r = tu_run_env((const char *const[]){"pgmemctl", "-v", "-d", nopw, "migrate", "status", NULL},
                   (const char *const[]){"PGPASSWORD=" PW_SECRET, NULL});
    tu_expect_status(&r, 0, "status with PGPASSWORD");
    expect_no_secret(&r, PW_SECRET, "PGPASSWORD");
    tu_run_free(&r);
    free(host);
    free(port);
    free(name);
    free(nopw);
    tu_drop_db(db);
    free(db);
}

Test(migrate_secrets, malformed_conninfo_password_never_printed)
{
    /* libpq rejects each of these before connecting; its messages quote the offending text */
    const char *const cases[] = {
        "postgresql://" PW_ROLE ":" PW_SECRET "@127.0.0.1:1/db?sslmode=bogus",
        "postgresql://" PW_ROLE ":" PW_SECRET "%zz@127.0.0.1:1/db",
        "postgresql://" PW_ROLE "@127.0.0.1:1/db?password=" PW_SECRET "&bogus=1",
        "host=127.0.0.1 port=1 password=" PW_SECRET " sslmode=bogus",
        "host=127.0.0.1 port=1 password=" PW_SECRET " bogus",
        "host=127.0.0.1 port=1 password='" PW_SECRET,
        "host=127.0.0.1 port=1 password = '" PW_SECRET "' nosuchoption=1",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-v", "-d", cases[i], "migrate", "status", NULL});
        tu_expect_status(&r, 1, cases[i]);
        expect_no_secret(&r, PW_SECRET, cases[i]);
        cr_expect(tu_contains(r.err, "could not connect to"), "%s", r.err);
        tu_run_free(&r);
    }
}

/* ---- connecting -------------------------------------------------------------------------- */

/* A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(s >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s, (struct sockaddr *) &a, sizeof a), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(s, (struct sockaddr *) &a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

Test(cli, wait_for_a_server_that_never_comes)
{
    char *uri = tu_printf("postgresql://postgres@127.0.0.1:%d/postgres?connect_timeout=2", free_port());
    tu_run_result r = PGM(uri, "migrate", "status", "--wait", "1");
    tu_expect_status(&r, 1, "--wait 1 without a server");
    cr_expect(r.seconds >= 0.9 && r.seconds < 5, "took %.2f s", r.seconds);
    cr_expect(tu_contains(r.err, "did not accept connections within 1 s"), "%s", r.err);
    cr_expect(tu_contains(r.err, "waiting for the server"), "%s", r.err);
    expect_error_document(&r, "migrate", "failed", "did not accept connections within 1 s");
    tu_run_free(&r);

    r = PGM(uri, "migrate", "status");
    tu_expect_status(&r, 1, "no server, no wait");
    cr_expect(r.seconds < 3, "took %.2f s", r.seconds);
    cr_expect(tu_contains(r.err, "could not connect to"), "%s", r.err);
    tu_run_free(&r);
    free(uri);
}

Test(cli, wait_for_a_running_server_returns_at_once)
{
    char *db = tu_fresh_db();
    tu_run_result r = PGM(db, "migrate", "status", "--wait", "5");
    tu_expect_status(&r, 0, "--wait 5 with a server");
    cr_expect(r.seconds < 3, "took %.2f s", r.seconds);
    tu_run_free(&r);
    tu_drop_db(db);
    free(db);
}

/* ---- command line ------------------------------------------------------------------------ */

Test(cli, version)
{
    char *path = tu_printf("%s/VERSION", tu_repo());
    char *version = tu_read_file(path);
    version[strcspn(version, "\n")] = '\0';
    tu_run_result r = PGM0("--version");
    tu_expect_status(&r, 0, "--version");
    char *want = tu_printf("pgmemctl %s (dynamic; libpq ", version);
    cr_expect(strncmp(r.out, want, strlen(want)) == 0, "got: %s", r.out);
    free(want);
    /* every library linked in is named with its version */
    static const char *const libs[] = {", OpenSSL 3.", ", SQLite 3.", ", curl ", ", libyaml 0.", ", cJSON 1."};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++)
        cr_expect(tu_contains(r.out, libs[i]), "no \"%s\" in: %s", libs[i], r.out);
    tu_run_free(&r);
    free(version);
    free(path);
}

Test(cli, help)
{
    tu_run_result r = PGM0("help", "migrate");
    tu_expect_status(&r, 0, "help migrate");
    cr_expect(tu_contains(r.out, "usage: pgmemctl migrate up"), "%s", r.out);
    cr_expect(tu_contains(r.out, "--lock-timeout"), "%s", r.out);
    tu_run_free(&r);
    r = PGM0("migrate", "--help");
    tu_expect_status(&r, 0, "migrate --help");
    cr_expect(tu_contains(r.out, "usage: pgmemctl migrate up"), "%s", r.out);
    tu_run_free(&r);
    r = PGM0("--help");
    tu_expect_status(&r, 0, "--help");
    cr_expect(tu_contains(r.out, "migrate"), "%s", r.out);
    tu_run_free(&r);
}

Test(cli, usage_errors_exit_2)
{
    const char *const *const cases[] = {
        (const char *const[]){"pgmemctl", "nosuch", NULL},
        (const char *const[]){"pgmemctl", "migrate", "sideways", NULL},
        (const char *const[]){"pgmemctl", "migrate", NULL},
        (const char *const[]){"pgmemctl", "migrate", "up", "down", NULL},
        (const char *const[]){"pgmemctl", "migrate", "repair", NULL},
        (const char *const[]){"pgmemctl", "migrate", "status", "--steps", "2", NULL},
        (const char *const[]){"pgmemctl", "migrate", "up", "--version", "2", NULL},
        (const char *const[]){"pgmemctl", "migrate", "up", "--to", "x", NULL},
        (const char *const[]){"pgmemctl", "migrate", "up", "--bogus", NULL},
        (const char *const[]){"pgmemctl", "--bogus", "migrate", "up", NULL},
        (const char *const[]){"pgmemctl", "help", "nosuch", NULL},
        (const char *const[]){"pgmemctl", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_run_result r = tu_run(cases[i]);
        cr_expect_eq(r.status, 2, "case %zu (%s %s): exit %d\n%s", i, cases[i][1] ? cases[i][1] : "",
                     cases[i][1] && cases[i][2] ? cases[i][2] : "", r.status, r.err);
        cr_expect(tu_contains(r.err, "error") || tu_contains(r.err, "usage"), "case %zu: %s", i, r.err);
        if (i < 9) /* a command was named: its run prints one document with the error */
            expect_error_document(&r, cases[i][1], "usage_error", "");
        else       /* no command: only the usage text */
            cr_expect_str_eq(r.out, "", "case %zu: nothing on stdout", i);
        tu_run_free(&r);
    }
    tu_run_result r = PGM0("migrate", "sideways");
    cr_expect(tu_contains(r.err, "unknown action \"sideways\""), "%s", r.err);
    tu_run_free(&r);
    r = PGM0("nosuch");
    cr_expect(tu_contains(r.err, "unknown command \"nosuch\""), "%s", r.err);
    tu_run_free(&r);
}

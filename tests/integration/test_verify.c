/* test_verify.c — integration tests of `pgmemctl verify` against the sandbox cluster: the
 * built-in profile on a good store and on stores broken in each way the profile must catch,
 * every check kind of a YAML spec passing and failing with the right observed value, bad specs,
 * read-only behaviour, --retry-timeout while an index is being built, and the JUnit/TAP output
 * read by real consumers (xmllint with a schema, prove). */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/testutil.h"

TestSuite(verify, .fini = tu_leak_check, .timeout = 120);
TestSuite(verify_spec_kinds, .fini = tu_leak_check, .timeout = 120);

#define PGM(uri, ...) tu_run((const char *const[]){"pgmemctl", "-d", (uri), __VA_ARGS__, NULL})

/* A loaded memory store: migrated, 300 memories with 16-dimensional vectors, a registered model
 * of that dimension, the HNSW index built and statistics gathered. */
static char *good_store(void)
{
    char *db = tu_fresh_db();
    tu_run_result r = PGM(db, "migrate", "up");
    tu_expect_status(&r, 0, "migrate up");
    tu_run_free(&r);
    tu_exec(db, "INSERT INTO embedding_model (name, dimension) VALUES ('builtin:hash-16', 16);"
                "ALTER TABLE memories ALTER COLUMN embedding TYPE vector(16);"
                "INSERT INTO memories (id, content, tags, embedding)"
                " SELECT gen_random_uuid(), 'memory ' || g || ' about postgres vector search and indexes',"
                "        ARRAY['tag' || (g % 7)],"
                "        (SELECT array_agg(sin(g * i + i))::vector FROM generate_series(1, 16) i)"
                " FROM generate_series(1, 300) g;"
                "SELECT pgmemctl_ensure_hnsw();"
                "ANALYZE memories;");
    return db;
}

/* The result object of the check named name in a verify JSON document. */
static const cJSON *check_named(const cJSON *doc, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, tu_json_array(doc, "checks"))
    {
        if (!strcmp(tu_json_str(c, "name"), name))
            return c;
    }
    cr_assert_fail("no check named \"%s\" in the report", name);
    return NULL;
}

static const char *status_of(const cJSON *doc, const char *name) { return tu_json_str(check_named(doc, name), "status"); }

/* The observed (or message) text of a check, "" when null. */
static const char *field_of(const cJSON *doc, const char *name, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(check_named(doc, name), field);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int summary(const cJSON *doc, const char *key)
{
    return (int) tu_json_num(cJSON_GetObjectItemCaseSensitive(doc, "summary"), key);
}

/* Runs the built-in profile on db, asserts the exit status, returns the parsed document. */
static cJSON *verify_default(const char *db, int want_status)
{
    tu_run_result r = PGM(db, "verify");
    tu_expect_status(&r, want_status, "verify");
    cJSON *doc = tu_json(r.out);
    tu_run_free(&r);
    return doc;
}

#define HNSW_CHECK "HNSW index on memories.embedding"
#define VPLAN_CHECK "vector search uses the HNSW index"
#define FTSPLAN_CHECK "full-text search uses the GIN index"

/* ---- the built-in profile ---------------------------------------------------------------- */

Test(verify, default_profile_passes_on_a_loaded_store)
{
    char *db = good_store();
    cJSON *doc = verify_default(db, 0);
    cr_assert_str_eq(tu_json_str(doc, "status"), "pass");
    cr_assert_str_eq(tu_json_str(doc, "command"), "verify");
    cr_assert_eq(summary(doc, "total"), 10);
    cr_assert_eq(summary(doc, "pass"), 10, "%s", cJSON_Print(doc));
    const char *kinds[] = {"server_version", "extension", "access_method", "migrations", "column",
                           "index",          "plan",      "row_count"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        bool seen = false;
        const cJSON *c;
        cJSON_ArrayForEach(c, tu_json_array(doc, "checks")) seen |= !strcmp(tu_json_str(c, "kind"), kinds[i]);
        cr_assert(seen, "no %s check in the default profile", kinds[i]);
    }
    cr_assert(tu_contains(field_of(doc, VPLAN_CHECK, "observed"), "idx_memories_embedding_hnsw"));
    cr_assert(tu_contains(field_of(doc, FTSPLAN_CHECK, "observed"), "idx_memories_search_vec"));
    cr_assert(tu_contains(field_of(doc, HNSW_CHECK, "observed"), "vector_cosine_ops"));
    cr_assert(tu_contains(field_of(doc, "embedding dimension matches the model", "observed"), "vector(16)"));
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

Test(verify, the_example_file_is_the_built_in_profile)
{
    char *db = good_store();
    char *path = tu_printf("%s/examples/verify/memory-store.yaml", tu_repo());
    tu_run_result a = PGM(db, "verify"), b = PGM(db, "verify", "--spec", path);
    tu_expect_status(&a, 0, "built-in");
    tu_expect_status(&b, 0, "example file");
    cJSON *ja = tu_json(a.out), *jb = tu_json(b.out);
    int n = cJSON_GetArraySize(tu_json_array(ja, "checks"));
    cr_assert_eq(n, cJSON_GetArraySize(tu_json_array(jb, "checks")));
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(tu_json_str(cJSON_GetArrayItem(tu_json_array(ja, "checks"), i), "name"),
                         tu_json_str(cJSON_GetArrayItem(tu_json_array(jb, "checks"), i), "name"));
    cr_assert(tu_contains(tu_json_str(jb, "spec"), "memory-store.yaml"));
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    tu_run_free(&a);
    tu_run_free(&b);
    free(path);
    tu_drop_db(db);
    free(db);
}

Test(verify, dropped_index_fails_index_and_plan_checks)
{
    char *db = good_store();
    tu_exec(db, "DROP INDEX idx_memories_embedding_hnsw");
    cJSON *doc = verify_default(db, 3);
    cr_assert_str_eq(tu_json_str(doc, "status"), "fail");
    cr_assert_str_eq(status_of(doc, HNSW_CHECK), "fail");
    cr_assert_str_eq(field_of(doc, HNSW_CHECK, "observed"), "missing");
    cr_assert_str_eq(status_of(doc, VPLAN_CHECK), "fail");
    cr_assert(tu_contains(field_of(doc, VPLAN_CHECK, "observed"), "Seq Scan on memories"),
              "%s", field_of(doc, VPLAN_CHECK, "observed"));
    cr_assert_str_eq(status_of(doc, FTSPLAN_CHECK), "pass");
    cr_assert_eq(summary(doc, "fail"), 2);
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

Test(verify, l2_opclass_is_reported)
{
    char *db = good_store();
    tu_exec(db, "DROP INDEX idx_memories_embedding_hnsw;"
                "CREATE INDEX idx_memories_embedding_hnsw ON memories USING hnsw (embedding vector_l2_ops)"
                " WITH (m = 16, ef_construction = 64)");
    cJSON *doc = verify_default(db, 3);
    cr_assert_str_eq(status_of(doc, HNSW_CHECK), "fail");
    cr_assert(tu_contains(field_of(doc, HNSW_CHECK, "observed"), "vector_l2_ops"));
    cr_assert(tu_contains(field_of(doc, HNSW_CHECK, "message"), "opclass vector_l2_ops, expected vector_cosine_ops"),
              "%s", field_of(doc, HNSW_CHECK, "message"));
    /* a cosine query cannot use an L2 index */
    cr_assert_str_eq(status_of(doc, VPLAN_CHECK), "fail");
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

Test(verify, hnsw_m_8_is_reported)
{
    char *db = good_store();
    tu_exec(db, "DROP INDEX idx_memories_embedding_hnsw;"
                "CREATE INDEX idx_memories_embedding_hnsw ON memories USING hnsw (embedding vector_cosine_ops)"
                " WITH (m = 8)");
    cJSON *doc = verify_default(db, 3);
    cr_assert_str_eq(status_of(doc, HNSW_CHECK), "fail");
    cr_assert(tu_contains(field_of(doc, HNSW_CHECK, "observed"), "m=8 ef_construction=64"),
              "%s", field_of(doc, HNSW_CHECK, "observed"));
    cr_assert(tu_contains(field_of(doc, HNSW_CHECK, "message"), "m = 8, expected 16"));
    /* the index is usable, only its parameters differ */
    cr_assert_str_eq(status_of(doc, VPLAN_CHECK), "pass");
    cr_assert_eq(summary(doc, "fail"), 1);
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

/* Opens a libpq connection or fails the test. */
static PGconn *connect_or_fail(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* A CREATE INDEX CONCURRENTLY of the HNSW index, started on its own connection and left waiting
 * for the old snapshot that `holder` keeps open (phase "waiting for old snapshots"). */
typedef struct {
    PGconn *holder, *builder;
} blocked_build;

static blocked_build start_blocked_build(const char *db, const char *extra_sql)
{
    blocked_build b;
    b.holder = connect_or_fail(db);
    exec_ok(b.holder, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    exec_ok(b.holder, "SELECT count(*) FROM memories");
    b.builder = connect_or_fail(db);
    if (extra_sql)
        exec_ok(b.builder, extra_sql);
    cr_assert(PQsendQuery(b.builder, "CREATE INDEX CONCURRENTLY idx_memories_embedding_hnsw ON memories"
                                     " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"));
    /* wait until the build reached the snapshot wait (the index is in the catalog by then) */
    for (int i = 0; i < 200; i++) {
        char *phase = tu_query_value(db, "SELECT phase FROM pg_stat_progress_create_index"
                                                " WHERE datname = current_database()");
        bool waiting = phase && tu_contains(phase, "old snapshots");
        free(phase);
        if (waiting)
            return b;
        usleep(50 * 1000);
    }
    cr_assert_fail("CREATE INDEX CONCURRENTLY never reached \"waiting for old snapshots\"");
    return b;
}

/* Drains the builder's result; returns true when CREATE INDEX succeeded. */
static bool finish_build(PGconn *builder)
{
    bool ok = true;
    PGresult *r;
    while ((r = PQgetResult(builder))) {
        ok &= PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    return ok;
}

Test(verify, invalid_index_from_a_failed_concurrent_build)
{
    char *db = good_store();
    tu_exec(db, "DROP INDEX idx_memories_embedding_hnsw");
    /* the build times out while it waits for the old snapshot: the index stays, invalid */
    blocked_build b = start_blocked_build(db, "SET statement_timeout = '1500ms'");
    cr_assert_not(finish_build(b.builder), "the build should have been cancelled by statement_timeout");
    exec_ok(b.holder, "ROLLBACK");
    PQfinish(b.holder);
    PQfinish(b.builder);
    char *valid = tu_query_value(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_memories_embedding_hnsw'::regclass");
    cr_assert_str_eq(valid, "f");
    free(valid);

    cJSON *doc = verify_default(db, 3);
    cr_assert_str_eq(status_of(doc, HNSW_CHECK), "fail");
    cr_assert(tu_contains(field_of(doc, HNSW_CHECK, "observed"), "not valid"), "%s", field_of(doc, HNSW_CHECK, "observed"));
    cr_assert(tu_contains(field_of(doc, HNSW_CHECK, "hint"), "REINDEX INDEX CONCURRENTLY"));
    cr_assert_str_eq(status_of(doc, VPLAN_CHECK), "fail");
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

Test(verify, enable_indexscan_off_fails_the_vector_plan_check)
{
    char *db = good_store();
    char *name = tu_db_name(db);
    char *sql = tu_printf("ALTER DATABASE %s SET enable_indexscan = off", name);
    tu_exec(db, sql);
    cJSON *doc = verify_default(db, 3);
    cr_assert_str_eq(status_of(doc, VPLAN_CHECK), "fail");
    cr_assert(tu_contains(field_of(doc, VPLAN_CHECK, "message"), "enable_indexscan = off (set by database)"),
              "%s", field_of(doc, VPLAN_CHECK, "message"));
    /* full-text search goes through a bitmap scan, which is still allowed */
    cr_assert_str_eq(status_of(doc, FTSPLAN_CHECK), "pass");
    cr_assert_eq(summary(doc, "fail"), 1);
    cJSON_Delete(doc);
    free(sql);
    free(name);
    tu_drop_db(db);
    free(db);
}

Test(verify, pending_migration_and_wrong_typmod)
{
    char *db = good_store();
    /* a registry that disagrees with the column */
    tu_exec(db, "UPDATE embedding_model SET dimension = 32");
    /* and version 2 forgotten by the tracking table: pending */
    tu_exec(db, "DELETE FROM pgmemctl_schema_migrations WHERE version = 2");
    cJSON *doc = verify_default(db, 3);
    cr_assert_str_eq(status_of(doc, "migrations up to date"), "fail");
    cr_assert(tu_contains(field_of(doc, "migrations up to date", "message"), "pending: 0002_hnsw"),
              "%s", field_of(doc, "migrations up to date", "message"));
    cr_assert_str_eq(field_of(doc, "migrations up to date", "hint"), "pgmemctl migrate up");
    cr_assert_str_eq(status_of(doc, "embedding dimension matches the model"), "fail");
    cr_assert_str_eq(field_of(doc, "embedding dimension matches the model", "observed"), "vector(16)");
    cr_assert(tu_contains(field_of(doc, "embedding dimension matches the model", "message"),
                          "has 16 dimensions, expected 32"));
    cr_assert_eq(summary(doc, "fail"), 2);
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

Test(verify, changed_migration_file)
{
    char *db = good_store();
    /* the same migrations, one of them edited after it was applied */
    char *dir = tu_tempdir();
    const char *files[] = {"0001_init.up.sql", "0001_init.down.sql", "0002_hnsw.up.sql", "0002_hnsw.down.sql"};
    for (int i = 0; i < 4; i++) {
        char *src = tu_printf("%s/migrations/%s", tu_repo(), files[i]);
        char *text = tu_read_file(src);
        char *edited = i == 2 ? tu_printf("%s\n-- edited later\n", text) : strdup(text);
        free(tu_write_file(dir, files[i], edited));
        free(edited);
        free(text);
        free(src);
    }
    char *spec = tu_printf("checks:\n  - kind: migrations\n    migrations_dir: %s\n", dir);
    char *path = tu_write_file(dir, "spec.yaml", spec);
    tu_run_result r = PGM(db, "verify", "--spec", path);
    tu_expect_status(&r, 3, "verify");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(status_of(doc, "migrations"), "fail");
    cr_assert(tu_contains(field_of(doc, "migrations", "message"), "changed since they ran: 0002_hnsw"),
              "%s", field_of(doc, "migrations", "message"));
    cr_assert(tu_contains(field_of(doc, "migrations", "observed"), "1 changed"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    free(spec);
    free(path);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

Test(verify, null_embeddings_are_a_warning_with_the_fix)
{
    char *db = good_store();
    tu_exec(db, "UPDATE memories SET embedding = NULL WHERE content LIKE 'memory 1 %' OR content LIKE 'memory 2 %'");
    cJSON *doc = verify_default(db, 0);
    cr_assert_str_eq(tu_json_str(doc, "status"), "pass");
    cr_assert_str_eq(status_of(doc, "every memory has an embedding"), "warn");
    cr_assert_str_eq(field_of(doc, "every memory has an embedding", "observed"), "2");
    cr_assert(tu_contains(field_of(doc, "every memory has an embedding", "hint"), "pgmemctl reembed --only-missing"));
    cr_assert_eq(summary(doc, "warn"), 1);
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

Test(verify, fresh_empty_store_says_what_is_missing)
{
    char *db = tu_fresh_db();
    tu_run_result m = PGM(db, "migrate", "up");
    tu_expect_status(&m, 0, "migrate up");
    tu_run_free(&m);
    cJSON *doc = verify_default(db, 3);
    cr_assert(tu_contains(field_of(doc, "embedding dimension matches the model", "message"), "returned no value"));
    cr_assert_str_eq(status_of(doc, VPLAN_CHECK), "skip");
    cr_assert(tu_contains(field_of(doc, VPLAN_CHECK, "message"), "no row with a non-NULL memories.embedding"));
    cr_assert_str_eq(status_of(doc, "migrations up to date"), "pass");
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

/* ---- spec kinds ----------------------------------------------------------------------- */

/* Writes spec to a temp file, runs verify on db with it, asserts the exit status. */
static cJSON *verify_spec_text(const char *db, const char *spec, int want_status, char **err_out)
{
    char *dir = tu_tempdir();
    char *path = tu_write_file(dir, "spec.yaml", spec);
    tu_run_result r = PGM(db, "verify", "--spec", path);
    tu_expect_status(&r, want_status, spec);
    cJSON *doc = tu_json(r.out);
    if (err_out)
        *err_out = strdup(r.err);
    tu_run_free(&r);
    tu_rmtree(dir);
    free(dir);
    free(path);
    return doc;
}

Test(verify_spec_kinds, every_kind_passes_on_a_good_store)
{
    char *db = good_store();
    cJSON *doc = verify_spec_text(db,
                                  "checks:\n"
                                  "  - {kind: server_version, version: '>=13'}\n"
                                  "  - {kind: setting, setting: maintenance_work_mem, expect: '>=1MB'}\n"
                                  "  - {kind: extension, extension: vector, version: '>=0.8.0'}\n"
                                  "  - {kind: access_method, access_method: hnsw}\n"
                                  "  - {kind: column, table: memories, column: embedding, type: vector, dimension: 16}\n"
                                  "  - {kind: index, table: memories, column: embedding, method: hnsw,"
                                  " opclass: vector_cosine_ops, m: 16, ef_construction: 64}\n"
                                  "  - {kind: plan, name: plan, query: 'SELECT id FROM memories ORDER BY embedding <-> $vector"
                                  " LIMIT 5', vector_from: public.memories.embedding, no_seq_scan: false, max_ms: 60000}\n"
                                  "  - {kind: migrations}\n"
                                  "  - {kind: row_count, table: memories, min: 300, max: 300}\n"
                                  "  - {kind: sql, name: sql, query: 'SELECT count(*) FROM embedding_model', expect: 1}\n",
                                  0, NULL);
    cr_assert_eq(summary(doc, "pass"), 10, "%s", cJSON_Print(doc));
    cr_assert_str_eq(field_of(doc, "row_count: memories", "observed"), "300");
    /* EXPLAIN ANALYZE ran: the execution time is in the details */
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(check_named(doc, "plan"), "details");
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(det, "execution_ms")));
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

Test(verify_spec_kinds, every_kind_fails_with_the_observed_value)
{
    char *db = good_store();
    cJSON *doc = verify_spec_text(db,
                                  "checks:\n"
                                  "  - {kind: server_version, version: '>=99'}\n"
                                  "  - {kind: setting, setting: enable_seqscan, expect: 'off'}\n"
                                  "  - {kind: extension, extension: vector, version: '>=9.0'}\n"
                                  "  - {kind: access_method, access_method: diskann}\n"
                                  "  - {kind: column, table: memories, column: embedding, type: halfvec}\n"
                                  "  - {kind: index, table: memories, column: content}\n"
                                  "  - {kind: plan, name: plan, query: 'SELECT id FROM memories ORDER BY embedding <=> $vector"
                                  " LIMIT 5', vector_from: memories.embedding, no_seq_scan: true}\n"
                                  "  - {kind: row_count, table: memories, min: 1000}\n"
                                  "  - {kind: sql, name: sql, query: 'SELECT 41 + 1', expect: 43}\n",
                                  3, NULL);
    cr_assert_eq(summary(doc, "fail"), 9, "%s", cJSON_Print(doc));
    char *major = tu_query_value(db, "SELECT current_setting('server_version_num')::int / 10000");
    cr_assert(!strncmp(field_of(doc, "server_version", "observed"), major, strlen(major)));
    free(major);
    cr_assert_str_eq(field_of(doc, "setting: enable_seqscan", "observed"), "on");
    cr_assert_str_eq(field_of(doc, "extension: vector", "observed"), "0.8.0");
    cr_assert_str_eq(field_of(doc, "access_method: diskann", "observed"), "missing");
    cr_assert_str_eq(field_of(doc, "column: memories.embedding", "observed"), "vector(16)");
    cr_assert_str_eq(field_of(doc, "index: memories.content", "observed"), "missing");
    /* 300 rows of 16 dimensions: the planner prefers a sequential scan */
    cr_assert(tu_contains(field_of(doc, "plan", "observed"), "Seq Scan on memories"));
    cr_assert_str_eq(field_of(doc, "row_count: memories", "observed"), "300");
    cr_assert_str_eq(field_of(doc, "sql", "observed"), "42");
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

Test(verify_spec_kinds, outdated_extension_then_updated)
{
    char *db = tu_fresh_db();
    tu_exec(db, "CREATE EXTENSION hstore VERSION '1.4'");
    const char *spec = "checks:\n  - {kind: extension, extension: hstore}\n";
    cJSON *doc = verify_spec_text(db, spec, 3, NULL);
    cr_assert_str_eq(field_of(doc, "extension: hstore", "observed"), "1.4");
    char *avail = tu_query_value(db, "SELECT default_version FROM pg_available_extensions WHERE name = 'hstore'");
    char *msg = tu_printf("outdated: installed 1.4, the server offers %s", avail);
    cr_assert(tu_contains(field_of(doc, "extension: hstore", "message"), msg), "%s",
              field_of(doc, "extension: hstore", "message"));
    cr_assert_str_eq(field_of(doc, "extension: hstore", "hint"), "ALTER EXTENSION hstore UPDATE;");
    cJSON_Delete(doc);
    tu_exec(db, "ALTER EXTENSION hstore UPDATE");
    doc = verify_spec_text(db, spec, 0, NULL);
    cr_assert_str_eq(field_of(doc, "extension: hstore", "observed"), avail);
    cJSON_Delete(doc);
    /* not installed at all */
    doc = verify_spec_text(db, "checks:\n  - {kind: extension, extension: ltree}\n", 3, NULL);
    cr_assert_str_eq(field_of(doc, "extension: ltree", "observed"), "not installed");
    cr_assert_str_eq(field_of(doc, "extension: ltree", "hint"), "CREATE EXTENSION ltree;");
    cJSON_Delete(doc);
    free(avail);
    free(msg);
    tu_drop_db(db);
    free(db);
}

Test(verify_spec_kinds, partial_index_predicate_and_skip_and_warn)
{
    char *db = good_store();
    tu_exec(db, "CREATE INDEX idx_partial ON memories USING hnsw (embedding vector_cosine_ops)"
                " WHERE embedding IS NOT NULL");
    cJSON *doc = verify_spec_text(db,
                                  "checks:\n"
                                  "  - {kind: index, index: idx_partial, where: embedding IS NOT NULL}\n"
                                  "  - {kind: index, name: wrong predicate, index: idx_partial, where: content IS NOT NULL,"
                                  " severity: warn}\n"
                                  "  - {kind: index, name: not partial, index: idx_memories_embedding_hnsw,"
                                  " where: embedding IS NOT NULL}\n"
                                  "  - {kind: sql, name: skipped, query: SELECT 1, expect: 2, skip: not on this server}\n",
                                  3, NULL);
    cr_assert_str_eq(status_of(doc, "index: idx_partial"), "pass");
    cr_assert_str_eq(status_of(doc, "wrong predicate"), "warn");
    cr_assert_str_eq(status_of(doc, "not partial"), "fail");
    cr_assert(tu_contains(field_of(doc, "not partial", "message"), "not a partial index"));
    cr_assert_str_eq(status_of(doc, "skipped"), "skip");
    cr_assert_str_eq(field_of(doc, "skipped", "message"), "not on this server");
    cr_assert_eq(summary(doc, "skip"), 1);
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

Test(verify_spec_kinds, bad_spec_is_exit_2_naming_line_and_column)
{
    char *db = tu_fresh_db();
    char *dir = tu_tempdir();
    char *path = tu_write_file(dir, "bad.yaml",
                               "checks:\n"
                               "  - kind: index\n"
                               "    index: idx\n"
                               "    ef_construktion: 64\n");
    tu_run_result r = PGM(db, "verify", "--spec", path);
    tu_expect_status(&r, 2, "bad spec");
    char *where = tu_printf("%s:4:5", path);
    cr_assert(tu_contains(r.err, where), "%s", r.err);
    cr_assert(tu_contains(r.err, "ef_construktion"));
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "usage_error");
    cr_assert(tu_contains(tu_json_str(doc, "error"), where));
    cJSON_Delete(doc);
    tu_run_free(&r);
    /* unknown format */
    r = PGM(db, "verify", "--format", "xml");
    tu_expect_status(&r, 2, "bad format");
    tu_run_free(&r);
    free(where);
    free(path);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

/* ---- read-only, connection, retries -------------------------------------------------- */

Test(verify, never_writes)
{
    char *db = good_store();
    tu_exec(db, "CREATE TABLE scratch (id int); CREATE SEQUENCE scratch_seq");
    cJSON *doc = verify_spec_text(db,
                                  "checks:\n"
                                  "  - {kind: sql, name: insert, query: 'INSERT INTO scratch VALUES (1) RETURNING 1', expect: 1}\n"
                                  "  - {kind: sql, name: nextval, query: \"SELECT nextval('scratch_seq')\", expect: 1}\n"
                                  "  - {kind: sql, name: after, query: SELECT count(*) FROM scratch, expect: 0}\n",
                                  3, NULL);
    cr_assert_str_eq(status_of(doc, "insert"), "fail");
    cr_assert(tu_contains(field_of(doc, "insert", "message"), "read-only transaction"));
    cr_assert(tu_contains(field_of(doc, "insert", "message"), "25006"));
    cr_assert_str_eq(status_of(doc, "nextval"), "fail");
    cr_assert(tu_contains(field_of(doc, "nextval", "message"), "read-only transaction"));
    /* a failed check does not stop the next one */
    cr_assert_str_eq(status_of(doc, "after"), "pass");
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM scratch"), 0);
    char *called = tu_query_value(db, "SELECT is_called FROM scratch_seq");
    cr_assert_str_eq(called, "f");
    free(called);
    tu_drop_db(db);
    free(db);
}

Test(verify, connection_refused_after_wait_is_exit_1)
{
    /* port 1: nothing listens there, so every attempt is refused at once */
    char *uri = tu_printf("postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2");
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", uri, "verify", "--wait", "1", NULL});
    tu_expect_status(&r, 1, "refused");
    cr_assert_geq(r.seconds, 0.9, "--wait 1 should have waited, took %.2f s", r.seconds);
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "failed");
    cJSON_Delete(doc);
    tu_run_free(&r);
    free(uri);
}

Test(verify, retry_timeout_waits_for_an_index_being_built)
{
    char *db = good_store();
    tu_exec(db, "DROP INDEX idx_memories_embedding_hnsw");
    blocked_build b = start_blocked_build(db, NULL);
    char *dir = tu_tempdir();
    char *path = tu_write_file(dir, "spec.yaml",
                               "checks:\n"
                               "  - kind: index\n"
                               "    index: idx_memories_embedding_hnsw\n"
                               "    opclass: vector_cosine_ops\n");
    tu_proc *p = tu_spawn((const char *const[]){"pgmemctl", "-d", db, "verify", "--spec", path, "--retry-timeout", "60",
                                                "--retry-interval", "0.3", NULL},
                          NULL);
    sleep(2);
    exec_ok(b.holder, "COMMIT");
    cr_assert(finish_build(b.builder), "the concurrent build failed");
    tu_run_result r = tu_wait(p);
    tu_expect_status(&r, 0, "verify with retries");
    cr_assert(tu_contains(r.err, "being built by CREATE INDEX CONCURRENTLY"), "%s", r.err);
    cr_assert(tu_contains(r.err, "waiting for old snapshots"), "%s", r.err);
    cJSON *doc = tu_json(r.out);
    cr_assert_geq(tu_json_num(doc, "attempts"), 2);
    cr_assert_geq(tu_json_num(check_named(doc, "index: idx_memories_embedding_hnsw"), "attempts"), 2);
    cJSON_Delete(doc);
    tu_run_free(&r);
    PQfinish(b.holder);
    PQfinish(b.builder);
    free(path);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

Test(verify, without_retry_a_build_in_progress_fails_with_its_progress)
{
    char *db = good_store();
    tu_exec(db, "DROP INDEX idx_memories_embedding_hnsw");
    blocked_build b = start_blocked_build(db, NULL);
    cJSON *doc = verify_default(db, 3);
    cr_assert_str_eq(status_of(doc, HNSW_CHECK), "fail");
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(check_named(doc, HNSW_CHECK), "details");
    const cJSON *bp = cJSON_GetObjectItemCaseSensitive(det, "build_progress");
    cr_assert(cJSON_IsObject(bp), "no build_progress in %s", cJSON_Print(det));
    cr_assert(tu_contains(tu_json_str(bp, "phase"), "old snapshots"));
    cJSON_Delete(doc);
    exec_ok(b.holder, "ROLLBACK");
    cr_assert(finish_build(b.builder));
    PQfinish(b.holder);
    PQfinish(b.builder);
    tu_drop_db(db);
    free(db);
}

/* ---- output formats read by real consumers --------------------------------------------- */

/* Runs a command line through /bin/sh with the file as its last argument; returns the exit status. */
static int run_tool(const char *cmd, const char *file)
{
    char *line = tu_printf("%s '%s' >/dev/null 2>&1", cmd, file);
    int st = system(line);
    free(line);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

Test(verify, junit_and_tap_outputs_are_read_by_xmllint_and_prove)
{
    char *db = good_store();
    tu_exec(db, "DROP INDEX idx_memories_embedding_hnsw");
    char *dir = tu_tempdir();
    tu_run_result j = PGM(db, "verify", "--format", "junit");
    tu_expect_status(&j, 3, "junit");
    char *xml = tu_write_file(dir, "verify.xml", j.out);
    char *xsd = tu_printf("xmllint --noout --schema %s/tests/data/junit.xsd", tu_repo());
    cr_assert_eq(run_tool(xsd, xml), 0, "xmllint rejected:\n%s", j.out);
    cr_assert(tu_contains(j.out, "failures=\"2\""), "%s", j.out);
    cr_assert(tu_contains(j.out, "tests=\"10\""));

    tu_run_result t = PGM(db, "verify", "--format", "tap");
    tu_expect_status(&t, 3, "tap");
    char *tap = tu_write_file(dir, "verify.tap", t.out);
    /* prove fails on the two failing checks … */
    cr_assert_neq(run_tool("prove --exec cat", tap), 0, "prove accepted a failing run:\n%s", t.out);
    cr_assert(tu_contains(t.out, "1..10"));
    /* … and passes once the index is back */
    tu_exec(db, "SELECT pgmemctl_ensure_hnsw()");
    tu_run_result t2 = PGM(db, "verify", "--format", "tap");
    tu_expect_status(&t2, 0, "tap after fix");
    char *tap2 = tu_write_file(dir, "verify2.tap", t2.out);
    cr_assert_eq(run_tool("prove --exec cat", tap2), 0, "prove rejected:\n%s", t2.out);

    tu_run_result h = tu_run_env((const char *const[]){"pgmemctl", "-d", db, "verify", "--format", "human", NULL},
                                 (const char *const[]){"NO_COLOR=1", NULL});
    tu_expect_status(&h, 0, "human");
    cr_assert(tu_contains(h.out, "PASS  "));
    cr_assert_null(strchr(h.out, '\033'), "colour escape in piped human output");
    cr_assert(tu_contains(h.out, "10 checks: 10 passed"), "%s", h.out);

    tu_run_free(&j);
    tu_run_free(&t);
    tu_run_free(&t2);
    tu_run_free(&h);
    free(xml);
    free(xsd);
    free(tap);
    free(tap2);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

Test(verify_spec_kinds, type_names_both_ways_and_pgvector_settings_before_any_vector_use)
{
    char *db = good_store();
    /* hnsw.ef_search is first: the check itself loads pgvector's library to see it */
    cJSON *doc = verify_spec_text(db,
                                  "checks:\n"
                                  "  - {kind: setting, setting: hnsw.ef_search, expect: 40}\n"
                                  "  - {kind: setting, setting: ivfflat.probes, expect: 1}\n"
                                  "  - {kind: column, name: sql name, table: embedding_model, column: dimension, type: integer}\n"
                                  "  - {kind: column, name: catalog name, table: embedding_model, column: dimension, type: int4}\n"
                                  "  - {kind: column, name: wrong, table: embedding_model, column: dimension, type: bigint}\n",
                                  3, NULL);
    cr_assert_str_eq(status_of(doc, "setting: hnsw.ef_search"), "pass", "%s", cJSON_Print(doc));
    cr_assert_str_eq(field_of(doc, "setting: hnsw.ef_search", "observed"), "40");
    cr_assert_str_eq(status_of(doc, "setting: ivfflat.probes"), "pass");
    cr_assert_str_eq(status_of(doc, "sql name"), "pass");
    cr_assert_str_eq(status_of(doc, "catalog name"), "pass");
    cr_assert_str_eq(status_of(doc, "wrong"), "fail");
    cr_assert(tu_contains(field_of(doc, "wrong", "message"), "is integer, not bigint"), "%s",
              field_of(doc, "wrong", "message"));
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

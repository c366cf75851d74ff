/* test_reembed.c — integration tests of `pgmemctl reembed` with the builtin embedder against the
 * sandbox cluster: 768 -> 384 dimensions in shadow and in-place mode (ids untouched, registry,
 * index present and used, every vector equal to the new model's), searches running during a
 * shadow re-embed, resume after kill -9 without re-embedding committed rows, --only-missing,
 * no-op, dry run, confirmation, the lock, an interrupted run's target, rejected rows. */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/testutil.h"
#include "common/reembed_fixture.h"
#include "common/vestige_fixture.h"
#include "embed.h"

TestSuite(reembed, .fini = tu_leak_check, .timeout = 180);

#define PGM(uri, ...) tu_run((const char *const[]){"pgmemctl", "-d", (uri), __VA_ARGS__, NULL})

#define store_768 rf_store_768
#define check_vectors rf_check_vectors

static long long q_int(const char *db, const char *sql) { return tu_query_int(db, sql); }

#define ids_digest rf_ids_digest
#define expect_reembedded rf_expect_reembedded

Test(reembed, shadow_768_to_384)
{
    char *db = store_768(400);
    char *ids = ids_digest(db);
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes", "--batch-size", "64");
    tu_expect_status(&r, 0, "shadow re-embed");
    cJSON *j = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(j, "status"), "ok");
    cr_assert_str_eq(tu_json_str(j, "mode"), "shadow");
    cr_assert_eq(tu_json_num(j, "rows_updated"), 400);
    cr_assert_geq(tu_json_num(j, "recall_at_10"), 0.9);
    cr_assert_eq(tu_json_num(cJSON_GetObjectItem(j, "new_model"), "dimension"), 384);
    cr_assert_str_eq(tu_json_str(cJSON_GetObjectItem(j, "old_model"), "name"), "builtin:hash-768");
    cr_assert(tu_json_bool(j, "index_built"));
    cr_assert(tu_contains(r.err, "pg_dump --dbname="), "no backup command on stderr:\n%s", r.err);
    cJSON_Delete(j);
    tu_run_free(&r);
    expect_reembedded(db, 400, 384, ids, true);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed, in_place_768_to_384_and_keep_old)
{
    char *db = store_768(300);
    char *ids = ids_digest(db);
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--mode", "in-place", "--yes",
                          "--concurrent-index");
    tu_expect_status(&r, 0, "in-place re-embed");
    cJSON *j = tu_json(r.out);
    cr_assert_eq(tu_json_num(j, "rows_updated"), 300);
    cJSON_Delete(j);
    tu_run_free(&r);
    expect_reembedded(db, 300, 384, ids, true);
    /* and back to 768 in shadow mode keeping the old table */
    r = PGM(db, "reembed", "--model", "builtin:hash-768", "--yes", "--keep-old");
    tu_expect_status(&r, 0, "shadow with --keep-old");
    j = tu_json(r.out);
    cr_assert(tu_json_bool(j, "kept_old_table"));
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_memories_old WHERE vector_dims(embedding) = 384"), 300);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 768"), 300);
    /* the kept table no longer has the change log's trigger nor the foreign keys */
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pgmemctl_memories_old'::regclass"
                           " AND tgname = 'memories_reembed_log'"),
                 0);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_constraint WHERE confrelid = 'pgmemctl_memories_old'::regclass"), 0);
    /* a further shadow re-embed refuses until the kept table is dropped */
    r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes");
    tu_expect_status(&r, 2, "pgmemctl_memories_old still there");
    cr_assert(tu_contains(r.err, "DROP TABLE pgmemctl_memories_old"), "%s", r.err);
    tu_run_free(&r);
    free(ids);
    tu_drop_db(db);
    free(db);
}

/* ---- readers during a shadow re-embed ------------------------------------------------------ */

typedef struct {
    const char *db;
    atomic_bool stop;
    int queries, errors, mixed, dims_seen[2];
    char first_error[512];
} search_loop;

static void *searcher(void *arg)
{
    search_loop *s = arg;
    PGconn *c = PQconnectdb(s->db);
    while (!atomic_load(&s->stop)) {
        /* a vector search with a query vector of the store's current dimension, and the
         * dimensions a reader sees at one instant */
        PGresult *r = PQexec(c, "SELECT (SELECT count(*) FROM (SELECT id FROM memories ORDER BY embedding <=>"
                                " (SELECT embedding FROM memories LIMIT 1) LIMIT 5) t),"
                                " (SELECT count(DISTINCT vector_dims(embedding)) FROM memories),"
                                " (SELECT min(vector_dims(embedding)) FROM memories)");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            if (!s->errors++)
                snprintf(s->first_error, sizeof s->first_error, "%s", PQerrorMessage(c));
        } else {
            s->queries++;
            if (atoi(PQgetvalue(r, 0, 0)) != 5 || atoi(PQgetvalue(r, 0, 1)) != 1)
                s->mixed++;
            int d = atoi(PQgetvalue(r, 0, 2));
            s->dims_seen[d == 384] = 1;
        }
        PQclear(r);
    }
    PQfinish(c);
    return NULL;
}

Test(reembed, searches_keep_working_during_a_shadow_reembed)
{
    char *db = store_768(1500);
    search_loop s = {.db = db};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, searcher, &s), 0);
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes", "--batch-size", "25");
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    tu_expect_status(&r, 0, "shadow re-embed under load");
    tu_run_free(&r);
    cr_assert_eq(s.errors, 0, "%d searches failed, first: %s", s.errors, s.first_error);
    cr_assert_eq(s.mixed, 0, "%d searches saw a mixed or short result", s.mixed);
    cr_assert_gt(s.queries, 20, "only %d searches ran during the re-embed", s.queries);
    cr_assert(s.dims_seen[0], "no search saw the old vectors");
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), 1500);
    tu_drop_db(db);
    free(db);
}

/* ---- kill -9 and resume -------------------------------------------------------------------- */

/* Starts reembed with args, kills it with SIGKILL once `progress_sql` reports > 0 rows, and
 * returns the rows done at that point. */
static long long kill_midway(const char *db, const char *const *args, const char *progress_sql)
{
    rf_kill_reembed(db, args, &(rf_kill_plan){.kill_when = progress_sql});
    return q_int(db, progress_sql);
}

Test(reembed, kill9_then_rerun_shadow)
{
    char *db = store_768(2000);
    char *ids = ids_digest(db);
    long long done = kill_midway(db,
                                 (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384",
                                                       "--yes", "--batch-size", "50", NULL},
                                 "SELECT CASE WHEN to_regclass('pgmemctl_reembed_state') IS NULL THEN 0 ELSE"
                                 " (SELECT coalesce(sum(rows_done), 0) FROM pgmemctl_reembed_state) END");
    cr_assert_gt(done, 0);
    cr_assert_lt(done, 2000, "the run finished before the kill");
    /* readers still see only the old vectors */
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 768"), 2000);
    long long next = q_int(db, "SELECT count(embedding) FROM pgmemctl_memories_next");
    cr_assert_eq(next, done, "committed progress and the copy's vectors disagree");
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes", "--batch-size", "50");
    tu_expect_status(&r, 0, "the re-run");
    cJSON *j = tu_json(r.out);
    cr_assert(tu_json_bool(j, "resumed"));
    /* no committed memory was embedded again */
    cr_assert_eq(tu_json_num(j, "rows_updated"), 2000 - done);
    cr_assert_eq(tu_json_num(cJSON_GetObjectItem(j, "embedder"), "inputs"), 2000 - done);
    cJSON_Delete(j);
    tu_run_free(&r);
    expect_reembedded(db, 2000, 384, ids, true);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed, kill9_then_rerun_in_place)
{
    char *db = store_768(2000);
    char *ids = ids_digest(db);
    /* an index with other parameters: the resumed run must rebuild it the same way although the
     * first run dropped it */
    tu_exec(db, "DROP INDEX idx_memories_embedding_hnsw;"
                "CREATE INDEX idx_memories_embedding_hnsw ON memories USING hnsw (embedding vector_l2_ops)"
                " WITH (m = 12, ef_construction = 40)");
    long long done = kill_midway(db,
                                 (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384",
                                                       "--mode", "in-place", "--yes", "--batch-size", "50", NULL},
                                 "SELECT coalesce(sum(rows_done), 0) FROM pgmemctl_reembed_state");
    cr_assert_lt(done, 2000);
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--mode", "in-place", "--yes", "--batch-size",
                          "50");
    tu_expect_status(&r, 0, "the re-run");
    cJSON *j = tu_json(r.out);
    cr_assert(tu_json_bool(j, "resumed"));
    cr_assert_eq(tu_json_num(j, "rows_updated"), 2000 - done);
    cJSON_Delete(j);
    tu_run_free(&r);
    expect_reembedded(db, 2000, 384, ids, false);
    char *def = tu_query_value(db, "SELECT pg_get_indexdef('idx_memories_embedding_hnsw'::regclass)");
    cr_assert(tu_contains(def, "hnsw (embedding vector_l2_ops) WITH (m='12', ef_construction='40')"), "%s", def);
    free(def);
    free(ids);
    tu_drop_db(db);
    free(db);
}

/* ---- the other paths ----------------------------------------------------------------------- */

Test(reembed, only_missing_noop_and_dry_run)
{
    char *db = store_768(200);
    tu_exec(db, "UPDATE memories SET embedding = NULL WHERE content LIKE 'memory 1%'");
    /* as `copy` registers a store's model: by name and dimension, without a fingerprint */
    tu_exec(db, "UPDATE embedding_model SET hash = NULL");
    long long missing = q_int(db, "SELECT count(*) FROM memories WHERE embedding IS NULL");
    cr_assert_gt(missing, 5);
    char *before = tu_catalog_snapshot(db);

    /* dry run: the plan, nothing written */
    tu_run_result r = PGM(db, "reembed", "--only-missing", "--dry-run");
    tu_expect_status(&r, 0, "dry run");
    cJSON *j = tu_json(r.out);
    cr_assert_eq(tu_json_num(j, "rows_to_embed"), missing);
    cr_assert_gt(tu_json_num(cJSON_GetObjectItem(j, "estimate"), "tokens"), 0);
    /* these writes go into the HNSW index: at least rows / 300 seconds */
    cr_assert_geq(tu_json_num(cJSON_GetObjectItem(j, "estimate"), "seconds") + 0.001, (double) missing / 300.0);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE embedding IS NULL"), missing);

    r = PGM(db, "reembed", "--only-missing", "--yes");
    tu_expect_status(&r, 0, "only missing");
    j = tu_json(r.out);
    cr_assert_eq(tu_json_num(j, "rows_updated"), missing);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE embedding IS NULL"), 0);
    cr_assert_eq(check_vectors(db, 768, "content LIKE 'memory 1%'"), missing < 50 ? missing : 50);
    char *after = tu_catalog_snapshot(db);
    cr_assert_str_eq(before, after, "--only-missing changed the schema");

    /* the same model again: nothing to do, nothing changed */
    r = PGM(db, "reembed", "--model", "builtin:hash-768", "--yes");
    tu_expect_status(&r, 0, "no-op");
    j = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(j, "status"), "nothing_to_do");
    cr_assert_eq(tu_json_num(j, "rows_updated"), 0);
    cJSON_Delete(j);
    tu_run_free(&r);
    char *again = tu_catalog_snapshot(db);
    cr_assert_str_eq(before, again);

    /* --only-missing with another model is refused */
    r = PGM(db, "reembed", "--only-missing", "--model", "builtin:hash-384", "--yes");
    tu_expect_status(&r, 2, "only-missing with another model");
    tu_run_free(&r);
    free(before);
    free(after);
    free(again);
    tu_drop_db(db);
    free(db);
}

Test(reembed, confirmation_lock_and_interrupted_target)
{
    char *db = store_768(100);
    char *before = tu_catalog_snapshot(db);
    /* no --yes and no terminal: refused, nothing written */
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384");
    tu_expect_status(&r, 2, "without --yes");
    cr_assert(tu_contains(r.err, "--yes"), "%s", r.err);
    tu_run_free(&r);
    char *after = tu_catalog_snapshot(db);
    cr_assert_str_eq(before, after);

    /* another session holds the re-embed lock */
    PGconn *c = PQconnectdb(db);
    cr_assert_eq(PQstatus(c), CONNECTION_OK);
    PGresult *lk = PQexec(c, "SELECT pg_advisory_lock(8099562737243614562), pg_backend_pid()");
    cr_assert_eq(PQresultStatus(lk), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    char *pid = tu_printf("pid %s", PQgetvalue(lk, 0, 1));
    PQclear(lk);
    r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes", "--lock-timeout", "1");
    tu_expect_status(&r, 1, "locked");
    cr_assert(tu_contains(r.err, pid), "the holder's %s is not named:\n%s", pid, r.err);
    tu_run_free(&r);
    PQfinish(c);
    free(pid);

    /* an interrupted shadow run to 384 blocks a different target until it is aborted */
    tu_exec(db, "INSERT INTO pgmemctl_reembed_state (mode, model, dimension, hash) VALUES"
                " ('shadow', 'builtin:hash-384', 384, 'x');"
                "ALTER TABLE memories ADD COLUMN embedding_next vector(384)");
    r = PGM(db, "reembed", "--model", "builtin:hash-256", "--yes");
    tu_expect_status(&r, 2, "other target");
    cr_assert(tu_contains(r.err, "builtin:hash-384"), "%s", r.err);
    cr_assert(tu_contains(r.err, "--abort"), "%s", r.err);
    tu_run_free(&r);
    r = PGM(db, "reembed", "--abort");
    tu_expect_status(&r, 0, "abort");
    tu_run_free(&r);
    char *aborted = tu_catalog_snapshot(db);
    cr_assert_str_eq(before, aborted, "--abort left objects behind");
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_state"), 0);
    /* nothing left to undo */
    r = PGM(db, "reembed", "--abort");
    tu_expect_status(&r, 0, "abort again");
    cJSON *j = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(j, "status"), "nothing_to_do");
    cJSON_Delete(j);
    tu_run_free(&r);
    free(before);
    free(after);
    free(aborted);
    tu_drop_db(db);
    free(db);
}

Test(reembed, empty_content_is_reported_and_left_without_a_vector)
{
    char *db = store_768(120);
    tu_exec(db, "INSERT INTO memories (id, content, updated_at) VALUES"
                " ('00000000-0000-4000-8000-00000000e001', '', '2020-01-01 00:00:00+00')");
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes");
    tu_expect_status(&r, 3, "a row could not be embedded");
    cJSON *j = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(j, "status"), "rejected");
    cr_assert_eq(tu_json_num(j, "rows_rejected"), 1);
    const cJSON *rej = cJSON_GetArrayItem(tu_json_array(j, "rejects"), 0);
    cr_assert_str_eq(tu_json_str(rej, "id"), "00000000-0000-4000-8000-00000000e001");
    cr_assert(tu_contains(tu_json_str(rej, "reason"), "empty"));
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE embedding IS NULL"), 1);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), 120);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM embedding_model WHERE active AND dimension = 384"), 1);
    tu_drop_db(db);
    free(db);
}

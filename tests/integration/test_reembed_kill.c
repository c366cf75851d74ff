/* test_reembed_kill.c — `pgmemctl reembed` killed with SIGKILL in each of its phases, then run
 * again: every memory must end with exactly one vector, of the new model, and a valid HNSW
 * index. The backfill of both modes is killed in test_reembed.c; here the rest: shadow mode in
 * its setup, its index build, its recall check and its swap; in-place mode in its preparation
 * (index dropped, typmod lifted), before the new dimension is set, and in its index build;
 * --only-missing in its backfill. A phase is reached for certain, not by timing: a second
 * session holds a lock on memories that the phase needs (the re-embed waits in it, and is killed
 * there), or the kill comes while pg_stat_progress_create_index shows the build running, over a
 * connection with client_connection_check_interval so that the server stops the build when the
 * client is gone (else it would finish it regardless). Each test asserts what the kill left
 * before the re-run mends it. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/reembed_fixture.h"
#include "common/testutil.h"

TestSuite(reembed_kill, .fini = tu_leak_check, .timeout = 300);

#define N 1000
#define N_S "1000"

static long long q_int(const char *db, const char *sql) { return tu_query_int(db, sql); }

/* > 0 once the state row shows committed progress (a backfill is running). */
#define BACKFILLING "SELECT coalesce(sum(rows_done), 0) FROM pgmemctl_reembed_state"

/* > 0 while the re-embed's session builds an index on memories. */
#define BUILDING                                                                                                      \
    "SELECT count(*) FROM pg_stat_progress_create_index p JOIN pg_stat_activity a ON a.pid = p.pid"                    \
    " WHERE a.application_name = 'pgmemctl reembed' AND p.relid = 'memories'::regclass"                              \
    " AND p.phase LIKE 'building index%'"

/* The URI of db with client_connection_check_interval = 20 ms for the re-embed's session. */
static char *checking_uri(const char *db)
{
    return tu_printf("%s%coptions=-c%%20client_connection_check_interval%%3D20", db, strchr(db, '?') ? '&' : '?');
}

/* The store's HNSW index again with parameters of its own (m 32, ef_construction 400): a build
 * that lasts long enough to be caught, and parameters the re-run must keep. */
static void slow_index(const char *db)
{
    tu_exec(db, "DROP INDEX idx_memories_embedding_hnsw;"
                "CREATE INDEX idx_memories_embedding_hnsw ON memories USING hnsw (embedding vector_cosine_ops)"
                " WITH (m = 32, ef_construction = 400)");
}

static void expect_slow_index(const char *db)
{
    char *def = tu_query_value(db, "SELECT pg_get_indexdef('idx_memories_embedding_hnsw'::regclass)");
    cr_assert(tu_contains(def, "hnsw (embedding vector_cosine_ops) WITH (m='32', ef_construction='400')"), "%s", def);
    free(def);
}

static const char *state_phase(const char *db, char *buf, size_t len)
{
    char *v = tu_query_value(db, "SELECT phase FROM pgmemctl_reembed_state");
    snprintf(buf, len, "%s", v ? v : "(none)");
    free(v);
    return buf;
}

/* The memories still hold the old model's vectors only, as before the run. */
static void expect_old_vectors(const char *db)
{
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 768"), N);
    char *model = tu_query_value(db, "SELECT name FROM embedding_model WHERE active");
    cr_assert_str_eq(model, "builtin:hash-768");
    free(model);
}

/* Runs the re-embed to builtin:hash-384 again (args: the mode's options, NULL-terminated, at
 * most 4) and checks how it ends: exit 0, `updated` memories embedded (none again that the
 * killed run committed), resumed or not, stderr saying `says` (NULL: anything), and every
 * memory with one vector of the new model and a valid index (rf_expect_reembedded; with verify,
 * `pgmemctl verify` too). */
static void rerun_and_check(const char *db, const char *const *args, long long updated, bool resumed,
                            const char *says, bool verify, const char *ids)
{
    const char *argv[16] = {"pgmemctl", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes"};
    int a = 7;
    for (int i = 0; args && args[i] && i < 4; i++)
        argv[a++] = args[i];
    argv[a] = NULL;
    tu_run_result r = tu_run(argv);
    tu_expect_status(&r, 0, "the re-run after the kill");
    cJSON *j = tu_json(r.out);
    cr_assert_eq(tu_json_num(j, "rows_updated"), updated, "rows embedded by the re-run");
    cr_assert_eq(tu_json_bool(j, "resumed"), resumed, "resumed");
    cJSON_Delete(j);
    if (says)
        cr_assert(tu_contains(r.err, says), "no \"%s\" in:\n%s", says, r.err);
    tu_run_free(&r);
    rf_expect_reembedded(db, N, 384, ids, verify);
}

/* ---- shadow ------------------------------------------------------------------------------- */

Test(reembed_kill, shadow_in_its_setup)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *waiting = rf_waiting_for("AccessExclusiveLock");
    /* a reader's lock makes the setup (ADD COLUMN embedding_next) wait */
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes",
                                          NULL},
                    &(rf_kill_plan){.lock_mode = "ACCESS SHARE", .kill_when = waiting});
    /* the setup's transaction is gone whole: no state, no shadow column */
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_state"), 0);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'memories'::regclass"
                           " AND attname = 'embedding_next' AND NOT attisdropped"),
                 0);
    expect_old_vectors(db);
    rerun_and_check(db, NULL, N, false, NULL, true, ids);
    free(waiting);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed_kill, shadow_in_its_index_build)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *uri = checking_uri(db);
    slow_index(db);
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", uri, "reembed", "--model", "builtin:hash-384", "--yes",
                                          NULL},
                    &(rf_kill_plan){.kill_when = BUILDING});
    /* every new vector is written, the concurrent build is left invalid, readers use the old */
    char phase[32];
    cr_assert_str_eq(state_phase(db, phase, sizeof phase), "index");
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding_next) = 384"), N);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_index WHERE indexrelid ="
                           " to_regclass('idx_memories_embedding_next_hnsw') AND NOT indisvalid"),
                 1, "the interrupted build left no invalid index");
    expect_old_vectors(db);
    /* verify's built-in profile wants m 16: the index is checked by rf_expect_reembedded and below */
    rerun_and_check(db, NULL, 0, true, "left invalid by an interrupted build", false, ids);
    expect_slow_index(db);
    free(uri);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed_kill, shadow_in_its_recall_check)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *waiting = rf_waiting_for("AccessShareLock");
    /* once the new index is valid, an exclusive lock holds the recall check's next query */
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes",
                                          "--recall-sample", "500", NULL},
                    &(rf_kill_plan){.lock_mode = "ACCESS EXCLUSIVE",
                                    .lock_when = "SELECT count(*) FROM pg_index WHERE indexrelid ="
                                                 " to_regclass('idx_memories_embedding_next_hnsw') AND indisvalid",
                                    .kill_when = waiting});
    char phase[32];
    cr_assert_str_eq(state_phase(db, phase, sizeof phase), "index");
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding_next) = 384"), N);
    expect_old_vectors(db);
    rerun_and_check(db, (const char *const[]){"--recall-sample", "50", NULL}, 0, true,
                    "already built by an earlier run: kept", true, ids);
    free(waiting);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed_kill, shadow_in_its_swap)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *waiting = rf_waiting_for("AccessExclusiveLock");
    /* a reader's lock, taken during the backfill, makes the swap's LOCK TABLE wait */
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes",
                                          "--batch-size", "20", NULL},
                    &(rf_kill_plan){.lock_mode = "ACCESS SHARE", .lock_when = BACKFILLING, .kill_when = waiting});
    /* not swapped: the old column in use, the new one complete with its valid index */
    char phase[32];
    cr_assert_str_eq(state_phase(db, phase, sizeof phase), "index");
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding_next) = 384"), N);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_index WHERE indexrelid ="
                           " to_regclass('idx_memories_embedding_next_hnsw') AND indisvalid"),
                 1);
    expect_old_vectors(db);
    rerun_and_check(db, NULL, 0, true, NULL, true, ids);
    free(waiting);
    free(ids);
    tu_drop_db(db);
    free(db);
}

/* ---- in place ----------------------------------------------------------------------------- */

static const char *const in_place[] = {"--mode", "in-place", NULL};

Test(reembed_kill, in_place_in_its_preparation)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *waiting = rf_waiting_for("AccessExclusiveLock");
    char *def = tu_query_value(db, "SELECT pg_get_indexdef('idx_memories_embedding_hnsw'::regclass)");
    /* a reader's lock makes the preparation (DROP INDEX, the typmod lifted) wait */
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--mode",
                                          "in-place", "--yes", NULL},
                    &(rf_kill_plan){.lock_mode = "ACCESS SHARE", .kill_when = waiting});
    /* all of it rolled back: no state, the index and the column type as they were */
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_state"), 0);
    char *type = tu_query_value(db, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                    " WHERE attrelid = 'memories'::regclass AND attname = 'embedding'");
    cr_assert_str_eq(type, "vector(768)");
    free(type);
    char *def2 = tu_query_value(db, "SELECT pg_get_indexdef('idx_memories_embedding_hnsw'::regclass)");
    cr_assert_str_eq(def2, def, "the index changed");
    free(def2);
    free(def);
    expect_old_vectors(db);
    rerun_and_check(db, in_place, N, false, NULL, true, ids);
    free(waiting);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed_kill, in_place_before_the_new_dimension_is_set)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *waiting = rf_waiting_for("AccessExclusiveLock");
    /* a reader's lock, taken during the backfill, makes ALTER COLUMN … TYPE vector(384) wait */
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--mode",
                                          "in-place", "--yes", "--batch-size", "20", NULL},
                    &(rf_kill_plan){.lock_mode = "ACCESS SHARE", .lock_when = BACKFILLING, .kill_when = waiting});
    /* every vector rewritten, but the column untyped, the registry not updated, no index */
    char phase[32];
    cr_assert_str_eq(state_phase(db, phase, sizeof phase), "backfill");
    cr_assert_eq(q_int(db, "SELECT rows_done FROM pgmemctl_reembed_state"), N);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), N);
    char *type = tu_query_value(db, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                    " WHERE attrelid = 'memories'::regclass AND attname = 'embedding'");
    cr_assert_str_eq(type, "vector");
    free(type);
    char *model = tu_query_value(db, "SELECT name FROM embedding_model WHERE active");
    cr_assert_str_eq(model, "builtin:hash-768");
    free(model);
    cr_assert_null(tu_query_value(db, "SELECT to_regclass('idx_memories_embedding_hnsw')::text"));
    rerun_and_check(db, in_place, 0, true, NULL, true, ids);
    free(waiting);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed_kill, in_place_in_its_index_build)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *uri = checking_uri(db);
    slow_index(db);
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", uri, "reembed", "--model", "builtin:hash-384", "--mode",
                                          "in-place", "--yes", NULL},
                    &(rf_kill_plan){.kill_when = BUILDING});
    /* the new vectors, dimension and registry are committed; the build was rolled back */
    char phase[32];
    cr_assert_str_eq(state_phase(db, phase, sizeof phase), "index");
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), N);
    char *model = tu_query_value(db, "SELECT name FROM embedding_model WHERE active");
    cr_assert_str_eq(model, "builtin:hash-384");
    free(model);
    cr_assert_null(tu_query_value(db, "SELECT to_regclass('idx_memories_embedding_hnsw')::text"),
                   "the interrupted build left an index");
    /* verify's built-in profile wants m 16: the index is checked by rf_expect_reembedded and below */
    rerun_and_check(db, in_place, 0, true, NULL, false, ids);
    expect_slow_index(db);
    free(uri);
    free(ids);
    tu_drop_db(db);
    free(db);
}

/* ---- only missing ------------------------------------------------------------------------- */

Test(reembed_kill, only_missing_in_its_backfill)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db);
    tu_exec(db, "UPDATE memories SET embedding = NULL; UPDATE memories SET updated_at = '2020-01-01 00:00:00+00'");
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--only-missing", "--yes",
                                          "--batch-size", "20", NULL},
                    &(rf_kill_plan){.kill_when = "SELECT count(embedding) FROM memories"});
    long long done = q_int(db, "SELECT count(embedding) FROM memories");
    cr_assert(done > 0 && done < N, "%lld of " N_S " embedded at the kill", done);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", db, "reembed", "--only-missing", "--yes", NULL});
    tu_expect_status(&r, 0, "the re-run after the kill");
    cJSON *j = tu_json(r.out);
    cr_assert_eq(tu_json_num(j, "rows_updated"), N - done, "a memory embedded before the kill was embedded again");
    cJSON_Delete(j);
    tu_run_free(&r);
    rf_expect_reembedded(db, N, 768, ids, true);
    free(ids);
    tu_drop_db(db);
    free(db);
}

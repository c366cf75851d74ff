/* test_reembed_kill.c — `pgmemctl reembed` killed with SIGKILL in each of its phases, then run
 * again: every memory must end with exactly one vector, of the new model, and a valid HNSW
 * index. The backfill of both modes is killed in test_reembed.c; here the rest: shadow mode in
 * its setup, its index build, its recall check, its swap, after its swap (the foreign keys'
 * validation), and --abort from each phase before the swap; in-place mode in its preparation
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

/* > 0 while the re-embed's session builds an index on the copy of memories. */
#define BUILDING_COPY                                                                                                 \
    "SELECT count(*) FROM pg_stat_progress_create_index p JOIN pg_stat_activity a ON a.pid = p.pid"                    \
    " WHERE a.application_name = 'pgmemctl reembed' AND p.relid = to_regclass('pgmemctl_memories_next')"             \
    " AND p.phase LIKE 'building index%'"

#define IN_PHASE(p) "SELECT count(*) FROM pgmemctl_reembed_state WHERE phase = '" p "'"

/* The copy holds every memory with a vector of the new model, and `hnsw` HNSW indexes. */
static void expect_full_copy(const char *db, int hnsw)
{
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_memories_next WHERE vector_dims(embedding) = 384"), N);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                           " JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = 'pgmemctl_memories_next'::regclass"
                           " AND am.amname = 'hnsw' AND i.indisvalid"),
                 hnsw);
}

Test(reembed_kill, shadow_in_its_setup)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *waiting = rf_waiting_for("ShareRowExclusiveLock");
    /* a writer's lock makes the setup (CREATE TRIGGER memories_reembed_log) wait */
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes",
                                          NULL},
                    &(rf_kill_plan){.lock_mode = "ROW EXCLUSIVE", .kill_when = waiting});
    /* the setup's transaction is gone whole: no state, no copy, no trigger */
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_state"), 0);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_class WHERE relname = 'pgmemctl_memories_next'"), 0);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_trigger WHERE tgname = 'memories_reembed_log'"), 0);
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
                    &(rf_kill_plan){.kill_when = BUILDING_COPY});
    /* every new vector is in the copy; the interrupted build left nothing; readers use the old */
    char phase[32];
    cr_assert_str_eq(state_phase(db, phase, sizeof phase), "index");
    expect_full_copy(db, 0);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_index WHERE indrelid = 'pgmemctl_memories_next'::regclass"
                           " AND NOT indisvalid"),
                 0);
    expect_old_vectors(db);
    /* verify's built-in profile wants m 16: the index is checked by rf_expect_reembedded and below */
    rerun_and_check(db, NULL, 0, true, "building idx_memories_embedding_hnsw on the copy", false, ids);
    expect_slow_index(db);
    free(uri);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed_kill, shadow_in_its_recall_check)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db),
         *waiting = rf_waiting_for_on("pgmemctl_memories_next", "AccessShareLock");
    /* once the copy's indexes are built, an exclusive lock on it holds the recall check's next query */
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes",
                                          "--recall-sample", "500", NULL},
                    &(rf_kill_plan){.lock_mode = "ACCESS EXCLUSIVE", .lock_table = "pgmemctl_memories_next",
                                    .lock_when = IN_PHASE("replay"), .kill_when = waiting});
    char phase[32];
    cr_assert_str_eq(state_phase(db, phase, sizeof phase), "replay");
    expect_full_copy(db, 1);
    expect_old_vectors(db);
    /* nothing is embedded or built again */
    rerun_and_check(db, (const char *const[]){"--recall-sample", "50", NULL}, 0, true, NULL, true, ids);
    free(waiting);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed_kill, shadow_in_its_swap)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *waiting = rf_waiting_for("AccessExclusiveLock");
    /* a reader's lock, taken during the copy, makes the swap's LOCK TABLE time out again and again */
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes",
                                          "--batch-size", "20", NULL},
                    &(rf_kill_plan){.lock_mode = "ACCESS SHARE", .lock_when = BACKFILLING, .kill_when = waiting});
    /* not swapped: memories in use as it was, the copy complete with its valid index */
    char phase[32];
    cr_assert_str_eq(state_phase(db, phase, sizeof phase), "replay");
    expect_full_copy(db, 1);
    expect_old_vectors(db);
    rerun_and_check(db, NULL, 0, true, NULL, true, ids);
    free(waiting);
    free(ids);
    tu_drop_db(db);
    free(db);
}

Test(reembed_kill, shadow_after_its_swap)
{
    char *db = rf_store_768(N), *ids = rf_ids_digest(db), *dir = tu_tempdir();
    char *pause = tu_printf("%s/paused", dir);
    tu_exec(db, "INSERT INTO scheduling (memory_id) SELECT id FROM memories");
    /* swapped, then stopped before the steps after it (the test hook pauses it there) */
    setenv("PGMEMCTL_REEMBED_PAUSE_AFTER_SWAP", pause, 1);
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes",
                                          NULL},
                    &(rf_kill_plan){.kill_when = IN_PHASE("validate")});
    unsetenv("PGMEMCTL_REEMBED_PAUSE_AFTER_SWAP");
    char phase[32];
    cr_assert_str_eq(state_phase(db, phase, sizeof phase), "validate");
    /* the new vectors are in service; the foreign key is enforced, not yet validated; the old
     * table is still there */
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), N);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_constraint WHERE conname = 'scheduling_memory_id_fkey'"
                           " AND confrelid = 'memories'::regclass AND NOT convalidated"),
                 1);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_memories_old"), N);
    /* too late to undo */
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", db, "reembed", "--abort", NULL});
    tu_expect_status(&r, 2, "--abort after the swap");
    cr_assert(tu_contains(r.err, "already swapped"), "%s", r.err);
    tu_run_free(&r);
    rerun_and_check(db, NULL, 0, true, "validating the foreign keys", true, ids);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM scheduling s JOIN memories m ON m.id = s.memory_id"), N);
    tu_rmtree(dir);
    free(dir);
    free(pause);
    free(ids);
    tu_drop_db(db);
    free(db);
}

/* --abort from each phase: memories and the catalog as before the run. */
Test(reembed_kill, shadow_abort_from_each_phase)
{
    char *db = rf_store_768(N), *uri = checking_uri(db);
    char *before = tu_catalog_snapshot(db);
    char *excl = rf_waiting_for("AccessExclusiveLock");
    const struct {
        const char *name;
        rf_kill_plan plan;
    } phases[] = {
        {"backfill", {.kill_when = "SELECT count(*) FROM pg_class WHERE relname = 'pgmemctl_memories_next'"
                                   " AND (SELECT rows_done FROM pgmemctl_reembed_state) > 0"}},
        {"index", {.kill_when = BUILDING_COPY}},
        {"replay", {.lock_mode = "ACCESS SHARE", .lock_when = BACKFILLING, .kill_when = excl}},
    };
    slow_index(db);
    tu_exec(db, "ANALYZE memories");
    free(before);
    before = tu_catalog_snapshot(db);
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        rf_kill_reembed(db,
                        (const char *const[]){"pgmemctl", "-q", "-d", uri, "reembed", "--model", "builtin:hash-384",
                                              "--yes", "--batch-size", "20", NULL},
                        &phases[i].plan);
        char phase[32];
        cr_assert_str_eq(state_phase(db, phase, sizeof phase), phases[i].name);
        tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", db, "reembed", "--abort", NULL});
        tu_expect_status(&r, 0, "--abort");
        tu_run_free(&r);
        char *after = tu_catalog_snapshot(db);
        cr_assert_str_eq(after, before, "--abort from %s left the catalog changed", phases[i].name);
        free(after);
        cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_state"), 0);
        cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_log"), 0);
        expect_old_vectors(db);
        expect_slow_index(db);
    }
    free(excl);
    free(before);
    free(uri);
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

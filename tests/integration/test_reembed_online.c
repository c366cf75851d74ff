/* test_reembed_online.c — `pgmemctl reembed` in shadow mode while the application keeps working,
 * on PostgreSQL 15 (the sandbox) and 17 (PGMEMCTL_PG17_BINDIR, a cluster of its own):
 *   - a reader searching every 200 ms for the whole run: no search fails, every one uses the
 *     HNSW index (EXPLAIN ANALYZE), each takes under 500 ms, and after the swap it finds the new
 *     vectors;
 *   - a writer inserting, editing and deleting memories (and scheduling rows) throughout, with
 *     vectors of the active model as an application writes them: the end state is checked row
 *     by row, and every memory holds the new model's vector of its content;
 *   - the swap's lock time in the JSON (under 1 s);
 *   - kill -9 during the replay of logged changes, then a re-run;
 *   - DDL on memories during the run (a migration): exit 1 and nothing lost; the re-run makes
 *     the copy anew with the change; a view on memories refused before anything is written;
 *   - grants, row security, policies, comments and triggers carried over to the new table;
 *   - the distances the recall check computes on the client equal pgvector's operators'. */
#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/reembed_fixture.h"
#include "common/testutil.h"
#include "embed.h"
#include "recall_exact.h"

TestSuite(reembed_online, .fini = tu_leak_check, .timeout = 300);

#define PGM(uri, ...) tu_run((const char *const[]){"pgmemctl", "-d", (uri), __VA_ARGS__, NULL})

static long long q_int(const char *db, const char *sql) { return tu_query_int(db, sql); }

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

/* ---- the reader ----------------------------------------------------------------------------- */

typedef struct {
    const char *db;
    char probe[40];              /* a memory the writer never touches: its vector is the query */
    atomic_bool stop;
    int queries, errors, no_index, slow, dims_old, dims_new;
    double max_ms;
    char first_error[512], first_plan[2048];
} reader;

static void *read_loop(void *arg)
{
    reader *rd = arg;
    PGconn *c = PQconnectdb(rd->db);
    /* A store this small is read faster by a sequential scan, which the planner would choose;
     * with sequential scans off it still takes one only when no usable index exists, which is
     * what this reader checks. */
    PQclear(PQexec(c, "SET enable_seqscan = off"));
    const char *params[] = {rd->probe};
    while (!atomic_load(&rd->stop)) {
        double t0 = now_ms();
        PGresult *r = PQexecParams(c,
                                   "EXPLAIN (ANALYZE, COSTS OFF, FORMAT JSON) SELECT id FROM memories ORDER BY embedding <=>"
                                   " (SELECT embedding FROM memories WHERE id = $1::uuid) LIMIT 10",
                                   1, NULL, params, NULL, NULL, 0);
        double ms = now_ms() - t0;
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            if (!rd->errors++)
                snprintf(rd->first_error, sizeof rd->first_error, "%s", PQerrorMessage(c));
        } else {
            rd->queries++;
            const char *plan = PQgetvalue(r, 0, 0);
            if (!strstr(plan, "\"Index Name\": \"idx_memories_embedding_hnsw\"") && !rd->no_index++)
                snprintf(rd->first_plan, sizeof rd->first_plan, "%s", plan);
            if (ms > 500)
                rd->slow++;
            if (ms > rd->max_ms)
                rd->max_ms = ms;
        }
        PQclear(r);
        r = PQexecParams(c, "SELECT vector_dims(embedding) FROM memories WHERE id = $1::uuid", 1, NULL, params, NULL,
                         NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            int d = atoi(PQgetvalue(r, 0, 0));
            rd->dims_old += d == 768;
            rd->dims_new += d == 384;
        }
        PQclear(r);
        usleep(200 * 1000);
    }
    PQfinish(c);
    return NULL;
}

/* ---- the writer ----------------------------------------------------------------------------- */

#define MAX_OPS 4000

/* What the writer did, acknowledged by the server (each statement its own transaction). */
typedef struct {
    const char *db;
    atomic_bool stop;
    int inserted, edited, deleted, errors;
    char first_error[512];
    char **edit_ids;             /* the memories it may edit (ids in order), and delete */
    int n_edit, n_delete;
    char **delete_ids;
    char *last_content[MAX_OPS]; /* per edit_ids[i]: its content after the writer's last edit (or NULL) */
} writer;

static bool exec_ok(writer *w, PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK && atoi(PQcmdTuples(r)) > 0;
    if (!ok && !w->errors++)
        snprintf(w->first_error, sizeof w->first_error, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* A new memory's or an edit's vector, as an application embeds: with the active model, read in
 * the same statement (so a write that waited for the swap's lock sees the new registry). $3 and
 * $4: builtin:hash-768 and builtin:hash-384 of the content. */
#define ACTIVE_VECTOR "CASE (SELECT dimension FROM embedding_model WHERE active) WHEN 768 THEN $3::vector ELSE $4::vector END"

static char *vector_text(const char *content, int dim)
{
    float v[768];
    cr_assert(embed_hash_text(content, strlen(content), dim, v));
    size_t cap = (size_t) dim * 16 + 4, len = 0;
    char *s = malloc(cap);
    s[len++] = '[';
    for (int i = 0; i < dim; i++)
        len += (size_t) snprintf(s + len, cap - len, "%s%.9g", i ? "," : "", (double) v[i]);
    snprintf(s + len, cap - len, "]");
    return s;
}

static void *write_loop(void *arg)
{
    writer *w = arg;
    PGconn *c = PQconnectdb(w->db);
    for (int k = 0; !atomic_load(&w->stop) && k < MAX_OPS; k++) {
        char id[40], content[128];
        int op = k % 3;
        if (op == 0)
            snprintf(content, sizeof content, "written while the model changed, number %d", w->inserted);
        else
            snprintf(content, sizeof content, "edited during the re-embed, edit %d", k);
        char *v768 = vector_text(content, 768), *v384 = vector_text(content, 384);
        switch (op) {
        case 0: /* a new memory, with its scheduling row */
            snprintf(id, sizeof id, "aaaaaaaa-0000-4000-8000-%012d", w->inserted);
            if (exec_ok(w, c, "INSERT INTO memories (id, content, embedding) VALUES ($1::uuid, $2, " ACTIVE_VECTOR ")", 4,
                        (const char *[]){id, content, v768, v384}) &&
                exec_ok(w, c, "INSERT INTO scheduling (memory_id) VALUES ($1::uuid)", 1, (const char *[]){id}))
                w->inserted++;
            break;
        case 1: { /* an edit of an existing memory */
            int i = (k / 3) % w->n_edit;
            if (exec_ok(w, c, "UPDATE memories SET content = $2, embedding = " ACTIVE_VECTOR " WHERE id = $1::uuid", 4,
                        (const char *[]){w->edit_ids[i], content, v768, v384})) {
                free(w->last_content[i]);
                w->last_content[i] = strdup(content);
                w->edited++;
            }
            break;
        }
        default: /* a deletion */
            if (w->deleted < w->n_delete &&
                exec_ok(w, c, "DELETE FROM memories WHERE id = $1::uuid", 1, (const char *[]){w->delete_ids[w->deleted]}))
                w->deleted++;
            break;
        }
        free(v768);
        free(v384);
        usleep(5 * 1000);
    }
    PQfinish(c);
    return NULL;
}

/* n ids of db's memories from offset, in id order (newly allocated strings). */
static char **ids_at(const char *db, int offset, int n)
{
    char *sql = tu_printf("SELECT string_agg(id::text, ',' ORDER BY id) FROM (SELECT id FROM memories ORDER BY id"
                          " OFFSET %d LIMIT %d) t",
                          offset, n);
    char *all = tu_query_value(db, sql);
    free(sql);
    char **ids = calloc((size_t) n, sizeof *ids);
    char *save = NULL, *tok = strtok_r(all, ",", &save);
    for (int i = 0; i < n && tok; i++, tok = strtok_r(NULL, ",", &save))
        ids[i] = strdup(tok);
    free(all);
    return ids;
}

static void free_ids(char **ids, int n)
{
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* Checks the end state row by row against what the writer did. */
static void expect_writes_kept(const char *db, int n, const writer *w)
{
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories"), n + w->inserted - w->deleted);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE id::text LIKE 'aaaaaaaa-0000-4000-8000-%'"
                           " AND content LIKE 'written while the model changed, number %'"),
                 w->inserted, "an inserted memory is missing");
    cr_assert_eq(q_int(db, "SELECT count(*) FROM scheduling s JOIN memories m ON m.id = s.memory_id"
                           " WHERE m.id::text LIKE 'aaaaaaaa-0000-4000-8000-%'"),
                 w->inserted, "a scheduling row of an inserted memory is missing");
    for (int i = 0; i < w->deleted; i++) {
        char *sql = tu_printf("SELECT count(*) FROM memories WHERE id = '%s'", w->delete_ids[i]);
        cr_assert_eq(q_int(db, sql), 0, "deleted memory %s is back", w->delete_ids[i]);
        free(sql);
    }
    for (int i = 0; i < w->n_edit; i++) {
        if (!w->last_content[i])
            continue;
        char *sql = tu_printf("SELECT content FROM memories WHERE id = '%s'", w->edit_ids[i]);
        char *content = tu_query_value(db, sql);
        cr_assert_str_eq(content, w->last_content[i], "memory %s lost its last edit", w->edit_ids[i]);
        free(content);
        free(sql);
    }
    /* every memory, old or new, holds the new model's vector of its present content */
    int total = (int) q_int(db, "SELECT count(*) FROM memories");
    cr_assert_eq(rf_check_vectors_n(db, 384, "true", total), total);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"), 0);
}

/* The whole scenario on a server (NULL: the sandbox). */
static void online_run(const char *server)
{
    const int n = 6000;
    char *db = rf_store_768_at(server, n);
    tu_exec(db, "INSERT INTO scheduling (memory_id) SELECT id FROM memories;"
                "INSERT INTO edges (source_id, target_id, edge_type) SELECT a.id, b.id, 'related' FROM"
                " (SELECT id, row_number() OVER (ORDER BY id) r FROM memories) a JOIN"
                " (SELECT id, row_number() OVER (ORDER BY id DESC) r FROM memories) b USING (r) WHERE a.id <> b.id");
    long long edges = q_int(db, "SELECT count(*) FROM edges");
    reader rd = {.db = db};
    char *probe = tu_query_value(db, "SELECT id FROM memories ORDER BY id DESC LIMIT 1");
    snprintf(rd.probe, sizeof rd.probe, "%s", probe);
    free(probe);
    writer w = {.db = db, .n_edit = 300, .n_delete = 300};
    w.edit_ids = ids_at(db, 0, w.n_edit);
    w.delete_ids = ids_at(db, 1000, w.n_delete);
    pthread_t rt, wt;
    cr_assert_eq(pthread_create(&rt, NULL, read_loop, &rd), 0);
    cr_assert_eq(pthread_create(&wt, NULL, write_loop, &w), 0);
    usleep(300 * 1000);
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes", "--batch-size", "40");
    usleep(600 * 1000); /* a few searches and writes after the swap */
    atomic_store(&w.stop, true);
    pthread_join(wt, NULL);
    atomic_store(&rd.stop, true);
    pthread_join(rt, NULL);
    tu_expect_status(&r, 0, "shadow re-embed with a reader and a writer");
    cJSON *j = tu_json(r.out);
    double lock = tu_json_num(tu_json_obj(j, "seconds"), "lock_held");
    cr_assert(lock > 0 && lock < 1.0, "the swap held its lock %g s", lock);
    cr_assert_gt(tu_json_num(j, "rows_replayed"), 0, "no change of the writer was replayed:\n%s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);
    /* the reader */
    cr_assert_eq(rd.errors, 0, "%d searches failed, first: %s", rd.errors, rd.first_error);
    cr_assert_eq(rd.no_index, 0, "%d searches did not use the HNSW index, first plan: %s", rd.no_index, rd.first_plan);
    cr_assert_eq(rd.slow, 0, "%d searches took over 500 ms (longest %.0f ms)", rd.slow, rd.max_ms);
    cr_assert_gt(rd.queries, 5, "only %d searches ran", rd.queries);
    cr_assert_gt(rd.dims_old, 0, "no search saw the old vectors");
    cr_assert_gt(rd.dims_new, 0, "no search saw the new vectors after the swap");
    /* the writer */
    cr_assert_eq(w.errors, 0, "%d writes failed, first: %s", w.errors, w.first_error);
    cr_assert_gt(w.inserted, 10, "the writer inserted only %d memories", w.inserted);
    cr_assert_gt(w.deleted, 10);
    expect_writes_kept(db, n, &w);
    /* edges between untouched memories are all there, the deleted ones' went by cascade */
    cr_assert_eq(q_int(db, "SELECT count(*) FROM edges e WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.id ="
                           " e.source_id)"),
                 0);
    cr_assert_leq(q_int(db, "SELECT count(*) FROM edges"), edges);
    cr_assert_gt(q_int(db, "SELECT count(*) FROM edges"), edges - 2 * w.deleted - 1);
    tu_run_result v = PGM(db, "verify");
    tu_expect_status(&v, 0, "verify after the re-embed");
    tu_run_free(&v);
    free_ids(w.edit_ids, w.n_edit);
    free_ids(w.delete_ids, w.n_delete);
    for (int i = 0; i < w.n_edit; i++)
        free(w.last_content[i]);
    if (server)
        tu_drop_db_at(server, db);
    else
        tu_drop_db(db);
    free(db);
}

Test(reembed_online, reader_and_writer_during_a_shadow_reembed_pg15) { online_run(NULL); }

/* A PostgreSQL 17 cluster of the test's own, started with scripts/pg-sandbox. */
Test(reembed_online, reader_and_writer_during_a_shadow_reembed_pg17)
{
    const char *bindir = getenv("PGMEMCTL_PG17_BINDIR");
    cr_assert(bindir && bindir[0], "PGMEMCTL_PG17_BINDIR is not set (scripts/run-tests sets it)");
    char *script = tu_printf("%s/scripts/pg-sandbox", tu_repo());
    char *name = tu_printf("reembed17-%d", (int) getpid());
    tu_run_result r = tu_run_prog(script, (const char *const[]){script, "start", "--bindir", bindir, name, NULL}, NULL);
    tu_expect_status(&r, 0, "starting a PostgreSQL 17 sandbox");
    char *url = strdup(r.out);
    url[strcspn(url, "\n")] = 0;
    tu_run_free(&r);
    char *version = tu_query_value(url, "SELECT current_setting('server_version_num')::int / 10000");
    cr_assert_str_eq(version, "17");
    free(version);
    online_run(url);
    r = tu_run_prog(script, (const char *const[]){script, "stop", name, NULL}, NULL);
    tu_expect_status(&r, 0, "stopping the sandbox");
    tu_run_free(&r);
    free(url);
    free(name);
    free(script);
}

/* ---- kill -9 in the replay ------------------------------------------------------------------ */

Test(reembed_online, kill9_in_the_replay_then_rerun)
{
    const int n = 1500;
    char *db = rf_store_768(n);
    char *uri = tu_printf("%s%coptions=-c%%20client_connection_check_interval%%3D20", db, strchr(db, '?') ? '&' : '?');
    /* first stopped in its index build, with the copy complete */
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", uri, "reembed", "--model", "builtin:hash-384", "--yes",
                                          NULL},
                    &(rf_kill_plan){.kill_when = "SELECT count(*) FROM pgmemctl_reembed_state WHERE phase = 'index'"});
    /* the application goes on meanwhile: the trigger logs it */
    tu_exec(db, "UPDATE memories SET content = content || ' (edited)' WHERE id IN (SELECT id FROM memories ORDER BY id"
                " LIMIT 200);"
                "DELETE FROM memories WHERE id IN (SELECT id FROM memories ORDER BY id DESC LIMIT 50);"
                "INSERT INTO memories (id, content) SELECT gen_random_uuid(), 'added while stopped ' || g"
                " FROM generate_series(1, 70) g");
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_log"), 320);
    /* then killed while it copies the logged rows again (a lock holds its read of the log) */
    char *waiting = rf_waiting_for_on("pgmemctl_reembed_log", "AccessShareLock");
    rf_kill_reembed(db,
                    (const char *const[]){"pgmemctl", "-q", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes",
                                          NULL},
                    &(rf_kill_plan){.lock_mode = "ACCESS EXCLUSIVE", .lock_table = "pgmemctl_reembed_log",
                                    .lock_when = "SELECT count(*) FROM pgmemctl_reembed_state WHERE phase = 'replay'",
                                    .kill_when = waiting});
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_log"), 320, "the log lost rows in the kill");
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 768"), n - 50);
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes");
    tu_expect_status(&r, 0, "the re-run");
    cJSON *j = tu_json(r.out);
    cr_assert_geq(tu_json_num(j, "rows_replayed"), 270);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories"), n + 20);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE content LIKE '% (edited)'"), 200);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE content LIKE 'added while stopped %'"), 70);
    cr_assert_eq(rf_check_vectors_n(db, 384, "true", n + 20), n + 20);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_log"), 0);
    free(waiting);
    free(uri);
    tu_drop_db(db);
    free(db);
}

/* ---- DDL during the run, and what a copy cannot carry over ---------------------------------- */

Test(reembed_online, ddl_on_memories_during_the_run)
{
    const int n = 1500;
    char *db = rf_store_768(n);
    /* a reader's lock holds the swap back; in the same transaction, a migration adds an index */
    PGconn *c = PQconnectdb(db);
    cr_assert_eq(PQstatus(c), CONNECTION_OK);
    PGresult *res = PQexec(c, "BEGIN; LOCK TABLE memories IN ACCESS SHARE MODE");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(res);
    const char *argv[] = {"pgmemctl", "-d", db, "reembed", "--model", "builtin:hash-384", "--yes", NULL};
    tu_proc *p = tu_spawn(argv, NULL);
    char *waiting = rf_waiting_for("AccessExclusiveLock");
    int i = 0;
    while (i++ < 60000 && q_int(db, waiting) == 0)
        usleep(1000);
    cr_assert_lt(i, 60000, "the swap never asked for its lock");
    res = PQexec(c, "CREATE INDEX idx_memories_added_by_a_migration ON memories (node_type, created_at); COMMIT");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    free(waiting);
    tu_run_result r = tu_wait(p);
    tu_expect_status(&r, 1, "DDL on memories during the run");
    cr_assert(tu_contains(r.err, "memories was altered while it was being re-embedded"), "%s", r.err);
    tu_run_free(&r);
    /* nothing lost: memories as it was, with the migration's index */
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 768"), n);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pg_indexes WHERE tablename = 'memories'"
                           " AND indexname = 'idx_memories_added_by_a_migration'"),
                 1);
    /* the re-run makes the copy anew, with the new index */
    r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes");
    tu_expect_status(&r, 0, "the re-run");
    cr_assert(tu_contains(r.err, "making the copy anew"), "%s", r.err);
    tu_run_free(&r);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), n);
    char *def = tu_query_value(db, "SELECT indexdef FROM pg_indexes WHERE tablename = 'memories'"
                                   " AND indexname = 'idx_memories_added_by_a_migration'");
    cr_assert(def && tu_contains(def, "(node_type, created_at)"), "%s", def ? def : "(no index)");
    free(def);
    tu_drop_db(db);
    free(db);
}

Test(reembed_online, a_view_on_memories_is_refused_before_anything_is_written)
{
    char *db = rf_store_768(100);
    tu_exec(db, "CREATE VIEW recent_memories AS SELECT id, content, embedding FROM memories");
    char *before = tu_catalog_snapshot(db);
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes");
    tu_expect_status(&r, 2, "a dependent view");
    cr_assert(tu_contains(r.err, "recent_memories"), "%s", r.err);
    cr_assert(tu_contains(r.err, "--mode in-place"), "%s", r.err);
    tu_run_free(&r);
    char *after = tu_catalog_snapshot(db);
    cr_assert_str_eq(after, before);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM pgmemctl_reembed_state"), 0);
    free(before);
    free(after);
    tu_drop_db(db);
    free(db);
}

Test(reembed_online, dry_run_states_the_extra_space)
{
    char *db = rf_store_768(300);
    long long size = q_int(db, "SELECT pg_total_relation_size('memories')");
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--dry-run");
    tu_expect_status(&r, 0, "dry run");
    cJSON *j = tu_json(r.out);
    cr_assert_eq((long long) tu_json_num(j, "extra_bytes_needed"), size);
    cJSON_Delete(j);
    tu_run_free(&r);
    /* growing the dimension scales the vector part up */
    r = PGM(db, "reembed", "--model", "builtin:hash-1536", "--dry-run");
    tu_expect_status(&r, 0, "dry run");
    j = tu_json(r.out);
    cr_assert_eq((long long) tu_json_num(j, "extra_bytes_needed"), size * 2);
    cJSON_Delete(j);
    tu_run_free(&r);
    tu_drop_db(db);
    free(db);
}

Test(reembed_online, grants_policies_comments_and_triggers_are_carried_over)
{
    char *db = rf_store_768(200);
    char *role = tu_printf("app_%d", (int) getpid());
    char *sql = tu_printf(
        "DO $$ BEGIN CREATE ROLE %s; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
        "GRANT SELECT, INSERT ON memories TO %s; GRANT UPDATE (content) ON memories TO %s;"
        "ALTER TABLE memories ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY only_facts ON memories FOR SELECT TO %s USING (node_type = 'fact');"
        "COMMENT ON TABLE memories IS 'the memories';"
        "CREATE FUNCTION count_inserts() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NEW; END $f$;"
        "CREATE TRIGGER memories_count_inserts BEFORE INSERT ON memories FOR EACH ROW EXECUTE FUNCTION count_inserts();"
        "ALTER TABLE memories DISABLE TRIGGER memories_count_inserts;"
        "ALTER TABLE memories SET (fillfactor = 90)",
        role, role, role, role);
    tu_exec(db, sql);
    free(sql);
    const char *describe =
        "SELECT concat_ws(' | ', (SELECT array_to_string(relacl, ',') FROM pg_class WHERE oid = 'memories'::regclass),"
        " (SELECT string_agg(attname || '=' || array_to_string(attacl, ','), ',') FROM pg_attribute"
        "  WHERE attrelid = 'memories'::regclass AND attacl IS NOT NULL),"
        " (SELECT relrowsecurity::text || array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'memories'::regclass),"
        " (SELECT string_agg(polname || pg_get_expr(polqual, polrelid), ',') FROM pg_policy"
        "  WHERE polrelid = 'memories'::regclass),"
        " obj_description('memories'::regclass, 'pg_class'),"
        " (SELECT string_agg(tgname || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger"
        "  WHERE tgrelid = 'memories'::regclass AND NOT tgisinternal))";
    char *before = tu_query_value(db, describe);
    tu_run_result r = PGM(db, "reembed", "--model", "builtin:hash-384", "--yes");
    tu_expect_status(&r, 0, "shadow re-embed");
    tu_run_free(&r);
    char *after = tu_query_value(db, describe);
    cr_assert_str_eq(after, before);
    cr_assert(tu_contains(after, "only_facts"), "%s", after);
    cr_assert_eq(q_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), 200);
    free(before);
    free(after);
    tu_drop_db(db);
    sql = tu_printf("DROP ROLE %s", role);
    tu_exec(tu_test_url(), sql);
    free(sql);
    free(role);
    free(db);
}

/* ---- the recall check's exact neighbours, found on the client -------------------------------- */

Test(reembed_online, client_distances_agree_with_the_servers)
{
    char *db = tu_migrated_db();
    PGconn *c = PQconnectdb(db);
    cr_assert_eq(PQstatus(c), CONNECTION_OK);
    srand(11);
    float a[384], b[384];
    const char *ops[] = {"<=>", "<->", "<#>", "<+>"};
    for (int t = 0; t < 40; t++) {
        for (int i = 0; i < 384; i++) {
            a[i] = (float) rand() / RAND_MAX - 0.5f;
            b[i] = t % 2 ? a[i] + ((float) rand() / RAND_MAX - 0.5f) * 0.01f : (float) rand() / RAND_MAX - 0.5f;
        }
        char *ta = malloc(384 * 18 + 4), *tb = malloc(384 * 18 + 4);
        size_t la = 0, lb = 0;
        ta[la++] = tb[lb++] = '[';
        for (int i = 0; i < 384; i++) {
            la += (size_t) sprintf(ta + la, "%s%.9g", i ? "," : "", (double) a[i]);
            lb += (size_t) sprintf(tb + lb, "%s%.9g", i ? "," : "", (double) b[i]);
        }
        strcpy(ta + la, "]");
        strcpy(tb + lb, "]");
        PGresult *r = PQexecParams(c,
                                   "SELECT ($1::vector <=> $2::vector)::float8, ($1::vector <-> $2::vector)::float8,"
                                   " ($1::vector <#> $2::vector)::float8, ($1::vector <+> $2::vector)::float8",
                                   2, NULL, (const char *[]){ta, tb}, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
        for (int o = 0; o < 4; o++) {
            double server = strtod(PQgetvalue(r, 0, o), NULL), client = recall_exact_distance(ops[o], a, b, 384);
            cr_expect(fabs(server - client) <= 1e-6 * (fabs(server) > 1 ? fabs(server) : 1),
                      "%s: the server says %.9g, the client %.9g", ops[o], server, client);
        }
        PQclear(r);
        free(ta);
        free(tb);
    }
    PQfinish(c);
    tu_drop_db(db);
    free(db);
}

/* test_upgrade_logical.c — `pgmemctl upgrade --method logical` from a PostgreSQL 15.18 sandbox
 * (wal_level = logical, a memory store with its HNSW index) to 17: an upgrade while a writer
 * inserts memories in another connection (every acknowledged write on the new side, sequences
 * carried over, nothing of the replication left on either side); each preflight refusal
 * changing nothing; pgmemctl killed with SIGKILL in each phase, then --abort (the old side
 * writable again, no slot or publication left, the new side emptied) and a rerun that ends
 * proven; a row deleted on the new side before the cutover found by the proof.
 *
 * The kills and the deletion happen while pgmemctl waits at a fault-injection point
 * ($PGMEMCTL_UPGRADE_PAUSE_AT / $PGMEMCTL_UPGRADE_PAUSE_FILE: it writes its pid there). */
#include "common/testutil.h"
#include "common/upgrade_fixture.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(upgrade_logical, .fini = tu_leak_check, .timeout = 900);

/* The two sides of one test. */
typedef struct {
    char *old_name, *new_name, *from, *to, *work, *tmp;
} sides;

static sides sides_new(long memories, bool logical, const char *new_bindir)
{
    sides s = {.old_name = uf_sb_name("lold"), .new_name = uf_sb_name("lnew")};
    s.from = uf_old_store(s.old_name, memories, logical);
    s.to = uf_sb_start(s.new_name, new_bindir ? new_bindir : uf_pg17(), NULL);
    s.tmp = tu_tempdir();
    s.work = tu_printf("%s/work", s.tmp);
    return s;
}

static void sides_free(sides *s)
{
    uf_sb_stop(s->old_name, false);
    uf_sb_stop(s->new_name, false);
    tu_rmtree(s->tmp);
    free(s->old_name);
    free(s->new_name);
    free(s->from);
    free(s->to);
    free(s->work);
    free(s->tmp);
}

static const char *const *logical_argv(const sides *s, const char *extra)
{
    static const char *argv[24];
    const char *a[] = {"pgmemctl", "upgrade", "--method", "logical", "--from", s->from, "--to", s->to,
                       "--tools-bindir", uf_pg17(), "--from-version", "15", "--to-version", "17", "--work-dir", s->work,
                       "--maintenance-work-mem", "64MB", extra, NULL};
    memcpy(argv, a, sizeof a);
    return argv;
}

/* What the old side holds of the replication, and whether a new session may write there. */
static void assert_old_side_clean(const sides *s)
{
    cr_assert_eq(tu_query_int(s->from, "SELECT count(*) FROM pg_replication_slots"), 0, "a slot was left");
    cr_assert_eq(tu_query_int(s->from, "SELECT count(*) FROM pg_publication"), 0, "a publication was left");
    cr_assert_eq(tu_query_int(s->from, "SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) g(v) "
                                       "WHERE g.v LIKE 'default_transaction_read_only%'"),
                 0, "the write block was left");
    /* a new session writes (rolled back: the old side keeps its rows) */
    tu_exec(s->from, "BEGIN; INSERT INTO embedding_model (name, dimension, active) VALUES ('probe', 3, false); ROLLBACK");
}

static bool old_side_blocked(const sides *s)
{
    char *v = tu_query_value(s->from, "SHOW default_transaction_read_only");
    bool on = !strcmp(v, "on");
    free(v);
    return on;
}

/* A second database on the old side, absent on the new one (restored with --create): notes with
 * vectors and an IVFFlat index (held back); returns its URI on the new side. */
static char *add_second_db(const sides *s)
{
    tu_exec(s->from, "CREATE DATABASE second_store");
    char *from2 = tu_printf("%.*s/second_store", (int) (strrchr(s->from, '/') - s->from), s->from);
    tu_exec(from2, "CREATE EXTENSION vector; CREATE TABLE notes (id serial PRIMARY KEY, v vector(3)); "
                   "INSERT INTO notes (v) SELECT ARRAY[i % 5, i % 7, i % 11]::real[]::vector FROM generate_series(1, 500) i; "
                   "CREATE INDEX notes_ivf ON notes USING ivfflat (v vector_l2_ops) WITH (lists = 4); "
                   "CREATE MATERIALIZED VIEW notes_per_first AS SELECT id % 7 AS first, count(*) FROM notes GROUP BY 1");
    free(from2);
    return tu_printf("%.*s/second_store", (int) (strrchr(s->to, '/') - s->to), s->to);
}

/* ---- a writer in another connection ------------------------------------------------------------ */

typedef struct {
    pid_t pid;
    char *ids;  /* file: one acknowledged memory id per line */
    char *stop; /* file: the writer stops when it exists */
    char *rejected; /* file: the count of writes refused as read-only */
} writer;

static void writer_loop(const char *uri, const char *ids, const char *stop, const char *rejected)
{
    FILE *f = fopen(ids, "w");
    if (!f)
        _exit(2);
    long rej = 0;
    PGconn *c = NULL;
    for (int i = 0; access(stop, F_OK) != 0 && i < 200000; i++) {
        if (!c || PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = PQconnectdb(uri);
        }
        char sql[2048];
        int len = snprintf(sql, sizeof sql,
                           "WITH m AS (INSERT INTO memories (id, content, embedding) VALUES (gen_random_uuid(), "
                           "'written by the writer %d', '[",
                           i);
        for (int d = 0; d < 64; d++)
            len += snprintf(sql + len, sizeof sql - (size_t) len, "%s%d", d ? "," : "", (i + d) % 17 - 8);
        snprintf(sql + len, sizeof sql - (size_t) len,
                 "]') RETURNING id) INSERT INTO writer_log (memory_id) SELECT id FROM m RETURNING memory_id");
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            fprintf(f, "%s\n", PQgetvalue(r, 0, 0)); /* acknowledged: committed (autocommit) */
            fflush(f);
        } else {
            const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (st && !strcmp(st, "25006"))
                rej++;
            usleep(20 * 1000);
        }
        PQclear(r);
        usleep(5 * 1000);
    }
    PQfinish(c);
    fclose(f);
    FILE *g = fopen(rejected, "w");
    if (g) {
        fprintf(g, "%ld\n", rej);
        fclose(g);
    }
    _exit(0);
}

static writer writer_start(const sides *s)
{
    tu_exec(s->from, "CREATE TABLE writer_log (id bigserial PRIMARY KEY, memory_id uuid NOT NULL)");
    writer w = {.ids = tu_printf("%s/ids", s->tmp), .stop = tu_printf("%s/stop", s->tmp),
                .rejected = tu_printf("%s/rejected", s->tmp)};
    fflush(stdout);
    fflush(stderr);
    w.pid = fork();
    cr_assert(w.pid >= 0);
    if (w.pid == 0)
        writer_loop(s->from, w.ids, w.stop, w.rejected);
    return w;
}

static long writer_stop(writer *w)
{
    FILE *f = fopen(w->stop, "w");
    cr_assert(f);
    fclose(f);
    int st = 0;
    cr_assert_eq(waitpid(w->pid, &st, 0), w->pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer failed (%d)", st);
    char *text = tu_read_file(w->rejected);
    long rej = atol(text);
    free(text);
    return rej;
}

/* ---- pauses ------------------------------------------------------------------------------------- */

/* Starts the upgrade paused at point; returns when it waits there, with its pid in *pid. */
static tu_proc *spawn_paused(const sides *s, const char *point, const char *pause, pid_t *pid)
{
    char *at = tu_printf("PGMEMCTL_UPGRADE_PAUSE_AT=%s", point), *file = tu_printf("PGMEMCTL_UPGRADE_PAUSE_FILE=%s", pause);
    tu_proc *p = tu_spawn(logical_argv(s, NULL), (const char *[]){at, file, NULL});
    free(at);
    free(file);
    *pid = 0;
    for (int i = 0; i < 4800 && *pid == 0; i++) {
        usleep(50 * 1000);
        if (access(pause, F_OK) != 0)
            continue;
        char *text = tu_read_file(pause);
        if (strchr(text, '\n'))
            *pid = (pid_t) atol(text);
        free(text);
    }
    cr_assert_gt(*pid, 0, "pgmemctl never paused at %s", point);
    return p;
}

static cJSON *expect_upgraded(const tu_run_result *r)
{
    cJSON *doc = tu_json(r->out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "upgraded", "%s", r->err);
    cr_assert_str_eq(tu_json_str(doc, "method"), "logical");
    const cJSON *proof = tu_json_obj(doc, "proof");
    cr_assert(tu_json_bool(proof, "passed"));
    cr_assert_geq(tu_json_num(proof, "rows"), 300);
    cr_assert_geq(tu_json_num(proof, "vector_columns"), 1);
    cr_assert_geq(tu_json_num(proof, "indexes"), 1);
    cr_assert_eq(tu_json_num(proof, "indexes"), tu_json_num(proof, "indexes_used"));
    return doc;
}

/* ---- under writes -------------------------------------------------------------------------------- */

Test(upgrade_logical, under_writes_every_acknowledged_write_arrives)
{
    sides s = sides_new(2000, true, NULL);
    char *to2 = add_second_db(&s);
    writer w = writer_start(&s);
    usleep(500 * 1000);
    tu_run_result r = tu_run(logical_argv(&s, NULL));
    usleep(300 * 1000); /* the writer is refused by the blocked old side for a while */
    long rejected = writer_stop(&w);
    tu_expect_status(&r, 0, "upgrade --method logical under writes");
    cJSON *doc = expect_upgraded(&r);
    for (const char *const *p = (const char *const[]){"preflight", "roles", "schema", "initial_copy", "index_build",
                                                       "catch_up", "write_block", "final_sync", "sequences",
                                                       "drop_subscription", "proof", NULL};
         *p; p++)
        cr_assert(uf_has_phase(doc, *p), "no phase %s", *p);
    double down = tu_json_num(doc, "downtime_seconds");
    cr_assert(down > 0 && down < tu_json_num(doc, "total_seconds"), "downtime %g", down);
    const cJSON *lg = tu_json_obj(doc, "logical");
    cr_assert_geq(tu_json_num(lg, "lag_at_cutover_bytes"), 0);
    cr_assert_geq(cJSON_GetArraySize(tu_json_array(lg, "held_back_indexes")), 4, "the HNSW and three GIN indexes");
    cr_assert_geq(tu_json_num(tu_json_obj(lg, "write_block"), "sessions_terminated"), 1, "the writer's session");
    cr_assert(tu_contains(r.err, "initial copy: postgres.public.memories: ready"), "no per-table progress");
    cJSON_Delete(doc);
    tu_run_free(&r);

    /* every acknowledged write is on the new side */
    char *ids = tu_read_file(w.ids);
    long n = 0;
    for (char *p = ids; (p = strchr(p, '\n')); p++) {
        *p = ',';
        n++;
    }
    cr_assert_gt(n, 20, "the writer wrote too little to prove anything");
    cr_assert_gt(rejected, 0, "the writer never met the write block");
    if (n)
        ids[strlen(ids) - 1] = '\0';
    char *sql = tu_printf("SELECT count(*) FROM memories WHERE id = ANY ('{%s}'::uuid[])", ids);
    cr_assert_eq(tu_query_int(s.to, sql), n, "acknowledged writes missing on the new side");
    cr_assert_eq(tu_query_int(s.to, "SELECT count(*) FROM writer_log"), n);
    cr_assert_eq(tu_query_int(s.to, "SELECT count(*) FROM memories"), tu_query_int(s.from, "SELECT count(*) FROM memories"));
    /* the sequence carried over: the next id is past every copied one */
    cr_assert_gt(tu_query_int(s.to, "SELECT nextval('writer_log_id_seq')"),
                 tu_query_int(s.to, "SELECT max(id) FROM writer_log"));
    /* the new side: writable, no subscription, the HNSW index used */
    cr_assert_eq(tu_query_int(s.to, "SELECT count(*) FROM pg_subscription"), 0);
    tu_exec(s.to, "INSERT INTO embedding_model (name, dimension, active) VALUES ('after-cutover', 3, false)");
    char *plan = tu_query_value(s.to, "SET enable_seqscan = off; EXPLAIN (FORMAT JSON) SELECT id FROM memories ORDER BY "
                                      "embedding <=> (SELECT embedding FROM memories WHERE embedding IS NOT NULL "
                                      "LIMIT 1) LIMIT 5");
    cr_assert(tu_contains(plan, "idx_memories_embedding_hnsw"), "%s", plan);
    /* the old side: blocked, no slot or publication */
    cr_assert(old_side_blocked(&s));
    cr_assert_eq(tu_query_int(s.from, "SELECT count(*) FROM pg_replication_slots"), 0);
    cr_assert_eq(tu_query_int(s.from, "SELECT count(*) FROM pg_publication"), 0);
    /* the second database: created, copied, its IVFFlat index built, its sequence carried over */
    cr_assert_eq(tu_query_int(to2, "SELECT count(*) FROM notes"), 500);
    cr_assert_eq(tu_query_int(to2, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                   "WHERE c.relname = 'notes_ivf' AND i.indisvalid"),
                 1);
    cr_assert_eq(tu_query_int(to2, "SELECT nextval('notes_id_seq')"), 501);
    cr_assert_eq(tu_query_int(to2, "SELECT sum(count) FROM notes_per_first"), 500, "the materialized view");
    free(to2);
    free(plan);
    free(sql);
    free(ids);
    free(w.ids);
    free(w.stop);
    free(w.rejected);
    sides_free(&s);
}

/* ---- preflight refusals -------------------------------------------------------------------------- */

/* Refused with check failing, its detail containing detail; and check2 (may be NULL) failing too. */
static void expect_refused(sides *s, const char *check, const char *detail, const char *check2, const char *detail2)
{
    char *old_cat = tu_catalog_snapshot(s->from), *new_cat = tu_catalog_snapshot(s->to);
    tu_run_result r = tu_run(logical_argv(s, NULL));
    tu_expect_status(&r, 2, "a refused logical upgrade");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
    const cJSON *c = uf_check_named(doc, check);
    cr_assert(c && !tu_json_bool(c, "passed"), "check %s did not fail: %s", check, r.out);
    cr_assert(tu_contains(tu_json_str(c, "detail"), detail), "%s", tu_json_str(c, "detail"));
    if (check2) {
        const cJSON *c2 = uf_check_named(doc, check2);
        cr_assert(c2 && !tu_json_bool(c2, "passed"), "check %s did not fail: %s", check2, r.out);
        cr_assert(tu_contains(tu_json_str(c2, "detail"), detail2), "%s", tu_json_str(c2, "detail"));
    }
    cr_assert(!uf_has_phase(doc, "schema"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    char *old_cat2 = tu_catalog_snapshot(s->from), *new_cat2 = tu_catalog_snapshot(s->to);
    cr_assert_str_eq(old_cat2, old_cat, "the old side changed");
    cr_assert_str_eq(new_cat2, new_cat, "the new side changed");
    cr_assert_eq(tu_query_int(s->from, "SELECT count(*) FROM pg_replication_slots"), 0);
    cr_assert_eq(tu_query_int(s->from, "SELECT count(*) FROM pg_publication"), 0);
    cr_assert_eq(tu_query_int(s->to, "SELECT count(*) FROM pg_subscription"), 0);
    cr_assert_eq(tu_query_int(s->to, "SELECT count(*) FROM pg_class WHERE relname = 'memories'"), 0);
    char *state = tu_printf("%s/logical-state.json", s->work);
    cr_assert_neq(access(state, F_OK), 0, "a refused run left a state file");
    free(state);
    free(old_cat);
    free(new_cat);
    free(old_cat2);
    free(new_cat2);
}

Test(upgrade_logical, refused_without_wal_level_logical)
{
    sides s = sides_new(300, false, NULL);
    expect_refused(&s, "wal_level", "wal_level = replica", NULL, NULL);
    sides_free(&s);
}

Test(upgrade_logical, refused_with_a_table_without_a_key)
{
    sides s = sides_new(300, true, NULL);
    tu_exec(s.from, "CREATE TABLE notes_without_key (body text); INSERT INTO notes_without_key VALUES ('x'); "
                    "CREATE UNLOGGED TABLE scratch_cache (id int PRIMARY KEY)");
    expect_refused(&s, "replica_identity", "postgres.public.notes_without_key", "unlogged_tables",
                   "postgres.public.scratch_cache");
    sides_free(&s);
}

Test(upgrade_logical, refused_without_pgvector_on_the_new_side)
{
    char *bare = uf_pg17_without_pgvector();
    sides s = sides_new(300, true, bare);
    expect_refused(&s, "pgvector_installed", "not installed", NULL, NULL);
    sides_free(&s);
    char *root = tu_printf("%s/..", bare);
    tu_rmtree(root);
    free(root);
    free(bare);
}

/* ---- kill -9 in each phase, --abort, rerun ------------------------------------------------------- */

static void kill_abort_rerun(const char *phase, bool second_db)
{
    sides s = sides_new(300, true, NULL);
    char *to2 = second_db ? add_second_db(&s) : NULL;
    char *old_cat = tu_catalog_snapshot(s.from);
    char *pause = tu_printf("%s/pause", s.tmp);
    pid_t pid;
    tu_proc *p = spawn_paused(&s, phase, pause, &pid);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    tu_run_result r = tu_wait(p);
    cr_assert_eq(r.status, 128 + SIGKILL, "pgmemctl was not killed: %d\n%s", r.status, r.err);
    tu_run_free(&r);
    unlink(pause);
    if (!strcmp(phase, "cutover"))
        cr_assert(old_side_blocked(&s), "killed in the cutover, the old side should still be blocked");
    if (strcmp(phase, "schema"))
        cr_assert_eq(tu_query_int(s.from, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE "
                                          "'pgmemctl\\_upgrade\\_%'"),
                     second_db ? 2 : 1, "the killed run's slots are not there");

    r = tu_run(logical_argv(&s, "--abort"));
    tu_expect_status(&r, 0, "--abort after a kill");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "aborted");
    cr_assert_gt(cJSON_GetArraySize(tu_json_array(tu_json_obj(doc, "logical"), "undone")), 0);
    cJSON_Delete(doc);
    tu_run_free(&r);
    assert_old_side_clean(&s);
    char *old_cat2 = tu_catalog_snapshot(s.from);
    cr_assert_str_eq(old_cat2, old_cat, "the old side's catalog changed");
    cr_assert_eq(tu_query_int(s.to, "SELECT count(*) FROM pg_subscription"), 0);
    cr_assert_eq(tu_query_int(s.to, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                    "WHERE n.nspname = 'public'"),
                 0, "the new side kept objects of the interrupted run");
    if (to2)
        cr_assert_eq(tu_query_int(s.to, "SELECT count(*) FROM pg_database WHERE datname = 'second_store'"), 0,
                     "the database created on the new side is still there");
    char *state = tu_printf("%s/logical-state.json", s.work);
    cr_assert_neq(access(state, F_OK), 0, "--abort left the state file");

    r = tu_run(logical_argv(&s, NULL));
    tu_expect_status(&r, 0, "the rerun after --abort");
    doc = expect_upgraded(&r);
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_eq(tu_query_int(s.to, "SELECT count(*) FROM memories"), 300);
    if (to2)
        cr_assert_eq(tu_query_int(to2, "SELECT count(*) FROM notes"), 500);
    free(to2);
    free(state);
    free(pause);
    free(old_cat);
    free(old_cat2);
    sides_free(&s);
}

Test(upgrade_logical, killed_in_the_schema_then_abort_and_rerun) { kill_abort_rerun("schema", false); }
Test(upgrade_logical, killed_in_the_initial_copy_then_abort_and_rerun) { kill_abort_rerun("initial_copy", true); }
Test(upgrade_logical, killed_in_the_index_build_then_abort_and_rerun) { kill_abort_rerun("index_build", false); }
Test(upgrade_logical, killed_in_the_catch_up_then_abort_and_rerun) { kill_abort_rerun("catch_up", false); }
Test(upgrade_logical, killed_in_the_cutover_then_abort_and_rerun) { kill_abort_rerun("cutover", true); }

/* A rerun without --abort undoes the interrupted run first. */
Test(upgrade_logical, a_rerun_after_a_kill_in_the_cutover_undoes_it_and_ends_proven)
{
    sides s = sides_new(300, true, NULL);
    char *pause = tu_printf("%s/pause", s.tmp);
    pid_t pid;
    tu_proc *p = spawn_paused(&s, "cutover", pause, &pid);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    tu_run_result r = tu_wait(p);
    tu_run_free(&r);
    unlink(pause);
    cr_assert(old_side_blocked(&s));
    r = tu_run(logical_argv(&s, NULL));
    tu_expect_status(&r, 0, "the rerun");
    cr_assert(tu_contains(r.err, "interrupted in phase cutover"), "%s", r.err);
    cJSON *doc = expect_upgraded(&r);
    cr_assert_gt(cJSON_GetArraySize(tu_json_array(tu_json_obj(doc, "logical"), "undone")), 0);
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_eq(tu_query_int(s.from, "SELECT count(*) FROM pg_replication_slots"), 0);
    free(pause);
    sides_free(&s);
}

/* ---- the proof -------------------------------------------------------------------------------------- */

Test(upgrade_logical, a_row_deleted_on_the_new_side_before_the_cutover_is_found_by_the_proof)
{
    sides s = sides_new(300, true, NULL);
    char *pause = tu_printf("%s/pause", s.tmp);
    pid_t pid;
    tu_proc *p = spawn_paused(&s, "catch_up", pause, &pid);
    uf_delete_first_memory(s.to);
    cr_assert_eq(unlink(pause), 0);
    tu_run_result r = tu_wait(p);
    tu_expect_status(&r, 1, "a proof that finds a deleted row");
    uf_expect_one_memory_missing(r.out);
    tu_run_free(&r);
    free(pause);
    sides_free(&s);
}

/* The old side reached as a role that must give its password over TCP (pg-sandbox's pgmemctl_pw):
 * the subscription connects with it, and it is printed nowhere. */
Test(upgrade_logical, a_password_in_from_reaches_the_subscription_and_is_never_printed)
{
    sides s = sides_new(300, true, NULL);
    char *port = strrchr(s.from, ':') + 1;
    char *from = tu_printf("postgresql://pgmemctl_pw:sandbox-secret-pw@127.0.0.1:%.*s/postgres",
                           (int) strcspn(port, "/"), port);
    free(s.from);
    s.from = from;
    tu_run_result r = tu_run(logical_argv(&s, NULL));
    tu_expect_status(&r, 0, "upgrade --method logical with a password in --from");
    cJSON *doc = expect_upgraded(&r);
    cJSON_Delete(doc);
    cr_assert(!tu_contains(r.out, "sandbox-secret-pw") && !tu_contains(r.err, "sandbox-secret-pw"),
              "the password was printed");
    char *state = tu_printf("%s/logical-state.json", s.work);
    char *text = tu_read_file(state);
    cr_assert(!tu_contains(text, "sandbox-secret-pw"), "the password is in the state file");
    tu_run_free(&r);
    free(text);
    free(state);
    sides_free(&s);
}

/* ---- dry run, usage ------------------------------------------------------------------------------- */

Test(upgrade_logical, dry_run_prints_the_plan_and_changes_nothing)
{
    sides s = sides_new(300, true, NULL);
    char *old_cat = tu_catalog_snapshot(s.from), *new_cat = tu_catalog_snapshot(s.to);
    tu_run_result r = tu_run(logical_argv(&s, "--dry-run"));
    tu_expect_status(&r, 0, "--dry-run");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "dry_run");
    cr_assert_geq(cJSON_GetArraySize(tu_json_array(doc, "plan")), 5);
    for (const char *const *c = (const char *const[]){"wal_level", "replication_privilege", "replica_identity",
                                                       "replication_slots", "pgvector_installed", "target_empty",
                                                       "options_accepted", NULL};
         *c; c++) {
        const cJSON *chk = uf_check_named(doc, *c);
        cr_assert(chk && tu_json_bool(chk, "passed"), "check %s: %s", *c, r.out);
    }
    cr_assert(tu_contains(r.err, "plan:"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    /* the preset takes the method too, and checks its versions: this old side is 15, not 16 */
    const char *preset[] = {"pgmemctl", "upgrade-pg16-to-pg17", "--method", "logical", "--from", s.from, "--to", s.to,
                            "--tools-bindir", uf_pg17(), "--work-dir", s.work, "--dry-run", NULL};
    r = tu_run(preset);
    tu_expect_status(&r, 2, "the 16 -> 17 preset on a 15 server");
    doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "method"), "logical");
    cr_assert_str_eq(tu_json_str(doc, "preset"), "upgrade-pg16-to-pg17");
    const cJSON *v = uf_check_named(doc, "old_version");
    cr_assert(v && !tu_json_bool(v, "passed"), "%s", r.out);
    cJSON_Delete(doc);
    tu_run_free(&r);
    char *old_cat2 = tu_catalog_snapshot(s.from), *new_cat2 = tu_catalog_snapshot(s.to);
    cr_assert_str_eq(old_cat2, old_cat);
    cr_assert_str_eq(new_cat2, new_cat);
    free(old_cat);
    free(new_cat);
    free(old_cat2);
    free(new_cat2);
    sides_free(&s);
}

Test(upgrade_logical, usage_errors_exit_2)
{
    struct {
        const char *argv[16];
        const char *msg;
    } cases[] = {
        {{"pgmemctl", "upgrade", "--method", "logical", "--from", "host=x", NULL}, "needs --to"},
        {{"pgmemctl", "upgrade", "--method", "dump", "--from", "a", "--to", "b", "--abort", NULL},
         "belong to --method logical"},
        {{"pgmemctl", "upgrade", "--method", "logical", "--from", "a", "--to", "b", "--publisher-conninfo",
          "postgresql://db/x", NULL},
         "not a URI"},
        {{"pgmemctl", "upgrade", "--method", "logical", "--from", "a", "--to", "b", "--abort", "--dry-run", NULL},
         "one or the other"},
        {{"pgmemctl", "upgrade", "--method", "logical", "--from", "a", "--to", "b", "--mode", "link", NULL},
         "belong to --method pg_upgrade"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_run_result r = tu_run(cases[i].argv);
        tu_expect_status(&r, 2, cases[i].msg);
        cr_assert(tu_contains(r.err, cases[i].msg), "case %zu: stderr lacks \"%s\": %s", i, cases[i].msg, r.err);
        tu_run_free(&r);
    }
}

/* reembed_fixture.c — the memory store, vector checks, end-state checks and kill -9 helper
 * shared by the re-embed tests. */
#include "common/reembed_fixture.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/vestige_fixture.h"
#include "embed.h"

#define PGM(uri, ...) tu_run((const char *const[]){"pgmemctl", "-d", (uri), __VA_ARGS__, NULL})

/* A store of n memories embedded with builtin:hash-768 (by `reembed --mode in-place` from no
 * model at all, which is itself under test here). updated_at is set to a fixed past time. */
char *rf_store_768(int n) { return rf_store_768_at(NULL, n); }

char *rf_store_768_at(const char *server_uri, int n)
{
    char *db = server_uri ? tu_fresh_db_at(server_uri) : tu_fresh_db();
    tu_run_result r = PGM(db, "migrate", "up");
    tu_expect_status(&r, 0, "migrate up");
    tu_run_free(&r);
    char *sql = tu_printf("INSERT INTO memories (id, content, updated_at)"
                         " SELECT gen_random_uuid(), 'memory ' || g || ' about ' ||"
                         " (ARRAY['postgres','vectors','indexes','reviews','search','graphs','models'])[1 + g %% 7] ||"
                         " ' and ' || md5(g::text), '2020-01-01 00:00:00+00' FROM generate_series(1, %d) g",
                         n);
    tu_exec(db, sql);
    free(sql);
    r = PGM(db, "reembed", "--model", "builtin:hash-768", "--mode", "in-place", "--yes");
    tu_expect_status(&r, 0, "initial in-place embed");
    tu_run_free(&r);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 768"), n);
    tu_exec(db, "UPDATE memories SET updated_at = '2020-01-01 00:00:00+00'; ANALYZE memories");
    return db;
}

int rf_check_vectors(const char *db, int dim, const char *where) { return rf_check_vectors_n(db, dim, where, 50); }

int rf_check_vectors_n(const char *db, int dim, const char *where, int limit)
{
    PGconn *c = PQconnectdb(db);
    cr_assert_eq(PQstatus(c), CONNECTION_OK);
    char *sql = tu_printf("SELECT content, embedding::text FROM memories WHERE %s ORDER BY id LIMIT %d", where, limit);
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    float *want = malloc((size_t) dim * sizeof *want);
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        cr_assert_not(PQgetisnull(r, i, 1), "row %d has no vector", i);
        const char *content = PQgetvalue(r, i, 0);
        cr_assert(embed_hash_text(content, strlen(content), dim, want));
        const char *p = PQgetvalue(r, i, 1) + 1; /* past '[' */
        for (int k = 0; k < dim; k++) {
            char *end;
            double v = strtod(p, &end);
            cr_assert(end != p, "vector text ended after %d of %d values", k, dim);
            cr_assert(fabs(v - want[k]) < 1e-6, "row %d element %d: %g in the store, %g from builtin:hash-%d", i, k,
                      v, (double) want[k], dim);
            p = end + 1;
        }
    }
    free(want);
    PQclear(r);
    PQfinish(c);
    free(sql);
    return n;
}


char *rf_ids_digest(const char *db)
{
    return tu_query_value(db, "SELECT md5(string_agg(id::text, ',' ORDER BY id)) FROM memories");
}

void rf_expect_reembedded(const char *db, int n, int dim, const char *ids_before, bool run_verify)
{
    char *type = tu_query_value(db, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                    " WHERE attrelid = 'memories'::regclass AND attname = 'embedding'");
    char *want = tu_printf("vector(%d)", dim);
    cr_assert_str_eq(type, want);
    free(type);
    free(want);
    char *sql = tu_printf("SELECT count(*) FROM memories WHERE vector_dims(embedding) = %d", dim);
    cr_assert_eq(tu_query_int(db, sql), n, "not every memory has a %d-dimensional vector", dim);
    free(sql);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories"), n);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'memories'::regclass AND"
                                  " attnum > 0 AND NOT attisdropped AND attname IN ('embedding_next', 'embedding_old')"),
                 0, "a second vector column is left");
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pgmemctl_reembed_state"), 0);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pg_trigger WHERE tgname IN ('memories_reembed_invalidate',"
                                  " 'memories_reembed_log')"),
                 0, "a re-embed trigger is left");
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pg_class WHERE relname IN ('pgmemctl_memories_next',"
                                  " 'pgmemctl_memories_old') OR relname LIKE 'pgmemctl\\_next\\_%' OR relname LIKE 'pgmemctl\\_old\\_%'"),
                 0, "a copy of memories or one of its indexes is left");
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pgmemctl_reembed_log"), 0, "the change log is not empty");
    /* the foreign keys to memories are there, validated, and point at it */
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated"
                                  " AND confrelid = 'memories'::regclass AND conname IN ('scheduling_memory_id_fkey',"
                                  " 'edges_source_id_fkey', 'edges_target_id_fkey', 'review_events_memory_id_fkey')"),
                 4, "the foreign keys to memories are not all there and valid");
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'memories'::regclass"
                                  " AND tgname = 'memories_touch_updated_at'"),
                 1, "memories lost its updated_at trigger");
    char *name = tu_query_value(db, "SELECT string_agg(name || '/' || dimension, ' ') FROM embedding_model WHERE active");
    char *wname = tu_printf("builtin:hash-%d/%d", dim, dim);
    cr_assert_str_eq(name, wname, "the active models");
    free(name);
    free(wname);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM embedding_model WHERE active AND hash ~ '^[0-9a-f]{64}$'"), 1);
    char *ids = rf_ids_digest(db);
    cr_assert_str_eq(ids, ids_before, "memory ids changed");
    free(ids);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE updated_at <> '2020-01-01 00:00:00+00'"), 0,
                 "re-embedding touched updated_at");
    cr_assert_eq(rf_check_vectors_n(db, dim, "true", n), n);
    /* the index: HNSW on embedding, valid and ready; nothing invalid or left over */
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                                  " JOIN pg_am am ON am.oid = c.relam JOIN pg_attribute a ON a.attrelid = i.indrelid"
                                  " AND a.attnum = i.indkey[0] WHERE c.relname = 'idx_memories_embedding_hnsw'"
                                  " AND am.amname = 'hnsw' AND a.attname = 'embedding' AND i.indisvalid AND i.indisready"),
                 1, "idx_memories_embedding_hnsw is not a valid HNSW index on embedding");
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pg_index WHERE indrelid = 'memories'::regclass"
                                  " AND NOT (indisvalid AND indisready)"),
                 0, "an invalid index is left on memories");
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM pg_class WHERE relname IN"
                                  " ('idx_memories_embedding_next_hnsw', 'idx_memories_embedding_old_hnsw')"),
                 0, "a re-embed index is left over");
    if (run_verify) {
        tu_run_result v = PGM(db, "verify");
        tu_expect_status(&v, 0, "verify after the re-embed");
        tu_run_free(&v);
    }
}

char *rf_waiting_for(const char *mode) { return rf_waiting_for_on("memories", mode); }

char *rf_waiting_for_on(const char *table, const char *mode)
{
    return tu_printf("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                     " WHERE a.application_name = 'pgmemctl reembed' AND a.datname = current_database()"
                     " AND NOT l.granted AND l.relation = to_regclass('%s') AND l.mode = '%s'",
                     table, mode);
}

/* A session that takes `mode` on memories in an open transaction; with wait, until it is
 * granted, else the LOCK is only sent. */
static PGconn *lock_memories(const char *db, const char *table, const char *mode, bool wait)
{
    PGconn *c = PQconnectdb(db);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "BEGIN");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    char *sql = tu_printf("LOCK TABLE %s IN %s MODE", table ? table : "memories", mode);
    if (wait) {
        r = PQexec(c, sql);
        cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
        PQclear(r);
    } else {
        cr_assert(PQsendQuery(c, sql), "%s", PQerrorMessage(c));
    }
    free(sql);
    return c;
}

/* Ends the lock session: a LOCK still waiting is cancelled, the transaction rolled back. */
static void unlock_memories(PGconn *c)
{
    cr_assert(PQconsumeInput(c), "%s", PQerrorMessage(c));
    if (PQisBusy(c)) {
        char err[256] = "";
        PGcancel *cancel = PQgetCancel(c);
        cr_assert(cancel && PQcancel(cancel, err, sizeof err), "cancelling the LOCK: %s", err);
        PQfreeCancel(cancel);
    }
    PGresult *r;
    while ((r = PQgetResult(c)))
        PQclear(r);
    r = PQexec(c, "ROLLBACK");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

void rf_kill_reembed(const char *db, const char *const *argv, const rf_kill_plan *plan)
{
    char *dir = tu_tempdir();
    char *out = tu_printf("%s/out.json", dir), *err = tu_printf("%s/err.txt", dir);
    PGconn *holder = plan->lock_mode && !plan->lock_when ? lock_memories(db, plan->lock_table, plan->lock_mode, true) : NULL;
    pid_t pid = vf_spawn(argv, out, err);
    bool killed = false;
    for (int i = 0; i < 120000 && !killed; i++) {
        if (plan->lock_mode && !holder && tu_query_int(db, plan->lock_when) > 0)
            holder = lock_memories(db, plan->lock_table, plan->lock_mode, false);
        if (tu_query_int(db, plan->kill_when) > 0) {
            cr_assert_eq(kill(pid, SIGKILL), 0);
            killed = true;
            break;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char *text = tu_read_file(err);
            cr_assert_fail("reembed ended (status %d) before it could be killed:\n%s", st, text);
        }
        usleep(1000);
    }
    cr_assert(killed, "the moment to kill never came");
    int status = vf_wait(pid, 30);
    cr_assert_eq(status, 128 + SIGKILL, "reembed was not killed (status %d)", status);
    if (holder)
        unlock_memories(holder);
    /* the killed client's session ends: its transaction rolled back, its locks released */
    long long left = 1;
    for (int i = 0; i < 1000 && left > 0; i++) {
        left = tu_query_int(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgmemctl reembed'"
                                " AND datname = current_database()");
        if (left > 0)
            usleep(10000);
    }
    cr_assert_eq(left, 0, "the killed re-embed's session is still there after 10 s");
    free(out);
    free(err);
    tu_rmtree(dir);
    free(dir);
}

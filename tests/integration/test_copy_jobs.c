/* test_copy_jobs.c — `pgmemctl copy --jobs N` on a real PostgreSQL with pgvector: parallel
 * streams give the same rows and bytes as one stream, a kill -9 during a parallel copy resumes
 * exactly under another --jobs, a bad row in every range is rejected with its reason, and
 * impossible --jobs values are refused before anything is written. */
#include "common/testutil.h"
#include "common/vestige_fixture.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

TestSuite(copy_jobs, .fini = tu_leak_check, .timeout = 120);

static char *migrated_db(void)
{
    char *uri = tu_fresh_db();
    tu_run_result r = tu_run((const char *[]){"pgmemctl", "-d", uri, "migrate", "up", NULL});
    cr_assert_eq(r.status, 0, "migrate up failed (%d):\n%s", r.status, r.err);
    tu_run_free(&r);
    return uri;
}

/* pgmemctl -d uri copy --from from --jobs jobs --batch-size batch; must exit with want. */
static cJSON *copy_jobs(const char *uri, const char *from, const char *jobs, const char *batch, int want, char **err)
{
    tu_run_result r = tu_run(
        (const char *[]){"pgmemctl", "-d", uri, "copy", "--from", from, "--jobs", jobs, "--batch-size", batch, NULL});
    cr_assert_eq(r.status, want, "copy --jobs %s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s", jobs, r.status, want,
                 r.out, r.err);
    cJSON *doc = r.out[0] ? tu_json(r.out) : NULL;
    if (err)
        *err = strdup(r.err);
    tu_run_free(&r);
    return doc;
}

static const cJSON *item(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    cr_assert(v, "no \"%s\" in the JSON", name);
    return v;
}

static long long num(const cJSON *o, const char *name) { return (long long) tu_json_num(o, name); }

/* Every column of every row of the three tables, as one digest per table: equal digests mean
 * the same rows holding the same bytes (vectors, text, tsvector, FSRS values, timestamps). */
static char *table_digests(const char *uri)
{
    return tu_query_value(uri,
                          "SELECT concat_ws(' ',"
                          " (SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.id)) FROM memories t),"
                          " (SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.memory_id)) FROM scheduling t),"
                          " (SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.source_id, t.target_id, t.edge_type))"
                          "  FROM edges t),"
                          " (SELECT count(*) FROM memories), (SELECT count(*) FROM scheduling),"
                          " (SELECT count(*) FROM edges),"
                          " (SELECT sum(pg_column_size(t.*)) FROM memories t))");
}

/* ---- the same result with 1, 2 and 4 streams ---------------------------------------------- */

Test(copy_jobs, parallel_streams_match_one_stream)
{
    char *sample = vf_sample(3000, 32);
    long long links = vf_sqlite_int(sample, "SELECT (SELECT count(*) FROM memory_connections)"
                                            " + (SELECT count(*) FROM knowledge_edges)");
    char *ref = NULL;
    const char *jobs[] = {"1", "2", "4"};
    for (int k = 0; k < 3; k++) {
        char *uri = migrated_db();
        cJSON *doc = copy_jobs(uri, sample, jobs[k], "250", 0, NULL);
        cr_assert_eq(num(doc, "jobs"), atoi(jobs[k]));
        cr_assert_str_eq(tu_json_str(doc, "write_path"), "direct");
        const cJSON *mem = item(item(doc, "tables"), "memories");
        cr_assert_eq(num(mem, "copied"), 3000, "--jobs %s copied %lld memories", jobs[k], num(mem, "copied"));
        cr_assert_eq(num(mem, "ranges"), atoi(jobs[k]), "--jobs %s: %lld ranges", jobs[k], num(mem, "ranges"));
        const cJSON *par = item(doc, "parity");
        cr_assert(tu_json_bool(par, "ok"), "--jobs %s: parity failed", jobs[k]);
        cr_assert_eq(num(item(item(par, "counts"), "edges"), "target"), links);
        /* one checkpoint row per range, each finished bounded range checkpointed at its end */
        char *sql = tu_printf("SELECT count(*) FROM pgmemctl_copy_progress WHERE source_table = 'knowledge_nodes'");
        cr_assert_eq(tu_query_int(uri, sql), atoi(jobs[k]));
        free(sql);
        cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_progress WHERE range_end IS NOT NULL"
                                       " AND last_rowid <> range_end"),
                     0);
        cr_assert_eq(tu_query_int(uri, "SELECT sum(rows_copied)::bigint FROM pgmemctl_copy_progress"
                                       " WHERE source_table = 'knowledge_nodes'"),
                     3000);
        /* the HNSW index was built once, after the load, and is valid */
        cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid ="
                                       " to_regclass('idx_memories_embedding_hnsw')"),
                     1);
        char *dig = table_digests(uri);
        if (!ref)
            ref = dig;
        else {
            cr_assert_str_eq(dig, ref, "--jobs %s gives other rows or bytes than --jobs 1", jobs[k]);
            free(dig);
        }
        cJSON_Delete(doc);
        tu_drop_db(uri);
        free(uri);
    }
    free(ref);
    free(sample);
}

/* ---- kill -9 during a parallel copy, then another --jobs -------------------------------- */

#define KJ_N 8000
#define KJ_BATCH "100"

Test(copy_jobs, kill9_parallel_then_rerun_other_jobs)
{
    char *sample = vf_sample(KJ_N, 32);
    char *dir = tu_tempdir();
    char *uri = migrated_db();
    char *dbname = tu_db_name(uri);
    long long links = vf_sqlite_int(sample, "SELECT (SELECT count(*) FROM memory_connections)"
                                            " + (SELECT count(*) FROM knowledge_edges)");
    char *out = tu_printf("%s/out.json", dir), *err = tu_printf("%s/err.txt", dir);
    pid_t pid = vf_spawn((const char *[]){"pgmemctl", "-d", uri, "copy", "--from", sample, "--jobs", "4",
                                          "--batch-size", KJ_BATCH, NULL},
                         out, err);
    /* kill once at least two streams committed a batch */
    bool progressed = false, exited = false;
    int status = -1;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long long streams = tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_progress"
                                              " WHERE source_table = 'knowledge_nodes' AND last_rowid > range_start");
        if (streams >= 2) {
            progressed = true;
            kill(pid, SIGKILL);
            break;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            exited = true;
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 90)
            break;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!exited)
        status = vf_wait(pid, 30);
    if (!progressed) {
        char *e = tu_read_file(err);
        cr_assert_fail("no two streams committed before the copy %s (status %d):\n%s", exited ? "exited" : "timed out",
                       status, e);
    }
    cr_assert_eq(status, 128 + SIGKILL, "the copy was not killed (status %d)", status);
    for (int i = 0; i < 1000; i++) { /* the killed backends go away (the advisory lock with them) */
        char *sql = tu_printf("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
                              " AND application_name = 'pgmemctl copy'",
                              dbname);
        long long left = tu_query_int(uri, sql);
        free(sql);
        if (left == 0)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }

    /* partial state: 4 ranges; what each committed is exactly what its checkpoint says */
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_progress WHERE source_table = 'knowledge_nodes'"),
                 4);
    long long mem = tu_query_int(uri, "SELECT count(*) FROM memories");
    long long ck = tu_query_int(uri, "SELECT sum(rows_copied)::bigint FROM pgmemctl_copy_progress"
                                     " WHERE source_table = 'knowledge_nodes'");
    long long sched = tu_query_int(uri, "SELECT count(*) FROM scheduling");
    long long sched_ck = tu_query_int(uri, "SELECT sum(rows_copied)::bigint FROM pgmemctl_copy_progress"
                                           " WHERE source_table = 'scheduling'");
    cr_log_info("killed after %lld of %d memories", mem, KJ_N);
    cr_assert(mem > 0 && mem < KJ_N, "after the kill memories holds %lld of %d rows", mem, KJ_N);
    cr_assert_eq(mem, ck, "memories holds %lld rows but the checkpoints say %lld", mem, ck);
    cr_assert_eq(sched, sched_ck, "scheduling %lld vs checkpoints %lld", sched, sched_ck);
    /* every range's committed rows are whole batches of its own (ranges are split by row count
     * and the sample's rowids are dense) */
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_progress WHERE source_table = 'knowledge_nodes'"
                                   " AND (last_rowid - range_start) % " KJ_BATCH " <> 0"
                                   " AND last_rowid IS DISTINCT FROM range_end"),
                 0);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM edges"), 0, "edges started before the memories committed");

    /* the re-run with another --jobs resumes every range and proves parity */
    char *e2 = NULL;
    cJSON *doc = copy_jobs(uri, sample, "3", KJ_BATCH, 0, &e2);
    const cJSON *m = item(item(doc, "tables"), "memories");
    cr_assert_eq(num(m, "copied"), KJ_N - mem, "the re-run copied %lld, expected %lld", num(m, "copied"), KJ_N - mem);
    cr_assert_eq(num(m, "read"), KJ_N - mem);
    cr_assert_eq(num(m, "copied_by_earlier_runs"), mem);
    cr_assert_str_eq(tu_json_str(doc, "write_path"), "direct");
    cr_assert(tu_json_bool(item(doc, "parity"), "ok"), "parity failed after the re-run:\n%s", e2);
    cr_assert_eq(num(item(item(item(doc, "parity"), "counts"), "memories"), "target"), KJ_N);
    cJSON_Delete(doc);
    free(e2);
    cr_assert_eq(tu_query_int(uri, "SELECT count(DISTINCT id) FROM memories"), KJ_N);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), KJ_N);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM scheduling"), KJ_N);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM edges"), links);
    cr_assert_eq(tu_query_int(uri, "SELECT sum(rows_copied)::bigint FROM pgmemctl_copy_progress"
                                   " WHERE source_table = 'knowledge_nodes'"),
                 KJ_N);
    /* a third run (one stream) finds nothing new */
    doc = copy_jobs(uri, sample, "1", KJ_BATCH, 0, NULL);
    cr_assert_eq(num(item(item(doc, "tables"), "memories"), "copied"), 0);
    cr_assert(tu_json_bool(item(doc, "parity"), "ok"));
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), KJ_N);

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(out);
    free(err);
    free(dbname);
    free(uri);
    free(sample);
    free(dir);
}

/* ---- a bad row in every range ------------------------------------------------------------- */

#define BR_N 400   /* good nodes */
#define BR_DIM 8

Test(copy_jobs, bad_row_in_each_range)
{
    char *dir = tu_tempdir();
    char *path = tu_printf("%s/bad-ranges.db", dir);
    vf_store *s = vf_create(path, VF_V4, BR_DIM);
    vf_exec(s, "BEGIN");
    int64_t bad[4];
    int nbad = 0;
    for (int i = 1; i <= BR_N; i++) {
        vf_add_good_node(s, i, true);
        if (i % 100 == 50) { /* one bad id in each quarter */
            char id[40];
            snprintf(id, sizeof id, "not-a-uuid-%d", i);
            bad[nbad++] = vf_insert_node(s, id, NULL, 0);
        }
    }
    char a[37], b[37];
    for (int i = 1; i < BR_N; i++) {
        vf_uuid(i, a);
        vf_uuid(i + 1, b);
        vf_add_connection(s, a, b, "semantic", 0.5);
    }
    vf_exec(s, "COMMIT");
    vf_close(s);

    char *uri = migrated_db();
    cJSON *doc = copy_jobs(uri, path, "4", "30", 3, NULL);
    const cJSON *mem = item(item(doc, "tables"), "memories");
    cr_assert_eq(num(mem, "copied"), BR_N);
    cr_assert_eq(num(mem, "rejected"), 4);
    cr_assert_eq(num(mem, "ranges"), 4);
    const cJSON *rej = item(doc, "rejections");
    cr_assert_eq(num(rej, "count"), 4);
    const cJSON *it;
    int seen = 0;
    cJSON_ArrayForEach(it, item(rej, "items"))
    {
        long long rowid = num(it, "rowid");
        bool known = false;
        for (int k = 0; k < 4; k++)
            known = known || rowid == bad[k];
        cr_assert(known, "rejected rowid %lld is not one of the bad rows", rowid);
        cr_assert_str_eq(tu_json_str(it, "field"), "id");
        cr_assert_str_eq(tu_json_str(it, "action"), "row_skipped");
        cr_assert(strlen(tu_json_str(it, "reason")) > 0);
        seen++;
    }
    cr_assert_eq(seen, 4);
    /* each range holds exactly one of them */
    for (int k = 0; k < 4; k++) {
        char *sql = tu_printf("SELECT count(*) FROM pgmemctl_copy_progress WHERE source_table = 'knowledge_nodes'"
                              " AND range_start < %lld AND (range_end IS NULL OR range_end >= %lld)"
                              " AND rows_rejected = 1",
                              (long long) bad[k], (long long) bad[k]);
        cr_assert_eq(tu_query_int(uri, sql), 1, "bad row %lld is not counted in exactly one range", (long long) bad[k]);
        free(sql);
    }
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_rejects WHERE reason <> ''"), 4);
    cr_assert(tu_json_bool(item(doc, "parity"), "ok"));
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), BR_N);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM edges"), BR_N - 1);
    cJSON_Delete(doc);
    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(path);
    free(dir);
}

/* ---- refused before anything is written --------------------------------------------------- */

/* Nothing of a copy is in the database: no rows, no checkpoint, no registry entry, no typmod. */
static void assert_untouched(const char *uri)
{
    cr_assert_eq(tu_query_int(uri, "SELECT (SELECT count(*) FROM memories) + (SELECT count(*) FROM pgmemctl_copy_progress)"
                                   " + (SELECT count(*) FROM pgmemctl_copy_rejects)"
                                   " + (SELECT count(*) FROM embedding_model)"),
                 0, "the refused copy wrote something");
    cr_assert_eq(tu_query_int(uri, "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memories'::regclass"
                                   " AND attname = 'embedding'"),
                 -1, "the refused copy stamped memories.embedding");
}

Test(copy_jobs, impossible_jobs_refused_before_writing)
{
    char *sample = vf_sample(200, 16);
    char *uri = migrated_db();
    char *err = NULL;
    const char *bad[] = {"0", "-1", "65", "x"};
    for (int k = 0; k < 4; k++) {
        cJSON *doc = copy_jobs(uri, sample, bad[k], "50", 2, &err);
        cr_assert(tu_contains(err, "--jobs"), "--jobs %s: the error does not name the option:\n%s", bad[k], err);
        cJSON_Delete(doc);
        free(err);
    }
    assert_untouched(uri);

    /* a role allowed 2 connections: --jobs 3 needs 2 more than the copy's own */
    char *dbname = tu_db_name(uri);
    tu_exec(uri, "DROP ROLE IF EXISTS pgmemctl_jobs_limited");
    tu_exec(uri, "CREATE ROLE pgmemctl_jobs_limited LOGIN CONNECTION LIMIT 2");
    char *grant = tu_printf("GRANT ALL ON DATABASE \"%s\" TO pgmemctl_jobs_limited;"
                            " GRANT ALL ON SCHEMA public TO pgmemctl_jobs_limited;"
                            " GRANT ALL ON ALL TABLES IN SCHEMA public TO pgmemctl_jobs_limited",
                            dbname);
    tu_exec(uri, grant);
    free(grant);
    char *host = tu_test_host(), *port = tu_test_port();
    char *limited = tu_printf("postgresql://pgmemctl_jobs_limited@%s:%s/%s", host, port, dbname);
    cJSON *doc = copy_jobs(limited, sample, "3", "50", 2, &err);
    cr_assert(tu_contains(err, "--jobs 3") && tu_contains(err, "rolconnlimit"),
              "the refusal does not say why:\n%s", err);
    cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
    cJSON_Delete(doc);
    free(err);
    assert_untouched(uri);
    tu_exec(uri, "REASSIGN OWNED BY pgmemctl_jobs_limited TO postgres; DROP OWNED BY pgmemctl_jobs_limited;"
                 " DROP ROLE pgmemctl_jobs_limited");
    tu_drop_db(uri);
    free(limited);
    free(host);
    free(port);
    free(dbname);
    free(uri);
    free(sample);
}

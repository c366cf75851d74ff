/* test_reembed_http.c — `pgmemctl reembed` with the OpenAI-compatible embedder against the
 * loopback test server (tests/fixtures/embed_server.c, which computes builtin vectors): a
 * 768 -> 384 re-embed whose vectors equal builtin:hash-384, the API key never printed, server
 * faults retried or failing cleanly with a resumable state, a wrong key stopping at once, and
 * kill -9 then a re-run that embeds no committed memory again (counted by the server). */
#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/embed_server_proc.h"
#include "common/reembed_fixture.h"
#include "common/testutil.h"
#include "common/vestige_fixture.h"

TestSuite(reembed_http, .fini = tu_leak_check, .timeout = 180);

#define KEY "sk-test-0123456789abcdef"
#define PROBE_TEXT "\"pgmemctl dimension probe\""

/* Runs reembed to openai:text-embedding-3-small at 384 dimensions against the server. */
static tu_run_result run_openai(const char *db, const tu_embed_server *srv, const char *key, const char *batch)
{
    char *base = tu_embed_server_url(srv, "/v1");
    char *env = tu_printf("OPENAI_API_KEY=%s", key);
    tu_run_result r = tu_run_env((const char *const[]){"pgmemctl", "-d", db, "reembed", "--model",
                                                       "openai:text-embedding-3-small", "--dimensions", "384",
                                                       "--api-base", base, "--batch-size", batch, "--concurrency",
                                                       "3", "--yes", NULL},
                                 (const char *const[]){env, NULL});
    free(base);
    free(env);
    return r;
}

/* Lines of the server's input log: *total, and how many distinct memory texts (the probe
 * excluded), and how many of those appear more than once. */
static void count_log(const char *path, int *total, int *distinct, int *dups, int *probes)
{
    char *text = tu_read_file(path);
    *total = *distinct = *dups = *probes = 0;
    int cap = 1024, n = 0;
    char **lines = malloc((size_t) cap * sizeof *lines);
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        (*total)++;
        if (!strcmp(l, PROBE_TEXT)) {
            (*probes)++;
            continue;
        }
        if (n == cap)
            lines = realloc(lines, (size_t) (cap *= 2) * sizeof *lines);
        lines[n++] = l;
    }
    for (int i = 0; i < n; i++) {
        int seen_before = 0, again = 0;
        for (int j = 0; j < n; j++) {
            if (j != i && !strcmp(lines[i], lines[j])) {
                if (j < i)
                    seen_before = 1;
                again = 1;
            }
        }
        if (!seen_before) {
            (*distinct)++;
            *dups += again;
        }
    }
    free(lines);
    free(text);
}

Test(reembed_http, openai_768_to_384_with_retried_faults)
{
    char *db = rf_store_768(300);
    char *dir = tu_tempdir();
    char *script = tu_write_file(dir, "faults", "429 retry-after-ms=300\n500\ndelay=50\n");
    char *log = tu_printf("%s/inputs.jsonl", dir);
    tu_embed_server *srv = tu_embed_server_start(
        (const char *[]){"--dim", "384", "--key", KEY, "--script", script, "--log-inputs", log, NULL});
    tu_run_result r = run_openai(db, srv, KEY, "40");
    tu_expect_status(&r, 0, "openai re-embed");
    cr_assert_not(tu_contains(r.out, KEY), "the API key is in the JSON");
    cr_assert_not(tu_contains(r.err, KEY), "the API key is on stderr");
    cJSON *j = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(cJSON_GetObjectItem(j, "new_model"), "name"), "openai:text-embedding-3-small");
    cr_assert_eq(tu_json_num(cJSON_GetObjectItem(j, "new_model"), "dimension"), 384);
    const cJSON *e = cJSON_GetObjectItem(j, "embedder");
    cr_assert_eq(tu_json_num(e, "retries"), 2, "the 429 and the 500 were retried");
    /* the check request before anything is written, 300 memories / 40 per request, and the two
     * retried requests */
    cr_assert_eq(tu_json_num(e, "requests"), 1 + 8 + 2);
    cr_assert_eq(tu_embed_server_stat(srv, "requests"), 1 + 8 + 2);
    cr_assert_geq(tu_embed_server_stat(srv, "max_in_flight"), 2, "requests were not sent concurrently");
    cJSON_Delete(j);
    tu_run_free(&r);
    /* the server computes builtin vectors: the stored ones must be builtin:hash-384's */
    cr_assert_eq(rf_check_vectors(db, 384, "true"), 50);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), 300);
    int total, distinct, dups, probes;
    count_log(log, &total, &distinct, &dups, &probes);
    cr_assert_eq(distinct, 300);
    cr_assert_eq(dups, 0, "%d memories were embedded twice", dups);
    tu_run_result v = tu_run((const char *const[]){"pgmemctl", "-d", db, "verify", NULL});
    tu_expect_status(&v, 0, "verify");
    tu_run_free(&v);
    tu_embed_server_stop(srv);
    free(script);
    free(log);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

Test(reembed_http, bad_response_fails_then_rerun_resumes_without_repeats)
{
    char *db = rf_store_768(200);
    char *dir = tu_tempdir();
    /* the check request and two batches succeed, then a malformed body */
    char *script = tu_write_file(dir, "faults", "delay=1\ndelay=1\ndelay=1\nmalformed\n");
    char *log = tu_printf("%s/inputs.jsonl", dir);
    tu_embed_server *srv = tu_embed_server_start(
        (const char *[]){"--dim", "384", "--key", KEY, "--script", script, "--log-inputs", log, NULL});
    char *base = tu_embed_server_url(srv, "/v1");
    char *env = tu_printf("OPENAI_API_KEY=%s", KEY);
    const char *const argv[] = {"pgmemctl", "-d", db, "reembed", "--model", "openai:m", "--dimensions", "384",
                                "--api-base", base, "--batch-size", "25", "--concurrency", "1", "--yes", NULL};
    tu_run_result r = tu_run_env(argv, (const char *const[]){env, NULL});
    tu_expect_status(&r, 1, "malformed response");
    cJSON *j = tu_json(r.out);
    cr_assert(tu_contains(tu_json_str(j, "message"), "the embedder failed"), "%s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);
    /* nothing visible changed for readers */
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 768"), 200);
    long long written = tu_query_int(db, "SELECT count(embedding) FROM pgmemctl_memories_next");
    cr_assert_gt(written, 0);
    r = tu_run_env(argv, (const char *const[]){env, NULL});
    tu_expect_status(&r, 0, "re-run");
    j = tu_json(r.out);
    cr_assert(tu_json_bool(j, "resumed"));
    cr_assert_eq(tu_json_num(j, "rows_updated"), 200 - written);
    cJSON_Delete(j);
    tu_run_free(&r);
    int total, distinct, dups, probes;
    count_log(log, &total, &distinct, &dups, &probes);
    cr_assert_eq(distinct, 200);
    /* the malformed answer's texts were not logged as embedded: nothing was embedded twice */
    cr_assert_eq(dups, 0, "%d memories embedded twice", dups);
    tu_embed_server_stop(srv);
    free(base);
    free(env);
    free(script);
    free(log);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

Test(reembed_http, wrong_key_stops_at_once)
{
    char *db = rf_store_768(50);
    char *before = tu_catalog_snapshot(db);
    tu_embed_server *srv = tu_embed_server_start((const char *[]){"--dim", "384", "--key", KEY, NULL});
    tu_run_result r = run_openai(db, srv, "sk-wrong-key-987654321", "25");
    tu_expect_status(&r, 1, "401");
    cr_assert_not(tu_contains(r.out, "sk-wrong-key-987654321"));
    cr_assert_not(tu_contains(r.err, "sk-wrong-key-987654321"));
    cr_assert(tu_contains(r.err, "401"), "%s", r.err);
    cJSON *j = tu_json(r.out);
    cr_assert_eq(tu_json_num(cJSON_GetObjectItem(j, "embedder"), "retries"), 0, "a 401 must not be retried");
    cJSON_Delete(j);
    tu_run_free(&r);
    /* the check request, before anything is written, and nothing after */
    cr_assert_eq(tu_embed_server_stat(srv, "requests"), 1, "a 401 must stop the run");
    char *after = tu_catalog_snapshot(db);
    cr_assert_str_eq(before, after, "a refused key changed the schema");
    tu_embed_server_stop(srv);
    free(before);
    free(after);
    tu_drop_db(db);
    free(db);
}

Test(reembed_http, kill9_then_rerun_embeds_no_committed_memory_again)
{
    char *db = rf_store_768(1200);
    char *dir = tu_tempdir();
    char *log = tu_printf("%s/inputs.jsonl", dir);
    tu_embed_server *srv =
        tu_embed_server_start((const char *[]){"--dim", "384", "--delay-ms", "40", "--log-inputs", log, NULL});
    char *base = tu_embed_server_url(srv, "/v1");
    const char *const argv[] = {"pgmemctl", "-q", "-d", db, "reembed", "--model", "openai:m", "--dimensions", "384",
                                "--api-base", base, "--batch-size", "20", "--concurrency", "2", "--yes", NULL};
    char *out = tu_printf("%s/out.json", dir), *err = tu_printf("%s/err.txt", dir);
    setenv("OPENAI_API_KEY", "sk-kill", 1);
    pid_t pid = vf_spawn(argv, out, err);
    bool killed = false;
    for (int i = 0; i < 30000 && !killed; i++) {
        if (tu_query_int(db, "SELECT CASE WHEN to_regclass('pgmemctl_reembed_state') IS NULL THEN 0 ELSE"
                             " (SELECT coalesce(sum(rows_done), 0) FROM pgmemctl_reembed_state) END") >= 100) {
            kill(pid, SIGKILL);
            killed = true;
        } else {
            usleep(2000);
        }
    }
    cr_assert(killed, "no progress to kill at");
    cr_assert_eq(vf_wait(pid, 30), 128 + SIGKILL);
    for (int i = 0; i < 500 && tu_query_int(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                                                " 'pgmemctl reembed' AND datname = current_database()") > 0;
         i++)
        usleep(10000);
    long long done = tu_query_int(db, "SELECT count(embedding) FROM pgmemctl_memories_next");
    cr_assert_lt(done, 1200, "finished before the kill");
    tu_run_result r = tu_run_env(argv, (const char *const[]){"OPENAI_API_KEY=sk-kill", NULL});
    unsetenv("OPENAI_API_KEY");
    tu_expect_status(&r, 0, "re-run");
    cJSON *j = tu_json(r.out);
    cr_assert_eq(tu_json_num(j, "rows_updated"), 1200 - done);
    cJSON_Delete(j);
    tu_run_free(&r);
    int total, distinct, dups, probes;
    count_log(log, &total, &distinct, &dups, &probes);
    cr_assert_eq(distinct, 1200);
    cr_assert_eq(probes, 2, "one check request per run");
    /* only what was in flight at the kill (the batch being written and the one being embedded:
     * 2 x 20 x 2 texts at most) can have been embedded twice; no committed memory was */
    cr_assert_leq(dups, 80, "%d memories embedded twice", dups);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), 1200);
    tu_embed_server_stop(srv);
    free(base);
    free(out);
    free(err);
    free(log);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

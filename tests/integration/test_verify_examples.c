/* test_verify_examples.c — the example specs of examples/verify/ run against the stores they
 * describe, built in the test: upgraded-pg17.yaml (the aria_data schema) and
 * code-review-bot.yaml (learning_memories and findings). On the sandbox (PostgreSQL 15,
 * pgvector 0.8.0) the upgrade spec must fail exactly on its two version checks and pass the rest;
 * the code-review bot's spec must pass. Then one thing per store is broken and the specific
 * failure asserted. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/testutil.h"

TestSuite(verify_examples, .fini = tu_leak_check, .timeout = 120);

/* A vector(16) value computed from the integer expression g (deterministic, never all zero). */
#define VEC16(fn, g) "(SELECT array_agg(" fn "((" g ") * i + i))::vector FROM generate_series(1, 16) i)"

/* The store upgraded-pg17.yaml describes: two tables in aria_data with HNSW cosine indexes, the
 * one on session_messages partial (messages are embedded later, a quarter are not yet). */
static char *aria_store(void)
{
    char *db = tu_fresh_db();
    tu_exec(db, "CREATE EXTENSION vector;"
                "CREATE SCHEMA aria_data;"
                "CREATE TABLE aria_data.semantic_memories ("
                "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                "  content text NOT NULL,"
                "  embedding vector(16) NOT NULL);"
                "CREATE TABLE aria_data.session_messages ("
                "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                "  session_id int NOT NULL,"
                "  content text NOT NULL,"
                "  embedding vector(16));"
                "INSERT INTO aria_data.semantic_memories (content, embedding)"
                " SELECT 'fact ' || g || ' the user told the assistant', " VEC16("sin", "g")
                " FROM generate_series(1, 300) g;"
                "INSERT INTO aria_data.session_messages (session_id, content, embedding)"
                " SELECT g / 20, 'message ' || g,"
                "        CASE WHEN g % 4 = 0 THEN NULL ELSE " VEC16("cos", "g") " END"
                " FROM generate_series(1, 400) g;"
                "CREATE INDEX idx_semantic_embedding_hnsw ON aria_data.semantic_memories"
                " USING hnsw (embedding vector_cosine_ops);"
                "CREATE INDEX idx_session_messages_embedding_hnsw ON aria_data.session_messages"
                " USING hnsw (embedding vector_cosine_ops) WHERE embedding IS NOT NULL;"
                "ANALYZE aria_data.semantic_memories;"
                "ANALYZE aria_data.session_messages;");
    return db;
}

/* The store code-review-bot.yaml describes: lessons with an HNSW index and a generated tsvector
 * with a GIN index, findings with a generated tsvector and a GIN index. */
static char *review_bot_store(void)
{
    char *db = tu_fresh_db();
    tu_exec(db, "CREATE EXTENSION vector;"
                "CREATE TABLE learning_memories ("
                "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                "  repo text NOT NULL,"
                "  lesson text NOT NULL,"
                "  embedding vector(16),"
                "  search_vector tsvector GENERATED ALWAYS AS (to_tsvector('english', lesson)) STORED);"
                "CREATE TABLE findings ("
                "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                "  repo text NOT NULL,"
                "  path text NOT NULL,"
                "  message text NOT NULL,"
                "  search_vector tsvector GENERATED ALWAYS AS (to_tsvector('english', path || ' ' || message)) STORED);"
                "INSERT INTO learning_memories (repo, lesson, embedding)"
                " SELECT 'repo' || (g % 5),"
                "        'lesson ' || g || ': prefer prepared statements over string concatenation in query builders',"
                "        " VEC16("sin", "g") " FROM generate_series(1, 300) g;"
                "INSERT INTO findings (repo, path, message)"
                " SELECT 'repo' || (g % 5), 'src/module' || (g % 17) || '.c',"
                "        'unchecked return value of malloc on the allocation path ' || g"
                " FROM generate_series(1, 300) g;"
                "CREATE INDEX idx_learning_memories_embedding_hnsw ON learning_memories"
                " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);"
                "CREATE INDEX idx_learning_memories_search_vector ON learning_memories USING gin (search_vector);"
                "CREATE INDEX idx_findings_search_vector ON findings USING gin (search_vector);"
                "ANALYZE learning_memories;"
                "ANALYZE findings;");
    return db;
}

/* Runs `pgmemctl -d db verify --spec spec [--format F]`, asserts the exit status and returns the
 * run (caller frees with tu_run_free). */
static tu_run_result run_verify(const char *db, const char *spec, const char *format, int want_status)
{
    tu_run_result r = format ? tu_run((const char *const[]){"pgmemctl", "-d", db, "verify", "--spec", spec,
                                                            "--format", format, NULL})
                             : tu_run((const char *const[]){"pgmemctl", "-d", db, "verify", "--spec", spec, NULL});
    cr_assert_eq(r.status, want_status, "%s: exit status %d, expected %d\n--- stdout ---\n%s\n--- stderr ---\n%s",
                 spec, r.status, want_status, r.out, r.err);
    return r;
}

/* The same with examples/verify/<example> of the repository. */
static tu_run_result run_example(const char *db, const char *example, const char *format, int want_status)
{
    char *spec = tu_printf("%s/examples/verify/%s", tu_repo(), example);
    tu_run_result r = run_verify(db, spec, format, want_status);
    free(spec);
    return r;
}

/* The JSON report of an example run. */
static cJSON *report_of(const char *db, const char *example, int want_status)
{
    tu_run_result r = run_example(db, example, NULL, want_status);
    cJSON *doc = tu_json(r.out);
    tu_run_free(&r);
    return doc;
}

/* The result of the check called name (it must be there). */
static const cJSON *result(const cJSON *doc, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, tu_json_array(doc, "checks"))
    {
        if (strcmp(tu_json_str(c, "name"), name) == 0)
            return c;
    }
    cr_assert_fail("the report has no check \"%s\"", name);
    return NULL;
}

/* A string member of a check's result; "" for null. */
static const char *text(const cJSON *doc, const char *name, const char *member)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(result(doc, name), member);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void assert_status(const cJSON *doc, const char *name, const char *want)
{
    const char *got = tu_json_str(result(doc, name), "status");
    cr_assert_str_eq(got, want, "%s: status %s, expected %s (%s)", name, got, want, text(doc, name, "message"));
}

static int count(const cJSON *doc, const char *key)
{
    return (int) tu_json_num(cJSON_GetObjectItemCaseSensitive(doc, "summary"), key);
}

/* Asserts that every check of doc passed except those named in failing[] (NULL-terminated),
 * which must have failed. */
static void assert_only_failing(const cJSON *doc, const char *const *failing)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, tu_json_array(doc, "checks"))
    {
        const char *name = tu_json_str(c, "name");
        bool should_fail = false;
        for (const char *const *f = failing; *f; f++)
            should_fail |= strcmp(*f, name) == 0;
        assert_status(doc, name, should_fail ? "fail" : "pass");
    }
}

/* The end of a passing test: the report and the database go. */
static void finish(cJSON *doc, char *db)
{
    cJSON_Delete(doc);
    tu_drop_db(db);
    free(db);
}

/* Runs sql on db to break it, then the example, which must fail (exit 3) on exactly the checks
 * named in failing[] (NULL-terminated) and pass the others. Returns the report. */
static cJSON *report_after(const char *db, const char *sql, const char *example, const char *const *failing)
{
    tu_exec(db, sql);
    cJSON *doc = report_of(db, example, 3);
    int n = 0;
    while (failing[n])
        n++;
    cr_assert_eq(count(doc, "fail"), n, "%s", cJSON_Print(doc));
    assert_only_failing(doc, failing);
    return doc;
}

#define PG17_SERVER "PostgreSQL 17 or newer"
#define PG17_VECTOR "pgvector 0.8.2 or newer, up to date"
#define PG17_SEMANTIC_INDEX "HNSW index on semantic_memories.embedding"
#define PG17_SEMANTIC_PLAN "semantic search uses idx_semantic_embedding_hnsw"
#define PG17_MESSAGES_INDEX "HNSW index on session_messages.embedding (partial)"
#define PG17_MESSAGES_PLAN "message search uses idx_session_messages_embedding_hnsw"

#define BOT_HNSW "HNSW index on learning_memories.embedding"
#define BOT_HNSW_PLAN "lesson search uses the HNSW index"
#define BOT_LESSON_TEXT_PLAN "lesson word search uses the GIN index"
#define BOT_FINDINGS_GIN "GIN index on findings.search_vector"
#define BOT_FINDINGS_PLAN "finding search uses the GIN index"

/* ---- upgraded-pg17.yaml ------------------------------------------------------------------- */

Test(verify_examples, upgraded_pg17_fails_only_on_the_two_versions)
{
    char *db = aria_store();
    /* The sandbox is older than the upgrade the spec describes. */
    long long num = tu_query_int(db, "SELECT current_setting('server_version_num')::int");
    cr_assert_lt(num, 170000, "this test expects the sandbox's PostgreSQL 15, found %lld", num);
    char *extversion = tu_query_value(db, "SELECT extversion FROM pg_extension WHERE extname = 'vector'");
    cr_assert_str_eq(extversion, "0.8.0", "this test expects the sandbox's pgvector 0.8.0");

    cJSON *doc = report_of(db, "upgraded-pg17.yaml", 3);
    cr_assert_str_eq(tu_json_str(doc, "status"), "fail");
    cr_assert_eq(count(doc, "total"), 7);
    cr_assert_eq(count(doc, "fail"), 2, "%s", cJSON_Print(doc));
    cr_assert_eq(count(doc, "pass"), 5);
    assert_only_failing(doc, (const char *const[]){PG17_SERVER, PG17_VECTOR, NULL});

    char *major_minor = tu_printf("%lld.%lld", num / 10000, num % 10000);
    cr_assert_str_eq(text(doc, PG17_SERVER, "observed"), major_minor);
    cr_assert_str_eq(text(doc, PG17_SERVER, "expected"), ">=17");
    cr_assert_str_eq(text(doc, PG17_VECTOR, "observed"), "0.8.0");
    cr_assert(tu_contains(text(doc, PG17_VECTOR, "message"), "vector 0.8.0 does not satisfy >=0.8.2"), "%s",
              text(doc, PG17_VECTOR, "message"));
    cr_assert(tu_contains(text(doc, PG17_VECTOR, "hint"), "ALTER EXTENSION vector UPDATE"));

    /* what passed, passed for the right reason */
    cr_assert(tu_contains(text(doc, PG17_SEMANTIC_INDEX, "observed"), "hnsw (embedding vector_cosine_ops)"), "%s",
              text(doc, PG17_SEMANTIC_INDEX, "observed"));
    cr_assert(tu_contains(text(doc, PG17_MESSAGES_INDEX, "observed"), "WHERE (embedding IS NOT NULL), valid"), "%s",
              text(doc, PG17_MESSAGES_INDEX, "observed"));
    cr_assert(tu_contains(text(doc, PG17_SEMANTIC_PLAN, "observed"),
                          "Index Scan using idx_semantic_embedding_hnsw on semantic_memories"),
              "%s", text(doc, PG17_SEMANTIC_PLAN, "observed"));
    cr_assert(tu_contains(text(doc, PG17_MESSAGES_PLAN, "observed"),
                          "Index Scan using idx_session_messages_embedding_hnsw on session_messages"),
              "%s", text(doc, PG17_MESSAGES_PLAN, "observed"));
    cJSON_Delete(doc);
    free(major_minor);
    free(extversion);
    tu_drop_db(db);
    free(db);
}

Test(verify_examples, upgraded_pg17_as_junit_has_the_two_failures)
{
    char *db = aria_store();
    tu_run_result r = run_example(db, "upgraded-pg17.yaml", "junit", 3);
    cr_assert(tu_contains(r.out, "<testsuites name=\"pgmemctl verify\" tests=\"7\" failures=\"2\""), "%s", r.out);
    int failures = 0;
    for (const char *p = strstr(r.out, "<failure "); p; p = strstr(p + 1, "<failure "))
        failures++;
    cr_assert_eq(failures, 2, "%s", r.out);
    cr_assert(tu_contains(r.out, "message=\"vector 0.8.0 does not satisfy &gt;=0.8.2\""), "%s", r.out);
    /* the file a CI job would publish is valid JUnit XML */
    char *dir = tu_tempdir();
    char *xml = tu_write_file(dir, "verify.xml", r.out);
    char *cmd = tu_printf("xmllint --noout --schema '%s/tests/data/junit.xsd' '%s' >/dev/null 2>&1", tu_repo(), xml);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "xmllint rejected:\n%s", r.out);
    free(cmd);
    free(xml);
    tu_rmtree(dir);
    free(dir);
    tu_run_free(&r);
    tu_drop_db(db);
    free(db);
}

Test(verify_examples, upgraded_pg17_partial_index_without_its_predicate)
{
    char *db = aria_store();
    /* rebuilt as a full index: it still serves the search, but it is not what the spec wants */
    cJSON *doc = report_after(db,
                              "DROP INDEX aria_data.idx_session_messages_embedding_hnsw;"
                              "CREATE INDEX idx_session_messages_embedding_hnsw ON aria_data.session_messages"
                              " USING hnsw (embedding vector_cosine_ops)",
                              "upgraded-pg17.yaml",
                              (const char *const[]){PG17_SERVER, PG17_VECTOR, PG17_MESSAGES_INDEX, NULL});
    cr_assert(tu_contains(text(doc, PG17_MESSAGES_INDEX, "message"),
                          "not a partial index, expected WHERE embedding IS NOT NULL"),
              "%s", text(doc, PG17_MESSAGES_INDEX, "message"));
    cr_assert_str_eq(text(doc, PG17_MESSAGES_INDEX, "observed"),
                     "hnsw (embedding vector_cosine_ops) m=16 ef_construction=64, valid");
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(result(doc, PG17_MESSAGES_INDEX), "details");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(details, "predicate")));
    finish(doc, db);
}

/* The spec's plan query repeats the partial index's predicate because without it the planner
 * cannot use the index, even with enable_seqscan = off. */
Test(verify_examples, a_query_without_the_predicate_cannot_use_the_partial_index)
{
    char *db = aria_store();
    char *dir = tu_tempdir();
    char *spec = tu_write_file(dir, "spec.yaml",
                               "checks:\n"
                               "  - name: no predicate\n"
                               "    kind: plan\n"
                               "    query: SELECT id FROM aria_data.session_messages ORDER BY embedding <=> $vector"
                               " LIMIT 10\n"
                               "    vector_from: aria_data.session_messages.embedding\n"
                               "    expect_index: aria_data.idx_session_messages_embedding_hnsw\n"
                               "    force_index: true\n");
    tu_run_result r = run_verify(db, spec, NULL, 3);
    cJSON *doc = tu_json(r.out);
    assert_status(doc, "no predicate", "fail");
    cr_assert_str_eq(text(doc, "no predicate", "observed"), "Seq Scan on session_messages");
    cJSON_Delete(doc);
    tu_run_free(&r);
    free(spec);
    tu_rmtree(dir);
    free(dir);
    tu_drop_db(db);
    free(db);
}

/* ---- code-review-bot.yaml ----------------------------------------------------------------- */

Test(verify_examples, code_review_bot_passes)
{
    char *db = review_bot_store();
    cJSON *doc = report_of(db, "code-review-bot.yaml", 0);
    cr_assert_str_eq(tu_json_str(doc, "status"), "pass");
    cr_assert_eq(count(doc, "total"), 10);
    cr_assert_eq(count(doc, "pass"), 10, "%s", cJSON_Print(doc));
    cr_assert(tu_contains(text(doc, BOT_HNSW, "observed"), "hnsw (embedding vector_cosine_ops) m=16 ef_construction=64"),
              "%s", text(doc, BOT_HNSW, "observed"));
    cr_assert(tu_contains(text(doc, BOT_HNSW_PLAN, "observed"), "Index Scan using idx_learning_memories_embedding_hnsw"),
              "%s", text(doc, BOT_HNSW_PLAN, "observed"));
    cr_assert(tu_contains(text(doc, BOT_LESSON_TEXT_PLAN, "observed"),
                          "Bitmap Index Scan on idx_learning_memories_search_vector"),
              "%s", text(doc, BOT_LESSON_TEXT_PLAN, "observed"));
    cr_assert(tu_contains(text(doc, BOT_FINDINGS_PLAN, "observed"), "Bitmap Index Scan on idx_findings_search_vector"),
              "%s", text(doc, BOT_FINDINGS_PLAN, "observed"));
    /* $text was a real word of the table */
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(result(doc, BOT_FINDINGS_PLAN), "details");
    const char *word = tu_json_str(details, "text");
    char *sql = tu_printf("SELECT count(*) FROM findings WHERE search_vector @@ to_tsquery('simple', '%s')", word);
    cr_assert_gt(tu_query_int(db, sql), 0, "\"%s\" is in no finding", word);
    free(sql);
    cr_assert_str_eq(text(doc, "findings.search_vector is a tsvector", "observed"), "tsvector");
    finish(doc, db);
}

Test(verify_examples, code_review_bot_hnsw_built_with_m_8)
{
    char *db = review_bot_store();
    /* the index stays usable (the plan check passes), only its parameters differ */
    cJSON *doc = report_after(db,
                              "DROP INDEX idx_learning_memories_embedding_hnsw;"
                              "CREATE INDEX idx_learning_memories_embedding_hnsw ON learning_memories"
                              " USING hnsw (embedding vector_cosine_ops) WITH (m = 8)",
                              "code-review-bot.yaml", (const char *const[]){BOT_HNSW, NULL});
    cr_assert_str_eq(text(doc, BOT_HNSW, "observed"), "hnsw (embedding vector_cosine_ops) m=8 ef_construction=64, valid");
    cr_assert_str_eq(text(doc, BOT_HNSW, "message"), "idx_learning_memories_embedding_hnsw: m = 8, expected 16");
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(result(doc, BOT_HNSW), "details");
    cr_assert_eq(tu_json_num(details, "m"), 8);
    cr_assert_eq(tu_json_num(details, "ef_construction"), 64, "the default when WITH does not give it");
    finish(doc, db);
}

Test(verify_examples, code_review_bot_findings_without_their_gin_index)
{
    char *db = review_bot_store();
    cJSON *doc = report_after(db, "DROP INDEX idx_findings_search_vector", "code-review-bot.yaml",
                              (const char *const[]){BOT_FINDINGS_GIN, BOT_FINDINGS_PLAN, NULL});
    cr_assert_str_eq(text(doc, BOT_FINDINGS_GIN, "observed"), "missing");
    cr_assert_str_eq(text(doc, BOT_FINDINGS_PLAN, "observed"), "Seq Scan on findings");
    cr_assert(tu_contains(text(doc, BOT_FINDINGS_PLAN, "message"), "the plan does not use idx_findings_search_vector"),
              "%s", text(doc, BOT_FINDINGS_PLAN, "message"));
    finish(doc, db);
}

/* test_verify_render.c — unit tests for verify_render.c: the JSON document, the aligned human
 * text with and without colour, JUnit XML checked against tests/data/junit.xsd by xmllint, and
 * TAP read by prove and by TAP::Parser's YAMLish reader. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/testutil.h"
#include "redact.h"
#include "verify.h"

extern char **environ;

static void fini(void)
{
    redact_clear_secrets();
    tu_leak_check();
}

TestSuite(verify_render, .fini = fini);

/* ---- a hand-made report ------------------------------------------------------------------ */

#define LONG_NAME "row_count: public.a_table_with_a_remarkably_long_name_for_tests"

/* The strings are literals: the fixture is never passed to verify_report_free. */
static verify_check fixture_checks[] = {
    {.kind = VK_SERVER_VERSION, .name = "server_version", .line = 3},
    {.kind = VK_EXTENSION, .name = "extension: vector \"v\" <&> #1", .hint = "run ALTER EXTENSION"},
    {.kind = VK_INDEX, .name = "index: memories # hnsw", .severity = VSEV_WARN, .line = 12},
    {.kind = VK_PLAN, .name = "plan: search\nby vector", .skip = true, .skip_reason = "no vector data"},
    {.kind = VK_ROW_COUNT, .name = LONG_NAME, .line = 20},
};

#define N_CHECKS ((int) (sizeof fixture_checks / sizeof fixture_checks[0]))

typedef struct {
    verify_report r;
    verify_result results[N_CHECKS];
} fixture;

/* Five checks: pass, fail (quotes, < & >, '#', a newline, a 0x01 byte, a secret), warn (an
 * invalid UTF-8 byte 0xff), skip (a newline in the name), and a pass with a name over 50 wide. */
static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->results[0] = (verify_result){.check = &fixture_checks[0], .status = VR_PASS,
                                    .message = "PostgreSQL 17.2 satisfies >=15", .attempts = 1, .seconds = 0.0012};
    f->results[1] = (verify_result){.check = &fixture_checks[1],
                                    .status = VR_FAIL,
                                    .observed = "0.7.4\x01",
                                    .expected = ">=0.8.0 & 'newest'",
                                    .message = "vector 0.7.4 < 0.8.0 \"old\"\nsee the hint",
                                    .hint = "ALTER EXTENSION vector UPDATE -- password hunter2-x",
                                    .attempts = 2,
                                    .seconds = 0.25};
    f->results[2] = (verify_result){.check = &fixture_checks[2],
                                    .status = VR_WARN,
                                    .observed = "INVALID \xff index",
                                    .expected = "valid",
                                    .message = "index memories_embedding_idx is invalid",
                                    .attempts = 1,
                                    .seconds = 0.5};
    f->results[3] = (verify_result){.check = &fixture_checks[3], .status = VR_SKIP, .attempts = 0};
    f->results[4] = (verify_result){.check = &fixture_checks[4], .status = VR_PASS, .message = "42 rows",
                                    .attempts = 1, .seconds = 0.003};
    f->r.results = f->results;
    f->r.n = N_CHECKS;
    f->r.pass = 2;
    f->r.fail = 1;
    f->r.warn = 1;
    f->r.skip = 1;
    strcpy(f->r.server_version, "17.2 (Debian 17.2-1)");
    f->r.attempts = 2;
    f->r.seconds = 1.2346;
}

/* The fixture without its failing check (pass, warn, skip only). */
static void fixture_without_failure(fixture *f)
{
    fixture_init(f);
    memmove(&f->results[1], &f->results[2], (N_CHECKS - 2) * sizeof f->results[0]);
    f->r.n = N_CHECKS - 1;
    f->r.fail = 0;
}

static char *render(const fixture *f, verify_format fmt, bool color)
{
    char *s = verify_render_text(&f->r, fmt, "postgresql://u@db.example/mem", "spec <a&b>.yaml", color);
    cr_assert_not_null(s);
    return s;
}

/* ---- external tools ---------------------------------------------------------------------- */

/* Runs argv (PATH search) with stdout and stderr in dir/out.txt; returns the exit status and
 * the output in *out (caller frees). */
static int run_tool(const char *dir, const char *const argv[], char **out)
{
    char *path = tu_printf("%s/out.txt", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *) argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s: %s (scripts/install-deps installs it)", argv[0], strerror(rc));
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    *out = tu_read_file(path);
    free(path);
    cr_assert(WIFEXITED(status), "%s was killed by a signal", argv[0]);
    return WEXITSTATUS(status);
}

/* xmllint --schema tests/data/junit.xsd on xml; returns xmllint's exit status, output in *out. */
static int xmllint_junit(const char *xml, char **out)
{
    char *dir = tu_tempdir();
    char *file = tu_write_file(dir, "report.xml", xml);
    char *xsd = tu_printf("%s/tests/data/junit.xsd", tu_repo());
    int rc = run_tool(dir, (const char *const[]){"xmllint", "--noout", "--schema", xsd, file, NULL}, out);
    tu_rmtree(dir);
    free(xsd);
    free(file);
    free(dir);
    return rc;
}

/* prove --exec cat on tap; returns prove's exit status, output in *out. */
static int prove_tap(const char *tap, char **out)
{
    char *dir = tu_tempdir();
    char *file = tu_write_file(dir, "verify.tap", tap);
    int rc = run_tool(dir, (const char *const[]){"prove", "--verbose", "--exec", "cat", file, NULL}, out);
    tu_rmtree(dir);
    free(file);
    free(dir);
    return rc;
}

/* Occurrences of needle in haystack. */
static int count_of(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + strlen(needle), needle))
        n++;
    return n;
}

/* ---- names and formats --------------------------------------------------------------------- */

Test(verify_render, status_and_format_names)
{
    cr_expect_str_eq(verify_status_name(VR_PASS), "pass");
    cr_expect_str_eq(verify_status_name(VR_FAIL), "fail");
    cr_expect_str_eq(verify_status_name(VR_WARN), "warn");
    cr_expect_str_eq(verify_status_name(VR_SKIP), "skip");
    const char *names[] = {"json", "human", "junit", "tap"};
    verify_format want[] = {VF_JSON, VF_HUMAN, VF_JUNIT, VF_TAP};
    for (int i = 0; i < 4; i++) {
        verify_format f = VF_JSON;
        cr_expect(verify_format_parse(names[i], &f), "%s", names[i]);
        cr_expect_eq(f, want[i], "%s", names[i]);
    }
    verify_format f = VF_TAP;
    cr_expect_not(verify_format_parse("JSON", &f));
    cr_expect_not(verify_format_parse("xml", &f));
    cr_expect_not(verify_format_parse("", &f));
    cr_expect_not(verify_format_parse(NULL, &f));
    cr_expect_eq(f, VF_TAP, "a failed parse leaves *out alone");
}

/* ---- JSON ---------------------------------------------------------------------------------- */

Test(verify_render, json_document)
{
    fixture f;
    fixture_init(&f);
    f.results[1].details = cJSON_CreateObject();
    cJSON_AddStringToObject(f.results[1].details, "plan", "Seq Scan on \xff memories");
    cJSON_AddNumberToObject(f.results[1].details, "rows", 3);
    redact_add_secret("hunter2-x");

    cJSON *doc = verify_render_json(&f.r, "postgresql://u@h/db", "spec.yaml");
    cr_assert_not_null(doc);
    cr_expect_str_eq(tu_json_str(doc, "command"), "verify");
    cr_expect_str_eq(tu_json_str(doc, "database"), "postgresql://u@h/db");
    cr_expect_str_eq(tu_json_str(doc, "spec"), "spec.yaml");
    cr_expect_str_eq(tu_json_str(doc, "status"), "fail");
    cr_expect_str_eq(tu_json_str(doc, "server_version"), "17.2 (Debian 17.2-1)");
    cr_expect_eq(tu_json_num(doc, "attempts"), 2);
    cr_expect_eq(tu_json_num(doc, "seconds"), 1.235, "rounded to milliseconds");
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(doc, "summary");
    cr_assert(cJSON_IsObject(sum));
    cr_expect_eq(tu_json_num(sum, "total"), 5);
    cr_expect_eq(tu_json_num(sum, "pass"), 2);
    cr_expect_eq(tu_json_num(sum, "fail"), 1);
    cr_expect_eq(tu_json_num(sum, "warn"), 1);
    cr_expect_eq(tu_json_num(sum, "skip"), 1);

    const cJSON *checks = tu_json_array(doc, "checks");
    cr_assert_eq(cJSON_GetArraySize(checks), 5);
    const cJSON *c0 = cJSON_GetArrayItem(checks, 0), *c1 = cJSON_GetArrayItem(checks, 1),
                *c2 = cJSON_GetArrayItem(checks, 2);
    cr_expect_str_eq(tu_json_str(c0, "name"), "server_version");
    cr_expect_str_eq(tu_json_str(c0, "kind"), "server_version");
    cr_expect_str_eq(tu_json_str(c0, "severity"), "error");
    cr_expect_str_eq(tu_json_str(c0, "status"), "pass");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(c0, "observed")));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(c0, "hint")));
    cr_expect_eq(tu_json_num(c0, "spec_line"), 3);
    cr_expect_null(cJSON_GetObjectItemCaseSensitive(c0, "details"));

    cr_expect_str_eq(tu_json_str(c1, "name"), "extension: vector \"v\" <&> #1");
    cr_expect_str_eq(tu_json_str(c1, "kind"), "extension");
    cr_expect_str_eq(tu_json_str(c1, "status"), "fail");
    cr_expect_str_eq(tu_json_str(c1, "observed"), "0.7.4\x01");
    cr_expect_str_eq(tu_json_str(c1, "message"), "vector 0.7.4 < 0.8.0 \"old\"\nsee the hint");
    cr_expect_str_eq(tu_json_str(c1, "hint"), "ALTER EXTENSION vector UPDATE -- password " REDACT_MASK,
                     "the secret is masked before cJSON escapes anything");
    cr_expect_eq(tu_json_num(c1, "attempts"), 2);
    cr_expect_eq(tu_json_num(c1, "seconds"), 0.25);
    cr_expect_null(cJSON_GetObjectItemCaseSensitive(c1, "spec_line"), "line 0 is left out");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(c1, "details");
    cr_assert(cJSON_IsObject(d));
    cr_expect_neq((void *) d, (void *) f.results[1].details, "a copy, not the result's object");
    cr_expect_str_eq(tu_json_str(d, "plan"), "Seq Scan on \xEF\xBF\xBD memories", "invalid UTF-8 replaced");
    cr_expect_eq(tu_json_num(d, "rows"), 3);

    cr_expect_str_eq(tu_json_str(c2, "severity"), "warn");
    cr_expect_str_eq(tu_json_str(c2, "status"), "warn");
    cr_expect_str_eq(tu_json_str(c2, "observed"), "INVALID \xEF\xBF\xBD index");
    cr_expect_str_eq(tu_json_str(cJSON_GetArrayItem(checks, 3), "status"), "skip");

    cJSON_Delete(doc);
    cJSON_Delete(f.results[1].details);
}

Test(verify_render, json_status_pass_without_failures)
{
    fixture f;
    fixture_without_failure(&f);
    cJSON *doc = verify_render_json(&f.r, NULL, "built-in memory-store profile");
    cr_assert_not_null(doc);
    cr_expect_str_eq(tu_json_str(doc, "status"), "pass", "warnings and skips do not fail");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "database")));
    cr_expect_eq(cJSON_GetArraySize(tu_json_array(doc, "checks")), 4);
    cJSON_Delete(doc);
}

/* ---- human --------------------------------------------------------------------------------- */

Test(verify_render, human_without_color)
{
    fixture f;
    fixture_init(&f);
    char *s = render(&f, VF_HUMAN, false);
    cr_expect_null(strchr(s, '\033'), "no escape byte without colour:\n%s", s);
    cr_expect_null(strchr(s, '\x01'), "control bytes are replaced");
    cr_expect_null(strchr(s, '\xff'), "invalid UTF-8 is replaced");

    /* names padded to the widest (capped at 50), two spaces, message */
    const char *want =
        "pgmemctl verify: postgresql://u@db.example/mem (PostgreSQL 17.2 (Debian 17.2-1)), spec <a&b>.yaml\n"
        "PASS  server_version                                      PostgreSQL 17.2 satisfies >=15\n"
        "FAIL  extension: vector \"v\" <&> #1                        vector 0.7.4 < 0.8.0 \"old\" see the hint\n"
        "      observed: 0.7.4\xEF\xBF\xBD\n"
        "      expected: >=0.8.0 & 'newest'\n"
        "      hint: ALTER EXTENSION vector UPDATE -- password hunter2-x\n"
        "WARN  index: memories # hnsw                              index memories_embedding_idx is invalid\n"
        "      observed: INVALID \xEF\xBF\xBD index\n"
        "      expected: valid\n"
        "SKIP  plan: search by vector                              no vector data\n"
        "PASS  " LONG_NAME "  42 rows\n"
        "5 checks: 2 passed, 1 failed, 1 warning, 1 skipped in 1.23 s, 2 rounds\n";
    cr_expect_str_eq(s, want);
    free(s);
}

Test(verify_render, human_multiline_values_and_one_round)
{
    fixture f;
    fixture_init(&f);
    f.r.n = 2;
    f.r.pass = 1;
    f.r.warn = 0;
    f.r.skip = 0;
    f.r.attempts = 1;
    f.results[1].observed = "CREATE INDEX i\r\n  ON t USING hnsw (e)\nWHERE x";
    f.results[1].hint = NULL;
    char *s = render(&f, VF_HUMAN, false);
    cr_expect(tu_contains(s, "      observed: CREATE INDEX i\n"
                             "                  ON t USING hnsw (e)\n"
                             "                WHERE x\n"),
              "continuation lines are aligned under the value:\n%s", s);
    cr_expect_not(tu_contains(s, "hint:"));
    cr_expect(tu_contains(s, "\n2 checks: 1 passed, 1 failed, 0 warnings, 0 skipped in 1.23 s\n"), "%s", s);
    free(s);
}

Test(verify_render, human_with_color)
{
    fixture f;
    fixture_init(&f);
    char *s = render(&f, VF_HUMAN, true);
    cr_expect_eq(count_of(s, "\033[32mPASS\033[0m  "), 2, "%s", s);
    cr_expect_eq(count_of(s, "\033[1;31mFAIL\033[0m  "), 1);
    cr_expect_eq(count_of(s, "\033[33mWARN\033[0m  "), 1);
    cr_expect_eq(count_of(s, "\033[2mSKIP\033[0m  "), 1);
    cr_expect_eq(count_of(s, "\033"), 2 * N_CHECKS, "only the status tags are coloured");
    free(s);
}

Test(verify_render, human_escape_bytes_in_data_are_not_passed_through)
{
    fixture f;
    fixture_init(&f);
    f.results[0].message = "evil \033[2J\xc2\x9b" "31m text";
    char *s = render(&f, VF_HUMAN, false);
    cr_expect_null(strchr(s, '\033'), "%s", s);
    cr_expect_not(tu_contains(s, "\xc2\x9b"), "no C1 control (CSI) either");
    cr_expect(tu_contains(s, "evil \xEF\xBF\xBD[2J\xEF\xBF\xBD" "31m text"), "%s", s);
    free(s);
}

/* ---- JUnit XML ---------------------------------------------------------------------------- */

Test(verify_render, junit_validates_against_the_schema)
{
    fixture f;
    fixture_init(&f);
    char *xml = render(&f, VF_JUNIT, false);
    char *out = NULL;
    int rc = xmllint_junit(xml, &out);
    cr_expect_eq(rc, 0, "xmllint rejected the report:\n%s\n%s", out, xml);
    free(out);

    cr_expect(tu_contains(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"pgmemctl verify\" "
                               "tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"1.235\""),
              "%s", xml);
    cr_expect(tu_contains(xml, "<testsuite name=\"pgmemctl verify: spec &lt;a&amp;b&gt;.yaml\" tests=\"5\" "
                               "failures=\"1\" errors=\"0\" skipped=\"1\" time=\"1.235\" timestamp=\"20"),
              "%s", xml);
    cr_expect(tu_contains(xml, "<property name=\"server_version\" value=\"17.2 (Debian 17.2-1)\"/>"));
    cr_expect(tu_contains(xml, "<property name=\"database\" value=\"postgresql://u@db.example/mem\"/>"));
    cr_expect_eq(count_of(xml, "<testcase "), 5);
    cr_expect_eq(count_of(xml, "<failure "), 1);
    cr_expect_eq(count_of(xml, "<skipped "), 1);
    cr_expect(tu_contains(xml, "<testcase name=\"server_version\" classname=\"pgmemctl.verify.server_version\" "
                               "time=\"0.001\"/>"),
              "%s", xml);
    cr_expect(tu_contains(xml, "<testcase name=\"extension: vector &quot;v&quot; &lt;&amp;&gt; #1\" "
                               "classname=\"pgmemctl.verify.extension\" time=\"0.250\">\n"
                               "      <failure message=\"vector 0.7.4 &lt; 0.8.0 &quot;old&quot;&#10;see the hint\" "
                               "type=\"extension\">observed: 0.7.4\nexpected: &gt;=0.8.0 &amp; &apos;newest&apos;\n"
                               "hint: ALTER EXTENSION vector UPDATE -- password hunter2-x</failure>"),
              "%s", xml);
    cr_expect(tu_contains(xml, "<system-out>warning: index memories_embedding_idx is invalid\n"
                               "observed: INVALID \xEF\xBF\xBD index\nexpected: valid</system-out>"),
              "%s", xml);
    cr_expect(tu_contains(xml, "<testcase name=\"plan: search&#10;by vector\" classname=\"pgmemctl.verify.plan\" "
                               "time=\"0.000\">\n      <skipped message=\"no vector data\"/>"),
              "%s", xml);
    cr_expect_null(strchr(xml, '\x01'), "XML 1.0 cannot carry 0x01");
    cr_expect_null(strchr(xml, '\xff'));
    free(xml);
}

Test(verify_render, junit_without_failures_and_control_characters)
{
    fixture f;
    fixture_without_failure(&f);
    /* the warning's message goes into element text, the skip reason into an attribute */
    const char *nasty = "tab\there cr\r bell\a nonchar \xEF\xBF\xBF ok";
    f.results[1].message = (char *) nasty;
    f.results[2].message = (char *) nasty;
    char *xml = render(&f, VF_JUNIT, false);
    char *out = NULL;
    cr_expect_eq(xmllint_junit(xml, &out), 0, "%s\n%s", out, xml);
    free(out);
    cr_expect(tu_contains(xml, "<system-out>warning: tab\there cr&#13; bell nonchar  ok\n"), "%s", xml);
    cr_expect(tu_contains(xml, "<skipped message=\"tab&#9;here cr&#13; bell nonchar  ok\"/>"), "%s", xml);
    cr_expect(tu_contains(xml, "failures=\"0\" errors=\"0\" skipped=\"1\""), "%s", xml);
    cr_expect_eq(count_of(xml, "<failure"), 0);
    free(xml);
}

/* The schema must be able to fail: documents with structural mistakes are rejected. */
Test(verify_render, junit_schema_rejects_broken_documents)
{
    const char *head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"x\" tests=\"1\">\n"
                       "<testsuite name=\"s\" tests=\"1\">\n";
    const char *tail = "</testsuite>\n</testsuites>\n";
    const char *bodies[] = {
        "<testcase name=\"a\"/>\n", /* the control: valid */
        "<failure message=\"m\">outside a testcase</failure>\n<testcase name=\"a\"/>\n",
        "<testcase classname=\"no.name\"/>\n",
        "<testcase name=\"a\"><skipped/><failure/></testcase>\n",
        "<testcase name=\"a\" time=\"soon\"/>\n",
        "<testcase name=\"a\"><system-out>x</system-out><failure/></testcase>\n",
        "<testcase name=\"a\" colour=\"red\"/>\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char *doc = tu_printf("%s%s%s", head, bodies[i], tail);
        char *out = NULL;
        int rc = xmllint_junit(doc, &out);
        if (i == 0)
            cr_expect_eq(rc, 0, "the control document is valid: %s", out);
        else
            cr_expect_neq(rc, 0, "accepted:\n%s", doc);
        free(out);
        free(doc);
    }
    char *out = NULL;
    cr_expect_neq(xmllint_junit("<?xml version=\"1.0\"?>\n<testcase name=\"a\"/>\n", &out), 0,
                  "a testcase is not a root element");
    free(out);
}

/* ---- TAP ----------------------------------------------------------------------------------- */

Test(verify_render, tap_lines)
{
    fixture f;
    fixture_init(&f);
    char *tap = render(&f, VF_TAP, false);
    cr_expect(tu_contains(tap, "TAP version 13\n1..5\nok 1 - server_version\n"
                               "not ok 2 - extension: vector \"v\" <&> \\#1\n  ---\n"),
              "%s", tap);
    cr_expect(tu_contains(tap, "\nnot ok 3 - index: memories \\# hnsw # TODO warning: "
                               "index memories_embedding_idx is invalid\n  ---\n"),
              "%s", tap);
    cr_expect(tu_contains(tap, "\nok 4 - plan: search by vector # SKIP no vector data\n"
                               "ok 5 - " LONG_NAME "\n"),
              "%s", tap);
    cr_expect(tu_contains(tap, "  kind: extension\n  severity: error\n"), "%s", tap);
    cr_expect(tu_contains(tap, "  kind: index\n  severity: warn\n"), "%s", tap);
    cr_expect_eq(count_of(tap, "\n  ...\n"), 2, "one YAML block per fail and warn:\n%s", tap);
    cr_expect_null(strchr(tap, '\x01'));
    cr_expect_null(strchr(tap, '\xff'));
    free(tap);
}

Test(verify_render, tap_with_a_failure_fails_prove)
{
    fixture f;
    fixture_init(&f);
    char *tap = render(&f, VF_TAP, false);
    char *out = NULL;
    int rc = prove_tap(tap, &out);
    cr_expect_neq(rc, 0, "prove passed a report with a failure:\n%s", out);
    cr_expect(tu_contains(out, "Tests=5"), "%s", out);
    cr_expect(tu_contains(out, "Failed test:  2\n"), "only the error check fails:\n%s", out);
    cr_expect_not(tu_contains(out, "Parse errors"), "%s", out);
    free(out);
    free(tap);
}

Test(verify_render, tap_with_warnings_and_skips_passes_prove)
{
    fixture f;
    fixture_without_failure(&f);
    char *tap = render(&f, VF_TAP, false);
    cr_expect(tu_contains(tap, "\n1..4\n"));
    char *out = NULL;
    int rc = prove_tap(tap, &out);
    cr_expect_eq(rc, 0, "prove failed:\n%s\n%s", out, tap);
    cr_expect(tu_contains(out, "Tests=4"), "%s", out);
    cr_expect(tu_contains(out, "Result: PASS"), "%s", out);
    free(out);
    free(tap);
}

/* The YAMLish blocks read back through TAP::Parser (what prove uses) give the original values. */
Test(verify_render, tap_yaml_round_trips_through_tap_parser)
{
    fixture f;
    fixture_init(&f);
    f.results[2].expected = "~";
    f.results[2].hint = "yes";
    char *tap = render(&f, VF_TAP, false);
    char *dir = tu_tempdir();
    char *file = tu_write_file(dir, "verify.tap", tap);
    const char *script =
        "use strict; use TAP::Parser;\n"
        "open(my $fh, '<:raw', $ARGV[0]) or die; my $tap = do { local $/; <$fh> };\n"
        "my $p = TAP::Parser->new({tap => $tap}); binmode STDOUT;\n"
        "while (my $r = $p->next) {\n"
        "  next unless $r->is_yaml; my $d = $r->data;\n"
        "  for my $k (sort keys %$d) { my $v = $d->{$k}; $v = '<undef>' unless defined $v;\n"
        "    $v =~ s/\\n/<NL>/g; print \"$k=$v\\n\" }\n"
        "  print \"--\\n\" }\n"
        "print 'parse_errors=', scalar($p->parse_errors), \"\\n\";\n";
    char *out = NULL;
    int rc = run_tool(dir, (const char *const[]){"perl", "-e", script, file, NULL}, &out);
    cr_expect_eq(rc, 0, "%s", out);
    const char *want = "expected=>=0.8.0 & 'newest'\n"
                       "hint=ALTER EXTENSION vector UPDATE -- password hunter2-x\n"
                       "kind=extension\n"
                       "message=vector 0.7.4 < 0.8.0 \"old\"<NL>see the hint\n"
                       "observed=0.7.4\x01\n"
                       "severity=error\n"
                       "--\n"
                       "expected=~\n"
                       "hint=yes\n"
                       "kind=index\n"
                       "message=index memories_embedding_idx is invalid\n"
                       "observed=INVALID \xEF\xBF\xBD index\n"
                       "severity=warn\n"
                       "--\n"
                       "parse_errors=0\n";
    cr_expect_str_eq(out, want, "TAP:\n%s", tap);
    free(out);
    tu_rmtree(dir);
    free(file);
    free(dir);
    free(tap);
}

/* ---- printing ------------------------------------------------------------------------------ */

/* verify_print_text with stdout pointed at path (the stdio stream only, as tu_stderr_begin does). */
static bool print_to(const char *path, const char *text)
{
    fflush(stdout);
    FILE *saved = stdout, *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    stdout = f;
    bool ok = verify_print_text(text);
    stdout = saved;
    fclose(f);
    return ok;
}

Test(verify_render, print_text_scrubs_secrets_in_every_format)
{
    fixture f;
    fixture_init(&f);
    /* a secret with characters every format escapes */
    f.results[1].hint = "password p<&>'\"#ss in the hint";
    redact_add_secret("p<&>'\"#ss");
    redact_add_secret("hunter2-x");
    char *dir = tu_tempdir();
    char *path = tu_printf("%s/stdout.txt", dir);
    verify_format fmts[] = {VF_HUMAN, VF_JUNIT, VF_TAP, VF_JSON};
    for (int i = 0; i < 4; i++) {
        char *text = render(&f, fmts[i], false);
        cr_expect(print_to(path, text));
        char *got = tu_read_file(path);
        cr_expect_not(tu_contains(got, "#ss"), "format %d shows the secret:\n%s", i, got);
        cr_expect_not(tu_contains(got, "hunter2"), "format %d shows the secret:\n%s", i, got);
        cr_expect(tu_contains(got, REDACT_MASK), "format %d:\n%s", i, got);
        free(got);
        free(text);
    }
    tu_rmtree(dir);
    free(path);
    free(dir);
}

Test(verify_render, print_text_reports_a_failed_write)
{
    tu_stderr_begin();
    bool ok = print_to("/dev/full", "some text\n");
    char *log = tu_stderr_end();
    cr_expect_not(ok);
    cr_expect(tu_contains(log, "could not write"), "%s", log);
    free(log);
}

/* cmd_verify.c — `pgmemctl verify`: options, the spec (built-in profile or --spec), the run, and
 * the output in the requested format. */
#include "cmd.h"
#include "log.h"
#include "pg.h"
#include "report.h"
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const formats[] = {"json", "human", "junit", "tap", NULL};

const opt_spec cmd_verify_specs[] = {
    {"spec", 0, OPT_STRING, NULL, true, "FILE", .help = "YAML spec to check (default: the built-in memory-store profile)"},
    {"format", 0, OPT_STRING, "json", true, "FORMAT", "output on stdout: json, human, junit or tap", .choices = formats},
    {"wait", 0, OPT_DURATION, "0", true, "SECONDS", "wait this long for the server to accept connections", .min = 0,
     .max = OPT_NO_MAX},
    {"retry-timeout", 0, OPT_DURATION, "0", true, "SECONDS",
     "re-run failing checks until they pass or this much time has passed", .min = 0, .max = OPT_NO_MAX},
    {"retry-interval", 0, OPT_DURATION, "2", true, "SECONDS", "pause between rounds of --retry-timeout", .min = 0,
     .above_min = true, .max = OPT_NO_MAX},
    /* statement_timeout takes whole milliseconds up to INT_MAX */
    {"check-timeout", 0, OPT_DURATION, "60", true, "SECONDS", "statement_timeout for each check (0 = none)", .min = 0,
     .max = 2147483, .setting = "statement_timeout"},
    {0},
};

/* Colour in the human format: stdout is a terminal and NO_COLOR is unset or empty. */
static bool want_color(void)
{
    const char *nc = getenv("NO_COLOR");
    return isatty(STDOUT_FILENO) && !(nc && *nc);
}

typedef struct {
    verify_spec spec;
    verify_format fmt;
    verify_options vo;
} verify_state;

static int prepare(const cmd_ctx *ctx, const opts *o, void *state, bool *needs_db)
{
    (void) ctx;
    (void) needs_db;
    verify_state *st = state;
    st->vo = (verify_options){.retry_timeout = opts_double(o, "retry-timeout"),
                              .retry_interval = opts_double(o, "retry-interval"),
                              .check_timeout = opts_double(o, "check-timeout")};
    if (o->nargs > 0) {
        log_error("verify: unexpected argument \"%s\" (see pgmemctl verify --help)", o->args[0]);
        return EXIT_USAGE;
    }
    if (!verify_format_parse(opts_str(o, "format"), &st->fmt)) { /* the table's choices: a bug */
        log_error("verify: unknown --format \"%s\" (expected json, human, junit or tap)", opts_str(o, "format"));
        return EXIT_USAGE;
    }
    bool loaded = opts_str(o, "spec") ? verify_spec_load(opts_str(o, "spec"), &st->spec)
                                      : verify_spec_default(&st->spec);
    return loaded ? EXIT_OK : EXIT_USAGE;
}

static int run(const cmd_ctx *ctx, const opts *o, pg_conn *c, void *state, cmd_result *out)
{
    (void) ctx;
    (void) o;
    verify_state *st = state;
    verify_report rep;
    int rc = EXIT_FAILURE_;
    if (verify_run(c, &st->spec, &st->vo, &rep)) {
        rc = rep.fail > 0 ? EXIT_REJECTED : EXIT_OK;
        log_info("verify: %d checks: %d passed, %d failed, %d warnings, %d skipped", rep.n, rep.pass, rep.fail,
                 rep.warn, rep.skip);
        if (st->fmt == VF_JSON)
            out->doc = verify_render_json(&rep, pg_display(c), st->spec.origin);
        else
            out->text = verify_render_text(&rep, st->fmt, pg_display(c), st->spec.origin, want_color());
        if (!out->doc && !out->text)
            rc = EXIT_FAILURE_;
    }
    verify_report_free(&rep);
    return rc;
}

static void release(void *state)
{
    verify_state *st = state;
    verify_spec_free(&st->spec);
}

const command cmd_verify = {
    .name = "verify",
    .summary = "check pgvector state for CI: versions, indexes, plans, migrations",
    .flags = CMD_NEEDS_DB | CMD_READ_ONLY,
    .specs = cmd_verify_specs,
    .state_size = sizeof(verify_state),
    .usage = "usage: pgmemctl verify [--spec FILE.yaml] [--format json|human|junit|tap] [--wait SECONDS]\n"
             "                       [--retry-timeout SECONDS [--retry-interval SECONDS]] [--check-timeout SECONDS]\n"
             "\n"
             "Checks a database's pgvector state: server and extension versions, access methods, vector\n"
             "columns, HNSW/IVFFlat/GIN indexes (method, opclass, m, ef_construction, lists, validity), plans\n"
             "that really use an index, pgmemctl's migrations, row counts and custom SQL. Without --spec it\n"
             "runs the built-in memory-store profile (examples/verify/memory-store.yaml). Read-only: every\n"
             "check runs in a READ ONLY transaction.\n"
             "\n"
             "Exit codes: 0 every error-severity check passed, 3 a check failed, 1 could not run, 2 bad\n"
             "spec or usage.\n",
    .see_also = "See pgmemctl-verify(1).",
    .prepare = prepare,
    .run = run,
    .release = release,
};

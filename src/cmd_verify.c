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

const opt_spec cmd_verify_specs[] = {
    {"spec", 0, OPT_STRING, NULL, true, "FILE", "YAML spec to check (default: the built-in memory-store profile)"},
    {"format", 0, OPT_STRING, "json", true, "FORMAT", "output on stdout: json, human, junit or tap"},
    {"wait", 0, OPT_DOUBLE, "0", true, "SECONDS", "wait this long for the server to accept connections"},
    {"retry-timeout", 0, OPT_DOUBLE, "0", true, "SECONDS",
     "re-run failing checks until they pass or this much time has passed"},
    {"retry-interval", 0, OPT_DOUBLE, "2", true, "SECONDS", "pause between rounds of --retry-timeout"},
    {"check-timeout", 0, OPT_DOUBLE, "60", true, "SECONDS", "statement_timeout for each check (0 = none)"},
    {0},
};

void cmd_verify_help(void)
{
    printf("usage: pgmemctl verify [--spec FILE.yaml] [--format json|human|junit|tap] [--wait SECONDS]\n"
           "                       [--retry-timeout SECONDS [--retry-interval SECONDS]] [--check-timeout SECONDS]\n"
           "\n"
           "Checks a database's pgvector state: server and extension versions, access methods, vector\n"
           "columns, HNSW/IVFFlat/GIN indexes (method, opclass, m, ef_construction, lists, validity), plans\n"
           "that really use an index, pgmemctl's migrations, row counts and custom SQL. Without --spec it\n"
           "runs the built-in memory-store profile (examples/verify/memory-store.yaml). Read-only: every\n"
           "check runs in a READ ONLY transaction.\n"
           "\n"
           "Exit codes: 0 every error-severity check passed, 3 a check failed, 1 could not run, 2 bad\n"
           "spec or usage.\n\noptions:\n");
    opts_print_help(cmd_verify_specs, opts_count(cmd_verify_specs));
    printf("\nSee pgmemctl-verify(1).\n");
}

/* Colour in the human format: stdout is a terminal and NO_COLOR is unset or empty. */
static bool want_color(void)
{
    const char *nc = getenv("NO_COLOR");
    return isatty(STDOUT_FILENO) && !(nc && *nc);
}

int cmd_verify(const global_ctx *g, int argc, char **argv)
{
    opts o;
    bool help;
    if (!opts_parse(&o, "verify", cmd_verify_specs, opts_count(cmd_verify_specs), argc, argv, g->cfg, &help)) {
        opts_free(&o);
        return EXIT_USAGE;
    }
    if (help) {
        cmd_verify_help();
        opts_free(&o);
        return EXIT_OK;
    }
    int rc = EXIT_USAGE;
    verify_spec spec = {0};
    verify_format fmt;
    verify_options vo = {.retry_timeout = opts_double(&o, "retry-timeout"),
                         .retry_interval = opts_double(&o, "retry-interval"),
                         .check_timeout = opts_double(&o, "check-timeout")};
    if (o.nargs > 0) {
        log_error("verify: unexpected argument \"%s\" (see pgmemctl verify --help)", o.args[0]);
        goto done;
    }
    if (!verify_format_parse(opts_str(&o, "format"), &fmt)) {
        log_error("verify: unknown --format \"%s\" (expected json, human, junit or tap)", opts_str(&o, "format"));
        goto done;
    }
    if (vo.retry_timeout < 0 || vo.retry_interval <= 0 || vo.check_timeout < 0 || opts_double(&o, "wait") < 0) {
        log_error("verify: --wait, --retry-timeout and --check-timeout must be >= 0, --retry-interval > 0");
        goto done;
    }
    bool loaded = opts_str(&o, "spec") ? verify_spec_load(opts_str(&o, "spec"), &spec) : verify_spec_default(&spec);
    if (!loaded)
        goto done;

    pg_conn *c = pg_connect(g->conninfo, "pgmemctl verify", opts_double(&o, "wait"));
    if (!c) {
        rc = EXIT_FAILURE_;
        goto done;
    }
    verify_report rep;
    bool ran = verify_run(c, &spec, &vo, &rep);
    if (!ran) {
        rc = EXIT_FAILURE_;
    } else {
        rc = rep.fail > 0 ? EXIT_REJECTED : EXIT_OK;
        log_info("verify: %d checks: %d passed, %d failed, %d warnings, %d skipped", rep.n, rep.pass, rep.fail,
                 rep.warn, rep.skip);
        bool printed;
        if (fmt == VF_JSON) {
            cJSON *doc = verify_render_json(&rep, pg_display(c), spec.origin);
            printed = doc && report_print(doc);
            cJSON_Delete(doc);
        } else {
            char *text = verify_render_text(&rep, fmt, pg_display(c), spec.origin, want_color());
            printed = text && verify_print_text(text);
            free(text);
        }
        if (!printed)
            rc = EXIT_FAILURE_;
    }
    verify_report_free(&rep);
    pg_close(c);
done:
    verify_spec_free(&spec);
    opts_free(&o);
    return rc;
}

/* cmd_migrate.c — `pgmemctl migrate up|down|status|repair`: options, run, JSON summary. */
#include "cmd.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const opt_spec cmd_migrate_specs[] = {
    {"migrations-dir", 0, OPT_STRING, NULL, true, "DIR", .help = "read migrations from DIR instead of the built-in set"},
    {"to", 0, OPT_INT, NULL, false, "N", "up: apply up to version N; down: revert everything above N (0 = all)",
     .min = 0, .max = OPT_NO_MAX},
    {"steps", 0, OPT_INT, NULL, false, "K", "down: revert the last K migrations (default 1)", .min = 1,
     .max = OPT_NO_MAX},
    {"version", 0, OPT_INT, NULL, false, "N", "repair: the version to repair", .min = 1, .max = OPT_NO_MAX},
    {"dry-run", 0, OPT_BOOL, NULL, false, NULL, .help = "print the plan and the SQL; change nothing"},
    {"lock-timeout", 0, OPT_DURATION, "60", true, "SECONDS", "how long to wait for another migration run's lock",
     .min = 0, .max = OPT_NO_MAX},
    {"wait", 0, OPT_DURATION, "0", true, "SECONDS", "wait this long for the server to accept connections", .min = 0,
     .max = OPT_NO_MAX},
    {0},
};

static cJSON *step_json(const migrate_step *s, bool with_sql)
{
    cJSON *o = cJSON_CreateObject();
    report_add_int(o, "version", s->version);
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddStringToObject(o, "file", s->file);
    if (with_sql) {
        cJSON_AddStringToObject(o, "sql", s->sql);
    } else {
        cJSON_AddBoolToObject(o, "ok", s->ok);
        report_add_seconds(o, "seconds", s->seconds);
    }
    return o;
}

static cJSON *render(const char *action, const cmd_ctx *g, const pg_conn *c, const migration_set *set,
                     const migrate_request *req, const migrate_result *res)
{
    cJSON *doc = report_new("migrate");
    cJSON_AddStringToObject(doc, "action", action);
    cJSON_AddStringToObject(doc, "database", c ? pg_display(c) : "");
    (void) g;
    cJSON_AddStringToObject(doc, "migrations", set->origin);
    cJSON_AddBoolToObject(doc, "dry_run", req->dry_run);
    cJSON_AddStringToObject(doc, "status", res->outcome == MIGRATE_OK       ? "ok"
                                           : res->outcome == MIGRATE_REFUSED ? "refused"
                                                                             : "failed");
    if (req->action == MIGRATE_STATUS) {
        report_add_int(doc, "current_version", res->version_before);
        int pending = 0, problems = 0;
        cJSON *arr = cJSON_AddArrayToObject(doc, "migrations_status");
        for (int i = 0; i < res->nstatus; i++) {
            const migration_status *s = &res->status[i];
            cJSON *o = cJSON_CreateObject();
            report_add_int(o, "version", s->version);
            cJSON_AddStringToObject(o, "name", s->name);
            cJSON_AddStringToObject(o, "state", migration_state_name(s->state));
            report_add_str(o, "applied_at", s->row ? s->row->applied_at : NULL);
            if (s->row)
                report_add_int(o, "execution_ms", s->row->execution_ms);
            report_add_str(o, "checksum", s->file ? s->file->checksum : s->row->checksum);
            cJSON_AddBoolToObject(o, "has_down", s->file && s->file->down_sql);
            cJSON_AddItemToArray(arr, o);
            pending += s->state == MS_PENDING;
            problems += s->state == MS_FAILED || s->state == MS_CHANGED || s->state == MS_FILE_MISSING;
        }
        report_add_int(doc, "pending", pending);
        report_add_int(doc, "problems", problems);
    } else {
        report_add_int(doc, "version_before", res->version_before);
        report_add_int(doc, "version_after", res->version_after);
        if (req->action != MIGRATE_REPAIR) {
            cJSON *arr = cJSON_AddArrayToObject(doc, req->dry_run ? "plan"
                                                     : req->action == MIGRATE_UP ? "applied"
                                                                                 : "reverted");
            for (int i = 0; i < res->nsteps; i++)
                cJSON_AddItemToArray(arr, step_json(&res->steps[i], req->dry_run));
        }
    }
    if (res->message[0])
        cJSON_AddStringToObject(doc, req->action == MIGRATE_REPAIR && res->outcome == MIGRATE_OK ? "result" : "error",
                                res->message);
    return doc;
}

typedef struct {
    migrate_request req;
    migration_set set;
    bool set_loaded;
    const char *action;
} migrate_state;

static int prepare(const cmd_ctx *ctx, const opts *o, void *state, bool *needs_db)
{
    (void) ctx;
    (void) needs_db;
    migrate_state *st = state;
    migrate_request *req = &st->req;
    *req = (migrate_request){.to = -1, .steps = 0, .repair_version = -1};
    const char *action = st->action = o->nargs > 0 ? o->args[0] : NULL;
    if (!action || o->nargs > 1) {
        log_error("migrate: expected one action: up, down, status or repair (see pgmemctl migrate --help)");
        return EXIT_USAGE;
    }
    if (!strcmp(action, "up"))
        req->action = MIGRATE_UP;
    else if (!strcmp(action, "down"))
        req->action = MIGRATE_DOWN;
    else if (!strcmp(action, "status"))
        req->action = MIGRATE_STATUS;
    else if (!strcmp(action, "repair"))
        req->action = MIGRATE_REPAIR;
    else {
        log_error("migrate: unknown action \"%s\" (expected up, down, status or repair)", action);
        return EXIT_USAGE;
    }
    if (opts_isset(o, "to")) {
        req->to = (int) opts_int(o, "to");
        if (req->action != MIGRATE_UP && req->action != MIGRATE_DOWN) {
            log_error("migrate %s: --to %s is not allowed here", action, opts_str(o, "to"));
            return EXIT_USAGE;
        }
    }
    if (opts_isset(o, "steps")) {
        req->steps = (int) opts_int(o, "steps");
        if (req->action != MIGRATE_DOWN || req->to >= 0) {
            log_error("migrate: --steps K (K >= 1) goes with `down` and not with --to");
            return EXIT_USAGE;
        }
    }
    if (req->action == MIGRATE_REPAIR) {
        if (!opts_isset(o, "version")) {
            log_error("migrate repair: --version N is required");
            return EXIT_USAGE;
        }
        req->repair_version = (int) opts_int(o, "version");
    } else if (opts_isset(o, "version")) {
        log_error("migrate %s: --version goes with `repair` (did you mean --to?)", action);
        return EXIT_USAGE;
    }
    req->dry_run = opts_bool(o, "dry-run");
    req->lock_timeout = opts_double(o, "lock-timeout");
    st->set_loaded = true;
    return migration_set_load(opts_str(o, "migrations-dir"), &st->set) ? EXIT_OK : EXIT_USAGE;
}

static int run(const cmd_ctx *ctx, const opts *o, pg_conn *c, void *state, cmd_result *out)
{
    (void) o;
    migrate_state *st = state;
    migrate_result res;
    migrate_run(c, &st->set, &st->req, &res);
    out->doc = render(st->action, ctx, c, &st->set, &st->req, &res);
    int rc = res.outcome == MIGRATE_OK ? EXIT_OK : res.outcome == MIGRATE_REFUSED ? EXIT_USAGE : EXIT_FAILURE_;
    migrate_result_free(&res);
    return out->doc ? rc : EXIT_FAILURE_;
}

static void release(void *state)
{
    migrate_state *st = state;
    if (st->set_loaded)
        migration_set_free(&st->set);
}

const command cmd_migrate = {
    .name = "migrate",
    .summary = "versioned schema migrations: up, down, status, repair",
    .flags = CMD_NEEDS_DB,
    .specs = cmd_migrate_specs,
    .state_size = sizeof(migrate_state),
    .usage = "usage: pgmemctl migrate up [--to N] [--dry-run]\n"
             "       pgmemctl migrate down [--to N | --steps K] [--dry-run]\n"
             "       pgmemctl migrate status\n"
             "       pgmemctl migrate repair --version N\n"
             "\n"
             "Versioned schema migrations NNNN_name.up.sql / NNNN_name.down.sql, tracked with SHA-256\n"
             "checksums in pgmemctl_schema_migrations. Each migration runs in its own transaction with its\n"
             "tracking row, unless its first line is `-- pgmemctl:no-transaction`. Concurrent runs are\n"
             "serialised by a session advisory lock.\n",
    .see_also = "See pgmemctl-migrate(1).",
    .prepare = prepare,
    .run = run,
    .release = release,
};

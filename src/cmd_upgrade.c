/* cmd_upgrade.c — `pgmemctl upgrade` and its presets (`upgrade-pg16-to-pg17`): options, the run
 * of the chosen method, the JSON document, exit codes. */
#include "cmd.h"
#include "log.h"
#include "pg.h"
#include "report.h"
#include "upgrade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const methods[] = {"pg_upgrade", "dump", "logical", NULL};
static const char *const modes[] = {"link", "copy", "clone", NULL};

const opt_spec cmd_upgrade_specs[] = {
    {"method", 0, OPT_STRING, NULL, true, "METHOD",
     "pg_upgrade (same host), dump or logical (between servers); default: pg_upgrade with --old-datadir, dump "
     "with --from",
     .choices = methods},
    {"from-version", 0, OPT_INT, NULL, true, "MAJOR", "the old side must be this major version", .min = 10,
     .max = OPT_NO_MAX},
    {"to-version", 0, OPT_INT, NULL, true, "MAJOR", "the new side must be this major version", .min = 10,
     .max = OPT_NO_MAX},
    {"old-bindir", 0, OPT_STRING, NULL, true, "DIR", .help = "pg_upgrade: the old version's bin directory"},
    {"new-bindir", 0, OPT_STRING, NULL, true, "DIR", .help = "pg_upgrade: the new version's bin directory"},
    {"old-datadir", 0, OPT_STRING, NULL, true, "DIR", .help = "pg_upgrade: the old cluster's data directory"},
    {"new-datadir", 0, OPT_STRING, NULL, true, "DIR",
     .help = "pg_upgrade: the new cluster's data directory (absent or empty: initdb with the old settings)"},
    {"mode", 0, OPT_STRING, "copy", true, "MODE", "pg_upgrade: link, copy or clone", .choices = modes},
    {"stop-old", 0, OPT_BOOL, NULL, true, NULL,
     .help = "pg_upgrade: stop a running old cluster (pg_ctl stop -m fast) once the preflight passed"},
    {"username", 0, OPT_STRING, NULL, true, "NAME",
     .help = "pg_upgrade: the clusters' bootstrap superuser (default: the data directory's owner)"},
    {"old-conninfo", 0, OPT_STRING, NULL, true, "CONNINFO",
     .help = "pg_upgrade: how to reach the old cluster while it still runs (default: its socket)"},
    {"from", 0, OPT_STRING, NULL, true, "CONNINFO",
     .help = "dump, logical: the source server (dump: never modified; logical: see the man page)"},
    {"to", 0, OPT_STRING, NULL, true, "CONNINFO", .help = "dump, logical: the target server (new major version)"},
    {"publisher-conninfo", 0, OPT_STRING, NULL, true, "CONNINFO",
     .help = "logical: how the new server reaches the old one, keyword=value form without dbname (default: "
             "pgmemctl's own connection parameters for --from)"},
    {"abort", 0, OPT_BOOL, NULL, false, NULL,
     .help = "logical: undo an interrupted run recorded in the work directory and unblock the old side"},
    {"tools-bindir", 0, OPT_STRING, NULL, true, "DIR",
     .help = "dump: the new version's pg_dump, pg_dumpall and pg_restore (default: found by version)"},
    /* checked by the target server in the preflight (upgrade_dump.c), before anything changes */
    {"maintenance-work-mem", 0, OPT_SIZE, NULL, true, "SIZE",
     "dump: maintenance_work_mem of pg_restore's sessions (index builds), e.g. 1GB (default: 1GB, capped by "
     "the target's memory)",
     .min = 1048576, .max = OPT_NO_MAX},
    {"maintenance-workers", 0, OPT_INT, NULL, true, "N",
     "dump: max_parallel_maintenance_workers of pg_restore's sessions (default: the CPU count - 1, at most 7)",
     .min = 0, .max = 1024},
    {"jobs", 'j', OPT_INT, NULL, true, "N",
     "parallel jobs for pg_upgrade, pg_dump and pg_restore (default: the CPU count, at most 8)", .min = 1,
     .max = 256},
    {"sample-rows", 0, OPT_INT, "1000", true, "N", "proof: rows per vector column in the checksum", .min = 1,
     .max = OPT_NO_MAX},
    {"work-dir", 0, OPT_STRING, NULL, true, "DIR",
     .help = "logs, sockets and dumps (default: a new /tmp/pgmemctl-upgrade-XXXXXX, kept)"},
    {"dry-run", 0, OPT_BOOL, NULL, false, NULL, .help = "run the preflight and print the plan; change nothing"},
    {0},
};

static bool need(const opts *o, const char *name, const char *method)
{
    if (opts_str(o, name))
        return true;
    log_error("upgrade: --method %s needs --%s", method, name);
    return false;
}

/* A password typed into --from/--to is visible in the process list: say so (it is never shown by
 * pgmemctl and never passed on in another program's arguments). */
static void warn_password(const char *flag, const char *conninfo)
{
    if (!conninfo)
        return;
    pg_register_secrets(conninfo);
    char *shown = pg_redact_conninfo(conninfo);
    if (shown && strcmp(shown, conninfo) && strstr(shown, "********"))
        log_warn("upgrade: %s contains a password, which other users can see in the process list: prefer "
                 "PGPASSWORD, ~/.pgpass or the config file",
                 flag);
    free(shown);
}

static int prepare(const cmd_ctx *ctx, const opts *o, void *state, bool *needs_db)
{
    (void) needs_db;
    upgrade_options *uo = state;
    *uo = (upgrade_options){.from_version = opts_isset(o, "from-version") ? (int) opts_int(o, "from-version") : 0,
                            .to_version = opts_isset(o, "to-version") ? (int) opts_int(o, "to-version") : 0,
                            .old_bindir = opts_str(o, "old-bindir"),
                            .new_bindir = opts_str(o, "new-bindir"),
                            .old_datadir = opts_str(o, "old-datadir"),
                            .new_datadir = opts_str(o, "new-datadir"),
                            .stop_old = opts_bool(o, "stop-old"),
                            .username = opts_str(o, "username"),
                            .old_conninfo = opts_str(o, "old-conninfo"),
                            .from = opts_str(o, "from"),
                            .to = opts_str(o, "to"),
                            .tools_bindir = opts_str(o, "tools-bindir"),
                            .maintenance_work_mem = opts_str(o, "maintenance-work-mem"),
                            .maintenance_workers =
                                opts_isset(o, "maintenance-workers") ? (int) opts_int(o, "maintenance-workers") : -1,
                            .jobs = opts_isset(o, "jobs") ? (int) opts_int(o, "jobs") : 0,
                            .sample_rows = (int) opts_int(o, "sample-rows"),
                            .work_dir = opts_str(o, "work-dir"),
                            .dry_run = opts_bool(o, "dry-run")};
    /* a preset: upgrade-pgNN-to-pgMM fixes both versions */
    int pf, pt;
    char tail;
    if (sscanf(ctx->name, "upgrade-pg%d-to-pg%d%c", &pf, &pt, &tail) == 2) {
        if ((uo->from_version && uo->from_version != pf) || (uo->to_version && uo->to_version != pt)) {
            log_error("upgrade: %s upgrades %d to %d: --from-version/--to-version contradict it", ctx->name, pf, pt);
            return EXIT_USAGE;
        }
        uo->preset = ctx->name;
        uo->from_version = pf;
        uo->to_version = pt;
    }
    if (o->nargs > 0) {
        log_error("upgrade: unexpected argument \"%s\" (see pgmemctl upgrade --help)", o->args[0]);
        return EXIT_USAGE;
    }
    const char *method = opts_str(o, "method"); /* NULL or one of the table's choices */
    if (!method)
        method = uo->from || uo->to ? "dump" : "pg_upgrade";
    uo->method = !strcmp(method, "dump") ? UPG_DUMP : !strcmp(method, "logical") ? UPG_LOGICAL : UPG_PG_UPGRADE;
    uo->publisher_conninfo = opts_str(o, "publisher-conninfo");
    uo->abort_run = opts_bool(o, "abort");
    if (uo->method != UPG_LOGICAL && (uo->publisher_conninfo || uo->abort_run)) {
        log_error("upgrade: --publisher-conninfo and --abort belong to --method logical");
        return EXIT_USAGE;
    }
    if (uo->publisher_conninfo && (strstr(uo->publisher_conninfo, "://") || strstr(uo->publisher_conninfo, "dbname"))) {
        log_error("upgrade: --publisher-conninfo: keyword=value pairs without dbname (for example \"host=db "
                  "port=5432 user=postgres\"), not a URI");
        return EXIT_USAGE;
    }
    if (uo->publisher_conninfo)
        pg_register_secrets(uo->publisher_conninfo);
    if (uo->abort_run && uo->dry_run) {
        log_error("upgrade: --abort and --dry-run: one or the other");
        return EXIT_USAGE;
    }
    const char *mode = opts_str(o, "mode");
    uo->mode = !strcmp(mode, "link") ? UPG_LINK : !strcmp(mode, "clone") ? UPG_CLONE : UPG_COPY;
    if (uo->from_version && uo->to_version && uo->to_version <= uo->from_version) {
        log_error("upgrade: --to-version %d: must be a newer major version than --from-version %d", uo->to_version,
                  uo->from_version);
        return EXIT_USAGE;
    }
    if (uo->method == UPG_PG_UPGRADE) {
        if (!need(o, "old-bindir", method) || !need(o, "new-bindir", method) || !need(o, "old-datadir", method) ||
            !need(o, "new-datadir", method))
            return EXIT_USAGE;
        if (uo->from || uo->to || uo->tools_bindir || uo->maintenance_work_mem || uo->maintenance_workers >= 0) {
            log_error("upgrade: --from, --to, --tools-bindir, --maintenance-work-mem and --maintenance-workers belong "
                      "to --method dump");
            return EXIT_USAGE;
        }
        if (uo->old_conninfo)
            pg_register_secrets(uo->old_conninfo);
    } else {
        if (!need(o, "from", method) || !need(o, "to", method))
            return EXIT_USAGE;
        if (uo->old_bindir || uo->new_bindir || uo->old_datadir || uo->new_datadir || uo->stop_old ||
            opts_flag_given(o, "mode")) {
            log_error("upgrade: --old-*/--new-* directories, --mode and --stop-old belong to --method pg_upgrade");
            return EXIT_USAGE;
        }
        warn_password("--from", uo->from);
        warn_password("--to", uo->to);
    }
    return EXIT_OK;
}

static int run(const cmd_ctx *ctx, const opts *o, pg_conn *c, void *state, cmd_result *out)
{
    (void) ctx;
    (void) o;
    (void) c;
    upgrade_options *uo = state;
    upgrade_result res;
    bool ran = uo->method == UPG_PG_UPGRADE ? upgrade_run_pg_upgrade(uo, &res)
               : uo->method == UPG_DUMP     ? upgrade_run_dump(uo, &res)
                                            : upgrade_run_logical(uo, &res);
    if (!ran) {
        upgrade_result_free(&res);
        return EXIT_FAILURE_;
    }
    upgrade_print_steps(&res);
    int rc;
    switch (res.status) {
    case UPG_ST_UPGRADED:
        log_info("upgrade: PostgreSQL %s -> %s done and proven (%d database(s), %d table(s), %lld rows)",
                 res.old_version ? res.old_version : "?", res.new_version ? res.new_version : "?",
                 res.proof.databases, res.proof.tables, (long long) res.proof.rows);
        rc = EXIT_OK;
        break;
    case UPG_ST_DRY_RUN:
        log_info("upgrade: dry run: the preflight passed; nothing was changed");
        rc = EXIT_OK;
        break;
    case UPG_ST_ABORTED:
        log_info("upgrade: the interrupted run was undone");
        rc = EXIT_OK;
        break;
    case UPG_ST_REFUSED: rc = EXIT_USAGE; break;
    default: rc = EXIT_FAILURE_; break;
    }
    out->doc = upgrade_render(uo, &res);
    upgrade_result_free(&res);
    return out->doc ? rc : EXIT_FAILURE_;
}

#define UPGRADE_USAGE                                                                                              \
    "usage: pgmemctl upgrade --method pg_upgrade --old-bindir DIR --new-bindir DIR --old-datadir DIR\n"            \
    "                        --new-datadir DIR [--mode link|copy|clone] [--jobs N] [--stop-old]\n"                 \
    "       pgmemctl upgrade --method dump --from CONNINFO --to CONNINFO [--jobs N]\n"                             \
    "                        [--maintenance-work-mem SIZE] [--maintenance-workers N]\n"                            \
    "       pgmemctl upgrade --method logical --from CONNINFO --to CONNINFO [--publisher-conninfo CONNINFO]\n"    \
    "                        [--maintenance-work-mem SIZE] [--jobs N] [--work-dir DIR] [--abort]\n"              \
    "       pgmemctl upgrade-pg16-to-pg17 …   (= upgrade --from-version 16 --to-version 17)\n"                     \
    "\n"                                                                                                           \
    "Major-version upgrade of a PostgreSQL cluster with pgvector. A preflight runs first and changes\n"            \
    "nothing: versions, pgvector installed for the new version (and its library loading), encoding,\n"             \
    "locale and data checksums, disk space, the old cluster stopped, and every storage option, column\n"           \
    "option, setting and extension of the old cluster tried on the new server. Then pg_upgrade (or\n"              \
    "pg_dump/pg_restore, or a publication and a subscription with a cutover of seconds), ALTER\n"                  \
    "EXTENSION … UPDATE, statistics, and a proof: row counts, vector\n"                                             \
    "checksums, HNSW/IVFFlat indexes valid and used, extension and server versions.\n"                             \
    "\n"                                                                                                           \
    "Exit codes: 0 upgraded and proven (or a dry run whose preflight passed, or --abort done), 1 failed or the proof\n" \
    "found differences, 2 usage error or refused by the preflight (nothing changed).\n"

/* upgrade and its presets: one table entry each, the same options and entry points */
#define UPGRADE_COMMAND(name_, section_, summary_)                                                                \
    {                                                                                                              \
        .name = name_, .section = section_, .summary = summary_, .flags = CMD_OWN_SERVERS,                        \
        .specs = cmd_upgrade_specs, .state_size = sizeof(upgrade_options), .usage = UPGRADE_USAGE,                 \
        .see_also = "See pgmemctl-upgrade(1).", .prepare = prepare, .run = run,                                   \
    }

const command cmd_upgrade =
    UPGRADE_COMMAND("upgrade", NULL, "major-version upgrade with pgvector (pg_upgrade or dump/restore), preflight and proof");
const command cmd_upgrade_preset =
    UPGRADE_COMMAND("upgrade-pg16-to-pg17", "upgrade", "the same as upgrade --from-version 16 --to-version 17");

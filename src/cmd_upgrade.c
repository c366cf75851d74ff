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

const opt_spec cmd_upgrade_specs[] = {
    {"method", 0, OPT_STRING, NULL, true, "METHOD",
     "pg_upgrade (same host) or dump (between servers); default: pg_upgrade with --old-datadir, dump with --from"},
    {"from-version", 0, OPT_INT, NULL, true, "MAJOR", "the old side must be this major version"},
    {"to-version", 0, OPT_INT, NULL, true, "MAJOR", "the new side must be this major version"},
    {"old-bindir", 0, OPT_STRING, NULL, true, "DIR", "pg_upgrade: the old version's bin directory"},
    {"new-bindir", 0, OPT_STRING, NULL, true, "DIR", "pg_upgrade: the new version's bin directory"},
    {"old-datadir", 0, OPT_STRING, NULL, true, "DIR", "pg_upgrade: the old cluster's data directory"},
    {"new-datadir", 0, OPT_STRING, NULL, true, "DIR",
     "pg_upgrade: the new cluster's data directory (absent or empty: initdb with the old settings)"},
    {"mode", 0, OPT_STRING, "copy", true, "MODE", "pg_upgrade: link, copy or clone"},
    {"stop-old", 0, OPT_BOOL, NULL, true, NULL,
     "pg_upgrade: stop a running old cluster (pg_ctl stop -m fast) once the preflight passed"},
    {"username", 0, OPT_STRING, NULL, true, "NAME",
     "pg_upgrade: the clusters' bootstrap superuser (default: the data directory's owner)"},
    {"old-conninfo", 0, OPT_STRING, NULL, true, "CONNINFO",
     "pg_upgrade: how to reach the old cluster while it still runs (default: its socket)"},
    {"from", 0, OPT_STRING, NULL, true, "CONNINFO", "dump: the source server (never modified)"},
    {"to", 0, OPT_STRING, NULL, true, "CONNINFO", "dump: the target server (new major version)"},
    {"tools-bindir", 0, OPT_STRING, NULL, true, "DIR",
     "dump: the new version's pg_dump, pg_dumpall and pg_restore (default: found by version)"},
    {"maintenance-work-mem", 0, OPT_STRING, NULL, true, "SIZE",
     "dump: maintenance_work_mem of pg_restore's sessions (index builds), e.g. 1GB (default: the target's)"},
    {"jobs", 'j', OPT_INT, "1", true, "N", "parallel jobs for pg_upgrade, pg_dump and pg_restore"},
    {"sample-rows", 0, OPT_INT, "1000", true, "N", "proof: rows per vector column in the checksum"},
    {"work-dir", 0, OPT_STRING, NULL, true, "DIR",
     "logs, sockets and dumps (default: a new /tmp/pgmemctl-upgrade-XXXXXX, kept)"},
    {"dry-run", 0, OPT_BOOL, NULL, false, NULL, "run the preflight and print the plan; change nothing"},
    {0},
};

void cmd_upgrade_help(void)
{
    printf("usage: pgmemctl upgrade --method pg_upgrade --old-bindir DIR --new-bindir DIR --old-datadir DIR\n"
           "                        --new-datadir DIR [--mode link|copy|clone] [--jobs N] [--stop-old]\n"
           "       pgmemctl upgrade --method dump --from CONNINFO --to CONNINFO [--jobs N]\n"
           "                        [--maintenance-work-mem SIZE]\n"
           "       pgmemctl upgrade-pg16-to-pg17 …   (= upgrade --from-version 16 --to-version 17)\n"
           "\n"
           "Major-version upgrade of a PostgreSQL cluster with pgvector. A preflight runs first and changes\n"
           "nothing: versions, pgvector installed for the new version (and its library loading), encoding,\n"
           "locale and data checksums, disk space, the old cluster stopped, and every storage option, column\n"
           "option, setting and extension of the old cluster tried on the new server. Then pg_upgrade (or\n"
           "pg_dump/pg_restore), ALTER EXTENSION … UPDATE, statistics, and a proof: row counts, vector\n"
           "checksums, HNSW/IVFFlat indexes valid and used, extension and server versions.\n"
           "\n"
           "Exit codes: 0 upgraded and proven (or a dry run whose preflight passed), 1 failed or the proof\n"
           "found differences, 2 usage error or refused by the preflight (nothing changed).\n\noptions:\n");
    opts_print_help(cmd_upgrade_specs, opts_count(cmd_upgrade_specs));
    printf("\nSee pgmemctl-upgrade(1).\n");
}

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

int cmd_upgrade(const global_ctx *g, int argc, char **argv)
{
    opts o;
    bool help;
    if (!opts_parse(&o, "upgrade", cmd_upgrade_specs, opts_count(cmd_upgrade_specs), argc, argv, g->cfg, &help)) {
        opts_free(&o);
        return EXIT_USAGE;
    }
    if (help) {
        cmd_upgrade_help();
        opts_free(&o);
        return EXIT_OK;
    }
    int rc = EXIT_USAGE;
    upgrade_options uo = {.from_version = opts_isset(&o, "from-version") ? (int) opts_int(&o, "from-version") : 0,
                          .to_version = opts_isset(&o, "to-version") ? (int) opts_int(&o, "to-version") : 0,
                          .old_bindir = opts_str(&o, "old-bindir"),
                          .new_bindir = opts_str(&o, "new-bindir"),
                          .old_datadir = opts_str(&o, "old-datadir"),
                          .new_datadir = opts_str(&o, "new-datadir"),
                          .stop_old = opts_bool(&o, "stop-old"),
                          .username = opts_str(&o, "username"),
                          .old_conninfo = opts_str(&o, "old-conninfo"),
                          .from = opts_str(&o, "from"),
                          .to = opts_str(&o, "to"),
                          .tools_bindir = opts_str(&o, "tools-bindir"),
                          .maintenance_work_mem = opts_str(&o, "maintenance-work-mem"),
                          .jobs = (int) opts_int(&o, "jobs"),
                          .sample_rows = (int) opts_int(&o, "sample-rows"),
                          .work_dir = opts_str(&o, "work-dir"),
                          .dry_run = opts_bool(&o, "dry-run")};
    /* a preset: upgrade-pgNN-to-pgMM fixes both versions */
    int pf, pt;
    char tail;
    if (sscanf(argv[0], "upgrade-pg%d-to-pg%d%c", &pf, &pt, &tail) == 2) {
        if ((uo.from_version && uo.from_version != pf) || (uo.to_version && uo.to_version != pt)) {
            log_error("upgrade: %s upgrades %d to %d: --from-version/--to-version contradict it", argv[0], pf, pt);
            goto done;
        }
        uo.preset = argv[0];
        uo.from_version = pf;
        uo.to_version = pt;
    }
    if (o.nargs > 0) {
        log_error("upgrade: unexpected argument \"%s\" (see pgmemctl upgrade --help)", o.args[0]);
        goto done;
    }
    if (g->conninfo && !strcmp(g->conninfo_src, "flag")) {
        log_error("upgrade: -d/--database does not apply: use --from and --to (dump) or the data directories "
                  "(pg_upgrade)");
        goto done;
    }
    const char *method = opts_str(&o, "method");
    if (!method)
        method = uo.from || uo.to ? "dump" : "pg_upgrade";
    if (!strcmp(method, "pg_upgrade"))
        uo.method = UPG_PG_UPGRADE;
    else if (!strcmp(method, "dump"))
        uo.method = UPG_DUMP;
    else {
        log_error("upgrade: unknown --method \"%s\" (expected pg_upgrade or dump)", method);
        goto done;
    }
    const char *mode = opts_str(&o, "mode");
    if (!strcmp(mode, "link"))
        uo.mode = UPG_LINK;
    else if (!strcmp(mode, "copy"))
        uo.mode = UPG_COPY;
    else if (!strcmp(mode, "clone"))
        uo.mode = UPG_CLONE;
    else {
        log_error("upgrade: unknown --mode \"%s\" (expected link, copy or clone)", mode);
        goto done;
    }
    if (uo.maintenance_work_mem && (!*uo.maintenance_work_mem ||
                                    strspn(uo.maintenance_work_mem, "0123456789kMGTB") != strlen(uo.maintenance_work_mem))) {
        log_error("upgrade: --maintenance-work-mem \"%s\": expected a size such as 512MB or 1GB",
                  uo.maintenance_work_mem);
        goto done;
    }
    if (uo.jobs < 1 || uo.jobs > 256 || uo.sample_rows < 1) {
        log_error("upgrade: --jobs must be 1..256 and --sample-rows >= 1");
        goto done;
    }
    if ((uo.from_version && uo.from_version < 10) || (uo.to_version && uo.to_version < 10) ||
        (uo.from_version && uo.to_version && uo.to_version <= uo.from_version)) {
        log_error("upgrade: --to-version must be a newer major version than --from-version (both >= 10)");
        goto done;
    }
    if (uo.method == UPG_PG_UPGRADE) {
        if (!need(&o, "old-bindir", method) || !need(&o, "new-bindir", method) || !need(&o, "old-datadir", method) ||
            !need(&o, "new-datadir", method))
            goto done;
        if (uo.from || uo.to || uo.tools_bindir || uo.maintenance_work_mem) {
            log_error("upgrade: --from, --to, --tools-bindir and --maintenance-work-mem belong to --method dump");
            goto done;
        }
        if (uo.old_conninfo)
            pg_register_secrets(uo.old_conninfo);
    } else {
        if (!need(&o, "from", method) || !need(&o, "to", method))
            goto done;
        if (uo.old_bindir || uo.new_bindir || uo.old_datadir || uo.new_datadir || uo.stop_old ||
            opts_flag_given(&o, "mode")) {
            log_error("upgrade: --old-*/--new-* directories, --mode and --stop-old belong to --method pg_upgrade");
            goto done;
        }
        warn_password("--from", uo.from);
        warn_password("--to", uo.to);
    }

    upgrade_result res;
    bool ran = uo.method == UPG_PG_UPGRADE ? upgrade_run_pg_upgrade(&uo, &res) : upgrade_run_dump(&uo, &res);
    if (!ran) {
        rc = EXIT_FAILURE_;
        upgrade_result_free(&res);
        goto done;
    }
    upgrade_print_steps(&res);
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
    case UPG_ST_REFUSED:
        rc = EXIT_USAGE;
        break;
    default:
        rc = EXIT_FAILURE_;
        break;
    }
    cJSON *doc = upgrade_render(&uo, &res);
    if (!doc || !report_print(doc))
        rc = EXIT_FAILURE_;
    cJSON_Delete(doc);
    upgrade_result_free(&res);
done:
    opts_free(&o);
    return rc;
}

/* main.c — pgmemctl's entry point: global options, the command table, exit codes. */
#include "buildinfo.h"
#include "cmd.h"
#include "config.h"
#include "log.h"
#include "pg.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const command commands[] = {
    {"migrate", "versioned schema migrations: up, down, status, repair", cmd_migrate, cmd_migrate_help,
     cmd_migrate_specs},
    {"copy", "copy a vestige SQLite memory store into PostgreSQL + pgvector", cmd_copy, cmd_copy_help,
     cmd_copy_specs},
    {"reembed", "re-encode every memory under a new embedding model, with no downtime", cmd_reembed,
     cmd_reembed_help, cmd_reembed_specs},
    {"verify", "check pgvector state for CI: versions, indexes, plans, migrations", cmd_verify, cmd_verify_help,
     cmd_verify_specs},
    {"bench", "search latency, recall@k and QPS of the store (or of scratch stores)", cmd_bench, cmd_bench_help,
     cmd_bench_specs},
    {"upgrade", "major-version upgrade with pgvector (pg_upgrade or dump/restore), preflight and proof", cmd_upgrade,
     cmd_upgrade_help, cmd_upgrade_specs},
    {"upgrade-pg16-to-pg17", "the same as upgrade --from-version 16 --to-version 17", cmd_upgrade, cmd_upgrade_help,
     cmd_upgrade_specs},
};
#define NCOMMANDS ((int) (sizeof commands / sizeof commands[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pgmemctl [global options] <command> [options]\n"
            "\n"
            "Operations for AI memory stores in PostgreSQL with pgvector. Prints one JSON document on\n"
            "stdout and progress on stderr. Exit codes: 0 success, 1 failure, 2 usage or configuration\n"
            "error, 3 completed but something was rejected or a check failed.\n"
            "\n"
            "global options:\n"
            "  -d, --database CONNINFO  libpq keyword/value string or postgresql:// URI\n"
            "                           (default: $DATABASE_URL, then `database:` in the config file,\n"
            "                           then libpq's PG* environment, service file and .pgpass)\n"
            "  -c, --config FILE        YAML config file (default: ./pgmemctl.yaml if present)\n"
            "  -q, --quiet              no progress or informational output on stderr (errors only)\n"
            "  -v, --verbose            debug output on stderr\n"
            "      --help               this help; `pgmemctl help <command>` for a command\n"
            "      --version            tool version, build kind and the linked libraries' versions\n"
            "\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-22s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nSee pgmemctl(1) and pgmemctl-<command>(1).\n");
}

static const command *find_command(const char *name)
{
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

/* Every run that reaches a command prints one JSON document: when the command ended before it
 * had a result to render (usage error, connection refused), a minimal one with the error. A
 * command asked only for --help printed text and exit 0: nothing more. */
static int finish(const char *command_name, int rc)
{
    if (rc != EXIT_OK && !report_was_printed() && !report_print_error(command_name, rc, log_last_error()))
        return EXIT_FAILURE_;
    return rc;
}

int main(int argc, char **argv)
{
    const char *database = NULL, *config_path = NULL;
    int level = LOG_INFO;
    int a = 1;
    for (; a < argc && argv[a][0] == '-'; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "-d") || !strcmp(arg, "--database") || !strcmp(arg, "-c") || !strcmp(arg, "--config")) {
            if (a + 1 >= argc) {
                fprintf(stderr, "error: %s needs a value\n", arg);
                return EXIT_USAGE;
            }
            if (arg[1] == 'd' || !strcmp(arg, "--database"))
                database = argv[++a];
            else
                config_path = argv[++a];
        } else if (!strncmp(arg, "--database=", 11)) {
            database = arg + 11;
        } else if (!strncmp(arg, "--config=", 9)) {
            config_path = arg + 9;
        } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
            level = LOG_ERROR;
        } else if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            level = LOG_DEBUG;
        } else if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(arg, "--version")) {
            char line[512];
            buildinfo_line(line, sizeof line);
            printf("%s\n", line);
            return EXIT_OK;
        } else {
            fprintf(stderr, "error: unknown global option \"%s\"\n", arg);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    log_set_level((log_level) level);
    if (a >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[a];
    if (!strcmp(name, "help")) {
        if (a + 1 >= argc) {
            usage(stdout);
            return EXIT_OK;
        }
        const command *c = find_command(argv[a + 1]);
        if (!c) {
            fprintf(stderr, "error: unknown command \"%s\"\n", argv[a + 1]);
            return EXIT_USAGE;
        }
        c->help();
        return EXIT_OK;
    }
    const command *cmd = find_command(name);
    if (!cmd) {
        log_error("unknown command \"%s\" (see pgmemctl --help)", name);
        return finish(name, EXIT_USAGE);
    }

    /* Secrets first, so nothing printed from here on can show them. */
    pg_register_secrets(database);
    pg_register_secrets(getenv("DATABASE_URL"));

    config_section sections[NCOMMANDS];
    for (int i = 0; i < NCOMMANDS; i++)
        sections[i] = (config_section){commands[i].name, commands[i].specs, opts_count(commands[i].specs)};
    config *cfg = NULL;
    if (!config_path && access("pgmemctl.yaml", F_OK) == 0)
        config_path = "pgmemctl.yaml";
    if (config_path) {
        cfg = config_load(config_path, sections, NCOMMANDS);
        if (!cfg)
            return finish(name, EXIT_USAGE);
        pg_register_secrets(config_get(cfg, NULL, "database", NULL, NULL));
    }

    const char *env_url = getenv("DATABASE_URL");
    global_ctx g = {.conninfo = NULL, .conninfo_src = "libpq defaults", .cfg = cfg};
    if (database) {
        g.conninfo = database;
        g.conninfo_src = "flag";
    } else if (env_url && *env_url) {
        g.conninfo = env_url;
        g.conninfo_src = "environment";
    } else if (cfg && config_get(cfg, NULL, "database", NULL, NULL)) {
        g.conninfo = config_get(cfg, NULL, "database", NULL, NULL);
        g.conninfo_src = "config";
    }
    int rc = cmd->run(&g, argc - a, argv + a);
    config_free(cfg);
    return finish(name, rc);
}

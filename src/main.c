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

static const command *const commands[] = {
    &cmd_migrate, &cmd_copy, &cmd_reembed, &cmd_verify, &cmd_bench, &cmd_upgrade, &cmd_upgrade_preset,
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
        fprintf(out, "  %-22s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\nSee pgmemctl(1) and pgmemctl-<command>(1).\n");
}

static const command *find_command(const char *name)
{
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i]->name, name))
            return commands[i];
    return NULL;
}

static void print_help(const command *cmd)
{
    printf("%s\noptions:\n", cmd->usage);
    opts_print_help(cmd->specs, opts_count(cmd->specs));
    printf("\n%s\n", cmd->see_also);
}

/* Has the server accept every option of o that becomes a server setting, in a transaction rolled
 * back at once. EXIT_OK, or EXIT_USAGE naming the option, its value and the server's words
 * (EXIT_FAILURE_ when the check could not run). */
static int check_settings(const cmd_ctx *ctx, const opts *o, pg_conn *c)
{
    const char *names[16], *values[16];
    char buf[16][64];
    int idx[16], n = 0;
    for (int i = 0; i < o->n && n < 16; i++) {
        if (!o->specs[i].setting || !opts_setting_value(o, i, buf[n], sizeof buf[n]))
            continue;
        names[n] = o->specs[i].setting;
        values[n] = buf[n];
        idx[n++] = i;
    }
    int bad = pg_settings_check(c, names, values, n);
    if (bad < 0)
        return EXIT_OK;
    char err[512];
    pg_error_text(c, err, sizeof err);
    if (bad == n) {
        log_error("%s: checking the server settings: %s", ctx->section, err);
        return EXIT_FAILURE_;
    }
    const opt_value *v = &o->values[idx[bad]];
    log_error("%s: --%s %s: the server does not accept it as %s: %s", ctx->section, o->specs[idx[bad]].name, v->text,
              names[bad], err);
    return EXIT_USAGE;
}

/* Everything a command shares: its options parsed and checked, --help, prepare, the connection
 * and the server's check of settings for CMD_NEEDS_DB, run, the result printed on stdout. */
static int run_command(const command *cmd, const cmd_ctx *ctx, int argc, char **argv)
{
    opts o;
    bool help;
    if (!opts_parse(&o, ctx->section, cmd->specs, opts_count(cmd->specs), argc, argv, config_source(ctx->cfg), &help)) {
        opts_free(&o);
        return EXIT_USAGE;
    }
    if (help) {
        print_help(cmd);
        opts_free(&o);
        return EXIT_OK;
    }
    if ((cmd->flags & CMD_OWN_SERVERS) && ctx->conninfo && !strcmp(ctx->conninfo_src, "flag")) {
        log_error("%s: -d/--database does not apply: use --from and --to (dump) or the data directories "
                  "(pg_upgrade)", ctx->section);
        opts_free(&o);
        return EXIT_USAGE;
    }
    void *state = calloc(1, cmd->state_size ? cmd->state_size : 1);
    bool needs_db = (cmd->flags & CMD_NEEDS_DB) != 0;
    pg_conn *c = NULL;
    cmd_result res = {0};
    int rc = !state ? EXIT_FAILURE_ : cmd->prepare ? cmd->prepare(ctx, &o, state, &needs_db) : EXIT_OK;
    if (rc == EXIT_OK && needs_db) {
        char app[64];
        snprintf(app, sizeof app, "pgmemctl %s", ctx->section);
        c = pg_connect(ctx->conninfo, app, opts_has(&o, "wait") ? opts_double(&o, "wait") : 0);
        rc = c ? check_settings(ctx, &o, c) : EXIT_FAILURE_;
        if (rc == EXIT_OK && (cmd->flags & CMD_READ_ONLY) && !pg_run(c, "SET default_transaction_read_only = on", 0, NULL)) {
            char err[512];
            log_error("%s: making the session read-only: %s", ctx->section, pg_error_text(c, err, sizeof err));
            rc = EXIT_FAILURE_;
        }
    }
    if (rc == EXIT_OK)
        rc = cmd->run(ctx, &o, c, state, &res);
    if (res.doc && !report_print(res.doc))
        rc = EXIT_FAILURE_;
    else if (!res.doc && res.text && !report_print_text(res.text))
        rc = EXIT_FAILURE_;
    cJSON_Delete(res.doc);
    free(res.text);
    if (state && cmd->release)
        cmd->release(state);
    free(state);
    pg_close(c);
    opts_free(&o);
    return rc;
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
        print_help(c);
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
        sections[i] = (config_section){commands[i]->name, commands[i]->specs, opts_count(commands[i]->specs)};
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
    cmd_ctx g = {.name = name, .section = cmd->section ? cmd->section : cmd->name, .conninfo = NULL, .conninfo_src = "libpq defaults", .cfg = cfg};
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
    int rc = run_command(cmd, &g, argc - a, argv + a);
    config_free(cfg);
    return finish(name, rc);
}

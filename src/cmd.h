/* cmd.h — the command table: what each command declares (its options, what it needs from main,
 * its prepare and run entry points), the context every command receives, and the process exit
 * codes. main.c does the setup every command shares (parsing and checking the options, --help,
 * connecting, the server's check of settings, printing the result); only main.c and cmd_*.c
 * turn results into exit codes. */
#ifndef PGMEMCTL_CMD_H
#define PGMEMCTL_CMD_H

#include "config.h"
#include "opts.h"
#include "pg.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

enum {
    EXIT_OK = 0,        /* success (including "nothing to do") */
    EXIT_FAILURE_ = 1,  /* the run failed */
    EXIT_USAGE = 2,     /* usage or configuration error, refused before anything was written */
    EXIT_REJECTED = 3,  /* completed, but rows were rejected or a check failed */
};

/* command.flags */
enum {
    /* main connects (conninfo of the context, waiting up to the command's --wait) before run, and
     * before that has the server accept every option that declares a server setting
     * (opt_spec.setting); a refusal is exit 2 naming the option. */
    CMD_NEEDS_DB = 1 << 0,
    /* the command never writes to the database (verify; bench on the target store) */
    CMD_READ_ONLY = 1 << 1,
    /* -d/--database does not apply: the command names its servers in its own options (upgrade) */
    CMD_OWN_SERVERS = 1 << 2,
};

typedef struct {
    const char *name;         /* the command as typed, e.g. "copy" or "upgrade-pg16-to-pg17" */
    const char *section;      /* its options' section: config file, environment, messages ("upgrade") */
    const char *conninfo;     /* -d > DATABASE_URL > config `database:`; NULL: libpq defaults */
    const char *conninfo_src; /* "flag", "environment", "config" or "libpq defaults" */
    const config *cfg;        /* may be NULL */
} cmd_ctx;

/* What a run leaves for main to print on stdout: one JSON document, or a text report instead
 * (verify --format human/junit/tap). main prints and frees whichever is set; neither (an error
 * before there was a result) makes main print the minimal error document. */
typedef struct {
    cJSON *doc;
    char *text;
} cmd_result;

typedef struct {
    const char *name;
    const char *section;     /* the options' config section and message prefix; NULL: name */
    const char *summary;
    unsigned flags;          /* CMD_* */
    const opt_spec *specs;   /* the command's options ({0}-terminated): parsing, config, --help */
    const char *usage;       /* --help: the text before the option list */
    const char *see_also;    /* --help: the line after it */
    size_t state_size;       /* bytes of the command's own state, allocated zeroed by main */
    /* Checks what the option table cannot (positional arguments, options that go together,
     * files to read) before anything connects, and fills the command's state (state_size
     * bytes, zeroed; what it holds is released by release, also after a failure). May clear
     * *needs_db (bench comparing two files). Returns EXIT_OK to go on, or the exit code after
     * logging the reason. */
    int (*prepare)(const cmd_ctx *ctx, const opts *o, void *state, bool *needs_db);
    /* The work. conn is main's connection for CMD_NEEDS_DB commands (NULL otherwise; owned by
     * main). Fills *result (zeroed by main) and returns the exit code. */
    int (*run)(const cmd_ctx *ctx, const opts *o, pg_conn *conn, void *state, cmd_result *result);
    void (*release)(void *state); /* frees what the state holds (not the state itself); NULL: nothing */
} command;

/* The commands (cmd_*.c) and their option tables (also read by the tests and the fuzz targets). */
extern const command cmd_migrate, cmd_copy, cmd_reembed, cmd_verify, cmd_bench, cmd_upgrade, cmd_upgrade_preset;
extern const opt_spec cmd_migrate_specs[], cmd_copy_specs[], cmd_reembed_specs[], cmd_verify_specs[],
    cmd_bench_specs[], cmd_upgrade_specs[];

#endif

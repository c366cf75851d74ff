/* cmd.h — the command table's types, the global context every command receives, and the
 * process exit codes. Only main.c and cmd_*.c turn results into exit codes. */
#ifndef PGMEMCTL_CMD_H
#define PGMEMCTL_CMD_H

#include "config.h"
#include "opts.h"

enum {
    EXIT_OK = 0,        /* success (including "nothing to do") */
    EXIT_FAILURE_ = 1,  /* the run failed */
    EXIT_USAGE = 2,     /* usage or configuration error, refused before anything was written */
    EXIT_REJECTED = 3,  /* completed, but rows were rejected or a check failed */
};

typedef struct {
    const char *conninfo;     /* -d > DATABASE_URL > config `database:`; NULL: libpq defaults */
    const char *conninfo_src; /* "flag", "environment", "config" or "libpq defaults" */
    const config *cfg;        /* may be NULL */
} global_ctx;

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(const global_ctx *g, int argc, char **argv); /* argv[0] is the command name */
    void (*help)(void);
    const opt_spec *specs; /* the command's options ({0}-terminated), for config validation */
} command;

/* Commands (cmd_*.c). */
int cmd_migrate(const global_ctx *g, int argc, char **argv);
void cmd_migrate_help(void);
extern const opt_spec cmd_migrate_specs[];

int cmd_copy(const global_ctx *g, int argc, char **argv);
void cmd_copy_help(void);
extern const opt_spec cmd_copy_specs[];

int cmd_reembed(const global_ctx *g, int argc, char **argv);
void cmd_reembed_help(void);
extern const opt_spec cmd_reembed_specs[];

int cmd_bench(const global_ctx *g, int argc, char **argv);
void cmd_bench_help(void);
extern const opt_spec cmd_bench_specs[];

int cmd_verify(const global_ctx *g, int argc, char **argv);
void cmd_verify_help(void);
extern const opt_spec cmd_verify_specs[];

int cmd_upgrade(const global_ctx *g, int argc, char **argv);
void cmd_upgrade_help(void);
extern const opt_spec cmd_upgrade_specs[];

#endif

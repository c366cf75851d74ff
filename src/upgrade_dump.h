/* upgrade_dump.h — the dump method's steps that the logical method runs too (upgrade_logical.c):
 * the preflight (connections, versions, the new version's client tools, databases, empty
 * targets, the compatibility probe), the roles, and its client tools run with a side's
 * connection parameters. */
#ifndef PGMEMCTL_UPGRADE_DUMP_H
#define PGMEMCTL_UPGRADE_DUMP_H

#include "pg.h"
#include "upgrade.h"

#include <stdbool.h>

typedef struct upgrade_dump_ctx upgrade_dump_ctx;

/* A context for o (its from, to, tools_bindir, maintenance_work_mem) filling res; o and res must
 * outlive it. NULL when out of memory. Free with upgrade_dump_close. */
upgrade_dump_ctx *upgrade_dump_open(const upgrade_options *o, upgrade_result *res);

/* The dump method's preflight: connects to both sides (kept open, upgrade_dump_conn), fills
 * res's versions, places and databases and adds its checks (source, target, old_version,
 * new_version, tools, maintenance_work_mem, target_empty, extensions_available,
 * options_accepted). Returns false when it could not go on (a failed check says why, or an error
 * was logged); the checks passed only when upgrade_checks_passed(res) too. Changes nothing. */
bool upgrade_dump_preflight(upgrade_dump_ctx *x);

/* pg_dumpall --roles-only from the source applied to the target (see the dump method in
 * pgmemctl-upgrade(1)). Returns false with res failed. */
bool upgrade_dump_copy_roles(upgrade_dump_ctx *x);

/* Runs the client tool argv[0] (pg_dump, pg_restore …) of the new version with the connection
 * parameters of the target (target) or the source in its environment, output into LOG in the work
 * directory; *text (may be NULL) gets that output (caller frees). Returns its exit status, -1
 * when it could not run. */
int upgrade_dump_tool(upgrade_dump_ctx *x, bool target, const char *const *argv, const char *log, char **text);

/* The preflight's connection to the target's (target) or the source's maintenance database;
 * NULL before the preflight connected. Owned by x. */
pg_conn *upgrade_dump_conn(const upgrade_dump_ctx *x, bool target);

/* The source's databases (sorted by name) and, per database, whether it exists (empty) on the
 * target: arrays owned by x. Returns their count (0 before the preflight listed them). */
int upgrade_dump_databases(const upgrade_dump_ctx *x, char ***dbs, bool **exists);

/* The client tools' version ("17.11"); NULL before the preflight found them. Owned by x. */
const char *upgrade_dump_tools_version(const upgrade_dump_ctx *x);

/* Closes the connections and frees x; NULL allowed. */
void upgrade_dump_close(upgrade_dump_ctx *x);

#endif

/* upgrade_logical.h — the logical method's pieces: its run (upgrade_logical.c) and the state
 * it keeps in the work directory so that --abort or a rerun can undo an interrupted run
 * (upgrade_logical_state.c). The state file holds no password. */
#ifndef PGMEMCTL_UPGRADE_LOGICAL_H
#define PGMEMCTL_UPGRADE_LOGICAL_H

#include "upgrade.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

/* The names pgmemctl gives what it creates: the publication in every old database, the
 * subscription in every new one, and the slot prefix (the slot of a database is
 * pgmemctl_upgrade_<the old database's oid>). */
#define LOGICAL_PUBLICATION "pgmemctl_upgrade"
#define LOGICAL_SUBSCRIPTION "pgmemctl_upgrade"
#define LOGICAL_SLOT_PREFIX "pgmemctl_upgrade_"
#define LOGICAL_STATE_FILE "logical-state.json"

/* One database of the run. */
typedef struct {
    char *name;
    bool created_on_new;      /* pgmemctl created it on the new side (undo: DROP DATABASE) */
    bool schema_started;      /* the schema restore into it began (undo: drop what is not in *_before) */
    char **schemas_before;    /* an existing new database: its schemas, extensions and types before */
    int nschemas_before;
    char **extensions_before;
    int nextensions_before;
    char **types_before;      /* format_type of user types (not of an extension, not a table's row type) */
    int ntypes_before;
    unsigned subscription_oid; /* on the new side; 0 unknown (its tablesync slots are pg_<oid>_sync_…) */
    bool write_blocked;       /* ALTER DATABASE … SET default_transaction_read_only = on was (being) run */
} lstate_db;

/* The state file (JSON, work directory, mode 0600):
 *   {"format": "pgmemctl-upgrade-logical/1", "from": CONNINFO, "to": CONNINFO (password-free),
 *    "phase": "schema"|"initial_copy"|"index_build"|"catch_up"|"cutover"|"completed",
 *    "completed": bool, "databases": [{"name", "created_on_new", "schema_started",
 *    "schemas_before": [], "extensions_before": [], "types_before": [], "subscription_oid",
 *    "write_blocked"}]} */
typedef struct {
    char *path;
    char *from, *to;
    char *phase;
    bool completed;           /* the cutover dropped the subscriptions: the new side is the live one */
    lstate_db *dbs;
    int ndbs;
} lstate;

/* Reads path into *st (st->path set even when the file does not exist: *exists false, st empty).
 * Returns false (logged) when the file exists but cannot be read or parsed. Free with lstate_free. */
bool lstate_load(const char *path, lstate *st, bool *exists);

/* Writes st to st->path atomically (a temporary file, fsync, rename). Returns false (logged). */
bool lstate_save(const lstate *st);

/* Sets st->phase (copied) and saves. */
bool lstate_phase(lstate *st, const char *phase);

/* Adds an empty entry for database name; returns it, NULL when out of memory. */
lstate_db *lstate_add_db(lstate *st, const char *name);

/* Removes the file; frees nothing. */
void lstate_remove(const lstate *st);

void lstate_free(lstate *st);

/* Undoes what a logical run created, as far as it got, in this order: the subscriptions named
 * pgmemctl_upgrade on the new side (DROP SUBSCRIPTION, which drops their slots on the old side;
 * when that fails, disabled and dropped with slot_name = NONE); on the old side the write block
 * of every database st says was blocked (ALTER DATABASE … RESET default_transaction_read_only),
 * the publication pgmemctl_upgrade in every database and the slots pgmemctl_upgrade_* and the
 * tablesync slots of the recorded subscriptions (their walsenders terminated first); on the new
 * side every database st says pgmemctl created (DROP DATABASE … WITH (FORCE)) and, in an existing
 * one whose schema restore began, every schema, extension, table, view, sequence, routine and
 * type not there before. With st->completed only the old side's publication and slots are
 * removed: the new side is in use and the old one stays blocked. Each step done is appended to
 * undone (an array of strings). Reaches the sides with o->from and o->to. Returns false (logged)
 * when a step failed; the others are still tried. */
bool logical_undo(const upgrade_options *o, const lstate *st, cJSON *undone);

#endif

/* migrate.h — versioned schema migrations: NNNN_name.up.sql / NNNN_name.down.sql from the
 * binary (embedded at build time) or a directory, tracked in pgmemctl_schema_migrations with
 * SHA-256 checksums, applied under a session advisory lock. */
#ifndef PGMEMCTL_MIGRATE_H
#define PGMEMCTL_MIGRATE_H

#include "pg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIGRATE_TABLE "pgmemctl_schema_migrations"
#define MIGRATE_NO_TX_MARKER "-- pgmemctl:no-transaction"
/* Session advisory lock key for migrations: the bytes "pgmemmig". */
#define MIGRATE_LOCK_KEY INT64_C(0x70676d656d6d6967)

typedef struct {
    int version;
    char *name;                  /* "init" for 0001_init.up.sql */
    char *up_file, *down_file;   /* display names; down_file NULL when there is no .down.sql */
    char *up_sql, *down_sql;     /* file contents, NUL-terminated; down_sql NULL when missing */
    char checksum[65];           /* migration_checksum of the .up.sql */
    bool up_no_tx, down_no_tx;   /* first line is MIGRATE_NO_TX_MARKER */
} migration;

typedef struct {
    migration *items;            /* sorted by version */
    int n;
    char *origin;                /* "embedded" or the directory path */
} migration_set;

/* Parses "NNNN_name.up.sql" / "NNNN_name.down.sql" (NNNN = 1+ digits, name = [A-Za-z0-9_-]+).
 * On success sets *version, *is_up and *name (newly allocated, caller frees) and returns true;
 * returns false for any other file name (no allocation). */
bool migration_parse_name(const char *fname, int *version, char **name, bool *is_up);

/* SHA-256 (OpenSSL EVP) of sql with every CRLF turned into LF, as 64 lower-case hex chars + NUL.
 * Returns false only when the hash library fails. */
bool migration_checksum(const char *sql, size_t len, char out[65]);

/* True when the first line of sql is exactly MIGRATE_NO_TX_MARKER (CR and trailing spaces ignored). */
bool migration_is_no_tx(const char *sql);

/* Splits a SQL script into statements on top-level semicolons, respecting '…' (with ''),
 * E'…' (with backslash escapes), "…", $tag$…$tag$, -- and nested block comments. Statements
 * that hold only white space and comments are dropped. *out receives a newly allocated array
 * of newly allocated strings (free with sql_split_free); returns the count, -1 when out of
 * memory or a quote/comment is unterminated (no allocation left behind). */
int sql_split(const char *sql, char ***out);
void sql_split_free(char **stmts, int n);

/* Loads migrations from dir, or the embedded set when dir is NULL. Errors (logged, returns
 * false): unreadable directory or file, a file in dir that looks like a migration but whose
 * name does not parse, two files for the same version and direction, a .down.sql without its
 * .up.sql, two names for one version. Other files are ignored. Free with migration_set_free. */
bool migration_set_load(const char *dir, migration_set *out);
void migration_set_free(migration_set *s);

/* One row of the tracking table. */
typedef struct {
    int version;
    char *name, *checksum, *applied_at;
    int64_t execution_ms;
    bool success;
} migration_row;

/* Reads pgmemctl_schema_migrations (through the search_path) ordered by version; a missing
 * table gives no rows. Only reads. On error logs "could not read …" and returns false. *rows is
 * newly allocated (free with migrate_rows_free). */
bool migrate_read_rows(pg_conn *c, migration_row **rows, int *nrows);
void migrate_rows_free(migration_row *rows, int n);

typedef enum { MS_APPLIED, MS_PENDING, MS_FAILED, MS_CHANGED, MS_FILE_MISSING } migration_state;
const char *migration_state_name(migration_state s);

typedef struct {
    int version;
    const char *name;            /* from the file, else from the row */
    migration_state state;
    const migration *file;       /* NULL when the file is missing */
    const migration_row *row;    /* NULL when pending */
} migration_status;

typedef enum { MIGRATE_UP, MIGRATE_DOWN, MIGRATE_STATUS, MIGRATE_REPAIR } migrate_action;

typedef struct {
    migrate_action action;
    int to;                      /* target version; -1 when not given */
    int steps;                   /* down: how many (default 1 when neither to nor steps) */
    int repair_version;
    bool dry_run;
    double lock_timeout;         /* seconds */
} migrate_request;

typedef struct {
    int version;
    const char *name;            /* owned by the migration_set */
    bool up;                     /* direction */
    bool ok;
    double seconds;
    const char *sql;             /* the SQL (owned by the set), for dry runs */
    const char *file;
} migrate_step;

typedef enum {
    MIGRATE_OK = 0,              /* done, or nothing to do */
    MIGRATE_FAILED = 1,          /* a migration failed, or the store is in a failed state */
    MIGRATE_REFUSED = 2          /* refused before anything ran: changed file, missing .down.sql … */
} migrate_outcome;

typedef struct {
    migrate_outcome outcome;
    migrate_step *steps;
    int nsteps;
    int version_before, version_after;     /* highest successfully applied version, 0 if none */
    migration_row *rows;                    /* tracking rows read (after the run for status) */
    int nrows;
    migration_status *status;               /* MIGRATE_STATUS: one per known version */
    int nstatus;
    char message[2048];                     /* why it failed or was refused; repair: what it did */
    bool lock_waited;
} migrate_result;

/* Runs req against c using set. Never exits; logs progress and failures on stderr (with the
 * file name and SQLSTATE); fills res (release with migrate_result_free). The session advisory
 * lock is held for the whole run (not for dry runs or status) and released before returning. */
void migrate_run(pg_conn *c, const migration_set *set, const migrate_request *req, migrate_result *res);
void migrate_result_free(migrate_result *res);

/* Computes each version's state from the files and the tracking rows (pure). *out is newly
 * allocated (free()), sorted by version; returns the count or -1 when out of memory. */
int migrate_compute_status(const migration_set *set, const migration_row *rows, int nrows,
                           migration_status **out);

#endif

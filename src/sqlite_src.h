/* sqlite_src.h — a SQLite memory store opened strictly read-only: table and column discovery,
 * a path-independent identity, and prepared statements for streaming reads in rowid order. */
#ifndef PGMEMCTL_SQLITE_SRC_H
#define PGMEMCTL_SQLITE_SRC_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    sqlite3 *db;
    char *path;          /* as given (without a "sqlite:" prefix) */
} sqlite_src;

/* Opens path ("PATH" or "sqlite:PATH") read-only (SQLITE_OPEN_READONLY, "mode=ro" URI; the file
 * is never written). Checks that it is a SQLite database. Returns false after logging the
 * reason with the path. Close with sqlite_src_close. */
bool sqlite_src_open(sqlite_src *s, const char *path_or_uri);
void sqlite_src_close(sqlite_src *s);

/* True when a table (or view) of that name exists. */
bool sqlite_src_has_table(sqlite_src *s, const char *table);

/* Column names of table in declaration order (PRAGMA table_info). *names is a newly allocated
 * array of newly allocated strings (free with sqlite_src_free_names); returns the count, or -1
 * on error (logged). */
int sqlite_src_columns(sqlite_src *s, const char *table, char ***names);
void sqlite_src_free_names(char **names, int n);

/* Every table name in the file (sqlite_master type 'table', FTS virtual tables included),
 * sorted; same ownership as sqlite_src_columns. */
int sqlite_src_tables(sqlite_src *s, char ***names);

/* Number of rows of table, or -1 on error (logged). */
int64_t sqlite_src_count(sqlite_src *s, const char *table);

/* The store id, independent of its path: hex SHA-256 (OpenSSL) of "vestige\n" and the id of its
 * first knowledge_nodes row (lowest rowid) and a newline. It is the key of the store's
 * checkpoints, not proof that a store is the one copied: a backup or a fork shares it, and copy
 * checks the rows up to each checkpoint before it resumes (copy_identity.c). Moving or copying
 * the file keeps it, and so does appending memories; deleting the store's first memory changes
 * it (a re-run then treats the store as new and takes the conflict-safe path). An empty store's
 * id changes with its first memory. out: 65 bytes. */
bool sqlite_src_identity(sqlite_src *s, char out[65]);

/* Prepares sql (logged on error, with the path). Caller finalizes with sqlite3_finalize. */
sqlite3_stmt *sqlite_src_prepare(sqlite_src *s, const char *sql);

#endif

/* upgrade_compat.h — preflight of a major upgrade: finds what the old cluster stores that the new
 * server would reject when the schema is restored (pg_upgrade and dump/restore both recreate it
 * from a schema dump): table, view, materialized-view and index storage options (reloptions),
 * column options (attoptions), per-database and per-role settings (pg_db_role_setting), index
 * access methods, and extensions (available, version high enough, an update path to the newest).
 * Each distinct usage is tried on the new server inside one transaction that is rolled back, so
 * the new server is left exactly as it was. */
#ifndef PGMEMCTL_UPGRADE_COMPAT_H
#define PGMEMCTL_UPGRADE_COMPAT_H

#include "pg.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef enum {
    COMPAT_RELOPTION,  /* WITH (name=value) of a table, matview, view or index */
    COMPAT_ATTOPTION,  /* ALTER COLUMN … SET (name=value) */
    COMPAT_SETTING,    /* ALTER DATABASE/ROLE … SET name = value */
    COMPAT_INDEX_AM,   /* an index access method (hnsw, ivfflat, …) in use */
    COMPAT_EXTENSION,  /* an installed extension and its extversion */
} compat_kind;

/* One distinct usage found on the old cluster. */
typedef struct {
    compat_kind kind;
    char *relkind;     /* RELOPTION: "table", "matview", "view" or "index"; else NULL */
    char *am;          /* RELOPTION on an index, INDEX_AM: the access method name; else NULL */
    char *name;        /* option / setting / extension name (for INDEX_AM the AM name) */
    char *value;       /* option / setting value, extension version; NULL for INDEX_AM */
    char *example;     /* the first object using it, for messages: "db.public.items.id",
                          "db.public.items_hnsw", "database db", "role r in database db" */
    int count;         /* objects using it (over all collected databases) */
} compat_item;

typedef struct {
    compat_item *items;
    int n, cap;
} compat_list;

/* Adds every distinct usage found in the database c is connected to (named dbname) to out
 * (merging with what is already there: count adds up, example stays the first). Options of
 * pg_catalog/information_schema/pg_toast/pg_temp objects and of extension members (and of their
 * indexes) are skipped; so are toast reloptions (WITH (toast.x = …)), which are stored on the toast
 * relation. Column options come from tables, views, materialized views and foreign tables. With
 * cluster_wide, also collects pg_db_role_setting (every database and role; call it with true for
 * one database only). Returns false on a query error (logged). */
bool compat_collect(pg_conn *c, const char *dbname, bool cluster_wide, compat_list *out);
void compat_list_free(compat_list *l);

typedef enum {
    COMPAT_EXT_SAME_OR_UPDATE, /* pg_upgrade: the old extversion is kept, so the new server needs an
                                  update path (pg_extension_update_paths) from it to the default
                                  version, or to be the same version */
    COMPAT_EXT_CREATE_NEWER,   /* dump/restore: CREATE EXTENSION makes the default version, which
                                  must be >= the old extversion (numeric dotted order) */
} compat_ext_rule;

/* One usage the new server rejects. */
typedef struct {
    const compat_item *item; /* points into the list given to compat_probe */
    char *error;             /* the server's message, or pgmemctl's reason ("not available") */
    char *sqlstate;          /* "" when the reason is pgmemctl's own */
    char *statement;         /* the probe statement that failed, NULL for extension checks */
} compat_problem;

typedef struct {
    int tried;               /* items probed */
    compat_problem *problems;
    int nproblems, cap;
    char *server_version;    /* the new server's server_version, e.g. "17.11" */
    int skipped;             /* items not probed (logged as warnings): an index option or access
                                method whose method exists on the new server but takes none of
                                the scratch columns; not counted in tried, not a problem */
} compat_result;

/* Tries every item of l on the server c is connected to (the new major version), in one
 * transaction that it rolls back (a savepoint per item): reloptions via CREATE TABLE/VIEW/
 * MATERIALIZED VIEW … WITH (…) or CREATE INDEX … USING am (column) WITH (…) on a scratch table
 * whose columns cover the common types (int, text, tsvector, int4range, int[] and, when the
 * extension `vector` is available, vector(3)); attoptions via ALTER TABLE … ALTER COLUMN … SET;
 * settings via ALTER DATABASE <current> SET; index AMs by creating an index without options;
 * extensions by pg_available_extensions (default version) and pg_extension_update_paths per
 * ext_rule, and the library loading by CREATE EXTENSION when not installed (rolled back). Option
 * and setting values are given as string literals (every reloption type and setting accepts one);
 * role settings are tried as database settings too. For an index, the first scratch column that
 * takes an index of the method (with its default operator class, else the first other class of
 * the method for the column's type) is used: a method that does not exist is a problem with the
 * server's error; one that exists but fits no scratch column is not probed (counted in skipped,
 * warning logged). Extensions come first, so the loading test sees the database as it is;
 * problems are in the order of l. Nothing is left behind. Returns
 * false only when the probe could not run (connection error, or a schema pgmemctl_compat_probe
 * exists already; logged); each rejection is a problem in *out. Release with compat_result_free. */
bool compat_probe(pg_conn *c, const compat_list *l, compat_ext_rule ext_rule, compat_result *out);
void compat_result_free(compat_result *r);

/* One line per problem (each ending in a newline), e.g.
 *   column option pg_attver=22466368 (on db.public.items.id, 12 columns): ERROR 22023 unrecognized
 *   parameter "pg_attver"
 * Newly allocated, caller frees; "" when none. */
char *compat_describe(const compat_result *r);

/* [{"kind", "name", "value", "example", "count", "error", "sqlstate", "statement"}], one object
 * per problem; kind is "reloption", "attoption", "setting", "index_am" or "extension"; each object
 * also has "relkind" and "am" (null when the item has none). NULL when out of memory. Caller owns. */
cJSON *compat_render(const compat_result *r);

#endif

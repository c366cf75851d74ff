/* verify_checks.h — internal to verify: one function per check kind, and the small helpers they
 * share for filling a verify_result. Each check runs inside the caller's READ ONLY transaction
 * and savepoint; it may leave the transaction aborted (the caller rolls back to the savepoint). */
#ifndef PGMEMCTL_VERIFY_CHECKS_H
#define PGMEMCTL_VERIFY_CHECKS_H

#include "verify.h"

/* Sets *field to a newly allocated printf result (replacing and freeing the old value). */
void vr_set(char **field, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Marks r failed with message "<what>: <server error> (SQLSTATE xxxxx)" from c's last error. */
void vr_fail_sql(verify_result *r, pg_conn *c, const char *what);

/* Marks r failed with a printf message. */
void vr_fail(verify_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends "; "-separated text to *field (used to collect several mismatches in one message). */
void vr_append(char **field, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The details object of r, created on first use (owned by r). */
cJSON *vr_details(verify_result *r);

/* Resolves a [schema.]table name the way to_regclass() does (unquoted parts are folded to lower
 * case; "Quoted" parts kept). Returns the relation's name as the server quotes it
 * (regclass::text, schema-qualified when not on the search_path: safe to paste into SQL), newly
 * allocated; NULL when it does not exist (r unchanged) or on a query error (r failed). */
char *vr_resolve_table(pg_conn *c, const char *name, verify_result *r, bool *error);

/* Splits "[schema.]table.column" at its last dot into newly allocated table and column parts;
 * false when there is no dot. */
bool vr_split_column_ref(const char *ref, char **table, char **column);

/* The checks. Each sets r->status (VR_PASS, VR_FAIL or VR_SKIP) and fills observed, expected,
 * message, hint and details as it sees fit. Severity is applied by the caller. */
void verify_check_server_version(pg_conn *c, const verify_check *k, verify_result *r);
void verify_check_setting(pg_conn *c, const verify_check *k, verify_result *r);
void verify_check_extension(pg_conn *c, const verify_check *k, verify_result *r);
void verify_check_access_method(pg_conn *c, const verify_check *k, verify_result *r);
void verify_check_column(pg_conn *c, const verify_check *k, verify_result *r);
void verify_check_index(pg_conn *c, const verify_check *k, verify_result *r);
void verify_check_plan(pg_conn *c, const verify_check *k, verify_result *r);
void verify_check_migrations(pg_conn *c, const verify_check *k, verify_result *r);
void verify_check_row_count(pg_conn *c, const verify_check *k, verify_result *r);
void verify_check_sql(pg_conn *c, const verify_check *k, verify_result *r);

/* Progress of a CREATE INDEX / REINDEX on table_oid (pg_stat_progress_create_index), for the
 * index index_oid (or any index when index_oid is NULL): a new JSON object {pid, command, phase,
 * blocks_done, blocks_total, tuples_done, tuples_total, lockers_done, lockers_total} and a
 * one-line summary in *line (newly allocated); NULL when no build is running. */
cJSON *verify_build_progress(pg_conn *c, const char *table_oid, const char *index_oid, char **line);

#endif

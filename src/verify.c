/* verify.c — runs a verify spec: rounds of checks in READ ONLY transactions with one savepoint
 * per check, retries of failing checks until --retry-timeout, and the catalog checks that need
 * no more than a query or two (server version, settings, extensions, access methods, columns,
 * migrations, row counts, custom SQL). Index and plan checks live in verify_index.c and
 * verify_plan.c. */
#include "verify.h"
#include "log.h"
#include "migrate.h"
#include "progress.h"
#include "verify_checks.h"
#include "verify_cmp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- result helpers ---------------------------------------------------------------------- */

static char *vfmt(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t) n + 1);
    if (s)
        vsnprintf(s, (size_t) n + 1, fmt, ap);
    return s;
}

void vr_set(char **field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    free(*field);
    *field = s;
}

void vr_append(char **field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    if (!s)
        return;
    if (!*field) {
        *field = s;
        return;
    }
    size_t a = strlen(*field), b = strlen(s);
    char *n = realloc(*field, a + b + 3);
    if (n) {
        memcpy(n + a, "; ", 2);
        memcpy(n + a + 2, s, b + 1);
        *field = n;
    }
    free(s);
}

void vr_fail(verify_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    free(r->message);
    r->message = s;
    r->status = VR_FAIL;
}

void vr_fail_sql(verify_result *r, pg_conn *c, const char *what)
{
    char err[512];
    vr_fail(r, "%s: %s", what, pg_error_text(c, err, sizeof err));
}

cJSON *vr_details(verify_result *r)
{
    if (!r->details)
        r->details = cJSON_CreateObject();
    return r->details;
}

char *vr_resolve_table(pg_conn *c, const char *name, verify_result *r, bool *error)
{
    bool found;
    *error = false;
    char *q = pg_query_text(c, "SELECT to_regclass($1)::text", 1, (const char *[]){name}, &found);
    if (!found && pg_errmsg(c)[0]) {
        vr_fail_sql(r, c, "could not look up the table");
        *error = true;
    }
    return q;
}

bool vr_split_column_ref(const char *ref, char **table, char **column)
{
    const char *dot = strrchr(ref, '.');
    if (!dot || dot == ref || !dot[1])
        return false;
    *table = strndup(ref, (size_t) (dot - ref));
    *column = strdup(dot + 1);
    return *table && *column;
}

/* "15.20" from server_version_num (two-part versions since PostgreSQL 10). */
static void server_version_text(pg_conn *c, char *buf, size_t len)
{
    int v = pg_server_version(c);
    if (v >= 100000)
        snprintf(buf, len, "%d.%d", v / 10000, v % 10000);
    else
        snprintf(buf, len, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
}

/* ---- simple checks ----------------------------------------------------------------------- */

/* Evaluates constraint against observed in domain and sets the status (fail with why when the
 * comparison could not be made). */
static void judge(verify_result *r, const char *constraint, vcmp_domain d, const char *observed, const char *what)
{
    bool holds = false;
    char why[256];
    if (!vcmp_eval(constraint, d, observed, &holds, why, sizeof why)) {
        vr_fail(r, "%s: cannot compare \"%s\" with \"%s\": %s", what, observed, constraint, why);
        return;
    }
    if (holds) {
        r->status = VR_PASS;
        vr_set(&r->message, "%s %s satisfies %s", what, observed, constraint);
    } else {
        vr_fail(r, "%s %s does not satisfy %s", what, observed, constraint);
    }
}

void verify_check_server_version(pg_conn *c, const verify_check *k, verify_result *r)
{
    char v[32];
    server_version_text(c, v, sizeof v);
    vr_set(&r->observed, "%s", v);
    vr_set(&r->expected, "%s", k->version);
    judge(r, k->version, VCMP_VERSION, v, "server version");
}

/* pgvector's settings (hnsw.*, ivfflat.*) exist only once its library is loaded in the session:
 * load it by calling its input function, when the extension is installed. */
static void load_pgvector_settings(pg_conn *c, const char *setting)
{
    if (strncmp(setting, "hnsw.", 5) != 0 && strncmp(setting, "ivfflat.", 8) != 0)
        return;
    bool found;
    char *schema = pg_query_text(c,
                                 "SELECT quote_ident(n.nspname) FROM pg_extension e"
                                 " JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'",
                                 0, NULL, &found);
    if (found) {
        char *sql = NULL;
        vr_set(&sql, "SELECT '[1]'::%s.vector", schema);
        if (sql && !pg_run(c, sql, 0, NULL))
            log_debug("verify: could not load pgvector for %s: %s", setting, pg_errmsg(c));
        free(sql);
    }
    free(schema);
}

void verify_check_setting(pg_conn *c, const verify_check *k, verify_result *r)
{
    load_pgvector_settings(c, k->setting);
    pg_result *q = pg_exec(c, "SELECT current_setting($1, true), (SELECT source FROM pg_settings WHERE name = lower($1))",
                           1, (const char *[]){k->setting});
    if (!q) {
        vr_fail_sql(r, c, "could not read the setting");
        return;
    }
    vr_set(&r->expected, "%s", k->expect);
    if (pg_isnull(q, 0, 0)) {
        vr_set(&r->observed, "no such setting");
        vr_fail(r, "the server has no setting named %s", k->setting);
    } else {
        vr_set(&r->observed, "%s", pg_value(q, 0, 0));
        if (!pg_isnull(q, 0, 1))
            cJSON_AddStringToObject(vr_details(r), "source", pg_value(q, 0, 1));
        judge(r, k->expect, VCMP_VALUE, pg_value(q, 0, 0), k->setting);
    }
    pg_clear(q);
}

void verify_check_extension(pg_conn *c, const verify_check *k, verify_result *r)
{
    pg_result *q = pg_exec(c,
                           "SELECT e.extversion, a.default_version, n.nspname"
                           " FROM (SELECT $1::name AS name) w"
                           " LEFT JOIN pg_extension e ON e.extname = w.name"
                           " LEFT JOIN pg_available_extensions a ON a.name = w.name"
                           " LEFT JOIN pg_namespace n ON n.oid = e.extnamespace",
                           1, (const char *[]){k->extension});
    if (!q) {
        vr_fail_sql(r, c, "could not read pg_extension");
        return;
    }
    const char *installed = pg_isnull(q, 0, 0) ? NULL : pg_value(q, 0, 0);
    const char *available = pg_isnull(q, 0, 1) ? NULL : pg_value(q, 0, 1);
    cJSON *d = vr_details(r);
    cJSON_AddItemToObject(d, "installed", installed ? cJSON_CreateString(installed) : cJSON_CreateNull());
    cJSON_AddItemToObject(d, "available", available ? cJSON_CreateString(available) : cJSON_CreateNull());
    if (installed)
        cJSON_AddStringToObject(d, "schema", pg_value(q, 0, 2));

    char expected[256] = "installed";
    if (k->version)
        snprintf(expected + strlen(expected), sizeof expected - strlen(expected), ", %s", k->version);
    if (k->up_to_date)
        snprintf(expected + strlen(expected), sizeof expected - strlen(expected), ", == %s (newest available)",
                 available ? available : "?");
    vr_set(&r->expected, "%s", expected);
    vr_set(&r->observed, "%s", installed ? installed : "not installed");

    if (!installed) {
        if (available) {
            vr_fail(r, "extension %s is not installed (the server offers %s)", k->extension, available);
            vr_set(&r->hint, "CREATE EXTENSION %s;", k->extension);
        } else {
            vr_fail(r, "extension %s is not installed, and the server has no %s.control", k->extension, k->extension);
            vr_set(&r->hint, "install the %s package for PostgreSQL %d, then CREATE EXTENSION %s;", k->extension,
                   pg_server_version(c) / 10000, k->extension);
        }
        pg_clear(q);
        return;
    }
    r->status = VR_PASS;
    vr_set(&r->message, "%s %s installed", k->extension, installed);
    if (k->version) {
        bool holds = false;
        char why[256];
        if (!vcmp_eval(k->version, VCMP_VERSION, installed, &holds, why, sizeof why))
            vr_fail(r, "cannot compare version \"%s\" with \"%s\": %s", installed, k->version, why);
        else if (!holds)
            vr_fail(r, "%s %s does not satisfy %s", k->extension, installed, k->version);
    }
    if (k->up_to_date && r->status == VR_PASS) {
        if (!available) {
            vr_fail(r, "%s %s is installed but the server has no %s.control: its library was removed or is not"
                       " installed for PostgreSQL %d",
                    k->extension, installed, k->extension, pg_server_version(c) / 10000);
        } else {
            int cmp = vcmp_version_compare(installed, available);
            if (cmp < 0) {
                vr_fail(r, "%s is outdated: installed %s, the server offers %s", k->extension, installed, available);
                vr_set(&r->hint, "ALTER EXTENSION %s UPDATE;", k->extension);
            } else if (cmp > 0 || strcmp(installed, available) != 0) {
                vr_fail(r, "%s %s is installed but the server's library offers %s (downgraded package?)",
                        k->extension, installed, available);
                vr_set(&r->hint, "install %s %s or newer for PostgreSQL %d", k->extension, installed,
                       pg_server_version(c) / 10000);
            } else {
                vr_append(&r->message, "the newest the server offers");
            }
        }
    }
    if (r->status == VR_FAIL && !r->hint && k->version)
        vr_set(&r->hint, "ALTER EXTENSION %s UPDATE; (after installing a version that satisfies %s)", k->extension,
               k->version);
    pg_clear(q);
}

void verify_check_access_method(pg_conn *c, const verify_check *k, verify_result *r)
{
    pg_result *q = pg_exec(c,
                           "SELECT CASE amtype WHEN 'i' THEN 'index' WHEN 't' THEN 'table' ELSE amtype::text END"
                           " FROM pg_am WHERE amname = $1",
                           1, (const char *[]){k->access_method});
    if (!q) {
        vr_fail_sql(r, c, "could not read pg_am");
        return;
    }
    vr_set(&r->expected, "access method %s exists", k->access_method);
    if (pg_ntuples(q) == 0) {
        vr_set(&r->observed, "missing");
        vr_fail(r, "access method %s does not exist", k->access_method);
        if (!strcmp(k->access_method, "hnsw") || !strcmp(k->access_method, "ivfflat"))
            vr_set(&r->hint, "CREATE EXTENSION vector; or, if it is installed at an old version, ALTER EXTENSION"
                             " vector UPDATE;");
    } else {
        vr_set(&r->observed, "%s access method", pg_value(q, 0, 0));
        r->status = VR_PASS;
        vr_set(&r->message, "%s %s access method exists", k->access_method, pg_value(q, 0, 0));
    }
    pg_clear(q);
}

/* pgvector's types whose typmod is the number of dimensions. */
static bool is_vector_type(const char *typname)
{
    return !strcmp(typname, "vector") || !strcmp(typname, "halfvec") || !strcmp(typname, "sparsevec");
}

void verify_check_column(pg_conn *c, const verify_check *k, verify_result *r)
{
    bool err;
    char *table = vr_resolve_table(c, k->table, r, &err);
    if (err)
        return;
    if (!table) {
        vr_set(&r->observed, "no table %s", k->table);
        vr_fail(r, "table %s does not exist", k->table);
        return;
    }
    pg_result *q = pg_exec(c,
                           "SELECT t.typname, format_type(a.atttypid, a.atttypmod), a.atttypmod,"
                           " format_type(a.atttypid, NULL)"
                           " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
                           " WHERE a.attrelid = $1::regclass AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                           2, (const char *[]){table, k->column});
    if (!q) {
        vr_fail_sql(r, c, "could not read pg_attribute");
        free(table);
        return;
    }
    if (pg_ntuples(q) == 0) {
        vr_set(&r->observed, "no column %s", k->column);
        vr_fail(r, "%s has no column %s", table, k->column);
        goto out;
    }
    const char *typname = pg_value(q, 0, 0), *full = pg_value(q, 0, 1);
    long long typmod = atoll(pg_value(q, 0, 2));
    vr_set(&r->observed, "%s", full);
    cJSON_AddStringToObject(vr_details(r), "type", full);
    r->status = VR_PASS;
    char expected[256] = "";
    if (k->type) {
        snprintf(expected, sizeof expected, "%s", k->type);
        if (strcasecmp(typname, k->type) != 0 && strcasecmp(pg_value(q, 0, 3), k->type) != 0)
            vr_fail(r, "%s.%s is %s, not %s", table, k->column, full, k->type);
    }
    int64_t want = k->dimension;
    if (k->dimension_sql) {
        bool found;
        char *v = pg_query_text(c, k->dimension_sql, 0, NULL, &found);
        if (!found) {
            if (pg_errmsg(c)[0])
                vr_fail_sql(r, c, "dimension_sql failed");
            else
                vr_fail(r, "dimension_sql returned no value (%s)", k->dimension_sql);
            free(v);
            goto done;
        }
        want = atoll(v);
        free(v);
    }
    if (want >= 0) {
        snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%lld dimensions",
                 expected[0] ? ", " : "", (long long) want);
        if (!is_vector_type(typname))
            vr_fail(r, "%s.%s is %s: a dimension applies to vector, halfvec and sparsevec columns", table, k->column,
                    full);
        else if (typmod < 0)
            vr_fail(r, "%s.%s has no dimension (typmod): expected %lld", table, k->column, (long long) want);
        else if (typmod != want)
            vr_fail(r, "%s.%s has %lld dimensions, expected %lld", table, k->column, typmod, (long long) want);
    }
done:
    vr_set(&r->expected, "%s", expected[0] ? expected : "exists");
    if (r->status == VR_PASS)
        vr_set(&r->message, "%s.%s is %s", table, k->column, full);
out:
    pg_clear(q);
    free(table);
}

void verify_check_migrations(pg_conn *c, const verify_check *k, verify_result *r)
{
    migration_set set;
    if (!migration_set_load(k->migrations_dir, &set)) {
        vr_fail(r, "could not load the migrations from %s: %s", k->migrations_dir ? k->migrations_dir : "the binary",
                log_last_error());
        migration_set_free(&set);
        return;
    }
    migration_row *rows = NULL;
    int nrows = 0;
    if (!migrate_read_rows(c, &rows, &nrows)) {
        vr_fail_sql(r, c, "could not read " MIGRATE_TABLE);
        migration_set_free(&set);
        return;
    }
    migration_status *st = NULL;
    int n = migrate_compute_status(&set, rows, nrows, &st);
    if (n < 0) {
        vr_fail(r, "out of memory");
        goto out;
    }
    cJSON *d = vr_details(r);
    cJSON *lists[5] = {0};
    const char *keys[5] = {"applied", "pending", "failed", "changed", "file_missing"};
    int counts[5] = {0}, current = 0;
    for (int i = 0; i < 5; i++)
        lists[i] = cJSON_AddArrayToObject(d, keys[i]);
    for (int i = 0; i < n; i++) {
        int s = (int) st[i].state;
        counts[s]++;
        char label[300];
        snprintf(label, sizeof label, "%04d_%s", st[i].version, st[i].name);
        cJSON_AddItemToArray(lists[s], cJSON_CreateString(label));
        if (st[i].state == MS_APPLIED && st[i].version > current)
            current = st[i].version;
    }
    cJSON_AddNumberToObject(d, "current_version", current);
    vr_set(&r->expected, "all %d migrations of %s applied, none failed or changed", set.n, set.origin);
    vr_set(&r->observed, "version %d: %d applied, %d pending, %d failed, %d changed, %d without file", current,
           counts[MS_APPLIED], counts[MS_PENDING], counts[MS_FAILED], counts[MS_CHANGED], counts[MS_FILE_MISSING]);
    if (nrows == 0 && set.n > 0) {
        vr_fail(r, "no migration applied (%s is missing or empty)", MIGRATE_TABLE);
        vr_set(&r->hint, "pgmemctl migrate up");
    } else if (counts[MS_FAILED]) {
        vr_fail(r, "%d migration(s) failed: %s", counts[MS_FAILED], cJSON_GetArrayItem(lists[MS_FAILED], 0)->valuestring);
        vr_set(&r->hint, "pgmemctl migrate status; fix the cause, then pgmemctl migrate repair --version N");
    } else if (counts[MS_CHANGED]) {
        vr_fail(r, "%d applied migration(s) changed since they ran: %s", counts[MS_CHANGED],
                cJSON_GetArrayItem(lists[MS_CHANGED], 0)->valuestring);
        vr_set(&r->hint, "restore the migration file as it was applied (see checksums in pgmemctl migrate status)");
    } else if (counts[MS_FILE_MISSING]) {
        vr_fail(r, "%d applied migration(s) have no file here: %s (a newer pgmemctl applied them?)",
                counts[MS_FILE_MISSING], cJSON_GetArrayItem(lists[MS_FILE_MISSING], 0)->valuestring);
        vr_set(&r->hint, "run the pgmemctl version that migrated this database");
    } else if (counts[MS_PENDING]) {
        vr_fail(r, "%d migration(s) pending: %s", counts[MS_PENDING], cJSON_GetArrayItem(lists[MS_PENDING], 0)->valuestring);
        vr_set(&r->hint, "pgmemctl migrate up");
    } else {
        r->status = VR_PASS;
        vr_set(&r->message, "at version %d, all %d migrations applied", current, counts[MS_APPLIED]);
    }
out:
    free(st);
    migrate_rows_free(rows, nrows);
    migration_set_free(&set);
}

void verify_check_row_count(pg_conn *c, const verify_check *k, verify_result *r)
{
    bool err;
    char *table = vr_resolve_table(c, k->table, r, &err);
    if (err)
        return;
    if (!table) {
        vr_set(&r->observed, "no table %s", k->table);
        vr_fail(r, "table %s does not exist", k->table);
        return;
    }
    char *sql = NULL;
    if (k->where)
        vr_set(&sql, "SELECT count(*) FROM %s WHERE %s", table, k->where);
    else
        vr_set(&sql, "SELECT count(*) FROM %s", table);
    int64_t n = 0;
    char expected[128] = "";
    if (k->min >= 0)
        snprintf(expected, sizeof expected, ">= %lld", (long long) k->min);
    if (k->max >= 0)
        snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s<= %lld", expected[0] ? ", " : "",
                 (long long) k->max);
    vr_set(&r->expected, "%s rows%s%s", expected, k->where ? " where " : "", k->where ? k->where : "");
    if (!pg_query_int64(c, sql, 0, NULL, &n)) {
        vr_fail_sql(r, c, "count failed");
    } else {
        vr_set(&r->observed, "%lld", (long long) n);
        if ((k->min >= 0 && n < k->min) || (k->max >= 0 && n > k->max))
            vr_fail(r, "%s has %lld rows%s%s, expected %s", table, (long long) n, k->where ? " where " : "",
                    k->where ? k->where : "", expected);
        else {
            r->status = VR_PASS;
            vr_set(&r->message, "%s has %lld rows%s%s", table, (long long) n, k->where ? " where " : "",
                   k->where ? k->where : "");
        }
    }
    free(sql);
    free(table);
}

void verify_check_sql(pg_conn *c, const verify_check *k, verify_result *r)
{
    vr_set(&r->expected, "%s", k->expect);
    pg_result *q = pg_exec(c, k->query, 0, NULL);
    if (!q) {
        vr_fail_sql(r, c, "query failed");
        return;
    }
    if (pg_ntuples(q) == 0 || pg_nfields(q) == 0) {
        vr_set(&r->observed, "no rows");
        vr_fail(r, "the query returned no rows");
    } else {
        const char *v = pg_isnull(q, 0, 0) ? "NULL" : pg_value(q, 0, 0);
        vr_set(&r->observed, "%s", v);
        judge(r, k->expect, VCMP_VALUE, v, "result");
    }
    pg_clear(q);
}

/* ---- the runner -------------------------------------------------------------------------- */

typedef void (*check_fn)(pg_conn *, const verify_check *, verify_result *);

static check_fn check_for(verify_kind k)
{
    switch (k) {
    case VK_SERVER_VERSION: return verify_check_server_version;
    case VK_SETTING: return verify_check_setting;
    case VK_EXTENSION: return verify_check_extension;
    case VK_ACCESS_METHOD: return verify_check_access_method;
    case VK_COLUMN: return verify_check_column;
    case VK_INDEX: return verify_check_index;
    case VK_PLAN: return verify_check_plan;
    case VK_MIGRATIONS: return verify_check_migrations;
    case VK_ROW_COUNT: return verify_check_row_count;
    case VK_SQL: return verify_check_sql;
    default: return NULL;
    }
}

static void result_clear(verify_result *r)
{
    free(r->observed);
    free(r->expected);
    free(r->message);
    free(r->hint);
    cJSON_Delete(r->details);
    r->observed = r->expected = r->message = r->hint = NULL;
    r->details = NULL;
}

/* Runs one check inside a savepoint of the open READ ONLY transaction. Returns false when the
 * transaction itself broke (the savepoint could not be rolled back to). */
static bool run_one(pg_conn *c, verify_result *r)
{
    const verify_check *k = r->check;
    result_clear(r);
    r->attempts++;
    double t0 = progress_now();
    if (!pg_run(c, "SAVEPOINT pgmemctl_verify", 0, NULL)) {
        vr_fail_sql(r, c, "could not start the check");
        return false;
    }
    r->status = VR_FAIL;
    check_fn fn = check_for(k->kind);
    if (fn)
        fn(c, k, r);
    else
        vr_fail(r, "unknown check kind");
    r->seconds = progress_now() - t0;
    /* Nothing a check does is kept: SET LOCAL settings and errors are rolled back. */
    if (!pg_run(c, "ROLLBACK TO SAVEPOINT pgmemctl_verify", 0, NULL) ||
        !pg_run(c, "RELEASE SAVEPOINT pgmemctl_verify", 0, NULL)) {
        vr_fail_sql(r, c, "the check broke the transaction");
        return false;
    }
    if (r->status == VR_FAIL && k->hint) {
        vr_set(&r->hint, "%s", k->hint);
    }
    if (r->status == VR_FAIL && k->severity == VSEV_WARN)
        r->status = VR_WARN;
    if (r->status == VR_PASS && !r->message)
        vr_set(&r->message, "ok");
    return true;
}

/* One round: a READ ONLY transaction running the checks selected by todo[]. */
static bool run_round(pg_conn *c, verify_report *out, const bool *todo, const verify_options *opt)
{
    if (!pg_run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL)) {
        log_error("verify: could not start a READ ONLY transaction: %s", pg_errmsg(c));
        return false;
    }
    if (opt->check_timeout > 0) {
        char ms[32];
        snprintf(ms, sizeof ms, "%.0f", opt->check_timeout * 1000.0);
        if (!pg_run(c, "SELECT set_config('statement_timeout', $1, true)", 1, (const char *[]){ms})) {
            log_error("verify: could not set statement_timeout: %s", pg_errmsg(c));
            pg_rollback(c);
            return false;
        }
    }
    bool ok = true;
    for (int i = 0; i < out->n && ok; i++) {
        if (!todo[i])
            continue;
        ok = run_one(c, &out->results[i]);
        const verify_result *r = &out->results[i];
        log_debug("verify: %s: %s (%.3f s)%s%s", r->check->name, verify_status_name(r->status), r->seconds,
                  r->message ? ": " : "", r->message ? r->message : "");
    }
    if (!ok) {
        log_error("verify: the check transaction failed: %s", pg_errmsg(c));
        pg_rollback(c);
        return false;
    }
    /* Read only: there is nothing to commit, and rolling back makes that explicit. */
    pg_rollback(c);
    return true;
}

static void count(verify_report *out)
{
    out->pass = out->fail = out->warn = out->skip = 0;
    for (int i = 0; i < out->n; i++) {
        switch (out->results[i].status) {
        case VR_PASS: out->pass++; break;
        case VR_FAIL: out->fail++; break;
        case VR_WARN: out->warn++; break;
        case VR_SKIP: out->skip++; break;
        }
    }
}

/* Logs why checks are still failing before the next round, with index build progress. */
static void log_retry(const verify_report *out, double remaining)
{
    for (int i = 0; i < out->n; i++) {
        const verify_result *r = &out->results[i];
        if (r->status != VR_FAIL)
            continue;
        const cJSON *bp = r->details ? cJSON_GetObjectItemCaseSensitive(r->details, "build_progress") : NULL;
        const cJSON *line = bp ? cJSON_GetObjectItemCaseSensitive(bp, "summary") : NULL;
        if (cJSON_IsString(line))
            log_info("verify: %s: %s; retrying for %.0f s more", r->check->name, line->valuestring, remaining);
        else
            log_info("verify: %s: %s; retrying for %.0f s more", r->check->name, r->message ? r->message : "failed",
                     remaining);
    }
}

static void sleep_seconds(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t) s, (long) ((s - (double) (time_t) s) * 1e9)};
    nanosleep(&ts, NULL);
}

bool verify_run(pg_conn *c, const verify_spec *spec, const verify_options *opt, verify_report *out)
{
    memset(out, 0, sizeof *out);
    double t0 = progress_now();
    out->results = calloc((size_t) spec->n + 1, sizeof *out->results);
    bool *todo = calloc((size_t) spec->n + 1, sizeof *todo);
    if (!out->results || !todo) {
        free(todo);
        log_error("verify: out of memory");
        return false;
    }
    out->n = spec->n;
    bool found;
    char *sv = pg_query_text(c, "SHOW server_version", 0, NULL, &found);
    snprintf(out->server_version, sizeof out->server_version, "%s", sv ? sv : "");
    free(sv);
    /* Defence in depth: the session refuses writes even outside our transactions. */
    if (!pg_run(c, "SET default_transaction_read_only = on", 0, NULL)) {
        log_error("verify: could not make the session read-only: %s", pg_errmsg(c));
        free(todo);
        return false;
    }
    for (int i = 0; i < spec->n; i++) {
        verify_result *r = &out->results[i];
        r->check = &spec->checks[i];
        if (r->check->skip) {
            r->status = VR_SKIP;
            vr_set(&r->message, "%s", r->check->skip_reason ? r->check->skip_reason : "skipped by the spec");
        } else {
            todo[i] = true;
        }
    }
    double deadline = t0 + (opt->retry_timeout > 0 ? opt->retry_timeout : 0);
    double interval = opt->retry_interval > 0 ? opt->retry_interval : 1.0;
    bool ok = true;
    for (;;) {
        out->attempts++;
        if (!run_round(c, out, todo, opt)) {
            ok = false;
            break;
        }
        count(out);
        bool again = false;
        for (int i = 0; i < out->n; i++) {
            todo[i] = out->results[i].status == VR_FAIL;
            again |= todo[i];
        }
        double now = progress_now();
        if (!again || opt->retry_timeout <= 0 || now + interval > deadline)
            break;
        log_retry(out, deadline - now);
        sleep_seconds(interval);
    }
    count(out);
    out->seconds = progress_now() - t0;
    free(todo);
    return ok;
}

void verify_report_free(verify_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        result_clear(&r->results[i]);
    free(r->results);
    memset(r, 0, sizeof *r);
}

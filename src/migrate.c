/* migrate.c — loading, checksumming and applying schema migrations with their tracking table. */
#include "migrate.h"
#include "proc.h"
#include "log.h"
#include "progress.h"
#include "migrations_gen.h"

#include <openssl/evp.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- files ------------------------------------------------------------------------------ */

bool migration_parse_name(const char *fname, int *version, char **name, bool *is_up)
{
    const char *p = fname;
    if (!isdigit((unsigned char) *p))
        return false;
    long v = 0;
    while (isdigit((unsigned char) *p)) {
        v = v * 10 + (*p - '0');
        if (v > 1000000000)
            return false;
        p++;
    }
    if (*p++ != '_' || v < 1) /* version 0 means "nothing applied" */
        return false;
    const char *start = p;
    while (isalnum((unsigned char) *p) || *p == '_' || *p == '-')
        p++;
    if (p == start)
        return false;
    bool up;
    if (!strcmp(p, ".up.sql"))
        up = true;
    else if (!strcmp(p, ".down.sql"))
        up = false;
    else
        return false;
    char *n = strndup(start, (size_t) (p - start));
    if (!n)
        return false;
    *version = (int) v;
    *name = n;
    *is_up = up;
    return true;
}

bool migration_checksum(const char *sql, size_t len, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return false;
    }
    size_t start = 0;
    bool ok = true;
    for (size_t i = 0; i < len && ok; i++) {
        if (sql[i] == '\r' && i + 1 < len && sql[i + 1] == '\n') { /* CRLF → LF: skip the CR */
            ok = EVP_DigestUpdate(ctx, sql + start, i - start);
            start = i + 1;
        }
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    ok = ok && EVP_DigestUpdate(ctx, sql + start, len - start) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return false;
    for (unsigned int i = 0; i < mdlen; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = '\0';
    return true;
}

bool migration_is_no_tx(const char *sql)
{
    size_t n = strlen(MIGRATE_NO_TX_MARKER);
    if (strncmp(sql, MIGRATE_NO_TX_MARKER, n) != 0)
        return false;
    const char *p = sql + n;
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    return *p == '\n' || *p == '\0';
}

/* Adds the file (name/contents) to the set. Takes ownership of sql. */
static bool set_add(migration_set *s, const char *fname, char *sql, size_t len)
{
    int version;
    char *name;
    bool up;
    if (!migration_parse_name(fname, &version, &name, &up)) {
        free(sql);
        return true; /* not a migration file */
    }
    migration *m = NULL;
    for (int i = 0; i < s->n; i++)
        if (s->items[i].version == version)
            m = &s->items[i];
    if (!m) {
        migration *items = realloc(s->items, (size_t) (s->n + 1) * sizeof *items);
        if (!items) {
            free(name);
            free(sql);
            return false;
        }
        s->items = items;
        m = &s->items[s->n++];
        memset(m, 0, sizeof *m);
        m->version = version;
        m->name = name;
    } else {
        if (strcmp(m->name, name) != 0) {
            log_error("%s: version %04d has two names: \"%s\" and \"%s\"", s->origin, version, m->name, name);
            free(name);
            free(sql);
            return false;
        }
        free(name);
    }
    char *display = malloc(strlen(s->origin) + strlen(fname) + 2);
    if (!display) {
        free(sql);
        return false;
    }
    sprintf(display, "%s/%s", s->origin, fname);
    if ((up && m->up_sql) || (!up && m->down_sql)) {
        log_error("%s: two files for version %04d (%s)", s->origin, version, up ? "up" : "down");
        free(display);
        free(sql);
        return false;
    }
    if (up) {
        m->up_sql = sql;
        m->up_file = display;
        m->up_no_tx = migration_is_no_tx(sql);
        if (!migration_checksum(sql, len, m->checksum)) {
            log_error("%s: could not compute SHA-256", display);
            return false;
        }
    } else {
        m->down_sql = sql;
        m->down_file = display;
        m->down_no_tx = migration_is_no_tx(sql);
    }
    return true;
}

static int cmp_migration(const void *a, const void *b)
{
    const migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

bool migration_set_load(const char *dir, migration_set *out)
{
    memset(out, 0, sizeof *out);
    out->origin = strdup(dir ? dir : "embedded");
    if (!out->origin)
        return false;
    if (!dir) {
        for (int i = 0; i < embedded_migrations_count; i++) {
            const embedded_file *f = &embedded_migrations[i];
            char *sql = malloc(f->len + 1);
            if (!sql)
                return false;
            memcpy(sql, f->data, f->len);
            sql[f->len] = '\0';
            if (!set_add(out, f->name, sql, f->len))
                return false;
        }
    } else {
        DIR *d = opendir(dir);
        if (!d) {
            log_error("%s: cannot read migrations directory: %s", dir, strerror(errno));
            return false;
        }
        struct dirent *e;
        bool ok = true;
        while (ok && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            size_t nl = strlen(e->d_name);
            if (nl < 5 || strcmp(e->d_name + nl - 4, ".sql") != 0)
                continue;
            int v;
            char *nm;
            bool up;
            if (!migration_parse_name(e->d_name, &v, &nm, &up)) {
                log_error("%s/%s: not a migration file name (expected NNNN_name.up.sql or NNNN_name.down.sql)",
                          dir, e->d_name);
                ok = false;
                break;
            }
            free(nm);
            char *path = malloc(strlen(dir) + nl + 2);
            if (!path) {
                ok = false;
                break;
            }
            sprintf(path, "%s/%s", dir, e->d_name);
            size_t len = 0;
            char *sql = proc_read_file(path, &len);
            if (!sql) {
                log_error("%s: cannot read: %s", path, strerror(errno));
                ok = false;
            } else if (memchr(sql, '\0', len)) {
                log_error("%s: contains a NUL byte", path);
                free(sql);
                ok = false;
            } else {
                ok = set_add(out, e->d_name, sql, len);
            }
            free(path);
        }
        closedir(d);
        if (!ok)
            return false;
    }
    if (out->n > 1) /* items is NULL for an empty directory, and qsort(NULL, 0, …) is undefined */
        qsort(out->items, (size_t) out->n, sizeof *out->items, cmp_migration);
    for (int i = 0; i < out->n; i++)
        if (!out->items[i].up_sql) {
            log_error("%s: %s has a .down.sql but no %04d_%s.up.sql", out->origin, out->items[i].down_file,
                      out->items[i].version, out->items[i].name);
            return false;
        }
    return true;
}

void migration_set_free(migration_set *s)
{
    for (int i = 0; i < s->n; i++) {
        migration *m = &s->items[i];
        free(m->name);
        free(m->up_file);
        free(m->down_file);
        free(m->up_sql);
        free(m->down_sql);
    }
    free(s->items);
    free(s->origin);
    memset(s, 0, sizeof *s);
}

/* ---- statement splitter ----------------------------------------------------------------- */

/* Length of a dollar-quote tag starting at p ("$$" or "$tag$"), or 0 if p does not start one. */
static size_t dollar_tag(const char *p)
{
    if (*p != '$')
        return 0;
    const char *q = p + 1;
    if (isdigit((unsigned char) *q))
        return 0; /* $1 is a parameter */
    while (isalnum((unsigned char) *q) || *q == '_' || (unsigned char) *q >= 0x80)
        q++;
    return *q == '$' ? (size_t) (q - p + 1) : 0;
}

static bool only_space_and_comments(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (isspace((unsigned char) s[i]))
            i++;
        else if (s[i] == '-' && i + 1 < n && s[i + 1] == '-') {
            while (i < n && s[i] != '\n')
                i++;
        } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') { /* block comments nest */
            int depth = 1;
            for (i += 2; i < n && depth > 0;) {
                if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
                    depth--;
                    i += 2;
                } else
                    i++;
            }
        } else
            return false;
    }
    return true;
}

void sql_split_free(char **stmts, int n)
{
    for (int i = 0; i < n; i++)
        free(stmts[i]);
    free(stmts);
}

int sql_split(const char *sql, char ***out)
{
    char **stmts = NULL;
    int n = 0;
    const char *start = sql, *p = sql;
    for (;;) {
        bool end_of_stmt = false;
        if (*p == '\0') {
            end_of_stmt = true;
        } else if (*p == ';') {
            end_of_stmt = true;
        } else if (*p == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
            continue;
        } else if (*p == '/' && p[1] == '*') {
            int depth = 1;
            p += 2;
            while (*p && depth > 0) {
                if (*p == '/' && p[1] == '*') {
                    depth++;
                    p += 2;
                } else if (*p == '*' && p[1] == '/') {
                    depth--;
                    p += 2;
                } else
                    p++;
            }
            if (depth > 0)
                goto bad;
            continue;
        } else if (*p == '\'' || *p == '"') {
            char q = *p;
            bool backslash = q == '\'' && p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                             (p - 1 == sql || !(isalnum((unsigned char) p[-2]) || p[-2] == '_'));
            p++;
            for (;;) {
                if (!*p)
                    goto bad;
                if (backslash && *p == '\\' && p[1]) {
                    p += 2;
                    continue;
                }
                if (*p == q) {
                    if (p[1] == q) {
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                p++;
            }
            continue;
        } else if (*p == '$') {
            size_t tl = dollar_tag(p);
            bool ident_before = p > sql && (isalnum((unsigned char) p[-1]) || p[-1] == '_');
            if (tl && !ident_before) {
                const char *body = p + tl;
                const char *close = NULL;
                for (const char *s = body; (s = strchr(s, '$')); s++)
                    if (strncmp(s, p, tl) == 0) {
                        close = s;
                        break;
                    }
                if (!close)
                    goto bad;
                p = close + tl;
                continue;
            }
        }
        if (end_of_stmt) {
            size_t len = (size_t) (p - start);
            if (!only_space_and_comments(start, len)) {
                char **ns = realloc(stmts, (size_t) (n + 1) * sizeof *ns);
                if (!ns)
                    goto bad;
                stmts = ns;
                if (!(stmts[n] = strndup(start, len)))
                    goto bad;
                n++;
            }
            if (*p == '\0')
                break;
            start = p + 1;
        }
        p++;
    }
    *out = stmts;
    return n;
bad:
    sql_split_free(stmts, n);
    *out = NULL;
    return -1;
}

/* ---- status ----------------------------------------------------------------------------- */

const char *migration_state_name(migration_state s)
{
    switch (s) {
    case MS_APPLIED: return "applied";
    case MS_PENDING: return "pending";
    case MS_FAILED: return "failed";
    case MS_CHANGED: return "changed";
    case MS_FILE_MISSING: return "file_missing";
    }
    return "?";
}

static int cmp_status(const void *a, const void *b)
{
    const migration_status *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

int migrate_compute_status(const migration_set *set, const migration_row *rows, int nrows, migration_status **out)
{
    migration_status *st = calloc((size_t) (set->n + nrows + 1), sizeof *st);
    if (!st)
        return -1;
    int n = 0;
    for (int i = 0; i < set->n; i++) {
        const migration *m = &set->items[i];
        migration_status *s = &st[n++];
        s->version = m->version;
        s->name = m->name;
        s->file = m;
        s->state = MS_PENDING;
        for (int j = 0; j < nrows; j++)
            if (rows[j].version == m->version) {
                s->row = &rows[j];
                s->state = !rows[j].success                       ? MS_FAILED
                           : strcmp(rows[j].checksum, m->checksum) ? MS_CHANGED
                                                                   : MS_APPLIED;
            }
    }
    for (int j = 0; j < nrows; j++) {
        bool known = false;
        for (int i = 0; i < set->n; i++)
            known = known || set->items[i].version == rows[j].version;
        if (!known) {
            migration_status *s = &st[n++];
            s->version = rows[j].version;
            s->name = rows[j].name;
            s->row = &rows[j];
            s->state = rows[j].success ? MS_FILE_MISSING : MS_FAILED;
        }
    }
    qsort(st, (size_t) n, sizeof *st, cmp_status);
    *out = st;
    return n;
}

/* ---- database side ---------------------------------------------------------------------- */

static const char *SQL_CREATE_TABLE =
    "CREATE TABLE IF NOT EXISTS " MIGRATE_TABLE " ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now(),"
    " execution_ms bigint NOT NULL DEFAULT 0,"
    " success boolean NOT NULL DEFAULT true)";

void migrate_rows_free(migration_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].name);
        free(rows[i].checksum);
        free(rows[i].applied_at);
    }
    free(rows);
}

bool migrate_read_rows(pg_conn *c, migration_row **rows, int *nrows)
{
    *rows = NULL;
    *nrows = 0;
    bool found;
    char *exists = pg_query_text(c, "SELECT to_regclass($1) IS NOT NULL", 1, (const char *[]){MIGRATE_TABLE}, &found);
    if (!found) {
        free(exists);
        log_error("could not read %s: %s", MIGRATE_TABLE, pg_errmsg(c));
        return false;
    }
    bool have = !strcmp(exists, "t");
    free(exists);
    if (!have)
        return true;
    pg_result *r = pg_exec(c,
                           "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC',"
                           " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), execution_ms, success FROM " MIGRATE_TABLE
                           " ORDER BY version",
                           0, NULL);
    if (!r) {
        log_error("could not read %s: %s", MIGRATE_TABLE, pg_errmsg(c));
        return false;
    }
    int n = pg_ntuples(r);
    migration_row *out = calloc((size_t) n + 1, sizeof *out);
    if (!out) {
        pg_clear(r);
        return false;
    }
    for (int i = 0; i < n; i++) {
        out[i].version = atoi(pg_value(r, i, 0));
        out[i].name = strdup(pg_value(r, i, 1));
        out[i].checksum = strdup(pg_value(r, i, 2));
        out[i].applied_at = strdup(pg_value(r, i, 3));
        out[i].execution_ms = strtoll(pg_value(r, i, 4), NULL, 10);
        out[i].success = !strcmp(pg_value(r, i, 5), "t");
    }
    pg_clear(r);
    *rows = out;
    *nrows = n;
    return true;
}

static int highest_applied(const migration_row *rows, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].success && rows[i].version > v)
            v = rows[i].version;
    return v;
}

/* Names indexes left invalid (e.g. by a failed CREATE INDEX CONCURRENTLY) into buf. */
static void invalid_indexes(pg_conn *c, char *buf, size_t len)
{
    buf[0] = '\0';
    pg_result *r = pg_exec(c,
                           "SELECT string_agg(format('%s (on %s)', indexrelid::regclass, indrelid::regclass), ', ')"
                           " FROM pg_index WHERE NOT indisvalid",
                           0, NULL);
    if (r && pg_ntuples(r) == 1 && !pg_isnull(r, 0, 0))
        snprintf(buf, len, "%s", pg_value(r, 0, 0));
    pg_clear(r);
}

static bool add_step(migrate_result *res, const migration *m, bool up)
{
    migrate_step *s = realloc(res->steps, (size_t) (res->nsteps + 1) * sizeof *s);
    if (!s)
        return false;
    res->steps = s;
    s = &res->steps[res->nsteps++];
    memset(s, 0, sizeof *s);
    s->version = m->version;
    s->name = m->name;
    s->up = up;
    s->sql = up ? m->up_sql : m->down_sql;
    s->file = up ? m->up_file : m->down_file;
    return true;
}

/* Runs one migration file's SQL in the requested mode. In a transaction the tracking row is
 * written (or deleted, for down) in the same transaction. Returns success; on failure the
 * error is logged with the file name and SQLSTATE, and why receives the reason (the
 * connection's error may be gone by then: a failed no-transaction migration is recorded
 * afterwards, which clears it). */
static bool run_one(pg_conn *c, const migration *m, bool up, migrate_step *step, char *why, size_t whylen)
{
    const char *sql = up ? m->up_sql : m->down_sql;
    const char *file = up ? m->up_file : m->down_file;
    bool no_tx = up ? m->up_no_tx : m->down_no_tx;
    char vbuf[16], msbuf[32];
    snprintf(vbuf, sizeof vbuf, "%d", m->version);
    double t0 = progress_now();
    bool ok;
    log_info("%s %04d_%s%s", up ? "applying" : "reverting", m->version, m->name, no_tx ? " (no transaction)" : "");
    if (!no_tx) {
        ok = pg_begin(c) && pg_run_script(c, sql);
        if (ok) {
            snprintf(msbuf, sizeof msbuf, "%.0f", (progress_now() - t0) * 1000.0);
            if (up)
                ok = pg_run(c,
                            "INSERT INTO " MIGRATE_TABLE " (version, name, checksum, execution_ms, success)"
                            " VALUES ($1, $2, $3, $4, true)",
                            4, (const char *[]){vbuf, m->name, m->checksum, msbuf});
            else
                ok = pg_run(c, "DELETE FROM " MIGRATE_TABLE " WHERE version = $1", 1, (const char *[]){vbuf});
        }
        if (ok)
            ok = pg_commit(c);
        if (!ok) {
            pg_error_text(c, why, whylen);
            log_error("%s: %s", file, why);
            pg_rollback(c);
            log_error("%s: rolled back; nothing of this migration was kept", file);
        }
    } else {
        char **stmts = NULL;
        int n = sql_split(sql, &stmts);
        ok = n >= 0;
        if (!ok) {
            snprintf(why, whylen, "unterminated quote or comment");
            log_error("%s: %s", file, why);
        }
        for (int i = 0; ok && i < n; i++) {
            if (!pg_run_script(c, stmts[i])) {
                char err[512];
                snprintf(why, whylen, "statement %d of %d failed: %s", i + 1, n, pg_error_text(c, err, sizeof err));
                log_error("%s: %s", file, why);
                ok = false;
            }
        }
        sql_split_free(stmts, n > 0 ? n : 0);
        snprintf(msbuf, sizeof msbuf, "%.0f", (progress_now() - t0) * 1000.0);
        if (up) {
            /* record the outcome either way: a failure must stop later runs until repaired */
            if (!pg_run(c,
                        "INSERT INTO " MIGRATE_TABLE " (version, name, checksum, execution_ms, success)"
                        " VALUES ($1, $2, $3, $4, $5)",
                        5, (const char *[]){vbuf, m->name, m->checksum, msbuf, ok ? "true" : "false"})) {
                if (ok)
                    snprintf(why, whylen, "could not record the result in %s: %s", MIGRATE_TABLE, pg_errmsg(c));
                log_error("%s: could not record the result in %s: %s", file, MIGRATE_TABLE, pg_errmsg(c));
                ok = false;
            }
        } else if (ok && !pg_run(c, "DELETE FROM " MIGRATE_TABLE " WHERE version = $1", 1, (const char *[]){vbuf})) {
            snprintf(why, whylen, "could not update %s: %s", MIGRATE_TABLE, pg_errmsg(c));
            log_error("%s: %s", file, why);
            ok = false;
        }
    }
    step->ok = ok;
    step->seconds = progress_now() - t0;
    return ok;
}

/* Refuses to go on when tracking rows disagree with the files. Returns false (with
 * res->outcome/message set and the problem logged) when the run must stop. */
static bool check_consistency(pg_conn *c, const migration_set *set, migrate_result *res)
{
    migration_status *st = NULL;
    int n = migrate_compute_status(set, res->rows, res->nrows, &st);
    if (n < 0) {
        res->outcome = MIGRATE_FAILED;
        snprintf(res->message, sizeof res->message, "out of memory");
        return false;
    }
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        const migration_status *s = &st[i];
        if (s->state == MS_FAILED) {
            char inv[1024];
            invalid_indexes(c, inv, sizeof inv);
            res->outcome = MIGRATE_FAILED;
            snprintf(res->message, sizeof res->message,
                     "migration %04d_%s failed on an earlier run (%s): fix the cause%s%s%s, then run "
                     "`pgmemctl migrate repair --version %d` and `pgmemctl migrate up` again",
                     s->version, s->name, s->row->applied_at, inv[0] ? "; drop the invalid index left behind: " : "",
                     inv, inv[0] ? " (DROP INDEX CONCURRENTLY …)" : "", s->version);
            ok = false;
        } else if (s->state == MS_CHANGED) {
            res->outcome = MIGRATE_REFUSED;
            snprintf(res->message, sizeof res->message,
                     "%s was changed after it was applied (checksum %.12s… recorded, %.12s… now): restore the file, "
                     "or run `pgmemctl migrate repair --version %d` if the change is deliberate",
                     s->file->up_file, s->row->checksum, s->file->checksum, s->version);
            ok = false;
        } else if (s->state == MS_FILE_MISSING) {
            res->outcome = MIGRATE_REFUSED;
            snprintf(res->message, sizeof res->message,
                     "migration %04d_%s is applied but has no file in %s: use the migrations it was applied "
                     "from (--migrations-dir)",
                     s->version, s->name, set->origin);
            ok = false;
        }
    }
    free(st);
    if (!ok)
        log_error("%s", res->message);
    return ok;
}

static const migration *find_migration(const migration_set *set, int version)
{
    for (int i = 0; i < set->n; i++)
        if (set->items[i].version == version)
            return &set->items[i];
    return NULL;
}

static void plan_up(const migration_set *set, const migrate_request *req, migrate_result *res, bool *ok)
{
    int top = highest_applied(res->rows, res->nrows);
    for (int i = 0; i < set->n; i++) {
        const migration *m = &set->items[i];
        bool applied = false;
        for (int j = 0; j < res->nrows; j++)
            applied = applied || res->rows[j].version == m->version;
        if (applied || (req->to >= 0 && m->version > req->to))
            continue;
        if (m->version < top) {
            res->outcome = MIGRATE_REFUSED;
            snprintf(res->message, sizeof res->message,
                     "%s is pending but a later version (%04d) is already applied: renumber it after %04d",
                     m->up_file, top, top);
            log_error("%s", res->message);
            *ok = false;
            return;
        }
        if (!add_step(res, m, true)) {
            *ok = false;
            return;
        }
    }
}

static void plan_down(const migration_set *set, const migrate_request *req, migrate_result *res, bool *ok)
{
    int steps = req->steps > 0 ? req->steps : (req->to >= 0 ? -1 : 1);
    for (int j = res->nrows - 1; j >= 0 && steps != 0; j--) {
        const migration_row *row = &res->rows[j];
        if (req->to >= 0 && row->version <= req->to)
            break;
        const migration *m = find_migration(set, row->version);
        if (!m || !m->down_sql) {
            res->outcome = MIGRATE_REFUSED;
            snprintf(res->message, sizeof res->message,
                     "cannot revert %04d_%s: %s%04d_%s.down.sql is missing; nothing was reverted", row->version,
                     row->name, m ? "" : "its files are missing, ", row->version, row->name);
            log_error("%s", res->message);
            *ok = false;
            return;
        }
        if (!add_step(res, m, false)) {
            *ok = false;
            return;
        }
        if (steps > 0)
            steps--;
    }
}

static void do_repair(pg_conn *c, const migration_set *set, const migrate_request *req, migrate_result *res)
{
    const migration_row *row = NULL;
    for (int j = 0; j < res->nrows; j++)
        if (res->rows[j].version == req->repair_version)
            row = &res->rows[j];
    const migration *m = find_migration(set, req->repair_version);
    char vbuf[16];
    snprintf(vbuf, sizeof vbuf, "%d", req->repair_version);
    if (!row) {
        res->outcome = MIGRATE_REFUSED;
        snprintf(res->message, sizeof res->message, "version %d has no row in %s: nothing to repair",
                 req->repair_version, MIGRATE_TABLE);
        log_error("%s", res->message);
        return;
    }
    if (!row->success) {
        if (req->dry_run || pg_run(c, "DELETE FROM " MIGRATE_TABLE " WHERE version = $1 AND NOT success", 1,
                                   (const char *[]){vbuf})) {
            snprintf(res->message, sizeof res->message,
                     "%sremoved the failed record of %04d_%s: `pgmemctl migrate up` will run it again",
                     req->dry_run ? "would have " : "", row->version, row->name);
            log_info("%s", res->message);
        } else {
            res->outcome = MIGRATE_FAILED;
            snprintf(res->message, sizeof res->message, "could not update %s: %s", MIGRATE_TABLE, pg_errmsg(c));
            log_error("%s", res->message);
        }
        return;
    }
    if (!m) {
        res->outcome = MIGRATE_REFUSED;
        snprintf(res->message, sizeof res->message, "version %d has no file in %s to take a checksum from",
                 req->repair_version, set->origin);
        log_error("%s", res->message);
        return;
    }
    if (!strcmp(row->checksum, m->checksum)) {
        snprintf(res->message, sizeof res->message, "%04d_%s is applied and unchanged: nothing to repair",
                 row->version, row->name);
        log_info("%s", res->message);
        return;
    }
    if (req->dry_run || pg_run(c, "UPDATE " MIGRATE_TABLE " SET checksum = $2, name = $3 WHERE version = $1", 3,
                               (const char *[]){vbuf, m->checksum, m->name})) {
        snprintf(res->message, sizeof res->message, "%sre-stamped %s with its current checksum %.12s…",
                 req->dry_run ? "would have " : "", m->up_file, m->checksum);
        log_info("%s", res->message);
    } else {
        res->outcome = MIGRATE_FAILED;
        snprintf(res->message, sizeof res->message, "could not update %s: %s", MIGRATE_TABLE, pg_errmsg(c));
        log_error("%s", res->message);
    }
}

void migrate_run(pg_conn *c, const migration_set *set, const migrate_request *req, migrate_result *res)
{
    memset(res, 0, sizeof *res);
    bool locked = false;
    bool writes = !req->dry_run && req->action != MIGRATE_STATUS;
    if (writes) {
        int holder = 0;
        double t0 = progress_now();
        int got = pg_advisory_lock(c, MIGRATE_LOCK_KEY, req->lock_timeout, &holder);
        res->lock_waited = progress_now() - t0 > 0.5;
        if (got <= 0) {
            res->outcome = MIGRATE_FAILED;
            if (got == 0)
                snprintf(res->message, sizeof res->message,
                         "another migration run holds the lock (backend pid %d); gave up after %g s (--lock-timeout)",
                         holder, req->lock_timeout);
            else
                snprintf(res->message, sizeof res->message, "could not take the migration lock: %s", pg_errmsg(c));
            log_error("%s", res->message);
            return;
        }
        locked = true;
        if (!pg_run(c, SQL_CREATE_TABLE, 0, NULL)) {
            res->outcome = MIGRATE_FAILED;
            snprintf(res->message, sizeof res->message, "could not create %s: %s", MIGRATE_TABLE, pg_errmsg(c));
            log_error("%s", res->message);
            goto out;
        }
    }
    if (!migrate_read_rows(c, &res->rows, &res->nrows)) {
        res->outcome = MIGRATE_FAILED;
        snprintf(res->message, sizeof res->message, "could not read %s", MIGRATE_TABLE);
        goto out;
    }
    res->version_before = res->version_after = highest_applied(res->rows, res->nrows);

    if (req->action == MIGRATE_STATUS) {
        res->nstatus = migrate_compute_status(set, res->rows, res->nrows, &res->status);
        if (res->nstatus < 0) {
            res->nstatus = 0;
            res->outcome = MIGRATE_FAILED;
        }
        goto out;
    }
    if (req->action == MIGRATE_REPAIR) {
        do_repair(c, set, req, res);
        goto out;
    }
    if (!check_consistency(c, set, res))
        goto out;
    bool ok = true;
    if (req->action == MIGRATE_UP)
        plan_up(set, req, res, &ok);
    else
        plan_down(set, req, res, &ok);
    if (!ok) {
        if (res->outcome == MIGRATE_OK)
            res->outcome = MIGRATE_FAILED;
        res->nsteps = 0;
        goto out;
    }
    if (res->nsteps == 0) {
        log_info("nothing to do: the schema is at version %d", res->version_before);
        goto out;
    }
    if (req->dry_run) {
        for (int i = 0; i < res->nsteps; i++)
            log_info("would %s %s:\n%s", res->steps[i].up ? "apply" : "revert", res->steps[i].file, res->steps[i].sql);
        goto out;
    }
    for (int i = 0; i < res->nsteps; i++) {
        const migration *m = find_migration(set, res->steps[i].version);
        char why[1536] = "";
        if (!run_one(c, m, res->steps[i].up, &res->steps[i], why, sizeof why)) {
            res->outcome = MIGRATE_FAILED;
            snprintf(res->message, sizeof res->message, "%s failed: %s", res->steps[i].file, why);
            res->nsteps = i + 1;
            break;
        }
    }
    migrate_rows_free(res->rows, res->nrows);
    res->rows = NULL;
    res->nrows = 0;
    if (migrate_read_rows(c, &res->rows, &res->nrows))
        res->version_after = highest_applied(res->rows, res->nrows);
out:
    if (locked && !pg_advisory_unlock(c, MIGRATE_LOCK_KEY))
        log_warn("could not release the migration lock: %s (it ends with the session)", pg_errmsg(c));
}

void migrate_result_free(migrate_result *res)
{
    free(res->steps);
    migrate_rows_free(res->rows, res->nrows);
    free(res->status);
    memset(res, 0, sizeof *res);
}

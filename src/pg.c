/* pg.c — every libpq call of pgmemctl: connections, $n queries, scripts, COPY, advisory locks,
 * error text with SQLSTATE, and password-free conninfo for display. */
#include "pg.h"
#include "log.h"
#include "redact.h"

#include <libpq-fe.h>

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct pg_conn {
    PGconn *conn;
    char *display;
    char *errmsg;
    char sqlstate[6];
    PGresult *pending;    /* pg_poll: the first result of the query in flight */
    bool pending_failed;  /* pg_poll: the query in flight failed (error stored) */
    bool collect_notices; /* pg_notices_begin .. pg_notices_end */
    char *notices;        /* collected notice texts, one per line */
    size_t notices_len;
};

struct pg_result {
    PGresult *res;
};

/* ---- conninfo redaction ------------------------------------------------------------------ */

static bool is_uri(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* Masks the password in a URI: userinfo "user:pw@" and the query parameter "password=". */
static char *redact_uri(const char *uri)
{
    /* each masking (the userinfo password, every password= parameter) grows the text by at most
     * the mask's length; there are at most (number of '&') + 2 of them */
    size_t len = strlen(uri), maskings = 2;
    for (const char *a = uri; (a = strchr(a, '&')); a++)
        maskings++;
    char *out = malloc(len + strlen(REDACT_MASK) * maskings + 1);
    if (!out)
        return NULL;
    const char *p = strstr(uri, "://") + 3;
    size_t hostpart = strcspn(p, "/?");
    const char *at = NULL;
    for (const char *q = p; q < p + hostpart; q++)
        if (*q == '@')
            at = q;
    char *o = out;
    memcpy(o, uri, (size_t) (p - uri));
    o += p - uri;
    const char *rest = p;
    if (at) {
        const char *colon = memchr(p, ':', (size_t) (at - p));
        if (colon) {
            memcpy(o, p, (size_t) (colon - p + 1));
            o += colon - p + 1;
            memcpy(o, REDACT_MASK, strlen(REDACT_MASK));
            o += strlen(REDACT_MASK);
            rest = at;
        }
    }
    /* copy the rest, masking password=... parameters */
    const char *query = strchr(rest, '?');
    if (!query) {
        strcpy(o, rest);
        return out;
    }
    memcpy(o, rest, (size_t) (query - rest + 1));
    o += query - rest + 1;
    const char *q = query + 1;
    while (*q) {
        size_t plen = strcspn(q, "&");
        if (plen >= 9 && strncmp(q, "password=", 9) == 0) {
            memcpy(o, "password=" REDACT_MASK, 9 + strlen(REDACT_MASK));
            o += 9 + strlen(REDACT_MASK);
        } else {
            memcpy(o, q, plen);
            o += plen;
        }
        q += plen;
        if (*q == '&')
            *o++ = *q++;
    }
    *o = '\0';
    return out;
}

/* Heuristic masking of "password = value" in text libpq could not parse. */
static char *redact_kv_fallback(const char *s)
{
    /* each masking replaces at least "password=" with "password=<mask>": one per occurrence */
    size_t len = strlen(s), maskings = 0;
    for (const char *a = s; (a = strstr(a, "password")); a++)
        maskings++;
    char *out = malloc(len + strlen(REDACT_MASK) * maskings + 1);
    if (!out)
        return NULL;
    char *o = out;
    const char *p = s;
    while (*p) {
        if (strncmp(p, "password", 8) == 0 && (p == s || isspace((unsigned char) p[-1]))) {
            const char *q = p + 8;
            while (isspace((unsigned char) *q))
                q++;
            if (*q == '=') {
                q++;
                while (isspace((unsigned char) *q))
                    q++;
                if (*q == '\'') {
                    q++;
                    while (*q && *q != '\'') {
                        if (*q == '\\' && q[1])
                            q++;
                        q++;
                    }
                    if (*q)
                        q++;
                } else {
                    while (*q && !isspace((unsigned char) *q))
                        q++;
                }
                o += sprintf(o, "password=%s", REDACT_MASK);
                p = q;
                continue;
            }
        }
        *o++ = *p++;
    }
    *o = '\0';
    return out;
}

char *pg_redact_conninfo(const char *conninfo)
{
    if (!conninfo || !*conninfo)
        return strdup("(default)");
    if (is_uri(conninfo))
        return redact_uri(conninfo);
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        PQfreemem(err);
        return redact_kv_fallback(conninfo);
    }
    size_t cap = strlen(conninfo) + 64, used = 0;
    char *out = malloc(cap);
    if (!out) {
        PQconninfoFree(opts);
        return NULL;
    }
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        const char *v = strcmp(o->keyword, "password") == 0 ? REDACT_MASK : o->val;
        size_t need = strlen(o->keyword) + 2 * strlen(v) + 5;
        if (used + need >= cap) {
            cap = (used + need) * 2;
            char *n = realloc(out, cap);
            if (!n) {
                free(out);
                PQconninfoFree(opts);
                return NULL;
            }
            out = n;
        }
        used += (size_t) sprintf(out + used, "%s%s=", used ? " " : "", o->keyword);
        bool quote = !*v || strpbrk(v, " '\\\t") != NULL;
        if (quote)
            out[used++] = '\'';
        for (const char *c = v; *c; c++) {
            if (*c == '\'' || *c == '\\')
                out[used++] = '\\';
            out[used++] = *c;
        }
        if (quote)
            out[used++] = '\'';
        out[used] = '\0';
    }
    PQconninfoFree(opts);
    return out;
}

void pg_register_secrets(const char *conninfo)
{
    redact_add_secret(getenv("PGPASSWORD"));
    if (!conninfo || !*conninfo)
        return;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (opts) {
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (o->val && strcmp(o->keyword, "password") == 0)
                redact_add_secret(o->val);
        PQconninfoFree(opts);
    } else {
        PQfreemem(err);
    }
    if (is_uri(conninfo)) { /* the raw, possibly percent-encoded form in userinfo */
        const char *p = strstr(conninfo, "://") + 3;
        size_t hostpart = strcspn(p, "/?");
        const char *at = NULL;
        for (const char *q = p; q < p + hostpart; q++)
            if (*q == '@')
                at = q;
        const char *colon = at ? memchr(p, ':', (size_t) (at - p)) : NULL;
        if (colon) {
            char *raw = strndup(colon + 1, (size_t) (at - colon - 1));
            redact_add_secret(raw);
            free(raw);
        }
    }
}

/* ---- errors ----------------------------------------------------------------------------- */

static void set_error(pg_conn *c, const char *msg, const char *sqlstate)
{
    free(c->errmsg);
    c->errmsg = strdup(msg ? msg : "");
    if (c->errmsg) { /* trim trailing newlines */
        size_t n = strlen(c->errmsg);
        while (n > 0 && (c->errmsg[n - 1] == '\n' || c->errmsg[n - 1] == ' '))
            c->errmsg[--n] = '\0';
    }
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", sqlstate ? sqlstate : "");
}

static void set_error_from_result(pg_conn *c, const PGresult *res)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!primary) {
        set_error(c, PQerrorMessage(c->conn), state);
        return;
    }
    char buf[4096];
    snprintf(buf, sizeof buf, "%s%s%s%s%s", primary, detail ? " (detail: " : "", detail ? detail : "",
             detail ? ")" : "", "");
    if (hint) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, " (hint: %s)", hint);
    }
    set_error(c, buf, state);
}

const char *pg_errmsg(const pg_conn *c) { return c->errmsg ? c->errmsg : ""; }
const char *pg_sqlstate(const pg_conn *c) { return c->sqlstate; }

const char *pg_error_text(const pg_conn *c, char *buf, size_t len)
{
    const char *st = pg_sqlstate(c);
    snprintf(buf, len, "%s%s%s%s", pg_errmsg(c), st[0] ? " (SQLSTATE " : "", st, st[0] ? ")" : "");
    return buf;
}

/* ---- connections ------------------------------------------------------------------------ */

static void notice_to_log(void *arg, const char *message)
{
    pg_conn *c = arg;
    char *m = strdup(message);
    if (!m)
        return;
    size_t n = strlen(m);
    while (n > 0 && m[n - 1] == '\n')
        m[--n] = '\0';
    log_debug("server: %s", m);
    if (c && c->collect_notices) {
        char *grown = realloc(c->notices, c->notices_len + n + 2);
        if (grown) {
            c->notices = grown;
            memcpy(c->notices + c->notices_len, m, n);
            c->notices_len += n;
            c->notices[c->notices_len++] = '\n';
            c->notices[c->notices_len] = '\0';
        }
    }
    free(m);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t) s, (long) ((s - (double) (time_t) s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* libpq takes the user name, when none is given, from the operating system's user database
 * (getpwuid). In an empty root (a static binary in a scratch container) there is none, and libpq
 * says only "local user with ID N does not exist": say what to do. True when a user name is given
 * (conninfo user=, PGUSER, or a service that may name one) or the lookup works. */
static bool user_name_known(const char *conninfo)
{
    const char *env = getenv("PGUSER");
    if ((env && *env) || ((env = getenv("PGSERVICE")) && *env))
        return true;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo && *conninfo ? conninfo : "", &err);
    PQfreemem(err);
    if (!opts)
        return true; /* libpq reports the syntax error itself */
    bool given = false;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if ((!strcmp(o->keyword, "user") || !strcmp(o->keyword, "service")) && o->val && *o->val)
            given = true;
    PQconninfoFree(opts);
    return given || getpwuid(geteuid()) != NULL;
}

pg_conn *pg_connect(const char *conninfo, const char *app_name, double wait_seconds)
{
    return pg_connect_db(conninfo, NULL, app_name, wait_seconds);
}

pg_conn *pg_connect_db(const char *conninfo, const char *dbname, const char *app_name, double wait_seconds)
{
    /* libpq: with expand_dbname, the first "dbname" is a whole conninfo and a later "dbname" is a
     * plain database name that overrides the one inside it */
    const char *keys[4], *vals[4];
    int k = 0;
    if (conninfo && *conninfo) {
        keys[k] = "dbname";
        vals[k++] = conninfo;
    }
    if (dbname) {
        keys[k] = "dbname";
        vals[k++] = dbname;
    }
    keys[k] = "fallback_application_name";
    vals[k++] = app_name ? app_name : "pgmemctl";
    keys[k] = NULL;
    vals[k] = NULL;
    char *display = pg_redact_conninfo(conninfo);
    if (display && dbname) {
        size_t len = strlen(display) + strlen(dbname) + 16;
        char *d2 = malloc(len);
        if (d2)
            snprintf(d2, len, "%s (database %s)", display, dbname);
        free(display);
        display = d2;
    }
    if (!display)
        return NULL;
    if (!user_name_known(conninfo)) {
        log_error("could not connect to %s: no user name: the conninfo has no user=, PGUSER is not set, and "
                  "user ID %u has no entry in the system's user database (/etc/passwd); give user=NAME or set PGUSER",
                  display, (unsigned) geteuid());
        free(display);
        return NULL;
    }
    if (wait_seconds > 0) {
        double deadline = now_seconds() + wait_seconds;
        PGPing ping;
        bool said = false;
        while ((ping = PQpingParams(keys, vals, 1)) != PQPING_OK) {
            if (ping == PQPING_NO_ATTEMPT)
                break;
            if (now_seconds() >= deadline) {
                log_error("server at %s did not accept connections within %g s", display, wait_seconds);
                free(display);
                return NULL;
            }
            if (!said) {
                log_info("waiting for the server at %s to accept connections", display);
                said = true;
            }
            sleep_seconds(0.25);
        }
    }
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        log_error("out of memory connecting to %s", display);
        free(display);
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char *msg = strdup(PQerrorMessage(conn));
        if (msg) {
            size_t n = strlen(msg);
            while (n > 0 && msg[n - 1] == '\n')
                msg[--n] = '\0';
            /* one line: libpq puts each address tried and its hints on lines of their own */
            for (char *c = msg; *c; c++)
                if (*c == '\n')
                    *c = ' ';
        }
        log_error("could not connect to %s: %s", display, msg ? msg : "?");
        free(msg);
        PQfinish(conn);
        free(display);
        return NULL;
    }
    pg_conn *c = calloc(1, sizeof *c);
    if (!c) {
        PQfinish(conn);
        free(display);
        return NULL;
    }
    c->conn = conn;
    c->display = display;
    PQsetNoticeProcessor(conn, notice_to_log, c);
    /* keep client-side encoding and time zone predictable for parsing results */
    PGresult *r = PQexec(conn, "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'; SET DateStyle = 'ISO'");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        log_error("could not configure the session on %s: %s", display, PQerrorMessage(conn));
    PQclear(r);
    if (!ok) {
        pg_close(c);
        return NULL;
    }
    return c;
}

int pg_ping(const char *conninfo)
{
    const char *keys[] = {"dbname", NULL};
    const char *vals[] = {conninfo, NULL};
    switch (PQpingParams(keys, vals, 1)) {
    case PQPING_OK:
        return 1;
    case PQPING_NO_ATTEMPT:
        return -1;
    default:
        return 0;
    }
}

void pg_close(pg_conn *c)
{
    if (!c)
        return;
    if (c->pending)
        PQclear(c->pending);
    if (c->conn)
        PQfinish(c->conn);
    free(c->notices);
    free(c->display);
    free(c->errmsg);
    free(c);
}

const char *pg_display(const pg_conn *c) { return c->display; }
int pg_server_version(const pg_conn *c) { return PQserverVersion(c->conn); }
int pg_backend_pid(const pg_conn *c) { return PQbackendPID(c->conn); }
int pg_lib_version(void) { return PQlibVersion(); }
bool pg_in_transaction(const pg_conn *c) { return PQtransactionStatus(c->conn) != PQTRANS_IDLE; }

/* ---- queries ---------------------------------------------------------------------------- */

pg_result *pg_exec(pg_conn *c, const char *sql, int n, const char *const *params)
{
    set_error(c, "", "");
    PGresult *res = PQexecParams(c->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        set_error_from_result(c, res);
        PQclear(res);
        return NULL;
    }
    pg_result *r = malloc(sizeof *r);
    if (!r) {
        PQclear(res);
        set_error(c, "out of memory", "53200");
        return NULL;
    }
    r->res = res;
    return r;
}

bool pg_run(pg_conn *c, const char *sql, int n, const char *const *params)
{
    pg_result *r = pg_exec(c, sql, n, params);
    pg_clear(r);
    return r != NULL;
}

bool pg_run_script(pg_conn *c, const char *sql)
{
    set_error(c, "", "");
    if (!PQsendQuery(c->conn, sql)) {
        set_error(c, PQerrorMessage(c->conn), "");
        return false;
    }
    bool ok = true;
    PGresult *res;
    while ((res = PQgetResult(c->conn)) != NULL) { /* drain every result */
        ExecStatusType st = PQresultStatus(res);
        if (ok && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY) {
            set_error_from_result(c, res);
            ok = false;
        }
        PQclear(res);
    }
    return ok;
}

char *pg_query_text(pg_conn *c, const char *sql, int n, const char *const *params, bool *found)
{
    *found = false;
    pg_result *r = pg_exec(c, sql, n, params);
    if (!r)
        return NULL;
    char *out = NULL;
    if (pg_ntuples(r) > 0 && !pg_isnull(r, 0, 0)) {
        out = strdup(pg_value(r, 0, 0));
        *found = out != NULL;
    }
    pg_clear(r);
    return out;
}

bool pg_query_int64(pg_conn *c, const char *sql, int n, const char *const *params, int64_t *out)
{
    bool found;
    char *s = pg_query_text(c, sql, n, params, &found);
    if (!found) {
        if (!pg_errmsg(c)[0])
            set_error(c, "query returned no value", "");
        return false;
    }
    char *end;
    long long v = strtoll(s, &end, 10);
    bool ok = *s && *end == '\0';
    if (ok)
        *out = v;
    else
        set_error(c, "query returned a non-integer value", "");
    free(s);
    return ok;
}

int pg_ntuples(const pg_result *r) { return PQntuples(r->res); }
int pg_nfields(const pg_result *r) { return PQnfields(r->res); }
const char *pg_value(const pg_result *r, int row, int col) { return PQgetvalue(r->res, row, col); }
bool pg_isnull(const pg_result *r, int row, int col) { return PQgetisnull(r->res, row, col); }
int pg_getlength(const pg_result *r, int row, int col) { return PQgetlength(r->res, row, col); }
int pg_fnumber(const pg_result *r, const char *name) { return PQfnumber(r->res, name); }

int64_t pg_cmd_tuples(const pg_result *r)
{
    const char *s = PQcmdTuples(r->res);
    return *s ? strtoll(s, NULL, 10) : 0;
}

void pg_clear(pg_result *r)
{
    if (!r)
        return;
    PQclear(r->res);
    free(r);
}

/* ---- COPY ------------------------------------------------------------------------------- */

bool pg_copy_begin(pg_conn *c, const char *copy_sql)
{
    set_error(c, "", "");
    PGresult *res = PQexec(c->conn, copy_sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        set_error_from_result(c, res);
        PQclear(res);
        /* drain anything left so the connection is usable */
        while ((res = PQgetResult(c->conn)) != NULL)
            PQclear(res);
        return false;
    }
    PQclear(res);
    return true;
}

/* Collects the final result of a COPY after PQputCopyEnd; returns success. */
static bool copy_finish(pg_conn *c, int64_t *rows)
{
    bool ok = true;
    PGresult *res;
    while ((res = PQgetResult(c->conn)) != NULL) {
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            if (rows)
                *rows = *PQcmdTuples(res) ? strtoll(PQcmdTuples(res), NULL, 10) : 0;
        } else if (ok) {
            set_error_from_result(c, res);
            ok = false;
        }
        PQclear(res);
    }
    return ok;
}

bool pg_copy_put(pg_conn *c, const void *data, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int) len;
        if (PQputCopyData(c->conn, data, chunk) != 1) {
            set_error(c, PQerrorMessage(c->conn), "");
            PQputCopyEnd(c->conn, "client error");
            char saved[1024];
            snprintf(saved, sizeof saved, "%s", pg_errmsg(c));
            copy_finish(c, NULL);
            set_error(c, saved, pg_sqlstate(c));
            return false;
        }
        data = (const char *) data + chunk;
        len -= (size_t) chunk;
    }
    return true;
}

bool pg_copy_end(pg_conn *c, int64_t *rows)
{
    if (PQputCopyEnd(c->conn, NULL) != 1) {
        set_error(c, PQerrorMessage(c->conn), "");
        copy_finish(c, NULL);
        return false;
    }
    return copy_finish(c, rows);
}

void pg_copy_abort(pg_conn *c, const char *reason)
{
    PQputCopyEnd(c->conn, reason ? reason : "aborted by pgmemctl");
    PGresult *res;
    while ((res = PQgetResult(c->conn)) != NULL)
        PQclear(res);
}

/* ---- misc ------------------------------------------------------------------------------- */

/* A PQescape* result as a malloc'd copy (the libpq buffer freed), or NULL with the error stored. */
static char *escaped_copy(pg_conn *c, char *q)
{
    if (!q) {
        set_error(c, PQerrorMessage(c->conn), "");
        return NULL;
    }
    char *out = strdup(q);
    PQfreemem(q);
    return out;
}

char *pg_quote_ident(pg_conn *c, const char *ident)
{
    return escaped_copy(c, PQescapeIdentifier(c->conn, ident, strlen(ident)));
}

char *pg_quote_literal(pg_conn *c, const char *s)
{
    return escaped_copy(c, PQescapeLiteral(c->conn, s, strlen(s)));
}

bool pg_begin(pg_conn *c) { return pg_run(c, "BEGIN", 0, NULL); }
bool pg_commit(pg_conn *c) { return pg_run(c, "COMMIT", 0, NULL); }

void pg_rollback(pg_conn *c)
{
    if (PQtransactionStatus(c->conn) == PQTRANS_IDLE)
        return;
    PGresult *res = PQexec(c->conn, "ROLLBACK");
    PQclear(res);
}

int pg_settings_check(pg_conn *c, const char *const *names, const char *const *values, int n)
{
    if (n == 0)
        return -1;
    if (!pg_begin(c))
        return n;
    int bad = -1;
    for (int i = 0; i < n && bad < 0; i++)
        if (!pg_run(c, "SELECT set_config($1, $2, true)", 2, (const char *[]){names[i], values[i]}))
            bad = i;
    pg_rollback(c); /* keeps the error of the refused value in c */
    return bad;
}

int pg_advisory_lock(pg_conn *c, int64_t key, double timeout_seconds, int *holder_pid)
{
    char keybuf[32];
    snprintf(keybuf, sizeof keybuf, "%lld", (long long) key);
    const char *params[] = {keybuf};
    double deadline = now_seconds() + timeout_seconds;
    for (;;) {
        bool found;
        char *got = pg_query_text(c, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &found);
        if (!found) {
            free(got);
            return -1;
        }
        bool taken = strcmp(got, "t") == 0;
        free(got);
        if (taken)
            return 1;
        if (now_seconds() >= deadline) {
            if (holder_pid) {
                int64_t pid = 0;
                /* pg_locks shows a bigint key as classid = high 32 bits, objid = low 32 bits */
                if (!pg_query_int64(c,
                                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                                    "AND classid = (($1::bigint >> 32) & 4294967295)::oid "
                                    "AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1 LIMIT 1",
                                    1, params, &pid))
                    pid = 0;
                *holder_pid = (int) pid;
            }
            return 0;
        }
        sleep_seconds(0.2);
    }
}

bool pg_advisory_unlock(pg_conn *c, int64_t key)
{
    char keybuf[32];
    snprintf(keybuf, sizeof keybuf, "%lld", (long long) key);
    const char *params[] = {keybuf};
    return pg_run(c, "SELECT pg_advisory_unlock($1::bigint)", 1, params);
}

/* ---- asynchronous queries ----------------------------------------------------------------- */

bool pg_send(pg_conn *c, const char *sql, int n, const char *const *params)
{
    set_error(c, "", "");
    if (c->pending)
        PQclear(c->pending);
    c->pending = NULL;
    c->pending_failed = false;
    if (!PQsendQueryParams(c->conn, sql, n, NULL, params, NULL, NULL, 0)) {
        set_error(c, PQerrorMessage(c->conn), "");
        return false;
    }
    return true;
}

int pg_socket(const pg_conn *c) { return PQsocket(c->conn); }

int pg_poll(pg_conn *c, pg_result **out)
{
    *out = NULL;
    if (!PQconsumeInput(c->conn)) {
        set_error(c, PQerrorMessage(c->conn), "08006");
        return -1;
    }
    while (!PQisBusy(c->conn)) {
        PGresult *res = PQgetResult(c->conn);
        if (!res) { /* the query is complete */
            if (c->pending_failed || !c->pending)
                return PQstatus(c->conn) == CONNECTION_OK ? 1 : -1;
            pg_result *r = malloc(sizeof *r);
            if (!r) {
                set_error(c, "out of memory", "53200");
                PQclear(c->pending);
            } else {
                r->res = c->pending;
                *out = r;
            }
            c->pending = NULL;
            return 1;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            if (!c->pending && !c->pending_failed)
                c->pending = res;
            else
                PQclear(res);
        } else {
            if (!c->pending_failed)
                set_error_from_result(c, res);
            c->pending_failed = true;
            if (c->pending)
                PQclear(c->pending);
            c->pending = NULL;
            PQclear(res);
        }
    }
    return 0;
}

/* ---- notices ------------------------------------------------------------------------------ */

void pg_notices_begin(pg_conn *c)
{
    free(c->notices);
    c->notices = NULL;
    c->notices_len = 0;
    c->collect_notices = true;
}

char *pg_notices_end(pg_conn *c)
{
    c->collect_notices = false;
    char *out = c->notices;
    c->notices = NULL;
    c->notices_len = 0;
    return out;
}

/* ---- a child process's connection -------------------------------------------------------- */

/* The live connection's parameters with a value as "NAME=value": NAME the environment variable
 * (env; parameters without one are left out) or the conninfo keyword. */
static char **conn_params(const pg_conn *c, bool env_names, int *n)
{
    *n = 0;
    PQconninfoOption *opts = PQconninfo(c->conn);
    if (!opts)
        return NULL;
    int cap = 1;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        cap++;
    char **env = calloc((size_t) cap, sizeof *env);
    if (!env) {
        PQconninfoFree(opts);
        return NULL;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *name = env_names ? o->envvar : o->keyword;
        if (!name || !o->val || !*o->val)
            continue;
        size_t len = strlen(name) + strlen(o->val) + 2;
        char *kv = malloc(len);
        if (!kv) {
            for (int i = 0; i < *n; i++)
                free(env[i]);
            free(env);
            PQconninfoFree(opts);
            *n = 0;
            return NULL;
        }
        snprintf(kv, len, "%s=%s", name, o->val);
        env[(*n)++] = kv;
    }
    PQconninfoFree(opts);
    return env;
}

char **pg_child_env(const pg_conn *c, int *n) { return conn_params(c, true, n); }

char **pg_conn_params(const pg_conn *c, int *n) { return conn_params(c, false, n); }

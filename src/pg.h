/* pg.h — the only door to PostgreSQL: every libpq call in pgmemctl goes through this module.
 * Connections carry their last error (message + SQLSTATE) and a password-free conninfo for
 * display; queries take $n text parameters only; COPY FROM STDIN in text or binary format. */
#ifndef PGMEMCTL_PG_H
#define PGMEMCTL_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pg_conn pg_conn;
typedef struct pg_result pg_result;

/* Returns a newly allocated, password-free rendering of a conninfo (keyword/value string or
 * postgresql:// URI): the password in a URI's userinfo, a `password=` keyword or a `password`
 * URI parameter becomes "********". Text that libpq cannot parse is returned with the same
 * masking applied heuristically. Caller frees. NULL input gives "(default)". */
char *pg_redact_conninfo(const char *conninfo);

/* Registers with redact.c the password contained in conninfo (if any) and $PGPASSWORD, so no
 * later output can show them. */
void pg_register_secrets(const char *conninfo);

/* Connects. conninfo may be NULL/"" (libpq's PG* environment, service file and .pgpass apply).
 * wait_seconds > 0: first waits, polling PQping every 250 ms, until the server accepts
 * connections or the time runs out. application_name is set to app_name unless the conninfo
 * sets it. On failure returns NULL and logs the (password-free) reason. Caller closes.
 * When no user name is given anywhere (user=, PGUSER, a service) and the OS user database has no
 * entry for the effective user ID (an empty root), it fails before connecting, saying so. */
pg_conn *pg_connect(const char *conninfo, const char *app_name, double wait_seconds);

/* pg_connect to the database dbname (a plain name; NULL: the conninfo's own) of the server
 * conninfo names: dbname overrides any database inside conninfo, URI or keyword/value. The
 * display conninfo then ends with " (database NAME)". */
pg_conn *pg_connect_db(const char *conninfo, const char *dbname, const char *app_name, double wait_seconds);

/* One PQping of conninfo: 1 the server accepts connections, 0 not (yet: starting, refused, no
 * response), -1 the conninfo is unusable (no attempt made). Nothing is logged. */
int pg_ping(const char *conninfo);

/* Closes and frees; NULL allowed. */
void pg_close(pg_conn *c);

/* Password-free conninfo of this connection (owned by c). */
const char *pg_display(const pg_conn *c);

/* Last error of c: message (no trailing newline, "" if none; owned by c, valid until the next
 * call on c) and SQLSTATE (5 chars, "" if none). */
const char *pg_errmsg(const pg_conn *c);
const char *pg_sqlstate(const pg_conn *c);

/* The last error of c as "message (SQLSTATE xxxxx)", or the message alone when it has no
 * SQLSTATE (a client-side error), written to buf (len bytes, truncated to fit). Returns buf. */
const char *pg_error_text(const pg_conn *c, char *buf, size_t len);

/* Server version as an integer (e.g. 150020) and backend pid. */
int pg_server_version(const pg_conn *c);
int pg_backend_pid(const pg_conn *c);

/* Runs one statement with n text parameters ($1..$n; a NULL element is SQL NULL). Returns the
 * result (caller frees with pg_clear) when the command succeeded (tuples or command OK), else
 * NULL with the error stored in c (not logged: the caller adds context and logs it once). */
pg_result *pg_exec(pg_conn *c, const char *sql, int n, const char *const *params);

/* Runs a statement and discards the result; returns success. Same error behaviour. */
bool pg_run(pg_conn *c, const char *sql, int n, const char *const *params);

/* Runs a script of one or more statements with the simple query protocol (PQexec): used for
 * migration files. Stops at the first error (error stored in c); returns success. */
bool pg_run_script(pg_conn *c, const char *sql);

/* First column of the first row as a newly allocated string (caller frees); *found is false
 * (and NULL returned) when there is no row or the value is NULL. Returns NULL with *found
 * false on error too: check pg_errmsg(c)[0] to tell them apart, or use pg_query_ok. */
char *pg_query_text(pg_conn *c, const char *sql, int n, const char *const *params, bool *found);

/* First column of the first row as int64. Returns false on error, no row, NULL or a
 * non-integer value (error text says which). */
bool pg_query_int64(pg_conn *c, const char *sql, int n, const char *const *params, int64_t *out);

/* Result accessors: row/column are 0-based; values are text (owned by the result). */
int pg_ntuples(const pg_result *r);
int pg_nfields(const pg_result *r);
const char *pg_value(const pg_result *r, int row, int col);
bool pg_isnull(const pg_result *r, int row, int col);
int pg_getlength(const pg_result *r, int row, int col);
int pg_fnumber(const pg_result *r, const char *name);
/* Rows affected by INSERT/UPDATE/DELETE/COPY (0 when not applicable). */
int64_t pg_cmd_tuples(const pg_result *r);
void pg_clear(pg_result *r);

/* COPY ... FROM STDIN. pg_copy_begin runs the COPY statement; then pg_copy_put sends bytes
 * (buffered by libpq, blocking when the socket is full); pg_copy_end finishes and returns the
 * number of rows the server stored in *rows (may be NULL). On any error the COPY is aborted,
 * the error is stored in c and false is returned; the connection is usable again afterwards
 * (inside a transaction it is then in the aborted state until ROLLBACK). */
bool pg_copy_begin(pg_conn *c, const char *copy_sql);
bool pg_copy_put(pg_conn *c, const void *data, size_t len);
bool pg_copy_end(pg_conn *c, int64_t *rows);
/* Aborts a COPY in progress with the given reason (shown in the server log). */
void pg_copy_abort(pg_conn *c, const char *reason);

/* Quotes an identifier (PQescapeIdentifier). Returns a newly allocated string (free()), or
 * NULL on error. */
char *pg_quote_ident(pg_conn *c, const char *ident);

/* Quotes a string literal (PQescapeLiteral), for the places where a value cannot be a $n
 * parameter (DDL). Returns a newly allocated string (free()), or NULL on error (stored in c). */
char *pg_quote_literal(pg_conn *c, const char *s);

/* Transactions: thin wrappers over BEGIN/COMMIT/ROLLBACK. Rollback never fails loudly. */
bool pg_begin(pg_conn *c);
bool pg_commit(pg_conn *c);
void pg_rollback(pg_conn *c);

/* Asks the server whether it accepts n settings (names[i] = values[i], text as for SET): each is
 * tried with set_config(name, value, true) in one transaction that is then rolled back, so
 * nothing changes. Call it outside a transaction. Returns -1 when every value is accepted; the
 * index of the first one refused, with the server's error in c (pg_errmsg, pg_error_text); or
 * n when the check itself could not run (error in c). Nothing is logged. */
int pg_settings_check(pg_conn *c, const char *const *names, const char *const *values, int n);

/* Session advisory lock on key, polled with pg_try_advisory_lock every 200 ms for at most
 * timeout_seconds (never a blocking wait: a blocked waiter deadlocks with CREATE INDEX
 * CONCURRENTLY). Returns 1 when taken, 0 on time-out, -1 on error. When it times out and
 * holder_pid is not NULL, *holder_pid is the pid holding it (0 if unknown). */
int pg_advisory_lock(pg_conn *c, int64_t key, double timeout_seconds, int *holder_pid);
bool pg_advisory_unlock(pg_conn *c, int64_t key);

/* libpq's version (PQlibVersion), e.g. 150020. */
int pg_lib_version(void);

/* Library-level check that a connection is idle (no transaction open). */
bool pg_in_transaction(const pg_conn *c);

/* ---- asynchronous queries: several connections driven from one thread -------------------------
 * pg_send starts one statement with n text parameters (PQsendQueryParams) and returns at once;
 * false (error stored in c) when it could not be sent. Then wait until pg_socket(c) is readable
 * (poll(2)) and call pg_poll, which reads what arrived without blocking and returns:
 *    0  the result is not complete yet (wait for the socket again);
 *    1  complete: *out is the result (caller frees with pg_clear), or NULL when the statement
 *       failed (error and SQLSTATE stored in c, as pg_exec does);
 *   -1  the connection broke (error stored in c); *out is NULL.
 * Only one statement may be in flight per connection; the connection is idle again after 1. */
bool pg_send(pg_conn *c, const char *sql, int n, const char *const *params);
int pg_socket(const pg_conn *c);
int pg_poll(pg_conn *c, pg_result **out);

/* ---- notices ----------------------------------------------------------------------------------
 * Between pg_notices_begin and pg_notices_end, the text of every NOTICE/WARNING the server sends
 * on c (primary message, as libpq formats it, e.g. "NOTICE:  hnsw graph no longer fits into
 * maintenance_work_mem after 5000 tuples") is collected, one per line. pg_notices_end returns
 * the collected text (newly allocated, caller frees) or NULL when none came. Notices are also
 * logged at debug level as always. */
void pg_notices_begin(pg_conn *c);
char *pg_notices_end(pg_conn *c);

/* The live connection's parameters (PQconninfo) as libpq environment settings "PGHOST=…",
 * "PGPORT=…", "PGDATABASE=…", "PGUSER=…", "PGPASSWORD=…", "PGSSLMODE=…" … — only those with a
 * value and an environment variable — so that a child program (pgbench) connects exactly as c
 * did without a password on its command line. Returns a newly allocated array of *n newly
 * allocated strings (free each, then the array), or NULL with *n = 0 when out of memory. The
 * strings hold the password: never log them. */
char **pg_child_env(const pg_conn *c, int *n);

/* The same parameters by their conninfo keywords ("host=…", "port=…", "dbname=…", "user=…",
 * "password=…" …, every one with a value), so that a server can be given a connection string that
 * reaches what c reaches (CREATE SUBSCRIPTION … CONNECTION). Same ownership; they hold the
 * password: never log them. */
char **pg_conn_params(const pg_conn *c, int *n);

#endif

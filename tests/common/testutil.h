/* testutil.h — helpers shared by the Criterion tests: a fresh database per test on the sandbox
 * cluster, running the pgmemctl binary with its output captured, JSON and SQL shortcuts, a
 * catalog snapshot for before/after comparisons, temp files, and a leak check per test.
 *
 * Environment (set by scripts/run-tests):
 *   PGMEMCTL_TEST_URL  postgresql:// URI of a superuser connection to the test cluster
 *   PGMEMCTL_BIN       absolute path of the pgmemctl binary under test
 *   PGMEMCTL_REPO      absolute path of the repository root
 *   PGMEMCTL_TEST_TLS_URL  URI of a superuser connection to a second cluster with ssl = on, over
 *                      TLS checked against its private CA (host=localhost, sslmode=verify-full,
 *                      sslrootcert=PGMEMCTL_TEST_TLS_CA)
 *   PGMEMCTL_TEST_TLS_CA   the CA certificate (PEM) that signed that cluster's certificate
 *   PGMEMCTL_PG16_BINDIR, PGMEMCTL_PG17_BINDIR, PGMEMCTL_PG15_MAIN_BINDIR  PostgreSQL installations
 *                      for the major-upgrade tests (scripts/install-deps --with-pg16 / --with-pg17 /
 *                      --with-pg15-main)
 *
 * Every helper asserts (cr_assert) instead of returning an error: a failing helper fails the test
 * that called it. Strings returned by helpers are malloc'd and freed by the caller with free(). */
#ifndef PGMEMCTL_TESTUTIL_H
#define PGMEMCTL_TESTUTIL_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* ---- environment ------------------------------------------------------------------------- */

/* $PGMEMCTL_TEST_URL, $PGMEMCTL_BIN, $PGMEMCTL_REPO; each asserts that the variable is set. */
const char *tu_test_url(void);
const char *tu_bin(void);
const char *tu_repo(void);

/* $PGMEMCTL_TEST_TLS_URL and $PGMEMCTL_TEST_TLS_CA (the TLS sandbox); each asserts it is set. */
const char *tu_test_tls_url(void);
const char *tu_test_tls_ca(void);

/* Runs scripts/make-test-ca in a new temporary directory and returns that directory, holding
 * ca.crt, ca.key, server.crt and server.key (a private CA and a certificate for localhost,
 * 127.0.0.1 and ::1 signed by it; see the script). Remove it with tu_rmtree. */
char *tu_make_test_ca(void);

/* Host and port of PGMEMCTL_TEST_URL (as libpq parses it), newly allocated. */
char *tu_test_host(void);
char *tu_test_port(void);

/* ---- sandboxes of other PostgreSQL versions (scripts/pg-sandbox) ------------------------ */

/* $name (a directory the tests need, e.g. "PGMEMCTL_PG16_BINDIR"); asserts that it is set. */
const char *tu_env_dir(const char *name);

/* Runs scripts/pg-sandbox with args (NULL-terminated, at most 10; no shell) and returns its stdout
 * with the trailing newline and blanks cut (for `start`: the sandbox's URI); asserts exit 0. */
char *tu_sandbox(const char *const *args);

/* A sandbox name unique to this test process: "<prefix><pid>-<counter>-<tag>". */
char *tu_sandbox_name(const char *prefix, const char *tag);

/* Starts (creating it if needed) the sandbox name with the PostgreSQL 16.14 server of
 * $PGMEMCTL_PG16_BINDIR (no pgvector: the package has no headers to build it against) and returns
 * its URI; asserts that it runs 16. Stop it with tu_sandbox((const char *[]){"stop", name, NULL}). */
char *tu_pg16_sandbox(const char *name);

/* ---- databases --------------------------------------------------------------------------- */

/* Creates an empty database (from template1, no extensions) named t_<pid>_<counter>_<random>
 * on the cluster of PGMEMCTL_TEST_URL and returns a URI for it (same user, host, port and
 * parameters; only the database differs). */
char *tu_fresh_db(void);

/* The same on the cluster of server_uri (e.g. tu_test_tls_url()): the new database's URI keeps
 * server_uri's user, host, port and parameters (sslmode, sslrootcert …). */
char *tu_fresh_db_at(const char *server_uri);

/* tu_fresh_db with the memory-store schema: `pgmemctl migrate up` run on it (asserted). */
char *tu_migrated_db(void);

/* The database name inside a URI returned by tu_fresh_db (newly allocated). */
char *tu_db_name(const char *uri);

/* Drops a database created by tu_fresh_db (WITH (FORCE): open sessions are terminated).
 * Tests call it at their end when they pass; a failed test leaves its database for inspection
 * (the sandbox is thrown away anyway). */
void tu_drop_db(const char *uri);

/* Drops a database made by tu_fresh_db_at(server_uri). */
void tu_drop_db_at(const char *server_uri, const char *uri);

/* ---- running pgmemctl -------------------------------------------------------------------- */

typedef struct {
    int status;   /* exit status, or 128 + signal number when killed by a signal */
    char *out;    /* everything written to stdout, NUL-terminated (never NULL) */
    char *err;    /* everything written to stderr, NUL-terminated (never NULL) */
    double seconds; /* wall-clock run time */
} tu_run_result;

/* Runs $PGMEMCTL_BIN with argv[1..] as its arguments (argv is NULL-terminated; argv[0] is only
 * the program name the child sees as its argv[0] — use "pgmemctl"). stdout and stderr are
 * captured completely (through unlinked temporary files, so there is no pipe to fill), stdin
 * is /dev/null, the working directory is "/" (so no ./pgmemctl.yaml is picked up), and the
 * environment is the test's minus DATABASE_URL and every variable starting with "PG" (no
 * PGPASSWORD, PGHOST, PGMEMCTL_* option settings leak in). A run is killed after 300 s.
 * The test fails if stderr contains a sanitizer report (AddressSanitizer, LeakSanitizer or a
 * UBSan "runtime error:"). Release with tu_run_free. */
tu_run_result tu_run(const char *const *argv);

/* Like tu_run with extra environment: env_kv is a NULL-terminated list of "NAME=value"
 * strings added to (or replacing in) the child's environment, and "NAME" without '=' removes
 * NAME. env_kv may be NULL. */
tu_run_result tu_run_env(const char *const *argv, const char *const *env_kv);

/* Like tu_run_env, but executes prog (a path) with argv instead of pgmemctl: e.g. /usr/bin/env
 * -i /usr/sbin/chroot ROOT /pgmemctl … for the static binary in an empty root. */
tu_run_result tu_run_prog(const char *prog, const char *const *argv, const char *const *env_kv);

/* Asserts a run's exit status (what: the step, for the message), showing both streams when it
 * differs. */
void tu_expect_status(const tu_run_result *r, int want, const char *what);

/* The same in two halves, to run several processes at once: tu_spawn starts the child and
 * returns at once; tu_wait waits for it (same 300 s limit), collects its output and frees p. */
typedef struct tu_proc tu_proc;
tu_proc *tu_spawn(const char *const *argv, const char *const *env_kv);
tu_run_result tu_wait(tu_proc *p);

void tu_run_free(tu_run_result *r);

/* Parses text (a run's stdout) as JSON and asserts it holds exactly one JSON document (only
 * white space around it). Caller frees with cJSON_Delete. */
cJSON *tu_json(const char *text);

/* obj[name] as a string / number / bool, asserting the member exists with that type. The string
 * is owned by obj. */
const char *tu_json_str(const cJSON *obj, const char *name);
double tu_json_num(const cJSON *obj, const char *name);
bool tu_json_bool(const cJSON *obj, const char *name);
/* obj[name] as an array, asserting it is one; returns the array (owned by obj). */
const cJSON *tu_json_array(const cJSON *obj, const char *name);
/* obj[name] as an object, asserting it is one (owned by obj). */
const cJSON *tu_json_obj(const cJSON *obj, const char *name);

/* ---- SQL (libpq directly, one short connection per call) --------------------------------- */

/* First column of the first row, newly allocated; NULL when there is no row or it is NULL.
 * Asserts that the query succeeded. */
char *tu_query_value(const char *uri, const char *sql);

/* First column of the first row as an integer; asserts it exists and is an integer. */
long long tu_query_int(const char *uri, const char *sql);

/* Runs sql (one or more statements, simple protocol) and asserts that it succeeded. */
void tu_exec(const char *uri, const char *sql);

/* A deterministic text dump of the catalog of every user schema of the database: schemas,
 * installed extensions, relations with their columns (type with typmod, default, NOT NULL,
 * identity, generated expression), sequences, views, indexes (definition, validity),
 * constraints, functions (full definition), triggers and user types. Objects that belong to an
 * extension are listed only through the extension. No row data (so the rows of
 * pgmemctl_schema_migrations are excluded), no OIDs. One "kind|name|…" entry per object (a
 * function's definition spans several lines), sorted within each kind, kinds in the order above. */
char *tu_catalog_snapshot(const char *uri);

/* ---- files ------------------------------------------------------------------------------- */

/* Creates a new empty directory under $TMPDIR (or /tmp); returns its path. */
char *tu_tempdir(void);

/* Writes content to dir/name (created or truncated); returns the path (newly allocated). */
char *tu_write_file(const char *dir, const char *name, const char *content);

/* Reads a whole file (asserting it can be read); newly allocated. */
char *tu_read_file(const char *path);

/* Removes a directory tree (best effort). */
void tu_rmtree(const char *dir);

/* printf into a newly allocated string. */
char *tu_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when haystack contains needle (both may be NULL: false). */
bool tu_contains(const char *haystack, const char *needle);

/* ---- stderr capture (unit tests of functions that log) ----------------------------------- */

/* Points the stdio stream stderr (what log.c writes to) at a temporary file until
 * tu_stderr_end, which restores it and returns everything written meanwhile (newly allocated).
 * File descriptor 2 is left alone, so sanitizer reports still reach the test log. Not nestable. */
void tu_stderr_begin(void);
char *tu_stderr_end(void);

/* ---- leaks ------------------------------------------------------------------------------- */

/* A Criterion .fini for test suites: runs LeakSanitizer's check at the end of each test and
 * aborts the worker when the test leaked (Criterion then warns that the test "crashed during
 * its setup or teardown", and scripts/run-tests counts it as failed). A no-op without ASan.
 *   TestSuite(my_suite, .fini = tu_leak_check);                                          */
void tu_leak_check(void);

#endif

/* testutil.c — test helpers: fresh databases, running the pgmemctl binary, JSON/SQL shortcuts,
 * catalog snapshots, temp files, stderr capture and a per-test leak check (see testutil.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "common/testutil.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

extern char **environ;

#define TU_RUN_LIMIT_SECONDS 300.0

/* ---- small things ------------------------------------------------------------------------ */

char *tu_printf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0, "tu_printf: bad format");
    char *s = malloc((size_t) n + 1);
    cr_assert(s, "out of memory");
    vsnprintf(s, (size_t) n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

bool tu_contains(const char *haystack, const char *needle)
{
    return haystack && needle && strstr(haystack, needle) != NULL;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run the tests through scripts/run-tests (make check)", name);
    return v;
}

const char *tu_test_url(void) { return need_env("PGMEMCTL_TEST_URL"); }
const char *tu_bin(void) { return need_env("PGMEMCTL_BIN"); }
const char *tu_repo(void) { return need_env("PGMEMCTL_REPO"); }
const char *tu_test_tls_url(void) { return need_env("PGMEMCTL_TEST_TLS_URL"); }
const char *tu_test_tls_ca(void) { return need_env("PGMEMCTL_TEST_TLS_CA"); }

const char *tu_env_dir(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set (scripts/run-tests sets it from scripts/install-deps)", name);
    return v;
}

char *tu_sandbox(const char *const *args)
{
    char *dir = tu_tempdir();
    char *out_path = tu_printf("%s/out", dir), *err_path = tu_printf("%s/err", dir);
    char *script = tu_printf("%s/scripts/pg-sandbox", tu_repo());
    const char *argv[12] = {script};
    int n = 1;
    for (int i = 0; args[i] && n < 11; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork");
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        execv(script, (char *const *) argv);
        _exit(127);
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    char *out = tu_read_file(out_path);
    char *err = tu_read_file(err_path);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pg-sandbox %s %s failed (%d): %s", args[0],
              args[1] ? args[1] : "", st, err);
    tu_rmtree(dir);
    free(dir);
    free(out_path);
    free(err_path);
    free(script);
    free(err);
    size_t len = strlen(out);
    while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
    return out;
}

char *tu_sandbox_name(const char *prefix, const char *tag)
{
    static int counter;
    return tu_printf("%s%d-%d-%s", prefix, (int) getpid(), ++counter, tag);
}

char *tu_pg16_sandbox(const char *name)
{
    char *uri = tu_sandbox((const char *[]){"start", "--bindir", tu_env_dir("PGMEMCTL_PG16_BINDIR"), name, NULL});
    long long v = tu_query_int(uri, "SELECT current_setting('server_version_num')::int");
    cr_assert(v >= 160000 && v < 170000, "sandbox %s runs PostgreSQL %lld, not 16", name, v);
    return uri;
}

/* Reads everything from fd (from its start) into a new NUL-terminated string. */
static char *slurp_fd(int fd)
{
    cr_assert(lseek(fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    cr_assert(buf, "out of memory");
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            cr_assert(nb, "out of memory");
            buf = nb;
        }
        ssize_t got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        cr_assert(got >= 0, "read: %s", strerror(errno));
        if (got == 0)
            break;
        n += (size_t) got;
    }
    buf[n] = '\0';
    return buf;
}

/* An open, already unlinked temporary file. */
static int anon_tmpfile(void)
{
    const char *tmp = getenv("TMPDIR");
    char *path = tu_printf("%s/pgmemctl-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    cr_assert(fd >= 0, "mkstemp %s: %s", path, strerror(errno));
    unlink(path);
    free(path);
    return fd;
}

/* ---- files ------------------------------------------------------------------------------- */

char *tu_tempdir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *path = tu_printf("%s/pgmemctl-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(path), "mkdtemp %s: %s", path, strerror(errno));
    return path;
}

char *tu_write_file(const char *dir, const char *name, const char *content)
{
    char *path = tu_printf("%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot create %s: %s", path, strerror(errno));
    size_t len = strlen(content);
    cr_assert(fwrite(content, 1, len, f) == len, "cannot write %s", path);
    cr_assert(fclose(f) == 0, "cannot write %s: %s", path, strerror(errno));
    return path;
}

char *tu_read_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    cr_assert(fd >= 0, "cannot open %s: %s", path, strerror(errno));
    char *s = slurp_fd(fd);
    close(fd);
    return s;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    remove(path);
    return 0;
}

void tu_rmtree(const char *dir)
{
    if (dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_make_test_ca(void)
{
    char *dir = tu_tempdir();
    char *script = tu_printf("%s/scripts/make-test-ca", tu_repo());
    pid_t pid;
    char *const argv[] = {script, dir, NULL};
    int out = anon_tmpfile(); /* its progress lines: shown only when it fails */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_adddup2(&fa, out, 2);
    fflush(stdout);
    fflush(stderr);
    int rc = posix_spawn(&pid, script, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "posix_spawn %s: %s", script, strerror(rc));
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char *log = slurp_fd(out);
        cr_assert_fail("%s %s failed (status 0x%x):\n%s", script, dir, st, log);
    }
    close(out);
    free(script);
    return dir;
}

/* ---- stderr capture ---------------------------------------------------------------------- */

/* Only the stdio stream is swapped, not file descriptor 2: sanitizer reports (written to fd 2)
 * still reach the test log even when the process dies while capturing. */
static FILE *capture, *saved_stderr;

void tu_stderr_begin(void)
{
    cr_assert(!capture, "tu_stderr_begin: already capturing");
    fflush(stderr);
    capture = fdopen(anon_tmpfile(), "w+");
    cr_assert(capture, "fdopen: %s", strerror(errno));
    saved_stderr = stderr;
    stderr = capture;
}

char *tu_stderr_end(void)
{
    cr_assert(capture, "tu_stderr_end without tu_stderr_begin");
    fflush(capture);
    stderr = saved_stderr;
    char *text = slurp_fd(fileno(capture));
    fclose(capture);
    capture = NULL;
    return text;
}

/* ---- leaks ------------------------------------------------------------------------------- */

void tu_leak_check(void)
{
#if defined(__SANITIZE_ADDRESS__)
    if (__lsan_do_recoverable_leak_check()) {
        fprintf(stderr, "tu_leak_check: this test leaked memory (LeakSanitizer report above)\n");
        fflush(stderr);
        abort();
    }
#endif
}

/* ---- libpq ------------------------------------------------------------------------------- */

static void quiet_notices(void *arg, const char *msg)
{
    (void) arg;
    (void) msg;
}

static PGconn *connect_or_fail(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    cr_assert(c, "out of memory");
    if (PQstatus(c) != CONNECTION_OK) {
        char *msg = strdup(PQerrorMessage(c));
        PQfinish(c);
        cr_assert_fail("cannot connect to %s: %s", uri, msg ? msg : "?");
    }
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    return c;
}

/* Runs sql; on failure closes c and fails the test with the error. */
static PGresult *exec_or_fail(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        char *msg = strdup(PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(c);
        cr_assert_fail("SQL failed: %s\n  statement: %s", msg ? msg : "?", sql);
    }
    return r;
}

char *tu_query_value(const char *uri, const char *sql)
{
    PGconn *c = connect_or_fail(uri);
    PGresult *r = exec_or_fail(c, sql);
    char *out = NULL;
    if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0)) {
        out = strdup(PQgetvalue(r, 0, 0));
        cr_assert(out, "out of memory");
    }
    PQclear(r);
    PQfinish(c);
    return out;
}

long long tu_query_int(const char *uri, const char *sql)
{
    char *v = tu_query_value(uri, sql);
    cr_assert(v, "query returned no value: %s", sql);
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    bool ok = *v && !*end && !errno;
    char copy[64];
    snprintf(copy, sizeof copy, "%s", v);
    free(v);
    cr_assert(ok, "query returned \"%s\", not an integer: %s", copy, sql);
    return n;
}

void tu_exec(const char *uri, const char *sql)
{
    PGconn *c = connect_or_fail(uri);
    PQclear(exec_or_fail(c, sql));
    PQfinish(c);
}

static char *conninfo_value(const char *conninfo, const char *keyword)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        char *msg = strdup(err ? err : "?");
        PQfreemem(err);
        cr_assert_fail("cannot parse conninfo \"%s\": %s", conninfo, msg);
    }
    char *out = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, keyword) && o->val)
            out = strdup(o->val);
    PQconninfoFree(opts);
    return out;
}

char *tu_test_host(void)
{
    char *h = conninfo_value(tu_test_url(), "host");
    if (!h)
        h = conninfo_value(tu_test_url(), "hostaddr");
    return h ? h : strdup("127.0.0.1");
}

char *tu_test_port(void)
{
    char *p = conninfo_value(tu_test_url(), "port");
    return p ? p : strdup("5432");
}

char *tu_db_name(const char *uri)
{
    char *d = conninfo_value(uri, "dbname");
    cr_assert(d, "no database name in %s", uri);
    return d;
}

/* The test URL with its database replaced by dbname. */
static char *url_with_db(const char *base, const char *dbname)
{
    const char *scheme = strstr(base, "://");
    if (!scheme || (strncmp(base, "postgresql://", 13) != 0 && strncmp(base, "postgres://", 11) != 0))
        return tu_printf("%s dbname=%s", base, dbname); /* keyword/value: the last dbname wins */
    const char *auth = scheme + 3;
    const char *auth_end = auth + strcspn(auth, "/?");
    const char *query = strchr(auth_end, '?');
    return tu_printf("%.*s/%s%s", (int) (auth_end - base), base, dbname, query ? query : "");
}

char *tu_fresh_db(void)
{
    return tu_fresh_db_at(tu_test_url());
}

char *tu_migrated_db(void)
{
    char *uri = tu_fresh_db();
    tu_run_result r = tu_run((const char *[]){"pgmemctl", "-d", uri, "migrate", "up", NULL});
    cr_assert_eq(r.status, 0, "migrate up failed (%d):\n%s", r.status, r.err);
    tu_run_free(&r);
    return uri;
}

char *tu_fresh_db_at(const char *server_uri)
{
    static unsigned counter;
    unsigned rnd = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &rnd, sizeof rnd) != (ssize_t) sizeof rnd)
            rnd = 0;
        close(fd);
    }
    if (!rnd)
        rnd = (unsigned) time(NULL) ^ (unsigned) clock();
    char name[64];
    snprintf(name, sizeof name, "t_%ld_%u_%08x", (long) getpid(), ++counter, rnd);
    char *sql = tu_printf("CREATE DATABASE \"%s\" TEMPLATE template1", name);
    tu_exec(server_uri, sql);
    free(sql);
    return url_with_db(server_uri, name);
}

void tu_drop_db(const char *uri)
{
    tu_drop_db_at(tu_test_url(), uri);
}

void tu_drop_db_at(const char *server_uri, const char *uri)
{
    char *name = tu_db_name(uri);
    cr_assert(strncmp(name, "t_", 2) == 0, "tu_drop_db: %s was not made by tu_fresh_db", name);
    char *sql = tu_printf("DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
    tu_exec(server_uri, sql);
    free(sql);
    free(name);
}

/* ---- catalog snapshot -------------------------------------------------------------------- */

#define USER_NS(n)                                                                                  \
    "(" n ".nspname NOT IN ('pg_catalog', 'information_schema') AND " n ".nspname NOT LIKE 'pg\\_toast%'" \
    " AND " n ".nspname NOT LIKE 'pg\\_temp\\_%')"
#define NOT_EXT_MEMBER(cls, oid)                                                                    \
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '" cls "'::regclass AND d.objid = " oid \
    " AND d.deptype = 'e')"

/* Each query yields one text column, one line per object. Sorted by the caller. */
static const char *const SNAPSHOT_QUERIES[] = {
    /* schemas */
    "SELECT format('schema|%s|owner=%s', n.nspname, pg_get_userbyid(n.nspowner))"
    " FROM pg_namespace n WHERE " USER_NS("n"),
    /* extensions */
    "SELECT format('extension|%s|%s|schema=%s', e.extname, e.extversion, n.nspname)"
    " FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace",
    /* relations (tables, views, sequences, composite types, ...) */
    "SELECT format('relation|%s.%s|kind=%s|persistence=%s|rls=%s|options=%s', n.nspname, c.relname, c.relkind,"
    " c.relpersistence, c.relrowsecurity, coalesce(array_to_string(c.reloptions, ','), ''))"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE " USER_NS("n") " AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')"
    " AND " NOT_EXT_MEMBER("pg_class", "c.oid"),
    /* columns, numbered by position among the live columns */
    "SELECT format('column|%s.%s|%s|%s|%s|notnull=%s|default=%s|identity=%s|generated=%s|collation=%s',"
    " n.nspname, c.relname, lpad((row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum))::text, 4, '0'),"
    " a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
    " coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''), a.attidentity, a.attgenerated,"
    " coalesce(co.collname, ''))"
    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum"
    " LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0"
    " WHERE " USER_NS("n") " AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND a.attnum > 0"
    " AND NOT a.attisdropped AND " NOT_EXT_MEMBER("pg_class", "c.oid"),
    /* sequences and what owns them */
    "SELECT format('sequence|%s.%s|%s|start=%s|inc=%s|min=%s|max=%s|cache=%s|cycle=%s|owned_by=%s', n.nspname,"
    " c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,"
    " s.seqcycle, coalesce((SELECT format('%s.%s', d.refobjid::regclass, a.attname) FROM pg_depend d"
    " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
    " WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass"
    " AND d.deptype IN ('a', 'i') LIMIT 1), ''))"
    " FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE " USER_NS("n") " AND " NOT_EXT_MEMBER("pg_class", "c.oid"),
    /* views */
    "SELECT format('view|%s.%s|%s', n.nspname, c.relname, pg_get_viewdef(c.oid))"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE " USER_NS("n") " AND c.relkind IN ('v', 'm') AND " NOT_EXT_MEMBER("pg_class", "c.oid"),
    /* indexes */
    "SELECT format('index|%s.%s|on=%s|valid=%s|ready=%s|%s', n.nspname, ic.relname, t.relname, i.indisvalid,"
    " i.indisready, pg_get_indexdef(i.indexrelid))"
    " FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
    " JOIN pg_namespace n ON n.oid = ic.relnamespace"
    " WHERE " USER_NS("n") " AND " NOT_EXT_MEMBER("pg_class", "t.oid"),
    /* constraints (tables and domains) */
    "SELECT format('constraint|%s.%s|%s|type=%s|%s', n.nspname, coalesce(t.relname, ty.typname, ''),"
    " con.conname, con.contype, pg_get_constraintdef(con.oid))"
    " FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace"
    " LEFT JOIN pg_class t ON t.oid = con.conrelid LEFT JOIN pg_type ty ON ty.oid = con.contypid"
    " WHERE " USER_NS("n") " AND " NOT_EXT_MEMBER("pg_constraint", "con.oid"),
    /* functions and procedures */
    "SELECT format('function|%s.%s(%s)|kind=%s|%s', n.nspname, p.proname,"
    " pg_get_function_identity_arguments(p.oid), p.prokind,"
    " CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid) ELSE '' END)"
    " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE " USER_NS("n") " AND " NOT_EXT_MEMBER("pg_proc", "p.oid"),
    /* triggers */
    "SELECT format('trigger|%s.%s|%s|enabled=%s|%s', n.nspname, c.relname, t.tgname, t.tgenabled,"
    " pg_get_triggerdef(t.oid))"
    " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE " USER_NS("n") " AND NOT t.tgisinternal",
    /* user types: enums, domains, ranges, multiranges */
    "SELECT format('type|%s.%s|%s|%s', n.nspname, t.typname, t.typtype, CASE t.typtype"
    " WHEN 'e' THEN (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e"
    " WHERE e.enumtypid = t.oid)"
    " WHEN 'd' THEN format('%s notnull=%s default=%s', format_type(t.typbasetype, t.typtypmod), t.typnotnull,"
    " coalesce(t.typdefault, ''))"
    " ELSE '' END)"
    " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
    " WHERE " USER_NS("n") " AND t.typtype IN ('e', 'd', 'r', 'm') AND " NOT_EXT_MEMBER("pg_type", "t.oid"),
};

char *tu_catalog_snapshot(const char *uri)
{
    PGconn *c = connect_or_fail(uri);
    size_t cap = 16384, len = 0;
    char *out = malloc(cap);
    cr_assert(out, "out of memory");
    out[0] = '\0';
    for (size_t q = 0; q < sizeof SNAPSHOT_QUERIES / sizeof SNAPSHOT_QUERIES[0]; q++) {
        char *sql = tu_printf("SELECT line FROM (%s) AS s(line) ORDER BY line COLLATE \"C\"", SNAPSHOT_QUERIES[q]);
        PGresult *r = exec_or_fail(c, sql);
        free(sql);
        for (int i = 0; i < PQntuples(r); i++) {
            const char *line = PQgetisnull(r, i, 0) ? "(null)" : PQgetvalue(r, i, 0);
            size_t need = strlen(line) + 2;
            if (len + need >= cap) {
                while (len + need >= cap)
                    cap *= 2;
                char *n = realloc(out, cap);
                cr_assert(n, "out of memory");
                out = n;
            }
            memcpy(out + len, line, need - 2);
            len += need - 2;
            out[len++] = '\n';
            out[len] = '\0';
        }
        PQclear(r);
    }
    PQfinish(c);
    return out;
}

/* ---- running pgmemctl -------------------------------------------------------------------- */

struct tu_proc {
    pid_t pid;
    int outfd, errfd;
    double t0;
    char *argv0;
};

static bool env_name_is(const char *entry, const char *name, size_t nlen)
{
    return strncmp(entry, name, nlen) == 0 && (entry[nlen] == '=' || entry[nlen] == '\0');
}

/* The child's environment: ours minus DATABASE_URL and PG*, then env_kv applied. The strings
 * are borrowed (from environ and env_kv); only the array is allocated. */
static char **child_env(const char *const *env_kv)
{
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    if (env_kv)
        while (env_kv[extra])
            extra++;
    char **env = calloc(n + extra + 1, sizeof *env);
    cr_assert(env, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i];
        if (strncmp(e, "PG", 2) == 0 || env_name_is(e, "DATABASE_URL", 12))
            continue;
        env[k++] = environ[i];
    }
    for (size_t j = 0; j < extra; j++) {
        const char *kv = env_kv[j];
        const char *eq = strchr(kv, '=');
        size_t nlen = eq ? (size_t) (eq - kv) : strlen(kv);
        size_t w = 0;
        for (size_t i = 0; i < k; i++) /* drop any earlier NAME */
            if (!env_name_is(env[i], kv, nlen))
                env[w++] = env[i];
        k = w;
        if (eq)
            env[k++] = (char *) kv;
    }
    env[k] = NULL;
    return env;
}

static tu_proc *spawn_prog(const char *bin, const char *const *argv, const char *const *env_kv)
{
    cr_assert(argv && argv[0], "tu_spawn: argv must hold at least the program name");
    tu_proc *p = calloc(1, sizeof *p);
    cr_assert(p, "out of memory");
    p->outfd = anon_tmpfile();
    p->errfd = anon_tmpfile();
    p->argv0 = strdup(argv[1] ? argv[1] : argv[0]);
    char **env = child_env(env_kv);
    fflush(stdout);
    fflush(stderr);
    p->t0 = now_seconds();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p->outfd, 1) < 0 || dup2(p->errfd, 2) < 0 ||
            chdir("/") != 0)
            _exit(126);
        execve(bin, (char *const *) argv, env);
        dprintf(2, "tu_spawn: cannot execute %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    free(env);
    p->pid = pid;
    return p;
}

static void check_sanitizers(const tu_run_result *r, const char *what)
{
    static const char *const markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                          "runtime error:", "WARNING: AddressSanitizer"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        cr_assert(!tu_contains(r->err, markers[i]), "pgmemctl %s: sanitizer report on stderr:\n%s", what, r->err);
}

tu_run_result tu_wait(tu_proc *p)
{
    tu_run_result r = {0};
    int st = 0;
    double deadline = p->t0 + TU_RUN_LIMIT_SECONDS;
    bool killed = false;
    for (;;) {
        pid_t w = waitpid(p->pid, &st, WNOHANG);
        if (w == p->pid)
            break;
        if (w < 0 && errno != EINTR)
            cr_assert_fail("waitpid: %s", strerror(errno));
        if (!killed && now_seconds() > deadline) {
            kill(p->pid, SIGKILL);
            killed = true;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    r.seconds = now_seconds() - p->t0;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
    r.out = slurp_fd(p->outfd);
    r.err = slurp_fd(p->errfd);
    close(p->outfd);
    close(p->errfd);
    char what[128];
    snprintf(what, sizeof what, "%s", p->argv0 ? p->argv0 : "?");
    free(p->argv0);
    free(p);
    cr_assert(!killed, "pgmemctl %s: still running after %.0f s, killed; stderr:\n%s", what, TU_RUN_LIMIT_SECONDS,
              r.err);
    check_sanitizers(&r, what);
    return r;
}

void tu_expect_status(const tu_run_result *r, int want, const char *what)
{
    cr_assert_eq(r->status, want, "%s: exit status %d, expected %d\n--- stdout ---\n%s\n--- stderr ---\n%s", what,
                 r->status, want, r->out, r->err);
}

tu_proc *tu_spawn(const char *const *argv, const char *const *env_kv) { return spawn_prog(tu_bin(), argv, env_kv); }

tu_run_result tu_run_prog(const char *prog, const char *const *argv, const char *const *env_kv)
{
    return tu_wait(spawn_prog(prog, argv, env_kv));
}

tu_run_result tu_run_env(const char *const *argv, const char *const *env_kv)
{
    return tu_wait(tu_spawn(argv, env_kv));
}

tu_run_result tu_run(const char *const *argv) { return tu_run_env(argv, NULL); }

void tu_run_free(tu_run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* ---- JSON -------------------------------------------------------------------------------- */

cJSON *tu_json(const char *text)
{
    cr_assert(text, "tu_json: no text");
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(text, &end, 0);
    cr_assert(doc, "stdout is not one JSON document (error near offset %ld):\n%s",
              (long) ((cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : text) - text), text);
    for (const char *p = end; p && *p; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') {
            cJSON_Delete(doc);
            cr_assert_fail("stdout holds more than one JSON document:\n%s", text);
        }
    return doc;
}

static const cJSON *member(const cJSON *obj, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!m) {
        char *s = cJSON_Print(obj);
        cr_assert_fail("JSON has no member \"%s\":\n%s", name, s ? s : "?");
    }
    return m;
}

const char *tu_json_str(const cJSON *obj, const char *name)
{
    const cJSON *m = member(obj, name);
    cr_assert(cJSON_IsString(m), "JSON member \"%s\" is not a string", name);
    return m->valuestring;
}

double tu_json_num(const cJSON *obj, const char *name)
{
    const cJSON *m = member(obj, name);
    cr_assert(cJSON_IsNumber(m), "JSON member \"%s\" is not a number", name);
    return m->valuedouble;
}

bool tu_json_bool(const cJSON *obj, const char *name)
{
    const cJSON *m = member(obj, name);
    cr_assert(cJSON_IsBool(m), "JSON member \"%s\" is not a boolean", name);
    return cJSON_IsTrue(m);
}

const cJSON *tu_json_array(const cJSON *obj, const char *name)
{
    const cJSON *m = member(obj, name);
    cr_assert(cJSON_IsArray(m), "JSON member \"%s\" is not an array", name);
    return m;
}

const cJSON *tu_json_obj(const cJSON *obj, const char *name)
{
    const cJSON *m = member(obj, name);
    cr_assert(cJSON_IsObject(m), "JSON member \"%s\" is not an object", name);
    return m;
}

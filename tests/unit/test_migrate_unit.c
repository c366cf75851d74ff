/* test_migrate_unit.c — unit tests for the pure parts of migrate.c: file names, loading a
 * migration set from a directory or the embedded copy, checksums, the no-transaction marker, the
 * SQL statement splitter and the status computation. */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "migrate.h"

/* The newest of the built-in migrations (migrations/0001..0006). */
#define LATEST 6

TestSuite(migrate_name, .fini = tu_leak_check);
TestSuite(migrate_load, .fini = tu_leak_check);
TestSuite(migrate_checksum, .fini = tu_leak_check);
TestSuite(sql_split, .fini = tu_leak_check);
TestSuite(migrate_status, .fini = tu_leak_check);

/* ---- migration_parse_name ---------------------------------------------------------------- */

static void good_name(const char *fname, int version, const char *name, bool up)
{
    int v = -1;
    char *n = NULL;
    bool is_up = !up;
    cr_assert(migration_parse_name(fname, &v, &n, &is_up), "\"%s\" should parse", fname);
    cr_expect_eq(v, version, "%s: version %d, expected %d", fname, v, version);
    cr_expect_str_eq(n, name, "%s: name", fname);
    cr_expect_eq(is_up, up, "%s: direction", fname);
    free(n);
}

Test(migrate_name, good)
{
    good_name("0001_init.up.sql", 1, "init", true);
    good_name("0001_init.down.sql", 1, "init", false);
    good_name("0002_hnsw.up.sql", 2, "hnsw", true);
    good_name("1_x.up.sql", 1, "x", true);
    good_name("0042_add-tags_V2.down.sql", 42, "add-tags_V2", false);
    good_name("20240131_big_version.up.sql", 20240131, "big_version", true);
}

Test(migrate_name, bad)
{
    static const char *const bad[] = {
        "",
        "init.up.sql",
        "_init.up.sql",
        "0001init.up.sql",
        "0001_.up.sql",
        "0001_init.sql",
        "0001_init.up",
        "0001_init.up.sql.bak",
        "0001_init.up.sqlx",
        "0001_init.UP.sql",
        "0001_in it.up.sql",
        "0001_init.side.sql",
        "0001_init..up.sql",
        "x0001_init.up.sql",
        "99999999999_too_big.up.sql",
        "0001_init.up.sql/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int v = -7;
        char *n = (char *) "untouched";
        bool up = true;
        cr_expect_not(migration_parse_name(bad[i], &v, &n, &up), "\"%s\" should not parse", bad[i]);
        cr_expect_str_eq(n, "untouched", "\"%s\": name must not be set on failure", bad[i]);
    }
}

/* ---- migration_set_load ------------------------------------------------------------------ */

typedef struct {
    bool ok;
    char *log;
} load_outcome;

static load_outcome load_dir(const char *dir, migration_set *set)
{
    tu_stderr_begin();
    load_outcome o;
    o.ok = migration_set_load(dir, set);
    o.log = tu_stderr_end();
    return o;
}

Test(migrate_load, sorted_by_version_whatever_the_creation_order)
{
    char *dir = tu_tempdir();
    /* created out of order; readdir order is arbitrary anyway */
    free(tu_write_file(dir, "0010_ten.up.sql", "SELECT 10;\n"));
    free(tu_write_file(dir, "0002_two.down.sql", "SELECT -2;\n"));
    free(tu_write_file(dir, "0001_one.up.sql", "SELECT 1;\n"));
    free(tu_write_file(dir, "0002_two.up.sql", "-- pgmemctl:no-transaction\nSELECT 2;\n"));
    free(tu_write_file(dir, "0003_three.up.sql", "SELECT 3;\n"));
    free(tu_write_file(dir, "README.md", "not a migration\n"));
    free(tu_write_file(dir, "notes.txt", "0004_x.up.sql\n"));
    free(tu_write_file(dir, "0005_backup.up.sql.orig", "SELECT 5;\n"));
    free(tu_write_file(dir, ".0006_hidden.up.sql", "SELECT 6;\n"));
    migration_set set;
    load_outcome o = load_dir(dir, &set);
    cr_assert(o.ok, "load failed: %s", o.log);
    cr_expect_str_eq(o.log, "");
    cr_assert_eq(set.n, 4);
    int want[] = {1, 2, 3, 10};
    const char *names[] = {"one", "two", "three", "ten"};
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(set.items[i].version, want[i], "item %d: version %d", i, set.items[i].version);
        cr_expect_str_eq(set.items[i].name, names[i]);
        cr_expect_not_null(set.items[i].up_sql);
        cr_expect_eq(strlen(set.items[i].checksum), 64);
    }
    cr_expect_str_eq(set.origin, dir);
    char *up2 = tu_printf("%s/0002_two.up.sql", dir), *down2 = tu_printf("%s/0002_two.down.sql", dir);
    cr_expect_str_eq(set.items[1].up_file, up2);
    cr_expect_str_eq(set.items[1].down_file, down2);
    cr_expect_str_eq(set.items[1].down_sql, "SELECT -2;\n");
    cr_expect(set.items[1].up_no_tx);
    cr_expect_not(set.items[1].down_no_tx);
    cr_expect_not(set.items[0].up_no_tx);
    cr_expect_null(set.items[0].down_sql);
    cr_expect_null(set.items[0].down_file);
    free(up2);
    free(down2);
    migration_set_free(&set);
    tu_rmtree(dir);
    free(dir);
    free(o.log);
}

Test(migrate_load, empty_directory_is_an_empty_set)
{
    char *dir = tu_tempdir();
    migration_set set;
    load_outcome o = load_dir(dir, &set);
    cr_assert(o.ok, "%s", o.log);
    cr_expect_eq(set.n, 0);
    migration_set_free(&set);
    tu_rmtree(dir);
    free(dir);
    free(o.log);
}

static void expect_load_error(const char *const *files, const char *must_mention)
{
    char *dir = tu_tempdir();
    for (int i = 0; files[i]; i++)
        free(tu_write_file(dir, files[i], "SELECT 1;\n"));
    migration_set set;
    load_outcome o = load_dir(dir, &set);
    cr_expect_not(o.ok, "loading %s should fail", files[0]);
    cr_expect(tu_contains(o.log, "error: "), "no error logged: \"%s\"", o.log);
    cr_expect(tu_contains(o.log, must_mention), "the error should mention \"%s\": %s", must_mention, o.log);
    migration_set_free(&set);
    tu_rmtree(dir);
    free(dir);
    free(o.log);
}

Test(migrate_load, duplicate_version_two_names)
{
    expect_load_error((const char *const[]){"0001_a.up.sql", "0001_b.up.sql", NULL}, "version 0001 has two names");
}

Test(migrate_load, duplicate_version_same_name_different_padding)
{
    expect_load_error((const char *const[]){"0001_a.up.sql", "1_a.up.sql", NULL}, "two files for version 0001");
}

Test(migrate_load, duplicate_down_file)
{
    expect_load_error((const char *const[]){"0001_a.up.sql", "0001_a.down.sql", "01_a.down.sql", NULL},
                      "two files for version 0001 (down)");
}

Test(migrate_load, down_without_up)
{
    expect_load_error((const char *const[]){"0001_a.up.sql", "0002_b.down.sql", NULL}, "no 0002_b.up.sql");
}

Test(migrate_load, sql_file_with_a_bad_name)
{
    expect_load_error((const char *const[]){"0001_a.up.sql", "notes.sql", NULL}, "notes.sql: not a migration file name");
}

Test(migrate_load, sql_file_without_direction)
{
    expect_load_error((const char *const[]){"0001_a.sql", NULL}, "0001_a.sql: not a migration file name");
}

Test(migrate_load, missing_directory)
{
    migration_set set;
    load_outcome o = load_dir("/nonexistent/pgmemctl-migrations", &set);
    cr_expect_not(o.ok);
    cr_expect(tu_contains(o.log, "/nonexistent/pgmemctl-migrations: cannot read migrations directory"), "%s", o.log);
    migration_set_free(&set);
    free(o.log);
}

Test(migrate_load, embedded_set)
{
    migration_set set;
    load_outcome o = load_dir(NULL, &set);
    cr_assert(o.ok, "%s", o.log);
    cr_expect_str_eq(set.origin, "embedded");
    cr_assert_eq(set.n, LATEST);
    cr_expect_eq(set.items[0].version, 1);
    cr_expect_str_eq(set.items[0].name, "init");
    cr_expect_str_eq(set.items[0].up_file, "embedded/0001_init.up.sql");
    cr_expect_str_eq(set.items[0].down_file, "embedded/0001_init.down.sql");
    cr_expect_eq(set.items[1].version, 2);
    cr_expect_str_eq(set.items[1].name, "hnsw");
    cr_expect_eq(set.items[2].version, 3);
    cr_expect_str_eq(set.items[2].name, "reembed");
    cr_expect_eq(set.items[3].version, 4);
    cr_expect_str_eq(set.items[3].name, "copy_ranges");
    cr_expect_eq(set.items[4].version, 5);
    cr_expect_str_eq(set.items[4].name, "copy_identity");
    for (int i = 0; i < LATEST; i++) {
        const migration *m = &set.items[i];
        cr_expect_not_null(m->up_sql);
        cr_expect_not_null(m->down_sql);
        cr_expect_not(m->up_no_tx);
        cr_expect_eq(strlen(m->checksum), 64);
    }
    cr_expect(tu_contains(set.items[0].up_sql, "CREATE TABLE memories"));
    cr_expect(tu_contains(set.items[1].up_sql, "hnsw"));
    /* the embedded copy is byte for byte the file in the repository */
    char *path = tu_printf("%s/migrations/0001_init.up.sql", tu_repo());
    char *file = tu_read_file(path);
    cr_expect_str_eq(set.items[0].up_sql, file);
    char sum[65];
    cr_assert(migration_checksum(file, strlen(file), sum));
    cr_expect_str_eq(set.items[0].checksum, sum);
    free(file);
    free(path);
    migration_set_free(&set);
    free(o.log);
}

/* ---- migration_checksum ------------------------------------------------------------------ */

static void checksum_of(const char *s, char out[65])
{
    cr_assert(migration_checksum(s, strlen(s), out));
    cr_assert_eq(strlen(out), 64);
    for (int i = 0; i < 64; i++)
        cr_assert(isxdigit((unsigned char) out[i]) && !isupper((unsigned char) out[i]), "not lower-case hex: %s", out);
}

Test(migrate_checksum, known_sha256)
{
    char sum[65];
    checksum_of("abc", sum);
    cr_expect_str_eq(sum, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    checksum_of("", sum);
    cr_expect_str_eq(sum, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(migrate_checksum, crlf_equals_lf)
{
    char lf[65], crlf[65], mixed[65];
    checksum_of("CREATE TABLE t (a int);\nSELECT 1;\n", lf);
    checksum_of("CREATE TABLE t (a int);\r\nSELECT 1;\r\n", crlf);
    checksum_of("CREATE TABLE t (a int);\r\nSELECT 1;\n", mixed);
    cr_expect_str_eq(lf, crlf);
    cr_expect_str_eq(lf, mixed);
}

Test(migrate_checksum, lone_cr_and_content_matter)
{
    char a[65], b[65], c[65], d[65];
    checksum_of("a\nb", a);
    checksum_of("a\rb", b);  /* a lone CR is content */
    checksum_of("a\nb\r", c); /* so is a CR at the very end */
    checksum_of("a\nc", d);
    cr_expect_str_neq(a, b);
    cr_expect_str_neq(a, c);
    cr_expect_str_neq(a, d);
}

Test(migrate_checksum, length_not_nul_terminated)
{
    char whole[65], prefix[65];
    checksum_of("abc", whole);
    cr_assert(migration_checksum("abcdef", 3, prefix));
    cr_expect_str_eq(whole, prefix);
}

/* ---- migration_is_no_tx ------------------------------------------------------------------ */

Test(migrate_checksum, no_transaction_marker)
{
    cr_expect(migration_is_no_tx("-- pgmemctl:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n"));
    cr_expect(migration_is_no_tx("-- pgmemctl:no-transaction\r\nSELECT 1;\r\n"));
    cr_expect(migration_is_no_tx("-- pgmemctl:no-transaction  \t\nSELECT 1;\n"));
    cr_expect(migration_is_no_tx("-- pgmemctl:no-transaction"));
    cr_expect_not(migration_is_no_tx(""));
    cr_expect_not(migration_is_no_tx("SELECT 1;\n-- pgmemctl:no-transaction\n"));
    cr_expect_not(migration_is_no_tx(" -- pgmemctl:no-transaction\n"));
    cr_expect_not(migration_is_no_tx("-- pgmemctl:no-transactions\n"));
    cr_expect_not(migration_is_no_tx("-- pgmemctl:no-transaction please\n"));
    cr_expect_not(migration_is_no_tx("--pgmemctl:no-transaction\n"));
}

/* ---- sql_split --------------------------------------------------------------------------- */

/* Splits sql, trims each statement and compares with want (NULL-terminated). */
static void expect_split(const char *sql, const char *const *want)
{
    char **stmts = NULL;
    int n = sql_split(sql, &stmts);
    int nwant = 0;
    while (want[nwant])
        nwant++;
    cr_assert_eq(n, nwant, "split of <<%s>> gave %d statements, expected %d", sql, n, nwant);
    for (int i = 0; i < n; i++) {
        const char *s = stmts[i];
        while (isspace((unsigned char) *s))
            s++;
        size_t len = strlen(s);
        while (len > 0 && isspace((unsigned char) s[len - 1]))
            len--;
        char *t = strndup(s, len);
        cr_expect_str_eq(t, want[i], "statement %d of <<%s>>", i + 1, sql);
        free(t);
    }
    sql_split_free(stmts, n);
}

static void expect_split_error(const char *sql)
{
    char **stmts = (char **) &stmts; /* must be overwritten */
    int n = sql_split(sql, &stmts);
    cr_expect_eq(n, -1, "<<%s>> should be rejected, got %d statements", sql, n);
    cr_expect_null(stmts, "<<%s>>: *out must be NULL on error", sql);
    if (n > 0)
        sql_split_free(stmts, n);
}

Test(sql_split, plain)
{
    expect_split("SELECT 1; SELECT 2;", (const char *const[]){"SELECT 1", "SELECT 2", NULL});
    expect_split("SELECT 1", (const char *const[]){"SELECT 1", NULL});
    expect_split("CREATE TABLE t (a int);\n\nINSERT INTO t VALUES (1);\n",
                 (const char *const[]){"CREATE TABLE t (a int)", "INSERT INTO t VALUES (1)", NULL});
    expect_split("", (const char *const[]){NULL});
}

Test(sql_split, semicolons_in_quotes)
{
    expect_split("SELECT 'a;b'; SELECT 2", (const char *const[]){"SELECT 'a;b'", "SELECT 2", NULL});
    expect_split("SELECT 'it''s; fine'; SELECT 2", (const char *const[]){"SELECT 'it''s; fine'", "SELECT 2", NULL});
    expect_split("SELECT \"we;ird\" FROM \"t\"\"x;\"; SELECT 2",
                 (const char *const[]){"SELECT \"we;ird\" FROM \"t\"\"x;\"", "SELECT 2", NULL});
    expect_split("SELECT ''; SELECT ';'", (const char *const[]){"SELECT ''", "SELECT ';'", NULL});
}

Test(sql_split, escape_strings)
{
    expect_split("SELECT E'\\''; SELECT 2", (const char *const[]){"SELECT E'\\''", "SELECT 2", NULL});
    expect_split("SELECT e'a\\';b'; SELECT 2", (const char *const[]){"SELECT e'a\\';b'", "SELECT 2", NULL});
    expect_split("SELECT E'\\\\'; SELECT 2", (const char *const[]){"SELECT E'\\\\'", "SELECT 2", NULL});
    /* without E, a backslash is an ordinary character (standard_conforming_strings) */
    expect_split("SELECT 'a\\'; SELECT 2", (const char *const[]){"SELECT 'a\\'", "SELECT 2", NULL});
    /* an identifier ending in e is not an E prefix */
    expect_split("SELECT some'a\\'; SELECT 2", (const char *const[]){"SELECT some'a\\'", "SELECT 2", NULL});
}

Test(sql_split, dollar_quotes)
{
    expect_split("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$; SELECT 2",
                 (const char *const[]){"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$", "SELECT 2",
                                       NULL});
    expect_split("DO $fn$ BEGIN PERFORM 1; RAISE NOTICE '$$;'; END $fn$; SELECT 2",
                 (const char *const[]){"DO $fn$ BEGIN PERFORM 1; RAISE NOTICE '$$;'; END $fn$", "SELECT 2", NULL});
    expect_split("SELECT $a$ $b$ ; $b$ $a$; SELECT 2",
                 (const char *const[]){"SELECT $a$ $b$ ; $b$ $a$", "SELECT 2", NULL});
    /* $1 is a parameter, not a quote; a$b is an identifier */
    expect_split("PREPARE p AS SELECT $1; SELECT a$b$ FROM t; SELECT 3",
                 (const char *const[]){"PREPARE p AS SELECT $1", "SELECT a$b$ FROM t", "SELECT 3", NULL});
    /* the migrations shipped in the binary */
    expect_split("SELECT $$it's$$; SELECT 2", (const char *const[]){"SELECT $$it's$$", "SELECT 2", NULL});
}

Test(sql_split, comments)
{
    expect_split("SELECT 1; -- a; comment\nSELECT 2;",
                 (const char *const[]){"SELECT 1", "-- a; comment\nSELECT 2", NULL});
    expect_split("SELECT 1 /* a; /* nested; */ still; */ + 1; SELECT 2",
                 (const char *const[]){"SELECT 1 /* a; /* nested; */ still; */ + 1", "SELECT 2", NULL});
    expect_split("SELECT 'x' -- ' not a quote;\n; SELECT 2",
                 (const char *const[]){"SELECT 'x' -- ' not a quote;", "SELECT 2", NULL});
    expect_split("SELECT 1 -- trailing comment without newline",
                 (const char *const[]){"SELECT 1 -- trailing comment without newline", NULL});
    /* a comment marker inside a string is not a comment */
    expect_split("SELECT '--'; SELECT '/*'; SELECT 3",
                 (const char *const[]){"SELECT '--'", "SELECT '/*'", "SELECT 3", NULL});
}

Test(sql_split, empty_statements_dropped)
{
    expect_split(";;  ;\n; SELECT 1;;\n;", (const char *const[]){"SELECT 1", NULL});
    expect_split("-- only a comment\n;\n/* and a block */;\nSELECT 1;\n-- trailing\n",
                 (const char *const[]){"SELECT 1", NULL});
    expect_split("   \n\t  ", (const char *const[]){NULL});
    expect_split("-- nothing here", (const char *const[]){NULL});
}

Test(sql_split, nested_comment_only_statement_dropped)
{
    expect_split("SELECT 1; /* outer /* inner */ still outer */", (const char *const[]){"SELECT 1", NULL});
    expect_split("/* a /* b */ c */; SELECT 2", (const char *const[]){"SELECT 2", NULL});
}

Test(sql_split, unterminated)
{
    expect_split_error("SELECT 'abc");
    expect_split_error("SELECT 1; SELECT 'abc");
    expect_split_error("SELECT \"abc");
    expect_split_error("SELECT E'abc\\'");
    expect_split_error("SELECT $$abc");
    expect_split_error("SELECT $x$abc$y$");
    expect_split_error("SELECT 1 /* open");
    expect_split_error("SELECT 1 /* open /* nested */ still open");
}

/* ---- migrate_compute_status -------------------------------------------------------------- */

static migration mig(int version, const char *name, const char *sql)
{
    migration m = {0};
    m.version = version;
    m.name = (char *) name;
    m.up_sql = (char *) sql;
    cr_assert(migration_checksum(sql, strlen(sql), m.checksum));
    return m;
}

static migration_row row(int version, const char *name, const char *checksum, bool success)
{
    migration_row r = {0};
    r.version = version;
    r.name = (char *) name;
    r.checksum = (char *) checksum;
    r.applied_at = (char *) "2024-01-01T00:00:00.000000Z";
    r.success = success;
    return r;
}

Test(migrate_status, all_states)
{
    migration items[] = {
        mig(1, "applied", "SELECT 1;"),
        mig(2, "changed", "SELECT 2;"),
        mig(3, "failed", "SELECT 3;"),
        mig(5, "pending", "SELECT 5;"),
    };
    migration_set set = {.items = items, .n = 4, .origin = (char *) "test"};
    char other[65];
    cr_assert(migration_checksum("SELECT 2 -- edited;", strlen("SELECT 2 -- edited;"), other));
    /* rows in an order different from the files' */
    migration_row rows[] = {
        row(4, "gone", "0000000000000000000000000000000000000000000000000000000000000000", true),
        row(3, "failed", items[2].checksum, false),
        row(1, "applied", items[0].checksum, true),
        row(2, "changed", other, true),
        row(6, "gone_failed", "1111111111111111111111111111111111111111111111111111111111111111", false),
    };
    migration_status *st = NULL;
    int n = migrate_compute_status(&set, rows, 5, &st);
    cr_assert_eq(n, 6);
    struct {
        int version;
        const char *name;
        migration_state state;
        bool has_file, has_row;
    } want[] = {
        {1, "applied", MS_APPLIED, true, true},     {2, "changed", MS_CHANGED, true, true},
        {3, "failed", MS_FAILED, true, true},       {4, "gone", MS_FILE_MISSING, false, true},
        {5, "pending", MS_PENDING, true, false},    {6, "gone_failed", MS_FAILED, false, true},
    };
    for (int i = 0; i < n; i++) {
        cr_expect_eq(st[i].version, want[i].version, "entry %d: version %d", i, st[i].version);
        cr_expect_str_eq(st[i].name, want[i].name, "entry %d", i);
        cr_expect_eq(st[i].state, want[i].state, "version %d: state %s, expected %s", st[i].version,
                     migration_state_name(st[i].state), migration_state_name(want[i].state));
        cr_expect_eq(st[i].file != NULL, want[i].has_file, "version %d: file", st[i].version);
        cr_expect_eq(st[i].row != NULL, want[i].has_row, "version %d: row", st[i].version);
        if (st[i].row)
            cr_expect_eq(st[i].row->version, st[i].version);
        if (st[i].file)
            cr_expect_eq(st[i].file->version, st[i].version);
    }
    free(st);
}

Test(migrate_status, nothing_applied_and_nothing_known)
{
    migration items[] = {mig(1, "a", "SELECT 1;"), mig(2, "b", "SELECT 2;")};
    migration_set set = {.items = items, .n = 2, .origin = (char *) "test"};
    migration_status *st = NULL;
    int n = migrate_compute_status(&set, NULL, 0, &st);
    cr_assert_eq(n, 2);
    cr_expect_eq(st[0].state, MS_PENDING);
    cr_expect_eq(st[1].state, MS_PENDING);
    free(st);
    migration_set empty = {.items = NULL, .n = 0, .origin = (char *) "test"};
    n = migrate_compute_status(&empty, NULL, 0, &st);
    cr_expect_eq(n, 0);
    free(st);
}

Test(migrate_status, state_names)
{
    cr_expect_str_eq(migration_state_name(MS_APPLIED), "applied");
    cr_expect_str_eq(migration_state_name(MS_PENDING), "pending");
    cr_expect_str_eq(migration_state_name(MS_FAILED), "failed");
    cr_expect_str_eq(migration_state_name(MS_CHANGED), "changed");
    cr_expect_str_eq(migration_state_name(MS_FILE_MISSING), "file_missing");
}

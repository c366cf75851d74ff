/* test_verify_spec.c — unit tests for verify_spec.c: the example profile and its embedded copy,
 * every kind of check with its fields and default name, and one test per kind of error with the
 * exact file:line:column it is reported at. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "verify.h"

TestSuite(verify_spec, .fini = tu_leak_check);
TestSuite(verify_spec_errors, .fini = tu_leak_check);

/* Parses yaml as "t.yaml"; returns what was logged (caller frees). */
static char *parse(const char *yaml, verify_spec *s, bool *ok)
{
    tu_stderr_begin();
    *ok = verify_spec_parse(yaml, strlen(yaml), "t.yaml", s);
    return tu_stderr_end();
}

/* Parses yaml, expects success with nothing logged. */
static void parse_ok(const char *yaml, verify_spec *s)
{
    bool ok;
    char *log = parse(yaml, s, &ok);
    cr_assert(ok, "spec rejected: %s\n%s", log, yaml);
    cr_expect_str_eq(log, "");
    free(log);
}

/* Parses yaml, expects failure with exactly the line "error: t.yaml:<line>:<col>: <problem>" on
 * stderr and an empty spec. */
static void expect_error_at(const char *yaml, int line, int col, const char *problem)
{
    verify_spec s;
    bool ok;
    char *log = parse(yaml, &s, &ok);
    cr_expect_not(ok, "spec should be rejected:\n%s", yaml);
    cr_expect(s.n == 0 && !s.checks && !s.origin, "the spec is left empty on failure");
    char *want = tu_printf("error: t.yaml:%d:%d: %s\n", line, col, problem);
    cr_expect_str_eq(log, want, "for:\n%s", yaml);
    free(want);
    free(log);
    verify_spec_free(&s);
}

static const verify_check *find(const verify_spec *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->checks[i].name, name))
            return &s->checks[i];
    cr_assert_fail("no check named \"%s\"", name);
    return NULL;
}

static bool str_eq(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/* Every field of two checks (from two parses) is equal. */
static void expect_same_check(const verify_check *a, const verify_check *b)
{
    const char *as[] = {a->name,       a->skip_reason,  a->hint,        a->version,   a->setting,     a->expect,
                        a->extension,  a->access_method, a->table,      a->column,    a->type,        a->dimension_sql,
                        a->index,      a->method,       a->opclass,     a->where,     a->query,       a->vector_from,
                        a->text_from,  a->expect_index, a->migrations_dir};
    const char *bs[] = {b->name,       b->skip_reason,  b->hint,        b->version,   b->setting,     b->expect,
                        b->extension,  b->access_method, b->table,      b->column,    b->type,        b->dimension_sql,
                        b->index,      b->method,       b->opclass,     b->where,     b->query,       b->vector_from,
                        b->text_from,  b->expect_index, b->migrations_dir};
    for (size_t i = 0; i < sizeof as / sizeof *as; i++)
        cr_expect(str_eq(as[i], bs[i]), "check \"%s\": string field %zu differs: \"%s\" vs \"%s\"", a->name, i,
                  as[i] ? as[i] : "(null)", bs[i] ? bs[i] : "(null)");
    cr_expect_eq(a->kind, b->kind);
    cr_expect_eq(a->severity, b->severity);
    cr_expect_eq(a->skip, b->skip);
    cr_expect_eq(a->line, b->line);
    cr_expect_eq(a->col, b->col);
    cr_expect_eq(a->up_to_date, b->up_to_date);
    cr_expect_eq(a->dimension, b->dimension);
    cr_expect_eq(a->m, b->m);
    cr_expect_eq(a->ef_construction, b->ef_construction);
    cr_expect_eq(a->lists, b->lists);
    cr_expect_eq(a->valid, b->valid);
    cr_expect_eq(a->no_seq_scan, b->no_seq_scan);
    cr_expect_eq(a->force_index, b->force_index);
    cr_expect_eq(a->max_ms, b->max_ms);
    cr_expect_eq(a->min, b->min);
    cr_expect_eq(a->max, b->max);
}

/* ---- the example profile ------------------------------------------------------------------- */

Test(verify_spec, example_file_and_built_in_profile)
{
    char *path = tu_printf("%s/examples/verify/memory-store.yaml", tu_repo());
    verify_spec f, d;
    tu_stderr_begin();
    bool okf = verify_spec_load(path, &f);
    bool okd = verify_spec_default(&d);
    char *log = tu_stderr_end();
    cr_assert(okf && okd, "example rejected: %s", log);
    cr_expect_str_eq(log, "");
    cr_expect_str_eq(f.origin, path);
    cr_expect_str_eq(d.origin, "built-in memory-store profile");
    cr_assert_eq(f.n, 10);
    cr_assert_eq(d.n, f.n);
    for (int i = 0; i < f.n; i++)
        expect_same_check(&f.checks[i], &d.checks[i]);

    const verify_check *c = &f.checks[0];
    cr_expect_str_eq(c->name, "server version");
    cr_expect_eq(c->kind, VK_SERVER_VERSION);
    cr_expect_str_eq(c->version, ">=13");
    cr_expect_eq(c->line, 10);
    cr_expect_eq(c->col, 5);
    cr_expect_eq(c->severity, VSEV_ERROR);
    cr_expect_not(c->skip);

    c = &f.checks[1];
    cr_expect_eq(c->kind, VK_EXTENSION);
    cr_expect_str_eq(c->extension, "vector");
    cr_expect_str_eq(c->version, ">=0.8.0");
    cr_expect(c->up_to_date);
    cr_expect_eq(c->line, 14);

    c = &f.checks[2];
    cr_expect_eq(c->kind, VK_ACCESS_METHOD);
    cr_expect_str_eq(c->access_method, "hnsw");

    c = &f.checks[3];
    cr_expect_eq(c->kind, VK_MIGRATIONS);
    cr_expect_str_eq(c->name, "migrations up to date");
    cr_expect_null(c->migrations_dir);

    c = &f.checks[4];
    cr_expect_eq(c->kind, VK_COLUMN);
    cr_expect_str_eq(c->table, "memories");
    cr_expect_str_eq(c->column, "embedding");
    cr_expect_str_eq(c->type, "vector");
    cr_expect_eq(c->dimension, -1);
    cr_expect_str_eq(c->dimension_sql, "SELECT dimension FROM embedding_model WHERE active");

    c = &f.checks[5];
    cr_expect_eq(c->kind, VK_INDEX);
    cr_expect_str_eq(c->index, "idx_memories_embedding_hnsw");
    cr_expect_str_eq(c->table, "memories");
    cr_expect_str_eq(c->column, "embedding");
    cr_expect_str_eq(c->method, "hnsw");
    cr_expect_str_eq(c->opclass, "vector_cosine_ops");
    cr_expect_eq(c->m, 16);
    cr_expect_eq(c->ef_construction, 64);
    cr_expect_eq(c->lists, -1);
    cr_expect_eq(c->valid, 1);
    cr_expect_null(c->where);

    c = &f.checks[6];
    cr_expect_eq(c->kind, VK_PLAN);
    cr_expect_str_eq(c->name, "vector search uses the HNSW index");
    cr_expect_str_eq(c->query, "SELECT id FROM memories ORDER BY embedding <=> $vector LIMIT 10");
    cr_expect_str_eq(c->vector_from, "memories.embedding");
    cr_expect_null(c->text_from);
    cr_expect_str_eq(c->expect_index, "idx_memories_embedding_hnsw");
    cr_expect(c->force_index);
    cr_expect_not(c->no_seq_scan);
    cr_expect_lt(c->max_ms, 0);

    c = &f.checks[7];
    cr_expect_eq(c->kind, VK_INDEX);
    cr_expect_str_eq(c->method, "gin");
    cr_expect_null(c->opclass);
    cr_expect_eq(c->m, -1);

    c = &f.checks[8];
    cr_expect_eq(c->kind, VK_PLAN);
    cr_expect_str_eq(c->text_from, "memories.search_vec");
    cr_expect_null(c->vector_from);
    cr_expect_str_eq(c->expect_index, "idx_memories_search_vec");

    c = &f.checks[9];
    cr_expect_eq(c->kind, VK_ROW_COUNT);
    cr_expect_str_eq(c->table, "memories");
    cr_expect_str_eq(c->where, "embedding IS NULL");
    cr_expect_eq(c->min, -1);
    cr_expect_eq(c->max, 0);
    cr_expect_eq(c->severity, VSEV_WARN);
    cr_expect_str_eq(c->hint, "embed the missing ones: pgmemctl reembed --only-missing --yes");
    cr_expect_eq(c->line, 70);

    verify_spec_free(&f);
    verify_spec_free(&d);
    cr_expect(f.n == 0 && !f.checks && !f.origin, "verify_spec_free empties the spec");
    verify_spec_free(&f); /* idempotent */
    verify_spec_free(NULL);
    free(log);
    free(path);
}

/* ---- every kind ---------------------------------------------------------------------------- */

Test(verify_spec, every_kind)
{
    verify_spec s;
    parse_ok("description: every kind of check\n"
             "checks:\n"
             "  - kind: server_version\n"
             "    version: \">=16, <19\"\n"
             "  - kind: setting\n"
             "    setting: shared_buffers\n"
             "    expect: \">=128MB\"\n"
             "    severity: warn\n"
             "  - kind: extension\n"
             "    extension: vector\n"
             "  - {kind: extension, name: pg_trgm any version, extension: pg_trgm, version: 1.6,\n"
             "     up_to_date: No, skip: not needed here}\n"
             "  - kind: access_method\n"
             "    access_method: hnsw\n"
             "    skip: yes\n"
             "  - kind: column\n"
             "    table: public.memories\n"
             "    column: embedding\n"
             "    type: vector\n"
             "    dimension: 384\n"
             "  - kind: index\n"
             "    table: memories\n"
             "    column: embedding\n"
             "    method: ivfflat\n"
             "    opclass: vector_l2_ops\n"
             "    lists: 100\n"
             "    valid: false\n"
             "    where: deleted_at IS NULL\n"
             "  - kind: index\n"
             "    index: idx_hnsw\n"
             "    m: 32\n"
             "    ef_construction: 128\n"
             "  - kind: plan\n"
             "    query: |\n"
             "      SELECT id\n"
             "      FROM memories   WHERE search_vec @@ plainto_tsquery($text)\n"
             "      ORDER BY embedding <=> $vector\n"
             "      LIMIT 10\n"
             "    vector_from: public.memories.embedding\n"
             "    text_from: memories.search_vec\n"
             "    no_seq_scan: true\n"
             "    max_ms: 12.5\n"
             "    hint: run ANALYZE memories\n"
             "  - kind: migrations\n"
             "    migrations_dir: /srv/migrations\n"
             "  - kind: row_count\n"
             "    table: memories\n"
             "    min: 1\n"
             "  - kind: row_count\n"
             "    name: bounded\n"
             "    table: memories\n"
             "    where: \"tags @> '{x}'\"\n"
             "    min: 0\n"
             "    max: 10\n"
             "  - kind: sql\n"
             "    query: SELECT   count(*)\n"
             "      FROM memories\n"
             "    expect: 42\n"
             "    severity: error\n",
             &s);
    cr_assert_eq(s.n, 13);
    cr_expect_str_eq(s.origin, "t.yaml");

    const verify_check *c = find(&s, "server_version");
    cr_expect_eq(c->kind, VK_SERVER_VERSION);
    cr_expect_str_eq(c->version, ">=16, <19");
    cr_expect_eq(c->line, 3);
    cr_expect_eq(c->col, 5);
    /* a field that does not belong to the kind keeps its "not given" value */
    cr_expect_eq(c->dimension, -1);
    cr_expect_eq(c->m, -1);
    cr_expect_eq(c->min, -1);
    cr_expect_eq(c->max, -1);
    cr_expect_lt(c->max_ms, 0);
    cr_expect_null(c->table);
    cr_expect_null(c->hint);

    c = find(&s, "setting: shared_buffers");
    cr_expect_eq(c->kind, VK_SETTING);
    cr_expect_str_eq(c->setting, "shared_buffers");
    cr_expect_str_eq(c->expect, ">=128MB");
    cr_expect_eq(c->severity, VSEV_WARN);

    c = find(&s, "extension: vector");
    cr_expect_eq(c->kind, VK_EXTENSION);
    cr_expect_null(c->version);
    cr_expect(c->up_to_date, "up_to_date defaults to true");
    cr_expect_not(c->skip);

    c = find(&s, "pg_trgm any version");
    cr_expect_str_eq(c->extension, "pg_trgm");
    cr_expect_str_eq(c->version, "1.6", "a number is taken as text");
    cr_expect_not(c->up_to_date);
    cr_expect(c->skip, "a reason implies skip");
    cr_expect_str_eq(c->skip_reason, "not needed here");
    cr_expect_eq(c->line, 11);
    cr_expect_eq(c->col, 5);

    c = find(&s, "access_method: hnsw");
    cr_expect(c->skip);
    cr_expect_null(c->skip_reason);

    c = find(&s, "column: public.memories.embedding");
    cr_expect_eq(c->kind, VK_COLUMN);
    cr_expect_str_eq(c->type, "vector");
    cr_expect_eq(c->dimension, 384);
    cr_expect_null(c->dimension_sql);

    c = find(&s, "index: memories.embedding");
    cr_expect_eq(c->kind, VK_INDEX);
    cr_expect_null(c->index);
    cr_expect_str_eq(c->method, "ivfflat");
    cr_expect_str_eq(c->opclass, "vector_l2_ops");
    cr_expect_eq(c->lists, 100);
    cr_expect_eq(c->m, -1);
    cr_expect_eq(c->ef_construction, -1);
    cr_expect_eq(c->valid, 0);
    cr_expect_str_eq(c->where, "deleted_at IS NULL");

    c = find(&s, "index: idx_hnsw");
    cr_expect_eq(c->m, 32);
    cr_expect_eq(c->ef_construction, 128);
    cr_expect_eq(c->lists, -1);
    cr_expect_eq(c->valid, 1, "valid defaults to true");
    cr_expect_null(c->table);

    c = find(&s, "plan: SELECT id FROM memories WHERE search_vec @@ plainto_tsquery…");
    cr_expect_eq(c->kind, VK_PLAN);
    cr_expect_str_eq(c->query, "SELECT id\nFROM memories   WHERE search_vec @@ plainto_tsquery($text)\n"
                               "ORDER BY embedding <=> $vector\nLIMIT 10\n");
    cr_expect_str_eq(c->vector_from, "public.memories.embedding");
    cr_expect_str_eq(c->text_from, "memories.search_vec");
    cr_expect_null(c->expect_index);
    cr_expect(c->no_seq_scan);
    cr_expect_not(c->force_index);
    cr_expect_eq(c->max_ms, 12.5);
    cr_expect_str_eq(c->hint, "run ANALYZE memories");

    c = find(&s, "migrations");
    cr_expect_eq(c->kind, VK_MIGRATIONS);
    cr_expect_str_eq(c->migrations_dir, "/srv/migrations");

    c = find(&s, "row_count: memories");
    cr_expect_eq(c->min, 1);
    cr_expect_eq(c->max, -1);
    cr_expect_null(c->where);

    c = find(&s, "bounded");
    cr_expect_str_eq(c->where, "tags @> '{x}'");
    cr_expect_eq(c->min, 0);
    cr_expect_eq(c->max, 10);

    c = find(&s, "sql: SELECT count(*) FROM memories");
    cr_expect_eq(c->kind, VK_SQL);
    cr_expect_str_eq(c->query, "SELECT   count(*) FROM memories", "a plain scalar folds its line break");
    cr_expect_str_eq(c->expect, "42");
    cr_expect_eq(c->severity, VSEV_ERROR);
    cr_expect_eq(c->line, 55);

    verify_spec_free(&s);
}

Test(verify_spec, default_names_of_long_queries)
{
    verify_spec s;
    /* 70 two-byte characters: the name keeps 59 characters of the query and adds "…" */
    char e70[141] = "";
    for (int i = 0; i < 70; i++)
        strcat(e70, "\xc3\xa9");
    char *yaml = tu_printf("checks:\n"
                           "  - kind: sql\n"
                           "    query: \"%s\"\n"
                           "    expect: x\n"
                           "  - kind: sql\n"
                           "    query: \"  SELECT\\n\\t1  \"\n"
                           "    expect: 1\n",
                           e70);
    parse_ok(yaml, &s);
    cr_assert_eq(s.n, 2);
    char want[200] = "sql: ";
    for (int i = 0; i < 59; i++)
        strcat(want, "\xc3\xa9");
    strcat(want, "…");
    cr_expect_str_eq(s.checks[0].name, want);
    cr_expect_str_eq(s.checks[1].name, "sql: SELECT 1");
    verify_spec_free(&s);
    free(yaml);

    /* exactly 60 characters: kept whole; 61: cut */
    parse_ok("checks:\n"
             "  - kind: sql\n"
             "    query: SELECT 'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxy'\n"
             "    expect: x\n"
             "  - kind: sql\n"
             "    query: SELECT 'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz'\n"
             "    expect: x\n",
             &s);
    cr_assert_eq(s.n, 2);
    cr_expect_str_eq(s.checks[0].name, "sql: SELECT 'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxy'");
    cr_expect_str_eq(s.checks[1].name, "sql: SELECT 'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxy…");
    verify_spec_free(&s);
}

Test(verify_spec, kind_names)
{
    static const char *const names[] = {"server_version", "setting", "extension", "access_method", "column",
                                        "index", "plan", "migrations", "row_count", "sql"};
    cr_assert_eq(sizeof names / sizeof *names, (size_t) VK__COUNT);
    for (int k = 0; k < VK__COUNT; k++)
        cr_expect_str_eq(verify_kind_name((verify_kind) k), names[k]);
    cr_expect_null(verify_kind_name(VK__COUNT));
    cr_expect_null(verify_kind_name((verify_kind) -1));
}

/* ---- loading files ------------------------------------------------------------------------- */

Test(verify_spec_errors, unreadable_files)
{
    char *dir = tu_tempdir();
    char *missing = tu_printf("%s/nope.yaml", dir);
    verify_spec s;
    tu_stderr_begin();
    bool ok1 = verify_spec_load(missing, &s);
    bool ok2 = verify_spec_load(dir, &s);
    char *log = tu_stderr_end();
    cr_expect_not(ok1);
    cr_expect_not(ok2);
    char *want = tu_printf("error: %s: cannot open the spec: No such file or directory\n"
                           "error: %s: cannot read the spec: Is a directory\n",
                           missing, dir);
    cr_expect_str_eq(log, want);
    cr_expect(s.n == 0 && !s.checks && !s.origin);
    free(want);
    free(log);

    /* errors inside a file name the file */
    char *path = tu_write_file(dir, "bad.yaml", "checks:\n  - kind: migrations\n    bogus: 1\n");
    tu_stderr_begin();
    cr_expect_not(verify_spec_load(path, &s));
    log = tu_stderr_end();
    want = tu_printf("error: %s:3:5: unknown key \"bogus\" for a migrations check\n", path);
    cr_expect_str_eq(log, want);
    free(want);
    free(log);
    free(path);
    free(missing);
    tu_rmtree(dir);
    free(dir);
}

/* ---- one test per kind of error ------------------------------------------------------------ */

Test(verify_spec_errors, invalid_yaml)
{
    expect_error_at("checks:\n  - kind: migrations\n    name: \"unterminated\n", 4, 1,
                    "invalid YAML: found unexpected end of stream");
}

Test(verify_spec_errors, empty_spec)
{
    expect_error_at("", 1, 1, "the spec is empty (expected a mapping with a \"checks\" list)");
    expect_error_at("# nothing yet\n", 1, 1, "the spec is empty (expected a mapping with a \"checks\" list)");
}

Test(verify_spec_errors, not_a_mapping)
{
    expect_error_at("- kind: migrations\n", 1, 1, "a spec must be a mapping with a \"checks\" list, found a list");
}

Test(verify_spec_errors, second_document)
{
    expect_error_at("checks:\n  - kind: migrations\n---\nchecks:\n  - kind: migrations\n", 3, 1,
                    "a spec is one YAML document; found a second one");
}

Test(verify_spec_errors, unknown_top_level_key)
{
    expect_error_at("checks:\n  - kind: migrations\nchecks_extra: 1\n", 3, 1,
                    "unknown key \"checks_extra\" (a spec has \"checks\" and \"description\")");
}

Test(verify_spec_errors, missing_checks)
{
    expect_error_at("description: nothing\n", 1, 1, "missing required key \"checks\"");
}

Test(verify_spec_errors, no_checks)
{
    expect_error_at("description: x\nchecks: []\n", 2, 9, "no checks");
}

Test(verify_spec_errors, checks_not_a_list)
{
    expect_error_at("checks: {kind: migrations}\n", 1, 9, "\"checks\" must be a list of checks, found a mapping");
}

Test(verify_spec_errors, check_not_a_mapping)
{
    expect_error_at("checks:\n  - kind: migrations\n  - migrations\n", 3, 5,
                    "a check must be a mapping (kind: …), found a single value");
}

Test(verify_spec_errors, missing_kind)
{
    expect_error_at("checks:\n  - name: x\n    hint: y\n", 2, 5, "missing required key \"kind\"");
}

Test(verify_spec_errors, unknown_kind)
{
    expect_error_at("checks:\n  - kind: bogus\n", 2, 11,
                    "unknown kind \"bogus\" (server_version, setting, extension, access_method, column, index, "
                    "plan, migrations, row_count or sql)");
}

Test(verify_spec_errors, unknown_key_for_kind)
{
    expect_error_at("checks:\n  - kind: migrations\n    table: t\n", 3, 5,
                    "unknown key \"table\" for a migrations check");
}

Test(verify_spec_errors, missing_required_key)
{
    expect_error_at("checks:\n  - kind: migrations\n  - kind: setting\n    setting: work_mem\n", 3, 5,
                    "missing required key \"expect\" for a setting check");
    expect_error_at("checks:\n  - kind: column\n    table: t\n", 2, 5, "missing required key \"column\" for a column check");
}

Test(verify_spec_errors, list_where_a_value_belongs)
{
    expect_error_at("checks:\n  - kind: access_method\n    access_method: [hnsw]\n", 3, 20,
                    "\"access_method\" must be a single value, found a list");
    expect_error_at("description: {a: 1}\nchecks:\n  - kind: migrations\n", 1, 14,
                    "\"description\" must be a single value, found a mapping");
}

Test(verify_spec_errors, key_not_a_value)
{
    expect_error_at("checks:\n  - kind: migrations\n    [a]: 1\n", 3, 5, "a key must be a single value, found a list");
}

Test(verify_spec_errors, no_value_and_empty_value)
{
    expect_error_at("checks:\n  - kind: migrations\n    hint: ~\n", 3, 11, "\"hint\" has no value");
    expect_error_at("checks:\n  - kind: row_count\n    table: \"\"\n    min: 0\n", 3, 12, "\"table\" must not be empty");
    expect_error_at("checks:\n  - kind: sql\n    query: \" \\n \"\n    expect: 1\n", 3, 12, "\"query\" must not be empty");
}

Test(verify_spec_errors, bad_integer)
{
    expect_error_at("checks:\n  - kind: index\n    index: i\n    m: abc\n", 4, 8, "\"m\" must be an integer, found \"abc\"");
    expect_error_at("checks:\n  - kind: index\n    index: i\n    m: \"16\"\n", 4, 8,
                    "\"m\" must be an integer, found the quoted text \"16\"");
    expect_error_at("checks:\n  - kind: index\n    index: i\n    m: 1\n", 4, 8, "\"m\" must be at least 2, found 1");
    expect_error_at("checks:\n  - kind: index\n    index: i\n    lists: 1.5\n", 4, 12,
                    "\"lists\" must be an integer, found \"1.5\"");
    expect_error_at("checks:\n  - kind: column\n    table: t\n    column: c\n    dimension: 99999999999999999999\n", 5, 16,
                    "\"dimension\" must be an integer, found \"99999999999999999999\"");
    expect_error_at("checks:\n  - kind: row_count\n    table: t\n    max: -1\n", 4, 10,
                    "\"max\" must be at least 0, found -1");
}

Test(verify_spec_errors, bad_boolean)
{
    expect_error_at("checks:\n  - kind: index\n    index: i\n    valid: maybe\n", 4, 12,
                    "\"valid\" must be true or false, found \"maybe\"");
}

Test(verify_spec_errors, bad_number)
{
    expect_error_at("checks:\n  - kind: plan\n    query: SELECT 1\n    max_ms: 0\n", 4, 13,
                    "\"max_ms\" must be a number of milliseconds > 0, found \"0\"");
    expect_error_at("checks:\n  - kind: plan\n    query: SELECT 1\n    max_ms: fast\n", 4, 13,
                    "\"max_ms\" must be a number of milliseconds > 0, found \"fast\"");
}

Test(verify_spec_errors, bad_severity)
{
    expect_error_at("checks:\n  - kind: migrations\n    severity: fatal\n", 3, 15,
                    "unknown severity \"fatal\" (error or warn)");
}

Test(verify_spec_errors, bad_skip)
{
    expect_error_at("checks:\n  - kind: migrations\n    skip: ''\n", 3, 11,
                    "\"skip\" must be true, false or a reason, found \"\"");
}

Test(verify_spec_errors, bad_constraint)
{
    expect_error_at("checks:\n  - kind: server_version\n    version: \"=>13\"\n", 3, 14,
                    "bad \"version\" constraint \"=>13\": unknown operator \"=>\"");
    expect_error_at("checks:\n  - kind: extension\n    extension: vector\n    version: latest\n", 4, 14,
                    "bad \"version\" constraint \"latest\": \"latest\" is not a version");
    expect_error_at("checks:\n  - kind: setting\n    setting: work_mem\n    expect: '>=abc'\n", 4, 13,
                    "bad \"expect\" constraint \">=abc\": \"abc\" is not a number (\">=\" needs one)");
}

Test(verify_spec_errors, duplicate_key)
{
    expect_error_at("checks:\n  - kind: migrations\n    name: a\n    name: b\n", 4, 5,
                    "duplicate key \"name\" (first at line 3)");
}

Test(verify_spec_errors, duplicate_name)
{
    /* default names collide: reported at the later check's mapping */
    expect_error_at("checks:\n  - kind: migrations\n  - kind: access_method\n    access_method: hnsw\n"
                    "  - kind: migrations\n",
                    5, 5, "duplicate check name \"migrations\" (the check at line 2 has it too)");
    /* given names collide: reported at the later name */
    expect_error_at("checks:\n  - kind: migrations\n    name: same\n  - kind: access_method\n"
                    "    access_method: hnsw\n    name: same\n",
                    6, 11, "duplicate check name \"same\" (the check at line 2 has it too)");
}

Test(verify_spec_errors, anchors_and_aliases)
{
    expect_error_at("checks:\n  - &c\n    kind: migrations\n", 2, 5, "anchors (&c) are not supported in a spec");
    expect_error_at("checks:\n  - kind: migrations\n    name: *nope\n", 3, 11,
                    "aliases (*nope) are not supported in a spec");
}

Test(verify_spec_errors, nul_character)
{
    expect_error_at("description: \"a\\0b\"\nchecks:\n  - kind: migrations\n", 1, 14,
                    "a value contains a NUL character");
}

Test(verify_spec_errors, nested_too_deeply)
{
    char yaml[200] = "description: ";
    for (int i = 0; i < 40; i++)
        strcat(yaml, "[");
    for (int i = 0; i < 40; i++)
        strcat(yaml, "]");
    strcat(yaml, "\nchecks:\n  - kind: migrations\n");
    /* the root mapping is level 0, so the 32nd "[" (column 13 + 32) is one level too many */
    expect_error_at(yaml, 1, 45, "nested too deeply");
}

Test(verify_spec_errors, column_dimension_twice)
{
    expect_error_at("checks:\n  - kind: column\n    table: t\n    column: c\n    dimension_sql: SELECT 3\n"
                    "    dimension: 3\n",
                    6, 5, "\"dimension\" and \"dimension_sql\" cannot both be given");
}

Test(verify_spec_errors, index_without_target)
{
    expect_error_at("checks:\n  - kind: index\n    table: t\n    method: hnsw\n", 2, 5,
                    "an index check needs \"index\" or both \"table\" and \"column\"");
}

Test(verify_spec_errors, plan_rules)
{
    expect_error_at("checks:\n  - kind: plan\n    query: SELECT 1\n    no_seq_scan: false\n", 2, 5,
                    "a plan check needs \"expect_index\", \"no_seq_scan: true\" or \"max_ms\"");
    expect_error_at("checks:\n  - kind: plan\n    query: SELECT id FROM m ORDER BY e <=> $vector\n"
                    "    no_seq_scan: true\n",
                    3, 12, "the query uses $vector but \"vector_from\" is not given");
    expect_error_at("checks:\n  - kind: plan\n    query: SELECT 1 WHERE x @@ to_tsquery($text)\n    max_ms: 5\n", 3, 12,
                    "the query uses $text but \"text_from\" is not given");
    expect_error_at("checks:\n  - kind: plan\n    query: SELECT $textual\n    max_ms: 5\n    text_from: m.t\n", 5, 5,
                    "\"text_from\" is given but the query has no $text");
    expect_error_at("checks:\n  - kind: plan\n    query: SELECT $vector\n    max_ms: 5\n    vector_from: memories\n", 5,
                    18, "\"vector_from\" must be [schema.]table.column, found \"memories\"");
    expect_error_at("checks:\n  - kind: plan\n    query: SELECT $vector\n    max_ms: 5\n    vector_from: a.b.c.d\n", 5,
                    18, "\"vector_from\" must be [schema.]table.column, found \"a.b.c.d\"");
    expect_error_at("checks:\n  - kind: plan\n    query: SELECT $vector\n    max_ms: 5\n    vector_from: a..b\n", 5,
                    18, "\"vector_from\" must be [schema.]table.column, found \"a..b\"");
}

Test(verify_spec_errors, row_count_rules)
{
    expect_error_at("checks:\n  - kind: row_count\n    table: t\n", 2, 5, "a row_count check needs \"min\" or \"max\"");
    expect_error_at("checks:\n  - kind: row_count\n    table: t\n    min: 5\n    max: 3\n", 5, 10,
                    "\"min\" (5) is greater than \"max\" (3)");
}

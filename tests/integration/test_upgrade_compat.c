/* test_upgrade_compat.c — the upgrade preflight against the sandbox cluster (PostgreSQL 15.20 with
 * pgvector 0.8.0), which serves as both the old and the new server: what compat_collect finds,
 * what compat_probe accepts and rejects (with the server's own errors), that it leaves nothing
 * behind, the two extension rules, and the text and JSON renderings. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "log.h"
#include "upgrade_compat.h"

TestSuite(upgrade_compat, .fini = tu_leak_check, .timeout = 120);

/* An "old" database: a table, a column, HNSW and IVFFlat indexes and a view with options, a
 * database setting (work_mem = work_mem) and a setting of role `role` in it. */
static void make_old(const char *uri, const char *role, const char *work_mem)
{
    char *db = tu_db_name(uri);
    char *sql = tu_printf(
        "CREATE EXTENSION vector;"
        "CREATE TABLE items (id int PRIMARY KEY, body text, e vector(3)) WITH (fillfactor = 70);"
        "ALTER TABLE items ALTER COLUMN body SET (n_distinct = 100);"
        "CREATE INDEX items_hnsw ON items USING hnsw (e vector_l2_ops) WITH (m = 8, ef_construction = 32);"
        "CREATE INDEX items_ivf ON items USING ivfflat (e vector_l2_ops) WITH (lists = 2);"
        "CREATE VIEW items_v WITH (security_barrier = true) AS SELECT id FROM items;"
        "ALTER DATABASE \"%s\" SET work_mem = '%s';"
        "CREATE ROLE \"%s\";"
        "ALTER ROLE \"%s\" IN DATABASE \"%s\" SET maintenance_work_mem = '77MB';",
        db, work_mem, role, role, db);
    tu_exec(uri, sql);
    free(sql);
    free(db);
}

static pg_conn *connect_to(const char *uri)
{
    pg_conn *c = pg_connect(uri, "test_upgrade_compat", 0);
    cr_assert(c, "could not connect to %s", uri);
    return c;
}

/* An old database made by make_old (role "<db>_r") and what compat_collect found there. */
typedef struct {
    char *uri, *db, *role;
    compat_list l;
} old_db;

static void old_open(old_db *o, const char *work_mem)
{
    o->uri = tu_fresh_db();
    o->db = tu_db_name(o->uri);
    o->role = tu_printf("%s_r", o->db);
    o->l = (compat_list){0};
    make_old(o->uri, o->role, work_mem);
    pg_conn *c = connect_to(o->uri);
    cr_assert(compat_collect(c, o->db, true, &o->l));
    pg_close(c);
}

/* Drops the database, then the role (its settings went with the database); frees o. */
static void old_close(old_db *o)
{
    compat_list_free(&o->l);
    tu_drop_db(o->uri);
    char *sql = tu_printf("DROP ROLE \"%s\"", o->role);
    tu_exec(tu_test_url(), sql);
    free(sql), free(o->role), free(o->db), free(o->uri);
}

/* The item of that kind, relkind, name and value (NULL: any), or NULL. */
static const compat_item *find(const compat_list *l, compat_kind kind, const char *relkind, const char *name,
                               const char *value)
{
    for (int i = 0; i < l->n; i++) {
        const compat_item *it = &l->items[i];
        if (it->kind == kind && !strcmp(it->name, name) &&
            (!relkind || (it->relkind && !strcmp(it->relkind, relkind))) &&
            (!value || (it->value && !strcmp(it->value, value))))
            return it;
    }
    return NULL;
}

static const compat_item *expect_item(const compat_list *l, compat_kind kind, const char *relkind, const char *name,
                                      const char *value, int count, const char *example)
{
    const compat_item *it = find(l, kind, relkind, name, value);
    cr_assert(it, "no item %d %s %s=%s", (int) kind, relkind ? relkind : "-", name, value ? value : "-");
    cr_expect_eq(it->count, count, "%s=%s: count %d, want %d", name, value ? value : "-", it->count, count);
    cr_expect_str_eq(it->example, example, "%s: example", name);
    return it;
}

/* Appends a synthetic item to l (freed with compat_list_free). */
static void add(compat_list *l, compat_kind kind, const char *relkind, const char *am, const char *name,
                const char *value)
{
    compat_item *n = realloc(l->items, (size_t) (l->n + 1) * sizeof *n);
    cr_assert(n);
    l->items = n;
    l->cap = l->n + 1;
    l->items[l->n++] = (compat_item){kind,
                                     relkind ? strdup(relkind) : NULL,
                                     am ? strdup(am) : NULL,
                                     strdup(name),
                                     value ? strdup(value) : NULL,
                                     strdup("t.public.x"),
                                     1};
}

/* The problem about the item named name, or NULL. */
static const compat_problem *problem_of(const compat_result *r, const char *name, const char *value)
{
    for (int i = 0; i < r->nproblems; i++)
        if (!strcmp(r->problems[i].item->name, name) &&
            (!value || (r->problems[i].item->value && !strcmp(r->problems[i].item->value, value))))
            return &r->problems[i];
    return NULL;
}

static void expect_problem(const compat_result *r, const char *name, const char *value, const char *sqlstate,
                           const char *error, const char *statement)
{
    const compat_problem *p = problem_of(r, name, value);
    cr_assert(p, "no problem reported for %s", name);
    cr_expect_str_eq(p->sqlstate, sqlstate, "%s: sqlstate", name);
    cr_expect(tu_contains(p->error, error), "%s: error \"%s\" lacks \"%s\"", name, p->error, error);
    if (statement)
        cr_expect_str_eq(p->statement ? p->statement : "(null)", statement, "%s: statement", name);
    else
        cr_expect_null(p->statement, "%s: an extension check has no statement", name);
}

/* Columns of user relations on this server that carry the column option pg_attver (Debian's
 * PostgreSQL 15 build stores it on every column it creates). */
static long long pg_attver_columns(const char *uri)
{
    return tu_query_int(uri, "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                             " WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0"
                             " AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'm', 'f', 'v')"
                             " AND EXISTS (SELECT 1 FROM unnest(a.attoptions) o WHERE o LIKE 'pg\\_attver=%')");
}

/* ---- collect ------------------------------------------------------------------------------- */

Test(upgrade_compat, collect_finds_every_kind_with_counts_and_examples)
{
    old_db o;
    old_open(&o, "8MB");
    const char *db = o.db, *role = o.role;
    compat_list l = o.l;

    char *ex_items = tu_printf("%s.public.items", db), *ex_body = tu_printf("%s.public.items.body", db),
         *ex_hnsw = tu_printf("%s.public.items_hnsw", db), *ex_ivf = tu_printf("%s.public.items_ivf", db),
         *ex_view = tu_printf("%s.public.items_v", db), *ex_pkey = tu_printf("%s.public.items_pkey", db),
         *ex_db = tu_printf("database %s", db), *ex_role = tu_printf("role %s in database %s", role, db);
    expect_item(&l, COMPAT_RELOPTION, "table", "fillfactor", "70", 1, ex_items);
    expect_item(&l, COMPAT_ATTOPTION, NULL, "n_distinct", "100", 1, ex_body);
    const compat_item *m = expect_item(&l, COMPAT_RELOPTION, "index", "m", "8", 1, ex_hnsw);
    cr_expect_str_eq(m->am, "hnsw");
    expect_item(&l, COMPAT_RELOPTION, "index", "ef_construction", "32", 1, ex_hnsw);
    const compat_item *lists = expect_item(&l, COMPAT_RELOPTION, "index", "lists", "2", 1, ex_ivf);
    cr_expect_str_eq(lists->am, "ivfflat");
    /* pg_catalog.pg_stats has security_barrier=true too: system schemas are skipped */
    expect_item(&l, COMPAT_RELOPTION, "view", "security_barrier", "true", 1, ex_view);
    expect_item(&l, COMPAT_SETTING, NULL, "work_mem", "8MB", 1, ex_db);
    expect_item(&l, COMPAT_SETTING, NULL, "maintenance_work_mem", "77MB", 1, ex_role);
    const compat_item *hnsw = expect_item(&l, COMPAT_INDEX_AM, NULL, "hnsw", NULL, 1, ex_hnsw);
    cr_expect_str_eq(hnsw->am, "hnsw");
    cr_expect_null(hnsw->value);
    expect_item(&l, COMPAT_INDEX_AM, NULL, "ivfflat", NULL, 1, ex_ivf);
    expect_item(&l, COMPAT_INDEX_AM, NULL, "btree", NULL, 1, ex_pkey);
    expect_item(&l, COMPAT_EXTENSION, NULL, "vector", "0.8.0", 1, ex_db);
    expect_item(&l, COMPAT_EXTENSION, NULL, "plpgsql", NULL, 1, ex_db);
    cr_expect_null(find(&l, COMPAT_RELOPTION, "table", "fillfactor", "100"), "no pg_catalog table option");

    /* Debian's 15.20 stores pg_attver on every column: items.id, .body, .e and items_v.id. The
     * collect sees each (one item per distinct value) and counts them all. */
    long long attver = pg_attver_columns(o.uri);
    cr_expect_eq(attver, 4, "this server stores pg_attver on %lld columns, want every one of 4", attver);
    int seen = 0;
    for (int i = 0; i < l.n; i++)
        if (l.items[i].kind == COMPAT_ATTOPTION && !strcmp(l.items[i].name, "pg_attver"))
            seen += l.items[i].count;
    cr_expect_eq(seen, attver, "pg_attver counted on %d columns, the catalog has %lld", seen, attver);

    /* a second collect merges: counts add up, examples stay the first */
    int n = l.n;
    pg_conn *c = connect_to(o.uri);
    cr_assert(compat_collect(c, db, false, &l));
    pg_close(c);
    cr_expect_eq(l.n, n, "merging added items");
    expect_item(&l, COMPAT_RELOPTION, "table", "fillfactor", "70", 2, ex_items);
    expect_item(&l, COMPAT_SETTING, NULL, "work_mem", "8MB", 1, ex_db); /* not cluster-wide: not again */

    free(ex_items), free(ex_body), free(ex_hnsw), free(ex_ivf), free(ex_view), free(ex_pkey), free(ex_db);
    free(ex_role);
    o.l = l;
    old_close(&o);
}

/* ---- probe --------------------------------------------------------------------------------- */

Test(upgrade_compat, probe_of_what_the_same_server_stores_finds_no_problem)
{
    old_db o;
    old_open(&o, "7MB");
    const compat_list l = o.l;
    cr_assert(find(&l, COMPAT_ATTOPTION, NULL, "pg_attver", NULL), "pg_attver is among the probed items");

    /* the new side: a database without vector (its loading is then tried too) */
    char *neu = tu_fresh_db();
    pg_conn *c = connect_to(neu);
    compat_result r = {0};
    cr_assert(compat_probe(c, &l, COMPAT_EXT_SAME_OR_UPDATE, &r));
    /* every item, pg_attver included: 15.20 itself accepts the option it stores */
    cr_expect_eq(r.tried, l.n, "tried %d of %d", r.tried, l.n);
    cr_expect_eq(r.skipped, 0);
    char *d = compat_describe(&r);
    cr_expect_eq(r.nproblems, 0, "problems:\n%s", d);
    cr_expect_str_eq(d, "");
    cr_expect(!strncmp(r.server_version, "15.", 3), "server_version %s", r.server_version);
    free(d);
    compat_result_free(&r);
    cr_expect(!pg_in_transaction(c));
    pg_close(c);
    tu_drop_db(neu);
    free(neu);
    old_close(&o);
}

/* The synthetic list of tests 3 and 6: six rejected items and two accepted ones. */
static void rejected_list(compat_list *l)
{
    add(l, COMPAT_ATTOPTION, NULL, NULL, "no_such_option", "1");
    add(l, COMPAT_RELOPTION, "table", NULL, "no_such_table_option", "1");
    add(l, COMPAT_SETTING, NULL, NULL, "no_such_setting", "1");
    add(l, COMPAT_INDEX_AM, NULL, "no_such_am", "no_such_am", NULL);
    add(l, COMPAT_EXTENSION, NULL, NULL, "no_such_ext", "1.0");
    add(l, COMPAT_RELOPTION, "index", "hnsw", "m", "1");
    add(l, COMPAT_ATTOPTION, NULL, NULL, "pg_attver", "22466368"); /* accepted by 15.20 */
    add(l, COMPAT_SETTING, NULL, NULL, "pgmemctl_compat.flag", "on"); /* a placeholder: accepted */
}

/* Probes rejected_list (into l) with the pg_upgrade rule on a fresh database; returns its URI. */
static char *probe_rejected(compat_list *l, compat_result *r)
{
    char *uri = tu_fresh_db();
    rejected_list(l);
    pg_conn *c = connect_to(uri);
    cr_assert(compat_probe(c, l, COMPAT_EXT_SAME_OR_UPDATE, r));
    pg_close(c);
    return uri;
}

Test(upgrade_compat, probe_reports_each_rejection_with_the_servers_error)
{
    compat_list l = {0};
    compat_result r = {0};
    char *uri = probe_rejected(&l, &r), *db = tu_db_name(uri);
    cr_expect_eq(r.tried, 8);
    cr_expect_eq(r.nproblems, 6);
    expect_problem(&r, "no_such_option", NULL, "22023", "unrecognized parameter \"no_such_option\"",
                   "ALTER TABLE pgmemctl_compat_probe.scratch ALTER COLUMN i SET (\"no_such_option\" = '1')");
    expect_problem(&r, "no_such_table_option", NULL, "22023", "unrecognized parameter \"no_such_table_option\"",
                   "CREATE TABLE pgmemctl_compat_probe.t (i int) WITH (\"no_such_table_option\" = '1')");
    char *alter_db = tu_printf("ALTER DATABASE \"%s\" SET \"no_such_setting\" = '1'", db);
    expect_problem(&r, "no_such_setting", NULL, "42704", "unrecognized configuration parameter \"no_such_setting\"",
                   alter_db);
    expect_problem(&r, "no_such_am", NULL, "42704", "access method \"no_such_am\" does not exist",
                   "CREATE INDEX ON pgmemctl_compat_probe.scratch USING \"no_such_am\" (i)");
    expect_problem(&r, "no_such_ext", NULL, "",
                   "extension no_such_ext (version 1.0 in t.public.x) is not available on the new server", NULL);
    /* the vector column with hnsw's first non-default operator class for vector (by name) */
    expect_problem(&r, "m", "1", "22023", "value 1 out of bounds for option \"m\"",
                   "CREATE INDEX ON pgmemctl_compat_probe.scratch USING \"hnsw\""
                   " (v pgmemctl_compat_probe.vector_cosine_ops) WITH (\"m\" = '1')");
    cr_expect_null(problem_of(&r, "pg_attver", NULL), "15.20 accepts pg_attver");
    cr_expect_null(problem_of(&r, "pgmemctl_compat.flag", NULL));
    compat_result_free(&r);
    compat_list_free(&l);
    tu_drop_db(uri);
    free(alter_db), free(db), free(uri);
}

/* The probe database's pg_db_role_setting rows, as text. */
static char *db_settings(const char *uri)
{
    return tu_query_value(uri, "SELECT coalesce(string_agg(setrole::text || ':' || setconfig::text, ';'"
                               " ORDER BY setrole), '') FROM pg_db_role_setting"
                               " WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())");
}

Test(upgrade_compat, probe_leaves_nothing_behind)
{
    old_db o;
    old_open(&o, "6MB");
    compat_list l = o.l;
    rejected_list(&l);
    pg_conn *c;

    /* the old database itself (vector installed) and a fresh one (vector created by the probe) */
    char *fresh = tu_fresh_db();
    const char *targets[] = {o.uri, fresh};
    for (int t = 0; t < 2; t++) {
        char *snap = tu_catalog_snapshot(targets[t]), *settings = db_settings(targets[t]);
        c = connect_to(targets[t]);
        compat_result r = {0};
        cr_assert(compat_probe(c, &l, COMPAT_EXT_CREATE_NEWER, &r));
        cr_expect_eq(r.nproblems, 6);
        cr_expect(!pg_in_transaction(c), "the probe's transaction is closed");
        compat_result_free(&r);
        pg_close(c);
        char *snap2 = tu_catalog_snapshot(targets[t]), *settings2 = db_settings(targets[t]);
        cr_expect_str_eq(snap2, snap, "the probe changed the catalog of %s", targets[t]);
        cr_expect_str_eq(settings2, settings, "the probe changed the settings of %s", targets[t]);
        free(snap), free(snap2), free(settings), free(settings2);
    }
    cr_expect_eq(tu_query_int(fresh, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"), 0);

    /* when it cannot even set up (its schema exists), it fails, rolls back and leaves the schema */
    tu_exec(fresh, "CREATE SCHEMA pgmemctl_compat_probe");
    c = connect_to(fresh);
    compat_result r = {0};
    tu_stderr_begin();
    bool ok = compat_probe(c, &l, COMPAT_EXT_CREATE_NEWER, &r);
    char *err = tu_stderr_end();
    cr_expect(!ok);
    cr_expect(tu_contains(err, "schema \"pgmemctl_compat_probe\" already exists"), "stderr: %s", err);
    cr_expect(!pg_in_transaction(c));
    cr_expect_eq(tu_query_int(fresh, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgmemctl_compat_probe'"), 1);
    cr_expect_eq(tu_query_int(fresh, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"), 0);
    compat_result_free(&r);
    pg_close(c);
    free(err);

    tu_drop_db(fresh);
    free(fresh);
    o.l = l;
    old_close(&o);
}

/* ---- extension rules ----------------------------------------------------------------------- */

Test(upgrade_compat, extension_rules)
{
    char *uri = tu_fresh_db();
    compat_list l = {0};
    add(&l, COMPAT_EXTENSION, NULL, NULL, "vector", "0.7.0");
    add(&l, COMPAT_EXTENSION, NULL, NULL, "vector", "9.9.9");
    add(&l, COMPAT_EXTENSION, NULL, NULL, "vector", "0.10.0"); /* numerically newer than 0.8.0 */
    pg_conn *c = connect_to(uri);

    /* pg_upgrade: 0.7.0 has an update path to 0.8.0; 9.9.9 and 0.10.0 have none */
    compat_result r = {0};
    cr_assert(compat_probe(c, &l, COMPAT_EXT_SAME_OR_UPDATE, &r));
    cr_expect_eq(r.tried, 3);
    cr_expect_eq(r.nproblems, 2);
    cr_expect_null(problem_of(&r, "vector", "0.7.0"));
    expect_problem(&r, "vector", "9.9.9", "",
                   "extension vector: the new server has no update path from version 9.9.9 (in t.public.x) to its "
                   "default version 0.8.0",
                   NULL);
    cr_expect(problem_of(&r, "vector", "0.10.0"));
    compat_result_free(&r);

    /* dump/restore: the default 0.8.0 is >= 0.7.0 but older than 9.9.9 and than 0.10.0 */
    cr_assert(compat_probe(c, &l, COMPAT_EXT_CREATE_NEWER, &r));
    cr_expect_eq(r.nproblems, 2);
    cr_expect_null(problem_of(&r, "vector", "0.7.0"));
    expect_problem(&r, "vector", "9.9.9", "",
                   "extension vector: the new server's default version 0.8.0 is older than 9.9.9 (in t.public.x)",
                   NULL);
    expect_problem(&r, "vector", "0.10.0", "", "default version 0.8.0 is older than 0.10.0", NULL);
    compat_result_free(&r);

    pg_close(c);
    compat_list_free(&l);
    tu_drop_db(uri);
    free(uri);
}

/* ---- rendering ----------------------------------------------------------------------------- */

Test(upgrade_compat, describe_and_render)
{
    compat_list l = {0};
    compat_result r = {0};
    char *uri = probe_rejected(&l, &r), *db = tu_db_name(uri);
    l.items[0].count = 12; /* no_such_option on 12 columns */

    char *d = compat_describe(&r);
    char *alter_db = tu_printf("ALTER DATABASE \"%s\" SET", db);
    const char *want =
        "column option no_such_option=1 (on t.public.x, 12 columns): ERROR 22023 unrecognized parameter "
        "\"no_such_option\"\n"
        "table option no_such_table_option=1 (on t.public.x, 1 table): ERROR 22023 unrecognized parameter "
        "\"no_such_table_option\"\n"
        "setting no_such_setting=1 (on t.public.x, 1 database/role setting): ERROR 42704 unrecognized "
        "configuration parameter \"no_such_setting\"\n"
        "index access method no_such_am (on t.public.x, 1 index): ERROR 42704 access method \"no_such_am\" does "
        "not exist\n"
        "extension no_such_ext 1.0 (on t.public.x, 1 database): extension no_such_ext (version 1.0 in t.public.x) "
        "is not available on the new server\n"
        "hnsw index option m=1 (on t.public.x, 1 index): ERROR 22023 value 1 out of bounds for option \"m\" "
        "(detail: Valid values are between \"2\" and \"100\".)\n";
    cr_expect_str_eq(d, want);

    compat_result none = {0};
    char *empty = compat_describe(&none);
    cr_expect_str_eq(empty, "");

    cJSON *j = compat_render(&r);
    cr_assert(cJSON_IsArray(j));
    cr_assert_eq(cJSON_GetArraySize(j), 6);
    const cJSON *first = cJSON_GetArrayItem(j, 0);
    cr_expect_str_eq(tu_json_str(first, "kind"), "attoption");
    cr_expect_str_eq(tu_json_str(first, "name"), "no_such_option");
    cr_expect_str_eq(tu_json_str(first, "value"), "1");
    cr_expect_str_eq(tu_json_str(first, "example"), "t.public.x");
    cr_expect_eq(tu_json_num(first, "count"), 12);
    cr_expect_str_eq(tu_json_str(first, "sqlstate"), "22023");
    cr_expect_str_eq(tu_json_str(first, "error"), "unrecognized parameter \"no_such_option\"");
    cr_expect(tu_contains(tu_json_str(first, "statement"), "ALTER COLUMN i SET (\"no_such_option\" = '1')"));
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(first, "relkind")));
    const cJSON *setting = cJSON_GetArrayItem(j, 2);
    cr_expect_str_eq(tu_json_str(setting, "kind"), "setting");
    cr_expect(tu_contains(tu_json_str(setting, "statement"), alter_db));
    const cJSON *ext = cJSON_GetArrayItem(j, 4);
    cr_expect_str_eq(tu_json_str(ext, "kind"), "extension");
    cr_expect_str_eq(tu_json_str(ext, "sqlstate"), "");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(ext, "statement")));
    const cJSON *hnsw = cJSON_GetArrayItem(j, 5);
    cr_expect_str_eq(tu_json_str(hnsw, "kind"), "reloption");
    cr_expect_str_eq(tu_json_str(hnsw, "relkind"), "index");
    cr_expect_str_eq(tu_json_str(hnsw, "am"), "hnsw");

    cJSON_Delete(j);
    free(empty), free(d), free(alter_db);
    compat_result_free(&r);
    compat_list_free(&l);
    tu_drop_db(uri);
    free(db), free(uri);
}

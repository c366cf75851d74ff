/* test_upgrade_proof.c — integration tests of the upgrade proof (upgrade_proof.c) on the sandbox
 * cluster: a database and its clone (CREATE DATABASE … TEMPLATE) stand for the old and the new
 * side; the clone is then changed in each way the proof must catch. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "pg.h"
#include "upgrade_proof.h"

TestSuite(upgrade_proof, .fini = tu_leak_check, .timeout = 120);

#define SAMPLE 100

/* The old side: two vector columns (one with NULLs) and both index kinds on a table with a bigint
 * key, a table without a primary key, and a quoted schema/table/column with a text key. Counts:
 * 3 tables, 200 + 7 + 5 rows, 3 checksummed columns holding 90 + 100 + 5 values in the sample. */
static const char *const SOURCE_SQL =
    "CREATE EXTENSION vector;"
    "CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3), half halfvec(3), note text);"
    "INSERT INTO items SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE ARRAY[g, g * 0.5, -g]::vector END,"
    "       ARRAY[g, 1, 2]::halfvec, 'note ' || g FROM generate_series(1, 200) g;"
    "CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops);"
    "CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 1);"
    "CREATE TABLE plain_log (msg text, v vector(3));"
    "INSERT INTO plain_log SELECT 'm' || g, '[1,2,3]' FROM generate_series(1, 7) g;"
    "CREATE SCHEMA \"Mem Store\";"
    "CREATE TABLE \"Mem Store\".\"Odd\"\"Notes\" (k text PRIMARY KEY, \"Emb\" vector(2));"
    "INSERT INTO \"Mem Store\".\"Odd\"\"Notes\" SELECT 'key ' || g, ARRAY[g, g]::vector FROM generate_series(1, 5) g;"
    "ANALYZE;";

typedef struct {
    char *old_uri, *new_uri, *old_name, *new_name;
} sides;

/* The old side (SOURCE_SQL) and its clone as the new side, both named t_… (tu_drop_db works). */
static sides make_sides(void)
{
    sides s;
    s.old_uri = tu_fresh_db();
    tu_exec(s.old_uri, SOURCE_SQL);
    s.old_name = tu_db_name(s.old_uri);
    s.new_name = tu_printf("%s_new", s.old_name);
    char *sql = tu_printf("CREATE DATABASE \"%s\" TEMPLATE \"%s\"", s.new_name, s.old_name);
    tu_exec(tu_test_url(), sql);
    free(sql);
    const char *at = strstr(s.old_uri, s.old_name);
    cr_assert(at);
    s.new_uri = tu_printf("%.*s%s%s", (int) (at - s.old_uri), s.old_uri, s.new_name, at + strlen(s.old_name));
    return s;
}

static void drop_sides(sides *s)
{
    tu_drop_db(s->new_uri);
    tu_drop_db(s->old_uri);
    free(s->old_uri);
    free(s->new_uri);
    free(s->old_name);
    free(s->new_name);
}

static pg_conn *open_db(const char *uri)
{
    pg_conn *c = pg_connect(uri, "test_upgrade_proof", 0);
    cr_assert(c, "cannot connect to %s", uri);
    return c;
}

static void take(const sides *s, proof_snapshot *snap)
{
    pg_conn *c = open_db(s->old_uri);
    cr_assert(proof_snapshot_take(c, s->old_name, SAMPLE, snap), "snapshot failed: %s", pg_errmsg(c));
    pg_close(c);
}

/* Snapshot of the old side, then the proof on the new side; res zeroed first. */
static void prove(const sides *s, proof_snapshot *before, proof_result *res)
{
    take(s, before);
    memset(res, 0, sizeof *res);
    pg_conn *c = open_db(s->new_uri);
    cr_assert(proof_check_db(c, before, SAMPLE, res), "proof_check_db could not run");
    pg_close(c);
}

/* The only mismatch of kind check, asserting there is exactly one. */
static const proof_mismatch *only(const proof_result *res, const char *check)
{
    const proof_mismatch *found = NULL;
    for (int i = 0; i < res->nmismatches; i++)
        if (!strcmp(res->mismatches[i].check, check)) {
            cr_assert_null(found, "two %s mismatches", check);
            found = &res->mismatches[i];
        }
    cr_assert(found, "no %s mismatch among %d", check, res->nmismatches);
    return found;
}

static void expect_mismatch(const proof_mismatch *m, const char *db, const char *object, const char *expected,
                            const char *actual)
{
    cr_expect_str_eq(m->db, db);
    cr_expect_str_eq(m->object, object);
    if (expected)
        cr_expect_str_eq(m->expected, expected);
    if (actual)
        cr_expect_str_eq(m->actual, actual);
}

/* One scenario: the two sides, the old side's snapshot and the proof's result. */
typedef struct {
    sides s;
    proof_snapshot before;
    proof_result res;
} proof_case;

/* Runs change_sql (NULL: nothing) on the new side, then takes the snapshot and the proof again. */
static void reprove(proof_case *k, const char *change_sql)
{
    proof_snapshot_free(&k->before);
    proof_result_free(&k->res);
    if (change_sql)
        tu_exec(k->s.new_uri, change_sql);
    prove(&k->s, &k->before, &k->res);
}

static void start_case(proof_case *k, const char *change_sql)
{
    memset(k, 0, sizeof *k);
    k->s = make_sides();
    reprove(k, change_sql);
}

static void end_case(proof_case *k)
{
    proof_snapshot_free(&k->before);
    proof_result_free(&k->res);
    drop_sides(&k->s);
}

Test(upgrade_proof, identical_clone_passes)
{
    proof_case k;
    start_case(&k, NULL);

    cr_assert_str_eq(k.before.db, k.s.old_name);
    char *ver = tu_query_value(k.s.old_uri, "SELECT extversion FROM pg_extension WHERE extname = 'vector'");
    cr_assert_str_eq(k.before.vector_version, ver);
    free(ver);
    cr_assert_eq(k.before.ntables, 3);
    /* byte order: "Mem Store" < "public"; "items" < "plain_log" */
    cr_expect_str_eq(k.before.tables[0].schema, "Mem Store");
    cr_expect_str_eq(k.before.tables[0].table, "Odd\"Notes");
    cr_expect_str_eq(k.before.tables[1].table, "items");
    cr_expect_str_eq(k.before.tables[2].table, "plain_log");
    const proof_table *items = &k.before.tables[1];
    cr_expect_eq(items->rows, 200);
    cr_assert_eq(items->nvcols, 2);
    cr_expect_str_eq(items->vcols[0].column, "embedding");
    cr_expect_str_eq(items->vcols[0].type, "vector(3)");
    cr_expect_eq(items->vcols[0].sampled, 90);
    cr_expect_eq(strlen(items->vcols[0].checksum), 32);
    cr_expect_str_eq(items->vcols[1].type, "halfvec(3)");
    cr_expect_eq(items->vcols[1].sampled, 100);
    cr_expect_str_neq(items->vcols[0].checksum, items->vcols[1].checksum);
    cr_assert_eq(k.before.tables[2].nvcols, 1);
    cr_expect_null(k.before.tables[2].vcols[0].checksum, "no primary key: no checksum");
    cr_expect_eq(k.before.tables[0].vcols[0].sampled, 5);

    /* the checksum is md5 of the values' send representation, in key order */
    char *sql = tu_printf("SELECT md5(string_agg(encode(vector_send(embedding), 'hex'), '' ORDER BY id))"
                          " FROM (SELECT * FROM items ORDER BY id LIMIT %d) s WHERE embedding IS NOT NULL",
                          SAMPLE);
    char *want = tu_query_value(k.s.old_uri, sql);
    cr_expect_str_eq(items->vcols[0].checksum, want);
    free(want);
    free(sql);

    for (int i = 0; i < k.res.nmismatches; i++)
        cr_log_error("mismatch %s %s: %s / %s", k.res.mismatches[i].check, k.res.mismatches[i].object,
                     k.res.mismatches[i].expected, k.res.mismatches[i].actual);
    cr_expect(proof_passed(&k.res));
    cr_expect_eq(k.res.databases, 1);
    cr_expect_eq(k.res.tables, 3);
    cr_expect_eq(k.res.rows, 212);
    cr_expect_eq(k.res.vector_columns, 3);
    cr_expect_eq(k.res.vectors_sampled, 195);
    cr_expect_eq(k.res.indexes, 2);
    cr_expect_eq(k.res.indexes_used, 2);
    cr_expect_eq(k.res.plan_skipped, 0);

    /* inside the caller's REPEATABLE READ transaction: same outcome, the transaction stays open
     * and enable_seqscan is untouched */
    pg_conn *c = open_db(k.s.new_uri);
    cr_assert(pg_run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL));
    proof_result res2 = {0};
    cr_assert(proof_check_db(c, &k.before, SAMPLE, &res2));
    cr_expect(proof_passed(&res2));
    cr_expect_eq(res2.indexes_used, 2);
    cr_expect(pg_in_transaction(c));
    bool found;
    char *seq = pg_query_text(c, "SELECT current_setting('enable_seqscan')", 0, NULL, &found);
    cr_expect_str_eq(seq, "on");
    free(seq);
    pg_rollback(c);
    pg_close(c);
    proof_result_free(&res2);
    end_case(&k);
}

Test(upgrade_proof, deleted_row_is_a_rows_mismatch)
{
    proof_case k;
    start_case(&k, "DELETE FROM plain_log WHERE msg = 'm3'");
    cr_expect_not(proof_passed(&k.res));
    cr_expect_eq(k.res.nmismatches, 1);
    expect_mismatch(only(&k.res, "rows"), k.s.old_name, "public.plain_log", "7", "6");
    cr_expect_eq(k.res.rows, 211);
    end_case(&k);
}

Test(upgrade_proof, changed_vector_is_a_checksum_mismatch)
{
    proof_case k;
    start_case(&k, "UPDATE items SET embedding = '[1,2,3.5]' WHERE id = 42");
    cr_expect_eq(k.res.nmismatches, 1);
    const proof_mismatch *m = only(&k.res, "vector_checksum");
    expect_mismatch(m, k.s.old_name, "public.items.embedding", k.before.tables[1].vcols[0].checksum, NULL);
    cr_expect_eq(strlen(m->actual), 32);
    cr_expect_str_neq(m->actual, m->expected);

    /* a change outside the sample (id > SAMPLE) is not seen by the checksum */
    char *orig = tu_query_value(k.s.old_uri, "SELECT embedding::text FROM items WHERE id = 42");
    char *sql = tu_printf("UPDATE items SET embedding = '%s' WHERE id = 42;"
                          "UPDATE items SET embedding = '[9,9,9]' WHERE id = 150",
                          orig);
    reprove(&k, sql);
    free(sql);
    free(orig);
    cr_expect(proof_passed(&k.res));
    end_case(&k);
}

Test(upgrade_proof, missing_and_extra_tables)
{
    proof_case k;
    start_case(&k, "DROP TABLE plain_log;"
                   "CREATE TABLE zz_new (id int PRIMARY KEY); INSERT INTO zz_new VALUES (1), (2)");
    cr_expect_eq(k.res.nmismatches, 2);
    expect_mismatch(only(&k.res, "table_missing"), k.s.old_name, "public.plain_log", "present", NULL);
    expect_mismatch(only(&k.res, "table_extra"), k.s.old_name, "public.zz_new", "absent", "present (2 rows)");
    cr_expect_eq(k.res.tables, 2);
    end_case(&k);
}

Test(upgrade_proof, invalid_index)
{
    proof_case k;
    start_case(&k, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'items_ivf'::regclass");
    cr_expect_eq(k.res.nmismatches, 1);
    const proof_mismatch *m = only(&k.res, "index_invalid");
    expect_mismatch(m, k.s.old_name, "items_ivf", NULL, "indisvalid = f, indisready = t");
    cr_expect_eq(k.res.indexes, 2);
    cr_expect_eq(k.res.indexes_used, 1);
    end_case(&k);
}

Test(upgrade_proof, index_not_chosen_and_partial_index)
{
    /* a partial index: validity only; a duplicate of items_hnsw: the planner takes one of the two */
    proof_case k;
    start_case(&k, "CREATE INDEX items_half_part ON items USING hnsw (half halfvec_l2_ops) WHERE id > 5;"
                   "CREATE INDEX items_hnsw_dup ON items USING hnsw (embedding vector_cosine_ops)");
    cr_expect_eq(k.res.indexes, 4);
    cr_expect_eq(k.res.plan_skipped, 1);
    cr_expect_eq(k.res.indexes_used, 2);
    cr_expect_eq(k.res.nmismatches, 1);
    const proof_mismatch *m = only(&k.res, "index_not_used");
    bool dup = !strcmp(m->object, "items_hnsw_dup");
    cr_expect(dup || !strcmp(m->object, "items_hnsw"), "unexpected index %s", m->object);
    cr_expect(tu_contains(m->actual, dup ? "using items_hnsw" : "using items_hnsw_dup"), "plan: %s", m->actual);
    end_case(&k);
}

Test(upgrade_proof, extension_version_and_missing_extension)
{
    /* only 0.8.0 has an install script here, so an older extversion is written into the catalog */
    proof_case k;
    start_case(&k, "UPDATE pg_extension SET extversion = '0.7.0' WHERE extname = 'vector'");
    char *newest = tu_query_value(k.s.new_uri, "SELECT max(version) FROM pg_available_extension_versions"
                                               " WHERE name = 'vector'");
    cr_expect_eq(k.res.nmismatches, 1);
    expect_mismatch(only(&k.res, "extversion"), k.s.old_name, "vector", newest, "0.7.0");
    free(newest);

    reprove(&k, "DROP EXTENSION vector CASCADE");
    expect_mismatch(only(&k.res, "extension_missing"), k.s.old_name, "vector", k.before.vector_version,
                    "not installed");
    cr_expect(proof_passed(&k.res) == false);
    cr_expect_eq(k.res.indexes, 0);
    bool embedding_reported = false;
    for (int i = 0; i < k.res.nmismatches; i++)
        embedding_reported |= !strcmp(k.res.mismatches[i].object, "public.items.embedding") &&
                              !strcmp(k.res.mismatches[i].actual, "column missing");
    cr_expect(embedding_reported);
    end_case(&k);
}

Test(upgrade_proof, server_version)
{
    char *db = tu_fresh_db();
    pg_conn *c = open_db(db);
    int major = pg_server_version(c) / 10000;
    proof_result res = {0};
    cr_assert(proof_check_server(c, major, &res));
    cr_expect(proof_passed(&res));
    cr_assert(proof_check_server(c, major + 2, &res));
    cr_assert_eq(res.nmismatches, 1);
    char want[16], got[16];
    snprintf(want, sizeof want, "%d", major + 2);
    snprintf(got, sizeof got, "%d", major);
    cr_expect_null(res.mismatches[0].db);
    cr_expect_str_eq(res.mismatches[0].check, "server_version");
    cr_expect_str_eq(res.mismatches[0].object, "server");
    cr_expect_str_eq(res.mismatches[0].expected, want);
    cr_expect_str_eq(res.mismatches[0].actual, got);
    proof_result_free(&res);
    pg_close(c);
    tu_drop_db(db);
    free(db);
}

/* No `vector`: no version, no vector columns. A partitioned table is listed through its
 * partitions only; a materialized view WITH NO DATA counts 0 rows instead of failing. */
Test(upgrade_proof, database_without_vector)
{
    char *db = tu_fresh_db();
    tu_exec(db, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 3);"
                "CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);"
                "CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (10);"
                "CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (10) TO (100);"
                "INSERT INTO parted SELECT generate_series(1, 20);"
                "CREATE MATERIALIZED VIEW mv_empty AS SELECT id FROM t WITH NO DATA;"
                "CREATE MATERIALIZED VIEW mv_full AS SELECT id FROM t");
    pg_conn *c = open_db(db);
    char *name = tu_db_name(db);
    proof_snapshot snap;
    cr_expect_not(proof_snapshot_take(c, name, 0, &snap), "a sample of 0 rows is refused");
    cr_assert(proof_snapshot_take(c, name, SAMPLE, &snap));
    cr_expect_null(snap.vector_version);
    static const struct {
        const char *table;
        int rows;
    } want[] = {{"mv_empty", 0}, {"mv_full", 3}, {"parted_high", 11}, {"parted_low", 9}, {"t", 3}};
    cr_assert_eq(snap.ntables, 5);
    for (int i = 0; i < 5; i++) {
        cr_expect_str_eq(snap.tables[i].table, want[i].table);
        cr_expect_eq(snap.tables[i].rows, want[i].rows, "%s", want[i].table);
        cr_expect_eq(snap.tables[i].nvcols, 0);
    }
    proof_result res = {0};
    cr_assert(proof_check_db(c, &snap, SAMPLE, &res));
    cr_expect(proof_passed(&res));
    cr_expect_eq(res.tables, 5);
    cr_expect_eq(res.rows, 26);
    proof_snapshot_free(&snap);
    proof_result_free(&res);
    pg_close(c);
    free(name);
    tu_drop_db(db);
    free(db);
}

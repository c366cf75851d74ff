/* test_copy_identity.c — `pgmemctl copy` recognises the store whose checkpoints a database holds
 * by the rows up to each checkpoint, not only by its first memory: another store sharing ids (a
 * backup and the live store after they diverged) is refused before anything is written, with
 * what differs; rows removed from the source or checkpoints written before migration 0005 are
 * checked against the target instead, and a copy resumes. */
#include "common/testutil.h"
#include "common/vestige_fixture.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(copy_identity, .fini = tu_leak_check, .timeout = 60);

#define DIM 8

/* pgmemctl -d uri copy --from from [flag]; must exit with want; the JSON summary. */
static cJSON *copy_expect(const char *uri, const char *from, const char *flag, int want)
{
    tu_run_result r = tu_run((const char *[]){"pgmemctl", "-d", uri, "copy", "--from", from, flag, NULL});
    cr_assert_eq(r.status, want, "copy --from %s %s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s", from,
                 flag ? flag : "", r.status, want, r.out, r.err);
    cJSON *doc = tu_json(r.out);
    tu_run_free(&r);
    return doc;
}

static const char *identity_check(const cJSON *doc) { return tu_json_str(tu_json_obj(tu_json_obj(doc, "source"), "identity"), "check"); }

/* source.identity.tables[i] */
static const cJSON *identity_table(const cJSON *doc, int i)
{
    const cJSON *t = cJSON_GetArrayItem(tu_json_array(tu_json_obj(tu_json_obj(doc, "source"), "identity"), "tables"), i);
    cr_assert(t, "source.identity.tables has no item %d", i);
    return t;
}

static long long copied(const cJSON *doc) { return (long long) tu_json_num(tu_json_obj(tu_json_obj(doc, "tables"), "memories"), "copied"); }

/* What a refused run must leave untouched: the rows, the checkpoints (fingerprints included),
 * the rejections and the registry. */
static char *target_state(const char *uri)
{
    return tu_query_value(
        uri, "SELECT concat_ws(' | ', (SELECT count(*) FROM memories), (SELECT count(*) FROM scheduling),"
             " (SELECT count(*) FROM edges), (SELECT count(*) FROM pgmemctl_copy_rejects),"
             " (SELECT string_agg(name || '/' || dimension, ',') FROM embedding_model),"
             " (SELECT string_agg(concat_ws('/', source_id, source_table, range_start, range_end, last_rowid,"
             "  rows_copied, rows_rejected, source_rows, fingerprint, updated_at), ',' ORDER BY source_table,"
             "  range_start) FROM pgmemctl_copy_progress))");
}

/* A store of `common` memories 1..common shared with its forks, then n of its own numbered from
 * own (rowids common+1 …). Connections chain every memory to the next in rowid order. */
static char *make_fork(const char *dir, const char *name, int common, int own, int n)
{
    char *path = tu_printf("%s/%s", dir, name);
    vf_store *s = vf_create(path, VF_V4, DIM);
    vf_exec(s, "BEGIN");
    char prev[37] = "", id[37];
    for (int k = 0; k < common + n; k++) {
        int i = k < common ? k + 1 : own + (k - common);
        vf_add_good_node(s, i, i % 2 == 0);
        vf_uuid(i, id);
        if (prev[0])
            vf_add_connection(s, prev, id, "semantic", 0.5);
        memcpy(prev, id, sizeof id);
    }
    vf_exec(s, "COMMIT");
    vf_close(s);
    return path;
}

/* ---- the case: a backup and the live store after they diverged --------------------- */

Test(copy_identity, store_sharing_ids_refused_before_writing)
{
    char *dir = tu_tempdir();
    /* both start with the same 20 memories; the backup has 10 of its own after them, the live
     * store 15 others (other ids at the same rowids) */
    char *backup = make_fork(dir, "backup.db", 20, 21, 10);
    char *live = make_fork(dir, "live.db", 20, 101, 15);
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, backup, NULL, 0);
    cr_assert_str_eq(identity_check(doc), "new");
    char *store_id = strdup(tu_json_str(tu_json_obj(doc, "source"), "store_id"));
    cJSON_Delete(doc);
    char *before = target_state(uri), *catalog = tu_catalog_snapshot(uri);

    /* the same store id (the first memory), but not the same rows: refused, a dry run too */
    char first[37];
    vf_uuid(101, first);
    for (int dry = 1; dry >= 0; dry--) {
        doc = copy_expect(uri, live, dry ? "--dry-run" : NULL, 2);
        cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
        cr_assert_str_eq(tu_json_str(tu_json_obj(doc, "source"), "store_id"), store_id);
        cr_assert_str_eq(identity_check(doc), "mismatch");
        const char *err = tu_json_str(doc, "error");
        cr_assert(tu_contains(err, "shares its first memory") &&
                      tu_contains(err, "knowledge_nodes up to rowid 30: 30 rows when copied, 30 now, 10 of them not in"
                                       " the target (the first: rowid 21, ") &&
                      tu_contains(err, first) && tu_contains(err, "memory_connections up to rowid 29") &&
                      tu_contains(err, "fresh database") && tu_contains(err, "--verify-existing"),
                  "the refusal does not say what differs and what to do: %s", err);
        const cJSON *t = identity_table(doc, 0);
        cr_assert_str_eq(tu_json_str(t, "table"), "knowledge_nodes");
        cr_assert_eq(tu_json_num(t, "up_to_rowid"), 30);
        cr_assert_eq(tu_json_num(t, "rows_when_copied"), 30);
        cr_assert_eq(tu_json_num(t, "rows_now"), 30);
        cr_assert(!tu_json_bool(t, "same"));
        cr_assert_eq(tu_json_num(t, "missing_in_target"), 10);
        cr_assert_eq(tu_json_num(tu_json_obj(t, "first_missing"), "rowid"), 21);
        cr_assert_str_eq(tu_json_str(tu_json_obj(t, "first_missing"), "key"), first);
        t = identity_table(doc, 1);
        cr_assert_str_eq(tu_json_str(t, "table"), "memory_connections");
        cr_assert_eq(tu_json_num(t, "missing_in_target"), 10); /* 20 -> 101 … 109 -> 110 */
        cr_assert_eq(copied(doc), 0);
        cJSON_Delete(doc);
        char *after = target_state(uri), *catalog2 = tu_catalog_snapshot(uri);
        cr_assert_str_eq(after, before, "a refused copy wrote");
        cr_assert_str_eq(catalog2, catalog, "a refused copy changed the catalog");
        free(after);
        free(catalog2);
    }

    /* into a fresh database it is an ordinary first copy */
    char *fresh = tu_migrated_db();
    doc = copy_expect(fresh, live, NULL, 0);
    cr_assert_str_eq(identity_check(doc), "new");
    cr_assert_eq(copied(doc), 35);
    cr_assert(tu_json_bool(tu_json_obj(doc, "parity"), "ok"));
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(fresh, "SELECT count(*) FROM memories"), 35);
    cr_assert_eq(tu_query_int(fresh, "SELECT count(*) FROM edges"), 34);

    /* --verify-existing merges it into the backup's database: every row of both, no error */
    doc = copy_expect(uri, live, "--verify-existing", 0);
    cr_assert_str_eq(identity_check(doc), "not_checked");
    cr_assert_eq(copied(doc), 15);
    cr_assert_eq(tu_json_num(tu_json_obj(tu_json_obj(doc, "tables"), "memories"), "already_present"), 20);
    cr_assert(tu_json_bool(tu_json_obj(doc, "parity"), "ok"));
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 45);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM edges"), 29 + 15);
    /* whose checkpoints are now the live store's: a plain re-run recognises it */
    doc = copy_expect(uri, live, NULL, 0);
    cr_assert_str_eq(identity_check(doc), "matched");
    cr_assert_eq(copied(doc), 0);
    cr_assert(tu_json_bool(tu_json_obj(doc, "parity"), "ok"));
    cJSON_Delete(doc);

    tu_drop_db(uri);
    tu_drop_db(fresh);
    tu_rmtree(dir);
    free(before);
    free(catalog);
    free(store_id);
    free(fresh);
    free(uri);
    free(backup);
    free(live);
    free(dir);
}

/* ---- the live store itself: rows removed, appended, a rowid reused ----------------------------- */

static void delete_node(const char *path, int i)
{
    char id[37];
    vf_uuid(i, id);
    vf_store *s = vf_open(path, DIM);
    char *sql = tu_printf("DELETE FROM memory_connections WHERE source_id = '%s' OR target_id = '%s';"
                          " DELETE FROM node_embeddings WHERE node_id = '%s'; DELETE FROM fsrs_cards WHERE memory_id = '%s';"
                          " DELETE FROM knowledge_nodes WHERE id = '%s'",
                          id, id, id, id, id);
    vf_exec(s, sql);
    free(sql);
    vf_close(s);
}

static int64_t append_node(const char *path, int i)
{
    vf_store *s = vf_open(path, DIM);
    int64_t rowid = vf_add_good_node(s, i, true);
    vf_close(s);
    return rowid;
}

Test(copy_identity, rows_removed_from_source_resume_rowid_reuse_refused)
{
    char *dir = tu_tempdir();
    char *path = make_fork(dir, "store.db", 20, 0, 0);
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, path, NULL, 0);
    cJSON_Delete(doc);

    /* vestige forgets memory 5 and learns two new ones: nothing before the checkpoint would be
     * skipped, so the copy resumes (memory 5 stays in the target) */
    delete_node(path, 5);
    cr_assert_eq(append_node(path, 21), 21);
    cr_assert_eq(append_node(path, 22), 22);
    doc = copy_expect(uri, path, NULL, 0);
    cr_assert_str_eq(identity_check(doc), "verified_in_target");
    const cJSON *t = identity_table(doc, 0);
    cr_assert_eq(tu_json_num(t, "rows_when_copied"), 20);
    cr_assert_eq(tu_json_num(t, "rows_now"), 19);
    cr_assert_eq(tu_json_num(t, "missing_in_target"), 0);
    cr_assert_eq(copied(doc), 2);
    cr_assert(tu_json_bool(tu_json_obj(doc, "parity"), "ok"));
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 22);
    /* the new counts were recorded: the next run matches at once */
    doc = copy_expect(uri, path, NULL, 0);
    cr_assert_str_eq(identity_check(doc), "matched");
    cr_assert_eq(copied(doc), 0);
    cJSON_Delete(doc);

    /* the newest memory is forgotten and the next one takes its rowid (SQLite reuses the highest
     * rowid): resuming after the checkpoint would skip it, so the copy is refused */
    delete_node(path, 22);
    cr_assert_eq(append_node(path, 23), 22);
    char *before = target_state(uri);
    doc = copy_expect(uri, path, NULL, 2);
    char id23[37];
    vf_uuid(23, id23);
    const char *err = tu_json_str(doc, "error");
    cr_assert(tu_contains(err, "knowledge_nodes up to rowid 22: 21 rows when copied, 21 now, 1 of them not in the"
                               " target (the first: rowid 22, ") &&
                  tu_contains(err, id23),
              "%s", err);
    cJSON_Delete(doc);
    char *after = target_state(uri);
    cr_assert_str_eq(after, before, "a refused copy wrote");
    /* --verify-existing picks it up */
    doc = copy_expect(uri, path, "--verify-existing", 0);
    cr_assert_eq(copied(doc), 1);
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 23);

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(before);
    free(after);
    free(uri);
    free(path);
    free(dir);
}

/* ---- checkpoints written before migration 0005 --------------------------------------------- */

Test(copy_identity, checkpoints_without_fingerprint)
{
    char *dir = tu_tempdir();
    char *path = make_fork(dir, "store.db", 20, 0, 0);
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, path, NULL, 0);
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_progress WHERE source_table = 'knowledge_nodes'"
                                   " AND source_rows = 20 AND fingerprint ~ '^[0-9a-f]{32}$'"),
                 1);

    /* back to the schema before 0005: copy asks for migrate up, before writing */
    tu_run_result r = tu_run((const char *[]){"pgmemctl", "-d", uri, "migrate", "down", "--to", "4", NULL});
    tu_expect_status(&r, 0, "migrate down");
    tu_run_free(&r);
    append_node(path, 21);
    doc = copy_expect(uri, path, NULL, 2);
    cr_assert(tu_contains(tu_json_str(doc, "error"), "migrate up"), "%s", tu_json_str(doc, "error"));
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 20);

    /* after migrate up the checkpoints have no fingerprint: their rows are looked up in the target
     * once, then recorded */
    r = tu_run((const char *[]){"pgmemctl", "-d", uri, "migrate", "up", NULL});
    tu_expect_status(&r, 0, "migrate up");
    tu_run_free(&r);
    doc = copy_expect(uri, path, NULL, 0);
    cr_assert_str_eq(identity_check(doc), "verified_in_target");
    const cJSON *t = identity_table(doc, 0);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(t, "rows_when_copied")));
    cr_assert_eq(tu_json_num(t, "missing_in_target"), 0);
    cr_assert_eq(copied(doc), 1);
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_progress WHERE source_table IN"
                                   " ('knowledge_nodes', 'memory_connections') AND source_rows = last_rowid"
                                   " AND fingerprint IS NOT NULL"),
                 2);
    doc = copy_expect(uri, path, NULL, 0);
    cr_assert_str_eq(identity_check(doc), "matched");
    cJSON_Delete(doc);

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(path);
    free(dir);
}

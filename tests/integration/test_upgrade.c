/* test_upgrade.c — `pgmemctl upgrade` end to end: PostgreSQL 15 sandboxes (Debian 12's main-suite
 * 15.18, with pgvector) holding a copied memory store with its HNSW index, upgraded to 17 by
 * pg_upgrade (link and copy modes) and by dump/restore; the upgraded cluster started as a sandbox
 * and searched. Failures: pgvector missing from the new installation, a running old cluster, a
 * non-empty target, a row deleted on the new side before the proof, and the system's 15.20 whose
 * column option pg_attver the new server rejects. Every assertion is on real state: exit codes,
 * the JSON document, rows, search results, catalog and files.
 *
 * Environment (scripts/run-tests): PGMEMCTL_PG15_MAIN_BINDIR and PGMEMCTL_PG17_BINDIR, from
 * scripts/install-deps --with-pg15-main / --with-pg17. */
#include "common/testutil.h"
#include "common/upgrade_fixture.h"
#include "common/vestige_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(upgrade, .fini = tu_leak_check, .timeout = 900);

static char *sandbox_base(void)
{
    const char *b = getenv("PGMEMCTL_SANDBOX_DIR");
    return strdup(b && *b ? b : "/tmp/pgmemctl-sandbox");
}

static char *sb_data(const char *name)
{
    char *base = sandbox_base();
    char *d = tu_printf("%s/%s/data", base, name);
    free(base);
    return d;
}

/* Creates the directory that will hold the data directory path (its parent). */
static void mk_parent(const char *path)
{
    char *p = strdup(path);
    *strrchr(p, '/') = '\0';
    cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s", p);
    free(p);
}

/* What must be the same before and after: rows per table, the 10 nearest memories of three
 * queries through the HNSW index (ef_search high enough to be exact on 300 rows). */
static char *fingerprint(const char *uri)
{
    char *counts = tu_query_value(uri, "SELECT format('memories=%s scheduling=%s edges=%s domains=%s models=%s', "
                                       "(SELECT count(*) FROM memories), (SELECT count(*) FROM scheduling), "
                                       "(SELECT count(*) FROM edges), (SELECT count(*) FROM domains), "
                                       "(SELECT count(*) FROM embedding_model))");
    char *ids = tu_query_value(uri, "SET hnsw.ef_search = 400; SET enable_seqscan = off; "
                                    "SELECT string_agg(n, ' | ' ORDER BY q) FROM ("
                                    "  SELECT q.id AS q, (SELECT string_agg(m.id::text, ',' ORDER BY m.d, m.id) FROM ("
                                    "    SELECT id, embedding <=> q.embedding AS d FROM memories "
                                    "    ORDER BY embedding <=> q.embedding, id LIMIT 10) m) AS n"
                                    "  FROM (SELECT id, embedding FROM memories WHERE embedding IS NOT NULL "
                                    "        ORDER BY id LIMIT 3) q) s");
    cr_assert(ids && strlen(ids) > 100, "no search results: %s", ids ? ids : "(null)");
    char *fp = tu_printf("%s\n%s", counts, ids);
    free(counts);
    free(ids);
    return fp;
}

/* The plan of a distance query uses the HNSW index. */
static void assert_hnsw_used(const char *uri)
{
    char *plan = tu_query_value(uri, "SET enable_seqscan = off; EXPLAIN (FORMAT JSON) SELECT id FROM memories "
                                     "ORDER BY embedding <=> (SELECT embedding FROM memories WHERE embedding IS NOT "
                                     "NULL LIMIT 1) LIMIT 10");
    cr_assert(tu_contains(plan, "idx_memories_embedding_hnsw"), "HNSW index not used: %s", plan);
    free(plan);
}

static int phase_index(const cJSON *doc, const char *name)
{
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, tu_json_array(doc, "phases"))
    {
        if (!strcmp(tu_json_str(p, "name"), name))
            return i;
        i++;
    }
    cr_assert_fail("no phase %s", name);
    return -1;
}

/* pgmemctl upgrade --method pg_upgrade … old → new (extra arguments appended). */
static tu_run_result pg_upgrade_run(const char *old_data, const char *new_data, const char *mode,
                                    const char *new_bindir, const char *const *extra)
{
    const char *argv[32] = {"pgmemctl",     "upgrade",       "--method",     "pg_upgrade", "--from-version",
                            "15",           "--to-version",  "17",           "--old-bindir", uf_pg15(),
                            "--new-bindir", new_bindir,      "--old-datadir", old_data,    "--new-datadir",
                            new_data,       "--mode",        mode,           "--jobs",     "2"};
    int n = 20;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return tu_run(argv);
}

/* After pg_upgrade: the new data directory becomes a sandbox (sandbox settings appended), started;
 * returns its URI. */
static char *adopt_and_start(const char *name)
{
    free(uf_sandbox((const char *[]){"adopt", "--bindir", uf_pg17(), name, NULL}));
    return uf_sb_start(name, NULL, NULL);
}

static void assert_upgraded_json(const cJSON *doc, const char *mode)
{
    cr_assert_str_eq(tu_json_str(doc, "command"), "upgrade");
    cr_assert_str_eq(tu_json_str(doc, "status"), "upgraded");
    cr_assert_str_eq(tu_json_str(doc, "method"), "pg_upgrade");
    cr_assert_str_eq(tu_json_str(doc, "mode"), mode);
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(doc, "from");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(doc, "to");
    cr_assert_eq(tu_json_num(from, "major"), 15);
    cr_assert_eq(tu_json_num(to, "major"), 17);
    cr_assert(tu_json_bool(cJSON_GetObjectItemCaseSensitive(doc, "preflight"), "passed"));
    const cJSON *proof = cJSON_GetObjectItemCaseSensitive(doc, "proof");
    cr_assert(tu_json_bool(proof, "passed"));
    cr_assert_geq(tu_json_num(proof, "tables"), 6);
    cr_assert_geq(tu_json_num(proof, "rows"), 300);
    cr_assert_geq(tu_json_num(proof, "vector_columns"), 1);
    cr_assert_geq(tu_json_num(proof, "indexes"), 1);
    cr_assert_eq(tu_json_num(proof, "indexes"), tu_json_num(proof, "indexes_used"));
    cr_assert_eq(cJSON_GetArraySize(tu_json_array(proof, "mismatches")), 0);
    double down = tu_json_num(doc, "downtime_seconds"), total = tu_json_num(doc, "total_seconds");
    cr_assert(down > 0 && down <= total, "downtime %g, total %g", down, total);
    /* the downtime ends when the new cluster accepts connections: the statistics come after it */
    double stats = tu_json_num(doc, "statistics_seconds");
    cr_assert(stats >= 0 && down + stats <= total, "statistics %g, downtime %g, total %g", stats, down, total);
    cr_assert(tu_contains(tu_json_str(doc, "downtime_until"), "accepted connections"));
    cr_assert_lt(phase_index(doc, "start_new"), phase_index(doc, "analyze"));
    for (const char *const *p = (const char *const[]){"preflight", "pg_upgrade_check", "pg_upgrade", "start_new",
                                                       "extensions", "analyze", "proof", NULL};
         *p; p++)
        cr_assert(uf_has_phase(doc, *p), "no phase %s", *p);
    cr_assert_str_eq(tu_json_str(cJSON_GetObjectItemCaseSensitive(doc, "vector"), "after"), "0.8.0");
}

/* ---- pg_upgrade ------------------------------------------------------------------------------- */

Test(upgrade, pg_upgrade_link_keeps_rows_and_search_results)
{
    char *old = uf_sb_name("old"), *new = uf_sb_name("new");
    char *uri = uf_old_store(old, 300, false);
    char *before = fingerprint(uri);
    assert_hnsw_used(uri);
    uf_sb_stop(old, true);
    char *old_data = sb_data(old), *new_data = sb_data(new);
    char *base = sandbox_base();
    char *new_dir = tu_printf("%s/%s", base, new);
    cr_assert_eq(mkdir(new_dir, 0755), 0);

    tu_run_result r = pg_upgrade_run(old_data, new_data, "link", uf_pg17(), NULL);
    tu_expect_status(&r, 0, "upgrade --mode link");
    cJSON *doc = tu_json(r.out);
    assert_upgraded_json(doc, "link");
    cr_assert(tu_contains(tu_json_str(doc, "downtime_from"), "not running"));
    char *rb = cJSON_PrintUnformatted(tu_json_array(doc, "rollback"));
    cr_assert(tu_contains(rb, "Do NOT start the old cluster"), "link mode's rollback must warn: %s", rb);
    cr_assert(tu_contains(r.err, "Do NOT start the old cluster"));
    free(rb);
    cJSON_Delete(doc);
    tu_run_free(&r);
    /* pg_upgrade --link disables the old cluster's control file */
    char *ctl = tu_printf("%s/global/pg_control.old", old_data);
    cr_assert_eq(access(ctl, F_OK), 0, "%s is missing after a link-mode upgrade", ctl);

    char *nuri = adopt_and_start(new);
    cr_assert_eq(tu_query_int(nuri, "SELECT current_setting('server_version_num')::int") / 10000, 17);
    char *after = fingerprint(nuri);
    cr_assert_str_eq(after, before);
    assert_hnsw_used(nuri);
    cr_assert_eq(tu_query_int(nuri, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                    "WHERE c.relname = 'idx_memories_embedding_hnsw' AND i.indisvalid"),
                 1);
    /* vacuumdb --analyze-in-stages ran: the planner has statistics for memories */
    cr_assert_gt(tu_query_int(nuri, "SELECT count(*) FROM pg_stats WHERE tablename = 'memories'"), 0);
    uf_sb_stop(new, false);
    uf_sb_stop(old, false);
    free(ctl);
    free(old);
    free(new);
    free(uri);
    free(nuri);
    free(before);
    free(after);
    free(old_data);
    free(new_data);
    free(base);
    free(new_dir);
}

Test(upgrade, pg_upgrade_copy_stops_a_running_cluster_only_when_asked_and_leaves_it_usable)
{
    char *old = uf_sb_name("old"), *new = uf_sb_name("new");
    char *uri = uf_old_store(old, 300, false);
    char *before = fingerprint(uri);
    char *old_data = sb_data(old), *new_data = sb_data(new);
    char *base = sandbox_base();
    char *new_dir = tu_printf("%s/%s", base, new);
    cr_assert_eq(mkdir(new_dir, 0755), 0);

    /* running and no --stop-old: refused by the preflight, nothing changed, still serving */
    tu_run_result r = pg_upgrade_run(old_data, new_data, "copy", uf_pg17(), NULL);
    tu_expect_status(&r, 2, "upgrade of a running cluster without --stop-old");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
    const cJSON *c = uf_check_named(doc, "old_cluster_stopped");
    cr_assert(c && !tu_json_bool(c, "passed"));
    cr_assert(tu_contains(tu_json_str(c, "detail"), "--stop-old"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_neq(access(new_data, F_OK), 0, "the refused run left %s behind", new_data);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 300);

    /* with --stop-old it stops the cluster itself, after the preflight */
    r = pg_upgrade_run(old_data, new_data, "copy", uf_pg17(), (const char *[]){"--stop-old", NULL});
    tu_expect_status(&r, 0, "upgrade --mode copy --stop-old");
    doc = tu_json(r.out);
    assert_upgraded_json(doc, "copy");
    /* the proof's snapshot: on the live cluster before the stop, or (WAL written after it) after the stop */
    cr_assert(uf_has_phase(doc, "stop_old") && (uf_has_phase(doc, "snapshot_live") || uf_has_phase(doc, "snapshot")));
    /* pg_upgrade --check ran against the still running cluster, before the downtime began */
    cr_assert_lt(phase_index(doc, "pg_upgrade_check"), phase_index(doc, "stop_old"));
    cr_assert(tu_contains(tu_json_str(doc, "downtime_from"), "stopped by pgmemctl"));
    cJSON_Delete(doc);
    tu_run_free(&r);

    char *nuri = adopt_and_start(new);
    char *after = fingerprint(nuri);
    cr_assert_str_eq(after, before);
    uf_sb_stop(new, false);
    /* copy mode: the old cluster is untouched and starts again as it was */
    char *ouri = uf_sb_start(old, NULL, NULL);
    char *again = fingerprint(ouri);
    cr_assert_str_eq(again, before);
    cr_assert(tu_query_int(ouri, "SELECT current_setting('server_version_num')::int") / 10000 == 15);
    uf_sb_stop(old, false);
    free(old);
    free(new);
    free(uri);
    free(nuri);
    free(ouri);
    free(before);
    free(after);
    free(again);
    free(old_data);
    free(new_data);
    free(base);
    free(new_dir);
}

/* pgmemctl upgrade --mode copy --stop-old of the running old sandbox, paused right before it stops
 * the cluster (PGMEMCTL_UPGRADE_PAUSE_BEFORE_STOP) while sql runs on it (NULL: nothing); returns
 * the JSON document and the run's stderr in *err. */
static cJSON *stop_old_run_with(const char *old, const char *new, const char *uri, const char *sql, char **err)
{
    char *old_data = sb_data(old), *new_data = sb_data(new);
    mk_parent(new_data);
    char *dir = tu_tempdir();
    char *pause = tu_printf("%s/pause", dir);
    char *envv = tu_printf("PGMEMCTL_UPGRADE_PAUSE_BEFORE_STOP=%s", pause);
    const char *argv[] = {"pgmemctl",     "upgrade",     "--from-version", "15",        "--to-version", "17",
                          "--old-bindir", uf_pg15(),        "--new-bindir",   uf_pg17(),      "--old-datadir", old_data,
                          "--new-datadir", new_data,     "--mode",         "copy",      "--stop-old",   NULL};
    tu_proc *p = tu_spawn(argv, (const char *[]){envv, NULL});
    for (int i = 0; i < 2400 && access(pause, F_OK) != 0; i++)
        usleep(50 * 1000);
    cr_assert_eq(access(pause, F_OK), 0, "pgmemctl never paused before stopping the old cluster");
    if (sql)
        tu_exec(uri, sql);
    cr_assert_eq(unlink(pause), 0);
    tu_run_result r = tu_wait(p);
    tu_expect_status(&r, 0, "upgrade --stop-old");
    cJSON *doc = tu_json(r.out);
    *err = strdup(r.err);
    tu_run_free(&r);
    tu_rmtree(dir);
    free(dir);
    free(pause);
    free(envv);
    free(old_data);
    free(new_data);
    return doc;
}

Test(upgrade, the_live_snapshot_keeps_the_downtime_free_of_it_when_nothing_is_written_before_the_stop)
{
    char *old = uf_sb_name("old"), *new = uf_sb_name("new");
    char *uri = uf_old_store(old, 300, false);
    /* nothing but the snapshot may write WAL: no autovacuum, no dead rows for a read to prune */
    tu_exec(uri, "ALTER SYSTEM SET autovacuum = off");
    tu_exec(uri, "SELECT pg_reload_conf()");
    tu_exec(uri, "VACUUM");
    tu_exec(uri, "CHECKPOINT");
    char *err = NULL;
    cJSON *doc = stop_old_run_with(old, new, uri, NULL, &err);
    cr_assert_str_eq(tu_json_str(doc, "status"), "upgraded");
    cr_assert(tu_json_bool(cJSON_GetObjectItemCaseSensitive(doc, "proof"), "passed"));
    cr_assert(uf_has_phase(doc, "snapshot_live") && !uf_has_phase(doc, "snapshot"), "%s", err);
    cr_assert_lt(phase_index(doc, "snapshot_live"), phase_index(doc, "stop_old"));
    cr_assert(tu_contains(err, "no commit in between, the snapshot holds"), "%s", err);
    cJSON_Delete(doc);
    uf_sb_stop(new, false);
    uf_sb_stop(old, false);
    free(err);
    free(uri);
    free(old);
    free(new);
}

Test(upgrade, a_write_after_the_live_snapshot_makes_it_taken_again_after_the_stop)
{
    char *old = uf_sb_name("old"), *new = uf_sb_name("new");
    char *uri = uf_old_store(old, 300, false);
    char *err = NULL;
    /* a table the live snapshot does not have: kept, that snapshot would fail the proof (table_extra) */
    cJSON *doc = stop_old_run_with(old, new, uri, "CREATE TABLE late_write (i int); INSERT INTO late_write VALUES (1)",
                                   &err);
    cr_assert_str_eq(tu_json_str(doc, "status"), "upgraded", "%s", err);
    const cJSON *proof = cJSON_GetObjectItemCaseSensitive(doc, "proof");
    cr_assert(tu_json_bool(proof, "passed"));
    cr_assert(uf_has_phase(doc, "snapshot_live") && uf_has_phase(doc, "snapshot"), "%s", err);
    cr_assert_lt(phase_index(doc, "stop_old"), phase_index(doc, "snapshot"));
    cr_assert(tu_contains(err, "written in between, the snapshot is taken again"), "%s", err);
    cJSON_Delete(doc);
    char *nuri = adopt_and_start(new);
    cr_assert_eq(tu_query_int(nuri, "SELECT count(*) FROM late_write"), 1);
    cr_assert_eq(tu_query_int(nuri, "SELECT count(*) FROM memories"), 300);
    uf_sb_stop(new, false);
    uf_sb_stop(old, false);
    free(err);
    free(uri);
    free(nuri);
    free(old);
    free(new);
}

Test(upgrade, pgvector_missing_in_the_new_installation_is_refused_before_anything_changes)
{
    char *old = uf_sb_name("old"), *new = uf_sb_name("new");
    char *uri = uf_old_store(old, 300, false);
    free(uri);
    uf_sb_stop(old, true);
    char *old_data = sb_data(old), *new_data = sb_data(new);
    mk_parent(new_data);
    char *listing = tu_printf("find '%s/base' ! -name pg_internal.init -printf '%%P %%s\\n' | sort > /tmp/pgmemctl-upgtest-%d-a", old_data,
                              (int) getpid());
    cr_assert_eq(system(listing), 0);
    char *bare = uf_pg17_without_pgvector();

    tu_run_result r = pg_upgrade_run(old_data, new_data, "link", bare, NULL);
    tu_expect_status(&r, 2, "upgrade to an installation without pgvector");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
    const cJSON *c = uf_check_named(doc, "pgvector_installed");
    cr_assert(c && !tu_json_bool(c, "passed"), "%s", r.out);
    cr_assert(tu_contains(tu_json_str(c, "detail"), "vector.control"));
    cr_assert(!uf_has_phase(doc, "pg_upgrade"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_neq(access(new_data, F_OK), 0);
    /* the old cluster's relation files: the same names and sizes (the preflight starts it privately and
     * stops it, as pg_upgrade --check does, which writes a shutdown checkpoint but no data; a connection
     * may leave the relation cache's pg_internal.init file behind) */
    char *listing2 = tu_printf("find '%s/base' ! -name pg_internal.init -printf '%%P %%s\\n' | sort > /tmp/pgmemctl-upgtest-%d-b && "
                               "cmp -s /tmp/pgmemctl-upgtest-%d-a /tmp/pgmemctl-upgtest-%d-b",
                               old_data, (int) getpid(), (int) getpid(), (int) getpid());
    cr_assert_eq(system(listing2), 0, "the old data directory changed");
    char *ouri = uf_sb_start(old, NULL, NULL);
    cr_assert_eq(tu_query_int(ouri, "SELECT count(*) FROM memories"), 300);
    uf_sb_stop(old, false);
    for (int i = 0; i < 2; i++) {
        char *f = tu_printf("/tmp/pgmemctl-upgtest-%d-%c", (int) getpid(), "ab"[i]);
        unlink(f);
        free(f);
    }
    char *bare_root = tu_printf("%s/..", bare);
    tu_rmtree(bare_root);
    free(bare_root);
    free(bare);
    free(ouri);
    free(listing);
    free(listing2);
    free(old);
    free(new);
    free(old_data);
    free(new_data);
}

Test(upgrade, dry_run_prints_the_plan_and_changes_nothing)
{
    char *old = uf_sb_name("old"), *new = uf_sb_name("new");
    char *uri = uf_old_store(old, 300, false);
    free(uri);
    uf_sb_stop(old, true);
    char *old_data = sb_data(old), *new_data = sb_data(new);
    mk_parent(new_data);
    tu_run_result r = pg_upgrade_run(old_data, new_data, "copy", uf_pg17(), (const char *[]){"--dry-run", NULL});
    tu_expect_status(&r, 0, "upgrade --dry-run");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "dry_run");
    cr_assert(tu_json_bool(doc, "dry_run"));
    cr_assert_geq(cJSON_GetArraySize(tu_json_array(doc, "plan")), 6);
    cr_assert(tu_json_bool(cJSON_GetObjectItemCaseSensitive(doc, "preflight"), "passed"));
    cr_assert_gt(tu_json_num(cJSON_GetObjectItemCaseSensitive(doc, "preflight"), "options_tried"), 0);
    cr_assert(tu_contains(r.err, "plan:"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_neq(access(new_data, F_OK), 0, "a dry run created %s", new_data);

    /* the preset's versions are checked: this cluster is 15, not 16 */
    const char *argv[] = {"pgmemctl",     "upgrade-pg16-to-pg17", "--old-bindir", uf_pg15(), "--new-bindir", uf_pg17(),
                          "--old-datadir", old_data,              "--new-datadir", new_data, "--dry-run", NULL};
    r = tu_run(argv);
    tu_expect_status(&r, 2, "the 16 -> 17 preset on a 15 cluster");
    doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "preset"), "upgrade-pg16-to-pg17");
    const cJSON *c = uf_check_named(doc, "old_version");
    cr_assert(c && !tu_json_bool(c, "passed"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    uf_sb_stop(old, false);
    free(old);
    free(new);
    free(old_data);
    free(new_data);
}

Test(upgrade, the_system_15_20_is_refused_by_the_preflight_naming_pg_attver)
{
    char *old = uf_sb_name("old1520"), *new = uf_sb_name("new");
    char *uri = uf_sb_start(old, NULL, NULL); /* the system's PostgreSQL 15 (15.20 on this Debian) */
    tu_exec(uri, "CREATE EXTENSION vector; CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3)); "
                 "INSERT INTO items VALUES (1, '[1,2,3]'); "
                 "CREATE INDEX ON items USING hnsw (embedding vector_cosine_ops)");
    long long with_attver =
        tu_query_int(uri, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0 "
                          "AND array_to_string(attoptions, ',') LIKE '%pg_attver=%'");
    free(uri);
    cr_assert_gt(with_attver, 0, "this PostgreSQL 15 writes no pg_attver column option: the hazard is gone");
    uf_sb_stop(old, true);
    char *old_data = sb_data(old), *new_data = sb_data(new);
    mk_parent(new_data);
    const char *argv[] = {"pgmemctl",     "upgrade",   "--from-version", "15",          "--to-version",
                          "17",           "--old-bindir", "/usr/lib/postgresql/15/bin", "--new-bindir", uf_pg17(),
                          "--old-datadir", old_data,   "--new-datadir",  new_data,      "--mode",
                          "copy",         NULL};
    tu_run_result r = tu_run(argv);
    tu_expect_status(&r, 2, "15.20 -> 17.11");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
    const cJSON *c = uf_check_named(doc, "options_accepted");
    cr_assert(c && !tu_json_bool(c, "passed"), "%s", r.out);
    cr_assert(tu_contains(tu_json_str(c, "detail"), "pg_attver"));
    cr_assert(tu_contains(tu_json_str(c, "detail"), "newer minor release"));
    const cJSON *rej = tu_json_array(cJSON_GetObjectItemCaseSensitive(doc, "preflight"), "rejected");
    cr_assert_gt(cJSON_GetArraySize(rej), 0);
    cr_assert(!uf_has_phase(doc, "pg_upgrade_check"), "pg_upgrade ran although the preflight failed");
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_neq(access(new_data, F_OK), 0);
    char *ouri = uf_sb_start(old, NULL, NULL);
    cr_assert_eq(tu_query_int(ouri, "SELECT count(*) FROM items"), 1);
    uf_sb_stop(old, false);
    free(ouri);
    free(old);
    free(new);
    free(old_data);
    free(new_data);
}

/* ---- dump ------------------------------------------------------------------------------------- */

static tu_run_result dump_run(const char *from, const char *to, const char *const *env)
{
    const char *argv[] = {"pgmemctl", "upgrade",        "--method", "dump", "--from", from,   "--to",
                          to,         "--tools-bindir", uf_pg17(),     "--jobs", "2",    "--from-version", "15",
                          "--to-version", "17", "--maintenance-work-mem", "128MB", NULL};
    return tu_run_env(argv, env);
}

Test(upgrade, dump_restores_into_an_empty_17_and_leaves_the_source_alone)
{
    char *old = uf_sb_name("src"), *new = uf_sb_name("dst");
    char *from = uf_old_store(old, 300, false);
    char *to = uf_sb_start(new, uf_pg17(), NULL);
    /* a second database, absent on the target (restored with --create), with its own vectors and
     * an IVFFlat index; and pgvector already installed in the target's postgres database, as an
     * image's init script would */
    tu_exec(from, "CREATE DATABASE second_store");
    char *from2 = tu_printf("%.*s/second_store", (int) (strrchr(from, '/') - from), from);
    char *to2 = tu_printf("%.*s/second_store", (int) (strrchr(to, '/') - to), to);
    tu_exec(from2, "CREATE EXTENSION vector; CREATE TABLE notes (id int PRIMARY KEY, v vector(3)); "
                   "INSERT INTO notes SELECT i, ARRAY[i % 5, i % 7, i % 11]::real[]::vector FROM generate_series(1, 500) i; "
                   "CREATE INDEX notes_ivf ON notes USING ivfflat (v vector_l2_ops) WITH (lists = 4)");
    tu_exec(to, "CREATE EXTENSION vector");
    char *before = fingerprint(from);
    char *catalog = tu_catalog_snapshot(from);
    long long xacts = tu_query_int(from, "SELECT count(*) FROM pg_stat_user_tables WHERE n_tup_upd + n_tup_del > 0");

    tu_run_result r = dump_run(from, to, NULL);
    tu_expect_status(&r, 0, "upgrade --method dump");
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "upgraded");
    cr_assert_str_eq(tu_json_str(doc, "method"), "dump");
    const cJSON *proof = cJSON_GetObjectItemCaseSensitive(doc, "proof");
    cr_assert(tu_json_bool(proof, "passed"));
    cr_assert_geq(tu_json_num(proof, "rows"), 300);
    cr_assert_eq(tu_json_num(proof, "indexes"), tu_json_num(proof, "indexes_used"));
    for (const char *const *p = (const char *const[]){"preflight", "roles", "dump", "restore", "analyze", "proof",
                                                       NULL};
         *p; p++)
        cr_assert(uf_has_phase(doc, *p), "no phase %s", *p);
    cr_assert(!tu_contains(r.out, "sandbox-secret-pw") && !tu_contains(r.err, "sandbox-secret-pw"));
    cr_assert_eq(tu_json_num(proof, "databases"), 2);
    const cJSON *mwm = uf_check_named(doc, "maintenance_work_mem");
    cr_assert(mwm && tu_json_bool(mwm, "passed") && tu_contains(tu_json_str(mwm, "detail"), "128MB"));
    cr_assert_geq(tu_json_num(proof, "indexes"), 2, "the HNSW and the IVFFlat index");
    cJSON_Delete(doc);
    tu_run_free(&r);
    cr_assert_eq(tu_query_int(to2, "SELECT count(*) FROM notes"), 500);
    cr_assert_eq(tu_query_int(to2, "SELECT count(*) FROM pg_indexes WHERE indexname = 'notes_ivf'"), 1);

    char *after = fingerprint(to);
    cr_assert_str_eq(after, before);
    assert_hnsw_used(to);
    cr_assert_eq(tu_query_int(to, "SELECT current_setting('server_version_num')::int") / 10000, 17);
    cr_assert_gt(tu_query_int(to, "SELECT count(*) FROM pg_stats WHERE tablename = 'memories'"), 0);
    /* the source: same catalog, same rows, nothing written */
    char *catalog2 = tu_catalog_snapshot(from);
    cr_assert_str_eq(catalog2, catalog);
    char *again = fingerprint(from);
    cr_assert_str_eq(again, before);
    cr_assert_eq(tu_query_int(from, "SELECT count(*) FROM pg_stat_user_tables WHERE n_tup_upd + n_tup_del > 0"),
                 xacts);

    /* a second run finds the target's database not empty: refused, nothing changed */
    r = dump_run(from, to, NULL);
    tu_expect_status(&r, 2, "dump into a target that is not empty");
    doc = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "refused");
    const cJSON *c = uf_check_named(doc, "target_empty");
    cr_assert(c && !tu_json_bool(c, "passed"));
    cr_assert(tu_contains(tu_json_str(c, "detail"), "not empty"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    char *after2 = fingerprint(to);
    cr_assert_str_eq(after2, before);

    uf_sb_stop(old, false);
    uf_sb_stop(new, false);
    free(old);
    free(new);
    free(from);
    free(to);
    free(before);
    free(after);
    free(after2);
    free(again);
    free(catalog);
    free(catalog2);
    free(from2);
    free(to2);
}

Test(upgrade, a_row_deleted_on_the_new_side_before_the_proof_is_detected)
{
    char *old = uf_sb_name("src"), *new = uf_sb_name("dst");
    char *from = uf_old_store(old, 300, false);
    char *to = uf_sb_start(new, uf_pg17(), NULL);
    char *dir = tu_tempdir();
    char *pause = tu_printf("%s/pause", dir);
    char *envv = tu_printf("PGMEMCTL_UPGRADE_PAUSE_BEFORE_PROOF=%s", pause);
    const char *argv[] = {"pgmemctl", "upgrade", "--method", "dump", "--from", from, "--to", to, "--tools-bindir",
                          uf_pg17(), NULL};
    tu_proc *p = tu_spawn(argv, (const char *[]){envv, NULL});
    /* wait for the pause file, delete a memory on the target, let the proof run */
    for (int i = 0; i < 2400 && access(pause, F_OK) != 0; i++)
        usleep(50 * 1000);
    cr_assert_eq(access(pause, F_OK), 0, "pgmemctl never paused before its proof");
    uf_delete_first_memory(to);
    cr_assert_eq(unlink(pause), 0);
    tu_run_result r = tu_wait(p);
    tu_expect_status(&r, 1, "a proof that finds a deleted row");
    uf_expect_one_memory_missing(r.out);
    cr_assert(tu_contains(r.err, "memories"));
    tu_run_free(&r);
    uf_sb_stop(old, false);
    uf_sb_stop(new, false);
    tu_rmtree(dir);
    free(dir);
    free(pause);
    free(envv);
    free(old);
    free(new);
    free(from);
    free(to);
}

/* ---- usage -------------------------------------------------------------------------------------- */

Test(upgrade, usage_errors_exit_2)
{
    struct {
        const char *argv[16];
        const char *msg;
    } cases[] = {
        {{"pgmemctl", "upgrade", "--method", "pg_upgrade", "--old-bindir", "/x", NULL}, "needs --new-bindir"},
        {{"pgmemctl", "upgrade", "--method", "dump", "--from", "host=x", NULL}, "needs --to"},
        {{"pgmemctl", "upgrade", "--method", "rsync", NULL}, "--method rsync: must be one of pg_upgrade, dump"},
        {{"pgmemctl", "upgrade", "--from", "host=x", "--to", "host=y", "--mode", "link", NULL}, "belong to --method"},
        {{"pgmemctl", "upgrade-pg16-to-pg17", "--from-version", "15", "--from", "a", "--to", "b", NULL}, "contradict"},
        {{"pgmemctl", "upgrade", "--from-version", "17", "--to-version", "16", "--from", "a", "--to", "b", NULL},
         "newer major"},
        {{"pgmemctl", "upgrade", "--old-bindir", "/a", "--new-bindir", "/b", "--old-datadir", "/c", "--new-datadir",
          "/d", "--mode", "hardlink", NULL},
         "--mode hardlink: must be one of link, copy, clone"},
        {{"pgmemctl", "upgrade", "--from", "a", "--to", "b", "--maintenance-work-mem", "1 GB", NULL},
         "expected a size"},
        {{"pgmemctl", "upgrade", "--old-bindir", "/a", "--new-bindir", "/b", "--old-datadir", "/c", "--new-datadir",
          "/d", "--maintenance-work-mem", "1GB", NULL},
         "belong to --method dump"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_run_result r = tu_run(cases[i].argv);
        tu_expect_status(&r, 2, cases[i].msg);
        cr_assert(tu_contains(r.err, cases[i].msg), "case %zu: stderr lacks \"%s\": %s", i, cases[i].msg, r.err);
        cJSON *doc = tu_json(r.out);
        cr_assert_str_eq(tu_json_str(doc, "status"), "usage_error");
        cJSON_Delete(doc);
        tu_run_free(&r);
    }
}

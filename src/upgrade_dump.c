/* upgrade_dump.c — `pgmemctl upgrade --method dump`: from one server to another of a newer major
 * version (containers, other hosts) with the new version's pg_dumpall --roles-only, pg_dump -Fd -j
 * and pg_restore -j; ALTER EXTENSION … UPDATE and ANALYZE on the target; the proof. Every dump
 * and the proof's snapshot of a database share one exported snapshot, so they see the same rows.
 * The source is only read. */
#define _GNU_SOURCE
#include "cluster.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "progress.h"
#include "upgrade.h"
#include "upgrade_dump.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const upgrade_options *o;
    upgrade_result *res;
    double t_start;
    pg_conn *src, *dst;        /* maintenance connections */
    cluster_install tools;     /* only bindir and version/major are set */
    char **dbs;
    int ndbs;
    bool *exists;              /* per database: already on the target (and empty) */
    upgrade_restore_tuning tune; /* maintenance_work_mem and workers of pg_restore's sessions */
    bool tuned;
    char *pgoptions;           /* PGOPTIONS of pg_restore: the tuning's settings */
} dmp;

static const char *const tools_needed[] = {"pg_dump", "pg_dumpall", "pg_restore", NULL};

/* "pg_dump (PostgreSQL) 17.11" of dir/pg_dump: the major version, 0 when it does not run. */
static int tools_major(const char *dir, const char *workdir, char **version)
{
    cluster_install in = {.bindir = (char *) dir};
    for (int i = 0; tools_needed[i]; i++) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, tools_needed[i]) < 0)
            return 0;
        bool ok = access(p, X_OK) == 0;
        free(p);
        if (!ok)
            return 0;
    }
    const char *argv[] = {"pg_dump", "--version", NULL};
    char *text = NULL;
    int rc = cluster_run(&in, argv, workdir, "pg_dump-version.out", NULL, 60, &text);
    const char *v = text ? strstr(text, "(PostgreSQL) ") : NULL;
    int major = 0;
    if (rc == 0 && v) {
        v += strlen("(PostgreSQL) ");
        major = atoi(v);
        if (version)
            *version = strndup(v, strcspn(v, " \n"));
    }
    free(text);
    return major;
}

/* The new version's client tools: --tools-bindir, else the Debian layout, else $PATH. */
static bool find_tools(dmp *d, int want)
{
    const char *wd = d->res->work_dir;
    char *version = NULL;
    if (d->o->tools_bindir) {
        char *real = realpath(d->o->tools_bindir, NULL);
        int m = real ? tools_major(real, wd, &version) : 0;
        upgrade_check_add(d->res, "tools", m == want, "--tools-bindir %s: %s", d->o->tools_bindir,
                          m == 0      ? "no runnable pg_dump, pg_dumpall and pg_restore there"
                          : m != want ? "not the target's major version"
                                      : version);
        if (m == want) {
            d->tools.bindir = real;
            d->tools.version = version;
            d->tools.major = m;
            return true;
        }
        free(real);
        free(version);
        return false;
    }
    char deb[64];
    snprintf(deb, sizeof deb, "/usr/lib/postgresql/%d/bin", want);
    const char *path = getenv("PATH");
    char *paths = NULL;
    if (asprintf(&paths, "%s:%s", deb, path ? path : "") < 0)
        return false;
    char *save = NULL;
    for (char *dir = strtok_r(paths, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        if (tools_major(dir, wd, &version) == want) {
            d->tools.bindir = realpath(dir, NULL);
            d->tools.version = version;
            d->tools.major = want;
            break;
        }
        free(version);
        version = NULL;
    }
    free(paths);
    upgrade_check_add(d->res, "tools", d->tools.bindir != NULL,
                      d->tools.bindir ? "pg_dump, pg_dumpall and pg_restore %s in %s"
                                      : "no pg_dump of PostgreSQL %s found (%s or $PATH): install the new "
                                        "version's client tools or pass --tools-bindir",
                      d->tools.bindir ? d->tools.version : (snprintf(deb, sizeof deb, "%d", want), deb),
                      d->tools.bindir ? d->tools.bindir : "/usr/lib/postgresql/N/bin");
    return d->tools.bindir != NULL;
}

static const char *version_text(pg_conn *c, char **keep)
{
    bool found;
    *keep = pg_query_text(c, "SELECT current_setting('server_version')", 0, NULL, &found);
    if (*keep)
        (*keep)[strcspn(*keep, " ")] = '\0';
    return *keep ? *keep : "?";
}

/* Whether database db exists on the target, and when it does whether it is empty: no relation or
 * function outside the system schemas and the extensions. */
static bool check_target_db(dmp *d, int i)
{
    const char *db = d->dbs[i];
    const char *p[] = {db};
    int64_t n = 0;
    if (!pg_query_int64(d->dst, "SELECT count(*) FROM pg_database WHERE datname = $1", 1, p, &n)) {
        log_error("upgrade: target: %s", pg_errmsg(d->dst));
        return false;
    }
    d->exists[i] = n > 0;
    if (!d->exists[i])
        return true;
    pg_conn *c = pg_connect_db(d->o->to, db, "pgmemctl upgrade preflight", 0);
    if (!c) {
        upgrade_check_add(d->res, "target_empty", false, "database %s exists on the target but cannot be reached", db);
        return true;
    }
    pg_result *r = pg_exec(c,
                           "WITH sys AS (SELECT oid FROM pg_namespace WHERE nspname IN ('pg_catalog', "
                           "'information_schema') OR nspname LIKE 'pg\\_toast%' OR nspname LIKE 'pg\\_temp%'), "
                           "ext AS (SELECT objid FROM pg_depend WHERE deptype = 'e') "
                           "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace NOT IN (SELECT oid FROM sys) "
                           "         AND oid NOT IN (SELECT objid FROM ext)), "
                           "       (SELECT count(*) FROM pg_proc WHERE pronamespace NOT IN (SELECT oid FROM sys) "
                           "         AND oid NOT IN (SELECT objid FROM ext)), "
                           "       (SELECT string_agg(extname, ', ' ORDER BY extname) FROM pg_extension "
                           "         WHERE extname <> 'plpgsql')",
                           0, NULL);
    if (!r)
        upgrade_check_add(d->res, "target_empty", false, "database %s on the target: %s", db, pg_errmsg(c));
    else {
        long long rels = atoll(pg_value(r, 0, 0)), funcs = atoll(pg_value(r, 0, 1));
        const char *exts = pg_isnull(r, 0, 2) ? "none" : pg_value(r, 0, 2);
        bool empty = rels == 0 && funcs == 0;
        /* extensions alone (an image's init script creating vector, say) do not make it non-empty: the
         * restore's CREATE EXTENSION IF NOT EXISTS keeps them, and the update step brings them up to date */
        if (empty)
            upgrade_check_add(d->res, "target_empty", true,
                              "database %s exists on the target and is empty (extensions: %s): restored into", db,
                              exts);
        else
            upgrade_check_add(d->res, "target_empty", false,
                              "database %s exists on the target and is not empty (%lld relations, %lld functions, "
                              "extensions: %s): refused; drop it or restore elsewhere",
                              db, rels, funcs, exts);
    }
    pg_clear(r);
    pg_close(c);
    return true;
}

/* One setting of pg_restore's sessions tried on the target (set_config in a rolled-back transaction),
 * as the check NAME. */
static void try_setting(dmp *d, const upgrade_setting *s)
{
    const char *p[] = {s->name, s->value};
    bool found;
    pg_run(d->dst, "BEGIN", 0, NULL);
    char *v = pg_query_text(d->dst, "SELECT set_config($1, $2, true)", 2, p, &found);
    char err[512];
    if (!v)
        pg_error_text(d->dst, err, sizeof err);
    pg_rollback(d->dst);
    if (v)
        upgrade_check_add(d->res, s->name, true, "pg_restore's sessions build indexes with %s = %s (%s: %s)", s->name,
                          s->value, s->source, s->rule);
    else
        upgrade_check_add(d->res, s->name, false, "the target rejects %s = %s (%s: %s): %s", s->name, s->value,
                          s->source, s->rule, err);
    free(v);
}

/* maintenance_work_mem and max_parallel_maintenance_workers of the restore (the options' values or
 * upgrade_tune_restore's defaults), each tried on the target, and recorded in res->settings. */
static bool tune_restore(dmp *d)
{
    if (!upgrade_tune_restore(d->dst, d->res->jobs, d->o->maintenance_work_mem, d->o->maintenance_workers,
                              &d->tune))
        return false;
    d->tuned = true;
    d->pgoptions = upgrade_restore_pgoptions(&d->tune);
    if (!d->pgoptions)
        return false;
    try_setting(d, &d->tune.mwm_setting);
    try_setting(d, &d->tune.workers_setting);
    upgrade_setting_add(d->res, &d->tune.mwm_setting);
    upgrade_setting_add(d->res, &d->tune.workers_setting);
    return true;
}

static bool preflight(dmp *d)
{
    const upgrade_options *o = d->o;
    upgrade_result *res = d->res;
    d->src = pg_connect(o->from, "pgmemctl upgrade", 0);
    if (!d->src) {
        upgrade_check_add(res, "source", false, "cannot connect to the source");
        return false;
    }
    d->dst = pg_connect(o->to, "pgmemctl upgrade", 0);
    if (!d->dst) {
        upgrade_check_add(res, "target", false, "cannot connect to the target");
        return false;
    }
    res->old_where = strdup(pg_display(d->src));
    res->new_where = strdup(pg_display(d->dst));
    char *v;
    res->old_version = strdup(version_text(d->src, &v));
    free(v);
    res->new_version = strdup(version_text(d->dst, &v));
    free(v);
    res->old_major = pg_server_version(d->src) / 10000;
    res->new_major = pg_server_version(d->dst) / 10000;
    upgrade_check_versions(res, o, "the source", "the target");
    if (!find_tools(d, res->new_major))
        return true;
    if (!tune_restore(d))
        return false;
    d->ndbs = upgrade_list_databases(d->src, &d->dbs);
    if (d->ndbs < 0)
        return false;
    res->databases = calloc((size_t) d->ndbs + 1, sizeof *res->databases);
    d->exists = calloc((size_t) d->ndbs + 1, sizeof *d->exists);
    if (!res->databases || !d->exists)
        return false;
    for (int i = 0; i < d->ndbs; i++)
        res->databases[i] = strdup(d->dbs[i]);
    res->ndatabases = d->ndbs;
    if (!upgrade_collect_old(o->from, d->dbs, d->ndbs, &d->res->compat_items, res))
        return false;
    int before = res->nchecks;
    for (int i = 0; i < d->ndbs; i++)
        if (!check_target_db(d, i))
            return false;
    if (res->nchecks == before)
        upgrade_check_add(res, "target_empty", true, "none of the %d database(s) exists on the target yet", d->ndbs);
    return upgrade_probe_new(o->to, &d->res->compat_items, COMPAT_EXT_CREATE_NEWER, res);
}

/* pg_dumpall --roles-only from the source, applied to the target statement by statement. Roles
 * that exist already are kept (their CREATE ROLE fails with duplicate_object, their attributes
 * are set by the ALTER ROLE that follows), except the role pgmemctl is connected as, which is
 * left alone so the target's own login keeps working. */
static int run_tool(dmp *d, pg_conn *c, const char *const *argv, const char *log, char **text);

/* s past white space and -- comments: where the statement's first keyword is. */
static const char *statement_start(const char *s)
{
    for (;;) {
        while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
            s++;
        if (s[0] != '-' || s[1] != '-')
            return s;
        s += strcspn(s, "\n");
    }
}

static bool copy_roles(dmp *d)
{
    upgrade_result *res = d->res;
    char *file = NULL;
    if (asprintf(&file, "%s/roles.sql", res->work_dir) < 0)
        return false;
    const char *argv[] = {"pg_dumpall", "--roles-only", "--file", file, NULL};
    char *text = NULL;
    int rc = run_tool(d, d->src, argv, "pg_dumpall.log", &text);
    if (rc != 0) {
        upgrade_fail(res, UPG_ST_FAILED, "pg_dumpall --roles-only failed (exit status %d): %s", rc,
                     text ? cluster_tail(text, 5) : "");
        unlink(file); /* a partial file may hold password hashes */
        free(text);
        free(file);
        return false;
    }
    free(text);
    char *sql = proc_read_file(file, NULL);
    unlink(file); /* it holds password hashes */
    free(file);
    if (!sql) {
        upgrade_fail(res, UPG_ST_FAILED, "could not read the roles pg_dumpall wrote");
        return false;
    }
    /* psql meta-commands (\restrict, \connect …) are not SQL */
    for (char *line = sql; line && *line;) {
        char *nl = strchr(line, '\n');
        if (*line == '\\')
            memset(line, ' ', nl ? (size_t) (nl - line) : strlen(line));
        line = nl ? nl + 1 : NULL;
    }
    char **stmts = NULL;
    int n = sql_split(sql, &stmts);
    free(sql);
    if (n < 0)
        return false;
    bool found;
    char *me = pg_query_text(d->dst, "SELECT quote_ident(current_user)", 0, NULL, &found);
    char *alter_me = NULL;
    if (!me || asprintf(&alter_me, "ALTER ROLE %s ", me) < 0)
        alter_me = NULL;
    int created = 0, existing = 0;
    bool ok = alter_me != NULL;
    for (int i = 0; ok && i < n; i++) {
        const char *s = statement_start(stmts[i]);
        if (!*s || !strncmp(s, alter_me, strlen(alter_me)))
            continue;
        if (pg_run(d->dst, s, 0, NULL)) {
            if (!strncmp(s, "CREATE ROLE", 11))
                created++;
            continue;
        }
        if (!strcmp(pg_sqlstate(d->dst), "42710") && !strncmp(s, "CREATE ROLE", 11)) {
            existing++;
            continue;
        }
        upgrade_fail(res, UPG_ST_FAILED, "restoring roles on the target: %s: %s", s, pg_errmsg(d->dst));
        ok = false;
    }
    if (ok)
        log_info("upgrade: roles: %d created on the target, %d existed already", created, existing);
    free(me);
    free(alter_me);
    sql_split_free(stmts, n);
    return ok;
}

/* Runs a client tool with the environment of connection c (its password stays out of argv). */
static int run_tool(dmp *d, pg_conn *c, const char *const *argv, const char *log, char **text)
{
    int ne = 0;
    char **env = pg_child_env(c, &ne);
    /* pg_restore's sessions build the indexes: give them the restore's settings */
    if (env && d->pgoptions && c == d->dst) {
        char **grown = realloc(env, (size_t) (ne + 2) * sizeof *env);
        if (grown) {
            env = grown;
            if (asprintf(&env[ne], "PGOPTIONS=%s", d->pgoptions) >= 0)
                ne++;
            env[ne] = NULL;
        }
    }
    char *prog = NULL;
    if (asprintf(&prog, "%s/%s", d->tools.bindir, argv[0]) < 0)
        prog = NULL;
    int n = 0;
    while (argv[n])
        n++;
    const char **full = calloc((size_t) n + 1, sizeof *full);
    char *out = NULL;
    if (asprintf(&out, "%s/%s", d->res->work_dir, log) < 0)
        out = NULL;
    int rc = -1;
    if (env && prog && full && out) {
        full[0] = prog;
        for (int i = 1; i < n; i++)
            full[i] = argv[i];
        static const char *const drop[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE", "PGUSER",
                                           "PGPASSWORD", "PGPASSFILE", "PGOPTIONS", "PGSSL", NULL};
        rc = proc_run(full, (const char *const *) env, drop, d->res->work_dir, out, 7 * 24 * 3600.0);
        if (text) {
            *text = proc_read_file(out, NULL);
            if (!*text)
                *text = strdup("");
        }
    }
    for (int i = 0; env && i < ne; i++)
        free(env[i]);
    free(env);
    free(prog);
    free(full);
    free(out);
    return rc;
}

/* One database: snapshot + dump on the source, restore + extensions on the target (the statistics
 * come later: analyze_db). */
static bool move_db(dmp *d, int i, proof_snapshot *snap)
{
    upgrade_result *res = d->res;
    const char *db = d->dbs[i];
    char *qdb = cluster_conninfo_value(db), *dbarg = NULL, *dir = NULL, *jobs = NULL;
    if (!qdb || asprintf(&dbarg, "dbname=%s", qdb) < 0 || asprintf(&dir, "%s/dump-%d", res->work_dir, i) < 0 ||
        asprintf(&jobs, "%d", d->res->jobs) < 0)
        return false;
    bool ok = false;
    char *text = NULL, *snapid = NULL;
    pg_conn *s = pg_connect_db(d->o->from, db, "pgmemctl upgrade", 0);
    pg_conn *t = NULL;
    if (!s)
        goto done;
    bool found;
    if (!pg_run(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL) ||
        !(snapid = pg_query_text(s, "SELECT pg_export_snapshot()", 0, NULL, &found))) {
        upgrade_fail(res, UPG_ST_FAILED, "database %s: exporting a snapshot: %s", db, pg_errmsg(s));
        goto done;
    }
    if (!proof_snapshot_take(s, db, d->o->sample_rows, snap)) {
        upgrade_fail(res, UPG_ST_FAILED, "database %s: the proof's snapshot failed", db);
        goto done;
    }
    double t0 = progress_now();
    proc_rmtree(dir);
    const char *dump[] = {"pg_dump", "--format=directory", "--jobs", jobs, "--snapshot", snapid, "--file", dir,
                          "--dbname", dbarg, NULL};
    int rc = run_tool(d, s, dump, "pg_dump.log", &text);
    pg_rollback(s);
    if (rc != 0) {
        upgrade_fail(res, UPG_ST_FAILED, "pg_dump of database %s failed (exit status %d): %s", db, rc,
                     text ? cluster_tail(text, 5) : "");
        goto done;
    }
    upgrade_phase_end(res, "dump", t0); /* one per database */

    t0 = progress_now();
    free(text);
    text = NULL;
    char *maint = NULL;
    bool fm;
    char *maint_db = pg_query_text(d->dst, "SELECT current_database()", 0, NULL, &fm);
    char *qm = maint_db ? cluster_conninfo_value(maint_db) : NULL;
    free(maint_db);
    if (!qm || asprintf(&maint, "dbname=%s", qm) < 0) {
        free(qm);
        goto done;
    }
    free(qm);
    const char *restore_create[] = {"pg_restore", "--create", "--exit-on-error", "--jobs", jobs, "--dbname", maint,
                                    dir, NULL};
    const char *restore_into[] = {"pg_restore", "--exit-on-error", "--jobs", jobs, "--dbname", dbarg, dir, NULL};
    rc = run_tool(d, d->dst, d->exists[i] ? restore_into : restore_create, "pg_restore.log", &text);
    free(maint);
    if (rc != 0) {
        upgrade_fail(res, UPG_ST_FAILED, "pg_restore of database %s failed (exit status %d): %s", db, rc,
                     text ? cluster_tail(text, 6) : "");
        upgrade_rollback_add(res, "database %s on the target is partly restored: drop it%s before running again", db,
                             d->exists[i] ? " (or empty it)" : "");
        goto done;
    }
    upgrade_phase_end(res, "restore", t0);

    t0 = progress_now();
    t = pg_connect_db(d->o->to, db, "pgmemctl upgrade", 0);
    if (!t || !upgrade_update_extensions(t, db, res)) {
        upgrade_fail(res, UPG_ST_FAILED, "database %s on the target: updating the extensions failed%s%s", db,
                     t ? ": " : "", t ? pg_errmsg(t) : "");
        goto done;
    }
    upgrade_phase_end(res, "extensions", t0);
    ok = true;
done:
    if (ok)
        proc_rmtree(dir);
    pg_close(s);
    pg_close(t);
    free(text);
    free(snapid);
    free(qdb);
    free(dbarg);
    free(dir);
    free(jobs);
    return ok;
}

/* ANALYZE of one restored database, after the downtime: the planner's statistics. */
static bool analyze_db(dmp *d, int i)
{
    double t0 = progress_now();
    pg_conn *t = pg_connect_db(d->o->to, d->dbs[i], "pgmemctl upgrade", 0);
    bool ok = t && pg_run(t, "ANALYZE", 0, NULL);
    if (!ok)
        upgrade_fail(d->res, UPG_ST_FAILED, "database %s on the target: ANALYZE failed%s%s", d->dbs[i], t ? ": " : "",
                     t ? pg_errmsg(t) : "");
    else
        upgrade_phase_end(d->res, "analyze", t0);
    pg_close(t);
    return ok;
}

static void make_plan(dmp *d)
{
    upgrade_result *res = d->res;
    upgrade_plan_add(res, "pg_dumpall --roles-only (PostgreSQL %s) from the source; create the roles on the target",
                     d->tools.version);
    for (int i = 0; i < d->ndbs; i++)
        upgrade_plan_add(res, "database %s: snapshot for the proof and pg_dump -Fd -j %d in one exported snapshot; "
                              "pg_restore -j %d %s (PGOPTIONS %s); ALTER EXTENSION … UPDATE",
                         d->dbs[i], d->res->jobs, d->res->jobs,
                         d->exists[i] ? "into the existing empty database" : "--create", d->pgoptions);
    upgrade_plan_add(res, "downtime ends: every database is restored on the target");
    upgrade_plan_add(res, "ANALYZE in every restored database (after the downtime)");
    upgrade_plan_add(res, "proof on the target: row counts, vector checksums, HNSW/IVFFlat indexes valid and used, "
                          "extversion, server version");
}

bool upgrade_run_dump(const upgrade_options *o, upgrade_result *res)
{
    if (!upgrade_result_init(o, res))
        return false;
    dmp d = {.o = o, .res = res, .t_start = progress_now()};
    proof_snapshot *snaps = NULL;
    if (!upgrade_workdir(o, res)) {
        upgrade_fail(res, UPG_ST_REFUSED, "no work directory");
        return true;
    }
    double t0 = progress_now();
    bool ok = preflight(&d);
    upgrade_phase_end(res, "preflight", t0);
    upgrade_rollback_add(res, "the source server is never modified: to go back, point clients at it again");
    if (!ok || !upgrade_checks_passed(res)) {
        upgrade_fail(res, UPG_ST_REFUSED, "the preflight failed: nothing was changed (see the failed checks)");
        goto out;
    }
    make_plan(&d);
    if (o->dry_run) {
        res->status = UPG_ST_DRY_RUN;
        goto out;
    }
    res->downtime_from = strdup("the first pg_dump: writes to the source after it are not on the target");
    double down0 = progress_now();
    t0 = progress_now();
    if (!copy_roles(&d))
        goto out;
    upgrade_phase_end(res, "roles", t0);
    snaps = calloc((size_t) d.ndbs + 1, sizeof *snaps);
    if (!snaps)
        goto out;
    for (int i = 0; i < d.ndbs; i++) {
        log_info("upgrade: database %s (%d of %d)", d.dbs[i], i + 1, d.ndbs);
        if (!move_db(&d, i, &snaps[i]))
            goto out;
    }
    res->downtime_seconds = progress_now() - down0;
    res->downtime_until = strdup("the last database restored on the target, its extensions updated: clients can "
                                 "be pointed at it; the statistics (ANALYZE) follow");
    log_info("upgrade: downtime %.1f s: the target holds every database; ANALYZE follows", res->downtime_seconds);
    t0 = progress_now();
    for (int i = 0; i < d.ndbs; i++)
        if (!analyze_db(&d, i))
            goto out;
    res->statistics_seconds = progress_now() - t0;

    upgrade_pause_before_proof(res->new_where);
    t0 = progress_now();
    if (!upgrade_prove(res, o->to, d.dbs, d.ndbs, snaps, o->sample_rows))
        goto out;
    upgrade_phase_end(res, "proof", t0);
    if (proof_passed(&res->proof))
        res->status = UPG_ST_UPGRADED;
    else {
        proof_log_mismatches(&res->proof);
        upgrade_fail(res, UPG_ST_PROOF_FAILED, "restored, but the proof found %d difference(s)", res->proof.nmismatches);
    }
    for (int i = 0; i < d.ndbs; i++)
        upgrade_rollback_add(res, "to restore database %s again: %s on the target, then run again", d.dbs[i],
                             d.exists[i] ? "empty it (it existed before the run)" : "drop it");
out:
    if (res->status == UPG_ST_FAILED && !res->error)
        upgrade_fail(res, UPG_ST_FAILED, "the dump method stopped (out of memory or an unreadable file)");
    res->total_seconds = progress_now() - d.t_start;
    for (int i = 0; snaps && i < d.ndbs; i++)
        proof_snapshot_free(&snaps[i]);
    free(snaps);
    for (int i = 0; d.dbs && i < d.ndbs; i++)
        free(d.dbs[i]);
    free(d.dbs);
    free(d.exists);
    if (d.tuned)
        upgrade_restore_tuning_free(&d.tune);
    free(d.pgoptions);
    free(d.tools.bindir);
    free(d.tools.version);
    pg_close(d.src);
    pg_close(d.dst);
    return true;
}

/* ---- the parts the logical method shares (upgrade_dump.h) -------------------------------------- */

struct upgrade_dump_ctx {
    dmp d;
};

upgrade_dump_ctx *upgrade_dump_open(const upgrade_options *o, upgrade_result *res)
{
    upgrade_dump_ctx *x = calloc(1, sizeof *x);
    if (x)
        x->d = (dmp){.o = o, .res = res, .t_start = progress_now()};
    return x;
}

bool upgrade_dump_preflight(upgrade_dump_ctx *x) { return preflight(&x->d); }

bool upgrade_dump_copy_roles(upgrade_dump_ctx *x) { return copy_roles(&x->d); }

int upgrade_dump_tool(upgrade_dump_ctx *x, bool target, const char *const *argv, const char *log, char **text)
{
    return run_tool(&x->d, target ? x->d.dst : x->d.src, argv, log, text);
}

pg_conn *upgrade_dump_conn(const upgrade_dump_ctx *x, bool target) { return target ? x->d.dst : x->d.src; }

int upgrade_dump_databases(const upgrade_dump_ctx *x, char ***dbs, bool **exists)
{
    *dbs = x->d.dbs;
    *exists = x->d.exists;
    return x->d.ndbs;
}

const char *upgrade_dump_tools_version(const upgrade_dump_ctx *x) { return x->d.tools.version; }

void upgrade_dump_close(upgrade_dump_ctx *x)
{
    if (!x)
        return;
    for (int i = 0; x->d.dbs && i < x->d.ndbs; i++)
        free(x->d.dbs[i]);
    free(x->d.dbs);
    free(x->d.exists);
    free(x->d.tools.bindir);
    free(x->d.tools.version);
    if (x->d.tuned)
        upgrade_restore_tuning_free(&x->d.tune);
    free(x->d.pgoptions);
    pg_close(x->d.src);
    pg_close(x->d.dst);
    free(x);
}

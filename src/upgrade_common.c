/* upgrade_common.c — what both upgrade methods share: the result's lists (checks, plan, phases,
 * rollback), the work directory, database lists, extension updates, and the compatibility
 * preflight run against the old and the new side. */
#define _GNU_SOURCE /* vasprintf, mkdtemp */
#include "log.h"
#include "progress.h"
#include "upgrade.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The vector extension's version in the connected database (no row when not installed). */
static const char VECTOR_VERSION_SQL[] = "SELECT extversion FROM pg_extension WHERE extname = 'vector'";

static char *vfmt(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

/* Grows an array of elem-size items so that one more fits. */
static bool grow(void **arr, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return true;
    int nc = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, (size_t) nc * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

void upgrade_check_add(upgrade_result *res, const char *name, bool passed, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *detail = vfmt(fmt, ap);
    va_end(ap);
    if (!grow((void **) &res->checks, res->nchecks, &res->checks_cap, sizeof *res->checks)) {
        free(detail);
        return;
    }
    upgrade_check *c = &res->checks[res->nchecks++];
    c->name = strdup(name);
    c->passed = passed;
    c->detail = detail;
    if (passed)
        log_info("preflight: %s: %s", name, detail ? detail : "");
    else
        log_error("preflight: %s: %s", name, detail ? detail : "");
}

bool upgrade_checks_passed(const upgrade_result *res)
{
    for (int i = 0; i < res->nchecks; i++)
        if (!res->checks[i].passed)
            return false;
    return !(res->compat_ran && res->compat.nproblems > 0);
}

static void add_line(char ***arr, int *n, int *cap, const char *fmt, va_list ap)
{
    char *s = vfmt(fmt, ap);
    if (!s)
        return;
    if (!grow((void **) arr, *n, cap, sizeof **arr)) {
        free(s);
        return;
    }
    (*arr)[(*n)++] = s;
}

void upgrade_plan_add(upgrade_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_line(&res->plan, &res->nplan, &res->plan_cap, fmt, ap);
    va_end(ap);
}

void upgrade_rollback_add(upgrade_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_line(&res->rollback, &res->nrollback, &res->rollback_cap, fmt, ap);
    va_end(ap);
}

void upgrade_phase_end(upgrade_result *res, const char *name, double t0)
{
    double s = progress_now() - t0;
    log_info("upgrade: %s done in %.1f s", name, s);
    if (!grow((void **) &res->phases, res->nphases, &res->phases_cap, sizeof *res->phases))
        return;
    res->phases[res->nphases].name = strdup(name);
    res->phases[res->nphases++].seconds = s;
}

void upgrade_fail(upgrade_result *res, upgrade_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vfmt(fmt, ap);
    va_end(ap);
    res->status = st;
    free(res->error);
    res->error = msg;
    log_error("upgrade: %s", msg ? msg : "failed");
}

void upgrade_update_add(upgrade_result *res, const char *db, const char *name, const char *from, const char *to)
{
    if (!grow((void **) &res->updates, res->nupdates, &res->updates_cap, sizeof *res->updates))
        return;
    upgrade_ext_update *u = &res->updates[res->nupdates++];
    u->db = strdup(db);
    u->name = strdup(name);
    u->from = strdup(from);
    u->to = strdup(to);
}

static void free_lines(char **arr, int n)
{
    for (int i = 0; i < n; i++)
        free(arr[i]);
    free(arr);
}

void upgrade_result_free(upgrade_result *res)
{
    free(res->error);
    free(res->old_version);
    free(res->new_version);
    free(res->old_where);
    free(res->new_where);
    for (int i = 0; i < res->nchecks; i++) {
        free(res->checks[i].name);
        free(res->checks[i].detail);
    }
    free(res->checks);
    if (res->compat_ran)
        compat_result_free(&res->compat);
    compat_list_free(&res->compat_items);
    free_lines(res->plan, res->nplan);
    for (int i = 0; i < res->nphases; i++)
        free(res->phases[i].name);
    free(res->phases);
    free(res->downtime_from);
    free(res->downtime_until);
    for (int i = 0; i < res->nsettings; i++)
        upgrade_setting_free(&res->settings[i]);
    free_lines(res->databases, res->ndatabases);
    free(res->vector_before);
    free(res->vector_after);
    for (int i = 0; i < res->nupdates; i++) {
        free(res->updates[i].db);
        free(res->updates[i].name);
        free(res->updates[i].from);
        free(res->updates[i].to);
    }
    free(res->updates);
    if (res->proof_ran)
        proof_result_free(&res->proof);
    free_lines(res->rollback, res->nrollback);
    free(res->work_dir);
    cJSON_Delete(res->details);
    memset(res, 0, sizeof *res);
}

bool upgrade_result_init(const upgrade_options *o, upgrade_result *res)
{
    memset(res, 0, sizeof *res);
    res->downtime_seconds = -1;
    res->statistics_seconds = -1;
    res->status = UPG_ST_FAILED; /* until proven otherwise */
    res->jobs = upgrade_tune_jobs(o->jobs, &res->settings[0]);
    res->nsettings = 1;
    return res->jobs > 0;
}

void upgrade_setting_add(upgrade_result *res, upgrade_setting *s)
{
    if (res->nsettings < (int) (sizeof res->settings / sizeof res->settings[0])) {
        res->settings[res->nsettings++] = *s;
        memset(s, 0, sizeof *s);
    } else
        upgrade_setting_free(s);
}

bool upgrade_workdir(const upgrade_options *o, upgrade_result *res)
{
    if (o->work_dir) {
        if (mkdir(o->work_dir, 0700) != 0 && errno != EEXIST) {
            log_error("upgrade: could not create the work directory %s: %s", o->work_dir, strerror(errno));
            return false;
        }
        res->work_dir = realpath(o->work_dir, NULL);
    } else {
        char tmpl[] = "/tmp/pgmemctl-upgrade-XXXXXX";
        if (!mkdtemp(tmpl)) {
            log_error("upgrade: could not create a work directory in /tmp: %s", strerror(errno));
            return false;
        }
        res->work_dir = strdup(tmpl);
    }
    if (!res->work_dir || chmod(res->work_dir, 0700) != 0) {
        log_error("upgrade: work directory %s: %s", o->work_dir ? o->work_dir : "?", strerror(errno));
        return false;
    }
    log_info("upgrade: work directory (logs, sockets%s): %s", o->method == UPG_DUMP ? ", dumps" : "",
             res->work_dir);
    return true;
}

int upgrade_list_databases(pg_conn *c, char ***out)
{
    *out = NULL;
    pg_result *r = pg_exec(c,
                           "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
                           "AND datname NOT IN ('template0', 'template1') ORDER BY datname COLLATE \"C\"",
                           0, NULL);
    if (!r) {
        log_error("upgrade: listing databases on %s: %s", pg_display(c), pg_errmsg(c));
        return -1;
    }
    int n = pg_ntuples(r);
    *out = calloc((size_t) n + 1, sizeof **out);
    for (int i = 0; *out && i < n; i++)
        (*out)[i] = strdup(pg_value(r, i, 0));
    pg_clear(r);
    return *out ? n : -1;
}

bool upgrade_update_extensions(pg_conn *c, const char *db, upgrade_result *res)
{
    pg_result *r = pg_exec(c,
                           "SELECT e.extname, e.extversion, a.default_version FROM pg_extension e "
                           "JOIN pg_available_extensions a ON a.name = e.extname "
                           "WHERE a.default_version IS DISTINCT FROM e.extversion ORDER BY e.extname",
                           0, NULL);
    if (!r) {
        log_error("upgrade: database %s: reading extension versions: %s", db, pg_errmsg(c));
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < pg_ntuples(r); i++) {
        const char *name = pg_value(r, i, 0);
        char *q = pg_quote_ident(c, name);
        char sql[300];
        snprintf(sql, sizeof sql, "ALTER EXTENSION %s UPDATE", q ? q : "?");
        free(q);
        if (!pg_run(c, sql, 0, NULL)) {
            log_error("upgrade: database %s: %s: %s", db, sql, pg_errmsg(c));
            ok = false;
            break;
        }
        log_info("upgrade: database %s: extension %s updated from %s to %s", db, name, pg_value(r, i, 1),
                 pg_value(r, i, 2));
        upgrade_update_add(res, db, name, pg_value(r, i, 1), pg_value(r, i, 2));
    }
    pg_clear(r);
    if (ok && !res->vector_after) {
        bool found;
        res->vector_after = pg_query_text(c, VECTOR_VERSION_SQL, 0, NULL, &found);
    }
    return ok;
}

void upgrade_check_versions(upgrade_result *res, const upgrade_options *o, const char *old_what,
                            const char *new_what)
{
    upgrade_check_add(res, "old_version", !o->from_version || o->from_version == res->old_major,
                      "%s is PostgreSQL %s%s", old_what, res->old_version,
                      o->from_version && o->from_version != res->old_major ? ": not the version this upgrade is from"
                                                                           : "");
    upgrade_check_add(res, "new_version",
                      (!o->to_version || o->to_version == res->new_major) && res->new_major > res->old_major,
                      "%s is PostgreSQL %s%s", new_what, res->new_version,
                      o->to_version && o->to_version != res->new_major ? ": not the version this upgrade is to"
                      : res->new_major <= res->old_major              ? ": not a newer major version"
                                                                       : "");
}

bool upgrade_prove(upgrade_result *res, const char *conninfo, char **dbs, int ndbs, const proof_snapshot *snaps,
                   int sample_rows)
{
    res->proof_ran = true;
    bool server_checked = false;
    for (int i = 0; i < ndbs; i++) {
        pg_conn *c = pg_connect_db(conninfo, dbs[i], "pgmemctl upgrade proof", 0);
        if (!c) {
            proof_add_mismatch(&res->proof, dbs[i], "database_missing", dbs[i], "present", "cannot connect");
            continue;
        }
        bool ok = proof_check_db(c, &snaps[i], sample_rows, &res->proof);
        if (ok && !server_checked) {
            ok = proof_check_server(c, res->new_major, &res->proof);
            server_checked = true;
        }
        pg_close(c);
        if (!ok) {
            upgrade_fail(res, UPG_ST_FAILED, "the proof could not run on database %s", dbs[i]);
            return false;
        }
    }
    return true;
}

bool upgrade_collect_old(const char *conninfo, char **dbs, int ndbs, compat_list *out, upgrade_result *res)
{
    for (int i = 0; i < ndbs; i++) {
        pg_conn *c = pg_connect_db(conninfo, dbs[i], "pgmemctl upgrade", 0);
        if (!c)
            return false;
        bool ok = compat_collect(c, dbs[i], i == 0, out);
        if (ok && !res->vector_before) {
            bool found = false;
            res->vector_before = pg_query_text(c, VECTOR_VERSION_SQL, 0, NULL, &found);
        }
        pg_close(c);
        if (!ok)
            return false;
    }
    return true;
}

bool upgrade_probe_new(const char *conninfo, const compat_list *l, compat_ext_rule rule, upgrade_result *res)
{
    pg_conn *c = pg_connect(conninfo, "pgmemctl upgrade preflight", 0);
    if (!c)
        return false;
    bool ok = compat_probe(c, l, rule, &res->compat);
    pg_close(c);
    if (!ok)
        return false;
    res->compat_ran = true;
    bool vector_used = false;
    for (int i = 0; i < l->n; i++)
        if (l->items[i].kind == COMPAT_EXTENSION && !strcmp(l->items[i].name, "vector"))
            vector_used = true;
    int ext_problems = 0, other = 0;
    for (int i = 0; i < res->compat.nproblems; i++) {
        if (res->compat.problems[i].item->kind == COMPAT_EXTENSION)
            ext_problems++;
        else
            other++;
    }
    char *desc = compat_describe(&res->compat);
    if (ext_problems == 0)
        upgrade_check_add(res, "extensions_available", true, "every extension in use (%s) is available on %s%s",
                          vector_used ? "pgvector included" : "no pgvector", res->compat.server_version,
                          rule == COMPAT_EXT_SAME_OR_UPDATE ? " with an update path from the installed version"
                                                            : " in the same or a newer version");
    else
        upgrade_check_add(res, "extensions_available", false,
                          "%d extension problem(s) on the new server %s: install the extension (for pgvector: "
                          "built for PostgreSQL %d, a version >= the one in use) into the new installation",
                          ext_problems, res->compat.server_version, res->new_major);
    if (other == 0)
        upgrade_check_add(res, "options_accepted", true,
                          "%d distinct storage options, column options, settings and access methods of the old "
                          "cluster tried on %s: all accepted",
                          res->compat.tried, res->compat.server_version);
    else
        upgrade_check_add(res, "options_accepted", false,
                          "%d of %d distinct options, settings or access methods of the old cluster are rejected "
                          "by %s (the schema restore would fail half-way); use a newer minor release of "
                          "PostgreSQL %d that accepts them, or remove them from the old cluster first:\n%s",
                          other, res->compat.tried, res->compat.server_version, res->new_major, desc ? desc : "");
    free(desc);
    return true;
}

const char *upgrade_method_name(upgrade_method m)
{
    return m == UPG_DUMP ? "dump" : m == UPG_LOGICAL ? "logical" : "pg_upgrade";
}

const char *upgrade_mode_name(upgrade_mode m)
{
    return m == UPG_LINK ? "link" : m == UPG_CLONE ? "clone" : "copy";
}

const char *upgrade_status_name(upgrade_status s)
{
    switch (s) {
    case UPG_ST_UPGRADED:
        return "upgraded";
    case UPG_ST_DRY_RUN:
        return "dry_run";
    case UPG_ST_REFUSED:
        return "refused";
    case UPG_ST_FAILED:
        return "failed";
    case UPG_ST_PROOF_FAILED:
        return "proof_failed";
    case UPG_ST_ABORTED:
        return "aborted";
    }
    return "failed";
}

/* Writes text into file and waits until the file is removed (at most 10 minutes). */
static void pause_on_file(const char *file, const char *text, const char *why)
{
    FILE *f = fopen(file, "w");
    if (!f) {
        log_warn("upgrade: %s: cannot create %s: %s", why, file, strerror(errno));
        return;
    }
    fprintf(f, "%s\n", text);
    fclose(f);
    log_info("upgrade: paused until %s is removed (%s)", file, why);
    double t0 = progress_now();
    while (access(file, F_OK) == 0 && progress_now() - t0 < 600) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void upgrade_pause(const char *env_name, const char *info)
{
    const char *file = getenv(env_name);
    if (file && *file)
        pause_on_file(file, info, env_name);
}

void upgrade_pause_before_proof(const char *conninfo) { upgrade_pause("PGMEMCTL_UPGRADE_PAUSE_BEFORE_PROOF", conninfo); }

void upgrade_pause_at(const char *point, const char *conninfo)
{
    const char *at = getenv("PGMEMCTL_UPGRADE_PAUSE_AT"), *file = getenv("PGMEMCTL_UPGRADE_PAUSE_FILE");
    if (!at || strcmp(at, point) != 0 || !file || !*file)
        return;
    char *text = NULL;
    if (asprintf(&text, "%d\n%s", (int) getpid(), conninfo) < 0)
        return;
    pause_on_file(file, text, "PGMEMCTL_UPGRADE_PAUSE_AT");
    free(text);
}

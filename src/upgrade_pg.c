/* upgrade_pg.c — `pgmemctl upgrade --method pg_upgrade`: preflight (installations, data
 * directories, settings, pgvector, options the new server rejects), initdb, pg_upgrade --check,
 * pg_upgrade, the new cluster started privately for ALTER EXTENSION … UPDATE, vacuumdb
 * --analyze-in-stages and the proof, then stopped again. */
#define _GNU_SOURCE
#include "cluster.h"
#include "log.h"
#include "pg.h"
#include "progress.h"
#include "upgrade.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OLD_PORT = 50432, NEW_PORT = 50433 };

/* Server settings for pgmemctl's private start of the old cluster: it must change as little as
 * possible there. */
static const char *const old_extra[] = {"autovacuum=off", "archive_mode=off", NULL};

typedef struct {
    const upgrade_options *o;
    upgrade_result *res;
    double t_start;
    cluster_install oldi, newi;
    cluster_datadir oldd;
    bool have_oldd;
    bool new_exists;        /* the new data directory existed before the run */
    char *new_dir;          /* absolute path of the new data directory */
    proc_user as;
    const char *superuser;  /* o->username or the owner's name */
    char *encoding, *collate, *ctype, *provider, *icu;
    char **dbs;
    int ndbs;
    proof_snapshot *snaps;  /* ndbs, taken on the old cluster while only pgmemctl could reach it */
    bool have_snaps;
} pgu;

static bool dir_is_empty(const char *path, bool *exists)
{
    DIR *d = opendir(path);
    *exists = d != NULL || errno != ENOENT;
    if (!d)
        return true;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = false;
    closedir(d);
    return empty;
}

static bool file_exists(const char *dir, const char *name)
{
    char *p = proc_path(dir, name);
    bool ok = p && access(p, F_OK) == 0;
    free(p);
    return ok;
}

/* The default_version line of a control file ("default_version = '0.8.0'"), newly allocated. */
static char *control_default_version(const char *path)
{
    char *text = proc_read_file(path, NULL);
    if (!text)
        return NULL;
    char *r = NULL, *p = strstr(text, "default_version");
    if (p && (p = strchr(p, '\''))) {
        size_t len = strcspn(p + 1, "'");
        r = strndup(p + 1, len);
    }
    free(text);
    return r;
}

/* The absolute path of a directory that may not exist yet: its parent resolved (which must exist),
 * then its own name. NULL when the parent does not exist. Newly allocated. */
static char *absolute_in_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    size_t len = strlen(copy);
    while (len > 1 && copy[len - 1] == '/')
        copy[--len] = '\0';
    char *slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    const char *parent = ".";
    if (slash == copy)
        parent = "/";
    else if (slash) {
        *slash = '\0';
        parent = copy;
    }
    char *rp = *base ? realpath(parent, NULL) : NULL;
    char *r = rp ? proc_path(strcmp(rp, "/") ? rp : "", base) : NULL;
    free(rp);
    free(copy);
    return r;
}

/* ---- preflight: installations and directories ------------------------------------------------- */

/* The check NAME: every program of progs is in bindir and executable; on failure the detail lists
 * the missing ones. Returns whether it passed. */
static bool check_programs(upgrade_result *res, const char *name, const char *bindir, const char *const *progs)
{
    char missing[512] = "";
    size_t len = 0;
    for (int i = 0; progs[i]; i++)
        if (!file_exists(bindir, progs[i]) && len < sizeof missing)
            len += (size_t) snprintf(missing + len, sizeof missing - len, "%s%s", len ? ", " : "", progs[i]);
    if (!*missing)
        return true;
    upgrade_check_add(res, name, false,
                      "%s lacks %s, which pg_upgrade needs from this installation (an installation of the server "
                      "alone cannot be upgraded by pg_upgrade: use --method dump, or install its client and "
                      "utility programs)",
                      bindir, missing);
    return false;
}

static bool check_static(pgu *u)
{
    const upgrade_options *o = u->o;
    upgrade_result *res = u->res;
    proc_user me = {(uid_t) -1, (gid_t) -1};
    if (!cluster_install_probe(o->old_bindir, res->work_dir, &me, &u->oldi)) {
        upgrade_check_add(res, "old_bindir", false, "%s is not a usable PostgreSQL installation", o->old_bindir);
        return false;
    }
    if (!cluster_install_probe(o->new_bindir, res->work_dir, &me, &u->newi)) {
        upgrade_check_add(res, "new_bindir", false, "%s is not a usable PostgreSQL installation", o->new_bindir);
        return false;
    }
    /* what pg_upgrade runs from each installation (an installation of the server alone, such as an
     * embedded PostgreSQL package, lacks pg_controldata) */
    static const char *const old_progs[] = {"postgres", "pg_ctl", "pg_controldata", NULL};
    static const char *const new_progs[] = {"postgres", "pg_ctl", "pg_controldata", "initdb", "pg_upgrade",
                                            "pg_dump", "pg_dumpall", "pg_resetwal", "psql", "vacuumdb", NULL};
    if (!check_programs(res, "old_bindir", u->oldi.bindir, old_progs) ||
        !check_programs(res, "new_bindir", u->newi.bindir, new_progs))
        return false;
    res->old_version = strdup(u->oldi.version);
    res->new_version = strdup(u->newi.version);
    res->old_major = u->oldi.major;
    res->new_major = u->newi.major;
    char *old_what = NULL, *new_what = NULL;
    if (asprintf(&old_what, "--old-bindir %s", u->oldi.bindir) < 0)
        old_what = NULL;
    if (asprintf(&new_what, "--new-bindir %s", u->newi.bindir) < 0)
        new_what = NULL;
    upgrade_check_versions(res, o, old_what ? old_what : "--old-bindir", new_what ? new_what : "--new-bindir");
    free(old_what);
    free(new_what);

    /* the old data directory's owner runs every program; it needs the work directory */
    struct stat dst;
    if (stat(o->old_datadir, &dst) == 0 && geteuid() == 0 && chown(res->work_dir, dst.st_uid, dst.st_gid) != 0) {
        upgrade_check_add(res, "work_dir", false, "could not give %s to uid %d: %s", res->work_dir, (int) dst.st_uid,
                          strerror(errno));
        return false;
    }
    if (!cluster_datadir_inspect(&u->oldi, o->old_datadir, res->work_dir, NULL, &u->oldd)) {
        upgrade_check_add(res, "old_datadir", false, "%s cannot be read as a PostgreSQL data directory",
                          o->old_datadir);
        return false;
    }
    u->have_oldd = true;
    res->old_where = strdup(u->oldd.datadir);
    upgrade_check_add(res, "old_datadir", u->oldd.major == u->oldi.major,
                      "%s: PostgreSQL %d data directory owned by %s, state \"%s\"%s", u->oldd.datadir,
                      u->oldd.major, u->oldd.owner, u->oldd.state,
                      u->oldd.major != u->oldi.major ? ": does not match --old-bindir's major version" : "");
    u->as = cluster_run_as(u->oldd.uid, u->oldd.gid);
    u->superuser = o->username ? o->username : u->oldd.owner;
    if (geteuid() != 0 && geteuid() != u->oldd.uid) {
        upgrade_check_add(res, "user", false, "run pgmemctl as %s (the data directory's owner) or as root",
                          u->oldd.owner);
        return false;
    }

    /* the new data directory: absent or empty (pgmemctl runs initdb), or an initialised cluster */
    bool exists;
    bool empty = dir_is_empty(o->new_datadir, &exists);
    u->new_exists = exists && !empty;
    if (u->new_exists) {
        cluster_datadir nd;
        if (!cluster_datadir_inspect(&u->newi, o->new_datadir, res->work_dir, NULL, &nd)) {
            upgrade_check_add(res, "new_datadir", false, "%s exists and is not a PostgreSQL data directory",
                              o->new_datadir);
            return false;
        }
        u->new_dir = strdup(nd.datadir);
        bool ok = nd.major == u->newi.major && !nd.running && nd.uid == u->oldd.uid;
        upgrade_check_add(res, "new_datadir", ok, "%s: existing PostgreSQL %d cluster%s%s%s", nd.datadir, nd.major,
                          nd.major != u->newi.major ? ", not of --new-bindir's version" : "",
                          nd.running ? ", running: stop it first" : "",
                          nd.uid != u->oldd.uid ? ", owned by another user than the old one" : "");
        upgrade_check_add(res, "data_checksums", nd.checksum_version == u->oldd.checksum_version,
                          "old cluster: data checksums %s, new cluster: %s", u->oldd.checksum_version ? "on" : "off",
                          nd.checksum_version ? "on" : "off");
        upgrade_check_add(res, "wal_segment_size", nd.wal_segsize == u->oldd.wal_segsize,
                          "old %lld bytes, new %lld bytes", (long long) u->oldd.wal_segsize,
                          (long long) nd.wal_segsize);
        cluster_datadir_free(&nd);
    } else {
        u->new_dir = exists ? realpath(o->new_datadir, NULL) : NULL;
        if (!u->new_dir)
            u->new_dir = absolute_in_parent(o->new_datadir);
        if (!u->new_dir) {
            upgrade_check_add(res, "new_datadir", false, "the parent directory of %s does not exist", o->new_datadir);
            return false;
        }
        upgrade_check_add(res, "new_datadir", true,
                          "%s: %s; initdb creates the new cluster there with the old cluster's settings%s", u->new_dir,
                          exists ? "empty" : "absent", o->dry_run ? " (not in a dry run)" : "");
        upgrade_check_add(res, "data_checksums", true, "data checksums %s in both (initdb %s)",
                          u->oldd.checksum_version ? "on" : "off", u->oldd.checksum_version ? "-k" : "without -k");
    }
    res->new_where = strdup(u->new_dir);

    size_t olen = strlen(u->oldd.datadir);
    if (!strncmp(u->new_dir, u->oldd.datadir, olen) && (u->new_dir[olen] == '\0' || u->new_dir[olen] == '/')) {
        upgrade_check_add(res, "new_datadir", false, "%s is (inside) the old data directory", u->new_dir);
        return false;
    }

    /* space and file systems */
    dev_t dev_old = 0, dev_new = 0;
    struct stat st;
    if (stat(u->oldd.datadir, &st) == 0)
        dev_old = st.st_dev;
    int64_t avail = cluster_free_bytes(u->new_dir, &dev_new);
    int64_t need = cluster_data_bytes(u->oldd.datadir);
    if (o->mode == UPG_COPY) {
        int64_t want = need + need / 10 + 64 * 1024 * 1024;
        upgrade_check_add(res, "disk_space", need >= 0 && avail >= want,
                          "copy mode writes the old cluster's %.1f MB again; %.1f MB free where %s goes "
                          "(%.1f MB needed with a 10 %% margin)",
                          (double) need / 1048576.0, (double) avail / 1048576.0, u->new_dir, (double) want / 1048576.0);
    } else {
        upgrade_check_add(res, "same_filesystem", avail >= 0 && dev_old == dev_new,
                          "%s mode needs the old and new data directories on one file system: %s", upgrade_mode_name(o->mode),
                          dev_old == dev_new ? "they are" : "they are not (use --mode copy)");
    }

    /* the old cluster must be shut down, or be stopped by pgmemctl */
    if (u->oldd.running)
        upgrade_check_add(res, "old_cluster_stopped", o->stop_old || o->dry_run,
                          "the old cluster is running (pid %ld)%s", u->oldd.pid,
                          o->stop_old ? ": pgmemctl stops it (pg_ctl stop -m fast) after the preflight"
                          : o->dry_run ? ": a real run needs it stopped, or --stop-old"
                                       : ": stop it first (pg_ctl -D DATADIR stop -m fast, or the service manager), "
                                         "or pass --stop-old");
    else
        upgrade_check_add(res, "old_cluster_stopped", true, "the old cluster is not running (state \"%s\")%s",
                          u->oldd.state,
                          strcmp(u->oldd.state, "shut down") ? "; pgmemctl's private start recovers it first" : "");
    return true;
}

/* ---- preflight: inside the old cluster ------------------------------------------------------- */

/* The proof's snapshot of every database of the old cluster reached with conninfo (which only
 * pgmemctl can reach at that moment). Returns false (logged) when one fails. */
static bool snapshot_old(pgu *u, const char *conninfo)
{
    u->snaps = calloc((size_t) u->ndbs + 1, sizeof *u->snaps);
    if (!u->snaps)
        return false;
    for (int i = 0; i < u->ndbs; i++) {
        pg_conn *c = pg_connect_db(conninfo, u->dbs[i], "pgmemctl upgrade proof", 0);
        bool took = c && proof_snapshot_take(c, u->dbs[i], u->o->sample_rows, &u->snaps[i]);
        pg_close(c);
        if (!took)
            return false;
    }
    u->have_snaps = true;
    log_info("upgrade: snapshot of %d database(s) taken on the old cluster", u->ndbs);
    return true;
}

/* Reads the cluster-wide facts and the databases from the old cluster reached with conninfo. */
static bool read_old(pgu *u, const char *conninfo, bool take_snapshots)
{
    upgrade_result *res = u->res;
    pg_conn *c = pg_connect_db(conninfo, "template1", "pgmemctl upgrade", 0);
    if (!c) {
        upgrade_check_add(res, "old_connect", false,
                          "could not connect to the old cluster as %s (pass --username, or --old-conninfo for a "
                          "running cluster)", u->superuser);
        return false;
    }
    bool ok = false;
    bool found;
    char *boot = pg_query_text(c, "SELECT rolname FROM pg_authid WHERE oid = 10", 0, NULL, &found);
    upgrade_check_add(res, "superuser", boot && !strcmp(boot, u->superuser),
                      "the old cluster's bootstrap superuser is %s%s", boot ? boot : "?",
                      boot && strcmp(boot, u->superuser) ? ": pass --username with it" : "");
    free(boot);
    const char *locsql = pg_server_version(c) >= 170000
                             ? "SELECT pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider::text, "
                               "datlocale FROM pg_database WHERE datname = 'template0'"
                             : "SELECT pg_encoding_to_char(encoding), datcollate, datctype, datlocprovider::text, "
                               "daticulocale FROM pg_database WHERE datname = 'template0'";
    pg_result *r = pg_exec(c, locsql, 0, NULL);
    if (!r || pg_ntuples(r) != 1) {
        log_error("upgrade: reading template0's encoding and locale: %s", pg_errmsg(c));
        pg_clear(r);
        goto done;
    }
    u->encoding = strdup(pg_value(r, 0, 0));
    u->collate = strdup(pg_value(r, 0, 1));
    u->ctype = strdup(pg_value(r, 0, 2));
    const char *prov = pg_value(r, 0, 3);
    u->provider = strdup(!strcmp(prov, "i") ? "icu" : !strcmp(prov, "b") ? "builtin" : "libc");
    u->icu = pg_isnull(r, 0, 4) ? NULL : strdup(pg_value(r, 0, 4));
    pg_clear(r);
    u->ndbs = upgrade_list_databases(c, &u->dbs);
    if (u->ndbs < 0)
        goto done;
    res->databases = calloc((size_t) u->ndbs + 1, sizeof *res->databases);
    for (int i = 0; res->databases && i < u->ndbs; i++)
        res->databases[i] = strdup(u->dbs[i]);
    res->ndatabases = res->databases ? u->ndbs : 0;
    ok = true;
done:
    pg_close(c);
    if (!ok)
        return false;
    if (!upgrade_collect_old(conninfo, u->dbs, u->ndbs, &u->res->compat_items, res))
        return false;
    return !take_snapshots || snapshot_old(u, conninfo);
}

/* How to reach the running old cluster: --old-conninfo, else its socket from postmaster.pid as the
 * superuser. Newly allocated; NULL when out of memory. */
static char *live_conninfo(const pgu *u)
{
    char *conninfo = NULL;
    if (u->o->old_conninfo)
        return strdup(u->o->old_conninfo);
    char *qh = cluster_conninfo_value(u->oldd.socket_dir ? u->oldd.socket_dir : "/var/run/postgresql");
    char *qu = cluster_conninfo_value(u->superuser);
    if (qh && qu && asprintf(&conninfo, "host=%s port=%d user=%s", qh, u->oldd.port, qu) < 0)
        conninfo = NULL;
    free(qh);
    free(qu);
    return conninfo;
}

/* "X/Y" (an LSN as PostgreSQL prints it) as a number; false when it is not one. */
static bool parse_lsn(const char *text, uint64_t *out)
{
    unsigned int hi, lo;
    char tail;
    if (!text || sscanf(text, "%X/%X%c", &hi, &lo, &tail) != 2)
        return false;
    *out = (uint64_t) hi << 32 | lo;
    return true;
}

/* The proof's snapshot of the running old cluster, taken right before pgmemctl stops it, so that
 * it is not part of the downtime. *lsn (newly allocated) is the WAL insert position read before
 * it: the snapshot holds only when the shutdown checkpoint's REDO location is that position, i.e.
 * nothing was written in between (wal_unchanged). Not taken (false, a reason logged) when a
 * database has an unlogged table or materialized view, whose writes leave no WAL. */
static bool snapshot_live(pgu *u, char **lsn)
{
    *lsn = NULL;
    char *conninfo = live_conninfo(u);
    if (!conninfo)
        return false;
    bool ok = true;
    for (int i = 0; ok && i < u->ndbs; i++) {
        pg_conn *c = pg_connect_db(conninfo, u->dbs[i], "pgmemctl upgrade proof", 0);
        int64_t unlogged = -1;
        if (!c || !pg_query_int64(c, "SELECT count(*) FROM pg_class WHERE relpersistence = 'u' AND relkind IN ('r', 'm')",
                                  0, NULL, &unlogged) ||
            unlogged != 0) {
            log_info("upgrade: %s: the proof's snapshot is taken after the stop", unlogged > 0
                         ? "an unlogged table changes without WAL"
                         : "the running old cluster could not be read for the snapshot");
            ok = false;
        }
        if (ok && i == 0) {
            bool found;
            *lsn = pg_query_text(c, "SELECT pg_current_wal_insert_lsn()::text", 0, NULL, &found);
            ok = *lsn != NULL;
        }
        pg_close(c);
    }
    ok = ok && snapshot_old(u, conninfo);
    free(conninfo);
    if (!ok) {
        for (int i = 0; u->snaps && i < u->ndbs; i++)
            proof_snapshot_free(&u->snaps[i]);
        free(u->snaps);
        u->snaps = NULL;
        u->have_snaps = false;
        free(*lsn);
        *lsn = NULL;
    }
    return ok;
}

/* Whether the WAL of the stopped old cluster from `from` to `to` (LSN texts) holds no commit: every
 * change a client made visible after the live snapshot has one (what the WAL may hold without one,
 * such as the background writer's standby snapshots, on-access pruning or a sequence's advance,
 * changes no row the proof counts). Read with the old installation's pg_waldump; false when it
 * cannot be read. found gets the records' kinds for the log ("Standby/RUNNING_XACTS ..."). */
static bool wal_has_no_commit(pgu *u, const char *from, const char *to, char *found, size_t found_len)
{
    char *waldir = proc_path(u->oldd.datadir, "pg_wal");
    const char *argv[] = {"pg_waldump", "--path", waldir, "--start", from, "--end", to, NULL};
    char *text = NULL;
    int rc = waldir && file_exists(u->oldi.bindir, "pg_waldump")
                 ? cluster_run(&u->oldi, argv, u->res->work_dir, "pg_waldump.out", &u->as, 120, &text)
                 : -1;
    free(waldir);
    bool commit = false;
    size_t len = 0;
    found[0] = '\0';
    for (const char *line = text; rc == 0 && line && *line;) {
        const char *rm = strstr(line, "rmgr: "), *desc = strstr(line, "desc: "), *nl = strchr(line, '\n');
        if (rm && desc && (!nl || desc < nl)) {
            rm += strlen("rmgr: ");
            desc += strlen("desc: ");
            int rl = (int) strcspn(rm, " "), dl = (int) strcspn(desc, " \n");
            if (rl == 11 && !strncmp(rm, "Transaction", 11) && !strncmp(desc, "COMMIT", 6))
                commit = true;
            if (len < found_len)
                len += (size_t) snprintf(found + len, found_len - len, "%s%.*s/%.*s", len ? " " : "", rl, rm, dl, desc);
        }
        line = nl ? nl + 1 : NULL;
    }
    if (rc != 0)
        snprintf(found, found_len, "pg_waldump could not read it (exit status %d)", rc);
    free(text);
    return rc == 0 && !commit;
}

/* After the stop: whether the live snapshot (taken after reading the WAL position lsn) holds, i.e.
 * no commit between lsn and the shutdown checkpoint's REDO location. */
static bool wal_unchanged(pgu *u, const char *lsn)
{
    cluster_datadir d;
    if (!cluster_datadir_inspect(&u->oldi, u->oldd.datadir, u->res->work_dir, &u->as, &d))
        return false;
    uint64_t before, redo;
    bool parsed = parse_lsn(lsn, &before) && parse_lsn(d.checkpoint_redo, &redo) && redo >= before && d.state &&
                  !strcmp(d.state, "shut down");
    char found[512] = "none";
    bool same = parsed && (redo == before || wal_has_no_commit(u, lsn, d.checkpoint_redo, found, sizeof found));
    log_info("upgrade: WAL position before the live snapshot %s, the shutdown checkpoint's REDO %s (records in "
             "between: %s): %s",
             lsn, d.checkpoint_redo ? d.checkpoint_redo : "?", found,
             same ? "no commit in between, the snapshot holds"
                  : "written in between, the snapshot is taken again after the stop");
    cluster_datadir_free(&d);
    return same;
}

/* The old cluster's facts: through its own socket when it runs, else a private start. */
static bool preflight_old(pgu *u)
{
    if (u->oldd.running) {
        char *conninfo = live_conninfo(u);
        bool ok = conninfo && read_old(u, conninfo, false);
        free(conninfo);
        return ok;
    }
    cluster_server s;
    if (!cluster_start(&u->oldi, u->oldd.datadir, u->res->work_dir, "old", OLD_PORT, u->superuser, old_extra, &u->as,
                       3600, &s)) {
        upgrade_check_add(u->res, "old_start", false, "the old cluster could not be started privately (log in %s)",
                          u->res->work_dir);
        return false;
    }
    bool ok = read_old(u, s.conninfo, true);
    if (!cluster_stop(&s))
        ok = false;
    return ok;
}

/* pgvector's files in the new installation, when any database uses it. */
static void check_pgvector_files(pgu *u)
{
    if (!u->res->vector_before) {
        upgrade_check_add(u->res, "pgvector_installed", true, "no database of the old cluster uses pgvector");
        return;
    }
    if (!u->newi.sharedir || !u->newi.pkglibdir) {
        upgrade_check_add(u->res, "pgvector_installed", true,
                          "no pg_config in %s: pgvector is checked by the new server itself below", u->newi.bindir);
        return;
    }
    char *control = proc_path(u->newi.sharedir, "extension/vector.control");
    char *lib = proc_path(u->newi.pkglibdir, "vector.so");
    char *ver = control ? control_default_version(control) : NULL;
    bool lib_ok = lib && access(lib, R_OK) == 0;
    if (!ver || !lib_ok)
        upgrade_check_add(u->res, "pgvector_installed", false,
                          "pgvector %s is used by the old cluster but not installed for PostgreSQL %s in %s (%s%s%s): "
                          "build and install pgvector for the new version (make PG_CONFIG=%s/pg_config install), "
                          "then run again",
                          u->res->vector_before, u->newi.version, u->newi.bindir, ver ? "" : control ? control : "?",
                          !ver && !lib_ok ? ", " : "", lib_ok ? "" : lib ? lib : "?", u->newi.bindir);
    else
        upgrade_check_add(u->res, "pgvector_installed", true, "pgvector %s for PostgreSQL %s (%s); the old cluster has %s",
                          ver, u->newi.version, control, u->res->vector_before);
    free(control);
    free(lib);
    free(ver);
}

/* initdb with the old cluster's settings into dir. */
static bool initdb_like_old(pgu *u, const char *dir)
{
    cluster_initdb_opts io = {.encoding = u->encoding,
                              .lc_collate = u->collate,
                              .lc_ctype = u->ctype,
                              .locale_provider = u->provider,
                              .icu_locale = u->icu,
                              .checksums = u->oldd.checksum_version != 0,
                              .wal_segsize = u->oldd.wal_segsize,
                              .superuser = u->superuser};
    return cluster_initdb(&u->newi, dir, &io, u->res->work_dir, &u->as);
}

/* The new server: initdb (the real directory, or a scratch one in a dry run), a private start, the
 * compatibility probe (rolled back), the locale comparison for an existing cluster. */
static bool preflight_new(pgu *u)
{
    upgrade_result *res = u->res;
    char *dir = NULL;
    bool scratch = false;
    if (u->new_exists)
        dir = strdup(u->new_dir);
    else if (u->o->dry_run) {
        dir = proc_path(res->work_dir, "probe-new");
        scratch = true;
    } else
        dir = strdup(u->new_dir);
    if (!dir)
        return false;
    bool ok = false;
    if (!u->new_exists) {
        double t0 = progress_now();
        if (!initdb_like_old(u, dir)) {
            upgrade_check_add(res, "initdb", false,
                              "initdb of PostgreSQL %s with the old cluster's settings (encoding %s, collate %s, "
                              "ctype %s, provider %s) failed: see %s/initdb.log",
                              u->newi.version, u->encoding, u->collate, u->ctype, u->provider, res->work_dir);
            if (!scratch)
                res->new_created = true; /* so that it is removed again */
            goto done;
        }
        if (!scratch)
            res->new_created = true;
        log_info("upgrade: initdb of %s done in %.1f s (part of the preflight)", dir, progress_now() - t0);
    }
    cluster_server s;
    if (!cluster_start(&u->newi, dir, res->work_dir, "new", NEW_PORT, u->superuser, NULL, &u->as, 600, &s)) {
        upgrade_check_add(res, "new_start", false, "the new cluster (%s) could not be started: see %s", dir,
                          res->work_dir);
        goto done;
    }
    if (u->new_exists) {
        pg_conn *c = pg_connect_db(s.conninfo, "template1", "pgmemctl upgrade", 0);
        pg_result *r = c ? pg_exec(c,
                                   "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
                                   "WHERE datname = 'template0'",
                                   0, NULL)
                         : NULL;
        if (r && pg_ntuples(r) == 1) {
            bool same = !strcmp(pg_value(r, 0, 0), u->encoding) && !strcmp(pg_value(r, 0, 1), u->collate) &&
                        !strcmp(pg_value(r, 0, 2), u->ctype);
            upgrade_check_add(res, "encoding_locale", same,
                              "old: encoding %s, collate %s, ctype %s; new: %s, %s, %s%s", u->encoding, u->collate,
                              u->ctype, pg_value(r, 0, 0), pg_value(r, 0, 1), pg_value(r, 0, 2),
                              same ? "" : ": initdb the new cluster again with the old settings");
        }
        pg_clear(r);
        pg_close(c);
    } else
        upgrade_check_add(res, "encoding_locale", true, "encoding %s, collate %s, ctype %s, provider %s (initdb)",
                          u->encoding, u->collate, u->ctype, u->provider);
    ok = upgrade_probe_new(s.conninfo, &u->res->compat_items, COMPAT_EXT_SAME_OR_UPDATE, res);
    if (!cluster_stop(&s))
        ok = false;
done:
    if (scratch)
        proc_rmtree(dir);
    free(dir);
    return ok;
}

static void make_plan(pgu *u)
{
    const upgrade_options *o = u->o;
    upgrade_result *res = u->res;
    if (!u->new_exists)
        upgrade_plan_add(res, "copy pg_hba.conf and pg_ident.conf from the old cluster to the new one (made by initdb "
                              "in the preflight: %s, PostgreSQL %s, encoding %s, collate %s, ctype %s%s)",
                         u->new_dir, u->newi.version, u->encoding, u->collate, u->ctype,
                         u->oldd.checksum_version ? ", data checksums" : "");
    if (u->oldd.running)
        upgrade_plan_add(res, "pg_upgrade --check against the running old cluster (%s mode, %d job(s)): not part of "
                              "the downtime",
                         upgrade_mode_name(o->mode), res->jobs);
    if (u->have_snaps)
        upgrade_plan_add(res, "the proof's snapshot of %d database(s) (row counts, vector checksums over %d rows) was "
                              "taken during the preflight, while only pgmemctl could reach the old cluster",
                         u->ndbs, o->sample_rows);
    else if (u->oldd.running)
        upgrade_plan_add(res, "the proof's snapshot of %d database(s) (row counts, vector checksums over %d rows) on "
                              "the running old cluster right before the stop, outside the downtime; kept when no WAL "
                              "is written between it and the shutdown checkpoint (the application's writes stopped), "
                              "else taken again by a private start after the stop",
                         u->ndbs, o->sample_rows);
    if (u->oldd.running)
        upgrade_plan_add(res, "stop the old cluster (pg_ctl stop -D %s -m fast): downtime starts", u->oldd.datadir);
    if (!u->oldd.running)
        upgrade_plan_add(res, "pg_upgrade --check (%s mode, %d job(s))", upgrade_mode_name(o->mode), res->jobs);
    upgrade_plan_add(res, "pg_upgrade --%s -b %s -B %s -d %s -D %s", upgrade_mode_name(o->mode), u->oldi.bindir,
                     u->newi.bindir, u->oldd.datadir, u->new_dir);
    upgrade_plan_add(res, "start the new cluster privately: downtime ends when it accepts connections");
    upgrade_plan_add(res, "ALTER EXTENSION … UPDATE in every database where the installed version is older");
    upgrade_plan_add(res, "vacuumdb --all --analyze-in-stages");
    upgrade_plan_add(res, "proof: row counts, vector checksums, HNSW/IVFFlat indexes valid and used, extversion, "
                          "server version");
    upgrade_plan_add(res, "stop the new cluster; it is ready to start with your configuration");
}

static void add_rollback(pgu *u, bool after_link)
{
    upgrade_result *res = u->res;
    const upgrade_options *o = u->o;
    if (o->mode == UPG_LINK && after_link) {
        upgrade_rollback_add(res, "link mode: the old and the new cluster share their data files. Do NOT start the "
                                  "old cluster (%s) now that the new one has run: it would corrupt both.",
                             u->oldd.datadir);
        upgrade_rollback_add(res, "going back to PostgreSQL %s means restoring the old cluster from a backup taken "
                                  "before the upgrade",
                             u->oldi.version);
    } else {
        upgrade_rollback_add(res, "the old cluster (%s) is untouched: to go back, stop the new cluster and start the "
                                  "old one with PostgreSQL %s (%s/pg_ctl -D %s start, or your service manager)",
                             u->oldd.datadir, u->oldi.version, u->oldi.bindir, u->oldd.datadir);
        if (res->new_created || u->new_exists)
            upgrade_rollback_add(res, "then remove the new data directory %s", u->new_dir);
    }
    if (res->status == UPG_ST_UPGRADED || res->status == UPG_ST_PROOF_FAILED) {
        upgrade_rollback_add(res, "to go forward: carry your postgresql.conf settings (port, listen_addresses, "
                                  "shared_buffers, shared_preload_libraries …) over to %s/postgresql.conf, then start "
                                  "it (%s/pg_ctl -D %s -l LOGFILE start, or your service manager)",
                             u->new_dir, u->newi.bindir, u->new_dir);
        if (file_exists(res->work_dir, "delete_old_cluster.sh"))
            upgrade_rollback_add(res, "once the new cluster is proven in production, %s/delete_old_cluster.sh removes "
                                      "the old cluster's files",
                                 res->work_dir);
    }
}

/* ---- the run ---------------------------------------------------------------------------------- */

/* pg_upgrade (check_only: --check). live: the old cluster still runs (pg_upgrade's live check, which
 * connects to it through the socket and port its postmaster.pid names). */
static int run_pg_upgrade_prog(pgu *u, bool check_only, bool live)
{
    char *sock = proc_path(u->res->work_dir, "sock_pgu");
    char jobs[16], oport[16], nport[16], mode[16];
    snprintf(jobs, sizeof jobs, "%d", u->res->jobs);
    snprintf(oport, sizeof oport, "%d", live ? u->oldd.port : OLD_PORT);
    snprintf(nport, sizeof nport, "%d", NEW_PORT);
    snprintf(mode, sizeof mode, "--%s", upgrade_mode_name(u->o->mode));
    if (!sock || (mkdir(sock, 0700) != 0 && errno != EEXIST) ||
        (u->as.uid != (uid_t) -1 && chown(sock, u->as.uid, u->as.gid) != 0)) {
        log_error("upgrade: could not create %s", sock ? sock : "a socket directory");
        free(sock);
        return -1;
    }
    const char *argv[24];
    int n = 0;
    argv[n++] = "pg_upgrade";
    argv[n++] = "--old-bindir";
    argv[n++] = u->oldi.bindir;
    argv[n++] = "--new-bindir";
    argv[n++] = u->newi.bindir;
    argv[n++] = "--old-datadir";
    argv[n++] = u->oldd.datadir;
    argv[n++] = "--new-datadir";
    argv[n++] = u->new_dir;
    argv[n++] = "--username";
    argv[n++] = u->superuser;
    argv[n++] = "--old-port";
    argv[n++] = oport;
    argv[n++] = "--new-port";
    argv[n++] = nport;
    argv[n++] = "--socketdir";
    argv[n++] = sock;
    argv[n++] = "--jobs";
    argv[n++] = jobs;
    argv[n++] = mode;
    if (check_only)
        argv[n++] = "--check";
    argv[n] = NULL;
    char *text = NULL;
    const char *log = check_only ? "pg_upgrade-check.log" : "pg_upgrade.log";
    int rc = cluster_run(&u->newi, argv, u->res->work_dir, log, &u->as, 7 * 24 * 3600.0, &text);
    if (rc != 0)
        log_error("upgrade: pg_upgrade%s failed (exit status %d): %s\n(full output: %s/%s; pg_upgrade's own logs: "
                  "%s/pg_upgrade_output.d)",
                  check_only ? " --check" : "", rc, text ? cluster_tail(text, 12) : "", u->res->work_dir, log,
                  u->new_dir);
    free(text);
    free(sock);
    return rc;
}

/* The post-upgrade steps on the new cluster, started privately. */
static bool post_upgrade(pgu *u, const char *conninfo)
{
    upgrade_result *res = u->res;
    double t0 = progress_now();
    for (int i = 0; i < u->ndbs; i++) {
        pg_conn *c = pg_connect_db(conninfo, u->dbs[i], "pgmemctl upgrade", 0);
        if (!c || !upgrade_update_extensions(c, u->dbs[i], res)) {
            pg_close(c);
            upgrade_fail(res, UPG_ST_FAILED, "updating extensions in database %s failed", u->dbs[i]);
            return false;
        }
        pg_close(c);
    }
    upgrade_phase_end(res, "extensions", t0);

    t0 = progress_now();
    char *sock = proc_path(res->work_dir, "sock_new");
    char port[16];
    snprintf(port, sizeof port, "%d", NEW_PORT);
    const char *argv[] = {"vacuumdb", "--all", "--analyze-in-stages", "--host", sock, "--port", port, "--username",
                          u->superuser, NULL};
    char *text = NULL;
    int rc = sock ? cluster_run(&u->newi, argv, res->work_dir, "vacuumdb.log", &u->as, 7 * 24 * 3600.0, &text) : -1;
    if (rc != 0)
        upgrade_fail(res, UPG_ST_FAILED, "vacuumdb --all --analyze-in-stages failed (exit status %d): %s", rc,
                     text ? cluster_tail(text, 5) : "");
    free(text);
    free(sock);
    if (rc != 0)
        return false;
    upgrade_phase_end(res, "analyze", t0);
    res->statistics_seconds = progress_now() - t0;

    upgrade_pause_before_proof(conninfo);
    t0 = progress_now();
    if (!upgrade_prove(res, conninfo, u->dbs, u->ndbs, u->snaps, u->o->sample_rows))
        return false;
    upgrade_phase_end(res, "proof", t0);
    return true;
}

static void pgu_free(pgu *u)
{
    cluster_install_free(&u->oldi);
    cluster_install_free(&u->newi);
    if (u->have_oldd)
        cluster_datadir_free(&u->oldd);
    free(u->new_dir);
    free(u->encoding);
    free(u->collate);
    free(u->ctype);
    free(u->provider);
    free(u->icu);
    for (int i = 0; u->snaps && i < u->ndbs; i++)
        proof_snapshot_free(&u->snaps[i]);
    free(u->snaps);
    for (int i = 0; u->dbs && i < u->ndbs; i++)
        free(u->dbs[i]);
    free(u->dbs);
}

/* Removes the new data directory again when this run created it and nothing was upgraded. */
static void undo_new(pgu *u)
{
    if (u->res->new_created && u->new_dir) {
        log_info("upgrade: removing %s (created by this run)", u->new_dir);
        proc_rmtree(u->new_dir);
        u->res->new_created = false;
    }
}

bool upgrade_run_pg_upgrade(const upgrade_options *o, upgrade_result *res)
{
    if (!upgrade_result_init(o, res))
        return false;
    pgu u = {.o = o, .res = res, .t_start = progress_now()};
    if (!upgrade_workdir(o, res)) {
        upgrade_fail(res, UPG_ST_REFUSED, "no work directory");
        return true;
    }

    /* 1. preflight: nothing is changed on either side (a created new data directory is removed) */
    double t0 = progress_now();
    bool ok = check_static(&u);
    if (ok)
        ok = preflight_old(&u);
    if (ok)
        check_pgvector_files(&u);
    if (ok && upgrade_checks_passed(res))
        ok = preflight_new(&u);
    upgrade_phase_end(res, "preflight", t0);
    if (!ok || !upgrade_checks_passed(res)) {
        undo_new(&u);
        upgrade_fail(res, UPG_ST_REFUSED, "the preflight failed: nothing was changed (see the failed checks)");
        goto out;
    }
    make_plan(&u);
    if (o->dry_run) {
        res->status = UPG_ST_DRY_RUN;
        goto out;
    }

    /* 2. keep the old cluster's client authentication rules */
    if (res->new_created)
        for (int i = 0; i < 2; i++) {
            const char *f = i == 0 ? "pg_hba.conf" : "pg_ident.conf";
            char *src = proc_path(u.oldd.datadir, f), *dst = proc_path(u.new_dir, f);
            if (src && dst && access(src, R_OK) == 0)
                cluster_copy_file(src, dst, &u.as);
            free(src);
            free(dst);
        }

    /* 3. pg_upgrade --check: against the running old cluster when pgmemctl is to stop it (pg_upgrade's
     * live check), so that it is not part of the downtime */
    bool checked = false;
    if (u.oldd.running) {
        t0 = progress_now();
        if (run_pg_upgrade_prog(&u, true, true) != 0) {
            undo_new(&u);
            upgrade_fail(res, UPG_ST_REFUSED,
                         "pg_upgrade --check failed: nothing was changed, the old cluster still runs (output in %s)",
                         res->work_dir);
            goto out;
        }
        upgrade_phase_end(res, "pg_upgrade_check", t0);
        checked = true;
    }

    /* 4. the old cluster down; the proof's snapshot when it was live during the preflight: on the
     * live cluster right before the stop, kept when no WAL was written between it and the shutdown
     * checkpoint, else taken again by a private start after the stop */
    double down0 = u.t_start;
    res->downtime_from = strdup("the start of the run (the old cluster was not running)");
    if (u.oldd.running) {
        char *lsn = NULL;
        t0 = progress_now();
        bool live = snapshot_live(&u, &lsn);
        if (live)
            upgrade_phase_end(res, "snapshot_live", t0);
        upgrade_pause("PGMEMCTL_UPGRADE_PAUSE_BEFORE_STOP", u.oldd.datadir);
        t0 = progress_now();
        if (!cluster_stop_external(&u.oldi, u.oldd.datadir, res->work_dir, &u.as)) {
            undo_new(&u);
            upgrade_fail(res, UPG_ST_FAILED, "could not stop the old cluster; nothing was changed");
            goto out;
        }
        down0 = progress_now();
        free(res->downtime_from);
        res->downtime_from = strdup("the old cluster stopped by pgmemctl");
        upgrade_phase_end(res, "stop_old", t0);
        if (live && !wal_unchanged(&u, lsn)) {
            for (int i = 0; i < u.ndbs; i++)
                proof_snapshot_free(&u.snaps[i]);
            free(u.snaps);
            u.snaps = NULL;
            u.have_snaps = false;
        }
        free(lsn);
    }
    if (!u.have_snaps) {
        t0 = progress_now();
        cluster_server s;
        bool snap_ok = cluster_start(&u.oldi, u.oldd.datadir, res->work_dir, "old", OLD_PORT, u.superuser, old_extra,
                                     &u.as, 3600, &s);
        if (snap_ok) {
            snap_ok = snapshot_old(&u, s.conninfo);
            if (!cluster_stop(&s))
                snap_ok = false;
        }
        if (!snap_ok) {
            undo_new(&u);
            add_rollback(&u, false);
            upgrade_fail(res, UPG_ST_FAILED, "could not take the old cluster's snapshot; nothing was changed");
            goto out;
        }
        upgrade_phase_end(res, "snapshot", t0);
    }


    /* 5. pg_upgrade --check (when not done live), then the real run */
    if (!checked) {
        t0 = progress_now();
        if (run_pg_upgrade_prog(&u, true, false) != 0) {
            undo_new(&u);
            add_rollback(&u, false);
            upgrade_fail(res, UPG_ST_REFUSED, "pg_upgrade --check failed: nothing was changed (output in %s)",
                         res->work_dir);
            goto out;
        }
        upgrade_phase_end(res, "pg_upgrade_check", t0);
    }
    t0 = progress_now();
    log_info("upgrade: pg_upgrade --%s running (output: %s/pg_upgrade.log)", upgrade_mode_name(o->mode),
             res->work_dir);
    if (run_pg_upgrade_prog(&u, false, false) != 0) {
        add_rollback(&u, o->mode == UPG_LINK);
        upgrade_fail(res, UPG_ST_FAILED, "pg_upgrade failed; the new data directory %s is left for inspection",
                     u.new_dir);
        goto out;
    }
    upgrade_phase_end(res, "pg_upgrade", t0);

    /* 6. the new cluster: extensions, statistics, proof */
    t0 = progress_now();
    cluster_server s;
    if (!cluster_start(&u.newi, u.new_dir, res->work_dir, "new", NEW_PORT, u.superuser, NULL, &u.as, 3600, &s)) {
        add_rollback(&u, false);
        upgrade_fail(res, UPG_ST_FAILED, "the upgraded cluster does not start (log in %s)", res->work_dir);
        goto out;
    }
    res->downtime_seconds = s.started - down0;
    res->downtime_until = strdup("the upgraded cluster accepted connections (pgmemctl's private start); the "
                                 "extension updates, the statistics (vacuumdb --analyze-in-stages) and the proof follow");
    upgrade_phase_end(res, "start_new", t0);
    bool post_ok = post_upgrade(&u, s.conninfo);
    t0 = progress_now();
    if (!cluster_stop(&s) && post_ok) {
        upgrade_fail(res, UPG_ST_FAILED, "the new cluster did not shut down cleanly");
        post_ok = false;
    }
    upgrade_phase_end(res, "stop_new", t0);
    if (post_ok) {
        if (proof_passed(&res->proof))
            res->status = UPG_ST_UPGRADED;
        else {
            proof_log_mismatches(&res->proof);
            upgrade_fail(res, UPG_ST_PROOF_FAILED, "upgraded, but the proof found %d difference(s)",
                         res->proof.nmismatches);
        }
    }
    add_rollback(&u, true);
out:
    if (res->status == UPG_ST_FAILED && !res->error)
        upgrade_fail(res, UPG_ST_FAILED, "stopped (out of memory)");
    res->total_seconds = progress_now() - u.t_start;
    pgu_free(&u);
    return true;
}

/* cluster.c — local PostgreSQL installations and data directories: probing, initdb, private
 * servers on a socket only pgmemctl can reach. */
#define _GNU_SOURCE /* strdup, realpath */
#include "cluster.h"
#include "log.h"
#include "pg.h"
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Environment variables a child must not inherit: they would redirect its connections or data
 * directory. */
static const char *const drop_env[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE", "PGOPTIONS",
                                       "PGDATA", "PGDATAOLD", "PGDATANEW", "PGBINOLD", "PGBINNEW", "PGPORTOLD",
                                       "PGPORTNEW", "PGSOCKETDIR", NULL};

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

proc_user cluster_run_as(uid_t uid, gid_t gid)
{
    proc_user u = {(uid_t) -1, (gid_t) -1};
    if (geteuid() == 0) {
        u.uid = uid;
        u.gid = gid;
    }
    return u;
}

/* Makes path owned by as's user (when we are root and it is another user). */
static bool give(const char *path, const proc_user *as)
{
    if (as && as->uid != (uid_t) -1 && chown(path, as->uid, as->gid) != 0) {
        log_error("could not give %s to uid %d: %s", path, (int) as->uid, strerror(errno));
        return false;
    }
    return true;
}

/* Runs argv as `as` with stdout+stderr into workdir/outname (truncated first) and returns the
 * output (newly allocated) in *text when text is not NULL. Returns the exit status or -1. */
static int run_capture(const char *const *argv, const char *workdir, const char *outname, const proc_user *as,
                       double timeout, char **text)
{
    char *out = proc_path(workdir, outname);
    if (!out)
        return -1;
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    int rc = proc_run_as(argv, NULL, drop_env, workdir, out, timeout, as);
    if (text) {
        *text = proc_read_file(out, NULL);
        if (!*text)
            *text = strdup("");
    }
    free(out);
    return rc;
}

/* The last n lines of text, for error messages (pointer into text). */
static const char *tail_lines(const char *text, int n)
{
    const char *p = text + strlen(text);
    while (p > text && (p[-1] == '\n'))
        p--;
    while (p > text) {
        if (p[-1] == '\n' && --n == 0)
            break;
        p--;
    }
    return p;
}

int cluster_run(const cluster_install *inst, const char *const *argv, const char *workdir, const char *logname,
                const proc_user *as, double timeout_seconds, char **text)
{
    int n = 0;
    while (argv[n])
        n++;
    const char **full = calloc((size_t) n + 1, sizeof *full);
    char *prog = proc_path(inst->bindir, argv[0]);
    int rc = -1;
    if (full && prog) {
        full[0] = prog;
        for (int i = 1; i < n; i++)
            full[i] = argv[i];
        rc = run_capture(full, workdir, logname, as, timeout_seconds, text);
    }
    free(full);
    free(prog);
    return rc;
}

const char *cluster_tail(const char *text, int n) { return tail_lines(text, n); }

/* ---- installations ------------------------------------------------------------------------- */

bool cluster_install_probe(const char *bindir, const char *workdir, const proc_user *as, cluster_install *out)
{
    memset(out, 0, sizeof *out);
    char real[PATH_MAX];
    if (!realpath(bindir, real)) {
        log_error("PostgreSQL bin directory %s: %s", bindir, strerror(errno));
        return false;
    }
    out->bindir = strdup(real);
    char *postgres = proc_path(real, "postgres");
    char *pg_config = proc_path(real, "pg_config");
    char *text = NULL;
    bool ok = false;
    if (!out->bindir || !postgres || !pg_config)
        goto done;
    if (access(postgres, X_OK) != 0) {
        log_error("%s has no postgres program: not a PostgreSQL bin directory", real);
        goto done;
    }
    const char *argv[] = {postgres, "-V", NULL};
    int rc = run_capture(argv, workdir, "postgres-version.out", as, 60, &text);
    /* "postgres (PostgreSQL) 17.11" or "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" */
    const char *v = text ? strstr(text, "(PostgreSQL) ") : NULL;
    if (rc != 0 || !v) {
        log_error("%s -V failed (exit status %d): %s", postgres, rc, text ? tail_lines(text, 3) : "");
        goto done;
    }
    v += strlen("(PostgreSQL) ");
    size_t len = strcspn(v, " \n");
    out->version = strndup(v, len);
    out->major = atoi(v);
    if (!out->version || out->major < 10) {
        log_error("%s: cannot read the version from \"%s\"", postgres, text);
        goto done;
    }
    if (access(pg_config, X_OK) == 0) {
        const char *a1[] = {pg_config, "--sharedir", NULL};
        const char *a2[] = {pg_config, "--pkglibdir", NULL};
        free(text);
        text = NULL;
        if (run_capture(a1, workdir, "pg_config.out", as, 60, &text) == 0) {
            chomp(text);
            out->sharedir = strdup(text);
        }
        free(text);
        text = NULL;
        if (run_capture(a2, workdir, "pg_config.out", as, 60, &text) == 0) {
            chomp(text);
            out->pkglibdir = strdup(text);
        }
    }
    ok = true;
done:
    free(text);
    free(postgres);
    free(pg_config);
    if (!ok)
        cluster_install_free(out);
    return ok;
}

void cluster_install_free(cluster_install *i)
{
    if (!i)
        return;
    free(i->bindir);
    free(i->version);
    free(i->sharedir);
    free(i->pkglibdir);
    memset(i, 0, sizeof *i);
}

/* ---- data directories ---------------------------------------------------------------------- */

/* The value after "key:" in pg_controldata output (newly allocated, trimmed) or NULL. */
static char *control_value(const char *text, const char *key)
{
    const char *p = text;
    size_t klen = strlen(key);
    while (p && *p) {
        if (!strncmp(p, key, klen) && p[klen] == ':') {
            const char *v = p + klen + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\n");
            char *s = strndup(v, len);
            if (s)
                chomp(s);
            return s;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

/* postmaster.pid: line 1 pid, line 4 port, line 5 first socket directory. */
static void read_pidfile(const char *datadir, cluster_datadir *d)
{
    char *path = proc_path(datadir, "postmaster.pid");
    char *text = path ? proc_read_file(path, NULL) : NULL;
    free(path);
    if (!text)
        return;
    char *save = NULL;
    int line = 1;
    long pid = 0;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
        if (line == 1)
            pid = atol(l);
        else if (line == 4)
            d->port = atoi(l);
        else if (line == 5 && *l)
            d->socket_dir = strdup(l);
    }
    free(text);
    if (pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM)) {
        d->running = true;
        d->pid = pid;
    } else {
        d->port = 0;
        free(d->socket_dir);
        d->socket_dir = NULL;
    }
}

bool cluster_datadir_inspect(const cluster_install *inst, const char *datadir, const char *workdir,
                             const proc_user *as, cluster_datadir *out)
{
    memset(out, 0, sizeof *out);
    char real[PATH_MAX];
    if (!realpath(datadir, real)) {
        log_error("data directory %s: %s", datadir, strerror(errno));
        return false;
    }
    out->datadir = strdup(real);
    struct stat st;
    if (!out->datadir || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_error("data directory %s is not a directory", real);
        cluster_datadir_free(out);
        return false;
    }
    out->uid = st.st_uid;
    out->gid = st.st_gid;
    struct passwd *pw = getpwuid(st.st_uid);
    char num[32];
    snprintf(num, sizeof num, "%d", (int) st.st_uid);
    out->owner = strdup(pw ? pw->pw_name : num);
    char *vpath = proc_path(real, "PG_VERSION");
    char *ver = vpath ? proc_read_file(vpath, NULL) : NULL;
    free(vpath);
    if (!ver) {
        log_error("%s has no PG_VERSION file: not a PostgreSQL data directory", real);
        cluster_datadir_free(out);
        return false;
    }
    out->major = atoi(ver);
    free(ver);
    read_pidfile(real, out);

    char *controldata = proc_path(inst->bindir, "pg_controldata");
    char *text = NULL;
    const char *argv[] = {controldata, "-D", real, NULL};
    proc_user who = as ? *as : cluster_run_as(st.st_uid, st.st_gid);
    int rc = controldata ? run_capture(argv, workdir, "pg_controldata.out", &who, 120, &text) : -1;
    free(controldata);
    bool ok = false;
    if (rc != 0 || !text) {
        log_error("pg_controldata -D %s failed (exit status %d): %s", real, rc, text ? tail_lines(text, 3) : "");
        goto done;
    }
    out->state = control_value(text, "Database cluster state");
    char *v = control_value(text, "Data page checksum version");
    out->checksum_version = v ? atoi(v) : 0;
    free(v);
    v = control_value(text, "Bytes per WAL segment");
    out->wal_segsize = v ? atoll(v) : 0;
    free(v);
    v = control_value(text, "Database block size");
    out->block_size = v ? atoll(v) : 0;
    free(v);
    out->system_id = control_value(text, "Database system identifier");
    out->checkpoint_redo = control_value(text, "Latest checkpoint's REDO location");
    if (!out->state) {
        log_error("pg_controldata -D %s printed no cluster state", real);
        goto done;
    }
    ok = true;
done:
    free(text);
    if (!ok)
        cluster_datadir_free(out);
    return ok;
}

void cluster_datadir_free(cluster_datadir *d)
{
    if (!d)
        return;
    free(d->datadir);
    free(d->owner);
    free(d->socket_dir);
    free(d->state);
    free(d->system_id);
    free(d->checkpoint_redo);
    memset(d, 0, sizeof *d);
}

static int64_t walk_bytes;
static bool walk_failed;
static char walk_wal[4096]; /* "DATADIR/pg_wal/": files below it are not counted */

/* POSIX nftw only (no GNU FTW_ACTIONRETVAL, which musl lacks): pg_wal is walked but not counted. */
static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) ftw;
    if (flag == FTW_NS || flag == FTW_DNR)
        walk_failed = true;
    if (flag == FTW_F && S_ISREG(st->st_mode) && strncmp(path, walk_wal, strlen(walk_wal)) != 0)
        walk_bytes += (int64_t) st->st_size;
    return 0;
}

int64_t cluster_data_bytes(const char *datadir)
{
    walk_bytes = 0;
    walk_failed = false;
    size_t n = strlen(datadir);
    while (n > 1 && datadir[n - 1] == '/')
        n--;
    snprintf(walk_wal, sizeof walk_wal, "%.*s/pg_wal/", (int) n, datadir);
    if (nftw(datadir, add_size, 32, FTW_PHYS) != 0 || walk_failed) {
        log_error("could not measure %s: %s", datadir, walk_failed ? "unreadable entries" : strerror(errno));
        return -1;
    }
    return walk_bytes;
}

int64_t cluster_free_bytes(const char *path, dev_t *dev)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    struct stat st;
    while (stat(p, &st) != 0) {
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) {
            strcpy(p, slash ? "/" : ".");
            break;
        }
        *slash = '\0';
    }
    struct statvfs vfs;
    int64_t r = -1;
    if (statvfs(p, &vfs) != 0 || stat(p, &st) != 0)
        log_error("could not read the free space of %s: %s", p, strerror(errno));
    else {
        r = (int64_t) vfs.f_bavail * (int64_t) vfs.f_frsize;
        if (dev)
            *dev = st.st_dev;
    }
    free(p);
    return r;
}

/* ---- initdb -------------------------------------------------------------------------------- */

bool cluster_initdb(const cluster_install *inst, const char *datadir, const cluster_initdb_opts *o,
                    const char *workdir, const proc_user *as)
{
    if (mkdir(datadir, 0700) != 0 && errno != EEXIST) {
        log_error("could not create %s: %s", datadir, strerror(errno));
        return false;
    }
    if (chmod(datadir, 0700) != 0 || !give(datadir, as)) {
        log_error("could not prepare %s: %s", datadir, strerror(errno));
        return false;
    }
    char *initdb = proc_path(inst->bindir, "initdb");
    char opt_e[128], opt_col[300], opt_ctype[300], opt_prov[64], opt_icu[300], opt_wal[64], opt_u[200];
    snprintf(opt_e, sizeof opt_e, "--encoding=%s", o->encoding ? o->encoding : "UTF8");
    snprintf(opt_col, sizeof opt_col, "--lc-collate=%s", o->lc_collate ? o->lc_collate : "C");
    snprintf(opt_ctype, sizeof opt_ctype, "--lc-ctype=%s", o->lc_ctype ? o->lc_ctype : "C");
    snprintf(opt_prov, sizeof opt_prov, "--locale-provider=%s", o->locale_provider ? o->locale_provider : "libc");
    snprintf(opt_icu, sizeof opt_icu, "--icu-locale=%s", o->icu_locale ? o->icu_locale : "");
    snprintf(opt_wal, sizeof opt_wal, "--wal-segsize=%lld", (long long) (o->wal_segsize / (1024 * 1024)));
    snprintf(opt_u, sizeof opt_u, "--username=%s", o->superuser ? o->superuser : "postgres");
    const char *argv[16];
    int n = 0;
    argv[n++] = initdb;
    argv[n++] = "-D";
    argv[n++] = datadir;
    argv[n++] = opt_e;
    argv[n++] = opt_col;
    argv[n++] = opt_ctype;
    argv[n++] = opt_prov;
    if (o->locale_provider && !strcmp(o->locale_provider, "icu") && o->icu_locale)
        argv[n++] = opt_icu;
    if (o->checksums)
        argv[n++] = "--data-checksums";
    if (o->wal_segsize > 0)
        argv[n++] = opt_wal;
    argv[n++] = opt_u;
    argv[n++] = "--auth-local=peer";
    argv[n++] = "--auth-host=scram-sha-256";
    argv[n++] = "--no-instructions";
    argv[n] = NULL;
    char *text = NULL;
    int rc = initdb ? run_capture(argv, workdir, "initdb.log", as, 1800, &text) : -1;
    free(initdb);
    if (rc != 0)
        log_error("initdb of %s failed (exit status %d): %s", datadir, rc, text ? tail_lines(text, 4) : "");
    free(text);
    return rc == 0;
}

bool cluster_copy_file(const char *src, const char *dst, const proc_user *as)
{
    size_t len;
    char *data = proc_read_file(src, &len);
    if (!data) {
        log_error("could not read %s: %s", src, strerror(errno));
        return false;
    }
    FILE *f = fopen(dst, "wb");
    bool ok = f && fwrite(data, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = false;
    free(data);
    if (!ok) {
        log_error("could not write %s: %s", dst, strerror(errno));
        return false;
    }
    return chmod(dst, 0600) == 0 && give(dst, as);
}

/* ---- private servers ----------------------------------------------------------------------- */

char *cluster_conninfo_value(const char *v)
{
    size_t len = strlen(v);
    char *s = malloc(2 * len + 3);
    if (!s)
        return NULL;
    char *p = s;
    *p++ = '\'';
    for (; *v; v++) {
        if (*v == '\'' || *v == '\\')
            *p++ = '\\';
        *p++ = *v;
    }
    *p++ = '\'';
    *p = '\0';
    return s;
}

static bool write_text(const char *path, const char *text, const proc_user *as)
{
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        log_error("could not write %s: %s", path, strerror(errno));
        return false;
    }
    return give(path, as);
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t) s, (long) ((s - (double) (time_t) s) * 1e9)};
    nanosleep(&ts, NULL);
}

bool cluster_start(const cluster_install *inst, const char *datadir, const char *workdir, const char *name, int port,
                   const char *superuser, const char *const *extra, const proc_user *as, double timeout_seconds,
                   cluster_server *out)
{
    memset(out, 0, sizeof *out);
    char sub[64], hbaname[64], logname[64], portopt[32];
    snprintf(sub, sizeof sub, "sock_%s", name);
    snprintf(hbaname, sizeof hbaname, "hba_%s.conf", name);
    snprintf(logname, sizeof logname, "%s-server.log", name);
    snprintf(portopt, sizeof portopt, "port=%d", port);
    char *sockdir = proc_path(workdir, sub), *hba = proc_path(workdir, hbaname), *postgres = proc_path(inst->bindir, "postgres");
    out->logfile = proc_path(workdir, logname);
    out->name = strdup(name);
    char *sockopt = NULL, *hbaopt = NULL, *qsock = NULL, *quser = NULL;
    bool ok = false;
    if (!sockdir || !hba || !postgres || !out->logfile || !out->name)
        goto done;
    if (strlen(sockdir) + 20 > 107) {
        log_error("the work directory's path is too long for a Unix socket (%s): use a shorter --work-dir", sockdir);
        goto done;
    }
    if ((mkdir(sockdir, 0700) != 0 && errno != EEXIST) || chmod(sockdir, 0700) != 0 || !give(sockdir, as)) {
        log_error("could not create the socket directory %s: %s", sockdir, strerror(errno));
        goto done;
    }
    if (!write_text(hba, "# pgmemctl's private server: only its own 0700 socket directory reaches it\n"
                         "local all all trust\n", as))
        goto done;
    size_t l1 = strlen(sockdir) + 32, l2 = strlen(hba) + 16;
    sockopt = malloc(l1);
    hbaopt = malloc(l2);
    if (!sockopt || !hbaopt)
        goto done;
    snprintf(sockopt, l1, "unix_socket_directories=%s", sockdir);
    snprintf(hbaopt, l2, "hba_file=%s", hba);
    const char *argv[64];
    int n = 0;
    argv[n++] = postgres;
    argv[n++] = "-D";
    argv[n++] = datadir;
    argv[n++] = "-c";
    argv[n++] = "listen_addresses=";
    argv[n++] = "-c";
    argv[n++] = sockopt;
    argv[n++] = "-c";
    argv[n++] = "unix_socket_permissions=0700";
    argv[n++] = "-c";
    argv[n++] = portopt;
    argv[n++] = "-c";
    argv[n++] = hbaopt;
    for (int i = 0; extra && extra[i] && n < 60; i++) {
        argv[n++] = "-c";
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    int fd = open(out->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    out->pid = proc_spawn_as(argv, NULL, drop_env, workdir, out->logfile, as);
    if (out->pid < 0) {
        out->pid = 0;
        goto done;
    }
    qsock = cluster_conninfo_value(sockdir);
    quser = cluster_conninfo_value(superuser ? superuser : "postgres");
    if (!qsock || !quser)
        goto done;
    size_t cl = strlen(qsock) + strlen(quser) + 64;
    out->conninfo = malloc(cl);
    if (!out->conninfo)
        goto done;
    snprintf(out->conninfo, cl, "host=%s port=%d user=%s dbname=postgres", qsock, port, quser);
    double t0 = progress_now(), said = t0;
    for (;;) {
        int status = 0;
        if (!proc_alive(out->pid, &status)) {
            char *log = proc_read_file(out->logfile, NULL);
            log_error("the %s server (%s) exited with status %d while starting: %s", name, datadir, status,
                      log ? tail_lines(log, 5) : "(no log)");
            free(log);
            out->pid = 0;
            goto done;
        }
        if (pg_ping(out->conninfo) == 1)
            break;
        double now = progress_now();
        if (now - t0 > timeout_seconds) {
            log_error("the %s server (%s) did not accept connections within %.0f s (log: %s)", name, datadir,
                      timeout_seconds, out->logfile);
            goto done;
        }
        if (now - said > 10) {
            log_info("upgrade: waiting for the %s server to start (%.0f s; log %s)", name, now - t0, out->logfile);
            said = now;
        }
        sleep_s(0.05);
    }
    out->started = progress_now();
    log_debug("upgrade: %s server started on %s (pid %d)", name, datadir, out->pid);
    ok = true;
done:
    free(sockdir);
    free(hba);
    free(postgres);
    free(sockopt);
    free(hbaopt);
    free(qsock);
    free(quser);
    if (!ok)
        cluster_stop(out);
    return ok;
}

bool cluster_stop(cluster_server *s)
{
    bool ok = true;
    if (s->pid > 0) {
        ok = proc_stop(s->pid, SIGINT, 600);
        if (!ok)
            log_error("the %s server did not shut down cleanly (log: %s)", s->name ? s->name : "?",
                      s->logfile ? s->logfile : "?");
    }
    free(s->conninfo);
    free(s->logfile);
    free(s->name);
    memset(s, 0, sizeof *s);
    return ok;
}

bool cluster_stop_external(const cluster_install *inst, const char *datadir, const char *workdir,
                           const proc_user *as)
{
    char *pg_ctl = proc_path(inst->bindir, "pg_ctl");
    const char *argv[] = {pg_ctl, "stop", "-D", datadir, "-m", "fast", "-w", "-t", "600", NULL};
    char *text = NULL;
    int rc = pg_ctl ? run_capture(argv, workdir, "pg_ctl-stop.out", as, 700, &text) : -1;
    if (rc != 0)
        log_error("pg_ctl stop -D %s failed (exit status %d): %s", datadir, rc, text ? tail_lines(text, 3) : "");
    free(text);
    free(pg_ctl);
    return rc == 0;
}

/* cluster.h — a local PostgreSQL installation and data directory seen from outside the server:
 * the installation's version and directories, the data directory's owner, control data and
 * whether a server runs on it; initdb; and private servers — started by pgmemctl for its own work
 * with no TCP listener and a Unix socket in a 0700 directory, so no client but pgmemctl (and
 * root) can reach them. Programs run as the data directory's owner when pgmemctl runs as root
 * (PostgreSQL refuses to run as root). Used by `pgmemctl upgrade --method pg_upgrade`. */
#ifndef PGMEMCTL_CLUSTER_H
#define PGMEMCTL_CLUSTER_H

#include "proc.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* An installation: the directory holding postgres, initdb, pg_ctl, pg_upgrade, pg_config… */
typedef struct {
    char *bindir;    /* absolute, symlinks resolved */
    char *version;   /* "17.11", from `postgres -V` */
    int major;       /* 17 (10 and later: the first number) */
    char *sharedir;  /* `pg_config --sharedir`, e.g. /usr/share/postgresql/17 (NULL: no pg_config) */
    char *pkglibdir; /* `pg_config --pkglibdir` (NULL: no pg_config) */
} cluster_install;

/* Probes bindir: runs its postgres -V and pg_config (as `as`, output captured in files under
 * workdir). Returns false with a logged error naming the directory when bindir has no runnable
 * postgres or its version cannot be read; a missing pg_config is not an error (sharedir and
 * pkglibdir stay NULL). Release with cluster_install_free. */
bool cluster_install_probe(const char *bindir, const char *workdir, const proc_user *as, cluster_install *out);
void cluster_install_free(cluster_install *i);

/* A data directory as read from its files and pg_controldata. */
typedef struct {
    char *datadir;         /* absolute, symlinks resolved */
    int major;             /* from PG_VERSION */
    uid_t uid;             /* owner */
    gid_t gid;
    char *owner;           /* the owner's user name (or its number as text) */
    bool running;          /* postmaster.pid names a live process */
    long pid;              /* that process, 0 when not running */
    char *socket_dir;      /* from postmaster.pid when running (first directory), else NULL */
    int port;              /* from postmaster.pid when running, else 0 */
    char *state;           /* "Database cluster state", e.g. "shut down", "in production" */
    int checksum_version;  /* "Data page checksum version": 0 = data checksums off */
    int64_t wal_segsize;   /* "Bytes per WAL segment" */
    int64_t block_size;    /* "Database block size" */
    char *system_id;       /* "Database system identifier" */
    char *checkpoint_redo; /* "Latest checkpoint's REDO location", e.g. "0/1A2B3C8"; NULL when not printed */
} cluster_datadir;

/* Reads datadir: PG_VERSION, the owner, postmaster.pid and `pg_controldata` of inst (run as
 * `as`; workdir holds its output). Returns false with a logged error (naming the directory and
 * what is missing) when it is not a PostgreSQL data directory or cannot be read. Release with
 * cluster_datadir_free. */
bool cluster_datadir_inspect(const cluster_install *inst, const char *datadir, const char *workdir,
                             const proc_user *as, cluster_datadir *out);
void cluster_datadir_free(cluster_datadir *d);

/* The user children run as for a data directory owned by uid/gid: that user when we are root,
 * else "as we are" (uid -1). */
proc_user cluster_run_as(uid_t uid, gid_t gid);

/* Bytes of regular files under datadir, without pg_wal (what pg_upgrade's copy mode writes
 * again); -1 when the walk fails (logged). */
int64_t cluster_data_bytes(const char *datadir);

/* Free bytes for an unprivileged user on the file system holding path (or, when path does not
 * exist, its nearest existing ancestor); -1 on error (logged). *dev (may be NULL) gets the file
 * system's device number, to tell whether two paths share one (link and clone modes need it). */
int64_t cluster_free_bytes(const char *path, dev_t *dev);

/* initdb settings copied from the old cluster. */
typedef struct {
    const char *encoding;        /* "UTF8" */
    const char *lc_collate;      /* template0's datcollate */
    const char *lc_ctype;        /* template0's datctype */
    const char *locale_provider; /* "libc" or "icu" (NULL: libc) */
    const char *icu_locale;      /* with icu: the ICU locale */
    bool checksums;              /* -k */
    int64_t wal_segsize;         /* bytes; 0 = initdb's default */
    const char *superuser;       /* -U: the old cluster's bootstrap superuser */
} cluster_initdb_opts;

/* Creates datadir (mode 0700, owned by as's user; an existing empty directory is used) and runs
 * inst's initdb there with o, --auth-local=peer --auth-host=scram-sha-256 (copy the old
 * pg_hba.conf afterwards to keep its rules). initdb's output goes to workdir/initdb.log; on
 * failure its last lines are logged and false is returned (the caller removes datadir). */
bool cluster_initdb(const cluster_install *inst, const char *datadir, const cluster_initdb_opts *o,
                    const char *workdir, const proc_user *as);

/* Copies file src to dst (created with mode 0600, owned by as's user when we are root).
 * Returns false (logged) on error. */
bool cluster_copy_file(const char *src, const char *dst, const proc_user *as);

/* A private server started by cluster_start. */
typedef struct {
    int pid;          /* the postmaster, our child */
    char *conninfo;   /* "host=SOCKDIR port=PORT user=SUPERUSER dbname=postgres" (no password needed:
                         the server's hba_file is pgmemctl's own, trusting its private socket) */
    char *logfile;    /* the server's log (stderr) */
    char *name;       /* "old" / "new", for messages */
    double started;   /* progress_now() when it first accepted connections */
} cluster_server;

/* Starts inst's postgres on datadir as `as`, with listen_addresses '' , its Unix socket in
 * workdir/sock_NAME (created 0700, owned by as's user), port `port` (only names the socket),
 * hba_file workdir/hba_NAME.conf (written: "local all all trust"), and each of the extra
 * "name=value" settings (NULL-terminated, may be NULL) as -c options. The server log goes to
 * workdir/NAME-server.log. Waits until it accepts connections (at most timeout_seconds; crash
 * recovery may run first) and fills *out. Returns false (logged, with the log's last lines)
 * when it exits or does not come up in time (then it is stopped). */
bool cluster_start(const cluster_install *inst, const char *datadir, const char *workdir, const char *name, int port,
                   const char *superuser, const char *const *extra, const proc_user *as, double timeout_seconds,
                   cluster_server *out);

/* Fast shutdown (SIGINT) of a server from cluster_start, waiting for it to exit (up to 10 min,
 * then SIGKILL and false). Frees *s's strings; safe to call on a zeroed or stopped struct. */
bool cluster_stop(cluster_server *s);

/* Stops a server this process did not start (the old cluster, running under the operator's
 * service manager or pg_ctl): `pg_ctl stop -m fast -w` on datadir as `as`. Returns false (logged)
 * when it fails. */
bool cluster_stop_external(const cluster_install *inst, const char *datadir, const char *workdir,
                           const proc_user *as);

/* Runs the program argv[0] of inst's bin directory with argv[1..] (NULL-terminated) as `as`, in
 * workdir, stdout and stderr into workdir/logname (truncated first), without the PG* variables that
 * would redirect it (PGHOST, PGPORT, PGDATA, …; PGPASSWORD and PGPASSFILE stay). When text is not
 * NULL it gets the output (newly allocated, never NULL). Returns the exit status (-1: could not
 * start, logged). */
int cluster_run(const cluster_install *inst, const char *const *argv, const char *workdir, const char *logname,
                const proc_user *as, double timeout_seconds, char **text);

/* The last n lines of text (a pointer into text), for error messages. */
const char *cluster_tail(const char *text, int n);

/* Quotes a libpq keyword value ('…' with \ and ' escaped); newly allocated. */
char *cluster_conninfo_value(const char *v);

#endif

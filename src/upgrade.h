/* upgrade.h — `pgmemctl upgrade`: a PostgreSQL major-version upgrade of a pgvector database, by
 * pg_upgrade on the same host (upgrade_pg.c), by dump and restore between two servers
 * (upgrade_dump.c) or by logical replication between two servers (upgrade_logical.c), each with a preflight that runs before anything is touched and a proof
 * afterwards (upgrade_proof.h). Both fill an upgrade_result; upgrade_render.c turns it into the
 * JSON document and the rollback steps. The jobs and the restore's index-build settings, when the
 * options leave them out, come from upgrade_tuning.h. */
#ifndef PGMEMCTL_UPGRADE_H
#define PGMEMCTL_UPGRADE_H

#include "upgrade_compat.h"
#include "upgrade_proof.h"
#include "upgrade_tuning.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { UPG_PG_UPGRADE, UPG_DUMP, UPG_LOGICAL } upgrade_method;
typedef enum { UPG_LINK, UPG_COPY, UPG_CLONE } upgrade_mode;

typedef struct {
    upgrade_method method;
    const char *preset;        /* the command's name when run as a preset, e.g. "upgrade-pg16-to-pg17" */
    int from_version;          /* required major version of the old side (0: any) */
    int to_version;            /* required major version of the new side (0: any) */
    /* --method pg_upgrade */
    const char *old_bindir, *new_bindir, *old_datadir, *new_datadir;
    upgrade_mode mode;
    bool stop_old;             /* stop a running old cluster (pg_ctl stop -m fast) after the preflight */
    const char *username;      /* the clusters' bootstrap superuser (NULL: the old data directory's owner) */
    const char *old_conninfo;  /* how to reach the running old cluster for the preflight (NULL: its socket
                                  from postmaster.pid, as the data directory's owner) */
    /* --method dump and --method logical */
    const char *from, *to;     /* conninfos of the source and target servers */
    const char *tools_bindir;  /* the new version's pg_dump, pg_dumpall, pg_restore (NULL: found) */
    const char *maintenance_work_mem; /* for pg_restore's sessions, e.g. "1GB" (NULL: the default of
                                         upgrade_tune_restore); HNSW builds are much faster when the
                                         graph fits in it; the logical method's index builds too */
    int maintenance_workers;   /* max_parallel_maintenance_workers of pg_restore's sessions (-1: the default
                                  of upgrade_tune_restore) */
    /* --method logical */
    const char *publisher_conninfo; /* how the new server reaches the old one, keyword/value form without
                                       dbname (NULL: the parameters of pgmemctl's connection to --from) */
    bool abort_run;            /* --abort: undo an interrupted run recorded in the work directory */
    /* all */
    int jobs;                  /* pg_upgrade --jobs, pg_dump/pg_restore -j, the logical method's index build
                                  workers + 1 (>= 1; 0: the default of upgrade_tune_jobs) */
    int sample_rows;           /* rows per vector column in the proof's checksum */
    const char *work_dir;      /* logs, dumps, sockets (NULL: a new /tmp/pgmemctl-upgrade-XXXXXX) */
    bool dry_run;              /* preflight and plan only */
} upgrade_options;

/* One preflight check. */
typedef struct {
    char *name;    /* e.g. "old_version", "pgvector_installed", "encoding", "options_accepted" */
    bool passed;
    char *detail;  /* what was found, and on failure what to do */
} upgrade_check;

/* One timed phase. */
typedef struct {
    char *name;    /* "preflight", "stop_old", "snapshot", "pg_upgrade_check", "pg_upgrade", "start_new",
                      "extensions", "analyze", "proof", "roles", "dump", "restore" … */
    double seconds;
} upgrade_phase;

/* An extension updated after the upgrade. */
typedef struct {
    char *db, *name, *from, *to;
} upgrade_ext_update;

typedef enum {
    UPG_ST_UPGRADED,     /* done and proven */
    UPG_ST_DRY_RUN,      /* preflight passed, plan printed, nothing done */
    UPG_ST_REFUSED,      /* the preflight failed: nothing was touched (exit 2) */
    UPG_ST_FAILED,       /* a step failed after the preflight (exit 1) */
    UPG_ST_PROOF_FAILED, /* upgraded, but the proof found differences (exit 1) */
    UPG_ST_ABORTED,      /* logical: --abort undid an interrupted run (exit 0) */
} upgrade_status;

typedef struct {
    upgrade_status status;
    char *error;               /* the reason for REFUSED/FAILED/PROOF_FAILED */
    char *old_version, *new_version; /* "15.18", "17.11" */
    int old_major, new_major;
    char *old_where, *new_where;     /* data directories, or password-free conninfos */
    upgrade_check *checks;
    int nchecks, checks_cap;
    compat_list compat_items;  /* what the old side uses (preflight); compat's problems point into it */
    compat_result compat;      /* what the new server rejects (preflight) */
    bool compat_ran;
    char **plan;               /* the steps, in order (printed by --dry-run, kept in the JSON) */
    int nplan, plan_cap;
    upgrade_phase *phases;
    int nphases, phases_cap;
    double total_seconds;
    double downtime_seconds;   /* < 0: not reached; ends when the new side accepts connections, before
                                  the statistics */
    char *downtime_from;       /* what the downtime is measured from */
    char *downtime_until;      /* what ends it */
    double statistics_seconds; /* ANALYZE / vacuumdb --analyze-in-stages after the downtime (< 0: not run) */
    int jobs;                  /* the effective jobs (upgrade_tune_jobs) */
    upgrade_setting settings[3]; /* the effective jobs, maintenance_work_mem, max_parallel_maintenance_workers */
    int nsettings;
    char **databases;          /* databases upgraded (old side's, without templates) */
    int ndatabases;
    char *vector_before;       /* extversion of vector before / after (the first database having it) */
    char *vector_after;
    upgrade_ext_update *updates;
    int nupdates, updates_cap;
    proof_result proof;
    bool proof_ran;
    char **rollback;           /* what to do to go back, one step per line */
    int nrollback, rollback_cap;
    char *work_dir;
    bool new_created;          /* pg_upgrade: pgmemctl created the new data directory */
    cJSON *details;            /* method-specific object rendered under the method's name ("logical"),
                                  NULL when none; owned by res */
} upgrade_result;

/* Runs the pg_upgrade method with o, filling *res (always initialised; free with
 * upgrade_result_free). Returns false only when it could not even start (out of memory); every
 * other outcome is in res->status. */
bool upgrade_run_pg_upgrade(const upgrade_options *o, upgrade_result *res);

/* Runs the dump method (o->from → o->to), likewise. */
bool upgrade_run_dump(const upgrade_options *o, upgrade_result *res);

/* Runs the logical method (o->from → o->to by publication and subscription), or with o->abort_run
 * undoes an interrupted one (upgrade_logical.h), likewise. */
bool upgrade_run_logical(const upgrade_options *o, upgrade_result *res);

void upgrade_result_free(upgrade_result *res);

/* ---- shared by the two methods (upgrade_common.c) --------------------------------------------- */

/* Zeroes *res, then: downtime and statistics not reached, status UPG_ST_FAILED until a run says
 * otherwise, res->jobs and settings[0] from upgrade_tune_jobs(o->jobs). Returns false when out of
 * memory (res is still freed with upgrade_result_free). */
bool upgrade_result_init(const upgrade_options *o, upgrade_result *res);
/* Moves *s into res->settings (s is zeroed); frees it when the array is full. */
void upgrade_setting_add(upgrade_result *res, upgrade_setting *s);

/* Adds a preflight check; detail is printf-formatted. Logs a failing check as an error and a
 * passing one at info level ("preflight: NAME: detail"). */
void upgrade_check_add(upgrade_result *res, const char *name, bool passed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* True when every check so far passed and compat found no problem. */
bool upgrade_checks_passed(const upgrade_result *res);
/* Appends a plan step / rollback step (printf-formatted). */
void upgrade_plan_add(upgrade_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void upgrade_rollback_add(upgrade_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records a phase that started at t0 (progress_now()) and ends now; logs "upgrade: NAME done in X s". */
void upgrade_phase_end(upgrade_result *res, const char *name, double t0);
/* Sets res->status and res->error (printf-formatted), logging the error. */
void upgrade_fail(upgrade_result *res, upgrade_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records an extension update. */
void upgrade_update_add(upgrade_result *res, const char *db, const char *name, const char *from, const char *to);

/* The work directory: o->work_dir (created if missing) or a new /tmp/pgmemctl-upgrade-XXXXXX; mode
 * 0700. Sets res->work_dir. Returns false (logged) on error. */
bool upgrade_workdir(const upgrade_options *o, upgrade_result *res);

/* Every database of the server c is connected to that can be connected to, except template0 and
 * template1, sorted by name. Returns the count (array in *out, free each and the array) or -1. */
int upgrade_list_databases(pg_conn *c, char ***out);

/* In the database c is connected to: ALTER EXTENSION … UPDATE for every installed extension whose
 * version differs from the server's default version, recorded in res (db names the database); then,
 * while res->vector_after is unset, it becomes this database's vector extversion (if installed).
 * Returns false (logged) on error. */
bool upgrade_update_extensions(pg_conn *c, const char *db, upgrade_result *res);

/* Collects with compat_collect from every database in dbs, reached with conninfo (and the database
 * name); records the vector extversion of the first database that has it in res->vector_before.
 * Returns false (logged) when a database cannot be read. */
bool upgrade_collect_old(const char *conninfo, char **dbs, int ndbs, compat_list *out, upgrade_result *res);

/* The old_version and new_version checks, from res->old_version/new_version and the majors, against
 * o->from_version/to_version: old_what/new_what name the sides in the detail ("--old-bindir DIR",
 * "the source"). */
void upgrade_check_versions(upgrade_result *res, const upgrade_options *o, const char *old_what,
                            const char *new_what);

/* The proof on the new side reached with conninfo: proof_check_db for each of the ndbs databases
 * against its snapshot (a database that cannot be connected to is a "database_missing" mismatch),
 * proof_check_server on the first. Sets res->proof_ran. Returns false (res failed, logged) when the
 * proof could not run. */
bool upgrade_prove(upgrade_result *res, const char *conninfo, char **dbs, int ndbs, const proof_snapshot *snaps,
                   int sample_rows);

/* Probes l on the server reached with conninfo (its maintenance database), adds the
 * "options_accepted" and extension checks to res from the outcome. Returns false only when the
 * probe could not run (logged). */
bool upgrade_probe_new(const char *conninfo, const compat_list *l, compat_ext_rule rule, upgrade_result *res);

/* Fault injection for tests of the proof: when $PGMEMCTL_UPGRADE_PAUSE_BEFORE_PROOF names a file,
 * writes conninfo (how to reach the new side; the password, if any, is not in it) into that file and
 * waits until the file is removed (at most 10 minutes), so a test can change the new side first.
 * A no-op otherwise. */
void upgrade_pause_before_proof(const char *conninfo);
/* The same for any point of a run: when $env_name names a file, writes info into it and waits
 * (at most 10 minutes) until it is removed. PGMEMCTL_UPGRADE_PAUSE_BEFORE_STOP: the pg_upgrade
 * method, right before it stops the running old cluster (after the live snapshot); info is the old
 * data directory. */
void upgrade_pause(const char *env_name, const char *info);

/* The JSON document of a run (o for the method and inputs). Caller owns it. */
cJSON *upgrade_render(const upgrade_options *o, const upgrade_result *res);
/* Prints the plan (for --dry-run) and the rollback steps to stderr (info level). */
void upgrade_print_steps(const upgrade_result *res);

/* Fault injection for tests of interruptions: when $PGMEMCTL_UPGRADE_PAUSE_AT equals point and
 * $PGMEMCTL_UPGRADE_PAUSE_FILE names a file, writes this process's pid and conninfo (one per line)
 * into that file and waits until it is removed (at most 10 minutes), so a test can kill the run
 * or change a side there. A no-op otherwise. */
void upgrade_pause_at(const char *point, const char *conninfo);

/* "pg_upgrade", "dump", "logical"; "link", "copy", "clone". */
const char *upgrade_method_name(upgrade_method m);
const char *upgrade_mode_name(upgrade_mode m);
const char *upgrade_status_name(upgrade_status s);

#endif

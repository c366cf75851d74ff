/* upgrade_tuning.h — the settings an upgrade's restore runs with, when the options do not give
 * them: the parallel jobs (the CPU count, capped), and for the target's index builds
 * maintenance_work_mem (1GB, capped by the target's memory) and max_parallel_maintenance_workers
 * (the CPUs beside the leader). Each value is recorded with where it came from, for the JSON
 * document. The rules are documented in pgmemctl-upgrade(1), "Restore settings". */
#ifndef PGMEMCTL_UPGRADE_TUNING_H
#define PGMEMCTL_UPGRADE_TUNING_H

#include "pg.h"

#include <stdbool.h>
#include <stdint.h>

/* The cap of the default --jobs: pg_restore gains little past 8 sessions (a memory store is a few
 * large tables and their indexes, each restored by one session), and every session may hold
 * maintenance_work_mem at once. */
#define UPGRADE_JOBS_CAP 8
/* The default maintenance_work_mem of the restore's index builds before the memory cap. */
#define UPGRADE_MWM_DEFAULT (INT64_C(1) << 30)
/* The part of the target's memory the restore's index builds may take together (1/4). */
#define UPGRADE_MWM_MEMORY_DIVISOR 4
/* max_parallel_maintenance_workers is at most this (PostgreSQL's own maximum is 1024). */
#define UPGRADE_WORKERS_CAP 7

/* One effective setting and its origin. */
typedef struct {
    char *name;    /* "jobs", "maintenance_work_mem", "max_parallel_maintenance_workers" */
    char *value;   /* as passed on: "4", "1024MB", "1" */
    char *source;  /* "option" (a flag, the environment or the config file), "default" (pgmemctl's
                      rule) or "target" (the target server's own setting, kept) */
    char *rule;    /* how the value was reached, e.g. "the CPU count (2), at most 8" */
} upgrade_setting;

/* The CPUs this process may run on (sched_getaffinity; sysconf(_SC_NPROCESSORS_ONLN) when that
 * fails); at least 1. */
int upgrade_cpu_count(void);

/* The jobs of a run: given > 0 (--jobs) is kept, source "option"; 0 means the default, the CPU
 * count capped at UPGRADE_JOBS_CAP. Fills *out (free with upgrade_setting_free) and returns the
 * value; returns 0 only when out of memory. */
int upgrade_tune_jobs(int given, upgrade_setting *out);

/* What the restore's sessions on the target run with (passed to pg_restore through PGOPTIONS). */
typedef struct {
    char *mwm;               /* maintenance_work_mem as a setting value: "1GB", "256MB", or as given ("1GB") */
    int workers;             /* max_parallel_maintenance_workers */
    upgrade_setting mwm_setting, workers_setting;
} upgrade_restore_tuning;

/* Computes the restore's settings on the target that c is connected to. mwm_given (a size text,
 * e.g. "1GB", or NULL) and workers_given (>= 0, or -1 for none) come from the options and are kept
 * as they are. Otherwise:
 *   maintenance_work_mem = min(1GB, memory / 4 / jobs), rounded down to a MB, where memory is the
 *     host's MemTotal (/proc/meminfo) when the target is on this host (reached through a Unix
 *     socket or a loopback address: inet_server_addr() is NULL or a loopback), else 4 times the
 *     target's shared_buffers (the usual quarter of its RAM); never below the target's own
 *     maintenance_work_mem, which is then kept (source "target");
 *   max_parallel_maintenance_workers = min(cpus - 1, UPGRADE_WORKERS_CAP, the target's
 *     max_parallel_workers) with cpus from upgrade_cpu_count(): the leader and its workers use
 *     every CPU.
 * Fills *out (free with upgrade_restore_tuning_free). Returns false (logged) when the target's
 * settings cannot be read or out of memory. */
bool upgrade_tune_restore(pg_conn *c, int jobs, const char *mwm_given, int workers_given,
                          upgrade_restore_tuning *out);

/* PGOPTIONS for pg_restore: "-c maintenance_work_mem=V -c max_parallel_maintenance_workers=N".
 * Newly allocated; NULL when out of memory. */
char *upgrade_restore_pgoptions(const upgrade_restore_tuning *t);

void upgrade_setting_free(upgrade_setting *s);
void upgrade_restore_tuning_free(upgrade_restore_tuning *t);

#endif

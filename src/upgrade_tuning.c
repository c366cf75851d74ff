/* upgrade_tuning.c — the restore's jobs, maintenance_work_mem and parallel maintenance workers:
 * the options' values, or pgmemctl's defaults from the CPU count and the target's memory. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT, asprintf */
#include "upgrade_tuning.h"

#include "log.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int upgrade_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int) n : 1;
}

static bool setting_set(upgrade_setting *s, const char *name, const char *source, char *value, char *rule)
{
    s->name = strdup(name);
    s->source = strdup(source);
    s->value = value;
    s->rule = rule;
    return s->name && s->source && s->value && s->rule;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

int upgrade_tune_jobs(int given, upgrade_setting *out)
{
    memset(out, 0, sizeof *out);
    int cpus = upgrade_cpu_count();
    int jobs = given > 0 ? given : cpus < UPGRADE_JOBS_CAP ? cpus : UPGRADE_JOBS_CAP;
    bool ok = given > 0 ? setting_set(out, "jobs", "option", fmt("%d", jobs), fmt("--jobs %d", jobs))
                        : setting_set(out, "jobs", "default", fmt("%d", jobs),
                                      fmt("the CPU count (%d), at most %d", cpus, UPGRADE_JOBS_CAP));
    return ok ? jobs : 0;
}

/* MemTotal of /proc/meminfo in bytes, 0 when unknown. */
static int64_t host_memory(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[256];
    long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb > 0 ? (int64_t) kb * 1024 : 0;
}

/* The target's facts the rules need, in one query: whether it is on this host (a Unix socket or a
 * loopback address), shared_buffers, maintenance_work_mem (bytes) and max_parallel_workers. */
static const char TARGET_SQL[] =
    "SELECT coalesce(host(inet_server_addr()) IN ('127.0.0.1', '::1'), true), "
    "       pg_size_bytes(current_setting('shared_buffers')), "
    "       pg_size_bytes(current_setting('maintenance_work_mem')), "
    "       current_setting('max_parallel_workers')::int";

bool upgrade_tune_restore(pg_conn *c, int jobs, const char *mwm_given, int workers_given,
                          upgrade_restore_tuning *out)
{
    memset(out, 0, sizeof *out);
    pg_result *r = pg_exec(c, TARGET_SQL, 0, NULL);
    if (!r || pg_ntuples(r) != 1) {
        log_error("upgrade: reading the target's memory settings: %s", pg_errmsg(c));
        pg_clear(r);
        return false;
    }
    bool local = !strcmp(pg_value(r, 0, 0), "t");
    int64_t shared = atoll(pg_value(r, 0, 1)), own_mwm = atoll(pg_value(r, 0, 2));
    int max_parallel = atoi(pg_value(r, 0, 3));
    pg_clear(r);
    if (jobs < 1)
        jobs = 1;
    bool ok;
    if (mwm_given) {
        out->mwm = strdup(mwm_given);
        ok = setting_set(&out->mwm_setting, "maintenance_work_mem", "option", strdup(mwm_given),
                         fmt("--maintenance-work-mem %s", mwm_given));
    } else {
        int64_t hostmem = local ? host_memory() : 0;
        int64_t memory = hostmem > 0 ? hostmem : 4 * shared;
        char *whence = hostmem > 0 ? fmt("the target's host memory (MemTotal %lld MB: the target is on this host)",
                                         (long long) (hostmem >> 20))
                                   : fmt("4 x the target's shared_buffers (%lld MB), its memory when it uses "
                                         "the usual quarter",
                                         (long long) (shared >> 20));
        int64_t cap = memory / UPGRADE_MWM_MEMORY_DIVISOR / jobs;
        int64_t mwm = cap < UPGRADE_MWM_DEFAULT ? cap : UPGRADE_MWM_DEFAULT;
        mwm &= ~((INT64_C(1) << 20) - 1); /* whole MB */
        char *rule;
        const char *source = "default";
        if (mwm <= own_mwm) {
            mwm = own_mwm;
            source = "target";
            rule = fmt("the target's own maintenance_work_mem: the default, min(1GB, %s / %d / %d jobs), is not "
                       "above it",
                       whence ? whence : "memory", UPGRADE_MWM_MEMORY_DIVISOR, jobs);
        } else
            rule = fmt("min(1GB, %s / %d / %d jobs)", whence ? whence : "memory", UPGRADE_MWM_MEMORY_DIVISOR, jobs);
        free(whence);
        out->mwm = mwm % (INT64_C(1) << 30) == 0   ? fmt("%lldGB", (long long) (mwm >> 30))
                   : mwm % (INT64_C(1) << 20) == 0 ? fmt("%lldMB", (long long) (mwm >> 20))
                                                   : fmt("%lldkB", (long long) (mwm >> 10));
        ok = setting_set(&out->mwm_setting, "maintenance_work_mem", source, out->mwm ? strdup(out->mwm) : NULL,
                         rule);
    }
    if (workers_given >= 0) {
        out->workers = workers_given;
        ok = setting_set(&out->workers_setting, "max_parallel_maintenance_workers", "option",
                         fmt("%d", workers_given), fmt("--maintenance-workers %d", workers_given)) &&
             ok;
    } else {
        int cpus = upgrade_cpu_count();
        int w = cpus - 1;
        if (w > UPGRADE_WORKERS_CAP)
            w = UPGRADE_WORKERS_CAP;
        if (w > max_parallel)
            w = max_parallel;
        out->workers = w;
        ok = setting_set(&out->workers_setting, "max_parallel_maintenance_workers", "default", fmt("%d", w),
                         fmt("min(CPU count %d - 1 for the leader, %d, the target's max_parallel_workers %d)", cpus,
                             UPGRADE_WORKERS_CAP, max_parallel)) &&
             ok;
    }
    if (!ok || !out->mwm) {
        log_error("upgrade: out of memory");
        upgrade_restore_tuning_free(out);
        return false;
    }
    return true;
}

char *upgrade_restore_pgoptions(const upgrade_restore_tuning *t)
{
    return fmt("-c maintenance_work_mem=%s -c max_parallel_maintenance_workers=%d", t->mwm, t->workers);
}

void upgrade_setting_free(upgrade_setting *s)
{
    free(s->name);
    free(s->value);
    free(s->source);
    free(s->rule);
    memset(s, 0, sizeof *s);
}

void upgrade_restore_tuning_free(upgrade_restore_tuning *t)
{
    free(t->mwm);
    upgrade_setting_free(&t->mwm_setting);
    upgrade_setting_free(&t->workers_setting);
    memset(t, 0, sizeof *t);
}

/* test_upgrade_tuning.c — unit tests for the upgrade's default jobs (upgrade_tuning.c): the CPU
 * count capped at 8 when --jobs is not given, the given value kept otherwise, each with its source
 * and rule. The restore's memory settings need a target server: test_upgrade_pg16.c. */
#define _GNU_SOURCE /* CPU_COUNT */
#include <criterion/criterion.h>

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "upgrade_tuning.h"

TestSuite(upgrade_tuning, .fini = tu_leak_check);

Test(upgrade_tuning, cpu_count_is_the_affinity_mask)
{
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    cr_assert_eq(upgrade_cpu_count(), CPU_COUNT(&set));
    cr_assert_geq(upgrade_cpu_count(), 1);
}

Test(upgrade_tuning, jobs_default_to_the_cpu_count_capped_at_8)
{
    upgrade_setting s;
    int cpus = upgrade_cpu_count();
    int want = cpus < UPGRADE_JOBS_CAP ? cpus : UPGRADE_JOBS_CAP;
    cr_assert_eq(upgrade_tune_jobs(0, &s), want);
    cr_assert_str_eq(s.name, "jobs");
    cr_assert_str_eq(s.source, "default");
    cr_assert_eq(atoi(s.value), want);
    char *rule = tu_printf("the CPU count (%d), at most 8", cpus);
    cr_assert_str_eq(s.rule, rule);
    free(rule);
    upgrade_setting_free(&s);
    cr_assert_null(s.name);
}

Test(upgrade_tuning, given_jobs_are_kept_even_above_the_cap)
{
    upgrade_setting s;
    cr_assert_eq(upgrade_tune_jobs(12, &s), 12);
    cr_assert_str_eq(s.source, "option");
    cr_assert_str_eq(s.value, "12");
    cr_assert_str_eq(s.rule, "--jobs 12");
    upgrade_setting_free(&s);
}

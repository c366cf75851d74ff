/* test_opts.c — unit tests for the checks opts.c makes of every option value: the size and
 * duration types, ranges, choices, one error naming the option and the value, the same checks
 * for flags, the environment and the config file, and the text a server setting is given. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common/testutil.h"
#include "config.h"
#include "opts.h"

TestSuite(opt_values, .fini = tu_leak_check);

static const char *const colours[] = {"red", "green", NULL};

static const opt_spec specs[] = {
    {"queries", 0, OPT_INT, "200", true, "Q", "an integer range", .min = 1, .max = 100000},
    {"wait", 0, OPT_DURATION, "0", true, "SECONDS", "a duration, 0 or more", .min = 0, .max = OPT_NO_MAX},
    {"interval", 0, OPT_DURATION, "2", true, "SECONDS", "more than 0", .min = 0, .above_min = true,
     .max = OPT_NO_MAX},
    {"mem", 0, OPT_SIZE, "1GB", true, "SIZE", "a size", .min = 1048576, .max = 1099511627776.0,
     .setting = "maintenance_work_mem"},
    {"timeout", 0, OPT_DURATION, "60", true, "SECONDS", "a setting in ms", .min = 0, .max = 3600,
     .setting = "statement_timeout"},
    {"colour", 0, OPT_STRING, "red", true, "C", "a choice", .choices = colours},
    {"ratio", 0, OPT_DOUBLE, "0.5", true, "R", "a double range", .min = 0, .max = 1},
    {0},
};

/* opts_check of text for the spec called name: the result, the value and the reason. */
static opt_check_result check(const char *name, const char *text, opt_value *v, char *why)
{
    for (const opt_spec *s = specs; s->name; s++)
        if (!strcmp(s->name, name)) {
            memset(v, 0, sizeof *v);
            return opts_check(s, text, v, why, 256);
        }
    cr_assert_fail("no spec %s", name);
    return OPT_CHECK_TYPE;
}

Test(opt_values, sizes_in_postgresql_units)
{
    opt_value v;
    char why[256];
    cr_expect_eq(check("mem", "1GB", &v, why), OPT_CHECK_OK);
    cr_expect_eq(v.i, 1073741824LL);
    cr_expect_eq(check("mem", "512MB", &v, why), OPT_CHECK_OK);
    cr_expect_eq(v.i, 512LL << 20);
    cr_expect_eq(check("mem", "2048kB", &v, why), OPT_CHECK_OK);
    cr_expect_eq(v.i, 2LL << 20);
    cr_expect_eq(check("mem", "1.5GB", &v, why), OPT_CHECK_OK);
    cr_expect_eq(v.i, 3LL << 29);
    const char *bad[] = {"abc", "1gb", "100", "GB", "1 GB", "1GiB", "", " 1GB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(check("mem", bad[i], &v, why), OPT_CHECK_TYPE, "\"%s\"", bad[i]);
        cr_expect(tu_contains(why, "expected a size with a unit (B, kB, MB, GB or TB)"), "%s", why);
    }
    cr_expect_eq(check("mem", "0", &v, why), OPT_CHECK_TYPE);
    cr_expect_eq(check("mem", "0kB", &v, why), OPT_CHECK_RANGE);
    cr_expect_str_eq(why, "must be between 1MB and 1TB");
    cr_expect_eq(check("mem", "-1GB", &v, why), OPT_CHECK_RANGE);
    cr_expect_eq(check("mem", "99999TB", &v, why), OPT_CHECK_RANGE);
    cr_expect_str_eq(why, "must be between 1MB and 1TB");
}

Test(opt_values, durations_seconds_or_units)
{
    opt_value v;
    char why[256];
    struct {
        const char *text;
        double seconds;
    } ok[] = {{"30", 30}, {"0.5", 0.5}, {"30s", 30}, {"5min", 300}, {"250ms", 0.25}, {"2h", 7200}, {"1d", 86400},
              {"1500us", 0.0015}, {"0", 0}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_expect_eq(check("wait", ok[i].text, &v, why), OPT_CHECK_OK, "\"%s\": %s", ok[i].text, why);
        cr_expect_float_eq(v.d, ok[i].seconds, 1e-9, "\"%s\"", ok[i].text);
    }
    cr_expect_eq(check("wait", "soon", &v, why), OPT_CHECK_TYPE);
    cr_expect(tu_contains(why, "expected a number, got \"soon\""), "%s", why);
    cr_expect_eq(check("wait", "5 min", &v, why), OPT_CHECK_TYPE);
    cr_expect_eq(check("wait", "-1", &v, why), OPT_CHECK_RANGE);
    cr_expect_str_eq(why, "must be 0 or more seconds");
    cr_expect_eq(check("wait", "-250ms", &v, why), OPT_CHECK_RANGE);
    cr_expect_eq(check("interval", "0", &v, why), OPT_CHECK_RANGE);
    cr_expect_str_eq(why, "must be more than 0 seconds");
    cr_expect_eq(check("timeout", "2h", &v, why), OPT_CHECK_RANGE);
    cr_expect_str_eq(why, "must be between 0 and 3600 seconds");
}

Test(opt_values, ranges_and_choices)
{
    opt_value v;
    char why[256];
    cr_expect_eq(check("queries", "1", &v, why), OPT_CHECK_OK);
    cr_expect_eq(check("queries", "100000", &v, why), OPT_CHECK_OK);
    cr_expect_eq(check("queries", "-5", &v, why), OPT_CHECK_RANGE);
    cr_expect_str_eq(why, "must be between 1 and 100000");
    cr_expect_eq(check("queries", "100001", &v, why), OPT_CHECK_RANGE);
    cr_expect_eq(check("queries", "1.5", &v, why), OPT_CHECK_TYPE);
    cr_expect_eq(check("ratio", "1.01", &v, why), OPT_CHECK_RANGE);
    cr_expect_str_eq(why, "must be between 0 and 1");
    cr_expect_eq(check("colour", "green", &v, why), OPT_CHECK_OK);
    cr_expect_eq(check("colour", "blue", &v, why), OPT_CHECK_RANGE);
    cr_expect_str_eq(why, "must be one of red, green");
}

/* opts_parse of argv against specs with cfg (may be NULL): ok and stderr. */
static bool parse(int argc, char **argv, const config *cfg, char **log, opts *o)
{
    bool help;
    tu_stderr_begin();
    bool ok = opts_parse(o, "test", specs, opts_count(specs), argc, argv, config_source(cfg), &help);
    *log = tu_stderr_end();
    return ok;
}

Test(opt_values, one_error_naming_option_and_value_from_every_source)
{
    opts o;
    char *log;
    char *argv[] = {(char *) "test", (char *) "--queries", (char *) "-5", (char *) "--colour=blue", NULL};
    cr_expect_not(parse(4, argv, NULL, &log, &o));
    cr_expect(tu_contains(log, "test: --queries -5: must be between 1 and 100000"), "%s", log);
    cr_expect_not(tu_contains(log, "colour"), "one error, for the first bad option: %s", log);
    free(log);
    opts_free(&o);

    char *argv2[] = {(char *) "test", NULL};
    cr_assert_eq(setenv("PGMEMCTL_TEST_WAIT", "-1", 1), 0);
    cr_expect_not(parse(1, argv2, NULL, &log, &o));
    cr_expect(tu_contains(log, "environment variable PGMEMCTL_TEST_WAIT (--wait) -1: must be 0 or more seconds"), "%s",
              log);
    unsetenv("PGMEMCTL_TEST_WAIT");
    free(log);
    opts_free(&o);

    config_section sec = {"test", specs, opts_count(specs)};
    const char *yaml = "test:\n  mem: 99999TB\n";
    tu_stderr_begin();
    config *cfg = config_parse(yaml, strlen(yaml), "x.yaml", &sec, 1);
    log = tu_stderr_end();
    cr_expect_null(cfg);
    cr_expect(tu_contains(log, "x.yaml:2:3: test.mem 99999TB: must be between 1MB and 1TB"), "%s", log);
    free(log);
}

Test(opt_values, good_values_and_setting_text)
{
    opts o;
    char *log;
    char *argv[] = {(char *) "test", (char *) "--wait", (char *) "5min", (char *) "--timeout", (char *) "1.5",
                    (char *) "--mem", (char *) "64MB", NULL};
    cr_assert(parse(7, argv, NULL, &log, &o), "%s", log);
    free(log);
    cr_expect_float_eq(opts_double(&o, "wait"), 300.0, 1e-9);
    cr_expect_eq(opts_int(&o, "mem"), 64LL << 20);
    cr_expect_str_eq(opts_str(&o, "mem"), "64MB");
    char buf[64];
    for (int i = 0; i < o.n; i++) {
        if (!strcmp(o.specs[i].name, "timeout")) {
            cr_expect(opts_setting_value(&o, i, buf, sizeof buf));
            cr_expect_str_eq(buf, "1500", "statement_timeout in milliseconds");
        } else if (!strcmp(o.specs[i].name, "mem")) {
            cr_expect(opts_setting_value(&o, i, buf, sizeof buf));
            cr_expect_str_eq(buf, "64MB", "a size as given");
        }
    }
    cr_expect(opts_has(&o, "wait"));
    cr_expect_not(opts_has(&o, "nosuch"));
    opts_free(&o);
}

/* Every real command's table: its defaults pass its own checks. */
Test(opt_values, command_tables_defaults_are_valid)
{
    const opt_spec *tables[] = {cmd_migrate_specs, cmd_copy_specs,  cmd_reembed_specs,
                                cmd_verify_specs,  cmd_bench_specs, cmd_upgrade_specs};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const opt_spec *s = tables[t]; s->name; s++) {
            if (!s->def)
                continue;
            opt_value v = {0};
            char why[256];
            cr_expect_eq(opts_check(s, s->def, &v, why, sizeof why), OPT_CHECK_OK, "--%s %s: %s", s->name, s->def, why);
        }
}

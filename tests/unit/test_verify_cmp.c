/* test_verify_cmp.c — unit tests for verify_cmp.c: version constraints, expected values with
 * memory/time units and booleans, and the reasons given for malformed or incomparable input. */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <string.h>

#include "common/testutil.h"
#include "verify_cmp.h"

TestSuite(verify_cmp, .fini = tu_leak_check);

typedef struct {
    const char *constraint;
    const char *observed;
    bool holds;
} eval_case;

static void run_cases(const eval_case *cases, size_t n, vcmp_domain domain)
{
    for (size_t i = 0; i < n; i++) {
        const eval_case *c = &cases[i];
        char why[200] = "unset";
        bool holds = !c->holds;
        bool ok = vcmp_eval(c->constraint, domain, c->observed, &holds, why, sizeof why);
        cr_expect(ok, "\"%s\" vs \"%s\": could not compare: %s", c->constraint, c->observed, why);
        cr_expect_eq(holds, c->holds, "\"%s\" vs \"%s\": expected %s", c->constraint, c->observed,
                     c->holds ? "to hold" : "not to hold");
    }
}

Test(verify_cmp, versions)
{
    static const eval_case cases[] = {
        {">=0.8.0", "0.10.0", true},          /* numeric components, not text */
        {">0.8.2", "0.10.0", true},
        {"<0.8.2", "0.10.0", false},
        {">=17", "17.2", true},
        {">=17", "17.0", true},
        {">=17", "17", true},
        {">=17", "15.20", false},
        {">17", "17.0", false},                /* missing components count as 0 for ordering */
        {">17", "17.0.1", true},
        {"17", "17.2", true},                  /* a plain value compares the components it gives */
        {"17", "16.9", false},
        {"17.2", "17", false},
        {"17.0", "17", true},
        {"0.8", "0.8.1", true},
        {"==17", "17.2", true},
        {"= 17", "17.2", true},
        {"!=17", "17.2", false},
        {"!=16", "17.2", true},
        {">=16", "16devel", true},             /* the tail is dropped: 16devel is 16 */
        {">16", "16devel", false},
        {"<17", "16devel", true},
        {"16", "16beta2", true},
        {">=1.0", "1beta2", true},
        {">=0.8.0,<0.9", "0.8.1", true},
        {">=0.8.0,<0.9", "0.9.0", false},
        {">=0.8.0,<0.9", "0.7.4", false},
        {" >= 13 , < 18 ", "17.2 (Debian 17.2-1.pgdg120+1)", true},
        {"<=0.8.0", "0.8.0", true},
        {"<0.8.0", "0.8.0", false},
    };
    run_cases(cases, sizeof cases / sizeof *cases, VCMP_VERSION);
}

Test(verify_cmp, version_compare)
{
    cr_expect_gt(vcmp_version_compare("0.10.0", "0.8.2"), 0);
    cr_expect_lt(vcmp_version_compare("0.8.2", "0.10.0"), 0);
    cr_expect_lt(vcmp_version_compare("1.2", "1.10"), 0);
    cr_expect_eq(vcmp_version_compare("17", "17.0"), 0);
    cr_expect_eq(vcmp_version_compare("17.0.0", "17"), 0);
    cr_expect_eq(vcmp_version_compare("16devel", "16"), 0);
    cr_expect_gt(vcmp_version_compare("17.2", "17"), 0);
    cr_expect_eq(vcmp_version_compare("0.8.0", "0.8.0"), 0);
}

Test(verify_cmp, values)
{
    static const eval_case cases[] = {
        {"128MB", "131072kB", true},           /* memory units, 1024-based */
        {"128MB", "128 MB", true},
        {"128MB", "134217728B", true},
        {"1GB", "1024MB", true},
        {"1TB", "1024GB", true},
        {"128MB", "64MB", false},
        {">=1GB", "64MB", false},
        {">=1GB", "2GB", true},
        {"<=64MB", "65536kB", true},
        {"<64MB", "65536kB", false},
        {"1min", "60s", true},                 /* time units to milliseconds */
        {"1h", "60min", true},
        {"1d", "24h", true},
        {"0.1s", "100ms", true},
        {"1ms", "1000us", true},
        {">100ms", "1s", true},
        {"<100ms", "1s", false},
        {"200ms", "0.2s", true},
        {"on", "true", true},                  /* booleans, every spelling */
        {"on", "TRUE", true},
        {"off", "true", false},
        {"yes", "on", true},
        {"1", "on", true},
        {"F", "off", true},
        {"no", "0", true},
        {"!=off", "on", true},
        {"!=off", "false", false},
        {">=10", "42", true},                  /* plain numbers */
        {"<0", "-1", true},
        {"42", "42.0", true},
        {"== 5, != 6", "5", true},
        {">=1, <=3", "4", false},
        {"hello", " HELLO ", true},            /* anything else: text, ignoring case */
        {"hello", "world", false},
        {"== replica", "logical", false},
        {"!= replica", "logical", true},
        {"replica", "Replica", true},
        {"", "", true},
        {"128MB", "abc", false},               /* a number and a text: text comparison */
    };
    run_cases(cases, sizeof cases / sizeof *cases, VCMP_VALUE);
}

typedef struct {
    const char *constraint;
    vcmp_domain domain;
    const char *observed;
    const char *why; /* the reason must contain this */
} fail_case;

Test(verify_cmp, cannot_compare)
{
    static const fail_case cases[] = {
        {">=1GB", VCMP_VALUE, "60s", "cannot compare \"60s\" (a time) with \"1GB\" (a memory size)"},
        {"128MB", VCMP_VALUE, "1min", "cannot compare \"1min\" (a time) with \"128MB\" (a memory size)"},
        {"1h", VCMP_VALUE, "3600000", "cannot compare \"3600000\" (a plain number) with \"1h\" (a time)"},
        {">=10", VCMP_VALUE, "abc", "\"abc\" is not a number (\">=\" needs one)"},
        {">=10", VCMP_VALUE, "on", "\"on\" is not a number"},
        {">=10", VCMP_VALUE, NULL, "no value (NULL)"},
        {">=17", VCMP_VERSION, "abc", "\"abc\" is not a version"},
        {"17", VCMP_VERSION, "", "\"\" is not a version"},
        {"=>17", VCMP_VERSION, "17", "unknown operator \"=>\""},
        {NULL, VCMP_VALUE, "x", "no constraint"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const fail_case *c = &cases[i];
        char why[200] = "";
        bool holds = true;
        cr_expect_not(vcmp_eval(c->constraint, c->domain, c->observed, &holds, why, sizeof why),
                      "\"%s\" vs \"%s\" should not be comparable", c->constraint, c->observed);
        cr_expect_not(holds, "holds stays false when nothing could be compared");
        cr_expect(tu_contains(why, c->why), "\"%s\" vs \"%s\": expected a reason containing\n  %s\ngot\n  %s",
                  c->constraint, c->observed, c->why, why);
    }
}

Test(verify_cmp, validate)
{
    static const fail_case bad[] = {
        {"=>0.8", VCMP_VERSION, NULL, "unknown operator \"=>\""},
        {">>1", VCMP_VERSION, NULL, "unknown operator \">>\""},
        {"!1", VCMP_VERSION, NULL, "unknown operator \"!\""},
        {"<> 1", VCMP_VALUE, NULL, "unknown operator \"<>\""},
        {"> =1", VCMP_VERSION, NULL, "unknown operator \"> =\""},
        {">=1,,<2", VCMP_VERSION, NULL, "empty term"},
        {">=1,", VCMP_VERSION, NULL, "empty term"},
        {">=", VCMP_VERSION, NULL, "missing value after \">=\""},
        {">=1, 2", VCMP_VERSION, NULL, "term \"2\" has no operator"},
        {">=abc", VCMP_VERSION, NULL, "\"abc\" is not a version"},
        {"1 2", VCMP_VERSION, NULL, "\"1 2\" is not a version"},
        {"1..2", VCMP_VERSION, NULL, "\"1..2\" is not a version"},
        {"v17", VCMP_VERSION, NULL, "\"v17\" is not a version"},
        {"", VCMP_VERSION, NULL, "empty version constraint"},
        {">=abc", VCMP_VALUE, NULL, "\"abc\" is not a number (\">=\" needs one)"},
        {"<1XB", VCMP_VALUE, NULL, "\"1XB\" is not a number"},
        {"<0x10", VCMP_VALUE, NULL, "\"0x10\" is not a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char why[200] = "";
        cr_expect_not(vcmp_validate(bad[i].constraint, bad[i].domain, why, sizeof why), "\"%s\" should be rejected",
                      bad[i].constraint);
        cr_expect(tu_contains(why, bad[i].why), "\"%s\": expected a reason containing\n  %s\ngot\n  %s",
                  bad[i].constraint, bad[i].why, why);
    }
    static const struct {
        const char *constraint;
        vcmp_domain domain;
    } good[] = {
        {">=0.8.0", VCMP_VERSION}, {">=0.8.0, <0.9", VCMP_VERSION}, {"17", VCMP_VERSION},
        {"16devel", VCMP_VERSION}, {"== 0.8.0-rc1", VCMP_VERSION},  {"!=1", VCMP_VERSION},
        {"abc", VCMP_VALUE},       {"", VCMP_VALUE},                {"== abc", VCMP_VALUE},
        {">=1GB", VCMP_VALUE},     {"<= 1.5 s", VCMP_VALUE},        {">-1", VCMP_VALUE},
        {"\"$user\", public", VCMP_VALUE},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char why[200] = "";
        cr_expect(vcmp_validate(good[i].constraint, good[i].domain, why, sizeof why), "\"%s\": %s",
                  good[i].constraint, why);
    }
}

Test(verify_cmp, has_operator)
{
    cr_expect(vcmp_has_operator(">=1"));
    cr_expect(vcmp_has_operator("  <2"));
    cr_expect(vcmp_has_operator("!=off"));
    cr_expect(vcmp_has_operator("== x"));
    cr_expect_not(vcmp_has_operator("on"));
    cr_expect_not(vcmp_has_operator("128MB"));
    cr_expect_not(vcmp_has_operator(""));
    cr_expect_not(vcmp_has_operator(NULL));
}

Test(verify_cmp, why_is_truncated_safely)
{
    char why[8];
    cr_expect_not(vcmp_validate(">=a-long-not-a-version", VCMP_VERSION, why, sizeof why));
    cr_expect_eq(strlen(why), sizeof why - 1);
    cr_expect_not(vcmp_validate("=>1", VCMP_VERSION, NULL, 0), "a NULL why is allowed");
}

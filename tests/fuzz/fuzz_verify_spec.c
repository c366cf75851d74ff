/* fuzz_verify_spec.c — fuzz target for verify's YAML spec parser (verify_spec.c, libyaml) and
 * the constraint syntax it accepts (verify_cmp.c). The input is a spec file's content. A spec
 * that parses must hold what verify relies on: a name for every check, unique, a known kind,
 * and constraints that vcmp_eval can evaluate against any observed value. Corpus:
 * tests/fuzz/corpus/verify_spec/ (the shipped example specs among them). */
#include "fuzz/fuzz.h"
#include "log.h"
#include "verify.h"
#include "verify_cmp.h"

#include <stdbool.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    log_set_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_QUIET);
    return 0;
}

/* A constraint the parser accepted evaluates (or says why it cannot) without crashing. */
static void eval_all(const char *constraint, vcmp_domain domain)
{
    static const char *const observed[] = {"17.2", "0.8.0", "16devel", "1GB", "128kB", "30s", "on", "42", "", "x"};
    char why[160];
    FUZZ_CHECK(vcmp_validate(constraint, domain, why, sizeof why));
    for (size_t k = 0; k < sizeof observed / sizeof observed[0]; k++) {
        bool holds = false;
        why[0] = '\0';
        if (!vcmp_eval(constraint, domain, observed[k], &holds, why, sizeof why))
            FUZZ_CHECK(why[0] != '\0');
    }
    (void) vcmp_has_operator(constraint);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    verify_spec spec;
    if (!verify_spec_parse((const char *) data, size, "fuzz.yaml", &spec)) {
        FUZZ_CHECK(spec.n == 0 && spec.checks == NULL && spec.origin == NULL);
        return 0;
    }
    FUZZ_CHECK(spec.origin && !strcmp(spec.origin, "fuzz.yaml"));
    for (int i = 0; i < spec.n; i++) {
        const verify_check *c = &spec.checks[i];
        FUZZ_CHECK(verify_kind_name(c->kind) != NULL);
        FUZZ_CHECK(c->name != NULL && c->name[0] != '\0');
        FUZZ_CHECK(c->line >= 1 && c->col >= 1);
        for (int j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(spec.checks[j].name, c->name) != 0);
        if (c->version)
            eval_all(c->version, VCMP_VERSION);
        if (c->expect)
            eval_all(c->expect, VCMP_VALUE);
    }
    verify_spec_free(&spec);
    FUZZ_CHECK(spec.n == 0 && spec.checks == NULL);
    return 0;
}

/* fuzz_config.c — fuzz target for the config file parser (config.c, libyaml) with the real
 * commands' option tables, so that every value also goes through opts' conversion. The input is
 * a pgmemctl.yaml's content (config_parse). A config that loads must answer config_get for each
 * of its entries with that entry's value (the last one, for a repeated key). Corpus:
 * tests/fuzz/corpus/config/. */
#include "cmd.h"
#include "config.h"
#include "fuzz/fuzz.h"
#include "log.h"

#include <string.h>

static config_section sections[6];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    log_set_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_QUIET);
    const struct {
        const char *name;
        const opt_spec *specs;
    } cmds[] = {{"migrate", cmd_migrate_specs}, {"copy", cmd_copy_specs},   {"reembed", cmd_reembed_specs},
                {"verify", cmd_verify_specs},   {"bench", cmd_bench_specs}, {"upgrade", cmd_upgrade_specs}};
    for (int i = 0; i < 6; i++)
        sections[i] = (config_section){cmds[i].name, cmds[i].specs, opts_count(cmds[i].specs)};
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config *cfg = config_parse((const char *) data, size, "fuzz.yaml", sections, 6);
    if (!cfg)
        return 0;
    FUZZ_CHECK(cfg->path && !strcmp(cfg->path, "fuzz.yaml") && cfg->n >= 0);
    for (int i = 0; i < cfg->n; i++) {
        const config_entry *e = &cfg->entries[i];
        FUZZ_CHECK(e->key && e->value && e->line >= 1 && e->column >= 1);
        int line = 0, col = 0;
        const char *v = config_get(cfg, e->section, e->key, &line, &col);
        FUZZ_CHECK(v != NULL && line >= 1 && col >= 1);
        bool later = false; /* a repeated key: the last one wins */
        for (int j = i + 1; j < cfg->n; j++)
            later = later || (!strcmp(cfg->entries[j].key, e->key) &&
                              ((!e->section && !cfg->entries[j].section) ||
                               (e->section && cfg->entries[j].section && !strcmp(e->section, cfg->entries[j].section))));
        FUZZ_CHECK(later || !strcmp(v, e->value));
    }
    config_free(cfg);
    return 0;
}

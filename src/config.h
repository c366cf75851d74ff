/* config.h — the YAML config file (libyaml): `database:` plus one mapping per command whose
 * keys are that command's configurable options. Unknown keys and wrong types are errors that
 * name the file, line and column. */
#ifndef PGMEMCTL_CONFIG_H
#define PGMEMCTL_CONFIG_H

#include "opts.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct config config;

typedef struct {
    const char *section;      /* command name */
    const opt_spec *specs;
    int n;
} config_section;

typedef struct config_entry {
    char *section;            /* NULL for top-level keys */
    char *key;
    char *value;
    int line, column;         /* 1-based, of the value */
} config_entry;

struct config {
    char *path;
    config_entry *entries;
    int n;
    opts_source source;       /* config_source's answer */
};

/* Loads and validates path against the known sections (and the top-level key "database").
 * Returns a new config (config_free) or NULL after logging "<file>:<line>:<col>: <problem>".
 * A missing file is an error here; the caller decides whether a default path is optional. */
config *config_load(const char *path, const config_section *sections, int nsections);

/* The same from memory: text[0, len) is the file's content (need not be NUL-terminated; NULL
 * only with len 0, read as an empty file), display names it in messages instead of a path
 * (copied). Returns a new config (config_free) or NULL after logging the problem, exactly as
 * config_load. The text is not kept. */
config *config_parse(const char *text, size_t len, const char *display, const config_section *sections,
                     int nsections);
void config_free(config *cfg);

/* cfg as a source of option values for opts_parse; NULL for a NULL cfg. The answer lives in
 * cfg (filled when cfg was read; valid until config_free). */
const opts_source *config_source(const config *cfg);

/* The scalar for section/key (section NULL for top level), or NULL; line and col may be NULL. */
const char *config_get(const config *cfg, const char *section, const char *key, int *line, int *col);

#endif

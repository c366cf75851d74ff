/* config.c — reads pgmemctl.yaml with libyaml's event parser and validates every key against
 * the commands' option tables, reporting file:line:column on any problem. */
#include "config.h"
#include "log.h"

#include <yaml.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *path;
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev;
} reader;

static bool next_event(reader *r)
{
    if (r->have_ev)
        yaml_event_delete(&r->ev);
    r->have_ev = false;
    if (!yaml_parser_parse(&r->parser, &r->ev)) {
        log_error("%s:%zu:%zu: invalid YAML: %s", r->path, r->parser.problem_mark.line + 1,
                  r->parser.problem_mark.column + 1, r->parser.problem ? r->parser.problem : "parse error");
        return false;
    }
    r->have_ev = true;
    return true;
}

static int ev_line(const reader *r) { return (int) r->ev.start_mark.line + 1; }
static int ev_col(const reader *r) { return (int) r->ev.start_mark.column + 1; }

static const char *ev_kind(const yaml_event_t *e)
{
    switch (e->type) {
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SCALAR_EVENT: return "a scalar";
    case YAML_ALIAS_EVENT: return "an alias";
    default: return "something else";
    }
}

static bool add_entry(config *cfg, const char *section, const char *key, const char *value, int line, int col)
{
    config_entry *n = realloc(cfg->entries, (size_t) (cfg->n + 1) * sizeof *n);
    if (!n)
        return false;
    cfg->entries = n;
    config_entry *e = &cfg->entries[cfg->n];
    e->section = section ? strdup(section) : NULL;
    e->key = strdup(key);
    e->value = strdup(value);
    e->line = line;
    e->column = col;
    cfg->n++;
    return e->key && e->value && (!section || e->section);
}

static const config_section *find_section(const config_section *s, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].section, name))
            return &s[i];
    return NULL;
}

/* Validates key/value of a section against its option specs. */
static bool check_key(const config *cfg, const config_section *sec, const char *key, const char *value, int line,
                      int col)
{
    for (int i = 0; i < sec->n; i++) {
        const opt_spec *s = &sec->specs[i];
        char name[64];
        snprintf(name, sizeof name, "%s", s->name);
        for (char *p = name; *p; p++)
            if (*p == '-')
                *p = '_';
        if (strcmp(name, key) != 0)
            continue;
        if (!s->configurable) {
            log_error("%s:%d:%d: \"%s\" in section \"%s\" can only be given on the command line (--%s)", cfg->path,
                      line, col, key, sec->section, s->name);
            return false;
        }
        opt_value tmp = {0};
        char why[256];
        switch (opts_check(s, value, &tmp, why, sizeof why)) {
        case OPT_CHECK_TYPE: log_error("%s:%d:%d: %s.%s: %s", cfg->path, line, col, sec->section, key, why); return false;
        case OPT_CHECK_RANGE:
            log_error("%s:%d:%d: %s.%s %s: %s", cfg->path, line, col, sec->section, key, value, why);
            return false;
        case OPT_CHECK_OK: break;
        }
        return true;
    }
    log_error("%s:%d:%d: unknown key \"%s\" in section \"%s\"", cfg->path, line, col, key, sec->section);
    return false;
}

static bool parse_section(reader *r, config *cfg, const config_section *sec)
{
    if (!next_event(r))
        return false;
    if (r->ev.type == YAML_SCALAR_EVENT && r->ev.data.scalar.length == 0 &&
        r->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        return true; /* "copy:" with every option commented out */
    if (r->ev.type != YAML_MAPPING_START_EVENT) {
        log_error("%s:%d:%d: section \"%s\" must be a mapping of option: value, found %s", cfg->path, ev_line(r),
                  ev_col(r), sec->section, ev_kind(&r->ev));
        return false;
    }
    for (;;) {
        if (!next_event(r))
            return false;
        if (r->ev.type == YAML_MAPPING_END_EVENT)
            return true;
        if (r->ev.type != YAML_SCALAR_EVENT) {
            log_error("%s:%d:%d: expected an option name in section \"%s\", found %s", cfg->path, ev_line(r),
                      ev_col(r), sec->section, ev_kind(&r->ev));
            return false;
        }
        char *key = strdup((const char *) r->ev.data.scalar.value);
        int kline = ev_line(r), kcol = ev_col(r);
        if (!key || !next_event(r)) {
            free(key);
            return false;
        }
        if (r->ev.type != YAML_SCALAR_EVENT) {
            log_error("%s:%d:%d: %s.%s: expected a single value, found %s", cfg->path, ev_line(r), ev_col(r),
                      sec->section, key, ev_kind(&r->ev));
            free(key);
            return false;
        }
        const char *value = (const char *) r->ev.data.scalar.value;
        bool ok = check_key(cfg, sec, key, value, kline, kcol) &&
                  add_entry(cfg, sec->section, key, value, ev_line(r), ev_col(r));
        free(key);
        if (!ok)
            return false;
    }
}

/* opts_source.get over a config. */
static const char *source_get(const void *ctx, const char *section, const char *key, int *line, int *col)
{
    return config_get(ctx, section, key, line, col);
}

/* Reads the config from f when it is not NULL, else from text[0, len); path names it in messages. */
static config *config_read(const char *path, FILE *f, const char *text, size_t len, const config_section *sections,
                           int nsections)
{
    config *cfg = calloc(1, sizeof *cfg);
    reader r = {.path = path};
    if (!cfg || !(cfg->path = strdup(path)) || !yaml_parser_initialize(&r.parser)) {
        config_free(cfg);
        return NULL;
    }
    cfg->source = (opts_source){.path = cfg->path, .get = source_get, .ctx = cfg};
    if (f)
        yaml_parser_set_input_file(&r.parser, f);
    else
        yaml_parser_set_input_string(&r.parser, (const unsigned char *) text, len);
    bool ok = false;
    /* stream start, document start (or an empty stream), top-level mapping */
    if (!next_event(&r) || r.ev.type != YAML_STREAM_START_EVENT || !next_event(&r))
        goto done;
    if (r.ev.type == YAML_STREAM_END_EVENT) { /* empty file */
        ok = true;
        goto done;
    }
    if (!next_event(&r))
        goto done;
    if (r.ev.type == YAML_SCALAR_EVENT && r.ev.data.scalar.length == 0) {
        ok = true; /* document with no content */
        goto done;
    }
    if (r.ev.type != YAML_MAPPING_START_EVENT) {
        log_error("%s:%d:%d: the config file must be a mapping (database: …, copy: {…}, …), found %s", path,
                  ev_line(&r), ev_col(&r), ev_kind(&r.ev));
        goto done;
    }
    for (;;) {
        if (!next_event(&r))
            goto done;
        if (r.ev.type == YAML_MAPPING_END_EVENT)
            break;
        if (r.ev.type != YAML_SCALAR_EVENT) {
            log_error("%s:%d:%d: expected a key, found %s", path, ev_line(&r), ev_col(&r), ev_kind(&r.ev));
            goto done;
        }
        char *key = strdup((const char *) r.ev.data.scalar.value);
        int line = ev_line(&r), col = ev_col(&r);
        if (!key)
            goto done;
        const config_section *sec = find_section(sections, nsections, key);
        bool kok;
        if (!strcmp(key, "database")) {
            kok = next_event(&r);
            if (kok && r.ev.type != YAML_SCALAR_EVENT) {
                log_error("%s:%d:%d: database: expected a conninfo string, found %s", path, ev_line(&r),
                          ev_col(&r), ev_kind(&r.ev));
                kok = false;
            }
            if (kok)
                kok = add_entry(cfg, NULL, key, (const char *) r.ev.data.scalar.value, ev_line(&r), ev_col(&r));
        } else if (sec) {
            kok = parse_section(&r, cfg, sec);
        } else {
            log_error("%s:%d:%d: unknown key \"%s\" (known: database and the command names)", path, line, col, key);
            kok = false;
        }
        free(key);
        if (!kok)
            goto done;
    }
    ok = true;
done:
    if (r.have_ev)
        yaml_event_delete(&r.ev);
    yaml_parser_delete(&r.parser);
    if (!ok) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

config *config_load(const char *path, const config_section *sections, int nsections)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("%s: cannot open config file: %m", path);
        return NULL;
    }
    config *cfg = config_read(path, f, NULL, 0, sections, nsections);
    fclose(f);
    return cfg;
}

config *config_parse(const char *text, size_t len, const char *display, const config_section *sections,
                     int nsections)
{
    return config_read(display, NULL, text ? text : "", text ? len : 0, sections, nsections);
}

void config_free(config *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < cfg->n; i++) {
        free(cfg->entries[i].section);
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    free(cfg->entries);
    free(cfg->path);
    free(cfg);
}

const char *config_get(const config *cfg, const char *section, const char *key, int *line, int *col)
{
    if (!cfg)
        return NULL;
    for (int i = cfg->n - 1; i >= 0; i--) { /* a repeated key: the last one wins */
        const config_entry *e = &cfg->entries[i];
        if (((!section && !e->section) || (section && e->section && !strcmp(section, e->section))) &&
            !strcmp(key, e->key)) {
            if (line)
                *line = e->line;
            if (col)
                *col = e->column;
            return e->value;
        }
    }
    return NULL;
}

const opts_source *config_source(const config *cfg) { return cfg ? &cfg->source : NULL; }

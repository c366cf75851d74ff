/* opts.c — command option parsing with flag > environment > config > default resolution. */
#include "opts.h"
#include "config.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool opts_convert(opt_type type, const char *text, opt_value *out, char *why, int whylen)
{
    char *end;
    switch (type) {
    case OPT_BOOL:
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcasecmp(text, "on") || !strcmp(text, "1"))
            out->b = true;
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no") || !strcasecmp(text, "off") ||
                 !strcmp(text, "0"))
            out->b = false;
        else {
            snprintf(why, (size_t) whylen, "expected a boolean (true/false), got \"%s\"", text);
            return false;
        }
        return true;
    case OPT_INT: {
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (!*text || *end || errno) {
            snprintf(why, (size_t) whylen, "expected an integer, got \"%s\"", text);
            return false;
        }
        out->i = v;
        out->d = (double) v;
        return true;
    }
    case OPT_DOUBLE: {
        errno = 0;
        double v = strtod(text, &end);
        if (!*text || *end || errno || !isfinite(v)) {
            snprintf(why, (size_t) whylen, "expected a number, got \"%s\"", text);
            return false;
        }
        out->d = v;
        return true;
    }
    case OPT_STRING:
        return true;
    }
    return false;
}

int opts_count(const opt_spec *specs)
{
    int n = 0;
    while (specs[n].name)
        n++;
    return n;
}

static int find_long(const opt_spec *specs, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(specs[i].name) == len && strncmp(specs[i].name, name, len) == 0)
            return i;
    return -1;
}

static bool set_value(opt_value *v, const opt_spec *s, const char *text, const char *source, char *why,
                      int whylen)
{
    opt_value tmp = {0};
    if (!opts_convert(s->type, text, &tmp, why, whylen))
        return false;
    free(v->text);
    *v = tmp;
    v->text = strdup(text);
    v->set = v->text != NULL;
    v->source = source;
    return v->set;
}

/* PGMEMCTL_<SECTION>_<KEY> with '-' → '_' and upper case. */
static void env_name(char *buf, size_t len, const char *section, const char *name)
{
    snprintf(buf, len, "PGMEMCTL_%s_%s", section, name);
    for (char *p = buf; *p; p++)
        *p = *p == '-' ? '_' : (char) toupper((unsigned char) *p);
}

bool opts_parse(opts *o, const char *section, const opt_spec *specs, int n, int argc, char **argv,
                const config *cfg, bool *want_help)
{
    memset(o, 0, sizeof *o);
    o->section = section;
    o->specs = specs;
    o->n = n;
    o->values = calloc((size_t) (n ? n : 1), sizeof *o->values);
    o->args = calloc((size_t) argc + 1, sizeof *o->args);
    if (!o->values || !o->args) {
        log_error("out of memory");
        return false;
    }
    *want_help = false;
    char why[256];
    bool only_args = false;
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (only_args || arg[0] != '-' || arg[1] == '\0') {
            o->args[o->nargs++] = argv[a];
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_args = true;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            *want_help = true;
            return true;
        }
        if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet") || !strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            log_set_level(arg[1] == 'q' || arg[2] == 'q' ? LOG_ERROR : LOG_DEBUG); /* global flags, allowed here too */
            continue;
        }
        int idx = -1;
        const char *inline_val = NULL;
        if (arg[1] == '-') {
            const char *name = arg + 2, *eq = strchr(name, '=');
            idx = find_long(specs, n, name, eq ? (size_t) (eq - name) : strlen(name));
            if (eq)
                inline_val = eq + 1;
            if (idx < 0 && !eq && strncmp(name, "no-", 3) == 0) { /* --no-FLAG for booleans */
                int j = find_long(specs, n, name + 3, strlen(name + 3));
                if (j >= 0 && specs[j].type == OPT_BOOL) {
                    set_value(&o->values[j], &specs[j], "false", "flag", why, sizeof why);
                    continue;
                }
            }
        } else if (arg[2] == '\0') {
            for (int i = 0; i < n; i++)
                if (specs[i].short_name == arg[1])
                    idx = i;
        }
        if (idx < 0) {
            log_error("%s: unknown option \"%s\" (see \"pgmemctl %s --help\")", section, arg, section);
            return false;
        }
        const opt_spec *s = &specs[idx];
        const char *val;
        if (s->type == OPT_BOOL && !inline_val) {
            val = "true";
        } else if (inline_val) {
            val = inline_val;
        } else if (a + 1 < argc) {
            val = argv[++a];
        } else {
            log_error("%s: option --%s needs a value (%s)", section, s->name, s->metavar ? s->metavar : "value");
            return false;
        }
        if (!set_value(&o->values[idx], s, val, "flag", why, sizeof why)) {
            log_error("%s: option --%s: %s", section, s->name, why);
            return false;
        }
    }
    for (int i = 0; i < n; i++) {
        const opt_spec *s = &specs[i];
        opt_value *v = &o->values[i];
        if (v->set)
            continue;
        if (s->configurable) {
            char env[128];
            env_name(env, sizeof env, section, s->name);
            const char *e = getenv(env);
            if (e) {
                if (!set_value(v, s, e, "environment", why, sizeof why)) {
                    log_error("environment variable %s: %s", env, why);
                    return false;
                }
                continue;
            }
            char key[64];
            snprintf(key, sizeof key, "%s", s->name);
            for (char *p = key; *p; p++)
                if (*p == '-')
                    *p = '_';
            int line = 0, col = 0;
            const char *c = cfg ? config_get(cfg, section, key, &line, &col) : NULL;
            if (c) {
                if (!set_value(v, s, c, "config", why, sizeof why)) {
                    log_error("%s:%d:%d: %s.%s: %s", cfg->path, line, col, section, key, why);
                    return false;
                }
                continue;
            }
        }
        if (s->def && !set_value(v, s, s->def, "default", why, sizeof why)) {
            log_error("internal: bad default for --%s: %s", s->name, why);
            return false;
        }
    }
    return true;
}

void opts_free(opts *o)
{
    if (o->values)
        for (int i = 0; i < o->n; i++)
            free(o->values[i].text);
    free(o->values);
    free(o->args);
    memset(o, 0, sizeof *o);
}

static const opt_value *lookup(const opts *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->specs[i].name, name))
            return &o->values[i];
    fprintf(stderr, "internal error: unknown option name \"%s\"\n", name);
    abort();
}

bool opts_isset(const opts *o, const char *name) { return lookup(o, name)->set; }
bool opts_flag_given(const opts *o, const char *name)
{
    const opt_value *v = lookup(o, name);
    return v->set && v->source && !strcmp(v->source, "flag");
}
bool opts_bool(const opts *o, const char *name) { return lookup(o, name)->set && lookup(o, name)->b; }
int64_t opts_int(const opts *o, const char *name) { return lookup(o, name)->i; }
double opts_double(const opts *o, const char *name) { return lookup(o, name)->d; }

const char *opts_str(const opts *o, const char *name)
{
    const opt_value *v = lookup(o, name);
    return v->set ? v->text : NULL;
}

void opts_print_help(const opt_spec *specs, int n)
{
    for (int i = 0; i < n; i++) {
        const opt_spec *s = &specs[i];
        char flag[96];
        if (s->short_name)
            snprintf(flag, sizeof flag, "-%c, --%s%s%s", s->short_name, s->name, s->metavar ? " " : "",
                     s->metavar ? s->metavar : "");
        else
            snprintf(flag, sizeof flag, "    --%s%s%s", s->name, s->metavar ? " " : "", s->metavar ? s->metavar : "");
        printf("  %-32s %s", flag, s->help);
        if (s->def && s->type != OPT_BOOL)
            printf(" (default: %s)", s->def);
        printf("\n");
    }
}

/* opts.c — command option parsing with flag > environment > config > default resolution, and
 * the one place where every option value is checked against its declaration (type, range,
 * choices). */
#include "opts.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* PostgreSQL's memory units (guc.c: case matters) and time units. */
static const struct {
    const char *unit;
    double factor;
} size_units[] = {{"B", 1}, {"kB", 1024.0}, {"MB", 1048576.0}, {"GB", 1073741824.0}, {"TB", 1099511627776.0}},
  time_units[] = {{"us", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"min", 60}, {"h", 3600}, {"d", 86400}};

/* A number, then at once a unit of the table (or none when bare_factor > 0): the value times
 * the unit's factor in *out. No blanks: a size goes on into PGOPTIONS ("-c name=value"). */
static bool number_with_unit(const char *text, const void *units, size_t nunits, double bare_factor, double *out)
{
    const struct {
        const char *unit;
        double factor;
    } *u = units;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || !isfinite(v) || isspace((unsigned char) *text))
        return false;
    if (!*end) {
        *out = v * bare_factor;
        return bare_factor > 0;
    }
    for (size_t i = 0; i < nunits; i++)
        if (!strcmp(end, u[i].unit)) {
            *out = v * u[i].factor;
            return isfinite(*out);
        }
    return false;
}

bool opts_convert(opt_type type, const char *text, opt_value *out, char *why, int whylen)
{
    char *end;
    switch (type) {
    case OPT_SIZE:
        if (!number_with_unit(text, size_units, sizeof size_units / sizeof size_units[0], 0, &out->d)) {
            snprintf(why, (size_t) whylen, "expected a size with a unit (B, kB, MB, GB or TB), such as 512MB or 1GB, "
                     "got \"%s\"", text);
            return false;
        }
        out->i = out->d >= 9.2e18 ? INT64_MAX : out->d <= -9.2e18 ? INT64_MIN : (int64_t) out->d;
        return true;
    case OPT_DURATION:
        if (!number_with_unit(text, time_units, sizeof time_units / sizeof time_units[0], 1, &out->d)) {
            snprintf(why, (size_t) whylen, "expected a number, got \"%s\" (seconds, or a duration with a unit: us, "
                     "ms, s, min, h or d, such as 30s, 5min or 250ms)", text);
            return false;
        }
        return true;
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

/* A bound as text in the option's own terms: bytes in the largest unit that divides them. */
static void format_bound(const opt_spec *s, double v, char *buf, size_t len)
{
    if (s->type == OPT_SIZE) {
        size_t u = sizeof size_units / sizeof size_units[0];
        while (u > 1 && fmod(v, size_units[u - 1].factor) != 0)
            u--;
        snprintf(buf, len, "%.0f%s", v / size_units[u - 1].factor, size_units[u - 1].unit);
    } else if (s->type == OPT_INT) {
        snprintf(buf, len, "%.0f", v);
    } else {
        snprintf(buf, len, "%.15g", v);
    }
}

opt_check_result opts_check(const opt_spec *s, const char *text, opt_value *out, char *why, int whylen)
{
    if (!opts_convert(s->type, text, out, why, whylen))
        return OPT_CHECK_TYPE;
    if (s->choices) {
        bool found = false;
        for (int i = 0; s->choices[i] && !found; i++)
            found = !strcmp(s->choices[i], text);
        if (!found) {
            int n = snprintf(why, (size_t) whylen, "must be one of");
            for (int i = 0; s->choices[i] && n >= 0 && n < whylen; i++)
                n += snprintf(why + n, (size_t) (whylen - n), "%s %s", i ? "," : "", s->choices[i]);
            return OPT_CHECK_RANGE;
        }
    }
    bool numeric = s->type == OPT_INT || s->type == OPT_DOUBLE || s->type == OPT_SIZE || s->type == OPT_DURATION;
    if (!numeric || (s->min == 0 && s->max == 0))
        return OPT_CHECK_OK;
    double v = out->d;
    bool open_top = s->max >= OPT_NO_MAX;
    if ((s->above_min ? v > s->min : v >= s->min) && (open_top || v <= s->max))
        return OPT_CHECK_OK;
    char lo[48], hi[48];
    format_bound(s, s->min, lo, sizeof lo);
    format_bound(s, s->max, hi, sizeof hi);
    const char *unit = s->type == OPT_DURATION ? " seconds" : "";
    if (open_top)
        snprintf(why, (size_t) whylen, s->above_min ? "must be more than %s%s" : "must be %s or more%s", lo, unit);
    else if (s->above_min)
        snprintf(why, (size_t) whylen, "must be more than %s and at most %s%s", lo, hi, unit);
    else
        snprintf(why, (size_t) whylen, "must be between %s and %s%s", lo, hi, unit);
    return OPT_CHECK_RANGE;
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

/* Checks text for s and stores it in v; on failure logs "<type_where>: <type error>" or
 * "<value_where> <value>: <what is allowed>" and returns false. */
static bool set_value(opt_value *v, const opt_spec *s, const char *text, const char *source, const char *type_where,
                      const char *value_where)
{
    opt_value tmp = {0};
    char why[256];
    switch (opts_check(s, text, &tmp, why, sizeof why)) {
    case OPT_CHECK_TYPE: log_error("%s: %s", type_where, why); return false;
    case OPT_CHECK_RANGE: log_error("%s %s: %s", value_where, text, why); return false;
    case OPT_CHECK_OK: break;
    }
    free(v->text);
    *v = tmp;
    v->text = strdup(text);
    v->set = v->text != NULL;
    v->source = source;
    if (!v->set)
        log_error("out of memory");
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
                const opts_source *src, bool *want_help)
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
    char where[160], where_value[160];
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
                    if (!set_value(&o->values[j], &specs[j], "false", "flag", arg, arg))
                        return false;
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
        /* "bench: option --k: expected an integer, got …" / "bench: --k 0: must be between 1 and 1000" */
        snprintf(where, sizeof where, "%s: option --%s", section, s->name);
        snprintf(where_value, sizeof where_value, "%s: --%s", section, s->name);
        if (!set_value(&o->values[idx], s, val, "flag", where, where_value))
            return false;
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
                snprintf(where, sizeof where, "environment variable %s", env);
                snprintf(where_value, sizeof where_value, "environment variable %s (--%s)", env, s->name);
                if (!set_value(v, s, e, "environment", where, where_value))
                    return false;
                continue;
            }
            char key[64];
            snprintf(key, sizeof key, "%s", s->name);
            for (char *p = key; *p; p++)
                if (*p == '-')
                    *p = '_';
            int line = 0, col = 0;
            const char *c = src ? src->get(src->ctx, section, key, &line, &col) : NULL;
            if (c) {
                snprintf(where, sizeof where, "%s:%d:%d: %s.%s", src->path, line, col, section, key);
                if (!set_value(v, s, c, "config", where, where))
                    return false;
                continue;
            }
        }
        snprintf(where, sizeof where, "internal: the default of --%s", s->name);
        if (s->def && !set_value(v, s, s->def, "default", where, where))
            return false;
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

bool opts_has(const opts *o, const char *name)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->specs[i].name, name))
            return true;
    return false;
}

bool opts_setting_value(const opts *o, int i, char *buf, size_t len)
{
    const opt_value *v = &o->values[i];
    if (i < 0 || i >= o->n || !v->set)
        return false;
    switch (o->specs[i].type) {
    case OPT_DURATION: snprintf(buf, len, "%.0f", v->d * 1000.0); break;
    case OPT_INT: snprintf(buf, len, "%lld", (long long) v->i); break;
    case OPT_BOOL: snprintf(buf, len, "%s", v->b ? "on" : "off"); break;
    default: snprintf(buf, len, "%s", v->text); break;
    }
    return true;
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

/* opts.h — one declaration per command option: the flag, its type, its built-in default and
 * whether the config file and the environment may set it. Resolution order for every option:
 * command-line flag > environment (PGMEMCTL_<SECTION>_<KEY>) > config file > default. */
#ifndef PGMEMCTL_OPTS_H
#define PGMEMCTL_OPTS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { OPT_BOOL, OPT_INT, OPT_DOUBLE, OPT_STRING } opt_type;

typedef struct {
    const char *name;     /* long flag without dashes, e.g. "batch-size"; config key is the same
                             with '-' turned into '_' */
    char short_name;      /* 0 for none */
    opt_type type;
    const char *def;      /* default as text, NULL for none (unset) */
    bool configurable;    /* may come from the config file / environment */
    const char *metavar;  /* for --help, e.g. "N"; NULL for bool flags */
    const char *help;
} opt_spec;

typedef struct {
    bool set;             /* has a value (from any source) */
    const char *source;   /* "flag", "environment", "config", "default" */
    char *text;           /* the value as text (owned) */
    int64_t i;
    double d;
    bool b;
} opt_value;

typedef struct config config; /* config.h */

typedef struct {
    const char *section;  /* config section = command name, e.g. "copy" */
    const opt_spec *specs;
    int n;
    opt_value *values;    /* n values, owned */
    char **args;          /* positional arguments (pointers into argv) */
    int nargs;
} opts;

/* Number of specs in a table terminated by an entry whose name is NULL. */
int opts_count(const opt_spec *specs);

/* Parses argv (argv[0] is the command name) against specs; then fills every option not given
 * as a flag from the environment, then from cfg (may be NULL), then from its default.
 * Returns true on success; on a usage error logs it (naming the flag and the expected type)
 * and returns false. "--help"/"-h" sets *want_help and returns true; the global -q/--quiet and
 * -v/--verbose are accepted after the command too and set the log level. The result owns its
 * values; release with opts_free. Positional arguments are kept in order. */
bool opts_parse(opts *o, const char *section, const opt_spec *specs, int n, int argc, char **argv,
                const config *cfg, bool *want_help);
void opts_free(opts *o);

/* Typed access by long name; the name must be one of the specs (abort otherwise: a bug). */
bool opts_isset(const opts *o, const char *name);
/* True when the option was given on the command line (not from the environment, config or default). */
bool opts_flag_given(const opts *o, const char *name);
bool opts_bool(const opts *o, const char *name);
int64_t opts_int(const opts *o, const char *name);
double opts_double(const opts *o, const char *name);
const char *opts_str(const opts *o, const char *name); /* NULL when unset */

/* Converts a value for an option of the given type; on failure writes a reason to why.
 * Used by opts_parse and config validation. Booleans: true/false/yes/no/on/off/1/0. */
bool opts_convert(opt_type type, const char *text, opt_value *out, char *why, int whylen);

/* Prints "--flag METAVAR  help (default: …)" lines for the specs to stdout. */
void opts_print_help(const opt_spec *specs, int n);

#endif

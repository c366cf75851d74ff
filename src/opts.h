/* opts.h — one declaration per command option: the flag, its type, its built-in default, whether
 * the config file and the environment may set it, and what values it allows (range, choices,
 * the server setting it becomes). Resolution order for every option: command-line flag >
 * environment (PGMEMCTL_<SECTION>_<KEY>) > config file > default. Every value, from whichever
 * source, is checked against its declaration here, once, when it is read. */
#ifndef PGMEMCTL_OPTS_H
#define PGMEMCTL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    OPT_BOOL,
    OPT_INT,
    OPT_DOUBLE,
    OPT_STRING,
    OPT_SIZE,     /* a PostgreSQL memory size: a number and a unit, B, kB, MB, GB or TB (1GB, 512kB) */
    OPT_DURATION, /* seconds, or a number and a PostgreSQL time unit: us, ms, s, min, h, d (30s, 5min) */
} opt_type;

/* An open upper end for opt_spec.max: "min or more". */
#define OPT_NO_MAX 1e300

typedef struct {
    const char *name;     /* long flag without dashes, e.g. "batch-size"; config key is the same
                             with '-' turned into '_' */
    char short_name;      /* 0 for none */
    opt_type type;
    const char *def;      /* default as text, NULL for none (unset) */
    bool configurable;    /* may come from the config file / environment */
    const char *metavar;  /* for --help, e.g. "N"; NULL for bool flags */
    const char *help;
    /* Allowed range, inclusive, of an INT, DOUBLE, SIZE (in bytes) or DURATION (in seconds)
     * value; checked when min or max is non-zero (max OPT_NO_MAX: no upper end). above_min makes
     * the lower end exclusive ("more than 0"). */
    double min, max;
    bool above_min;
    /* STRING: the allowed values, NULL-terminated; NULL allows any text. */
    const char *const *choices;
    /* The PostgreSQL setting this value becomes (e.g. "maintenance_work_mem"), which the server
     * is asked to accept before the command writes anything (opts_setting_value); NULL for none. */
    const char *setting;
} opt_spec;

typedef struct {
    bool set;             /* has a value (from any source) */
    const char *source;   /* "flag", "environment", "config", "default" */
    char *text;           /* the value as text (owned) */
    int64_t i;            /* INT; SIZE in bytes */
    double d;             /* INT and DOUBLE; SIZE in bytes; DURATION in seconds */
    bool b;
} opt_value;

/* Where configured values come from (the config file: config_source in config.h). get returns
 * the scalar text for section/key, or NULL, and its 1-based line and column (line and col may be
 * NULL); path names the source in messages. */
typedef struct opts_source {
    const char *path;
    const char *(*get)(const void *ctx, const char *section, const char *key, int *line, int *col);
    const void *ctx;
} opts_source;

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
 * as a flag from the environment, then from src (may be NULL), then from its default.
 * Every value is checked with opts_check. Returns true on success; on a usage error logs one
 * message naming the option, the value and what is allowed (e.g. "bench: --queries -5: must be
 * between 1 and 100000") and returns false. "--help"/"-h" sets *want_help and returns true; the
 * global -q/--quiet and -v/--verbose are accepted after the command too and set the log level.
 * The result owns its values; release with opts_free (also after a failure). Positional
 * arguments are kept in order. */
bool opts_parse(opts *o, const char *section, const opt_spec *specs, int n, int argc, char **argv,
                const opts_source *src, bool *want_help);
void opts_free(opts *o);

/* True when name is one of o's specs. */
bool opts_has(const opts *o, const char *name);
/* Typed access by long name; the name must be one of the specs (abort otherwise: a bug). */
bool opts_isset(const opts *o, const char *name);
/* True when the option was given on the command line (not from the environment, config or default). */
bool opts_flag_given(const opts *o, const char *name);
bool opts_bool(const opts *o, const char *name);
int64_t opts_int(const opts *o, const char *name);   /* INT; SIZE in bytes */
double opts_double(const opts *o, const char *name); /* INT, DOUBLE; DURATION in seconds */
const char *opts_str(const opts *o, const char *name); /* the text as given; NULL when unset */

/* Converts text for an option of the given type (no range or choice check); on failure writes
 * the reason to why (whylen bytes), e.g. "expected an integer, got \"x\"".
 * Booleans: true/false/yes/no/on/off/1/0. */
bool opts_convert(opt_type type, const char *text, opt_value *out, char *why, int whylen);

typedef enum {
    OPT_CHECK_OK,
    OPT_CHECK_TYPE,  /* not a value of the type: why says what was expected and quotes the text */
    OPT_CHECK_RANGE, /* out of range or not a choice: why says what is allowed, without the value */
} opt_check_result;

/* Converts text for spec s into *out and checks it against the spec's range and choices. On
 * failure writes the reason to why (whylen bytes): a type error as opts_convert; a value out of
 * bounds as "must be between 1 and 100000", "must be 0 or more seconds", "must be one of s, ms",
 * which the caller prefixes with the option and the value. Used by opts_parse and by the config
 * file's validation (config.c). */
opt_check_result opts_check(const opt_spec *s, const char *text, opt_value *out, char *why, int whylen);

/* The text to give the server for the option at index i of o, which has spec.setting and is
 * set: a SIZE or STRING as given, an INT as the number, a DURATION in whole milliseconds
 * (statement_timeout and the like). Writes at most len bytes to buf; false when unset. */
bool opts_setting_value(const opts *o, int i, char *buf, size_t len);

/* Prints "--flag METAVAR  help (default: …)" lines for the specs to stdout. */
void opts_print_help(const opt_spec *specs, int n);

#endif

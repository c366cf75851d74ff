/* verify.h — `pgmemctl verify`: checks of a database's pgvector state described by a spec (a
 * YAML file, or the built-in memory-store profile), run in READ ONLY transactions, with results
 * rendered as JSON, aligned text, JUnit XML or TAP.
 *
 * Modules:
 *   verify_spec.c    YAML spec -> verify_spec (libyaml; errors name file:line:column)
 *   verify_cmp.c     version constraints (">=0.8.0,<0.9") and setting values with units
 *   verify.c         runs the checks against a connection, fills a verify_report
 *   verify_render.c  verify_report -> JSON / human / JUnit XML / TAP
 */
#ifndef PGMEMCTL_VERIFY_H
#define PGMEMCTL_VERIFY_H

#include "pg.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- the spec ---------------------------------------------------------------------------- */

typedef enum {
    VK_SERVER_VERSION,  /* version: constraint on the server's version, e.g. ">=17" */
    VK_SETTING,         /* setting: GUC name; expect: value or constraint */
    VK_EXTENSION,       /* extension: name; version: constraint; up_to_date (default true) */
    VK_ACCESS_METHOD,   /* access_method: name (e.g. hnsw) */
    VK_COLUMN,          /* table, column; type; dimension or dimension_sql */
    VK_INDEX,           /* index: name, or table + column; method, opclass, m, ef_construction,
                           lists, valid (default true), where */
    VK_PLAN,            /* query with $vector / $text; vector_from / text_from; expect_index or
                           no_seq_scan; force_index; max_ms */
    VK_MIGRATIONS,      /* pgmemctl's migrations up to date (migrations_dir: NULL = built-in) */
    VK_ROW_COUNT,       /* table; where; min / max */
    VK_SQL,             /* query; expect: value or constraint on the first column of the first row */
    VK__COUNT
} verify_kind;

/* "server_version", "setting", … as written in a spec; NULL for an out-of-range value. */
const char *verify_kind_name(verify_kind k);

typedef enum { VSEV_ERROR, VSEV_WARN } verify_severity;

/* One check. Strings are owned by the check (freed by verify_spec_free); NULL when not given.
 * Integers are -1 when not given (every integer field is a count or size >= 0). */
typedef struct {
    verify_kind kind;
    char *name;              /* unique in the spec; default "<kind>: <target>" */
    verify_severity severity;/* default VSEV_ERROR */
    bool skip;               /* `skip: true` or `skip: "reason"` */
    char *skip_reason;       /* the reason when given as a string */
    char *hint;              /* shown when the check fails (e.g. the command that fixes it) */
    int line, col;           /* 1-based position of the check's mapping in the spec */

    char *version;           /* server_version, extension: constraint (verify_cmp syntax) */
    char *setting;           /* setting: GUC name */
    char *expect;            /* setting, sql: expected value, or a constraint (starts with an operator) */
    char *extension;         /* extension */
    bool up_to_date;         /* extension: installed version must equal the server's default_version */
    char *access_method;     /* access_method */
    char *table;             /* column, index, row_count: [schema.]table */
    char *column;            /* column, index */
    char *type;              /* column: type name, as pg_type.typname ("int8") or format_type() without
                                typmod prints it ("bigint", "vector") */
    int64_t dimension;       /* column: vector dimension (typmod) */
    char *dimension_sql;     /* column: query whose first value is the expected dimension */
    char *index;             /* index: [schema.]name */
    char *method;            /* index: access method (hnsw, ivfflat, gin, btree …) */
    char *opclass;           /* index: operator class of the (first) column, e.g. vector_cosine_ops */
    int64_t m, ef_construction, lists; /* index: reloptions (pgvector defaults apply when absent) */
    int valid;               /* index: 1 must be valid+ready and not being built (default), 0 not checked */
    char *where;             /* index: expected partial-index predicate; row_count: filter */
    char *query;             /* plan, sql */
    char *vector_from;       /* plan: [schema.]table.column whose first non-NULL value fills $vector */
    char *text_from;         /* plan: [schema.]table.column (text or tsvector) giving one word for $text */
    char *expect_index;      /* plan: the plan must scan this index */
    bool no_seq_scan;        /* plan: the plan must not contain a Seq Scan */
    bool force_index;        /* plan: EXPLAIN with enable_seqscan = off (usability, not cost preference) */
    double max_ms;           /* plan: EXPLAIN ANALYZE execution time limit; < 0 when not given */
    int64_t min, max;        /* row_count */
    char *migrations_dir;    /* migrations */
} verify_check;

typedef struct {
    char *origin;            /* the spec's path, or "built-in memory-store profile" */
    verify_check *checks;
    int n;
} verify_spec;

/* Parses a spec from text (YAML, see pgmemctl-verify(1)); display is the name used in messages
 * (the file path). On any problem logs "<display>:<line>:<col>: <problem>" (unknown key, wrong
 * type, missing required field, unknown kind or severity, bad constraint, duplicate name) and
 * returns false with *out empty. On success *out owns everything (verify_spec_free). */
bool verify_spec_parse(const char *text, size_t len, const char *display, verify_spec *out);

/* Reads path and parses it (errors as above; an unreadable file is logged with strerror). */
bool verify_spec_load(const char *path, verify_spec *out);

/* The built-in memory-store profile (examples/verify/memory-store.yaml, embedded at build time). */
bool verify_spec_default(verify_spec *out);

void verify_spec_free(verify_spec *s);

/* ---- results ----------------------------------------------------------------------------- */

typedef enum { VR_PASS, VR_FAIL, VR_WARN, VR_SKIP } verify_status;

/* "pass", "fail", "warn", "skip". */
const char *verify_status_name(verify_status s);

/* The outcome of one check. A failing check of severity warn has status VR_WARN. Strings are
 * owned by the result (NULL when not applicable). */
typedef struct {
    const verify_check *check;  /* points into the spec */
    verify_status status;
    char *observed;          /* what the database showed, e.g. "0.7.4", "vector_l2_ops" */
    char *expected;          /* what the spec asked for, e.g. ">=0.8.0 and == 0.8.0 (newest)" */
    char *message;           /* one line: why it failed / was skipped, or what passed */
    char *hint;              /* how to fix it (the check's hint, or a generated one) */
    cJSON *details;          /* kind-specific extra data (plan nodes, index definition, build
                                progress …), an object or NULL; owned */
    int attempts;            /* how many times it ran (> 1 with --retry-timeout) */
    double seconds;          /* time of its last attempt */
} verify_result;

typedef struct {
    verify_result *results;  /* one per check, in spec order */
    int n;
    int pass, fail, warn, skip;
    char server_version[64]; /* SHOW server_version */
    int attempts;            /* rounds run (1 without --retry-timeout) */
    double seconds;          /* whole run */
} verify_report;

typedef struct {
    double retry_timeout;    /* seconds; 0 = one round */
    double retry_interval;   /* seconds between rounds (<= 0: 1) */
    double check_timeout;    /* statement_timeout per check, seconds; 0 = none */
} verify_options;

/* Runs every check of spec on c, each in a READ ONLY transaction (one transaction per round,
 * one savepoint per check, so a check whose SQL fails does not stop the others). With
 * retry_timeout > 0, checks that failed are run again in new rounds until they pass or the time
 * runs out; an index being built (pg_stat_progress_create_index) is reported on stderr and in the
 * check's details. Returns false only when the run could not go on (connection lost, could
 * not start a transaction) after logging why; check failures are results, not errors. Fills
 * *out (verify_report_free) in both cases. */
bool verify_run(pg_conn *c, const verify_spec *spec, const verify_options *opt, verify_report *out);

void verify_report_free(verify_report *r);

/* ---- rendering --------------------------------------------------------------------------- */

typedef enum { VF_JSON, VF_HUMAN, VF_JUNIT, VF_TAP } verify_format;

/* Parses "json", "human", "junit", "tap"; false for anything else. */
bool verify_format_parse(const char *s, verify_format *out);

/* The JSON document (report_new("verify") + database, spec, status, server_version, checks,
 * summary, attempts, seconds). database is the password-free conninfo. Caller frees. */
cJSON *verify_render_json(const verify_report *r, const char *database, const char *spec_origin);

/* Renders r in a text format (VF_HUMAN, VF_JUNIT or VF_TAP) into a newly allocated string
 * (caller frees); NULL when out of memory. color: ANSI colours in VF_HUMAN (the caller decides:
 * stdout is a terminal and NO_COLOR is unset). Registered secrets are masked in every value
 * before it is escaped (an escaped password would no longer match the final scrub). */
char *verify_render_text(const verify_report *r, verify_format f, const char *database, const char *spec_origin,
                         bool color);

/* Writes text to stdout in place of the JSON document (report_print_text: scrubbed of registered
 * secrets, then fflush/ferror); false (logged) when writing failed. */
bool verify_print_text(const char *text);

#endif

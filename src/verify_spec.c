/* verify_spec.c — reads a verify spec (a YAML file, or the built-in memory-store profile) into a
 * verify_spec with libyaml's event parser; every problem is reported as file:line:column. */
#include "log.h"
#include "migrations_gen.h"
#include "verify.h"
#include "verify_cmp.h"

#include <yaml.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 32                 /* nesting a spec never needs; guards the recursion */
#define MAX_SPEC_BYTES (8u << 20)    /* a spec file larger than this is surely a mistake */
#define NAME_QUERY_CHARS 60          /* default names of plan/sql checks: the query, cut to this */

static const char *const kind_names[VK__COUNT] = {
    [VK_SERVER_VERSION] = "server_version", [VK_SETTING] = "setting", [VK_EXTENSION] = "extension",
    [VK_ACCESS_METHOD] = "access_method",   [VK_COLUMN] = "column",   [VK_INDEX] = "index",
    [VK_PLAN] = "plan",                     [VK_MIGRATIONS] = "migrations", [VK_ROW_COUNT] = "row_count",
    [VK_SQL] = "sql",
};

const char *verify_kind_name(verify_kind k)
{
    return (int) k >= 0 && k < VK__COUNT ? kind_names[k] : NULL;
}

static void spec_error(const char *display, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void spec_error(const char *display, int line, int col, const char *fmt, ...)
{
    char problem[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    log_error("%s:%d:%d: %s", display, line, col, problem);
}

/* ---- the document as a small tree ---------------------------------------------------------- */

typedef enum { YN_SCALAR, YN_SEQ, YN_MAP } yn_type;

typedef struct ynode {
    yn_type type;
    int line, col;       /* 1-based start */
    char *text;          /* scalar: its value */
    bool plain;          /* scalar: written without quotes (so "16" is text, 16 a number) */
    struct ynode *kids;  /* sequence: items; mapping: key, value, key, value, … */
    int n, cap;
} ynode;

typedef struct {
    const char *display;
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev;
} yreader;

static void node_free(ynode *n)
{
    free(n->text);
    for (int i = 0; i < n->n; i++)
        node_free(&n->kids[i]);
    free(n->kids);
}

static bool read_event(yreader *r)
{
    if (r->have_ev)
        yaml_event_delete(&r->ev);
    r->have_ev = yaml_parser_parse(&r->parser, &r->ev) != 0;
    if (!r->have_ev) {
        const char *what = r->parser.problem ? r->parser.problem : "parse error";
        if (r->parser.error == YAML_MEMORY_ERROR)
            what = "out of memory";
        spec_error(r->display, (int) r->parser.problem_mark.line + 1, (int) r->parser.problem_mark.column + 1,
                   "invalid YAML: %s", what);
    }
    return r->have_ev;
}

static const char *node_what(yn_type t)
{
    return t == YN_SEQ ? "a list" : t == YN_MAP ? "a mapping" : "a single value";
}

/* A new zeroed child of p (counted at once, so node_free covers a half-built one). */
static ynode *add_kid(yreader *r, ynode *p)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 8;
        ynode *k = realloc(p->kids, (size_t) cap * sizeof *k);
        if (!k) {
            spec_error(r->display, p->line, p->col, "out of memory");
            return NULL;
        }
        p->kids = k;
        p->cap = cap;
    }
    ynode *k = &p->kids[p->n++];
    memset(k, 0, sizeof *k);
    return k;
}

static bool build_node(yreader *r, ynode *out, int depth);

/* Reads the items of a sequence, or the key/value pairs of a mapping, up to its end event. Keys
 * must be single values and unique. */
static bool build_children(yreader *r, ynode *out, int depth)
{
    yaml_event_type_t end = out->type == YN_SEQ ? YAML_SEQUENCE_END_EVENT : YAML_MAPPING_END_EVENT;
    for (;;) {
        if (!read_event(r))
            return false;
        if (r->ev.type == end)
            return true;
        ynode *k = add_kid(r, out);
        if (!k || !build_node(r, k, depth + 1))
            return false;
        if (out->type == YN_SEQ)
            continue;
        if (k->type != YN_SCALAR) {
            spec_error(r->display, k->line, k->col, "a key must be a single value, found %s", node_what(k->type));
            return false;
        }
        for (int i = 0; i + 1 < out->n - 1; i += 2)
            if (!strcmp(out->kids[i].text, k->text)) {
                spec_error(r->display, k->line, k->col, "duplicate key \"%s\" (first at line %d)", k->text,
                           out->kids[i].line);
                return false;
            }
        ynode *v;
        if (!read_event(r) || !(v = add_kid(r, out)) || !build_node(r, v, depth + 1))
            return false;
    }
}

/* Builds the node whose start event is the current one. */
static bool build_node(yreader *r, ynode *out, int depth)
{
    const yaml_event_t *e = &r->ev;
    out->line = (int) e->start_mark.line + 1;
    out->col = (int) e->start_mark.column + 1;
    const yaml_char_t *anchor = NULL;
    switch (e->type) {
    case YAML_SCALAR_EVENT: anchor = e->data.scalar.anchor; break;
    case YAML_SEQUENCE_START_EVENT: anchor = e->data.sequence_start.anchor; break;
    case YAML_MAPPING_START_EVENT: anchor = e->data.mapping_start.anchor; break;
    case YAML_ALIAS_EVENT:
        spec_error(r->display, out->line, out->col, "aliases (*%s) are not supported in a spec",
                   (const char *) e->data.alias.anchor);
        return false;
    default:
        spec_error(r->display, out->line, out->col, "unexpected YAML event");
        return false;
    }
    if (anchor) {
        spec_error(r->display, out->line, out->col, "anchors (&%s) are not supported in a spec",
                   (const char *) anchor);
        return false;
    }
    if (e->type == YAML_SCALAR_EVENT) {
        size_t len = e->data.scalar.length;
        out->type = YN_SCALAR;
        out->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (memchr(e->data.scalar.value, '\0', len)) {
            spec_error(r->display, out->line, out->col, "a value contains a NUL character");
            return false;
        }
        if (!(out->text = malloc(len + 1))) {
            spec_error(r->display, out->line, out->col, "out of memory");
            return false;
        }
        memcpy(out->text, e->data.scalar.value, len);
        out->text[len] = '\0';
        return true;
    }
    out->type = e->type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP;
    if (depth >= MAX_DEPTH) {
        spec_error(r->display, out->line, out->col, "nested too deeply");
        return false;
    }
    return build_children(r, out, depth);
}

/* Parses text into *root (one document). */
static bool load_tree(const char *text, size_t len, const char *display, ynode *root)
{
    yreader r = {.display = display};
    if (!yaml_parser_initialize(&r.parser)) {
        log_error("%s: out of memory", display);
        return false;
    }
    yaml_parser_set_input_string(&r.parser, (const unsigned char *) text, len);
    bool ok = false;
    if (!read_event(&r) || !read_event(&r)) /* stream start; document start or stream end */
        goto done;
    if (r.ev.type == YAML_STREAM_END_EVENT) {
        spec_error(display, 1, 1, "the spec is empty (expected a mapping with a \"checks\" list)");
        goto done;
    }
    if (!read_event(&r) || !build_node(&r, root, 0))
        goto done;
    if (!read_event(&r) || !read_event(&r)) /* document end; stream end or another document */
        goto done;
    if (r.ev.type != YAML_STREAM_END_EVENT) {
        spec_error(display, (int) r.ev.start_mark.line + 1, (int) r.ev.start_mark.column + 1,
                   "a spec is one YAML document; found a second one");
        goto done;
    }
    ok = true;
done:
    if (r.have_ev)
        yaml_event_delete(&r.ev);
    yaml_parser_delete(&r.parser);
    return ok;
}

/* ---- the keys of a check ------------------------------------------------------------------- */

typedef enum {
    KT_KIND,     /* read before the others */
    KT_STR,      /* non-empty text */
    KT_VERSION,  /* VCMP_VERSION constraint */
    KT_VALUE,    /* VCMP_VALUE constraint (may be "") */
    KT_PATH,     /* [schema.]table.column */
    KT_BOOL,
    KT_VALID,    /* a boolean stored as 1 / 0 */
    KT_INT,      /* plain decimal integer >= min */
    KT_MS,       /* plain number > 0 */
    KT_SEVERITY,
    KT_SKIP,     /* a boolean, or a reason (implies true) */
} key_type;

#define K(kind) (1u << (kind))
#define ALL_KINDS ((1u << VK__COUNT) - 1)

typedef struct {
    const char *key;
    key_type type;
    size_t off;        /* of the field in verify_check */
    unsigned kinds;    /* the kinds that accept the key */
    unsigned required; /* the kinds that need it */
    int64_t min;       /* KT_INT */
} key_def;

#define F(field) offsetof(verify_check, field)

static const key_def key_defs[] = {
    {"kind", KT_KIND, 0, ALL_KINDS, ALL_KINDS, 0},
    {"name", KT_STR, F(name), ALL_KINDS, 0, 0},
    {"severity", KT_SEVERITY, F(severity), ALL_KINDS, 0, 0},
    {"skip", KT_SKIP, F(skip), ALL_KINDS, 0, 0},
    {"hint", KT_STR, F(hint), ALL_KINDS, 0, 0},
    {"version", KT_VERSION, F(version), K(VK_SERVER_VERSION) | K(VK_EXTENSION), K(VK_SERVER_VERSION), 0},
    {"setting", KT_STR, F(setting), K(VK_SETTING), K(VK_SETTING), 0},
    {"expect", KT_VALUE, F(expect), K(VK_SETTING) | K(VK_SQL), K(VK_SETTING) | K(VK_SQL), 0},
    {"extension", KT_STR, F(extension), K(VK_EXTENSION), K(VK_EXTENSION), 0},
    {"up_to_date", KT_BOOL, F(up_to_date), K(VK_EXTENSION), 0, 0},
    {"access_method", KT_STR, F(access_method), K(VK_ACCESS_METHOD), K(VK_ACCESS_METHOD), 0},
    {"table", KT_STR, F(table), K(VK_COLUMN) | K(VK_INDEX) | K(VK_ROW_COUNT), K(VK_COLUMN) | K(VK_ROW_COUNT), 0},
    {"column", KT_STR, F(column), K(VK_COLUMN) | K(VK_INDEX), K(VK_COLUMN), 0},
    {"type", KT_STR, F(type), K(VK_COLUMN), 0, 0},
    {"dimension", KT_INT, F(dimension), K(VK_COLUMN), 0, 1},
    {"dimension_sql", KT_STR, F(dimension_sql), K(VK_COLUMN), 0, 0},
    {"index", KT_STR, F(index), K(VK_INDEX), 0, 0},
    {"method", KT_STR, F(method), K(VK_INDEX), 0, 0},
    {"opclass", KT_STR, F(opclass), K(VK_INDEX), 0, 0},
    {"m", KT_INT, F(m), K(VK_INDEX), 0, 2},
    {"ef_construction", KT_INT, F(ef_construction), K(VK_INDEX), 0, 1},
    {"lists", KT_INT, F(lists), K(VK_INDEX), 0, 1},
    {"valid", KT_VALID, F(valid), K(VK_INDEX), 0, 0},
    {"where", KT_STR, F(where), K(VK_INDEX) | K(VK_ROW_COUNT), 0, 0},
    {"query", KT_STR, F(query), K(VK_PLAN) | K(VK_SQL), K(VK_PLAN) | K(VK_SQL), 0},
    {"vector_from", KT_PATH, F(vector_from), K(VK_PLAN), 0, 0},
    {"text_from", KT_PATH, F(text_from), K(VK_PLAN), 0, 0},
    {"expect_index", KT_STR, F(expect_index), K(VK_PLAN), 0, 0},
    {"no_seq_scan", KT_BOOL, F(no_seq_scan), K(VK_PLAN), 0, 0},
    {"force_index", KT_BOOL, F(force_index), K(VK_PLAN), 0, 0},
    {"max_ms", KT_MS, F(max_ms), K(VK_PLAN), 0, 0},
    {"migrations_dir", KT_STR, F(migrations_dir), K(VK_MIGRATIONS), 0, 0},
    {"min", KT_INT, F(min), K(VK_ROW_COUNT), 0, 0},
    {"max", KT_INT, F(max), K(VK_ROW_COUNT), 0, 0},
};

#define N_KEYS ((int) (sizeof key_defs / sizeof *key_defs))

static int key_index(const char *key)
{
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(key_defs[i].key, key))
            return i;
    return -1;
}

static bool is_null(const ynode *v)
{
    return v->type == YN_SCALAR && v->plain &&
           (!v->text[0] || !strcmp(v->text, "~") || !strcasecmp(v->text, "null"));
}

static bool parse_bool_word(const char *s, bool *b)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(s, yes[i]))
            return *b = true, true;
        if (!strcasecmp(s, no[i]))
            return *b = false, true;
    }
    return false;
}

/* A single, non-null value for key (for any key of the spec). */
static bool need_scalar(const char *display, const char *key, const ynode *v)
{
    if (v->type != YN_SCALAR) {
        spec_error(display, v->line, v->col, "\"%s\" must be a single value, found %s", key, node_what(v->type));
        return false;
    }
    if (is_null(v)) {
        spec_error(display, v->line, v->col, "\"%s\" has no value", key);
        return false;
    }
    return true;
}

static bool store_str(const char *display, const ynode *v, char **field)
{
    free(*field);
    if (!(*field = strdup(v->text))) {
        spec_error(display, v->line, v->col, "out of memory");
        return false;
    }
    return true;
}

/* "schema.table.column" or "table.column": 2 or 3 non-empty dot-separated parts. */
static bool is_column_path(const char *s)
{
    int parts = 1;
    size_t run = 0;
    for (; *s; s++) {
        if (*s != '.') {
            run++;
            continue;
        }
        if (run == 0)
            return false;
        parts++;
        run = 0;
    }
    return run > 0 && parts >= 2 && parts <= 3;
}

/* Converts the value v of key d and stores it in c. */
static bool set_field(const char *display, const key_def *d, const ynode *v, verify_check *c)
{
    void *field = (char *) c + d->off;
    if (!need_scalar(display, d->key, v))
        return false;
    const char *t = v->text;
    char why[256];
    bool b;
    switch (d->type) {
    case KT_KIND:
        return true;
    case KT_STR:
    case KT_PATH:
        if (!t[strspn(t, " \t\r\n\f\v")]) {
            spec_error(display, v->line, v->col, "\"%s\" must not be empty", d->key);
            return false;
        }
        if (d->type == KT_PATH && !is_column_path(t)) {
            spec_error(display, v->line, v->col, "\"%s\" must be [schema.]table.column, found \"%s\"", d->key, t);
            return false;
        }
        return store_str(display, v, field);
    case KT_VERSION:
    case KT_VALUE:
        if (!vcmp_validate(t, d->type == KT_VERSION ? VCMP_VERSION : VCMP_VALUE, why, sizeof why)) {
            spec_error(display, v->line, v->col, "bad \"%s\" constraint \"%s\": %s", d->key, t, why);
            return false;
        }
        return store_str(display, v, field);
    case KT_BOOL:
    case KT_VALID:
        if (!parse_bool_word(t, &b)) {
            spec_error(display, v->line, v->col, "\"%s\" must be true or false, found \"%s\"", d->key, t);
            return false;
        }
        if (d->type == KT_BOOL)
            *(bool *) field = b;
        else
            *(int *) field = b ? 1 : 0;
        return true;
    case KT_INT: {
        char *end = NULL;
        errno = 0;
        long long n = v->plain && (isdigit((unsigned char) t[0]) || t[0] == '-' || t[0] == '+')
                          ? strtoll(t, &end, 10)
                          : 0;
        if (!end || *end || errno) {
            spec_error(display, v->line, v->col, "\"%s\" must be an integer, found %s\"%s\"", d->key,
                       v->plain ? "" : "the quoted text ", t);
            return false;
        }
        if (n < d->min) {
            spec_error(display, v->line, v->col, "\"%s\" must be at least %lld, found %lld", d->key,
                       (long long) d->min, n);
            return false;
        }
        *(int64_t *) field = n;
        return true;
    }
    case KT_MS: {
        char *end = NULL;
        double ms = v->plain && (isdigit((unsigned char) t[0]) || t[0] == '.' || t[0] == '+') ? strtod(t, &end) : 0;
        if (!end || *end || !isfinite(ms) || ms <= 0) {
            spec_error(display, v->line, v->col, "\"%s\" must be a number of milliseconds > 0, found \"%s\"",
                       d->key, t);
            return false;
        }
        *(double *) field = ms;
        return true;
    }
    case KT_SEVERITY:
        if (strcmp(t, "error") != 0 && strcmp(t, "warn") != 0) {
            spec_error(display, v->line, v->col, "unknown severity \"%s\" (error or warn)", t);
            return false;
        }
        *(verify_severity *) field = !strcmp(t, "warn") ? VSEV_WARN : VSEV_ERROR;
        return true;
    case KT_SKIP:
        if (parse_bool_word(t, &b)) {
            c->skip = b;
            return true;
        }
        if (!t[0]) {
            spec_error(display, v->line, v->col, "\"skip\" must be true, false or a reason, found \"\"");
            return false;
        }
        c->skip = true;
        return store_str(display, v, &c->skip_reason);
    }
    return false;
}

/* ---- a check ------------------------------------------------------------------------------- */

static void check_free(verify_check *c)
{
    char *strings[] = {c->name,    c->skip_reason, c->hint,    c->version,       c->setting,     c->expect,
                       c->extension, c->access_method, c->table, c->column,     c->type,        c->dimension_sql,
                       c->index,   c->method,      c->opclass, c->where,         c->query,       c->vector_from,
                       c->text_from, c->expect_index, c->migrations_dir};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        free(strings[i]);
    memset(c, 0, sizeof *c);
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t) n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t) n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

/* The query on one line (runs of white space made one space), cut to NAME_QUERY_CHARS characters
 * with a final "…" when longer. */
static char *query_summary(const char *q)
{
    char *s = malloc(strlen(q) + sizeof "…");
    if (!s)
        return NULL;
    size_t n = 0, chars = 0, cut = 0;
    bool space = false;
    for (const char *p = q; *p; p++) {
        if (isspace((unsigned char) *p)) {
            space = n > 0;
            continue;
        }
        if (space) {
            if (++chars == NAME_QUERY_CHARS)
                cut = n;
            s[n++] = ' ';
            space = false;
        }
        if (((unsigned char) *p & 0xC0) != 0x80 && ++chars == NAME_QUERY_CHARS)
            cut = n; /* where the last character that fits before "…" ends */
        s[n++] = *p;
    }
    s[n] = '\0';
    if (chars > NAME_QUERY_CHARS) {
        while (cut > 0 && s[cut - 1] == ' ')
            cut--;
        memcpy(s + cut, "…", sizeof "…");
    }
    return s;
}

static char *default_name(const verify_check *c)
{
    const char *kind = kind_names[c->kind];
    switch (c->kind) {
    case VK_SERVER_VERSION:
    case VK_MIGRATIONS: return strdup(kind);
    case VK_SETTING: return str_printf("%s: %s", kind, c->setting);
    case VK_EXTENSION: return str_printf("%s: %s", kind, c->extension);
    case VK_ACCESS_METHOD: return str_printf("%s: %s", kind, c->access_method);
    case VK_COLUMN: return str_printf("%s: %s.%s", kind, c->table, c->column);
    case VK_INDEX:
        return c->index ? str_printf("%s: %s", kind, c->index) : str_printf("%s: %s.%s", kind, c->table, c->column);
    case VK_ROW_COUNT: return str_printf("%s: %s", kind, c->table);
    case VK_PLAN:
    case VK_SQL: {
        char *q = query_summary(c->query);
        char *s = q ? str_printf("%s: %s", kind, q) : NULL;
        free(q);
        return s;
    }
    case VK__COUNT: break;
    }
    return NULL;
}

/* True when the query mentions $name as a whole word ("$vector", not "$vectors"). */
static bool uses_param(const char *query, const char *param)
{
    size_t n = strlen(param);
    for (const char *s = strstr(query, param); s; s = strstr(s + 1, param))
        if (!isalnum((unsigned char) s[n]) && s[n] != '_')
            return true;
    return false;
}

/* Where a given key / its value stands in the check's mapping (NULL: not given). */
typedef struct {
    const ynode *key[N_KEYS];
    const ynode *value[N_KEYS];
} seen_keys;

static const ynode *seen_value(const seen_keys *s, const char *key) { return s->value[key_index(key)]; }
static const ynode *seen_key(const seen_keys *s, const char *key) { return s->key[key_index(key)]; }

/* The later of two given keys (the one that conflicts with the other). */
static const ynode *later(const ynode *a, const ynode *b)
{
    return a->line > b->line || (a->line == b->line && a->col > b->col) ? a : b;
}

/* $vector needs vector_from and the other way round (same for $text / text_from). */
static bool check_param(const char *display, const seen_keys *s, const verify_check *c, const char *param,
                        const char *from_key, const char *from)
{
    bool used = uses_param(c->query, param);
    if (used && !from) {
        const ynode *q = seen_value(s, "query");
        spec_error(display, q->line, q->col, "the query uses %s but \"%s\" is not given", param, from_key);
        return false;
    }
    if (!used && from) {
        const ynode *k = seen_key(s, from_key);
        spec_error(display, k->line, k->col, "\"%s\" is given but the query has no %s", from_key, param);
        return false;
    }
    return true;
}

/* Rules between keys, after every key was read and the required ones are present. */
static bool check_combinations(const char *display, const ynode *m, const seen_keys *s, const verify_check *c)
{
    switch (c->kind) {
    case VK_COLUMN:
        if (c->dimension >= 0 && c->dimension_sql) {
            const ynode *k = later(seen_key(s, "dimension"), seen_key(s, "dimension_sql"));
            spec_error(display, k->line, k->col, "\"dimension\" and \"dimension_sql\" cannot both be given");
            return false;
        }
        return true;
    case VK_INDEX:
        if (!c->index && !(c->table && c->column)) {
            spec_error(display, m->line, m->col, "an index check needs \"index\" or both \"table\" and \"column\"");
            return false;
        }
        return true;
    case VK_PLAN:
        if (!c->expect_index && !c->no_seq_scan && c->max_ms < 0) {
            spec_error(display, m->line, m->col,
                       "a plan check needs \"expect_index\", \"no_seq_scan: true\" or \"max_ms\"");
            return false;
        }
        return check_param(display, s, c, "$vector", "vector_from", c->vector_from) &&
               check_param(display, s, c, "$text", "text_from", c->text_from);
    case VK_ROW_COUNT:
        if (c->min < 0 && c->max < 0) {
            spec_error(display, m->line, m->col, "a row_count check needs \"min\" or \"max\"");
            return false;
        }
        if (c->min >= 0 && c->max >= 0 && c->min > c->max) {
            const ynode *v = later(seen_value(s, "min"), seen_value(s, "max"));
            spec_error(display, v->line, v->col, "\"min\" (%lld) is greater than \"max\" (%lld)",
                       (long long) c->min, (long long) c->max);
            return false;
        }
        return true;
    default:
        return true;
    }
}

/* Finds and reads the kind of the check mapping m. */
static bool read_kind(const char *display, const ynode *m, verify_kind *kind)
{
    for (int i = 0; i + 1 < m->n; i += 2) {
        if (strcmp(m->kids[i].text, "kind") != 0)
            continue;
        const ynode *v = &m->kids[i + 1];
        if (!need_scalar(display, "kind", v))
            return false;
        for (int k = 0; k < VK__COUNT; k++)
            if (!strcmp(v->text, kind_names[k])) {
                *kind = (verify_kind) k;
                return true;
            }
        spec_error(display, v->line, v->col,
                   "unknown kind \"%s\" (server_version, setting, extension, access_method, column, index, plan, "
                   "migrations, row_count or sql)",
                   v->text);
        return false;
    }
    spec_error(display, m->line, m->col, "missing required key \"kind\"");
    return false;
}

static bool parse_check(const char *display, const ynode *m, verify_check *c)
{
    if (m->type != YN_MAP) {
        spec_error(display, m->line, m->col, "a check must be a mapping (kind: …), found %s", node_what(m->type));
        return false;
    }
    verify_kind kind;
    if (!read_kind(display, m, &kind))
        return false;
    c->kind = kind;
    c->severity = VSEV_ERROR;
    c->line = m->line;
    c->col = m->col;
    c->up_to_date = kind == VK_EXTENSION;
    c->valid = kind == VK_INDEX ? 1 : -1;
    c->dimension = c->m = c->ef_construction = c->lists = c->min = c->max = -1;
    c->max_ms = -1;

    seen_keys seen = {0};
    for (int i = 0; i + 1 < m->n; i += 2) {
        const ynode *k = &m->kids[i], *v = &m->kids[i + 1];
        int d = key_index(k->text);
        if (d < 0 || !(key_defs[d].kinds & K(kind))) {
            spec_error(display, k->line, k->col, "unknown key \"%s\" for a %s check", k->text, kind_names[kind]);
            return false;
        }
        seen.key[d] = k;
        seen.value[d] = v;
        if (!set_field(display, &key_defs[d], v, c))
            return false;
    }
    for (int d = 0; d < N_KEYS; d++)
        if ((key_defs[d].required & K(kind)) && !seen.key[d]) {
            spec_error(display, m->line, m->col, "missing required key \"%s\" for a %s check", key_defs[d].key,
                       kind_names[kind]);
            return false;
        }
    if (!check_combinations(display, m, &seen, c))
        return false;
    if (!c->name && !(c->name = default_name(c))) {
        spec_error(display, m->line, m->col, "out of memory");
        return false;
    }
    return true;
}

/* ---- the spec ------------------------------------------------------------------------------ */

/* Reads the checks list; the spec's name positions are the check mappings or their name values. */
static bool parse_checks(const char *display, const ynode *list, verify_spec *out)
{
    if (is_null(list) || (list->type == YN_SEQ && list->n == 0)) {
        spec_error(display, list->line, list->col, "no checks");
        return false;
    }
    if (list->type != YN_SEQ) {
        spec_error(display, list->line, list->col, "\"checks\" must be a list of checks, found %s",
                   node_what(list->type));
        return false;
    }
    if (!(out->checks = calloc((size_t) list->n, sizeof *out->checks))) {
        spec_error(display, list->line, list->col, "out of memory");
        return false;
    }
    for (int i = 0; i < list->n; i++) {
        const ynode *m = &list->kids[i];
        out->n = i + 1; /* so that verify_spec_free releases a half-read check */
        if (!parse_check(display, m, &out->checks[i]))
            return false;
        for (int j = 0; j < i; j++)
            if (!strcmp(out->checks[j].name, out->checks[i].name)) {
                int line = m->line, col = m->col;
                for (int k = 0; k + 1 < m->n; k += 2)
                    if (!strcmp(m->kids[k].text, "name"))
                        line = m->kids[k + 1].line, col = m->kids[k + 1].col;
                spec_error(display, line, col, "duplicate check name \"%s\" (the check at line %d has it too)",
                           out->checks[i].name, out->checks[j].line);
                return false;
            }
    }
    return true;
}

static bool parse_root(const char *display, const ynode *root, verify_spec *out)
{
    if (root->type != YN_MAP) {
        if (is_null(root))
            spec_error(display, root->line, root->col, "the spec is empty (expected a mapping with a \"checks\" list)");
        else
            spec_error(display, root->line, root->col, "a spec must be a mapping with a \"checks\" list, found %s",
                       node_what(root->type));
        return false;
    }
    bool have_checks = false;
    for (int i = 0; i + 1 < root->n; i += 2) {
        const ynode *k = &root->kids[i], *v = &root->kids[i + 1];
        if (!strcmp(k->text, "checks")) {
            if (!parse_checks(display, v, out))
                return false;
            have_checks = true;
        } else if (!strcmp(k->text, "description")) {
            if (v->type != YN_SCALAR) {
                spec_error(display, v->line, v->col, "\"description\" must be a single value, found %s",
                           node_what(v->type));
                return false;
            }
        } else {
            spec_error(display, k->line, k->col, "unknown key \"%s\" (a spec has \"checks\" and \"description\")",
                       k->text);
            return false;
        }
    }
    if (!have_checks) {
        spec_error(display, root->line, root->col, "missing required key \"checks\"");
        return false;
    }
    return true;
}

bool verify_spec_parse(const char *text, size_t len, const char *display, verify_spec *out)
{
    *out = (verify_spec){0};
    ynode root = {0};
    if (!text)
        text = "";
    bool ok = load_tree(text, len, display, &root) && parse_root(display, &root, out);
    node_free(&root);
    if (ok && !(out->origin = strdup(display))) {
        log_error("%s: out of memory", display);
        ok = false;
    }
    if (!ok)
        verify_spec_free(out);
    return ok;
}

bool verify_spec_load(const char *path, verify_spec *out)
{
    *out = (verify_spec){0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("%s: cannot open the spec: %s", path, strerror(errno));
        return false;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = true;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_SPEC_BYTES) {
                log_error("%s: the spec is larger than %u MiB", path, MAX_SPEC_BYTES >> 20);
                ok = false;
                break;
            }
            cap = cap ? 2 * cap : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                log_error("%s: out of memory", path);
                ok = false;
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                log_error("%s: cannot read the spec: %s", path, strerror(errno));
                ok = false;
            }
            break;
        }
    }
    fclose(f);
    ok = ok && verify_spec_parse(buf, len, path, out);
    free(buf);
    return ok;
}

bool verify_spec_default(verify_spec *out)
{
    *out = (verify_spec){0};
    for (int i = 0; i < embedded_profiles_count; i++)
        if (!strcmp(embedded_profiles[i].name, "memory-store.yaml"))
            return verify_spec_parse(embedded_profiles[i].data, embedded_profiles[i].len,
                                     "built-in memory-store profile", out);
    log_error("the built-in memory-store profile is missing from this build");
    return false;
}

void verify_spec_free(verify_spec *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        check_free(&s->checks[i]);
    free(s->checks);
    free(s->origin);
    *s = (verify_spec){0};
}

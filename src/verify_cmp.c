/* verify_cmp.c — verify's comparisons: version constraints (">=0.8.0,<0.9") and expected values of
 * settings and query results, with PostgreSQL's memory and time units (syntax in verify_cmp.h). */
#include "verify_cmp.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cmp_op;

static const char *const op_text[] = {"==", "!=", "<", "<=", ">", ">="};

/* One term of a constraint; value points into the constraint text. */
typedef struct {
    cmp_op op;
    const char *v;
    size_t vlen;
} term;

#define MAX_TERMS 16
#define MAX_COMPONENTS 16

static void set_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && whylen > 0)
        vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static bool is_op_char(char c) { return c == '<' || c == '>' || c == '=' || c == '!'; }

/* Narrows s[0..*len) to its part without surrounding white space. */
static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && isspace((unsigned char) *s)) {
        s++;
        (*len)--;
    }
    while (*len > 0 && isspace((unsigned char) s[*len - 1]))
        (*len)--;
    return s;
}

bool vcmp_has_operator(const char *constraint)
{
    if (!constraint)
        return false;
    while (isspace((unsigned char) *constraint))
        constraint++;
    return is_op_char(*constraint);
}

/* Matches the longest operator at the start of s; returns its length (0: none). */
static size_t match_op(const char *s, size_t len, cmp_op *op)
{
    static const struct {
        const char *text;
        cmp_op op;
    } ops[] = {{">=", OP_GE}, {"<=", OP_LE}, {"==", OP_EQ}, {"!=", OP_NE}, {">", OP_GT}, {"<", OP_LT}, {"=", OP_EQ}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        size_t n = strlen(ops[i].text);
        if (len >= n && !strncmp(s, ops[i].text, n)) {
            *op = ops[i].op;
            return n;
        }
    }
    return 0;
}

/* Splits a constraint into its terms (syntax only; the domain checks the values). */
static bool parse_terms(const char *constraint, term *t, int *n, char *why, size_t whylen)
{
    *n = 0;
    if (!constraint) {
        set_why(why, whylen, "no constraint");
        return false;
    }
    size_t len = strlen(constraint);
    const char *s = trim(constraint, &len);
    if (len == 0 || !is_op_char(*s)) { /* a plain value: equality with the whole text */
        t[0] = (term){OP_EQ, s, len};
        *n = 1;
        return true;
    }
    const char *end = s + len;
    for (const char *p = s;;) {
        const char *comma = memchr(p, ',', (size_t) (end - p));
        const char *stop = comma ? comma : end;
        size_t plen = (size_t) (stop - p);
        const char *piece = trim(p, &plen);
        if (plen == 0) {
            set_why(why, whylen, "empty term");
            return false;
        }
        cmp_op op = OP_EQ;
        size_t oplen = match_op(piece, plen, &op);
        if (oplen == 0 && !is_op_char(*piece)) {
            set_why(why, whylen, "term \"%.*s\" has no operator", (int) plen, piece);
            return false;
        }
        if (oplen == 0 || (oplen < plen && is_op_char(piece[oplen]))) {
            size_t run = 0;
            while (run < plen && is_op_char(piece[run]))
                run++;
            set_why(why, whylen, "unknown operator \"%.*s\"", (int) run, piece);
            return false;
        }
        size_t vlen = plen - oplen;
        const char *v = trim(piece + oplen, &vlen);
        if (vlen == 0 || is_op_char(*v)) {
            if (vlen == 0)
                set_why(why, whylen, "missing value after \"%s\"", op_text[op]);
            else
                set_why(why, whylen, "unknown operator \"%.*s\"", (int) (v - piece + 1), piece);
            return false;
        }
        if (*n == MAX_TERMS) {
            set_why(why, whylen, "more than %d terms", MAX_TERMS);
            return false;
        }
        t[(*n)++] = (term){op, v, vlen};
        if (!comma)
            return true;
        p = comma + 1;
    }
}

/* ---- versions ---------------------------------------------------------------------------- */

typedef struct {
    long long c[MAX_COMPONENTS];
    int n;
} version;

/* Parses a dotted version from s[0..len) (already trimmed). Each component starts with digits;
 * a component with a non-numeric tail ("16devel", "0-rc") ends the version and the tail is
 * dropped. With observed, anything from the first white space on is ignored ("17.2 (Debian …)");
 * otherwise white space inside is an error. */
static bool parse_version(const char *s, size_t len, bool observed, version *out)
{
    out->n = 0;
    if (observed) {
        for (size_t i = 0; i < len; i++)
            if (isspace((unsigned char) s[i])) {
                len = i;
                break;
            }
    } else {
        for (size_t i = 0; i < len; i++)
            if (isspace((unsigned char) s[i]))
                return false;
    }
    size_t i = 0;
    for (;;) {
        if (i >= len || !isdigit((unsigned char) s[i]) || out->n == MAX_COMPONENTS)
            return false;
        long long v = 0;
        while (i < len && isdigit((unsigned char) s[i])) {
            if (v > 100000000000000LL)
                return false; /* absurdly long; keeps the arithmetic in range */
            v = v * 10 + (s[i] - '0');
            i++;
        }
        out->c[out->n++] = v;
        if (i == len)
            return true;
        if (s[i] != '.')
            return true; /* a tail such as "devel", "beta2", "-1": dropped */
        i++;
    }
}

/* Compares component by component over the first `upto` components, a missing one counting as 0. */
static int version_cmp_n(const version *a, const version *b, int upto)
{
    for (int i = 0; i < upto; i++) {
        long long x = i < a->n ? a->c[i] : 0, y = i < b->n ? b->c[i] : 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

int vcmp_version_compare(const char *a, const char *b)
{
    version va, vb;
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    const char *ta = a ? trim(a, &la) : "", *tb = b ? trim(b, &lb) : "";
    bool oka = parse_version(ta, la, true, &va), okb = parse_version(tb, lb, true, &vb);
    if (!oka || !okb) { /* not versions: a stable order rather than a guess */
        int r = strcmp(a ? a : "", b ? b : "");
        return (r > 0) - (r < 0);
    }
    return version_cmp_n(&va, &vb, va.n > vb.n ? va.n : vb.n);
}

static bool op_holds(cmp_op op, int cmp)
{
    switch (op) {
    case OP_EQ: return cmp == 0;
    case OP_NE: return cmp != 0;
    case OP_LT: return cmp < 0;
    case OP_LE: return cmp <= 0;
    case OP_GT: return cmp > 0;
    case OP_GE: return cmp >= 0;
    }
    return false;
}

/* ---- values ------------------------------------------------------------------------------ */

typedef enum { UC_PLAIN, UC_MEMORY, UC_TIME } unit_class;

static const char *const class_text[] = {"a plain number", "a memory size", "a time"};

static bool parse_bool(const char *s, size_t len, bool *b)
{
    static const struct {
        const char *text;
        bool value;
    } words[] = {{"on", true},  {"off", false}, {"true", true}, {"false", false}, {"yes", true},
                 {"no", false}, {"t", true},    {"f", false},   {"1", true},      {"0", false}};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strlen(words[i].text) == len && !strncasecmp(s, words[i].text, len)) {
            *b = words[i].value;
            return true;
        }
    return false;
}

/* Parses "128MB", "1.5 s", "-1", "0.25" (trimmed input) into a value in the class's base unit
 * (bytes, milliseconds, or the plain number). Units as postgresql.conf writes them, any case. */
static bool parse_number(const char *s, size_t len, double *value, unit_class *cls)
{
    static const struct {
        const char *unit;
        unit_class cls;
        double factor;
    } units[] = {{"B", UC_MEMORY, 1.0},          {"kB", UC_MEMORY, 1024.0},
                 {"MB", UC_MEMORY, 1048576.0},   {"GB", UC_MEMORY, 1073741824.0},
                 {"TB", UC_MEMORY, 1099511627776.0}, {"us", UC_TIME, 0.001},
                 {"ms", UC_TIME, 1.0},           {"s", UC_TIME, 1000.0},
                 {"min", UC_TIME, 60000.0},      {"h", UC_TIME, 3600000.0},
                 {"d", UC_TIME, 86400000.0}};
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < len && isdigit((unsigned char) s[i]); i++)
        digits++;
    if (i < len && s[i] == '.')
        for (i++; i < len && isdigit((unsigned char) s[i]); i++)
            digits++;
    if (digits == 0)
        return false;
    if (i + 1 < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < len && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < len && isdigit((unsigned char) s[j])) {
            while (j < len && isdigit((unsigned char) s[j]))
                j++;
            i = j;
        }
    }
    char num[64];
    if (i >= sizeof num)
        return false;
    memcpy(num, s, i);
    num[i] = '\0';
    double v = strtod(num, NULL);
    if (!isfinite(v))
        return false;
    size_t ulen = len - i;
    const char *u = trim(s + i, &ulen);
    if (ulen == 0) {
        *value = v;
        *cls = UC_PLAIN;
        return true;
    }
    for (size_t k = 0; k < sizeof units / sizeof *units; k++)
        if (strlen(units[k].unit) == ulen && !strncasecmp(u, units[k].unit, ulen)) {
            *value = v * units[k].factor;
            *cls = units[k].cls;
            return true;
        }
    return false;
}

/* -1, 0, 1 with a relative tolerance for unit conversions such as 0.1s vs 100ms. */
static int num_cmp(double a, double b)
{
    double tol = 1e-9 * fmax(fabs(a), fabs(b));
    if (fabs(a - b) <= tol)
        return 0;
    return a < b ? -1 : 1;
}

/* Compares the observed value o with the term's value c (both trimmed). *cmp receives <0, 0, >0
 * (ordering) or 0 / 1 (equal / not, for == and !=). False with why when they cannot be compared. */
static bool value_compare(const term *t, const char *o, size_t olen, int *cmp, char *why, size_t whylen)
{
    bool ordering = t->op != OP_EQ && t->op != OP_NE;
    bool bc, bo;
    if (!ordering && parse_bool(t->v, t->vlen, &bc) && parse_bool(o, olen, &bo)) {
        *cmp = bc != bo;
        return true;
    }
    double nc, no;
    unit_class cc, co;
    bool numc = parse_number(t->v, t->vlen, &nc, &cc), numo = parse_number(o, olen, &no, &co);
    if (numc && numo) {
        if (cc != co) {
            set_why(why, whylen, "cannot compare \"%.*s\" (%s) with \"%.*s\" (%s)", (int) olen, o, class_text[co],
                    (int) t->vlen, t->v, class_text[cc]);
            return false;
        }
        /* observed OP expected: the sign is observed relative to the constraint's value */
        *cmp = num_cmp(no, nc);
        return true;
    }
    if (ordering) {
        const char *bad = numc ? o : t->v;
        size_t badlen = numc ? olen : t->vlen;
        set_why(why, whylen, "\"%.*s\" is not a number (\"%s\" needs one)", (int) badlen, bad, op_text[t->op]);
        return false;
    }
    *cmp = !(olen == t->vlen && !strncasecmp(o, t->v, olen));
    return true;
}

/* ---- public ------------------------------------------------------------------------------ */

/* Parses the constraint and checks every term's value against the domain. */
static bool parse_checked(const char *constraint, vcmp_domain domain, term *t, int *n, char *why, size_t whylen)
{
    if (!parse_terms(constraint, t, n, why, whylen))
        return false;
    for (int i = 0; i < *n; i++) {
        if (domain == VCMP_VERSION) {
            version v;
            if (t[i].vlen == 0) {
                set_why(why, whylen, "empty version constraint");
                return false;
            }
            if (!parse_version(t[i].v, t[i].vlen, false, &v)) {
                set_why(why, whylen, "\"%.*s\" is not a version", (int) t[i].vlen, t[i].v);
                return false;
            }
        } else if (t[i].op != OP_EQ && t[i].op != OP_NE) {
            double d;
            unit_class c;
            if (!parse_number(t[i].v, t[i].vlen, &d, &c)) {
                set_why(why, whylen, "\"%.*s\" is not a number (\"%s\" needs one)", (int) t[i].vlen, t[i].v,
                        op_text[t[i].op]);
                return false;
            }
        }
    }
    return true;
}

bool vcmp_validate(const char *constraint, vcmp_domain domain, char *why, size_t whylen)
{
    term t[MAX_TERMS];
    int n;
    return parse_checked(constraint, domain, t, &n, why, whylen);
}

bool vcmp_eval(const char *constraint, vcmp_domain domain, const char *observed, bool *holds, char *why,
               size_t whylen)
{
    term t[MAX_TERMS];
    int n;
    *holds = false;
    set_why(why, whylen, "%s", "");
    if (!parse_checked(constraint, domain, t, &n, why, whylen))
        return false;
    if (!observed) {
        set_why(why, whylen, "no value (NULL)");
        return false;
    }
    size_t olen = strlen(observed);
    const char *o = trim(observed, &olen);
    version vo;
    if (domain == VCMP_VERSION && !parse_version(o, olen, true, &vo)) {
        set_why(why, whylen, "\"%.*s\" is not a version", (int) olen, o);
        return false;
    }
    bool all = true;
    for (int i = 0; i < n; i++) {
        int cmp;
        if (domain == VCMP_VERSION) {
            version vc;
            parse_version(t[i].v, t[i].vlen, false, &vc); /* checked above */
            bool ordering = t[i].op != OP_EQ && t[i].op != OP_NE;
            cmp = version_cmp_n(&vo, &vc, ordering && vo.n > vc.n ? vo.n : vc.n);
        } else if (!value_compare(&t[i], o, olen, &cmp, why, whylen)) {
            return false;
        }
        if (!op_holds(t[i].op, cmp))
            all = false;
    }
    *holds = all;
    return true;
}

/* upgrade_compat.c — preflight of a major upgrade: collects the options, settings, index access
 * methods and extensions the old cluster uses and tries each on the new server, rolled back. */
#include "upgrade_compat.h"
#include "log.h"
#include "report.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_SCHEMA "pgmemctl_compat_probe"
#define SCRATCH PROBE_SCHEMA ".scratch"

/* ---- small helpers ------------------------------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static bool same_str(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t) n + 1);
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t) n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* Grows an array of elem-sized entries so that one more fits; false when out of memory. */
static bool grow(void **arr, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return true;
    int ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t) ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* Numeric dotted order ("0.10.0" > "0.8.0"); parts that are not both numbers compare as strings,
 * a missing part counts as less ("1.0" < "1.0.1"). */
static int compat_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        if (!la && !*a)
            return -1;
        if (!lb && !*b)
            return 1;
        bool na = la > 0 && strspn(a, "0123456789") == la, nb = lb > 0 && strspn(b, "0123456789") == lb;
        int d;
        if (na && nb) {
            unsigned long long va = strtoull(a, NULL, 10), vb = strtoull(b, NULL, 10);
            d = va < vb ? -1 : va > vb;
        } else {
            d = strncmp(a, b, la < lb ? la : lb);
            if (!d)
                d = la < lb ? -1 : la > lb;
        }
        if (d)
            return d;
        a += la + (a[la] == '.');
        b += lb + (b[lb] == '.');
    }
    return 0;
}

/* ---- collect ------------------------------------------------------------------------------- */

/* Adds one distinct usage (or merges it into an equal one: the count adds up, the example stays). */
static bool list_add(compat_list *l, compat_kind kind, const char *relkind, const char *am, const char *name,
                     const char *value, const char *example, int count)
{
    for (int i = 0; i < l->n; i++) {
        compat_item *it = &l->items[i];
        if (it->kind == kind && same_str(it->relkind, relkind) && same_str(it->am, am) && same_str(it->name, name) &&
            same_str(it->value, value)) {
            it->count += count;
            return true;
        }
    }
    if (!grow((void **) &l->items, l->n, &l->cap, sizeof *l->items))
        return false;
    compat_item *it = &l->items[l->n++];
    *it = (compat_item){kind, dup_or_null(relkind), dup_or_null(am), dup_or_null(name), dup_or_null(value),
                        dup_or_null(example), count};
    return true;
}

/* Objects pg_dump recreates: not in a system schema, not a member of an extension (for an index:
 * nor is its table). Toast tables (pg_toast) are skipped with their schema: their reloptions
 * (CREATE TABLE … WITH (toast.x = …)) are stored on the toast relation, not probed here. */
#define USER_REL                                                                                                  \
    " n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"               \
    " AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND NOT EXISTS (SELECT 1 FROM pg_depend d"                          \
    " WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'"                                                \
    " AND d.objid IN (c.oid, (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = c.oid)))"

/* "name=value" split on the first '=' (the columns name, value of every query below). */
#define OPT_NAME_VALUE "split_part(o.opt, '=', 1), substr(o.opt, strpos(o.opt, '=') + 1)"
#define REL_EXAMPLE(extra, order)                                                                                 \
    "(array_agg($1::text || '.' || n.nspname || '.' || c.relname" extra " ORDER BY n.nspname, c.relname" order "))[1]"
#define REL_FROM " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"

/* Every query returns relkind, am, name, value, count, example; $1 is the database name. */
static const struct {
    compat_kind kind;
    bool cluster_wide;
    const char *sql;
} COLLECT[] = {
    {COMPAT_RELOPTION, false,
     "SELECT CASE WHEN c.relkind IN ('r', 'p') THEN 'table' WHEN c.relkind = 'm' THEN 'matview'"
     " WHEN c.relkind = 'v' THEN 'view' ELSE 'index' END, CASE WHEN c.relkind IN ('i', 'I') THEN a.amname END, "
     OPT_NAME_VALUE ", count(*), " REL_EXAMPLE("", "") REL_FROM " LEFT JOIN pg_am a ON a.oid = c.relam"
     " CROSS JOIN LATERAL unnest(c.reloptions) AS o(opt)"
     " WHERE c.relkind IN ('r', 'p', 'm', 'v', 'i', 'I') AND" USER_REL " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"},
    {COMPAT_ATTOPTION, false,
     "SELECT NULL, NULL, " OPT_NAME_VALUE ", count(*), " REL_EXAMPLE(" || '.' || t.attname", ", t.attnum")
         REL_FROM " JOIN pg_attribute t ON t.attrelid = c.oid CROSS JOIN LATERAL unnest(t.attoptions) AS o(opt)"
     " WHERE t.attnum > 0 AND NOT t.attisdropped AND c.relkind IN ('r', 'p', 'm', 'f', 'v') AND" USER_REL
     " GROUP BY 3, 4 ORDER BY 3, 4"},
    {COMPAT_INDEX_AM, false,
     "SELECT NULL, a.amname, a.amname, NULL, count(*), " REL_EXAMPLE("", "") REL_FROM
     " JOIN pg_am a ON a.oid = c.relam WHERE c.relkind IN ('i', 'I') AND" USER_REL " GROUP BY 2 ORDER BY 2"},
    {COMPAT_EXTENSION, false,
     "SELECT NULL, NULL, extname, extversion, 1, 'database ' || $1::text FROM pg_extension ORDER BY extname"},
    {COMPAT_SETTING, true,
     "SELECT NULL, NULL, " OPT_NAME_VALUE ", count(*), (array_agg(CASE"
     " WHEN s.setrole = 0 AND s.setdatabase = 0 THEN 'all roles'"
     " WHEN s.setrole = 0 THEN 'database ' || d.datname WHEN s.setdatabase = 0 THEN 'role ' || r.rolname"
     " ELSE 'role ' || r.rolname || ' in database ' || d.datname END"
     " ORDER BY d.datname NULLS FIRST, r.rolname NULLS FIRST))[1]"
     " FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase"
     " LEFT JOIN pg_roles r ON r.oid = s.setrole CROSS JOIN LATERAL unnest(s.setconfig) AS o(opt)"
     " GROUP BY 3, 4 ORDER BY 3, 4"},
};

bool compat_collect(pg_conn *c, const char *dbname, bool cluster_wide, compat_list *out)
{
    const char *params[] = {dbname};
    for (size_t q = 0; q < sizeof COLLECT / sizeof *COLLECT; q++) {
        if (COLLECT[q].cluster_wide && !cluster_wide)
            continue;
        /* the settings query does not use $1: giving it one would fail ("could not determine type") */
        pg_result *r = pg_exec(c, COLLECT[q].sql, COLLECT[q].cluster_wide ? 0 : 1, params);
        if (!r) {
            log_error("upgrade preflight: reading the options of database %s: %s", dbname, pg_errmsg(c));
            return false;
        }
        for (int i = 0; i < pg_ntuples(r); i++) {
            const char *v[6];
            for (int f = 0; f < 6; f++)
                v[f] = pg_isnull(r, i, f) ? NULL : pg_value(r, i, f);
            if (!list_add(out, COLLECT[q].kind, v[0], v[1], v[2], v[3], v[5], atoi(v[4]))) {
                pg_clear(r);
                log_error("upgrade preflight: out of memory");
                return false;
            }
        }
        pg_clear(r);
    }
    return true;
}

void compat_list_free(compat_list *l)
{
    for (int i = 0; i < l->n; i++) {
        compat_item *it = &l->items[i];
        free(it->relkind);
        free(it->am);
        free(it->name);
        free(it->value);
        free(it->example);
    }
    free(l->items);
    *l = (compat_list){0};
}

/* ---- probe --------------------------------------------------------------------------------- */

/* Which scratch column (with which operator class) takes an index of one access method. */
typedef struct {
    char *am;
    char *spec;               /* "col" or "col schema.opclass"; NULL when no column fits */
    bool am_exists;           /* when spec is NULL: the access method exists all the same */
    char *err, *state, *stmt; /* when spec is NULL: the first failure */
} am_fit;

typedef struct {
    pg_conn *c;
    compat_result *out;
    char *dbq; /* current_database(), quoted */
    am_fit *fits;
    int nfits, capfits;
} probe;

/* Runs sql in a savepoint: 1 when it succeeded (its effects kept only with keep), 0 when the
 * server rejected it (undone; *err and *state newly allocated when err is not NULL), -1 when the
 * savepoint itself failed (logged). */
static int in_savepoint(pg_conn *c, const char *sql, bool keep, char **err, char **state)
{
    if (!pg_run(c, "SAVEPOINT pgmemctl_compat", 0, NULL)) {
        log_error("upgrade preflight: savepoint on the new server: %s", pg_errmsg(c));
        return -1;
    }
    bool ok = pg_run(c, sql, 0, NULL);
    if (!ok && err) {
        *err = strdup(pg_errmsg(c));
        *state = strdup(pg_sqlstate(c));
    }
    /* released either way, so that savepoints do not pile up over thousands of items */
    if ((!(ok && keep) && !pg_run(c, "ROLLBACK TO SAVEPOINT pgmemctl_compat", 0, NULL)) ||
        !pg_run(c, "RELEASE SAVEPOINT pgmemctl_compat", 0, NULL)) {
        log_error("upgrade preflight: ending a savepoint on the new server: %s", pg_errmsg(c));
        if (!ok && err) {
            free(*err);
            free(*state);
            *err = *state = NULL;
        }
        return -1;
    }
    return ok;
}

static bool add_problem(compat_result *r, const compat_item *it, const char *err, const char *state,
                        const char *stmt)
{
    if (!grow((void **) &r->problems, r->nproblems, &r->cap, sizeof *r->problems))
        return false;
    r->problems[r->nproblems++] =
        (compat_problem){it, dup_or_null(err ? err : ""), dup_or_null(state ? state : ""), dup_or_null(stmt)};
    return true;
}

/* Tries stmt (rolled back); a rejection becomes a problem of it. 1 tried, -1 broken. */
static int try_item(probe *p, const compat_item *it, const char *stmt)
{
    char *err = NULL, *state = NULL;
    int rc = in_savepoint(p->c, stmt, false, &err, &state);
    if (rc == 0 && !add_problem(p->out, it, err, state, stmt))
        rc = -1;
    free(err);
    free(state);
    return rc < 0 ? -1 : 1;
}

/* "a.b" as "a"."b" (setting names and reloption names may be qualified). NULL on error. */
static char *quote_dotted(pg_conn *c, const char *name)
{
    char *part = strdup(name);
    char *out = strdup("");
    bool have_part = part != NULL;
    char *save = NULL;
    for (char *tok = part ? strtok_r(part, ".", &save) : NULL; tok && out; tok = strtok_r(NULL, ".", &save)) {
        char *q = pg_quote_ident(c, tok);
        char *joined = NULL;
        if (q)
            joined = fmt_alloc("%s%s%s", out, *out ? "." : "", q);
        free(q);
        free(out);
        out = joined;
    }
    free(part);
    if (!have_part) {
        free(out);
        return NULL;
    }
    return out;
}

/* "name = 'value'" for the item: the name quoted (part by part), the value a string literal, which
 * every reloption type and every setting accepts. NULL on error. */
static char *assignment(pg_conn *c, const compat_item *it)
{
    char *n = quote_dotted(c, it->name), *v = pg_quote_literal(c, it->value ? it->value : "");
    char *s = n && v ? fmt_alloc("%s = %s", n, v) : NULL;
    free(n);
    free(v);
    return s;
}

/* Candidate index columns of the scratch table for an access method ($1): each column bare (its
 * default operator class), then with the first non-default class of that method for its type. */
static const char FIT_SQL[] =
    "SELECT spec FROM (SELECT DISTINCT ON (a.attnum, k) a.attnum, k, quote_ident(a.attname)"
    " || CASE WHEN k = 1 THEN ' ' || quote_ident(n.nspname) || '.' || quote_ident(oc.opcname) ELSE '' END AS spec"
    " FROM pg_attribute a CROSS JOIN (VALUES (0), (1)) AS v(k) LEFT JOIN (pg_opclass oc"
    " JOIN pg_am m ON m.oid = oc.opcmethod AND m.amname = $1 JOIN pg_namespace n ON n.oid = oc.opcnamespace)"
    " ON oc.opcintype = a.atttypid AND NOT oc.opcdefault"
    " WHERE a.attrelid = '" SCRATCH "'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
    " AND (k = 0 OR oc.oid IS NOT NULL) ORDER BY a.attnum, k, oc.opcname) s ORDER BY attnum, k";

/* The cached fit of an access method, found on first use. NULL when the probe broke (logged). */
static am_fit *fit_for(probe *p, const char *am)
{
    for (int i = 0; i < p->nfits; i++)
        if (strcmp(p->fits[i].am, am) == 0)
            return &p->fits[i];
    if (!grow((void **) &p->fits, p->nfits, &p->capfits, sizeof *p->fits))
        return NULL;
    am_fit *f = &p->fits[p->nfits++];
    *f = (am_fit){.am = strdup(am)};
    const char *params[] = {am};
    pg_result *r = pg_exec(p->c, FIT_SQL, 1, params);
    char *amq = pg_quote_ident(p->c, am);
    bool broken = !r || !amq;
    for (int i = 0; !broken && !f->spec && i < pg_ntuples(r); i++) {
        char *stmt = fmt_alloc("CREATE INDEX ON " SCRATCH " USING %s (%s)", amq, pg_value(r, i, 0));
        int rc = stmt ? in_savepoint(p->c, stmt, false, f->err ? NULL : &f->err, &f->state) : -1;
        if (rc == 1)
            f->spec = strdup(pg_value(r, i, 0));
        else if (rc == 0 && !f->stmt)
            f->stmt = strdup(stmt);
        broken = rc < 0;
        free(stmt);
    }
    pg_clear(r);
    free(amq);
    if (!broken && !f->spec) {
        int64_t n = 0;
        broken = !pg_query_int64(p->c, "SELECT count(*) FROM pg_am WHERE amname = $1 AND amtype = 'i'", 1, params, &n);
        f->am_exists = n > 0;
    }
    if (broken)
        log_error("upgrade preflight: trying index access method %s: %s", am, pg_errmsg(p->c));
    return broken ? NULL : f;
}

/* An index (with the item's option when with_opt) of the item's access method. 1 tried,
 * 0 not probed (the method exists but takes none of the scratch columns), -1 broken. */
static int probe_index(probe *p, const compat_item *it, bool with_opt)
{
    am_fit *f = fit_for(p, it->am ? it->am : it->name);
    if (!f)
        return -1;
    if (!f->spec && f->am_exists) {
        log_warn("upgrade preflight: index access method %s exists on the new server but no scratch column type "
                 "fits it; %s not probed", f->am, with_opt ? "its option" : "it");
        return 0;
    }
    if (!f->spec)
        return add_problem(p->out, it, f->err, f->state, f->stmt) ? 1 : -1;
    if (!with_opt)
        return 1; /* fit_for created it already */
    char *amq = pg_quote_ident(p->c, f->am), *w = assignment(p->c, it);
    char *stmt = amq && w ? fmt_alloc("CREATE INDEX ON " SCRATCH " USING %s (%s) WITH (%s)", amq, f->spec, w) : NULL;
    int rc = stmt ? try_item(p, it, stmt) : -1;
    free(amq);
    free(w);
    free(stmt);
    return rc;
}

/* The version rule and the library loading of an extension item. 1 tried, -1 broken. */
static int probe_extension(probe *p, const compat_item *it, compat_ext_rule rule)
{
    const char *params[] = {it->name, it->value ? it->value : "", NULL};
    pg_result *r = pg_exec(p->c,
                           "SELECT default_version, installed_version IS NOT NULL FROM pg_available_extensions"
                           " WHERE name = $1",
                           1, params);
    if (!r)
        return -1;
    char *reason = NULL, *def = pg_ntuples(r) ? strdup(pg_value(r, 0, 0)) : NULL;
    bool installed = pg_ntuples(r) && strcmp(pg_value(r, 0, 1), "t") == 0;
    pg_clear(r);
    bool available = def != NULL;
    if (!available) {
        reason = fmt_alloc("extension %s (version %s in %s) is not available on the new server", it->name,
                           params[1], it->example ? it->example : "?");
    } else if (rule == COMPAT_EXT_CREATE_NEWER && compat_version_cmp(def, params[1]) < 0) {
        reason = fmt_alloc("extension %s: the new server's default version %s is older than %s (in %s)", it->name,
                           def, params[1], it->example ? it->example : "?");
    } else if (rule == COMPAT_EXT_SAME_OR_UPDATE && strcmp(def, params[1]) != 0) {
        params[2] = def;
        bool found = false;
        char *path = pg_query_text(p->c,
                                   "SELECT path FROM pg_extension_update_paths($1) WHERE source = $2 AND target = $3",
                                   3, params, &found);
        if (!found && pg_errmsg(p->c)[0]) {
            free(def);
            return -1;
        }
        if (!found)
            reason = fmt_alloc("extension %s: the new server has no update path from version %s (in %s) to its "
                               "default version %s", it->name, params[1], it->example ? it->example : "?", def);
        free(path);
    }
    free(def);
    if (reason) {
        bool ok = add_problem(p->out, it, reason, "", NULL);
        free(reason);
        if (!ok)
            return -1;
    }
    if (!available || installed)
        return 1;
    char *q = pg_quote_ident(p->c, it->name), *stmt = q ? fmt_alloc("CREATE EXTENSION %s", q) : NULL;
    int rc = stmt ? try_item(p, it, stmt) : -1;
    free(q);
    free(stmt);
    return rc;
}

/* Probes one item other than an extension. 1 tried, 0 not probed, -1 broken. */
static int probe_item(probe *p, const compat_item *it)
{
    if (it->kind == COMPAT_INDEX_AM || (it->kind == COMPAT_RELOPTION && same_str(it->relkind, "index")))
        return probe_index(p, it, it->kind == COMPAT_RELOPTION);
    char *w = assignment(p->c, it), *stmt = NULL;
    if (!w)
        stmt = NULL;
    else if (it->kind == COMPAT_SETTING)
        stmt = fmt_alloc("ALTER DATABASE %s SET %s", p->dbq, w);
    else if (it->kind == COMPAT_ATTOPTION)
        stmt = fmt_alloc("ALTER TABLE " SCRATCH " ALTER COLUMN i SET (%s)", w);
    else if (same_str(it->relkind, "view"))
        stmt = fmt_alloc("CREATE VIEW " PROBE_SCHEMA ".v WITH (%s) AS SELECT 1 AS i", w);
    else if (same_str(it->relkind, "matview"))
        stmt = fmt_alloc("CREATE MATERIALIZED VIEW " PROBE_SCHEMA ".m WITH (%s) AS SELECT 1 AS i WITH NO DATA", w);
    else
        stmt = fmt_alloc("CREATE TABLE " PROBE_SCHEMA ".t (i int) WITH (%s)", w);
    free(w);
    int rc = stmt ? try_item(p, it, stmt) : -1;
    free(stmt);
    return rc;
}

/* The probe schema and scratch table, plus the column v vector(3) when `vector` is available
 * (created in the probe schema unless it is installed already). False when it broke (logged). */
static bool setup_scratch(probe *p)
{
    if (!pg_run(p->c, "CREATE SCHEMA " PROBE_SCHEMA, 0, NULL) ||
        !pg_run(p->c, "CREATE TABLE " SCRATCH " (i int, t text, ts tsvector, r int4range, a int[])", 0, NULL)) {
        log_error("upgrade preflight: creating the scratch table on the new server: %s", pg_errmsg(p->c));
        return false;
    }
    int64_t avail = 0;
    if (!pg_query_int64(p->c, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'", 0, NULL, &avail))
        return false;
    if (!avail)
        return true;
    char *err = NULL, *state = NULL;
    int rc = in_savepoint(p->c, "CREATE EXTENSION IF NOT EXISTS vector SCHEMA " PROBE_SCHEMA, true, &err, &state);
    if (rc == 0)
        log_warn("upgrade preflight: CREATE EXTENSION vector on the new server: %s (no vector column to probe with)",
                 err);
    free(err);
    free(state);
    if (rc != 1)
        return rc == 0;
    bool found = false;
    char *nsp = pg_query_text(p->c,
                              "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
                              " WHERE e.extname = 'vector'", 0, NULL, &found);
    char *q = found ? pg_quote_ident(p->c, nsp) : NULL;
    char *stmt = q ? fmt_alloc("ALTER TABLE " SCRATCH " ADD COLUMN v %s.vector(3)", q) : NULL;
    bool ok = stmt && pg_run(p->c, stmt, 0, NULL);
    if (!ok)
        log_error("upgrade preflight: adding a vector column to the scratch table: %s", pg_errmsg(p->c));
    free(nsp);
    free(q);
    free(stmt);
    return ok;
}

/* Extensions first (their loading test must see the database as it is), then the scratch table,
 * then everything else. */
static bool probe_all(probe *p, const compat_list *l, compat_ext_rule ext_rule)
{
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !setup_scratch(p))
            return false;
        for (int i = 0; i < l->n; i++) {
            const compat_item *it = &l->items[i];
            if ((it->kind == COMPAT_EXTENSION) != (pass == 0))
                continue;
            int rc = pass == 0 ? probe_extension(p, it, ext_rule) : probe_item(p, it);
            if (rc < 0) {
                log_error("upgrade preflight: probing %s on the new server: %s", it->name, pg_errmsg(p->c));
                return false;
            }
            p->out->tried += rc;
            p->out->skipped += rc == 0;
        }
    }
    return true;
}

bool compat_probe(pg_conn *c, const compat_list *l, compat_ext_rule ext_rule, compat_result *out)
{
    *out = (compat_result){0};
    probe p = {.c = c, .out = out};
    bool found = false;
    out->server_version = pg_query_text(c, "SHOW server_version", 0, NULL, &found);
    char *db = found ? pg_query_text(c, "SELECT current_database()", 0, NULL, &found) : NULL;
    p.dbq = found ? pg_quote_ident(c, db) : NULL;
    free(db);
    bool ok = p.dbq && pg_begin(c) && pg_run(c, "SET LOCAL lock_timeout = '10s'", 0, NULL);
    if (!ok)
        log_error("upgrade preflight: starting the probe on the new server: %s", pg_errmsg(c));
    ok = ok && probe_all(&p, l, ext_rule);
    pg_rollback(c); /* always: nothing the probe did may stay */
    /* problems in the order of the list (extensions were probed first); stable insertion sort */
    for (int i = 1; i < out->nproblems; i++) {
        compat_problem pr = out->problems[i];
        int j = i;
        for (; j > 0 && out->problems[j - 1].item > pr.item; j--)
            out->problems[j] = out->problems[j - 1];
        out->problems[j] = pr;
    }
    for (int i = 0; i < p.nfits; i++) {
        free(p.fits[i].am);
        free(p.fits[i].spec);
        free(p.fits[i].err);
        free(p.fits[i].state);
        free(p.fits[i].stmt);
    }
    free(p.fits);
    free(p.dbq);
    return ok;
}

void compat_result_free(compat_result *r)
{
    for (int i = 0; i < r->nproblems; i++) {
        free(r->problems[i].error);
        free(r->problems[i].sqlstate);
        free(r->problems[i].statement);
    }
    free(r->problems);
    free(r->server_version);
    *r = (compat_result){0};
}

/* ---- output -------------------------------------------------------------------------------- */

static const char *kind_key(compat_kind k)
{
    static const char *const keys[] = {"reloption", "attoption", "setting", "index_am", "extension"};
    return (unsigned) k < sizeof keys / sizeof *keys ? keys[k] : "?";
}

/* What an item is and what its count counts, e.g. "table option", "table", "tables" (an index
 * option's "what" is preceded by its access method). */
static const struct {
    compat_kind kind;
    const char *relkind, *what, *one, *many;
} WORDS[] = {
    {COMPAT_RELOPTION, "table", "table option", "table", "tables"},
    {COMPAT_RELOPTION, "view", "view option", "view", "views"},
    {COMPAT_RELOPTION, "matview", "materialized view option", "materialized view", "materialized views"},
    {COMPAT_RELOPTION, "index", "index option", "index", "indexes"},
    {COMPAT_ATTOPTION, NULL, "column option", "column", "columns"},
    {COMPAT_SETTING, NULL, "setting", "database/role setting", "database/role settings"},
    {COMPAT_INDEX_AM, NULL, "index access method", "index", "indexes"},
    {COMPAT_EXTENSION, NULL, "extension", "database", "databases"},
};

char *compat_describe(const compat_result *r)
{
    char *out = strdup("");
    for (int i = 0; out && i < r->nproblems; i++) {
        const compat_problem *pr = &r->problems[i];
        const compat_item *it = pr->item;
        size_t w = 0;
        while (w + 1 < sizeof WORDS / sizeof *WORDS &&
               (WORDS[w].kind != it->kind || (WORDS[w].relkind && !same_str(WORDS[w].relkind, it->relkind))))
            w++;
        const char *sep = !it->value ? "" : it->kind == COMPAT_EXTENSION ? " " : "=";
        char *line = fmt_alloc("%s%s%s%s %s%s%s (on %s, %d %s): %s%s%s%s\n", out,
                               it->kind == COMPAT_RELOPTION && it->am ? it->am : "",
                               it->kind == COMPAT_RELOPTION && it->am ? " " : "", WORDS[w].what, it->name, sep,
                               it->value ? it->value : "", it->example ? it->example : "?", it->count,
                               it->count == 1 ? WORDS[w].one : WORDS[w].many,
                               pr->sqlstate[0] ? "ERROR " : "", pr->sqlstate, pr->sqlstate[0] ? " " : "", pr->error);
        free(out);
        out = line;
    }
    return out;
}

cJSON *compat_render(const compat_result *r)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < r->nproblems; i++) {
        const compat_problem *pr = &r->problems[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        report_add_str(o, "kind", kind_key(pr->item->kind));
        report_add_str(o, "relkind", pr->item->relkind);
        report_add_str(o, "am", pr->item->am);
        report_add_str(o, "name", pr->item->name);
        report_add_str(o, "value", pr->item->value);
        report_add_str(o, "example", pr->item->example);
        report_add_int(o, "count", pr->item->count);
        report_add_str(o, "error", pr->error);
        report_add_str(o, "sqlstate", pr->sqlstate);
        report_add_str(o, "statement", pr->statement);
    }
    return arr;
}

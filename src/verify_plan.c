/* verify_plan.c — the plan check: fills $vector / $text from a real row, runs EXPLAIN (FORMAT
 * JSON) (EXPLAIN ANALYZE when max_ms is given), and checks which scans the plan uses. A scan
 * node whose enable_* setting is off counts as disabled: with force_index (enable_seqscan =
 * off) the planner may still pick a disabled index scan when every path is disabled, and that
 * must not pass. */
#include "log.h"
#include "verify_checks.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The planner setting that disables a scan node type, or NULL. */
static const char *enable_guc(const char *node_type)
{
    if (!strcmp(node_type, "Index Scan"))
        return "enable_indexscan";
    if (!strcmp(node_type, "Index Only Scan"))
        return "enable_indexonlyscan";
    if (!strcmp(node_type, "Bitmap Index Scan") || !strcmp(node_type, "Bitmap Heap Scan"))
        return "enable_bitmapscan";
    if (!strcmp(node_type, "Seq Scan"))
        return "enable_seqscan";
    return NULL;
}

typedef struct {
    char *scans;          /* "Index Scan using i on t, Seq Scan on u" */
    bool seq_scan;
    const cJSON *index_node; /* the node scanning the expected index, or NULL */
} plan_summary;

/* The unqualified part of a possibly schema-qualified name. */
static const char *last_part(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

static void walk(const cJSON *node, const char *want_index, plan_summary *s)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(node, "Node Type");
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(node, "Relation Name");
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(node, "Index Name");
    if (cJSON_IsString(type)) {
        const char *t = type->valuestring;
        if (!strcmp(t, "Seq Scan"))
            s->seq_scan = true;
        if (cJSON_IsString(idx) || cJSON_IsString(rel)) {
            if (cJSON_IsString(idx) && cJSON_IsString(rel))
                vr_append(&s->scans, "%s using %s on %s", t, idx->valuestring, rel->valuestring);
            else if (cJSON_IsString(idx))
                vr_append(&s->scans, "%s on %s", t, idx->valuestring);
            else
                vr_append(&s->scans, "%s on %s", t, rel->valuestring);
        }
        if (want_index && cJSON_IsString(idx) && !strcmp(idx->valuestring, last_part(want_index)) && !s->index_node)
            s->index_node = node;
    }
    const cJSON *kids = cJSON_GetObjectItemCaseSensitive(node, "Plans"), *k;
    cJSON_ArrayForEach(k, kids) walk(k, want_index, s);
}

/* SELECT of the first non-NULL value of ref ("[schema.]table.column") as text: the vector for
 * $vector, or one word for $text (a lexeme of a tsvector, else the first word of 3+ letters).
 * Returns the value (newly allocated) and, for vectors, the column's type name in *type;
 * NULL when there is no such row (r untouched) or on error (r failed, *error set). */
static char *sample_value(pg_conn *c, const char *ref, bool want_word, char **type, verify_result *r, bool *error)
{
    *error = false;
    char *tname = NULL, *cname = NULL, *table = NULL, *col = NULL, *sql = NULL, *val = NULL;
    if (!vr_split_column_ref(ref, &tname, &cname)) {
        vr_fail(r, "\"%s\" is not [schema.]table.column", ref);
        *error = true;
        goto out;
    }
    table = vr_resolve_table(c, tname, r, error);
    if (*error)
        goto out;
    if (!table) {
        vr_fail(r, "table %s (of %s) does not exist", tname, ref);
        *error = true;
        goto out;
    }
    bool found;
    char *typname = pg_query_text(c,
                                  "SELECT t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
                                  " WHERE a.attrelid = $1::regclass AND a.attname = $2 AND NOT a.attisdropped",
                                  2, (const char *[]){table, cname}, &found);
    if (!found) {
        if (pg_errmsg(c)[0])
            vr_fail_sql(r, c, "could not read pg_attribute");
        else
            vr_fail(r, "%s has no column %s", table, cname);
        *error = true;
        goto out;
    }
    col = pg_quote_ident(c, cname);
    if (!col) {
        vr_fail(r, "cannot quote %s", cname);
        *error = true;
        free(typname);
        goto out;
    }
    if (!want_word)
        vr_set(&sql, "SELECT %s::text FROM %s WHERE %s IS NOT NULL LIMIT 1", col, table, col);
    else if (!strcmp(typname, "tsvector"))
        vr_set(&sql, "SELECT (SELECT lexeme FROM unnest(%s) LIMIT 1) FROM %s WHERE length(%s) > 0 LIMIT 1", col, table,
               col);
    else
        vr_set(&sql, "SELECT substring(%s::text from '[[:alpha:]]{3,}') FROM %s WHERE %s::text ~ '[[:alpha:]]{3,}'"
                     " LIMIT 1",
               col, table, col);
    val = pg_query_text(c, sql, 0, NULL, &found);
    if (!found && pg_errmsg(c)[0]) {
        vr_fail_sql(r, c, "could not read a sample row");
        *error = true;
    }
    if (type)
        *type = typname;
    else
        free(typname);
out:
    free(tname);
    free(cname);
    free(table);
    free(col);
    free(sql);
    return val;
}

/* Replaces every $name token (not followed by an identifier character) in q by repl. */
static char *replace_token(const char *q, const char *name, const char *repl)
{
    size_t nl = strlen(name), rl = strlen(repl), cap = strlen(q) + 1;
    for (const char *p = strstr(q, name); p; p = strstr(p + nl, name))
        cap += rl;
    char *out = malloc(cap), *w = out;
    if (!out)
        return NULL;
    for (const char *p = q; *p;) {
        if (!strncmp(p, name, nl) && !(isalnum((unsigned char) p[nl]) || p[nl] == '_')) {
            memcpy(w, repl, rl);
            w += rl;
            p += nl;
        } else {
            *w++ = *p++;
        }
    }
    *w = 0;
    return out;
}

void verify_check_plan(pg_conn *c, const verify_check *k, verify_result *r)
{
    char *vec = NULL, *word = NULL, *vtype = NULL, *q1 = NULL, *sql = NULL, *plan_text = NULL;
    cJSON *doc = NULL;
    plan_summary s = {0};
    bool err = false;
    const char *params[2];
    int np = 0;
    char expected[512];
    snprintf(expected, sizeof expected, "%s%s%s%s", k->expect_index ? "scans " : "",
             k->expect_index ? k->expect_index : "", k->no_seq_scan ? (k->expect_index ? ", no Seq Scan" : "no Seq Scan") : "",
             k->force_index ? " (with enable_seqscan = off)" : "");
    if (k->max_ms > 0)
        snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%sexecution <= %g ms",
                 expected[0] ? ", " : "", k->max_ms);
    vr_set(&r->expected, "%s", expected);

    q1 = strdup(k->query);
    if (k->vector_from) {
        vec = sample_value(c, k->vector_from, false, &vtype, r, &err);
        if (err)
            goto out;
        if (!vec) {
            r->status = VR_SKIP;
            vr_set(&r->message, "no row with a non-NULL %s to take $vector from", k->vector_from);
            goto out;
        }
        char cast[128];
        snprintf(cast, sizeof cast, "$%d::%s", np + 1, vtype);
        char *t = replace_token(q1, "$vector", cast);
        free(q1);
        q1 = t;
        params[np++] = vec;
    }
    if (k->text_from) {
        word = sample_value(c, k->text_from, true, NULL, r, &err);
        if (err)
            goto out;
        if (!word) {
            r->status = VR_SKIP;
            vr_set(&r->message, "no row with a word in %s to take $text from", k->text_from);
            goto out;
        }
        char ph[16];
        snprintf(ph, sizeof ph, "$%d", np + 1);
        char *t = replace_token(q1, "$text", ph);
        free(q1);
        q1 = t;
        params[np++] = word;
        cJSON_AddStringToObject(vr_details(r), "text", word);
    }
    if (!q1) {
        vr_fail(r, "out of memory");
        goto out;
    }
    cJSON_AddStringToObject(vr_details(r), "query", q1);
    if (k->force_index && !pg_run(c, "SET LOCAL enable_seqscan = off", 0, NULL)) {
        vr_fail_sql(r, c, "could not set enable_seqscan");
        goto out;
    }
    vr_set(&sql, "EXPLAIN (%sFORMAT JSON) %s", k->max_ms > 0 ? "ANALYZE, " : "", q1);
    bool found;
    plan_text = pg_query_text(c, sql, np, params, &found);
    if (!found) {
        vr_fail_sql(r, c, "EXPLAIN failed");
        goto out;
    }
    doc = cJSON_Parse(plan_text);
    const cJSON *top = cJSON_GetArrayItem(doc, 0);
    const cJSON *plan = top ? cJSON_GetObjectItemCaseSensitive(top, "Plan") : NULL;
    if (!plan) {
        vr_fail(r, "EXPLAIN returned no plan");
        goto out;
    }
    walk(plan, k->expect_index, &s);
    vr_set(&r->observed, "%s", s.scans ? s.scans : "no scan");
    cJSON_AddItemToObject(vr_details(r), "plan", cJSON_Duplicate(plan, true));
    const cJSON *et = cJSON_GetObjectItemCaseSensitive(top, "Execution Time");
    if (cJSON_IsNumber(et))
        cJSON_AddNumberToObject(vr_details(r), "execution_ms", et->valuedouble);

    r->status = VR_PASS;
    if (k->expect_index) {
        if (!s.index_node) {
            vr_fail(r, "the plan does not use %s: %s", k->expect_index, s.scans ? s.scans : "no scan");
        } else {
            const char *t = cJSON_GetObjectItemCaseSensitive(s.index_node, "Node Type")->valuestring;
            const char *guc = enable_guc(t);
            char *v = guc ? pg_query_text(c, "SELECT current_setting($1)", 1, (const char *[]){guc}, &found) : NULL;
            if (v && !strcmp(v, "off")) {
                char *src = pg_query_text(c, "SELECT source FROM pg_settings WHERE name = $1", 1,
                                          (const char *[]){guc}, &found);
                vr_fail(r, "the plan reaches %s through a %s, but %s = off (set by %s): the planner takes it only"
                           " because every other path is disabled too",
                        k->expect_index, t, guc, src ? src : "?");
                vr_set(&r->hint, "RESET %s where it is set (ALTER DATABASE / ALTER ROLE … RESET %s, or"
                                 " postgresql.conf)",
                       guc, guc);
                free(src);
            }
            free(v);
        }
    }
    if (r->status == VR_PASS && k->no_seq_scan && s.seq_scan)
        vr_fail(r, "the plan has a Seq Scan: %s", s.scans ? s.scans : "");
    if (r->status == VR_PASS && k->max_ms > 0 && cJSON_IsNumber(et) && et->valuedouble > k->max_ms)
        vr_fail(r, "the query took %.2f ms, more than %g ms", et->valuedouble, k->max_ms);
    if (r->status == VR_PASS)
        vr_set(&r->message, "%s%s", s.scans ? s.scans : "no scan",
               cJSON_IsNumber(et) ? "" : (k->force_index ? " (enable_seqscan = off)" : ""));
    if (r->status == VR_PASS && cJSON_IsNumber(et))
        vr_append(&r->message, "%.2f ms", et->valuedouble);
out:
    cJSON_Delete(doc);
    free(vec);
    free(word);
    free(vtype);
    free(q1);
    free(sql);
    free(plan_text);
    free(s.scans);
}

/* verify_index.c — the index check (method, opclass, pgvector's m / ef_construction / lists,
 * partial predicate, validity) and the progress of an index being built, read from
 * pg_stat_progress_create_index. */
#include "log.h"
#include "verify_checks.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The columns every index query below returns, in this order. */
#define INDEX_COLUMNS                                                                                             \
    "c.oid, c.oid::regclass::text, am.amname, i.indisvalid, i.indisready, i.indislive,"                            \
    " pg_get_indexdef(c.oid), pg_get_expr(i.indpred, i.indrelid),"                                                \
    " (SELECT opcname FROM pg_opclass WHERE oid = i.indclass[0]),"                                                \
    " array_to_string(c.reloptions, ','), i.indrelid::regclass::text, i.indrelid,"                                \
    " (SELECT attname FROM pg_attribute WHERE attrelid = i.indrelid AND attnum = i.indkey[0])"
#define INDEX_FROM                                                                                                \
    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
enum { IX_OID, IX_NAME, IX_METHOD, IX_VALID, IX_READY, IX_LIVE, IX_DEF, IX_PRED, IX_OPCLASS, IX_RELOPTS, IX_TABLE,
       IX_TABLE_OID, IX_COLUMN };

cJSON *verify_build_progress(pg_conn *c, const char *table_oid, const char *index_oid, char **line)
{
    *line = NULL;
    pg_result *q = pg_exec(c,
                           "SELECT pid, command, phase, blocks_done, blocks_total, tuples_done, tuples_total,"
                           " lockers_done, lockers_total, index_relid::regclass::text"
                           " FROM pg_stat_progress_create_index"
                           " WHERE datname = current_database() AND relid = $1::oid"
                           "   AND ($2::oid IS NULL OR index_relid IN (0, $2::oid))"
                           " ORDER BY pid LIMIT 1",
                           2, (const char *[]){table_oid, index_oid});
    if (!q)
        return NULL;
    if (pg_ntuples(q) == 0) {
        pg_clear(q);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pid", atof(pg_value(q, 0, 0)));
    cJSON_AddStringToObject(o, "command", pg_value(q, 0, 1));
    cJSON_AddStringToObject(o, "phase", pg_value(q, 0, 2));
    const char *names[] = {"blocks_done", "blocks_total", "tuples_done", "tuples_total", "lockers_done", "lockers_total"};
    double v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = atof(pg_value(q, 0, 3 + i));
        cJSON_AddNumberToObject(o, names[i], v[i]);
    }
    char pct[64] = "";
    if (v[1] > 0)
        snprintf(pct, sizeof pct, ", %.0f%% of blocks", 100.0 * v[0] / v[1]);
    else if (v[3] > 0)
        snprintf(pct, sizeof pct, ", %.0f%% of tuples", 100.0 * v[2] / v[3]);
    else if (v[5] > 0)
        snprintf(pct, sizeof pct, ", %.0f of %.0f lockers waited for", v[4], v[5]);
    vr_set(line, "being built by %s (pid %s): phase \"%s\"%s", pg_value(q, 0, 1), pg_value(q, 0, 0), pg_value(q, 0, 2),
           pct);
    cJSON_AddStringToObject(o, "summary", *line ? *line : "");
    pg_clear(q);
    return o;
}

/* Reads m=16,ef_construction=64 style reloptions: the value of key, or -1. */
static long long reloption(const char *relopts, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = relopts; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == '=')
            return atoll(p + kl + 1);
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return -1;
}

/* Lower case without white space or parentheses: "(embedding IS NOT NULL)" and
 * "embedding is not null" compare equal. Newly allocated. */
static char *normalise_predicate(const char *s)
{
    char *o = malloc(strlen(s) + 1), *w = o;
    if (!o)
        return NULL;
    for (; *s; s++)
        if (!isspace((unsigned char) *s) && *s != '(' && *s != ')')
            *w++ = (char) tolower((unsigned char) *s);
    *w = 0;
    return o;
}

/* pgvector's defaults when the reloption is absent (hnsw.c / ivfflat.c). */
static long long default_param(const char *method, const char *param)
{
    if (!strcmp(method, "hnsw") && !strcmp(param, "m"))
        return 16;
    if (!strcmp(method, "hnsw") && !strcmp(param, "ef_construction"))
        return 64;
    if (!strcmp(method, "ivfflat") && !strcmp(param, "lists"))
        return 100;
    return -1;
}

/* Compares one numeric build parameter; records it in details; adds a mismatch to r. */
static void check_param(verify_result *r, const char *method, const char *relopts, const char *param, int64_t want,
                        bool *mismatch)
{
    long long have = reloption(relopts, param);
    bool dflt = have < 0;
    if (dflt)
        have = default_param(method, param);
    if (have >= 0)
        cJSON_AddNumberToObject(vr_details(r), param, (double) have);
    if (want < 0)
        return;
    if (have < 0) {
        vr_append(&r->message, "%s does not apply to %s indexes", param, method);
        *mismatch = true;
    } else if (have != want) {
        vr_append(&r->message, "%s = %lld%s, expected %lld", param, have, dflt ? " (default)" : "", (long long) want);
        *mismatch = true;
    }
}

/* Finds the index row: by name, else the first index on table.column (preferring one whose
 * method matches). Returns the result (caller clears) positioned at *row, or NULL with r failed
 * or with *row = -1 when none exists. */
static pg_result *find_index(pg_conn *c, const verify_check *k, const char *table, verify_result *r, int *row)
{
    *row = -1;
    pg_result *q;
    if (k->index)
        q = pg_exec(c, "SELECT " INDEX_COLUMNS INDEX_FROM " WHERE i.indexrelid = to_regclass($1)", 1,
                    (const char *[]){k->index});
    else
        q = pg_exec(c,
                    "SELECT " INDEX_COLUMNS INDEX_FROM
                    " WHERE i.indrelid = $1::regclass AND i.indkey[0] = (SELECT attnum FROM pg_attribute"
                    "   WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped)"
                    " ORDER BY (am.amname = $3) DESC, c.relname",
                    3, (const char *[]){table, k->column, k->method ? k->method : ""});
    if (!q) {
        vr_fail_sql(r, c, "could not read pg_index");
        return NULL;
    }
    if (pg_ntuples(q) > 0)
        *row = 0;
    return q;
}

void verify_check_index(pg_conn *c, const verify_check *k, verify_result *r)
{
    char *table = NULL;
    bool err;
    if (k->table) {
        table = vr_resolve_table(c, k->table, r, &err);
        if (err)
            return;
        if (!table) {
            vr_set(&r->observed, "no table %s", k->table);
            vr_fail(r, "table %s does not exist", k->table);
            return;
        }
    }
    /* What the spec asks for, as one line. */
    char want[512];
    int w = snprintf(want, sizeof want, "%s", k->method ? k->method : "index");
    if (k->column || k->opclass)
        w += snprintf(want + w, sizeof want - (size_t) w, " (%s%s%s)", k->column ? k->column : "?",
                      k->opclass ? " " : "", k->opclass ? k->opclass : "");
    if (k->m >= 0)
        w += snprintf(want + w, sizeof want - (size_t) w, " m=%lld", (long long) k->m);
    if (k->ef_construction >= 0)
        w += snprintf(want + w, sizeof want - (size_t) w, " ef_construction=%lld", (long long) k->ef_construction);
    if (k->lists >= 0)
        w += snprintf(want + w, sizeof want - (size_t) w, " lists=%lld", (long long) k->lists);
    if (k->where)
        w += snprintf(want + w, sizeof want - (size_t) w, " WHERE %s", k->where);
    if (k->valid)
        snprintf(want + w, sizeof want - (size_t) w, ", valid");
    vr_set(&r->expected, "%s", want);

    int row;
    pg_result *q = find_index(c, k, table, r, &row);
    if (!q) {
        free(table);
        return;
    }
    if (row < 0) {
        vr_set(&r->observed, "missing");
        if (k->index)
            vr_fail(r, "index %s does not exist", k->index);
        else
            vr_fail(r, "no index on %s.%s", table, k->column);
        goto out;
    }
    const char *method = pg_value(q, row, IX_METHOD);
    const char *opclass = pg_isnull(q, row, IX_OPCLASS) ? "" : pg_value(q, row, IX_OPCLASS);
    const char *relopts = pg_isnull(q, row, IX_RELOPTS) ? "" : pg_value(q, row, IX_RELOPTS);
    const char *pred = pg_isnull(q, row, IX_PRED) ? NULL : pg_value(q, row, IX_PRED);
    const char *column = pg_isnull(q, row, IX_COLUMN) ? "(expression)" : pg_value(q, row, IX_COLUMN);
    bool valid = !strcmp(pg_value(q, row, IX_VALID), "t"), ready = !strcmp(pg_value(q, row, IX_READY), "t"),
         live = !strcmp(pg_value(q, row, IX_LIVE), "t");
    cJSON *d = vr_details(r);
    cJSON_AddStringToObject(d, "index", pg_value(q, row, IX_NAME));
    cJSON_AddStringToObject(d, "table", pg_value(q, row, IX_TABLE));
    cJSON_AddStringToObject(d, "definition", pg_value(q, row, IX_DEF));
    cJSON_AddStringToObject(d, "method", method);
    cJSON_AddStringToObject(d, "opclass", opclass);
    cJSON_AddBoolToObject(d, "valid", valid);
    cJSON_AddBoolToObject(d, "ready", ready);
    cJSON_AddItemToObject(d, "predicate", pred ? cJSON_CreateString(pred) : cJSON_CreateNull());

    bool mismatch = false;
    if (table && strcmp(pg_value(q, row, IX_TABLE), table) != 0) {
        vr_append(&r->message, "it is on %s, not %s", pg_value(q, row, IX_TABLE), table);
        mismatch = true;
    }
    if (k->column && strcmp(column, k->column) != 0) {
        vr_append(&r->message, "its first column is %s, not %s", column, k->column);
        mismatch = true;
    }
    if (k->method && strcasecmp(method, k->method) != 0) {
        vr_append(&r->message, "method %s, expected %s", method, k->method);
        mismatch = true;
    }
    if (k->opclass && strcasecmp(opclass, k->opclass) != 0) {
        vr_append(&r->message, "opclass %s, expected %s", opclass, k->opclass);
        mismatch = true;
    }
    check_param(r, method, relopts, "m", k->m, &mismatch);
    check_param(r, method, relopts, "ef_construction", k->ef_construction, &mismatch);
    check_param(r, method, relopts, "lists", k->lists, &mismatch);
    if (k->where) {
        char *a = normalise_predicate(k->where), *b = pred ? normalise_predicate(pred) : NULL;
        if (!pred) {
            vr_append(&r->message, "not a partial index, expected WHERE %s", k->where);
            mismatch = true;
        } else if (a && b && strcmp(a, b) != 0) {
            vr_append(&r->message, "predicate %s, expected %s", pred, k->where);
            mismatch = true;
        }
        free(a);
        free(b);
    }
    char *build_line = NULL;
    cJSON *bp = verify_build_progress(c, pg_value(q, row, IX_TABLE_OID), pg_value(q, row, IX_OID), &build_line);
    if (bp)
        cJSON_AddItemToObject(d, "build_progress", bp);
    const char *state = valid && ready && live ? "valid" : ready ? "not valid" : "not ready";
    if (k->valid) {
        if (bp) {
            vr_append(&r->message, "%s", build_line);
            mismatch = true;
        } else if (!(valid && ready && live)) {
            vr_append(&r->message, "%s is %s (left by a failed CREATE INDEX CONCURRENTLY or REINDEX?): the planner"
                                   " cannot use it",
                      pg_value(q, row, IX_NAME), state);
            vr_set(&r->hint, "REINDEX INDEX CONCURRENTLY %s;  (or DROP INDEX CONCURRENTLY and create it again)",
                   pg_value(q, row, IX_NAME));
            mismatch = true;
        }
    }
    free(build_line);

    /* What was found, as one line in the same shape as the expectation. */
    char have[512];
    w = snprintf(have, sizeof have, "%s (%s %s)", method, column, opclass);
    const char *params[] = {"m", "ef_construction", "lists"};
    for (int i = 0; i < 3; i++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(d, params[i]);
        if (cJSON_IsNumber(p))
            w += snprintf(have + w, sizeof have - (size_t) w, " %s=%.0f", params[i], p->valuedouble);
    }
    if (pred)
        w += snprintf(have + w, sizeof have - (size_t) w, " WHERE %s", pred);
    snprintf(have + w, sizeof have - (size_t) w, ", %s%s", bp ? "being built, " : "", state);
    vr_set(&r->observed, "%s", have);
    if (mismatch) {
        char *why = r->message;
        r->message = NULL;
        vr_fail(r, "%s: %s", pg_value(q, row, IX_NAME), why ? why : "differs");
        free(why);
        if (!r->hint && (k->opclass || k->m >= 0 || k->ef_construction >= 0 || k->lists >= 0 || k->method || k->where))
            vr_set(&r->hint, "re-create it: CREATE INDEX CONCURRENTLY … USING %s (%s %s)%s%s%s, then drop %s",
                   k->method ? k->method : method, k->column ? k->column : column, k->opclass ? k->opclass : opclass,
                   k->m >= 0 || k->ef_construction >= 0 || k->lists >= 0 ? " WITH (…)" : "",
                   k->where ? " WHERE " : "", k->where ? k->where : "", pg_value(q, row, IX_NAME));
    } else {
        r->status = VR_PASS;
        vr_set(&r->message, "%s: %s", pg_value(q, row, IX_NAME), have);
    }
out:
    pg_clear(q);
    free(table);
}

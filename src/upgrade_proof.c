/* upgrade_proof.c — the proof after a major upgrade: per-database snapshots (row counts, sampled
 * vector checksums, `vector`'s version) compared old against new, plus the new side's own checks. */
#include "upgrade_proof.h"

#include "log.h"
#include "report.h"
#include "verify_cmp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ----------------------------------------------------------------------- */

/* printf into a newly allocated string; NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...)
{
    va_list ap, ap2;
    va_start(ap, f);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, f, ap);
    char *s = n < 0 ? NULL : malloc((size_t) n + 1);
    if (s)
        vsnprintf(s, (size_t) n + 1, f, ap2);
    va_end(ap2);
    va_end(ap);
    return s;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* The error on c says the connection itself failed (no SQLSTATE: a client-side error such as a
 * lost connection; class 08 connection exception; 57P operator intervention). */
static bool conn_broken(const pg_conn *c)
{
    const char *st = pg_sqlstate(c);
    return !st[0] || !strncmp(st, "08", 2) || !strncmp(st, "57P", 3);
}

int proof_version_cmp(const char *a, const char *b) { return vcmp_version_compare(a, b); }

/* User relations: not in a system schema, not a member of an extension (c: pg_class, n: its
 * pg_namespace). */
#define USER_REL_FILTER                                                                                      \
    " n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"            \
    " AND n.nspname NOT LIKE 'pg\\_temp%' AND NOT EXISTS (SELECT 1 FROM pg_depend d"                        \
    " WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"

/* ---- snapshot ---------------------------------------------------------------------------- */

static const char *const TABLES_SQL =
    "SELECT c.oid, n.nspname, c.relname, c.relispopulated FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'm') AND" USER_REL_FILTER
    " ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"";

/* Columns of $1 whose type belongs to the extension `vector`, with the type's send function
 * (schema-qualified and quoted by the server: safe to paste into SQL). */
static const char *const VCOLS_SQL =
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
    "       quote_ident(pn.nspname) || '.' || quote_ident(p.proname)"
    " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
    " JOIN pg_proc p ON p.oid = t.typsend JOIN pg_namespace pn ON pn.oid = p.pronamespace"
    " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND EXISTS ("
    "   SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid"
    "   WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid"
    "     AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'vector')"
    " ORDER BY a.attnum";

/* Primary-key columns of $1 in key order, and whether each is collatable. */
static const char *const PKEY_SQL =
    "SELECT a.attname, a.attcollation <> 0 FROM pg_index i"
    " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)"
    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
    " WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord";

/* The select list "pk1 COLLATE "C" AS k1, pk2 AS k2" and the order "k1, k2" of the primary key of
 * table oid; both NULL (true returned) when it has none. False on a query error (not logged). */
static bool pkey_lists(pg_conn *c, const char *oid, char **sel, char **ord)
{
    *sel = *ord = NULL;
    pg_result *r = pg_exec(c, PKEY_SQL, 1, (const char *[]){oid});
    if (!r)
        return false;
    bool ok = true;
    for (int i = 0; i < pg_ntuples(r) && ok; i++) {
        char *q = pg_quote_ident(c, pg_value(r, i, 0));
        bool coll = !strcmp(pg_value(r, i, 1), "t");
        char *s = q ? fmt("%s%s%s%s AS k%d", *sel ? *sel : "", *sel ? ", " : "", q, coll ? " COLLATE \"C\"" : "", i)
                    : NULL;
        char *o = fmt("%s%sk%d", *ord ? *ord : "", *ord ? ", " : "", i);
        free(q);
        free(*sel);
        free(*ord);
        *sel = s;
        *ord = o;
        ok = s && o;
    }
    pg_clear(r);
    if (!ok) {
        free(*sel);
        free(*ord);
        *sel = *ord = NULL;
    }
    return ok;
}

/* Fills the checksum and sample size of v (column of the table named qtable, already quoted). */
static bool sample_checksum(pg_conn *c, const char *qtable, const char *sel, const char *ord, const char *send,
                            int sample_rows, proof_vector_col *v)
{
    char *col = pg_quote_ident(c, v->column);
    char *sql = col ? fmt("SELECT count(*), md5(coalesce(string_agg(encode(%s(v), 'hex'), '' ORDER BY %s), ''))"
                          " FROM (SELECT %s, %s AS v FROM %s ORDER BY %s LIMIT %d) s WHERE v IS NOT NULL",
                          send, ord, sel, col, qtable, ord, sample_rows)
                    : NULL;
    pg_result *r = sql ? pg_exec(c, sql, 0, NULL) : NULL;
    bool ok = r && pg_ntuples(r) == 1;
    if (ok) {
        v->sampled = strtoll(pg_value(r, 0, 0), NULL, 10);
        v->checksum = strdup(pg_value(r, 0, 1));
        ok = v->checksum != NULL;
    }
    pg_clear(r);
    free(sql);
    free(col);
    return ok;
}

/* Counts t's rows and reads its vector columns' checksums. Logs and returns false on an error. */
static bool take_table(pg_conn *c, const char *dbname, const char *oid, bool populated, int sample_rows,
                       proof_table *t)
{
    char *qs = pg_quote_ident(c, t->schema), *qt = pg_quote_ident(c, t->table);
    char *qtable = qs && qt ? fmt("%s.%s", qs, qt) : NULL, *sql = qtable ? fmt("SELECT count(*) FROM %s", qtable) : NULL;
    char *sel = NULL, *ord = NULL;
    pg_result *r = NULL;
    const char *what = "could not count the rows";
    bool ok = sql && (!populated || pg_query_int64(c, sql, 0, NULL, &t->rows));
    if (ok) {
        what = "could not read the vector columns";
        r = pg_exec(c, VCOLS_SQL, 1, (const char *[]){oid});
        ok = r != NULL;
    }
    if (ok && pg_ntuples(r) > 0) {
        t->vcols = calloc((size_t) pg_ntuples(r), sizeof *t->vcols);
        ok = t->vcols != NULL && pkey_lists(c, oid, &sel, &ord);
        what = "could not read the primary key";
    }
    for (int i = 0; ok && i < pg_ntuples(r); i++) {
        proof_vector_col *v = &t->vcols[t->nvcols++];
        v->column = strdup(pg_value(r, i, 0));
        v->type = strdup(pg_value(r, i, 1));
        ok = v->column && v->type;
        what = "could not checksum a vector column";
        if (ok && sel && populated)
            ok = sample_checksum(c, qtable, sel, ord, pg_value(r, i, 2), sample_rows, v);
    }
    if (!ok)
        log_error("proof: database %s: table %s.%s: %s: %s", dbname, t->schema, t->table, what,
                  pg_errmsg(c)[0] ? pg_errmsg(c) : "out of memory");
    pg_clear(r);
    free(qs);
    free(qt);
    free(qtable);
    free(sql);
    free(sel);
    free(ord);
    return ok;
}

bool proof_snapshot_take(pg_conn *c, const char *dbname, int sample_rows, proof_snapshot *out)
{
    memset(out, 0, sizeof *out);
    if (sample_rows <= 0) {
        log_error("proof: database %s: the sample size must be positive, not %d", dbname, sample_rows);
        return false;
    }
    bool found;
    out->db = strdup(dbname);
    out->vector_version =
        pg_query_text(c, "SELECT extversion FROM pg_extension WHERE extname = 'vector'", 0, NULL, &found);
    if (!found && pg_errmsg(c)[0]) {
        log_error("proof: database %s: could not read pg_extension: %s", dbname, pg_errmsg(c));
        goto fail;
    }
    pg_result *r = pg_exec(c, TABLES_SQL, 0, NULL);
    if (!r) {
        log_error("proof: database %s: could not list the tables: %s", dbname, pg_errmsg(c));
        goto fail;
    }
    out->tables = calloc((size_t) pg_ntuples(r) + 1, sizeof *out->tables);
    if (!out->db || !out->tables) {
        log_error("proof: database %s: out of memory", dbname);
        pg_clear(r);
        goto fail;
    }
    for (int i = 0; i < pg_ntuples(r); i++) {
        proof_table *t = &out->tables[out->ntables++];
        t->schema = strdup(pg_value(r, i, 1));
        t->table = strdup(pg_value(r, i, 2));
        if (!t->schema || !t->table ||
            !take_table(c, dbname, pg_value(r, i, 0), !strcmp(pg_value(r, i, 3), "t"), sample_rows, t)) {
            pg_clear(r);
            goto fail;
        }
    }
    pg_clear(r);
    return true;
fail:
    proof_snapshot_free(out);
    return false;
}

void proof_snapshot_free(proof_snapshot *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->ntables; i++) {
        proof_table *t = &s->tables[i];
        for (int j = 0; j < t->nvcols; j++) {
            free(t->vcols[j].column);
            free(t->vcols[j].type);
            free(t->vcols[j].checksum);
        }
        free(t->vcols);
        free(t->schema);
        free(t->table);
    }
    free(s->tables);
    free(s->db);
    free(s->vector_version);
    memset(s, 0, sizeof *s);
}

/* ---- result ------------------------------------------------------------------------------ */

void proof_add_mismatch(proof_result *res, const char *db, const char *check, const char *object,
                        const char *expected, const char *actual)
{
    if (res->nmismatches == res->ncap) {
        int cap = res->ncap ? res->ncap * 2 : 8;
        proof_mismatch *m = realloc(res->mismatches, (size_t) cap * sizeof *m);
        if (!m) {
            log_error("proof: out of memory: %s of %s not recorded", check, object ? object : "?");
            return;
        }
        res->mismatches = m;
        res->ncap = cap;
    }
    proof_mismatch *m = &res->mismatches[res->nmismatches++];
    *m = (proof_mismatch){dup_or_null(db), dup_or_null(check), dup_or_null(object), dup_or_null(expected),
                          dup_or_null(actual)};
    if (!m->check || (db && !m->db) || (object && !m->object) || (expected && !m->expected) ||
        (actual && !m->actual))
        log_error("proof: out of memory: %s of %s recorded without all its texts", check, object ? object : "?");
}

/* proof_add_mismatch with a printf-formatted actual text. */
__attribute__((format(printf, 6, 7))) static void add_mismatchf(proof_result *res, const char *db,
                                                                const char *check, const char *object,
                                                                const char *expected, const char *actual_fmt, ...)
{
    va_list ap;
    va_start(ap, actual_fmt);
    char buf[1024];
    vsnprintf(buf, sizeof buf, actual_fmt, ap);
    va_end(ap);
    proof_add_mismatch(res, db, check, object, expected, buf);
}

bool proof_passed(const proof_result *res) { return res->nmismatches == 0; }

void proof_result_free(proof_result *res)
{
    if (!res)
        return;
    for (int i = 0; i < res->nmismatches; i++) {
        proof_mismatch *m = &res->mismatches[i];
        free(m->db);
        free(m->check);
        free(m->object);
        free(m->expected);
        free(m->actual);
    }
    free(res->mismatches);
    memset(res, 0, sizeof *res);
}

/* ---- comparison -------------------------------------------------------------------------- */

static int table_cmp(const proof_table *a, const proof_table *b)
{
    int r = strcmp(a->schema, b->schema);
    return r ? r : strcmp(a->table, b->table);
}

static void compare_table(const char *db, const proof_table *o, const proof_table *n, proof_result *res)
{
    char obj[512], col[768], ov[32];
    snprintf(obj, sizeof obj, "%s.%s", n->schema, n->table);
    res->tables++;
    res->rows += n->rows;
    if (o->rows != n->rows) {
        snprintf(ov, sizeof ov, "%lld", (long long) o->rows);
        add_mismatchf(res, db, "rows", obj, ov, "%lld", (long long) n->rows);
    }
    for (int i = 0; i < o->nvcols; i++) {
        const proof_vector_col *ov_col = &o->vcols[i], *nv_col = NULL;
        for (int j = 0; j < n->nvcols && !nv_col; j++)
            if (!strcmp(n->vcols[j].column, ov_col->column))
                nv_col = &n->vcols[j];
        snprintf(col, sizeof col, "%s.%s", obj, ov_col->column);
        if (!nv_col) {
            proof_add_mismatch(res, db, "vector_checksum", col, ov_col->checksum ? ov_col->checksum : ov_col->type,
                               "column missing");
            continue;
        }
        if (!ov_col->checksum && !nv_col->checksum)
            continue; /* no primary key on either side: the row count is the comparison */
        if (ov_col->checksum && nv_col->checksum) {
            res->vector_columns++;
            res->vectors_sampled += nv_col->sampled;
        }
        if (!ov_col->checksum || !nv_col->checksum || strcmp(ov_col->checksum, nv_col->checksum))
            proof_add_mismatch(res, db, "vector_checksum", col, ov_col->checksum ? ov_col->checksum : "no primary key",
                               nv_col->checksum ? nv_col->checksum : "no primary key");
    }
}

/* Records missing, extra and differing tables of two snapshots (both sorted). */
static void compare_tables(const proof_snapshot *b, const proof_snapshot *a, proof_result *res)
{
    char obj[512];
    int i = 0, j = 0;
    while (i < b->ntables || j < a->ntables) {
        const proof_table *o = i < b->ntables ? &b->tables[i] : NULL, *n = j < a->ntables ? &a->tables[j] : NULL;
        int cmp = !o ? 1 : !n ? -1 : table_cmp(o, n);
        if (cmp < 0) {
            snprintf(obj, sizeof obj, "%s.%s", o->schema, o->table);
            add_mismatchf(res, b->db, "table_missing", obj, "present", "missing (old side: %lld rows)",
                          (long long) o->rows);
            i++;
        } else if (cmp > 0) {
            snprintf(obj, sizeof obj, "%s.%s", n->schema, n->table);
            add_mismatchf(res, b->db, "table_extra", obj, "absent", "present (%lld rows)", (long long) n->rows);
            j++;
        } else {
            compare_table(b->db, o, n, res);
            i++;
            j++;
        }
    }
}

/* ---- new-side checks --------------------------------------------------------------------- */

/* A query about object failed: logs it and records a query_error; returns false when the
 * connection itself is broken (the caller stops). */
static bool query_failed(pg_conn *c, proof_result *res, const char *db, const char *object, const char *what)
{
    log_error("proof: database %s: %s: %s", db, what, pg_errmsg(c));
    proof_add_mismatch(res, db, "query_error", object, what, pg_errmsg(c));
    return !conn_broken(c);
}

/* `vector`'s extversion against the newest version the server offers. */
static bool check_extversion(pg_conn *c, const char *db, const char *installed, proof_result *res)
{
    pg_result *r =
        pg_exec(c, "SELECT version FROM pg_available_extension_versions WHERE name = 'vector'", 0, NULL);
    if (!r)
        return query_failed(c, res, db, "vector", "could not read pg_available_extension_versions");
    const char *newest = NULL;
    for (int i = 0; i < pg_ntuples(r); i++)
        if (!newest || proof_version_cmp(pg_value(r, i, 0), newest) > 0)
            newest = pg_value(r, i, 0);
    if (!newest || proof_version_cmp(installed, newest) != 0)
        proof_add_mismatch(res, db, "extversion", "vector", newest ? newest : "an available version", installed);
    pg_clear(r);
    return true;
}

/* Every HNSW/IVFFlat index of a user table: name, table (quoted), valid, ready, whether the plan
 * check is skipped (partial or expression index), column (quoted), ordering operator as
 * OPERATOR(schema.op) and its right operand's type. */
static const char *const INDEXES_SQL =
    "SELECT ic.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), i.indisvalid, i.indisready,"
    "       i.indpred IS NOT NULL OR i.indkey[0] = 0, quote_ident(a.attname),"
    "       'OPERATOR(' || quote_ident(opn.nspname) || '.' || op.oprname || ')', format_type(op.oprright, NULL)"
    " FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam"
    " JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] AND i.indkey[0] <> 0"
    " LEFT JOIN pg_opclass oc ON oc.oid = i.indclass[0]"
    " LEFT JOIN LATERAL (SELECT ao.amopopr FROM pg_amop ao WHERE ao.amopfamily = oc.opcfamily"
    "   AND ao.amoppurpose = 'o' AND ao.amoplefttype = a.atttypid ORDER BY ao.amopstrategy LIMIT 1) o ON true"
    " LEFT JOIN pg_operator op ON op.oid = o.amopopr LEFT JOIN pg_namespace opn ON opn.oid = op.oprnamespace"
    " WHERE am.amname IN ('hnsw', 'ivfflat') AND ic.relkind = 'i' AND c.relkind IN ('r', 'm') AND" USER_REL_FILTER
    " ORDER BY n.nspname COLLATE \"C\", ic.relname COLLATE \"C\"";

/* Appends the plan's scans ("Index Scan using i", "Seq Scan on t") to buf; true when one of
 * them scans the index named index. */
static bool plan_uses(const cJSON *node, const char *index, char *buf, size_t len)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(node, "Node Type");
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(node, "Index Name");
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(node, "Relation Name");
    bool hit = cJSON_IsString(idx) && !strcmp(idx->valuestring, index);
    if (cJSON_IsString(type) && (cJSON_IsString(idx) || cJSON_IsString(rel))) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s %s %s", used ? ", " : "", type->valuestring,
                 cJSON_IsString(idx) ? "using" : "on", cJSON_IsString(idx) ? idx->valuestring : rel->valuestring);
    }
    const cJSON *k;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(node, "Plans")) hit = plan_uses(k, index, buf, len) || hit;
    return hit;
}

/* EXPLAINs sql with enable_seqscan off, in a transaction (or, inside the caller's, a savepoint)
 * that is rolled back. Sets *used and the scans seen; on a query error returns false with the
 * server's message in *err (newly allocated) and *broken set for a connection error. */
static bool explain_index(pg_conn *c, const char *sql, const char *index, bool *used, char *scans, size_t len,
                          char **err, bool *broken)
{
    bool nested = pg_in_transaction(c);
    char *plan = NULL;
    bool found = false;
    *err = NULL;
    *used = false;
    scans[0] = 0;
    if (pg_run(c, nested ? "SAVEPOINT pgmemctl_proof_plan" : "BEGIN", 0, NULL) &&
        pg_run(c, "SET LOCAL enable_seqscan = off", 0, NULL))
        plan = pg_query_text(c, sql, 0, NULL, &found);
    if (!found) {
        *err = strdup(pg_errmsg(c)[0] ? pg_errmsg(c) : "EXPLAIN returned nothing");
        *broken = conn_broken(c);
    }
    if (nested) {
        pg_run(c, "ROLLBACK TO SAVEPOINT pgmemctl_proof_plan", 0, NULL);
        pg_run(c, "RELEASE SAVEPOINT pgmemctl_proof_plan", 0, NULL);
    } else {
        pg_rollback(c);
    }
    cJSON *doc = plan ? cJSON_Parse(plan) : NULL;
    const cJSON *top = cJSON_GetArrayItem(doc, 0);
    const cJSON *root = top ? cJSON_GetObjectItemCaseSensitive(top, "Plan") : NULL;
    if (root)
        *used = plan_uses(root, index, scans, len);
    else if (found)
        *err = strdup("EXPLAIN did not return a JSON plan");
    cJSON_Delete(doc);
    free(plan);
    return found && root;
}

/* Validity and planner use of one index (a row of INDEXES_SQL). False when the connection broke. */
static bool check_index(pg_conn *c, const char *db, const pg_result *r, int i, proof_result *res)
{
    const char *name = pg_value(r, i, 0), *table = pg_value(r, i, 1);
    res->indexes++;
    if (strcmp(pg_value(r, i, 2), "t") || strcmp(pg_value(r, i, 3), "t")) {
        add_mismatchf(res, db, "index_invalid", name, "indisvalid and indisready", "indisvalid = %s, indisready = %s",
                      pg_value(r, i, 2), pg_value(r, i, 3));
        return true;
    }
    if (!strcmp(pg_value(r, i, 4), "t") || pg_isnull(r, i, 6)) {
        res->plan_skipped++;
        return true;
    }
    const char *col = pg_value(r, i, 5);
    char *sql = fmt("EXPLAIN (FORMAT JSON) SELECT 1 FROM %s ORDER BY %s %s (SELECT %s FROM %s WHERE %s IS NOT NULL"
                    " LIMIT 1)::%s LIMIT 10",
                    table, col, pg_value(r, i, 6), col, table, col, pg_value(r, i, 7));
    char scans[512], *err = NULL;
    bool used = false, broken = false;
    bool ok = sql && explain_index(c, sql, name, &used, scans, sizeof scans, &err, &broken);
    if (!ok) {
        log_error("proof: database %s: could not EXPLAIN a distance query on %s for index %s: %s", db, table, name,
                  err ? err : "out of memory");
        proof_add_mismatch(res, db, "query_error", name, "EXPLAIN of a distance query", err ? err : "out of memory");
    } else if (used) {
        res->indexes_used++;
    } else {
        proof_add_mismatch(res, db, "index_not_used", name, "the plan of a distance query scans the index",
                           scans[0] ? scans : "no scan");
    }
    free(sql);
    free(err);
    return ok || !broken;
}

static bool check_indexes(pg_conn *c, const char *db, proof_result *res)
{
    pg_result *r = pg_exec(c, INDEXES_SQL, 0, NULL);
    if (!r)
        return query_failed(c, res, db, db, "could not list the HNSW/IVFFlat indexes");
    bool ok = true;
    for (int i = 0; i < pg_ntuples(r) && ok; i++)
        ok = check_index(c, db, r, i, res);
    pg_clear(r);
    return ok;
}

bool proof_check_db(pg_conn *c_new, const proof_snapshot *before, int sample_rows, proof_result *res)
{
    const char *db = before->db;
    proof_snapshot after;
    if (!proof_snapshot_take(c_new, db, sample_rows, &after)) {
        proof_add_mismatch(res, db, "query_error", db, "the new side's snapshot", pg_errmsg(c_new));
        return !conn_broken(c_new);
    }
    res->databases++;
    compare_tables(before, &after, res);
    bool ok = true;
    if (before->vector_version && !after.vector_version)
        proof_add_mismatch(res, db, "extension_missing", "vector", before->vector_version, "not installed");
    if (after.vector_version)
        ok = check_extversion(c_new, db, after.vector_version, res);
    if (ok)
        ok = check_indexes(c_new, db, res);
    proof_snapshot_free(&after);
    return ok;
}

bool proof_check_server(pg_conn *c, int want_major, proof_result *res)
{
    int64_t num;
    if (!pg_query_int64(c, "SELECT current_setting('server_version_num')::int", 0, NULL, &num)) {
        log_error("proof: could not read server_version_num: %s", pg_errmsg(c));
        return false;
    }
    if (num / 10000 != want_major) {
        char want[16];
        snprintf(want, sizeof want, "%d", want_major);
        add_mismatchf(res, NULL, "server_version", "server", want, "%lld", (long long) (num / 10000));
    }
    return true;
}

/* ---- output ------------------------------------------------------------------------------ */

cJSON *proof_render(const proof_result *res)
{
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    bool ok = doc && arr && cJSON_AddBoolToObject(doc, "passed", proof_passed(res)) &&
              report_add_int(doc, "databases", res->databases) && report_add_int(doc, "tables", res->tables) &&
              report_add_int(doc, "rows", res->rows) && report_add_int(doc, "vector_columns", res->vector_columns) &&
              report_add_int(doc, "vectors_sampled", res->vectors_sampled) &&
              report_add_int(doc, "indexes", res->indexes) && report_add_int(doc, "indexes_used", res->indexes_used) &&
              report_add_int(doc, "plan_skipped", res->plan_skipped);
    for (int i = 0; ok && i < res->nmismatches; i++) {
        const proof_mismatch *m = &res->mismatches[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) { /* o now belongs to arr unless this fails */
            cJSON_Delete(o);
            ok = false;
            break;
        }
        ok = report_add_str(o, "database", m->db) && report_add_str(o, "check", m->check) &&
             report_add_str(o, "object", m->object) && report_add_str(o, "expected", m->expected) &&
             report_add_str(o, "actual", m->actual);
    }
    if (ok && cJSON_AddItemToObject(doc, "mismatches", arr))
        return doc;
    cJSON_Delete(arr);
    cJSON_Delete(doc);
    return NULL;
}

void proof_log_mismatches(const proof_result *res)
{
    static const char *const old_new[] = {"rows", "vector_checksum", "table_missing", "table_extra",
                                          "extension_missing", "database_missing"};
    for (int i = 0; i < res->nmismatches; i++) {
        const proof_mismatch *m = &res->mismatches[i];
        bool compared = false;
        for (size_t k = 0; k < sizeof old_new / sizeof *old_new && m->check; k++)
            compared = compared || !strcmp(m->check, old_new[k]);
        char where[300] = "";
        if (m->db)
            snprintf(where, sizeof where, "database %s: ", m->db);
        log_error("proof: %s%s of %s: %s %s, %s %s", where, m->check ? m->check : "?", m->object ? m->object : "?",
                  compared ? "old" : "expected", m->expected ? m->expected : "-", compared ? "new" : "found",
                  m->actual ? m->actual : "-");
    }
}

/* copy_identity.c — is the store being copied the one whose checkpoints the target holds? The
 * store id (sqlite_src_identity, its first memory) only finds the checkpoints. What identifies
 * the store is every row up to each checkpoint: their count and fingerprint are recorded with the
 * checkpoint and compared with the source before a run resumes after them. */
#include "copy_int.h"
#include "log.h"

#include <openssl/evp.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fingerprints ---------------------------------------------------------------------------- */

/* The digest is fetched once: EVP_DigestInit_ex with EVP_sha256() looks it up again on every
 * row, which made hashing four times slower (0.16 s against 0.04 s for 320,000 rows). */
struct copy_fp_hasher {
    EVP_MD *sha256;
    EVP_MD_CTX *md;
};

copy_fp_hasher *copy_fp_hasher_new(void)
{
    copy_fp_hasher *h = calloc(1, sizeof *h);
    if (h && (!(h->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) || !(h->md = EVP_MD_CTX_new()))) {
        copy_fp_hasher_free(h);
        h = NULL;
    }
    return h;
}

void copy_fp_hasher_free(copy_fp_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->md);
    EVP_MD_free(h->sha256);
    free(h);
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char) (v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

bool copy_fp_row(copy_fp_hasher *h, copy_fp *fp, sqlite3_stmt *st, const int *cols, int ncols)
{
    unsigned char buf[8];
    put_le(buf, (uint64_t) sqlite3_column_int64(st, 0), 8);
    bool ok = EVP_DigestInit_ex2(h->md, h->sha256, NULL) && EVP_DigestUpdate(h->md, buf, 8);
    for (int k = 0; ok && k < ncols; k++) {
        int type = sqlite3_column_type(st, cols[k]);
        const void *v = type == SQLITE_NULL ? NULL : sqlite3_column_blob(st, cols[k]);
        int len = v ? sqlite3_column_bytes(st, cols[k]) : 0;
        unsigned char head[5] = {(unsigned char) type};
        put_le(head + 1, (uint64_t) len, 4);
        ok = EVP_DigestUpdate(h->md, head, 5) && (len == 0 || EVP_DigestUpdate(h->md, v, (size_t) len));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ok = ok && EVP_DigestFinal_ex(h->md, md, &mdlen) && mdlen >= 16;
    if (ok)
        copy_fp_add(fp, &(copy_fp){get_le64(md), get_le64(md + 8)});
    return ok;
}

void copy_fp_add(copy_fp *acc, const copy_fp *x)
{
    acc->lo += x->lo;
    acc->hi += x->hi;
}

void copy_fp_hex(const copy_fp *fp, char out[33])
{
    snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, fp->lo, fp->hi);
}

bool copy_fp_parse(const char *hex, copy_fp *out)
{
    if (!hex || strlen(hex) != 32 || strspn(hex, "0123456789abcdef") != 32)
        return false;
    char half[17];
    memcpy(half, hex, 16);
    half[16] = '\0';
    out->lo = strtoull(half, NULL, 16);
    out->hi = strtoull(hex + 16, NULL, 16);
    return true;
}

/* ---- the check ------------------------------------------------------------------------------- */

#define NTABLES 3
static const char *TABLES[NTABLES] = {"knowledge_nodes", "memory_connections", "knowledge_edges"};

/* One checkpointed range: what was recorded and what the source holds now. */
typedef struct {
    int64_t start, last;
    bool known;                /* a count and fingerprint were recorded */
    int64_t rows_then, rows_now;
    copy_fp fp_then, fp_now;
    bool differs;              /* not known, or not the same */
} id_range;

/* A source table with checkpoints. */
typedef struct {
    const char *table;         /* static */
    id_range *r;               /* by range_start */
    int n;
    char *keys_sql;            /* SELECT rowid, key columns … WHERE rowid > ?1 AND rowid <= ?2 (sqlite3_free) */
    int ncols;                 /* key columns: 1 (id) or 3 (source_id, target_id, type) */
    bool looked_up;            /* its differing ranges were looked up in the target */
    int64_t missing;           /* rows of those ranges the target does not hold */
    int64_t first_rowid;
    char first_key[160];
} id_table;

struct copy_identity_fix {
    const char *table;
    int64_t start, rows;
    copy_fp fp;
};

/* The checkpoints of this store, grouped by table. A table without any is left with n = 0. */
static bool load(copy_shared *sh, pg_conn *c, id_table t[NTABLES], int *nranges)
{
    pg_result *r = pg_exec(c,
                           "SELECT source_table, range_start, last_rowid, source_rows, fingerprint"
                           " FROM pgmemctl_copy_progress WHERE source_id = $1"
                           " AND source_table IN ('knowledge_nodes', 'memory_connections', 'knowledge_edges')"
                           " ORDER BY source_table, range_start",
                           1, (const char *[]){sh->res->source_id});
    if (!r) {
        copy_pg_fail(sh, c, "reading pgmemctl_copy_progress");
        return false;
    }
    *nranges = pg_ntuples(r);
    bool ok = true;
    for (int k = 0; k < NTABLES; k++)
        t[k] = (id_table){.table = TABLES[k]};
    for (int k = 0; ok && k < NTABLES; k++) {
        for (int i = 0; i < pg_ntuples(r); i++)
            t[k].n += !strcmp(pg_value(r, i, 0), TABLES[k]);
        if (t[k].n && !(t[k].r = calloc((size_t) t[k].n, sizeof *t[k].r)))
            ok = false;
        int j = 0;
        for (int i = 0; ok && t[k].r && j < t[k].n && i < pg_ntuples(r); i++) {
            if (strcmp(pg_value(r, i, 0), TABLES[k]) != 0)
                continue;
            id_range *g = &t[k].r[j++];
            g->start = strtoll(pg_value(r, i, 1), NULL, 10);
            g->last = strtoll(pg_value(r, i, 2), NULL, 10);
            g->known = !pg_isnull(r, i, 3) && copy_fp_parse(pg_value(r, i, 4), &g->fp_then);
            g->rows_then = g->known ? strtoll(pg_value(r, i, 3), NULL, 10) : 0;
        }
    }
    pg_clear(r);
    if (!ok) {
        for (int k = 0; k < NTABLES; k++)
            free(t[k].r);
        copy_fail(sh, COPY_FAILED, "out of memory");
    }
    return ok;
}

/* The query of a table's key columns (identifiers quoted by SQLite's %w). An edge table the
 * source no longer has gets none: it holds no rows now. */
static bool keys_query(copy_shared *sh, sqlite_src *src, id_table *t)
{
    if (!strcmp(t->table, "knowledge_nodes")) {
        t->ncols = 1;
        t->keys_sql = sqlite3_mprintf("SELECT rowid, \"%w\" FROM knowledge_nodes WHERE rowid > ?1 AND rowid <= ?2"
                                      " ORDER BY rowid",
                                      sh->nq.cols[sh->nq.i_id]);
        return t->keys_sql != NULL;
    }
    if (!sqlite_src_has_table(src, t->table))
        return true;
    edge_query q;
    if (!edge_query_build(src, t->table, &q)) {
        edge_query_free(&q);
        return false;
    }
    t->ncols = 3;
    t->keys_sql = sqlite3_mprintf("SELECT rowid, \"%w\", \"%w\", \"%w\" FROM \"%w\" WHERE rowid > ?1 AND rowid <= ?2"
                                  " ORDER BY rowid",
                                  q.cols[q.i_src], q.cols[q.i_tgt], q.cols[q.i_type], t->table);
    edge_query_free(&q);
    return t->keys_sql != NULL;
}

/* One pass in rowid order over the rows up to the table's highest checkpoint: each row counts
 * towards the range holding it, if any (rows between a range's checkpoint and the next range are
 * not copied yet). Marks the ranges that differ from what was recorded. */
static bool fingerprint_table(sqlite_src *src, copy_fp_hasher *h, id_table *t)
{
    int64_t from = t->r[0].start, upto = 0;
    for (int i = 0; i < t->n; i++)
        upto = t->r[i].last > upto ? t->r[i].last : upto;
    int cols[3] = {1, 2, 3};
    bool ok = true;
    if (t->keys_sql && upto > from) {
        sqlite3_stmt *st = sqlite_src_prepare(src, t->keys_sql);
        if (!st)
            return false;
        sqlite3_bind_int64(st, 1, from);
        sqlite3_bind_int64(st, 2, upto);
        int i = 0, rc;
        while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t rowid = sqlite3_column_int64(st, 0);
            while (i < t->n && rowid > t->r[i].last)
                i++;
            if (i == t->n)
                break;
            if (rowid <= t->r[i].start)
                continue;
            t->r[i].rows_now++;
            ok = copy_fp_row(h, &t->r[i].fp_now, st, cols, t->ncols);
        }
        if (ok && rc != SQLITE_ROW && rc != SQLITE_DONE) {
            log_error("%s: reading %s: %s", src->path, t->table, sqlite3_errmsg(src->db));
            ok = false;
        }
        sqlite3_finalize(st);
    }
    for (int i = 0; i < t->n; i++) {
        id_range *g = &t->r[i];
        g->differs = g->last > g->start && (!g->known || g->rows_then != g->rows_now || g->fp_then.lo != g->fp_now.lo ||
                                            g->fp_then.hi != g->fp_now.hi);
    }
    return ok;
}

static bool any_differs(const id_table *t)
{
    for (int i = 0; i < t->n; i++)
        if (t->r[i].differs)
            return true;
    return false;
}

/* A value for a text column of the lookup table: NULL unless valid UTF-8 without NUL (a value
 * that is not cannot be in the target either). */
static void put_text_or_null(pgbuf *b, const char *s, size_t len)
{
    char why[64];
    if (s && text_check(s, len, why, sizeof why))
        pgcopy_text(b, s, len);
    else
        pgcopy_null(b);
}

static void put_uuid_or_null(pgbuf *b, sqlite3_stmt *st, int col)
{
    unsigned char u[16];
    const char *s = (const char *) sqlite3_column_text(st, col);
    if (s && parse_uuid(s, (size_t) sqlite3_column_bytes(st, col), u))
        pgcopy_uuid(b, u);
    else
        pgcopy_null(b);
}

/* Streams the rows of t's differing ranges into pgmemctl_identity_rows (rowid, id, target, type,
 * key: a node's id, or an edge's endpoints and type, and the key its rejection would be
 * recorded under). */
static bool stream_rows(pg_conn *c, sqlite_src *src, const id_table *t)
{
    sqlite3_stmt *st = sqlite_src_prepare(src, t->keys_sql);
    if (!st)
        return false;
    pgbuf b;
    pgbuf_init(&b);
    bool ok = pg_copy_begin(c, "COPY pgmemctl_identity_rows (rowid, id, target, type, key) FROM STDIN (FORMAT binary)");
    if (ok)
        pgcopy_header(&b);
    for (int i = 0; ok && i < t->n; i++) {
        if (!t->r[i].differs)
            continue;
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, t->r[i].start);
        sqlite3_bind_int64(st, 2, t->r[i].last);
        while (ok && sqlite3_step(st) == SQLITE_ROW) {
            char key[160];
            int64_t rowid = sqlite3_column_int64(st, 0);
            if (t->ncols == 1)
                copy_map_node_key(st, 1, rowid, key, sizeof key);
            else
                copy_map_edge_key(st, 1, 2, 3, key, sizeof key);
            pgcopy_tuple_begin(&b, 5);
            pgcopy_int8(&b, rowid);
            put_uuid_or_null(&b, st, 1);
            if (t->ncols == 1) {
                pgcopy_null(&b);
                pgcopy_null(&b);
            } else {
                put_uuid_or_null(&b, st, 2);
                put_text_or_null(&b, (const char *) sqlite3_column_text(st, 3), (size_t) sqlite3_column_bytes(st, 3));
            }
            put_text_or_null(&b, key, strlen(key));
            if (b.len >= 256 * 1024) {
                ok = !b.oom && pg_copy_put(c, b.data, b.len);
                pgbuf_reset(&b);
            }
        }
    }
    sqlite3_finalize(st);
    if (ok)
        pgcopy_trailer(&b);
    ok = ok && !b.oom && pg_copy_put(c, b.data, b.len) && pg_copy_end(c, NULL);
    pgbuf_free(&b);
    return ok;
}

/* The rows of pgmemctl_identity_rows the target does not hold, and the first of them: nodes
 * absent from memories, edges absent from edges, unless rejected at that rowid under that key. */
static const char *MISSING_NODES =
    "WITH miss AS (SELECT r.rowid, r.key FROM pgmemctl_identity_rows r"
    " WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.id = r.id)"
    " AND NOT EXISTS (SELECT 1 FROM pgmemctl_copy_rejects j WHERE j.source_id = $1 AND j.source_table = $2"
    "  AND j.source_rowid = r.rowid AND j.source_key = r.key AND j.action = 'row_skipped'))"
    " SELECT count(*), min(rowid), (SELECT key FROM miss ORDER BY rowid LIMIT 1) FROM miss";
static const char *MISSING_EDGES =
    "WITH miss AS (SELECT r.rowid, r.key FROM pgmemctl_identity_rows r"
    " WHERE NOT EXISTS (SELECT 1 FROM edges e WHERE e.source_id = r.id AND e.target_id = r.target"
    "  AND e.edge_type = r.type)"
    " AND NOT EXISTS (SELECT 1 FROM pgmemctl_copy_rejects j WHERE j.source_id = $1 AND j.source_table = $2"
    "  AND j.source_rowid = r.rowid AND j.source_key = r.key AND j.action = 'edge_skipped'))"
    " SELECT count(*), min(rowid), (SELECT key FROM miss ORDER BY rowid LIMIT 1) FROM miss";

/* Looks up the rows of every differing range in the target, in one transaction that is rolled
 * back (it only creates a temporary table). */
static bool look_up(copy_shared *sh, pg_conn *c, sqlite_src *src, id_table t[NTABLES])
{
    bool ok = pg_begin(c) && pg_run(c,
                                    "CREATE TEMP TABLE pgmemctl_identity_rows (rowid bigint, id uuid, target uuid,"
                                    " type text, key text) ON COMMIT DROP",
                                    0, NULL);
    for (int k = 0; ok && k < NTABLES; k++) {
        if (!any_differs(&t[k]) || !t[k].keys_sql)
            continue;
        pg_result *r = NULL;
        ok = stream_rows(c, src, &t[k]) &&
             (r = pg_exec(c, t[k].ncols == 1 ? MISSING_NODES : MISSING_EDGES, 2,
                          (const char *[]){sh->res->source_id, t[k].table})) != NULL;
        if (ok) {
            t[k].looked_up = true;
            t[k].missing = strtoll(pg_value(r, 0, 0), NULL, 10);
            t[k].first_rowid = pg_isnull(r, 0, 1) ? 0 : strtoll(pg_value(r, 0, 1), NULL, 10);
            snprintf(t[k].first_key, sizeof t[k].first_key, "%s", pg_isnull(r, 0, 2) ? "?" : pg_value(r, 0, 2));
        }
        pg_clear(r);
        ok = ok && pg_run(c, "TRUNCATE pgmemctl_identity_rows", 0, NULL);
    }
    if (!ok)
        copy_pg_fail(sh, c, "looking up the rows before the checkpoints in the target");
    pg_rollback(c);
    for (int k = 0; ok && k < NTABLES; k++) /* a table the source no longer has: nothing to miss */
        t[k].looked_up = t[k].looked_up || any_differs(&t[k]);
    return ok;
}

/* res->identity: one object per table with checkpoints. */
static void describe(copy_result *res, const id_table t[NTABLES])
{
    for (int k = 0; k < NTABLES; k++) {
        if (!t[k].n)
            continue;
        int64_t upto = 0, then = 0, now = 0;
        bool known = true;
        for (int i = 0; i < t[k].n; i++) {
            const id_range *g = &t[k].r[i];
            upto = g->last > upto ? g->last : upto;
            if (g->last > g->start) {
                known = known && g->known;
                then += g->rows_then;
                now += g->rows_now;
            }
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "table", t[k].table);
        cJSON_AddNumberToObject(o, "ranges", t[k].n);
        cJSON_AddNumberToObject(o, "up_to_rowid", (double) upto);
        if (known)
            cJSON_AddNumberToObject(o, "rows_when_copied", (double) then);
        else
            cJSON_AddNullToObject(o, "rows_when_copied");
        cJSON_AddNumberToObject(o, "rows_now", (double) now);
        cJSON_AddBoolToObject(o, "same", !any_differs(&t[k]));
        if (t[k].looked_up) {
            cJSON_AddNumberToObject(o, "missing_in_target", (double) t[k].missing);
            if (t[k].missing > 0) {
                cJSON *f = cJSON_AddObjectToObject(o, "first_missing");
                cJSON_AddNumberToObject(f, "rowid", (double) t[k].first_rowid);
                cJSON_AddStringToObject(f, "key", t[k].first_key);
            }
        } else {
            cJSON_AddNullToObject(o, "missing_in_target");
        }
        cJSON_AddItemToArray(res->identity, o);
    }
}

/* "knowledge_nodes up to rowid 2012: 2012 rows when copied, 2015 now, 1012 of them not in the
 * target (the first: rowid 1001, …)" for a differing table. */
static void table_text(char *out, size_t n, const id_table *t)
{
    int64_t upto = 0, then = 0, now = 0;
    bool known = true;
    for (int i = 0; i < t->n; i++)
        if (t->r[i].differs) {
            upto = t->r[i].last > upto ? t->r[i].last : upto;
            known = known && t->r[i].known;
            then += t->r[i].rows_then;
            now += t->r[i].rows_now;
        }
    char when[64] = "no count recorded", miss[240] = "all of them in the target";
    if (known)
        snprintf(when, sizeof when, "%" PRId64 " rows when copied", then);
    if (t->missing > 0)
        snprintf(miss, sizeof miss, "%" PRId64 " of them not in the target (the first: rowid %" PRId64 ", %.120s)",
                 t->missing, t->first_rowid, t->first_key);
    snprintf(out, n, "%s up to rowid %" PRId64 ": %s, %" PRId64 " now, %s", t->table, upto, when, now, miss);
}

/* The differing tables' table_text, joined with "; " into out; with missing, only those with
 * rows missing from the target. Ends in "…" when out is too small. */
static void tables_text(char *out, size_t n, const id_table t[NTABLES], bool missing)
{
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k < NTABLES; k++) {
        if (!any_differs(&t[k]) || (missing && t[k].missing == 0))
            continue;
        char one[512];
        table_text(one, sizeof one, &t[k]);
        int w = snprintf(out + len, n - len, "%s%s", len ? "; " : "", one);
        if (w < 0 || (size_t) w >= n - len) {
            snprintf(out + (n > 4 ? n - 4 : 0), 4, "…");
            return;
        }
        len += (size_t) w;
    }
}

bool copy_identity_check(copy_shared *sh, pg_conn *c, sqlite_src *src)
{
    copy_result *res = sh->res;
    if (sh->req->verify_existing) {
        res->identity_check = "not_checked";
        return true;
    }
    id_table t[NTABLES];
    int nranges = 0;
    if (!load(sh, c, t, &nranges))
        return false;
    bool ok = true;
    copy_fp_hasher *h = NULL;
    if (nranges == 0) {
        res->identity_check = "new";
        goto out;
    }
    if (!(h = copy_fp_hasher_new())) {
        copy_fail(sh, COPY_FAILED, "out of memory");
        ok = false;
        goto out;
    }
    bool differ = false;
    for (int k = 0; ok && k < NTABLES; k++) {
        if (!t[k].n)
            continue;
        ok = keys_query(sh, src, &t[k]) && fingerprint_table(src, h, &t[k]);
        if (!ok && !sh->failed)
            copy_fail(sh, COPY_FAILED, "%s: could not read the rows before the checkpoints of %s", src->path,
                      t[k].table);
        differ = differ || (ok && any_differs(&t[k]));
    }
    if (ok && differ)
        ok = look_up(sh, c, src, t);
    if (!ok)
        goto out;
    describe(res, t);
    if (!differ) {
        res->identity_check = "matched";
        goto out;
    }
    int64_t missing = 0;
    for (int k = 0; k < NTABLES; k++)
        missing += t[k].missing;
    char detail[560]; /* what differs, and the remedy, fit in res->message */
    tables_text(detail, sizeof detail, t, missing > 0);
    if (missing > 0) {
        res->identity_check = "mismatch";
        copy_fail(sh, COPY_REFUSED,
                  "%.160s shares its first memory with the store copied into this database (store id %.12s…) but not"
                  " the rows before the checkpoints: %s. Resuming would skip those rows. Copy this store into a"
                  " fresh database, or run `pgmemctl copy --verify-existing` to re-read it whole and merge it into"
                  " this one (the rows already there stay)",
                  src->path, res->source_id, detail);
        ok = false;
        goto out;
    }
    /* every row still in the source before the checkpoints is in the target: rows were removed
     * from the source, or the counts were not recorded yet; nothing would be skipped */
    res->identity_check = "verified_in_target";
    bool recorded = true;
    for (int k = 0; k < NTABLES; k++)
        for (int i = 0; i < t[k].n; i++)
            recorded = recorded && (!t[k].r[i].differs || t[k].r[i].known);
    log_info("%s: %s", recorded ? "rows were removed from the source since they were copied, but the target holds every"
                                  " row the source still has before the checkpoints: resuming"
                                : "checkpoints without a row count and fingerprint (written before migration 0005):"
                                  " the rows before them were looked up in the target instead, and all are there",
             detail);
    for (int k = 0; k < NTABLES; k++)
        for (int i = 0; i < t[k].n; i++) {
            if (!t[k].r[i].differs)
                continue;
            struct copy_identity_fix *nf = realloc(sh->fix, (size_t) (sh->nfix + 1) * sizeof *nf);
            if (!nf) {
                copy_fail(sh, COPY_FAILED, "out of memory");
                ok = false;
                goto out;
            }
            sh->fix = nf;
            sh->fix[sh->nfix++] = (struct copy_identity_fix){t[k].table, t[k].r[i].start, t[k].r[i].rows_now,
                                                             t[k].r[i].fp_now};
        }
out:
    copy_fp_hasher_free(h);
    for (int k = 0; k < NTABLES; k++) {
        free(t[k].r);
        sqlite3_free(t[k].keys_sql);
    }
    return ok;
}

bool copy_identity_record(copy_shared *sh, pg_conn *c)
{
    if (sh->nfix == 0 || sh->req->dry_run)
        return true;
    bool ok = pg_begin(c);
    for (int i = 0; ok && i < sh->nfix; i++) {
        char s[32], n[32], f[33];
        snprintf(s, sizeof s, "%" PRId64, sh->fix[i].start);
        snprintf(n, sizeof n, "%" PRId64, sh->fix[i].rows);
        copy_fp_hex(&sh->fix[i].fp, f);
        ok = pg_run(c,
                    "UPDATE pgmemctl_copy_progress SET source_rows = $4, fingerprint = $5, updated_at = now()"
                    " WHERE source_id = $1 AND source_table = $2 AND range_start = $3",
                    5, (const char *[]){sh->res->source_id, sh->fix[i].table, s, n, f});
    }
    ok = ok && pg_commit(c);
    if (!ok) {
        copy_pg_fail(sh, c, "recording the source's rows before the checkpoints");
        pg_rollback(c);
    }
    return ok;
}

/* copy_ranges.c — the rowid ranges of a copy: loaded from pgmemctl_copy_progress (one row per
 * source table and range, each with its own checkpoint), split so that each of --jobs streams
 * has one, and written back before anything is copied. */
#include "copy_int.h"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool copy_checkpoint(copy_shared *sh, pg_conn *c, const char *table, int64_t range_start, int64_t last_rowid,
                     int64_t copied, int64_t rejected)
{
    char s[32], a[32], b[32], d[32];
    snprintf(s, sizeof s, "%" PRId64, range_start);
    snprintf(a, sizeof a, "%" PRId64, last_rowid);
    snprintf(b, sizeof b, "%" PRId64, copied);
    snprintf(d, sizeof d, "%" PRId64, rejected);
    return pg_run(c,
                  "INSERT INTO pgmemctl_copy_progress AS p (source_id, source_table, range_start, last_rowid,"
                  " rows_copied, rows_rejected) VALUES ($1, $2, $3, $4, $5, $6)"
                  " ON CONFLICT (source_id, source_table, range_start) DO UPDATE SET"
                  " last_rowid = GREATEST(p.last_rowid, EXCLUDED.last_rowid),"
                  " rows_copied = p.rows_copied + EXCLUDED.rows_copied,"
                  " rows_rejected = p.rows_rejected + EXCLUDED.rows_rejected, updated_at = now()",
                  6, (const char *[]){sh->res->source_id, table, s, a, b, d});
}

int64_t copy_ranges_last(const copy_range *r, int n)
{
    int64_t m = 0;
    for (int i = 0; i < n; i++)
        if (r[i].last > m)
            m = r[i].last;
    return m;
}

static bool unfinished(const copy_range *r) { return r->end == COPY_RANGE_OPEN || r->read_from < r->end; }

/* Source rows with read_from < rowid <= end (the rows this run reads in the range). */
static int64_t rows_left(sqlite_src *src, sqlite3_stmt *cnt, const copy_range *r)
{
    sqlite3_reset(cnt);
    sqlite3_bind_int64(cnt, 1, r->read_from);
    sqlite3_bind_int64(cnt, 2, r->end);
    int64_t n = sqlite3_step(cnt) == SQLITE_ROW ? sqlite3_column_int64(cnt, 0) : -1;
    if (n < 0)
        log_error("%s: counting rows: %s", src->path, sqlite3_errmsg(src->db));
    return n;
}

/* The rowid of the k-th row (1-based) after read_from. */
static int64_t kth_rowid(sqlite_src *src, sqlite3_stmt *at, const copy_range *r, int64_t k)
{
    sqlite3_reset(at);
    sqlite3_bind_int64(at, 1, r->read_from);
    sqlite3_bind_int64(at, 2, k - 1);
    int64_t v = sqlite3_step(at) == SQLITE_ROW ? sqlite3_column_int64(at, 0) : -1;
    if (v < 0)
        log_error("%s: finding a range boundary: %s", src->path, sqlite3_errmsg(src->db));
    return v;
}

static bool load(copy_shared *sh, pg_conn *c, const char *table, copy_range **out, int *n)
{
    pg_result *r = pg_exec(c,
                           "SELECT range_start, coalesce(range_end, -1), last_rowid FROM pgmemctl_copy_progress"
                           " WHERE source_id = $1 AND source_table = $2 ORDER BY range_start",
                           2, (const char *[]){sh->res->source_id, table});
    if (!r) {
        copy_pg_fail(sh, c, "reading pgmemctl_copy_progress");
        return false;
    }
    int nt = pg_ntuples(r);
    copy_range *v = calloc((size_t) (nt ? nt : 1), sizeof *v);
    if (!v) {
        pg_clear(r);
        copy_fail(sh, COPY_FAILED, "out of memory");
        return false;
    }
    for (int i = 0; i < nt; i++) {
        v[i].table = table;
        v[i].start = strtoll(pg_value(r, i, 0), NULL, 10);
        int64_t e = strtoll(pg_value(r, i, 1), NULL, 10);
        v[i].end = e < 0 ? COPY_RANGE_OPEN : e;
        v[i].last = strtoll(pg_value(r, i, 2), NULL, 10);
        v[i].persisted = true;
    }
    pg_clear(r);
    if (nt == 0) { /* a store copied for the first time: one open range */
        v[0] = (copy_range){.table = table, .start = 0, .end = COPY_RANGE_OPEN, .last = 0};
        nt = 1;
    }
    *out = v;
    *n = nt;
    return true;
}

/* Writes the layout: range_end of every range (it shrinks when a range is split) and the new
 * ranges, with their checkpoints. One transaction, so a crash leaves the old layout or the new. */
static bool persist(copy_shared *sh, pg_conn *c, const copy_range *v, int n)
{
    if (!pg_begin(c))
        goto fail;
    for (int i = 0; i < n; i++) {
        char s[32], e[32], l[32];
        snprintf(s, sizeof s, "%" PRId64, v[i].start);
        snprintf(e, sizeof e, "%" PRId64, v[i].end);
        snprintf(l, sizeof l, "%" PRId64, v[i].last);
        const char *p[] = {sh->res->source_id, v[i].table, s, v[i].end == COPY_RANGE_OPEN ? NULL : e, l};
        if (!pg_run(c,
                    "INSERT INTO pgmemctl_copy_progress AS p (source_id, source_table, range_start, range_end,"
                    " last_rowid) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_id, source_table, range_start)"
                    " DO UPDATE SET range_end = EXCLUDED.range_end, last_rowid = EXCLUDED.last_rowid,"
                    " updated_at = now()",
                    5, p))
            goto fail;
    }
    if (pg_commit(c))
        return true;
fail:
    copy_pg_fail(sh, c, "recording the copy's rowid ranges in pgmemctl_copy_progress");
    pg_rollback(c);
    return false;
}

bool copy_ranges_plan(copy_shared *sh, pg_conn *c, sqlite_src *src, const char *table, int jobs, bool write,
                      bool from_start, copy_range **out, int *n)
{
    copy_range *v;
    int nv;
    if (!load(sh, c, table, &v, &nv))
        return false;
    for (int i = 0; i < nv; i++)
        v[i].read_from = from_start ? v[i].start : v[i].last;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE rowid > ?1 AND rowid <= ?2", table);
    sqlite3_stmt *cnt = sqlite_src_prepare(src, sql);
    snprintf(sql, sizeof sql, "SELECT rowid FROM \"%s\" WHERE rowid > ?1 ORDER BY rowid LIMIT 1 OFFSET ?2", table);
    sqlite3_stmt *at = sqlite_src_prepare(src, sql);
    bool ok = cnt && at, changed = false;
    for (;;) {
        int open = 0, best = -1;
        int64_t best_left = 1;
        for (int i = 0; ok && i < nv; i++) {
            if (!unfinished(&v[i]))
                continue;
            open++;
            int64_t left = rows_left(src, cnt, &v[i]);
            ok = left >= 0;
            if (left > best_left) {
                best_left = left;
                best = i;
            }
        }
        if (!ok || open >= jobs || best < 0)
            break;
        int64_t mid = kth_rowid(src, at, &v[best], best_left / 2);
        ok = mid > 0;
        copy_range *nv2 = ok ? realloc(v, (size_t) (nv + 1) * sizeof *v) : NULL;
        if (!nv2) {
            if (ok)
                copy_fail(sh, COPY_FAILED, "out of memory");
            ok = false;
            break;
        }
        v = nv2;
        copy_range *old = &v[best], *add = &v[nv++];
        /* old keeps (start, mid], the new one takes (mid, end]; what was committed stays counted */
        *add = (copy_range){.table = table, .start = mid, .end = old->end, .last = old->last > mid ? old->last : mid,
                            .read_from = old->read_from > mid ? old->read_from : mid};
        old->end = mid;
        if (old->last > mid)
            old->last = mid;
        changed = true;
    }
    sqlite3_finalize(cnt);
    sqlite3_finalize(at);
    if (!ok) {
        if (!sh->failed)
            copy_fail(sh, COPY_FAILED, "%s: could not plan the rowid ranges of %s", src->path, table);
        free(v);
        return false;
    }
    if (write && changed && !persist(sh, c, v, nv)) {
        free(v);
        return false;
    }
    *out = v;
    *n = nv;
    return true;
}

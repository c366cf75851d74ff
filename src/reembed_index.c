/* reembed_index.c — builds the HNSW index of a re-embed and measures its recall@10 against
 * exact search before the new vectors are put in service. */
#include "reembed_index.h"
#include "log.h"
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void seterr(char *err, size_t errlen, const char *what, pg_conn *c)
{
    snprintf(err, errlen, "%s: %s", what, pg_errmsg(c));
}

/* pgvector's operator for each vector opclass (README "Distances"). */
static const char *operator_for(const char *opclass)
{
    static const char *const map[][2] = {
        {"vector_cosine_ops", "<=>"}, {"vector_l2_ops", "<->"}, {"vector_ip_ops", "<#>"}, {"vector_l1_ops", "<+>"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], opclass))
            return map[i][1];
    return NULL;
}

static int reloption(const char *relopts, const char *key, int def)
{
    size_t kl = strlen(key);
    for (const char *p = relopts; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == '=')
            return atoi(p + kl + 1);
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return def;
}

bool reembed_index_params(pg_conn *c, reembed_index_info *ix, char *err, size_t errlen)
{
    snprintf(ix->opclass, sizeof ix->opclass, "vector_cosine_ops");
    ix->m = 16;
    ix->ef_construction = 64;
    pg_result *r = pg_exec(c,
                           "SELECT (SELECT opcname FROM pg_opclass WHERE oid = i.indclass[0]),"
                           " coalesce(array_to_string(cl.reloptions, ','), '')"
                           " FROM pg_index i JOIN pg_class cl ON cl.oid = i.indexrelid"
                           " WHERE i.indexrelid = to_regclass('idx_memories_embedding_hnsw')",
                           0, NULL);
    if (!r) {
        seterr(err, errlen, "reading idx_memories_embedding_hnsw", c);
        return false;
    }
    if (pg_ntuples(r) > 0) {
        snprintf(ix->opclass, sizeof ix->opclass, "%s", pg_value(r, 0, 0));
        ix->m = reloption(pg_value(r, 0, 1), "m", 16);
        ix->ef_construction = reloption(pg_value(r, 0, 1), "ef_construction", 64);
    }
    pg_clear(r);
    return reembed_index_op(ix, err, errlen);
}

bool reembed_index_op(reembed_index_info *ix, char *err, size_t errlen)
{
    const char *op = operator_for(ix->opclass);
    if (!op) {
        snprintf(err, errlen, "idx_memories_embedding_hnsw uses operator class %s, which reembed does not know",
                 ix->opclass);
        return false;
    }
    snprintf(ix->op, sizeof ix->op, "%s", op);
    return true;
}

bool reembed_build_index(pg_conn *c, const reembed_index_info *ix, const char *table, const char *column, const char *name,
                         bool concurrently, const char *maintenance_work_mem, char *err, size_t errlen)
{
    bool found;
    char *valid = pg_query_text(c, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", 1,
                                (const char *[]){name}, &found);
    if (!found && pg_errmsg(c)[0]) {
        seterr(err, errlen, "looking for the index", c);
        return false;
    }
    bool exists = found, is_valid = valid && !strcmp(valid, "t");
    free(valid);
    if (exists && is_valid) {
        log_info("reembed: %s already built by an earlier run: kept", name);
        return true;
    }
    char sql[512];
    if (exists) {
        log_info("reembed: dropping %s, left invalid by an interrupted build", name);
        snprintf(sql, sizeof sql, "DROP INDEX %s%s", concurrently ? "CONCURRENTLY " : "", name);
        if (!pg_run(c, sql, 0, NULL)) {
            seterr(err, errlen, "dropping the invalid index", c);
            return false;
        }
    }
    if (maintenance_work_mem &&
        !pg_run(c, "SELECT set_config('maintenance_work_mem', $1, false)", 1, (const char *[]){maintenance_work_mem})) {
        seterr(err, errlen, "setting maintenance_work_mem", c);
        return false;
    }
    snprintf(sql, sizeof sql, "CREATE INDEX %s%s ON %s USING hnsw (%s %s) WITH (m = %d, ef_construction = %d)",
             concurrently ? "CONCURRENTLY " : "", name, table, column, ix->opclass, ix->m, ix->ef_construction);
    log_info("reembed: %s", sql);
    double t0 = progress_now();
    bool ok = pg_run(c, sql, 0, NULL);
    if (!ok)
        seterr(err, errlen, "building the HNSW index", c);
    else
        log_info("reembed: %s built in %.1f s", name, progress_now() - t0);
    pg_run(c, "RESET maintenance_work_mem", 0, NULL);
    return ok;
}

/* The distances of the top 10 rows for query vector v, ascending, with the given planner setting
 * switched off for the query. Fills d (up to 10) and returns how many, or -1 on error. */
static int top10(pg_conn *c, const reembed_index_info *ix, const char *table, const char *column, const char *v,
                 const char *off, double d[10])
{
    char sql[512], set[64];
    snprintf(set, sizeof set, "SET LOCAL %s = off", off);
    snprintf(sql, sizeof sql,
             "SELECT (%s %s $1::vector)::float8 FROM %s WHERE %s IS NOT NULL ORDER BY %s %s $1::vector LIMIT 10",
             column, ix->op, table, column, column, ix->op);
    int n = -1;
    pg_result *r = NULL;
    /* a disabled scan type costs 1e10, which would make the server JIT-compile every query
     * (about 0.2 s each, measured): JIT off for these */
    if (pg_begin(c) && pg_run(c, set, 0, NULL) && pg_run(c, "SET LOCAL jit = off", 0, NULL))
        r = pg_exec(c, sql, 1, (const char *[]){v});
    if (r) {
        n = pg_ntuples(r);
        for (int i = 0; i < n && i < 10; i++)
            d[i] = strtod(pg_value(r, i, 0), NULL);
        pg_clear(r);
    }
    pg_rollback(c);
    return n;
}

/* Ties: a result as close as the exact 10th neighbour is a true neighbour, whichever of the
 * equally distant rows the exact scan happened to list (ann-benchmarks' recall with a distance
 * threshold). The share of the ke exact neighbours the ka approximate results found. */
static double share_found(const double *exact, int ke, const double *approx, int ka, double tol)
{
    int hits = 0;
    for (int j = 0; j < ka; j++)
        hits += ke > 0 && approx[j] <= exact[ke - 1] + tol;
    return ke > 0 ? (double) (hits < ke ? hits : ke) / ke : 1.0;
}

bool reembed_recall_known(pg_conn *c, const reembed_index_info *ix, const char *table, const char *column,
                          const recall_exact *ex, double *recall, int *queries, char *err, size_t errlen)
{
    *recall = -1;
    *queries = 0;
    int n = recall_exact_queries(ex), dim = 0;
    double sum = 0;
    char *text = NULL;
    for (int i = 0; i < n; i++) {
        double exact[10], approx[10];
        int ke = recall_exact_result(ex, i, exact);
        if (!text) {
            /* the dimension is the query's length: the table's typmod */
            pg_result *r = pg_exec(c, "SELECT atttypmod FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2", 2,
                                   (const char *[]){table, column});
            dim = r && pg_ntuples(r) == 1 ? atoi(pg_value(r, 0, 0)) : 0;
            pg_clear(r);
            text = dim > 0 ? malloc((size_t) dim * 18 + 4) : NULL;
            if (!text) {
                snprintf(err, errlen, "the recall check: no vector typmod on %s.%s", table, column);
                return false;
            }
        }
        const float *q = recall_exact_query(ex, i);
        size_t len = 0;
        text[len++] = '[';
        for (int k = 0; k < dim; k++)
            len += (size_t) sprintf(text + len, "%s%.9g", k ? "," : "", (double) q[k]);
        strcpy(text + len, "]");
        int ka = top10(c, ix, table, column, text, "enable_seqscan", approx);
        if (ka < 0) {
            seterr(err, errlen, "the recall queries", c);
            free(text);
            return false;
        }
        sum += share_found(exact, ke, approx, ka, 1e-5);
    }
    free(text);
    if (n > 0) {
        *recall = sum / n;
        *queries = n;
        log_info("reembed: recall@10 of the new index: %.3f over %d queries (exact neighbours found during the copy)",
                 *recall, n);
    }
    return true;
}

bool reembed_recall(pg_conn *c, const reembed_index_info *ix, const char *table, const char *column, int sample,
                    double *recall, int *queries, char *err, size_t errlen)
{
    *recall = -1;
    *queries = 0;
    char sql[256], lim[16];
    /* the text of the drawn vectors only: a cast in the outer select list runs after the LIMIT
     * (in the inner one, every vector of the table would be turned into text) */
    snprintf(sql, sizeof sql,
             "SELECT v::text FROM (SELECT %s AS v FROM %s WHERE %s IS NOT NULL ORDER BY random() LIMIT $1::int) t",
             column, table, column);
    snprintf(lim, sizeof lim, "%d", sample);
    pg_result *q = pg_exec(c, sql, 1, (const char *[]){lim});
    if (!q) {
        seterr(err, errlen, "drawing query vectors", c);
        return false;
    }
    double sum = 0;
    int n = pg_ntuples(q);
    for (int i = 0; i < n; i++) {
        double exact[10], approx[10];
        int ke = top10(c, ix, table, column, pg_value(q, i, 0), "enable_indexscan", exact);
        int ka = ke >= 0 ? top10(c, ix, table, column, pg_value(q, i, 0), "enable_seqscan", approx) : -1;
        if (ke < 0 || ka < 0) {
            seterr(err, errlen, "the recall queries", c);
            pg_clear(q);
            return false;
        }
        sum += share_found(exact, ke, approx, ka, 1e-6);
    }
    pg_clear(q);
    if (n > 0) {
        *recall = sum / n;
        *queries = n;
        log_info("reembed: recall@10 of the new index: %.3f over %d queries", *recall, n);
    }
    return true;
}

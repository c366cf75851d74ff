/* reembed_fixture.c — the memory store and vector checks shared by the re-embed tests. */
#include "common/reembed_fixture.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"

#define PGM(uri, ...) tu_run((const char *const[]){"pgmemctl", "-d", (uri), __VA_ARGS__, NULL})

/* A store of n memories embedded with builtin:hash-768 (by `reembed --mode in-place` from no
 * model at all, which is itself under test here). updated_at is set to a fixed past time. */
char *rf_store_768(int n)
{
    char *db = tu_fresh_db();
    tu_run_result r = PGM(db, "migrate", "up");
    tu_expect_status(&r, 0, "migrate up");
    tu_run_free(&r);
    char *sql = tu_printf("INSERT INTO memories (id, content, updated_at)"
                         " SELECT gen_random_uuid(), 'memory ' || g || ' about ' ||"
                         " (ARRAY['postgres','vectors','indexes','reviews','search','graphs','models'])[1 + g %% 7] ||"
                         " ' and ' || md5(g::text), '2020-01-01 00:00:00+00' FROM generate_series(1, %d) g",
                         n);
    tu_exec(db, sql);
    free(sql);
    r = PGM(db, "reembed", "--model", "builtin:hash-768", "--mode", "in-place", "--yes");
    tu_expect_status(&r, 0, "initial in-place embed");
    tu_run_free(&r);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 768"), n);
    tu_exec(db, "UPDATE memories SET updated_at = '2020-01-01 00:00:00+00'; ANALYZE memories");
    return db;
}

int rf_check_vectors(const char *db, int dim, const char *where)
{
    PGconn *c = PQconnectdb(db);
    cr_assert_eq(PQstatus(c), CONNECTION_OK);
    char *sql = tu_printf("SELECT content, embedding::text FROM memories WHERE %s ORDER BY id LIMIT 50", where);
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    float *want = malloc((size_t) dim * sizeof *want);
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        cr_assert_not(PQgetisnull(r, i, 1), "row %d has no vector", i);
        const char *content = PQgetvalue(r, i, 0);
        cr_assert(embed_hash_text(content, strlen(content), dim, want));
        const char *p = PQgetvalue(r, i, 1) + 1; /* past '[' */
        for (int k = 0; k < dim; k++) {
            char *end;
            double v = strtod(p, &end);
            cr_assert(end != p, "vector text ended after %d of %d values", k, dim);
            cr_assert(fabs(v - want[k]) < 1e-6, "row %d element %d: %g in the store, %g from builtin:hash-%d", i, k,
                      v, (double) want[k], dim);
            p = end + 1;
        }
    }
    free(want);
    PQclear(r);
    PQfinish(c);
    free(sql);
    return n;
}


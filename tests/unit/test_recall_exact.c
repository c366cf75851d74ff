/* test_recall_exact.c — the client-side exact neighbours of shadow re-embed's recall check:
 * each of pgvector's four distances on vectors worked by hand, the k nearest kept against a
 * sort of every distance, skipped rows and zero vectors, and fewer rows than k. (Agreement with
 * the server's own operators is checked in test_reembed_online.c.) */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>

#include "recall_exact.h"

Test(recall_exact, distances_by_hand)
{
    const float a[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, b[] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    /* a.b = 220, |a|^2 = |b|^2 = 385; (a-b)^2 sums to 330; |a-b| sums to 50 */
    cr_expect_float_eq(recall_exact_distance("<#>", a, b, 10), -220.0, 1e-9);
    cr_expect_float_eq(recall_exact_distance("<->", a, b, 10), sqrt(330.0), 1e-6);
    cr_expect_float_eq(recall_exact_distance("<+>", a, b, 10), 50.0, 1e-9);
    cr_expect_float_eq(recall_exact_distance("<=>", a, b, 10), 1.0 - 220.0 / 385.0, 1e-7);
    cr_expect_float_eq(recall_exact_distance("<=>", a, a, 10), 0.0, 1e-7);
    const float z[10] = {0};
    cr_expect(isnan(recall_exact_distance("<=>", a, z, 10)), "a zero vector has no cosine distance");
    cr_expect(isnan(recall_exact_distance("<~>", a, b, 10)));
    cr_expect_not(recall_exact_op_known("<~>"));
    cr_expect_null(recall_exact_new(a, 1, 10, "<~>", 10));
}

static int cmp(const void *x, const void *y)
{
    double a = *(const double *) x, b = *(const double *) y;
    return (a > b) - (a < b);
}

Test(recall_exact, the_k_nearest_of_a_stream)
{
    enum { DIM = 19, NQ = 5, N = 700, K = 10 };
    srand(7);
    float *q = malloc(NQ * DIM * sizeof *q), *v = malloc(N * DIM * sizeof *v);
    for (int i = 0; i < NQ * DIM; i++)
        q[i] = (float) rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < N * DIM; i++)
        v[i] = (float) rand() / RAND_MAX - 0.5f;
    bool *ok = malloc(N);
    for (int i = 0; i < N; i++)
        ok[i] = i % 7 != 3;
    const char *ops[] = {"<=>", "<->", "<#>", "<+>"};
    for (int o = 0; o < 4; o++) {
        recall_exact *r = recall_exact_new(q, NQ, DIM, ops[o], K);
        cr_assert_not_null(r);
        /* in batches of odd sizes, as the copy's batches come */
        for (int at = 0; at < N; at += 97)
            recall_exact_add(r, v + (size_t) at * DIM, ok + at, at + 97 <= N ? 97 : N - at);
        cr_expect_eq(recall_exact_queries(r), NQ);
        for (int k = 0; k < NQ; k++) {
            double all[N];
            int n = 0;
            for (int i = 0; i < N; i++)
                if (ok[i])
                    all[n++] = recall_exact_distance(ops[o], q + k * DIM, v + i * DIM, DIM);
            qsort(all, (size_t) n, sizeof *all, cmp);
            double got[K];
            cr_assert_eq(recall_exact_result(r, k, got), K);
            for (int i = 0; i < K; i++)
                cr_expect_float_eq(got[i], all[i], 1e-9, "%s query %d, neighbour %d", ops[o], k, i);
            cr_expect_eq(recall_exact_query(r, k)[3], q[k * DIM + 3]);
        }
        recall_exact_free(r);
    }
    free(q);
    free(v);
    free(ok);
}

Test(recall_exact, fewer_rows_than_k_and_zero_vectors)
{
    const float q[] = {1, 0, 0}, v[] = {0, 0, 0, 0, 1, 0, 1, 1, 0};
    recall_exact *r = recall_exact_new(q, 1, 3, "<=>", 10);
    recall_exact_add(r, v, NULL, 3);
    double d[10];
    /* the zero vector has no distance: two neighbours, at 1 - 0 and 1 - 1/sqrt(2) */
    cr_assert_eq(recall_exact_result(r, 0, d), 2);
    cr_expect_float_eq(d[0], 1 - 1 / sqrt(2.0), 1e-7);
    cr_expect_float_eq(d[1], 1.0, 1e-7);
    recall_exact_free(r);
    /* no queries at all */
    r = recall_exact_new(NULL, 0, 3, "<->", 10);
    cr_assert_not_null(r);
    recall_exact_add(r, v, NULL, 3);
    cr_expect_eq(recall_exact_queries(r), 0);
    recall_exact_free(r);
}

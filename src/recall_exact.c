/* recall_exact.c — a bounded max-heap of the k smallest distances per query vector. */
#include "recall_exact.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct recall_exact {
    int nq, dim, k;
    char op[4];
    float *queries;  /* nq x dim */
    float *qnorm;    /* each query's sum of squares (cosine) */
    double *heap;    /* nq x k: a max-heap of each query's k nearest so far */
    int *size;       /* entries in each heap */
};

bool recall_exact_op_known(const char *op)
{
    return op && (!strcmp(op, "<->") || !strcmp(op, "<#>") || !strcmp(op, "<=>") || !strcmp(op, "<+>"));
}

/* Sums in 8 lanes (which the compiler can keep in one SIMD register), then the lanes in order. */
static float dot(const float *a, const float *b, int dim)
{
    float p[8] = {0};
    int i = 0;
    for (; i + 8 <= dim; i += 8)
        for (int j = 0; j < 8; j++)
            p[j] += a[i + j] * b[i + j];
    float s = 0;
    for (; i < dim; i++)
        s += a[i] * b[i];
    for (int j = 0; j < 8; j++)
        s += p[j];
    return s;
}

static float l2_squared(const float *a, const float *b, int dim)
{
    float p[8] = {0};
    int i = 0;
    for (; i + 8 <= dim; i += 8)
        for (int j = 0; j < 8; j++) {
            float d = a[i + j] - b[i + j];
            p[j] += d * d;
        }
    float s = 0;
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    for (int j = 0; j < 8; j++)
        s += p[j];
    return s;
}

static float l1(const float *a, const float *b, int dim)
{
    float p[8] = {0};
    int i = 0;
    for (; i + 8 <= dim; i += 8)
        for (int j = 0; j < 8; j++)
            p[j] += fabsf(a[i + j] - b[i + j]);
    float s = 0;
    for (; i < dim; i++)
        s += fabsf(a[i] - b[i]);
    for (int j = 0; j < 8; j++)
        s += p[j];
    return s;
}

/* 1 - a.b / sqrt(na nb), clamped as pgvector does; NaN for a zero vector. */
static double cosine(float ab, float na, float nb)
{
    double sim = (double) ab / sqrt((double) na * (double) nb);
    if (isnan(sim))
        return NAN;
    if (sim > 1)
        sim = 1;
    else if (sim < -1)
        sim = -1;
    return 1 - sim;
}

double recall_exact_distance(const char *op, const float *a, const float *b, int dim)
{
    if (!strcmp(op, "<->"))
        return sqrt((double) l2_squared(a, b, dim));
    if (!strcmp(op, "<#>"))
        return -(double) dot(a, b, dim);
    if (!strcmp(op, "<=>"))
        return cosine(dot(a, b, dim), dot(a, a, dim), dot(b, b, dim));
    if (!strcmp(op, "<+>"))
        return (double) l1(a, b, dim);
    return NAN;
}

recall_exact *recall_exact_new(const float *queries, int nq, int dim, const char *op, int k)
{
    if (nq < 0 || dim < 1 || k < 1 || !recall_exact_op_known(op))
        return NULL;
    recall_exact *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->nq = nq;
    r->dim = dim;
    r->k = k;
    strcpy(r->op, op);
    r->queries = malloc(((size_t) nq * (size_t) dim + 1) * sizeof *r->queries);
    r->qnorm = malloc(((size_t) nq + 1) * sizeof *r->qnorm);
    r->heap = malloc(((size_t) nq * (size_t) k + 1) * sizeof *r->heap);
    r->size = calloc((size_t) nq + 1, sizeof *r->size);
    if (!r->queries || !r->qnorm || !r->heap || !r->size) {
        recall_exact_free(r);
        return NULL;
    }
    if (nq > 0)
        memcpy(r->queries, queries, (size_t) nq * (size_t) dim * sizeof *r->queries);
    for (int q = 0; q < nq; q++)
        r->qnorm[q] = dot(r->queries + (size_t) q * (size_t) dim, r->queries + (size_t) q * (size_t) dim, dim);
    return r;
}

/* Keeps d if it is among the k smallest of heap h (a max-heap of *n entries). */
static void heap_offer(double *h, int *n, int k, double d)
{
    int i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && h[(i - 1) / 2] < d) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = d;
        return;
    }
    if (d >= h[0])
        return;
    /* replace the largest and sift down */
    i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        double mv = d;
        if (l < k && h[l] > mv) {
            m = l;
            mv = h[l];
        }
        if (r < k && h[r] > mv)
            m = r;
        if (m == i)
            break;
        h[i] = h[m];
        i = m;
    }
    h[i] = d;
}

void recall_exact_add(recall_exact *r, const float *vecs, const bool *ok, int n)
{
    bool cos = !strcmp(r->op, "<=>");
    for (int j = 0; j < n; j++) {
        if (ok && !ok[j])
            continue;
        const float *v = vecs + (size_t) j * (size_t) r->dim;
        float vnorm = cos ? dot(v, v, r->dim) : 0;
        for (int q = 0; q < r->nq; q++) {
            const float *qv = r->queries + (size_t) q * (size_t) r->dim;
            double d = cos ? cosine(dot(qv, v, r->dim), r->qnorm[q], vnorm) : recall_exact_distance(r->op, qv, v, r->dim);
            if (!isnan(d))
                heap_offer(r->heap + (size_t) q * (size_t) r->k, &r->size[q], r->k, d);
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int recall_exact_result(const recall_exact *r, int q, double *dist)
{
    int n = r->size[q];
    memcpy(dist, r->heap + (size_t) q * (size_t) r->k, (size_t) n * sizeof *dist);
    qsort(dist, (size_t) n, sizeof *dist, cmp_double);
    return n;
}

int recall_exact_queries(const recall_exact *r) { return r->nq; }

const float *recall_exact_query(const recall_exact *r, int q) { return r->queries + (size_t) q * (size_t) r->dim; }

void recall_exact_free(recall_exact *r)
{
    if (!r)
        return;
    free(r->queries);
    free(r->qnorm);
    free(r->heap);
    free(r->size);
    free(r);
}

/* recall_exact.h — exact k nearest neighbours of a few query vectors over a stream of vectors,
 * kept on the client while the vectors pass by (shadow re-embed's copy computes every new vector
 * anyway), so that the recall check afterwards only has to ask the index.
 *
 * Distances are pgvector's, by operator (pgvector README, "Querying"; src/vector.c):
 *   <->  L2: sqrt(sum (a_i - b_i)^2)
 *   <#>  negative inner product: -sum a_i b_i
 *   <=>  cosine distance: 1 - sum a_i b_i / sqrt(sum a_i^2 * sum b_i^2), the similarity clamped to
 *        [-1, 1]; NaN when either vector is all zeros (such rows are never neighbours)
 *   <+>  L1: sum |a_i - b_i|
 * accumulated in float as pgvector does, the quotient in double: results agree with the server's
 * to about 1e-6. */
#ifndef PGMEMCTL_RECALL_EXACT_H
#define PGMEMCTL_RECALL_EXACT_H

#include <stdbool.h>

typedef struct recall_exact recall_exact;

/* True for an operator above. */
bool recall_exact_op_known(const char *op);

/* The distance of a and b (dim floats each) by op; NaN for an unknown op. */
double recall_exact_distance(const char *op, const float *a, const float *b, int dim);

/* An accumulator for nq query vectors (nq x dim floats, copied) and the k nearest of each.
 * NULL when out of memory or op unknown. Not thread-safe: one thread adds at a time. */
recall_exact *recall_exact_new(const float *queries, int nq, int dim, const char *op, int k);

/* Adds n vectors (n x dim floats); those with ok[i] false (or ok NULL: all taken) are skipped,
 * and so are vectors whose distance is NaN. */
void recall_exact_add(recall_exact *r, const float *vecs, const bool *ok, int n);

/* The nearest distances of query q, ascending, into dist (room for k); returns how many (at
 * most k: fewer when fewer vectors were added). */
int recall_exact_result(const recall_exact *r, int q, double *dist);

int recall_exact_queries(const recall_exact *r);
const float *recall_exact_query(const recall_exact *r, int q);
void recall_exact_free(recall_exact *r);

#endif

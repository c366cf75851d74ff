/* bench_stats.h — the arithmetic of pgmemctl bench, pure functions: percentiles, recall
 * overlap, list options, query words from a memory's text, and the comparison of two runs. */
#ifndef PGMEMCTL_BENCH_STATS_H
#define PGMEMCTL_BENCH_STATS_H

#include "bench.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* The p-quantile (p in [0, 1]) of n >= 1 values sorted ascending, by linear interpolation
 * between the closest ranks: h = (n - 1) p, x[floor h] + (h - floor h)(x[floor h + 1] -
 * x[floor h]) (Hyndman and Fan, "Sample Quantiles in Statistical Packages", 1996, definition 7;
 * the default of R and NumPy). n == 0 gives 0. */
double bench_quantile(const double *sorted, int n, double p);

/* p50, p95, p99, max and mean of n samples (any order; not modified; milliseconds in, the same
 * unit out). n == 0 gives all zeros. Returns false only when out of memory (out zeroed). */
bool bench_dist_of(const double *samples, int n, bench_dist *out);

/* How many of the na strings in a also occur in the nb strings of b (each string of a counted
 * once even when repeated): |set(a) ∩ set(b)|, the recall numerator when b is the exact top-k.
 * O(na * nb): k is small. */
int bench_overlap(const char *const *a, int na, const char *const *b, int nb);

/* Parses a comma-separated list of integers in [lo, hi] ("40,100,200"; spaces allowed around
 * items), sorted ascending without duplicates when sort is true, else in the order given.
 * *out is newly allocated (caller frees) with *n items. On error returns false with a reason in
 * why ("item 2 (\"x\") is not an integer", "item 1 (0) is outside 1..1000", "empty list"). */
bool bench_parse_list(const char *text, long long lo, long long hi, bool sort, long long **out, int *n,
                      char *why, size_t whylen);

/* A full-text query from a memory's text: up to max_words distinct lower-case words of at
 * least 4 ASCII letters (a word is a maximal run of ASCII letters; runs touching digits, '-',
 * '_', '.' or '/' are skipped, as are common English stop words), the content's first word
 * excluded (it often names the memory's subject, e.g. a package, which would make the query
 * trivial), joined by spaces — websearch_to_tsquery then ANDs them. Returns a newly allocated
 * string, "" when no word qualifies, NULL when out of memory. */
char *bench_query_words(const char *content, size_t len, int max_words);

/* Compares two bench documents (as bench_render_json writes them). Stores are matched by kind
 * and size ("scratch 1000", or "target"); within them the latency of each kind at each
 * ef_search (p50, p95, p99), its recall, the QPS at each concurrency, load rows/s, HNSW build
 * seconds, index bytes and the client-overhead ratio. Returns a new object {"old": label,
 * "new": label, "figures": [{"store", "figure", "old", "new", "change_pct", "better":
 * "lower"|"higher", "regression": bool}], "regressions": N, "max_regression_pct": X|null}; a
 * figure is a regression when max_regression_pct >= 0 and it moved the wrong way by more than
 * that many percent of the old value. Figures present in only one document are listed under
 * "unmatched". NULL with a reason in err when a document is not a bench document. Caller frees. */
cJSON *bench_compare(const cJSON *old_doc, const cJSON *new_doc, double max_regression_pct, char *err,
                     size_t errlen);

/* obj[name] as a number, or dflt when it is absent or not a number (obj may be NULL). */
double bench_jnum(const cJSON *obj, const char *name, double dflt);

/* The label of a store object of a bench document, as --compare and the targets name it:
 * "scratch <rows>" for a scratch store, "target" for the store itself. */
void bench_store_label(const cJSON *store, char *buf, size_t len);

/* Prints a comparison made by bench_compare as an aligned table on out. */
void bench_compare_print(const cJSON *cmp, FILE *out);

#endif

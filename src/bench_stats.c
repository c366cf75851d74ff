/* bench_stats.c — percentiles, recall overlap, list options, query words and run comparison
 * for pgmemctl bench (pure functions, unit-tested). */
#include "bench_stats.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double bench_quantile(const double *sorted, int n, double p)
{
    if (n <= 0)
        return 0;
    if (p <= 0)
        return sorted[0];
    if (p >= 1)
        return sorted[n - 1];
    double h = (double) (n - 1) * p;
    int lo = (int) floor(h);
    if (lo >= n - 1)
        return sorted[n - 1];
    return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

bool bench_dist_of(const double *samples, int n, bench_dist *out)
{
    memset(out, 0, sizeof *out);
    if (n <= 0)
        return true;
    double *s = malloc((size_t) n * sizeof *s);
    if (!s)
        return false;
    memcpy(s, samples, (size_t) n * sizeof *s);
    qsort(s, (size_t) n, sizeof *s, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += s[i];
    out->n = n;
    out->p50 = bench_quantile(s, n, 0.50);
    out->p95 = bench_quantile(s, n, 0.95);
    out->p99 = bench_quantile(s, n, 0.99);
    out->max = s[n - 1];
    out->mean = sum / n;
    free(s);
    return true;
}

int bench_overlap(const char *const *a, int na, const char *const *b, int nb)
{
    int hits = 0;
    for (int i = 0; i < na; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = !strcmp(a[i], a[j]);
        if (seen)
            continue;
        for (int j = 0; j < nb; j++)
            if (!strcmp(a[i], b[j])) {
                hits++;
                break;
            }
    }
    return hits;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *) a, y = *(const long long *) b;
    return x < y ? -1 : x > y;
}

bool bench_parse_list(const char *text, long long lo, long long hi, bool sort, long long **out, int *n,
                      char *why, size_t whylen)
{
    *out = NULL;
    *n = 0;
    int cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    long long *v = malloc((size_t) cap * sizeof *v);
    if (!v) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    const char *p = text;
    int item = 0;
    for (;;) {
        item++;
        size_t len = strcspn(p, ",");
        char buf[64];
        const char *s = p, *e = p + len;
        while (s < e && isspace((unsigned char) *s))
            s++;
        while (e > s && isspace((unsigned char) e[-1]))
            e--;
        if (e == s) {
            snprintf(why, whylen, len == strlen(text) && item == 1 ? "empty list" : "item %d is empty", item);
            free(v);
            return false;
        }
        snprintf(buf, sizeof buf, "%.*s", (int) (e - s), s);
        char *end;
        errno = 0;
        long long x = strtoll(buf, &end, 10);
        if (*end || errno || (e - s) >= (long) sizeof buf) {
            snprintf(why, whylen, "item %d (\"%s\") is not an integer", item, buf);
            free(v);
            return false;
        }
        if (x < lo || x > hi) {
            snprintf(why, whylen, "item %d (%lld) is outside %lld..%lld", item, x, lo, hi);
            free(v);
            return false;
        }
        v[(*n)++] = x;
        p += len;
        if (!*p)
            break;
        p++;
    }
    if (sort) {
        qsort(v, (size_t) *n, sizeof *v, cmp_ll);
        int m = 0;
        for (int i = 0; i < *n; i++)
            if (m == 0 || v[m - 1] != v[i])
                v[m++] = v[i];
        *n = m;
    }
    *out = v;
    return true;
}

static bool stop_word(const char *w)
{
    static const char *const stop[] = {"about", "also", "after", "been", "being", "both",  "does", "each",
                                       "from",  "have", "into",  "just", "like",  "made",  "make", "many",
                                       "more",  "most", "much",  "must", "only",  "other", "over", "same",
                                       "some",  "such", "than",  "that", "their", "them",  "then", "there",
                                       "these", "they", "this",  "those", "very", "were",  "what", "when",
                                       "where", "which", "while", "will", "with", "would", "your", "should"};
    for (size_t i = 0; i < sizeof stop / sizeof *stop; i++)
        if (!strcmp(w, stop[i]))
            return true;
    return false;
}

static bool word_glue(unsigned char c)
{
    return isdigit(c) || c == '-' || c == '_' || c == '.' || c == '/' || c >= 0x80;
}

char *bench_query_words(const char *content, size_t len, int max_words)
{
    char *out = malloc((size_t) max_words * 33 + 1);
    if (!out)
        return NULL;
    out[0] = '\0';
    size_t olen = 0;
    int found = 0;
    bool first = true;
    size_t i = 0;
    while (i < len && found < max_words) {
        unsigned char ch = (unsigned char) content[i];
        if (!isalpha(ch) || ch >= 0x80) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && isalpha((unsigned char) content[i]) && (unsigned char) content[i] < 0x80)
            i++;
        size_t wlen = i - start;
        bool glued = (start > 0 && word_glue((unsigned char) content[start - 1])) ||
                     (i < len && word_glue((unsigned char) content[i]) && !(content[i] == '.' &&
                     (i + 1 >= len || isspace((unsigned char) content[i + 1]))));
        if (first) { /* the subject word, and whatever is glued to it */
            first = false;
            while (i < len && !isspace((unsigned char) content[i]) && content[i] != ':')
                i++;
            continue;
        }
        if (glued || wlen < 4 || wlen > 32)
            continue;
        char w[33];
        for (size_t j = 0; j < wlen; j++)
            w[j] = (char) tolower((unsigned char) content[start + j]);
        w[wlen] = '\0';
        if (stop_word(w))
            continue;
        char padded[36];
        snprintf(padded, sizeof padded, " %s ", w);
        char probe[400];
        snprintf(probe, sizeof probe, " %s ", out);
        if (strstr(probe, padded))
            continue;
        if (olen)
            out[olen++] = ' ';
        memcpy(out + olen, w, wlen + 1);
        olen += wlen;
        found++;
    }
    return out;
}

/* ---- comparison ---------------------------------------------------------------------------- */

static const cJSON *item(const cJSON *o, const char *name) { return cJSON_GetObjectItemCaseSensitive(o, name); }

static bool num(const cJSON *o, const char *name, double *v)
{
    const cJSON *x = item(o, name);
    if (!cJSON_IsNumber(x))
        return false;
    *v = x->valuedouble;
    return true;
}

double bench_jnum(const cJSON *obj, const char *name, double dflt)
{
    double v;
    return obj && num(obj, name, &v) ? v : dflt;
}

void bench_store_label(const cJSON *store, char *buf, size_t len)
{
    if (cJSON_IsTrue(item(store, "scratch")))
        snprintf(buf, len, "scratch %.0f", bench_jnum(store, "rows", 0));
    else
        snprintf(buf, len, "target");
}

typedef struct {
    char store[48], figure[96];
    double v;
    bool lower_better;
} figure;

typedef struct {
    figure *v;
    int n, cap;
} figures;

static void add_fig(figures *f, const char *store, const char *name, double v, bool lower_better)
{
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 64;
        figure *g = realloc(f->v, (size_t) cap * sizeof *g);
        if (!g)
            return;
        f->v = g;
        f->cap = cap;
    }
    figure *x = &f->v[f->n++];
    snprintf(x->store, sizeof x->store, "%s", store);
    snprintf(x->figure, sizeof x->figure, "%s", name);
    x->v = v;
    x->lower_better = lower_better;
}

/* Every comparable figure of a document, flattened. */
static void collect(const cJSON *doc, figures *f)
{
    const cJSON *store;
    cJSON_ArrayForEach(store, item(doc, "stores"))
    {
        char label[48], name[96];
        double v;
        bench_store_label(store, label, sizeof label);
        const cJSON *load = item(store, "load");
        if (cJSON_IsObject(load)) {
            if (num(load, "rows_per_second", &v))
                add_fig(f, label, "load rows/s", v, false);
            if (num(load, "index_build_seconds", &v))
                add_fig(f, label, "HNSW build s", v, true);
        }
        const cJSON *index = item(store, "index");
        if (cJSON_IsObject(index) && num(index, "bytes", &v))
            add_fig(f, label, "index bytes", v, true);
        const cJSON *s;
        cJSON_ArrayForEach(s, item(store, "latency"))
        {
            const cJSON *kind = item(s, "kind"), *ms = item(s, "ms");
            double ef = 0;
            if (!cJSON_IsString(kind) || !cJSON_IsObject(ms))
                continue;
            bool has_ef = num(s, "ef_search", &ef);
            static const char *const q[] = {"p50", "p95", "p99"};
            for (int i = 0; i < 3; i++)
                if (num(ms, q[i], &v)) {
                    if (has_ef)
                        snprintf(name, sizeof name, "%s ef_search=%.0f %s ms", kind->valuestring, ef, q[i]);
                    else
                        snprintf(name, sizeof name, "%s %s ms", kind->valuestring, q[i]);
                    add_fig(f, label, name, v, true);
                }
            if (num(s, "recall", &v)) {
                snprintf(name, sizeof name, "%s ef_search=%.0f recall", kind->valuestring, ef);
                add_fig(f, label, name, v, false);
            }
        }
        cJSON_ArrayForEach(s, item(store, "throughput"))
        {
            double c;
            if (num(s, "concurrency", &c) && num(s, "qps", &v)) {
                snprintf(name, sizeof name, "QPS at concurrency %.0f", c);
                add_fig(f, label, name, v, false);
            }
        }
        const cJSON *ov = item(store, "client_overhead");
        if (cJSON_IsObject(ov) && num(ov, "ratio", &v))
            add_fig(f, label, "client overhead ratio", v, true);
    }
}

static bool is_bench_doc(const cJSON *doc)
{
    const cJSON *cmd = item(doc, "command");
    return cJSON_IsObject(doc) && cJSON_IsString(cmd) && !strcmp(cmd->valuestring, "bench") &&
           cJSON_IsArray(item(doc, "stores"));
}

static const char *doc_label(const cJSON *doc)
{
    const cJSON *s = item(doc, "started_at");
    return cJSON_IsString(s) ? s->valuestring : "?";
}

cJSON *bench_compare(const cJSON *old_doc, const cJSON *new_doc, double max_regression_pct, char *err,
                     size_t errlen)
{
    if (!is_bench_doc(old_doc) || !is_bench_doc(new_doc)) {
        snprintf(err, errlen, "%s document is not the JSON of pgmemctl bench (no \"command\": \"bench\" with \"stores\")",
                 is_bench_doc(old_doc) ? "the new" : "the old");
        return NULL;
    }
    figures a = {0}, b = {0};
    collect(old_doc, &a);
    collect(new_doc, &b);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "old", doc_label(old_doc));
    cJSON_AddStringToObject(out, "new", doc_label(new_doc));
    if (max_regression_pct >= 0)
        cJSON_AddNumberToObject(out, "max_regression_pct", max_regression_pct);
    else
        cJSON_AddNullToObject(out, "max_regression_pct");
    cJSON *figs = cJSON_AddArrayToObject(out, "figures");
    cJSON *unmatched = cJSON_CreateArray();
    int regressions = 0;
    bool *used = calloc((size_t) (b.n ? b.n : 1), sizeof *used);
    if (!used) {
        snprintf(err, errlen, "out of memory");
        cJSON_Delete(unmatched);
        cJSON_Delete(out);
        free(a.v);
        free(b.v);
        return NULL;
    }
    for (int i = 0; i < a.n; i++) {
        int j;
        for (j = 0; j < b.n; j++)
            if (!used[j] && !strcmp(a.v[i].store, b.v[j].store) && !strcmp(a.v[i].figure, b.v[j].figure))
                break;
        if (j == b.n) {
            char s[160];
            snprintf(s, sizeof s, "%s: %s (old only)", a.v[i].store, a.v[i].figure);
            cJSON_AddItemToArray(unmatched, cJSON_CreateString(s));
            continue;
        }
        used[j] = true;
        double o = a.v[i].v, nv = b.v[j].v;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "store", a.v[i].store);
        cJSON_AddStringToObject(x, "figure", a.v[i].figure);
        cJSON_AddNumberToObject(x, "old", o);
        cJSON_AddNumberToObject(x, "new", nv);
        double pct = o != 0 ? (nv - o) / fabs(o) * 100.0 : (nv == 0 ? 0 : NAN);
        if (isfinite(pct))
            cJSON_AddNumberToObject(x, "change_pct", round(pct * 10) / 10);
        else
            cJSON_AddNullToObject(x, "change_pct");
        cJSON_AddStringToObject(x, "better", a.v[i].lower_better ? "lower" : "higher");
        bool worse = a.v[i].lower_better ? nv > o : nv < o;
        bool reg = max_regression_pct >= 0 && worse && (!isfinite(pct) || fabs(pct) > max_regression_pct);
        cJSON_AddBoolToObject(x, "regression", reg);
        regressions += reg;
        cJSON_AddItemToArray(figs, x);
    }
    for (int j = 0; j < b.n; j++)
        if (!used[j]) {
            char s[160];
            snprintf(s, sizeof s, "%s: %s (new only)", b.v[j].store, b.v[j].figure);
            cJSON_AddItemToArray(unmatched, cJSON_CreateString(s));
        }
    cJSON_AddItemToObject(out, "unmatched", unmatched);
    cJSON_AddNumberToObject(out, "regressions", regressions);
    free(used);
    free(a.v);
    free(b.v);
    return out;
}

void bench_compare_print(const cJSON *cmp, FILE *out)
{
    const cJSON *old = item(cmp, "old"), *nw = item(cmp, "new");
    fprintf(out, "compare: %s (old) -> %s (new)\n", cJSON_IsString(old) ? old->valuestring : "?",
            cJSON_IsString(nw) ? nw->valuestring : "?");
    fprintf(out, "  %-14s %-34s %12s %12s %9s\n", "store", "figure", "old", "new", "change");
    const cJSON *x;
    cJSON_ArrayForEach(x, item(cmp, "figures"))
    {
        double o = 0, n = 0, pct = 0;
        num(x, "old", &o);
        num(x, "new", &n);
        char change[32] = "n/a";
        if (num(x, "change_pct", &pct))
            snprintf(change, sizeof change, "%+.1f%%", pct);
        fprintf(out, "  %-14s %-34s %12.4g %12.4g %9s%s\n", item(x, "store")->valuestring,
                item(x, "figure")->valuestring, o, n, change, cJSON_IsTrue(item(x, "regression")) ? "  REGRESSION" : "");
    }
    const cJSON *u;
    cJSON_ArrayForEach(u, item(cmp, "unmatched"))
    {
        fprintf(out, "  not compared: %s\n", u->valuestring);
    }
    double r = 0;
    num(cmp, "regressions", &r);
    const cJSON *lim = item(cmp, "max_regression_pct");
    if (cJSON_IsNumber(lim))
        fprintf(out, "  %.0f regression%s beyond %.4g%%\n", r, r == 1 ? "" : "s", lim->valuedouble);
}

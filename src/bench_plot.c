/* bench_plot.c — pgmemctl bench --plot: an SVG chart drawn by gnuplot from the JSON document
 * (recall@k against p50 latency per ef_search, one line per kind and store; hybrid QPS against
 * concurrency, one line per store). */
#include "bench.h"
#include "bench_stats.h"
#include "log.h"
#include "proc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* s as a gnuplot single-quoted string body ('' for '). */
static void gp_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static void store_label(const cJSON *st, char *buf, size_t len)
{
    if (cJSON_IsTrue(get(st, "scratch")))
        snprintf(buf, len, "%.0f memories", bench_jnum(st, "rows", 0));
    else
        snprintf(buf, len, "target, %.0f memories", bench_jnum(st, "rows", 0));
}

/* dir/name opened for writing, or NULL. */
static FILE *open_data(const char *dir, const char *name)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return fopen(path, "w");
}

/* Writes dir/name with the recall points of kind in store st; returns the number of points. */
static int write_recall(const char *dir, const char *name, const cJSON *st, const char *kind)
{
    FILE *f = open_data(dir, name);
    if (!f)
        return -1;
    int n = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, get(st, "latency"))
    {
        const cJSON *k = get(s, "kind");
        if (!cJSON_IsString(k) || strcmp(k->valuestring, kind) || !cJSON_IsNumber(get(s, "recall")))
            continue;
        char label[32] = "exact";
        if (cJSON_IsNumber(get(s, "ef_search")))
            snprintf(label, sizeof label, "%.0f", bench_jnum(s, "ef_search", 0));
        fprintf(f, "%.6f %.6f %s\n", bench_jnum(get(s, "ms"), "p50", 0), bench_jnum(s, "recall", 0), label);
        n++;
    }
    return fclose(f) == 0 ? n : -1;
}

static int write_qps(const char *dir, const char *name, const cJSON *st)
{
    FILE *f = open_data(dir, name);
    if (!f)
        return -1;
    int n = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, get(st, "throughput"))
    {
        fprintf(f, "%.0f %.3f\n", bench_jnum(s, "concurrency", 0), bench_jnum(s, "qps", 0));
        n++;
    }
    return fclose(f) == 0 ? n : -1;
}

bool bench_plot(const cJSON *doc, const char *path, const char *gnuplot_bin)
{
    char abspath[4096];
    if (path[0] == '/') {
        snprintf(abspath, sizeof abspath, "%s", path);
    } else {
        char cwd[3000];
        if (!getcwd(cwd, sizeof cwd)) {
            log_error("bench: --plot: getcwd: %s", strerror(errno));
            return false;
        }
        snprintf(abspath, sizeof abspath, "%s/%s", cwd, path);
    }
    const char *tmp = getenv("TMPDIR");
    char dir[400];
    snprintf(dir, sizeof dir, "%s/pgmemctl-plot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        log_error("bench: --plot: could not create a temporary directory: %s", strerror(errno));
        return false;
    }
    char script[600];
    snprintf(script, sizeof script, "%s/chart.gp", dir);
    FILE *f = fopen(script, "w");
    if (!f) {
        log_error("bench: --plot: %s: %s", script, strerror(errno));
        proc_rmdir(dir);
        return false;
    }
    const cJSON *opt = get(doc, "options"), *started = get(doc, "started_at");
    double k = bench_jnum(opt, "k", 10);
    fprintf(f, "set terminal svg size 1200,520 dynamic noenhanced font 'sans,11' background rgb 'white'\n");
    fprintf(f, "set output ");
    gp_quote(f, abspath);
    fprintf(f, "\nset datafile separator whitespace\nset grid\n");
    fprintf(f, "set multiplot layout 1,2 title 'pgmemctl bench %s'\n",
            cJSON_IsString(started) ? started->valuestring : "");
    fprintf(f, "set title 'recall@%.0f against p50 latency (labels: hnsw.ef_search)'\n", k);
    fprintf(f, "set xlabel 'p50 latency (ms)'\nset ylabel 'recall@%.0f'\nset key bottom right\n", k);
    fprintf(f, "set yrange [*:1.02]\n");
    static const char *const kinds[] = {"vector", "hybrid", "hybrid_domain"};
    static const char *const colors[] = {"#d62728", "#1f77b4", "#2ca02c"};
    static const int pt[] = {7, 5, 9, 13};
    int n = 0, points = 0, si = 0;
    bool ok = true;
    const cJSON *st;
    fprintf(f, "plot ");
    cJSON_ArrayForEach(st, get(doc, "stores"))
    {
        char label[64];
        store_label(st, label, sizeof label);
        for (int i = 0; i < 3; i++) {
            char name[64];
            snprintf(name, sizeof name, "recall-%d-%d.dat", si, i);
            int got = write_recall(dir, name, st, kinds[i]);
            if (got < 0)
                ok = false;
            if (got <= 0)
                continue;
            points += got;
            /* a colour per kind, a dash and point type per store */
            fprintf(f, "%s'%s' using 1:2 with linespoints lc rgb '%s' dt %d pt %d title '%s, %s', '%s' using 1:2:3 "
                       "with labels offset char 1,0.6 font ',9' notitle",
                    n++ ? ", \\\n     " : "", name, colors[i], si % 5 + 1, pt[si % 4], kinds[i], label, name);
        }
        si++;
    }
    if (points == 0)
        fprintf(f, "NaN notitle");
    fprintf(f, "\nset title 'hybrid search throughput (default hnsw.ef_search)'\n");
    fprintf(f, "set xlabel 'concurrent connections'\nset ylabel 'queries per second'\nset key top left\n");
    fprintf(f, "set yrange [0:*]\nset xtics 1\n");
    fprintf(f, "plot ");
    n = 0;
    si = 0;
    int qpoints = 0;
    cJSON_ArrayForEach(st, get(doc, "stores"))
    {
        char label[64], name[64];
        store_label(st, label, sizeof label);
        snprintf(name, sizeof name, "qps-%d.dat", si++);
        int got = write_qps(dir, name, st);
        if (got < 0)
            ok = false;
        if (got <= 0)
            continue;
        qpoints += got;
        fprintf(f, "%s'%s' using 1:2 with linespoints lc rgb '#1f77b4' dt %d pt %d title '%s'", n++ ? ", " : "",
                name, (si - 1) % 5 + 1, pt[(si - 1) % 4], label);
    }
    if (qpoints == 0)
        fprintf(f, "NaN notitle");
    fprintf(f, "\nunset multiplot\nset output\n");
    if (fclose(f) != 0)
        ok = false;
    if (!ok) {
        log_error("bench: --plot: could not write the chart's data in %s", dir);
        proc_rmdir(dir);
        return false;
    }
    if (points == 0 && qpoints == 0) {
        log_error("bench: --plot: nothing to draw (no recall and no throughput figures)");
        proc_rmdir(dir);
        return false;
    }
    char out[600];
    snprintf(out, sizeof out, "%s/gnuplot.out", dir);
    const char *argv[] = {gnuplot_bin, "chart.gp", NULL};
    int rc = proc_run(argv, NULL, NULL, dir, out, 120);
    struct stat sb;
    if (rc != 0 || stat(abspath, &sb) != 0 || sb.st_size == 0) {
        char *text = proc_read_file(out, NULL);
        log_error("bench: --plot: gnuplot failed (exit status %d)%s%s", rc, text && *text ? ": " : "",
                  text ? text : "");
        free(text);
        proc_rmdir(dir);
        return false;
    }
    proc_rmdir(dir);
    log_info("bench: wrote the chart %s", path);
    return true;
}

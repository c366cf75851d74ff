/* cmd_bench.c — `pgmemctl bench`: options, the run (or a comparison of two saved runs), the
 * JSON on stdout, the table on stderr, the chart and the exit status. */
#include "bench.h"
#include "bench_stats.h"
#include "cmd.h"
#include "log.h"
#include "pg.h"
#include "proc.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const opt_spec cmd_bench_specs[] = {
    {"scratch", 0, OPT_STRING, NULL, false, "N[,N...]",
     "measure scratch stores of N memories, generated or from --sample (in a schema dropped afterwards)"},
    {"sample", 0, OPT_STRING, NULL, true, "FILE.db",
     "--scratch: load a vestige SQLite store from pgmemctl-sample instead of generating the memories"},
    {"seed", 0, OPT_INT, "1", true, "S", "--scratch without --sample: seed of the generated memories"},
    {"dim", 0, OPT_INT, "768", true, "D",
     "--scratch without --sample: dimension of their builtin:hash-D embeddings (1..2000; with --no-index 1..16000)"},
    {"queries", 0, OPT_INT, "200", true, "Q", "query-set size: every kind runs every query once per ef_search"},
    {"k", 0, OPT_INT, "10", true, "K", "results per query (recall@K)"},
    {"ef-search", 0, OPT_STRING, "20,40,100,200", true, "LIST",
     "hnsw.ef_search values to measure (the session's own value is always added)"},
    {"concurrency", 0, OPT_STRING, "1,2,4", true, "LIST", "connections for the hybrid QPS measurement"},
    {"duration", 0, OPT_DOUBLE, "5", true, "SECONDS", "length of each QPS measurement"},
    {"warmup", 0, OPT_INT, "20", true, "Q", "untimed queries before each timed series"},
    {"raw", 0, OPT_BOOL, NULL, false, NULL, "keep every latency sample in the JSON"},
    {"plot", 0, OPT_STRING, NULL, false, "FILE.svg", "write a chart (gnuplot): recall against p50, QPS"},
    {"compare", 0, OPT_STRING, NULL, false, "OLD.json",
     "print the change of each figure against a previous run (with NEW.json: compare two files, no run)"},
    {"max-regression", 0, OPT_DOUBLE, NULL, true, "PCT",
     "--compare: exit 3 when a figure got worse by more than PCT percent"},
    {"check-targets", 0, OPT_BOOL, NULL, true, NULL, "exit 3 when a design target is missed"},
    {"no-index", 0, OPT_BOOL, NULL, false, NULL, "--scratch: build no HNSW index (every search exact)"},
    {"m", 0, OPT_INT, "16", true, "M", "--scratch: HNSW m"},
    {"ef-construction", 0, OPT_INT, "64", true, "N", "--scratch: HNSW ef_construction"},
    {"maintenance-work-mem", 0, OPT_STRING, "1GB", true, "SIZE", "--scratch: maintenance_work_mem for the HNSW build"},
    {"pgbench", 0, OPT_STRING, NULL, true, "PATH", "pgbench binary for the client-overhead comparison"},
    {"no-pgbench", 0, OPT_BOOL, NULL, true, NULL, "skip the client-overhead comparison"},
    {"wait", 0, OPT_DOUBLE, "0", true, "SECONDS", "wait this long for the server to accept connections"},
    {0},
};

void cmd_bench_help(void)
{
    printf("usage: pgmemctl bench [-d TARGET] [--queries Q] [--k K] [--ef-search LIST] [--concurrency LIST]\n"
           "                      [--duration SECONDS] [--warmup Q] [--raw] [--plot FILE.svg] [--compare OLD.json]\n"
           "       pgmemctl bench --scratch N[,N...] [--sample FILE.db | --seed S --dim D] [options]\n"
           "       pgmemctl bench --compare OLD.json NEW.json [--max-regression PCT]\n"
           "\n"
           "Measures the memory store's searches: vector top-k, full-text and the hybrid RRF query\n"
           "(sql/search_hybrid.sql): latency p50/p95/p99/max per kind and hnsw.ef_search, recall@K against\n"
           "exact search, QPS per concurrency level, and pgmemctl's own overhead against pgbench. On the\n"
           "target store it only reads (READ ONLY transactions); with --scratch it loads scratch stores of\n"
           "generated memories (or from a sample file), measures them and drops them, creating the vector\n"
           "extension first when the database lacks it. JSON on stdout, a table on stderr.\n"
           "\n"
           "Exit codes: 0 done, 3 done but --check-targets or --max-regression found a miss, 1 failed,\n"
           "2 usage error or refused before measuring (no vector extension that this role may create, sample\n"
           "too small).\n\noptions:\n");
    opts_print_help(cmd_bench_specs, opts_count(cmd_bench_specs));
    printf("\nSee pgmemctl-bench(1).\n");
}

/* Reads and parses a JSON file; NULL after logging. */
static cJSON *load_json(const char *path)
{
    char *text = proc_read_file(path, NULL);
    if (!text) {
        log_error("bench: cannot read %s", path);
        return NULL;
    }
    cJSON *doc = cJSON_Parse(text);
    free(text);
    if (!doc)
        log_error("bench: %s is not valid JSON", path);
    return doc;
}

/* Parses a list option into ints; false after logging. */
static bool int_list(const opts *o, const char *name, long long lo, long long hi, bool sort, int **out, int *n)
{
    long long *v = NULL;
    char why[160];
    if (!bench_parse_list(opts_str(o, name), lo, hi, sort, &v, n, why, sizeof why)) {
        log_error("bench: --%s: %s", name, why);
        return false;
    }
    *out = malloc((size_t) *n * sizeof **out);
    if (*out)
        for (int i = 0; i < *n; i++)
            (*out)[i] = (int) v[i];
    free(v);
    return *out != NULL;
}

/* Compare mode: two files, no database. */
static int compare_files(const char *old_path, const char *new_path, double max_reg)
{
    cJSON *a = load_json(old_path), *b = a ? load_json(new_path) : NULL;
    if (!a || !b) {
        cJSON_Delete(a);
        cJSON_Delete(b);
        return EXIT_USAGE;
    }
    char err[256];
    cJSON *cmp = bench_compare(a, b, max_reg, err, sizeof err);
    int rc = EXIT_OK;
    if (!cmp) {
        log_error("bench: --compare: %s", err);
        rc = EXIT_USAGE;
    } else {
        if (log_progress_enabled())
            bench_compare_print(cmp, stderr);
        cJSON *doc = report_new("bench");
        cJSON_AddStringToObject(doc, "status", "ok");
        cJSON_AddStringToObject(doc, "mode", "compare");
        cJSON_AddStringToObject(doc, "old_file", old_path);
        cJSON_AddStringToObject(doc, "new_file", new_path);
        cJSON_AddItemToObject(doc, "compare", cmp);
        if (!report_print(doc))
            rc = EXIT_FAILURE_;
        else if (cJSON_GetObjectItem(cmp, "regressions")->valuedouble > 0)
            rc = EXIT_REJECTED;
        cJSON_Delete(doc);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return rc;
}

int cmd_bench(const global_ctx *g, int argc, char **argv)
{
    opts o;
    bool help;
    if (!opts_parse(&o, "bench", cmd_bench_specs, opts_count(cmd_bench_specs), argc, argv, g->cfg, &help)) {
        opts_free(&o);
        return EXIT_USAGE;
    }
    if (help) {
        cmd_bench_help();
        opts_free(&o);
        return EXIT_OK;
    }
    int rc = EXIT_USAGE;
    int *efs = NULL, *conc = NULL;
    long long *sizes = NULL;
    int64_t *scratch = NULL;
    int nsizes = 0, nef = 0, nconc = 0;
    pg_conn *c = NULL;
    cJSON *old_doc = NULL;
    char *gnuplot = NULL;
    double max_reg = opts_isset(&o, "max-regression") ? opts_double(&o, "max-regression") : -1;
    /* from the config file or the environment it is a default for runs with --compare */
    if ((opts_isset(&o, "max-regression") && max_reg < 0) ||
        (opts_flag_given(&o, "max-regression") && !opts_str(&o, "compare"))) {
        log_error("bench: --max-regression needs --compare and a percentage >= 0");
        goto done;
    }
    if (o.nargs > 1 || (o.nargs == 1 && !opts_str(&o, "compare"))) {
        log_error("bench: unexpected argument \"%s\" (see pgmemctl bench --help)", o.args[o.nargs - 1]);
        goto done;
    }
    if (o.nargs == 1) {
        rc = compare_files(opts_str(&o, "compare"), o.args[0], max_reg);
        goto done;
    }
    bench_request req = {
        .conninfo = g->conninfo,
        .sample = opts_str(&o, "sample"),
        .queries = (int) opts_int(&o, "queries"),
        .k = (int) opts_int(&o, "k"),
        .duration = opts_double(&o, "duration"),
        .warmup = (int) opts_int(&o, "warmup"),
        .raw = opts_bool(&o, "raw"),
        .no_index = opts_bool(&o, "no-index"),
        .hnsw_m = (int) opts_int(&o, "m"),
        .hnsw_ef_construction = (int) opts_int(&o, "ef-construction"),
        .maintenance_work_mem = opts_str(&o, "maintenance-work-mem"),
        .pgbench = opts_bool(&o, "no-pgbench") ? "" : opts_str(&o, "pgbench"),
        .seed = (uint64_t) opts_int(&o, "seed"),
        .dim = (int) opts_int(&o, "dim"),
    };
    if (opts_int(&o, "queries") < 1 || opts_int(&o, "queries") > 100000 || opts_int(&o, "k") < 1 ||
        opts_int(&o, "k") > 1000 || opts_int(&o, "warmup") < 0 || opts_int(&o, "warmup") > 100000 ||
        req.duration <= 0 || req.duration > 3600 || req.hnsw_m < 2 || req.hnsw_m > 100 ||
        req.hnsw_ef_construction < 4 || req.hnsw_ef_construction > 1000 ||
        req.hnsw_ef_construction < 2 * req.hnsw_m || opts_double(&o, "wait") < 0) {
        log_error("bench: out of range: --queries 1..100000, --k 1..1000, --warmup 0..100000, --duration 0..3600 "
                  "(> 0), --m 2..100, --ef-construction 4..1000 and >= 2 * m, --wait >= 0");
        goto done;
    }
    req.fetch = 4 * req.k;
    if (!int_list(&o, "ef-search", 1, 1000, true, &efs, &nef) ||
        !int_list(&o, "concurrency", 1, 64, false, &conc, &nconc))
        goto done;
    req.ef_search = efs;
    req.nef = nef;
    req.concurrency = conc;
    req.nconc = nconc;
    if (opts_str(&o, "scratch")) {
        char why[160];
        if (!bench_parse_list(opts_str(&o, "scratch"), 1, 100000000, false, &sizes, &nsizes, why, sizeof why)) {
            log_error("bench: --scratch: %s", why);
            goto done;
        }
        scratch = malloc((size_t) nsizes * sizeof *scratch);
        if (!scratch)
            goto done;
        for (int i = 0; i < nsizes; i++)
            scratch[i] = sizes[i];
        req.scratch = scratch;
        req.nscratch = nsizes;
        if (req.sample && (opts_flag_given(&o, "seed") || opts_flag_given(&o, "dim"))) {
            log_error("bench: --seed and --dim are for generated memories: leave them out with --sample");
            goto done;
        }
        long long seed = opts_int(&o, "seed"), dim = opts_int(&o, "dim");
        if (seed < 0 || seed > 9007199254740991LL || dim < 1 || dim > (req.no_index ? 16000 : 2000)) {
            log_error("bench: out of range: --seed 0..9007199254740991, --dim 1..2000 (1..16000 with --no-index: "
                      "pgvector indexes at most 2000 dimensions)");
            goto done;
        }
    } else if (opts_flag_given(&o, "sample") || opts_flag_given(&o, "seed") || opts_flag_given(&o, "dim") ||
               req.no_index || opts_flag_given(&o, "m") ||
               opts_flag_given(&o, "ef-construction") || opts_flag_given(&o, "maintenance-work-mem")) {
        log_error("bench: --sample, --seed, --dim, --no-index, --m, --ef-construction and --maintenance-work-mem go "
                  "with --scratch");
        goto done;
    }
    if (opts_str(&o, "compare") && !(old_doc = load_json(opts_str(&o, "compare"))))
        goto done;
    if (opts_str(&o, "plot")) {
        const char *cand[] = {"gnuplot", NULL};
        gnuplot = proc_find(cand);
        if (!gnuplot) {
            log_error("bench: --plot needs gnuplot (Debian: apt-get install gnuplot-nox)");
            goto done;
        }
    }

    c = pg_connect(g->conninfo, "pgmemctl bench", opts_double(&o, "wait"));
    if (!c) {
        rc = EXIT_FAILURE_;
        goto done;
    }
    req.display = pg_display(c);
    bench_result res;
    bool ok = bench_run(c, &req, &res);
    cJSON *doc = bench_render_json(&req, &res);
    rc = ok ? EXIT_OK : res.refused ? EXIT_USAGE : EXIT_FAILURE_;
    if (!doc) {
        log_error("out of memory");
        rc = EXIT_FAILURE_;
    } else {
        if (ok && log_progress_enabled())
            bench_render_table(doc, stderr);
        double missed = cJSON_GetObjectItem(doc, "targets_missed")->valuedouble;
        if (ok && opts_bool(&o, "check-targets") && missed > 0)
            rc = EXIT_REJECTED;
        if (ok && old_doc) {
            char err[256];
            cJSON *cmp = bench_compare(old_doc, doc, max_reg, err, sizeof err);
            if (!cmp) {
                log_error("bench: --compare %s: %s", opts_str(&o, "compare"), err);
                rc = EXIT_FAILURE_;
            } else {
                if (log_progress_enabled())
                    bench_compare_print(cmp, stderr);
                if (cJSON_GetObjectItem(cmp, "regressions")->valuedouble > 0)
                    rc = EXIT_REJECTED;
                cJSON_AddStringToObject(cmp, "old_file", opts_str(&o, "compare"));
                cJSON_AddItemToObject(doc, "compare", cmp);
            }
        }
        if (ok && opts_str(&o, "plot")) {
            if (bench_plot(doc, opts_str(&o, "plot"), gnuplot))
                cJSON_AddStringToObject(doc, "plot", opts_str(&o, "plot"));
            else
                rc = EXIT_FAILURE_;
        }
        if (!report_print(doc))
            rc = EXIT_FAILURE_;
        cJSON_Delete(doc);
    }
    bench_result_free(&res);
done:
    pg_close(c);
    cJSON_Delete(old_doc);
    free(gnuplot);
    free(efs);
    free(conc);
    free(sizes);
    free(scratch);
    opts_free(&o);
    return rc;
}

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
     .help = "measure scratch stores of N memories, generated or from --sample (in a schema dropped afterwards)"},
    {"sample", 0, OPT_STRING, NULL, true, "FILE.db",
     .help = "--scratch: load a vestige SQLite store from pgmemctl-sample instead of generating the memories"},
    {"seed", 0, OPT_INT, "1", true, "S", "--scratch without --sample: seed of the generated memories", .min = 0,
     .max = 9007199254740991.0},
    {"dim", 0, OPT_INT, "768", true, "D",
     "--scratch without --sample: dimension of their builtin:hash-D embeddings (1..2000; with --no-index 1..16000)",
     .min = 1, .max = 16000},
    {"queries", 0, OPT_INT, "200", true, "Q", "query-set size: every kind runs every query once per ef_search",
     .min = 1, .max = 100000},
    {"k", 0, OPT_INT, "10", true, "K", "results per query (recall@K)", .min = 1, .max = 1000},
    {"ef-search", 0, OPT_STRING, "20,40,100,200", true, "LIST",
     .help = "hnsw.ef_search values to measure (the session's own value is always added)"},
    {"concurrency", 0, OPT_STRING, "1,2,4", true, "LIST", .help = "connections for the hybrid QPS measurement"},
    {"duration", 0, OPT_DURATION, "5", true, "SECONDS", "length of each QPS measurement", .min = 0, .above_min = true,
     .max = 3600},
    {"warmup", 0, OPT_INT, "20", true, "Q", "untimed queries before each timed series", .min = 0, .max = 100000},
    {"raw", 0, OPT_BOOL, NULL, false, NULL, .help = "keep every latency sample in the JSON"},
    {"plot", 0, OPT_STRING, NULL, false, "FILE.svg", .help = "write a chart (gnuplot): recall against p50, QPS"},
    {"compare", 0, OPT_STRING, NULL, false, "OLD.json",
     .help = "print the change of each figure against a previous run (with NEW.json: compare two files, no run)"},
    {"max-regression", 0, OPT_DOUBLE, NULL, true, "PCT",
     "--compare: exit 3 when a figure got worse by more than PCT percent", .min = 0, .max = OPT_NO_MAX},
    {"check-targets", 0, OPT_BOOL, NULL, true, NULL, .help = "exit 3 when a design target is missed"},
    {"no-index", 0, OPT_BOOL, NULL, false, NULL, .help = "--scratch: build no HNSW index (every search exact)"},
    {"m", 0, OPT_INT, "16", true, "M", "--scratch: HNSW m", .min = 2, .max = 100},
    {"ef-construction", 0, OPT_INT, "64", true, "N", "--scratch: HNSW ef_construction (at least 2 * m)", .min = 4,
     .max = 1000},
    {"maintenance-work-mem", 0, OPT_SIZE, "1GB", true, "SIZE", "--scratch: maintenance_work_mem for the HNSW build",
     .min = 1048576, .max = OPT_NO_MAX, .setting = "maintenance_work_mem"},
    {"pgbench", 0, OPT_STRING, NULL, true, "PATH", .help = "pgbench binary for the client-overhead comparison"},
    {"no-pgbench", 0, OPT_BOOL, NULL, true, NULL, .help = "skip the client-overhead comparison"},
    {"wait", 0, OPT_DURATION, "0", true, "SECONDS", "wait this long for the server to accept connections", .min = 0,
     .max = OPT_NO_MAX},
    {0},
};

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
static int compare_files(const char *old_path, const char *new_path, double max_reg, cmd_result *out)
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
        cJSON *doc = out->doc = report_new("bench");
        cJSON_AddStringToObject(doc, "status", "ok");
        cJSON_AddStringToObject(doc, "mode", "compare");
        cJSON_AddStringToObject(doc, "old_file", old_path);
        cJSON_AddStringToObject(doc, "new_file", new_path);
        cJSON_AddItemToObject(doc, "compare", cmp);
        if (cJSON_GetObjectItem(cmp, "regressions")->valuedouble > 0)
            rc = EXIT_REJECTED;
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return rc;
}

typedef struct {
    bench_request req;
    int *efs, *conc;
    long long *sizes;
    int64_t *scratch;
    cJSON *old_doc;
    char *gnuplot;
    double max_reg;
    bool compare_only; /* --compare OLD.json NEW.json */
} bench_state;

static int prepare(const cmd_ctx *ctx, const opts *o, void *state, bool *needs_db)
{
    bench_state *st = state;
    st->max_reg = opts_isset(o, "max-regression") ? opts_double(o, "max-regression") : -1;
    /* from the config file or the environment it is a default for runs with --compare */
    if (opts_flag_given(o, "max-regression") && !opts_str(o, "compare")) {
        log_error("bench: --max-regression needs --compare");
        return EXIT_USAGE;
    }
    if (o->nargs > 1 || (o->nargs == 1 && !opts_str(o, "compare"))) {
        log_error("bench: unexpected argument \"%s\" (see pgmemctl bench --help)", o->args[o->nargs - 1]);
        return EXIT_USAGE;
    }
    if (o->nargs == 1) {
        st->compare_only = true;
        *needs_db = false;
        return EXIT_OK;
    }
    bench_request *req = &st->req;
    *req = (bench_request){
        .conninfo = ctx->conninfo,
        .sample = opts_str(o, "sample"),
        .queries = (int) opts_int(o, "queries"),
        .k = (int) opts_int(o, "k"),
        .duration = opts_double(o, "duration"),
        .warmup = (int) opts_int(o, "warmup"),
        .raw = opts_bool(o, "raw"),
        .no_index = opts_bool(o, "no-index"),
        .hnsw_m = (int) opts_int(o, "m"),
        .hnsw_ef_construction = (int) opts_int(o, "ef-construction"),
        .maintenance_work_mem = opts_str(o, "maintenance-work-mem"),
        .pgbench = opts_bool(o, "no-pgbench") ? "" : opts_str(o, "pgbench"),
        .seed = (uint64_t) opts_int(o, "seed"),
        .dim = (int) opts_int(o, "dim"),
    };
    if (req->hnsw_ef_construction < 2 * req->hnsw_m) {
        log_error("bench: --ef-construction %d: must be at least 2 * --m (%d)", req->hnsw_ef_construction,
                  2 * req->hnsw_m);
        return EXIT_USAGE;
    }
    req->fetch = 4 * req->k;
    if (!int_list(o, "ef-search", 1, 1000, true, &st->efs, &req->nef) ||
        !int_list(o, "concurrency", 1, 64, false, &st->conc, &req->nconc))
        return EXIT_USAGE;
    req->ef_search = st->efs;
    req->concurrency = st->conc;
    if (opts_str(o, "scratch")) {
        char why[160];
        int nsizes = 0;
        if (!bench_parse_list(opts_str(o, "scratch"), 1, 100000000, false, &st->sizes, &nsizes, why, sizeof why)) {
            log_error("bench: --scratch: %s", why);
            return EXIT_USAGE;
        }
        st->scratch = malloc((size_t) nsizes * sizeof *st->scratch);
        if (!st->scratch)
            return EXIT_FAILURE_;
        for (int i = 0; i < nsizes; i++)
            st->scratch[i] = st->sizes[i];
        req->scratch = st->scratch;
        req->nscratch = nsizes;
        if (req->sample && (opts_flag_given(o, "seed") || opts_flag_given(o, "dim"))) {
            log_error("bench: --seed and --dim are for generated memories: leave them out with --sample");
            return EXIT_USAGE;
        }
        if (req->dim > 2000 && !req->no_index) {
            log_error("bench: --dim %d: must be between 1 and 2000 without --no-index (pgvector indexes at most 2000 "
                      "dimensions)", req->dim);
            return EXIT_USAGE;
        }
    } else if (opts_flag_given(o, "sample") || opts_flag_given(o, "seed") || opts_flag_given(o, "dim") ||
               req->no_index || opts_flag_given(o, "m") || opts_flag_given(o, "ef-construction") ||
               opts_flag_given(o, "maintenance-work-mem")) {
        log_error("bench: --sample, --seed, --dim, --no-index, --m, --ef-construction and --maintenance-work-mem go "
                  "with --scratch");
        return EXIT_USAGE;
    }
    if (opts_str(o, "compare") && !(st->old_doc = load_json(opts_str(o, "compare"))))
        return EXIT_USAGE;
    if (opts_str(o, "plot")) {
        const char *cand[] = {"gnuplot", NULL};
        st->gnuplot = proc_find(cand);
        if (!st->gnuplot) {
            log_error("bench: --plot needs gnuplot (Debian: apt-get install gnuplot-nox)");
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

static int run(const cmd_ctx *ctx, const opts *o, pg_conn *c, void *state, cmd_result *out)
{
    (void) ctx;
    bench_state *st = state;
    if (st->compare_only)
        return compare_files(opts_str(o, "compare"), o->args[0], st->max_reg, out);
    bench_request *req = &st->req;
    req->display = pg_display(c);
    bench_result res;
    bool ok = bench_run(c, req, &res);
    cJSON *doc = out->doc = bench_render_json(req, &res);
    int rc = ok ? EXIT_OK : res.refused ? EXIT_USAGE : EXIT_FAILURE_;
    if (!doc) {
        log_error("out of memory");
        rc = EXIT_FAILURE_;
    } else {
        if (ok && log_progress_enabled())
            bench_render_table(doc, stderr);
        double missed = cJSON_GetObjectItem(doc, "targets_missed")->valuedouble;
        if (ok && opts_bool(o, "check-targets") && missed > 0)
            rc = EXIT_REJECTED;
        if (ok && st->old_doc) {
            char err[256];
            cJSON *cmp = bench_compare(st->old_doc, doc, st->max_reg, err, sizeof err);
            if (!cmp) {
                log_error("bench: --compare %s: %s", opts_str(o, "compare"), err);
                rc = EXIT_FAILURE_;
            } else {
                if (log_progress_enabled())
                    bench_compare_print(cmp, stderr);
                if (cJSON_GetObjectItem(cmp, "regressions")->valuedouble > 0)
                    rc = EXIT_REJECTED;
                cJSON_AddStringToObject(cmp, "old_file", opts_str(o, "compare"));
                cJSON_AddItemToObject(doc, "compare", cmp);
            }
        }
        if (ok && opts_str(o, "plot")) {
            if (bench_plot(doc, opts_str(o, "plot"), st->gnuplot))
                cJSON_AddStringToObject(doc, "plot", opts_str(o, "plot"));
            else
                rc = EXIT_FAILURE_;
        }
    }
    bench_result_free(&res);
    return rc;
}

static void release(void *state)
{
    bench_state *st = state;
    cJSON_Delete(st->old_doc);
    free(st->gnuplot);
    free(st->efs);
    free(st->conc);
    free(st->sizes);
    free(st->scratch);
}

const command cmd_bench = {
    .name = "bench",
    .summary = "search latency, recall@k and QPS of the store (or of scratch stores)",
    .flags = CMD_NEEDS_DB,
    .specs = cmd_bench_specs,
    .state_size = sizeof(bench_state),
    .usage = "usage: pgmemctl bench [-d TARGET] [--queries Q] [--k K] [--ef-search LIST] [--concurrency LIST]\n"
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
             "too small).\n",
    .see_also = "See pgmemctl-bench(1).",
    .prepare = prepare,
    .run = run,
    .release = release,
};

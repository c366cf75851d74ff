/* cmd_copy.c — `pgmemctl copy`: options, the run, the JSON summary and the exit code. */
#include "cmd.h"
#include "copy.h"
#include "log.h"
#include "pg.h"
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const epoch_units[] = {"s", "ms", NULL};

const opt_spec cmd_copy_specs[] = {
    {"from", 0, OPT_STRING, NULL, true, "PATH", .help = "the vestige SQLite store (PATH or sqlite:PATH); opened read-only"},
    {"batch-size", 0, OPT_INT, "5000", true, "N", "source rows per committed batch", .min = 1, .max = 1000000},
    {"dry-run", 0, OPT_BOOL, NULL, false, NULL,
     .help = "read and validate everything, report what would happen, write nothing"},
    {"verify-existing", 0, OPT_BOOL, NULL, false, NULL,
     .help = "re-read the whole source; insert what the target lacks and update rows that differ"},
    {"epoch-unit", 0, OPT_STRING, NULL, true, "s|ms", "unit of integer timestamps (rejected without it)",
     .choices = epoch_units},
    {"rejects", 0, OPT_STRING, NULL, true, "FILE", .help = "write every rejection as a JSON line to FILE"},
    {"maintenance-work-mem", 0, OPT_SIZE, "1GB", true, "SIZE", "maintenance_work_mem for index builds",
     .min = 1048576, .max = OPT_NO_MAX, .setting = "maintenance_work_mem"},
    {"parallel-workers", 0, OPT_INT, NULL, true, "N",
     "max_parallel_maintenance_workers for index builds (default: CPUs - 1)", .min = 0, .max = 64,
     .setting = "max_parallel_maintenance_workers"},
    {"jobs", 'j', OPT_INT, "1", true, "N", "parallel streams: N connections copy disjoint rowid ranges", .min = 1,
     .max = 64},
    {"wait", 0, OPT_DURATION, "0", true, "SECONDS", "wait this long for the server to accept connections", .min = 0,
     .max = OPT_NO_MAX},
    {0},
};

static cJSON *stats_json(const copy_table_stats *t, const char *source)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "source_table", source);
    report_add_int(o, "resumed_after_rowid", t->resumed_after);
    report_add_int(o, "copied_by_earlier_runs", t->copied_before);
    report_add_int(o, "read", t->read);
    report_add_int(o, "copied", t->copied);
    report_add_int(o, "updated", t->updated);
    report_add_int(o, "already_present", t->already_present);
    report_add_int(o, "rejected", t->rejected);
    report_add_int(o, "ranges", t->ranges);
    return o;
}

static cJSON *render(const pg_conn *c, const copy_request *req, copy_result *res, const char *rejects_path)
{
    cJSON *doc = report_new("copy");
    cJSON_AddStringToObject(doc, "status", res->outcome == COPY_OK         ? "ok"
                                           : res->outcome == COPY_REJECTED ? "completed_with_rejections"
                                           : res->outcome == COPY_REFUSED  ? "refused"
                                                                           : "failed");
    if (res->message[0])
        cJSON_AddStringToObject(doc, "error", res->message);
    cJSON_AddBoolToObject(doc, "dry_run", req->dry_run);
    report_add_int(doc, "jobs", req->jobs);
    cJSON *src = cJSON_AddObjectToObject(doc, "source");
    cJSON_AddStringToObject(src, "path", res->source_path[0] ? res->source_path : req->from);
    cJSON_AddStringToObject(src, "store_id", res->source_id);
    cJSON *id = cJSON_AddObjectToObject(src, "identity");
    report_add_str(id, "check", res->identity_check);
    cJSON_AddItemToObject(id, "tables", res->identity ? res->identity : cJSON_CreateArray());
    res->identity = NULL;
    cJSON_AddItemToObject(src, "tables_ignored", res->tables_ignored);
    cJSON_AddItemToObject(src, "tables_missing", res->tables_missing);
    res->tables_ignored = res->tables_missing = NULL;
    cJSON_AddStringToObject(doc, "target", c ? pg_display(c) : "");
    cJSON *emb = cJSON_AddObjectToObject(doc, "embedding_model");
    report_add_str(emb, "name", res->model[0] ? res->model : NULL);
    report_add_int(emb, "dimension", res->dimension);
    cJSON_AddBoolToObject(emb, "registered_by_this_run", res->registry_stamped);
    cJSON_AddStringToObject(doc, "write_path", res->write_path ? res->write_path : "none");
    cJSON_AddStringToObject(doc, "write_path_reason", res->write_path_reason);

    cJSON *tables = cJSON_AddObjectToObject(doc, "tables");
    cJSON_AddItemToObject(tables, "memories", stats_json(&res->nodes, "knowledge_nodes"));
    cJSON *sch = cJSON_AddObjectToObject(tables, "scheduling");
    report_add_int(sch, "copied", res->sched_copied);
    report_add_int(sch, "updated", res->sched_updated);
    report_add_int(sch, "from_fsrs_cards", res->sched_from_cards);
    report_add_int(sch, "from_node_columns", res->sched_from_nodes);
    report_add_int(sch, "rejected", res->sched_rejected);
    cJSON *edges = cJSON_AddArrayToObject(tables, "edges");
    cJSON_AddItemToArray(edges, stats_json(&res->mc, "memory_connections"));
    cJSON_AddItemToArray(edges, stats_json(&res->ke, "knowledge_edges"));
    cJSON *e = cJSON_AddObjectToObject(doc, "embeddings");
    report_add_int(e, "copied", res->emb_copied);
    report_add_int(e, "missing_in_source", res->emb_missing);
    report_add_int(e, "embeddings_rejected", res->emb_rejected);
    report_add_int(doc, "edges_dangling", res->edges_dangling);
    report_add_int(doc, "orphan_rows", res->orphans);

    cJSON_AddItemToObject(doc, "indexes", res->indexes);
    res->indexes = NULL;

    cJSON *par = cJSON_AddObjectToObject(doc, "parity");
    cJSON_AddBoolToObject(par, "checked", res->parity_ran);
    if (res->parity_ran) {
        cJSON_AddBoolToObject(par, "ok", res->parity_ok);
        cJSON *counts = cJSON_AddObjectToObject(par, "counts");
        for (int t = 0; t < 3; t++) {
            if (!res->parity[t].table[0])
                continue;
            cJSON *o = cJSON_AddObjectToObject(counts, res->parity[t].table);
            report_add_int(o, "source_accepted", res->parity[t].expected);
            report_add_int(o, "target", res->parity[t].found);
        }
        cJSON *sm = cJSON_AddObjectToObject(par, "sample");
        report_add_int(sm, "memories", res->sample_size);
        report_add_int(sm, "content_mismatches", res->sample_content_mismatch);
        report_add_int(sm, "vector_mismatches", res->sample_vector_mismatch);
        report_add_int(sm, "fsrs_mismatches", res->sample_fsrs_mismatch);
        cJSON_AddItemToObject(par, "mismatches", res->parity_mismatches);
        res->parity_mismatches = NULL;
    }

    cJSON *rej = cJSON_AddObjectToObject(doc, "rejections");
    report_add_int(rej, "count", res->rejects_total);
    report_add_int(rej, "recorded_by_earlier_runs", res->rejects_previous);
    report_add_int(rej, "listed", cJSON_GetArraySize(res->rejects));
    report_add_str(rej, "file", rejects_path);
    cJSON_AddItemToObject(rej, "items", res->rejects);
    res->rejects = NULL;

    cJSON *sec = cJSON_AddObjectToObject(doc, "seconds");
    report_add_seconds(sec, "total", res->seconds_total);
    report_add_seconds(sec, "identity", res->seconds_identity);
    report_add_seconds(sec, "data", res->seconds_data);
    report_add_seconds(sec, "index", res->seconds_index);
    report_add_seconds(sec, "analyze", res->seconds_analyze);
    report_add_seconds(sec, "parity", res->seconds_parity);
    return doc;
}

typedef struct {
    copy_request req;
    const char *rejects_path;
} copy_state;

static int prepare(const cmd_ctx *ctx, const opts *o, void *state, bool *needs_db)
{
    (void) needs_db;
    copy_state *st = state;
    copy_request *req = &st->req;
    st->rejects_path = opts_str(o, "rejects");
    req->from = opts_str(o, "from");
    if (o->nargs > 0) {
        log_error("copy: unexpected argument \"%s\" (the source goes with --from)", o->args[0]);
        return EXIT_USAGE;
    }
    if (!req->from) {
        log_error("copy: --from PATH is required (the vestige SQLite store)");
        return EXIT_USAGE;
    }
    req->batch_size = (int) opts_int(o, "batch-size");
    req->jobs = (int) opts_int(o, "jobs");
    req->wait_seconds = opts_double(o, "wait"); /* --jobs N opens its other connections itself */
    req->conninfo = ctx->conninfo;
    req->dry_run = opts_bool(o, "dry-run");
    req->verify_existing = opts_bool(o, "verify-existing");
    const char *unit = opts_str(o, "epoch-unit"); /* NULL, "s" or "ms": the table's choices */
    req->epoch = !unit ? EPOCH_NONE : !strcmp(unit, "s") ? EPOCH_S : EPOCH_MS;
    req->maintenance_work_mem = opts_str(o, "maintenance-work-mem");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > 65)
        ncpu = 65;
    req->parallel_workers = opts_isset(o, "parallel-workers") ? (int) opts_int(o, "parallel-workers")
                                                              : (int) (ncpu > 1 ? ncpu - 1 : 0);
    req->max_listed_rejects = 1000;
    if (st->rejects_path) {
        req->rejects_file = fopen(st->rejects_path, "w");
        if (!req->rejects_file) {
            log_error("copy: --rejects %s: %s", st->rejects_path, strerror(errno));
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

/* Closes the rejects file; a lost one matters most when there were rejections (exit 3). */
static int close_rejects(copy_state *st, int rc)
{
    if (!st->req.rejects_file)
        return rc;
    bool write_err = ferror(st->req.rejects_file) != 0;
    if ((fclose(st->req.rejects_file) != 0 || write_err) && (rc == EXIT_OK || rc == EXIT_REJECTED)) {
        log_error("copy: writing %s: %s", st->rejects_path, strerror(errno));
        rc = EXIT_FAILURE_;
    }
    st->req.rejects_file = NULL;
    return rc;
}

static int run(const cmd_ctx *ctx, const opts *o, pg_conn *c, void *state, cmd_result *out)
{
    (void) ctx;
    (void) o;
    copy_state *st = state;
    copy_result res;
    copy_run(c, &st->req, &res);
    out->doc = render(c, &st->req, &res, st->rejects_path);
    int rc = res.outcome == COPY_OK         ? EXIT_OK
             : res.outcome == COPY_REJECTED ? EXIT_REJECTED
             : res.outcome == COPY_REFUSED  ? EXIT_USAGE
                                            : EXIT_FAILURE_;
    if (!out->doc)
        rc = EXIT_FAILURE_;
    copy_result_free(&res);
    return close_rejects(st, rc);
}

static void release(void *state) { close_rejects(state, EXIT_FAILURE_); }

const command cmd_copy = {
    .name = "copy",
    .summary = "copy a vestige SQLite memory store into PostgreSQL + pgvector",
    .flags = CMD_NEEDS_DB,
    .specs = cmd_copy_specs,
    .state_size = sizeof(copy_state),
    .usage = "usage: pgmemctl copy --from PATH [--dry-run] [--batch-size N] [--rejects FILE] [--epoch-unit s|ms]\n"
             "\n"
             "Copies a vestige SQLite memory store into the memory-store schema (run `pgmemctl migrate up` first):\n"
             "memories with their vectors and full-text search, FSRS scheduling state and graph edges. Streams in\n"
             "batches, each committed with a checkpoint, so an interrupted run resumes and a re-run copies only\n"
             "what is new. Bad rows are reported and skipped (exit 3). A parity check proves the result.\n",
    .see_also = "See pgmemctl-copy(1) for the column mapping and the JSON summary.",
    .prepare = prepare,
    .run = run,
    .release = release,
};

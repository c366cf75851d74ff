/* cmd_reembed.c — `pgmemctl reembed`: options, the confirmation, the run and its JSON summary. */
#include "cmd.h"
#include "log.h"
#include "pg.h"
#include "reembed.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const modes[] = {"shadow", "in-place", NULL};
static const char *const long_input[] = {"reject", "truncate", NULL};

const opt_spec cmd_reembed_specs[] = {
    {"model", 0, OPT_STRING, NULL, true, "SPEC",
     .help = "new embedder: builtin:hash[-DIM], openai:MODEL or ollama:MODEL (default with --only-missing: the registry's)"},
    {"mode", 0, OPT_STRING, "shadow", true, "MODE", "shadow (no downtime) or in-place (maintenance window)",
     .choices = modes},
    {"only-missing", 0, OPT_BOOL, NULL, false, NULL, .help = "embed only memories without a vector, with the current model"},
    {"dry-run", 0, OPT_BOOL, NULL, false, NULL,
     .help = "print the plan (rows, requests, tokens, time); write and send nothing"},
    {"yes", 'y', OPT_BOOL, NULL, false, NULL, .help = "do not ask for confirmation"},
    {"keep-old", 0, OPT_BOOL, NULL, false, NULL, .help = "shadow: keep the old table (old vectors) as pgmemctl_memories_old"},
    {"concurrent-index", 0, OPT_BOOL, NULL, true, NULL,
     .help = "in-place: build the index with CREATE INDEX CONCURRENTLY"},
    {"abort", 0, OPT_BOOL, NULL, false, NULL, .help = "undo an interrupted shadow re-embed (drops its copy of memories)"},
    {"batch-size", 0, OPT_INT, "256", true, "N",
     "memories per embedder request; a write transaction takes --concurrency requests' worth", .min = 1,
     .max = 100000},
    {"api-base", 0, OPT_STRING, NULL, true, "URL",
     .help = "HTTP embedders: base URL (default $OPENAI_BASE_URL / $OLLAMA_HOST)"},
    {"dimensions", 0, OPT_INT, NULL, true, "N", "openai: ask the model for N dimensions", .min = 1, .max = 16000},
    {"concurrency", 0, OPT_INT, "4", true, "N", "HTTP embedders: requests in flight", .min = 1, .max = 256},
    {"max-retries", 0, OPT_INT, "6", true, "N", "HTTP embedders: retries per request", .min = 0, .max = 1000},
    {"timeout", 0, OPT_DURATION, "600", true, "SECONDS", "HTTP embedders: time limit per batch, retries included",
     .min = 0, .above_min = true, .max = OPT_NO_MAX},
    {"on-long-input", 0, OPT_STRING, "reject", true, "WHAT",
     "inputs over 8,191 tokens: reject (reported, left without a vector) or truncate", .choices = long_input},
    {"recall-sample", 0, OPT_INT, "100", true, "N", "shadow: query vectors for the new index's recall check", .min = 1,
     .max = 100000},
    {"min-recall", 0, OPT_DOUBLE, "0.9", true, "R", "shadow: recall@10 the new index must reach before the swap",
     .min = 0, .max = 1},
    {"maintenance-work-mem", 0, OPT_SIZE, "1GB", true, "SIZE", "maintenance_work_mem for the index build",
     .min = 1048576, .max = OPT_NO_MAX, .setting = "maintenance_work_mem"},
    {"lock-timeout", 0, OPT_DURATION, "10", true, "SECONDS", "how long to wait for another re-embed's lock", .min = 0,
     .max = OPT_NO_MAX},
    {"wait", 0, OPT_DURATION, "0", true, "SECONDS", "wait this long for the server to accept connections", .min = 0,
     .max = OPT_NO_MAX},
    {0},
};

typedef struct {
    bool yes;
    bool refused_no_tty;   /* no --yes and no terminal to ask on */
} confirm_ctx;

static bool confirm(const reembed_plan *p, void *arg)
{
    confirm_ctx *cc = arg;
    log_info("reembed: %s re-embed of %lld memories with %s (%d dimensions), replacing %s", p->mode,
             (long long) p->rows_to_embed, p->new_model.name, p->new_model.dimension,
             p->old_model.present ? p->old_model.name : "no registered model");
    if (!strcmp(p->mode, "shadow") && p->extra_bytes > 0)
        log_info("reembed: the copy of memories needs about %lld MB of disk while the run lasts",
                 (long long) (p->extra_bytes / 1048576));
    log_info("reembed: take a backup first: %s", p->backup_command);
    if (cc->yes)
        return true;
    if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) {
        cc->refused_no_tty = true;
        return false;
    }
    fprintf(stderr, "Re-embed %lld memories with %s? Type yes to go on: ", (long long) p->rows_to_embed,
            p->new_model.name);
    fflush(stderr);
    char line[32] = "";
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\r\n")] = 0;
    return !strcasecmp(line, "yes");
}

static cJSON *model_json(const reembed_model *m)
{
    if (!m->present)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddNumberToObject(o, "dimension", m->dimension);
    report_add_str(o, "hash", m->hash[0] ? m->hash : NULL);
    return o;
}

static const char *status_name(reembed_outcome o)
{
    switch (o) {
    case REEMBED_OK: return "ok";
    case REEMBED_NOTHING: return "nothing_to_do";
    case REEMBED_REJECTED: return "rejected";
    case REEMBED_REFUSED: return "refused";
    case REEMBED_DECLINED: return "declined";
    default: return "failed";
    }
}

static cJSON *render(const pg_conn *c, const reembed_request *req, const reembed_result *res)
{
    cJSON *doc = report_new("reembed");
    cJSON_AddStringToObject(doc, "database", pg_display(c));
    cJSON_AddStringToObject(doc, "mode", res->plan.mode);
    cJSON_AddBoolToObject(doc, "dry_run", req->dry_run);
    cJSON_AddStringToObject(doc, "status", status_name(res->outcome));
    cJSON_AddStringToObject(doc, "message", res->message);
    cJSON_AddItemToObject(doc, "old_model", model_json(&res->plan.old_model));
    cJSON_AddItemToObject(doc, "new_model", model_json(&res->plan.new_model));
    cJSON_AddBoolToObject(doc, "resumed", res->plan.resuming);
    report_add_int(doc, "rows_total", res->plan.rows_total);
    report_add_int(doc, "rows_to_embed", res->plan.rows_to_embed);
    report_add_int(doc, "rows_updated", res->rows_updated);
    report_add_int(doc, "rows_replayed", res->rows_replayed);
    if (!strcmp(res->plan.mode, "shadow") && res->plan.extra_bytes >= 0)
        report_add_int(doc, "extra_bytes_needed", res->plan.extra_bytes);
    else
        cJSON_AddNullToObject(doc, "extra_bytes_needed");
    report_add_int(doc, "rows_rejected", res->rows_rejected);
    cJSON_AddItemToObject(doc, "rejects", res->rejects ? cJSON_Duplicate(res->rejects, true) : cJSON_CreateArray());
    cJSON *e = cJSON_AddObjectToObject(doc, "embedder");
    report_add_int(e, "requests", res->stats.requests);
    report_add_int(e, "retries", res->stats.retries);
    report_add_int(e, "inputs", res->stats.inputs);
    report_add_int(e, "tokens_estimated", res->stats.tokens_estimated);
    if (req->dry_run) {
        cJSON *est = cJSON_AddObjectToObject(doc, "estimate");
        report_add_int(est, "requests", res->plan.requests_estimated);
        report_add_int(est, "tokens", res->plan.tokens_estimated);
        report_add_seconds(est, "seconds", res->plan.seconds_estimated);
    }
    cJSON *s = cJSON_AddObjectToObject(doc, "seconds");
    report_add_seconds(s, "total", res->seconds_total);
    report_add_seconds(s, "embed", res->seconds_embed);
    report_add_seconds(s, "write", res->seconds_write);
    report_add_seconds(s, "index_build", res->seconds_index);
    report_add_seconds(s, "replay", res->seconds_replay);
    report_add_seconds(s, "swap", res->seconds_swap);
    report_add_seconds(s, "lock_held", res->seconds_lock);
    report_add_int(doc, "swap_attempts", res->swap_attempts);
    if (res->recall_at_10 >= 0) {
        cJSON_AddNumberToObject(doc, "recall_at_10", round(res->recall_at_10 * 1000.0) / 1000.0);
        report_add_int(doc, "recall_queries", res->recall_queries);
    }
    cJSON_AddBoolToObject(doc, "index_built", res->index_built);
    cJSON_AddBoolToObject(doc, "kept_old_table", res->kept_old);
    report_add_str(doc, "backup_command", res->plan.backup_command[0] ? res->plan.backup_command : NULL);
    return doc;
}

typedef struct {
    reembed_request req;
    confirm_ctx cc;
} reembed_state;

static int prepare(const cmd_ctx *ctx, const opts *o, void *state, bool *needs_db)
{
    (void) ctx;
    (void) needs_db;
    reembed_state *st = state;
    st->cc = (confirm_ctx){.yes = opts_bool(o, "yes")};
    st->req = (reembed_request){
        .model = opts_str(o, "model"),
        .only_missing = opts_bool(o, "only-missing"),
        .dry_run = opts_bool(o, "dry-run"),
        .keep_old = opts_bool(o, "keep-old"),
        .concurrent_index = opts_bool(o, "concurrent-index"),
        .batch_size = (int) opts_int(o, "batch-size"),
        .recall_sample = (int) opts_int(o, "recall-sample"),
        .min_recall = opts_double(o, "min-recall"),
        .lock_timeout = opts_double(o, "lock-timeout"),
        .maintenance_work_mem = opts_str(o, "maintenance-work-mem"),
        .mode = !strcmp(opts_str(o, "mode"), "in-place") ? REEMBED_IN_PLACE : REEMBED_SHADOW,
        .confirm = confirm,
        .confirm_arg = &st->cc,
        .eopt = {.api_base = opts_str(o, "api-base"),
                 .dimensions = opts_isset(o, "dimensions") ? (int) opts_int(o, "dimensions") : 0,
                 .concurrency = (int) opts_int(o, "concurrency"),
                 .inputs_per_request = (int) opts_int(o, "batch-size"),
                 /* the embedder reads 0 as "default" and < 0 as "none" */
                 .max_retries = opts_int(o, "max-retries") == 0 ? -1 : (int) opts_int(o, "max-retries"),
                 .timeout = opts_double(o, "timeout"),
                 .truncate_long = !strcmp(opts_str(o, "on-long-input"), "truncate")},
    };
    if (o->nargs > 0) {
        log_error("reembed: unexpected argument \"%s\" (see pgmemctl reembed --help)", o->args[0]);
        return EXIT_USAGE;
    }
    /* a model from the config file or the environment does not conflict with --abort */
    if (opts_bool(o, "abort") && (opts_flag_given(o, "model") || st->req.only_missing || st->req.dry_run)) {
        log_error("reembed: --abort goes alone");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int run(const cmd_ctx *ctx, const opts *o, pg_conn *c, void *state, cmd_result *out)
{
    (void) ctx;
    reembed_state *st = state;
    reembed_request *req = &st->req;
    req->display = pg_display(c);
    reembed_result res;
    if (opts_bool(o, "abort"))
        reembed_abort(c, req, &res);
    else
        reembed_run(c, req, &res);
    if (st->cc.refused_no_tty) {
        res.outcome = REEMBED_REFUSED;
        snprintf(res.message, sizeof res.message, "confirmation needed: pass --yes (no terminal to ask on)");
        log_error("reembed: %s", res.message);
    }
    int rc;
    switch (res.outcome) {
    case REEMBED_OK:
    case REEMBED_NOTHING: rc = EXIT_OK; break;
    case REEMBED_REJECTED: rc = EXIT_REJECTED; break;
    case REEMBED_REFUSED: rc = EXIT_USAGE; break;
    default: rc = EXIT_FAILURE_; break;
    }
    if (res.outcome == REEMBED_OK || res.outcome == REEMBED_NOTHING || res.outcome == REEMBED_REJECTED)
        log_info("reembed: %s", res.message[0] ? res.message : "done");
    out->doc = render(c, req, &res);
    reembed_result_free(&res);
    return out->doc ? rc : EXIT_FAILURE_;
}

const command cmd_reembed = {
    .name = "reembed",
    .summary = "re-encode every memory under a new embedding model, with no downtime",
    .flags = CMD_NEEDS_DB,
    .specs = cmd_reembed_specs,
    .state_size = sizeof(reembed_state),
    .usage = "usage: pgmemctl reembed --model SPEC [--mode shadow|in-place] [--dry-run] [--yes] [--keep-old]\n"
             "       pgmemctl reembed --only-missing [--model SPEC] [--yes]\n"
             "       pgmemctl reembed --abort\n"
             "\n"
             "Re-encodes every memory under a new embedding model (a new dimension included), builds its HNSW\n"
             "index and updates the embedding_model registry. shadow (default) fills a copy of memories with\n"
             "the new vectors while searches keep using the old ones, builds its indexes, checks the new\n"
             "index's recall@10, copies what the application changed meanwhile, then swaps the copy in with\n"
             "one short lock; in-place rewrites embedding in a maintenance window. An interrupted run\n"
             "resumes where it stopped when run again.\n",
    .see_also = "See pgmemctl-reembed(1).",
    .prepare = prepare,
    .run = run,
};

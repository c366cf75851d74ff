/* reembed.h — `pgmemctl reembed`: re-encodes every memory under a new embedding model.
 *
 * shadow (default, no downtime): the new vectors go into a copy of memories
 *   (pgmemctl_memories_next), filled in keyset batches by binary COPY and INSERT … SELECT while a
 *   trigger logs the rows the application changes; the copy gets memories' indexes (the HNSW one
 *   built after the fill) and its recall@10 is checked against exact search on a sample; the
 *   logged rows are copied again; then one short transaction under ACCESS EXCLUSIVE makes the
 *   copy memories (renames, constraints, triggers, grants, policies, foreign keys re-pointed NOT
 *   VALID and validated after the commit) and updates embedding_model. Searches keep using the
 *   old table and index until that commit (reembed_shadow.c).
 * in-place (maintenance window): drops the HNSW index, rewrites `embedding` in keyset batches
 *   (position committed with each batch), sets the typmod, rebuilds the index, updates the
 *   registry.
 * only-missing: embeds the rows whose embedding IS NULL with the registry's current model.
 *
 * One re-embed per database at a time (session advisory lock REEMBED_LOCK_KEY); the target
 * and progress live in pgmemctl_reembed_state (migrations 0003 and 0006). */
#ifndef PGMEMCTL_REEMBED_H
#define PGMEMCTL_REEMBED_H

#include "embed.h"
#include "pg.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* The bytes "pgmememb". */
#define REEMBED_LOCK_KEY INT64_C(0x70676d656d656d62)

typedef enum { REEMBED_SHADOW, REEMBED_IN_PLACE } reembed_mode;

typedef struct {
    bool present;
    char name[256];
    int dimension;
    char hash[80];
} reembed_model;

/* What a run will do, computed before anything is written (shown by --dry-run and before the
 * confirmation). */
typedef struct {
    reembed_model old_model, new_model;
    const char *mode;            /* "shadow", "in-place", "only-missing" */
    int64_t rows_total;          /* memories in the store */
    int64_t rows_to_embed;       /* still to embed (after an interrupted run: what is left) */
    int64_t tokens_estimated;    /* sum over those rows of ceil(bytes / 4) */
    int64_t requests_estimated;  /* HTTP requests (0 for builtin) */
    double seconds_estimated;    /* the longer of embedding (builtin: measured on a sample; HTTP: 1 s
                                  * per request / concurrency) and writing (rows / 300 when the rows
                                  * are in an HNSW index as they are written, else rows / 5,000) */
    bool resuming;               /* an interrupted run with the same target is continued */
    int64_t extra_bytes;         /* shadow: room the copy of memories needs while the run lasts
                                  * (pg_total_relation_size of memories, scaled up by new/old
                                  * dimension when it grows); 0 for the other modes, -1 unknown */
    char backup_command[1024];   /* pg_dump … (password-free) */
} reembed_plan;

typedef struct {
    const char *model;           /* embedder spec; NULL with only_missing = the registry's model */
    embed_options eopt;
    reembed_mode mode;
    bool only_missing;
    bool dry_run;
    bool keep_old;               /* shadow: keep the old table as pgmemctl_memories_old */
    bool concurrent_index;       /* in-place: CREATE INDEX CONCURRENTLY */
    int batch_size;              /* rows per embedder call */
    int recall_sample;           /* query vectors for the recall check */
    double min_recall;           /* recall@10 the new index must reach */
    double lock_timeout;         /* seconds to wait for another re-embed's lock */
    const char *maintenance_work_mem; /* for the index build */
    const char *display;         /* password-free conninfo for the backup command */
    /* Called once the plan is known and before anything is written (not for dry runs); returns
     * whether to go on. NULL = go on. */
    bool (*confirm)(const reembed_plan *plan, void *arg);
    void *confirm_arg;
} reembed_request;

typedef enum {
    REEMBED_OK = 0,              /* done */
    REEMBED_NOTHING = 1,         /* the registry already has this model: nothing to do */
    REEMBED_REJECTED = 2,        /* done, but some rows could not be embedded (reported) */
    REEMBED_FAILED = 3,          /* stopped; a re-run resumes */
    REEMBED_REFUSED = 4,         /* refused before writing (usage: other run's target, bad model …) */
    REEMBED_DECLINED = 5         /* the confirmation said no */
} reembed_outcome;

typedef struct {
    reembed_outcome outcome;
    char message[2048];
    reembed_plan plan;
    int64_t rows_updated;        /* vectors written by this run */
    int64_t rows_rejected;       /* rows left without a vector (empty or too long input) */
    cJSON *rejects;              /* [{id, reason}] (owned), first 1,000 */
    embed_stats stats;           /* embedder counters of this run */
    double seconds_total, seconds_embed, seconds_write, seconds_index;
    double seconds_replay;       /* shadow: copying logged changes again (before the swap) */
    double seconds_swap;         /* shadow: the swap, from the first lock request to the commit */
    double seconds_lock;         /* shadow: how long the swap held ACCESS EXCLUSIVE on memories */
    int swap_attempts;           /* shadow: lock requests until the swap went through */
    int64_t rows_replayed;       /* shadow: logged rows copied again */
    double recall_at_10;         /* shadow: of the new index; < 0 when not measured */
    int recall_queries;
    bool index_built;
    bool kept_old;
} reembed_result;

/* Runs req on c. Never exits; logs progress on stderr; fills res (reembed_result_free). */
void reembed_run(pg_conn *c, const reembed_request *req, reembed_result *res);
void reembed_result_free(reembed_result *res);

/* Drops what an interrupted shadow re-embed left (the copy pgmemctl_memories_next, the change
 * log's trigger and rows, the state row; also an earlier version's embedding_next column, its
 * index and trigger) after taking the lock; memories and the registry are untouched. Refused
 * once the swap is done, and for in-place runs. Fills res. */
void reembed_abort(pg_conn *c, const reembed_request *req, reembed_result *res);

#endif

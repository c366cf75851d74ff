/* reembed_int.h — what the parts of a re-embed share: reembed_pipeline.c (the embedding pipeline,
 * the registry and state rows), used by reembed.c (the plan, the run, in-place mode) and by
 * reembed_shadow.c (shadow mode: the copy of memories, the change log, the swap), which
 * reembed.c calls. Internal to those files. */
#ifndef PGMEMCTL_REEMBED_INT_H
#define PGMEMCTL_REEMBED_INT_H

#include "copy_binary.h"
#include "progress.h"
#include "recall_exact.h"
#include "reembed.h"

#include <pthread.h>

#define REEMBED_ZERO_UUID "00000000-0000-0000-0000-000000000000"
/* The temporary table a batch's vectors are binary-COPied into (id uuid, content_md5 text, v vector). */
#define REEMBED_STAGE "pgmemctl_reembed_stage"

/* One run's working state. */
typedef struct {
    pg_conn *c;
    const reembed_request *req;
    reembed_result *res;
    embedder *emb;
    bool have_state;             /* pgmemctl_reembed_state has a row */
    char state_phase[16];
    char state_last_id[40];
    char **rejected;             /* ids left without a vector by this run */
    int nrejected, caprejected;
    progress *prog;
    int64_t done;                /* rows handled (for progress) */
    embed_stats joined_stats;    /* the embedder's counters after the last finished batch */
    pgbuf buf;
    /* How a backfill pass reads and writes (set by the mode before backfill()): */
    const char *apply_sql;       /* moves the staged rows into place (NULL: the mode's UPDATE) */
    const char *select_sql;      /* reads the next batch: $1 last id, $2 limit, $3 rejected ids (NULL: the mode's) */
    bool stage_rejected;         /* stage rejected rows too, with a NULL vector */
    bool single_pass;            /* one pass (in-place, shadow's fill) instead of passes until none is left */
    char keyset_start[40];       /* the pass starts after this id ("" = the beginning) */
    recall_exact *exact;         /* when set, every embedded batch's vectors are added to it (on the
                                  * embedding thread, while the previous batch is written) */
} rstate;

/* One batch of rows with their texts and what the embedder made of them. */
typedef struct {
    pg_result *rows;             /* id, content, md5(content) (owned) */
    int n;
    const char **texts;          /* into rows */
    size_t *lens;
    unsigned char *status;       /* EMBED_OK … per row */
    float *vec;                  /* n x dimension */
    embedder *emb;
    recall_exact *exact;         /* s->exact when the batch was made */
    bool ok;
    char err[1024];
    double seconds;
    pthread_t thread;
    bool started;
} reembed_batch;

/* Sets the outcome and message (printf format); logs failures and refusals. */
void reembed_finish(rstate *s, reembed_outcome o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The ids this run rejected as a PostgreSQL array literal {…} (newly allocated; NULL when out of
 * memory). */
char *reembed_rejected_ids(const rstate *s);

/* Fails with the connection's error text and what was being done. */
void reembed_fail_sql(rstate *s, const char *what);

/* A batch holding the rows of r (taken over: freed with the batch); NULL (and r freed, res
 * failed) when out of memory. */
reembed_batch *reembed_batch_new(rstate *s, pg_result *r);
void reembed_batch_free(reembed_batch *b);

/* Embeds b on the calling thread and reports its rejected rows; false (res failed) when the
 * embedder failed. */
bool reembed_embed_now(rstate *s, reembed_batch *b);

/* Encodes b's rows (id, md5, vector; rejected rows with a NULL vector when s->stage_rejected,
 * else left out) as one binary COPY into REEMBED_STAGE and sends it, inside the caller's
 * transaction. Returns the rows staged, or -1 with res failed. */
int64_t reembed_stage(rstate *s, const reembed_batch *b);

/* Creates the session's staging table (ON COMMIT DELETE ROWS) when missing. */
bool reembed_stage_table(rstate *s);

/* Keyset passes over the rows still to embed, with the embedder working on batch k+1 while
 * batch k is written (s->select_sql / s->apply_sql / s->single_pass say which rows and where
 * they go), under one progress bar. False with res failed. */
bool reembed_backfill(rstate *s);

/* Makes m the registry's active model (inside the caller's transaction). */
bool reembed_register_model(rstate *s);

/* Inserts the state row for mode ("shadow", "in-place") unless one exists (inside the caller's
 * transaction). */
bool reembed_insert_state(rstate *s, const char *mode);

/* The shadow re-embed (reembed_shadow.c): copy, indexes, recall check, change replay, swap. */
void reembed_run_shadow(rstate *s);

/* Before the plan of a shadow re-embed: refuses (res refused) leftovers of an earlier design or an
 * earlier --keep-old, and what a copy cannot carry over (reembed_shadow_blockers); sets
 * plan.extra_bytes and, when an interrupted copy is resumed, s->keyset_start. */
bool reembed_shadow_prepare(rstate *s);

/* Extra bytes a shadow re-embed needs while it runs (a copy of memories with its indexes, the
 * vector part scaled by new/old dimension), estimated from pg_total_relation_size; -1 on error. */
int64_t reembed_shadow_extra_bytes(rstate *s);

/* What --abort does for shadow mode: drops the copy, the change log's rows and trigger, and
 * leftovers of the earlier column design (embedding_next, its index and trigger), then the state
 * row, in one transaction. False with res failed. */
bool reembed_shadow_abort(rstate *s);

/* Objects outside memories' own definition that a shadow re-embed cannot carry over to the copy
 * (dependent views, rules, publications listing memories, inheritance, identity columns), as a
 * "; "-separated text (newly allocated; "" when none); NULL with res failed. */
char *reembed_shadow_blockers(rstate *s);

#endif

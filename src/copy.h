/* copy.h — `pgmemctl copy`: a vestige SQLite store streamed into the memory-store schema in
 * batches, each committed with its checkpoint, then indexes rebuilt and parity proven. */
#ifndef PGMEMCTL_COPY_H
#define PGMEMCTL_COPY_H

#include "sqlite_values.h"
#include "pg.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *from;              /* PATH or sqlite:PATH */
    int batch_size;                /* source rows per committed batch */
    bool dry_run;                  /* read and validate everything, write nothing */
    bool verify_existing;          /* re-read the whole source through the staging path and
                                      update target rows that differ from it */
    epoch_unit epoch;              /* integer timestamps */
    const char *maintenance_work_mem; /* for index builds, e.g. "1GB" */
    int parallel_workers;          /* max_parallel_maintenance_workers for index builds */
    FILE *rejects_file;            /* every rejection as a JSON line, or NULL */
    int max_listed_rejects;        /* how many rejections the JSON summary lists (1000) */
    int jobs;                      /* parallel streams (connections), >= 1 */
    const char *conninfo;          /* for the streams' connections beyond the caller's (jobs > 1) */
    double wait_seconds;           /* how long those wait for the server to accept connections */
} copy_request;

typedef struct {
    int64_t read;                  /* source rows read this run */
    int64_t copied;                /* target rows inserted this run */
    int64_t updated;               /* --verify-existing: rows that differed and were updated */
    int64_t already_present;       /* rows whose key the target already had (staging path) */
    int64_t rejected;              /* rows skipped by validation this run */
    int64_t resumed_after;         /* checkpoint rowid the run started after */
    int64_t copied_before;         /* rows earlier runs of this store had copied (skipped now) */
    int ranges;                    /* rowid ranges of the source table (each with its checkpoint) */
} copy_table_stats;

typedef struct {
    char table[32];                /* target table */
    int64_t expected, found;       /* source rows accepted (all runs) vs target rows holding them */
} copy_parity_count;

typedef enum { COPY_OK, COPY_REJECTED, COPY_FAILED, COPY_REFUSED } copy_outcome;

typedef struct {
    copy_outcome outcome;
    int jobs;                      /* streams used */
    char message[1024];            /* why it failed or was refused */
    char source_path[1024];
    char source_id[65];            /* the store id: the key of its checkpoints (sqlite_src_identity) */
    const char *identity_check;    /* how the checkpoints were matched to the store: "new", "matched",
                                      "verified_in_target", "mismatch" or "not_checked" (static) */
    cJSON *identity;               /* per source table with checkpoints: what was compared (owned) */
    char model[256];
    int dimension;                 /* 0: the store has no embeddings */
    bool registry_stamped;         /* this run registered the model and stamped the typmod */
    const char *write_path;        /* "direct", "staging" or "none" (dry run) */
    char write_path_reason[256];
    copy_table_stats nodes, mc, ke;
    int64_t sched_copied, sched_updated, sched_from_cards, sched_from_nodes, sched_rejected;
    int64_t emb_copied, emb_missing, emb_rejected;
    int64_t edges_dangling;        /* edges skipped because an endpoint was not copied */
    int64_t orphans;               /* fsrs_cards / node_embeddings rows with no node */
    cJSON *tables_ignored;         /* array of names (owned) */
    cJSON *tables_missing;         /* vestige tables absent from this file (owned) */
    cJSON *rejects;                /* the first max_listed_rejects rejections (owned) */
    int64_t rejects_total;         /* this run */
    int64_t rejects_previous;      /* recorded by earlier runs of this source */
    cJSON *indexes;                /* dropped/rebuilt indexes with seconds (owned) */
    double seconds_total, seconds_identity, seconds_data, seconds_index, seconds_analyze, seconds_parity;
    bool parity_ran, parity_ok;
    copy_parity_count parity[3];   /* memories, scheduling, edges */
    int64_t sample_size, sample_content_mismatch, sample_vector_mismatch, sample_fsrs_mismatch;
    cJSON *parity_mismatches;      /* first few mismatching ids with what differs (owned) */
} copy_result;

/* Runs the copy into the database behind c (which must hold the migrated schema). With
 * req->jobs > 1 it opens jobs - 1 more connections to req->conninfo (refused, COPY_REFUSED,
 * before anything is written when the server lacks free connections) and copies disjoint rowid
 * ranges of each source table at once: all of knowledge_nodes first, then the edge tables. Each
 * stream reads the SQLite file through its own read-only connection in a thread of its own.
 * Logs progress and problems on stderr; fills res (copy_result_free). Never exits. */
void copy_run(pg_conn *c, const copy_request *req, copy_result *res);
void copy_result_free(copy_result *res);

#endif

/* reembed_fixture.h — shared by the re-embed tests: a memory store with builtin:hash-768
 * vectors, a check that stored vectors equal the builtin embedder's for their content, the
 * state a finished re-embed must leave, and a re-embed killed with SIGKILL at a chosen moment.
 * Every helper asserts (Criterion) instead of returning an error. */
#ifndef PGMEMCTL_REEMBED_FIXTURE_H
#define PGMEMCTL_REEMBED_FIXTURE_H

#include "common/testutil.h"

#include <stdbool.h>

/* A fresh, migrated database with n memories of varied text, embedded with builtin:hash-768 by
 * `pgmemctl reembed --mode in-place` from no model (so the registry, typmod and HNSW index are
 * what reembed makes), every updated_at set to 2020-01-01 00:00:00+00, ANALYZEd. Returns its URI
 * (caller frees; drop with tu_drop_db). */
char *rf_store_768(int n);

/* The same on another server (superuser URI); NULL = the sandbox's. */
char *rf_store_768_at(const char *server_uri, int n);

/* Checks that memories.embedding equals builtin:hash-DIM of content, element by element
 * (1e-6), on up to 50 rows matching where (SQL). Returns the number of rows checked. */
int rf_check_vectors(const char *db, int dim, const char *where);

/* The same on up to limit rows (in id order). */
int rf_check_vectors_n(const char *db, int dim, const char *where, int limit);

/* md5 of every memory id in order (newly allocated): ids before and after a re-embed compare. */
char *rf_ids_digest(const char *db);

/* Asserts what a finished re-embed to builtin:hash-DIM leaves in db, a store of n memories:
 * memories.embedding is vector(DIM) and every memory has one vector of DIM dimensions, equal to
 * builtin:hash-DIM of its content (all n rows checked); no embedding_next or embedding_old
 * column, no state row, no re-embed trigger, no copy of memories or its indexes left, an empty
 * change log, the four foreign keys to memories there and validated, the updated_at trigger; the registry's one active model is
 * builtin:hash-DIM with a fingerprint; the ids are ids_before (rf_ids_digest) and no
 * updated_at moved off 2020-01-01; idx_memories_embedding_hnsw is an HNSW index on embedding,
 * valid and ready, and no index of memories is invalid or left over (the _next and _old ones).
 * With run_verify, `pgmemctl verify` passes too (its built-in profile: cosine opclass). */
void rf_expect_reembedded(const char *db, int n, int dim, const char *ids_before, bool run_verify);

/* When to kill a re-embed (rf_kill_reembed). Each *_when is SQL run on db (a new connection
 * each time) whose first column becomes > 0 at the moment meant. */
typedef struct {
    const char *lock_mode;   /* "ACCESS SHARE", "ACCESS EXCLUSIVE" …: a second session takes this lock on
                                lock_table and holds it until after the kill; NULL: no lock */
    const char *lock_when;   /* when to take it; NULL: before the re-embed starts */
    const char *kill_when;   /* when to kill the re-embed with SIGKILL */
    const char *lock_table;  /* the table to lock; NULL: memories */
} rf_kill_plan;

/* Runs argv (a `pgmemctl … reembed …` command line, argv[0] "pgmemctl"), takes the plan's lock
 * when it says, kills the process with SIGKILL once kill_when holds (asserting it was still
 * running then, with its stderr in the message if not), releases the lock (cancelling it if it
 * was still waiting), and waits until the re-embed's server session has ended. */
void rf_kill_reembed(const char *db, const char *const *argv, const rf_kill_plan *plan);

/* SQL for rf_kill_plan: > 0 while the re-embed's session waits for a lock on memories in
 * lock mode `mode` (pg_locks' name, e.g. "AccessExclusiveLock"); newly allocated. */
char *rf_waiting_for(const char *mode);

/* The same for a lock on another table (e.g. "pgmemctl_memories_next"). */
char *rf_waiting_for_on(const char *table, const char *mode);

#endif

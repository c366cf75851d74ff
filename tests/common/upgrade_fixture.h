/* upgrade_fixture.h — what the major-upgrade tests share: the PostgreSQL 15.18 and 17 builds with
 * pgvector (scripts/run-tests), throwaway clusters through scripts/pg-sandbox, a 15.18 memory
 * store, a 17 installation without pgvector, and readers of the upgrade's JSON document.
 *
 * Like testutil.h, every helper asserts (cr_assert) instead of returning an error, and returned
 * strings are malloc'd and freed by the caller. */
#ifndef PGMEMCTL_UPGRADE_FIXTURE_H
#define PGMEMCTL_UPGRADE_FIXTURE_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* $PGMEMCTL_PG15_MAIN_BINDIR (Debian 12's main-suite 15.18) and $PGMEMCTL_PG17_BINDIR. */
const char *uf_pg15(void);
const char *uf_pg17(void);

/* A sandbox name unique to this test process: upg<pid>-<n>-<tag>. */
char *uf_sb_name(const char *tag);

/* Runs scripts/pg-sandbox with args (NULL-terminated, at most 10, no shell) and returns its
 * stdout, trimmed; asserts exit 0. */
char *uf_sandbox(const char *const *args);

/* `pg-sandbox start [--bindir BINDIR] [--set SET] NAME` (bindir, set may be NULL): its URI. */
char *uf_sb_start(const char *name, const char *bindir, const char *set);

/* `pg-sandbox stop [--keep] NAME`. */
void uf_sb_stop(const char *name, bool keep);

/* A 15.18 sandbox NAME (with wal_level = logical when logical) holding a memory store copied
 * from a sample of n memories of 64 dimensions, with its HNSW index; returns its URI. */
char *uf_old_store(const char *name, long n, bool logical);

/* A copy of the 17 installation without pgvector's files: its bin directory (remove the
 * directory above it with tu_rmtree when done). */
char *uf_pg17_without_pgvector(void);

/* The preflight check named name in an upgrade document, NULL when absent. */
const cJSON *uf_check_named(const cJSON *doc, const char *name);

/* Whether the document's phases include name. */
bool uf_has_phase(const cJSON *doc, const char *name);

/* Deletes the memory with the smallest id (and the rows that refer to it) in the store at uri. */
void uf_delete_first_memory(const char *uri);

/* Asserts that a run's stdout is a document with status proof_failed whose proof has a "rows"
 * mismatch for memories: 300 on the old side, 299 on the new one. */
void uf_expect_one_memory_missing(const char *out);

#endif

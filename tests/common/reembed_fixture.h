/* reembed_fixture.h — shared by the re-embed tests: a memory store with builtin:hash-768
 * vectors, and a check that stored vectors equal the builtin embedder's for their content.
 * Every helper asserts (Criterion) instead of returning an error. */
#ifndef PGMEMCTL_REEMBED_FIXTURE_H
#define PGMEMCTL_REEMBED_FIXTURE_H

#include "common/testutil.h"


/* A fresh, migrated database with n memories of varied text, embedded with builtin:hash-768 by
 * `pgmemctl reembed --mode in-place` from no model (so the registry, typmod and HNSW index are
 * what reembed makes), every updated_at set to 2020-01-01 00:00:00+00, ANALYZEd. Returns its URI
 * (caller frees; drop with tu_drop_db). */
char *rf_store_768(int n);

/* Checks that memories.embedding equals builtin:hash-DIM of content, element by element
 * (1e-6), on up to 50 rows matching where (SQL). Returns the number of rows checked. */
int rf_check_vectors(const char *db, int dim, const char *where);

#endif

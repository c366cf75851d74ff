/* upgrade_fixture.c — sandboxes, the 15.18 memory store and JSON readers for the upgrade tests. */
#include "common/upgrade_fixture.h"
#include "common/testutil.h"
#include "common/vestige_fixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *uf_pg15(void) { return tu_env_dir("PGMEMCTL_PG15_MAIN_BINDIR"); }
const char *uf_pg17(void) { return tu_env_dir("PGMEMCTL_PG17_BINDIR"); }

char *uf_sb_name(const char *tag) { return tu_sandbox_name("upg", tag); }

char *uf_sandbox(const char *const *args) { return tu_sandbox(args); }

char *uf_sb_start(const char *name, const char *bindir, const char *set)
{
    const char *args[8] = {"start"};
    int n = 1;
    if (bindir) {
        args[n++] = "--bindir";
        args[n++] = bindir;
    }
    if (set) {
        args[n++] = "--set";
        args[n++] = set;
    }
    args[n++] = name;
    args[n] = NULL;
    return uf_sandbox(args);
}

void uf_sb_stop(const char *name, bool keep)
{
    free(keep ? uf_sandbox((const char *[]){"stop", "--keep", name, NULL})
              : uf_sandbox((const char *[]){"stop", name, NULL}));
}

char *uf_old_store(const char *name, long n, bool logical)
{
    char *uri = uf_sb_start(name, uf_pg15(), logical ? "wal_level=logical" : NULL);
    char *sample = vf_sample(n, 64);
    tu_run_result m = tu_run((const char *[]){"pgmemctl", "-q", "-d", uri, "migrate", "up", NULL});
    tu_expect_status(&m, 0, "migrate up in the 15.18 sandbox");
    tu_run_free(&m);
    tu_run_result r = tu_run((const char *[]){"pgmemctl", "-q", "-d", uri, "copy", "--from", sample, NULL});
    tu_expect_status(&r, 0, "copy into the 15.18 sandbox");
    tu_run_free(&r);
    free(sample);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_memories_embedding_hnsw'"),
                 1);
    cr_assert(tu_query_int(uri, "SELECT current_setting('server_version_num')::int") / 10000 == 15);
    return uri;
}

char *uf_pg17_without_pgvector(void)
{
    char *dir = tu_tempdir();
    char *root = tu_printf("%s/..", uf_pg17());
    char *cmd = tu_printf("cp -a '%s/bin' '%s/lib' '%s/share' '%s/' && rm -f '%s'/share/postgresql/extension/vector* "
                          "'%s'/lib/postgresql/vector.so && chmod 0755 '%s'",
                          root, root, root, dir, dir, dir, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    free(cmd);
    free(root);
    char *bin = tu_printf("%s/bin", dir);
    free(dir);
    return bin;
}

const cJSON *uf_check_named(const cJSON *doc, const char *name)
{
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(doc, "preflight");
    const cJSON *c;
    cJSON_ArrayForEach(c, tu_json_array(pre, "checks")) if (!strcmp(tu_json_str(c, "name"), name)) return c;
    return NULL;
}

bool uf_has_phase(const cJSON *doc, const char *name)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, tu_json_array(doc, "phases")) if (!strcmp(tu_json_str(p, "name"), name)) return true;
    return false;
}

void uf_delete_first_memory(const char *uri)
{
    tu_exec(uri, "CREATE TEMP TABLE gone AS SELECT id FROM memories ORDER BY id LIMIT 1; "
                 "DELETE FROM review_events WHERE memory_id IN (SELECT id FROM gone); "
                 "DELETE FROM scheduling WHERE memory_id IN (SELECT id FROM gone); "
                 "DELETE FROM edges WHERE source_id IN (SELECT id FROM gone) OR target_id IN (SELECT id FROM gone); "
                 "DELETE FROM memories WHERE id IN (SELECT id FROM gone)");
}

void uf_expect_one_memory_missing(const char *out)
{
    cJSON *doc = tu_json(out);
    cr_assert_str_eq(tu_json_str(doc, "status"), "proof_failed");
    const cJSON *proof = cJSON_GetObjectItemCaseSensitive(doc, "proof");
    cr_assert(!tu_json_bool(proof, "passed"));
    bool found = false;
    const cJSON *m;
    cJSON_ArrayForEach(m, tu_json_array(proof, "mismatches"))
    {
        if (!strcmp(tu_json_str(m, "check"), "rows") && tu_contains(tu_json_str(m, "object"), "memories")) {
            found = true;
            cr_assert_str_eq(tu_json_str(m, "expected"), "300");
            cr_assert_str_eq(tu_json_str(m, "actual"), "299");
        }
    }
    cr_assert(found, "no rows mismatch for memories: %s", out);
    cJSON_Delete(doc);
}

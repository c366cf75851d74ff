/* test_copy.c — `pgmemctl copy` end to end: vestige SQLite stores (real samples and hand-built
 * fixtures) copied into freshly migrated databases; asserts exit codes, the JSON summary, row
 * counts, bytes and catalog state. */
#include "common/testutil.h"
#include "common/vestige_fixture.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TestSuite(copy, .fini = tu_leak_check, .timeout = 60);

#define SECRET "sandbox-secret-pw"

/* ---- helpers -------------------------------------------------------------------------------- */

/* pgmemctl -d uri copy --from from [extra…] */
static tu_run_result run_copy(const char *uri, const char *from, const char *const *extra)
{
    const char *argv[24] = {"pgmemctl", "-d", uri, "copy", "--from", from};
    int n = 6;
    for (int i = 0; extra && extra[i]; i++) {
        cr_assert(n < 23, "too many arguments");
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    return tu_run(argv);
}

/* A copy that must exit with want; returns the parsed JSON summary. */
static cJSON *copy_expect(const char *uri, const char *from, const char *const *extra, int want)
{
    tu_run_result r = run_copy(uri, from, extra);
    cr_assert_eq(r.status, want, "copy --from %s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s", from, r.status,
                 want, r.out, r.err);
    cJSON *doc = tu_json(r.out);
    tu_run_free(&r);
    return doc;
}

/* doc at a dotted path ("tables.memories.copied"); asserts it exists. */
static const cJSON *jget(const cJSON *doc, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *o = doc;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        const cJSON *next = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, atoi(k)) : cJSON_GetObjectItemCaseSensitive(o, k);
        if (!next) {
            char *s = cJSON_Print(doc);
            cr_assert_fail("JSON has no %s:\n%s", path, s);
        }
        o = next;
    }
    return o;
}

static long long jint(const cJSON *doc, const char *path)
{
    const cJSON *o = jget(doc, path);
    cr_assert(cJSON_IsNumber(o), "%s is not a number", path);
    return (long long) o->valuedouble;
}

static const char *jstr(const cJSON *doc, const char *path)
{
    const cJSON *o = jget(doc, path);
    cr_assert(cJSON_IsString(o), "%s is not a string", path);
    return o->valuestring;
}

static bool jbool(const cJSON *doc, const char *path)
{
    const cJSON *o = jget(doc, path);
    cr_assert(cJSON_IsBool(o), "%s is not a boolean", path);
    return cJSON_IsTrue(o);
}

static bool json_array_has_string(const cJSON *arr, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) if (cJSON_IsString(e) && !strcmp(e->valuestring, s)) return true;
    return false;
}

/* printf into a new string (tu_printf with a va_list). */
static char *vfmt(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    cr_assert(n >= 0, "bad format");
    char *s = malloc((size_t) n + 1);
    cr_assert(s, "out of memory");
    vsnprintf(s, (size_t) n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

static long long q_int(const char *uri, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long long q_int(const char *uri, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vfmt(fmt, ap);
    va_end(ap);
    long long v = tu_query_int(uri, sql);
    free(sql);
    return v;
}

static char *q_text(const char *uri, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *q_text(const char *uri, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vfmt(fmt, ap);
    va_end(ap);
    char *v = tu_query_value(uri, sql);
    free(sql);
    return v;
}

static void expect_text(const char *uri, const char *want, const char *sql)
{
    char *got = tu_query_value(uri, sql);
    cr_assert(got && !strcmp(got, want), "%s\n  gave \"%s\", expected \"%s\"", sql, got ? got : "(null)", want);
    free(got);
}

/* memories, scheduling, edges row counts. */
static void table_counts(const char *uri, long long out[3])
{
    out[0] = tu_query_int(uri, "SELECT count(*) FROM memories");
    out[1] = tu_query_int(uri, "SELECT count(*) FROM scheduling");
    out[2] = tu_query_int(uri, "SELECT count(*) FROM edges");
}

/* pgvector's binary form (vector_send) of a vestige LE float32 BLOB, computed here independently
 * of src/vec.c: int16 dim, int16 0, then dim float4, all big-endian; as hex. */
static char *pgvector_hex_of_blob(const unsigned char *b, size_t len)
{
    cr_assert(len % 4 == 0 && len > 0, "bad blob length %zu", len);
    size_t dim = len / 4;
    char *hex = malloc(8 + len * 2 + 1);
    cr_assert(hex, "out of memory");
    sprintf(hex, "%04x0000", (unsigned) dim);
    char *o = hex + 8;
    for (size_t j = 0; j < dim; j++)
        for (int k = 3; k >= 0; k--)
            o += sprintf(o, "%02x", b[4 * j + (size_t) k]);
    return hex;
}

/* sorted newline-joined lines, for set comparisons */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

static char *join_sorted(char **lines, int n)
{
    qsort(lines, (size_t) n, sizeof *lines, cmp_str);
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(lines[i]) + 1;
    char *out = malloc(len);
    cr_assert(out, "out of memory");
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    return out;
}

static void free_lines(char **lines, int n)
{
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* "table|rowid|field|action" of one rejection object (JSON summary or --rejects line). */
static char *reject_line(const cJSON *o)
{
    return tu_printf("%s|%lld|%s|%s", jstr(o, "table"), jint(o, "rowid"), jstr(o, "field"), jstr(o, "action"));
}

static char *reject_lines_of_array(const cJSON *arr)
{
    int n = cJSON_GetArraySize(arr);
    char **lines = calloc((size_t) n + 1, sizeof *lines);
    cr_assert(lines, "out of memory");
    for (int i = 0; i < n; i++)
        lines[i] = reject_line(cJSON_GetArrayItem(arr, i));
    char *s = join_sorted(lines, n);
    free_lines(lines, n);
    return s;
}

/* ---- fixtures ------------------------------------------------------------------------------- */

typedef struct {
    char *path;
    int nodes, connections, edges, cards;
} good_store;

/* Nodes 1..n (cards on even i), connections i -> i+1 ("semantic"), knowledge_edges i -> i+2 for
 * i % 3 == 1 ("derived"). */
static good_store make_good_store(const char *dir, const char *name, int n, int dim)
{
    good_store g = {.path = tu_printf("%s/%s", dir, name), .nodes = n};
    vf_store *s = vf_create(g.path, VF_V4, dim);
    vf_exec(s, "BEGIN");
    for (int i = 1; i <= n; i++) {
        vf_add_good_node(s, i, i % 2 == 0);
        g.cards += i % 2 == 0;
    }
    char a[37], b[37];
    for (int i = 1; i < n; i++) {
        vf_uuid(i, a);
        vf_uuid(i + 1, b);
        vf_add_connection(s, a, b, "semantic", 0.5 + i / 100.0);
        g.connections++;
    }
    for (int i = 1; i + 2 <= n; i += 3) {
        vf_uuid(i, a);
        vf_uuid(i + 2, b);
        vf_add_edge(s, a, b, "derived", 0.25);
        g.edges++;
    }
    vf_exec(s, "COMMIT");
    vf_close(s);
    return g;
}

#define BAD_DIM 8
#define BAD_GOOD_NODES 6

/* The bad-row store: BAD_GOOD_NODES good nodes, one row for each kind of bad value, and the
 * expected rejections (sorted "table|rowid|field|action" lines) in *expected. */
typedef struct {
    char *path;
    char *expected;
    int nodes;             /* knowledge_nodes rows */
    int copied;            /* memories that must be copied */
    int row_rejects, emb_rejects, dangling, orphans, total_rejects;
    int mc_rows, ke_rows;
    int64_t epoch_rowid;   /* the node whose created_at is a bare integer */
} bad_store;

static bad_store make_bad_store(const char *dir)
{
    bad_store b = {.path = tu_printf("%s/bad.db", dir)};
    vf_store *s = vf_create(b.path, VF_V4, BAD_DIM);
    char *lines[32];
    int nl = 0;
#define EXPECT(table, rowid, field, action)                                                              \
    lines[nl++] = tu_printf("%s|%lld|%s|%s", table, (long long) (rowid), field, action)

    for (int i = 1; i <= BAD_GOOD_NODES; i++)
        vf_add_good_node(s, i, i % 2 == 1);
    b.nodes = BAD_GOOD_NODES;
    b.copied = BAD_GOOD_NODES;
    char id[37];
    int64_t r;

    /* id not a UUID */
    r = vf_insert_node(s, "not-a-uuid", NULL, 0);
    EXPECT("knowledge_nodes", r, "id", "row_skipped");
    /* invalid UTF-8 in content (Latin-1 é); the node also has an embedding, never looked at */
    vf_uuid(101, id);
    {
        vf_val ov[] = {VF_V_TEXTN("content", "caf\xe9 au lait", 12)};
        r = vf_insert_node(s, id, ov, 1);
        float v[BAD_DIM];
        vf_embedding(id, BAD_DIM, v);
        unsigned char *blob = vf_f32le(v, BAD_DIM);
        vf_add_embedding_blob(s, id, blob, sizeof v, BAD_DIM);
        free(blob);
    }
    EXPECT("knowledge_nodes", r, "content", "row_skipped");
    /* NUL byte inside TEXT (bound with an explicit length) */
    vf_uuid(102, id);
    {
        vf_val ov[] = {VF_V_TEXTN("content", "before\0after", 12)};
        r = vf_insert_node(s, id, ov, 1);
    }
    EXPECT("knowledge_nodes", r, "content", "row_skipped");
    /* NUL byte inside a BLOB stored in content */
    vf_uuid(103, id);
    {
        vf_val ov[] = {VF_V_BLOB("content", "blob\0content", 12)};
        r = vf_insert_node(s, id, ov, 1);
    }
    EXPECT("knowledge_nodes", r, "content", "row_skipped");
    /* tags: not JSON */
    vf_uuid(104, id);
    {
        vf_val ov[] = {VF_V_TEXT("tags", "[\"unterminated\",")};
        r = vf_insert_node(s, id, ov, 1);
    }
    EXPECT("knowledge_nodes", r, "tags", "row_skipped");
    /* tags: a non-string element */
    vf_uuid(105, id);
    {
        vf_val ov[] = {VF_V_TEXT("tags", "[\"ok\", 42]")};
        r = vf_insert_node(s, id, ov, 1);
        vf_add_card(s, id);
    }
    EXPECT("knowledge_nodes", r, "tags", "row_skipped");
    /* unparsable timestamp */
    vf_uuid(106, id);
    {
        vf_val ov[] = {VF_V_TEXT("created_at", "14 March 2025")};
        r = vf_insert_node(s, id, ov, 1);
    }
    EXPECT("knowledge_nodes", r, "created_at", "row_skipped");
    /* integer timestamp (a Unix epoch; TEXT affinity keeps it as the text "1700000000") */
    vf_uuid(107, id);
    {
        vf_val ov[] = {VF_V_INT("created_at", 1700000000)};
        r = vf_insert_node(s, id, ov, 1);
        b.epoch_rowid = r;
    }
    EXPECT("knowledge_nodes", r, "created_at", "row_skipped");
    b.nodes += 8;
    b.row_rejects = 8;

    /* embeddings: length not a multiple of 4, a NaN, another dimension */
    unsigned char raw[4 * BAD_DIM];
    float v[BAD_DIM];
    vf_uuid(110, id);
    r = vf_add_node(s, &(vf_node){.id = id, .content = "embedding of 31 bytes", .no_embedding = true});
    vf_embedding(id, BAD_DIM, v);
    unsigned char *blob = vf_f32le(v, BAD_DIM);
    memcpy(raw, blob, sizeof raw);
    free(blob);
    vf_add_embedding_blob(s, id, raw, 31, BAD_DIM);
    EXPECT("knowledge_nodes", r, "embedding", "embedding_nulled");
    vf_uuid(111, id);
    r = vf_add_node(s, &(vf_node){.id = id, .content = "embedding with a NaN", .no_embedding = true, .card = true});
    vf_embedding(id, BAD_DIM, v);
    blob = vf_f32le(v, BAD_DIM);
    memcpy(raw, blob, sizeof raw);
    free(blob);
    memcpy(raw + 12, "\x00\x00\xc0\x7f", 4); /* quiet NaN, little-endian */
    vf_add_embedding_blob(s, id, raw, sizeof raw, BAD_DIM);
    EXPECT("knowledge_nodes", r, "embedding", "embedding_nulled");
    vf_uuid(112, id);
    r = vf_add_node(s, &(vf_node){.id = id, .content = "embedding of another dimension", .no_embedding = true});
    vf_embedding(id, 4, v);
    blob = vf_f32le(v, 4);
    vf_add_embedding_blob(s, id, blob, 16, 4);
    free(blob);
    EXPECT("knowledge_nodes", r, "embedding", "embedding_nulled");
    b.nodes += 3;
    b.copied += 3;
    b.emb_rejects = 3;

    /* edges: good ones, and two whose endpoint is a rejected node (dangling) */
    char a[37], c[37];
    vf_uuid(1, a);
    vf_uuid(2, c);
    vf_add_connection(s, a, c, "semantic", 0.9);
    vf_uuid(3, c);
    vf_add_connection(s, a, c, "temporal", 0.4);
    vf_uuid(101, c); /* invalid UTF-8 node: rejected */
    r = vf_add_connection(s, a, c, "semantic", 0.3);
    EXPECT("memory_connections", r, "target_id", "edge_skipped");
    b.mc_rows = 3;
    vf_uuid(3, a);
    vf_uuid(4, c);
    vf_add_edge(s, a, c, "derived", 1.0);
    vf_uuid(106, a); /* bad timestamp node: rejected */
    vf_uuid(2, c);
    r = vf_add_edge(s, a, c, "causal", 0.5);
    EXPECT("knowledge_edges", r, "source_id", "edge_skipped");
    b.ke_rows = 2;
    b.dangling = 2;

    /* an fsrs card without a node */
    vf_uuid(999, id);
    r = vf_add_card(s, id);
    EXPECT("fsrs_cards", r, "memory_id", "orphan_skipped");
    b.orphans = 1;
#undef EXPECT
    vf_close(s);
    b.total_rejects = b.row_rejects + b.emb_rejects + b.dangling + b.orphans;
    cr_assert_eq(nl, b.total_rejects);
    b.expected = join_sorted(lines, nl);
    for (int i = 0; i < nl; i++)
        free(lines[i]);
    return b;
}

static void bad_store_free(bad_store *b)
{
    free(b->path);
    free(b->expected);
}

/* ---- 1. parity on a real sample ------------------------------------------------------------ */

/* A word of s that full-text search can find: purely alphabetic, at least 6 letters, and not an
 * English stop word (websearch_to_tsquery keeps it). Tried longest first; NULL if none. */
static char *search_word(const char *uri, const char *s)
{
    for (size_t want = 39; want >= 6; want--) {
        for (const char *p = s; *p;) {
            const char *q = p;
            while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))
                q++;
            if ((size_t) (q - p) == want) {
                char *w = strndup(p, want);
                if (q_int(uri, "SELECT numnode(websearch_to_tsquery('english', '%s'))", w) > 0)
                    return w;
                free(w);
            }
            p = q == p ? p + 1 : q;
        }
    }
    return NULL;
}

Test(copy, parity_real_sample)
{
    char *sample = vf_sample(2000, 64);
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, sample, NULL, 0);

    long long nodes = vf_sqlite_int(sample, "SELECT count(*) FROM knowledge_nodes");
    long long cards = vf_sqlite_int(sample, "SELECT count(*) FROM fsrs_cards");
    long long links = vf_sqlite_int(sample, "SELECT (SELECT count(*) FROM memory_connections)"
                                            " + (SELECT count(*) FROM knowledge_edges)");
    cr_assert_eq(nodes, 2000);
    long long c[3];
    table_counts(uri, c);
    cr_assert_eq(c[0], nodes, "memories %lld, source %lld", c[0], nodes);
    cr_assert_eq(c[1], nodes, "scheduling %lld (every node has FSRS state), source %lld", c[1], nodes);
    cr_assert_eq(c[2], links, "edges %lld, source %lld", c[2], links);
    cr_assert_str_eq(jstr(doc, "status"), "ok");
    cr_assert(jbool(doc, "parity.ok"));
    cr_assert_eq(jint(doc, "tables.memories.copied"), nodes);
    cr_assert_eq(jint(doc, "tables.scheduling.from_fsrs_cards"), cards);
    cr_assert_eq(jint(doc, "embeddings.copied"), nodes);
    cr_assert_eq(jint(doc, "parity.counts.memories.target"), nodes);
    cr_assert_eq(jint(doc, "parity.counts.edges.target"), links);
    cr_assert_eq(jint(doc, "rejections.count"), 0);

    /* vectors byte for byte, content, tags and timestamps, on the first, a middle and the last row */
    const int rowids[] = {1, 1234, 2000};
    for (size_t k = 0; k < sizeof rowids / sizeof rowids[0]; k++) {
        char *sql = tu_printf("SELECT id FROM knowledge_nodes WHERE rowid = %d", rowids[k]);
        char *id = vf_sqlite_text(sample, sql);
        free(sql);
        cr_assert(id, "no node at rowid %d", rowids[k]);
        sql = tu_printf("SELECT embedding FROM node_embeddings WHERE node_id = '%s'", id);
        size_t len = 0;
        unsigned char *blob = vf_sqlite_blob(sample, sql, &len);
        free(sql);
        cr_assert_eq(len, 64 * 4);
        char *want = pgvector_hex_of_blob(blob, len);
        sql = tu_printf("SELECT encode(vector_send(embedding), 'hex') FROM memories WHERE id = '%s'", id);
        expect_text(uri, want, sql);
        free(sql);

        sql = tu_printf("SELECT content FROM knowledge_nodes WHERE id = '%s'", id);
        char *content = vf_sqlite_text(sample, sql);
        free(sql);
        char *got = q_text(uri, "SELECT content FROM memories WHERE id = '%s'", id);
        cr_assert(got && content && !strcmp(got, content), "content of %s differs", id);

        sql = tu_printf("SELECT tags FROM knowledge_nodes WHERE id = '%s'", id);
        char *tags = vf_sqlite_text(sample, sql);
        free(sql);
        char *pgtags = q_text(uri, "SELECT array_to_json(tags)::text FROM memories WHERE id = '%s'", id);
        cJSON *jt = cJSON_Parse(tags), *jp = cJSON_Parse(pgtags);
        cr_assert(jt && jp && cJSON_Compare(jt, jp, true), "tags of %s: source %s, target %s", id, tags, pgtags);
        cJSON_Delete(jt);
        cJSON_Delete(jp);

        sql = tu_printf("SELECT created_at FROM knowledge_nodes WHERE id = '%s'", id);
        char *created = vf_sqlite_text(sample, sql);
        free(sql);
        char *same = q_text(uri, "SELECT (created_at = '%s'::timestamptz)::text FROM memories WHERE id = '%s'",
                            created, id);
        cr_assert(same && !strcmp(same, "true"), "created_at of %s is not %s", id, created);

        if (rowids[k] == 1234) { /* full-text search finds the memory by one of its words */
            char *word = search_word(uri, content);
            cr_assert(word, "no word to search for in: %s", content);
            cr_assert_eq(q_int(uri,
                               "SELECT count(*) FROM memories WHERE id = '%s'"
                               " AND search_vec @@ websearch_to_tsquery('english', '%s')",
                               id, word),
                         1, "websearch_to_tsquery('%s') does not find %s", word, id);
            free(word);
        }
        free(same);
        free(created);
        free(tags);
        free(pgtags);
        free(got);
        free(content);
        free(want);
        free(blob);
        free(id);
    }
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories WHERE search_vec IS NULL"), 0);

    /* registry, typmod and the HNSW index */
    char *model = vf_sqlite_text(sample, "SELECT model FROM node_embeddings LIMIT 1");
    char *want = tu_printf("%s|64", model);
    expect_text(uri, want, "SELECT name || '|' || dimension FROM embedding_model WHERE active");
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM embedding_model"), 1);
    cr_assert_str_eq(jstr(doc, "embedding_model.name"), model);
    cr_assert_eq(tu_query_int(uri, "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'memories'::regclass"
                                   " AND attname = 'embedding'"),
                 64);
    expect_text(uri, "hnsw|true",
                "SELECT a.amname || '|' || i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " JOIN pg_am a ON a.oid = c.relam WHERE i.indexrelid = to_regclass('idx_memories_embedding_hnsw')");
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_index_rebuilds"), 0);

    free(want);
    free(model);
    cJSON_Delete(doc);
    tu_drop_db(uri);
    free(uri);
    free(sample);
}

/* ---- 2. the source file is never modified -------------------------------------------------- */

static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert(d, "opendir %s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

Test(copy, source_never_modified)
{
    char *dir = tu_tempdir();
    char *sample = vf_sample(2000, 64);
    char *path = vf_copy_file(sample, dir, "store.db");
    char before[65], after[65];
    vf_sha256_file(path, before);
    struct stat st0, st1;
    cr_assert(stat(path, &st0) == 0);
    char *uri = tu_migrated_db();

    cJSON *doc = copy_expect(uri, path, (const char *[]){"--dry-run", NULL}, 0);
    cJSON_Delete(doc);
    vf_sha256_file(path, after);
    cr_assert_str_eq(after, before, "the dry run changed the source file");

    doc = copy_expect(uri, path, NULL, 0);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 2000);
    cJSON_Delete(doc);
    vf_sha256_file(path, after);
    cr_assert_str_eq(after, before, "the copy changed the source file");
    cr_assert(stat(path, &st1) == 0);
    cr_assert(st1.st_mtim.tv_sec == st0.st_mtim.tv_sec && st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec &&
                  st1.st_size == st0.st_size,
              "the source file's mtime or size changed");
    cr_assert_eq(count_dir_entries(dir), 1, "the copy left files (journal, WAL, shm) next to the source");

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(path);
    free(sample);
    free(dir);
}

/* ---- 3. re-runs copy only what is new -------------------------------------------------------- */

Test(copy, rerun_copies_only_new_rows)
{
    char *dir = tu_tempdir();
    good_store g = make_good_store(dir, "store.db", 20, 16);
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, g.path, NULL, 0);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 20);
    cJSON_Delete(doc);
    long long c0[3], c1[3];
    table_counts(uri, c0);
    cr_assert_eq(c0[0], 20);
    cr_assert_eq(c0[1], 20);
    cr_assert_eq(c0[2], g.connections + g.edges);

    doc = copy_expect(uri, g.path, NULL, 0);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 0);
    cr_assert_eq(jint(doc, "tables.memories.read"), 0);
    cr_assert_eq(jint(doc, "tables.memories.resumed_after_rowid"), 20);
    cr_assert_eq(jint(doc, "tables.edges.0.copied"), 0);
    cr_assert_eq(jint(doc, "tables.edges.1.copied"), 0);
    cr_assert_str_eq(jstr(doc, "write_path"), "direct");
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    table_counts(uri, c1);
    cr_assert(c1[0] == c0[0] && c1[1] == c0[1] && c1[2] == c0[2], "a re-run changed the counts");

    /* append 3 nodes, 2 connections and 1 edge (old <-> new nodes) */
    vf_store *s = vf_open(g.path, 16);
    for (int i = 21; i <= 23; i++)
        vf_add_good_node(s, i, i == 22);
    char a[37], b[37];
    vf_uuid(20, a);
    vf_uuid(21, b);
    vf_add_connection(s, a, b, "temporal", 0.7);
    vf_uuid(23, a);
    vf_uuid(1, b);
    vf_add_connection(s, a, b, "semantic", 0.6);
    vf_uuid(22, a);
    vf_uuid(5, b);
    vf_add_edge(s, a, b, "causal", 0.8);
    vf_close(s);

    doc = copy_expect(uri, g.path, NULL, 0);
    cr_assert_str_eq(jstr(doc, "source.identity.check"), "matched");
    cr_assert_eq(jint(doc, "tables.memories.read"), 3);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 3);
    cr_assert_eq(jint(doc, "tables.memories.resumed_after_rowid"), 20);
    cr_assert_eq(jint(doc, "tables.scheduling.copied"), 3);
    cr_assert_eq(jint(doc, "tables.edges.0.copied"), 2);
    cr_assert_eq(jint(doc, "tables.edges.1.copied"), 1);
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    table_counts(uri, c1);
    cr_assert_eq(c1[0], 23);
    cr_assert_eq(c1[1], 23);
    cr_assert_eq(c1[2], g.connections + g.edges + 3);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories WHERE id IN ('00000000-0000-4000-8000-000000000021',"
                                   " '00000000-0000-4000-8000-000000000022', '00000000-0000-4000-8000-000000000023')"),
                 3);

    doc = copy_expect(uri, g.path, NULL, 0); /* and nothing again */
    cr_assert_eq(jint(doc, "tables.memories.copied"), 0);
    cr_assert_eq(jint(doc, "tables.edges.0.copied") + jint(doc, "tables.edges.1.copied"), 0);
    cJSON_Delete(doc);
    table_counts(uri, c0);
    cr_assert(c1[0] == c0[0] && c1[1] == c0[1] && c1[2] == c0[2], "a re-run changed the counts");

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(g.path);
    free(dir);
}

/* ---- 4. bad rows are reported, the rest copied ------------------------------------------- */

Test(copy, bad_rows_reported_rest_copied)
{
    char *dir = tu_tempdir();
    bad_store b = make_bad_store(dir);
    char *uri = tu_migrated_db();
    char *rejects = tu_printf("%s/rejects.jsonl", dir);
    cJSON *doc = copy_expect(uri, b.path, (const char *[]){"--rejects", rejects, NULL}, 3);

    cr_assert_str_eq(jstr(doc, "status"), "completed_with_rejections");
    cr_assert_eq(jint(doc, "rejections.count"), b.total_rejects);
    cr_assert_eq(jint(doc, "rejections.listed"), b.total_rejects);
    cr_assert_eq(jint(doc, "rejections.recorded_by_earlier_runs"), 0);
    cr_assert_str_eq(jstr(doc, "rejections.file"), rejects);
    char *items = reject_lines_of_array(jget(doc, "rejections.items"));
    cr_assert_str_eq(items, b.expected, "rejections listed:\n%s\nexpected:\n%s", items, b.expected);
    cr_assert_eq(jint(doc, "tables.memories.read"), b.nodes);
    cr_assert_eq(jint(doc, "tables.memories.copied"), b.copied);
    cr_assert_eq(jint(doc, "tables.memories.rejected"), b.row_rejects);
    cr_assert_eq(jint(doc, "embeddings.embeddings_rejected"), b.emb_rejects);
    cr_assert_eq(jint(doc, "embeddings.copied"), BAD_GOOD_NODES);
    cr_assert_eq(jint(doc, "edges_dangling"), b.dangling);
    cr_assert_eq(jint(doc, "orphan_rows"), b.orphans);
    cr_assert_eq(jint(doc, "tables.edges.0.read"), b.mc_rows);
    cr_assert_eq(jint(doc, "tables.edges.0.copied"), b.mc_rows - 1);
    cr_assert_eq(jint(doc, "tables.edges.1.copied"), b.ke_rows - 1);
    cr_assert(jbool(doc, "parity.ok"), "parity must hold for the accepted rows");
    /* reasons say what is wrong */
    const cJSON *it;
    cJSON_ArrayForEach(it, jget(doc, "rejections.items"))
    {
        const char *reason = jstr(it, "reason");
        cr_assert(reason[0], "an empty reason");
        if (jint(it, "rowid") == b.epoch_rowid && !strcmp(jstr(it, "table"), "knowledge_nodes"))
            cr_assert(tu_contains(reason, "--epoch-unit"), "the integer timestamp's reason does not name --epoch-unit: %s",
                      reason);
    }

    /* the target: good rows all there, bad ones not, embeddings nulled */
    long long c[3];
    table_counts(uri, c);
    cr_assert_eq(c[0], b.copied);
    cr_assert_eq(c[1], b.copied, "every copied memory has its scheduling row");
    cr_assert_eq(c[2], b.mc_rows - 1 + b.ke_rows - 1);
    for (int i = 1; i <= BAD_GOOD_NODES; i++)
        cr_assert_eq(q_int(uri, "SELECT count(*) FROM memories WHERE id = '00000000-0000-4000-8000-%012d'"
                                " AND embedding IS NOT NULL", i),
                     1, "good node %d missing or without its vector", i);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories WHERE id IN ('00000000-0000-4000-8000-000000000110',"
                                   " '00000000-0000-4000-8000-000000000111', '00000000-0000-4000-8000-000000000112')"
                                   " AND embedding IS NULL"),
                 3);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories WHERE id::text LIKE '00000000-0000-4000-8000-0000000001%'"
                                   " AND id::text < '00000000-0000-4000-8000-000000000110'"),
                 0, "a rejected node was copied");

    /* pgmemctl_copy_rejects holds the same rows */
    char *db = q_text(uri, "SELECT string_agg(source_table || '|' || source_rowid || '|' || field || '|' || action"
                           " || E'\\n', '' ORDER BY source_table || '|' || source_rowid || '|' || field || '|' || action"
                           " COLLATE \"C\") FROM pgmemctl_copy_rejects");
    cr_assert(db, "pgmemctl_copy_rejects is empty");
    cr_assert_str_eq(db, b.expected, "pgmemctl_copy_rejects:\n%s\nexpected:\n%s", db, b.expected);

    /* --rejects: one JSON object per line */
    char *text = tu_read_file(rejects);
    char **lines = calloc(64, sizeof *lines);
    int n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(l);
        cr_assert(o && cJSON_IsObject(o), "--rejects line %d is not a JSON object: %s", n + 1, l);
        cr_assert(n < 63, "too many lines");
        lines[n++] = reject_line(o);
        cJSON_Delete(o);
    }
    char *file = join_sorted(lines, n);
    cr_assert_str_eq(file, b.expected, "--rejects file:\n%s\nexpected:\n%s", file, b.expected);
    free_lines(lines, n);
    free(text);
    free(file);
    cJSON_Delete(doc);

    /* a re-run: nothing new, nothing re-reported */
    doc = copy_expect(uri, b.path, NULL, 0);
    cr_assert_eq(jint(doc, "rejections.count"), 0);
    cr_assert_eq(cJSON_GetArraySize(jget(doc, "rejections.items")), 0);
    cr_assert_eq(jint(doc, "rejections.recorded_by_earlier_runs"), b.total_rejects);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 0);
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    long long c2[3];
    table_counts(uri, c2);
    cr_assert(c2[0] == c[0] && c2[1] == c[1] && c2[2] == c[2], "the re-run changed the counts");
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_rejects"), b.total_rejects);

    /* edges appended later: one to a node an earlier run rejected (dangling), two good ones */
    vf_store *s = vf_open(b.path, BAD_DIM);
    char x[37], y[37];
    vf_uuid(4, x);
    vf_uuid(102, y); /* NUL in content: rejected by the first run */
    int64_t late = vf_add_connection(s, x, y, "semantic", 0.2);
    vf_uuid(5, x);
    vf_uuid(6, y);
    vf_add_connection(s, x, y, "semantic", 0.2);
    vf_uuid(110, x); /* copied with its embedding nulled */
    vf_uuid(1, y);
    vf_add_edge(s, x, y, "derived", 0.6);
    vf_close(s);
    doc = copy_expect(uri, b.path, NULL, 3);
    cr_assert_eq(jint(doc, "rejections.count"), 1);
    char *want = tu_printf("memory_connections|%lld|target_id|edge_skipped\n", (long long) late);
    char *got = reject_lines_of_array(jget(doc, "rejections.items"));
    cr_assert_str_eq(got, want);
    cr_assert_eq(jint(doc, "edges_dangling"), 1);
    cr_assert_eq(jint(doc, "tables.edges.0.copied"), 1);
    cr_assert_eq(jint(doc, "tables.edges.1.copied"), 1);
    cr_assert_eq(jint(doc, "tables.memories.read"), 0);
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM edges"), c[2] + 2);
    free(want);
    free(got);

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(db);
    free(items);
    free(rejects);
    free(uri);
    bad_store_free(&b);
    free(dir);
}

Test(copy, integer_timestamp_needs_epoch_unit)
{
    char *dir = tu_tempdir();
    char *path = tu_printf("%s/epoch.db", dir);
    vf_store *s = vf_create(path, VF_V4, 8);
    for (int i = 1; i <= 3; i++)
        vf_add_good_node(s, i, true);
    char id[37];
    vf_uuid(7, id);
    vf_val ov[] = {VF_V_INT("created_at", 1700000000), VF_V_TEXT("content", "created at a Unix epoch")};
    int64_t rowid = vf_insert_node(s, id, ov, 2);
    vf_close(s);

    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, path, NULL, 3);
    cr_assert_eq(jint(doc, "rejections.count"), 1);
    const cJSON *it = jget(doc, "rejections.items.0");
    cr_assert_eq(jint(it, "rowid"), rowid);
    cr_assert_str_eq(jstr(it, "field"), "created_at");
    cr_assert_str_eq(jstr(it, "action"), "row_skipped");
    cr_assert(tu_contains(jstr(it, "reason"), "--epoch-unit"), "reason: %s", jstr(it, "reason"));
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 3);
    cJSON_Delete(doc);

    char *uri2 = tu_migrated_db();
    doc = copy_expect(uri2, path, (const char *[]){"--epoch-unit", "s", NULL}, 0);
    cr_assert_eq(jint(doc, "rejections.count"), 0);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 4);
    cJSON_Delete(doc);
    expect_text(uri2, "1700000000|2023-11-14 22:13:20",
                "SELECT extract(epoch FROM created_at)::bigint || '|' ||"
                " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
                " FROM memories WHERE id = '00000000-0000-4000-8000-000000000007'");
    /* the other timestamps stay exactly as the RFC 3339 text said */
    expect_text(uri2, "2025-03-15 10:00:00.000000",
                "SELECT to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
                " FROM memories WHERE id = '00000000-0000-4000-8000-000000000007'");
    expect_text(uri2, "2025-03-14 09:26:53.589793",
                "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
                " FROM memories WHERE id = '00000000-0000-4000-8000-000000000001'");

    tu_drop_db(uri);
    tu_drop_db(uri2);
    tu_rmtree(dir);
    free(uri);
    free(uri2);
    free(path);
    free(dir);
}

/* ---- 5. kill -9 during a copy, then a re-run ------------------------------------------------- */

#define KILL_N 10000
#define KILL_BATCH 500

Test(copy, kill9_then_rerun_exact_parity)
{
    char *sample = vf_sample(KILL_N, 64);
    char *dir = tu_tempdir();
    char *uri = tu_migrated_db();
    char *dbname = tu_db_name(uri);
    long long links = vf_sqlite_int(sample, "SELECT (SELECT count(*) FROM memory_connections)"
                                            " + (SELECT count(*) FROM knowledge_edges)");
    /* register the model first, so that the HNSW index exists before the load and the copy must
     * drop it (recording it for the rebuild) */
    char *model = vf_sqlite_text(sample, "SELECT model FROM node_embeddings LIMIT 1");
    char *sql = tu_printf("INSERT INTO embedding_model (name, dimension) VALUES ('%s', 64);"
                          " ALTER TABLE memories ALTER COLUMN embedding TYPE vector(64);"
                          " SELECT pgmemctl_ensure_hnsw();",
                          model);
    tu_exec(uri, sql);
    free(sql);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pg_index WHERE indexrelid ="
                                   " to_regclass('idx_memories_embedding_hnsw')"),
                 1);

    char *out = tu_printf("%s/out.json", dir), *err = tu_printf("%s/err.txt", dir);
    char batch[16];
    snprintf(batch, sizeof batch, "%d", KILL_BATCH);
    pid_t pid = vf_spawn((const char *[]){"pgmemctl", "-d", uri, "copy", "--from", sample, "--batch-size", batch, NULL},
                         out, err);
    /* wait for the first committed batch, then kill at once */
    bool progressed = false, exited = false;
    int status = -1;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long long done = tu_query_int(uri, "SELECT coalesce(sum(rows_copied), 0)::bigint FROM pgmemctl_copy_progress"
                                           " WHERE source_table = 'knowledge_nodes'");
        if (done > 0) {
            progressed = true;
            kill(pid, SIGKILL);
            break;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            exited = true;
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 90)
            break;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!exited)
        status = vf_wait(pid, 30);
    if (!progressed) {
        char *e = tu_read_file(err);
        cr_assert_fail("the copy made no visible progress before it %s (status %d):\n%s",
                       exited ? "exited" : "timed out", status, e);
    }
    cr_assert_eq(status, 128 + SIGKILL, "the copy was not killed (status %d): it must still be running when the "
                                        "first batch commits", status);

    /* the killed backend goes away (its advisory lock with it) */
    for (int i = 0; i < 1000; i++) {
        if (q_int(uri, "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND application_name = 'pgmemctl copy'",
                  dbname) == 0)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }

    /* partial state: whole batches only, each with its checkpoint */
    long long mem = tu_query_int(uri, "SELECT count(*) FROM memories");
    long long ck = tu_query_int(uri, "SELECT rows_copied FROM pgmemctl_copy_progress WHERE source_table = 'knowledge_nodes'");
    long long ck_last = tu_query_int(uri, "SELECT last_rowid FROM pgmemctl_copy_progress"
                                          " WHERE source_table = 'knowledge_nodes'");
    long long sched = tu_query_int(uri, "SELECT count(*) FROM scheduling");
    long long sched_ck = tu_query_int(uri, "SELECT rows_copied FROM pgmemctl_copy_progress WHERE source_table = 'scheduling'");
    cr_log_info("killed after %lld of %d memories (checkpoint %lld)", mem, KILL_N, ck);
    cr_assert(mem > 0 && mem < KILL_N, "after the kill memories holds %lld of %d rows", mem, KILL_N);
    cr_assert_eq(mem, ck, "memories holds %lld rows but the checkpoint says %lld", mem, ck);
    cr_assert_eq(mem % KILL_BATCH, 0, "memories holds %lld rows: not whole batches of %d", mem, KILL_BATCH);
    cr_assert_eq(ck_last, mem, "checkpoint rowid %lld after %lld rows", ck_last, mem);
    cr_assert_eq(tu_query_int(uri, "SELECT source_rows FROM pgmemctl_copy_progress WHERE source_table = 'knowledge_nodes'"),
                 mem, "the checkpoint's row count is not the rows committed");
    cr_assert_eq(sched, sched_ck, "scheduling %lld vs checkpoint %lld", sched, sched_ck);
    cr_assert_eq(sched, mem);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pg_class WHERE relname = 'idx_memories_embedding_hnsw'"), 0,
                 "the HNSW index should be dropped for the load");
    expect_text(uri, "1", "SELECT count(*) FROM pgmemctl_copy_index_rebuilds WHERE index_name ="
                          " 'idx_memories_embedding_hnsw' AND definition LIKE '%USING hnsw%'");

    /* the re-run resumes and proves parity */
    cJSON *doc = copy_expect(uri, sample, (const char *[]){"--batch-size", batch, NULL}, 0);
    cr_assert_eq(jint(doc, "tables.memories.resumed_after_rowid"), ck_last);
    cr_assert_str_eq(jstr(doc, "source.identity.check"), "matched");
    cr_assert_eq(jint(doc, "source.identity.tables.0.rows_when_copied"), mem);
    cr_assert_eq(jint(doc, "tables.memories.copied"), KILL_N - mem);
    cr_assert_eq(jint(doc, "tables.memories.read"), KILL_N - mem);
    cr_assert_str_eq(jstr(doc, "write_path"), "direct");
    cr_assert(jbool(doc, "parity.ok"));
    cr_assert_eq(jint(doc, "parity.counts.memories.target"), KILL_N);
    bool rebuilt = false;
    const cJSON *ix;
    cJSON_ArrayForEach(ix, jget(doc, "indexes")) rebuilt =
        rebuilt || (!strcmp(jstr(ix, "index"), "idx_memories_embedding_hnsw") && !strcmp(jstr(ix, "action"), "rebuilt"));
    cr_assert(rebuilt, "the re-run did not report rebuilding idx_memories_embedding_hnsw");
    cJSON_Delete(doc);
    long long c[3];
    table_counts(uri, c);
    cr_assert_eq(c[0], KILL_N);
    cr_assert_eq(c[1], KILL_N);
    cr_assert_eq(c[2], links);
    cr_assert_eq(tu_query_int(uri, "SELECT count(DISTINCT id) FROM memories"), KILL_N);
    cr_assert_eq(tu_query_int(uri, "SELECT sum(rows_copied)::bigint FROM pgmemctl_copy_progress"
                                   " WHERE source_table = 'knowledge_nodes'"),
                 KILL_N);
    expect_text(uri, "t", "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('idx_memories_embedding_hnsw')");
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_index_rebuilds"), 0);

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(out);
    free(err);
    free(model);
    free(dbname);
    free(uri);
    free(sample);
    free(dir);
}

/* ---- 6. registry conflict --------------------------------------------------------------------- */

static char *make_small_store(const char *dir, const char *name, int first, int n, int dim, const char *model)
{
    char *path = tu_printf("%s/%s", dir, name);
    vf_store *s = vf_create(path, VF_V4, dim);
    if (model)
        vf_set_model(s, model);
    for (int i = first; i < first + n; i++)
        vf_add_good_node(s, i, true);
    vf_close(s);
    return path;
}

Test(copy, registry_conflict_refused)
{
    char *dir = tu_tempdir();
    char *a = make_small_store(dir, "a.db", 1, 5, 64, NULL);
    char *b = make_small_store(dir, "b.db", 201, 5, 32, NULL);
    char *c = make_small_store(dir, "c.db", 301, 5, 64, "another-model");
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, a, NULL, 0);
    cJSON_Delete(doc);
    char *snap = tu_catalog_snapshot(uri);

    const char *others[] = {b, c};
    for (int k = 0; k < 2; k++) {
        doc = copy_expect(uri, others[k], NULL, 2);
        cr_assert_str_eq(jstr(doc, "status"), "refused");
        const char *e = jstr(doc, "error");
        cr_assert(tu_contains(e, "re-embed"), "the error does not mention re-embedding: %s", e);
        cr_assert(tu_contains(e, "vf-fixture-model"), "the error does not name the target's model: %s", e);
        char *sid = strdup(jstr(doc, "source.store_id"));
        cJSON_Delete(doc);
        cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 5);
        cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories WHERE id::text NOT LIKE '00000000-0000-4000-8000-00000000000%'"),
                     0, "rows of the refused store were written");
        cr_assert_eq(q_int(uri, "SELECT count(*) FROM pgmemctl_copy_progress WHERE source_id = '%s'", sid), 0);
        cr_assert_eq(q_int(uri, "SELECT count(*) FROM pgmemctl_copy_rejects WHERE source_id = '%s'", sid), 0);
        expect_text(uri, "vf-fixture-model|64", "SELECT string_agg(name || '|' || dimension, ',') FROM embedding_model");
        char *snap2 = tu_catalog_snapshot(uri);
        cr_assert_str_eq(snap2, snap, "the refused copy changed the catalog");
        free(snap2);
        free(sid);
    }

    free(snap);
    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(a);
    free(b);
    free(c);
    free(dir);
}

/* ---- 7. refusals before writing ------------------------------------------------------------- */

Test(copy, refuses_unmigrated_target)
{
    char *dir = tu_tempdir();
    char *path = make_small_store(dir, "a.db", 1, 3, 8, NULL);
    char *uri = tu_fresh_db();
    tu_run_result r = run_copy(uri, path, NULL);
    cr_assert_eq(r.status, 2, "exit %d\n%s", r.status, r.err);
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(jstr(doc, "status"), "refused");
    cr_assert(tu_contains(jstr(doc, "error"), "pgmemctl migrate up"), "error: %s", jstr(doc, "error"));
    cr_assert(tu_contains(r.err, "pgmemctl migrate up"), "stderr: %s", r.err);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pg_class WHERE relname IN ('memories', 'embedding_model')"), 0);
    cJSON_Delete(doc);
    tu_run_free(&r);
    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(path);
    free(dir);
}

Test(copy, refuses_bad_sources)
{
    char *dir = tu_tempdir();
    char *missing = tu_printf("%s/does-not-exist.db", dir);
    char *text = tu_write_file(dir, "notes.txt", "this is not a database\n");
    char *empty = tu_write_file(dir, "empty.db", "");
    char *other = tu_printf("%s/other.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(other, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT); INSERT INTO notes VALUES ('1', 'x')",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    char *uri = tu_migrated_db();
    char *snap = tu_catalog_snapshot(uri);

    const char *sources[] = {missing, text, empty, other};
    for (size_t k = 0; k < sizeof sources / sizeof sources[0]; k++) {
        tu_run_result r = run_copy(uri, sources[k], NULL);
        cr_assert_eq(r.status, 2, "copy --from %s: exit %d\n%s", sources[k], r.status, r.err);
        cJSON *doc = tu_json(r.out);
        cr_assert_str_eq(jstr(doc, "status"), "refused");
        cr_assert(jstr(doc, "error")[0]);
        if (sources[k] == other)
            cr_assert(tu_contains(jstr(doc, "error"), "knowledge_nodes"), "error: %s", jstr(doc, "error"));
        cJSON_Delete(doc);
        tu_run_free(&r);
    }
    struct stat st;
    cr_assert(stat(missing, &st) != 0, "copy created the missing source file");
    cr_assert_eq(tu_query_int(uri, "SELECT (SELECT count(*) FROM memories) + (SELECT count(*) FROM pgmemctl_copy_progress)"
                                   " + (SELECT count(*) FROM pgmemctl_copy_rejects) + (SELECT count(*) FROM embedding_model)"),
                 0);
    char *snap2 = tu_catalog_snapshot(uri);
    cr_assert_str_eq(snap2, snap, "a refused copy changed the catalog");

    free(snap);
    free(snap2);
    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(missing);
    free(text);
    free(empty);
    free(other);
    free(dir);
}

/* ---- 8. write paths --------------------------------------------------------------------------- */

Test(copy, write_paths)
{
    char *dir = tu_tempdir();
    good_store g = make_good_store(dir, "store.db", 20, 8);

    /* empty target: direct */
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, g.path, NULL, 0);
    cr_assert_str_eq(jstr(doc, "write_path"), "direct");
    cJSON_Delete(doc);

    /* --verify-existing on an already copied store: staging, nothing new */
    doc = copy_expect(uri, g.path, (const char *[]){"--verify-existing", NULL}, 0);
    cr_assert_str_eq(jstr(doc, "write_path"), "staging");
    cr_assert_eq(jint(doc, "tables.memories.read"), 20);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 0);
    cr_assert_eq(jint(doc, "tables.memories.already_present"), 20);
    cr_assert_eq(jint(doc, "tables.edges.0.copied") + jint(doc, "tables.edges.1.copied"), 0);
    cr_assert_eq(jint(doc, "tables.edges.0.already_present"), g.connections);
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    long long c[3];
    table_counts(uri, c);
    cr_assert(c[0] == 20 && c[1] == 20 && c[2] == g.connections + g.edges, "counts %lld/%lld/%lld", c[0], c[1], c[2]);

    /* a target holding a memory written by hand, with an id the store also has: staging */
    char *uri2 = tu_migrated_db();
    char id[37];
    vf_uuid(7, id);
    char *content = vf_content(7);
    char *vec = vf_embedding_text(id, 8);
    char *sql = tu_printf("INSERT INTO memories (id, content, tags, embedding, created_at) VALUES ('%s', '%s',"
                          " '{fixture,n7}', '%s', '" VF_CREATED_AT "')",
                          id, content, vec);
    tu_exec(uri2, sql);
    free(sql);
    doc = copy_expect(uri2, g.path, NULL, 0);
    cr_assert_str_eq(jstr(doc, "write_path"), "staging");
    cr_assert_eq(jint(doc, "tables.memories.read"), 20);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 19);
    cr_assert_eq(jint(doc, "tables.memories.already_present"), 1);
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    table_counts(uri2, c);
    cr_assert(c[0] == 20 && c[1] == 20 && c[2] == g.connections + g.edges, "counts %lld/%lld/%lld", c[0], c[1], c[2]);
    cr_assert_eq(q_int(uri2, "SELECT count(*) FROM memories WHERE id = '%s'", id), 1);

    tu_drop_db(uri);
    tu_drop_db(uri2);
    tu_rmtree(dir);
    free(vec);
    free(content);
    free(uri);
    free(uri2);
    free(g.path);
    free(dir);
}

/* ---- 9. --dry-run ------------------------------------------------------------------------------ */

Test(copy, dry_run_writes_nothing)
{
    char *dir = tu_tempdir();
    bad_store b = make_bad_store(dir);
    char *uri = tu_migrated_db();
    char *snap = tu_catalog_snapshot(uri);
    cJSON *doc = copy_expect(uri, b.path, (const char *[]){"--dry-run", NULL}, 3);
    cr_assert(jbool(doc, "dry_run"));
    cr_assert_str_eq(jstr(doc, "write_path"), "none");
    cr_assert_eq(jint(doc, "tables.memories.read"), b.nodes);
    cr_assert_eq(jint(doc, "tables.memories.rejected"), b.row_rejects);
    cr_assert_eq(jint(doc, "tables.edges.0.read"), b.mc_rows);
    cr_assert_eq(jint(doc, "tables.edges.1.read"), b.ke_rows);
    cr_assert_eq(jint(doc, "embeddings.embeddings_rejected"), b.emb_rejects);
    cr_assert_eq(jint(doc, "edges_dangling"), b.dangling);
    cr_assert_eq(jint(doc, "orphan_rows"), b.orphans);
    cr_assert_eq(jint(doc, "rejections.count"), b.total_rejects);
    char *items = reject_lines_of_array(jget(doc, "rejections.items"));
    cr_assert_str_eq(items, b.expected, "would-be rejections:\n%s\nexpected:\n%s", items, b.expected);
    cr_assert_not(jbool(doc, "parity.checked"));
    cJSON_Delete(doc);

    cr_assert_eq(tu_query_int(uri, "SELECT (SELECT count(*) FROM memories) + (SELECT count(*) FROM scheduling)"
                                   " + (SELECT count(*) FROM edges) + (SELECT count(*) FROM pgmemctl_copy_progress)"
                                   " + (SELECT count(*) FROM pgmemctl_copy_rejects) + (SELECT count(*) FROM embedding_model)"
                                   " + (SELECT count(*) FROM pgmemctl_copy_index_rebuilds)"),
                 0, "the dry run wrote rows");
    char *snap2 = tu_catalog_snapshot(uri);
    cr_assert_str_eq(snap2, snap, "the dry run changed the catalog (typmod, indexes…)");

    /* a dry run of a good store on a fresh target: exit 0, counts of what would be copied */
    good_store g = make_good_store(dir, "good.db", 10, 8);
    doc = copy_expect(uri, g.path, (const char *[]){"--dry-run", NULL}, 0);
    cr_assert_eq(jint(doc, "tables.memories.read"), 10);
    cr_assert_eq(jint(doc, "tables.edges.0.read"), g.connections);
    cr_assert_eq(jint(doc, "tables.edges.1.read"), g.edges);
    cr_assert_eq(jint(doc, "rejections.count"), 0);
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 0);

    free(snap);
    free(snap2);
    free(items);
    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(g.path);
    bad_store_free(&b);
    free(dir);
}

/* ---- 10. an older vestige ------------------------------------------------------------------- */

Test(copy, older_vestige_without_knowledge_edges)
{
    char *dir = tu_tempdir();
    char *path = tu_printf("%s/v3.db", dir);
    vf_store *s = vf_create(path, VF_V3, 8);
    for (int i = 1; i <= 5; i++)
        vf_add_good_node(s, i, i != 3);
    char a[37], b[37];
    vf_uuid(1, a);
    vf_uuid(2, b);
    vf_add_connection(s, a, b, "semantic", 0.5);
    vf_close(s);

    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, path, NULL, 0);
    const cJSON *missing = jget(doc, "source.tables_missing");
    cr_assert_eq(cJSON_GetArraySize(missing), 1);
    cr_assert(json_array_has_string(missing, "knowledge_edges"));
    const cJSON *ignored = jget(doc, "source.tables_ignored");
    cr_assert(json_array_has_string(ignored, "intentions"));
    cr_assert(json_array_has_string(ignored, "knowledge_fts"));
    cr_assert(json_array_has_string(ignored, "knowledge_fts_data"), "FTS5 shadow tables are not listed as ignored");
    cr_assert(json_array_has_string(ignored, "knowledge_fts_config"));
    const char *vestige[] = {"knowledge_nodes", "node_embeddings", "fsrs_cards", "memory_connections"};
    for (size_t k = 0; k < 4; k++)
        cr_assert_not(json_array_has_string(ignored, vestige[k]), "%s listed as ignored", vestige[k]);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 5);
    cr_assert_eq(jint(doc, "tables.edges.0.copied"), 1);
    cr_assert_eq(jint(doc, "tables.edges.1.read"), 0);
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    long long c[3];
    table_counts(uri, c);
    cr_assert(c[0] == 5 && c[1] == 5 && c[2] == 1, "counts %lld/%lld/%lld", c[0], c[1], c[2]);
    /* the columns V3 lacks are not invented; those it has land in metadata */
    expect_text(uri, "false|false|true|true",
                "SELECT (metadata ? 'scope')::text || '|' || (metadata ? 'valid_from')::text || '|' ||"
                " (metadata ? 'last_accessed')::text || '|' || (metadata ? 'memory_system')::text"
                " FROM memories WHERE id = '00000000-0000-4000-8000-000000000001'");

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(path);
    free(dir);
}

/* Source bytes that are not UTF-8 where copy quotes them (a row's key in its rejections, a
 * column name as a metadata key) and a "metadata" column that only starts with JSON: the
 * fuzz target tests/fuzz/fuzz_copy_map.c found each of these; the regression inputs are in
 * tests/fuzz/corpus/copy_map/regress-*. */
Test(copy, text_that_is_not_utf8_in_keys_and_column_names)
{
    char *dir = tu_tempdir();
    char *path = tu_printf("%s/odd.db", dir);
    vf_store *s = vf_create(path, VF_V4, 8);
    vf_add_good_node(s, 1, true);
    vf_add_good_node(s, 2, false);
    vf_exec(s, "ALTER TABLE knowledge_nodes ADD COLUMN \"src\xff\" TEXT;"
               "UPDATE knowledge_nodes SET \"src\xff\" = 'x' WHERE id = '00000000-0000-4000-8000-000000000001'");
    vf_val ov[] = {VF_V_TEXT("content", "its id is not UTF-8")};
    int64_t bad_node = vf_insert_node(s, "id-\xff", ov, 1);
    char a[37], b[37];
    vf_uuid(1, a);
    vf_uuid(2, b);
    /* 21 two-byte characters: the key shows 40 bytes of it, which must not end inside one */
    const char *type = "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc"
                       "\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc\xc3\xbc";
    int64_t bad_edge = vf_add_connection(s, a, "not-a-uuid", type, 0.5);
    int64_t ke = vf_add_edge(s, a, b, "derived", 0.25);
    char *upd = tu_printf("UPDATE knowledge_edges SET metadata = '{\"a\": 1} and more' WHERE rowid = %lld",
                          (long long) ke);
    vf_exec(s, upd);
    vf_close(s);

    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, path, NULL, 3);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 2);
    cr_assert_eq(jint(doc, "rejections.count"), 2);
    cJSON_Delete(doc);
    char *want = tu_printf("knowledge_nodes|%lld|id|id-\\xFF\nmemory_connections|%lld|target_id|%s -> not-a-uuid (%.40s)\n",
                           (long long) bad_node, (long long) bad_edge, a, type);
    expect_text(uri, want,
                "SELECT string_agg(source_table || '|' || source_rowid || '|' || field || '|' || source_key || E'\\n', ''"
                " ORDER BY source_table) FROM pgmemctl_copy_rejects");
    expect_text(uri, "x", "SELECT metadata->>'src\\xFF' FROM memories WHERE id = '00000000-0000-4000-8000-000000000001'");
    expect_text(uri, "{\"a\": 1} and more",
                "SELECT metadata->>'metadata' FROM edges WHERE metadata->>'source_table' = 'knowledge_edges'");

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(want);
    free(upd);
    free(uri);
    free(path);
    free(dir);
}

/* ---- 11. the password is never printed ----------------------------------------------------- */

static void assert_no_secret(const tu_run_result *r)
{
    cr_assert_not(tu_contains(r->out, SECRET), "the password appears on stdout:\n%s", r->out);
    cr_assert_not(tu_contains(r->err, SECRET), "the password appears on stderr:\n%s", r->err);
}

Test(copy, password_never_printed)
{
    char *dir = tu_tempdir();
    char *path = make_small_store(dir, "a.db", 1, 5, 8, NULL);
    char *rejects = tu_printf("%s/rejects.jsonl", dir);
    char *uri = tu_migrated_db();
    char *host = tu_test_host(), *port = tu_test_port(), *dbname = tu_db_name(uri);
    const char *fmt = strchr(host, ':') ? "postgresql://pgmemctl_pw:" SECRET "@[%s]:%s/%s"
                                        : "postgresql://pgmemctl_pw:" SECRET "@%s:%s/%s";
    char *pwuri = tu_printf(fmt, host, port, dbname);

    /* -v: debug output, where a connection string would most likely leak */
    tu_run_result r = tu_run((const char *[]){"pgmemctl", "-v", "-d", pwuri, "copy", "--from", path, "--rejects",
                                              rejects, NULL});
    cr_assert_eq(r.status, 0, "exit %d\n%s", r.status, r.err);
    assert_no_secret(&r);
    cJSON *doc = tu_json(r.out);
    cr_assert(tu_contains(jstr(doc, "target"), "pgmemctl_pw"), "target: %s", jstr(doc, "target"));
    cr_assert_eq(jint(doc, "tables.memories.copied"), 5);
    cJSON_Delete(doc);
    tu_run_free(&r);
    char *rej = tu_read_file(rejects);
    cr_assert_not(tu_contains(rej, SECRET));
    free(rej);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 5);

    /* failures print the target too: refused (not migrated) and a connection error */
    char *fresh = tu_fresh_db(), *fresh_name = tu_db_name(fresh);
    char *pwfresh = tu_printf(fmt, host, port, fresh_name);
    r = run_copy(pwfresh, path, NULL);
    cr_assert_eq(r.status, 2, "exit %d\n%s", r.status, r.err);
    assert_no_secret(&r);
    tu_run_free(&r);
    char *pwnone = tu_printf(fmt, host, port, "no_such_database_here");
    r = run_copy(pwnone, path, NULL);
    cr_assert_eq(r.status, 1, "exit %d\n%s", r.status, r.err);
    assert_no_secret(&r);
    tu_run_free(&r);

    tu_drop_db(uri);
    tu_drop_db(fresh);
    tu_rmtree(dir);
    free(pwnone);
    free(pwfresh);
    free(fresh_name);
    free(fresh);
    free(pwuri);
    free(dbname);
    free(port);
    free(host);
    free(uri);
    free(rejects);
    free(path);
    free(dir);
}

/* ---- 12. an index left dropped by a crash is rebuilt --------------------------------------- */

Test(copy, rebuilds_index_left_dropped)
{
    char *dir = tu_tempdir();
    char *path = make_small_store(dir, "a.db", 1, 10, 8, NULL);
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, path, NULL, 0);
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pg_class WHERE relname = 'idx_memories_embedding_hnsw'"), 1);

    /* a crash after the drop: the index is gone, its (distinctive) definition recorded */
    tu_exec(uri, "DROP INDEX idx_memories_embedding_hnsw;"
                 " INSERT INTO pgmemctl_copy_index_rebuilds (index_name, definition) VALUES"
                 " ('idx_memories_embedding_hnsw', 'CREATE INDEX idx_memories_embedding_hnsw ON public.memories"
                 " USING hnsw (embedding vector_cosine_ops) WITH (m=''8'', ef_construction=''32'')')");
    doc = copy_expect(uri, path, NULL, 0);
    bool rebuilt = false;
    const cJSON *ix;
    cJSON_ArrayForEach(ix, jget(doc, "indexes")) rebuilt =
        rebuilt || (!strcmp(jstr(ix, "index"), "idx_memories_embedding_hnsw") && !strcmp(jstr(ix, "action"), "rebuilt"));
    cr_assert(rebuilt, "the run did not report rebuilding the index");
    cr_assert_eq(jint(doc, "tables.memories.copied"), 0);
    cJSON_Delete(doc);
    expect_text(uri, "t", "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('idx_memories_embedding_hnsw')");
    char *def = tu_query_value(uri, "SELECT pg_get_indexdef('idx_memories_embedding_hnsw'::regclass)");
    cr_assert(tu_contains(def, "m='8'") && tu_contains(def, "hnsw"), "not rebuilt from the record: %s", def);
    free(def);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_index_rebuilds"), 0);

    /* a crash after the rebuild but before the record was deleted: only the record goes */
    tu_exec(uri, "INSERT INTO pgmemctl_copy_index_rebuilds (index_name, definition) VALUES"
                 " ('idx_memories_embedding_hnsw', 'CREATE INDEX idx_memories_embedding_hnsw ON public.memories"
                 " USING hnsw (embedding vector_l2_ops)')");
    doc = copy_expect(uri, path, NULL, 0);
    cJSON_Delete(doc);
    def = tu_query_value(uri, "SELECT pg_get_indexdef('idx_memories_embedding_hnsw'::regclass)");
    cr_assert(tu_contains(def, "vector_cosine_ops") && tu_contains(def, "m='8'"), "the index was replaced: %s", def);
    free(def);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM pgmemctl_copy_index_rebuilds"), 0);

    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(path);
    free(dir);
}

/* ---- --rejects FILE that cannot be written ----------------------------------------------- */

Test(copy, rejects_file_write_error_fails)
{
    char *dir = tu_tempdir();
    bad_store b = make_bad_store(dir);
    char *uri = tu_migrated_db();
    /* /dev/full: every write fails with ENOSPC; the rejections must not be lost silently */
    tu_run_result r = run_copy(uri, b.path, (const char *[]){"--rejects", "/dev/full", NULL});
    cr_assert_eq(r.status, 1, "exit %d, expected 1 (the rejects file could not be written)\n%s", r.status, r.err);
    cr_assert(tu_contains(r.err, "/dev/full"), "stderr does not name the rejects file:\n%s", r.err);
    tu_run_free(&r);
    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    bad_store_free(&b);
    free(dir);
}

/* ---- source changed after the copy: parity says so, --verify-existing brings it up to date ---- */

Test(copy, verify_existing_updates_changed_rows)
{
    char *dir = tu_tempdir();
    char *path = make_small_store(dir, "store.db", 1, 30, 8, NULL);
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, path, NULL, 0);
    cJSON_Delete(doc);

    /* vestige keeps running: one memory is edited, one gets reviewed */
    char id3[37], id7[37];
    vf_uuid(3, id3);
    vf_uuid(7, id7);
    vf_store *s = vf_open(path, 8);
    char *sql = tu_printf("UPDATE knowledge_nodes SET content = 'edited after the copy',"
                          " updated_at = '2026-01-02T03:04:05.000006+00:00' WHERE id = '%s';"
                          "UPDATE fsrs_cards SET reps = reps + 5, stability = 42.5 WHERE memory_id = '%s'",
                          id3, id7);
    vf_exec(s, sql);
    free(sql);
    vf_close(s);

    /* a plain re-run copies nothing new, and its parity check (a store this small is sampled
     * whole) finds both differences and names the remedy */
    doc = copy_expect(uri, path, NULL, 1);
    cr_assert(!jbool(doc, "parity.ok"));
    cr_assert_eq(jint(doc, "parity.sample.content_mismatches"), 1);
    cr_assert_eq(jint(doc, "parity.sample.fsrs_mismatches"), 1);
    cr_assert(tu_contains(jstr(doc, "error"), "--verify-existing"), "no remedy named: %s", jstr(doc, "error"));
    cJSON_Delete(doc);
    char *q = tu_printf("SELECT content FROM memories WHERE id = '%s'", id3);
    char *v = tu_query_value(uri, q);
    cr_assert_str_neq(v, "edited after the copy");
    free(v);

    doc = copy_expect(uri, path, (const char *[]){"--verify-existing", NULL}, 0);
    cr_assert_str_eq(jstr(doc, "write_path"), "staging");
    cr_assert_eq(jint(doc, "tables.memories.copied"), 0);
    cr_assert_eq(jint(doc, "tables.memories.updated"), 1);
    cr_assert_eq(jint(doc, "tables.scheduling.updated"), 1);
    cr_assert_eq(jint(doc, "tables.memories.already_present"), 29);
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    v = tu_query_value(uri, q);
    cr_assert_str_eq(v, "edited after the copy");
    free(v);
    free(q);
    /* the source's updated_at is kept (the trigger leaves an explicitly set updated_at alone) */
    q = tu_printf("SELECT to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM memories"
                  " WHERE id = '%s'", id3);
    v = tu_query_value(uri, q);
    cr_assert_str_eq(v, "2026-01-02 03:04:05.000006");
    free(v);
    free(q);
    q = tu_printf("SELECT reps || '/' || stability FROM scheduling WHERE memory_id = '%s'", id7);
    v = tu_query_value(uri, q);
    cr_assert(v && strstr(v, "/42.5"), "scheduling not updated: %s", v ? v : "(null)");
    free(v);
    free(q);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 30);

    /* and a plain re-run is now clean */
    doc = copy_expect(uri, path, NULL, 0);
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(path);
    free(dir);
}

/* ---- a store smaller than any sample grows: still recognised, still the direct path ------------ */

Test(copy, small_store_keeps_identity_when_it_grows)
{
    char *dir = tu_tempdir();
    char *path = make_small_store(dir, "tiny.db", 1, 3, 8, NULL);
    char *uri = tu_migrated_db();
    cJSON *doc = copy_expect(uri, path, NULL, 0);
    char *id1 = strdup(jstr(doc, "source.store_id"));
    cJSON_Delete(doc);
    vf_store *s = vf_open(path, 8);
    vf_add_good_node(s, 4, true);
    vf_add_good_node(s, 5, false);
    vf_close(s);
    doc = copy_expect(uri, path, NULL, 0);
    cr_assert_str_eq(jstr(doc, "source.store_id"), id1);
    cr_assert_str_eq(jstr(doc, "source.identity.check"), "matched");
    cr_assert_str_eq(jstr(doc, "write_path"), "direct");
    cr_assert_eq(jint(doc, "tables.memories.copied_by_earlier_runs"), 3);
    cr_assert_eq(jint(doc, "tables.memories.copied"), 2);
    cr_assert(jbool(doc, "parity.ok"));
    cJSON_Delete(doc);
    cr_assert_eq(tu_query_int(uri, "SELECT count(*) FROM memories"), 5);
    free(id1);
    tu_drop_db(uri);
    tu_rmtree(dir);
    free(uri);
    free(path);
    free(dir);
}

/* ---- failures before a result still print one JSON document ---------------------------------- */

Test(copy, failures_print_one_json_document)
{
    char *dir = tu_tempdir();
    char *path = make_small_store(dir, "s.db", 1, 2, 8, NULL);
    char *bad = tu_printf("postgresql://pgmemctl_pw:%s@127.0.0.1:1/nosuchdb", SECRET);
    tu_run_result r = tu_run((const char *[]){"pgmemctl", "-d", bad, "copy", "--from", path, NULL});
    cr_assert_eq(r.status, 1);
    cJSON *doc = tu_json(r.out);
    cr_assert_str_eq(jstr(doc, "command"), "copy");
    cr_assert_str_eq(jstr(doc, "status"), "failed");
    cr_assert_eq(jint(doc, "exit_code"), 1);
    cr_assert(tu_contains(jstr(doc, "error"), "could not connect"));
    cr_assert(!tu_contains(r.out, SECRET) && !tu_contains(r.err, SECRET), "password printed");
    cJSON_Delete(doc);
    tu_run_free(&r);

    r = tu_run((const char *[]){"pgmemctl", "copy", "--batch-size", "0", "--from", path, NULL});
    cr_assert_eq(r.status, 2);
    doc = tu_json(r.out);
    cr_assert_str_eq(jstr(doc, "status"), "usage_error");
    cr_assert(tu_contains(jstr(doc, "error"), "--batch-size"));
    cJSON_Delete(doc);
    tu_run_free(&r);
    free(bad);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

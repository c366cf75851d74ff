/* vestige_fixture.c — vestige SQLite stores built from C for the copy tests, raw bad values, a
 * cached real sample, SQLite/SHA-256 shortcuts and a spawn with a pid (see vestige_fixture.h). */
#include "common/vestige_fixture.h"
#include "common/testutil.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct vf_store {
    sqlite3 *db;
    int dim;
    char model[128];
};

/* ---- schema --------------------------------------------------------------------------------
 * knowledge_nodes as vestige's migrations V1-V4 leave it (same columns and order as
 * src/sample/pgmemctl-sample.c); v4 marks the columns an older (V3) file lacks. */
static const struct {
    const char *def;
    bool v4;
} NODE_COLS[] = {
    {"id TEXT PRIMARY KEY", false},
    {"content TEXT NOT NULL", false},
    {"node_type TEXT NOT NULL DEFAULT 'fact'", false},
    {"created_at TEXT NOT NULL", false},
    {"updated_at TEXT NOT NULL", false},
    {"last_accessed TEXT NOT NULL", false},
    {"stability REAL DEFAULT 1.0", false},
    {"difficulty REAL DEFAULT 5.0", false},
    {"reps INTEGER DEFAULT 0", false},
    {"lapses INTEGER DEFAULT 0", false},
    {"learning_state TEXT DEFAULT 'new'", false},
    {"storage_strength REAL DEFAULT 1.0", false},
    {"retrieval_strength REAL DEFAULT 1.0", false},
    {"retention_strength REAL DEFAULT 1.0", false},
    {"sentiment_score REAL DEFAULT 0.0", false},
    {"sentiment_magnitude REAL DEFAULT 0.0", false},
    {"next_review TEXT", false},
    {"scheduled_days INTEGER DEFAULT 0", false},
    {"source TEXT", false},
    {"tags TEXT DEFAULT '[]'", false},
    {"has_embedding INTEGER DEFAULT 0", false},
    {"embedding_model TEXT", false},
    {"valid_from TEXT", true},
    {"valid_until TEXT", true},
    {"scope TEXT DEFAULT 'user'", true},
    {"memory_system TEXT DEFAULT 'semantic'", false},
};

static const char SCHEMA_COMMON[] =
    "CREATE TABLE node_embeddings (\n"
    "  node_id TEXT PRIMARY KEY REFERENCES knowledge_nodes(id) ON DELETE CASCADE,\n"
    "  embedding BLOB NOT NULL,\n"
    "  dimensions INTEGER NOT NULL DEFAULT 768,\n"
    "  model TEXT NOT NULL DEFAULT 'BAAI/bge-base-en-v1.5',\n"
    "  created_at TEXT NOT NULL,\n"
    "  version INTEGER DEFAULT 1\n"
    ");\n"
    "CREATE TABLE fsrs_cards (\n"
    "  memory_id TEXT PRIMARY KEY,\n"
    "  difficulty REAL NOT NULL DEFAULT 5.0,\n"
    "  stability REAL NOT NULL DEFAULT 1.0,\n"
    "  state TEXT NOT NULL DEFAULT 'new',\n"
    "  reps INTEGER DEFAULT 0,\n"
    "  lapses INTEGER DEFAULT 0,\n"
    "  last_review TEXT,\n"
    "  due_date TEXT,\n"
    "  elapsed_days INTEGER DEFAULT 0,\n"
    "  scheduled_days INTEGER DEFAULT 0,\n"
    "  FOREIGN KEY (memory_id) REFERENCES knowledge_nodes(id) ON DELETE CASCADE\n"
    ");\n"
    "CREATE TABLE memory_connections (\n"
    "  source_id TEXT NOT NULL,\n"
    "  target_id TEXT NOT NULL,\n"
    "  strength REAL NOT NULL,\n"
    "  link_type TEXT NOT NULL,\n"
    "  created_at TEXT NOT NULL,\n"
    "  last_activated TEXT NOT NULL,\n"
    "  activation_count INTEGER DEFAULT 0,\n"
    "  PRIMARY KEY (source_id, target_id),\n"
    "  FOREIGN KEY (source_id) REFERENCES knowledge_nodes(id) ON DELETE CASCADE,\n"
    "  FOREIGN KEY (target_id) REFERENCES knowledge_nodes(id) ON DELETE CASCADE\n"
    ");\n"
    "CREATE TABLE intentions (\n"
    "  id TEXT PRIMARY KEY,\n"
    "  content TEXT NOT NULL,\n"
    "  trigger_type TEXT NOT NULL,\n"
    "  trigger_data TEXT NOT NULL,\n"
    "  priority INTEGER NOT NULL DEFAULT 2,\n"
    "  status TEXT NOT NULL DEFAULT 'active',\n"
    "  created_at TEXT NOT NULL\n"
    ");\n"
    "INSERT INTO intentions (id, content, trigger_type, trigger_data, created_at) VALUES\n"
    "  ('9e0c3c1a-0000-4000-8000-000000000001', 'remind me', 'time', '{}', '2025-03-14T09:26:53Z');\n"
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5(\n"
    "  id, content, tags, content='knowledge_nodes', content_rowid='rowid', tokenize='porter ascii'\n"
    ");\n";

static const char SCHEMA_V4_EDGES[] =
    "CREATE TABLE knowledge_edges (\n"
    "  id TEXT PRIMARY KEY,\n"
    "  source_id TEXT NOT NULL,\n"
    "  target_id TEXT NOT NULL,\n"
    "  edge_type TEXT NOT NULL,\n"
    "  weight REAL NOT NULL DEFAULT 1.0,\n"
    "  valid_from TEXT,\n"
    "  valid_until TEXT,\n"
    "  created_at TEXT NOT NULL,\n"
    "  created_by TEXT,\n"
    "  confidence REAL NOT NULL DEFAULT 1.0,\n"
    "  metadata TEXT,\n"
    "  FOREIGN KEY (source_id) REFERENCES knowledge_nodes(id) ON DELETE CASCADE,\n"
    "  FOREIGN KEY (target_id) REFERENCES knowledge_nodes(id) ON DELETE CASCADE\n"
    ");\n";

/* ---- store ---------------------------------------------------------------------------------- */

static vf_store *store_open(const char *path, int dim, int flags)
{
    vf_store *s = calloc(1, sizeof *s);
    cr_assert(s, "out of memory");
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    cr_assert(rc == SQLITE_OK, "sqlite3_open_v2 %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    s->dim = dim;
    snprintf(s->model, sizeof s->model, "vf-fixture-model");
    return s;
}

void vf_exec(vf_store *s, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
    cr_assert(rc == SQLITE_OK, "sqlite: %s\nin: %.400s", err ? err : sqlite3_errstr(rc), sql);
}

vf_store *vf_create(const char *path, vf_shape shape, int dim)
{
    struct stat st;
    cr_assert(stat(path, &st) != 0, "vf_create: %s already exists", path);
    vf_store *s = store_open(path, dim, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    char ddl[4096];
    size_t n = (size_t) snprintf(ddl, sizeof ddl, "CREATE TABLE knowledge_nodes (\n");
    bool first = true;
    for (size_t i = 0; i < sizeof NODE_COLS / sizeof NODE_COLS[0]; i++) {
        if (shape == VF_V3 && NODE_COLS[i].v4)
            continue;
        n += (size_t) snprintf(ddl + n, sizeof ddl - n, "%s  %s", first ? "" : ",\n", NODE_COLS[i].def);
        first = false;
    }
    snprintf(ddl + n, sizeof ddl - n, "\n);\n");
    vf_exec(s, ddl);
    vf_exec(s, SCHEMA_COMMON);
    if (shape == VF_V4)
        vf_exec(s, SCHEMA_V4_EDGES);
    return s;
}

vf_store *vf_open(const char *path, int dim)
{
    return store_open(path, dim, SQLITE_OPEN_READWRITE);
}

void vf_set_model(vf_store *s, const char *model)
{
    snprintf(s->model, sizeof s->model, "%s", model);
}

void vf_close(vf_store *s)
{
    if (!s)
        return;
    int rc = sqlite3_close(s->db);
    cr_assert(rc == SQLITE_OK, "sqlite3_close: %s", sqlite3_errstr(rc));
    free(s);
}

sqlite3 *vf_db(vf_store *s) { return s->db; }

/* ---- raw rows ------------------------------------------------------------------------------- */

static void bind_val(vf_store *s, sqlite3_stmt *st, int i, const vf_val *v)
{
    int rc = SQLITE_OK;
    switch (v->kind) {
    case VF_NULL: rc = sqlite3_bind_null(st, i); break;
    case VF_INT: rc = sqlite3_bind_int64(st, i, v->i); break;
    case VF_REAL: rc = sqlite3_bind_double(st, i, v->r); break;
    case VF_TEXT: rc = sqlite3_bind_text(st, i, v->p, v->len, SQLITE_TRANSIENT); break;
    case VF_BLOB: rc = sqlite3_bind_blob(st, i, v->p, v->len, SQLITE_TRANSIENT); break;
    }
    cr_assert(rc == SQLITE_OK, "bind %s: %s", v->col, sqlite3_errmsg(s->db));
}

int64_t vf_insert(vf_store *s, const char *table, const vf_val *vals, int nvals)
{
    size_t cap = 256 + (size_t) nvals * 80, n = 0;
    char *sql = malloc(cap);
    cr_assert(sql, "out of memory");
    n += (size_t) snprintf(sql + n, cap - n, "INSERT INTO \"%s\" (", table);
    for (int i = 0; i < nvals; i++)
        n += (size_t) snprintf(sql + n, cap - n, "%s\"%s\"", i ? ", " : "", vals[i].col);
    n += (size_t) snprintf(sql + n, cap - n, ") VALUES (");
    for (int i = 0; i < nvals; i++)
        n += (size_t) snprintf(sql + n, cap - n, "%s?%d", i ? ", " : "", i + 1);
    snprintf(sql + n, cap - n, ")");
    cr_assert(n < cap - 2, "vf_insert: SQL too long");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    cr_assert(rc == SQLITE_OK, "prepare %s: %s", sql, sqlite3_errmsg(s->db));
    for (int i = 0; i < nvals; i++)
        bind_val(s, st, i + 1, &vals[i]);
    rc = sqlite3_step(st);
    cr_assert(rc == SQLITE_DONE, "insert into %s: %s", table, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    free(sql);
    return (int64_t) sqlite3_last_insert_rowid(s->db);
}

int64_t vf_insert_node(vf_store *s, const char *id, const vf_val *overrides, int noverrides)
{
    vf_val vals[32];
    int n = 0;
    vals[n++] = VF_V_TEXT("id", id);
    vals[n++] = VF_V_TEXT("content", "a raw fixture node");
    vals[n++] = VF_V_TEXT("created_at", VF_CREATED_AT);
    vals[n++] = VF_V_TEXT("updated_at", VF_UPDATED_AT);
    vals[n++] = VF_V_TEXT("last_accessed", VF_UPDATED_AT);
    vals[n++] = VF_V_TEXT("tags", "[]");
    for (int k = 0; k < noverrides; k++) {
        int at = -1;
        for (int i = 0; i < n; i++)
            if (!strcmp(vals[i].col, overrides[k].col))
                at = i;
        if (at < 0) {
            cr_assert(n < (int) (sizeof vals / sizeof vals[0]), "vf_insert_node: too many columns");
            at = n++;
        }
        vals[at] = overrides[k];
    }
    return vf_insert(s, "knowledge_nodes", vals, n);
}

/* ---- deterministic values ------------------------------------------------------------------- */

void vf_uuid(int i, char out[37])
{
    snprintf(out, 37, "00000000-0000-4000-8000-%012d", i);
}

char *vf_content(int i)
{
    static const char *const words[] = {"astronomy", "botany", "chemistry", "geology", "linguistics",
                                        "meteorology", "oceanography", "zoology"};
    return tu_printf("fixture memory %d: the quick brown fox studies %s", i,
                     words[(unsigned) i % (sizeof words / sizeof words[0])]);
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void vf_embedding(const char *id, int dim, float *out)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *) id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    bool nonzero = false;
    for (int j = 0; j < dim; j++) {
        int k = (int) (mix64(h + (uint64_t) j) % 32) - 16;
        out[j] = (float) k / 16.0f;
        nonzero = nonzero || k != 0;
    }
    if (!nonzero)
        out[0] = 0.5f;
}

char *vf_embedding_text(const char *id, int dim)
{
    float *v = malloc((size_t) dim * sizeof *v);
    char *t = malloc((size_t) dim * 16 + 3);
    cr_assert(v && t, "out of memory");
    vf_embedding(id, dim, v);
    size_t n = 0;
    t[n++] = '[';
    for (int j = 0; j < dim; j++)
        n += (size_t) sprintf(t + n, "%s%.9g", j ? "," : "", (double) v[j]);
    t[n++] = ']';
    t[n] = '\0';
    free(v);
    return t;
}

unsigned char *vf_f32le(const float *v, int dim)
{
    unsigned char *b = malloc((size_t) dim * 4 + 1);
    cr_assert(b, "out of memory");
    for (int j = 0; j < dim; j++) {
        uint32_t bits;
        memcpy(&bits, &v[j], 4);
        b[4 * j] = (unsigned char) bits;
        b[4 * j + 1] = (unsigned char) (bits >> 8);
        b[4 * j + 2] = (unsigned char) (bits >> 16);
        b[4 * j + 3] = (unsigned char) (bits >> 24);
    }
    return b;
}

/* ---- good rows ------------------------------------------------------------------------------ */

int64_t vf_add_embedding_blob(vf_store *s, const char *node_id, const void *blob, size_t len, int dimensions)
{
    vf_val v[] = {VF_V_TEXT("node_id", node_id), VF_V_BLOB("embedding", blob, len), VF_V_INT("dimensions", dimensions),
                  VF_V_TEXT("model", s->model), VF_V_TEXT("created_at", VF_UPDATED_AT)};
    return vf_insert(s, "node_embeddings", v, (int) (sizeof v / sizeof v[0]));
}

int64_t vf_add_card(vf_store *s, const char *memory_id)
{
    vf_val v[] = {VF_V_TEXT("memory_id", memory_id),
                  VF_V_REAL("difficulty", 4.5),
                  VF_V_REAL("stability", 12.25),
                  VF_V_TEXT("state", "review"),
                  VF_V_INT("reps", 3),
                  VF_V_INT("lapses", 1),
                  VF_V_TEXT("last_review", "2025-03-15T10:00:00.250000+00:00"),
                  VF_V_TEXT("due_date", "2025-03-27T16:00:00+00:00"),
                  VF_V_INT("elapsed_days", 2),
                  VF_V_INT("scheduled_days", 12)};
    return vf_insert(s, "fsrs_cards", v, (int) (sizeof v / sizeof v[0]));
}

int64_t vf_add_node(vf_store *s, const vf_node *n)
{
    cr_assert(n->id && n->content, "vf_add_node: id and content are required");
    vf_val ov[] = {
        VF_V_TEXT("content", n->content),
        VF_V_TEXT("node_type", n->node_type ? n->node_type : "fact"),
        VF_V_TEXT("tags", n->tags ? n->tags : "[]"),
        VF_V_TEXT("created_at", n->created_at ? n->created_at : VF_CREATED_AT),
        VF_V_TEXT("updated_at", n->updated_at ? n->updated_at : VF_UPDATED_AT),
        VF_V_TEXT("source", "vestige-fixture"),
        VF_V_INT("has_embedding", n->no_embedding ? 0 : 1),
        VF_V_REAL("stability", 2.5),
        VF_V_REAL("difficulty", 6.0),
        VF_V_INT("reps", 2),
        VF_V_INT("lapses", 0),
        VF_V_TEXT("learning_state", "learning"),
        VF_V_TEXT("next_review", "2025-03-20T00:00:00Z"),
    };
    int64_t rowid = vf_insert_node(s, n->id, ov, (int) (sizeof ov / sizeof ov[0]));
    if (!n->no_embedding) {
        float *v = malloc((size_t) s->dim * sizeof *v);
        cr_assert(v, "out of memory");
        if (n->embedding)
            memcpy(v, n->embedding, (size_t) s->dim * sizeof *v);
        else
            vf_embedding(n->id, s->dim, v);
        unsigned char *blob = vf_f32le(v, s->dim);
        vf_add_embedding_blob(s, n->id, blob, (size_t) s->dim * 4, s->dim);
        free(blob);
        free(v);
    }
    if (n->card)
        vf_add_card(s, n->id);
    return rowid;
}

int64_t vf_add_good_node(vf_store *s, int i, bool card)
{
    char id[37], tags[64];
    vf_uuid(i, id);
    snprintf(tags, sizeof tags, "[\"fixture\",\"n%d\"]", i);
    char *content = vf_content(i);
    vf_node n = {.id = id, .content = content, .tags = tags, .card = card};
    int64_t rowid = vf_add_node(s, &n);
    free(content);
    return rowid;
}

int64_t vf_add_connection(vf_store *s, const char *source_id, const char *target_id, const char *link_type,
                          double strength)
{
    vf_val v[] = {VF_V_TEXT("source_id", source_id),        VF_V_TEXT("target_id", target_id),
                  VF_V_REAL("strength", strength),          VF_V_TEXT("link_type", link_type),
                  VF_V_TEXT("created_at", VF_CREATED_AT),   VF_V_TEXT("last_activated", VF_UPDATED_AT),
                  VF_V_INT("activation_count", 4)};
    return vf_insert(s, "memory_connections", v, (int) (sizeof v / sizeof v[0]));
}

int64_t vf_add_edge(vf_store *s, const char *source_id, const char *target_id, const char *edge_type, double weight)
{
    static unsigned counter;
    char id[37];
    snprintf(id, sizeof id, "e0000000-0000-4000-8000-%012u", ++counter);
    vf_val v[] = {VF_V_TEXT("id", id),
                  VF_V_TEXT("source_id", source_id),
                  VF_V_TEXT("target_id", target_id),
                  VF_V_TEXT("edge_type", edge_type),
                  VF_V_REAL("weight", weight),
                  VF_V_TEXT("created_at", VF_CREATED_AT),
                  VF_V_TEXT("created_by", "fixture"),
                  VF_V_REAL("confidence", 0.75),
                  VF_V_TEXT("metadata", "{\"why\":\"fixture\"}")};
    return vf_insert(s, "knowledge_edges", v, (int) (sizeof v / sizeof v[0]));
}

/* ---- reading SQLite files ------------------------------------------------------------------- */

static sqlite3_stmt *ro_query(const char *path, const char *sql, sqlite3 **db)
{
    int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL);
    cr_assert(rc == SQLITE_OK, "open %s: %s", path, *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(*db, sql, -1, &st, NULL);
    cr_assert(rc == SQLITE_OK, "%s: %s (in %s)", path, sqlite3_errmsg(*db), sql);
    rc = sqlite3_step(st);
    cr_assert(rc == SQLITE_ROW || rc == SQLITE_DONE, "%s: %s (in %s)", path, sqlite3_errmsg(*db), sql);
    return st;
}

static void ro_done(sqlite3 *db, sqlite3_stmt *st)
{
    sqlite3_finalize(st);
    sqlite3_close(db);
}

long long vf_sqlite_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = ro_query(path, sql, &db);
    bool ok = sqlite3_data_count(st) > 0 && sqlite3_column_type(st, 0) == SQLITE_INTEGER;
    long long v = ok ? sqlite3_column_int64(st, 0) : 0;
    ro_done(db, st);
    cr_assert(ok, "%s: %s gave no integer", path, sql);
    return v;
}

char *vf_sqlite_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = ro_query(path, sql, &db);
    char *out = NULL;
    if (sqlite3_data_count(st) > 0 && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        out = malloc((size_t) n + 1);
        cr_assert(out, "out of memory");
        memcpy(out, t, (size_t) n);
        out[n] = '\0';
    }
    ro_done(db, st);
    return out;
}

unsigned char *vf_sqlite_blob(const char *path, const char *sql, size_t *len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = ro_query(path, sql, &db);
    bool ok = sqlite3_data_count(st) > 0 && sqlite3_column_type(st, 0) == SQLITE_BLOB;
    unsigned char *out = NULL;
    *len = 0;
    if (ok) {
        *len = (size_t) sqlite3_column_bytes(st, 0);
        out = malloc(*len + 1);
        cr_assert(out, "out of memory");
        memcpy(out, sqlite3_column_blob(st, 0), *len);
    }
    ro_done(db, st);
    cr_assert(ok, "%s: %s gave no BLOB", path, sql);
    return out;
}

/* ---- files ---------------------------------------------------------------------------------- */

void vf_sha256_file(const char *path, char out[65])
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "open %s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cr_assert(ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), "EVP_DigestInit_ex failed");
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        cr_assert(EVP_DigestUpdate(ctx, buf, n), "EVP_DigestUpdate failed");
    cr_assert(!ferror(f), "read %s: %s", path, strerror(errno));
    fclose(f);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    cr_assert(EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32, "EVP_DigestFinal_ex failed");
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < mdlen; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = '\0';
}

char *vf_copy_file(const char *src, const char *dir, const char *name)
{
    char *dst = tu_printf("%s/%s", dir, name);
    FILE *in = fopen(src, "rb");
    cr_assert(in, "open %s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    cr_assert(out, "create %s: %s", dst, strerror(errno));
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        cr_assert(fwrite(buf, 1, n, out) == n, "write %s: %s", dst, strerror(errno));
    cr_assert(!ferror(in), "read %s", src);
    fclose(in);
    cr_assert(fclose(out) == 0, "close %s: %s", dst, strerror(errno));
    return dst;
}

static char *sample_binary(void)
{
    char *p = tu_printf("%s/bin/pgmemctl-sample", tu_repo());
    if (access(p, X_OK) == 0)
        return p;
    free(p);
    const char *bin = tu_bin();
    const char *slash = strrchr(bin, '/');
    p = tu_printf("%.*s/pgmemctl-sample", slash ? (int) (slash - bin) : 1, slash ? bin : ".");
    cr_assert(access(p, X_OK) == 0, "no pgmemctl-sample binary (looked in %s/bin and next to %s): run make",
              tu_repo(), bin);
    return p;
}

/* Removes cache entries for the same n/dim built by another binary. */
static void prune_cache(const char *dir, const char *prefix, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || !strcmp(e->d_name, keep))
            continue;
        char *p = tu_printf("%s/%s", dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
}

char *vf_sample(long n, int dim)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = tu_printf("%s/pgmemctl-test-samples-%ld", tmp && *tmp ? tmp : "/tmp", (long) getuid());
    if (mkdir(dir, 0700) != 0)
        cr_assert(errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
    struct stat st;
    cr_assert(lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid(),
              "%s is not a directory of ours", dir);
    char *bin = sample_binary();
    struct stat bst;
    cr_assert(stat(bin, &bst) == 0, "stat %s: %s", bin, strerror(errno));
    char *prefix = tu_printf("vestige-n%ld-d%d-s1-", n, dim);
    char *name = tu_printf("%s%lld-%lld.db", prefix, (long long) bst.st_size, (long long) bst.st_mtime);
    char *path = tu_printf("%s/%s", dir, name);

    char *lockp = tu_printf("%s/lock", dir);
    int lock = open(lockp, O_RDWR | O_CREAT, 0600);
    cr_assert(lock >= 0, "open %s: %s", lockp, strerror(errno));
    while (flock(lock, LOCK_EX) != 0)
        cr_assert(errno == EINTR, "flock %s: %s", lockp, strerror(errno));
    if (access(path, R_OK) != 0) {
        char *part = tu_printf("%s.part.%ld", path, (long) getpid());
        char *log = tu_printf("%s.log", part);
        char ns[32], ds[16];
        snprintf(ns, sizeof ns, "%ld", n);
        snprintf(ds, sizeof ds, "%d", dim);
        unlink(part);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        cr_assert(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            int nul = open("/dev/null", O_RDONLY);
            if (fd < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                _exit(126);
            execl("/bin/bash", "bash", "-c",
                  "set -o pipefail; apt-cache dumpavail | \"$0\" --out \"$1\" -n \"$2\" --dim \"$3\" --seed 1",
                  bin, part, ns, ds, (char *) NULL);
            _exit(127);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
            cr_assert(errno == EINTR, "waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char *out = tu_read_file(log);
            unlink(part);
            cr_assert_fail("building the sample store (apt-cache dumpavail | %s -n %ld --dim %d) failed:\n%s", bin, n,
                           dim, out);
        }
        unlink(log);
        cr_assert(rename(part, path) == 0, "rename %s: %s", part, strerror(errno));
        prune_cache(dir, prefix, name);
        free(part);
        free(log);
    }
    flock(lock, LOCK_UN);
    close(lock);
    free(lockp);
    free(prefix);
    free(name);
    free(bin);
    free(dir);
    return path;
}

/* ---- a child process with a known pid ------------------------------------------------------- */

pid_t vf_spawn(const char *const *argv, const char *out_path, const char *err_path)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof *env);
    cr_assert(env, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        /* no libpq or pgmemctl settings from the test's environment, but the test hooks */
        if ((strncmp(environ[i], "PG", 2) != 0 || !strncmp(environ[i], "PGMEMCTL_REEMBED_PAUSE_AFTER_SWAP=", 34)) &&
            strncmp(environ[i], "DATABASE_URL=", 13) != 0)
            env[k++] = environ[i];
    const char *bin = tu_bin();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
            chdir("/") != 0)
            _exit(126);
        execve(bin, (char *const *) argv, env);
        _exit(127);
    }
    free(env);
    return pid;
}

int vf_wait(pid_t pid, double timeout_s)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st = 0;
    bool killed = false;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        cr_assert(w >= 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!killed && (double) (now.tv_sec - t0.tv_sec) + (double) (now.tv_nsec - t0.tv_nsec) / 1e9 > timeout_s) {
            kill(pid, SIGKILL);
            killed = true;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert(!killed, "pid %ld still running after %.0f s: killed", (long) pid, timeout_s);
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
}

/* fuzz_copy_map.c — fuzz target for copy's row mapping (copy_map.c): a vestige store of one
 * row per table, built in an in-memory SQLite database from the input, read through the same
 * node and edge queries, copy_map_node / copy_map_edge and COPY encoders that `pgmemctl copy`
 * uses. Every value may have any SQLite storage class, and the column set is the input's, so
 * the queries' identifier quoting and the metadata of unknown columns are reached as well.
 *
 * Input: lines (corpus: tests/fuzz/corpus/copy_map/, the format in tests/fuzz/README.md)
 *   TABLE.COLUMN[:TYPE]=VALUE   TABLE: node (knowledge_nodes), emb (node_embeddings),
 *                               card (fsrs_cards), mc (memory_connections), ke (knowledge_edges);
 *                               TYPE: t text (default; escapes \n \t \\ \xHH), i integer,
 *                               f real, x BLOB in hex, n NULL
 *   @epoch s|ms   @dim N   @model NAME   the map_ctx (integer timestamps' unit, the store's model)
 *   # comment
 * emb.node_id and card.memory_id default to node.id. */
#include "copy_map.h"
#include "fuzz/fuzz.h"
#include "log.h"
#include "sqlite_values.h"
#include "vec.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* FUZZ_VERBOSE=1 (for writing seeds): pgmemctl's own messages, and each row's outcome on stderr. */
static bool verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    log_set_level(verbose ? LOG_DEBUG : LOG_QUIET);
    return 0;
}

static void show(const char *table, const char *key, const map_outcome *o, const char *metadata)
{
    if (!verbose)
        return;
    fprintf(stderr, "%s %s: %s\n", table, key, o->row_ok ? "mapped" : "rejected");
    for (int k = 0; k < o->nrej; k++)
        fprintf(stderr, "  %s: %s (%s)\n", o->rej[k].field, o->rej[k].reason, o->rej[k].action);
    if (metadata)
        fprintf(stderr, "  metadata %s\n", metadata);
}

#define MAX_COLS 48

typedef struct {
    char *name;
    int type;             /* SQLITE_TEXT, SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_BLOB, SQLITE_NULL */
    unsigned char *bytes; /* TEXT and BLOB (owned) */
    size_t len;
    sqlite3_int64 i;
    double d;
} fz_value;

typedef struct {
    const char *prefix, *table;
    fz_value col[MAX_COLS];
    int n;
} fz_table;

enum { T_NODE, T_EMB, T_CARD, T_MC, T_KE, T_COUNT };

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes v[0, len) by type into out->bytes (NUL-terminated copy for strto*). */
static bool decode_value(char type, const unsigned char *v, size_t len, fz_value *out)
{
    unsigned char *b = malloc(len + 1);
    if (!b)
        return false;
    size_t n = 0;
    if (type == 'x') {
        int hi = -1;
        for (size_t k = 0; k < len; k++) {
            int h = hexval(v[k]);
            if (h < 0)
                continue;
            if (hi < 0) {
                hi = h;
            } else {
                b[n++] = (unsigned char) (hi << 4 | h);
                hi = -1;
            }
        }
    } else if (type == 't') {
        for (size_t k = 0; k < len; k++) {
            if (v[k] != '\\' || k + 1 == len) {
                b[n++] = v[k];
                continue;
            }
            unsigned char e = v[++k];
            if (e == 'n')
                b[n++] = '\n';
            else if (e == 't')
                b[n++] = '\t';
            else if (e == 'x' && k + 2 < len && hexval(v[k + 1]) >= 0 && hexval(v[k + 2]) >= 0) {
                b[n++] = (unsigned char) (hexval(v[k + 1]) << 4 | hexval(v[k + 2]));
                k += 2;
            } else
                b[n++] = e;
        }
    } else {
        memcpy(b, v, len);
        n = len;
    }
    b[n] = '\0';
    out->bytes = b;
    out->len = n;
    switch (type) {
    case 'i': out->type = SQLITE_INTEGER; out->i = strtoll((char *) b, NULL, 10); break;
    case 'f': out->type = SQLITE_FLOAT; out->d = strtod((char *) b, NULL); break;
    case 'x': out->type = SQLITE_BLOB; break;
    case 'n': out->type = SQLITE_NULL; break;
    default: out->type = SQLITE_TEXT; break;
    }
    return true;
}

static fz_value *find(fz_table *t, const char *name)
{
    for (int k = 0; k < t->n; k++)
        if (!strcmp(t->col[k].name, name))
            return &t->col[k];
    return NULL;
}

/* Adds (or replaces) column name of t. */
static bool set_col(fz_table *t, const char *name, size_t nlen, char type, const unsigned char *v, size_t vlen)
{
    if (nlen == 0 || memchr(name, '\0', nlen))
        return true; /* not a column name SQLite can declare: the line is ignored */
    char *nm = strndup(name, nlen);
    if (!nm)
        return false;
    fz_value *c = find(t, nm);
    if (c) {
        free(nm);
        free(c->bytes);
        nm = c->name;
    } else {
        if (t->n == MAX_COLS) {
            free(nm);
            return true;
        }
        c = &t->col[t->n++];
    }
    memset(c, 0, sizeof *c);
    c->name = nm;
    return decode_value(type, v, vlen, c);
}

/* Adds column name to t as a copy of from, unless t has it already or from is NULL. */
static bool copy_col(fz_table *t, const char *name, const fz_value *from)
{
    if (!from || find(t, name) || t->n == MAX_COLS)
        return true;
    fz_value *c = &t->col[t->n];
    *c = *from;
    c->name = strdup(name);
    c->bytes = malloc(from->len + 1);
    if (!c->name || !c->bytes) {
        free(c->name);
        free(c->bytes);
        return false;
    }
    memcpy(c->bytes, from->bytes, from->len + 1);
    t->n++;
    return true;
}

static void tables_free(fz_table *t)
{
    for (int k = 0; k < T_COUNT; k++)
        for (int c = 0; c < t[k].n; c++) {
            free(t[k].col[c].name);
            free(t[k].col[c].bytes);
        }
}

/* CREATE TABLE and INSERT the one row of t; false when SQLite refuses (duplicate column …). */
static bool create_and_insert(sqlite3 *db, const fz_table *t)
{
    sqlite3_str *ddl = sqlite3_str_new(db), *ins = sqlite3_str_new(db);
    sqlite3_str_appendf(ddl, "CREATE TABLE \"%w\" (", t->table);
    sqlite3_str_appendf(ins, "INSERT INTO \"%w\" VALUES (", t->table);
    for (int c = 0; c < t->n; c++) {
        sqlite3_str_appendf(ddl, "%s\"%w\"", c ? ", " : "", t->col[c].name);
        sqlite3_str_appendf(ins, "%s?", c ? ", " : "");
    }
    sqlite3_str_appendall(ddl, ")");
    sqlite3_str_appendall(ins, ")");
    char *d = sqlite3_str_finish(ddl), *i = sqlite3_str_finish(ins);
    bool ok = d && i && sqlite3_exec(db, d, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_stmt *st = NULL;
    ok = ok && sqlite3_prepare_v2(db, i, -1, &st, NULL) == SQLITE_OK;
    for (int c = 0; ok && c < t->n; c++) {
        const fz_value *v = &t->col[c];
        switch (v->type) {
        case SQLITE_INTEGER: sqlite3_bind_int64(st, c + 1, v->i); break;
        case SQLITE_FLOAT: sqlite3_bind_double(st, c + 1, v->d); break;
        case SQLITE_BLOB: sqlite3_bind_blob(st, c + 1, v->bytes, (int) v->len, SQLITE_STATIC); break;
        case SQLITE_TEXT: sqlite3_bind_text(st, c + 1, (const char *) v->bytes, (int) v->len, SQLITE_STATIC); break;
        default: sqlite3_bind_null(st, c + 1); break;
        }
    }
    ok = ok && sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    sqlite3_free(d);
    sqlite3_free(i);
    return ok;
}

static void check_outcome(const map_outcome *o)
{
    FUZZ_CHECK(o->nrej >= 0 && o->nrej <= (int) (sizeof o->rej / sizeof o->rej[0]));
    for (int k = 0; k < o->nrej; k++) {
        FUZZ_CHECK(o->rej[k].action != NULL && o->rej[k].reason[0] != '\0');
        FUZZ_CHECK(memchr(o->rej[k].field, '\0', sizeof o->rej[k].field) != NULL);
        FUZZ_CHECK(memchr(o->rej[k].reason, '\0', sizeof o->rej[k].reason) != NULL);
        /* copy stores them in pgmemctl_copy_rejects (text) and prints them in JSON */
        FUZZ_CHECK(text_check(o->rej[k].field, strlen(o->rej[k].field), NULL, 0));
        FUZZ_CHECK(text_check(o->rej[k].reason, strlen(o->rej[k].reason), NULL, 0));
    }
}

/* The row's key goes with each of its rejections (pgmemctl_copy_rejects.source_key, JSON). */
static void check_key(const char *key, size_t size)
{
    FUZZ_CHECK(memchr(key, '\0', size) != NULL);
    FUZZ_CHECK(text_check(key, strlen(key), NULL, 0));
}

/* A source column named "metadata" holding a JSON document is kept as that JSON, any other text
 * as the string itself: never a part of it. */
static void check_metadata_column(const cJSON *meta, const fz_table *t)
{
    const fz_value *src = find((fz_table *) t, "metadata");
    if (!src || src->type != SQLITE_TEXT || src->len == 0)
        return;
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(meta, "metadata");
    FUZZ_CHECK(got != NULL);
    const char *end = NULL;
    cJSON *want = cJSON_ParseWithLengthOpts((const char *) src->bytes, src->len, &end, false);
    size_t tail = want ? (size_t) (end - (const char *) src->bytes) : 0;
    while (want && tail < src->len && strchr(" \t\r\n", src->bytes[tail]))
        tail++;
    if (want && tail == src->len) {
        char *a = cJSON_PrintUnformatted(got), *b = cJSON_PrintUnformatted(want);
        FUZZ_CHECK(a && b && strcmp(a, b) == 0);
        free(a);
        free(b);
    } else {
        FUZZ_CHECK(cJSON_IsString(got) && strlen(got->valuestring) == src->len &&
                   memcmp(got->valuestring, src->bytes, src->len) == 0);
    }
    cJSON_Delete(want);
}

/* What PostgreSQL's jsonb input takes: a JSON object, valid UTF-8 (keys too), no \u0000 escape. */
static cJSON *check_metadata(const char *metadata)
{
    FUZZ_CHECK(metadata != NULL);
    cJSON *meta = cJSON_Parse(metadata);
    FUZZ_CHECK(cJSON_IsObject(meta));
    size_t len = strlen(metadata);
    FUZZ_CHECK(text_check(metadata, len, NULL, 0));
    for (size_t k = 0; k + 1 < len; k++) /* valid JSON: every backslash starts an escape */
        if (metadata[k] == '\\') {
            FUZZ_CHECK(!(metadata[k + 1] == 'u' && !strncmp(metadata + k + 2, "0000", 4)));
            k++;
        }
    return meta;
}

static void check_node(const node_values *v, const map_outcome *o, const map_ctx *ctx, const fz_table *node)
{
    check_outcome(o);
    check_key(v->key, sizeof v->key);
    if (!o->row_ok)
        return;
    FUZZ_CHECK(text_check(v->content, v->content_len, NULL, 0));
    FUZZ_CHECK(text_check(v->node_type, v->node_type_len, NULL, 0));
    for (int k = 0; k < v->tags.n; k++)
        FUZZ_CHECK(text_check(v->tags.items[k], v->tags.lens[k], NULL, 0));
    FUZZ_CHECK(v->created_at >= PARSE_TS_MIN_USEC && v->created_at <= PARSE_TS_MAX_USEC);
    FUZZ_CHECK(v->updated_at >= PARSE_TS_MIN_USEC && v->updated_at <= PARSE_TS_MAX_USEC);
    cJSON *meta = check_metadata(v->metadata);
    check_metadata_column(meta, node);
    cJSON_Delete(meta);
    if (v->emb) {
        FUZZ_CHECK(vec_check_f32le(v->emb, (size_t) v->emb_dim * 4, NULL) == VEC_OK);
        FUZZ_CHECK(ctx->dim == 0 || v->emb_dim == ctx->dim);
    }
    if (v->sched_ok) {
        const sched_values *s = &v->sched;
        FUZZ_CHECK(isfinite(s->stability) && isfinite(s->difficulty));
        FUZZ_CHECK(!s->has_retrievability || isfinite(s->retrievability));
        FUZZ_CHECK(text_check(s->state, s->state_len, NULL, 0));
        FUZZ_CHECK(!s->has_last_review || (s->last_review >= PARSE_TS_MIN_USEC && s->last_review <= PARSE_TS_MAX_USEC));
        FUZZ_CHECK(!s->has_next_review || (s->next_review >= PARSE_TS_MIN_USEC && s->next_review <= PARSE_TS_MAX_USEC));
    }
    pgbuf b;
    pgbuf_init(&b);
    copy_encode_memory(&b, v);
    if (v->sched_ok)
        copy_encode_schedule(&b, v);
    FUZZ_CHECK(!b.oom && b.len > 0);
    pgbuf_free(&b);
}

static void run_nodes(sqlite_src *src, const map_ctx *ctx, const fz_table *node)
{
    node_query q;
    if (!node_query_build(src, &q)) {
        node_query_free(&q);
        return;
    }
    const char *sqls[2] = {q.sql, q.sql_one};
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *st = sqlite_src_prepare(src, sqls[k]);
        if (!st)
            continue;
        sqlite3_bind_int64(st, 1, k == 0 ? 0 : 1);
        sqlite3_bind_int64(st, 2, 100);
        node_values v;
        memset(&v, 0, sizeof v);
        while (sqlite3_step(st) == SQLITE_ROW) {
            node_values_clear(&v);
            map_outcome o;
            FUZZ_CHECK(copy_map_node(&q, st, ctx, &v, &o));
            show("knowledge_nodes", v.key, &o, v.metadata);
            check_node(&v, &o, ctx, node);
        }
        node_values_clear(&v);
        sqlite3_finalize(st);
    }
    node_query_free(&q);
}

static void run_edges(sqlite_src *src, const map_ctx *ctx, const fz_table *t)
{
    edge_query q;
    if (!edge_query_build(src, t->table, &q)) {
        edge_query_free(&q);
        return;
    }
    sqlite3_stmt *st = sqlite_src_prepare(src, q.sql);
    if (st) {
        sqlite3_bind_int64(st, 1, 0);
        sqlite3_bind_int64(st, 2, 100);
        while (sqlite3_step(st) == SQLITE_ROW) {
            edge_values v;
            memset(&v, 0, sizeof v);
            map_outcome o;
            FUZZ_CHECK(copy_map_edge(&q, st, ctx, &v, &o));
            show(t->table, v.key, &o, v.metadata);
            check_outcome(&o);
            check_key(v.key, sizeof v.key);
            if (o.row_ok) {
                FUZZ_CHECK(text_check(v.type, v.type_len, NULL, 0) && isfinite(v.weight));
                FUZZ_CHECK(v.created_at >= PARSE_TS_MIN_USEC && v.created_at <= PARSE_TS_MAX_USEC);
                cJSON *meta = check_metadata(v.metadata);
                const cJSON *tbl = cJSON_GetObjectItemCaseSensitive(meta, "source_table");
                FUZZ_CHECK(cJSON_IsString(tbl));
                check_metadata_column(meta, t);
                cJSON_Delete(meta);
                pgbuf b;
                pgbuf_init(&b);
                copy_encode_edge(&b, &v);
                FUZZ_CHECK(!b.oom && b.len > 0);
                pgbuf_free(&b);
            }
            edge_values_clear(&v);
        }
        sqlite3_finalize(st);
    }
    edge_query_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_table t[T_COUNT] = {
        {"node", "knowledge_nodes", {{0}}, 0}, {"emb", "node_embeddings", {{0}}, 0},
        {"card", "fsrs_cards", {{0}}, 0},      {"mc", "memory_connections", {{0}}, 0},
        {"ke", "knowledge_edges", {{0}}, 0},
    };
    map_ctx ctx = {NULL, 0, EPOCH_NONE};
    char model[128] = "";
    bool ok = true;
    for (size_t pos = 0; ok && pos < size;) {
        const unsigned char *line = data + pos;
        const unsigned char *nl = memchr(line, '\n', size - pos);
        size_t len = nl ? (size_t) (nl - line) : size - pos;
        pos += len + 1;
        if (len == 0 || line[0] == '#')
            continue;
        if (line[0] == '@') {
            char opt[160];
            snprintf(opt, sizeof opt, "%.*s", (int) (len < 159 ? len : 159), (const char *) line);
            if (!strncmp(opt, "@epoch ", 7))
                ctx.epoch = !strcmp(opt + 7, "s") ? EPOCH_S : !strcmp(opt + 7, "ms") ? EPOCH_MS : EPOCH_NONE;
            else if (!strncmp(opt, "@dim ", 5))
                ctx.dim = atoi(opt + 5);
            else if (!strncmp(opt, "@model ", 7)) {
                snprintf(model, sizeof model, "%.100s", opt + 7);
                ctx.model = model;
            }
            continue;
        }
        const unsigned char *dot = memchr(line, '.', len), *eq = memchr(line, '=', len);
        if (!dot || !eq || eq < dot)
            continue;
        int tk = -1;
        for (int k = 0; k < T_COUNT; k++)
            if ((size_t) (dot - line) == strlen(t[k].prefix) && !memcmp(line, t[k].prefix, (size_t) (dot - line)))
                tk = k;
        if (tk < 0)
            continue;
        const unsigned char *name = dot + 1, *colon = memchr(name, ':', (size_t) (eq - name));
        char type = 't';
        size_t nlen = (size_t) ((colon ? colon : eq) - name);
        if (colon && eq - colon == 2)
            type = (char) colon[1];
        if (!strchr("tifxn", type))
            type = 't';
        ok = set_col(&t[tk], (const char *) name, nlen, type, eq + 1, len - (size_t) (eq + 1 - line));
    }
    FUZZ_CHECK(ok); /* out of memory in the harness */
    const fz_value *node_id = find(&t[T_NODE], "id");
    if (t[T_EMB].n)
        FUZZ_CHECK(copy_col(&t[T_EMB], "node_id", node_id));
    if (t[T_CARD].n)
        FUZZ_CHECK(copy_col(&t[T_CARD], "memory_id", node_id));

    sqlite3 *db = NULL;
    FUZZ_CHECK(sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) == SQLITE_OK);
    bool built = t[T_NODE].n > 0;
    for (int k = 0; built && k < T_COUNT; k++)
        built = t[k].n == 0 || create_and_insert(db, &t[k]);
    if (verbose && !built)
        fprintf(stderr, "SQLite refused the tables: %s\n", sqlite3_errmsg(db));
    if (built) {
        sqlite_src src = {db, (char *) "fuzz.db"};
        run_nodes(&src, &ctx, &t[T_NODE]);
        if (t[T_MC].n)
            run_edges(&src, &ctx, &t[T_MC]);
        if (t[T_KE].n)
            run_edges(&src, &ctx, &t[T_KE]);
    }
    sqlite3_close(db);
    tables_free(t);
    return 0;
}

/* copy_map.c — validating and encoding vestige rows for COPY into the memory-store schema. */
#include "copy_map.h"
#include "log.h"
#include "vec.h"

#include <cjson/cJSON.h>

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static void add_rej(map_outcome *o, const char *field, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_rej(map_outcome *o, const char *field, const char *action, const char *fmt, ...)
{
    if (o->nrej >= (int) (sizeof o->rej / sizeof o->rej[0]))
        return;
    map_reject *r = &o->rej[o->nrej++];
    /* both are stored in PostgreSQL text and printed in JSON: valid UTF-8, whatever they quote */
    text_printable(field, strlen(field), r->field, sizeof r->field);
    r->action = action;
    char reason[sizeof r->reason];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    text_printable(reason, strlen(reason), r->reason, sizeof r->reason);
}

static int find_col(char **cols, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(cols[i], name))
            return i;
    return -1;
}

/* Appends "n.\"col\"" with embedded quotes doubled. */
static bool append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return false;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return true;
}

static bool append_ident(char **buf, size_t *len, size_t *cap, const char *prefix, const char *ident)
{
    if (!append(buf, len, cap, prefix) || !append(buf, len, cap, "\""))
        return false;
    for (const char *p = ident; *p; p++) {
        char c[3] = {*p, *p == '"' ? '"' : 0, 0};
        if (!append(buf, len, cap, c))
            return false;
    }
    return append(buf, len, cap, "\"");
}

/* Reads text of column i as (pointer, length); false when NULL. */
static bool col_text(sqlite3_stmt *st, int i, const char **s, size_t *len)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return false;
    *s = (const char *) sqlite3_column_text(st, i);
    *len = (size_t) sqlite3_column_bytes(st, i);
    if (!*s) {
        *s = "";
        *len = 0;
    }
    return true;
}

/* Timestamp of column i: TEXT (RFC 3339 / SQLite form / digits) or INTEGER (epoch, needs a unit). */
static ts_status col_timestamp(sqlite3_stmt *st, int i, epoch_unit unit, int64_t *us)
{
    int t = sqlite3_column_type(st, i);
    if (t == SQLITE_INTEGER)
        return timestamp_from_epoch(sqlite3_column_int64(st, i), unit, us);
    if (t == SQLITE_TEXT) {
        const char *s = "";
        size_t len = 0;
        col_text(st, i, &s, &len);
        return parse_timestamp_any(s, len, unit, us);
    }
    return TS_BAD_FORMAT;
}

static const char *ts_reason(ts_status s)
{
    return s == TS_NEEDS_UNIT ? "an integer timestamp: say its unit with --epoch-unit s|ms" : ts_status_text(s);
}

/* Numeric column: NULL → def; INTEGER/REAL → value; TEXT/BLOB → error. */
static bool col_double(sqlite3_stmt *st, int i, double def, double *out)
{
    if (i < 0) {
        *out = def;
        return true;
    }
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL: *out = def; return true;
    case SQLITE_INTEGER:
    case SQLITE_FLOAT: *out = sqlite3_column_double(st, i); return isfinite(*out);
    default: return false;
    }
}

static bool col_int32(sqlite3_stmt *st, int i, int32_t def, int32_t *out)
{
    if (i < 0) {
        *out = def;
        return true;
    }
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL: *out = def; return true;
    case SQLITE_INTEGER: {
        int64_t v = sqlite3_column_int64(st, i);
        if (v < INT32_MIN || v > INT32_MAX)
            return false;
        *out = (int32_t) v;
        return true;
    }
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, i);
        if (!isfinite(d) || d != floor(d) || d < INT32_MIN || d > INT32_MAX)
            return false;
        *out = (int32_t) d;
        return true;
    }
    default: return false;
    }
}

/* JSON value of a source column for metadata; NULL on OOM; sets *bad when text is invalid. */
static cJSON *json_of_col(sqlite3_stmt *st, int i, const char *name, char *why, size_t whylen, bool *bad)
{
    char buf[32];
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL: return cJSON_CreateNull();
    case SQLITE_INTEGER:
        snprintf(buf, sizeof buf, "%" PRId64, (int64_t) sqlite3_column_int64(st, i));
        return cJSON_CreateRaw(buf); /* exact, even beyond 2^53 */
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, i);
        if (isfinite(d))
            return cJSON_CreateNumber(d);
        return cJSON_CreateString(isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
    }
    case SQLITE_BLOB: {
        int n = sqlite3_column_bytes(st, i);
        const unsigned char *p = sqlite3_column_blob(st, i);
        char *hex = malloc((size_t) n * 2 + 3);
        if (!hex)
            return NULL;
        strcpy(hex, "\\x");
        for (int k = 0; k < n; k++)
            sprintf(hex + 2 + 2 * k, "%02x", p[k]);
        cJSON *j = cJSON_CreateString(hex);
        free(hex);
        return j;
    }
    default: {
        const char *s = "";
        size_t len = 0;
        col_text(st, i, &s, &len);
        if (!text_check(s, len, why, whylen)) {
            *bad = true;
            return cJSON_CreateNull();
        }
        if (!strcmp(name, "metadata") && len > 0) { /* a JSON document kept as JSON */
            const char *end = NULL;
            cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, false);
            while (j && end < s + len && strchr(" \t\r\n", *end))
                end++;
            if (j && end == s + len) /* nothing but white space after it: all of the text is JSON */
                return j;
            cJSON_Delete(j);
        }
        return cJSON_CreateString(s);
    }
    }
}

/* Builds the metadata JSON object of every column not in skip (a list of indexes). */
static char *build_metadata(sqlite3_stmt *st, int first, char **cols, int ncols, const int *skip, int nskip,
                            const char *extra_key, const char *extra_val, const char *table, map_outcome *o,
                            bool *oom)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj) {
        *oom = true;
        return NULL;
    }
    for (int c = 0; c < ncols; c++) {
        bool skipped = false;
        for (int k = 0; k < nskip; k++)
            skipped = skipped || skip[k] == c;
        if (skipped)
            continue;
        char why[200];
        bool bad = false;
        cJSON *val = json_of_col(st, first + c, cols[c], why, sizeof why, &bad);
        /* jsonb keys must be valid UTF-8 too: a column name that is not keeps its other bytes as \xHH */
        size_t nlen = strlen(cols[c]);
        bool utf8 = text_check(cols[c], nlen, NULL, 0);
        char *escaped = utf8 ? NULL : malloc(4 * nlen + 1);
        if (!val || (!utf8 && !escaped)) {
            cJSON_Delete(val);
            cJSON_Delete(obj);
            *oom = true;
            return NULL;
        }
        if (escaped)
            text_printable(cols[c], nlen, escaped, 4 * nlen + 1);
        const char *key = escaped ? escaped : cols[c];
        if (bad) {
            add_rej(o, key, "row_skipped", "%s", why);
            o->row_ok = false;
            (void) table;
        }
        cJSON_AddItemToObject(obj, key, val);
        free(escaped);
    }
    if (extra_key)
        cJSON_AddStringToObject(obj, extra_key, extra_val);
    char *out = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!out)
        *oom = true;
    return out;
}

/* ---- node query ----------------------------------------------------------------------------- */

static const char *CARD_COLS[] = {"difficulty", "stability", "state", "reps", "lapses",
                                  "last_review", "due_date", "elapsed_days", "scheduled_days"};
#define NCARD ((int) (sizeof CARD_COLS / sizeof CARD_COLS[0]))

bool node_query_build(sqlite_src *s, node_query *q)
{
    memset(q, 0, sizeof *q);
    q->ncols = sqlite_src_columns(s, "knowledge_nodes", &q->cols);
    if (q->ncols < 0) {
        q->ncols = 0;
        return false;
    }
    q->i_id = find_col(q->cols, q->ncols, "id");
    q->i_content = find_col(q->cols, q->ncols, "content");
    if (q->i_id < 0 || q->i_content < 0) {
        log_error("%s: knowledge_nodes has no %s column: not a vestige store", s->path, q->i_id < 0 ? "id" : "content");
        return false;
    }
    q->i_node_type = find_col(q->cols, q->ncols, "node_type");
    q->i_tags = find_col(q->cols, q->ncols, "tags");
    q->i_created = find_col(q->cols, q->ncols, "created_at");
    q->i_updated = find_col(q->cols, q->ncols, "updated_at");
    q->i_stability = find_col(q->cols, q->ncols, "stability");
    q->i_difficulty = find_col(q->cols, q->ncols, "difficulty");
    q->i_reps = find_col(q->cols, q->ncols, "reps");
    q->i_lapses = find_col(q->cols, q->ncols, "lapses");
    q->i_state = find_col(q->cols, q->ncols, "learning_state");
    q->i_next_review = find_col(q->cols, q->ncols, "next_review");
    q->i_sched_days = find_col(q->cols, q->ncols, "scheduled_days");
    q->i_retrieval = find_col(q->cols, q->ncols, "retrieval_strength");
    q->has_embeddings = sqlite_src_has_table(s, "node_embeddings");
    q->has_cards = sqlite_src_has_table(s, "fsrs_cards");

    char **card_cols = NULL;
    int ncard_cols = q->has_cards ? sqlite_src_columns(s, "fsrs_cards", &card_cols) : 0;
    if (ncard_cols < 0)
        return false;
    char *sql = NULL;
    size_t len = 0, cap = 0;
    bool ok = append(&sql, &len, &cap, "SELECT n.rowid");
    for (int i = 0; ok && i < q->ncols; i++)
        ok = append_ident(&sql, &len, &cap, ", n.", q->cols[i]);
    q->e_base = 1 + q->ncols;
    ok = ok && append(&sql, &len, &cap,
                      q->has_embeddings ? ", e.embedding, e.dimensions, e.model" : ", NULL, NULL, NULL");
    q->c_base = q->e_base + 3;
    ok = ok && append(&sql, &len, &cap, q->has_cards ? ", c.rowid" : ", NULL");
    for (int i = 0; ok && i < NCARD; i++) {
        if (q->has_cards && find_col(card_cols, ncard_cols, CARD_COLS[i]) >= 0)
            ok = append_ident(&sql, &len, &cap, ", c.", CARD_COLS[i]);
        else
            ok = append(&sql, &len, &cap, ", NULL");
    }
    sqlite_src_free_names(card_cols, ncard_cols > 0 ? ncard_cols : 0);
    ok = ok && append(&sql, &len, &cap, " FROM knowledge_nodes n");
    if (q->has_embeddings)
        ok = ok && append(&sql, &len, &cap, " LEFT JOIN node_embeddings e ON e.node_id = n.id");
    if (q->has_cards)
        ok = ok && append(&sql, &len, &cap, " LEFT JOIN fsrs_cards c ON c.memory_id = n.id");
    if (!ok) {
        free(sql);
        return false;
    }
    size_t base = len;
    q->sql_one = malloc(base + 32);
    if (q->sql_one)
        sprintf(q->sql_one, "%s WHERE n.rowid = ?1", sql);
    ok = q->sql_one && append(&sql, &len, &cap, " WHERE n.rowid > ?1 ORDER BY n.rowid LIMIT ?2");
    q->sql = sql;
    return ok;
}

void node_query_free(node_query *q)
{
    sqlite_src_free_names(q->cols, q->ncols);
    free(q->sql);
    free(q->sql_one);
    memset(q, 0, sizeof *q);
}

/* ---- node mapping --------------------------------------------------------------------------- */

void node_values_clear(node_values *v)
{
    tags_free(&v->tags);
    free(v->metadata);
    memset(v, 0, sizeof *v);
}

static int result_index(int col) { return col >= 0 ? col + 1 : -1; }

static void map_schedule(const node_query *q, sqlite3_stmt *st, const map_ctx *ctx, node_values *v, map_outcome *o)
{
    sched_values *s = &v->sched;
    int c = q->c_base;
    s->from_card = sqlite3_column_type(st, c) != SQLITE_NULL;
    char field[64];
    bool ok = true;
    const char *tbl = s->from_card ? "fsrs_cards" : "knowledge_nodes";
#define BAD(col, ...)                                                                              \
    do {                                                                                           \
        snprintf(field, sizeof field, "%s.%s", tbl, col);                                          \
        add_rej(o, field, "scheduling_skipped", __VA_ARGS__);                                      \
        ok = false;                                                                                \
    } while (0)
    /* result indexes: card columns follow c_base in CARD_COLS order; node columns sit at 1 + their
     * column index; -1 = the column does not exist (its default applies) */
    int i_diff = s->from_card ? c + 1 : result_index(q->i_difficulty);
    int i_stab = s->from_card ? c + 2 : result_index(q->i_stability);
    int i_state = s->from_card ? c + 3 : result_index(q->i_state);
    int i_reps = s->from_card ? c + 4 : result_index(q->i_reps);
    int i_lapses = s->from_card ? c + 5 : result_index(q->i_lapses);
    int i_next = s->from_card ? c + 7 : result_index(q->i_next_review);
    int i_sdays = s->from_card ? c + 9 : result_index(q->i_sched_days);
    if (!col_double(st, i_stab, 1.0, &s->stability))
        BAD("stability", "not a finite number");
    if (!col_double(st, i_diff, 5.0, &s->difficulty))
        BAD("difficulty", "not a finite number");
    if (!col_int32(st, i_reps, 0, &s->reps))
        BAD("reps", "not a 32-bit integer");
    if (!col_int32(st, i_lapses, 0, &s->lapses))
        BAD("lapses", "not a 32-bit integer");
    if (!col_int32(st, i_sdays, 0, &s->scheduled_days))
        BAD("scheduled_days", "not a 32-bit integer");
    if (!col_int32(st, s->from_card ? c + 8 : -1, 0, &s->elapsed_days))
        BAD("elapsed_days", "not a 32-bit integer");
    s->state = "new";
    s->state_len = 3;
    if (i_state >= 0 && col_text(st, i_state, &s->state, &s->state_len)) {
        char why[160];
        if (sqlite3_column_type(st, i_state) != SQLITE_TEXT || !text_check(s->state, s->state_len, why, sizeof why))
            BAD(s->from_card ? "state" : "learning_state", "not valid text");
    }
    s->has_retrievability = q->i_retrieval >= 0 && sqlite3_column_type(st, q->i_retrieval + 1) != SQLITE_NULL;
    if (s->has_retrievability && !col_double(st, q->i_retrieval + 1, 0, &s->retrievability))
        BAD("retrieval_strength", "not a finite number");
    s->has_last_review = s->from_card && sqlite3_column_type(st, c + 6) != SQLITE_NULL;
    if (s->has_last_review) {
        ts_status ts = col_timestamp(st, c + 6, ctx->epoch, &s->last_review);
        if (ts != TS_OK)
            BAD("last_review", "%s", ts_reason(ts));
    }
    s->has_next_review = i_next >= 0 && sqlite3_column_type(st, i_next) != SQLITE_NULL;
    if (s->has_next_review) {
        ts_status ts = col_timestamp(st, i_next, ctx->epoch, &s->next_review);
        if (ts != TS_OK)
            BAD(s->from_card ? "due_date" : "next_review", "%s", ts_reason(ts));
    }
#undef BAD
    v->sched_ok = ok;
}

static void map_embedding(const node_query *q, sqlite3_stmt *st, const map_ctx *ctx, node_values *v, map_outcome *o)
{
    int e = q->e_base;
    v->emb = NULL;
    v->emb_present = sqlite3_column_type(st, e) != SQLITE_NULL;
    if (!v->emb_present)
        return;
    if (sqlite3_column_type(st, e) != SQLITE_BLOB) {
        add_rej(o, "embedding", "embedding_nulled", "stored as %s, not a float32 BLOB",
                sqlite3_column_type(st, e) == SQLITE_TEXT ? "TEXT" : "a number");
        return;
    }
    const void *blob = sqlite3_column_blob(st, e);
    size_t len = (size_t) sqlite3_column_bytes(st, e);
    int dim = 0;
    vec_status vs = vec_check_f32le(blob, len, &dim);
    if (vs != VEC_OK) {
        char why[200];
        vec_status_describe(vs, len, dim, why, sizeof why);
        add_rej(o, "embedding", "embedding_nulled", "%s", why);
        return;
    }
    if (sqlite3_column_type(st, e + 1) == SQLITE_INTEGER && sqlite3_column_int64(st, e + 1) != dim) {
        add_rej(o, "embedding", "embedding_nulled", "declares %lld dimensions but holds %d",
                (long long) sqlite3_column_int64(st, e + 1), dim);
        return;
    }
    if (ctx->dim > 0 && dim != ctx->dim) {
        add_rej(o, "embedding", "embedding_nulled", "has %d dimensions; the store's model has %d", dim, ctx->dim);
        return;
    }
    const char *model;
    size_t mlen;
    if (ctx->model && col_text(st, e + 2, &model, &mlen) &&
        (strlen(ctx->model) != mlen || memcmp(model, ctx->model, mlen) != 0)) {
        add_rej(o, "embedding", "embedding_nulled", "model \"%.*s\" differs from the store's model \"%s\"",
                (int) (mlen > 80 ? 80 : mlen), model, ctx->model);
        return;
    }
    v->emb = blob;
    v->emb_dim = dim;
}

void copy_map_node_key(sqlite3_stmt *st, int col, int64_t rowid, char *key, size_t size)
{
    const char *s;
    size_t len;
    if (!col_text(st, col, &s, &len))
        snprintf(key, size, "rowid %lld", (long long) rowid);
    else /* at most 64 bytes, as reports show it */
        text_printable(s, len, key, size < 65 ? size : 65);
}

void copy_map_edge_key(sqlite3_stmt *st, int i_src, int i_tgt, int i_type, char *key, size_t size)
{
    char part[3][41]; /* each at most 40 bytes, valid UTF-8 */
    int cols[3] = {i_src, i_tgt, i_type};
    for (int k = 0; k < 3; k++) {
        const char *v;
        size_t len;
        if (!col_text(st, cols[k], &v, &len)) {
            v = "";
            len = 0;
        }
        text_printable(v, len, part[k], sizeof part[k]);
    }
    snprintf(key, size, "%s -> %s (%s)", part[0], part[1], part[2]);
}

bool copy_map_node(const node_query *q, sqlite3_stmt *st, const map_ctx *ctx, node_values *v, map_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->row_ok = true;
    v->rowid = sqlite3_column_int64(st, 0);
    char why[200];
    const char *s;
    size_t len;
    /* id */
    copy_map_node_key(st, q->i_id + 1, v->rowid, v->key, sizeof v->key);
    if (!col_text(st, q->i_id + 1, &s, &len)) {
        add_rej(o, "id", "row_skipped", "missing");
        o->row_ok = false;
    } else {
        if (!parse_uuid(s, len, v->id)) {
            add_rej(o, "id", "row_skipped", "not a UUID");
            o->row_ok = false;
        }
    }
    /* content */
    if (!col_text(st, q->i_content + 1, &v->content, &v->content_len)) {
        add_rej(o, "content", "row_skipped", "missing");
        o->row_ok = false;
    } else if (!text_check(v->content, v->content_len, why, sizeof why)) {
        add_rej(o, "content", "row_skipped", "%s", why);
        o->row_ok = false;
    }
    /* node_type */
    v->node_type = "fact";
    v->node_type_len = 4;
    if (q->i_node_type >= 0 && col_text(st, q->i_node_type + 1, &v->node_type, &v->node_type_len) &&
        !text_check(v->node_type, v->node_type_len, why, sizeof why)) {
        add_rej(o, "node_type", "row_skipped", "%s", why);
        o->row_ok = false;
    }
    /* tags */
    if (q->i_tags >= 0 && col_text(st, q->i_tags + 1, &s, &len) &&
        !tags_parse(s, len, &v->tags, why, sizeof why)) {
        add_rej(o, "tags", "row_skipped", "%s", why);
        o->row_ok = false;
    }
    /* timestamps */
    const int tcols[2] = {q->i_created, q->i_updated};
    int64_t *touts[2] = {&v->created_at, &v->updated_at};
    const char *tnames[2] = {"created_at", "updated_at"};
    for (int k = 0; k < 2; k++) {
        if (tcols[k] < 0 || sqlite3_column_type(st, tcols[k] + 1) == SQLITE_NULL) {
            add_rej(o, tnames[k], "row_skipped", "missing");
            o->row_ok = false;
            continue;
        }
        ts_status ts = col_timestamp(st, tcols[k] + 1, ctx->epoch, touts[k]);
        if (ts != TS_OK) {
            add_rej(o, tnames[k], "row_skipped", "%s", ts_reason(ts));
            o->row_ok = false;
        }
    }
    /* metadata: every other column */
    int skip[6], nskip = 0;
    const int mapped[6] = {q->i_id, q->i_content, q->i_node_type, q->i_tags, q->i_created, q->i_updated};
    for (int k = 0; k < 6; k++)
        if (mapped[k] >= 0)
            skip[nskip++] = mapped[k];
    bool oom = false;
    v->metadata = build_metadata(st, 1, q->cols, q->ncols, skip, nskip, NULL, NULL, "knowledge_nodes", o, &oom);
    if (oom)
        return false;
    if (!o->row_ok)
        return true; /* nothing of a skipped row is checked further */
    map_embedding(q, st, ctx, v, o);
    map_schedule(q, st, ctx, v, o);
    return true;
}

void copy_encode_memory(pgbuf *b, const node_values *v)
{
    pgcopy_tuple_begin(b, 8);
    pgcopy_uuid(b, v->id);
    pgcopy_text(b, v->content, v->content_len);
    pgcopy_text(b, v->node_type, v->node_type_len);
    pgcopy_text_array(b, (const char *const *) v->tags.items, v->tags.lens, v->tags.n);
    if (v->emb)
        pgcopy_vector_f32le(b, v->emb, v->emb_dim);
    else
        pgcopy_null(b);
    pgcopy_jsonb(b, v->metadata, strlen(v->metadata));
    pgcopy_timestamptz(b, v->created_at);
    pgcopy_timestamptz(b, v->updated_at);
}

void copy_encode_schedule(pgbuf *b, const node_values *v)
{
    const sched_values *s = &v->sched;
    pgcopy_tuple_begin(b, 11);
    pgcopy_uuid(b, v->id);
    pgcopy_float8(b, s->stability);
    pgcopy_float8(b, s->difficulty);
    if (s->has_retrievability)
        pgcopy_float8(b, s->retrievability);
    else
        pgcopy_null(b);
    pgcopy_text(b, s->state, s->state_len);
    if (s->has_last_review)
        pgcopy_timestamptz(b, s->last_review);
    else
        pgcopy_null(b);
    if (s->has_next_review)
        pgcopy_timestamptz(b, s->next_review);
    else
        pgcopy_null(b);
    pgcopy_int4(b, s->reps);
    pgcopy_int4(b, s->lapses);
    pgcopy_int4(b, s->scheduled_days);
    pgcopy_int4(b, s->elapsed_days);
}

/* ---- edges ---------------------------------------------------------------------------------- */

bool edge_query_build(sqlite_src *s, const char *table, edge_query *q)
{
    memset(q, 0, sizeof *q);
    q->table = table;
    q->ncols = sqlite_src_columns(s, table, &q->cols);
    if (q->ncols < 0) {
        q->ncols = 0;
        return false;
    }
    bool mc = !strcmp(table, "memory_connections");
    q->i_src = find_col(q->cols, q->ncols, "source_id");
    q->i_tgt = find_col(q->cols, q->ncols, "target_id");
    q->i_type = find_col(q->cols, q->ncols, mc ? "link_type" : "edge_type");
    q->i_weight = find_col(q->cols, q->ncols, mc ? "strength" : "weight");
    q->i_created = find_col(q->cols, q->ncols, "created_at");
    if (q->i_src < 0 || q->i_tgt < 0 || q->i_type < 0) {
        log_error("%s: %s lacks source_id, target_id or %s", s->path, table, mc ? "link_type" : "edge_type");
        return false;
    }
    char *sql = NULL;
    size_t len = 0, cap = 0;
    bool ok = append(&sql, &len, &cap, "SELECT e.rowid");
    for (int i = 0; ok && i < q->ncols; i++)
        ok = append_ident(&sql, &len, &cap, ", e.", q->cols[i]);
    /* the endpoints' node rows, so most dangling checks need no round trip to the target */
    ok = ok && append(&sql, &len, &cap, ", ns.rowid, nt.rowid FROM ") && append_ident(&sql, &len, &cap, "", table) &&
         append(&sql, &len, &cap, " e LEFT JOIN knowledge_nodes ns ON ns.id = e.") &&
         append_ident(&sql, &len, &cap, "", q->cols[q->i_src]) &&
         append(&sql, &len, &cap, " LEFT JOIN knowledge_nodes nt ON nt.id = e.") &&
         append_ident(&sql, &len, &cap, "", q->cols[q->i_tgt]) &&
         append(&sql, &len, &cap, " WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT ?2");
    q->sql = sql;
    return ok;
}

void edge_query_free(edge_query *q)
{
    sqlite_src_free_names(q->cols, q->ncols);
    free(q->sql);
    memset(q, 0, sizeof *q);
}

void edge_values_clear(edge_values *v)
{
    free(v->metadata);
    memset(v, 0, sizeof *v);
}

bool copy_map_edge(const edge_query *q, sqlite3_stmt *st, const map_ctx *ctx, edge_values *v, map_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->row_ok = true;
    v->rowid = sqlite3_column_int64(st, 0);
    v->src_node = sqlite3_column_int64(st, q->ncols + 1); /* NULL reads as 0 */
    v->tgt_node = sqlite3_column_int64(st, q->ncols + 2);
    const char *s, *t;
    size_t slen = 0, tlen = 0;
    bool hs = col_text(st, q->i_src + 1, &s, &slen), ht = col_text(st, q->i_tgt + 1, &t, &tlen);
    v->type = "";
    v->type_len = 0;
    bool hty = col_text(st, q->i_type + 1, &v->type, &v->type_len);
    copy_map_edge_key(st, q->i_src + 1, q->i_tgt + 1, q->i_type + 1, v->key, sizeof v->key);
    if (!hs || !parse_uuid(s, slen, v->src)) {
        add_rej(o, "source_id", "edge_skipped", hs ? "not a UUID" : "missing");
        o->row_ok = false;
    }
    if (!ht || !parse_uuid(t, tlen, v->tgt)) {
        add_rej(o, "target_id", "edge_skipped", ht ? "not a UUID" : "missing");
        o->row_ok = false;
    }
    char why[200];
    const char *tname = q->cols[q->i_type];
    if (!hty) {
        add_rej(o, tname, "edge_skipped", "missing");
        o->row_ok = false;
    } else if (!text_check(v->type, v->type_len, why, sizeof why)) {
        add_rej(o, tname, "edge_skipped", "%s", why);
        o->row_ok = false;
    }
    if (!col_double(st, q->i_weight >= 0 ? q->i_weight + 1 : -1, 1.0, &v->weight)) {
        add_rej(o, q->cols[q->i_weight], "edge_skipped", "not a finite number");
        o->row_ok = false;
    }
    if (q->i_created < 0 || sqlite3_column_type(st, q->i_created + 1) == SQLITE_NULL) {
        add_rej(o, "created_at", "edge_skipped", "missing");
        o->row_ok = false;
    } else {
        ts_status ts = col_timestamp(st, q->i_created + 1, ctx->epoch, &v->created_at);
        if (ts != TS_OK) {
            add_rej(o, "created_at", "edge_skipped", "%s", ts_reason(ts));
            o->row_ok = false;
        }
    }
    int skip[5], nskip = 0;
    const int mapped[5] = {q->i_src, q->i_tgt, q->i_type, q->i_weight, q->i_created};
    for (int k = 0; k < 5; k++)
        if (mapped[k] >= 0)
            skip[nskip++] = mapped[k];
    bool oom = false;
    v->metadata = build_metadata(st, 1, q->cols, q->ncols, skip, nskip, "source_table", q->table, q->table, o, &oom);
    for (int k = 0; k < o->nrej; k++) /* text problems in other columns skip the edge too */
        if (!strcmp(o->rej[k].action, "row_skipped"))
            o->rej[k].action = "edge_skipped";
    return !oom;
}

void copy_encode_edge(pgbuf *b, const edge_values *v)
{
    pgcopy_tuple_begin(b, 6);
    pgcopy_uuid(b, v->src);
    pgcopy_uuid(b, v->tgt);
    pgcopy_text(b, v->type, v->type_len);
    pgcopy_float8(b, v->weight);
    pgcopy_timestamptz(b, v->created_at);
    pgcopy_jsonb(b, v->metadata, strlen(v->metadata));
}

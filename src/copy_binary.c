/* copy_binary.c — growable byte buffer and PostgreSQL binary COPY writer. Layouts follow the
 * server's *_send functions; see copy_binary.h for the per-type sources. */
#include "copy_binary.h"

#include <stdlib.h>
#include <string.h>

#include "vec.h"

#define PGBUF_MIN_CAP 256
#define PGCOPY_TEXT_OID 25

/* ---- pgbuf ------------------------------------------------------------------------------- */

void pgbuf_init(pgbuf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}

void pgbuf_reset(pgbuf *b)
{
    b->len = 0;
    b->oom = false;
}

void pgbuf_free(pgbuf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    pgbuf_init(b);
}

static bool pgbuf_grow(pgbuf *b, size_t need)
{
    size_t cap = b->cap < PGBUF_MIN_CAP ? PGBUF_MIN_CAP : b->cap;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    unsigned char *p = realloc(b->data, cap);
    if (p == NULL)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

unsigned char *pgbuf_reserve(pgbuf *b, size_t extra)
{
    if (b->oom)
        return NULL;
    if (extra > SIZE_MAX - b->len) {
        b->oom = true;
        return NULL;
    }
    size_t need = b->len + extra;
    if (need > b->cap || b->data == NULL) {
        if (!pgbuf_grow(b, need)) {
            b->oom = true;
            return NULL;
        }
    }
    unsigned char *w = b->data + b->len;
    b->len = need;
    return w;
}

void pgbuf_append(pgbuf *b, const void *p, size_t n)
{
    unsigned char *w = pgbuf_reserve(b, n);
    if (w != NULL && n > 0)
        memcpy(w, p, n);
}

/* ---- big-endian stores ------------------------------------------------------------------- */

static inline void pgcopy_put16(unsigned char *p, uint16_t x)
{
    p[0] = (unsigned char)(x >> 8);
    p[1] = (unsigned char)x;
}

static inline void pgcopy_put32(unsigned char *p, uint32_t x)
{
    p[0] = (unsigned char)(x >> 24);
    p[1] = (unsigned char)(x >> 16);
    p[2] = (unsigned char)(x >> 8);
    p[3] = (unsigned char)x;
}

static inline void pgcopy_put64(unsigned char *p, uint64_t x)
{
    pgcopy_put32(p, (uint32_t)(x >> 32));
    pgcopy_put32(p + 4, (uint32_t)x);
}

/* Reserves the int32 length word plus `n` value bytes, writes the length, returns the value
 * area (NULL on oom or when n does not fit an int32). */
static unsigned char *pgcopy_field(pgbuf *b, size_t n)
{
    if (n > INT32_MAX) {
        b->oom = true;
        return NULL;
    }
    unsigned char *w = pgbuf_reserve(b, 4 + n);
    if (w == NULL)
        return NULL;
    pgcopy_put32(w, (uint32_t)n);
    return w + 4;
}

/* ---- file framing ------------------------------------------------------------------------ */

void pgcopy_header(pgbuf *b)
{
    /* Signature (11 bytes), int32 flags = 0, int32 header extension length = 0. */
    static const unsigned char hdr[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0,
                                          0,   0,   0,   0,   0,   0,   0,    0};
    pgbuf_append(b, hdr, sizeof hdr);
}

void pgcopy_trailer(pgbuf *b)
{
    unsigned char *w = pgbuf_reserve(b, 2);
    if (w)
        pgcopy_put16(w, 0xffff);
}

void pgcopy_tuple_begin(pgbuf *b, int16_t nfields)
{
    if (nfields < 0) {
        b->oom = true;
        return;
    }
    unsigned char *w = pgbuf_reserve(b, 2);
    if (w)
        pgcopy_put16(w, (uint16_t)nfields);
}

void pgcopy_null(pgbuf *b)
{
    unsigned char *w = pgbuf_reserve(b, 4);
    if (w)
        pgcopy_put32(w, 0xffffffffu);
}

/* ---- scalar fields ----------------------------------------------------------------------- */

void pgcopy_text(pgbuf *b, const char *s, size_t len)
{
    unsigned char *w = pgcopy_field(b, len);
    if (w && len > 0)
        memcpy(w, s, len);
}

void pgcopy_int2(pgbuf *b, int16_t v)
{
    unsigned char *w = pgcopy_field(b, 2);
    if (w)
        pgcopy_put16(w, (uint16_t)v);
}

void pgcopy_int4(pgbuf *b, int32_t v)
{
    unsigned char *w = pgcopy_field(b, 4);
    if (w)
        pgcopy_put32(w, (uint32_t)v);
}

void pgcopy_int8(pgbuf *b, int64_t v)
{
    unsigned char *w = pgcopy_field(b, 8);
    if (w)
        pgcopy_put64(w, (uint64_t)v);
}

void pgcopy_float4(pgbuf *b, float v)
{
    _Static_assert(sizeof(float) == 4, "float must be IEEE-754 binary32");
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    unsigned char *w = pgcopy_field(b, 4);
    if (w)
        pgcopy_put32(w, u);
}

void pgcopy_float8(pgbuf *b, double v)
{
    _Static_assert(sizeof(double) == 8, "double must be IEEE-754 binary64");
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    unsigned char *w = pgcopy_field(b, 8);
    if (w)
        pgcopy_put64(w, u);
}

void pgcopy_bool(pgbuf *b, bool v)
{
    unsigned char *w = pgcopy_field(b, 1);
    if (w)
        w[0] = v ? 1 : 0;
}

void pgcopy_uuid(pgbuf *b, const unsigned char u[16])
{
    unsigned char *w = pgcopy_field(b, 16);
    if (w)
        memcpy(w, u, 16);
}

void pgcopy_timestamptz(pgbuf *b, int64_t usec_since_2000_utc)
{
    pgcopy_int8(b, usec_since_2000_utc);
}

void pgcopy_jsonb(pgbuf *b, const char *json, size_t len)
{
    if (len > INT32_MAX - 1) {
        b->oom = true;
        return;
    }
    unsigned char *w = pgcopy_field(b, 1 + len);
    if (w == NULL)
        return;
    w[0] = 1; /* jsonb binary format version */
    if (len > 0)
        memcpy(w + 1, json, len);
}

void pgcopy_text_array(pgbuf *b, const char *const *items, const size_t *lens, int n)
{
    if (n < 0) {
        b->oom = true;
        return;
    }
    /* Size first, so the field length is known and overflow is caught before writing. */
    size_t total = 12 + (n > 0 ? 8 : 0);
    bool hasnull = false;
    for (int i = 0; i < n; i++) {
        total += 4;
        if (items[i] == NULL) {
            hasnull = true;
            continue;
        }
        size_t l = lens ? lens[i] : strlen(items[i]);
        if (l > INT32_MAX || total > (size_t)INT32_MAX - l) {
            b->oom = true;
            return;
        }
        total += l;
    }
    unsigned char *w = pgcopy_field(b, total);
    if (w == NULL)
        return;
    pgcopy_put32(w, n > 0 ? 1 : 0);      /* ndim */
    pgcopy_put32(w + 4, hasnull ? 1 : 0); /* flags: has nulls */
    pgcopy_put32(w + 8, PGCOPY_TEXT_OID); /* element type */
    w += 12;
    if (n == 0)
        return;
    pgcopy_put32(w, (uint32_t)n); /* dimension length */
    pgcopy_put32(w + 4, 1);       /* lower bound */
    w += 8;
    for (int i = 0; i < n; i++) {
        if (items[i] == NULL) {
            pgcopy_put32(w, 0xffffffffu);
            w += 4;
            continue;
        }
        size_t l = lens ? lens[i] : strlen(items[i]);
        pgcopy_put32(w, (uint32_t)l);
        if (l > 0)
            memcpy(w + 4, items[i], l);
        w += 4 + l;
    }
}

void pgcopy_vector_f32le(pgbuf *b, const void *blob, int dim)
{
    if (dim < 1 || dim > VEC_MAX_DIM) {
        b->oom = true;
        return;
    }
    unsigned char *w = pgcopy_field(b, VEC_PGBINARY_SIZE(dim));
    if (w)
        vec_f32le_to_pgbinary(blob, dim, w);
}

void pgcopy_vector_floats(pgbuf *b, const float *v, int dim)
{
    if (dim < 1 || dim > VEC_MAX_DIM) {
        b->oom = true;
        return;
    }
    unsigned char *w = pgcopy_field(b, VEC_PGBINARY_SIZE(dim));
    if (w)
        vec_floats_to_pgbinary(v, dim, w);
}

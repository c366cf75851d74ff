/* fuzz_sqlite_values.c — fuzz target for the validators of single SQLite values
 * (sqlite_values.c) and the float32 BLOB and pgvector binary decoders (vec.c). Every function gets the whole input; what
 * they accept is checked against a round trip (UUID and timestamp text, vector bytes) or, for
 * UTF-8, against a plain byte-by-byte reference decoder. Corpus: tests/fuzz/corpus/sqlite_values/. */
#include "fuzz/fuzz.h"
#include "log.h"
#include "sqlite_values.h"
#include "vec.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    log_set_level(LOG_QUIET);
    return 0;
}

/* RFC 3629 decoding written for clarity, not speed: true when valid UTF-8 without NUL. */
static bool ref_utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned cp, min;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

static void fuzz_uuid(const char *s, size_t len)
{
    unsigned char u[16], u2[16];
    if (!parse_uuid(s, len, u))
        return;
    char txt[37];
    uuid_format(u, txt);
    FUZZ_CHECK(len == 36 && strlen(txt) == 36 && strncasecmp(txt, s, 36) == 0);
    FUZZ_CHECK(parse_uuid(txt, 36, u2) && memcmp(u, u2, 16) == 0);
}

static void fuzz_text(const char *s, size_t len)
{
    char why[120];
    why[0] = '\0';
    bool ok = text_check(s, len, why, sizeof why);
    FUZZ_CHECK(ok == ref_utf8_ok((const unsigned char *) s, len));
    FUZZ_CHECK(ok || (why[0] != '\0' && strlen(why) < sizeof why));
    char tiny[4];
    FUZZ_CHECK(text_check(s, len, tiny, sizeof tiny) == ok); /* a short reason buffer changes nothing */
}

static void fuzz_timestamp(const char *s, size_t len)
{
    static const epoch_unit units[] = {EPOCH_NONE, EPOCH_S, EPOCH_MS};
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
        int64_t us = INT64_MIN;
        ts_status st = parse_timestamp_any(s, len, units[k], &us);
        FUZZ_CHECK(ts_status_text(st) != NULL);
        if (st != TS_OK) {
            FUZZ_CHECK(us == INT64_MIN);
            continue;
        }
        FUZZ_CHECK(us >= PARSE_TS_MIN_USEC && us <= PARSE_TS_MAX_USEC);
        char out[40];
        timestamp_format(us, out);
        int64_t back = 0;
        FUZZ_CHECK(parse_timestamp_text(out, strlen(out), &back) == TS_OK && back == us);
    }
}

static void fuzz_tags(const char *s, size_t len)
{
    tags_list t;
    char why[160];
    if (tags_parse(s, len, &t, why, sizeof why)) {
        FUZZ_CHECK(t.n >= 0 && (t.n == 0) == (t.items == NULL));
        for (int i = 0; i < t.n; i++) {
            FUZZ_CHECK(strlen(t.items[i]) == t.lens[i]);
            FUZZ_CHECK(text_check(t.items[i], t.lens[i], NULL, 0));
        }
    } else {
        FUZZ_CHECK(t.n == 0 && t.items == NULL && t.lens == NULL && why[0] != '\0');
    }
    tags_free(&t);
    tags_free(&t); /* idempotent */
}

static void fuzz_vector(const unsigned char *data, size_t len)
{
    int dim = -7;
    vec_status vs = vec_check_f32le(len ? data : NULL, len, &dim);
    char why[160];
    vec_status_describe(vs, len, dim, why, sizeof why);
    FUZZ_CHECK(why[0] != '\0' && vec_status_text(vs) != NULL);
    if (vs == VEC_NOT_FINITE) {
        int at = vec_first_nonfinite_f32le(data, dim);
        FUZZ_CHECK(dim == (int) (len / 4) && at >= 0 && at < dim);
    }
    if (vs != VEC_OK) {
        FUZZ_CHECK(vs == VEC_NOT_FINITE || dim == -7);
        return;
    }
    FUZZ_CHECK(dim >= 1 && dim <= VEC_MAX_DIM && (size_t) dim * 4 == len);
    FUZZ_CHECK(vec_first_nonfinite_f32le(data, dim) == -1);
    /* BLOB -> pgvector binary -> floats -> BLOB gives the same bytes */
    unsigned char *pg = malloc(VEC_PGBINARY_SIZE(dim)), *pg2 = malloc(VEC_PGBINARY_SIZE(dim));
    float *f = malloc((size_t) dim * sizeof *f);
    unsigned char *le = malloc(len);
    FUZZ_CHECK(pg && pg2 && f && le);
    FUZZ_CHECK(vec_f32le_to_pgbinary(data, dim, pg) == VEC_PGBINARY_SIZE(dim));
    int d2 = 0;
    FUZZ_CHECK(vec_pgbinary_to_floats(pg, VEC_PGBINARY_SIZE(dim), f, dim, &d2) && d2 == dim);
    vec_floats_to_f32le(f, dim, le);
    FUZZ_CHECK(memcmp(le, data, len) == 0);
    FUZZ_CHECK(vec_floats_to_pgbinary(f, dim, pg2) == VEC_PGBINARY_SIZE(dim));
    FUZZ_CHECK(memcmp(pg, pg2, VEC_PGBINARY_SIZE(dim)) == 0);
    free(pg);
    free(pg2);
    free(f);
    free(le);
}

/* The input read as pgvector's binary form (what the server sends back to parity and reembed). */
static void fuzz_pgbinary(const unsigned char *data, size_t len)
{
    static float out[VEC_MAX_DIM];
    int dim = -7;
    bool ok = vec_pgbinary_to_floats(data, len, out, VEC_MAX_DIM, &dim);
    if (ok)
        FUZZ_CHECK(dim >= 1 && dim <= VEC_MAX_DIM && len == VEC_PGBINARY_SIZE(dim));
    int small = -7;
    if (vec_pgbinary_to_floats(data, len, out, 2, &small))
        FUZZ_CHECK(ok && small == dim && dim <= 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *) data;
    fuzz_uuid(s, size);
    fuzz_text(s, size);
    fuzz_timestamp(s, size);
    fuzz_tags(s, size);
    fuzz_vector(data, size);
    fuzz_pgbinary(data, size);
    return 0;
}

/* test_vec.c — unit tests for the vector encodings in src/vec.c (vestige float32 LE BLOBs,
 * pgvector binary and text forms), asserting exact bytes. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"

/* Little-endian bytes of a few float32 values. */
#define LE_1 0x00, 0x00, 0x80, 0x3f      /* 1.0f */
#define LE_2 0x00, 0x00, 0x00, 0x40      /* 2.0f */
#define LE_M0_5 0x00, 0x00, 0x00, 0xbf   /* -0.5f */
#define LE_NAN 0x00, 0x00, 0xc0, 0x7f    /* quiet NaN */
#define LE_INF 0x00, 0x00, 0x80, 0x7f    /* +Inf */
#define LE_NINF 0x00, 0x00, 0x80, 0xff   /* -Inf */
#define LE_DENORM 0x01, 0x00, 0x00, 0x00 /* smallest subnormal */
#define LE_MAX 0xff, 0xff, 0x7f, 0x7f    /* FLT_MAX */

static void test_bytes_eq(const unsigned char *got, const unsigned char *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "byte %zu: got %02x, want %02x", i, got[i], want[i]);
}

/* ---- vec_check_f32le ----------------------------------------------------------------------- */

Test(vec, check_ok)
{
    const unsigned char b[] = {LE_1, LE_2, LE_M0_5, LE_DENORM, LE_MAX};
    int dim = -1;
    cr_assert_eq(vec_check_f32le(b, sizeof b, &dim), VEC_OK);
    cr_assert_eq(dim, 5);
    cr_assert_eq(vec_check_f32le(b, sizeof b, NULL), VEC_OK);
}

Test(vec, check_empty)
{
    int dim = -7;
    cr_assert_eq(vec_check_f32le(NULL, 0, &dim), VEC_EMPTY);
    cr_assert_eq(dim, -7, "dim must be untouched");
}

Test(vec, check_bad_length)
{
    const unsigned char b[10] = {0};
    int dim = -7;
    for (size_t len = 1; len < 10; len++) {
        if (len % 4 == 0)
            continue;
        cr_assert_eq(vec_check_f32le(b, len, &dim), VEC_BAD_LENGTH, "len %zu", len);
    }
    cr_assert_eq(dim, -7);
}

Test(vec, check_max_dims)
{
    size_t n = (size_t)VEC_MAX_DIM * 4;
    unsigned char *b = calloc(1, n + 4);
    cr_assert_not_null(b);
    int dim = 0;
    cr_assert_eq(vec_check_f32le(b, n, &dim), VEC_OK);
    cr_assert_eq(dim, 16000);
    dim = -7;
    cr_assert_eq(vec_check_f32le(b, n + 4, &dim), VEC_TOO_MANY_DIMS);
    cr_assert_eq(dim, -7);
    /* A huge length is rejected on size alone, without reading (blob is too short for it). */
    cr_assert_eq(vec_check_f32le(b, SIZE_MAX - 3, &dim), VEC_TOO_MANY_DIMS);
    free(b);
}

Test(vec, check_not_finite)
{
    const unsigned char nan[] = {LE_1, LE_NAN, LE_2};
    const unsigned char inf[] = {LE_INF};
    const unsigned char ninf[] = {LE_1, LE_2, LE_NINF};
    const unsigned char snan[] = {0x01, 0x00, 0x80, 0x7f}; /* signalling NaN */
    int dim = 0;
    cr_assert_eq(vec_check_f32le(nan, sizeof nan, &dim), VEC_NOT_FINITE);
    cr_assert_eq(dim, 3, "dim is set for NOT_FINITE too");
    cr_assert_eq(vec_check_f32le(inf, sizeof inf, &dim), VEC_NOT_FINITE);
    cr_assert_eq(dim, 1);
    cr_assert_eq(vec_check_f32le(ninf, sizeof ninf, &dim), VEC_NOT_FINITE);
    cr_assert_eq(vec_check_f32le(snan, sizeof snan, &dim), VEC_NOT_FINITE);
    cr_assert_eq(vec_first_nonfinite_f32le(nan, 3), 1);
    cr_assert_eq(vec_first_nonfinite_f32le(ninf, 3), 2);
    const unsigned char fine[] = {LE_1, LE_MAX};
    cr_assert_eq(vec_first_nonfinite_f32le(fine, 2), -1);
}

Test(vec, check_unaligned)
{
    unsigned char raw[1 + 8] = {0xee, LE_1, LE_2};
    int dim = 0;
    cr_assert_eq(vec_check_f32le(raw + 1, 8, &dim), VEC_OK);
    cr_assert_eq(dim, 2);
}

/* ---- status text --------------------------------------------------------------------------- */

Test(vec, status_text)
{
    cr_assert_str_eq(vec_status_text(VEC_OK), "ok");
    cr_assert_str_eq(vec_status_text(VEC_EMPTY), "empty vector (0 bytes)");
    cr_assert_str_eq(vec_status_text(VEC_BAD_LENGTH), "length is not a multiple of 4 bytes");
    cr_assert_not_null(vec_status_text(VEC_TOO_MANY_DIMS));
    cr_assert_not_null(vec_status_text(VEC_NOT_FINITE));
    cr_assert_str_eq(vec_status_text((vec_status)99), "unknown vector status");
}

Test(vec, status_describe)
{
    char buf[128];
    vec_status_describe(VEC_BAD_LENGTH, 10, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "length 10 is not a multiple of 4 bytes");
    vec_status_describe(VEC_TOO_MANY_DIMS, 64004, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "16001 dimensions exceeds pgvector's maximum of 16000");
    vec_status_describe(VEC_NOT_FINITE, 3072, 768, buf, sizeof buf);
    cr_assert_str_eq(buf,
                     "768-dimensional vector contains NaN or Infinity, which pgvector rejects");
    vec_status_describe(VEC_EMPTY, 0, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "empty vector (0 bytes)");
    char small[8];
    vec_status_describe(VEC_BAD_LENGTH, 10, 0, small, sizeof small);
    cr_assert_str_eq(small, "length ");
    vec_status_describe(VEC_BAD_LENGTH, 10, 0, NULL, 0); /* must not crash */
}

/* ---- pgvector binary ----------------------------------------------------------------------- */

Test(vec, f32le_to_pgbinary_1_2)
{
    const unsigned char b[] = {LE_1, LE_2};
    unsigned char out[12];
    memset(out, 0xaa, sizeof out);
    const unsigned char want[] = {0x00, 0x02, 0x00, 0x00, 0x3f, 0x80, 0x00, 0x00,
                                  0x40, 0x00, 0x00, 0x00};
    cr_assert_eq(vec_f32le_to_pgbinary(b, 2, out), 12);
    test_bytes_eq(out, want, sizeof want);
}

Test(vec, f32le_to_pgbinary_unaligned_and_special)
{
    /* Odd offsets on both sides; NaN payload bytes pass through unchanged. */
    unsigned char in[1 + 12] = {0x00, LE_M0_5, LE_NAN, LE_DENORM};
    unsigned char out[3 + 16];
    cr_assert_eq(vec_f32le_to_pgbinary(in + 1, 3, out + 3), 16);
    const unsigned char want[] = {0x00, 0x03, 0x00, 0x00, 0xbf, 0x00, 0x00, 0x00,
                                  0x7f, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
    test_bytes_eq(out + 3, want, sizeof want);
}

Test(vec, pgbinary_max_dim_header)
{
    size_t n = VEC_PGBINARY_SIZE(VEC_MAX_DIM);
    unsigned char *in = calloc(1, (size_t)VEC_MAX_DIM * 4);
    unsigned char *out = malloc(n);
    cr_assert(in && out);
    cr_assert_eq(vec_f32le_to_pgbinary(in, VEC_MAX_DIM, out), n);
    cr_assert_eq(out[0], 0x3e); /* 16000 = 0x3e80 */
    cr_assert_eq(out[1], 0x80);
    cr_assert_eq(out[2], 0);
    cr_assert_eq(out[3], 0);
    free(in);
    free(out);
}

Test(vec, floats_to_pgbinary)
{
    const float v[] = {1.0f, 2.0f, -0.0f, 0.1f};
    unsigned char out[20];
    const unsigned char want[] = {0x00, 0x04, 0x00, 0x00, 0x3f, 0x80, 0x00, 0x00, 0x40, 0x00,
                                  0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x3d, 0xcc, 0xcc, 0xcd};
    cr_assert_eq(vec_floats_to_pgbinary(v, 4, out), 20);
    test_bytes_eq(out, want, sizeof want);
}

Test(vec, pgbinary_roundtrip)
{
    float v[768], back[768];
    for (int i = 0; i < 768; i++)
        v[i] = (float)sin(i * 0.37) * (i % 7 == 0 ? 1e-30f : 3.5f);
    unsigned char bin[VEC_PGBINARY_SIZE(768)];
    cr_assert_eq(vec_floats_to_pgbinary(v, 768, bin), sizeof bin);
    int dim = 0;
    cr_assert(vec_pgbinary_to_floats(bin, sizeof bin, back, 768, &dim));
    cr_assert_eq(dim, 768);
    cr_assert_eq(memcmp(v, back, sizeof v), 0);

    /* The same vector through the little-endian BLOB path gives identical bytes. */
    unsigned char le[768 * 4], bin2[sizeof bin];
    vec_floats_to_f32le(v, 768, le);
    cr_assert_eq(vec_f32le_to_pgbinary(le, 768, bin2), sizeof bin2);
    cr_assert_eq(memcmp(bin, bin2, sizeof bin), 0);
}

Test(vec, pgbinary_to_floats_rejects)
{
    const unsigned char good[] = {0x00, 0x02, 0x00, 0x00, 0x3f, 0x80, 0x00, 0x00,
                                  0x40, 0x00, 0x00, 0x00};
    float out[4];
    int dim = -1;
    cr_assert(vec_pgbinary_to_floats(good, sizeof good, out, 4, &dim));
    cr_assert_eq(dim, 2);
    cr_assert_eq(out[0], 1.0f);
    cr_assert_eq(out[1], 2.0f);

    cr_assert_not(vec_pgbinary_to_floats(good, 3, out, 4, &dim), "short header");
    cr_assert_not(vec_pgbinary_to_floats(NULL, 0, out, 4, &dim));
    cr_assert_not(vec_pgbinary_to_floats(good, 11, out, 4, &dim), "short body");
    unsigned char longer[13];
    memcpy(longer, good, 12);
    longer[12] = 0;
    cr_assert_not(vec_pgbinary_to_floats(longer, 13, out, 4, &dim), "trailing byte");

    dim = -1;
    cr_assert_not(vec_pgbinary_to_floats(good, sizeof good, out, 1, &dim), "maxdim too small");
    cr_assert_eq(dim, 2, "dim reported so the caller can grow");

    unsigned char bad[12];
    memcpy(bad, good, 12);
    bad[3] = 1; /* unused != 0 */
    cr_assert_not(vec_pgbinary_to_floats(bad, 12, out, 4, &dim));
    memcpy(bad, good, 12);
    bad[0] = 0;
    bad[1] = 0; /* dim 0 */
    cr_assert_not(vec_pgbinary_to_floats(bad, 4, out, 4, &dim));
    bad[0] = 0xff;
    bad[1] = 0xff; /* dim -1 */
    cr_assert_not(vec_pgbinary_to_floats(bad, 12, out, 4, &dim));
    memcpy(bad, good, 12);
    bad[8] = 0x7f;
    bad[9] = 0x80; /* second value +Inf */
    cr_assert_not(vec_pgbinary_to_floats(bad, 12, out, 4, &dim));
    bad[9] = 0xc0; /* NaN */
    cr_assert_not(vec_pgbinary_to_floats(bad, 12, out, 4, &dim));
}

Test(vec, pgbinary_too_many_dims)
{
    const unsigned char hdr[] = {0x3e, 0x81, 0x00, 0x00}; /* 16001 */
    float out[1];
    int dim = -1;
    cr_assert_not(vec_pgbinary_to_floats(hdr, sizeof hdr, out, 1, &dim));
    cr_assert_eq(dim, -1);
}

/* ---- little-endian BLOB -------------------------------------------------------------------- */

Test(vec, floats_to_f32le)
{
    const float v[] = {1.0f, 2.0f, -0.5f};
    unsigned char out[1 + 12];
    out[0] = 0x55;
    vec_floats_to_f32le(v, 3, out + 1); /* unaligned destination */
    const unsigned char want[] = {0x55, LE_1, LE_2, LE_M0_5};
    test_bytes_eq(out, want, sizeof want);
    vec_floats_to_f32le(v, 0, NULL); /* dim 0 writes nothing */
}

/* ---- text ---------------------------------------------------------------------------------- */

Test(vec, to_text_simple)
{
    const float v[] = {1.0f, 2.0f, -0.5f, 0.0f};
    char *s = vec_to_text(v, 4);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "[1,2,-0.5,0]");
    free(s);
}

Test(vec, to_text_empty_and_invalid)
{
    char *s = vec_to_text(NULL, 0);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "[]");
    free(s);
    cr_assert_null(vec_to_text(NULL, -1));
}

Test(vec, to_text_precision)
{
    const float v[] = {0.1f, -1.17549435e-38f, 3.40282347e38f, 1.4e-45f, 0.333333343f};
    char *s = vec_to_text(v, 5);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "[0.100000001,-1.17549435e-38,3.40282347e+38,1.40129846e-45,0.333333343]");
    free(s);
}

Test(vec, to_text_roundtrips_float32)
{
    enum { N = 2000 };
    float v[N];
    uint32_t x = 2463534242u; /* xorshift32: arbitrary bit patterns, finite ones kept */
    for (int i = 0; i < N; i++) {
        float f;
        do {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            memcpy(&f, &x, sizeof f);
        } while (!isfinite(f));
        v[i] = f;
    }
    char *s = vec_to_text(v, N);
    cr_assert_not_null(s);
    cr_assert_eq(s[0], '[');
    const char *p = s + 1;
    for (int i = 0; i < N; i++) {
        char *end;
        float f = strtof(p, &end);
        cr_assert(end != p, "element %d unparsable", i);
        cr_assert_eq(memcmp(&f, &v[i], sizeof f), 0, "element %d does not round-trip", i);
        cr_assert_eq(*end, i + 1 < N ? ',' : ']');
        p = end + 1;
    }
    cr_assert_eq(*p, '\0');
    free(s);
}

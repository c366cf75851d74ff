/* test_copy_binary.c — unit tests for src/copy_binary.c: the growable buffer and byte-exact binary COPY
 * output (header, trailer, every field type, arrays, vectors, oom behaviour). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "copy_binary.h"
#include "vec.h"

static void test_expect(const pgbuf *b, const unsigned char *want, size_t n)
{
    cr_assert_not(b->oom, "unexpected oom");
    cr_assert_eq(b->len, n, "length: got %zu, want %zu", b->len, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(b->data[i], want[i], "byte %zu: got %02x, want %02x", i, b->data[i],
                     want[i]);
}

#define EXPECT(b, ...)                                                                         \
    do {                                                                                       \
        const unsigned char want_[] = {__VA_ARGS__};                                           \
        test_expect((b), want_, sizeof want_);                                                 \
    } while (0)

/* ---- pgbuf --------------------------------------------------------------------------------- */

Test(pgbuf, init_append_reset_free)
{
    pgbuf b;
    pgbuf_init(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    cr_assert_not(b.oom);
    pgbuf_append(&b, "abc", 3);
    pgbuf_append(&b, NULL, 0);
    EXPECT(&b, 'a', 'b', 'c');
    unsigned char *mem = b.data;
    size_t cap = b.cap;
    pgbuf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.data, mem, "reset keeps the allocation");
    cr_assert_eq(b.cap, cap);
    pgbuf_append(&b, "xy", 2);
    EXPECT(&b, 'x', 'y');
    pgbuf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    pgbuf_free(&b); /* idempotent */
    pgbuf_free(NULL);
}

Test(pgbuf, zeroed_struct_is_valid)
{
    pgbuf b = {0};
    pgbuf_append(&b, "q", 1);
    EXPECT(&b, 'q');
    pgbuf_free(&b);
}

Test(pgbuf, grows_and_keeps_content)
{
    pgbuf b;
    pgbuf_init(&b);
    for (int i = 0; i < 100000; i++) {
        unsigned char c = (unsigned char)(i * 31);
        pgbuf_append(&b, &c, 1);
    }
    cr_assert_not(b.oom);
    cr_assert_eq(b.len, 100000);
    cr_assert_geq(b.cap, b.len);
    for (int i = 0; i < 100000; i++)
        cr_assert_eq(b.data[i], (unsigned char)(i * 31));
    pgbuf_free(&b);
}

Test(pgbuf, reserve)
{
    pgbuf b;
    pgbuf_init(&b);
    unsigned char *w = pgbuf_reserve(&b, 4);
    cr_assert_not_null(w);
    memcpy(w, "wxyz", 4);
    cr_assert_not_null(pgbuf_reserve(&b, 0));
    EXPECT(&b, 'w', 'x', 'y', 'z');
    w = pgbuf_reserve(&b, 5000);
    cr_assert_not_null(w);
    cr_assert_eq(w, b.data + 4);
    cr_assert_eq(b.len, 5004);
    pgbuf_free(&b);
}

Test(pgbuf, oom_is_sticky_and_reset_clears_it)
{
    pgbuf b;
    pgbuf_init(&b);
    pgbuf_append(&b, "ab", 2);
    /* len + extra overflows size_t: reported as oom, buffer unchanged. */
    cr_assert_null(pgbuf_reserve(&b, SIZE_MAX));
    cr_assert(b.oom);
    cr_assert_eq(b.len, 2);
    pgbuf_append(&b, "c", 1);
    cr_assert_eq(b.len, 2, "writes after oom are no-ops");
    cr_assert_null(pgbuf_reserve(&b, 1));
    pgcopy_int4(&b, 7);
    cr_assert_eq(b.len, 2);
    pgbuf_reset(&b);
    cr_assert_not(b.oom);
    pgbuf_append(&b, "c", 1);
    EXPECT(&b, 'c');
    pgbuf_free(&b);
}

/* ---- framing ------------------------------------------------------------------------------- */

Test(pgcopy, header_trailer)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_header(&b);
    EXPECT(&b, 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0x00, /* signature */
           0, 0, 0, 0,                                                     /* flags */
           0, 0, 0, 0);                                                    /* extension */
    pgbuf_reset(&b);
    pgcopy_trailer(&b);
    EXPECT(&b, 0xff, 0xff);
    pgbuf_free(&b);
}

Test(pgcopy, tuple_begin_and_null)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_tuple_begin(&b, 3);
    pgcopy_null(&b);
    EXPECT(&b, 0x00, 0x03, 0xff, 0xff, 0xff, 0xff);
    pgbuf_reset(&b);
    pgcopy_tuple_begin(&b, 0x1234);
    EXPECT(&b, 0x12, 0x34);
    pgcopy_tuple_begin(&b, -1);
    cr_assert(b.oom, "negative field count is refused");
    pgbuf_free(&b);
}

/* ---- scalars ------------------------------------------------------------------------------- */

Test(pgcopy, text)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_text(&b, "h\xc3\xa9!", 4);
    pgcopy_text(&b, "", 0);
    pgcopy_text(&b, NULL, 0);
    EXPECT(&b, 0, 0, 0, 4, 'h', 0xc3, 0xa9, '!', 0, 0, 0, 0, 0, 0, 0, 0);
    pgbuf_free(&b);
}

Test(pgcopy, text_too_long_sets_oom)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_text(&b, "x", (size_t)INT32_MAX + 1);
    cr_assert(b.oom);
    cr_assert_eq(b.len, 0);
    pgbuf_free(&b);
}

Test(pgcopy, integers)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_int2(&b, -2);
    pgcopy_int4(&b, 0x01020304);
    pgcopy_int8(&b, -1);
    pgcopy_int8(&b, INT64_C(0x0102030405060708));
    EXPECT(&b, 0, 0, 0, 2, 0xff, 0xfe,                               /* int2 -2 */
           0, 0, 0, 4, 0x01, 0x02, 0x03, 0x04,                       /* int4 */
           0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* int8 -1 */
           0, 0, 0, 8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08);
    pgbuf_reset(&b);
    pgcopy_int2(&b, INT16_MIN);
    pgcopy_int4(&b, INT32_MIN);
    pgcopy_int8(&b, INT64_MIN);
    EXPECT(&b, 0, 0, 0, 2, 0x80, 0x00, 0, 0, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 8, 0x80, 0, 0, 0, 0,
           0, 0, 0);
    pgbuf_free(&b);
}

Test(pgcopy, floats)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_float8(&b, 1.5);
    pgcopy_float4(&b, 1.5f);
    pgcopy_float4(&b, -0.0f);
    pgcopy_float8(&b, 0.1);
    EXPECT(&b, 0, 0, 0, 8, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, /* float8 1.5 */
           0, 0, 0, 4, 0x3f, 0xc0, 0, 0,                 /* float4 1.5 */
           0, 0, 0, 4, 0x80, 0, 0, 0,                    /* float4 -0 */
           0, 0, 0, 8, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a);
    pgbuf_free(&b);
}

Test(pgcopy, bool_uuid)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_bool(&b, true);
    pgcopy_bool(&b, false);
    const unsigned char u[16] = {0x01, 0x90, 0xb6, 0xd2, 0x7c, 0x3e, 0x7a, 0x41,
                                 0x9f, 0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f};
    pgcopy_uuid(&b, u);
    EXPECT(&b, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 16, 0x01, 0x90, 0xb6, 0xd2, 0x7c, 0x3e,
           0x7a, 0x41, 0x9f, 0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f);
    pgbuf_free(&b);
}

Test(pgcopy, timestamptz)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_timestamptz(&b, 1000000);                  /* 2000-01-01T00:00:01Z */
    pgcopy_timestamptz(&b, INT64_C(-946684800000000)); /* 1970-01-01T00:00:00Z */
    pgcopy_timestamptz(&b, 0);
    EXPECT(&b, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, /* 1,000,000 = 0xf4240 */
           0, 0, 0, 8, 0xff, 0xfc, 0xa2, 0xfe, 0xc4, 0xc8, 0x20, 0x00, 0, 0, 0, 8, 0, 0, 0, 0, 0,
           0, 0, 0);
    pgbuf_free(&b);
}

Test(pgcopy, jsonb)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_jsonb(&b, "{\"a\":1}", 7);
    pgcopy_jsonb(&b, NULL, 0);
    EXPECT(&b, 0, 0, 0, 8, 0x01, '{', '"', 'a', '"', ':', '1', '}', 0, 0, 0, 1, 0x01);
    pgbuf_free(&b);
}

/* ---- text[] -------------------------------------------------------------------------------- */

Test(pgcopy, text_array_empty)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_text_array(&b, NULL, NULL, 0);
    EXPECT(&b, 0, 0, 0, 12, /* field length */
           0, 0, 0, 0,      /* ndim 0 */
           0, 0, 0, 0,      /* no nulls */
           0, 0, 0, 25);    /* element type text */
    pgbuf_free(&b);
}

Test(pgcopy, text_array_two)
{
    pgbuf b;
    pgbuf_init(&b);
    const char *items[] = {"rust", "memory"};
    const size_t lens[] = {4, 6};
    pgcopy_text_array(&b, items, lens, 2);
    EXPECT(&b, 0, 0, 0, 38,                                  /* 12 + 8 + (4+4) + (4+6) */
           0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25,              /* ndim 1, no nulls, text */
           0, 0, 0, 2, 0, 0, 0, 1,                           /* 2 elements, lower bound 1 */
           0, 0, 0, 4, 'r', 'u', 's', 't',                   /* "rust" */
           0, 0, 0, 6, 'm', 'e', 'm', 'o', 'r', 'y');        /* "memory" */
    pgbuf_reset(&b);
    pgcopy_text_array(&b, items, NULL, 2); /* lens from strlen */
    EXPECT(&b, 0, 0, 0, 38, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0,
           4, 'r', 'u', 's', 't', 0, 0, 0, 6, 'm', 'e', 'm', 'o', 'r', 'y');
    pgbuf_free(&b);
}

Test(pgcopy, text_array_null_and_empty_elements)
{
    pgbuf b;
    pgbuf_init(&b);
    const char *items[] = {"", NULL, "a"};
    const size_t lens[] = {0, 0, 1};
    pgcopy_text_array(&b, items, lens, 3);
    EXPECT(&b, 0, 0, 0, 33, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 25, /* has-nulls 1 */
           0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0,                  /* "" */
           0xff, 0xff, 0xff, 0xff,                              /* NULL */
           0, 0, 0, 1, 'a');
    pgcopy_text_array(&b, items, lens, -1);
    cr_assert(b.oom);
    pgbuf_free(&b);
}

/* ---- vectors ------------------------------------------------------------------------------- */

Test(pgcopy, vector_f32le)
{
    pgbuf b;
    pgbuf_init(&b);
    const unsigned char blob[1 + 8] = {0x99, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40};
    pgcopy_vector_f32le(&b, blob + 1, 2); /* unaligned BLOB */
    EXPECT(&b, 0, 0, 0, 12, 0x00, 0x02, 0x00, 0x00, 0x3f, 0x80, 0x00, 0x00, 0x40, 0x00, 0x00,
           0x00);
    pgbuf_free(&b);
}

Test(pgcopy, vector_floats)
{
    pgbuf b;
    pgbuf_init(&b);
    const float v[] = {1.0f, 2.0f};
    pgcopy_vector_floats(&b, v, 2);
    EXPECT(&b, 0, 0, 0, 12, 0x00, 0x02, 0x00, 0x00, 0x3f, 0x80, 0x00, 0x00, 0x40, 0x00, 0x00,
           0x00);
    pgbuf_free(&b);
}

Test(pgcopy, vector_bad_dim_sets_oom)
{
    pgbuf b;
    pgbuf_init(&b);
    const float v[1] = {0};
    pgcopy_vector_floats(&b, v, 0);
    cr_assert(b.oom);
    cr_assert_eq(b.len, 0);
    pgbuf_reset(&b);
    pgcopy_vector_f32le(&b, v, VEC_MAX_DIM + 1);
    cr_assert(b.oom);
    pgbuf_free(&b);
}

/* ---- a whole stream ------------------------------------------------------------------------ */

Test(pgcopy, full_stream)
{
    pgbuf b;
    pgbuf_init(&b);
    pgcopy_header(&b);
    pgcopy_tuple_begin(&b, 2);
    pgcopy_int4(&b, 1);
    pgcopy_text(&b, "hi", 2);
    pgcopy_tuple_begin(&b, 2);
    pgcopy_int4(&b, 2);
    pgcopy_null(&b);
    pgcopy_trailer(&b);
    EXPECT(&b, 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0, 0, 0, 0, 0, 0, 0, 0, 0,
           0, 2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 'h', 'i', /* tuple 1 */
           0, 2, 0, 0, 0, 4, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, /* tuple 2 */
           0xff, 0xff);
    pgbuf_free(&b);
}

Test(pgcopy, many_768d_tuples_reuse_buffer)
{
    enum { DIM = 768 };
    unsigned char blob[DIM * 4];
    for (int i = 0; i < DIM * 4; i++)
        blob[i] = (unsigned char)(i % 4 == 3 ? 0x3f : i);
    pgbuf b;
    pgbuf_init(&b);
    for (int batch = 0; batch < 3; batch++) {
        pgbuf_reset(&b);
        for (int row = 0; row < 1000; row++) {
            pgcopy_tuple_begin(&b, 2);
            pgcopy_int8(&b, row);
            pgcopy_vector_f32le(&b, blob, DIM);
        }
        cr_assert_not(b.oom);
        size_t per = 2 + 12 + 4 + 4 + 4 * DIM;
        cr_assert_eq(b.len, per * 1000);
        const unsigned char *last = b.data + per * 999;
        cr_assert_eq(last[1], 2);
        cr_assert_eq(last[14 + 2], 0x0c); /* field length 3076 = 0x0c04 */
        cr_assert_eq(last[14 + 3], 0x04);
        cr_assert_eq(last[14 + 4 + 0], 0x03);
        cr_assert_eq(last[14 + 4 + 1], 0x00); /* dim 768 = 0x0300 */
        cr_assert_eq(last[14 + 8], 0x3f);     /* first float, big-endian: bytes reversed */
        cr_assert_eq(last[14 + 9], 2);
        cr_assert_eq(last[14 + 10], 1);
        cr_assert_eq(last[14 + 11], 0);
    }
    pgbuf_free(&b);
}

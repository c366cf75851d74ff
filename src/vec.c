/* vec.c — vector encodings: little-endian float32 BLOB <-> pgvector binary/text. Byte shuffles
 * only, so results are identical on little- and big-endian hosts. */
#include "vec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4, "vec.c assumes 32-bit IEEE-754 float");

/* Exponent all ones = NaN or Infinity (IEEE-754 binary32). */
#define VEC_EXP_MASK UINT32_C(0x7f800000)

static inline uint32_t vec_load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t vec_load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void vec_store_be32(unsigned char *p, uint32_t x)
{
    p[0] = (unsigned char)(x >> 24);
    p[1] = (unsigned char)(x >> 16);
    p[2] = (unsigned char)(x >> 8);
    p[3] = (unsigned char)x;
}

static inline void vec_store_le32(unsigned char *p, uint32_t x)
{
    p[0] = (unsigned char)x;
    p[1] = (unsigned char)(x >> 8);
    p[2] = (unsigned char)(x >> 16);
    p[3] = (unsigned char)(x >> 24);
}

static inline uint32_t vec_float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline void vec_store_header(unsigned char *out, int dim)
{
    out[0] = (unsigned char)((unsigned)dim >> 8);
    out[1] = (unsigned char)dim;
    out[2] = 0;
    out[3] = 0;
}

int vec_first_nonfinite_f32le(const void *blob, int dim)
{
    const unsigned char *p = blob;
    for (int i = 0; i < dim; i++)
        if ((vec_load_le32(p + 4 * (size_t)i) & VEC_EXP_MASK) == VEC_EXP_MASK)
            return i;
    return -1;
}

vec_status vec_check_f32le(const void *blob, size_t len, int *dim)
{
    if (len == 0)
        return VEC_EMPTY;
    if (len % 4 != 0)
        return VEC_BAD_LENGTH;
    if (len / 4 > VEC_MAX_DIM)
        return VEC_TOO_MANY_DIMS;
    int n = (int)(len / 4);
    if (dim)
        *dim = n;
    /* A value is NaN/Infinity iff all its exponent bits are set. Accumulate without an early
     * exit: the common case (all finite) is one branch-free, vectorisable pass. */
    const unsigned char *p = blob;
    unsigned bad = 0;
    for (int i = 0; i < n; i++)
        bad |= (vec_load_le32(p + 4 * (size_t)i) & VEC_EXP_MASK) == VEC_EXP_MASK;
    return bad ? VEC_NOT_FINITE : VEC_OK;
}

const char *vec_status_text(vec_status s)
{
    switch (s) {
    case VEC_OK:
        return "ok";
    case VEC_EMPTY:
        return "empty vector (0 bytes)";
    case VEC_BAD_LENGTH:
        return "length is not a multiple of 4 bytes";
    case VEC_TOO_MANY_DIMS:
        return "more dimensions than pgvector's maximum of 16000";
    case VEC_NOT_FINITE:
        return "contains NaN or Infinity, which pgvector rejects";
    }
    return "unknown vector status";
}

void vec_status_describe(vec_status s, size_t len, int dim, char *buf, size_t buflen)
{
    if (buf == NULL || buflen == 0)
        return;
    switch (s) {
    case VEC_BAD_LENGTH:
        snprintf(buf, buflen, "length %zu is not a multiple of 4 bytes", len);
        return;
    case VEC_TOO_MANY_DIMS:
        snprintf(buf, buflen, "%zu dimensions exceeds pgvector's maximum of %d", len / 4,
                 VEC_MAX_DIM);
        return;
    case VEC_NOT_FINITE:
        snprintf(buf, buflen, "%d-dimensional vector contains NaN or Infinity, which pgvector "
                              "rejects", dim);
        return;
    case VEC_OK:
    case VEC_EMPTY:
        break;
    }
    snprintf(buf, buflen, "%s", vec_status_text(s));
}

size_t vec_f32le_to_pgbinary(const void *blob, int dim, unsigned char *out)
{
    const unsigned char *in = blob;
    vec_store_header(out, dim);
    unsigned char *o = out + 4;
    /* Little-endian -> big-endian is a byte reversal of each 4-byte group. */
    for (size_t i = 0, n = (size_t)dim * 4; i < n; i += 4) {
        o[i] = in[i + 3];
        o[i + 1] = in[i + 2];
        o[i + 2] = in[i + 1];
        o[i + 3] = in[i];
    }
    return VEC_PGBINARY_SIZE(dim);
}

size_t vec_floats_to_pgbinary(const float *v, int dim, unsigned char *out)
{
    vec_store_header(out, dim);
    for (int i = 0; i < dim; i++)
        vec_store_be32(out + 4 + 4 * (size_t)i, vec_float_bits(v[i]));
    return VEC_PGBINARY_SIZE(dim);
}

bool vec_pgbinary_to_floats(const unsigned char *in, size_t len, float *out, int maxdim, int *dim)
{
    if (in == NULL || len < 4)
        return false;
    int d = (int)(int16_t)(uint16_t)((unsigned)in[0] << 8 | in[1]);
    unsigned unused = (unsigned)in[2] << 8 | in[3];
    if (d < 1 || d > VEC_MAX_DIM)
        return false;
    if (dim)
        *dim = d;
    if (unused != 0 || len != VEC_PGBINARY_SIZE(d) || d > maxdim)
        return false;
    unsigned bad = 0;
    for (int i = 0; i < d; i++) {
        uint32_t u = vec_load_be32(in + 4 + 4 * (size_t)i);
        bad |= (u & VEC_EXP_MASK) == VEC_EXP_MASK;
        memcpy(&out[i], &u, sizeof u);
    }
    return !bad;
}

void vec_floats_to_f32le(const float *v, int dim, unsigned char *out)
{
    for (int i = 0; i < dim; i++)
        vec_store_le32(out + 4 * (size_t)i, vec_float_bits(v[i]));
}

/* Longest "%.9g" of a float32: "-1.23456789e-38" = 15 characters, plus a comma. */
#define VEC_TEXT_PER_ELEM 16

char *vec_to_text(const float *v, int dim)
{
    if (dim < 0)
        return NULL;
    size_t cap = (size_t)dim * VEC_TEXT_PER_ELEM + 3;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    size_t pos = 0;
    s[pos++] = '[';
    for (int i = 0; i < dim; i++) {
        if (i > 0)
            s[pos++] = ',';
        int n = snprintf(s + pos, cap - pos, "%.9g", (double)v[i]);
        if (n < 0 || (size_t)n >= cap - pos) { /* cannot happen for a float; stay safe */
            free(s);
            return NULL;
        }
        pos += (size_t)n;
    }
    s[pos++] = ']';
    s[pos] = '\0';
    return s;
}

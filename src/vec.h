/* vec.h — vector encodings: vestige's little-endian float32 BLOBs <-> pgvector's binary
 * (send/recv) layout and text form. Pure functions, no allocation except vec_to_text. */
#ifndef PGMEMCTL_VEC_H
#define PGMEMCTL_VEC_H

#include <stdbool.h>
#include <stddef.h>

/* pgvector's VECTOR_MAX_DIM (src/vector.h): the most dimensions a `vector` column accepts. */
#define VEC_MAX_DIM 16000

/* Bytes of pgvector's binary form for `dim` dimensions: int16 dim + int16 unused + dim float4. */
#define VEC_PGBINARY_SIZE(dim) ((size_t)4 + (size_t)4 * (size_t)(dim))

typedef enum {
    VEC_OK,            /* well-formed */
    VEC_EMPTY,         /* zero bytes: pgvector has no 0-dimensional vector */
    VEC_BAD_LENGTH,    /* length not a multiple of 4 bytes */
    VEC_TOO_MANY_DIMS, /* more than VEC_MAX_DIM floats */
    VEC_NOT_FINITE     /* contains NaN or +/-Infinity, which pgvector's vector_recv rejects */
} vec_status;

/* Checks a vestige embedding BLOB (node_embeddings.embedding): `len` bytes of little-endian
 * IEEE-754 float32. OK needs len > 0, len % 4 == 0, len / 4 <= VEC_MAX_DIM and every value
 * finite (pgvector's vector_recv/vector_in reject NaN and Infinity). `blob` need not be aligned;
 * it may be NULL only when len == 0. On VEC_OK and VEC_NOT_FINITE sets *dim = len / 4 (dim may
 * be NULL); otherwise *dim is left untouched. Tests the exponent bits, so no float is loaded. */
vec_status vec_check_f32le(const void *blob, size_t len, int *dim);

/* Index (0-based) of the first NaN/Infinity among `dim` little-endian float32 values in `blob`,
 * or -1 when all are finite. For rejection messages after vec_check_f32le said VEC_NOT_FINITE. */
int vec_first_nonfinite_f32le(const void *blob, int dim);

/* Short static reason for a status ("ok", "empty vector", ...). Never NULL; do not free. */
const char *vec_status_text(vec_status s);

/* Writes a human reason with numbers into buf (always NUL-terminated when buflen > 0, truncated
 * to fit), e.g. "length 10 is not a multiple of 4 bytes", "16001 dimensions exceeds pgvector's
 * maximum of 16000". `len` is the BLOB length in bytes, `dim` the value vec_check_f32le set
 * (only used for VEC_NOT_FINITE). Uses snprintf: for reports, not per-row hot paths. */
void vec_status_describe(vec_status s, size_t len, int dim, char *buf, size_t buflen);

/* Converts `dim` (1..VEC_MAX_DIM, already checked) little-endian float32 values to pgvector's
 * binary send/recv layout (pgvector src/vector.c vector_send/vector_recv): int16 dim,
 * int16 unused = 0, then dim float4, all big-endian (network order). `out` must have room for
 * VEC_PGBINARY_SIZE(dim) bytes. Neither pointer needs alignment; works on any host byte order
 * (bytes are reordered, values are never loaded as floats, so NaN payloads survive).
 * Returns the bytes written, 4 + 4 * dim. */
size_t vec_f32le_to_pgbinary(const void *blob, int dim, unsigned char *out);

/* Same layout from `dim` (1..VEC_MAX_DIM) host floats. Returns 4 + 4 * dim. */
size_t vec_floats_to_pgbinary(const float *v, int dim, unsigned char *out);

/* Decodes pgvector's binary layout (as written by vector_send) into host floats. Returns true
 * when: len >= 4, the int16 dim is 1..VEC_MAX_DIM, the unused int16 is 0 (vector_recv insists),
 * len == 4 + 4 * dim exactly, dim <= maxdim and every value is finite. *dim (may be NULL) is set
 * as soon as the header is readable and dim is 1..VEC_MAX_DIM — also when false is returned
 * because dim > maxdim, so a caller can size a bigger buffer. `out` (room for maxdim floats)
 * holds the dim values on success; after a false return its contents are unspecified. `in`
 * need not be aligned. */
bool vec_pgbinary_to_floats(const unsigned char *in, size_t len, float *out, int maxdim, int *dim);

/* Writes `dim` (>= 0) host floats as little-endian float32 into `out` (4 * dim bytes, no
 * alignment needed): the vestige BLOB format, for writing SQLite. */
void vec_floats_to_f32le(const float *v, int dim, unsigned char *out);

/* pgvector's text form "[0.1,-2,3.5e-07]" (what vector_in accepts), each element printed with
 * "%.9g" so that it parses back to the identical float32. dim 0 gives "[]" (which pgvector
 * itself would reject); NaN/Infinity print as "nan"/"inf" (also rejected by pgvector).
 * Returns a malloc'd NUL-terminated string the caller frees, or NULL on OOM or dim < 0.
 * Uses snprintf per element: for messages and tests, not the COPY hot path. */
char *vec_to_text(const float *v, int dim);

#endif

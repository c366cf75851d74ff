/* copy_binary.h — a growable byte buffer and a writer for PostgreSQL's binary COPY format
 * (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format"). */
#ifndef PGMEMCTL_COPY_BINARY_H
#define PGMEMCTL_COPY_BINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- pgbuf: growable byte buffer ------------------------------------------------------------
 * `data[0..len)` is the content, `cap` the allocated size. `oom` is sticky: once an allocation
 * fails (or a pgcopy_* writer is asked to encode something the format cannot hold, see below)
 * every later write is a no-op, so a caller checks `b->oom` once per tuple instead of after each
 * field. The buffer owns `data`; release it with pgbuf_free. A zeroed pgbuf is a valid empty
 * buffer (same as pgbuf_init). */
typedef struct {
    unsigned char *data;
    size_t len, cap;
    bool oom;
} pgbuf;

/* Empty buffer, no allocation yet. */
void pgbuf_init(pgbuf *b);

/* len = 0 and oom = false; keeps the allocation for reuse (one buffer per COPY batch). */
void pgbuf_reset(pgbuf *b);

/* Frees the data and leaves an empty, reusable buffer (as pgbuf_init). NULL-safe. */
void pgbuf_free(pgbuf *b);

/* Appends `extra` uninitialised bytes and returns a pointer to them for the caller to fill
 * (valid until the next call that can grow the buffer). Grows by doubling. Returns NULL and
 * sets b->oom when the allocation fails, when len + extra overflows, or when b->oom was already
 * set; the buffer is then unchanged. reserve(b, 0) returns a non-NULL pointer unless oom. */
unsigned char *pgbuf_reserve(pgbuf *b, size_t extra);

/* Appends n bytes from p (p may be NULL when n == 0). Sets b->oom on failure. */
void pgbuf_append(pgbuf *b, const void *p, size_t n);

/* ---- binary COPY writer ---------------------------------------------------------------------
 * Every writer appends to `b` and reports failure only through b->oom. Integers are written in
 * network byte order (big-endian) regardless of host. Each field writer emits the int32 field
 * length followed by the value in the type's binary send format; a tuple is
 * pgcopy_tuple_begin(n) followed by exactly n field writers. b->oom is also set (and nothing
 * written) when a value is too large for the int32 length word (> INT32_MAX bytes; PostgreSQL
 * itself refuses fields over 1 GB) or an argument is out of its documented range. */

/* File header: the 11-byte signature "PGCOPY\n\377\r\n\0", int32 flags 0 (no OIDs),
 * int32 header-extension length 0. 19 bytes. */
void pgcopy_header(pgbuf *b);

/* File trailer: int16 -1. */
void pgcopy_trailer(pgbuf *b);

/* Tuple start: int16 field count (must be >= 0; the server checks it against the column list). */
void pgcopy_tuple_begin(pgbuf *b, int16_t nfields);

/* A NULL field: length -1, no bytes. */
void pgcopy_null(pgbuf *b);

/* text / varchar / name (textsend: the raw bytes, no terminator, in the client encoding; the
 * server validates the encoding and rejects NUL). `s` may be NULL when len == 0. Also correct
 * for bytea (byteasend is the raw bytes too). */
void pgcopy_text(pgbuf *b, const char *s, size_t len);

/* int2send / int4send / int8send: 2, 4, 8 bytes big-endian two's complement. */
void pgcopy_int2(pgbuf *b, int16_t v);
void pgcopy_int4(pgbuf *b, int32_t v);
void pgcopy_int8(pgbuf *b, int64_t v);

/* float4send / float8send: the IEEE-754 bit pattern, big-endian (4 / 8 bytes). */
void pgcopy_float4(pgbuf *b, float v);
void pgcopy_float8(pgbuf *b, double v);

/* boolsend: one byte, 1 for true, 0 for false. */
void pgcopy_bool(pgbuf *b, bool v);

/* uuid_send: the 16 raw bytes in textual order (the bytes parse_uuid produces). */
void pgcopy_uuid(pgbuf *b, const unsigned char u[16]);

/* timestamptz_send (and timestamp_send) with integer datetimes (the only kind since
 * PostgreSQL 10): int64 microseconds since 2000-01-01 00:00:00 UTC, big-endian. */
void pgcopy_timestamptz(pgbuf *b, int64_t usec_since_2000_utc);

/* jsonb_send / jsonb_recv: a version byte 1 followed by the JSON text (len bytes, no NUL).
 * The server parses the text, so it must be valid JSON without \u0000 (jsonb rejects it). */
void pgcopy_jsonb(pgbuf *b, const char *json, size_t len);

/* A one-dimensional text[] in array_send's layout (src/backend/utils/adt/arrayfuncs.c):
 *   int32 ndim, int32 has-nulls flag, int32 element type OID (25 = text),
 *   per dimension: int32 length, int32 lower bound (1),
 *   per element: int32 length (-1 for NULL) and the bytes.
 * n == 0 gives an empty array exactly as array_send writes one: ndim 0, flags 0, OID 25 and
 * nothing else (12 bytes). items[i] == NULL writes a NULL element and sets the has-nulls flag.
 * lens may be NULL, then each item's length is strlen(items[i]). n < 0 sets oom. */
void pgcopy_text_array(pgbuf *b, const char *const *items, const size_t *lens, int n);

/* A pgvector `vector` from a vestige little-endian float32 BLOB holding `dim` values (checked
 * beforehand with vec_check_f32le; blob need not be aligned): field length 4 + 4 * dim, then
 * pgvector's vector_send layout (vec_f32le_to_pgbinary). dim outside 1..VEC_MAX_DIM sets oom. */
void pgcopy_vector_f32le(pgbuf *b, const void *blob, int dim);

/* Same from `dim` host floats (vec_floats_to_pgbinary). dim outside 1..VEC_MAX_DIM sets oom. */
void pgcopy_vector_floats(pgbuf *b, const float *v, int dim);

#endif

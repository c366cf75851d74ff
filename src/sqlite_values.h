/* sqlite_values.h — validators and converters for untrusted SQLite values (UUIDs, UTF-8 text,
 * timestamps, JSON tag arrays) before they are encoded for PostgreSQL. */
#ifndef PGMEMCTL_SQLITE_VALUES_H
#define PGMEMCTL_SQLITE_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Conventions: inputs are (pointer, length) pairs, need not be NUL-terminated, and may be NULL
 * when the length is 0. `why` buffers receive a short reason without a column name (the caller
 * prefixes it: "content: " + "invalid UTF-8 at byte 17 (overlong encoding)"); they are always
 * NUL-terminated when whylen > 0, truncated to fit, and may be NULL. Byte offsets and element
 * indexes in reasons are 0-based. No function allocates except tags_parse. */

/* ---- UUID ----------------------------------------------------------------------------------- */

/* Parses the canonical 36-character form 8-4-4-4-12 hex digits, either case
 * ("0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6f"); no braces, no "urn:uuid:", no surrounding spaces,
 * no 32-digit form. Writes the 16 bytes in textual order (uuid_send's layout) to out, which is
 * left untouched on failure. Returns false on any deviation. Any version/variant is accepted. */
bool parse_uuid(const char *s, size_t len, unsigned char out[16]);

/* Writes the canonical lower-case 36-character form plus NUL into out (37 bytes). */
void uuid_format(const unsigned char u[16], char out[37]);

/* ---- text ----------------------------------------------------------------------------------- */

/* True when s[0..len) is valid UTF-8 per RFC 3629 / Unicode Table 3-7 and contains no NUL
 * byte (PostgreSQL text cannot hold U+0000). Rejects overlong forms (C0/C1 leads, E0 80-9F,
 * F0 80-8F), UTF-16 surrogates U+D800-DFFF (ED A0-BF), code points above U+10FFFF (F4 90+ and
 * F5-FF leads), stray continuation bytes and truncated sequences. On false, why says which and
 * at which byte the offending sequence starts, e.g. "invalid UTF-8 at byte 3 (overlong
 * encoding)", "NUL byte at byte 5". ASCII is checked 8 bytes at a time. */
bool text_check(const char *s, size_t len, char *why, size_t whylen);

/* A copy of s[0..len) that is valid UTF-8 without NUL, for reports and messages that quote
 * untrusted text (PostgreSQL text and JSON must be valid UTF-8): every valid UTF-8 sequence
 * (U+0001..U+10FFFF) is copied as it is, every other byte (NUL included) is written as the four
 * characters \xHH (upper-case hex). Writes into out (outlen bytes, always NUL-terminated when
 * outlen > 0), stopping before a sequence or escape that does not fit, so a cut never splits
 * one. Returns the number of bytes of s copied (len when everything fit). s may be NULL when
 * len == 0. No allocation. */
size_t text_printable(const char *s, size_t len, char *out, size_t outlen);

/* ---- timestamps ------------------------------------------------------------------------------
 * Results are int64 microseconds since 2000-01-01 00:00:00 UTC, PostgreSQL's timestamptz
 * epoch (timestamptz_send's value), restricted to years 0001..9999 UTC:
 * PARSE_TS_MIN_USEC = 0001-01-01T00:00:00Z and PARSE_TS_MAX_USEC = 9999-12-31T23:59:59.999999Z.
 * Dates use Howard Hinnant's days_from_civil / civil_from_days
 * (http://howardhinnant.github.io/date_algorithms.html), proleptic Gregorian calendar; no
 * timegm/mktime, so neither the TZ variable nor time_t's range matters. */
#define PARSE_TS_MIN_USEC INT64_C(-63082281600000000)
#define PARSE_TS_MAX_USEC INT64_C(252455615999999999)

typedef enum {
    TS_OK,
    TS_BAD_FORMAT,   /* not one of the accepted shapes */
    TS_OUT_OF_RANGE, /* a field out of range (month 13, Feb 30, hour 24, second 60, offset
                      * 24:00) or the UTC result outside years 0001..9999 */
    TS_NEEDS_UNIT    /* a bare integer: a Unix epoch whose unit (s/ms) must come from the caller */
} ts_status;

/* Accepts, case-insensitively for the letters T and Z:
 *   YYYY-MM-DD{T| }HH:MM:SS[.f{1,9}][Z|+HH:MM|-HH:MM|+HHMM|-HHMM]
 * which covers RFC 3339 as vestige writes it through Rust chrono
 * ("2025-03-14T09:26:53.589793+00:00", "...Z"), rusqlite's "2025-03-14 09:26:53.589793+00:00"
 * and SQLite's datetime('now') "2025-03-14 09:26:53" / strftime('%Y-%m-%d %H:%M:%f').
 * No zone means UTC. Exactly 4 year digits (0001..9999), 2-digit fields, seconds required;
 * a fraction needs 1..9 digits and is TRUNCATED (not rounded) to microseconds, so
 * ".9999999" gives .999999 and never rolls into the next second. Offsets: hours 00-23, minutes
 * 00-59 ("-00:00" = UTC). Leap second ":60" is rejected (TS_OUT_OF_RANGE): chrono's Utc::now()
 * never produces one, and rejecting is safer than guessing. No leading/trailing whitespace;
 * no date-only form. Optional sign followed only by digits ("1700000000", "-5") gives
 * TS_NEEDS_UNIT (see parse_timestamp_any). *usec is written only on TS_OK. */
ts_status parse_timestamp_text(const char *s, size_t len, int64_t *usec);

typedef enum { EPOCH_NONE, EPOCH_S, EPOCH_MS } epoch_unit;

/* Unix epoch value v in seconds (EPOCH_S) or milliseconds (EPOCH_MS), negative = before 1970,
 * to microseconds since 2000 (subtracting 946684800 s). TS_OUT_OF_RANGE outside years
 * 0001..9999 UTC (which also rules out any overflow); EPOCH_NONE gives TS_NEEDS_UNIT.
 * *usec is written only on TS_OK. */
ts_status timestamp_from_epoch(int64_t v, epoch_unit unit, int64_t *usec);

/* parse_timestamp_text, plus: a bare optionally signed integer is converted with `unit` through
 * timestamp_from_epoch (TS_NEEDS_UNIT when unit is EPOCH_NONE, TS_OUT_OF_RANGE when it does not
 * fit int64). The one-call form for a TEXT column that may hold either. */
ts_status parse_timestamp_any(const char *s, size_t len, epoch_unit unit, int64_t *usec);

/* Static human reason for a status; never NULL, do not free. */
const char *ts_status_text(ts_status s);

/* Inverse for messages and tests: "2025-03-14T09:26:53.589793Z", always 6 fraction digits and
 * 'Z'. Any int64 is formatted (years outside 0001..9999 print with more digits or a '-').
 * out receives at most 40 bytes including the NUL. */
void timestamp_format(int64_t usec, char out[40]);

/* ---- tags ----------------------------------------------------------------------------------- */

typedef struct {
    char **items;  /* n NUL-terminated strings (no embedded NUL, valid UTF-8) */
    size_t *lens;  /* their byte lengths */
    int n;
} tags_list;

/* Parses vestige's tags column, a JSON array of strings such as ["rust","memory"], with cJSON.
 * len == 0 (SQL NULL or '') gives 0 tags. Whitespace around the array is allowed; anything else
 * after it is an error. Every element must be a string that passes text_check; a raw NUL byte
 * or a \u0000 escape is rejected (cJSON would silently cut the string there). Empty strings and
 * duplicates are kept as they are. On success *out holds the tags in one allocation the caller
 * releases with tags_free (items and lens are NULL when n == 0). On failure returns false, *out
 * is empty (safe to tags_free) and why says what is wrong, e.g. "element 2 is a number,
 * expected a string", "not valid JSON near byte 7", "JSON object, expected an array". */
bool tags_parse(const char *json, size_t len, tags_list *out, char *why, size_t whylen);

/* Frees what tags_parse allocated and empties the list. NULL-safe, idempotent. */
void tags_free(tags_list *t);

#endif

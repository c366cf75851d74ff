/* sqlite_values.c — validators and converters for untrusted SQLite values: UUIDs, UTF-8 text,
 * timestamps (to PostgreSQL's microseconds-since-2000) and vestige's JSON tag arrays. */
#include "sqlite_values.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static void parse_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void parse_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (why == NULL || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* ---- UUID ----------------------------------------------------------------------------------- */

static inline int parse_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool parse_uuid(const char *s, size_t len, unsigned char out[16])
{
    if (s == NULL || len != 36)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    unsigned char tmp[16];
    int nb = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (p[i] != '-')
                return false;
            i++;
            continue;
        }
        int hi = parse_hexval(p[i]), lo = parse_hexval(p[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        tmp[nb++] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    memcpy(out, tmp, 16);
    return true;
}

void uuid_format(const unsigned char u[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
    }
    out[o] = '\0';
}

/* ---- text ----------------------------------------------------------------------------------- */

#define PARSE_ONES UINT64_C(0x0101010101010101)
#define PARSE_HIGHS UINT64_C(0x8080808080808080)

bool text_check(const char *s, size_t len, char *why, size_t whylen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* Fast path: 8 bytes that are all ASCII (high bit clear) and non-zero. The zero-byte
         * test ((w - 0x01..) & ~w & 0x80..) is exact for "some byte is zero". */
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (((((w - PARSE_ONES) & ~w) | w) & PARSE_HIGHS) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned c = p[i];
        if (c < 0x80) {
            if (c == 0) {
                parse_why(why, whylen, "NUL (0x00) at byte %zu, not allowed in text", i);
                return false;
            }
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte (Table 3-7) */
        const char *range_err = NULL;  /* what a second byte outside lo..hi means */
        if (c <= 0xbf) {
            parse_why(why, whylen, "invalid UTF-8 at byte %zu (unexpected continuation byte)", i);
            return false;
        } else if (c <= 0xc1) {
            parse_why(why, whylen, "invalid UTF-8 at byte %zu (overlong encoding)", i);
            return false;
        } else if (c <= 0xdf) {
            need = 1;
        } else if (c <= 0xef) {
            need = 2;
            if (c == 0xe0) {
                lo = 0xa0;
                range_err = "overlong encoding";
            } else if (c == 0xed) {
                hi = 0x9f;
                range_err = "UTF-16 surrogate U+D800..U+DFFF";
            }
        } else if (c <= 0xf4) {
            need = 3;
            if (c == 0xf0) {
                lo = 0x90;
                range_err = "overlong encoding";
            } else if (c == 0xf4) {
                hi = 0x8f;
                range_err = "code point above U+10FFFF";
            }
        } else if (c <= 0xf7) {
            parse_why(why, whylen, "invalid UTF-8 at byte %zu (code point above U+10FFFF)", i);
            return false;
        } else {
            parse_why(why, whylen, "invalid UTF-8 at byte %zu (byte 0x%02X never occurs)", i, c);
            return false;
        }
        for (size_t k = 1; k <= need; k++) {
            if (i + k >= len) {
                parse_why(why, whylen, "invalid UTF-8 at byte %zu (truncated sequence)", i);
                return false;
            }
            unsigned b = p[i + k];
            if (b < 0x80 || b > 0xbf) {
                parse_why(why, whylen, "invalid UTF-8 at byte %zu (incomplete sequence)", i);
                return false;
            }
            if (k == 1 && (b < lo || b > hi)) {
                parse_why(why, whylen, "invalid UTF-8 at byte %zu (%s)", i, range_err);
                return false;
            }
        }
        i += need + 1;
    }
    return true;
}

size_t text_printable(const char *s, size_t len, char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n = 0; /* the length of the sequence c leads, 0 when it leads none */
        if (c < 0x80)
            n = 1;
        else if (c >= 0xc2 && c <= 0xdf)
            n = 2;
        else if (c >= 0xe0 && c <= 0xef)
            n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 4;
        bool valid = n > 0 && n <= len - i && text_check(s + i, n, NULL, 0);
        size_t w = valid ? n : 4;
        if (o + w >= outlen)
            break;
        if (valid)
            memcpy(out + o, p + i, n);
        else
            snprintf(out + o, 5, "\\x%02X", c);
        o += w;
        i += valid ? n : 1;
    }
    out[o] = '\0';
    return i;
}

/* ---- timestamps ------------------------------------------------------------------------------
 * Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms",
 * http://howardhinnant.github.io/date_algorithms.html: days_from_civil and civil_from_days,
 * proleptic Gregorian, day 0 = 1970-01-01, exact for any int64-representable range used here. */

#define PARSE_USEC_PER_SEC INT64_C(1000000)
#define PARSE_USEC_PER_DAY (INT64_C(86400) * PARSE_USEC_PER_SEC)
#define PARSE_DAYS_1970_TO_2000 INT64_C(10957)
#define PARSE_SECS_1970_TO_2000 INT64_C(946684800)

static int64_t parse_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);                             /* [0, 399] */
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;       /* [0, 365] */
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                 /* [0, 146096] */
    return era * 146097 + (int64_t)doe - 719468;
}

static void parse_civil_from_days(int64_t z, int64_t *py, unsigned *pm, unsigned *pd)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);                          /* [0, 146096] */
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    const int64_t y = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    const unsigned mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *pd = doy - (153 * mp + 2) / 5 + 1;                                         /* [1, 31] */
    *pm = mp < 10 ? mp + 3 : mp - 9;                                            /* [1, 12] */
    *py = y + (*pm <= 2);
}

static bool parse_is_leap(unsigned y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static unsigned parse_days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && parse_is_leap(y) ? 29 : dim[m - 1];
}

/* n decimal digits at p into *v; false if any is not a digit. */
static bool parse_digits(const unsigned char *p, size_t n, unsigned *v)
{
    unsigned x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        x = x * 10 + (unsigned)(p[i] - '0');
    }
    *v = x;
    return true;
}

/* Optional '+'/'-' then one or more digits and nothing else. */
static bool parse_is_integer(const unsigned char *p, size_t len)
{
    size_t i = 0;
    if (len > 0 && (p[0] == '+' || p[0] == '-'))
        i = 1;
    if (i == len)
        return false;
    for (; i < len; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

ts_status parse_timestamp_text(const char *s, size_t len, int64_t *usec)
{
    const unsigned char *p = (const unsigned char *)s;
    if (s == NULL || len == 0)
        return TS_BAD_FORMAT;
    if (parse_is_integer(p, len))
        return TS_NEEDS_UNIT;
    if (len < 19)
        return TS_BAD_FORMAT;

    unsigned y, mo, d, h, mi, sec;
    if (!parse_digits(p, 4, &y) || p[4] != '-' || !parse_digits(p + 5, 2, &mo) || p[7] != '-' ||
        !parse_digits(p + 8, 2, &d) || (p[10] != 'T' && p[10] != 't' && p[10] != ' ') ||
        !parse_digits(p + 11, 2, &h) || p[13] != ':' || !parse_digits(p + 14, 2, &mi) ||
        p[16] != ':' || !parse_digits(p + 17, 2, &sec))
        return TS_BAD_FORMAT;

    size_t i = 19;
    unsigned frac_us = 0; /* first 6 fraction digits; the rest are truncated */
    if (i < len && p[i] == '.') {
        i++;
        size_t nd = 0;
        while (i < len && p[i] >= '0' && p[i] <= '9') {
            if (nd < 6)
                frac_us = frac_us * 10 + (unsigned)(p[i] - '0');
            nd++;
            i++;
        }
        if (nd == 0 || nd > 9)
            return TS_BAD_FORMAT;
        for (size_t k = nd; k < 6; k++)
            frac_us *= 10;
    }

    int64_t offset_sec = 0; /* local = UTC + offset */
    unsigned oh = 0, om = 0;
    if (i < len) {
        if (p[i] == 'Z' || p[i] == 'z') {
            i++;
        } else if (p[i] == '+' || p[i] == '-') {
            int sign = p[i] == '-' ? -1 : 1;
            size_t rest = len - i - 1;
            const unsigned char *z = p + i + 1;
            if (rest == 5 && parse_digits(z, 2, &oh) && z[2] == ':' && parse_digits(z + 3, 2, &om))
                i = len;
            else if (rest == 4 && parse_digits(z, 2, &oh) && parse_digits(z + 2, 2, &om))
                i = len;
            else
                return TS_BAD_FORMAT;
            offset_sec = sign * (int64_t)(oh * 3600 + om * 60);
        } else {
            return TS_BAD_FORMAT;
        }
    }
    if (i != len)
        return TS_BAD_FORMAT;

    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > parse_days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 59 || oh > 23 || om > 59)
        return TS_OUT_OF_RANGE;

    int64_t days = parse_days_from_civil(y, mo, d) - PARSE_DAYS_1970_TO_2000;
    int64_t secs = days * 86400 + (int64_t)(h * 3600 + mi * 60 + sec) - offset_sec;
    int64_t v = secs * PARSE_USEC_PER_SEC + frac_us; /* |v| < 2.6e17: no overflow */
    if (v < PARSE_TS_MIN_USEC || v > PARSE_TS_MAX_USEC)
        return TS_OUT_OF_RANGE;
    *usec = v;
    return TS_OK;
}

ts_status timestamp_from_epoch(int64_t v, epoch_unit unit, int64_t *usec)
{
    /* Unix seconds of the first and last second of years 0001..9999 UTC. */
    const int64_t min_s = PARSE_TS_MIN_USEC / PARSE_USEC_PER_SEC + PARSE_SECS_1970_TO_2000;
    const int64_t max_s = (PARSE_TS_MAX_USEC - (PARSE_USEC_PER_SEC - 1)) / PARSE_USEC_PER_SEC +
                          PARSE_SECS_1970_TO_2000;
    switch (unit) {
    case EPOCH_S:
        if (v < min_s || v > max_s)
            return TS_OUT_OF_RANGE;
        *usec = (v - PARSE_SECS_1970_TO_2000) * PARSE_USEC_PER_SEC;
        return TS_OK;
    case EPOCH_MS:
        if (v < min_s * 1000 || v > max_s * 1000 + 999)
            return TS_OUT_OF_RANGE;
        *usec = (v - PARSE_SECS_1970_TO_2000 * 1000) * 1000;
        return TS_OK;
    case EPOCH_NONE:
        break;
    }
    return TS_NEEDS_UNIT;
}

ts_status parse_timestamp_any(const char *s, size_t len, epoch_unit unit, int64_t *usec)
{
    ts_status st = parse_timestamp_text(s, len, usec);
    if (st != TS_NEEDS_UNIT || unit == EPOCH_NONE)
        return st;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    bool neg = false;
    if (p[0] == '+' || p[0] == '-') {
        neg = p[0] == '-';
        i = 1;
    }
    /* Accumulate negatively so INT64_MIN is representable. */
    int64_t v = 0;
    for (; i < len; i++) {
        int dgt = p[i] - '0';
        if (v < (INT64_MIN + dgt) / 10)
            return TS_OUT_OF_RANGE;
        v = v * 10 - dgt;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return TS_OUT_OF_RANGE;
        v = -v;
    }
    return timestamp_from_epoch(v, unit, usec);
}

const char *ts_status_text(ts_status s)
{
    switch (s) {
    case TS_OK:
        return "ok";
    case TS_BAD_FORMAT:
        return "not a timestamp in the form YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|+HH:MM]";
    case TS_OUT_OF_RANGE:
        return "timestamp field out of range or outside years 0001..9999";
    case TS_NEEDS_UNIT:
        return "a bare number (Unix epoch?) whose unit is unknown; give the epoch unit (s or ms)";
    }
    return "unknown timestamp status";
}

void timestamp_format(int64_t usec, char out[40])
{
    int64_t days = usec / PARSE_USEC_PER_DAY;
    int64_t rem = usec % PARSE_USEC_PER_DAY;
    if (rem < 0) {
        rem += PARSE_USEC_PER_DAY;
        days--;
    }
    int64_t y;
    unsigned m, d;
    parse_civil_from_days(days + PARSE_DAYS_1970_TO_2000, &y, &m, &d);
    unsigned us = (unsigned)(rem % PARSE_USEC_PER_SEC);
    unsigned secs = (unsigned)(rem / PARSE_USEC_PER_SEC);
    snprintf(out, 40, "%04lld-%02u-%02uT%02u:%02u:%02u.%06uZ", (long long)y, m, d, secs / 3600,
             secs / 60 % 60, secs % 60, us);
}

/* ---- tags ----------------------------------------------------------------------------------- */

static const char *parse_json_kind(const cJSON *j)
{
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNull(j))
        return "null";
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsObject(j))
        return "an object";
    return "an unknown JSON value";
}

static bool parse_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void tags_free(tags_list *t)
{
    if (t == NULL)
        return;
    free(t->items); /* one block: pointers, lengths, then the strings */
    t->items = NULL;
    t->lens = NULL;
    t->n = 0;
}

bool tags_parse(const char *json, size_t len, tags_list *out, char *why, size_t whylen)
{
    out->items = NULL;
    out->lens = NULL;
    out->n = 0;
    if (why && whylen > 0)
        why[0] = '\0';
    if (len == 0)
        return true;

    /* A raw NUL would end a cJSON string early without an error. */
    const char *nul = memchr(json, '\0', len);
    if (nul != NULL) {
        parse_why(why, whylen, "NUL (0x00) at byte %zu, not allowed in text",
                  (size_t)(nul - json));
        return false;
    }

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (root == NULL) {
        size_t off = end != NULL && end >= json ? (size_t)(end - json) : 0;
        parse_why(why, whylen, "not valid JSON near byte %zu", off > len ? len : off);
        return false;
    }
    bool ok = false;
    size_t tail = (size_t)(end - json);
    while (tail < len && parse_json_space(json[tail]))
        tail++;
    if (tail < len) {
        parse_why(why, whylen, "not valid JSON near byte %zu (text after the value)", tail);
        goto done;
    }
    if (!cJSON_IsArray(root)) {
        parse_why(why, whylen, "not a JSON array (found %s), expected an array of strings",
                  parse_json_kind(root));
        goto done;
    }
    /* cJSON decodes \u0000 into a NUL that silently cuts the string; the JSON is valid here, so
     * every backslash is inside a string and starts a two-character escape. */
    for (size_t i = 0; i + 1 < len; i++) {
        if (json[i] != '\\')
            continue;
        if (json[i + 1] == 'u' && i + 5 < len && memcmp(json + i + 2, "0000", 4) == 0) {
            parse_why(why, whylen, "\\u0000 escape at byte %zu, NUL is not allowed in text", i);
            goto done;
        }
        i++; /* skip the escaped character */
    }

    int n = cJSON_GetArraySize(root);
    size_t strbytes = 0;
    int idx = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, root) {
        if (!cJSON_IsString(el) || el->valuestring == NULL) {
            parse_why(why, whylen, "element %d is %s, expected a string", idx,
                      parse_json_kind(el));
            goto done;
        }
        size_t l = strlen(el->valuestring);
        char sub[96];
        if (!text_check(el->valuestring, l, sub, sizeof sub)) {
            parse_why(why, whylen, "element %d: %s", idx, sub);
            goto done;
        }
        strbytes += l + 1;
        idx++;
    }
    if (n == 0) {
        ok = true;
        goto done;
    }

    size_t lens_off = (size_t)n * sizeof(char *);
    lens_off = (lens_off + alignof(size_t) - 1) / alignof(size_t) * alignof(size_t);
    size_t str_off = lens_off + (size_t)n * sizeof(size_t);
    unsigned char *block = malloc(str_off + strbytes);
    if (block == NULL) {
        parse_why(why, whylen, "out of memory");
        goto done;
    }
    char **items = (char **)(void *)block;
    size_t *lens = (size_t *)(void *)(block + lens_off);
    char *sp = (char *)block + str_off;
    idx = 0;
    cJSON_ArrayForEach(el, root) {
        size_t l = strlen(el->valuestring);
        memcpy(sp, el->valuestring, l + 1);
        items[idx] = sp;
        lens[idx] = l;
        sp += l + 1;
        idx++;
    }
    out->items = items;
    out->lens = lens;
    out->n = n;
    ok = true;
done:
    cJSON_Delete(root);
    return ok;
}

/* test_sqlite_values.c — unit tests for src/sqlite_values.c: UUIDs, UTF-8 text checks, timestamp parsing and
 * formatting (PostgreSQL microseconds since 2000), and vestige JSON tag arrays. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_values.h"

/* Copies s into a malloc'd buffer of exactly strlen(s) bytes, no NUL, so ASan catches any read
 * past the length. */
static char *test_exact(const char *s, size_t *len)
{
    *len = strlen(s);
    char *p = malloc(*len ? *len : 1);
    cr_assert_not_null(p);
    memcpy(p, s, *len);
    return p;
}

/* ---- UUID ----------------------------------------------------------------------------------- */

Test(uuid, parse_lower_upper_mixed)
{
    const unsigned char want[16] = {0x01, 0x90, 0xb6, 0xd2, 0x7c, 0x3e, 0x7a, 0x41,
                                    0x9f, 0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f};
    const char *forms[] = {"0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6f",
                           "0190B6D2-7C3E-7A41-9F00-1A2B3C4D5E6F",
                           "0190b6D2-7c3E-7A41-9f00-1a2B3c4D5e6F"};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        unsigned char u[16];
        size_t len;
        char *s = test_exact(forms[i], &len);
        cr_assert(parse_uuid(s, len, u), "%s", forms[i]);
        cr_assert_eq(memcmp(u, want, 16), 0, "%s", forms[i]);
        free(s);
    }
}

Test(uuid, parse_extremes)
{
    unsigned char u[16];
    cr_assert(parse_uuid("00000000-0000-0000-0000-000000000000", 36, u));
    for (int i = 0; i < 16; i++)
        cr_assert_eq(u[i], 0);
    cr_assert(parse_uuid("ffffffff-ffff-ffff-ffff-ffffffffffff", 36, u));
    for (int i = 0; i < 16; i++)
        cr_assert_eq(u[i], 0xff);
}

Test(uuid, parse_rejects)
{
    const char *bad[] = {
        "",
        "0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6",       /* 35 chars */
        "0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6f0",     /* 37 chars */
        "{0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6f}",    /* braces */
        "urn:uuid:0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6f",
        "0190b6d27c3e7a419f001a2b3c4d5e6f",          /* no dashes */
        "0190b6d2-7c3e-7a41-9f001a2b3c4d5e6f-",      /* dash misplaced */
        "0190b6d2_7c3e-7a41-9f00-1a2b3c4d5e6f",      /* wrong separator */
        "0190b6g2-7c3e-7a41-9f00-1a2b3c4d5e6f",      /* non-hex */
        " 190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6f",      /* space */
        "0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6\xc3",   /* high byte */
        "0190b6d2--c3e-7a41-9f00-1a2b3c4d5e6f",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unsigned char u[16];
        memset(u, 0x5a, 16);
        cr_assert_not(parse_uuid(bad[i], strlen(bad[i]), u), "accepted \"%s\"", bad[i]);
        cr_assert_eq(u[0], 0x5a, "out written on failure for \"%s\"", bad[i]);
    }
    unsigned char u[16];
    cr_assert_not(parse_uuid(NULL, 0, u));
    /* A NUL inside the 36 bytes is not a hex digit. */
    cr_assert_not(parse_uuid("0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e\0f", 36, u));
}

Test(uuid, format_and_roundtrip)
{
    const unsigned char u[16] = {0x01, 0x90, 0xb6, 0xd2, 0x7c, 0x3e, 0x7a, 0x41,
                                 0x9f, 0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f};
    char out[37];
    memset(out, 'x', sizeof out);
    uuid_format(u, out);
    cr_assert_str_eq(out, "0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6f");
    unsigned char back[16];
    cr_assert(parse_uuid("0190B6D2-7C3E-7A41-9F00-1A2B3C4D5E6F", 36, back));
    uuid_format(back, out);
    cr_assert_str_eq(out, "0190b6d2-7c3e-7a41-9f00-1a2b3c4d5e6f", "format is lower case");
}

/* ---- text_check ----------------------------------------------------------------------------- */

static void test_text_ok(const char *s, size_t len)
{
    char why[128] = "untouched";
    cr_assert(text_check(s, len, why, sizeof why), "rejected (%s)", why);
}

static void test_text_bad(const char *s, size_t len, const char *want_why)
{
    char why[128] = "";
    cr_assert_not(text_check(s, len, why, sizeof why), "accepted, expected \"%s\"", want_why);
    cr_assert_str_eq(why, want_why);
}

Test(text, accepts_valid)
{
    test_text_ok("", 0);
    test_text_ok(NULL, 0);
    test_text_ok("plain ASCII, long enough for the 8-byte fast path.", 50);
    test_text_ok("caf\xc3\xa9", 5);                        /* 2-byte */
    test_text_ok("\xe2\x82\xac", 3);                       /* U+20AC euro, 3-byte */
    test_text_ok("\xf0\x9f\x98\x80 emoji", 10);            /* U+1F600, 4-byte */
    test_text_ok("\xc2\x80", 2);                           /* U+0080 smallest 2-byte */
    test_text_ok("\xdf\xbf", 2);                           /* U+07FF */
    test_text_ok("\xe0\xa0\x80", 3);                       /* U+0800 smallest 3-byte */
    test_text_ok("\xed\x9f\xbf", 3);                       /* U+D7FF below surrogates */
    test_text_ok("\xee\x80\x80", 3);                       /* U+E000 above surrogates */
    test_text_ok("\xef\xbf\xbf", 3);                       /* U+FFFF */
    test_text_ok("\xf0\x90\x80\x80", 4);                   /* U+10000 smallest 4-byte */
    test_text_ok("\xf4\x8f\xbf\xbf", 4);                   /* U+10FFFF largest */
    test_text_ok("\x01\x7f\t\n", 4);                       /* controls other than NUL */
    test_text_ok("12345678\xf0\x9f\x98\x80" "12345678", 20); /* emoji between fast blocks */
}

Test(text, rejects_nul)
{
    test_text_bad("a\0b", 3, "NUL (0x00) at byte 1, not allowed in text");
    test_text_bad("\0", 1, "NUL (0x00) at byte 0, not allowed in text");
    /* NUL inside an otherwise all-ASCII 8-byte block must not slip through the fast path. */
    test_text_bad("abcdefgh" "abc\0efgh", 16, "NUL (0x00) at byte 11, not allowed in text");
    test_text_bad("abcdefg\0", 8, "NUL (0x00) at byte 7, not allowed in text");
}

Test(text, rejects_overlong)
{
    test_text_bad("\xc0\xaf", 2, "invalid UTF-8 at byte 0 (overlong encoding)");
    test_text_bad("\xc1\xbf", 2, "invalid UTF-8 at byte 0 (overlong encoding)");
    test_text_bad("ab\xe0\x80\xaf", 5, "invalid UTF-8 at byte 2 (overlong encoding)");
    test_text_bad("\xe0\x9f\xbf", 3, "invalid UTF-8 at byte 0 (overlong encoding)");
    test_text_bad("\xf0\x80\x80\xaf", 4, "invalid UTF-8 at byte 0 (overlong encoding)");
    test_text_bad("\xf0\x8f\xbf\xbf", 4, "invalid UTF-8 at byte 0 (overlong encoding)");
}

Test(text, rejects_surrogates)
{
    test_text_bad("\xed\xa0\x80", 3, "invalid UTF-8 at byte 0 (UTF-16 surrogate U+D800..U+DFFF)");
    test_text_bad("x\xed\xbf\xbf", 4, "invalid UTF-8 at byte 1 (UTF-16 surrogate U+D800..U+DFFF)");
    /* CESU-8 style surrogate pair for U+1F600 */
    test_text_bad("\xed\xa0\xbd\xed\xb8\x80", 6,
                  "invalid UTF-8 at byte 0 (UTF-16 surrogate U+D800..U+DFFF)");
}

Test(text, rejects_above_max)
{
    test_text_bad("\xf4\x90\x80\x80", 4, "invalid UTF-8 at byte 0 (code point above U+10FFFF)");
    test_text_bad("\xf5\x80\x80\x80", 4, "invalid UTF-8 at byte 0 (code point above U+10FFFF)");
    test_text_bad("\xf7\xbf\xbf\xbf", 4, "invalid UTF-8 at byte 0 (code point above U+10FFFF)");
    test_text_bad("\xf8\x88\x80\x80\x80", 5, "invalid UTF-8 at byte 0 (byte 0xF8 never occurs)");
    test_text_bad("ok\xff", 3, "invalid UTF-8 at byte 2 (byte 0xFF never occurs)");
    test_text_bad("\xfe", 1, "invalid UTF-8 at byte 0 (byte 0xFE never occurs)");
}

Test(text, rejects_truncated_and_stray)
{
    test_text_bad("\xc3", 1, "invalid UTF-8 at byte 0 (truncated sequence)");
    test_text_bad("abc\xe2\x82", 5, "invalid UTF-8 at byte 3 (truncated sequence)");
    test_text_bad("\xf0\x9f\x98", 3, "invalid UTF-8 at byte 0 (truncated sequence)");
    test_text_bad("\xe2\x82x", 3, "invalid UTF-8 at byte 0 (incomplete sequence)");
    test_text_bad("\xc3(", 2, "invalid UTF-8 at byte 0 (incomplete sequence)");
    test_text_bad("\xf0\x9f\x98\xc3\xa9", 5, "invalid UTF-8 at byte 0 (incomplete sequence)");
    test_text_bad("\x80", 1, "invalid UTF-8 at byte 0 (unexpected continuation byte)");
    test_text_bad("caf\xc3\xa9\xa9", 6, "invalid UTF-8 at byte 5 (unexpected continuation byte)");
    /* Latin-1 "café" */
    test_text_bad("caf\xe9", 4, "invalid UTF-8 at byte 3 (truncated sequence)");
}

Test(text, offset_after_fast_path)
{
    char buf[40];
    memset(buf, 'a', sizeof buf);
    buf[17] = (char)0xc0;
    buf[18] = (char)0xaf;
    test_text_bad(buf, sizeof buf, "invalid UTF-8 at byte 17 (overlong encoding)");
}

Test(text, exact_length_no_overread)
{
    size_t len;
    char *s = test_exact("0123456789abcdef\xc3\xa9xyz", &len);
    test_text_ok(s, len);
    free(s);
    s = test_exact("0123456789abcde\xe2\x82", &len); /* truncated at the very end */
    test_text_bad(s, len, "invalid UTF-8 at byte 15 (truncated sequence)");
    free(s);
}

Test(text, why_optional_and_truncated)
{
    cr_assert_not(text_check("\xff", 1, NULL, 0));
    char small[10];
    cr_assert_not(text_check("\xff", 1, small, sizeof small));
    cr_assert_str_eq(small, "invalid U");
}

Test(text, printable_escapes_what_is_not_utf8)
{
    char out[64];
    /* valid text as it is, multi-byte sequences included */
    cr_assert_eq(text_printable("caf\xc3\xa9 \xf0\x9f\xa6\x80", 10, out, sizeof out), 10);
    cr_assert_str_eq(out, "caf\xc3\xa9 \xf0\x9f\xa6\x80");
    /* a Latin-1 byte, a NUL, a lone continuation byte, a surrogate, a truncated sequence */
    cr_assert_eq(text_printable("a\xe9" "b\0c\x80\xed\xa0\x80\xe2\x82", 11, out, sizeof out), 11);
    cr_assert_str_eq(out, "a\\xE9b\\x00c\\x80\\xED\\xA0\\x80\\xE2\\x82");
    cr_assert(text_check(out, strlen(out), NULL, 0));
    cr_assert_eq(text_printable(NULL, 0, out, sizeof out), 0);
    cr_assert_str_eq(out, "");
}

Test(text, printable_never_cuts_a_sequence_or_escape)
{
    char out[6];
    /* "ab" + "é" (2 bytes) fits in 5 bytes; the next "é" does not */
    cr_assert_eq(text_printable("ab\xc3\xa9\xc3\xa9", 6, out, sizeof out), 4);
    cr_assert_str_eq(out, "ab\xc3\xa9");
    /* "a" + an escape (4) fits; a second escape does not */
    cr_assert_eq(text_printable("a\xff\xff", 3, out, sizeof out), 2);
    cr_assert_str_eq(out, "a\\xFF");
    char one[1] = {'z'};
    cr_assert_eq(text_printable("abc", 3, one, sizeof one), 0);
    cr_assert_eq(one[0], '\0');
}

/* ---- timestamps ----------------------------------------------------------------------------- */

static int64_t test_ts_ok(const char *s)
{
    size_t len;
    char *p = test_exact(s, &len);
    int64_t us = INT64_MIN;
    ts_status st = parse_timestamp_text(p, len, &us);
    free(p);
    cr_assert_eq(st, TS_OK, "\"%s\": %s", s, ts_status_text(st));
    return us;
}

static void test_ts_status(const char *s, ts_status want)
{
    size_t len;
    char *p = test_exact(s, &len);
    int64_t us = 12345;
    ts_status st = parse_timestamp_text(p, len, &us);
    free(p);
    cr_assert_eq(st, want, "\"%s\": got %d (%s), want %d", s, st, ts_status_text(st), want);
    cr_assert_eq(us, 12345, "\"%s\": usec written on failure", s);
}

Test(timestamp, epoch_boundaries)
{
    cr_assert_eq(test_ts_ok("2000-01-01T00:00:00Z"), 0);
    cr_assert_eq(test_ts_ok("2000-01-01T00:00:01Z"), 1000000);
    cr_assert_eq(test_ts_ok("1999-12-31T23:59:59.999999Z"), -1);
    cr_assert_eq(test_ts_ok("1970-01-01T00:00:00Z"), INT64_C(-946684800000000));
    cr_assert_eq(test_ts_ok("1970-01-01 00:00:00"), INT64_C(-946684800000000));
    cr_assert_eq(test_ts_ok("1969-07-20T20:17:40Z"), INT64_C(-960867740000000));
    cr_assert_eq(test_ts_ok("1900-01-01T00:00:00Z"), INT64_C(-3155673600000000));
}

Test(timestamp, vestige_chrono_forms)
{
    const int64_t want = INT64_C(795259613589793); /* 2025-03-14T09:26:53.589793Z */
    cr_assert_eq(test_ts_ok("2025-03-14T09:26:53.589793+00:00"), want);
    cr_assert_eq(test_ts_ok("2025-03-14T09:26:53.589793Z"), want);
    cr_assert_eq(test_ts_ok("2025-03-14t09:26:53.589793z"), want);
    cr_assert_eq(test_ts_ok("2025-03-14 09:26:53.589793+00:00"), want); /* rusqlite */
    cr_assert_eq(test_ts_ok("2025-03-14 09:26:53.589793"), want);
    cr_assert_eq(test_ts_ok("2025-03-14T09:26:53.589793-00:00"), want);
    cr_assert_eq(test_ts_ok("2025-03-14T09:26:53.589793+0000"), want);
    cr_assert_eq(test_ts_ok("2025-03-14T09:26:53.589793000+00:00"), want); /* nanoseconds */
}

Test(timestamp, sqlite_forms)
{
    cr_assert_eq(test_ts_ok("2025-03-14 09:30:00"), INT64_C(795259800000000));
    cr_assert_eq(test_ts_ok("2025-03-14 09:30:00.123"), INT64_C(795259800123000));
    cr_assert_eq(test_ts_ok("2025-03-14 09:30:00.5"), INT64_C(795259800500000));
}

Test(timestamp, offsets)
{
    const int64_t t0930z = INT64_C(795259800000000); /* 2025-03-14T09:30:00Z */
    cr_assert_eq(test_ts_ok("2025-03-14T15:00:00+05:30"), t0930z);
    cr_assert_eq(test_ts_ok("2025-03-14T15:00:00+0530"), t0930z);
    cr_assert_eq(test_ts_ok("2025-03-14T01:30:00-08:00"), t0930z);
    cr_assert_eq(test_ts_ok("2025-03-14T01:30:00-0800"), t0930z);
    cr_assert_eq(test_ts_ok("2025-03-14 15:00:00+05:30"), t0930z);
    /* Crossing a day and a year boundary: 2024-12-31T20:00-08:00 = 2025-01-01T04:00Z. */
    cr_assert_eq(test_ts_ok("2024-12-31T20:00:00-08:00"), INT64_C(789019200000000));
    cr_assert_eq(test_ts_ok("2025-01-01T04:00:00Z"), INT64_C(789019200000000));
    cr_assert_eq(test_ts_ok("2000-01-01T23:59:59+23:59"), 59 * INT64_C(1000000));
    cr_assert_eq(test_ts_ok("1999-12-31T00:01:00-23:59"), 0);
}

Test(timestamp, fraction_truncation)
{
    cr_assert_eq(test_ts_ok("2000-01-01T00:00:00.999999999Z"), 999999, "truncated, not rounded");
    cr_assert_eq(test_ts_ok("2000-01-01T00:00:00.9999995Z"), 999999);
    cr_assert_eq(test_ts_ok("2000-01-01T00:00:00.0000009Z"), 0);
    cr_assert_eq(test_ts_ok("2000-01-01T00:00:00.1Z"), 100000);
    cr_assert_eq(test_ts_ok("2000-01-01T00:00:00.12Z"), 120000);
    cr_assert_eq(test_ts_ok("2000-01-01T00:00:00.000001Z"), 1);
    cr_assert_eq(test_ts_ok("2000-01-01T00:00:00.123456789Z"), 123456);
    cr_assert_eq(test_ts_ok("1999-12-31T23:59:59.9999999Z"), -1);
    /* Negative values: the fraction is added to the (negative) whole seconds. */
    cr_assert_eq(test_ts_ok("1970-01-01T00:00:00.5Z"), INT64_C(-946684799500000));
}

Test(timestamp, leap_years)
{
    cr_assert_eq(test_ts_ok("2024-02-29T12:00:00Z"), INT64_C(762523200000000));
    test_ts_ok("2000-02-29T00:00:00Z"); /* divisible by 400 */
    test_ts_ok("1600-02-29T00:00:00Z");
    test_ts_ok("0004-02-29T00:00:00Z");
    test_ts_status("2023-02-29T00:00:00Z", TS_OUT_OF_RANGE);
    test_ts_status("1900-02-29T00:00:00Z", TS_OUT_OF_RANGE); /* divisible by 100 */
    test_ts_status("2100-02-29T00:00:00Z", TS_OUT_OF_RANGE);
    test_ts_status("2024-02-30T00:00:00Z", TS_OUT_OF_RANGE);
    /* 2024-03-01 is one day after 2024-02-29 */
    cr_assert_eq(test_ts_ok("2024-03-01T12:00:00Z") - test_ts_ok("2024-02-29T12:00:00Z"),
                 INT64_C(86400000000));
    cr_assert_eq(test_ts_ok("2023-03-01T00:00:00Z") - test_ts_ok("2023-02-28T00:00:00Z"),
                 INT64_C(86400000000));
}

Test(timestamp, field_ranges)
{
    test_ts_status("2025-00-10T00:00:00Z", TS_OUT_OF_RANGE);
    test_ts_status("2025-13-10T00:00:00Z", TS_OUT_OF_RANGE);
    test_ts_status("2025-01-00T00:00:00Z", TS_OUT_OF_RANGE);
    test_ts_status("2025-01-32T00:00:00Z", TS_OUT_OF_RANGE);
    test_ts_status("2025-04-31T00:00:00Z", TS_OUT_OF_RANGE);
    test_ts_status("2025-06-31T00:00:00Z", TS_OUT_OF_RANGE);
    test_ts_status("2025-01-10T24:00:00Z", TS_OUT_OF_RANGE);
    test_ts_status("2025-01-10T23:60:00Z", TS_OUT_OF_RANGE);
    test_ts_status("2016-12-31T23:59:60Z", TS_OUT_OF_RANGE); /* leap second: rejected */
    test_ts_status("2025-01-10T23:59:99Z", TS_OUT_OF_RANGE);
    test_ts_status("2025-01-10T00:00:00+24:00", TS_OUT_OF_RANGE);
    test_ts_status("2025-01-10T00:00:00+05:60", TS_OUT_OF_RANGE);
    test_ts_ok("2025-12-31T23:59:59Z");
    test_ts_ok("2025-01-31T00:00:00Z");
    test_ts_ok("2025-04-30T00:00:00Z");
}

Test(timestamp, year_range)
{
    cr_assert_eq(test_ts_ok("0001-01-01T00:00:00Z"), PARSE_TS_MIN_USEC);
    cr_assert_eq(test_ts_ok("9999-12-31T23:59:59.999999Z"), PARSE_TS_MAX_USEC);
    cr_assert_eq(test_ts_ok("9999-12-31T23:59:59.999999999Z"), PARSE_TS_MAX_USEC);
    test_ts_status("0000-12-31T23:59:59Z", TS_OUT_OF_RANGE);
    /* Inside the calendar range locally, outside it in UTC. */
    test_ts_status("0001-01-01T00:00:00+00:01", TS_OUT_OF_RANGE);
    test_ts_status("9999-12-31T23:59:59-00:01", TS_OUT_OF_RANGE);
    cr_assert_eq(test_ts_ok("0001-01-01T00:01:00+00:01"), PARSE_TS_MIN_USEC);
    test_ts_status("10000-01-01T00:00:00Z", TS_BAD_FORMAT); /* 5-digit year */
}

Test(timestamp, bad_formats)
{
    const char *bad[] = {
        "",
        "2025-03-14",                          /* date only */
        "2025-03-14T09:26",                    /* no seconds */
        "2025-3-14T09:26:53Z",                 /* 1-digit month */
        "2025-03-14T9:26:53Z",
        "25-03-14T09:26:53Z",
        "2025/03/14 09:26:53",
        "2025-03-14X09:26:53",
        "2025-03-14T09-26-53",
        "2025-03-14T09:26:53.",                /* empty fraction */
        "2025-03-14T09:26:53.1234567890Z",     /* 10 fraction digits */
        "2025-03-14T09:26:53,5Z",              /* comma fraction */
        "2025-03-14T09:26:53+05",              /* hour-only offset */
        "2025-03-14T09:26:53+5:30",
        "2025-03-14T09:26:53+05:3",
        "2025-03-14T09:26:53+05:300",
        "2025-03-14T09:26:53+05-30",
        "2025-03-14T09:26:53ZZ",
        "2025-03-14T09:26:53Z ",               /* trailing space */
        " 2025-03-14T09:26:53Z",               /* leading space */
        "2025-03-14T09:26:53 Z",
        "2025-03-14T09:26:53 UTC",
        "2025-03-14T09:26:53+",
        "2025-03-14  09:26:53",
        "+2025-03-14T09:26:53Z",
        "1700000000.5",                        /* fractional epoch */
        "-",
        "+",
        "1e9",
        "now",
        "2025-03-14T09:26:53\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        test_ts_status(bad[i], TS_BAD_FORMAT);
    int64_t us;
    cr_assert_eq(parse_timestamp_text(NULL, 0, &us), TS_BAD_FORMAT);
    /* An embedded NUL inside the length is just a bad character. */
    cr_assert_eq(parse_timestamp_text("2025-03-14T09:26:53\0Z", 21, &us), TS_BAD_FORMAT);
}

Test(timestamp, bare_numbers_need_unit)
{
    test_ts_status("1700000000", TS_NEEDS_UNIT);
    test_ts_status("1700000000123", TS_NEEDS_UNIT);
    test_ts_status("0", TS_NEEDS_UNIT);
    test_ts_status("-5", TS_NEEDS_UNIT);
    test_ts_status("+12", TS_NEEDS_UNIT);
    test_ts_status("20250314", TS_NEEDS_UNIT);
    test_ts_status("99999999999999999999999", TS_NEEDS_UNIT);
}

Test(timestamp, from_epoch)
{
    int64_t us = 7;
    cr_assert_eq(timestamp_from_epoch(0, EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, INT64_C(-946684800000000));
    cr_assert_eq(timestamp_from_epoch(946684800, EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, 0);
    cr_assert_eq(timestamp_from_epoch(INT64_C(946684800000), EPOCH_MS, &us), TS_OK);
    cr_assert_eq(us, 0);
    cr_assert_eq(timestamp_from_epoch(1700000000, EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, INT64_C(753315200000000)); /* 2023-11-14T22:13:20Z */
    cr_assert_eq(timestamp_from_epoch(INT64_C(1700000000123), EPOCH_MS, &us), TS_OK);
    cr_assert_eq(us, INT64_C(753315200123000));
    cr_assert_eq(timestamp_from_epoch(-1, EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, INT64_C(-946684801000000));
    cr_assert_eq(timestamp_from_epoch(-1, EPOCH_MS, &us), TS_OK);
    cr_assert_eq(us, INT64_C(-946684800001000));
}

Test(timestamp, from_epoch_range)
{
    int64_t us = 7;
    cr_assert_eq(timestamp_from_epoch(INT64_C(-62135596800), EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, PARSE_TS_MIN_USEC);
    cr_assert_eq(timestamp_from_epoch(INT64_C(253402300799), EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, PARSE_TS_MAX_USEC - 999999);
    cr_assert_eq(timestamp_from_epoch(INT64_C(253402300799999), EPOCH_MS, &us), TS_OK);
    cr_assert_eq(us, PARSE_TS_MAX_USEC - 999);
    cr_assert_eq(timestamp_from_epoch(INT64_C(-62135596800000), EPOCH_MS, &us), TS_OK);
    cr_assert_eq(us, PARSE_TS_MIN_USEC);
    us = 7;
    cr_assert_eq(timestamp_from_epoch(INT64_C(-62135596801), EPOCH_S, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(timestamp_from_epoch(INT64_C(253402300800), EPOCH_S, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(timestamp_from_epoch(INT64_C(-62135596800001), EPOCH_MS, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(timestamp_from_epoch(INT64_C(253402300800000), EPOCH_MS, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(timestamp_from_epoch(INT64_MAX, EPOCH_S, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(timestamp_from_epoch(INT64_MIN, EPOCH_S, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(timestamp_from_epoch(INT64_MAX, EPOCH_MS, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(timestamp_from_epoch(INT64_MIN, EPOCH_MS, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(timestamp_from_epoch(0, EPOCH_NONE, &us), TS_NEEDS_UNIT);
    cr_assert_eq(timestamp_from_epoch(0, (epoch_unit)42, &us), TS_NEEDS_UNIT);
    cr_assert_eq(us, 7, "usec written on failure");
}

Test(timestamp, parse_any)
{
    int64_t us = 7;
    cr_assert_eq(parse_timestamp_any("1700000000", 10, EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, INT64_C(753315200000000));
    cr_assert_eq(parse_timestamp_any("1700000000123", 13, EPOCH_MS, &us), TS_OK);
    cr_assert_eq(us, INT64_C(753315200123000));
    cr_assert_eq(parse_timestamp_any("+946684800", 10, EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, 0);
    cr_assert_eq(parse_timestamp_any("-1", 2, EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, INT64_C(-946684801000000));
    cr_assert_eq(parse_timestamp_any("2000-01-01T00:00:01Z", 20, EPOCH_S, &us), TS_OK);
    cr_assert_eq(us, 1000000);
    us = 7;
    cr_assert_eq(parse_timestamp_any("1700000000", 10, EPOCH_NONE, &us), TS_NEEDS_UNIT);
    cr_assert_eq(parse_timestamp_any("253402300800", 12, EPOCH_S, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(parse_timestamp_any("9223372036854775807", 19, EPOCH_MS, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(parse_timestamp_any("9223372036854775808", 19, EPOCH_MS, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(parse_timestamp_any("-9223372036854775808", 20, EPOCH_S, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(parse_timestamp_any("-9223372036854775809", 20, EPOCH_S, &us), TS_OUT_OF_RANGE);
    cr_assert_eq(parse_timestamp_any("99999999999999999999999", 23, EPOCH_S, &us),
                 TS_OUT_OF_RANGE);
    cr_assert_eq(parse_timestamp_any("17e8", 4, EPOCH_S, &us), TS_BAD_FORMAT);
    cr_assert_eq(parse_timestamp_any("", 0, EPOCH_S, &us), TS_BAD_FORMAT);
    cr_assert_eq(us, 7);
}

Test(timestamp, status_text)
{
    cr_assert_str_eq(ts_status_text(TS_OK), "ok");
    cr_assert_not_null(strstr(ts_status_text(TS_BAD_FORMAT), "YYYY-MM-DD"));
    cr_assert_not_null(strstr(ts_status_text(TS_OUT_OF_RANGE), "out of range"));
    cr_assert_not_null(strstr(ts_status_text(TS_NEEDS_UNIT), "epoch unit"));
    cr_assert_str_eq(ts_status_text((ts_status)99), "unknown timestamp status");
}

static void test_fmt(int64_t us, const char *want)
{
    char out[40];
    memset(out, 'x', sizeof out);
    timestamp_format(us, out);
    cr_assert_str_eq(out, want);
}

Test(timestamp, format)
{
    test_fmt(0, "2000-01-01T00:00:00.000000Z");
    test_fmt(1000000, "2000-01-01T00:00:01.000000Z");
    test_fmt(-1, "1999-12-31T23:59:59.999999Z");
    test_fmt(INT64_C(-946684800000000), "1970-01-01T00:00:00.000000Z");
    test_fmt(INT64_C(795259613589793), "2025-03-14T09:26:53.589793Z");
    test_fmt(INT64_C(762523200000000), "2024-02-29T12:00:00.000000Z");
    test_fmt(PARSE_TS_MIN_USEC, "0001-01-01T00:00:00.000000Z");
    test_fmt(PARSE_TS_MAX_USEC, "9999-12-31T23:59:59.999999Z");
    /* Far outside the parseable range it still formats without overflow. */
    char out[40];
    timestamp_format(INT64_MAX, out);
    cr_assert_str_eq(out, "294277-01-09T04:00:54.775807Z");
    timestamp_format(INT64_MIN, out);
    cr_assert_str_eq(out, "-290278-12-22T19:59:05.224192Z");
}

Test(timestamp, format_parse_roundtrip)
{
    /* xorshift64 over the whole supported range, plus every day boundary in 1999..2001. */
    uint64_t x = UINT64_C(88172645463325252);
    const uint64_t span = (uint64_t)(PARSE_TS_MAX_USEC - PARSE_TS_MIN_USEC) + 1;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t us = PARSE_TS_MIN_USEC + (int64_t)(x % span);
        char out[40];
        timestamp_format(us, out);
        int64_t back = 0;
        cr_assert_eq(parse_timestamp_text(out, strlen(out), &back), TS_OK, "%s", out);
        cr_assert_eq(back, us, "%s", out);
    }
    for (int64_t d = -366; d <= 366; d++) {
        int64_t us = d * INT64_C(86400000000);
        char out[40];
        timestamp_format(us, out);
        int64_t back = 0;
        cr_assert_eq(parse_timestamp_text(out, strlen(out), &back), TS_OK, "%s", out);
        cr_assert_eq(back, us, "%s", out);
        timestamp_format(us - 1, out);
        cr_assert_eq(parse_timestamp_text(out, strlen(out), &back), TS_OK, "%s", out);
        cr_assert_eq(back, us - 1, "%s", out);
    }
}

/* ---- tags ----------------------------------------------------------------------------------- */

static void test_tags_ok(const char *json, int n, const char *const *want)
{
    size_t len;
    char *p = test_exact(json, &len);
    tags_list t;
    char why[160] = "";
    cr_assert(tags_parse(p, len, &t, why, sizeof why), "%s: %s", json, why);
    free(p);
    cr_assert_eq(t.n, n, "%s: n = %d", json, t.n);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(t.items[i], want[i]);
        cr_assert_eq(t.lens[i], strlen(want[i]));
    }
    if (n == 0) {
        cr_assert_null(t.items);
        cr_assert_null(t.lens);
    }
    tags_free(&t);
    cr_assert_null(t.items);
    cr_assert_eq(t.n, 0);
    tags_free(&t);
}

static void test_tags_bad(const char *json, size_t len, const char *want_why)
{
    char *p = malloc(len ? len : 1);
    cr_assert_not_null(p);
    memcpy(p, json, len);
    tags_list t = {(char **)p, NULL, 99}; /* garbage in: must be reset */
    char why[160] = "";
    cr_assert_not(tags_parse(p, len, &t, why, sizeof why), "accepted %s", json);
    free(p);
    cr_assert_str_eq(why, want_why, "%s: got \"%s\"", json, why);
    cr_assert_null(t.items);
    cr_assert_null(t.lens);
    cr_assert_eq(t.n, 0);
    tags_free(&t);
}

#define BAD(lit, why) test_tags_bad((lit), sizeof(lit) - 1, (why))

Test(tags, good)
{
    const char *two[] = {"rust", "memory"};
    test_tags_ok("[\"rust\",\"memory\"]", 2, two);
    test_tags_ok(" \n[ \"rust\" , \"memory\" ]\t\r\n", 2, two);
    test_tags_ok("[]", 0, NULL);
    test_tags_ok("  [ ]  ", 0, NULL);
    const char *one[] = {"x"};
    test_tags_ok("[\"x\"]", 1, one);
    const char *esc[] = {"caf\xc3\xa9", "\xf0\x9f\x98\x80", "a\"b\\c/", "tab\there", "", "x"};
    test_tags_ok("[\"caf\\u00e9\",\"\\ud83d\\ude00\",\"a\\\"b\\\\c\\/\",\"tab\\there\",\"\",\"x\"]",
                 6, esc);
    const char *raw[] = {"caf\xc3\xa9", "\xf0\x9f\x98\x80"};
    test_tags_ok("[\"caf\xc3\xa9\",\"\xf0\x9f\x98\x80\"]", 2, raw);
    const char *dup[] = {"a", "a"};
    test_tags_ok("[\"a\",\"a\"]", 2, dup);
    /* A literal backslash followed by u0000 is not a NUL escape. */
    const char *bs[] = {"\\u0000"};
    test_tags_ok("[\"\\\\u0000\"]", 1, bs);
}

Test(tags, empty_input)
{
    tags_list t;
    char why[64] = "stale";
    cr_assert(tags_parse(NULL, 0, &t, why, sizeof why));
    cr_assert_eq(t.n, 0);
    cr_assert_null(t.items);
    cr_assert_str_eq(why, "");
    tags_free(&t);
    cr_assert(tags_parse("", 0, &t, NULL, 0));
    tags_free(&t);
}

Test(tags, many)
{
    char json[20000];
    size_t pos = 0;
    json[pos++] = '[';
    for (int i = 0; i < 1000; i++)
        pos += (size_t)snprintf(json + pos, sizeof json - pos, "%s\"tag%d\"", i ? "," : "", i);
    json[pos++] = ']';
    tags_list t;
    char why[128];
    cr_assert(tags_parse(json, pos, &t, why, sizeof why), "%s", why);
    cr_assert_eq(t.n, 1000);
    cr_assert_str_eq(t.items[999], "tag999");
    cr_assert_eq(t.lens[999], 6);
    cr_assert_str_eq(t.items[0], "tag0");
    tags_free(&t);
}

Test(tags, wrong_types)
{
    BAD("[\"a\",\"b\",3]", "element 2 is a number, expected a string");
    BAD("[null]", "element 0 is null, expected a string");
    BAD("[\"a\",true]", "element 1 is a boolean, expected a string");
    BAD("[[\"nested\"]]", "element 0 is an array, expected a string");
    BAD("[{\"a\":1}]", "element 0 is an object, expected a string");
    BAD("{\"tags\":[\"a\"]}", "not a JSON array (found an object), expected an array of strings");
    BAD("\"rust\"", "not a JSON array (found a string), expected an array of strings");
    BAD("null", "not a JSON array (found null), expected an array of strings");
    BAD("42", "not a JSON array (found a number), expected an array of strings");
}

Test(tags, invalid_json)
{
    BAD("[\"a\",", "not valid JSON near byte 4"); /* cJSON points at the last byte */
    BAD("[\"a\"", "not valid JSON near byte 3");
    BAD("rust,memory", "not valid JSON near byte 0");
    BAD("[\"a\"] x", "not valid JSON near byte 6 (text after the value)");
    BAD("[\"a\"][]", "not valid JSON near byte 5 (text after the value)");
    BAD("[\"\\ud800\"]", "not valid JSON near byte 2");       /* lone high surrogate */
    BAD("[\"\\udc00\"]", "not valid JSON near byte 2");       /* lone low surrogate */
    BAD("[\"\\x41\"]", "not valid JSON near byte 2");         /* not a JSON escape */
}

Test(tags, nul_rejected)
{
    BAD("[\"a\\u0000b\"]", "\\u0000 escape at byte 3, NUL is not allowed in text");
    BAD("[\"ok\",\"\\u0000\"]", "\\u0000 escape at byte 7, NUL is not allowed in text");
    BAD("[\"a\0b\"]", "NUL (0x00) at byte 3, not allowed in text");
    BAD("[\"a\"]\0", "NUL (0x00) at byte 5, not allowed in text");
}

Test(tags, invalid_utf8_rejected)
{
    BAD("[\"ok\",\"x\xc0\xaf\"]", "element 1: invalid UTF-8 at byte 1 (overlong encoding)");
    BAD("[\"\xed\xa0\x80\"]",
        "element 0: invalid UTF-8 at byte 0 (UTF-16 surrogate U+D800..U+DFFF)");
    BAD("[\"caf\xe9\"]", "element 0: invalid UTF-8 at byte 3 (truncated sequence)");
}

Test(tags, why_optional)
{
    tags_list t;
    cr_assert_not(tags_parse("[1]", 3, &t, NULL, 0));
    tags_free(&t);
}

/* test_embed_http.c — unit tests for the pure parts of the HTTP embedders (src/embed_http.c):
 * token estimate, UTF-8 truncation, request splitting, retry-after parsing, backoff, the retry
 * decision, request bodies, response validation and server error messages; the choice of CA
 * certificates (SSL_CERT_FILE, SSL_CERT_DIR, libcurl's default, the distributions' bundles) and
 * which transport errors are final; and the embedder-level behaviour that needs no server (specs,
 * options, fingerprints, builtin status). */
#include "common/testutil.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "embed.h"
#include "embed_http.h"

TestSuite(embed_http, .fini = tu_leak_check);

/* ---- token estimate, truncation, splitting -------------------------------------------------- */

Test(embed_http, token_estimate_rounds_up)
{
    cr_assert_eq(embed_http_tokens(0), 0);
    cr_assert_eq(embed_http_tokens(1), 1);
    cr_assert_eq(embed_http_tokens(4), 1);
    cr_assert_eq(embed_http_tokens(5), 2);
    cr_assert_eq(embed_http_tokens(8191 * 4), 8191);
    cr_assert_eq(embed_http_tokens(8191 * 4 + 1), 8192);
}

Test(embed_http, utf8_prefix_never_splits_a_character)
{
    const char *s = "h\xc3\xa9llo"; /* h é l l o: é is 2 bytes at offsets 1-2 */
    cr_assert_eq(embed_http_utf8_prefix(s, 6, 10), 6, "short texts are kept whole");
    cr_assert_eq(embed_http_utf8_prefix(s, 6, 6), 6);
    cr_assert_eq(embed_http_utf8_prefix(s, 6, 1), 1);
    cr_assert_eq(embed_http_utf8_prefix(s, 6, 2), 1, "cutting inside é backs up to before it");
    cr_assert_eq(embed_http_utf8_prefix(s, 6, 3), 3);
    cr_assert_eq(embed_http_utf8_prefix(s, 6, 0), 0);

    const char *e = "a\xf0\x9f\x98\x80z"; /* a, a 4-byte emoji, z */
    for (size_t max = 1; max <= 4; max++)
        cr_assert_eq(embed_http_utf8_prefix(e, 6, max), 1, "max %zu", max);
    cr_assert_eq(embed_http_utf8_prefix(e, 6, 5), 5);

    const char *k = "\xe6\x9d\xb1\xe4\xba\xac"; /* 東京: 3 bytes each */
    cr_assert_eq(embed_http_utf8_prefix(k, 6, 4), 3);
    cr_assert_eq(embed_http_utf8_prefix(k, 6, 5), 3);
    cr_assert_eq(embed_http_utf8_prefix(k, 6, 2), 0);

    /* Invalid UTF-8: a run of continuation bytes longer than any sequence is cut at max. */
    const char bad[] = "\x80\x80\x80\x80\x80\x80\x80\x80";
    cr_assert_eq(embed_http_utf8_prefix(bad, 8, 6), 6);
}

Test(embed_http, utf8_prefix_of_a_long_text_is_valid_and_maximal)
{
    /* 3-byte characters across the 32,764-byte limit: the cut lands on a character boundary. */
    size_t n = 11000 * 3;
    char *t = malloc(n);
    cr_assert_not_null(t);
    for (size_t i = 0; i < n; i += 3)
        memcpy(t + i, "\xe2\x82\xac", 3); /* € */
    size_t max = (size_t)EMBED_HTTP_MAX_INPUT_TOKENS * 4;
    size_t k = embed_http_utf8_prefix(t, n, max);
    cr_assert_eq(k % 3, 0, "cut at %zu", k);
    cr_assert_leq(k, max);
    cr_assert_gt(k + 3, max, "the longest such prefix");
    free(t);
}

Test(embed_http, next_request_bounds_count_and_tokens)
{
    size_t *tok = malloc(5000 * sizeof *tok);
    cr_assert_not_null(tok);
    for (size_t i = 0; i < 5000; i++)
        tok[i] = 100;
    /* By count: 5,000 small inputs → 2048 + 2048 + 904. */
    size_t at = 0, sizes[8], nreq = 0;
    while (at < 5000) {
        size_t k = embed_http_next_request(tok + at, 5000 - at, EMBED_HTTP_MAX_INPUTS, EMBED_HTTP_MAX_REQUEST_TOKENS);
        cr_assert_gt(k, 0);
        sizes[nreq++] = k;
        at += k;
    }
    cr_assert_eq(nreq, 3);
    cr_assert_eq(sizes[0], 2048);
    cr_assert_eq(sizes[1], 2048);
    cr_assert_eq(sizes[2], 904);

    /* By tokens: inputs at the per-input limit, 300000 / 8191 = 36 per request. */
    for (size_t i = 0; i < 100; i++)
        tok[i] = EMBED_HTTP_MAX_INPUT_TOKENS;
    cr_assert_eq(embed_http_next_request(tok, 100, EMBED_HTTP_MAX_INPUTS, EMBED_HTTP_MAX_REQUEST_TOKENS), 36);

    /* A sum exactly at the limit fits; one more token does not. */
    size_t t3[] = {100, 200, 300};
    cr_assert_eq(embed_http_next_request(t3, 3, 10, 600), 3);
    cr_assert_eq(embed_http_next_request(t3, 3, 10, 599), 2);
    cr_assert_eq(embed_http_next_request(t3, 3, 2, 600), 2);
    /* A single input over the token limit still travels (alone). */
    size_t big[] = {1000, 1};
    cr_assert_eq(embed_http_next_request(big, 2, 10, 500), 1);
    cr_assert_eq(embed_http_next_request(big, 0, 10, 500), 0);
    free(tok);
}

/* ---- retry-after, backoff, the decision ----------------------------------------------------- */

Test(embed_http, retry_after_ms_values)
{
    double s = -1;
    cr_assert(embed_http_parse_retry_after_ms("1500", &s));
    cr_assert_float_eq(s, 1.5, 1e-12);
    cr_assert(embed_http_parse_retry_after_ms(" 250 ", &s));
    cr_assert_float_eq(s, 0.25, 1e-12);
    cr_assert(embed_http_parse_retry_after_ms("2.5", &s));
    cr_assert_float_eq(s, 0.0025, 1e-12);
    cr_assert(embed_http_parse_retry_after_ms("0", &s));
    cr_assert_eq(s, 0.0);
    const char *bad[] = {"", " ", "-1", "+5", "abc", "12abc", "inf", "nan", "0x10", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s = 42;
        cr_assert_not(embed_http_parse_retry_after_ms(bad[i], &s), "\"%s\" accepted", bad[i]);
        cr_assert_eq(s, 42);
    }
    cr_assert_not(embed_http_parse_retry_after_ms(NULL, &s));
}

Test(embed_http, retry_after_seconds_and_dates)
{
    double s = -1;
    time_t now = 1445412450; /* 2015-10-21 07:27:30 UTC */
    cr_assert(embed_http_parse_retry_after("7", now, &s));
    cr_assert_eq(s, 7.0);
    cr_assert(embed_http_parse_retry_after(" 120 ", now, &s));
    cr_assert_eq(s, 120.0);
    cr_assert(embed_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now, &s));
    cr_assert_eq(s, 30.0);
    cr_assert(embed_http_parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now, &s)); /* RFC 850 */
    cr_assert_eq(s, 30.0);
    cr_assert(embed_http_parse_retry_after("Wed Oct 21 07:28:00 2015", now, &s)); /* asctime */
    cr_assert_eq(s, 30.0);
    cr_assert(embed_http_parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now, &s));
    cr_assert_eq(s, 0.0, "a date in the past means now");
    const char *bad[] = {"", "-5", "5 s", "1.5", "soon"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s = 42;
        cr_assert_not(embed_http_parse_retry_after(bad[i], now, &s), "\"%s\" accepted", bad[i]);
        cr_assert_eq(s, 42);
    }
    cr_assert_not(embed_http_parse_retry_after(NULL, now, &s));
}

Test(embed_http, backoff_is_full_jitter_capped)
{
    cr_assert_eq(embed_http_backoff(0, 0.0), 0.0);
    cr_assert_float_eq(embed_http_backoff(0, 0.5), 0.25, 1e-12);
    cr_assert_float_eq(embed_http_backoff(1, 0.5), 0.5, 1e-12);
    cr_assert_float_eq(embed_http_backoff(3, 0.5), 2.0, 1e-12);
    cr_assert_float_eq(embed_http_backoff(6, 0.5), 15.0, 1e-12, "0.5 * 2^6 = 32 is capped at 30");
    cr_assert_float_eq(embed_http_backoff(1000, 0.5), 15.0, 1e-12);
    for (int r = 0; r < 40; r++) {
        double d = embed_http_backoff(r, 0.999999);
        cr_assert(d >= 0 && d < EMBED_HTTP_BACKOFF_CAP, "retry %d: %g", r, d);
    }
    cr_assert_eq(embed_http_backoff(2, -1), 0.0);
    cr_assert_eq(embed_http_backoff(2, NAN), 0.0);
}

Test(embed_http, retryable_statuses)
{
    long yes[] = {0, 408, 409, 429, 500, 502, 503, 504, 599};
    long no[] = {200, 201, 301, 400, 401, 403, 404, 413, 422, 600};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        cr_assert(embed_http_status_retryable(yes[i]), "%ld", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        cr_assert_not(embed_http_status_retryable(no[i]), "%ld", no[i]);
}

Test(embed_http, retry_decision)
{
    time_t now = 1445412450;
    embed_http_retry r;

    long fail[] = {400, 401, 403, 404, 422, 302};
    for (size_t i = 0; i < sizeof fail / sizeof *fail; i++) {
        r = embed_http_retry_decide(fail[i], "100", "1", 0, 6, 600, now, 0.5);
        cr_assert_eq(r.verdict, EMBED_HTTP_FAIL, "%ld must fail at once", fail[i]);
    }

    /* Server hints: retry-after-ms wins over retry-after; a malformed one is ignored. */
    r = embed_http_retry_decide(429, "1500", "9", 0, 6, 600, now, 0.5);
    cr_assert_eq(r.verdict, EMBED_HTTP_RETRY);
    cr_assert_float_eq(r.delay, 1.5, 1e-12);
    cr_assert(r.server_delay);
    r = embed_http_retry_decide(429, NULL, "2", 0, 6, 600, now, 0.5);
    cr_assert_float_eq(r.delay, 2.0, 1e-12);
    cr_assert(r.server_delay);
    r = embed_http_retry_decide(429, "soon", "3", 0, 6, 600, now, 0.5);
    cr_assert_float_eq(r.delay, 3.0, 1e-12);
    r = embed_http_retry_decide(503, NULL, "Wed, 21 Oct 2015 07:28:00 GMT", 0, 6, 600, now, 0.5);
    cr_assert_float_eq(r.delay, 30.0, 1e-12);

    /* No hint: backoff with the caller's jitter. */
    r = embed_http_retry_decide(500, NULL, NULL, 0, 6, 600, now, 0.5);
    cr_assert_eq(r.verdict, EMBED_HTTP_RETRY);
    cr_assert_float_eq(r.delay, 0.25, 1e-12);
    cr_assert_not(r.server_delay);
    r = embed_http_retry_decide(0, NULL, NULL, 2, 6, 600, now, 1.0 - 1e-9);
    cr_assert_eq(r.verdict, EMBED_HTTP_RETRY, "transport errors are retried");
    cr_assert_float_eq(r.delay, 2.0, 1e-6);
    long again[] = {408, 409, 429, 502, 503, 504};
    for (size_t i = 0; i < sizeof again / sizeof *again; i++)
        cr_assert_eq(embed_http_retry_decide(again[i], NULL, NULL, 0, 6, 600, now, 0.1).verdict, EMBED_HTTP_RETRY,
                     "%ld", again[i]);

    /* Bounded by max_retries ... */
    r = embed_http_retry_decide(500, NULL, NULL, 6, 6, 600, now, 0.5);
    cr_assert_eq(r.verdict, EMBED_HTTP_GIVE_UP_RETRIES);
    r = embed_http_retry_decide(429, "10", NULL, 0, 0, 600, now, 0.5);
    cr_assert_eq(r.verdict, EMBED_HTTP_GIVE_UP_RETRIES, "max_retries 0: no retry");
    /* ... and by the overall deadline. */
    r = embed_http_retry_decide(429, NULL, "120", 0, 6, 60, now, 0.5);
    cr_assert_eq(r.verdict, EMBED_HTTP_GIVE_UP_TIMEOUT);
    cr_assert_float_eq(r.delay, 120.0, 1e-12);
    r = embed_http_retry_decide(500, NULL, NULL, 0, 6, 0, now, 0.5);
    cr_assert_eq(r.verdict, EMBED_HTTP_GIVE_UP_TIMEOUT);
}

/* ---- request bodies ------------------------------------------------------------------------- */

Test(embed_http, request_bodies)
{
    /* Texts need not be NUL-terminated, and JSON-special characters survive the round trip. */
    const char buf[] = "first text, then \"quoted\"\n\\ and \xc3\xa9\x01XXXX";
    const char *texts[] = {buf, buf + 6};
    size_t lens[] = {5, sizeof buf - 1 - 6 - 4};
    char *body = embed_http_request_body(EMBED_HTTP_OPENAI, "text-embedding-3-small", texts, lens, 2, 256);
    cr_assert_not_null(body);
    cJSON *doc = cJSON_Parse(body);
    cr_assert_not_null(doc, "%s", body);
    cr_assert_str_eq(cJSON_GetObjectItem(doc, "model")->valuestring, "text-embedding-3-small");
    cr_assert_eq(cJSON_GetObjectItem(doc, "dimensions")->valuedouble, 256);
    const cJSON *in = cJSON_GetObjectItem(doc, "input");
    cr_assert(cJSON_IsArray(in));
    cr_assert_eq(cJSON_GetArraySize(in), 2);
    cr_assert_str_eq(cJSON_GetArrayItem(in, 0)->valuestring, "first");
    cr_assert_str_eq(cJSON_GetArrayItem(in, 1)->valuestring, "text, then \"quoted\"\n\\ and \xc3\xa9\x01");
    cJSON_Delete(doc);
    free(body);

    body = embed_http_request_body(EMBED_HTTP_OPENAI, "m", texts, lens, 1, 0);
    doc = cJSON_Parse(body);
    cr_assert_null(cJSON_GetObjectItem(doc, "dimensions"), "no dimensions unless asked");
    cJSON_Delete(doc);
    free(body);

    body = embed_http_request_body(EMBED_HTTP_OLLAMA, "nomic-embed-text", texts, lens, 2, 256);
    doc = cJSON_Parse(body);
    cr_assert_not_null(doc);
    cr_assert_str_eq(cJSON_GetObjectItem(doc, "model")->valuestring, "nomic-embed-text");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "input")), 2);
    cr_assert_null(cJSON_GetObjectItem(doc, "dimensions"), "Ollama's body is model and input");
    cJSON_Delete(doc);
    free(body);
}

/* ---- response validation -------------------------------------------------------------------- */

/* Parses body expecting success; returns the vectors (caller frees). */
static float *parse_ok(embed_http_provider p, const char *body, size_t n, int *dim)
{
    char err[256] = "";
    float *v = NULL;
    cr_assert(embed_http_parse_response(p, body, strlen(body), n, dim, &v, err, sizeof err), "%s: %s", body, err);
    cr_assert_not_null(v);
    return v;
}

/* Parses body expecting failure with `want` in the message; checks nothing was returned. */
static void parse_bad(embed_http_provider p, const char *body, size_t n, int dim, const char *want)
{
    char err[256] = "";
    float *v = (float *)&err; /* must become NULL */
    int d = dim;
    cr_assert_not(embed_http_parse_response(p, body, strlen(body), n, &d, &v, err, sizeof err), "accepted: %s",
                  body);
    cr_assert_null(v);
    cr_assert_eq(d, dim, "dim changed on failure");
    cr_assert(strstr(err, want) != NULL, "%s\n  error \"%s\" lacks \"%s\"", body, err, want);
}

Test(embed_http, openai_response_sorted_by_index)
{
    const char *body = "{\"object\":\"list\",\"data\":["
                       "{\"object\":\"embedding\",\"index\":2,\"embedding\":[5,6]},"
                       "{\"object\":\"embedding\",\"index\":0,\"embedding\":[1,2]},"
                       "{\"object\":\"embedding\",\"index\":1,\"embedding\":[3,4.5e-1]}],"
                       "\"model\":\"m\",\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}";
    int dim = 0;
    float *v = parse_ok(EMBED_HTTP_OPENAI, body, 3, &dim);
    cr_assert_eq(dim, 2);
    float want[] = {1, 2, 3, 0.45f, 5, 6};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(v[i], want[i], "element %d: %g", i, (double)v[i]);
    free(v);

    dim = 2; /* a known dimension that matches */
    v = parse_ok(EMBED_HTTP_OPENAI, body, 3, &dim);
    free(v);
}

Test(embed_http, ollama_response_in_order)
{
    int dim = 3;
    float *v = parse_ok(EMBED_HTTP_OLLAMA, "{\"model\":\"m\",\"embeddings\":[[1,0,-1],[0.5,0.25,0]]}", 2, &dim);
    float want[] = {1, 0, -1, 0.5f, 0.25f, 0};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(v[i], want[i]);
    free(v);
}

Test(embed_http, bad_responses_are_named)
{
    const embed_http_provider O = EMBED_HTTP_OPENAI, L = EMBED_HTTP_OLLAMA;
    parse_bad(O, "{\"data\":[{\"index\":0,\"embedding\":[1,2]}", 1, 0, "invalid JSON");
    parse_bad(O, "", 1, 0, "invalid JSON");
    parse_bad(O, "NaN", 1, 0, "invalid JSON");
    parse_bad(L, "{\"embeddings\":[[NaN]]}", 1, 0, "invalid JSON");
    parse_bad(O, "[]", 1, 0, "no \"data\" array");
    parse_bad(O, "{\"embeddings\":[[1]]}", 1, 0, "no \"data\" array");
    parse_bad(L, "{\"data\":[{\"index\":0,\"embedding\":[1]}]}", 1, 0, "no \"embeddings\" array");

    /* count */
    parse_bad(O, "{\"data\":[{\"index\":0,\"embedding\":[1,2]}]}",
              2, 0, "wrong number of embeddings: 1 embeddings for 2 inputs");
    parse_bad(L, "{\"embeddings\":[[1],[2],[3]]}", 2, 0, "3 embeddings for 2 inputs");
    parse_bad(L, "{\"embeddings\":[]}", 1, 0, "0 embeddings for 1 inputs");

    /* indices */
    parse_bad(O, "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":0,\"embedding\":[2]}]}",
              2, 0, "index 0 appears twice");
    parse_bad(O, "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":2,\"embedding\":[2]}]}",
              2, 0, "data[1] has no valid \"index\"");
    parse_bad(O, "{\"data\":[{\"index\":0.5,\"embedding\":[1]}]}", 1, 0, "no valid \"index\"");
    parse_bad(O, "{\"data\":[{\"index\":-1,\"embedding\":[1]}]}", 1, 0, "no valid \"index\"");
    parse_bad(O, "{\"data\":[{\"index\":\"0\",\"embedding\":[1]}]}", 1, 0, "no valid \"index\"");
    parse_bad(O, "{\"data\":[{\"embedding\":[1]}]}", 1, 0, "no valid \"index\"");
    parse_bad(O, "{\"data\":[{\"index\":0}]}", 1, 0, "has no \"embedding\"");
    parse_bad(O, "{\"data\":[{\"index\":0,\"embedding\":\"AACAPw==\"}]}", 1, 0, "embedding 0 is not an array");

    /* dimensions */
    parse_bad(O, "{\"data\":[{\"index\":0,\"embedding\":[1,2,3]}]}",
              1, 2, "embedding 0 has 3 dimensions, expected 2");
    parse_bad(L, "{\"embeddings\":[[1,2],[1,2,3]]}",
              2, 0, "wrong dimension: embedding 1 has 3 dimensions, expected 2");
    parse_bad(L, "{\"embeddings\":[[1,2],[1,2,3]]}", 2, 2, "embedding 1 has 3 dimensions");
    parse_bad(L, "{\"embeddings\":[[]]}", 1, 0, "embedding 0 has 0 dimensions");

    /* numbers */
    parse_bad(L, "{\"embeddings\":[[1,1e999]]}", 1, 0, "element 1 of embedding 0 is not a finite number");
    parse_bad(L, "{\"embeddings\":[[1,-1e999]]}", 1, 0, "not a finite number");
    parse_bad(L, "{\"embeddings\":[[1e39]]}", 1, 0, "not a finite number"); /* finite double, not float */
    parse_bad(L, "{\"embeddings\":[[1,null]]}", 1, 0, "element 1 of embedding 0 is not a finite number");
    parse_bad(L, "{\"embeddings\":[[\"1\"]]}", 1, 0, "not a finite number");
    parse_bad(O, "{\"data\":[{\"index\":0,\"embedding\":[true]}]}", 1, 0, "not a finite number");
    parse_bad(O, "{\"data\":[{\"index\":0,\"embedding\":[[1]]}]}", 1, 0, "not a finite number");
}

Test(embed_http, response_dimension_limit)
{
    /* 16,001 dimensions is over pgvector's limit. */
    size_t cap = 16 + 16001 * 2 + 8;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    strcpy(body, "{\"embeddings\":[[");
    size_t at = strlen(body);
    for (int i = 0; i < 16001; i++) {
        body[at++] = '0';
        body[at++] = i < 16000 ? ',' : ']';
    }
    strcpy(body + at, "]}");
    parse_bad(EMBED_HTTP_OLLAMA, body, 1, 0, "has 16001 dimensions (expected 1 to 16000)");
    free(body);
}

/* ---- server messages ------------------------------------------------------------------------ */

Test(embed_http, server_messages)
{
    char msg[64];
    const char *openai = "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\"}}";
    embed_http_server_message(openai, strlen(openai), msg, sizeof msg);
    cr_assert_str_eq(msg, "Incorrect API key provided");
    const char *ollama = "{\"error\":\"model \\\"x\\\" not found, try pulling it first\"}";
    embed_http_server_message(ollama, strlen(ollama), msg, sizeof msg);
    cr_assert_str_eq(msg, "model \"x\" not found, try pulling it first");
    embed_http_server_message("Bad Gateway\r\n", 13, msg, sizeof msg);
    cr_assert_str_eq(msg, "Bad Gateway");
    embed_http_server_message("line one\nline\ttwo", 17, msg, sizeof msg);
    cr_assert_str_eq(msg, "line one line two");
    embed_http_server_message("", 0, msg, sizeof msg);
    cr_assert_str_eq(msg, "(empty body)");
    embed_http_server_message(NULL, 0, msg, sizeof msg);
    cr_assert_str_eq(msg, "(empty body)");
    embed_http_server_message("{\"error\":{}}", 12, msg, sizeof msg);
    cr_assert_str_eq(msg, "{\"error\":{}}", "no message: the body itself");

    char longbody[200];
    memset(longbody, 'x', sizeof longbody);
    embed_http_server_message(longbody, sizeof longbody, msg, sizeof msg);
    cr_assert_eq(strlen(msg), sizeof msg - 1);
    cr_assert_str_eq(msg + sizeof msg - 4, "...");

    char small[8];
    embed_http_server_message("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8, small, sizeof small);
    cr_assert_str_eq(small, "\xc3\xa9\xc3\xa9...", "cut on a character boundary: got \"%s\"", small);

    /* bytes that are not UTF-8 (a Latin-1 server), in the JSON message or the bare body: the
     * message goes into the JSON summary, which must stay valid UTF-8 (found by fuzz_embed_http) */
    const char *latin1 = "{\"error\":{\"message\":\"model caf\xe9 not found\"}}";
    embed_http_server_message(latin1, strlen(latin1), msg, sizeof msg);
    cr_assert_str_eq(msg, "model caf\\xE9 not found");
    embed_http_server_message("Gateway \xff\xfe\r\n", 12, msg, sizeof msg);
    cr_assert_str_eq(msg, "Gateway \\xFF\\xFE");
    embed_http_server_message("ab\xff\xff", 4, small, sizeof small);
    cr_assert_str_eq(small, "ab...", "an escape is not cut either: got \"%s\"", small);
}

/* ---- embedders without a server ------------------------------------------------------------- */

static void sha256_hex(const char *text, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    cr_assert(EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) == 1);
    for (unsigned int i = 0; i < len; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
}

Test(embed_http, open_names_and_fingerprints)
{
    char err[256] = "";
    embed_options opt = {.api_base = "http://127.0.0.1:9/v1", .dimensions = 512};
    embedder *e = embed_open_opts("openai:text-embedding-3-small", &opt, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    cr_assert_str_eq(embed_model_name(e), "openai:text-embedding-3-small");
    cr_assert_eq(embed_dimension(e), 512);
    char want[65];
    sha256_hex("openai\ntext-embedding-3-small\n512\n", want);
    cr_assert_str_eq(embed_model_hash(e), want);
    cr_assert(embed_probe(e, err, sizeof err), "a known dimension needs no probe: %s", err);
    embed_stats st;
    embed_get_stats(e, &st);
    cr_assert_eq(st.requests, 0, "opening and a no-op probe send nothing");
    embed_close(e);

    /* Unknown dimension: no fingerprint yet, and a batch is refused before anything is sent. */
    e = embed_open_opts("ollama:nomic-embed-text", &(embed_options){.api_base = "127.0.0.1:9"}, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    cr_assert_str_eq(embed_model_name(e), "ollama:nomic-embed-text");
    cr_assert_eq(embed_dimension(e), 0);
    cr_assert_str_eq(embed_model_hash(e), "");
    const char *t = "x";
    size_t l = 1;
    float out[4];
    cr_assert_not(embed_batch(e, &t, &l, 1, out, err, sizeof err));
    cr_assert(strstr(err, "not known yet") && strstr(err, "embed_probe"), "%s", err);
    cr_assert(embed_batch(e, NULL, NULL, 0, NULL, err, sizeof err), "an empty batch is fine");
    embed_get_stats(e, &st);
    cr_assert_eq(st.requests, 0);
    embed_close(e);
}

Test(embed_http, open_errors)
{
    char err[256];
    struct {
        const char *spec;
        embed_options opt;
        const char *want;
    } bad[] = {
        {"openai:", {0}, "missing model name (expected openai:MODEL)"},
        {"ollama:", {0}, "missing model name (expected ollama:MODEL)"},
        {"openai:two words", {0}, "invalid model name"},
        {"openai:m", {.dimensions = -1}, "invalid dimensions -1"},
        {"openai:m", {.dimensions = 16001}, "invalid dimensions 16001"},
        {"openai:m", {.concurrency = -2}, "invalid concurrency"},
        {"openai:m", {.concurrency = 1000}, "invalid concurrency"},
        {"ollama:m", {.timeout = -1}, "invalid timeout"},
        {"ollama:m", {.request_timeout = NAN}, "invalid timeout"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        cr_assert_null(embed_open_opts(bad[i].spec, &bad[i].opt, err, sizeof err), "%s accepted", bad[i].spec);
        cr_assert(strstr(err, bad[i].want) != NULL, "%s: \"%s\" lacks \"%s\"", bad[i].spec, err, bad[i].want);
        cr_assert(strstr(err, bad[i].spec) != NULL, "the message names the spec: %s", err);
    }
}

Test(embed_http, strict_batch_refuses_empty_and_long_inputs_before_sending)
{
    char err[256] = "";
    /* Nothing listens on port 9 of loopback: a request would fail, so reaching the refusal
     * below proves nothing was sent (and the stats say so). */
    embed_options opt = {.api_base = "http://127.0.0.1:9/v1", .dimensions = 8, .api_key = "sk-unit-secret"};
    embedder *e = embed_open_opts("openai:m", &opt, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    const char *texts[] = {"fine", ""};
    size_t lens[] = {4, 0};
    float out[16];
    cr_assert_not(embed_batch(e, texts, lens, 2, out, err, sizeof err));
    cr_assert_str_eq(err, "input 2 of 2 is empty (nothing to embed)");

    size_t n = (size_t)EMBED_HTTP_MAX_INPUT_TOKENS * 4 + 1;
    char *big = malloc(n);
    cr_assert_not_null(big);
    memset(big, 'a', n);
    texts[1] = big;
    lens[1] = n;
    cr_assert_not(embed_batch(e, texts, lens, 2, out, err, sizeof err));
    cr_assert(strstr(err, "input 2 of 2 is too long (32765 bytes, over 8191 estimated tokens)"), "%s", err);
    embed_stats st;
    embed_get_stats(e, &st);
    cr_assert_eq(st.requests, 0);
    cr_assert_eq(st.inputs, 0);
    free(big);
    embed_close(e);
}

Test(embed_http, builtin_status_and_stats)
{
    char err[256] = "";
    embedder *e = embed_open_opts("builtin:hash-16", NULL, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    const char *texts[] = {"one", "", "three words here"};
    size_t lens[] = {3, 0, 16};
    float out[3 * 16];
    for (int i = 0; i < 3 * 16; i++)
        out[i] = 7.0f;
    unsigned char status[3] = {9, 9, 9};
    cr_assert(embed_batch_status(e, texts, lens, 3, out, status, err, sizeof err), "%s", err);
    cr_assert_eq(status[0], EMBED_OK);
    cr_assert_eq(status[1], EMBED_EMPTY);
    cr_assert_eq(status[2], EMBED_OK);
    for (int k = 0; k < 16; k++)
        cr_assert_eq(out[16 + k], 7.0f, "the row of an empty input is left untouched");
    float one[16];
    cr_assert(embed_hash_text("one", 3, 16, one));
    cr_assert(memcmp(out, one, sizeof one) == 0);
    embed_stats st;
    embed_get_stats(e, &st);
    cr_assert_eq(st.inputs, 2);
    cr_assert_eq(st.requests, 0);
    cr_assert_eq(st.tokens_estimated, 0);
    cr_assert(embed_probe(e, err, sizeof err), "probing the builtin embedder is a no-op");
    embed_close(e);
}

/* ---- CA certificates ------------------------------------------------------------------------ */

/* A temporary directory with a file "bundle.pem" and a directory "certs" in it. */
typedef struct {
    char *dir, *file, *certs, *missing;
} ca_fixture;

static ca_fixture ca_fixture_new(void)
{
    ca_fixture f;
    f.dir = tu_tempdir();
    f.file = tu_write_file(f.dir, "bundle.pem", "-----BEGIN CERTIFICATE-----\n");
    f.certs = tu_printf("%s/certs", f.dir);
    cr_assert(mkdir(f.certs, 0755) == 0, "mkdir %s", f.certs);
    f.missing = tu_printf("%s/no-such.pem", f.dir);
    return f;
}

static void ca_fixture_free(ca_fixture *f)
{
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->file);
    free(f->certs);
    free(f->missing);
}

Test(embed_http, ca_from_the_environment)
{
    ca_fixture f = ca_fixture_new();
    embed_http_ca ca;
    char err[512] = "";
    cr_assert(embed_http_ca_choose(f.file, NULL, "/x/default.pem", "/x/certs", NULL, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_ENV);
    cr_assert_str_eq(ca.file, f.file);
    cr_assert_null(ca.dir, "SSL_CERT_FILE alone leaves libcurl's directory");
    cr_assert(embed_http_ca_choose(NULL, f.certs, NULL, NULL, NULL, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_ENV);
    cr_assert_null(ca.file);
    cr_assert_str_eq(ca.dir, f.certs);
    cr_assert(embed_http_ca_choose(f.file, f.certs, f.file, NULL, NULL, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_ENV);
    cr_assert_str_eq(ca.file, f.file);
    cr_assert_str_eq(ca.dir, f.certs);
    /* empty values count as not set */
    cr_assert(embed_http_ca_choose("", "", f.file, NULL, NULL, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_DEFAULT);
    ca_fixture_free(&f);
}

Test(embed_http, ca_from_the_environment_must_be_readable)
{
    ca_fixture f = ca_fixture_new();
    embed_http_ca ca = {"untouched", "untouched", EMBED_HTTP_CA_NONE};
    char err[512] = "";
    char *want = tu_printf("SSL_CERT_FILE=%s: No such file or directory", f.missing);
    cr_assert_not(embed_http_ca_choose(f.missing, NULL, f.file, NULL, NULL, &ca, err, sizeof err));
    cr_assert_str_eq(err, want);
    cr_assert_str_eq(ca.file, "untouched", "*out is left alone on failure");
    free(want);
    want = tu_printf("SSL_CERT_FILE=%s: Is a directory", f.certs);
    cr_assert_not(embed_http_ca_choose(f.certs, NULL, NULL, NULL, NULL, &ca, err, sizeof err));
    cr_assert_str_eq(err, want);
    free(want);
    want = tu_printf("SSL_CERT_DIR=%s: No such file or directory", f.missing);
    cr_assert_not(embed_http_ca_choose(f.file, f.missing, NULL, NULL, NULL, &ca, err, sizeof err));
    cr_assert_str_eq(err, want, "a good SSL_CERT_FILE does not excuse a bad SSL_CERT_DIR");
    free(want);
    want = tu_printf("SSL_CERT_DIR=%s: Not a directory", f.file);
    cr_assert_not(embed_http_ca_choose(NULL, f.file, NULL, NULL, NULL, &ca, err, sizeof err));
    cr_assert_str_eq(err, want);
    free(want);
    cr_assert_not(embed_http_ca_choose(f.missing, NULL, NULL, NULL, NULL, &ca, NULL, 0), "no error buffer is fine");
    ca_fixture_free(&f);
}

Test(embed_http, ca_default_kept_when_it_exists)
{
    ca_fixture f = ca_fixture_new();
    const char *bundles[] = {f.file, NULL};
    embed_http_ca ca;
    char err[512] = "";
    cr_assert(embed_http_ca_choose(NULL, NULL, f.file, f.missing, bundles, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_DEFAULT);
    cr_assert_null(ca.file);
    cr_assert_null(ca.dir);
    cr_assert(embed_http_ca_choose(NULL, NULL, NULL, f.certs, bundles, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_DEFAULT, "without a default file, the default directory is enough");
    cr_assert_null(ca.file);
    cr_assert(embed_http_ca_choose(NULL, NULL, "", f.certs, bundles, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_DEFAULT);
    /* a missing default file is not made up for by the directory (Fedora's /etc/ssl/certs has
     * no hashed links) */
    cr_assert(embed_http_ca_choose(NULL, NULL, f.missing, f.certs, bundles, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_FALLBACK);
    cr_assert_str_eq(ca.file, f.file);
    ca_fixture_free(&f);
}

Test(embed_http, ca_fallback_when_the_default_is_missing)
{
    ca_fixture f = ca_fixture_new();
    char *second = tu_write_file(f.dir, "second.pem", "x");
    const char *bundles[] = {f.missing, f.certs, f.file, second, NULL};
    embed_http_ca ca;
    char err[512] = "";
    cr_assert(embed_http_ca_choose(NULL, NULL, f.missing, f.missing, bundles, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_FALLBACK);
    cr_assert_str_eq(ca.file, f.file, "the first readable file; a directory is not a bundle");
    cr_assert_null(ca.dir);
    cr_assert(embed_http_ca_choose(NULL, NULL, NULL, NULL, bundles, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_FALLBACK, "no default built in: a fallback too");
    cr_assert_str_eq(ca.file, f.file);
    const char *none[] = {f.missing, f.certs, NULL};
    cr_assert(embed_http_ca_choose(NULL, NULL, f.missing, NULL, none, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_NONE);
    cr_assert_null(ca.file);
    cr_assert_null(ca.dir);
    free(second);
    ca_fixture_free(&f);
}

Test(embed_http, ca_well_known_bundles)
{
    const char *want[] = {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                          "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/ca-bundle.pem",
                          "/etc/ssl/cert.pem", NULL};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        if (want[i] == NULL)
            cr_assert_null(embed_http_ca_bundles[i]);
        else
            cr_assert_str_eq(embed_http_ca_bundles[i], want[i]);
    }
    /* bundles NULL: the list above; this machine (Debian, package ca-certificates) has the first */
    embed_http_ca ca;
    char err[512] = "";
    cr_assert(embed_http_ca_choose(NULL, NULL, "/nonexistent/ca.pem", NULL, NULL, &ca, err, sizeof err), "%s", err);
    cr_assert_eq(ca.source, EMBED_HTTP_CA_FALLBACK);
    cr_assert_str_eq(ca.file, "/etc/ssl/certs/ca-certificates.crt");
}

Test(embed_http, certificate_errors_are_not_retried)
{
    int permanent[] = {CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
                       CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH};
    int transient[] = {CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SSL_CONNECT_ERROR,
                       CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_COULDNT_RESOLVE_HOST, CURLE_GOT_NOTHING};
    for (size_t i = 0; i < sizeof permanent / sizeof *permanent; i++)
        cr_assert(embed_http_transport_permanent(permanent[i]), "%s", curl_easy_strerror(permanent[i]));
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        cr_assert_not(embed_http_transport_permanent(transient[i]), "%s", curl_easy_strerror(transient[i]));
}

Test(embed_http, open_checks_the_ca_file_for_https_only)
{
    ca_fixture f = ca_fixture_new();
    char err[512] = "";
    setenv("SSL_CERT_FILE", f.missing, 1);
    unsetenv("SSL_CERT_DIR");
    embed_options opt = {.api_base = "https://localhost:1/v1", .dimensions = 8};
    cr_assert_null(embed_open_opts("openai:m", &opt, err, sizeof err), "opened with a missing SSL_CERT_FILE");
    char *want = tu_printf("SSL_CERT_FILE=%s: No such file or directory", f.missing);
    cr_assert(strstr(err, want) != NULL, "%s", err);
    cr_assert(strstr(err, "openai:m") != NULL, "the message names the spec: %s", err);
    free(want);
    /* plain http never reads it */
    opt.api_base = "http://127.0.0.1:1/v1";
    embedder *e = embed_open_opts("openai:m", &opt, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    embed_close(e);
    setenv("SSL_CERT_FILE", f.file, 1);
    opt.api_base = "https://localhost:1/v1";
    e = embed_open_opts("openai:m", &opt, err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    embed_close(e);
    unsetenv("SSL_CERT_FILE");
    ca_fixture_free(&f);
}

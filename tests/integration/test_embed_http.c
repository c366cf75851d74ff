/* test_embed_http.c — the openai: and ollama: embedders against the loopback embedding server
 * (tests/fixtures/embed_server.c): vectors equal the builtin embedder's, requests overlap under
 * concurrency, each scripted fault gets its retry or its error, per-input statuses, and the API
 * key never reaches an error message or the log. No PostgreSQL needed. */
#include "common/embed_server_proc.h"
#include "common/testutil.h"

#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embed.h"
#include "embed_http.h"
#include "log.h"
#include "redact.h"

TestSuite(embed_http, .fini = tu_leak_check, .timeout = 60);

#define KEY "sk-test-7f3a9c2e51d04b86"

/* ---- helpers -------------------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts a server with the given options and the fault script (NULL: none). */
static tu_embed_server *start_server(const char *script, const char *const *args)
{
    const char *argv[16];
    size_t n = 0;
    char *dir = tu_tempdir(), *path = NULL;
    if (script != NULL) {
        path = tu_write_file(dir, "script", script);
        argv[n++] = "--script";
        argv[n++] = path;
    }
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 14; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    tu_embed_server *s = tu_embed_server_start(argv); /* the script is read at start */
    free(path);
    tu_rmtree(dir);
    free(dir);
    return s;
}

/* Opens spec against server s: openai at /v1, ollama at the root. */
static embedder *open_on(const tu_embed_server *s, const char *spec, embed_options opt)
{
    char *base = tu_embed_server_url(s, strncmp(spec, "openai:", 7) == 0 ? "/v1" : "");
    opt.api_base = base;
    char err[512] = "";
    embedder *e = embed_open_opts(spec, &opt, err, sizeof err);
    cr_assert_not_null(e, "%s: %s", spec, err);
    free(base);
    return e;
}

/* n distinct texts "memory NUMBER about topic NUMBER%7 …", newly allocated with their lengths. */
static char **make_texts(size_t n, size_t **lens_out)
{
    char **t = calloc(n, sizeof *t);
    size_t *lens = calloc(n, sizeof *lens);
    cr_assert(t && lens);
    for (size_t i = 0; i < n; i++) {
        t[i] = tu_printf("memory %zu about topic %zu: PostgreSQL stores vectors with pgvector", i, i % 7);
        lens[i] = strlen(t[i]);
    }
    *lens_out = lens;
    return t;
}

static void free_texts(char **t, size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i]);
    free(t);
    free(lens);
}

/* Asserts that row i of out equals the builtin vector of texts[i] (len bytes), bit for bit. */
static void assert_builtin_row(const float *out, size_t i, const char *text, size_t len, int dim)
{
    float *want = malloc((size_t)dim * sizeof *want);
    cr_assert_not_null(want);
    cr_assert(embed_hash_text(text, len, dim, want));
    cr_assert(memcmp(out + i * (size_t)dim, want, (size_t)dim * sizeof *want) == 0,
              "row %zu differs from builtin:hash-%d", i, dim);
    free(want);
}

/* Runs one batch of n texts; returns whether it succeeded (err filled otherwise). */
static bool run_batch(embedder *e, char **texts, size_t *lens, size_t n, float **out, char *err, size_t errlen)
{
    *out = calloc(n * (size_t)embed_dimension(e) + 1, sizeof **out);
    cr_assert_not_null(*out);
    return embed_batch(e, (const char *const *)texts, lens, n, *out, err, errlen);
}

/* The fingerprint of spec opened with a known dimension (the unit tests pin its formula). */
static char *hash_with_dim(const char *spec, int dim)
{
    char err[256] = "";
    embedder *e = embed_open_opts(spec, &(embed_options){.api_base = "http://127.0.0.1:9", .dimensions = dim}, err,
                                  sizeof err);
    cr_assert_not_null(e, "%s", err);
    char *h = strdup(embed_model_hash(e));
    embed_close(e);
    return h;
}

/* ---- vectors -------------------------------------------------------------------------------- */

Test(embed_http, openai_vectors_equal_builtin)
{
    tu_embed_server *s = start_server(NULL, (const char *[]){"--dim", "64", "--key", KEY, NULL});
    /* dimensions 32 is sent, so the server answers 32 (not its default 64). 3,000 inputs make
     * two requests (2,048 + 952). */
    embedder *e = open_on(s, "openai:text-embedding-3-small", (embed_options){.dimensions = 32, .api_key = KEY});
    cr_assert_eq(embed_dimension(e), 32);
    size_t n = 3000, *lens;
    char **texts = make_texts(n, &lens);
    float *out;
    char err[512] = "";
    cr_assert(run_batch(e, texts, lens, n, &out, err, sizeof err), "%s", err);
    long long tokens = 0;
    for (size_t i = 0; i < n; i++) {
        assert_builtin_row(out, i, texts[i], lens[i], 32);
        tokens += (long long)embed_http_tokens(lens[i]);
    }
    embed_stats st;
    embed_get_stats(e, &st);
    cr_assert_eq(st.requests, 2);
    cr_assert_eq(st.retries, 0);
    cr_assert_eq(st.inputs, 3000);
    cr_assert_eq(st.tokens_estimated, tokens);
    cr_assert_eq(tu_embed_server_stat(s, "requests"), 2);
    cr_assert_eq(tu_embed_server_stat(s, "inputs"), 3000);

    cr_assert_eq(strlen(embed_model_hash(e)), 64);
    free(out);
    free_texts(texts, lens, n);
    embed_close(e);
    tu_embed_server_stop(s);
}

Test(embed_http, ollama_probe_then_vectors_equal_builtin)
{
    tu_embed_server *s = start_server(NULL, (const char *[]){"--dim", "48", NULL});
    embedder *e = open_on(s, "ollama:nomic-embed-text", (embed_options){0});
    cr_assert_eq(embed_dimension(e), 0);
    char err[512] = "";
    cr_assert(embed_probe(e, err, sizeof err), "%s", err);
    cr_assert_eq(embed_dimension(e), 48);
    char *want = hash_with_dim("ollama:nomic-embed-text", 48);
    cr_assert_str_eq(embed_model_hash(e), want, "a probed dimension fingerprints like a given one");
    free(want);
    cr_assert(embed_probe(e, err, sizeof err));

    size_t n = 25, *lens;
    char **texts = make_texts(n, &lens);
    float *out;
    cr_assert(run_batch(e, texts, lens, n, &out, err, sizeof err), "%s", err);
    for (size_t i = 0; i < n; i++)
        assert_builtin_row(out, i, texts[i], lens[i], 48);
    embed_stats st;
    embed_get_stats(e, &st);
    cr_assert_eq(st.requests, 2, "the probe and one batch request");
    cr_assert_eq(st.inputs, 26, "the probe's text counts");
    cr_assert_eq(tu_embed_server_stat(s, "requests"), 2);
    free(out);
    free_texts(texts, lens, n);
    embed_close(e);
    tu_embed_server_stop(s);
}

Test(embed_http, openai_probe_learns_the_dimension)
{
    tu_embed_server *s = start_server(NULL, (const char *[]){"--dim", "24", NULL});
    embedder *e = open_on(s, "openai:local-model", (embed_options){0});
    char err[512] = "";
    cr_assert_str_eq(embed_model_hash(e), "");
    cr_assert(embed_probe(e, err, sizeof err), "%s", err);
    cr_assert_eq(embed_dimension(e), 24);
    char *want = hash_with_dim("openai:local-model", 24);
    cr_assert_str_eq(embed_model_hash(e), want);
    free(want);
    embed_close(e);
    tu_embed_server_stop(s);
}

/* ---- concurrency ---------------------------------------------------------------------------- */

Test(embed_http, concurrent_requests_overlap)
{
    /* 8 requests of 2,048 inputs, the server waiting 200 ms on each, 4 in flight: the server
     * sees exactly 4 at once (its own count of requests in flight proves the overlap; no upper
     * bound on the time, which a loaded machine can stretch), and the batch cannot take less
     * than 2 × 200 ms. Short texts keep the work small. */
    tu_embed_server *s = start_server(NULL, (const char *[]){"--dim", "8", "--delay-ms", "200", NULL});
    embedder *e = open_on(s, "openai:m", (embed_options){.dimensions = 8, .concurrency = 4});
    size_t n = 8 * 2048;
    char **texts = calloc(n, sizeof *texts);
    size_t *lens = calloc(n, sizeof *lens);
    cr_assert(texts && lens);
    for (size_t i = 0; i < n; i++) {
        texts[i] = tu_printf("t%zu", i);
        lens[i] = strlen(texts[i]);
    }
    float *out;
    char err[512] = "";
    double t0 = now_s();
    cr_assert(run_batch(e, texts, lens, n, &out, err, sizeof err), "%s", err);
    double took = now_s() - t0;
    cr_assert_eq(tu_embed_server_stat(s, "requests"), 8);
    cr_assert_eq(tu_embed_server_stat(s, "inputs"), (long long)n);
    cr_assert_eq(tu_embed_server_stat(s, "max_in_flight"), 4, "4 requests in flight, never more");
    cr_assert_geq(took, 0.4, "8 requests at 4 in flight cannot beat 2 waits: %.3f s", took);
    assert_builtin_row(out, 0, texts[0], lens[0], 8);
    assert_builtin_row(out, n - 1, texts[n - 1], lens[n - 1], 8);
    free(out);
    free_texts(texts, lens, n);
    embed_close(e);
    tu_embed_server_stop(s);
}

/* ---- faults --------------------------------------------------------------------------------- */

/* One batch of n texts against a server with the given script; returns the embedder's stats,
 * the server's request count, the elapsed seconds and whether it succeeded (err otherwise). */
typedef struct {
    bool ok;
    double seconds;
    long long server_requests, server_inputs;
    embed_stats st;
    char err[1024];
} fault_run;

static fault_run run_with_script(const char *spec, const char *script, embed_options opt, size_t n, int dim)
{
    char dimtext[16];
    snprintf(dimtext, sizeof dimtext, "%d", dim);
    /* --dim too: Ollama's requests do not carry the dimension */
    tu_embed_server *s = start_server(script, (const char *[]){"--key", KEY, "--dim", dimtext, NULL});
    opt.dimensions = dim;
    opt.api_key = opt.api_key ? opt.api_key : KEY;
    embedder *e = open_on(s, spec, opt);
    size_t *lens;
    char **texts = make_texts(n, &lens);
    float *out;
    fault_run r = {0};
    double t0 = now_s();
    r.ok = run_batch(e, texts, lens, n, &out, r.err, sizeof r.err);
    r.seconds = now_s() - t0;
    if (r.ok)
        for (size_t i = 0; i < n; i++)
            assert_builtin_row(out, i, texts[i], lens[i], dim);
    embed_get_stats(e, &r.st);
    r.server_requests = tu_embed_server_stat(s, "requests");
    r.server_inputs = tu_embed_server_stat(s, "inputs");
    cr_assert(!tu_contains(r.err, KEY), "the API key is in the error: %s", r.err);
    free(out);
    free_texts(texts, lens, n);
    embed_close(e);
    tu_embed_server_stop(s);
    return r;
}

Test(embed_http, retry_after_ms_is_honoured)
{
    fault_run r = run_with_script("openai:m", "429 retry-after-ms=300\n", (embed_options){0}, 3, 16);
    cr_assert(r.ok, "%s", r.err);
    cr_assert_eq(r.server_requests, 2);
    cr_assert_eq(r.st.requests, 2);
    cr_assert_eq(r.st.retries, 1);
    cr_assert_eq(r.st.inputs, 3, "inputs of the failed attempt are not counted");
    cr_assert_geq(r.seconds, 0.3, "waited %.3f s", r.seconds);
}

Test(embed_http, retry_after_seconds_is_honoured)
{
    fault_run r = run_with_script("ollama:m", "429 retry-after=1\n", (embed_options){0}, 3, 16);
    cr_assert(r.ok, "%s", r.err);
    cr_assert_eq(r.server_requests, 2);
    cr_assert_eq(r.st.retries, 1);
    cr_assert_geq(r.seconds, 1.0, "waited %.3f s", r.seconds);
}

Test(embed_http, server_errors_are_retried_and_nothing_is_embedded_twice)
{
    char *dir = tu_tempdir();
    char *log = tu_printf("%s/inputs.log", dir);
    char *script = tu_write_file(dir, "script", "500\n503\n");
    tu_embed_server *s = tu_embed_server_start((const char *[]){"--script", script, "--log-inputs", log, NULL});
    /* 5,000 inputs: 3 requests, the first two of which (in arrival order) fail once. */
    embedder *e = open_on(s, "openai:m", (embed_options){.dimensions = 8, .concurrency = 3, .max_retries = 3});
    size_t n = 5000, *lens;
    char **texts = make_texts(n, &lens);
    float *out;
    char err[512] = "";
    cr_assert(run_batch(e, texts, lens, n, &out, err, sizeof err), "%s", err);
    for (size_t i = 0; i < n; i += 499)
        assert_builtin_row(out, i, texts[i], lens[i], 8);
    embed_stats st;
    embed_get_stats(e, &st);
    cr_assert_eq(st.requests, 5);
    cr_assert_eq(st.retries, 2);
    cr_assert_eq(st.inputs, 5000);
    cr_assert_eq(tu_embed_server_stat(s, "requests"), 5);
    cr_assert_eq(tu_embed_server_stat(s, "faults_served"), 2);
    cr_assert_eq(tu_embed_server_stat(s, "inputs"), 5000);
    embed_close(e);
    tu_embed_server_stop(s);

    /* Every text was embedded exactly once. */
    char *logged = tu_read_file(log);
    size_t lines = 0;
    for (const char *p = logged; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    cr_assert_eq(lines, n);
    for (size_t i = 0; i < n; i += 97) {
        char *line = tu_printf("\"%s\"\n", texts[i]);
        const char *first = strstr(logged, line);
        cr_assert_not_null(first, "text %zu was never embedded", i);
        cr_assert_null(strstr(first + 1, line), "text %zu was embedded twice", i);
        free(line);
    }
    free(logged);
    free(out);
    free_texts(texts, lens, n);
    free(log);
    free(script);
    tu_rmtree(dir);
    free(dir);
}

Test(embed_http, bad_responses_fail_the_batch_naming_the_problem)
{
    static const struct {
        const char *fault, *want;
    } cases[] = {
        {"malformed", "invalid JSON"},
        {"wrong-dim", "wrong dimension: embedding 3 has 15 dimensions, expected 16"},
        {"wrong-count", "wrong number of embeddings: 3 embeddings for 4 inputs"},
        {"nan", "element 0 of embedding 3 is not a finite number"},
    };
    const char *specs[] = {"openai:m", "ollama:m"};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            char *script = tu_printf("%s\n", cases[i].fault);
            fault_run r = run_with_script(specs[k], script, (embed_options){0}, 4, 16);
            free(script);
            cr_assert_not(r.ok, "%s %s: accepted", specs[k], cases[i].fault);
            cr_assert(tu_contains(r.err, cases[i].want), "%s %s: \"%s\" lacks \"%s\"", specs[k], cases[i].fault,
                      r.err, cases[i].want);
            cr_assert(tu_contains(r.err, "bad response"), "%s", r.err);
            cr_assert_eq(r.server_requests, 1, "%s %s: a bad response is not retried", specs[k], cases[i].fault);
            cr_assert_eq(r.st.inputs, 0, "nothing from a bad response is used");
        }
    }
}

Test(embed_http, unauthorized_fails_at_once_without_the_key)
{
    /* A wrong key: the server's 401 message quotes it; err must not. */
    const char *wrong = "sk-wrong-4d1c8b7e09a2";
    fault_run r = run_with_script("openai:m", NULL, (embed_options){.api_key = wrong, .max_retries = 5}, 3, 16);
    cr_assert_not(r.ok);
    cr_assert_eq(r.server_requests, 1, "401 is not retried");
    cr_assert_eq(r.st.retries, 0);
    cr_assert(tu_contains(r.err, "HTTP 401: Incorrect API key provided"), "%s", r.err);
    cr_assert_not(tu_contains(r.err, wrong), "the key is in the error: %s", r.err);
    cr_assert(tu_contains(r.err, REDACT_MASK), "%s", r.err);

    /* A scripted 401 with the right key (run_with_script checks KEY is not in err). */
    r = run_with_script("openai:m", "401\n", (embed_options){.max_retries = 5}, 3, 16);
    cr_assert_not(r.ok);
    cr_assert_eq(r.server_requests, 1);
    cr_assert(tu_contains(r.err, "HTTP 401"), "%s", r.err);
}

Test(embed_http, max_retries_exhausted)
{
    fault_run r = run_with_script("openai:m", "500\n500\n500\n500\n", (embed_options){.max_retries = 2}, 3, 16);
    cr_assert_not(r.ok);
    cr_assert_eq(r.server_requests, 3, "the first attempt and 2 retries");
    cr_assert_eq(r.st.retries, 2);
    cr_assert(tu_contains(r.err, "HTTP 500: The server had an error (gave up after 2 retries)"), "%s", r.err);

    r = run_with_script("ollama:m", "503\n", (embed_options){.max_retries = -1}, 3, 16);
    cr_assert_not(r.ok);
    cr_assert_eq(r.server_requests, 1, "max_retries < 0: no retries");
    cr_assert(tu_contains(r.err, "HTTP 503: The server is overloaded (gave up after 0 retries)"), "%s", r.err);
}

Test(embed_http, overall_timeout_bounds_a_requested_wait)
{
    /* The server asks for 5 s but only 1 s is allowed overall: fail now, not in 5 s. */
    fault_run r = run_with_script("openai:m", "429 retry-after=5\n", (embed_options){.timeout = 1}, 3, 16);
    cr_assert_not(r.ok);
    cr_assert_lt(r.seconds, 4.0, "did not fail at once: %.3f s", r.seconds);
    cr_assert(tu_contains(r.err, "a retry in 5.0 s (as the server asked) would pass the overall timeout of 1 s"),
              "%s", r.err);

    /* A slow server: the request is cut at the overall deadline. */
    r = run_with_script("openai:m", "delay=6000\n", (embed_options){.timeout = 1}, 3, 16);
    cr_assert_not(r.ok);
    cr_assert_lt(r.seconds, 5.0, "not cut at the deadline: %.3f s of the server's 6 s", r.seconds);
    cr_assert(tu_contains(r.err, "timeout"), "%s", r.err);
}

Test(embed_http, connection_refused_is_retried_then_fails)
{
    tu_embed_server *s = start_server(NULL, NULL);
    char *base = tu_embed_server_url(s, "/v1");
    tu_embed_server_stop(s); /* nothing listens on that port now */
    char err[512] = "";
    embedder *e = embed_open_opts("openai:m", &(embed_options){.api_base = base, .dimensions = 4, .max_retries = 1},
                                  err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    const char *t = "hello";
    size_t l = 5;
    float out[4];
    double t0 = now_s();
    cr_assert_not(embed_batch(e, &t, &l, 1, out, err, sizeof err));
    cr_assert_lt(now_s() - t0, 5.0);
    cr_assert(tu_contains(err, "(gave up after 1 retry)"), "%s", err);
    embed_stats st;
    embed_get_stats(e, &st);
    cr_assert_eq(st.requests, 2);
    embed_close(e);
    free(base);
}

/* ---- per-input status ----------------------------------------------------------------------- */

Test(embed_http, empty_and_long_inputs_get_their_status)
{
    tu_embed_server *s = start_server(NULL, NULL);
    size_t max = (size_t)EMBED_HTTP_MAX_INPUT_TOKENS * 4;
    /* "xy" and then "€ " repeated: a cut at max bytes falls inside a 3-byte character. */
    size_t blen = max + 301;
    char *big = malloc(blen);
    cr_assert_not_null(big);
    big[0] = 'x';
    big[1] = 'y';
    for (size_t i = 2; i < blen; i++)
        big[i] = "\xe2\x82\xac "[(i - 2) % 4];
    const char *texts[] = {"first", "", big, "last one"};
    size_t lens[] = {5, 0, blen, 8};
    const int dim = 12;

    for (int truncate = 0; truncate <= 1; truncate++) {
        embedder *e = open_on(s, "openai:m", (embed_options){.dimensions = dim, .truncate_long = truncate});
        float out[4 * 12];
        for (size_t i = 0; i < 4 * 12; i++)
            out[i] = 99.0f;
        unsigned char status[4] = {7, 7, 7, 7};
        char err[512] = "";
        long long before = tu_embed_server_stat(s, "inputs");
        cr_assert(embed_batch_status(e, texts, lens, 4, out, status, err, sizeof err), "%s", err);
        cr_assert_eq(status[0], EMBED_OK);
        cr_assert_eq(status[1], EMBED_EMPTY);
        cr_assert_eq(status[2], truncate ? EMBED_OK : EMBED_TOO_LONG);
        cr_assert_eq(status[3], EMBED_OK);
        assert_builtin_row(out, 0, texts[0], lens[0], dim);
        assert_builtin_row(out, 3, texts[3], lens[3], dim);
        for (int k = 0; k < dim; k++)
            cr_assert_eq(out[1 * dim + k], 99.0f, "the empty input's row is untouched");
        if (truncate) {
            size_t cut = embed_http_utf8_prefix(big, blen, max);
            cr_assert_lt(cut, max, "the cut moved back to a character boundary");
            assert_builtin_row(out, 2, big, cut, dim);
        } else {
            for (int k = 0; k < dim; k++)
                cr_assert_eq(out[2 * dim + k], 99.0f, "the too long input's row is untouched");
        }
        cr_assert_eq(tu_embed_server_stat(s, "inputs") - before, truncate ? 3 : 2, "skipped inputs are never sent");
        embed_stats st;
        embed_get_stats(e, &st);
        cr_assert_eq(st.inputs, truncate ? 3 : 2);
        long long tok = (long long)(embed_http_tokens(5) + embed_http_tokens(8));
        if (truncate)
            tok += (long long)embed_http_tokens(embed_http_utf8_prefix(big, blen, max));
        cr_assert_eq(st.tokens_estimated, tok);
        embed_close(e);
    }
    free(big);
    tu_embed_server_stop(s);
}

/* ---- the key stays out of the log ----------------------------------------------------------- */

Test(embed_http, debug_log_of_retries_has_no_key)
{
    char *dir = tu_tempdir();
    char *script = tu_write_file(dir, "script", "429 retry-after-ms=10\n500\n");
    tu_embed_server *s = tu_embed_server_start((const char *[]){"--script", script, "--key", KEY, NULL});
    embedder *e = open_on(s, "openai:m", (embed_options){.dimensions = 4, .api_key = KEY});
    log_level old = log_get_level();
    log_set_level(LOG_DEBUG);
    tu_stderr_begin();
    const char *t = "hello";
    size_t l = 5;
    float out[4];
    char err[512] = "";
    bool ok = embed_batch(e, &t, &l, 1, out, err, sizeof err);
    char *logged = tu_stderr_end();
    log_set_level(old);
    cr_assert(ok, "%s", err);
    cr_assert(tu_contains(logged, "HTTP 429"), "retries are logged at debug level:\n%s", logged);
    cr_assert(tu_contains(logged, "HTTP 500"), "%s", logged);
    cr_assert_not(tu_contains(logged, KEY), "the key is in the log:\n%s", logged);
    free(logged);
    embed_close(e);
    tu_embed_server_stop(s);
    free(script);
    tu_rmtree(dir);
    free(dir);
}

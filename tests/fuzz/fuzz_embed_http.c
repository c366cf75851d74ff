/* fuzz_embed_http.c — fuzz target for what reembed reads from an embedding server
 * (embed_http.c): a 200 response body in the OpenAI ({"data": [{"index", "embedding"}]}) and
 * the Ollama ({"embeddings": [[…]]}) shape, an error body's message, and the Retry-After and
 * retry-after-ms header values.
 *
 * Input (corpus: tests/fuzz/corpus/embed_http/): optional header lines, then the body:
 *   # n N                 inputs in the request (default 1)
 *   # dim D               the dimension already known (default 0: taken from the response)
 *   # retry-after V       a Retry-After value; # retry-after-ms V likewise
 * Both providers parse every body. */
#include "embed_http.h"
#include "fuzz/fuzz.h"
#include "log.h"
#include "sqlite_values.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    log_set_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_QUIET);
    return 0;
}

static void parse_body(embed_http_provider p, const char *body, size_t len, size_t n, int dim_in)
{
    int dim = dim_in;
    float *vec = (float *) &dim; /* must be replaced */
    char err[256] = "";
    if (embed_http_parse_response(p, body, len, n, &dim, &vec, err, sizeof err)) {
        /* no input, no embedding: nothing to learn the dimension from */
        FUZZ_CHECK(n == 0 ? dim == dim_in : dim >= 1 && dim <= 16000 && (dim_in <= 0 || dim == dim_in));
        FUZZ_CHECK(vec != NULL);
        for (size_t i = 0; i < n * (size_t) dim; i++)
            FUZZ_CHECK(isfinite(vec[i]));
        free(vec);
    } else {
        FUZZ_CHECK(vec == NULL && dim == dim_in && err[0] != '\0');
    }
}

static void message(const char *body, size_t len, size_t msglen)
{
    char msg[300];
    memset(msg, 'x', sizeof msg);
    embed_http_server_message(body, len, msg, msglen);
    size_t l = strnlen(msg, msglen);
    FUZZ_CHECK(l < msglen && (l > 0 || msglen <= 4));
    for (size_t i = 0; i < l; i++)
        FUZZ_CHECK((unsigned char) msg[i] >= 0x20 && msg[i] != 0x7f);
    FUZZ_CHECK(text_check(msg, l, NULL, 0)); /* it ends up in the JSON summary's "error" */
    FUZZ_CHECK(msg[msglen] == 'x'); /* nothing written past msglen */
}

static void retry_after(const char *ms, const char *date)
{
    double s = -1;
    if (embed_http_parse_retry_after_ms(ms, &s))
        FUZZ_CHECK(s >= 0 && isfinite(s));
    s = -1;
    if (embed_http_parse_retry_after(date, 1741944413, &s))
        FUZZ_CHECK(s >= 0);
    embed_http_retry r = embed_http_retry_decide(429, ms, date, 0, 5, 60.0, 1741944413, 0.5);
    FUZZ_CHECK(r.delay >= 0 && (r.verdict == EMBED_HTTP_RETRY || r.verdict == EMBED_HTTP_GIVE_UP_TIMEOUT));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *) data, *end = s + size;
    size_t n = 1;
    int dim = 0;
    char ra[128] = "", ram[128] = "";
    bool have_ra = false, have_ram = false;
    while (s < end && *s == '#') {
        const char *nl = memchr(s, '\n', (size_t) (end - s));
        size_t len = nl ? (size_t) (nl - s) : (size_t) (end - s);
        char line[160];
        snprintf(line, sizeof line, "%.*s", (int) (len < sizeof line - 1 ? len : sizeof line - 1), s);
        if (!strncmp(line, "# n ", 4))
            n = strtoul(line + 4, NULL, 10) % 64;
        else if (!strncmp(line, "# dim ", 6))
            dim = atoi(line + 6);
        else if (!strncmp(line, "# retry-after-ms ", 17))
            have_ram = snprintf(ram, sizeof ram, "%s", line + 17) >= 0;
        else if (!strncmp(line, "# retry-after ", 14))
            have_ra = snprintf(ra, sizeof ra, "%s", line + 14) >= 0;
        s += len + (nl != NULL);
    }
    size_t len = (size_t) (end - s);
    /* an exact-size copy of the body, as libcurl hands it over (no NUL after it) */
    char *body = malloc(len ? len : 1);
    FUZZ_CHECK(body != NULL);
    memcpy(body, s, len);
    parse_body(EMBED_HTTP_OPENAI, body, len, n, dim);
    parse_body(EMBED_HTTP_OLLAMA, body, len, n, dim);
    message(body, len, 256);
    message(body, len, 5);
    message(body, len, 1);
    free(body);
    retry_after(have_ram ? ram : NULL, have_ra ? ra : NULL);
    return 0;
}

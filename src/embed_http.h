/* embed_http.h — the HTTP embedders behind embed.h (OpenAI-compatible and Ollama), and the pure
 * pieces they are made of (batching, truncation, retry decisions, request and response bodies),
 * declared here so the unit tests can reach them. Only embed.c and the tests include this file.
 *
 * Wire formats:
 *   OpenAI embeddings API reference (platform.openai.com/docs/api-reference/embeddings/create):
 *     POST {api_base}/embeddings  {"model": M, "input": [T…], "dimensions": N (optional)}
 *     → 200 {"data": [{"index": i, "embedding": [f…]}…], …}; errors {"error": {"message": …}}
 *   Ollama API (github.com/ollama/ollama, docs/api.md, "Generate Embeddings"):
 *     POST {base}/api/embed  {"model": M, "input": [T…]}
 *     → 200 {"embeddings": [[f…]…], …}; errors {"error": "…"}
 *   Retry-After: RFC 9110 section 10.2.3 (delay-seconds or an HTTP-date); retry-after-ms is the
 *   millisecond variant OpenAI and Azure OpenAI send.
 *   SSL_CERT_FILE / SSL_CERT_DIR: the environment variables OpenSSL reads for its default CA file
 *   and directory (openssl-env(7)), which curl's command line honours too (curl(1), ENVIRONMENT). */
#ifndef PGMEMCTL_EMBED_HTTP_H
#define PGMEMCTL_EMBED_HTTP_H

#include "embed.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef enum { EMBED_HTTP_OPENAI, EMBED_HTTP_OLLAMA } embed_http_provider;

/* Limits of one request (OpenAI's documented limits, applied to both providers). */
#define EMBED_HTTP_MAX_INPUTS 2048             /* inputs per request */
#define EMBED_HTTP_MAX_REQUEST_TOKENS 300000   /* estimated tokens per request */
#define EMBED_HTTP_MAX_INPUT_TOKENS 8191       /* estimated tokens per input */
#define EMBED_HTTP_BACKOFF_BASE 0.5            /* seconds: first backoff ceiling */
#define EMBED_HTTP_BACKOFF_CAP 30.0            /* seconds: largest backoff ceiling */

/* printf into err (errlen bytes; nothing when err is NULL or errlen 0). Defined in embed.c,
 * shared by the embedder modules. */
void embed_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- the embedder (used by embed.c) ------------------------------------------------------ */

typedef struct embed_http embed_http;

/* Opens an HTTP embedder for model (the text after "openai:" / "ollama:", non-empty). opt may
 * be NULL (defaults, documented at embed_options in embed.h). Registers the API key with
 * redact_add_secret. For an https:// URL, chooses the CA certificates with embed_http_ca_choose
 * from $SSL_CERT_FILE, $SSL_CERT_DIR and libcurl's compiled-in defaults. Sends nothing. Returns
 * NULL with a message in err on invalid options, a CA file or directory from the environment
 * that cannot be read (e.g. "SSL_CERT_FILE=/x: No such file or directory"), or when libcurl
 * cannot be initialised. Free with embed_http_close. */
embed_http *embed_http_open(embed_http_provider provider, const char *model, const embed_options *opt,
                            char *err, size_t errlen);

/* Known dimension (from options.dimensions or a probe), 0 while unknown. */
int embed_http_dimension(const embed_http *h);

/* embed_probe for an HTTP embedder: embeds one fixed text when the dimension is unknown. */
bool embed_http_probe(embed_http *h, char *err, size_t errlen);

/* embed_batch_status for an HTTP embedder. status NULL means strict (embed_batch): an empty or
 * (without truncate_long) too long input fails the whole batch before anything is sent. The
 * dimension must be known (opened with dimensions, or probed): otherwise false with err, since
 * the caller could not have sized out. err never contains the API key. */
bool embed_http_batch(embed_http *h, const char *const *texts, const size_t *lens, size_t n, float *out,
                      unsigned char *status, char *err, size_t errlen);

void embed_http_get_stats(const embed_http *h, embed_stats *out);

/* NULL is allowed. */
void embed_http_close(embed_http *h);

/* ---- CA certificates for HTTPS ----------------------------------------------------------- */

/* The CA bundle files of the major Linux distributions, in the order they are tried, then NULL:
 * Debian/Ubuntu /etc/ssl/certs/ca-certificates.crt, Fedora/RHEL /etc/pki/tls/certs/ca-bundle.crt
 * and /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem, openSUSE /etc/ssl/ca-bundle.pem, Alpine
 * /etc/ssl/cert.pem. */
extern const char *const embed_http_ca_bundles[];

typedef enum {
    EMBED_HTTP_CA_DEFAULT,   /* libcurl's compiled-in CA file or directory, which exists here */
    EMBED_HTTP_CA_ENV,       /* SSL_CERT_FILE and/or SSL_CERT_DIR */
    EMBED_HTTP_CA_FALLBACK,  /* libcurl's default is missing here; a distribution's bundle instead */
    EMBED_HTTP_CA_NONE       /* libcurl's default is missing and no known bundle exists here */
} embed_http_ca_source;

typedef struct {
    const char *file;        /* for CURLOPT_CAINFO; NULL: leave libcurl's default */
    const char *dir;         /* for CURLOPT_CAPATH; NULL: leave libcurl's default */
    embed_http_ca_source source;
} embed_http_ca;

/* Where libcurl should find the CA certificates it checks HTTPS servers against, the way OpenSSL
 * and curl's command line do it:
 *   - env_file / env_dir: the values of SSL_CERT_FILE / SSL_CERT_DIR (NULL or "" = not set). Each
 *     one set is used (file -> CURLOPT_CAINFO, dir -> CURLOPT_CAPATH; the other keeps libcurl's
 *     default): source EMBED_HTTP_CA_ENV. A set file must open for reading and not be a
 *     directory, a set directory must be a directory that can be listed: otherwise false with
 *     err "SSL_CERT_FILE=PATH: REASON" (REASON from strerror, e.g. "No such file or directory").
 *   - neither set: when default_file (libcurl's compiled-in CAINFO, NULL or "" if none) is a
 *     readable file, or there is none and default_dir (its CAPATH, likewise) is a directory,
 *     nothing is changed (EMBED_HTTP_CA_DEFAULT). A default file that is missing decides even when
 *     the directory exists (Fedora has /etc/ssl/certs, without the hashed links CAPATH needs).
 *     Else the first readable file of bundles (a NULL-terminated list; NULL means
 *     embed_http_ca_bundles) becomes the CA file (EMBED_HTTP_CA_FALLBACK); else nothing is
 *     changed (EMBED_HTTP_CA_NONE: verification will fail, and the message says why).
 * The contents are not checked (libcurl reports a file that holds no certificates). Only reads
 * the file system (open, stat, opendir). On success *out is set; its pointers point into the
 * arguments (or embed_http_ca_bundles) and live as long as they do; nothing is allocated. */
bool embed_http_ca_choose(const char *env_file, const char *env_dir, const char *default_file,
                          const char *default_dir, const char *const *bundles, embed_http_ca *out, char *err,
                          size_t errlen);

/* True for libcurl results (CURLcode values) that no retry can fix: the server's certificate
 * failed verification, or the CA file, a client certificate, a pinned key or the certificate
 * status could not be used. Other transport errors (connection refused or reset, timeouts, DNS,
 * a failed TLS handshake) are retried like HTTP 5xx. */
bool embed_http_transport_permanent(int curl_code);

/* ---- pure functions ---------------------------------------------------------------------- */

/* Estimated tokens of a text of `bytes` bytes: bytes / 4 rounded up (0 for 0). */
size_t embed_http_tokens(size_t bytes);

/* Length of the longest prefix of text[0, len) of at most max bytes that does not end inside a
 * UTF-8 sequence: len when len <= max, else max moved back over at most 3 continuation bytes
 * (10xxxxxx) to the start of the sequence they belong to. Invalid UTF-8 (a longer run of
 * continuation bytes) is cut at max. */
size_t embed_http_utf8_prefix(const char *text, size_t len, size_t max);

/* How many of the leading inputs (tokens[0..n), estimated tokens each) go into the next
 * request: the largest k <= max_inputs whose token sum is <= max_tokens, but at least 1 when
 * n > 0 (a single input over max_tokens travels alone). 0 when n == 0. */
size_t embed_http_next_request(const size_t *tokens, size_t n, size_t max_inputs, size_t max_tokens);

/* Parses a retry-after-ms value: a non-negative decimal number of milliseconds (fraction
 * allowed), white space around it ignored. Sets *seconds and returns true; false if malformed. */
bool embed_http_parse_retry_after_ms(const char *value, double *seconds);

/* Parses a Retry-After value: delay-seconds (digits only) or an HTTP-date (IMF-fixdate, RFC 850
 * or asctime form, as curl_getdate reads them). A date in the past gives 0. now: current
 * wall-clock time (seconds since the epoch). True with *seconds set, false if malformed. */
bool embed_http_parse_retry_after(const char *value, time_t now, double *seconds);

/* Full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS Architecture Blog,
 * 2015): jitter * min(EMBED_HTTP_BACKOFF_CAP, EMBED_HTTP_BACKOFF_BASE * 2^retries_done), in
 * seconds. jitter is a uniform random number in [0, 1) supplied by the caller. */
double embed_http_backoff(int retries_done, double jitter);

/* True for the HTTP statuses worth retrying: 408, 409, 429 and 500..599; and 0, which callers
 * pass for a transport error (connection refused or reset, timeout, DNS). */
bool embed_http_status_retryable(long status);

typedef enum {
    EMBED_HTTP_RETRY,             /* retry after .delay seconds */
    EMBED_HTTP_FAIL,              /* not retryable: 401, 403, other 4xx, 1xx/3xx, 2xx other than 200 */
    EMBED_HTTP_GIVE_UP_RETRIES,   /* retryable, but max_retries retries were already made */
    EMBED_HTTP_GIVE_UP_TIMEOUT    /* retryable, but the wait would pass the overall deadline */
} embed_http_verdict;

typedef struct {
    embed_http_verdict verdict;
    double delay;       /* seconds to wait (RETRY and GIVE_UP_TIMEOUT) */
    bool server_delay;  /* delay came from retry-after-ms / retry-after, not from backoff */
} embed_http_retry;

/* The retry decision for one failed attempt. status: the HTTP status, 0 for a transport error.
 * retry_after_ms / retry_after: the response's header values or NULL (retry-after-ms wins when
 * both parse; a malformed one is ignored). retries_done: retries already made for this request;
 * max_retries: the limit (<= 0: none). remaining: seconds left before the overall deadline.
 * now: wall-clock time for an HTTP-date; jitter in [0, 1) for the backoff. Pure. */
embed_http_retry embed_http_retry_decide(long status, const char *retry_after_ms, const char *retry_after,
                                         int retries_done, int max_retries, double remaining, time_t now,
                                         double jitter);

/* The JSON request body for n inputs (texts[i]: lens[i] bytes, up to its first NUL byte, since
 * JSON strings here are C strings), built with cJSON. dimensions > 0 adds "dimensions" (OpenAI
 * only; Ollama's body is model and input). Newly allocated (free()); NULL when out of memory. */
char *embed_http_request_body(embed_http_provider provider, const char *model, const char *const *texts,
                              const size_t *lens, size_t n, int dimensions);

/* Validates a 200 response body (len bytes, need not be NUL-terminated) for a request of n
 * inputs: valid JSON; OpenAI: "data" with exactly n objects whose "index" values are each of
 * 0..n-1 exactly once (rows are returned sorted by index), each with an "embedding" array;
 * Ollama: "embeddings" with exactly n arrays. Every embedding has the same dimension, which must
 * equal *dim when *dim > 0, and lie in 1..16000; every element is a number finite as a float.
 * On success *vectors is a new array of n * dim floats (free()), *dim is set, true. Otherwise
 * false with err naming what was wrong (e.g. "invalid JSON", "2 embeddings for 3 inputs",
 * "embedding 1 has 63 dimensions, expected 64", "element 5 of embedding 0 is not a finite
 * number") and *vectors NULL, *dim unchanged. */
bool embed_http_parse_response(embed_http_provider provider, const char *body, size_t len, size_t n, int *dim,
                               float **vectors, char *err, size_t errlen);

/* The server's error message from an error response body: OpenAI's {"error": {"message": M}},
 * Ollama's {"error": M}, or else the body itself; bytes that are not UTF-8 become \xHH (as
 * text_printable writes them) and control characters spaces, cut to msglen - 1 bytes on a
 * character boundary (with "..." when cut), "(empty body)" when there is nothing. */
void embed_http_server_message(const char *body, size_t len, char *msg, size_t msglen);

#endif

/* embed.h — embedders behind one interface: text in, float32 vectors out.
 * Implementations: builtin feature hashing (embed_builtin.c); HTTP providers (embed_http.c):
 * OpenAI-compatible POST /v1/embeddings and Ollama's POST /api/embed, through libcurl. */
#ifndef PGMEMCTL_EMBED_H
#define PGMEMCTL_EMBED_H

#include <stdbool.h>
#include <stddef.h>

typedef struct embedder embedder;

/* Opens an embedder from a spec string.
 *   "builtin:hash"       builtin feature-hashing embedder, 768 dimensions
 *   "builtin:hash-DIM"   same with DIM dimensions (1..16000)
 *   "openai:MODEL"       an OpenAI-compatible server, with the defaults of embed_options
 *   "ollama:MODEL"       an Ollama server, likewise
 * Opening sends nothing. Returns a new embedder (free with embed_close) or NULL with a message
 * in err (errlen bytes). An embedder is used by one thread at a time. */
embedder *embed_open(const char *spec, char *err, size_t errlen);

/* Options of the HTTP embedders (ignored by builtin). Zero/NULL fields take the defaults. */
typedef struct {
    const char *api_base;     /* openai: base URL ending in /v1 (default $OPENAI_BASE_URL, else
                                 https://api.openai.com/v1); ollama: default $OLLAMA_HOST, else
                                 http://127.0.0.1:11434 */
    const char *api_key;      /* openai: default $OPENAI_API_KEY; registered with redact.c, never
                                 logged; sent as "Authorization: Bearer" */
    int dimensions;           /* openai: the `dimensions` request field (0 = the model's own);
                                 ollama: not sent, but the dimension responses must have.
                                 Either way the dimension is known from the start (1..16000) */
    int concurrency;          /* requests in flight per embed_batch call (default 4) */
    int inputs_per_request;   /* at most this many inputs per request (0 or > 2,048: 2,048) */
    int max_retries;          /* retries per request (default 6; negative: none) */
    double timeout;           /* overall seconds for one embed_batch call, retries included (default 600) */
    double request_timeout;   /* seconds per HTTP request (default 120) */
    bool truncate_long;       /* inputs over 8,191 estimated tokens: truncate (true) or reject */
} embed_options;

/* Like embed_open, with options; "openai:MODEL" and "ollama:MODEL" need them (NULL = defaults). */
embedder *embed_open_opts(const char *spec, const embed_options *opt, char *err, size_t errlen);

/* Dimension of the vectors this embedder produces; 0 while unknown (an HTTP model opened
 * without `dimensions`, before embed_probe). */
int embed_dimension(const embedder *e);

/* True for the HTTP embedders (openai:, ollama:), false for builtin. */
bool embed_is_http(const embedder *e);

/* Learns the dimension of an HTTP model with one request embedding a fixed text (counted in the
 * stats). No-op returning true when the dimension is known. False with err on failure. */
bool embed_probe(embedder *e, char *err, size_t errlen);

/* Counters since embed_open: HTTP requests sent (retries and the probe included), retries,
 * inputs embedded, and the estimated tokens of those inputs as sent (bytes / 4, rounded up, per
 * input, after truncation; inputs of failed attempts are not counted). Builtin counts inputs
 * only. */
typedef struct {
    long long requests, retries, inputs, tokens_estimated;
} embed_stats;
void embed_get_stats(const embedder *e, embed_stats *out);

/* Per-input outcome of embed_batch_status. */
enum { EMBED_OK = 0, EMBED_EMPTY = 1, EMBED_TOO_LONG = 2 };

/* Model name as stored in the embedding_model registry, e.g. "builtin:hash-768".
 * Owned by the embedder; valid until embed_close. */
const char *embed_model_name(const embedder *e);

/* Model fingerprint for the registry's `hash` column (hex text); two embedders with the same
 * name, dimension and hash produce identical vectors. Owned by the embedder. Builtin: SHA-256
 * of a description of the algorithm. HTTP: SHA-256 of "provider\nmodel\ndimension\n" (e.g.
 * "openai\ntext-embedding-3-small\n512\n"), "" while the dimension is unknown; it cannot
 * fingerprint the weights behind a remote model name, so it only tells names and dimensions
 * apart. */
const char *embed_model_hash(const embedder *e);

/* Embeds n texts. texts[i] points at lens[i] bytes of UTF-8 (not necessarily NUL-terminated).
 * out receives n * embed_dimension(e) floats, row-major. Returns false with a message in err
 * on failure; out is then unspecified. Builtin: an empty text gets the zero vector. HTTP: an
 * empty input, or (without truncate_long) a too long one, fails the batch before anything is
 * sent; the dimension must be known (see embed_probe). */
bool embed_batch(embedder *e, const char *const *texts, const size_t *lens, size_t n,
                 float *out, char *err, size_t errlen);

/* Like embed_batch, but an empty input (EMBED_EMPTY; never sent; builtin too) or, without
 * truncate_long, an input over 8,191 estimated tokens (EMBED_TOO_LONG) is skipped instead of
 * failing the batch: status[i] says which (n bytes), and its row of out is left untouched.
 * With truncate_long, a long input is cut to its longest prefix of at most 8,191 * 4 bytes that
 * ends on a UTF-8 character boundary, and the prefix is embedded (EMBED_OK). HTTP embedders split
 * the inputs into requests of at most 2,048 inputs and 300,000 estimated tokens and keep up to
 * `concurrency` of them in flight (curl multi). Retries: connection errors, 408, 409, 429 and
 * 5xx, waiting retry-after-ms / retry-after when the server sends them, else exponential
 * backoff with jitter, at most max_retries per request and `timeout` overall; 401, 403 and
 * other 4xx fail at once with the server's message. Every response is validated (count,
 * dimension, finite numbers): a bad one fails the batch, nothing is returned from it. err never
 * holds the API key. */
bool embed_batch_status(embedder *e, const char *const *texts, const size_t *lens, size_t n, float *out,
                        unsigned char *status, char *err, size_t errlen);

/* Frees the embedder; NULL is allowed. */
void embed_close(embedder *e);

/* The builtin embedder as a pure function (used by embed_batch for "builtin:hash*").
 * Feature hashing (Weinberger et al., "Feature Hashing for Large Scale Multitask Learning",
 * ICML 2009) of lower-cased word unigrams and bigrams into dim buckets with a sign bit,
 * token hash = first 8 bytes of SHA-256 (OpenSSL) of the token, then L2-normalised.
 * Tokens are maximal runs of ASCII letters/digits and bytes >= 0x80, ASCII lower-cased; a
 * bigram is hashed as "t1 t2" (one space). With h the 8 bytes read as a little-endian
 * uint64: out[h % dim] += (h >> 63) ? -1 : +1, for every unigram and bigram alike.
 * A text with no tokens yields the zero vector. out must hold dim floats. Deterministic on
 * every platform. Returns false if dim < 1, out is NULL, text is NULL with len > 0, or the
 * hash library fails (out is then unspecified). */
bool embed_hash_text(const char *text, size_t len, int dim, float *out);

#endif

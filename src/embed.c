/* embed.c — the embedder interface: parses an embedder spec ("builtin:hash-768",
 * "openai:MODEL", "ollama:MODEL"), holds the model name and fingerprint, and dispatches to the
 * implementation (embed_builtin.c, embed_http.c). */
#include "embed.h"

#include "embed_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define EMBED_BUILTIN_PREFIX "builtin:hash"
#define EMBED_KNOWN "builtin:hash[-DIM], openai:MODEL, ollama:MODEL"
#define EMBED_BUILTIN_DEFAULT_DIM 768
#define EMBED_MAX_DIM 16000 /* pgvector's limit for the vector type */

/* Describes the builtin algorithm; its SHA-256 is the model fingerprint, so change this text
 * (bump the version) whenever embed_hash_text would produce different vectors. */
#define EMBED_BUILTIN_ALGORITHM \
    "pgmemctl builtin feature hashing v1: sha256 tokens, unigrams+bigrams, signed, l2"

struct embedder {
    int dim;               /* builtin only; HTTP embedders ask embed_http_dimension */
    char *name;            /* "builtin:hash-768", "openai:MODEL" */
    const char *provider;  /* HTTP: "openai" or "ollama" */
    const char *model;     /* HTTP: points into name, after the provider's colon */
    char hash[2 * 32 + 1]; /* hex SHA-256; "" while an HTTP model's dimension is unknown */
    embed_http *http;      /* NULL for builtin */
    embed_stats stats;     /* builtin */
};

void embed_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Parses the "-DIM" suffix: decimal digits only, no sign or leading zero, 1..EMBED_MAX_DIM. */
static bool embed_parse_dim(const char *s, int *dim)
{
    if (*s < '1' || *s > '9')
        return false;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
        if (v > EMBED_MAX_DIM)
            return false;
    }
    *dim = (int)v;
    return true;
}

static bool embed_sha256_hex(const char *text, char hex[2 * 32 + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD *sha = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    bool ok = sha != NULL && EVP_Digest(text, strlen(text), md, &mdlen, sha, NULL) == 1 &&
              mdlen == 32;
    EVP_MD_free(sha);
    if (!ok)
        return false;
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0x0f];
    }
    hex[2 * mdlen] = '\0';
    return true;
}

/* The HTTP fingerprint: SHA-256 of "provider\nmodel\ndimension\n". It can only tell model names
 * and dimensions apart: the weights behind a remote model name cannot be fingerprinted, so a
 * provider that changes them under the same name is not noticed. Set once the dimension is known. */
static bool embed_fingerprint_http(embedder *e)
{
    int dim = embed_http_dimension(e->http);
    if (e->hash[0] != '\0' || dim <= 0)
        return true;
    size_t len = strlen(e->provider) + strlen(e->model) + 32;
    char *text = malloc(len);
    if (text == NULL)
        return false;
    snprintf(text, len, "%s\n%s\n%d\n", e->provider, e->model, dim);
    bool ok = embed_sha256_hex(text, e->hash);
    free(text);
    return ok;
}

static embedder *embed_open_http(const char *spec, size_t plen, embed_http_provider provider,
                                 const embed_options *opt, char *err, size_t errlen)
{
    embedder *e = calloc(1, sizeof *e);
    if (e == NULL || (e->name = strdup(spec)) == NULL) {
        embed_seterr(err, errlen, "out of memory opening embedder \"%s\"", spec);
        free(e);
        return NULL;
    }
    e->provider = provider == EMBED_HTTP_OPENAI ? "openai" : "ollama";
    e->model = e->name + plen;
    char why[256] = "";
    e->http = embed_http_open(provider, e->model, opt, why, sizeof why);
    if (e->http == NULL) {
        embed_seterr(err, errlen, "embedder \"%s\": %s", spec, why);
        embed_close(e);
        return NULL;
    }
    if (!embed_fingerprint_http(e)) {
        embed_seterr(err, errlen, "SHA-256 is not available from OpenSSL");
        embed_close(e);
        return NULL;
    }
    return e;
}

embedder *embed_open(const char *spec, char *err, size_t errlen)
{
    return embed_open_opts(spec, NULL, err, errlen);
}

embedder *embed_open_opts(const char *spec, const embed_options *opt, char *err, size_t errlen)
{
    if (spec == NULL) {
        embed_seterr(err, errlen, "no embedder given (known: " EMBED_KNOWN ")");
        return NULL;
    }
    if (strncmp(spec, "openai:", 7) == 0)
        return embed_open_http(spec, 7, EMBED_HTTP_OPENAI, opt, err, errlen);
    if (strncmp(spec, "ollama:", 7) == 0)
        return embed_open_http(spec, 7, EMBED_HTTP_OLLAMA, opt, err, errlen);

    int dim = 0;
    size_t plen = strlen(EMBED_BUILTIN_PREFIX);
    if (strcmp(spec, EMBED_BUILTIN_PREFIX) == 0) {
        dim = EMBED_BUILTIN_DEFAULT_DIM;
    } else if (strncmp(spec, EMBED_BUILTIN_PREFIX, plen) == 0 && spec[plen] == '-') {
        if (!embed_parse_dim(spec + plen + 1, &dim)) {
            embed_seterr(err, errlen,
                         "invalid dimension in embedder \"%s\" (expected builtin:hash-DIM with "
                         "DIM an integer from 1 to %d)",
                         spec, EMBED_MAX_DIM);
            return NULL;
        }
    } else {
        embed_seterr(err, errlen, "unknown embedder \"%s\" (known: " EMBED_KNOWN ")", spec);
        return NULL;
    }

    embedder *e = calloc(1, sizeof *e);
    char name[64];
    snprintf(name, sizeof name, "%s-%d", EMBED_BUILTIN_PREFIX, dim);
    if (e == NULL || (e->name = strdup(name)) == NULL) {
        embed_seterr(err, errlen, "out of memory opening embedder \"%s\"", spec);
        free(e);
        return NULL;
    }
    e->dim = dim;
    if (!embed_sha256_hex(EMBED_BUILTIN_ALGORITHM, e->hash)) {
        embed_seterr(err, errlen, "SHA-256 is not available from OpenSSL");
        embed_close(e);
        return NULL;
    }
    return e;
}

bool embed_is_http(const embedder *e) { return e->http != NULL; }

int embed_dimension(const embedder *e)
{
    return e->http ? embed_http_dimension(e->http) : e->dim;
}

bool embed_probe(embedder *e, char *err, size_t errlen)
{
    if (e->http == NULL)
        return true;
    if (!embed_http_probe(e->http, err, errlen))
        return false;
    if (!embed_fingerprint_http(e)) {
        embed_seterr(err, errlen, "SHA-256 is not available from OpenSSL");
        return false;
    }
    return true;
}

void embed_get_stats(const embedder *e, embed_stats *out)
{
    if (e->http)
        embed_http_get_stats(e->http, out);
    else
        *out = e->stats;
}

const char *embed_model_name(const embedder *e)
{
    return e->name;
}

const char *embed_model_hash(const embedder *e)
{
    return e->hash;
}

/* The builtin embedder over a batch; with status, empty texts are skipped (EMBED_EMPTY). */
static bool embed_builtin_batch(embedder *e, const char *const *texts, const size_t *lens, size_t n,
                                float *out, unsigned char *status, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (status != NULL) {
            status[i] = lens[i] == 0 ? EMBED_EMPTY : EMBED_OK;
            if (lens[i] == 0)
                continue;
        }
        if (!embed_hash_text(texts[i], lens[i], e->dim, out + i * (size_t)e->dim)) {
            embed_seterr(err, errlen, "%s: hashing text %zu of %zu failed (OpenSSL SHA-256)",
                         e->name, i + 1, n);
            return false;
        }
        e->stats.inputs++;
    }
    return true;
}

bool embed_batch(embedder *e, const char *const *texts, const size_t *lens, size_t n,
                 float *out, char *err, size_t errlen)
{
    if (e->http)
        return embed_http_batch(e->http, texts, lens, n, out, NULL, err, errlen);
    return embed_builtin_batch(e, texts, lens, n, out, NULL, err, errlen);
}

bool embed_batch_status(embedder *e, const char *const *texts, const size_t *lens, size_t n, float *out,
                        unsigned char *status, char *err, size_t errlen)
{
    if (e->http)
        return embed_http_batch(e->http, texts, lens, n, out, status, err, errlen);
    return embed_builtin_batch(e, texts, lens, n, out, status, err, errlen);
}

void embed_close(embedder *e)
{
    if (e == NULL)
        return;
    embed_http_close(e->http);
    free(e->name);
    free(e);
}

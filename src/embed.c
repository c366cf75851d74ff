/* embed.c — the embedder interface: parses an embedder spec ("builtin:hash-768"), holds the
 * model name and fingerprint, and dispatches batches to the implementation (embed_builtin.c). */
#include "embed.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define EMBED_BUILTIN_PREFIX "builtin:hash"
#define EMBED_BUILTIN_DEFAULT_DIM 768
#define EMBED_MAX_DIM 16000 /* pgvector's limit for the vector type */

/* Describes the builtin algorithm; its SHA-256 is the model fingerprint, so change this text
 * (bump the version) whenever embed_hash_text would produce different vectors. */
#define EMBED_BUILTIN_ALGORITHM \
    "pgmemctl builtin feature hashing v1: sha256 tokens, unigrams+bigrams, signed, l2"

struct embedder {
    int dim;
    char name[64];
    char hash[2 * 32 + 1]; /* hex SHA-256 */
};

__attribute__((format(printf, 3, 4))) static void embed_seterr(char *err, size_t errlen,
                                                                 const char *fmt, ...)
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

embedder *embed_open(const char *spec, char *err, size_t errlen)
{
    if (spec == NULL) {
        embed_seterr(err, errlen, "no embedder given (known: builtin:hash[-DIM])");
        return NULL;
    }

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
        embed_seterr(err, errlen, "unknown embedder \"%s\" (known: builtin:hash[-DIM])", spec);
        return NULL;
    }

    embedder *e = calloc(1, sizeof *e);
    if (e == NULL) {
        embed_seterr(err, errlen, "out of memory opening embedder \"%s\"", spec);
        return NULL;
    }
    e->dim = dim;
    snprintf(e->name, sizeof e->name, "%s-%d", EMBED_BUILTIN_PREFIX, dim);
    if (!embed_sha256_hex(EMBED_BUILTIN_ALGORITHM, e->hash)) {
        embed_seterr(err, errlen, "SHA-256 is not available from OpenSSL");
        free(e);
        return NULL;
    }
    return e;
}

int embed_dimension(const embedder *e)
{
    return e->dim;
}

const char *embed_model_name(const embedder *e)
{
    return e->name;
}

const char *embed_model_hash(const embedder *e)
{
    return e->hash;
}

bool embed_batch(embedder *e, const char *const *texts, const size_t *lens, size_t n,
                 float *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!embed_hash_text(texts[i], lens[i], e->dim, out + i * (size_t)e->dim)) {
            embed_seterr(err, errlen, "%s: hashing text %zu of %zu failed (OpenSSL SHA-256)",
                         e->name, i + 1, n);
            return false;
        }
    }
    return true;
}

void embed_close(embedder *e)
{
    free(e);
}

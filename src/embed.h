/* embed.h — embedders behind one interface: text in, float32 vectors out.
 * Implementations: builtin feature hashing (embed_builtin.c); HTTP providers come later. */
#ifndef PGMEMCTL_EMBED_H
#define PGMEMCTL_EMBED_H

#include <stdbool.h>
#include <stddef.h>

typedef struct embedder embedder;

/* Opens an embedder from a spec string.
 *   "builtin:hash"       builtin feature-hashing embedder, 768 dimensions
 *   "builtin:hash-DIM"   same with DIM dimensions (1..16000)
 * Returns a new embedder (free with embed_close) or NULL with a message in err (errlen bytes). */
embedder *embed_open(const char *spec, char *err, size_t errlen);

/* Dimension of the vectors this embedder produces. */
int embed_dimension(const embedder *e);

/* Model name as stored in the embedding_model registry, e.g. "builtin:hash-768".
 * Owned by the embedder; valid until embed_close. */
const char *embed_model_name(const embedder *e);

/* Model fingerprint for the registry's `hash` column (hex text); two embedders with the same
 * name, dimension and hash produce identical vectors. Owned by the embedder. */
const char *embed_model_hash(const embedder *e);

/* Embeds n texts. texts[i] points at lens[i] bytes of UTF-8 (not necessarily NUL-terminated).
 * out receives n * embed_dimension(e) floats, row-major. Returns false with a message in err
 * on failure; out is then unspecified. */
bool embed_batch(embedder *e, const char *const *texts, const size_t *lens, size_t n,
                 float *out, char *err, size_t errlen);

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

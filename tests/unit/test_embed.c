/* test_embed.c — unit tests for the embedder interface and the builtin feature-hashing
 * embedder (src/embed.c, src/embed_builtin.c). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "embed.h"

#define DIM 256

static double test_norm(const float *v, int dim)
{
    double s = 0.0;
    for (int i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

static bool test_equal(const float *a, const float *b, int dim)
{
    return memcmp(a, b, (size_t)dim * sizeof *a) == 0;
}

static void test_hash(const char *text, int dim, float *out)
{
    cr_assert(embed_hash_text(text, strlen(text), dim, out), "embed_hash_text failed on \"%s\"",
              text);
}

Test(embed, deterministic)
{
    float a[DIM], b[DIM];
    test_hash("PostgreSQL stores vectors with pgvector", DIM, a);
    for (int rep = 0; rep < 3; rep++) {
        test_hash("PostgreSQL stores vectors with pgvector", DIM, b);
        cr_assert(test_equal(a, b, DIM));
    }
}

/* Pins the algorithm: one token "a" is a single feature, so the vector is +-1 in one bucket,
 * where the bucket and sign come from SHA-256("a") read as a little-endian uint64. */
Test(embed, single_token_matches_formula)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    cr_assert(EVP_Digest("a", 1, md, &mdlen, EVP_sha256(), NULL) == 1);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = (h << 8) | md[i];

    float v[DIM];
    test_hash("  A!  ", DIM, v);
    for (int i = 0; i < DIM; i++) {
        float want = (uint64_t)i == h % DIM ? ((h >> 63) ? -1.0f : 1.0f) : 0.0f;
        cr_assert_eq(v[i], want, "bucket %d: %g != %g", i, (double)v[i], (double)want);
    }
}

Test(embed, unit_norm)
{
    const char *texts[] = {"one", "two words", "The quick brown fox jumps over the lazy dog",
                           "héllo wörld ünïcode 東京 tokens"};
    float v[DIM];
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        test_hash(texts[i], DIM, v);
        cr_assert_float_eq(test_norm(v, DIM), 1.0, 1e-6, "norm of \"%s\"", texts[i]);
    }
}

Test(embed, different_texts_differ)
{
    float a[DIM], b[DIM];
    test_hash("memory store in postgres", DIM, a);
    test_hash("vector index on sqlite", DIM, b);
    cr_assert_not(test_equal(a, b, DIM));
}

Test(embed, same_text_same_vector_regardless_of_buffer)
{
    /* Only len bytes are read: the text need not be NUL-terminated. */
    const char *full = "spaced repetition scheduler XYZ";
    char *copy = malloc(16);
    cr_assert_not_null(copy);
    memcpy(copy, full, 16); /* "spaced repetitio" without a terminator */
    float a[DIM], b[DIM];
    cr_assert(embed_hash_text(copy, 16, DIM, a));
    test_hash("spaced repetitio", DIM, b);
    cr_assert(test_equal(a, b, DIM));
    free(copy);
}

Test(embed, empty_text_is_zero_vector)
{
    const char *texts[] = {"", "   ", "!!! --- ...", "\t\n"};
    float v[DIM];
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        v[0] = 42.0f;
        test_hash(texts[i], DIM, v);
        for (int k = 0; k < DIM; k++)
            cr_assert_eq(v[k], 0.0f, "\"%s\" bucket %d", texts[i], k);
    }
    cr_assert(embed_hash_text(NULL, 0, DIM, v));
    cr_assert_eq(test_norm(v, DIM), 0.0);
}

Test(embed, case_insensitive_and_separator_insensitive)
{
    float a[DIM], b[DIM], c[DIM];
    test_hash("Hello World", DIM, a);
    test_hash("hello world", DIM, b);
    test_hash("  HELLO,  world!!", DIM, c);
    cr_assert(test_equal(a, b, DIM));
    cr_assert(test_equal(a, c, DIM));
}

Test(embed, utf8_bytes_are_word_characters)
{
    /* "naïve" is one token, so it must differ from the tokens "na" + "ve". */
    float a[DIM], b[DIM];
    test_hash("na\xc3\xafve", DIM, a);
    test_hash("na ve", DIM, b);
    cr_assert_not(test_equal(a, b, DIM));
    /* Non-ASCII bytes are not case-folded: only ASCII letters are lower-cased. */
    test_hash("\xc3\x89T\xc3\x89", DIM, a);
    test_hash("\xc3\x89t\xc3\x89", DIM, b);
    cr_assert(test_equal(a, b, DIM));
}

Test(embed, bigrams_make_word_order_matter)
{
    /* Same unigrams, different bigrams. */
    float a[DIM], b[DIM];
    test_hash("dog bites man", DIM, a);
    test_hash("man bites dog", DIM, b);
    cr_assert_not(test_equal(a, b, DIM));
}

Test(embed, long_tokens_hash_like_short_ones)
{
    /* Tokens longer than the internal 256-byte buffer are hashed in pieces. */
    size_t n = 1000;
    char *upper = malloc(n + 1), *lower = malloc(n + 1);
    cr_assert(upper && lower);
    for (size_t i = 0; i < n; i++) {
        upper[i] = (char)('A' + i % 26);
        lower[i] = (char)('a' + i % 26);
    }
    upper[n] = lower[n] = '\0';
    float a[DIM], b[DIM];
    test_hash(upper, DIM, a);
    test_hash(lower, DIM, b);
    cr_assert(test_equal(a, b, DIM));
    cr_assert_float_eq(test_norm(a, DIM), 1.0, 1e-6);
    free(upper);
    free(lower);
}

Test(embed, bad_arguments)
{
    float v[4];
    cr_assert_not(embed_hash_text("x", 1, 0, v));
    cr_assert_not(embed_hash_text("x", 1, -3, v));
    cr_assert_not(embed_hash_text("x", 1, 4, NULL));
    cr_assert_not(embed_hash_text(NULL, 3, 4, v));
}

Test(embed, open_default_and_dims)
{
    char err[256] = "";
    embedder *e = embed_open("builtin:hash", err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    cr_assert_eq(embed_dimension(e), 768);
    cr_assert_str_eq(embed_model_name(e), "builtin:hash-768");
    const char *hash = embed_model_hash(e);
    cr_assert_eq(strlen(hash), 64);
    cr_assert_eq(strspn(hash, "0123456789abcdef"), 64);
    char hash768[65];
    strcpy(hash768, hash);
    embed_close(e);

    const struct {
        const char *spec;
        int dim;
        const char *name;
    } ok[] = {{"builtin:hash-1", 1, "builtin:hash-1"},
              {"builtin:hash-384", 384, "builtin:hash-384"},
              {"builtin:hash-16000", 16000, "builtin:hash-16000"}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        e = embed_open(ok[i].spec, err, sizeof err);
        cr_assert_not_null(e, "%s: %s", ok[i].spec, err);
        cr_assert_eq(embed_dimension(e), ok[i].dim);
        cr_assert_str_eq(embed_model_name(e), ok[i].name);
        /* The fingerprint describes the algorithm, not the dimension (that is in the name). */
        cr_assert_str_eq(embed_model_hash(e), hash768);
        embed_close(e);
    }
    embed_close(NULL);
}

Test(embed, open_errors)
{
    const char *bad_dim[] = {"builtin:hash-0",     "builtin:hash-16001", "builtin:hash-",
                             "builtin:hash-12x",   "builtin:hash--5",    "builtin:hash-+5",
                             "builtin:hash-0768",  "builtin:hash-99999999999999999999"};
    char err[256];
    for (size_t i = 0; i < sizeof bad_dim / sizeof *bad_dim; i++) {
        err[0] = '\0';
        cr_assert_null(embed_open(bad_dim[i], err, sizeof err), "%s accepted", bad_dim[i]);
        cr_assert(strstr(err, "invalid dimension") != NULL, "%s: %s", bad_dim[i], err);
        cr_assert(strstr(err, bad_dim[i]) != NULL, "%s: %s", bad_dim[i], err);
    }

    const char *unknown[] = {"x", "", "builtin", "builtin:hashx", "openai", "OPENAI:m", "BUILTIN:HASH"};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        err[0] = '\0';
        cr_assert_null(embed_open(unknown[i], err, sizeof err), "%s accepted", unknown[i]);
        char want[128];
        snprintf(want, sizeof want,
                 "unknown embedder \"%s\" (known: builtin:hash[-DIM], openai:MODEL, ollama:MODEL)",
                 unknown[i]);
        cr_assert_str_eq(err, want);
    }

    cr_assert_null(embed_open(NULL, err, sizeof err));
    cr_assert_null(embed_open("nope", NULL, 0)); /* no error buffer: must not crash */
}

Test(embed, batch_matches_single)
{
    char err[256] = "";
    embedder *e = embed_open("builtin:hash-64", err, sizeof err);
    cr_assert_not_null(e, "%s", err);
    const char *texts[] = {"first text", "", "Second TEXT, with more words in it"};
    size_t lens[3];
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(texts[i]);
    float out[3 * 64], one[64];
    cr_assert(embed_batch(e, texts, lens, 3, out, err, sizeof err), "%s", err);
    for (int i = 0; i < 3; i++) {
        test_hash(texts[i], 64, one);
        cr_assert(test_equal(out + i * 64, one, 64), "row %d", i);
    }
    cr_assert(embed_batch(e, NULL, NULL, 0, NULL, err, sizeof err));
    embed_close(e);
}

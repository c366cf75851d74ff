/* test_sample_text.c — unit tests for the generated memories of sample_text.c (bench's scratch
 * stores without a sample file): the same seed and index give the same memory whatever else was
 * generated, the texts are pinned, ids are distinct version 4 UUIDs, and a few thousand memories
 * cover every topic and kind of note with skewed frequencies. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "sqlite_values.h"
#include "sample_text.h"

TestSuite(sample_text, .fini = tu_leak_check);

static sample_memory gen(uint64_t seed, int64_t i)
{
    sample_memory m;
    cr_assert(sample_text_memory(seed, i, &m));
    return m;
}

Test(sample_text, memory_of_a_seed_and_index_is_always_the_same)
{
    /* pinned: a change here changes every generated store, and saved runs stop comparing */
    sample_memory m = gen(1, 0);
    cr_assert_str_eq(m.id, "247e56e9-3c64-4052-bb3d-471d61f31b12");
    cr_assert_str_eq(m.content, "To refund the subscription, check the refund first, then audit it. Would rather "
                                "charge the refund by hand than trust the pricing page.");
    cr_assert_eq(m.content_len, strlen(m.content));
    cr_assert_str_eq(m.node_type, "procedure");
    cr_assert_str_eq(m.topic, "billing");
    cr_assert_eq(m.ntags, 3);
    cr_assert_str_eq(m.tags[0], "billing");
    cr_assert_str_eq(m.tags[1], "subscription");
    cr_assert_str_eq(m.tags[2], "refund");
    cr_assert_eq(m.tag_lens[1], strlen("subscription"));
    /* memory 0 again, after others: nothing depends on what was generated before */
    for (int i = 1; i < 50; i++) {
        sample_memory x = gen(1, i);
        sample_memory_free(&x);
    }
    sample_memory again = gen(1, 0);
    cr_assert_str_eq(again.id, m.id);
    cr_assert_str_eq(again.content, m.content);
    sample_memory_free(&again);
    sample_memory_free(&m);
    sample_memory_free(&m); /* idempotent */

    /* another seed: other memories */
    sample_memory a = gen(1, 7), b = gen(2, 7);
    cr_assert_str_neq(a.id, b.id);
    cr_assert_str_neq(a.content, b.content);
    sample_memory_free(&a);
    sample_memory_free(&b);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

Test(sample_text, ids_are_distinct_version_4_uuids)
{
    enum { N = 5000 };
    char **ids = malloc(N * sizeof *ids);
    for (int i = 0; i < N; i++) {
        sample_memory m = gen(3, i);
        unsigned char u[16];
        cr_assert(parse_uuid(m.id, strlen(m.id), u), "%s", m.id);
        cr_assert_eq(u[6] >> 4, 4, "%s: version", m.id);
        cr_assert_eq(u[8] >> 6, 2, "%s: variant", m.id);
        ids[i] = strdup(m.id);
        sample_memory_free(&m);
    }
    qsort(ids, N, sizeof *ids, cmp_str);
    for (int i = 1; i < N; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "id %s twice", ids[i]);
    for (int i = 0; i < N; i++)
        free(ids[i]);
    free(ids);
}

Test(sample_text, memories_cover_every_topic_and_kind_with_skew)
{
    enum { N = 6000 };
    int ntopics = sample_text_topics();
    cr_assert_eq(ntopics, 30);
    cr_assert_null(sample_text_topic(ntopics));
    int *per_topic = calloc((size_t) ntopics, sizeof *per_topic);
    static const char *const kinds[] = {"preference", "decision", "event", "procedure", "fact", "concept"};
    int per_kind[6] = {0}, sentences[5] = {0};
    for (int i = 0; i < N; i++) {
        sample_memory m = gen(1, i);
        int t = 0;
        while (t < ntopics && strcmp(sample_text_topic(t), m.topic))
            t++;
        cr_assert_lt(t, ntopics, "unknown topic %s", m.topic);
        per_topic[t]++;
        int k = 0;
        while (k < 6 && strcmp(kinds[k], m.node_type))
            k++;
        cr_assert_lt(k, 6, "unknown node type %s", m.node_type);
        per_kind[k]++;
        cr_assert(m.ntags >= 1 && m.ntags <= SAMPLE_TEXT_MAX_TAGS);
        cr_assert_str_eq(m.tags[0], m.topic);
        for (int j = 0; j < m.ntags; j++)
            cr_assert_null(strchr(m.tags[j], ' '), "tag \"%s\" has a space", m.tags[j]);
        cr_assert(m.content_len >= 20 && m.content_len < 1000, "length %zu", m.content_len);
        cr_assert(m.content[0] >= 'A' && m.content[0] <= 'Z', "%s", m.content);
        cr_assert_eq(m.content[m.content_len - 1], '.', "%s", m.content);
        int dots = 0;
        for (size_t j = 0; j < m.content_len; j++)
            dots += m.content[j] == '.' && (j + 1 == m.content_len || m.content[j + 1] == ' ');
        cr_assert(dots >= 1 && dots <= 4, "%d sentences: %s", dots, m.content);
        sentences[dots]++;
        sample_memory_free(&m);
    }
    int lo = N, hi = 0;
    for (int t = 0; t < ntopics; t++) {
        lo = per_topic[t] < lo ? per_topic[t] : lo;
        hi = per_topic[t] > hi ? per_topic[t] : hi;
    }
    cr_assert_gt(lo, 0, "a topic never appears");
    cr_assert_gt(hi, 5 * lo, "topics are not skewed: %d to %d", lo, hi);
    for (int k = 0; k < 6; k++)
        cr_assert_gt(per_kind[k], N / 20, "%s: only %d", kinds[k], per_kind[k]);
    for (int d = 1; d <= 4; d++)
        cr_assert_gt(sentences[d], N / 10, "%d sentences: only %d memories", d, sentences[d]);
    free(per_topic);
}

/* sample_text.h — generated memories for scratch stores that need no input file: short notes
 * of the kinds an assistant keeps (preferences, decisions, events, procedures, facts), written
 * from 30 topic vocabularies and sentence templates. Deterministic: memory i of a seed is
 * always the same text, whatever else is generated, on every platform (integer arithmetic
 * only), so a store of N memories is the first N of a larger one. */
#ifndef PGMEMCTL_SAMPLE_TEXT_H
#define PGMEMCTL_SAMPLE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tags of one memory at most: its topic and up to two of the words it is about. */
#define SAMPLE_TEXT_MAX_TAGS 3

/* One generated memory. Strings marked owned are freed by sample_memory_free; the others are
 * static. */
typedef struct {
    char id[37];              /* UUID version 4 text, from the seed and index */
    char *content;            /* owned, NUL-terminated UTF-8 (ASCII in fact), 1 to 4 sentences */
    size_t content_len;
    const char *node_type;    /* static: "preference", "decision", "event", "procedure", "fact", "concept" */
    const char *topic;        /* static: the main topic, e.g. "postgres" (also the first tag) */
    char *tags[SAMPLE_TEXT_MAX_TAGS];   /* owned: tags[0] is the topic, then words as slugs ("query-plan") */
    size_t tag_lens[SAMPLE_TEXT_MAX_TAGS];
    int ntags;                /* 1..SAMPLE_TEXT_MAX_TAGS */
} sample_memory;

/* Generates memory `index` (>= 0) of `seed` into *m. Topics are skewed (the most common one
 * about 11 times as frequent as the rarest), words within a topic follow a Zipf-like law, and
 * about one memory in six has a sentence on a second topic. Returns false only when out of
 * memory (nothing to free then). Free with sample_memory_free. */
bool sample_text_memory(uint64_t seed, int64_t index, sample_memory *m);

/* Frees what sample_text_memory allocated; NULL-safe and idempotent. */
void sample_memory_free(sample_memory *m);

/* The number of topics, and topic i's name (0 <= i < sample_text_topics()); static. */
int sample_text_topics(void);
const char *sample_text_topic(int i);

#endif

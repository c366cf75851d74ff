/* redact.c — registered secrets are masked in every string that leaves the process. */
#include "redact.h"

#include <stdlib.h>
#include <string.h>

#define REDACT_MAX 16

static char *secrets[REDACT_MAX];
static int nsecrets;

void redact_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 3 || nsecrets >= REDACT_MAX)
        return;
    for (int i = 0; i < nsecrets; i++)
        if (strcmp(secrets[i], secret) == 0)
            return;
    char *copy = strdup(secret);
    if (copy)
        secrets[nsecrets++] = copy;
}

void redact_clear_secrets(void)
{
    for (int i = 0; i < nsecrets; i++)
        free(secrets[i]);
    nsecrets = 0;
}

/* Replaces every occurrence of one secret; returns a new string or NULL if none occurred. */
static char *replace_all(const char *text, const char *secret)
{
    size_t slen = strlen(secret), mlen = strlen(REDACT_MASK), count = 0;
    for (const char *p = strstr(text, secret); p; p = strstr(p + slen, secret))
        count++;
    if (count == 0)
        return NULL;
    size_t tlen = strlen(text);
    char *out = malloc(tlen - count * slen + count * mlen + 1);
    if (!out)
        return NULL;
    char *o = out;
    const char *p = text, *hit;
    while ((hit = strstr(p, secret))) {
        memcpy(o, p, (size_t) (hit - p));
        o += hit - p;
        memcpy(o, REDACT_MASK, mlen);
        o += mlen;
        p = hit + slen;
    }
    strcpy(o, p);
    return out;
}

char *redact_scrub(const char *text)
{
    if (!text)
        return NULL;
    char *cur = NULL;
    for (int i = 0; i < nsecrets; i++) {
        char *next = replace_all(cur ? cur : text, secrets[i]);
        if (next) {
            free(cur);
            cur = next;
        }
    }
    return cur;
}

char *redact_scrub_alloc(const char *text)
{
    char *s = redact_scrub(text);
    return s ? s : strdup(text ? text : "");
}

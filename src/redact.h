/* redact.h — keeps passwords out of every byte pgmemctl prints (stderr, stdout JSON).
 * Secrets are registered once (from the conninfo, PGPASSWORD, API keys) and every outgoing
 * text passes through redact_scrub. Conninfo redaction itself lives in pg.c (it needs libpq's
 * parser); this module is the last line of defence. */
#ifndef PGMEMCTL_REDACT_H
#define PGMEMCTL_REDACT_H

/* Registers a secret; strings shorter than 3 bytes are ignored (too likely to match normal
 * text). The string is copied. Not thread-safe: call before starting threads. */
void redact_add_secret(const char *secret);

/* Forgets every registered secret (tests). */
void redact_clear_secrets(void);

/* Returns a newly allocated copy of text with every registered secret replaced by "********",
 * or NULL when no secret occurs in text (the caller then uses text as is). Caller frees. */
char *redact_scrub(const char *text);

/* Like redact_scrub but always returns a new string (a plain copy when nothing matched);
 * NULL only when out of memory. Caller frees. */
char *redact_scrub_alloc(const char *text);

#define REDACT_MASK "********"

#endif

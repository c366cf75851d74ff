/* log.h — leveled logging to stderr. Every line passes through redact_scrub so a registered
 * secret (password) can never reach the terminal. Thread-safe: lines from several threads never
 * interleave. */
#ifndef PGMEMCTL_LOG_H
#define PGMEMCTL_LOG_H

#include <stdbool.h>

typedef enum { LOG_QUIET = 0, LOG_ERROR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4 } log_level;

/* Sets the threshold: messages above it are dropped. Default LOG_INFO; -q gives LOG_ERROR... see
 * main.c (quiet still prints errors), -v gives LOG_DEBUG. */
void log_set_level(log_level level);
log_level log_get_level(void);

/* printf-style; a newline is appended. Prefixes: "error: ", "warning: ", none for info,
 * "debug: " for debug. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last message passed to log_error (secrets scrubbed), "" if none; valid until the next
 * log_error. Used for the JSON document of a run that failed before it had a result. Errors
 * are remembered even under -q. */
const char *log_last_error(void);

/* True when progress output is wanted (level >= LOG_INFO). */
bool log_progress_enabled(void);

/* Called by the progress module before a log line, so a redrawn progress bar is cleared first.
 * The hook runs with the stderr lock held (see log_lock). */
void log_set_clear_hook(void (*hook)(void));

/* The lock that serialises every write to stderr: log lines from any thread (the copy streams
 * log from their own threads) and the progress bar drawn by the main thread. Not recursive:
 * never call a log_* function while holding it. */
void log_lock(void);
void log_unlock(void);

#endif

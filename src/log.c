/* log.c — leveled logging to stderr, with secrets scrubbed from every line. */
#include "log.h"
#include "redact.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static log_level current_level = LOG_INFO;
static void (*clear_hook)(void);
static char last_error[1024];
static pthread_mutex_t stderr_lock = PTHREAD_MUTEX_INITIALIZER;

void log_lock(void) { pthread_mutex_lock(&stderr_lock); }
void log_unlock(void) { pthread_mutex_unlock(&stderr_lock); }

const char *log_last_error(void) { return last_error; }

void log_set_level(log_level level) { current_level = level; }
log_level log_get_level(void) { return current_level; }
bool log_progress_enabled(void) { return current_level >= LOG_INFO; }
void log_set_clear_hook(void (*hook)(void)) { clear_hook = hook; }

static void log_emit(log_level level, const char *prefix, const char *fmt, va_list ap)
{
    if (level > current_level && level != LOG_ERROR)
        return;
    char stackbuf[2048];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(stackbuf, sizeof stackbuf, fmt, ap);
    char *msg = stackbuf;
    if (n >= (int) sizeof stackbuf) {
        msg = malloc((size_t) n + 1);
        if (msg)
            vsnprintf(msg, (size_t) n + 1, fmt, ap2);
        else
            msg = stackbuf;
    }
    va_end(ap2);
    char *clean = redact_scrub(msg);
    log_lock();
    if (level == LOG_ERROR)
        snprintf(last_error, sizeof last_error, "%.*s", (int) sizeof last_error - 1, clean ? clean : msg);
    if (level <= current_level) {
        if (clear_hook)
            clear_hook();
        fprintf(stderr, "%s%s\n", prefix, clean ? clean : msg);
        fflush(stderr);
    }
    log_unlock();
    free(clean);
    if (msg != stackbuf)
        free(msg);
}

#define LOG_FN(name, level, prefix)                                                                \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(level, prefix, fmt, ap);                                                          \
        va_end(ap);                                                                                \
    }

LOG_FN(log_error, LOG_ERROR, "error: ")
LOG_FN(log_warn, LOG_WARN, "warning: ")
LOG_FN(log_info, LOG_INFO, "")
LOG_FN(log_debug, LOG_DEBUG, "debug: ")

/* progress.h — progress on stderr: a redrawn bar on a terminal, a line every few seconds
 * otherwise, nothing with -q. Rates use the monotonic clock. A progress line is drawn by one
 * thread; log lines from others clear it first (log_lock). */
#ifndef PGMEMCTL_PROGRESS_H
#define PGMEMCTL_PROGRESS_H

#include <stdint.h>

typedef struct progress progress;

/* Starts a progress line for label (copied); total <= 0 means unknown (no bar, no ETA); unit is
 * the counted thing, e.g. "rows" (static string). Returns NULL when progress is disabled or out
 * of memory; every function accepts NULL. */
progress *progress_start(const char *label, int64_t total, const char *unit);

/* Reports that done units are complete (absolute, not a delta). Cheap: redraws at most 10
 * times a second on a terminal, every PGMEMCTL_PROGRESS_INTERVAL seconds (default 5) else. */
void progress_update(progress *p, int64_t done);

/* Sets a short text shown after the counts on every later line (copied; NULL or "" for none),
 * e.g. "12 requests in flight, 1 retry". */
void progress_detail(progress *p, const char *detail);

/* Prints the final line (count, rate, elapsed, "done") and frees p. */
void progress_finish(progress *p);

/* The same for work that ended early (an error): the line ends in "stopped", never "done". */
void progress_stopped(progress *p);

/* Seconds since an arbitrary fixed point, monotonic clock. */
double progress_now(void);

#endif

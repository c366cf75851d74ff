/* progress.c — stderr progress: bar on a TTY, periodic lines otherwise. */
#include "progress.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct progress {
    char label[64];
    char detail[128];    /* appended to every line, e.g. "12 requests, 1 retry" */
    const char *unit;
    int64_t total, done;
    double start, last_draw, interval;
    bool tty;
};

static progress *active; /* the bar currently drawn, cleared before log lines */

double progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void clear_line(void)
{
    if (active && active->tty)
        fputs("\r\033[K", stderr);
}

static void draw(progress *p, bool final, const char *end)
{
    log_lock();
    double el = progress_now() - p->start;
    double rate = el > 0 ? (double) p->done / el : 0;
    char eta[32] = "";
    if (!final && p->total > 0 && rate > 0 && p->done < p->total)
        snprintf(eta, sizeof eta, ", ETA %.0fs", (double) (p->total - p->done) / rate);
    if (p->tty && !final) {
        int pct = p->total > 0 ? (int) (100.0 * (double) p->done / (double) p->total) : 0;
        char bar[26];
        int fill = p->total > 0 ? pct / 4 : 0;
        memset(bar, '#', (size_t) fill);
        memset(bar + fill, '.', (size_t) (25 - fill));
        bar[25] = '\0';
        if (p->total > 0)
            fprintf(stderr, "\r\033[K%s [%s] %3d%% %lld/%lld %s, %.0f %s/s%s%s%s", p->label, bar, pct,
                    (long long) p->done, (long long) p->total, p->unit, rate, p->unit, eta, p->detail[0] ? ", " : "",
                    p->detail);
        else
            fprintf(stderr, "\r\033[K%s %lld %s, %.0f %s/s%s%s", p->label, (long long) p->done, p->unit, rate, p->unit,
                    p->detail[0] ? ", " : "", p->detail);
    } else {
        if (p->tty)
            fputs("\r\033[K", stderr);
        if (p->total > 0 && !final)
            fprintf(stderr, "%s: %lld/%lld %s (%.0f%%), %.0f %s/s%s%s%s\n", p->label, (long long) p->done,
                    (long long) p->total, p->unit, 100.0 * (double) p->done / (double) p->total, rate, p->unit, eta,
                    p->detail[0] ? ", " : "", p->detail);
        else
            fprintf(stderr, "%s: %lld %s in %.2fs, %.0f %s/s%s%s%s\n", p->label, (long long) p->done, p->unit, el,
                    rate, p->unit, p->detail[0] ? ", " : "", p->detail, final ? end : "");
    }
    fflush(stderr);
    log_unlock();
    p->last_draw = progress_now();
}

progress *progress_start(const char *label, int64_t total, const char *unit)
{
    if (!log_progress_enabled())
        return NULL;
    progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->unit = unit ? unit : "rows";
    p->total = total;
    p->start = p->last_draw = progress_now();
    p->tty = isatty(STDERR_FILENO) == 1;
    const char *iv = getenv("PGMEMCTL_PROGRESS_INTERVAL");
    p->interval = p->tty ? 0.1 : (iv ? atof(iv) : 5.0);
    if (p->interval <= 0)
        p->interval = 5.0;
    log_lock();
    active = p;
    log_unlock();
    log_set_clear_hook(clear_line);
    return p;
}

void progress_update(progress *p, int64_t done)
{
    if (!p)
        return;
    p->done = done;
    if (progress_now() - p->last_draw >= p->interval)
        draw(p, false, "");
}

void progress_detail(progress *p, const char *detail)
{
    if (p)
        snprintf(p->detail, sizeof p->detail, "%s", detail ? detail : "");
}

static void finish(progress *p, const char *end)
{
    if (!p)
        return;
    draw(p, true, end);
    log_lock();
    if (active == p)
        active = NULL;
    log_unlock();
    free(p);
}

void progress_finish(progress *p) { finish(p, ", done"); }
void progress_stopped(progress *p) { finish(p, ", stopped"); }

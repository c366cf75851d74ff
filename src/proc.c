/* proc.c — helper programs run to completion (fork/exec, no shell), with a time limit. */
#define _GNU_SOURCE /* execvpe */
#include "proc.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static bool has_prefix(const char *s, const char *const *prefixes)
{
    for (int i = 0; prefixes && prefixes[i]; i++)
        if (!strncmp(s, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

static bool replaced(const char *kv, const char *const *env)
{
    size_t len = strcspn(kv, "=");
    for (int i = 0; env && env[i]; i++)
        if (!strncmp(env[i], kv, len) && env[i][len] == '=')
            return true;
    return false;
}

/* The child's environment: ours minus dropped and replaced names, plus env. Pointers only. */
static char **child_env(const char *const *env, const char *const *drop)
{
    int n = 0, m = 0;
    while (environ[n])
        n++;
    while (env && env[m])
        m++;
    char **out = calloc((size_t) (n + m + 1), sizeof *out);
    if (!out)
        return NULL;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!has_prefix(environ[i], drop) && !replaced(environ[i], env))
            out[k++] = environ[i];
    for (int i = 0; i < m; i++)
        out[k++] = (char *) env[i];
    return out;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int proc_run(const char *const *argv, const char *const *env, const char *const *drop_prefixes, const char *cwd,
             const char *out_path, double timeout_seconds)
{
    char **cenv = child_env(env, drop_prefixes);
    if (!cenv) {
        log_error("out of memory starting %s", argv[0]);
        return -1;
    }
    int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0) {
        log_error("could not open %s for %s: %s", out_path ? out_path : "/dev/null", argv[0], strerror(errno));
        if (out >= 0)
            close(out);
        if (in >= 0)
            close(in);
        free(cenv);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        log_error("could not start %s: %s", argv[0], strerror(errno));
        close(out);
        close(in);
        free(cenv);
        return -1;
    }
    if (pid == 0) {
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 || (cwd && chdir(cwd) != 0))
            _exit(126);
        execvpe(argv[0], (char *const *) argv, cenv);
        _exit(127);
    }
    close(out);
    close(in);
    free(cenv);
    double deadline = mono() + timeout_seconds;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            log_error("waiting for %s: %s", argv[0], strerror(errno));
            return -1;
        }
        if (mono() > deadline) {
            log_error("%s did not finish within %.0f s: killed", argv[0], timeout_seconds);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *proc_find(const char *const *candidates)
{
    for (int i = 0; candidates[i]; i++)
        if (strchr(candidates[i], '/') && executable(candidates[i]))
            return strdup(candidates[i]);
    const char *path = getenv("PATH");
    for (int i = 0; candidates[i]; i++) {
        if (strchr(candidates[i], '/') || !path)
            continue;
        const char *p = path;
        while (*p) {
            size_t len = strcspn(p, ":");
            size_t need = len + strlen(candidates[i]) + 2;
            char *full = malloc(need);
            if (!full)
                return NULL;
            snprintf(full, need, "%.*s/%s", (int) len, len ? p : ".", candidates[i]);
            if (executable(full))
                return full;
            free(full);
            p += len;
            if (*p == ':')
                p++;
        }
    }
    return NULL;
}

char *proc_read_file(const char *path, size_t *lenp)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (len + 1 < cap)
            break;
        cap *= 2;
        char *grown = realloc(buf, cap);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (lenp)
        *lenp = len;
    return buf;
}

void proc_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            size_t need = strlen(dir) + strlen(e->d_name) + 2;
            char *p = malloc(need);
            if (p) {
                snprintf(p, need, "%s/%s", dir, e->d_name);
                unlink(p);
                free(p);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

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
#include <grp.h>
#include <sys/wait.h>
#include <dirent.h>
#include <ftw.h>
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

/* In the child: drop to as's user and group (when as is set), then exec. Never returns. */
static void child_exec(const char *const *argv, char **cenv, int in, int out, const char *cwd, const proc_user *as)
{
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(126);
    if (as && as->uid != (uid_t) -1 &&
        (setgroups(0, NULL) != 0 || setgid(as->gid) != 0 || setuid(as->uid) != 0))
        _exit(126);
    if (cwd && chdir(cwd) != 0)
        _exit(126);
    execvpe(argv[0], (char *const *) argv, cenv);
    _exit(127);
}

/* Forks and execs; returns the child's pid or -1 (logged). */
static pid_t start(const char *const *argv, const char *const *env, const char *const *drop_prefixes,
                   const char *cwd, const char *out_path, const proc_user *as)
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
    if (pid == 0)
        child_exec(argv, cenv, in, out, cwd, as);
    close(out);
    close(in);
    free(cenv);
    return pid;
}

int proc_run(const char *const *argv, const char *const *env, const char *const *drop_prefixes, const char *cwd,
             const char *out_path, double timeout_seconds)
{
    return proc_run_as(argv, env, drop_prefixes, cwd, out_path, timeout_seconds, NULL);
}

int proc_run_as(const char *const *argv, const char *const *env, const char *const *drop_prefixes, const char *cwd,
                const char *out_path, double timeout_seconds, const proc_user *as)
{
    pid_t pid = start(argv, env, drop_prefixes, cwd, out_path, as);
    if (pid < 0)
        return -1;
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

int proc_spawn_as(const char *const *argv, const char *const *env, const char *const *drop_prefixes, const char *cwd,
                  const char *out_path, const proc_user *as)
{
    return (int) start(argv, env, drop_prefixes, cwd, out_path, as);
}

int proc_alive(int pid, int *status)
{
    int st = 0;
    pid_t w = waitpid((pid_t) pid, &st, WNOHANG);
    if (w == 0)
        return 1;
    if (w == (pid_t) pid && status)
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
    return 0;
}

bool proc_stop(int pid, int sig, double timeout_seconds)
{
    if (kill((pid_t) pid, sig) != 0 && errno != ESRCH) {
        log_error("could not signal process %d: %s", pid, strerror(errno));
        return false;
    }
    double deadline = mono() + timeout_seconds;
    for (;;) {
        int st;
        pid_t w = waitpid((pid_t) pid, &st, WNOHANG);
        if (w == (pid_t) pid || (w < 0 && errno == ECHILD))
            return true;
        if (mono() > deadline) {
            log_error("process %d did not stop within %.0f s: killed", pid, timeout_seconds);
            kill((pid_t) pid, SIGKILL);
            waitpid((pid_t) pid, &st, 0);
            return false;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) ftw;
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    if (rc != 0)
        log_warn("could not remove %s: %s", path, strerror(errno));
    return 0;
}

void proc_rmtree(const char *dir)
{
    nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

char *proc_path(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s/%s", dir, name);
    return s;
}

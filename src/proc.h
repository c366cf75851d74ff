/* proc.h — running a helper program (pgbench, gnuplot) to completion: argv without a shell,
 * an environment of our choosing, output to a file, a time limit. */
#ifndef PGMEMCTL_PROC_H
#define PGMEMCTL_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The OS user a child runs as: uid (uid_t) -1 means "as we are". Switching needs root: the child
 * drops every supplementary group, then sets gid, then uid (a failure makes it exit 126). */
typedef struct {
    uid_t uid;
    gid_t gid;
} proc_user;

/* Runs argv[0] (searched on PATH when it has no '/') with argv (NULL-terminated), in the
 * working directory cwd (NULL: ours), stdin from /dev/null and stdout + stderr appended to the
 * file out_path (NULL: /dev/null). env: NULL-terminated "NAME=value" strings that replace our
 * environment's variables of the same name; every variable of ours whose name starts with one
 * of the NULL-terminated prefixes in drop_prefixes (may be NULL) is removed first. Kills the
 * child (SIGKILL) after timeout_seconds (> 0). Returns the exit status, 128 + signal when it
 * died of a signal, or -1 when it could not be started (logged, with errno's text; 127 is what
 * a missing program gives from the child). Does not log the environment. */
int proc_run(const char *const *argv, const char *const *env, const char *const *drop_prefixes, const char *cwd,
             const char *out_path, double timeout_seconds);

/* proc_run as the user as (NULL: as we are). */
int proc_run_as(const char *const *argv, const char *const *env, const char *const *drop_prefixes, const char *cwd,
                const char *out_path, double timeout_seconds, const proc_user *as);

/* Starts a long-running child (a PostgreSQL server) like proc_run_as and returns at once: its pid,
 * or -1 when it could not be started (logged). It stays in our process group, so a Ctrl-C at our
 * terminal reaches it too (SIGINT: a PostgreSQL server's fast shutdown). The caller must end it with
 * proc_stop. */
int proc_spawn_as(const char *const *argv, const char *const *env, const char *const *drop_prefixes, const char *cwd,
                  const char *out_path, const proc_user *as);

/* Whether a child from proc_spawn_as still runs: 1 running, 0 exited (then *status, when not
 * NULL, is its exit status or 128 + signal; it is reaped). */
int proc_alive(int pid, int *status);

/* Sends sig (SIGINT: PostgreSQL's fast shutdown) to a child from proc_spawn_as and waits up to
 * timeout_seconds for it to exit; then kills it (SIGKILL) and returns false (logged). */
bool proc_stop(int pid, int sig, double timeout_seconds);

/* "dir/name", newly allocated (caller frees); NULL when out of memory. */
char *proc_path(const char *dir, const char *name);

/* Removes a directory tree (files, links, subdirectories; links are not followed); each failure
 * is logged as a warning and the walk goes on. */
void proc_rmtree(const char *dir);

/* The first executable among: each of the NULL-terminated candidates that contains a '/', then
 * each bare name searched on $PATH. Returns a newly allocated path (caller frees) or NULL. */
char *proc_find(const char *const *candidates);

/* Reads a whole file into a newly allocated, NUL-terminated buffer (caller frees); *len (may
 * be NULL) is its size in bytes, which counts any NUL bytes inside. NULL when it cannot be read
 * (errno from fopen/fread) or memory runs out. Used for migration files, JSON and logs. */
char *proc_read_file(const char *path, size_t *len);

/* Removes a directory and the regular files directly inside it (best effort). */
void proc_rmdir(const char *dir);

#endif

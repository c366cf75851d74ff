/* proc.h — running a helper program (pgbench, gnuplot) to completion: argv without a shell,
 * an environment of our choosing, output to a file, a time limit. */
#ifndef PGMEMCTL_PROC_H
#define PGMEMCTL_PROC_H

#include <stdbool.h>
#include <stddef.h>

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

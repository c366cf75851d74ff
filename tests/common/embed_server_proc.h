/* embed_server_proc.h — runs the loopback embedding server (tests/fixtures/embed_server.c,
 * built as $(OUT)/tests/embed-server next to the test binaries) from a test: start it, learn its
 * port, read its /stats, stop it. See embed_server.c for its options and fault script.
 *
 * Like testutil.h, every helper asserts instead of returning an error. */
#ifndef PGMEMCTL_EMBED_SERVER_PROC_H
#define PGMEMCTL_EMBED_SERVER_PROC_H

#include <cjson/cJSON.h>

typedef struct tu_embed_server tu_embed_server;

/* Path of the server binary: "embed-server" in the directory of the running test binary
 * (/proc/self/exe). Newly allocated. */
char *tu_embed_server_path(void);

/* Starts the server with posix_spawn: args is a NULL-terminated list of its options (NULL for
 * none); --exit-with-parent is added, so a test that dies does not leave it running. stdin is
 * /dev/null, stderr goes to a temporary file (shown when it fails, checked for sanitizer
 * reports at stop). Waits up to 10 s for the port it prints. Stop with tu_embed_server_stop. */
tu_embed_server *tu_embed_server_start(const char *const *args);

int tu_embed_server_port(const tu_embed_server *s);

/* "http://127.0.0.1:PORT" followed by path (e.g. "/v1"); newly allocated. */
char *tu_embed_server_url(const tu_embed_server *s, const char *path);

/* GET /stats: {"requests", "inputs", "faults_served", "max_in_flight"}; caller frees with
 * cJSON_Delete. */
cJSON *tu_embed_server_stats(const tu_embed_server *s);

/* One counter of /stats. */
long long tu_embed_server_stat(const tu_embed_server *s, const char *name);

/* SIGTERM, then waits (10 s, then SIGKILL); asserts a clean exit (status 0) without a sanitizer
 * report on its stderr. Frees s; NULL is allowed. */
void tu_embed_server_stop(tu_embed_server *s);

#endif

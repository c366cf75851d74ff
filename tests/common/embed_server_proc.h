/* embed_server_proc.h — runs the loopback embedding server (tests/fixtures/embed_server.c,
 * built as $(OUT)/tests/embed-server next to the test binaries) from a test: start it, learn its
 * port, read its /stats, stop it. See embed_server.c for its options and fault script.
 *
 * Like testutil.h, every helper asserts instead of returning an error. */
#ifndef PGMEMCTL_EMBED_SERVER_PROC_H
#define PGMEMCTL_EMBED_SERVER_PROC_H

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef struct tu_embed_server tu_embed_server;

/* Path of the server binary: "embed-server" in the directory of the running test binary
 * (/proc/self/exe). Newly allocated. */
char *tu_embed_server_path(void);

/* Starts the server with posix_spawn: args is a NULL-terminated list of its options (NULL for
 * none); --exit-with-parent is added, so a test that dies does not leave it running. With
 * --tls-cert among args it serves HTTPS (the URL helpers then say https://localhost). stdin is
 * /dev/null, stderr goes to a temporary file (shown when it fails, checked for sanitizer
 * reports at stop). Waits up to 10 s for the port it prints. Stop with tu_embed_server_stop. */
tu_embed_server *tu_embed_server_start(const char *const *args);

int tu_embed_server_port(const tu_embed_server *s);

/* "http://127.0.0.1:PORT" followed by path (e.g. "/v1"); for a server started with --tls-cert
 * "https://localhost:PORT" (the name its certificate from scripts/make-test-ca is checked
 * against). Newly allocated. */
char *tu_embed_server_url(const tu_embed_server *s, const char *path);

/* The same with another host name or address (e.g. "127.0.0.1" to check the certificate's IP
 * name, "127.0.0.2" for a name it does not have); the scheme follows the server's mode. Newly
 * allocated. */
char *tu_embed_server_url_host(const tu_embed_server *s, const char *host, const char *path);

/* True when the server was started with --tls-cert (HTTPS). */
bool tu_embed_server_tls(const tu_embed_server *s);

/* GET /stats: {"requests", "inputs", "faults_served", "max_in_flight"}; caller frees with
 * cJSON_Delete. Over HTTPS this control request does not check the server's certificate (the
 * tests check that through pgmemctl). */
cJSON *tu_embed_server_stats(const tu_embed_server *s);

/* One counter of /stats. */
long long tu_embed_server_stat(const tu_embed_server *s, const char *name);

/* SIGTERM, then waits (10 s, then SIGKILL); asserts a clean exit (status 0) without a sanitizer
 * report on its stderr. Frees s; NULL is allowed. */
void tu_embed_server_stop(tu_embed_server *s);

#endif

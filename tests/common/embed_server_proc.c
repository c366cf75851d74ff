/* embed_server_proc.c — starting, querying and stopping the loopback embedding server. */
#include "common/embed_server_proc.h"

#include "common/testutil.h"

#include <criterion/criterion.h>
#include <curl/curl.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct tu_embed_server {
    pid_t pid;
    int port;
    int outfd; /* read end of its stdout */
    int errfd; /* its stderr: an unlinked temporary file */
    bool tls;  /* started with --tls-cert: HTTPS */
};

static double es_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Everything written to fd (a regular file) from its start; newly allocated. */
static char *es_slurp(int fd)
{
    off_t end = lseek(fd, 0, SEEK_END);
    cr_assert(end >= 0, "lseek: %s", strerror(errno));
    char *buf = malloc((size_t)end + 1);
    cr_assert_not_null(buf);
    ssize_t got = pread(fd, buf, (size_t)end, 0);
    buf[got > 0 ? got : 0] = '\0';
    return buf;
}

char *tu_embed_server_path(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = '\0';
    return tu_printf("%s/embed-server", dirname(exe));
}

tu_embed_server *tu_embed_server_start(const char *const *args)
{
    char *path = tu_embed_server_path();
    cr_assert(access(path, X_OK) == 0, "%s is missing: run `make SAN=1 check-build`", path);
    size_t nargs = 0;
    while (args != NULL && args[nargs] != NULL)
        nargs++;
    char **argv = calloc(nargs + 3, sizeof *argv);
    cr_assert_not_null(argv);
    argv[0] = path;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = (char *)args[i];
    argv[nargs + 1] = "--exit-with-parent";

    tu_embed_server *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    for (size_t i = 0; i < nargs; i++)
        s->tls = s->tls || strcmp(args[i], "--tls-cert") == 0;
    char tmpl[] = "/tmp/embed-server-err.XXXXXX";
    s->errfd = mkstemp(tmpl);
    cr_assert(s->errfd >= 0, "mkstemp: %s", strerror(errno));
    unlink(tmpl);
    int out[2];
    cr_assert(pipe(out) == 0, "pipe: %s", strerror(errno));
    fcntl(out[0], F_SETFD, FD_CLOEXEC);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, s->errfd, 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    fflush(stdout);
    fflush(stderr);
    int rc = posix_spawn(&s->pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    free(argv);
    cr_assert_eq(rc, 0, "posix_spawn %s: %s", path, strerror(rc));
    free(path);
    s->outfd = out[0];

    /* The first line on its stdout is the port. */
    char line[32];
    size_t len = 0;
    double deadline = es_now() + 10;
    while (len < sizeof line - 1 && memchr(line, '\n', len) == NULL) {
        struct pollfd p = {s->outfd, POLLIN, 0};
        int left = (int)((deadline - es_now()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t got = read(s->outfd, line + len, sizeof line - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    line[len] = '\0';
    s->port = atoi(line);
    if (s->port <= 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        char *err = es_slurp(s->errfd);
        cr_assert_fail("embed-server printed no port (stdout \"%s\"); stderr:\n%s", line, err);
    }
    return s;
}

int tu_embed_server_port(const tu_embed_server *s)
{
    return s->port;
}

char *tu_embed_server_url(const tu_embed_server *s, const char *path)
{
    return tu_embed_server_url_host(s, s->tls ? "localhost" : "127.0.0.1", path);
}

char *tu_embed_server_url_host(const tu_embed_server *s, const char *host, const char *path)
{
    return tu_printf("%s://%s:%d%s", s->tls ? "https" : "http", host, s->port, path ? path : "");
}

bool tu_embed_server_tls(const tu_embed_server *s)
{
    return s->tls;
}

typedef struct {
    char *p;
    size_t len;
} es_buf;

static size_t es_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    es_buf *b = userdata;
    size_t add = size * nmemb;
    char *p = realloc(b->p, b->len + add + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

cJSON *tu_embed_server_stats(const tu_embed_server *s)
{
    char *url = tu_embed_server_url(s, "/stats");
    es_buf b = {0};
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, es_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (s->tls) { /* the harness's own request; certificate checks are what the tests are about */
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    cr_assert_eq(rc, CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
    cr_assert_eq(status, 200, "GET %s: HTTP %ld", url, status);
    free(url);
    cJSON *doc = tu_json(b.p);
    free(b.p);
    return doc;
}

long long tu_embed_server_stat(const tu_embed_server *s, const char *name)
{
    cJSON *doc = tu_embed_server_stats(s);
    long long v = (long long)tu_json_num(doc, name);
    cJSON_Delete(doc);
    return v;
}

void tu_embed_server_stop(tu_embed_server *s)
{
    if (s == NULL)
        return;
    kill(s->pid, SIGTERM);
    int st = 0;
    bool killed = false;
    double deadline = es_now() + 10;
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (!killed && es_now() > deadline) {
            kill(s->pid, SIGKILL);
            killed = true;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char *err = es_slurp(s->errfd);
    close(s->errfd);
    close(s->outfd);
    free(s);
    cr_assert_not(killed, "embed-server did not stop on SIGTERM within 10 s; stderr:\n%s", err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "embed-server exited with status 0x%x; stderr:\n%s", st, err);
    static const char *const markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"};
    for (size_t i = 0; i < sizeof markers / sizeof *markers; i++)
        cr_assert(!tu_contains(err, markers[i]), "embed-server: sanitizer report on stderr:\n%s", err);
    free(err);
}

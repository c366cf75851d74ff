/* embed_http.c — the HTTP embedders: OpenAI-compatible POST {api_base}/embeddings and Ollama's
 * POST {base}/api/embed through libcurl's multi interface, with batching, retries and response
 * validation. Formats and sources: embed_http.h. */
#include "embed_http.h"

#include "log.h"
#include "sqlite_values.h"
#include "redact.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#define EMBED_HTTP_MAX_DIM 16000                     /* pgvector's limit for the vector type */
#define EMBED_HTTP_MAX_CONCURRENCY 64
#define EMBED_HTTP_MAX_RESPONSE ((size_t)1 << 30)    /* bytes of one response body */
#define EMBED_HTTP_PROBE_TEXT "pgmemctl dimension probe"

/* ---- small helpers -------------------------------------------------------------------------- */

/* Masks every registered secret (the API key) in err, in place: the last guard before err leaves
 * this module, whatever a server echoed back. */
static void http_scrub_err(char *err, size_t errlen)
{
    if (err == NULL || errlen == 0)
        return;
    char *clean = redact_scrub(err);
    if (clean != NULL) {
        snprintf(err, errlen, "%s", clean);
        free(clean);
    }
}

static double http_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- pure functions ------------------------------------------------------------------------- */

size_t embed_http_tokens(size_t bytes)
{
    return bytes / 4 + (bytes % 4 != 0);
}

size_t embed_http_utf8_prefix(const char *text, size_t len, size_t max)
{
    if (len <= max)
        return len;
    const unsigned char *t = (const unsigned char *)text;
    for (size_t back = 0; back <= 3 && back <= max; back++) {
        if ((t[max - back] & 0xC0) != 0x80) /* a lead or ASCII byte: a boundary */
            return max - back;
    }
    return max;
}

size_t embed_http_next_request(const size_t *tokens, size_t n, size_t max_inputs, size_t max_tokens)
{
    if (n == 0)
        return 0;
    size_t k = 1, sum = tokens[0];
    while (k < n && k < max_inputs && sum + tokens[k] <= max_tokens)
        sum += tokens[k++];
    return k;
}

static const char *http_skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* True when s holds only white space. */
static bool http_rest_blank(const char *s)
{
    return *http_skip_space(s) == '\0';
}

bool embed_http_parse_retry_after_ms(const char *value, double *seconds)
{
    if (value == NULL)
        return false;
    const char *s = http_skip_space(value);
    size_t digits = strspn(s, "0123456789");
    if (digits == 0) /* no sign, no "inf"/"nan" */
        return false;
    if (s[digits] == '.')
        digits += 1 + strspn(s + digits + 1, "0123456789");
    if (!http_rest_blank(s + digits)) /* no exponent, no hex */
        return false;
    double ms = strtod(s, NULL);
    if (!isfinite(ms))
        return false;
    *seconds = ms / 1000.0;
    return true;
}

bool embed_http_parse_retry_after(const char *value, time_t now, double *seconds)
{
    if (value == NULL)
        return false;
    const char *s = http_skip_space(value);
    if (*s == '\0')
        return false;
    if (*s >= '0' && *s <= '9') {
        double v = 0;
        for (; *s >= '0' && *s <= '9'; s++)
            v = v * 10 + (*s - '0');
        if (!http_rest_blank(s))
            return false;
        *seconds = v;
        return true;
    }
    time_t t = curl_getdate(s, NULL);
    if (t == (time_t)-1)
        return false;
    *seconds = t > now ? difftime(t, now) : 0.0;
    return true;
}

double embed_http_backoff(int retries_done, double jitter)
{
    double ceiling = EMBED_HTTP_BACKOFF_BASE;
    for (int i = 0; i < retries_done && ceiling < EMBED_HTTP_BACKOFF_CAP; i++)
        ceiling *= 2;
    if (ceiling > EMBED_HTTP_BACKOFF_CAP)
        ceiling = EMBED_HTTP_BACKOFF_CAP;
    if (!(jitter >= 0)) /* also NaN */
        jitter = 0;
    if (jitter >= 1)
        jitter = 1;
    return jitter * ceiling;
}

bool embed_http_status_retryable(long status)
{
    return status == 0 || status == 408 || status == 409 || status == 429 || (status >= 500 && status <= 599);
}

embed_http_retry embed_http_retry_decide(long status, const char *retry_after_ms, const char *retry_after,
                                         int retries_done, int max_retries, double remaining, time_t now,
                                         double jitter)
{
    embed_http_retry r = {EMBED_HTTP_FAIL, 0.0, false};
    if (!embed_http_status_retryable(status))
        return r;
    if (retries_done >= max_retries) {
        r.verdict = EMBED_HTTP_GIVE_UP_RETRIES;
        return r;
    }
    double d;
    if (embed_http_parse_retry_after_ms(retry_after_ms, &d) || embed_http_parse_retry_after(retry_after, now, &d)) {
        r.delay = d;
        r.server_delay = true;
    } else {
        r.delay = embed_http_backoff(retries_done, jitter);
    }
    r.verdict = r.delay < remaining ? EMBED_HTTP_RETRY : EMBED_HTTP_GIVE_UP_TIMEOUT;
    return r;
}

char *embed_http_request_body(embed_http_provider provider, const char *model, const char *const *texts,
                              const size_t *lens, size_t n, int dimensions)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL && cJSON_AddStringToObject(root, "model", model) != NULL;
    cJSON *input = ok ? cJSON_AddArrayToObject(root, "input") : NULL;
    ok = ok && input != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        char *s = malloc(lens[i] + 1);
        if (s == NULL) {
            ok = false;
            break;
        }
        memcpy(s, texts[i], lens[i]);
        s[lens[i]] = '\0';
        cJSON *item = cJSON_CreateString(s);
        free(s);
        ok = item != NULL && cJSON_AddItemToArray(input, item);
        if (!ok)
            cJSON_Delete(item);
    }
    if (ok && provider == EMBED_HTTP_OPENAI && dimensions > 0)
        ok = cJSON_AddNumberToObject(root, "dimensions", dimensions) != NULL;
    char *body = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return body;
}

/* Checks one embedding array and copies it into row (dim floats). *dim is the dimension every
 * embedding must have (0: not yet known; then set from this one). i names it in messages. */
static bool http_take_embedding(const cJSON *arr, size_t i, int *dim, bool dim_given, float *row, char *err,
                                size_t errlen)
{
    if (arr == NULL || !cJSON_IsArray(arr)) {
        embed_seterr(err, errlen, "embedding %zu is not an array", i);
        return false;
    }
    int m = cJSON_GetArraySize(arr);
    if (*dim == 0) {
        if (m < 1 || m > EMBED_HTTP_MAX_DIM) {
            embed_seterr(err, errlen, "embedding %zu has %d dimensions (expected 1 to %d)", i, m,
                         EMBED_HTTP_MAX_DIM);
            return false;
        }
        *dim = m;
    } else if (m != *dim) {
        embed_seterr(err, errlen, "wrong dimension: embedding %zu has %d dimensions, expected %d%s", i, m, *dim,
                     dim_given ? "" : " (the first embedding's)");
        return false;
    }
    if (row == NULL)
        return true;
    int k = 0;
    for (const cJSON *v = arr->child; v != NULL; v = v->next, k++) {
        float f = (float)v->valuedouble;
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || !isfinite(f)) {
            embed_seterr(err, errlen, "element %d of embedding %zu is not a finite number", k, i);
            return false;
        }
        row[k] = f;
    }
    return true;
}

bool embed_http_parse_response(embed_http_provider provider, const char *body, size_t len, size_t n, int *dim,
                               float **vectors, char *err, size_t errlen)
{
    *vectors = NULL;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (root == NULL) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at != NULL && at >= body && at <= body + len ? (size_t)(at - body) : len;
        embed_seterr(err, errlen, "invalid JSON in the response (near byte %zu of %zu)", off, len);
        return false;
    }
    const char *key = provider == EMBED_HTTP_OPENAI ? "data" : "embeddings";
    const cJSON *list = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, key) : NULL;
    bool ok = false;
    float *vec = NULL;
    int d = *dim > 0 ? *dim : 0;
    const cJSON **rows = NULL;

    if (list == NULL || !cJSON_IsArray(list)) {
        embed_seterr(err, errlen, "the response has no \"%s\" array", key);
        goto done;
    }
    size_t count = (size_t)cJSON_GetArraySize(list);
    if (count != n) {
        embed_seterr(err, errlen, "wrong number of embeddings: %zu embeddings for %zu inputs", count, n);
        goto done;
    }
    rows = calloc(n ? n : 1, sizeof(const cJSON *));
    if (rows == NULL) {
        embed_seterr(err, errlen, "out of memory reading the response");
        goto done;
    }
    /* rows[i]: the embedding array of input i, by "index" (OpenAI) or by position (Ollama). */
    size_t pos = 0;
    for (const cJSON *item = list->child; item != NULL; item = item->next, pos++) {
        if (provider == EMBED_HTTP_OLLAMA) {
            rows[pos] = item;
            continue;
        }
        const cJSON *idx = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "index") : NULL;
        double x = idx != NULL && cJSON_IsNumber(idx) ? idx->valuedouble : -1;
        if (!(x >= 0 && x < (double)n && x == floor(x))) {
            embed_seterr(err, errlen, "data[%zu] has no valid \"index\" (an integer from 0 to %zu)", pos,
                         n ? n - 1 : 0);
            goto done;
        }
        size_t i = (size_t)x;
        if (rows[i] != NULL) {
            embed_seterr(err, errlen, "index %zu appears twice in the response", i);
            goto done;
        }
        rows[i] = cJSON_GetObjectItemCaseSensitive(item, "embedding");
        if (rows[i] == NULL) {
            embed_seterr(err, errlen, "data[%zu] (index %zu) has no \"embedding\"", pos, i);
            goto done;
        }
    }
    /* n distinct indices in 0..n-1 cover every input, so no row is missing here. */
    for (size_t i = 0; i < n; i++)
        if (!http_take_embedding(rows[i], i, &d, *dim > 0, NULL, err, errlen))
            goto done;
    /* no inputs, nothing to hold: the size must not follow a *dim given from outside */
    vec = malloc(n ? n * (size_t)(d ? d : 1) * sizeof *vec : sizeof *vec);
    if (vec == NULL) {
        embed_seterr(err, errlen, "out of memory reading the response");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (!http_take_embedding(rows[i], i, &d, true, vec + i * (size_t)d, err, errlen))
            goto done;
    ok = true;

done:
    free(rows);
    cJSON_Delete(root);
    if (!ok) {
        free(vec);
        return false;
    }
    if (d > 0)
        *dim = d;
    *vectors = vec;
    return true;
}

void embed_http_server_message(const char *body, size_t len, char *msg, size_t msglen)
{
    if (msg == NULL || msglen == 0)
        return;
    const char *text = body;
    size_t tlen = body != NULL ? len : 0;
    cJSON *root = tlen > 0 ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsObject(e))
        e = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(e) && e->valuestring[0] != '\0') {
        text = e->valuestring;
        tlen = strlen(text);
    }
    while (tlen > 0 && (text[tlen - 1] == '\n' || text[tlen - 1] == '\r' || text[tlen - 1] == ' '))
        tlen--;
    if (tlen == 0) {
        snprintf(msg, msglen, "(empty body)");
    } else {
        /* valid UTF-8, since it ends up in the JSON summary: other bytes as \xHH (text_printable),
         * cut on a character boundary */
        if (text_printable(text, tlen, msg, msglen) < tlen) {
            if (msglen > 4) {
                text_printable(text, tlen, msg, msglen - 3);
                strcat(msg, "...");
            } else {
                msg[0] = '\0';
            }
        }
        for (char *p = msg; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
    }
    cJSON_Delete(root);
}

/* ---- CA certificates ------------------------------------------------------------------------ */

const char *const embed_http_ca_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu */
    "/etc/pki/tls/certs/ca-bundle.crt",                  /* Fedora, RHEL, CentOS */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* Fedora, RHEL (the extracted bundle) */
    "/etc/ssl/ca-bundle.pem",                            /* openSUSE */
    "/etc/ssl/cert.pem",                                 /* Alpine */
    NULL,
};

/* 0 when path opens for reading and is not a directory, else an errno value. */
static int http_file_problem(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    close(fd);
    return e;
}

/* 0 when path is a directory that can be listed, else an errno value. */
static int http_dir_problem(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return errno;
    closedir(d);
    return 0;
}

static bool http_set(const char *v)
{
    return v != NULL && v[0] != '\0';
}

bool embed_http_ca_choose(const char *env_file, const char *env_dir, const char *default_file,
                          const char *default_dir, const char *const *bundles, embed_http_ca *out, char *err,
                          size_t errlen)
{
    embed_http_ca ca = {NULL, NULL, EMBED_HTTP_CA_DEFAULT};
    int e;
    if (http_set(env_file) || http_set(env_dir)) {
        if (http_set(env_file) && (e = http_file_problem(env_file)) != 0) {
            embed_seterr(err, errlen, "SSL_CERT_FILE=%s: %s", env_file, strerror(e));
            return false;
        }
        if (http_set(env_dir) && (e = http_dir_problem(env_dir)) != 0) {
            embed_seterr(err, errlen, "SSL_CERT_DIR=%s: %s", env_dir, strerror(e));
            return false;
        }
        ca.file = http_set(env_file) ? env_file : NULL;
        ca.dir = http_set(env_dir) ? env_dir : NULL;
        ca.source = EMBED_HTTP_CA_ENV;
    } else if (http_set(default_file) ? http_file_problem(default_file) == 0
                                      : http_set(default_dir) && http_dir_problem(default_dir) == 0) {
        /* the file decides when there is one: Fedora has /etc/ssl/certs, but no hashed links in it */
        ca.source = EMBED_HTTP_CA_DEFAULT;
    } else {
        ca.source = EMBED_HTTP_CA_NONE;
        for (const char *const *b = bundles ? bundles : embed_http_ca_bundles; *b != NULL; b++) {
            if (http_file_problem(*b) == 0) {
                ca.file = *b;
                ca.source = EMBED_HTTP_CA_FALLBACK;
                break;
            }
        }
    }
    *out = ca;
    return true;
}

bool embed_http_transport_permanent(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_PEER_FAILED_VERIFICATION: /* the certificate or its name did not verify */
    case CURLE_SSL_CACERT_BADFILE:       /* the CA file or directory could not be used */
    case CURLE_SSL_CERTPROBLEM:          /* a client certificate */
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return true;
    default:
        return false;
    }
}

/* ---- the embedder --------------------------------------------------------------------------- */

struct embed_http {
    embed_http_provider provider;
    char *model;
    char *url;           /* POST target */
    char *url_shown;     /* url without user:password@, for messages */
    struct curl_slist *headers;
    CURLM *multi;        /* kept across batches: its connection cache reuses connections */
    int dim;
    int dimensions;      /* the request field (OpenAI), 0 = none */
    int concurrency, max_retries;
    size_t max_inputs;   /* inputs per request (EMBED_HTTP_MAX_INPUTS or fewer) */
    double timeout, request_timeout;
    bool truncate_long;
    char *ca_file, *ca_dir; /* CURLOPT_CAINFO / CURLOPT_CAPATH (https only); NULL: libcurl's default */
    char ca_note[768];      /* which CA certificates are trusted, for certificate errors */
    uint64_t rng;
    embed_stats stats;
};

static pthread_once_t http_curl_once = PTHREAD_ONCE_INIT;
static CURLcode http_curl_init_rc = CURLE_FAILED_INIT;

static void http_curl_init(void)
{
    http_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Uniform in [0, 1) (splitmix64); only for backoff jitter. */
static double http_random(embed_http *h)
{
    uint64_t z = (h->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0; /* 2^53 */
}

/* Base URL from the option, the environment or the default; NULL if none is usable. Ollama's
 * OLLAMA_HOST may be "host[:port]" without a scheme: http:// and port 11434 are then assumed,
 * as Ollama itself does. Trailing slashes are dropped. Newly allocated. */
static char *http_base_url(embed_http_provider provider, const char *opt_base)
{
    const char *env = provider == EMBED_HTTP_OPENAI ? "OPENAI_BASE_URL" : "OLLAMA_HOST";
    const char *def = provider == EMBED_HTTP_OPENAI ? "https://api.openai.com/v1" : "http://127.0.0.1:11434";
    const char *b = opt_base != NULL && opt_base[0] ? opt_base : getenv(env);
    if (b == NULL || b[0] == '\0')
        b = def;
    size_t len = strlen(b);
    while (len > 0 && b[len - 1] == '/')
        len--;
    char *out = malloc(len + 32);
    if (out == NULL)
        return NULL;
    if (strstr(b, "://") == NULL && provider == EMBED_HTTP_OLLAMA) {
        const char *slash = memchr(b, '/', len);
        size_t hostlen = slash ? (size_t)(slash - b) : len;
        const char *bracket = memchr(b, ']', hostlen); /* [::1]:port */
        const char *from = bracket ? bracket : b;
        bool add_port = memchr(from, ':', hostlen - (size_t)(from - b)) == NULL;
        snprintf(out, len + 32, "http://%.*s%s%.*s", (int)hostlen, b, add_port ? ":11434" : "",
                 (int)(len - hostlen), b + hostlen);
    } else {
        snprintf(out, len + 32, "%.*s", (int)len, b);
    }
    return out;
}

/* url with any "user:password@" removed (messages may show it). Newly allocated. */
static char *http_url_shown(const char *url)
{
    const char *p = strstr(url, "://");
    const char *host = p ? p + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *q = host; q < end; q++)
        if (*q == '@')
            at = q;
    size_t len = strlen(url);
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    if (at == NULL) {
        memcpy(out, url, len + 1);
    } else {
        size_t pre = (size_t)(host - url);
        memcpy(out, url, pre);
        strcpy(out + pre, at + 1);
    }
    return out;
}

/* The CA certificates an https embedder trusts (embed_http_ca_choose with the environment and
 * libcurl's defaults), copied into h, with a note for certificate errors. */
static bool http_setup_ca(embed_http *h, char *err, size_t errlen)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    const char *def_file = v != NULL && v->age >= CURLVERSION_SEVENTH ? v->cainfo : NULL;
    const char *def_dir = v != NULL && v->age >= CURLVERSION_SEVENTH ? v->capath : NULL;
    embed_http_ca ca;
    if (!embed_http_ca_choose(getenv("SSL_CERT_FILE"), getenv("SSL_CERT_DIR"), def_file, def_dir, NULL, &ca, err,
                              errlen))
        return false;
    if ((ca.file != NULL && (h->ca_file = strdup(ca.file)) == NULL) ||
        (ca.dir != NULL && (h->ca_dir = strdup(ca.dir)) == NULL)) {
        embed_seterr(err, errlen, "out of memory");
        return false;
    }
    const char *def = http_set(def_file) ? def_file : http_set(def_dir) ? def_dir : NULL;
    switch (ca.source) {
    case EMBED_HTTP_CA_ENV:
        snprintf(h->ca_note, sizeof h->ca_note, "trusted CA certificates: %s%s%s%s%s",
                 ca.file ? "SSL_CERT_FILE=" : "", ca.file ? ca.file : "", ca.file && ca.dir ? " and " : "",
                 ca.dir ? "SSL_CERT_DIR=" : "", ca.dir ? ca.dir : "");
        break;
    case EMBED_HTTP_CA_DEFAULT:
        snprintf(h->ca_note, sizeof h->ca_note,
                 "trusted CA certificates: libcurl's default %s; set SSL_CERT_FILE to trust another CA", def);
        break;
    case EMBED_HTTP_CA_FALLBACK:
        snprintf(h->ca_note, sizeof h->ca_note,
                 "trusted CA certificates: %s (libcurl's default %s is missing here); set SSL_CERT_FILE to "
                 "trust another CA",
                 ca.file, def ? def : "(none built in)");
        break;
    case EMBED_HTTP_CA_NONE:
    default:
        snprintf(h->ca_note, sizeof h->ca_note,
                 "no CA certificates found: libcurl's default %s is missing here and so are the usual bundles;"
                 " set SSL_CERT_FILE",
                 def ? def : "(none built in)");
        break;
    }
    log_debug("%s: %s", h->url_shown, h->ca_note);
    return true;
}

embed_http *embed_http_open(embed_http_provider provider, const char *model, const embed_options *opt,
                            char *err, size_t errlen)
{
    static const embed_options none;
    if (opt == NULL)
        opt = &none;
    const char *prov = provider == EMBED_HTTP_OPENAI ? "openai" : "ollama";
    if (model == NULL || model[0] == '\0') {
        embed_seterr(err, errlen, "missing model name (expected %s:MODEL)", prov);
        return NULL;
    }
    for (const unsigned char *c = (const unsigned char *)model; *c; c++) {
        if (*c <= 0x20 || *c == 0x7f) {
            embed_seterr(err, errlen, "invalid model name \"%s\": no spaces or control characters", model);
            return NULL;
        }
    }
    if (opt->dimensions < 0 || opt->dimensions > EMBED_HTTP_MAX_DIM) {
        embed_seterr(err, errlen, "invalid dimensions %d (expected 1 to %d, or 0 for the model's own)",
                     opt->dimensions, EMBED_HTTP_MAX_DIM);
        return NULL;
    }
    if (opt->concurrency < 0 || opt->concurrency > EMBED_HTTP_MAX_CONCURRENCY) {
        embed_seterr(err, errlen, "invalid concurrency %d (expected 1 to %d)", opt->concurrency,
                     EMBED_HTTP_MAX_CONCURRENCY);
        return NULL;
    }
    if (!(opt->timeout >= 0) || !(opt->request_timeout >= 0) || !isfinite(opt->timeout) ||
        !isfinite(opt->request_timeout)) {
        embed_seterr(err, errlen, "invalid timeout (expected a non-negative number of seconds)");
        return NULL;
    }
    if (pthread_once(&http_curl_once, http_curl_init) != 0 || http_curl_init_rc != CURLE_OK) {
        embed_seterr(err, errlen, "libcurl could not be initialised");
        return NULL;
    }

    embed_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        embed_seterr(err, errlen, "out of memory opening the %s embedder", prov);
        return NULL;
    }
    h->provider = provider;
    h->dimensions = opt->dimensions;
    h->dim = opt->dimensions;
    h->concurrency = opt->concurrency > 0 ? opt->concurrency : 4;
    h->max_inputs = opt->inputs_per_request > 0 && opt->inputs_per_request < EMBED_HTTP_MAX_INPUTS
                        ? (size_t)opt->inputs_per_request
                        : EMBED_HTTP_MAX_INPUTS;
    h->max_retries = opt->max_retries > 0 ? opt->max_retries : opt->max_retries < 0 ? 0 : 6;
    h->timeout = opt->timeout > 0 ? opt->timeout : 600;
    h->request_timeout = opt->request_timeout > 0 ? opt->request_timeout : 120;
    h->truncate_long = opt->truncate_long;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->rng = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16) ^ (uintptr_t)h;

    h->model = strdup(model);
    char *base = http_base_url(provider, opt->api_base);
    const char *path = provider == EMBED_HTTP_OPENAI ? "/embeddings" : "/api/embed";
    if (base != NULL && (h->url = malloc(strlen(base) + strlen(path) + 1)) != NULL)
        sprintf(h->url, "%s%s", base, path);
    free(base);
    h->url_shown = h->url ? http_url_shown(h->url) : NULL;
    h->multi = curl_multi_init();
    bool ok = h->model && h->url && h->url_shown && h->multi;

    char ua[64];
    snprintf(ua, sizeof ua, "User-Agent: pgmemctl/%s", PGMEMCTL_VERSION);
    const char *fixed[] = {"Content-Type: application/json", "Accept: application/json", ua,
                           "Expect:"}; /* no 100-continue round trip before large bodies */
    for (size_t i = 0; ok && i < sizeof fixed / sizeof *fixed; i++) {
        struct curl_slist *l = curl_slist_append(h->headers, fixed[i]);
        ok = l != NULL;
        if (ok)
            h->headers = l;
    }
    const char *key = opt->api_key;
    if (key == NULL && provider == EMBED_HTTP_OPENAI)
        key = getenv("OPENAI_API_KEY");
    if (ok && key != NULL && key[0] != '\0') {
        redact_add_secret(key);
        size_t alen = strlen(key) + sizeof "Authorization: Bearer ";
        char *auth = malloc(alen);
        ok = auth != NULL;
        if (ok) {
            snprintf(auth, alen, "Authorization: Bearer %s", key);
            struct curl_slist *l = curl_slist_append(h->headers, auth);
            ok = l != NULL;
            if (ok)
                h->headers = l;
            memset(auth, 0, alen);
            free(auth);
        }
    }
    if (!ok) {
        embed_seterr(err, errlen, "out of memory opening the %s embedder", prov);
        embed_http_close(h);
        return NULL;
    }
    if (strncasecmp(h->url, "https://", 8) == 0 && !http_setup_ca(h, err, errlen)) {
        embed_http_close(h);
        return NULL;
    }
    return h;
}

int embed_http_dimension(const embed_http *h)
{
    return h->dim;
}

void embed_http_get_stats(const embed_http *h, embed_stats *out)
{
    *out = h->stats;
}

void embed_http_close(embed_http *h)
{
    if (h == NULL)
        return;
    if (h->multi)
        curl_multi_cleanup(h->multi);
    curl_slist_free_all(h->headers);
    free(h->model);
    free(h->url);
    free(h->url_shown);
    free(h->ca_file);
    free(h->ca_dir);
    free(h);
}

/* ---- running requests ----------------------------------------------------------------------- */

typedef enum { REQ_WAITING, REQ_RUNNING, REQ_DONE } http_req_state;

/* One request: inputs [first, first + count) of the send list. */
typedef struct {
    size_t first, count;
    http_req_state state;
    int retries;             /* retries made so far */
    double not_before;       /* monotonic seconds: do not start before */
    char *body;              /* JSON, built on first start, kept for retries */
    CURL *easy;
    char *resp;              /* response body so far */
    size_t resp_len, resp_cap;
    bool resp_too_big;
    char retry_after_ms[32], retry_after[64];
    char curl_err[CURL_ERROR_SIZE];
} http_req;

/* The inputs actually sent: pointers and (possibly truncated) lengths, their row in out. */
typedef struct {
    const char **text;
    size_t *len, *tokens, *row;
    size_t n;
} http_sendlist;

static size_t http_on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    http_req *r = userdata;
    size_t add = size * nmemb;
    if (r->resp_len + add + 1 > r->resp_cap) {
        if (r->resp_len + add + 1 > EMBED_HTTP_MAX_RESPONSE) {
            r->resp_too_big = true;
            return 0; /* aborts the transfer */
        }
        size_t cap = r->resp_cap ? r->resp_cap : 16384;
        while (cap < r->resp_len + add + 1)
            cap *= 2;
        char *p = realloc(r->resp, cap);
        if (p == NULL)
            return 0;
        r->resp = p;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, data, add);
    r->resp_len += add;
    r->resp[r->resp_len] = '\0';
    return add;
}

/* Copies the value of header line "name: value\r\n" into dst when its name matches. */
static void http_take_header(const char *line, size_t len, const char *name, char *dst, size_t dstlen)
{
    size_t nlen = strlen(name);
    if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return;
    const char *v = line + nlen + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (vlen >= dstlen)
        vlen = dstlen - 1;
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
}

static size_t http_on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    http_req *r = userdata;
    size_t len = size * nmemb;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after 100 Continue) */
        r->retry_after_ms[0] = r->retry_after[0] = '\0';
        return len;
    }
    http_take_header(line, len, "retry-after-ms", r->retry_after_ms, sizeof r->retry_after_ms);
    http_take_header(line, len, "retry-after", r->retry_after, sizeof r->retry_after);
    return len;
}

/* "request 2 of 5 (inputs 2049-4096 of 10000)": names a request in messages. */
static void http_req_name(const http_sendlist *sl, const http_req *r, size_t nreq, size_t idx, size_t n_in,
                          char *buf, size_t buflen)
{
    size_t a = sl->row[r->first] + 1, b = sl->row[r->first + r->count - 1] + 1;
    if (a == b)
        snprintf(buf, buflen, "request %zu of %zu (input %zu of %zu)", idx + 1, nreq, a, n_in);
    else
        snprintf(buf, buflen, "request %zu of %zu (inputs %zu-%zu of %zu)", idx + 1, nreq, a, b, n_in);
}

static bool http_start(embed_http *h, const http_sendlist *sl, http_req *r, double deadline, char *err,
                       size_t errlen)
{
    if (r->body == NULL) {
        r->body = embed_http_request_body(h->provider, h->model, sl->text + r->first, sl->len + r->first,
                                          r->count, h->dimensions);
        if (r->body == NULL) {
            embed_seterr(err, errlen, "out of memory building a request body");
            return false;
        }
    }
    r->resp_len = 0;
    r->resp_too_big = false;
    r->retry_after_ms[0] = r->retry_after[0] = r->curl_err[0] = '\0';
    CURL *c = curl_easy_init();
    if (c == NULL) {
        embed_seterr(err, errlen, "libcurl could not create a request");
        return false;
    }
    double left = deadline - http_now();
    double t = h->request_timeout < left ? h->request_timeout : left;
    long tms = t > 0.001 ? (long)(t * 1000) : 1;
    long cms = tms < 30000 ? tms : 30000;
    bool ok = curl_easy_setopt(c, CURLOPT_URL, h->url) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body)) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_on_body) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEDATA, r) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_on_header) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERDATA, r) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_err) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, tms) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cms) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)r) == CURLE_OK &&
              (h->ca_file == NULL || curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file) == CURLE_OK) &&
              (h->ca_dir == NULL || curl_easy_setopt(c, CURLOPT_CAPATH, h->ca_dir) == CURLE_OK) &&
              curl_multi_add_handle(h->multi, c) == CURLM_OK;
    if (!ok) {
        curl_easy_cleanup(c);
        embed_seterr(err, errlen, "libcurl could not set up a request to %s", h->url_shown);
        return false;
    }
    r->easy = c;
    r->state = REQ_RUNNING;
    h->stats.requests++;
    return true;
}

static void http_stop(embed_http *h, http_req *r)
{
    if (r->easy == NULL)
        return;
    curl_multi_remove_handle(h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
}

/* Handles a finished transfer: success (vectors copied into out when out is not NULL), a retry
 * (r back to REQ_WAITING) or a failure (false with err). */
static bool http_finish(embed_http *h, const http_sendlist *sl, http_req *r, CURLcode res, size_t nreq,
                        size_t ridx, size_t n_in, float *out, double deadline, char *err, size_t errlen)
{
    long status = 0;
    if (res == CURLE_OK)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    http_stop(h, r);

    char what[96];
    http_req_name(sl, r, nreq, ridx, n_in, what, sizeof what);
    if (r->resp_too_big) {
        embed_seterr(err, errlen, "POST %s: %s: the response is larger than %zu bytes", h->url_shown, what,
                     EMBED_HTTP_MAX_RESPONSE);
        return false;
    }

    if (res == CURLE_OK && status == 200) {
        float *vec = NULL;
        char why[256];
        int dim = h->dim;
        if (!embed_http_parse_response(h->provider, r->resp ? r->resp : "", r->resp_len, r->count, &dim, &vec,
                                       why, sizeof why)) {
            embed_seterr(err, errlen, "POST %s: %s: bad response: %s", h->url_shown, what, why);
            return false;
        }
        h->dim = dim;
        if (out != NULL)
            for (size_t i = 0; i < r->count; i++)
                memcpy(out + sl->row[r->first + i] * (size_t)dim, vec + i * (size_t)dim,
                       (size_t)dim * sizeof *out);
        free(vec);
        for (size_t i = 0; i < r->count; i++)
            h->stats.tokens_estimated += (long long)sl->tokens[r->first + i];
        h->stats.inputs += (long long)r->count;
        r->state = REQ_DONE;
        free(r->body); /* a batch can be large: keep nothing of a finished request */
        free(r->resp);
        r->body = r->resp = NULL;
        r->resp_len = r->resp_cap = 0;
        return true;
    }

    /* What went wrong, for the log and for err. */
    char problem[1280];
    bool permanent = res != CURLE_OK && embed_http_transport_permanent(res);
    if (res != CURLE_OK) {
        const char *why = r->curl_err[0] ? r->curl_err : curl_easy_strerror(res);
        if ((res == CURLE_PEER_FAILED_VERIFICATION || res == CURLE_SSL_CACERT_BADFILE ||
             res == CURLE_SSL_ISSUER_ERROR) && h->ca_note[0])
            snprintf(problem, sizeof problem, "%s (%s)", why, h->ca_note);
        else
            snprintf(problem, sizeof problem, "%s", why);
    } else {
        char msg[300];
        embed_http_server_message(r->resp, r->resp_len, msg, sizeof msg);
        snprintf(problem, sizeof problem, "HTTP %ld: %s", status, msg);
    }
    double now = http_now();
    embed_http_retry d = embed_http_retry_decide(status, r->retry_after_ms, r->retry_after, r->retries,
                                                 h->max_retries, deadline - now, time(NULL), http_random(h));
    if (permanent) /* a certificate that failed verification fails again */
        d.verdict = EMBED_HTTP_FAIL;
    switch (d.verdict) {
    case EMBED_HTTP_RETRY:
        r->retries++;
        h->stats.retries++;
        r->state = REQ_WAITING;
        r->not_before = now + d.delay;
        log_debug("%s: %s: %s; retry %d of %d in %.2f s%s", h->url_shown, what, problem, r->retries,
                  h->max_retries, d.delay, d.server_delay ? " (as the server asked)" : "");
        return true;
    case EMBED_HTTP_GIVE_UP_RETRIES:
        embed_seterr(err, errlen, "POST %s: %s: %s (gave up after %d %s)", h->url_shown, what, problem,
                     r->retries, r->retries == 1 ? "retry" : "retries");
        return false;
    case EMBED_HTTP_GIVE_UP_TIMEOUT:
        if (deadline - now <= 0)
            embed_seterr(err, errlen, "POST %s: %s: %s; the overall timeout of %g s has passed (after %d %s)",
                         h->url_shown, what, problem, h->timeout, r->retries, r->retries == 1 ? "retry" : "retries");
        else
            embed_seterr(err, errlen,
                         "POST %s: %s: %s; a retry in %.1f s%s would pass the overall timeout of %g s (after %d %s)",
                         h->url_shown, what, problem, d.delay, d.server_delay ? " (as the server asked)" : "",
                         h->timeout, r->retries, r->retries == 1 ? "retry" : "retries");
        return false;
    case EMBED_HTTP_FAIL:
    default:
        embed_seterr(err, errlen, "POST %s: %s: %s", h->url_shown, what, problem);
        return false;
    }
}

/* Sends the send list in requests of bounded size, up to concurrency at once, until every
 * request succeeded or one failed. out: rows by sl->row, h->dim floats each (NULL: the probe,
 * which learns h->dim). */
static bool http_run(embed_http *h, const http_sendlist *sl, size_t n_in, float *out, char *err, size_t errlen)
{
    size_t nreq = 0;
    for (size_t at = 0; at < sl->n; nreq++)
        at += embed_http_next_request(sl->tokens + at, sl->n - at, h->max_inputs,
                                      EMBED_HTTP_MAX_REQUEST_TOKENS);
    if (nreq == 0)
        return true;
    http_req *reqs = calloc(nreq, sizeof *reqs);
    if (reqs == NULL) {
        embed_seterr(err, errlen, "out of memory planning %zu requests", nreq);
        return false;
    }
    size_t at = 0;
    for (size_t i = 0; i < nreq; i++) {
        reqs[i].first = at;
        reqs[i].count = embed_http_next_request(sl->tokens + at, sl->n - at, h->max_inputs,
                                                EMBED_HTTP_MAX_REQUEST_TOKENS);
        at += reqs[i].count;
    }

    double t0 = http_now(), deadline = t0 + h->timeout;
    size_t done = 0, first_open = 0;
    bool ok = true;
    while (ok && done < nreq) {
        double now = http_now();
        if (now >= deadline) {
            embed_seterr(err, errlen, "POST %s: the overall timeout of %g s passed with %zu of %zu requests done",
                         h->url_shown, h->timeout, done, nreq);
            ok = false;
            break;
        }
        /* Start what may start, in order, up to the concurrency. */
        size_t running = 0;
        double next_start = deadline;
        for (size_t i = first_open; i < nreq; i++)
            running += reqs[i].state == REQ_RUNNING;
        for (size_t i = first_open; i < nreq && ok; i++) {
            if (reqs[i].state != REQ_WAITING)
                continue;
            if (reqs[i].not_before > now) {
                if (reqs[i].not_before < next_start)
                    next_start = reqs[i].not_before;
                continue;
            }
            if (running >= (size_t)h->concurrency)
                break;
            ok = http_start(h, sl, &reqs[i], deadline, err, errlen);
            running += ok;
        }
        if (!ok)
            break;

        double wait = (running < (size_t)h->concurrency ? next_start : deadline) - now;
        int wait_ms = wait <= 0 ? 0 : wait > 1.0 ? 1000 : (int)(wait * 1000) + 1;
        int still = 0;
        if (curl_multi_perform(h->multi, &still) != CURLM_OK ||
            (still > 0 && curl_multi_poll(h->multi, NULL, 0, wait_ms, NULL) != CURLM_OK) ||
            curl_multi_perform(h->multi, &still) != CURLM_OK) {
            embed_seterr(err, errlen, "POST %s: libcurl's multi interface failed", h->url_shown);
            ok = false;
            break;
        }
        if (still == 0 && running == 0 && wait_ms > 0) {
            struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL); /* only retries are waiting */
        }
        CURLMsg *m;
        int left;
        while (ok && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            http_req *r = (http_req *)(void *)priv;
            CURLcode res = m->data.result;
            ok = http_finish(h, sl, r, res, nreq, (size_t)(r - reqs), n_in, out, deadline, err, errlen);
            done += ok && r->state == REQ_DONE;
        }
        while (first_open < nreq && reqs[first_open].state == REQ_DONE)
            first_open++;
    }
    for (size_t i = 0; i < nreq; i++) {
        http_stop(h, &reqs[i]);
        free(reqs[i].body);
        free(reqs[i].resp);
    }
    free(reqs);
    return ok;
}

bool embed_http_probe(embed_http *h, char *err, size_t errlen)
{
    if (h->dim > 0)
        return true;
    const char *text = EMBED_HTTP_PROBE_TEXT;
    size_t len = strlen(text), tokens = embed_http_tokens(len), row = 0;
    http_sendlist sl = {&text, &len, &tokens, &row, 1};
    bool ok = http_run(h, &sl, 1, NULL, err, errlen);
    if (!ok)
        http_scrub_err(err, errlen);
    return ok;
}

bool embed_http_batch(embed_http *h, const char *const *texts, const size_t *lens, size_t n, float *out,
                      unsigned char *status, char *err, size_t errlen)
{
    if (n == 0)
        return true;
    if (h->dim <= 0) {
        embed_seterr(err, errlen,
                     "the dimension of %s model \"%s\" is not known yet: probe it (embed_probe) before "
                     "embedding a batch",
                     h->provider == EMBED_HTTP_OPENAI ? "openai" : "ollama", h->model);
        return false;
    }
    const size_t max_bytes = (size_t)EMBED_HTTP_MAX_INPUT_TOKENS * 4;
    http_sendlist sl = {0};
    sl.text = malloc(n * sizeof *sl.text);
    sl.len = malloc(n * sizeof *sl.len);
    sl.tokens = malloc(n * sizeof *sl.tokens);
    sl.row = malloc(n * sizeof *sl.row);
    bool ok = sl.text && sl.len && sl.tokens && sl.row;
    if (!ok)
        embed_seterr(err, errlen, "out of memory for a batch of %zu inputs", n);
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char st = EMBED_OK;
        size_t len = lens[i];
        if (len == 0)
            st = EMBED_EMPTY;
        else if (len > max_bytes && h->truncate_long)
            len = embed_http_utf8_prefix(texts[i], len, max_bytes);
        else if (len > max_bytes)
            st = EMBED_TOO_LONG;
        if (status != NULL)
            status[i] = st;
        if (st == EMBED_OK) {
            sl.text[sl.n] = texts[i];
            sl.len[sl.n] = len;
            sl.tokens[sl.n] = embed_http_tokens(len);
            sl.row[sl.n++] = i;
        } else if (status == NULL && st == EMBED_EMPTY) {
            embed_seterr(err, errlen, "input %zu of %zu is empty (nothing to embed)", i + 1, n);
            ok = false;
        } else if (status == NULL) {
            embed_seterr(err, errlen, "input %zu of %zu is too long (%zu bytes, over %d estimated tokens)", i + 1,
                         n, lens[i], EMBED_HTTP_MAX_INPUT_TOKENS);
            ok = false;
        }
    }
    if (ok)
        ok = http_run(h, &sl, n, out, err, errlen);
    free(sl.text);
    free(sl.len);
    free(sl.tokens);
    free(sl.row);
    if (!ok)
        http_scrub_err(err, errlen);
    return ok;
}

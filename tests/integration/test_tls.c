/* test_tls.c — TLS with real servers and a private CA (scripts/make-test-ca):
 *   reembed_https  `pgmemctl reembed` with an openai: model against the loopback embedding server
 *                  over HTTPS (embed-server --tls-cert/--tls-key): trusted through SSL_CERT_FILE
 *                  or SSL_CERT_DIR it re-embeds with the right vectors; with another CA, or with
 *                  the system's CAs only, it fails at once with curl's certificate error and the
 *                  CAs it trusted, nothing written; a missing SSL_CERT_FILE is a configuration
 *                  error (exit 2) naming the file, before anything is sent.
 *   pg_tls         libpq through the TLS sandbox (PGMEMCTL_TEST_TLS_URL, sslmode=verify-full):
 *                  migrate and verify work; another CA fails with libpq's certificate error
 *                  (exit 1); a connection without TLS still works. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/embed_server_proc.h"
#include "common/reembed_fixture.h"
#include "common/testutil.h"

TestSuite(reembed_https, .fini = tu_leak_check, .timeout = 120);
TestSuite(pg_tls, .fini = tu_leak_check, .timeout = 120);

/* ---- reembed over HTTPS ------------------------------------------------------------------- */

/* A test CA and an HTTPS embedding server with its certificate (384 dimensions). */
typedef struct {
    char *ca_dir, *ca_file;
    tu_embed_server *srv;
} https_fixture;

static https_fixture https_start(void)
{
    https_fixture f;
    f.ca_dir = tu_make_test_ca();
    f.ca_file = tu_printf("%s/ca.crt", f.ca_dir);
    char *cert = tu_printf("%s/server.crt", f.ca_dir), *key = tu_printf("%s/server.key", f.ca_dir);
    f.srv = tu_embed_server_start((const char *[]){"--dim", "384", "--tls-cert", cert, "--tls-key", key, NULL});
    cr_assert(tu_embed_server_tls(f.srv));
    free(cert);
    free(key);
    return f;
}

static void https_stop(https_fixture *f)
{
    tu_embed_server_stop(f->srv);
    tu_rmtree(f->ca_dir);
    free(f->ca_dir);
    free(f->ca_file);
}

/* reembed to openai:m at 384 dimensions against base, with env (NULL-terminated "NAME=value" or
 * "NAME" to remove) on top of a fixed key. */
static tu_run_result run_reembed(const char *db, const char *base, const char *const *env)
{
    const char *e[8] = {"OPENAI_API_KEY=sk-tls-test"};
    size_t n = 1;
    for (size_t i = 0; env != NULL && env[i] != NULL && n < 7; i++)
        e[n++] = env[i];
    e[n] = NULL;
    return tu_run_env((const char *const[]){"pgmemctl", "-d", db, "reembed", "--model", "openai:m", "--dimensions",
                                            "384", "--api-base", base, "--batch-size", "25", "--yes", NULL},
                      e);
}

/* The stderr line that holds needle (asserting there is one), newly allocated. */
static char *line_with(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    cr_assert_not_null(at, "no \"%s\" in:\n%s", needle, text);
    const char *start = at, *end = at + strcspn(at, "\n");
    while (start > text && start[-1] != '\n')
        start--;
    return tu_printf("%.*s", (int)(end - start), start);
}

Test(reembed_https, trusted_through_ssl_cert_file)
{
    char *db = rf_store_768(120);
    https_fixture f = https_start();
    char *base = tu_embed_server_url(f.srv, "/v1");
    cr_assert(strncmp(base, "https://localhost:", 18) == 0, "%s", base);
    char *env = tu_printf("SSL_CERT_FILE=%s", f.ca_file);
    tu_run_result r = run_reembed(db, base, (const char *const[]){env, "SSL_CERT_DIR", NULL});
    tu_expect_status(&r, 0, "reembed over https with the test CA");
    cJSON *j = tu_json(r.out);
    cr_assert_eq(tu_json_num(cJSON_GetObjectItem(j, "new_model"), "dimension"), 384);
    cr_assert_eq(tu_json_num(j, "rows_updated"), 120);
    cr_assert_eq(tu_json_num(cJSON_GetObjectItem(j, "embedder"), "retries"), 0);
    cJSON_Delete(j);
    tu_run_free(&r);
    /* the check request, then 120 memories in requests of 25 */
    cr_assert_eq(tu_embed_server_stat(f.srv, "requests"), 1 + 5);
    cr_assert_eq(tu_embed_server_stat(f.srv, "inputs"), 1 + 120);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), 120);
    cr_assert_eq(rf_check_vectors(db, 384, "true"), 50, "the vectors that came over TLS are builtin:hash-384's");
    free(env);
    free(base);
    https_stop(&f);
    tu_drop_db(db);
    free(db);
}

Test(reembed_https, trusted_through_ssl_cert_dir_by_ip_address)
{
    char *db = rf_store_768(30);
    https_fixture f = https_start();
    /* an OpenSSL hashed directory (HASH.0 links), as SSL_CERT_DIR expects */
    char *certs = tu_printf("%s/certs", f.ca_dir);
    char *cmd = tu_printf("mkdir '%s' && cp '%s' '%s/test-ca.pem' && openssl rehash '%s'", certs, f.ca_file, certs,
                          certs);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    /* the certificate's IP address name (127.0.0.1), not localhost */
    char *base = tu_embed_server_url_host(f.srv, "127.0.0.1", "/v1");
    char *env = tu_printf("SSL_CERT_DIR=%s", certs);
    tu_run_result r = run_reembed(db, base, (const char *const[]){env, "SSL_CERT_FILE", NULL});
    tu_expect_status(&r, 0, "reembed over https trusting SSL_CERT_DIR");
    tu_run_free(&r);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), 30);
    cr_assert_eq(rf_check_vectors(db, 384, "true"), 30);
    free(env);
    free(base);
    free(cmd);
    free(certs);
    https_stop(&f);
    tu_drop_db(db);
    free(db);
}

/* A run that TLS verification stops: exit 1 at the check request, before anything is written,
 * not retried, one clear line naming curl's reason and what was trusted (want). */
static void expect_certificate_failure(const char *const *env, const char *want)
{
    char *db = rf_store_768(20);
    char *before = tu_catalog_snapshot(db);
    https_fixture f = https_start();
    char *base = tu_embed_server_url(f.srv, "/v1");
    tu_run_result r = run_reembed(db, base, env);
    tu_expect_status(&r, 1, "reembed against an untrusted certificate");
    char *line = line_with(r.err, "SSL certificate problem");
    cr_assert(tu_contains(line, "reembed: "), "%s", line);
    cr_assert(tu_contains(line, base), "the line names the server: %s", line);
    cr_assert(tu_contains(line, "unable to get local issuer certificate"), "%s", line);
    cr_assert(tu_contains(line, want), "the line says what was trusted (\"%s\"): %s", want, line);
    free(line);
    cJSON *j = tu_json(r.out);
    cr_assert_eq(tu_json_num(cJSON_GetObjectItem(j, "embedder"), "retries"), 0, "a bad certificate is not retried");
    cr_assert_eq(tu_json_num(cJSON_GetObjectItem(j, "embedder"), "requests"), 1);
    cr_assert(tu_contains(tu_json_str(j, "message"), "SSL certificate problem"), "%s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);
    cr_assert_eq(tu_embed_server_stat(f.srv, "requests"), 0, "no request got through the handshake");
    char *after = tu_catalog_snapshot(db);
    cr_assert_str_eq(before, after, "a failed handshake changed the schema");
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 768"), 20);
    free(after);
    free(before);
    free(base);
    https_stop(&f);
    tu_drop_db(db);
    free(db);
}

Test(reembed_https, another_ca_is_refused)
{
    char *other = tu_make_test_ca(); /* a valid CA, just not the one that signed the server's */
    char *file = tu_printf("%s/ca.crt", other);
    char *env = tu_printf("SSL_CERT_FILE=%s", file);
    char *want = tu_printf("trusted CA certificates: SSL_CERT_FILE=%s", file);
    expect_certificate_failure((const char *const[]){env, "SSL_CERT_DIR", NULL}, want);
    free(want);
    free(env);
    free(file);
    tu_rmtree(other);
    free(other);
}

Test(reembed_https, system_cas_only_are_refused)
{
    /* no SSL_CERT_*: libcurl's default bundle (Debian's ca-certificates), which lacks the test CA */
    expect_certificate_failure((const char *const[]){"SSL_CERT_FILE", "SSL_CERT_DIR", NULL},
                               "trusted CA certificates: libcurl's default /etc/ssl/certs/ca-certificates.crt; "
                               "set SSL_CERT_FILE to trust another CA");
}

Test(reembed_https, missing_ssl_cert_file_is_a_configuration_error)
{
    char *db = rf_store_768(20);
    char *before = tu_catalog_snapshot(db);
    https_fixture f = https_start();
    char *base = tu_embed_server_url(f.srv, "/v1");
    char *missing = tu_printf("%s/no-such-ca.pem", f.ca_dir);
    char *env = tu_printf("SSL_CERT_FILE=%s", missing);
    tu_run_result r = run_reembed(db, base, (const char *const[]){env, NULL});
    tu_expect_status(&r, 2, "reembed with a missing SSL_CERT_FILE");
    char *want = tu_printf("SSL_CERT_FILE=%s: No such file or directory", missing);
    char *line = line_with(r.err, want);
    cr_assert(tu_contains(line, "reembed: "), "%s", line);
    free(line);
    tu_run_free(&r);
    cr_assert_eq(tu_embed_server_stat(f.srv, "requests"), 0, "nothing may be sent");
    char *after = tu_catalog_snapshot(db);
    cr_assert_str_eq(before, after);
    free(after);
    free(before);
    free(want);
    free(env);
    free(missing);
    free(base);
    https_stop(&f);
    tu_drop_db(db);
    free(db);
}

/* ---- libpq over TLS ----------------------------------------------------------------------- */

/* uri with its query (sslmode=…&sslrootcert=…) replaced by query. Newly allocated. */
static char *with_query(const char *uri, const char *query)
{
    size_t keep = strcspn(uri, "?");
    return tu_printf("%.*s?%s", (int)keep, uri, query);
}

Test(pg_tls, migrate_and_verify_with_verify_full)
{
    const char *url = tu_test_tls_url();
    cr_assert(tu_contains(url, "@localhost:"), "%s", url);
    cr_assert(tu_contains(url, "sslmode=verify-full"), "%s", url);
    cr_assert(tu_contains(url, tu_test_tls_ca()), "%s", url);
    char *db = tu_fresh_db_at(url);
    char *ssl = tu_query_value(db, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    cr_assert_str_eq(ssl, "t", "the TLS URL does not use TLS");
    free(ssl);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", db, "migrate", "up", NULL});
    tu_expect_status(&r, 0, "migrate up over TLS");
    tu_run_free(&r);
    r = tu_run((const char *const[]){"pgmemctl", "-d", db, "migrate", "status", NULL});
    tu_expect_status(&r, 0, "migrate status over TLS");
    cJSON *j = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(j, "status"), "ok");
    cJSON_Delete(j);
    tu_run_free(&r);
    tu_exec(db, "INSERT INTO memories (id, content) SELECT gen_random_uuid(), 'memory ' || g || ' over TLS'"
                " FROM generate_series(1, 40) g");
    r = tu_run((const char *const[]){"pgmemctl", "-d", db, "reembed", "--model", "builtin:hash-64", "--mode",
                                     "in-place", "--yes", NULL});
    tu_expect_status(&r, 0, "reembed over TLS");
    tu_run_free(&r);
    cr_assert_eq(tu_query_int(db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 64"), 40);
    r = tu_run((const char *const[]){"pgmemctl", "-d", db, "verify", NULL});
    tu_expect_status(&r, 0, "verify over TLS");
    j = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(j, "status"), "pass");
    cr_assert(tu_contains(tu_json_str(j, "database"), "sslmode=verify-full"), "%s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);
    tu_drop_db_at(url, db);
    free(db);
}

Test(pg_tls, another_ca_fails_with_the_certificate_error)
{
    char *other = tu_make_test_ca();
    char *q = tu_printf("sslmode=verify-full&sslrootcert=%s/ca.crt", other);
    char *bad = with_query(tu_test_tls_url(), q);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", bad, "migrate", "status", NULL});
    tu_expect_status(&r, 1, "migrate status trusting another CA");
    char *line = line_with(r.err, "certificate verify failed");
    cr_assert(tu_contains(line, "could not connect to"), "%s", line);
    cr_assert(tu_contains(line, "localhost"), "%s", line);
    free(line);
    cJSON *j = tu_json(r.out);
    cr_assert_str_eq(tu_json_str(j, "status"), "failed");
    cr_assert(tu_contains(tu_json_str(j, "error"), "SSL error: certificate verify failed"), "%s", r.out);
    cJSON_Delete(j);
    tu_run_free(&r);
    free(bad);
    free(q);
    tu_rmtree(other);
    free(other);
}

Test(pg_tls, connections_without_tls_still_work)
{
    char *plain = with_query(tu_test_tls_url(), "sslmode=disable");
    char *ssl = tu_query_value(plain, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    cr_assert_str_eq(ssl, "f");
    free(ssl);
    char *db = tu_fresh_db_at(plain);
    tu_run_result r = tu_run((const char *const[]){"pgmemctl", "-d", db, "migrate", "up", NULL});
    tu_expect_status(&r, 0, "migrate up without TLS on the TLS sandbox");
    tu_run_free(&r);
    tu_drop_db_at(plain, db);
    free(db);
    free(plain);
}

/* test_static.c — the static binary (dist/pgmemctl, `make static`) in an empty root: a directory
 * holding only the binary, /etc/hosts, a CA file and a store (no libc, no /etc/passwd, no
 * /etc/nsswitch.conf), entered with chroot and an empty environment. Every command talks to the
 * TLS sandbox with host=localhost sslmode=verify-full sslrootcert=/ca.crt; the HTTP embedder talks
 * to the loopback embedding server over HTTPS, trusting its CA through SSL_CERT_FILE.
 *
 * Environment (scripts/run-tests): PGMEMCTL_STATIC_BIN, the static binary; PGMEMCTL_TEST_TLS_URL and
 * PGMEMCTL_TEST_TLS_CA, the TLS sandbox and its CA. Needs root (chroot), as `make check` runs. */
#include "common/embed_server_proc.h"
#include "common/reembed_fixture.h"
#include "common/testutil.h"
#include "common/vestige_fixture.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(static_bin, .fini = tu_leak_check, .timeout = 180);

#define N_MEMORIES 40

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run the tests through scripts/run-tests (make check)", name);
    return v;
}

/* The TLS sandbox's port, from PGMEMCTL_TEST_TLS_URL. */
static char *tls_port(void)
{
    char *err = NULL;
    PQconninfoOption *o = PQconninfoParse(need_env("PGMEMCTL_TEST_TLS_URL"), &err);
    cr_assert(o, "PGMEMCTL_TEST_TLS_URL: %s", err ? err : "?");
    char *port = NULL;
    for (PQconninfoOption *p = o; p->keyword; p++)
        if (!strcmp(p->keyword, "port") && p->val)
            port = strdup(p->val);
    PQconninfoFree(o);
    cr_assert(port, "no port in PGMEMCTL_TEST_TLS_URL");
    return port;
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    char *data = NULL;
    size_t len = 0;
    FILE *in = fopen(from, "rb");
    cr_assert(in, "%s: %s", from, strerror(errno));
    FILE *mem = open_memstream(&data, &len);
    cr_assert(mem);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, mem), n);
    fclose(in);
    fclose(mem);
    FILE *out = fopen(to, "wb");
    cr_assert(out, "%s: %s", to, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, out), len);
    cr_assert_eq(fclose(out), 0);
    cr_assert_eq(chmod(to, mode), 0);
    free(data);
}

typedef struct {
    char *dir;   /* the root */
    char *db;    /* the test database (outside view: the TLS sandbox's URL) */
    char *dbname;
    char *port;
} root;

/* An empty root with the binary as /pgmemctl, /etc/hosts (localhost only), /ca.crt and a store
 * /store.db of N_MEMORIES memories; a fresh database on the TLS sandbox. */
static root root_make(void)
{
    root r = {0};
    r.dir = tu_tempdir();
    char *p = tu_printf("%s/pgmemctl", r.dir);
    copy_file(need_env("PGMEMCTL_STATIC_BIN"), p, 0755);
    free(p);
    p = tu_printf("%s/ca.crt", r.dir);
    copy_file(need_env("PGMEMCTL_TEST_TLS_CA"), p, 0644);
    free(p);
    p = tu_printf("%s/etc", r.dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    free(p);
    free(tu_write_file(r.dir, "etc/hosts", "127.0.0.1 localhost\n"));
    p = tu_printf("%s/store.db", r.dir);
    vf_store *s = vf_create(p, VF_V4, 768);
    for (int i = 0; i < N_MEMORIES; i++)
        vf_add_good_node(s, i, i % 2 == 0);
    for (int i = 0; i + 1 < N_MEMORIES; i += 3) {
        char a[37], b[37];
        vf_uuid(i, a);
        vf_uuid(i + 1, b);
        vf_add_edge(s, a, b, "related", 0.5);
    }
    vf_close(s);
    free(p);
    r.db = tu_fresh_db_at(need_env("PGMEMCTL_TEST_TLS_URL"));
    r.dbname = tu_db_name(r.db);
    r.port = tls_port();
    return r;
}

static void root_free(root *r)
{
    tu_drop_db_at(need_env("PGMEMCTL_TEST_TLS_URL"), r->db);
    tu_rmtree(r->dir);
    free(r->dir);
    free(r->db);
    free(r->dbname);
    free(r->port);
}

/* The conninfo the binary uses inside the root: verify-full against /ca.crt, by host name. */
static char *root_conninfo(const root *r, const char *extra)
{
    return tu_printf("host=localhost port=%s dbname=%s user=postgres sslmode=verify-full sslrootcert=/ca.crt%s%s",
                     r->port, r->dbname, extra ? " " : "", extra ? extra : "");
}

/* env -i [ENV…] chroot ROOT /pgmemctl ARGS…: nothing of the host's environment goes in. */
static tu_run_result in_root(const root *r, const char *const *env, const char *const *args)
{
    const char *argv[40] = {"env", "-i"};
    int n = 2;
    for (int i = 0; env && env[i]; i++)
        argv[n++] = env[i];
    argv[n++] = "/usr/sbin/chroot";
    argv[n++] = r->dir;
    argv[n++] = "/pgmemctl";
    for (int i = 0; args[i]; i++) {
        cr_assert(n < 39, "too many arguments");
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return tu_run_prog("/usr/bin/env", argv, NULL);
}

#define IN_ROOT(r, ...) in_root((r), NULL, (const char *const[]){__VA_ARGS__, NULL})

static void expect_one_line_error(const tu_run_result *res, const char *needle)
{
    cr_expect(tu_contains(res->err, needle), "stderr does not name \"%s\":\n%s", needle, res->err);
    const char *err = res->err;
    int lines = 0;
    for (const char *c = err; *c; c++)
        lines += *c == '\n';
    cr_expect(lines <= 1, "more than one line on stderr:\n%s", err);
}

Test(static_bin, is_static_and_names_its_libraries)
{
    root r = root_make();
    tu_run_result res = IN_ROOT(&r, "--version");
    tu_expect_status(&res, 0, "--version in the empty root");
    static const char *const want[] = {"(static-musl; libpq 17.", ", OpenSSL 3.", ", SQLite 3.", ", curl 7.",
                                       ", libyaml 0.", ", cJSON 1."};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(tu_contains(res.out, want[i]), "no \"%s\" in: %s", want[i], res.out);
    tu_run_free(&res);
    struct stat st;
    cr_assert_eq(stat(need_env("PGMEMCTL_STATIC_BIN"), &st), 0);
    cr_expect_lt(st.st_size, 25LL << 20, "the static binary is %lld bytes, over 25 MiB", (long long) st.st_size);
    root_free(&r);
}

Test(static_bin, migrate_copy_verify_reembed_over_verify_full)
{
    root r = root_make();
    char *ci = root_conninfo(&r, NULL);

    tu_run_result res = IN_ROOT(&r, "-d", ci, "migrate", "up");
    tu_expect_status(&res, 0, "migrate up in the empty root");
    tu_run_free(&res);
    cr_expect_gt(tu_query_int(r.db, "SELECT count(*) FROM pgmemctl_schema_migrations"), 0);

    res = IN_ROOT(&r, "-d", ci, "copy", "--from", "/store.db");
    tu_expect_status(&res, 0, "copy in the empty root");
    cJSON *doc = tu_json(res.out);
    cJSON_Delete(doc);
    tu_run_free(&res);
    cr_expect_eq(tu_query_int(r.db, "SELECT count(*) FROM memories"), N_MEMORIES);
    cr_expect_eq(tu_query_int(r.db, "SELECT count(*) FROM memories WHERE embedding IS NOT NULL"), N_MEMORIES);
    cr_expect_eq(tu_query_int(r.db, "SELECT count(*) FROM edges"), (N_MEMORIES + 1) / 3);
    /* the same rows as the dynamic build's copy of the same store */
    char *dyn = tu_fresh_db();
    tu_run_result d = tu_run((const char *const[]){"pgmemctl", "-d", dyn, "migrate", "up", NULL});
    tu_expect_status(&d, 0, "migrate up (dynamic build)");
    tu_run_free(&d);
    char *store = tu_printf("%s/store.db", r.dir);
    d = tu_run((const char *const[]){"pgmemctl", "-d", dyn, "copy", "--from", store, NULL});
    tu_expect_status(&d, 0, "copy (dynamic build)");
    tu_run_free(&d);
    free(store);
    static const char *const digests[] = {
        "SELECT md5(string_agg(id::text || content || embedding::text, ',' ORDER BY id)) FROM memories",
        "SELECT md5(string_agg(s::text, ',' ORDER BY s::text)) FROM scheduling s",
        "SELECT count(*)::text FROM scheduling",
        "SELECT md5(coalesce(string_agg(e::text, ',' ORDER BY e::text), '')) FROM edges e"};
    for (size_t i = 0; i < sizeof digests / sizeof digests[0]; i++) {
        char *a = tu_query_value(r.db, digests[i]), *b = tu_query_value(dyn, digests[i]);
        cr_expect(a && b && !strcmp(a, b), "static and dynamic copies differ: %s\n%s vs %s", digests[i], a, b);
        free(a);
        free(b);
    }
    tu_drop_db(dyn);
    free(dyn);

    res = IN_ROOT(&r, "-d", ci, "verify");
    tu_expect_status(&res, 0, "verify in the empty root");
    tu_run_free(&res);

    res = IN_ROOT(&r, "-d", ci, "reembed", "--model", "builtin:hash-384", "--yes");
    tu_expect_status(&res, 0, "reembed in the empty root");
    tu_run_free(&res);
    cr_expect_eq(tu_query_int(r.db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), N_MEMORIES);

    free(ci);
    root_free(&r);
}

Test(static_bin, bad_ca_host_user_and_gssapi_fail_cleanly)
{
    root r = root_make();

    /* a CA file that is not there: named, exit 1, nothing written */
    char *ci = tu_printf("host=localhost port=%s dbname=%s user=postgres sslmode=verify-full sslrootcert=/no-such-ca.crt",
                         r.port, r.dbname);
    tu_run_result res = IN_ROOT(&r, "-d", ci, "migrate", "up");
    cr_expect_eq(res.status, 1, "missing CA: exit %d\n%s", res.status, res.err);
    expect_one_line_error(&res, "/no-such-ca.crt");
    tu_run_free(&res);
    free(ci);
    cr_expect_eq(tu_query_int(r.db, "SELECT count(*) FROM pg_class WHERE relname = 'pgmemctl_schema_migrations'"), 0);

    /* a host /etc/hosts does not know (and no DNS in the root) */
    ci = tu_printf("host=no-such-host.invalid port=%s dbname=%s user=postgres sslmode=verify-full sslrootcert=/ca.crt",
                   r.port, r.dbname);
    res = IN_ROOT(&r, "-d", ci, "migrate", "up");
    cr_expect_eq(res.status, 1, "unknown host: exit %d\n%s", res.status, res.err);
    expect_one_line_error(&res, "no-such-host.invalid");
    tu_run_free(&res);
    free(ci);

    /* no user name anywhere and no /etc/passwd: said before connecting */
    ci = tu_printf("host=localhost port=%s dbname=%s sslmode=verify-full sslrootcert=/ca.crt", r.port, r.dbname);
    res = IN_ROOT(&r, "-d", ci, "migrate", "up");
    cr_expect_eq(res.status, 1, "no user: exit %d\n%s", res.status, res.err);
    expect_one_line_error(&res, "give user=NAME or set PGUSER");
    tu_run_free(&res);
    /* PGUSER is enough */
    res = in_root(&r, (const char *const[]){"PGUSER=postgres", NULL}, (const char *const[]){"-d", ci, "migrate", "status", NULL});
    tu_expect_status(&res, 0, "migrate status with PGUSER in the empty root");
    tu_run_free(&res);
    free(ci);

    /* GSSAPI is not in the static build: libpq's own message says so */
    ci = root_conninfo(&r, "gssencmode=require");
    res = IN_ROOT(&r, "-d", ci, "migrate", "up");
    cr_expect_eq(res.status, 1, "gssencmode=require: exit %d\n%s", res.status, res.err);
    expect_one_line_error(&res, "GSSAPI support is not compiled in");
    tu_run_free(&res);
    free(ci);

    /* a CA that did not sign the server's certificate: the store is never reached */
    char *other = tu_printf("%s/other-ca.crt", r.dir);
    copy_file("/etc/ssl/certs/ca-certificates.crt", other, 0644);
    free(other);
    ci = tu_printf("host=localhost port=%s dbname=%s user=postgres sslmode=verify-full sslrootcert=/other-ca.crt",
                   r.port, r.dbname);
    res = IN_ROOT(&r, "-d", ci, "migrate", "up");
    cr_expect_eq(res.status, 1, "wrong CA: exit %d\n%s", res.status, res.err);
    expect_one_line_error(&res, "certificate verify failed");
    tu_run_free(&res);
    free(ci);
    cr_expect_eq(tu_query_int(r.db, "SELECT count(*) FROM pg_class WHERE relname = 'pgmemctl_schema_migrations'"), 0);
    root_free(&r);
}

Test(static_bin, https_embedder_in_empty_root)
{
    root r = root_make();
    char *ci = root_conninfo(&r, NULL);
    tu_run_result res = IN_ROOT(&r, "-d", ci, "migrate", "up");
    tu_expect_status(&res, 0, "migrate up in the empty root");
    tu_run_free(&res);
    res = IN_ROOT(&r, "-d", ci, "copy", "--from", "/store.db");
    tu_expect_status(&res, 0, "copy in the empty root");
    tu_run_free(&res);

    /* an HTTPS embedding server with a certificate for localhost from its own test CA */
    char *ca_dir = tu_make_test_ca();
    char *cert = tu_printf("%s/server.crt", ca_dir), *key = tu_printf("%s/server.key", ca_dir);
    tu_embed_server *srv = tu_embed_server_start((const char *[]){"--dim", "384", "--tls-cert", cert, "--tls-key", key, NULL});
    char *from = tu_printf("%s/ca.crt", ca_dir), *to = tu_printf("%s/embed-ca.crt", r.dir);
    copy_file(from, to, 0644);
    char *base = tu_embed_server_url(srv, "/v1");
    cr_assert(strncmp(base, "https://localhost:", 18) == 0, "%s", base);
    const char *args[] = {"-d", ci, "reembed", "--model", "openai:m", "--dimensions", "384", "--api-base", base,
                          "--yes", NULL};

    /* without the CA: refused by certificate verification, nothing written */
    res = in_root(&r, (const char *const[]){"OPENAI_API_KEY=sk-static-test", NULL}, args);
    cr_expect_neq(res.status, 0, "reembed over https without a CA succeeded:\n%s", res.err);
    cr_expect(tu_contains(res.err, "certificate"), "no certificate error in:\n%s", res.err);
    tu_run_free(&res);
    cr_expect_eq(tu_query_int(r.db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), 0);

    /* SSL_CERT_FILE names the CA: the vectors arrive over TLS */
    res = in_root(&r, (const char *const[]){"OPENAI_API_KEY=sk-static-test", "SSL_CERT_FILE=/embed-ca.crt", NULL},
                  args);
    tu_expect_status(&res, 0, "reembed over https in the empty root with SSL_CERT_FILE");
    tu_run_free(&res);
    cr_expect_eq(tu_query_int(r.db, "SELECT count(*) FROM memories WHERE vector_dims(embedding) = 384"), N_MEMORIES);
    cr_expect_eq(rf_check_vectors(r.db, 384, "true"), N_MEMORIES, "the vectors that came over TLS are builtin:hash-384's");
    cr_expect_gt(tu_embed_server_stat(srv, "inputs"), N_MEMORIES - 1);

    tu_embed_server_stop(srv);
    tu_rmtree(ca_dir);
    free(ca_dir);
    free(cert);
    free(key);
    free(from);
    free(to);
    free(base);
    free(ci);
    root_free(&r);
}

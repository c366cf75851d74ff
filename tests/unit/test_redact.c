/* test_redact.c — unit tests for password redaction: pg_redact_conninfo (URIs, keyword/value
 * strings, text libpq cannot parse), pg_register_secrets, and redact.c's secret scrubbing. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "pg.h"
#include "redact.h"

static void clear_secrets(void) { redact_clear_secrets(); }

static void fini(void)
{
    redact_clear_secrets();
    tu_leak_check();
}

TestSuite(redact_conninfo, .init = clear_secrets, .fini = fini);
TestSuite(redact_scrub, .init = clear_secrets, .fini = fini);

/* Redacts conninfo, checks that none of the secrets survive and that every kept piece is there;
 * returns the result for further checks (caller frees). */
static char *redacted(const char *conninfo, const char *const *secrets, const char *const *kept)
{
    char *r = pg_redact_conninfo(conninfo);
    cr_assert_not_null(r, "pg_redact_conninfo(\"%s\") returned NULL", conninfo);
    for (int i = 0; secrets && secrets[i]; i++)
        cr_expect_not(tu_contains(r, secrets[i]), "\"%s\" still shows \"%s\": %s", conninfo, secrets[i], r);
    for (int i = 0; kept && kept[i]; i++)
        cr_expect(tu_contains(r, kept[i]), "\"%s\" lost \"%s\": %s", conninfo, kept[i], r);
    return r;
}

Test(redact_conninfo, uri_with_password)
{
    char *r = redacted("postgresql://u:secret@h:5432/db", (const char *const[]){"secret", NULL},
                       (const char *const[]){"postgresql://", "u:", "@h:5432/db", REDACT_MASK, NULL});
    cr_expect_str_eq(r, "postgresql://u:" REDACT_MASK "@h:5432/db");
    free(r);
}

Test(redact_conninfo, postgres_scheme)
{
    char *r = redacted("postgres://admin:hunter2@db.example.com/memories?sslmode=require",
                       (const char *const[]){"hunter2", NULL},
                       (const char *const[]){"postgres://admin:", "db.example.com/memories", "sslmode=require", NULL});
    cr_expect_str_eq(r, "postgres://admin:" REDACT_MASK "@db.example.com/memories?sslmode=require");
    free(r);
}

Test(redact_conninfo, percent_encoded_password)
{
    char *r = redacted("postgresql://u:p%40ss%3Aw%2Fd@h/db", (const char *const[]){"p%40ss", "p@ss", "%3Aw", NULL},
                       (const char *const[]){"u:", "@h/db", NULL});
    cr_expect_str_eq(r, "postgresql://u:" REDACT_MASK "@h/db");
    free(r);
}

Test(redact_conninfo, password_query_parameter)
{
    char *r = redacted("postgresql://u@h/db?password=x&sslmode=require", (const char *const[]){"password=x", NULL},
                       (const char *const[]){"u@h/db", "sslmode=require", NULL});
    cr_expect_str_eq(r, "postgresql://u@h/db?password=" REDACT_MASK "&sslmode=require");
    free(r);
    r = redacted("postgresql://u@h/db?sslmode=require&password=longer-secret&application_name=a",
                 (const char *const[]){"longer-secret", NULL},
                 (const char *const[]){"sslmode=require", "application_name=a", NULL});
    free(r);
}

Test(redact_conninfo, uri_without_password_unchanged)
{
    static const char *const uris[] = {
        "postgresql://postgres@127.0.0.1:5432/postgres",
        "postgresql://h/db",
        "postgresql://",
        "postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write",
        "postgresql://[::1]:5432/db",
        "postgresql:///db?host=/var/run/postgresql",
    };
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        char *r = pg_redact_conninfo(uris[i]);
        cr_expect_str_eq(r, uris[i]);
        free(r);
    }
}

Test(redact_conninfo, many_password_parameters)
{
    /* every password= parameter is masked, even short or empty ones, and the result is not cut */
    const char *uri = "postgresql://u:@h/db?password=&password=a&password=&password=b&password=&password=c"
                      "&password=&sslmode=disable";
    char *r = redacted(uri, (const char *const[]){"password=a", "password=b", "password=c", NULL},
                       (const char *const[]){"sslmode=disable", NULL});
    cr_expect(tu_contains(r, "postgresql://u:" REDACT_MASK "@h/db?password=" REDACT_MASK "&password="), "%s", r);
    free(r);
}

Test(redact_conninfo, keyword_value)
{
    char *r = redacted("host=db.example.com port=5433 user=app password=secret dbname=mem",
                       (const char *const[]){"secret", NULL},
                       (const char *const[]){"host=db.example.com", "port=5433", "user=app", "dbname=mem",
                                             "password=" REDACT_MASK, NULL});
    free(r);
}

Test(redact_conninfo, keyword_value_quoted_password)
{
    char *r = redacted("host=h password='se cret' user=u", (const char *const[]){"se cret", "cret", NULL},
                       (const char *const[]){"host=h", "user=u", "password=" REDACT_MASK, NULL});
    free(r);
    r = redacted("password = 'it\\'s' dbname=d", (const char *const[]){"it\\'s", "it's", NULL},
                 (const char *const[]){"dbname=d", NULL});
    free(r);
}

Test(redact_conninfo, keyword_value_without_password)
{
    char *r = redacted("host=h port=5432 dbname=d", NULL, (const char *const[]){"host=h", "port=5432", "dbname=d", NULL});
    cr_expect_not(tu_contains(r, "password"), "%s", r);
    free(r);
    r = redacted("dbname='my db'", NULL, (const char *const[]){"dbname='my db'", NULL});
    free(r);
}

Test(redact_conninfo, unparsable_text)
{
    /* libpq rejects these (unknown keyword, missing '='); the password is masked anyway */
    char *r = redacted("host=h password=secret bogus", (const char *const[]){"secret", NULL},
                       (const char *const[]){"host=h", "bogus", "password=" REDACT_MASK, NULL});
    free(r);
    r = redacted("nosuchkeyword=1 password='se cret' user=u", (const char *const[]){"se cret", "cret", NULL},
                 (const char *const[]){"nosuchkeyword=1", "user=u", NULL});
    free(r);
    r = redacted("password = spaced junk", (const char *const[]){"spaced", NULL}, (const char *const[]){"junk", NULL});
    free(r);
}

Test(redact_conninfo, unparsable_text_many_passwords)
{
    /* each masking can make the text longer: the result must still be complete and in bounds */
    const char *in = "password='' password='' password='' password='' password='' password='' password=x "
                     "password=y password= bogus tail-marker";
    char *r = redacted(in, (const char *const[]){"password=x", "password=y", NULL},
                       (const char *const[]){"tail-marker", NULL});
    free(r);
}

Test(redact_conninfo, empty_and_null)
{
    char *r = pg_redact_conninfo(NULL);
    cr_expect_str_eq(r, "(default)");
    free(r);
    r = pg_redact_conninfo("");
    cr_expect_str_eq(r, "(default)");
    free(r);
}

/* ---- pg_register_secrets + redact_scrub -------------------------------------------------- */

static void expect_scrubbed(const char *text, const char *secret)
{
    char *s = redact_scrub_alloc(text);
    cr_assert_not_null(s);
    cr_expect_not(tu_contains(s, secret), "\"%s\" still in \"%s\"", secret, s);
    cr_expect(tu_contains(s, REDACT_MASK), "%s", s);
    free(s);
}

Test(redact_scrub, register_from_uri)
{
    unsetenv("PGPASSWORD");
    pg_register_secrets("postgresql://u:p%40ss@h/db");
    expect_scrubbed("FATAL: password p@ss rejected", "p@ss");        /* decoded form */
    expect_scrubbed("connecting to postgresql://u:p%40ss@h/db", "p%40ss"); /* raw form */
}

Test(redact_scrub, register_from_keyword_value_and_env)
{
    cr_assert_eq(setenv("PGPASSWORD", "env-secret", 1), 0);
    pg_register_secrets("host=h password='kv secret'");
    expect_scrubbed("a kv secret here", "kv secret");
    expect_scrubbed("PGPASSWORD was env-secret", "env-secret");
    unsetenv("PGPASSWORD");
}

Test(redact_scrub, register_from_query_parameter)
{
    unsetenv("PGPASSWORD");
    pg_register_secrets("postgresql://u@h/db?password=qsecret");
    expect_scrubbed("x qsecret y", "qsecret");
}

Test(redact_scrub, register_nothing)
{
    unsetenv("PGPASSWORD");
    pg_register_secrets(NULL);
    pg_register_secrets("");
    pg_register_secrets("host=h dbname=d");
    pg_register_secrets("not a conninfo at all");
    cr_expect_null(redact_scrub("host=h dbname=d user=u"));
}

Test(redact_scrub, replace_all_occurrences)
{
    redact_add_secret("s3cr3t");
    char *s = redact_scrub("s3cr3t and s3cr3t, s3cr3ts3cr3t!");
    cr_assert_not_null(s);
    cr_expect_str_eq(s, REDACT_MASK " and " REDACT_MASK ", " REDACT_MASK REDACT_MASK "!");
    free(s);
}

Test(redact_scrub, several_secrets)
{
    redact_add_secret("alpha-pw");
    redact_add_secret("beta-pw");
    redact_add_secret("alpha-pw"); /* a duplicate is harmless */
    char *s = redact_scrub("alpha-pw / beta-pw");
    cr_expect_str_eq(s, REDACT_MASK " / " REDACT_MASK);
    free(s);
}

Test(redact_scrub, nothing_to_scrub)
{
    redact_add_secret("abcdef");
    cr_expect_null(redact_scrub("no secret here"));
    cr_expect_null(redact_scrub(NULL));
    char *s = redact_scrub_alloc("no secret here");
    cr_expect_str_eq(s, "no secret here");
    free(s);
    s = redact_scrub_alloc(NULL);
    cr_expect_str_eq(s, "");
    free(s);
}

Test(redact_scrub, short_secrets_ignored)
{
    redact_add_secret("ab");
    redact_add_secret("");
    redact_add_secret(NULL);
    cr_expect_null(redact_scrub("ab cd ab"));
    redact_add_secret("abc");
    char *s = redact_scrub("abc");
    cr_expect_str_eq(s, REDACT_MASK);
    free(s);
}

Test(redact_scrub, clear_forgets)
{
    redact_add_secret("forget-me");
    redact_clear_secrets();
    cr_expect_null(redact_scrub("forget-me"));
}

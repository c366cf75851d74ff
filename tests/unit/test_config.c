/* test_config.c — unit tests for config.c (YAML config file, errors with file:line:col) and for
 * the option resolution order of opts.c: flag > environment > config file > default. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "common/testutil.h"
#include "config.h"
#include "opts.h"

TestSuite(config, .fini = tu_leak_check);
TestSuite(opts, .fini = tu_leak_check);

/* A test section with one option of each type, next to the real migrate section. */
static const opt_spec test_specs[] = {
    {"flag", 0, OPT_BOOL, NULL, true, NULL, .help = "a boolean"},
    {"count", 'n', OPT_INT, "10", true, "N", .help = "an integer"},
    {"name", 0, OPT_STRING, NULL, true, "NAME", .help = "a string"},
    {"only-flag", 0, OPT_INT, NULL, false, "N", .help = "not configurable"},
    {0},
};

static config_section sections[2];

static void init_sections(void)
{
    sections[0] = (config_section){"migrate", cmd_migrate_specs, opts_count(cmd_migrate_specs)};
    sections[1] = (config_section){"test", test_specs, opts_count(test_specs)};
}

typedef struct {
    config *cfg;
    char *log;  /* stderr during config_load */
    char *path; /* the YAML file */
    char *dir;
} loaded;

static loaded load_yaml(const char *yaml)
{
    init_sections();
    loaded l = {0};
    l.dir = tu_tempdir();
    l.path = tu_write_file(l.dir, "pgmemctl.yaml", yaml);
    tu_stderr_begin();
    l.cfg = config_load(l.path, sections, 2);
    l.log = tu_stderr_end();
    return l;
}

static void loaded_free(loaded *l)
{
    config_free(l->cfg);
    tu_rmtree(l->dir);
    free(l->dir);
    free(l->path);
    free(l->log);
}

/* Loads yaml, expects failure with exactly one error line "<path>:<line>:<col>: <rest…>". */
static void expect_error_at(const char *yaml, int line, int col, const char *rest)
{
    loaded l = load_yaml(yaml);
    cr_expect_null(l.cfg, "config should be rejected:\n%s", yaml);
    char *want = tu_printf("error: %s:%d:%d: %s", l.path, line, col, rest);
    cr_expect(strncmp(l.log, want, strlen(want)) == 0, "expected an error starting with\n  %s\ngot\n  %s", want, l.log);
    const char *nl = strchr(l.log, '\n');
    cr_expect(nl && nl[1] == '\0', "expected exactly one line on stderr, got:\n%s", l.log);
    free(want);
    loaded_free(&l);
}

Test(config, good_file)
{
    loaded l = load_yaml("# pgmemctl configuration\n"
                         "database: \"postgresql://app@db.example/memories\"\n"
                         "migrate:\n"
                         "  lock_timeout: 5.5\n"
                         "  wait: 2\n"
                         "  migrations_dir: /srv/migrations\n"
                         "test:\n"
                         "  flag: yes\n"
                         "  count: 42\n"
                         "  name: 'hello world'\n");
    cr_assert_not_null(l.cfg, "load failed: %s", l.log);
    cr_expect_str_eq(l.log, "");
    cr_expect_str_eq(l.cfg->path, l.path);
    int line = 0, col = 0;
    cr_expect_str_eq(config_get(l.cfg, NULL, "database", &line, &col), "postgresql://app@db.example/memories");
    cr_expect_eq(line, 2);
    cr_expect_eq(col, 11);
    cr_expect_str_eq(config_get(l.cfg, "migrate", "lock_timeout", &line, &col), "5.5");
    cr_expect_eq(line, 4);
    cr_expect_eq(col, 17);
    cr_expect_str_eq(config_get(l.cfg, "migrate", "wait", NULL, NULL), "2");
    cr_expect_str_eq(config_get(l.cfg, "migrate", "migrations_dir", NULL, NULL), "/srv/migrations");
    cr_expect_str_eq(config_get(l.cfg, "test", "flag", NULL, NULL), "yes");
    cr_expect_str_eq(config_get(l.cfg, "test", "count", NULL, NULL), "42");
    cr_expect_str_eq(config_get(l.cfg, "test", "name", &line, &col), "hello world");
    cr_expect_eq(line, 10);
    cr_expect_eq(col, 9);
    /* keys are looked up in their own section only */
    cr_expect_null(config_get(l.cfg, "test", "wait", NULL, NULL));
    cr_expect_null(config_get(l.cfg, NULL, "wait", NULL, NULL));
    cr_expect_null(config_get(l.cfg, "migrate", "database", NULL, NULL));
    cr_expect_null(config_get(NULL, "migrate", "wait", NULL, NULL));
    loaded_free(&l);
}

Test(config, flow_style_and_repeated_key)
{
    loaded l = load_yaml("migrate: {lock_timeout: 3, wait: 1}\n"
                         "test: {count: 1}\n"
                         "test: {count: 2}\n");
    cr_assert_not_null(l.cfg, "load failed: %s", l.log);
    cr_expect_str_eq(config_get(l.cfg, "migrate", "lock_timeout", NULL, NULL), "3");
    cr_expect_str_eq(config_get(l.cfg, "test", "count", NULL, NULL), "2", "the last value wins");
    loaded_free(&l);
}

Test(config, empty_and_comment_only_files)
{
    loaded l = load_yaml("");
    cr_assert_not_null(l.cfg, "empty file: %s", l.log);
    cr_expect_eq(l.cfg->n, 0);
    loaded_free(&l);
    l = load_yaml("# nothing configured yet\n");
    cr_assert_not_null(l.cfg, "comment-only file: %s", l.log);
    cr_expect_eq(l.cfg->n, 0);
    loaded_free(&l);
}

Test(config, unknown_top_level_key)
{
    expect_error_at("database: postgresql://x/y\n"
                    "migrate:\n"
                    "  wait: 1\n"
                    "bogus: 1\n",
                    4, 1, "unknown key \"bogus\" (known: database and the command names)");
}

Test(config, unknown_key_in_section)
{
    expect_error_at("migrate:\n"
                    "  wait: 1\n"
                    "  lock_timout: 5\n",
                    3, 3, "unknown key \"lock_timout\" in section \"migrate\"");
}

Test(config, wrong_type)
{
    /* the position is the key's */
    expect_error_at("migrate:\n"
                    "  lock_timeout: abc\n",
                    2, 3, "migrate.lock_timeout: expected a number, got \"abc\"");
    expect_error_at("test:\n"
                    "    count: 1.5\n",
                    2, 5, "test.count: expected an integer, got \"1.5\"");
    expect_error_at("test: {flag: maybe}\n", 1, 8, "test.flag: expected a boolean (true/false), got \"maybe\"");
}

Test(config, flag_only_key)
{
    expect_error_at("migrate: {to: 3}\n", 1, 11,
                    "\"to\" in section \"migrate\" can only be given on the command line (--to)");
    expect_error_at("migrate:\n  dry_run: true\n", 2, 3,
                    "\"dry_run\" in section \"migrate\" can only be given on the command line (--dry-run)");
}

Test(config, structure_errors)
{
    expect_error_at("migrate: 5\n", 1, 10, "section \"migrate\" must be a mapping of option: value, found a scalar");
    expect_error_at("migrate:\n  wait: [1, 2]\n", 2, 9, "migrate.wait: expected a single value, found a list");
    expect_error_at("- a\n- b\n", 1, 1, "the config file must be a mapping");
    expect_error_at("database: {host: x}\n", 1, 11, "database: expected a conninfo string, found a mapping");
}

Test(config, invalid_yaml)
{
    loaded l = load_yaml("migrate:\n  wait: 1\ndatabase: \"unterminated\n");
    cr_expect_null(l.cfg);
    char *want = tu_printf("error: %s:", l.path);
    cr_expect(strncmp(l.log, want, strlen(want)) == 0, "got: %s", l.log);
    cr_expect(tu_contains(l.log, ": invalid YAML: "), "got: %s", l.log);
    free(want);
    loaded_free(&l);
}

Test(config, missing_file)
{
    init_sections();
    tu_stderr_begin();
    config *cfg = config_load("/nonexistent/pgmemctl.yaml", sections, 2);
    char *log = tu_stderr_end();
    cr_expect_null(cfg);
    cr_expect(tu_contains(log, "/nonexistent/pgmemctl.yaml: cannot open config file"), "got: %s", log);
    free(log);
}

/* ---- resolution order through opts_parse ------------------------------------------------- */

typedef struct {
    bool ok;
    double lock_timeout;
    const char *source;
    char *log;
} resolved;

/* opts_parse for `migrate up [extra flag]` against cfg (may be NULL). */
static resolved resolve(const config *cfg, const char *flag)
{
    char *argv[] = {(char *) "migrate", (char *) "up", (char *) flag, NULL};
    int argc = flag ? 3 : 2;
    opts o;
    bool help = false;
    tu_stderr_begin();
    resolved r = {0};
    r.ok = opts_parse(&o, "migrate", cmd_migrate_specs, opts_count(cmd_migrate_specs), argc, argv, config_source(cfg), &help);
    r.log = tu_stderr_end();
    if (r.ok) {
        cr_expect_not(help);
        cr_expect_eq(o.nargs, 1);
        cr_expect_str_eq(o.args[0], "up");
        r.lock_timeout = opts_double(&o, "lock-timeout");
        for (int i = 0; i < o.n; i++)
            if (!strcmp(o.specs[i].name, "lock-timeout"))
                r.source = o.values[i].source;
    }
    opts_free(&o);
    return r;
}

Test(opts, precedence_flag_env_file_default)
{
    unsetenv("PGMEMCTL_MIGRATE_LOCK_TIMEOUT");
    loaded l = load_yaml("migrate:\n  lock_timeout: 7\n");
    cr_assert_not_null(l.cfg, "%s", l.log);

    resolved r = resolve(NULL, NULL); /* nothing: the built-in default */
    cr_assert(r.ok, "%s", r.log);
    cr_expect_eq(r.lock_timeout, 60.0);
    cr_expect_str_eq(r.source, "default");
    free(r.log);

    r = resolve(l.cfg, NULL); /* file over default */
    cr_assert(r.ok, "%s", r.log);
    cr_expect_eq(r.lock_timeout, 7.0);
    cr_expect_str_eq(r.source, "config");
    free(r.log);

    cr_assert_eq(setenv("PGMEMCTL_MIGRATE_LOCK_TIMEOUT", "8", 1), 0);
    r = resolve(l.cfg, NULL); /* environment over file */
    cr_assert(r.ok, "%s", r.log);
    cr_expect_eq(r.lock_timeout, 8.0);
    cr_expect_str_eq(r.source, "environment");
    free(r.log);

    r = resolve(l.cfg, "--lock-timeout=9"); /* flag over environment */
    cr_assert(r.ok, "%s", r.log);
    cr_expect_eq(r.lock_timeout, 9.0);
    cr_expect_str_eq(r.source, "flag");
    free(r.log);

    unsetenv("PGMEMCTL_MIGRATE_LOCK_TIMEOUT");
    r = resolve(l.cfg, "--lock-timeout=0.5"); /* flag over file */
    cr_assert(r.ok, "%s", r.log);
    cr_expect_eq(r.lock_timeout, 0.5);
    cr_expect_str_eq(r.source, "flag");
    free(r.log);
    loaded_free(&l);
}

Test(opts, bad_environment_value_is_an_error)
{
    cr_assert_eq(setenv("PGMEMCTL_MIGRATE_LOCK_TIMEOUT", "soon", 1), 0);
    resolved r = resolve(NULL, NULL);
    cr_expect_not(r.ok);
    cr_expect(tu_contains(r.log, "environment variable PGMEMCTL_MIGRATE_LOCK_TIMEOUT: expected a number, got \"soon\""),
              "got: %s", r.log);
    free(r.log);
}

Test(opts, flag_only_options_ignore_environment)
{
    cr_assert_eq(setenv("PGMEMCTL_MIGRATE_TO", "3", 1), 0);
    cr_assert_eq(setenv("PGMEMCTL_MIGRATE_DRY_RUN", "true", 1), 0);
    char *argv[] = {(char *) "migrate", (char *) "up", NULL};
    opts o;
    bool help;
    cr_assert(opts_parse(&o, "migrate", cmd_migrate_specs, opts_count(cmd_migrate_specs), 2, argv, NULL, &help));
    cr_expect_not(opts_isset(&o, "to"));
    cr_expect_not(opts_bool(&o, "dry-run"));
    opts_free(&o);
}

Test(opts, flag_errors)
{
    char *argv1[] = {(char *) "migrate", (char *) "up", (char *) "--lock-timeout", (char *) "abc", NULL};
    char *argv2[] = {(char *) "migrate", (char *) "up", (char *) "--nosuch", NULL};
    char *argv3[] = {(char *) "migrate", (char *) "up", (char *) "--to", NULL};
    struct {
        char **argv;
        int argc;
        const char *msg;
    } cases[] = {
        {argv1, 4, "migrate: option --lock-timeout: expected a number, got \"abc\""},
        {argv2, 3, "migrate: unknown option \"--nosuch\""},
        {argv3, 3, "migrate: option --to needs a value (N)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        opts o;
        bool help;
        tu_stderr_begin();
        bool ok = opts_parse(&o, "migrate", cmd_migrate_specs, opts_count(cmd_migrate_specs), cases[i].argc,
                             cases[i].argv, NULL, &help);
        char *log = tu_stderr_end();
        cr_expect_not(ok, "case %zu should fail", i);
        cr_expect(tu_contains(log, cases[i].msg), "expected \"%s\", got: %s", cases[i].msg, log);
        free(log);
        opts_free(&o);
    }
}

Test(opts, types_and_short_flags)
{
    loaded l = load_yaml("test:\n  flag: on\n  name: from-file\n");
    cr_assert_not_null(l.cfg, "%s", l.log);
    char *argv[] = {(char *) "test", (char *) "-n", (char *) "5", (char *) "pos", (char *) "--", (char *) "--x", NULL};
    opts o;
    bool help;
    cr_assert(opts_parse(&o, "test", test_specs, opts_count(test_specs), 6, argv, config_source(l.cfg), &help));
    cr_expect(opts_bool(&o, "flag"));
    cr_expect_eq(opts_int(&o, "count"), 5);
    cr_expect_str_eq(opts_str(&o, "name"), "from-file");
    cr_expect_not(opts_isset(&o, "only-flag"));
    cr_assert_eq(o.nargs, 2);
    cr_expect_str_eq(o.args[0], "pos");
    cr_expect_str_eq(o.args[1], "--x");
    opts_free(&o);

    char *argv2[] = {(char *) "test", (char *) "--no-flag", NULL};
    cr_assert(opts_parse(&o, "test", test_specs, opts_count(test_specs), 2, argv2, config_source(l.cfg), &help));
    cr_expect_not(opts_bool(&o, "flag"), "--no-flag beats the file");
    cr_expect_eq(opts_int(&o, "count"), 10, "the default");
    opts_free(&o);
    loaded_free(&l);
}

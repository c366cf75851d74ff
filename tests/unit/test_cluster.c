/* test_cluster.c — the parts of cluster.c that need no PostgreSQL: conninfo quoting, running a
 * program of an "installation" directory with its output captured, the size of a data directory
 * without pg_wal, free space, and a directory tree's removal. */
#include "cluster.h"
#include "common/testutil.h"
#include "proc.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(cluster, .fini = tu_leak_check);

Test(cluster, conninfo_values_are_quoted_for_libpq)
{
    char *a = cluster_conninfo_value("/tmp/sock dir");
    char *b = cluster_conninfo_value("it's a \\ test");
    char *c = cluster_conninfo_value("");
    cr_assert_str_eq(a, "'/tmp/sock dir'");
    cr_assert_str_eq(b, "'it\\'s a \\\\ test'");
    cr_assert_str_eq(c, "''");
    free(a);
    free(b);
    free(c);
}

Test(cluster, run_captures_output_and_exit_status_and_drops_redirecting_variables)
{
    char *dir = tu_tempdir();
    cluster_install inst = {.bindir = "/bin"};
    setenv("PGHOST", "elsewhere", 1);
    setenv("PGPASSFILE", "/kept", 1);
    char *text = NULL;
    const char *argv[] = {"sh", "-c", "echo host=${PGHOST:-unset} passfile=$PGPASSFILE; pwd; exit 3", NULL};
    int rc = cluster_run(&inst, argv, dir, "out.log", NULL, 30, &text);
    unsetenv("PGHOST");
    unsetenv("PGPASSFILE");
    cr_assert_eq(rc, 3);
    char *want = tu_printf("host=unset passfile=/kept\n%s\n", dir);
    cr_assert_str_eq(text, want);
    char *log = tu_printf("%s/out.log", dir);
    char *saved = tu_read_file(log);
    cr_assert_str_eq(saved, want, "the output is kept in the work directory");
    cr_assert_str_eq(cluster_tail("a\nb\nc\nd\n", 2), "c\nd\n");
    free(text);
    free(want);
    free(log);
    free(saved);
    tu_rmtree(dir);
    free(dir);
}

Test(cluster, data_bytes_leave_out_pg_wal_and_rmtree_removes_everything)
{
    char *dir = tu_tempdir();
    free(tu_write_file(dir, "PG_VERSION", "15\n"));
    char *base = tu_printf("%s/base", dir), *wal = tu_printf("%s/pg_wal", dir);
    cr_assert_eq(mkdir(base, 0700), 0);
    cr_assert_eq(mkdir(wal, 0700), 0);
    free(tu_write_file(base, "16384", "0123456789"));
    free(tu_write_file(wal, "000000010000000000000001", "this is not counted"));
    cr_assert_eq(cluster_data_bytes(dir), 3 + 10);
    dev_t dev = 0;
    char *missing = tu_printf("%s/not/yet", dir);
    int64_t avail = cluster_free_bytes(missing, &dev);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_gt(avail, 0, "free space of the nearest existing ancestor");
    cr_assert_eq(dev, st.st_dev);
    proc_rmtree(dir);
    cr_assert_neq(access(dir, F_OK), 0, "%s is still there", dir);
    free(missing);
    free(base);
    free(wal);
    free(dir);
}

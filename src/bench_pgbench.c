/* bench_pgbench.c — pgmemctl bench's client-overhead check: the same statement
 * (sql/bench_overhead.sql) timed by pgmemctl and by `pgbench -f`, side by side. */
#include "bench_int.h"
#include "bench_stats.h"
#include "log.h"
#include "proc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The pgbench script: \set lines, then the statement without its comment lines, $1 -> :n and
 * $2 -> :k. Newly allocated. */
static char *pgbench_script(const char *sql, int nqueries, int k)
{
    size_t cap = strlen(sql) + 128;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = (size_t) snprintf(out, cap, "\\set n random(0, %d)\n\\set k %d\n", nqueries - 1, k);
    const char *p = sql;
    while (*p) {
        size_t len = strcspn(p, "\n");
        const char *q = p;
        while (q < p + len && (*q == ' ' || *q == '\t'))
            q++;
        if (!(q + 1 < p + len && q[0] == '-' && q[1] == '-')) {
            for (const char *x = p; x < p + len; x++) {
                if (x[0] == '$' && (x[1] == '1' || x[1] == '2')) {
                    out[o++] = ':';
                    out[o++] = x[1] == '1' ? 'n' : 'k';
                    x++;
                } else {
                    out[o++] = *x;
                }
            }
            out[o++] = '\n';
        }
        p += len;
        if (*p)
            p++;
    }
    out[o] = '\0';
    return out;
}

/* pgmemctl's own pass: warm-up, then nqueries timed executions; appends to ms. */
static bool own_pass(pg_conn *c, const char *sql, const bench_request *req, int nqueries, double *ms, int *count)
{
    char kbuf[16], nbuf[16];
    snprintf(kbuf, sizeof kbuf, "%d", req->k);
    for (int i = -req->warmup; i < nqueries; i++) {
        snprintf(nbuf, sizeof nbuf, "%d", ((i % nqueries) + nqueries) % nqueries);
        const char *params[] = {nbuf, kbuf};
        double t0 = bench_now();
        pg_result *r = pg_exec(c, sql, 2, params);
        double t1 = bench_now();
        if (!r) {
            log_error("bench: client-overhead statement: %s", pg_errmsg(c));
            return false;
        }
        pg_clear(r);
        if (i >= 0)
            ms[(*count)++] = (t1 - t0) * 1000.0;
    }
    return true;
}

/* Latencies from pgbench's per-transaction log (-l): "client_id transaction_no time script_no
 * time_epoch time_us", time in microseconds; the first skip transactions are the warm-up. */
static int read_pgbench_log(const char *dir, int skip, double *ms, int *count, int max)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "log.", 4))
            continue;
        files++;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        long long client, tx, us;
        int seen = 0;
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "%lld %lld %lld", &client, &tx, &us) == 3 && seen++ >= skip && *count < max)
                ms[(*count)++] = (double) us / 1000.0;
        fclose(f);
        unlink(path);
    }
    closedir(d);
    return files;
}

/* PGOPTIONS for pgbench: the connection's own options plus the session bench measures in. */
static char *pg_options(const char *existing, const char *search_path, int ef)
{
    size_t cap = (existing ? strlen(existing) : 0) + strlen(search_path) * 2 + 160;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = (size_t) snprintf(out, cap, "PGOPTIONS=%s%s-c default_transaction_read_only=on",
                                 existing ? existing : "", existing && *existing ? " " : "");
    if (ef > 0)
        o += (size_t) snprintf(out + o, cap - o, " -c hnsw.ef_search=%d", ef);
    if (search_path[0]) {
        o += (size_t) snprintf(out + o, cap - o, " -c search_path=");
        for (const char *p = search_path; *p; p++) { /* spaces in an option value are escaped */
            if (*p == ' ' || *p == '\\')
                out[o++] = '\\';
            out[o++] = *p;
        }
        out[o] = '\0';
    }
    return out;
}

static bool pgbench_pass(const char *bin, const char *dir, const char *script, char **env, int transactions,
                         int warmup, double *ms, int *count, int max, char *reason, size_t rlen)
{
    char tx[16], logp[600], out[700];
    snprintf(tx, sizeof tx, "%d", transactions + warmup);
    snprintf(logp, sizeof logp, "--log-prefix=%s/log", dir);
    snprintf(out, sizeof out, "%s/pgbench.out", dir);
    unlink(out);
    const char *argv[] = {bin, "-n", "-M", "extended", "-c", "1", "-j", "1", "-t", tx, "-f", script, "-l", logp, NULL};
    static const char *const drop[] = {"PG", NULL};
    int rc = proc_run(argv, (const char *const *) env, drop, dir, out, 600);
    if (rc != 0) {
        char *text = proc_read_file(out, NULL);
        const char *tail = text ? text : "";
        if (strlen(tail) > 300)
            tail += strlen(tail) - 300;
        snprintf(reason, rlen, "pgbench exited with status %d: %s", rc, tail);
        for (char *p = reason; *p; p++)
            if (*p == '\n')
                *p = ' ';
        free(text);
        return false;
    }
    int before = *count;
    if (read_pgbench_log(dir, warmup, ms, count, max) <= 0 || *count == before) {
        snprintf(reason, rlen, "pgbench wrote no per-transaction log in %s", dir);
        return false;
    }
    return true;
}

bool bench_measure_overhead(pg_conn *c, const bench_request *req, int nqueries, const char *search_path,
                            bench_store *st)
{
    bench_overhead *ov = &st->overhead;
    memset(ov, 0, sizeof *ov);
    if (req->pgbench && !req->pgbench[0]) {
        snprintf(ov->reason, sizeof ov->reason, "skipped (--no-pgbench)");
        return true;
    }
    char *bin = NULL;
    if (req->pgbench) {
        const char *cand[] = {req->pgbench, NULL};
        bin = proc_find(cand);
    } else {
        char versioned[64];
        snprintf(versioned, sizeof versioned, "/usr/lib/postgresql/%d/bin/pgbench", pg_lib_version() / 10000);
        const char *cand[] = {versioned, "pgbench", NULL};
        bin = proc_find(cand);
    }
    if (!bin) {
        snprintf(ov->reason, sizeof ov->reason, "pgbench not found%s%s (Debian: apt-get install postgresql-%d)",
                 req->pgbench ? ": " : "", req->pgbench ? req->pgbench : "", pg_lib_version() / 10000);
        log_warn("bench: client-overhead comparison skipped: %s", ov->reason);
        return true;
    }
    snprintf(ov->binary, sizeof ov->binary, "%s", bin);
    const char *sql = bench_sql("bench_overhead.sql");
    char *script_text = sql ? pgbench_script(sql, nqueries, req->k) : NULL;
    const char *tmp = getenv("TMPDIR");
    char dir[400];
    snprintf(dir, sizeof dir, "%s/pgmemctl-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    bool have_dir = mkdtemp(dir) != NULL;
    char script[600];
    snprintf(script, sizeof script, "%s/overhead.sql", dir);
    FILE *f = have_dir && script_text ? fopen(script, "w") : NULL;
    bool wrote = f && fputs(script_text, f) >= 0;
    if (f && fclose(f) != 0)
        wrote = false;
    free(script_text);
    int nenv = 0;
    char **env = pg_child_env(c, &nenv);
    char **env2 = env ? realloc(env, (size_t) (nenv + 3) * sizeof *env) : NULL;
    if (env2)
        env = env2;
    int max = 2 * nqueries;
    double *mine = malloc((size_t) max * sizeof *mine), *theirs = malloc((size_t) max * sizeof *theirs);
    bool ok = true;
    if (!sql || !wrote || !env2 || !mine || !theirs) {
        log_error("bench: could not prepare the pgbench comparison in %s", have_dir ? dir : "$TMPDIR");
        ok = false;
    }
    if (ok) { /* PGOPTIONS replaces any the connection had; PGAPPNAME names the client */
        const char *existing = NULL;
        int opt_i = -1;
        for (int i = 0; i < nenv; i++)
            if (!strncmp(env[i], "PGOPTIONS=", 10)) {
                existing = env[i] + 10;
                opt_i = i;
            }
        char *opts = pg_options(existing, search_path, st->has_index ? st->default_ef : 0);
        if (opt_i >= 0) {
            free(env[opt_i]);
            env[opt_i] = opts;
        } else {
            env[nenv++] = opts;
        }
        env[nenv++] = strdup("PGAPPNAME=pgmemctl bench (pgbench)");
        env[nenv] = NULL;
        ok = opts && env[nenv - 1];
    }
    int nmine = 0, ntheirs = 0;
    bool pgbench_ok = ok;
    log_info("bench: client overhead: %d executions of sql/bench_overhead.sql by pgmemctl and by %s, twice each", nqueries,
             bin);
    for (int round = 0; ok && round < 2; round++) {
        ok = own_pass(c, sql, req, nqueries, mine, &nmine);
        if (ok && pgbench_ok)
            pgbench_ok = pgbench_pass(bin, dir, script, env, nqueries, req->warmup, theirs, &ntheirs, max, ov->reason,
                                      sizeof ov->reason);
    }
    if (ok && pgbench_ok) {
        ov->ran = true;
        ov->transactions = nmine;
        bench_dist_of(mine, nmine, &ov->pgmemctl_ms);
        bench_dist_of(theirs, ntheirs, &ov->pgbench_ms);
        ov->pgmemctl_p50 = ov->pgmemctl_ms.p50;
        ov->pgbench_p50 = ov->pgbench_ms.p50;
        ov->ratio = ov->pgbench_p50 > 0 ? ov->pgmemctl_p50 / ov->pgbench_p50 : 0;
        log_info("bench: client overhead: pgmemctl p50 %.3f ms / pgbench p50 %.3f ms = %.3f", ov->pgmemctl_p50,
                 ov->pgbench_p50, ov->ratio);
    } else if (ok) {
        log_warn("bench: client-overhead comparison failed: %s", ov->reason);
    }
    if (env) {
        for (int i = 0; i < nenv; i++)
            free(env[i]);
        free(env);
    }
    free(mine);
    free(theirs);
    free(bin);
    if (have_dir) {
        unlink(script);
        char out[600];
        snprintf(out, sizeof out, "%s/pgbench.out", dir);
        unlink(out);
        proc_rmdir(dir);
    }
    return ok;
}

/* upgrade_logical.c — `pgmemctl upgrade --method logical`: from a running server to one of a newer
 * major version by logical replication, with seconds of downtime. The dump method's preflight
 * and roles (upgrade_dump.h), then the schema by the new version's pg_dump --schema-only with the
 * HNSW, IVFFlat and GIN indexes held back, a publication and a subscription per database, the
 * held-back indexes built while replication runs, and a cutover: writes blocked on the old side,
 * the new side caught up to the old side's WAL position, sequences copied, the replication
 * dropped; then the proof. What it creates is recorded in a state file (upgrade_logical.h) so
 * that --abort or a rerun undoes an interrupted run. */
#define _GNU_SOURCE
#include "cluster.h"
#include "log.h"
#include "pg.h"
#include "proc.h"
#include "progress.h"
#include "redact.h"
#include "upgrade.h"
#include "upgrade_dump.h"
#include "upgrade_logical.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The cutover starts once every slot is within this many bytes of the old side's WAL position. */
#define CUTOVER_LAG_BYTES (4 * 1024 * 1024)
/* How long the cutover waits for the new side to apply the old side's last WAL position. */
#define FINAL_SYNC_TIMEOUT 120.0
#define DEFAULT_MAINTENANCE_WORK_MEM "1GB"

/* An index held back from the schema restore and built after the initial copy. */
typedef struct {
    int db;
    char *schema, *name, *method, *def, *comment;
    double seconds;
} held_index;

typedef struct {
    const upgrade_options *o;
    upgrade_result *res;
    upgrade_dump_ctx *dump;
    char **dbs;                /* owned by dump */
    bool *exists;              /* owned by dump */
    int ndbs;
    bool *replicated;          /* per database: it has tables to publish */
    char **slots;              /* per database: the slot name (NULL when not replicated) */
    pg_conn **oldc, **newc;    /* per database */
    lstate st;
    held_index *idx;
    int nidx;
    char *mwm;                 /* maintenance_work_mem of the index builds */
    cJSON *seen;               /* "db.schema.table" -> the last subscription state logged */
    int workers;               /* max_parallel_maintenance_workers of the index builds */
} lrun;

static void nap(double seconds)
{
    struct timespec ts = {(time_t) seconds, (long) ((seconds - (double) (time_t) seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

static cJSON *details(lrun *L)
{
    if (!L->res->details)
        L->res->details = cJSON_CreateObject();
    return L->res->details;
}

/* ---- the work directory ------------------------------------------------------------------------ */

/* --work-dir, or ${XDG_STATE_HOME:-$HOME/.local/state}/pgmemctl/upgrade-logical-<16 hex of the
 * SHA-256 of the password-free --from and --to>: the same for a rerun or --abort of the same pair. */
static char *default_workdir(const upgrade_options *o)
{
    char *from = pg_redact_conninfo(o->from), *to = pg_redact_conninfo(o->to), *key = NULL, *dir = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char *base = NULL;
    if (from && to && asprintf(&key, "%s\n%s", from, to) >= 0 &&
        EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen >= 8 &&
        (xdg && *xdg ? asprintf(&base, "%s/pgmemctl", xdg) : asprintf(&base, "%s/.local/state/pgmemctl", home ? home : "/tmp")) >= 0) {
        char hex[17];
        for (int i = 0; i < 8; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        /* its parents, as mkdir -p would */
        for (char *p = base + 1; (p = strchr(p, '/')); p++) {
            *p = '\0';
            mkdir(base, 0700);
            *p = '/';
        }
        mkdir(base, 0700);
        if (asprintf(&dir, "%s/upgrade-logical-%s", base, hex) < 0)
            dir = NULL;
    }
    free(base);
    free(key);
    free(from);
    free(to);
    return dir;
}

static bool open_workdir(lrun *L)
{
    upgrade_options o2 = *L->o;
    char *dir = o2.work_dir ? NULL : default_workdir(L->o);
    if (dir)
        o2.work_dir = dir;
    bool ok = upgrade_workdir(&o2, L->res);
    free(dir);
    char *path = NULL;
    bool exists = false;
    if (!ok || asprintf(&path, "%s/%s", L->res->work_dir, LOGICAL_STATE_FILE) < 0)
        return false;
    ok = lstate_load(path, &L->st, &exists);
    free(path);
    if (ok && !exists) {
        L->st.from = pg_redact_conninfo(L->o->from);
        L->st.to = pg_redact_conninfo(L->o->to);
    }
    return ok;
}

/* ---- preflight ---------------------------------------------------------------------------------- */

static const char USER_TABLES[] =
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"
    " AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/* Per database of the old side: tables to publish, tables without a key, large objects, a write
 * block of its own. */
static bool check_old_db(lrun *L, int i, int *nrep)
{
    upgrade_result *res = L->res;
    const char *db = L->dbs[i];
    pg_conn *c = pg_connect_db(L->o->from, db, "pgmemctl upgrade preflight", 0);
    if (!c) {
        upgrade_check_add(res, "source", false, "cannot connect to database %s of the source", db);
        return false;
    }
    char *sql_n = NULL, *sql_nokey = NULL, *sql_unlogged = NULL;
    int64_t ntables = 0, nlo = 0, blocked = 0;
    bool ok = asprintf(&sql_n, "SELECT count(*)%s", USER_TABLES) >= 0 &&
              asprintf(&sql_nokey,
                       "SELECT string_agg(format('%%s.%%I.%%I', current_database(), n.nspname, c.relname), ', ' "
                       "ORDER BY n.nspname, c.relname)%s AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT "
                       "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)) OR "
                       "(c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
                       "AND i.indisreplident)))",
                       USER_TABLES) >= 0 &&
              asprintf(&sql_unlogged,
                       "SELECT string_agg(format('%%s.%%I.%%I', current_database(), n.nspname, c.relname), ', ' "
                       "ORDER BY n.nspname, c.relname)%s AND c.relpersistence = 'u'",
                       USER_TABLES) >= 0;
    bool found = false;
    char *nokey = NULL, *unlogged = NULL;
    ok = ok && pg_query_int64(c, sql_n, 0, NULL, &ntables) &&
         pg_query_int64(c, "SELECT count(*) FROM pg_largeobject_metadata", 0, NULL, &nlo) &&
         pg_query_int64(c,
                        "SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) AS g(v) WHERE s.setrole = 0 "
                        "AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                        "AND g.v LIKE 'default\\_transaction\\_read\\_only=%'",
                        0, NULL, &blocked);
    if (ok) {
        nokey = pg_query_text(c, sql_nokey, 0, NULL, &found);
        ok = nokey || !pg_errmsg(c)[0];
    }
    if (ok) {
        unlogged = pg_query_text(c, sql_unlogged, 0, NULL, &found);
        ok = unlogged || !pg_errmsg(c)[0];
    }
    if (!ok)
        log_error("upgrade: preflight: database %s of the source: %s", db, pg_errmsg(c));
    else {
        L->replicated[i] = ntables > 0;
        *nrep += ntables > 0;
        if (nokey)
            upgrade_check_add(res, "replica_identity", false,
                              "database %s: tables without a primary key or replica identity (logical replication "
                              "cannot carry their updates and deletes, and the old server would refuse them once "
                              "published): %s; add a primary key, or ALTER TABLE … REPLICA IDENTITY FULL",
                              db, nokey);
        if (unlogged)
            upgrade_check_add(res, "unlogged_tables", false,
                              "database %s: unlogged tables, which logical replication does not carry: %s; ALTER "
                              "TABLE … SET LOGGED, or use the dump method",
                              db, unlogged);
        if (nlo > 0)
            upgrade_check_add(res, "large_objects", false,
                              "database %s holds %lld large object(s), which logical replication does not carry: "
                              "use the dump method",
                              db, (long long) nlo);
        if (blocked > 0)
            upgrade_check_add(res, "write_block", false,
                              "database %s has a setting default_transaction_read_only of its own: the cutover "
                              "sets and resets it (ALTER DATABASE %s RESET default_transaction_read_only first)",
                              db, db);
    }
    free(nokey);
    free(unlogged);
    free(sql_n);
    free(sql_nokey);
    free(sql_unlogged);
    pg_close(c);
    return ok;
}

static bool logical_checks(lrun *L)
{
    upgrade_result *res = L->res;
    pg_conn *src = upgrade_dump_conn(L->dump, false), *dst = upgrade_dump_conn(L->dump, true);
    if (!src || !dst)
        return false;
    bool found;
    char *wal = pg_query_text(src, "SELECT current_setting('wal_level')", 0, NULL, &found);
    upgrade_check_add(res, "wal_level", wal && !strcmp(wal, "logical"),
                      wal && !strcmp(wal, "logical") ? "wal_level = logical on the source"
                                                     : "wal_level = %s on the source: logical replication needs "
                                                       "wal_level = logical (ALTER SYSTEM SET wal_level = logical, "
                                                       "then restart the old server)",
                      wal ? wal : "?");
    free(wal);
    pg_result *r = pg_exec(src, "SELECT rolsuper, rolreplication, current_user FROM pg_roles WHERE rolname = current_user",
                           0, NULL);
    bool super_old = r && pg_ntuples(r) == 1 && !strcmp(pg_value(r, 0, 0), "t");
    upgrade_check_add(res, "replication_privilege", super_old,
                      super_old ? "the source role %s is a superuser (publication FOR ALL TABLES, replication)"
                                : "the source role %s is not a superuser: the publication FOR ALL TABLES and the "
                                  "replication slot need one",
                      r && pg_ntuples(r) == 1 ? pg_value(r, 0, 2) : "?");
    pg_clear(r);
    r = pg_exec(dst, "SELECT rolsuper, current_user FROM pg_roles WHERE rolname = current_user", 0, NULL);
    bool super_new = r && pg_ntuples(r) == 1 && !strcmp(pg_value(r, 0, 0), "t");
    upgrade_check_add(res, "subscription_privilege", super_new,
                      super_new ? "the target role %s is a superuser (roles, extensions, subscriptions)"
                                : "the target role %s is not a superuser: creating the roles, extensions and "
                                  "subscriptions needs one",
                      r && pg_ntuples(r) == 1 ? pg_value(r, 0, 1) : "?");
    pg_clear(r);

    int nrep = 0;
    for (int i = 0; i < L->ndbs; i++)
        if (!check_old_db(L, i, &nrep))
            return false;
    int before = 0;
    for (int i = 0; i < res->nchecks; i++)
        before += !strcmp(res->checks[i].name, "replica_identity");
    if (!before)
        upgrade_check_add(res, "replica_identity", true,
                          "every table has a primary key or a replica identity (%d database(s) to replicate)", nrep);

    /* slots and walsenders: one per subscription, plus the tablesync workers' temporary ones */
    int64_t free_slots = 0, free_senders = 0, workers = 0;
    int need = nrep + 2;
    if (!pg_query_int64(src, "SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM "
                             "pg_replication_slots)", 0, NULL, &free_slots) ||
        !pg_query_int64(src, "SELECT current_setting('max_wal_senders')::int - (SELECT count(*) FROM "
                             "pg_stat_activity WHERE backend_type = 'walsender')", 0, NULL, &free_senders) ||
        !pg_query_int64(dst, "SELECT least(current_setting('max_logical_replication_workers')::int, "
                             "current_setting('max_worker_processes')::int - 2)", 0, NULL, &workers))
        return false;
    upgrade_check_add(res, "replication_slots", free_slots >= need && free_senders >= need,
                      "the source has %lld free replication slot(s) and %lld free WAL sender(s); %d needed (one per "
                      "database with tables, plus 2 for the initial copy)%s",
                      (long long) free_slots, (long long) free_senders, need,
                      free_slots >= need && free_senders >= need
                          ? ""
                          : ": raise max_replication_slots / max_wal_senders on the old server (restart)");
    upgrade_check_add(res, "replication_workers", workers >= nrep + 1,
                      "the target allows %lld logical replication worker(s); %d needed%s", (long long) workers,
                      nrep + 1, workers >= nrep + 1 ? "" : ": raise max_logical_replication_workers (restart)");
    if (res->vector_before) {
        char *v = pg_query_text(dst, "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'", 0,
                                NULL, &found);
        if (v)
            upgrade_check_add(res, "pgvector_installed", true, "pgvector %s is available on the target (the source "
                                                               "has %s)", v, res->vector_before);
        else
            upgrade_check_add(res, "pgvector_installed", false,
                              "pgvector is not installed for the target's PostgreSQL %d (the source has %s): install "
                              "it there (postgresql-%d-pgvector, or make install with its pg_config)",
                              res->new_major, res->vector_before, res->new_major);
        free(v);
    }
    /* what an interrupted run left behind must be undone first */
    int64_t slots = 0;
    if (!pg_query_int64(src, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '" LOGICAL_SLOT_PREFIX "%'",
                        0, NULL, &slots))
        return false;
    upgrade_check_add(res, "previous_run", slots == 0,
                      slots == 0 ? "no replication slot " LOGICAL_SLOT_PREFIX "* on the source"
                                 : "the source has %lld replication slot(s) " LOGICAL_SLOT_PREFIX "* of another run "
                                   "whose state is not in this work directory: run with --abort and that run's "
                                   "--work-dir, or drop them",
                      (long long) slots);
    return true;
}

static bool preflight(lrun *L)
{
    if (!upgrade_dump_preflight(L->dump))
        return false;
    L->ndbs = upgrade_dump_databases(L->dump, &L->dbs, &L->exists);
    L->replicated = calloc((size_t) L->ndbs + 1, sizeof *L->replicated);
    L->slots = calloc((size_t) L->ndbs + 1, sizeof *L->slots);
    L->oldc = calloc((size_t) L->ndbs + 1, sizeof(pg_conn *));
    L->newc = calloc((size_t) L->ndbs + 1, sizeof(pg_conn *));
    if (!L->replicated || !L->slots || !L->oldc || !L->newc)
        return false;
    return logical_checks(L);
}

/* ---- schema ------------------------------------------------------------------------------------- */

static const char HELD_BACK_SQL[] =
    "SELECT n.nspname, c.relname, a.amname, pg_get_indexdef(c.oid), obj_description(c.oid, 'pg_class') "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_am a ON a.oid = c.relam JOIN pg_class t ON t.oid = i.indrelid "
    "WHERE a.amname IN ('hnsw', 'ivfflat', 'gin') AND t.relkind = 'r' AND NOT t.relispartition "
    "  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid) "
    "  AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid IN (c.oid, t.oid) AND d.deptype = 'e') "
    "ORDER BY n.nspname, c.relname";

static bool list_held_back(lrun *L, int i)
{
    pg_result *r = pg_exec(L->oldc[i], HELD_BACK_SQL, 0, NULL);
    if (!r) {
        upgrade_fail(L->res, UPG_ST_FAILED, "database %s: listing its indexes: %s", L->dbs[i], pg_errmsg(L->oldc[i]));
        return false;
    }
    held_index *grown = realloc(L->idx, (size_t) (L->nidx + pg_ntuples(r) + 1) * sizeof *grown);
    if (!grown) {
        pg_clear(r);
        return false;
    }
    L->idx = grown;
    for (int k = 0; k < pg_ntuples(r); k++)
        L->idx[L->nidx++] = (held_index){.db = i,
                                         .schema = strdup(pg_value(r, k, 0)),
                                         .name = strdup(pg_value(r, k, 1)),
                                         .method = strdup(pg_value(r, k, 2)),
                                         .def = strdup(pg_value(r, k, 3)),
                                         .comment = pg_isnull(r, k, 4) ? NULL : strdup(pg_value(r, k, 4))};
    pg_clear(r);
    return true;
}

/* Comments out of pg_restore's list the held-back indexes of database i and their comments. */
static bool filter_list(lrun *L, int i, const char *in, const char *out)
{
    char *text = proc_read_file(in, NULL);
    FILE *f = text ? fopen(out, "w") : NULL;
    if (!f) {
        free(text);
        upgrade_fail(L->res, UPG_ST_FAILED, "database %s: cannot filter the schema's list %s: %s", L->dbs[i], in,
                     strerror(errno));
        return false;
    }
    int held = 0;
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        bool drop = false;
        for (int k = 0; !drop && k < L->nidx; k++) {
            if (L->idx[k].db != i || line[0] == ';')
                continue;
            char *a = NULL, *b = NULL;
            if (asprintf(&a, " INDEX %s %s ", L->idx[k].schema, L->idx[k].name) >= 0 &&
                asprintf(&b, " COMMENT %s INDEX %s ", L->idx[k].schema, L->idx[k].name) >= 0)
                drop = strstr(line, a) || strstr(line, b);
            free(a);
            free(b);
        }
        held += drop;
        fprintf(f, "%s%s\n", drop ? "; held back by pgmemctl: " : "", line);
    }
    free(text);
    bool ok = fclose(f) == 0;
    log_info("upgrade: schema: database %s: %d index entr%s held back until after the initial copy", L->dbs[i], held,
             held == 1 ? "y" : "ies");
    return ok;
}

/* An existing (empty) database on the new side: what is there before, so that undo leaves it. */
static bool record_before(lrun *L, lstate_db *x)
{
    pg_conn *c = pg_connect_db(L->o->to, x->name, "pgmemctl upgrade", 0);
    if (!c)
        return false;
    static const char *const sql[] = {
        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%' ORDER BY 1",
        "SELECT extname FROM pg_extension ORDER BY 1",
        "SELECT format_type(t.oid, NULL) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND t.typtype IN ('c', 'd', 'e', 'r') "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e') ORDER BY 1"};
    char ***lists[] = {&x->schemas_before, &x->extensions_before, &x->types_before};
    int *counts[] = {&x->nschemas_before, &x->nextensions_before, &x->ntypes_before};
    bool ok = true;
    for (int q = 0; ok && q < 3; q++) {
        pg_result *r = pg_exec(c, sql[q], 0, NULL);
        ok = r != NULL;
        int n = r ? pg_ntuples(r) : 0;
        *lists[q] = calloc((size_t) n + 1, sizeof **lists[q]);
        for (int k = 0; *lists[q] && k < n; k++)
            (*lists[q])[(*counts[q])++] = strdup(pg_value(r, k, 0));
        pg_clear(r);
    }
    if (!ok)
        log_error("upgrade: database %s on the target: %s", x->name, pg_errmsg(c));
    pg_close(c);
    return ok;
}

static bool schema_db(lrun *L, int i, const char *maint_arg)
{
    upgrade_result *res = L->res;
    const char *db = L->dbs[i];
    lstate_db *x = lstate_add_db(&L->st, db);
    if (!x)
        return false;
    x->created_on_new = !L->exists[i];
    if (L->exists[i] && !record_before(L, x))
        return false;
    x->schema_started = true;
    if (!lstate_save(&L->st) || !list_held_back(L, i))
        return false;
    char *qdb = cluster_conninfo_value(db), *dbarg = NULL, *dump = NULL, *list = NULL, *keep = NULL, *text = NULL;
    bool ok = false;
    if (!qdb || asprintf(&dbarg, "dbname=%s", qdb) < 0 || asprintf(&dump, "%s/schema-%d.dump", res->work_dir, i) < 0 ||
        asprintf(&list, "%s/schema-%d.list", res->work_dir, i) < 0 ||
        asprintf(&keep, "%s/schema-%d.restore.list", res->work_dir, i) < 0)
        goto done;
    const char *pg_dump[] = {"pg_dump", "--schema-only", "--format=custom", "--no-subscriptions", "--file", dump,
                             "--dbname", dbarg, NULL};
    int rc = upgrade_dump_tool(L->dump, false, pg_dump, "pg_dump.log", &text);
    if (rc != 0) {
        upgrade_fail(res, UPG_ST_FAILED, "pg_dump --schema-only of database %s failed (exit status %d): %s", db, rc,
                     text ? cluster_tail(text, 5) : "");
        goto done;
    }
    free(text);
    text = NULL;
    const char *pg_list[] = {"pg_restore", "--list", "--file", list, dump, NULL};
    rc = upgrade_dump_tool(L->dump, true, pg_list, "pg_restore.log", &text);
    if (rc != 0) {
        upgrade_fail(res, UPG_ST_FAILED, "pg_restore --list of database %s failed (exit status %d): %s", db, rc,
                     text ? cluster_tail(text, 5) : "");
        goto done;
    }
    free(text);
    text = NULL;
    if (!filter_list(L, i, list, keep))
        goto done;
    const char *create[] = {"pg_restore", "--create", "--exit-on-error", "--use-list", keep, "--dbname", maint_arg, dump,
                            NULL};
    const char *into[] = {"pg_restore", "--exit-on-error", "--use-list", keep, "--dbname", dbarg, dump, NULL};
    rc = upgrade_dump_tool(L->dump, true, L->exists[i] ? into : create, "pg_restore.log", &text);
    if (rc != 0) {
        upgrade_fail(res, UPG_ST_FAILED, "the schema restore of database %s failed (exit status %d): %s", db, rc,
                     text ? cluster_tail(text, 6) : "");
        goto done;
    }
    ok = true;
done:
    free(text);
    free(qdb);
    free(dbarg);
    free(dump);
    free(list);
    free(keep);
    return ok;
}

static bool schema(lrun *L)
{
    bool found;
    char *maint = pg_query_text(upgrade_dump_conn(L->dump, true), "SELECT current_database()", 0, NULL, &found);
    char *qm = maint ? cluster_conninfo_value(maint) : NULL, *arg = NULL;
    free(maint);
    if (!qm || asprintf(&arg, "dbname=%s", qm) < 0) {
        free(qm);
        return false;
    }
    free(qm);
    bool ok = lstate_phase(&L->st, "schema");
    for (int i = 0; ok && i < L->ndbs; i++) {
        L->oldc[i] = pg_connect_db(L->o->from, L->dbs[i], "pgmemctl upgrade", 0);
        ok = L->oldc[i] && pg_run(L->oldc[i], "SET default_transaction_read_only = off", 0, NULL) &&
             schema_db(L, i, arg);
        if (ok) {
            L->newc[i] = pg_connect_db(L->o->to, L->dbs[i], "pgmemctl upgrade", 0);
            ok = L->newc[i] != NULL;
        }
        if (ok && i == 0)
            upgrade_pause_at("schema", L->res->new_where);
    }
    free(arg);
    return ok;
}

/* ---- initial copy --------------------------------------------------------------------------------- */

/* The connection string the new server uses to reach database db of the old one. Holds the
 * password: never logged. */
static char *publisher_conninfo(lrun *L, int i)
{
    char *q = cluster_conninfo_value(L->dbs[i]), *out = NULL;
    if (!q)
        return NULL;
    if (L->o->publisher_conninfo) {
        if (asprintf(&out, "%s dbname=%s", L->o->publisher_conninfo, q) < 0)
            out = NULL;
        free(q);
        return out;
    }
    int n = 0;
    char **kv = pg_conn_params(L->oldc[i], &n);
    size_t cap = strlen(q) + 16;
    for (int k = 0; k < n; k++)
        cap += 2 * strlen(kv[k]) + 4;
    out = kv ? malloc(cap) : NULL;
    if (out) {
        snprintf(out, cap, "dbname=%s", q);
        static const char *const skip[] = {"dbname", "replication", "passfile", "application_name",
                                           "fallback_application_name", NULL};
        for (int k = 0; k < n; k++) {
            char *eq = strchr(kv[k], '=');
            bool skipped = !eq;
            for (int s = 0; !skipped && skip[s]; s++)
                skipped = (size_t) (eq - kv[k]) == strlen(skip[s]) && !strncmp(kv[k], skip[s], strlen(skip[s]));
            char *v = skipped ? NULL : cluster_conninfo_value(eq + 1);
            if (v) {
                size_t len = strlen(out);
                snprintf(out + len, cap - len, " %.*s=%s", (int) (eq - kv[k]), kv[k], v);
            }
            free(v);
        }
    }
    for (int k = 0; k < n; k++)
        free(kv[k]);
    free(kv);
    free(q);
    return out;
}

static bool start_replication(lrun *L, int i)
{
    upgrade_result *res = L->res;
    const char *db = L->dbs[i];
    int64_t oid = 0;
    if (!pg_query_int64(L->oldc[i], "SELECT oid FROM pg_database WHERE datname = current_database()", 0, NULL, &oid) ||
        asprintf(&L->slots[i], LOGICAL_SLOT_PREFIX "%lld", (long long) oid) < 0)
        return false;
    if (!pg_run(L->oldc[i], "CREATE PUBLICATION " LOGICAL_PUBLICATION " FOR ALL TABLES", 0, NULL)) {
        upgrade_fail(res, UPG_ST_FAILED, "database %s: CREATE PUBLICATION on the source: %s", db, pg_errmsg(L->oldc[i]));
        return false;
    }
    log_info("upgrade: initial copy: database %s: publication " LOGICAL_PUBLICATION " created on the source", db);
    char *ci = publisher_conninfo(L, i);
    char *lit = ci ? pg_quote_literal(L->newc[i], ci) : NULL, *sql = NULL;
    bool ok = lit && asprintf(&sql,
                              "CREATE SUBSCRIPTION " LOGICAL_SUBSCRIPTION " CONNECTION %s PUBLICATION " LOGICAL_PUBLICATION
                              " WITH (slot_name = '%s', copy_data = true)",
                              lit, L->slots[i]) >= 0;
    if (ci)
        memset(ci, 0, strlen(ci));
    free(ci);
    free(lit);
    ok = ok && pg_run(L->newc[i], sql, 0, NULL);
    free(sql);
    if (!ok) {
        upgrade_fail(res, UPG_ST_FAILED, "database %s: CREATE SUBSCRIPTION on the target: %s", db,
                     pg_errmsg(L->newc[i]));
        return false;
    }
    int64_t subid = 0;
    if (!pg_query_int64(L->newc[i],
                        "SELECT oid FROM pg_subscription WHERE subname = '" LOGICAL_SUBSCRIPTION "' AND subdbid = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())",
                        0, NULL, &subid))
        return false;
    L->st.dbs[i].subscription_oid = (unsigned) subid;
    log_info("upgrade: initial copy: database %s: subscription " LOGICAL_SUBSCRIPTION " created on the target "
             "(slot %s on the source)", db, L->slots[i]);
    return lstate_save(&L->st);
}

static const char *substate_name(char s)
{
    switch (s) {
    case 'i': return "waiting";
    case 'd': return "copying";
    case 'f': return "copied";
    case 's': return "synchronized";
    case 'r': return "ready";
    }
    return "?";
}

/* Waits until every table of every subscription is ready ('r'), logging each table's state
 * changes and, every 5 s, the tables being copied with their rows so far. */
static bool wait_ready(lrun *L)
{
    if (!L->seen)
        L->seen = cJSON_CreateObject();
    cJSON *seen = L->seen;
    double last_log = 0;
    bool ok = seen != NULL;
    int errors_allowed = 50;
    for (;;) {
        int total = 0, ready = 0;
        char copying[512] = "";
        for (int i = 0; ok && i < L->ndbs; i++) {
            if (!L->replicated[i])
                continue;
            char sub[16];
            snprintf(sub, sizeof sub, "%u", L->st.dbs[i].subscription_oid);
            const char *p[] = {sub};
            pg_result *r = pg_exec(L->newc[i],
                                   "SELECT format('%I.%I', n.nspname, c.relname), r.srsubstate, "
                                   "coalesce((SELECT max(tuples_processed) FROM pg_stat_progress_copy pc "
                                   "WHERE pc.relid = r.srrelid), 0), "
                                   "(SELECT sync_error_count + apply_error_count FROM pg_stat_subscription_stats s "
                                   " WHERE s.subid = r.srsubid) "
                                   "FROM pg_subscription_rel r JOIN pg_class c ON c.oid = r.srrelid "
                                   "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE r.srsubid = $1::oid ORDER BY 1",
                                   1, p);
            if (!r) {
                upgrade_fail(L->res, UPG_ST_FAILED, "database %s: reading the subscription's tables: %s", L->dbs[i],
                             pg_errmsg(L->newc[i]));
                ok = false;
                break;
            }
            for (int k = 0; k < pg_ntuples(r); k++) {
                char *key = NULL;
                char st = pg_value(r, k, 1)[0];
                total++;
                ready += st == 'r';
                if (asprintf(&key, "%s.%s", L->dbs[i], pg_value(r, k, 0)) < 0)
                    continue;
                const cJSON *was = cJSON_GetObjectItemCaseSensitive(seen, key);
                if (!was || was->valuestring[0] != st) {
                    char s1[2] = {st, 0};
                    cJSON_DeleteItemFromObjectCaseSensitive(seen, key);
                    cJSON_AddStringToObject(seen, key, s1);
                    log_info("upgrade: initial copy: %s: %s", key, substate_name(st));
                }
                if (st == 'd') {
                    size_t len = strlen(copying);
                    snprintf(copying + len, sizeof copying - len, "%s%s (%s rows)", len ? ", " : "", key,
                             pg_value(r, k, 2));
                }
                free(key);
            }
            if (pg_ntuples(r) > 0 && !pg_isnull(r, 0, 3) && atoll(pg_value(r, 0, 3)) > errors_allowed) {
                upgrade_fail(L->res, UPG_ST_FAILED,
                             "database %s: the subscription failed %s times (see the target's server log)", L->dbs[i],
                             pg_value(r, 0, 3));
                ok = false;
            }
            pg_clear(r);
        }
        if (!ok || ready == total)
            break;
        if (progress_now() - last_log >= 5) {
            log_info("upgrade: initial copy: %d of %d table(s) ready%s%s", ready, total, *copying ? "; copying " : "",
                     copying);
            last_log = progress_now();
        }
        nap(0.25);
    }
    return ok;
}

static bool initial_copy(lrun *L)
{
    bool ok = lstate_phase(&L->st, "initial_copy");
    for (int i = 0; ok && i < L->ndbs; i++)
        if (L->replicated[i])
            ok = start_replication(L, i);
    if (ok)
        upgrade_pause_at("initial_copy", L->res->new_where);
    return ok && wait_ready(L);
}

/* ---- index builds, statistics --------------------------------------------------------------------- */

static bool build_indexes(lrun *L)
{
    if (!lstate_phase(&L->st, "index_build"))
        return false;
    const char *p[] = {L->mwm};
    char workers[16];
    snprintf(workers, sizeof workers, "%d", L->workers);
    const char *pw[] = {workers};
    cJSON *arr = cJSON_AddArrayToObject(details(L), "held_back_indexes");
    for (int k = 0; k < L->nidx; k++) {
        held_index *h = &L->idx[k];
        pg_conn *c = L->newc[h->db];
        if (!pg_run(c, "SELECT set_config('maintenance_work_mem', $1, false)", 1, p) ||
            !pg_run(c, "SELECT set_config('max_parallel_maintenance_workers', $1, false)", 1, pw)) {
            upgrade_fail(L->res, UPG_ST_FAILED, "index builds on the target: %s", pg_errmsg(c));
            return false;
        }
        log_info("upgrade: index build: %s.%s.%s (%s) while replication runs", L->dbs[h->db], h->schema, h->name,
                 h->method);
        double t0 = progress_now();
        bool ok = pg_run(c, h->def, 0, NULL);
        if (ok && h->comment) {
            char *qs = pg_quote_ident(c, h->schema), *qn = pg_quote_ident(c, h->name), *lit = pg_quote_literal(c, h->comment),
                 *sql = NULL;
            ok = qs && qn && lit && asprintf(&sql, "COMMENT ON INDEX %s.%s IS %s", qs, qn, lit) >= 0 &&
                 pg_run(c, sql, 0, NULL);
            free(qs);
            free(qn);
            free(lit);
            free(sql);
        }
        if (!ok) {
            upgrade_fail(L->res, UPG_ST_FAILED, "database %s: building index %s.%s: %s", L->dbs[h->db], h->schema,
                         h->name, pg_errmsg(c));
            return false;
        }
        h->seconds = progress_now() - t0;
        log_info("upgrade: index build: %s.%s built in %.1f s", h->schema, h->name, h->seconds);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "database", L->dbs[h->db]);
        cJSON_AddStringToObject(o, "schema", h->schema);
        cJSON_AddStringToObject(o, "index", h->name);
        cJSON_AddStringToObject(o, "method", h->method);
        cJSON_AddNumberToObject(o, "seconds", (double) (int64_t) (h->seconds * 1000 + 0.5) / 1000);
        cJSON_AddItemToArray(arr, o);
        if (k == 0)
            upgrade_pause_at("index_build", L->res->new_where);
    }
    return true;
}

/* Every held-back index valid and ready on the new side. */
static bool indexes_valid(lrun *L)
{
    for (int k = 0; k < L->nidx; k++) {
        const char *p[] = {L->idx[k].schema, L->idx[k].name};
        int64_t n = 0;
        if (!pg_query_int64(L->newc[L->idx[k].db],
                            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND i.indisvalid AND "
                            "i.indisready",
                            2, p, &n) ||
            n != 1) {
            upgrade_fail(L->res, UPG_ST_FAILED, "database %s: index %s.%s is not valid on the target: no cutover",
                         L->dbs[L->idx[k].db], L->idx[k].schema, L->idx[k].name);
            return false;
        }
    }
    return true;
}

/* The materialized views the old side has populated, refreshed from the copied data (the schema
 * restore creates them WITH NO DATA, and replication does not carry them). */
static bool refresh_matviews(lrun *L, int i)
{
    pg_result *r = pg_exec(L->oldc[i],
                           "SELECT format('%I.%I', schemaname, matviewname) FROM pg_matviews WHERE ispopulated "
                           "ORDER BY 1",
                           0, NULL);
    bool ok = r != NULL;
    for (int k = 0; ok && k < pg_ntuples(r); k++) {
        char *sql = NULL;
        ok = asprintf(&sql, "REFRESH MATERIALIZED VIEW %s", pg_value(r, k, 0)) >= 0 && pg_run(L->newc[i], sql, 0, NULL);
        free(sql);
        if (ok)
            log_info("upgrade: database %s: materialized view %s refreshed on the target", L->dbs[i], pg_value(r, k, 0));
    }
    if (!ok)
        upgrade_fail(L->res, UPG_ST_FAILED, "database %s: refreshing the materialized views: %s", L->dbs[i],
                     r ? pg_errmsg(L->newc[i]) : pg_errmsg(L->oldc[i]));
    pg_clear(r);
    return ok;
}

static bool analyze(lrun *L)
{
    for (int i = 0; i < L->ndbs; i++)
        if (!refresh_matviews(L, i))
            return false;
    for (int i = 0; i < L->ndbs; i++)
        if (!upgrade_update_extensions(L->newc[i], L->dbs[i], L->res) || !pg_run(L->newc[i], "ANALYZE", 0, NULL)) {
            upgrade_fail(L->res, UPG_ST_FAILED, "database %s on the target: extensions or ANALYZE failed: %s",
                         L->dbs[i], pg_errmsg(L->newc[i]));
            return false;
        }
    return true;
}

/* ---- catch-up and cutover --------------------------------------------------------------------------- */

/* "{a,b}" of the replicated databases' slot names or names; "{}" when none. */
static char *names_array(lrun *L, bool slots)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < L->ndbs; i++)
        if (L->replicated[i])
            cJSON_AddItemToArray(a, cJSON_CreateString(slots ? L->slots[i] : L->dbs[i]));
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    if (s) {
        s[0] = '{';
        s[strlen(s) - 1] = '}';
    }
    return s;
}

/* The largest distance in bytes between the old side's WAL position and what a slot's subscriber
 * confirmed; -1 on error. */
static int64_t lag_bytes(lrun *L, pg_conn *src)
{
    char *slots = names_array(L, true);
    const char *p[] = {slots};
    int64_t lag = -1;
    if (!slots || !pg_query_int64(src,
                                  "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(confirmed_flush_lsn, "
                                  "'0/0'))), 0)::bigint FROM pg_replication_slots WHERE slot_name = ANY ($1::text[])",
                                  1, p, &lag))
        log_error("upgrade: reading the replication lag: %s", pg_errmsg(src));
    free(slots);
    return lag;
}

static bool catch_up(lrun *L, pg_conn *src)
{
    if (!lstate_phase(&L->st, "catch_up"))
        return false;
    double last = 0;
    for (;;) {
        int64_t lag = lag_bytes(L, src);
        if (lag < 0)
            return false;
        if (lag <= CUTOVER_LAG_BYTES)
            break;
        if (progress_now() - last >= 2) {
            log_info("upgrade: catch-up: the target is %lld kB behind the source", (long long) (lag / 1024));
            last = progress_now();
        }
        nap(0.2);
    }
    upgrade_pause_at("catch_up", L->res->new_where);
    return wait_ready(L) && indexes_valid(L);
}

/* Undoes the write block after a failed cutover: writes go on on the old side. */
static void unblock(lrun *L, pg_conn *src)
{
    for (int i = 0; i < L->st.ndbs; i++) {
        lstate_db *x = &L->st.dbs[i];
        if (!x->write_blocked)
            continue;
        char *q = pg_quote_ident(src, x->name), *sql = NULL;
        if (q && asprintf(&sql, "ALTER DATABASE %s RESET default_transaction_read_only", q) >= 0 &&
            pg_run(src, sql, 0, NULL)) {
            log_info("upgrade: cutover failed: database %s on the source is writable again", x->name);
            x->write_blocked = false;
        } else
            log_error("upgrade: could not unblock database %s on the source (%s): run with --abort", x->name,
                      pg_errmsg(src));
        free(q);
        free(sql);
    }
    lstate_save(&L->st);
}

/* ALTER DATABASE … SET default_transaction_read_only = on for every replicated database, then
 * its other client sessions ended (open transactions roll back); returns the sessions ended, -1
 * on error. */
static int block_writes(lrun *L, pg_conn *src, cJSON *undo)
{
    for (int i = 0; i < L->ndbs; i++) {
        if (!L->replicated[i])
            continue;
        L->st.dbs[i].write_blocked = true;
        if (!lstate_save(&L->st))
            return -1;
        char *q = pg_quote_ident(src, L->dbs[i]), *sql = NULL, *back = NULL;
        bool ok = q && asprintf(&sql, "ALTER DATABASE %s SET default_transaction_read_only = on", q) >= 0 &&
                  asprintf(&back, "ALTER DATABASE %s RESET default_transaction_read_only", q) >= 0 &&
                  pg_run(src, sql, 0, NULL);
        if (back)
            cJSON_AddItemToArray(undo, cJSON_CreateString(back));
        if (!ok)
            upgrade_fail(L->res, UPG_ST_FAILED, "blocking writes on database %s: %s", L->dbs[i], pg_errmsg(src));
        free(q);
        free(sql);
        free(back);
        if (!ok)
            return -1;
    }
    /* pgmemctl's own sessions stay: "{pid,pid,…}" */
    size_t cap = 32 + 12 * ((size_t) L->ndbs + 2);
    char *pids = malloc(cap);
    if (!pids)
        return -1;
    snprintf(pids, cap, "{%d,%d", pg_backend_pid(src), pg_backend_pid(upgrade_dump_conn(L->dump, false)));
    for (int i = 0; i < L->ndbs; i++)
        if (L->oldc[i])
            snprintf(pids + strlen(pids), cap - strlen(pids), ",%d", pg_backend_pid(L->oldc[i]));
    snprintf(pids + strlen(pids), cap - strlen(pids), "}");
    char *dbs = names_array(L, false);
    const char *p[] = {dbs, pids};
    static const char OTHERS[] = " FROM pg_stat_activity WHERE datname = ANY ($1::text[]) AND backend_type = "
                                 "'client backend' AND pid <> ALL ($2::int[])";
    char *kill_sql = NULL, *count_sql = NULL;
    int64_t ended = -1, left = 1;
    if (dbs && asprintf(&kill_sql, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))%s", OTHERS) >= 0 &&
        asprintf(&count_sql, "SELECT count(*)%s", OTHERS) >= 0 && pg_query_int64(src, kill_sql, 2, p, &ended)) {
        for (int k = 0; k < 200 && left > 0; k++) {
            if (!pg_query_int64(src, count_sql, 2, p, &left))
                break;
            if (left > 0) /* one that connected just before the block took effect */
                pg_query_int64(src, kill_sql, 2, p, &(int64_t){0});
            nap(0.05);
        }
    }
    if (ended < 0 || left > 0) {
        upgrade_fail(L->res, UPG_ST_FAILED, "ending the other sessions of the source's databases: %s",
                     left > 0 ? "some did not end within 10 s" : pg_errmsg(src));
        ended = -1;
    }
    free(dbs);
    free(pids);
    free(kill_sql);
    free(count_sql);
    return (int) ended;
}

/* Waits until every slot's subscriber confirmed the old side's WAL position taken now. */
static bool final_sync(lrun *L, pg_conn *src)
{
    bool found;
    char *lsn = pg_query_text(src, "SELECT pg_current_wal_lsn()::text", 0, NULL, &found);
    char *slots = names_array(L, true);
    const char *p[] = {lsn, slots};
    bool ok = lsn && slots;
    double t0 = progress_now();
    while (ok) {
        int64_t behind = 1;
        ok = pg_query_int64(src,
                            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = ANY ($2::text[]) AND "
                            "(confirmed_flush_lsn IS NULL OR confirmed_flush_lsn < $1::pg_lsn)",
                            2, p, &behind);
        if (ok && behind == 0)
            break;
        if (ok && progress_now() - t0 > FINAL_SYNC_TIMEOUT) {
            upgrade_fail(L->res, UPG_ST_FAILED, "the target did not apply the source's WAL position %s within %.0f s",
                         lsn, FINAL_SYNC_TIMEOUT);
            ok = false;
        }
        nap(0.02);
    }
    if (ok)
        log_info("upgrade: cutover: the target applied everything up to the source's WAL position %s", lsn);
    cJSON_AddStringToObject(details(L), "cutover_lsn", lsn ? lsn : "");
    free(lsn);
    free(slots);
    return ok;
}

/* setval on the new side for every sequence the old side has used. Returns the count, -1 on error. */
static int copy_sequences(lrun *L)
{
    int n = 0;
    for (int i = 0; i < L->ndbs; i++) {
        pg_result *r = pg_exec(L->oldc[i],
                               "SELECT format('%I.%I', schemaname, sequencename), last_value::text FROM pg_sequences "
                               "WHERE last_value IS NOT NULL ORDER BY 1",
                               0, NULL);
        if (!r) {
            upgrade_fail(L->res, UPG_ST_FAILED, "database %s: reading the sequences: %s", L->dbs[i],
                         pg_errmsg(L->oldc[i]));
            return -1;
        }
        for (int k = 0; k < pg_ntuples(r); k++) {
            const char *p[] = {pg_value(r, k, 0), pg_value(r, k, 1)};
            if (!pg_run(L->newc[i], "SELECT setval($1::regclass, $2::bigint, true)", 2, p)) {
                upgrade_fail(L->res, UPG_ST_FAILED, "database %s: setval(%s): %s", L->dbs[i], p[0],
                             pg_errmsg(L->newc[i]));
                pg_clear(r);
                return -1;
            }
            n++;
        }
        pg_clear(r);
    }
    return n;
}

static bool cutover(lrun *L, pg_conn *src)
{
    upgrade_result *res = L->res;
    cJSON *d = details(L);
    int64_t lag = lag_bytes(L, src);
    if (lag < 0 || !lstate_phase(&L->st, "cutover"))
        return false;
    cJSON_AddNumberToObject(d, "lag_at_cutover_bytes", (double) lag);
    cJSON *wb = cJSON_AddObjectToObject(d, "write_block");
    cJSON *undo = cJSON_AddArrayToObject(wb, "undo");
    res->downtime_from = strdup("the write block on the source (ALTER DATABASE … SET default_transaction_read_only = on, "
                                "its other sessions ended)");
    double down0 = progress_now(), t0 = down0;
    log_info("upgrade: cutover: blocking writes on the source (lag %lld kB)", (long long) (lag / 1024));
    int ended = block_writes(L, src, undo);
    if (ended < 0) {
        unblock(L, src);
        return false;
    }
    cJSON_AddNumberToObject(wb, "sessions_terminated", ended);
    upgrade_phase_end(res, "write_block", t0);
    upgrade_pause_at("cutover", res->new_where);
    t0 = progress_now();
    if (!final_sync(L, src)) {
        unblock(L, src);
        return false;
    }
    upgrade_phase_end(res, "final_sync", t0);
    cJSON_AddNumberToObject(d, "final_sync_seconds", (double) (int64_t) ((progress_now() - t0) * 1000 + 0.5) / 1000);
    t0 = progress_now();
    int nseq = copy_sequences(L);
    if (nseq < 0) {
        unblock(L, src);
        return false;
    }
    cJSON_AddNumberToObject(d, "sequences_copied", nseq);
    upgrade_phase_end(res, "sequences", t0);
    t0 = progress_now();
    for (int i = 0; i < L->ndbs; i++) {
        if (!L->replicated[i])
            continue;
        if (!pg_run(L->newc[i], "DROP SUBSCRIPTION " LOGICAL_SUBSCRIPTION, 0, NULL)) {
            upgrade_fail(res, UPG_ST_FAILED, "database %s: DROP SUBSCRIPTION on the target: %s", L->dbs[i],
                         pg_errmsg(L->newc[i]));
            unblock(L, src);
            return false;
        }
    }
    L->st.completed = true;
    lstate_phase(&L->st, "completed");
    res->downtime_seconds = progress_now() - down0;
    upgrade_phase_end(res, "drop_subscription", t0);
    log_info("upgrade: cutover: the target is ready for writes (%.1f s of downtime)", res->downtime_seconds);
    t0 = progress_now();
    cJSON *undone = cJSON_CreateArray();
    bool ok = logical_undo(L->o, &L->st, undone); /* completed: the old side's publications and slots */
    cJSON_AddItemToObject(d, "cleanup", undone);
    if (!ok)
        log_warn("upgrade: the source's publication or slots could not all be dropped: run with --abort to retry");
    upgrade_phase_end(res, "cleanup_source", t0);
    return true;
}

/* ---- proof ------------------------------------------------------------------------------------------ */

static bool prove(lrun *L)
{
    upgrade_result *res = L->res;
    proof_snapshot *snaps = calloc((size_t) L->ndbs + 1, sizeof *snaps);
    bool ok = snaps != NULL;
    double t0 = progress_now();
    /* the old side is blocked: its snapshot is what the new side received */
    for (int i = 0; ok && i < L->ndbs; i++)
        if (!proof_snapshot_take(L->oldc[i], L->dbs[i], L->o->sample_rows, &snaps[i])) {
            upgrade_fail(res, UPG_ST_FAILED, "database %s: the proof's snapshot of the source failed", L->dbs[i]);
            ok = false;
        }
    if (ok) {
        upgrade_pause_before_proof(res->new_where);
        ok = upgrade_prove(res, L->o->to, L->dbs, L->ndbs, snaps, L->o->sample_rows);
    }
    if (ok) {
        upgrade_phase_end(res, "proof", t0);
        if (proof_passed(&res->proof))
            res->status = UPG_ST_UPGRADED;
        else {
            proof_log_mismatches(&res->proof);
            upgrade_fail(res, UPG_ST_PROOF_FAILED, "replicated, but the proof found %d difference(s)",
                         res->proof.nmismatches);
        }
    }
    for (int i = 0; snaps && i < L->ndbs; i++)
        proof_snapshot_free(&snaps[i]);
    free(snaps);
    return ok;
}

/* ---- the run ---------------------------------------------------------------------------------------- */

static void make_plan(lrun *L)
{
    upgrade_result *res = L->res;
    upgrade_plan_add(res, "pg_dumpall --roles-only (PostgreSQL %s) from the source; create the roles on the target",
                     upgrade_dump_tools_version(L->dump));
    for (int i = 0; i < L->ndbs; i++)
        upgrade_plan_add(res, "database %s: pg_dump --schema-only, pg_restore %s without its HNSW, IVFFlat and GIN "
                              "indexes%s",
                         L->dbs[i], L->exists[i] ? "into the existing empty database" : "--create",
                         L->replicated[i] ? "; publication " LOGICAL_PUBLICATION " (source) and subscription "
                                            LOGICAL_SUBSCRIPTION " (target): the initial copy, then replication"
                                          : " (no tables: nothing to replicate)");
    upgrade_plan_add(res, "build the held-back indexes on the target while replication runs (maintenance_work_mem "
                          "%s, max_parallel_maintenance_workers %d); ALTER EXTENSION … UPDATE; ANALYZE",
                     L->mwm, L->workers);
    upgrade_plan_add(res, "wait until the target is less than %d MB behind, every table ready and every index valid",
                     CUTOVER_LAG_BYTES / (1024 * 1024));
    upgrade_plan_add(res, "cutover: ALTER DATABASE … SET default_transaction_read_only = on on the source and end "
                          "its other sessions (downtime starts); wait until the target applied the source's WAL "
                          "position; copy the sequences; drop the subscriptions (downtime ends), then the "
                          "publications and slots");
    upgrade_plan_add(res, "proof on the target: row counts, vector checksums, HNSW/IVFFlat indexes valid and used, "
                          "extversion, server version");
}

static void run_abort(lrun *L)
{
    upgrade_result *res = L->res;
    cJSON *undone = cJSON_AddArrayToObject(details(L), "undone");
    cJSON_AddStringToObject(details(L), "state_file", L->st.path);
    bool recorded = access(L->st.path, F_OK) == 0;
    if (!recorded)
        log_warn("upgrade: --abort: no state file %s: removing only the subscriptions, publications and slots "
                 "named " LOGICAL_SUBSCRIPTION "*",
                 L->st.path);
    else
        log_info("upgrade: --abort: undoing the run interrupted in phase %s", L->st.phase ? L->st.phase : "?");
    bool ok = logical_undo(L->o, &L->st, undone);
    if (L->st.completed) {
        upgrade_fail(res, UPG_ST_REFUSED, "the upgrade completed (the new side is in use): only the source's leftover "
                                          "publications and slots were removed");
        upgrade_rollback_add(res, "to go back to the old databases: ALTER DATABASE … RESET default_transaction_read_only "
                                  "on the source for each, and point clients at it");
        return;
    }
    if (!ok) {
        upgrade_fail(res, UPG_ST_FAILED, "the undo did not finish (see the errors): run --abort again");
        return;
    }
    lstate_remove(&L->st);
    res->status = UPG_ST_ABORTED;
    upgrade_rollback_add(res, "undone: the source is writable and holds no publication or slot of pgmemctl; the roles "
                              "copied to the target stay");
}

bool upgrade_run_logical(const upgrade_options *o, upgrade_result *res)
{
    /* the jobs: --jobs, or the CPU count (upgrade_tune_jobs), as for the other methods */
    bool tuned = upgrade_result_init(o, res);
    lrun L = {.o = o, .res = res, .workers = res->jobs > 1 ? res->jobs - 1 : 1};
    L.mwm = strdup(o->maintenance_work_mem ? o->maintenance_work_mem : DEFAULT_MAINTENANCE_WORK_MEM);
    double t_start = progress_now();
    pg_conn *src = NULL;
    if (!tuned || !L.mwm || !open_workdir(&L)) {
        upgrade_fail(res, UPG_ST_REFUSED, "no work directory, or its state file cannot be read");
        goto out;
    }
    if (o->abort_run) {
        run_abort(&L);
        goto out;
    }
    if (L.st.completed) {
        upgrade_fail(res, UPG_ST_REFUSED, "the state file %s says this upgrade completed: the target is in use (move "
                                          "the file away to upgrade again)", L.st.path);
        goto out;
    }
    if (L.st.ndbs > 0 || access(L.st.path, F_OK) == 0) {
        log_info("upgrade: a previous run was interrupted in phase %s: undoing it first", L.st.phase ? L.st.phase : "?");
        cJSON *undone = cJSON_AddArrayToObject(details(&L), "undone");
        if (!logical_undo(o, &L.st, undone)) {
            upgrade_fail(res, UPG_ST_FAILED, "the undo of the interrupted run did not finish: run with --abort");
            goto out;
        }
        char *path = strdup(L.st.path);
        lstate_remove(&L.st);
        lstate_free(&L.st);
        L.st = (lstate){.path = path, .from = pg_redact_conninfo(o->from), .to = pg_redact_conninfo(o->to)};
    }
    cJSON_AddStringToObject(details(&L), "state_file", L.st.path);
    L.dump = upgrade_dump_open(o, res);
    double t0 = progress_now();
    bool ok = L.dump && preflight(&L);
    upgrade_phase_end(res, "preflight", t0);
    upgrade_rollback_add(res, "the source changes only by the publication " LOGICAL_PUBLICATION ", the slots "
                              LOGICAL_SLOT_PREFIX "* and, from the cutover on, the write block: `pgmemctl upgrade "
                              "--method logical --abort` with the same --from, --to and --work-dir removes them and "
                              "what was created on the target");
    if (!ok || !upgrade_checks_passed(res)) {
        upgrade_fail(res, UPG_ST_REFUSED, "the preflight failed: nothing was changed (see the failed checks)");
        goto out;
    }
    make_plan(&L);
    if (o->dry_run) {
        res->status = UPG_ST_DRY_RUN;
        goto out;
    }
    cJSON_AddStringToObject(details(&L), "maintenance_work_mem", L.mwm);
    cJSON_AddNumberToObject(details(&L), "max_parallel_maintenance_workers", L.workers);
    src = pg_connect(o->from, "pgmemctl upgrade", 0);
    if (!src || !pg_run(src, "SET default_transaction_read_only = off", 0, NULL)) {
        upgrade_fail(res, UPG_ST_FAILED, "cannot connect to the source");
        goto out;
    }
    t0 = progress_now();
    if (!lstate_phase(&L.st, "roles") || !upgrade_dump_copy_roles(L.dump))
        goto out;
    upgrade_phase_end(res, "roles", t0);
    t0 = progress_now();
    if (!schema(&L))
        goto out;
    upgrade_phase_end(res, "schema", t0);
    t0 = progress_now();
    if (!initial_copy(&L))
        goto out;
    upgrade_phase_end(res, "initial_copy", t0);
    t0 = progress_now();
    if (!build_indexes(&L) || !indexes_valid(&L))
        goto out;
    upgrade_phase_end(res, "index_build", t0);
    t0 = progress_now();
    if (!analyze(&L))
        goto out;
    upgrade_phase_end(res, "analyze", t0);
    t0 = progress_now();
    if (!catch_up(&L, src))
        goto out;
    upgrade_phase_end(res, "catch_up", t0);
    if (!cutover(&L, src))
        goto out;
    for (int i = 0; i < L.ndbs; i++)
        if (L.replicated[i])
            upgrade_rollback_add(res, "the source's database %s stays write-blocked: to go back to it, ALTER DATABASE "
                                      "%s RESET default_transaction_read_only on the source and point clients at it "
                                      "(writes made on the target since the cutover are not there)",
                                 L.dbs[i], L.dbs[i]);
    prove(&L);
out:
    if (res->status == UPG_ST_FAILED && !res->error)
        upgrade_fail(res, UPG_ST_FAILED, "the logical method stopped (out of memory or an unreadable file)");
    if (res->status == UPG_ST_FAILED && !L.st.completed && access(L.st.path ? L.st.path : "", F_OK) == 0)
        upgrade_rollback_add(res, "the run stopped before the cutover finished: `pgmemctl upgrade --method logical "
                                  "--abort` (same --from, --to, --work-dir) undoes it, a rerun undoes it and starts "
                                  "again");
    res->total_seconds = progress_now() - t_start;
    for (int i = 0; i < L.ndbs; i++) {
        if (L.oldc)
            pg_close(L.oldc[i]);
        if (L.newc)
            pg_close(L.newc[i]);
        if (L.slots)
            free(L.slots[i]);
    }
    for (int k = 0; k < L.nidx; k++) {
        free(L.idx[k].schema);
        free(L.idx[k].name);
        free(L.idx[k].method);
        free(L.idx[k].def);
        free(L.idx[k].comment);
    }
    free(L.idx);
    free(L.oldc);
    free(L.newc);
    free(L.slots);
    free(L.replicated);
    free(L.mwm);
    cJSON_Delete(L.seen);
    pg_close(src);
    upgrade_dump_close(L.dump);
    lstate_free(&L.st);
    return true;
}

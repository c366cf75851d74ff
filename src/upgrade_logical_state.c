/* upgrade_logical_state.c — the logical method's state file in the work directory, and the
 * undo of an interrupted run (--abort, or the start of a rerun) from it and from the catalogs. */
#define _GNU_SOURCE
#include "log.h"
#include "pg.h"
#include "progress.h"
#include "proc.h"
#include "upgrade.h"
#include "upgrade_logical.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATE_FORMAT "pgmemctl-upgrade-logical/1"

/* ---- the file ---------------------------------------------------------------------------------- */

static char *dup_json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static bool json_bool(const cJSON *o, const char *name) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, name)); }

static int read_list(const cJSON *o, const char *name, char ***out)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    *out = calloc((size_t) n + 1, sizeof **out);
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (*out && cJSON_IsString(e))(*out)[k++] = strdup(e->valuestring);
    return k;
}

static void add_list(cJSON *o, const char *name, char **arr, int n)
{
    cJSON *a = cJSON_AddArrayToObject(o, name);
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(arr[i]));
}

bool lstate_load(const char *path, lstate *st, bool *exists)
{
    memset(st, 0, sizeof *st);
    st->path = strdup(path);
    *exists = access(path, F_OK) == 0;
    if (!*exists)
        return st->path != NULL;
    char *text = proc_read_file(path, NULL);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(doc, "format");
    if (!doc || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, STATE_FORMAT) != 0) {
        log_error("upgrade: %s is not a state file of the logical method (%s): move it away", path, STATE_FORMAT);
        cJSON_Delete(doc);
        return false;
    }
    st->from = dup_json_str(doc, "from");
    st->to = dup_json_str(doc, "to");
    st->phase = dup_json_str(doc, "phase");
    st->completed = json_bool(doc, "completed");
    const cJSON *dbs = cJSON_GetObjectItemCaseSensitive(doc, "databases"), *d;
    cJSON_ArrayForEach(d, dbs)
    {
        char *name = dup_json_str(d, "name");
        lstate_db *x = name ? lstate_add_db(st, name) : NULL;
        free(name);
        if (!x)
            continue;
        x->created_on_new = json_bool(d, "created_on_new");
        x->schema_started = json_bool(d, "schema_started");
        x->write_blocked = json_bool(d, "write_blocked");
        x->nschemas_before = read_list(d, "schemas_before", &x->schemas_before);
        x->nextensions_before = read_list(d, "extensions_before", &x->extensions_before);
        x->ntypes_before = read_list(d, "types_before", &x->types_before);
        const cJSON *oid = cJSON_GetObjectItemCaseSensitive(d, "subscription_oid");
        x->subscription_oid = cJSON_IsNumber(oid) ? (unsigned) oid->valuedouble : 0;
    }
    cJSON_Delete(doc);
    return true;
}

bool lstate_save(const lstate *st)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "format", STATE_FORMAT);
    cJSON_AddStringToObject(doc, "from", st->from ? st->from : "");
    cJSON_AddStringToObject(doc, "to", st->to ? st->to : "");
    cJSON_AddStringToObject(doc, "phase", st->phase ? st->phase : "");
    cJSON_AddBoolToObject(doc, "completed", st->completed);
    cJSON *dbs = cJSON_AddArrayToObject(doc, "databases");
    for (int i = 0; dbs && i < st->ndbs; i++) {
        const lstate_db *x = &st->dbs[i];
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", x->name);
        cJSON_AddBoolToObject(d, "created_on_new", x->created_on_new);
        cJSON_AddBoolToObject(d, "schema_started", x->schema_started);
        add_list(d, "schemas_before", x->schemas_before, x->nschemas_before);
        add_list(d, "extensions_before", x->extensions_before, x->nextensions_before);
        add_list(d, "types_before", x->types_before, x->ntypes_before);
        cJSON_AddNumberToObject(d, "subscription_oid", x->subscription_oid);
        cJSON_AddBoolToObject(d, "write_blocked", x->write_blocked);
        cJSON_AddItemToArray(dbs, d);
    }
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    char *tmp = NULL;
    if (!text || asprintf(&tmp, "%s.tmp", st->path) < 0) {
        free(text);
        log_error("upgrade: out of memory writing the state file");
        return false;
    }
    bool ok = false;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        size_t len = strlen(text);
        ok = write(fd, text, len) == (ssize_t) len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        ok = ok && rename(tmp, st->path) == 0;
    }
    if (!ok) {
        log_error("upgrade: could not write the state file %s: %s", st->path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(text);
    return ok;
}

bool lstate_phase(lstate *st, const char *phase)
{
    char *p = strdup(phase);
    if (!p)
        return false;
    free(st->phase);
    st->phase = p;
    return lstate_save(st);
}

lstate_db *lstate_add_db(lstate *st, const char *name)
{
    lstate_db *grown = realloc(st->dbs, (size_t) (st->ndbs + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    st->dbs = grown;
    lstate_db *x = &st->dbs[st->ndbs];
    memset(x, 0, sizeof *x);
    x->name = strdup(name);
    if (!x->name)
        return NULL;
    st->ndbs++;
    return x;
}

void lstate_remove(const lstate *st)
{
    if (st->path && unlink(st->path) != 0 && errno != ENOENT)
        log_warn("upgrade: could not remove %s: %s", st->path, strerror(errno));
}

static void free_list(char **a, int n)
{
    for (int i = 0; i < n; i++)
        free(a[i]);
    free(a);
}

void lstate_free(lstate *st)
{
    for (int i = 0; i < st->ndbs; i++) {
        lstate_db *x = &st->dbs[i];
        free(x->name);
        free_list(x->schemas_before, x->nschemas_before);
        free_list(x->extensions_before, x->nextensions_before);
        free_list(x->types_before, x->ntypes_before);
    }
    free(st->dbs);
    free(st->path);
    free(st->from);
    free(st->to);
    free(st->phase);
    memset(st, 0, sizeof *st);
}

/* ---- the undo ---------------------------------------------------------------------------------- */

static void done(cJSON *undone, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void done(cJSON *undone, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s)
        return;
    log_info("upgrade: %s", s);
    cJSON_AddItemToArray(undone, cJSON_CreateString(s));
    free(s);
}

/* The connection to database db of conninfo, able to write even in a blocked database. */
static pg_conn *connect_rw(const char *conninfo, const char *db)
{
    pg_conn *c = pg_connect_db(conninfo, db, "pgmemctl upgrade", 0);
    if (c && !pg_run(c, "SET default_transaction_read_only = off", 0, NULL)) {
        log_error("upgrade: %s: %s", db ? db : "maintenance database", pg_errmsg(c));
        pg_close(c);
        return NULL;
    }
    return c;
}

/* Drops the subscription pgmemctl_upgrade of database db on the new side. */
static bool drop_subscription(const char *to, const char *db, cJSON *undone)
{
    pg_conn *c = connect_rw(to, db);
    if (!c)
        return false;
    bool ok = pg_run(c, "DROP SUBSCRIPTION IF EXISTS " LOGICAL_SUBSCRIPTION, 0, NULL);
    if (ok)
        done(undone, "new side: database %s: subscription " LOGICAL_SUBSCRIPTION " dropped (and its slot on the "
                     "old side)", db);
    else {
        /* the old side cannot be reached to drop the slot: detach it, the old side's slots are dropped below */
        log_warn("upgrade: undo: database %s: DROP SUBSCRIPTION: %s; dropping it without its slot", db, pg_errmsg(c));
        ok = pg_run(c, "ALTER SUBSCRIPTION " LOGICAL_SUBSCRIPTION " DISABLE", 0, NULL) &&
             pg_run(c, "ALTER SUBSCRIPTION " LOGICAL_SUBSCRIPTION " SET (slot_name = NONE)", 0, NULL) &&
             pg_run(c, "DROP SUBSCRIPTION " LOGICAL_SUBSCRIPTION, 0, NULL);
        if (ok)
            done(undone, "new side: database %s: subscription " LOGICAL_SUBSCRIPTION " disabled and dropped", db);
        else
            log_error("upgrade: undo: database %s: dropping the subscription: %s", db, pg_errmsg(c));
    }
    pg_close(c);
    return ok;
}

static bool undo_subscriptions(const upgrade_options *o, cJSON *undone)
{
    pg_conn *n = pg_connect(o->to, "pgmemctl upgrade", 0);
    if (!n)
        return false;
    pg_result *r = pg_exec(n,
                           "SELECT d.datname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
                           "WHERE s.subname = '" LOGICAL_SUBSCRIPTION "' ORDER BY 1",
                           0, NULL);
    bool ok = r != NULL;
    if (!r)
        log_error("upgrade: undo: new side: listing subscriptions: %s", pg_errmsg(n));
    for (int i = 0; r && i < pg_ntuples(r); i++)
        ok = drop_subscription(o->to, pg_value(r, i, 0), undone) && ok;
    pg_clear(r);
    pg_close(n);
    return ok;
}

/* The old side: write blocks, publications, slots. */
static bool undo_old(const upgrade_options *o, const lstate *st, cJSON *undone)
{
    pg_conn *c = connect_rw(o->from, NULL);
    if (!c)
        return false;
    bool ok = true;
    for (int i = 0; !st->completed && i < st->ndbs; i++) {
        if (!st->dbs[i].write_blocked)
            continue;
        char *q = pg_quote_ident(c, st->dbs[i].name), *sql = NULL;
        if (q && asprintf(&sql, "ALTER DATABASE %s RESET default_transaction_read_only", q) >= 0 &&
            pg_run(c, sql, 0, NULL))
            done(undone, "old side: database %s writable again (%s)", st->dbs[i].name, sql);
        else {
            log_error("upgrade: undo: old side: database %s: %s", st->dbs[i].name, pg_errmsg(c));
            ok = false;
        }
        free(q);
        free(sql);
    }
    char **dbs = NULL;
    int n = upgrade_list_databases(c, &dbs);
    ok = n >= 0 && ok;
    for (int i = 0; i < n; i++) {
        pg_conn *d = connect_rw(o->from, dbs[i]);
        int64_t has = 0;
        if (!d || !pg_query_int64(d, "SELECT count(*) FROM pg_publication WHERE pubname = '" LOGICAL_PUBLICATION "'", 0,
                                  NULL, &has) ||
            (has && !pg_run(d, "DROP PUBLICATION IF EXISTS " LOGICAL_PUBLICATION, 0, NULL))) {
            log_error("upgrade: undo: old side: database %s: publication: %s", dbs[i], d ? pg_errmsg(d) : "no connection");
            ok = false;
        } else if (has)
            done(undone, "old side: database %s: publication " LOGICAL_PUBLICATION " dropped", dbs[i]);
        pg_close(d);
        free(dbs[i]);
    }
    free(dbs);
    /* slots: ours, and the tablesync slots of the subscriptions recorded (pg_<oid>_sync_<relid>_<sysid>) */
    char *subs = strdup("{");
    for (int i = 0; subs && i < st->ndbs; i++) {
        char *grown = NULL;
        if (st->dbs[i].subscription_oid &&
            asprintf(&grown, "%s%s%u", subs, subs[1] ? "," : "", st->dbs[i].subscription_oid) >= 0) {
            free(subs);
            subs = grown;
        }
    }
    char *arr = NULL;
    if (!subs || asprintf(&arr, "%s}", subs) < 0)
        arr = NULL;
    free(subs);
    const char *p[] = {arr};
    static const char SLOTS[] = "SELECT slot_name, active_pid FROM pg_replication_slots "
                                "WHERE slot_name LIKE '" LOGICAL_SLOT_PREFIX "%' OR slot_name ~ ('^pg_(' || "
                                "array_to_string($1::oid[], '|') || ')_sync_') ORDER BY 1";
    for (int attempt = 0; arr && attempt < 50; attempt++) {
        pg_result *r = pg_exec(c, SLOTS, 1, p);
        if (!r) {
            log_error("upgrade: undo: old side: listing slots: %s", pg_errmsg(c));
            ok = false;
            break;
        }
        int left = pg_ntuples(r);
        for (int i = 0; i < pg_ntuples(r); i++) {
            const char *slot[] = {pg_value(r, i, 0)};
            if (!pg_isnull(r, i, 1)) { /* a walsender still uses it: end it, try again */
                const char *pid[] = {pg_value(r, i, 1)};
                pg_run(c, "SELECT pg_terminate_backend($1::int)", 1, pid);
                continue;
            }
            if (pg_run(c, "SELECT pg_drop_replication_slot($1)", 1, slot)) {
                done(undone, "old side: replication slot %s dropped", slot[0]);
                left--;
            }
        }
        pg_clear(r);
        if (left == 0)
            break;
        if (attempt == 49) {
            log_error("upgrade: undo: old side: %d replication slot(s) could not be dropped: %s", left, pg_errmsg(c));
            ok = false;
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(arr);
    pg_close(c);
    return ok && arr;
}

/* Statements dropping what is in database c that was not there before (x's lists). */
static const char LEFTOVERS_SQL[] =
    "WITH ext AS (SELECT objid FROM pg_depend WHERE deptype = 'e'), "
    "sys AS (SELECT oid FROM pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema') "
    "        OR nspname LIKE 'pg\\_toast%' OR nspname LIKE 'pg\\_temp\\_%') "
    "SELECT format('DROP %s IF EXISTS %I.%I CASCADE', CASE c.relkind WHEN 'v' THEN 'VIEW' "
    "  WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, "
    "  n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.oid NOT IN (SELECT oid FROM sys) "
    "   AND n.nspname = ANY ($1::text[]) AND c.oid NOT IN (SELECT objid FROM ext) "
    "UNION ALL SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure) FROM pg_proc p "
    " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY ($1::text[]) "
    "   AND n.oid NOT IN (SELECT oid FROM sys) AND p.oid NOT IN (SELECT objid FROM ext) "
    "UNION ALL SELECT format('DROP TYPE IF EXISTS %s CASCADE', t.oid::regtype) FROM pg_type t "
    " JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = ANY ($1::text[]) "
    "   AND n.oid NOT IN (SELECT oid FROM sys) AND t.oid NOT IN (SELECT objid FROM ext) "
    "   AND t.typtype IN ('c', 'd', 'e', 'r') AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class "
    "       WHERE oid = t.typrelid) = 'c') AND format_type(t.oid, NULL) <> ALL ($3::text[]) "
    "UNION ALL SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', n.nspname) FROM pg_namespace n "
    " WHERE n.oid NOT IN (SELECT oid FROM sys) AND n.nspname <> ALL ($1::text[]) "
    "UNION ALL SELECT format('DROP EXTENSION IF EXISTS %I CASCADE', e.extname) FROM pg_extension e "
    " WHERE e.extname <> ALL ($2::text[])";

/* "{a,b}" as a text[] literal of arr (every element double-quoted). */
static char *text_array(char **arr, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(arr[i]));
    char *json = a ? cJSON_PrintUnformatted(a) : NULL; /* ["a","b"]: the same quoting as an array literal's */
    cJSON_Delete(a);
    if (json) {
        json[0] = '{';
        json[strlen(json) - 1] = '}';
    }
    return json;
}

static bool undo_new_db(const upgrade_options *o, const lstate_db *x, pg_conn *maint, cJSON *undone)
{
    if (x->created_on_new) {
        char *q = pg_quote_ident(maint, x->name), *sql = NULL;
        bool ok = q && asprintf(&sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", q) >= 0 && pg_run(maint, sql, 0, NULL);
        if (ok)
            done(undone, "new side: database %s dropped (pgmemctl had created it)", x->name);
        else
            log_error("upgrade: undo: new side: dropping database %s: %s", x->name, pg_errmsg(maint));
        free(q);
        free(sql);
        return ok;
    }
    if (!x->schema_started)
        return true;
    pg_conn *c = connect_rw(o->to, x->name);
    if (!c)
        return false;
    char *s = text_array(x->schemas_before, x->nschemas_before), *e = text_array(x->extensions_before, x->nextensions_before),
         *t = text_array(x->types_before, x->ntypes_before);
    const char *p[] = {s, e, t};
    pg_result *r = s && e && t ? pg_exec(c, LEFTOVERS_SQL, 3, p) : NULL;
    bool ok = r != NULL;
    int dropped = 0;
    for (int i = 0; r && i < pg_ntuples(r); i++) {
        if (pg_run(c, pg_value(r, i, 0), 0, NULL))
            dropped++;
        else {
            log_error("upgrade: undo: new side: database %s: %s: %s", x->name, pg_value(r, i, 0), pg_errmsg(c));
            ok = false;
        }
    }
    if (!r)
        log_error("upgrade: undo: new side: database %s: %s", x->name, pg_errmsg(c));
    else
        done(undone, "new side: database %s (it existed before): %d object(s) of the interrupted schema copy dropped",
             x->name, dropped);
    pg_clear(r);
    free(s);
    free(e);
    free(t);
    pg_close(c);
    return ok;
}

bool logical_undo(const upgrade_options *o, const lstate *st, cJSON *undone)
{
    bool ok = true;
    if (!st->completed)
        ok = undo_subscriptions(o, undone);
    ok = undo_old(o, st, undone) && ok;
    if (st->completed)
        return ok;
    pg_conn *maint = pg_connect(o->to, "pgmemctl upgrade", 0);
    if (!maint)
        return false;
    for (int i = 0; i < st->ndbs; i++)
        ok = undo_new_db(o, &st->dbs[i], maint, undone) && ok;
    pg_close(maint);
    return ok;
}

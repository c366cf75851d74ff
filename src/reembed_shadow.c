/* reembed_shadow.c — shadow mode: the new vectors go into a copy of memories, which then takes
 * memories' place in one short transaction. The design of pg_repack and pg-osc, measured against
 * the alternatives in bench/README.md:
 *   setup    the copy pgmemctl_memories_next (LIKE memories, the new typmod, its primary key's
 *            index) and the trigger memories_reembed_log, which logs every id the application
 *            inserts, updates or deletes into pgmemctl_reembed_log (migration 0006);
 *   backfill keyset batches: embed, binary COPY into the staging table, INSERT … SELECT the
 *            rest of each row from memories (no UPDATE of memories at all, so no index of it is
 *            written);
 *   index    memories' other indexes built on the full copy (the HNSW one under
 *            maintenance_work_mem and the server's parallel maintenance workers), ANALYZE, the
 *            recall check;
 *   replay   the logged rows copied again (deleted, then copied with a new vector), and once a
 *            reconciliation of both tables' ids;
 *   swap     under ACCESS EXCLUSIVE (taken with a 200 ms lock_timeout, retried), the last
 *            logged rows, a row-count parity check, then renames, constraints, triggers,
 *            grants, policies and foreign keys (re-pointed NOT VALID), the registry; the old
 *            table is dropped in the same transaction;
 *   validate the re-pointed foreign keys validated (no lock that blocks writers).
 * Searches use memories and its old index until the swap commits, then the copy and its index. */
#include "reembed_int.h"
#include "log.h"
#include "reembed_index.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NEXT "pgmemctl_memories_next"
#define OLD "pgmemctl_memories_old"
#define LOG "pgmemctl_reembed_log"
#define LOG_TRIGGER "memories_reembed_log"
/* The HNSW index made for the copy when memories has none. */
#define NEXT_HNSW "pgmemctl_next_hnsw"
/* Log rows replayed per round, and at most under the swap's lock. */
#define REPLAY_ROUND 2000
#define REPLAY_UNDER_LOCK 500
#define SWAP_ATTEMPTS 60

/* memories' definition: columns (name, type, nullability, generation, default), indexes,
 * constraints, triggers (but the change log's), and the foreign keys that reference it. */
static const char FINGERPRINT_SQL[] =
    "SELECT md5(concat_ws('|',"
    " (SELECT string_agg(format('%s:%s:%s:%s:%s', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
    "   a.attgenerated, pg_get_expr(d.adbin, d.adrelid)), ',' ORDER BY a.attnum)"
    "  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    "  WHERE a.attrelid = 'memories'::regclass AND a.attnum > 0 AND NOT a.attisdropped),"
    " (SELECT string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY indexrelid) FROM pg_index"
    "  WHERE indrelid = 'memories'::regclass),"
    " (SELECT string_agg(conname || pg_get_constraintdef(oid), ',' ORDER BY conname) FROM pg_constraint"
    "  WHERE conrelid = 'memories'::regclass),"
    " (SELECT string_agg(pg_get_triggerdef(oid) || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger"
    "  WHERE tgrelid = 'memories'::regclass AND NOT tgisinternal AND tgname <> '" LOG_TRIGGER "'),"
    " (SELECT string_agg(conrelid::regclass::text || conname || pg_get_constraintdef(oid), ',' ORDER BY conname)"
    "  FROM pg_constraint WHERE confrelid = 'memories'::regclass AND contype = 'f')))";

/* What a copy of memories cannot carry over. */
static const char BLOCKERS_SQL[] =
    "SELECT concat_ws('; ',"
    " (SELECT 'views depend on memories (' || string_agg(DISTINCT v.oid::regclass::text, ', ') || ')'"
    "  FROM pg_depend d JOIN pg_rewrite rw ON rw.oid = d.objid JOIN pg_class v ON v.oid = rw.ev_class"
    "  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass"
    "  AND d.refobjid = 'memories'::regclass AND v.oid <> 'memories'::regclass HAVING count(*) > 0),"
    " (SELECT 'rules on memories (' || string_agg(rulename, ', ') || ')' FROM pg_rewrite"
    "  WHERE ev_class = 'memories'::regclass HAVING count(*) > 0),"
    " (SELECT 'memories is in publication ' || string_agg(p.pubname, ', ') FROM pg_publication_rel pr"
    "  JOIN pg_publication p ON p.oid = pr.prpubid WHERE pr.prrelid = 'memories'::regclass HAVING count(*) > 0),"
    " (SELECT 'memories is partitioned' FROM pg_class WHERE oid = 'memories'::regclass AND relkind = 'p'),"
    " (SELECT 'memories takes part in table inheritance' WHERE EXISTS (SELECT 1 FROM pg_inherits"
    "  WHERE inhrelid = 'memories'::regclass OR inhparent = 'memories'::regclass)),"
    " (SELECT 'identity columns (' || string_agg(attname, ', ') || ')' FROM pg_attribute"
    "  WHERE attrelid = 'memories'::regclass AND attidentity <> '' AND NOT attisdropped HAVING count(*) > 0),"
    " (SELECT 'exclusion constraints (' || string_agg(conname, ', ') || ')' FROM pg_constraint"
    "  WHERE conrelid = 'memories'::regclass AND contype = 'x' HAVING count(*) > 0),"
    " (SELECT format('memories belongs to %s: run as that role (the copy takes its place by renames)',"
    "   pg_get_userbyid(relowner)) FROM pg_class WHERE oid = 'memories'::regclass"
    "  AND NOT pg_has_role(current_user, relowner, 'USAGE')))";

/* The indexes of memories as statements that build them on the copy: the primary key's (and
 * every unique one's, needed while the copy is filled) first. $1: true = only those. */
static const char INDEXES_SQL[] =
    "SELECT format('CREATE %sINDEX IF NOT EXISTS %I ON " NEXT " USING %s', CASE WHEN i.indisunique THEN 'UNIQUE '"
    "  ELSE '' END, 'pgmemctl_next_' || c.oid, substr(pg_get_indexdef(c.oid), strpos(pg_get_indexdef(c.oid), ' USING ')"
    "  + 7)), c.relname, am.amname"
    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
    " WHERE i.indrelid = 'memories'::regclass AND i.indisunique = $1::bool"
    " ORDER BY NOT i.indisprimary, NOT i.indisunique, am.amname IN ('hnsw', 'ivfflat'), c.oid";

/* The statements of the swap, in order, made from the catalog before the first of them runs
 * (so every name in them is the one of the time before the renames; "memories" then means the
 * copy). */
static const char SWAP_SQL[] =
    "WITH rel AS (SELECT 'memories'::regclass AS oid),"
    " ix AS (SELECT c.oid, c.relname, con.conname, con.contype, con.condeferrable, con.condeferred, i.indisreplident"
    "  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    "  LEFT JOIN pg_constraint con ON con.conindid = c.oid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')"
    "  WHERE i.indrelid = (SELECT oid FROM rel))"
    " SELECT stmt FROM ("
    /* the foreign keys that reference memories go, to come back on the copy */
    "  SELECT 1 AS step, conname AS k, format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname) AS stmt"
    "  FROM pg_constraint WHERE confrelid = (SELECT oid FROM rel) AND conrelid <> confrelid AND contype = 'f'"
    /* owned sequences follow the copy (they would go with the old table) */
    "  UNION ALL SELECT 2, d.objid::regclass::text, format('ALTER SEQUENCE %s OWNED BY " NEXT ".%I',"
    "   d.objid::regclass, a.attname)"
    "  FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
    "  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
    "  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
    "  AND d.refobjid = (SELECT oid FROM rel) AND d.deptype = 'a'"
    "  UNION ALL SELECT 3, relname, format('ALTER INDEX %I RENAME TO %I', relname, 'pgmemctl_old_' || oid) FROM ix"
    "  UNION ALL SELECT 4, '', 'ALTER TABLE memories RENAME TO " OLD "'"
    "  UNION ALL SELECT 5, '', 'ALTER TABLE " NEXT " RENAME TO memories'"
    "  UNION ALL SELECT 6, relname, CASE WHEN conname IS NOT NULL THEN"
    "   format('ALTER TABLE memories ADD CONSTRAINT %I %s USING INDEX %I%s', conname,"
    "    CASE contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, 'pgmemctl_next_' || oid,"
    "    CASE WHEN condeferrable THEN ' DEFERRABLE INITIALLY ' || CASE WHEN condeferred THEN 'DEFERRED' ELSE 'IMMEDIATE' END"
    "    ELSE '' END)"
    "   ELSE format('ALTER INDEX %I RENAME TO %I', 'pgmemctl_next_' || oid, relname) END FROM ix"
    "  UNION ALL SELECT 7, '', 'ALTER INDEX " NEXT_HNSW " RENAME TO idx_memories_embedding_hnsw'"
    "  WHERE to_regclass('" NEXT_HNSW "') IS NOT NULL"
    "  UNION ALL SELECT 8, 'z', 'ALTER TABLE memories REPLICA IDENTITY ' || CASE c.relreplident WHEN 'f' THEN 'FULL'"
    "   WHEN 'n' THEN 'NOTHING' ELSE 'USING INDEX ' || quote_ident((SELECT relname FROM ix WHERE indisreplident)) END"
    "  FROM pg_class c WHERE c.oid = (SELECT oid FROM rel) AND c.relreplident <> 'd'"
    "  UNION ALL SELECT 9, tgname, pg_get_triggerdef(oid) FROM pg_trigger"
    "  WHERE tgrelid = (SELECT oid FROM rel) AND NOT tgisinternal AND tgname <> '" LOG_TRIGGER "'"
    "  UNION ALL SELECT 10, tgname, format('ALTER TABLE memories %s TRIGGER %I', CASE tgenabled WHEN 'D' THEN 'DISABLE'"
    "   WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END, tgname) FROM pg_trigger"
    "  WHERE tgrelid = (SELECT oid FROM rel) AND NOT tgisinternal AND tgenabled <> 'O'"
    /* foreign keys from memories, and to it, on the copy: NOT VALID now, validated after the commit */
    "  UNION ALL SELECT 11, conname, format('ALTER TABLE memories ADD CONSTRAINT %I %s NOT VALID', conname,"
    "   regexp_replace(pg_get_constraintdef(oid), ' NOT VALID$', ''))"
    "  FROM pg_constraint WHERE conrelid = (SELECT oid FROM rel) AND contype = 'f'"
    "  UNION ALL SELECT 12, conname, format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID', conrelid::regclass, conname,"
    "   regexp_replace(pg_get_constraintdef(oid), ' NOT VALID$', ''))"
    "  FROM pg_constraint WHERE confrelid = (SELECT oid FROM rel) AND conrelid <> confrelid AND contype = 'f'"
    /* ownership, privileges, row security, the comment */
    "  UNION ALL SELECT 13, '', format('ALTER TABLE memories OWNER TO %I', pg_get_userbyid(relowner)) FROM pg_class"
    "  WHERE oid = (SELECT oid FROM rel) AND relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    "  UNION ALL SELECT 14, a.privilege_type, format('GRANT %s ON memories TO %s%s', a.privilege_type,"
    "   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,"
    "   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)"
    "  FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = (SELECT oid FROM rel) AND a.grantee <> c.relowner"
    "  UNION ALL SELECT 15, at.attname, format('GRANT %s (%I) ON memories TO %s%s', a.privilege_type, at.attname,"
    "   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,"
    "   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)"
    "  FROM pg_attribute at, aclexplode(at.attacl) a WHERE at.attrelid = (SELECT oid FROM rel) AND at.attacl IS NOT NULL"
    "  UNION ALL SELECT 16, '', 'ALTER TABLE memories ENABLE ROW LEVEL SECURITY' FROM pg_class"
    "  WHERE oid = (SELECT oid FROM rel) AND relrowsecurity"
    "  UNION ALL SELECT 17, '', 'ALTER TABLE memories FORCE ROW LEVEL SECURITY' FROM pg_class"
    "  WHERE oid = (SELECT oid FROM rel) AND relforcerowsecurity"
    "  UNION ALL SELECT 18, polname, format('CREATE POLICY %I ON memories AS %s FOR %s TO %s%s%s', polname,"
    "   CASE WHEN polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,"
    "   CASE polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,"
    "   (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ')"
    "    FROM unnest(polroles) r),"
    "   ' USING (' || pg_get_expr(polqual, polrelid) || ')', ' WITH CHECK (' || pg_get_expr(polwithcheck, polrelid) || ')')"
    "  FROM pg_policy WHERE polrelid = (SELECT oid FROM rel)"
    "  UNION ALL SELECT 19, '', format('COMMENT ON TABLE memories IS %L', obj_description((SELECT oid FROM rel), 'pg_class'))"
    "  WHERE obj_description((SELECT oid FROM rel), 'pg_class') IS NOT NULL"
    /* the old table is dropped after the commit: unlinking its files at the commit would hold the
     * lock for a third of a second at 100,000 memories */
    "  UNION ALL SELECT 20, '', 'DROP TRIGGER " LOG_TRIGGER " ON " OLD "'"
    " ) s ORDER BY step, k";

/* ---- small helpers ----------------------------------------------------------------------- */

/* printf into a new string (free()); NULL when out of memory. */
__attribute__((format(printf, 1, 2))) static char *sqlf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t) n + 1) : NULL;
    if (s) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t) n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

static bool run_sql(rstate *s, const char *sql, const char *what)
{
    if (!pg_run(s->c, sql, 0, NULL)) {
        reembed_fail_sql(s, what);
        return false;
    }
    return true;
}

/* A one-value query into a new string (NULL value or no row = ""); NULL with res failed. */
static char *query_text(rstate *s, const char *sql, int n, const char *const *params, const char *what)
{
    bool found;
    char *v = pg_query_text(s->c, sql, n, params, &found);
    if (!found && pg_errmsg(s->c)[0]) {
        free(v);
        reembed_fail_sql(s, what);
        return NULL;
    }
    if (!v)
        v = calloc(1, 1);
    return v;
}

static bool set_phase(rstate *s, const char *phase)
{
    if (!pg_run(s->c, "UPDATE pgmemctl_reembed_state SET phase = $1, updated_at = now()", 1, (const char *[]){phase})) {
        reembed_fail_sql(s, "recording the phase");
        return false;
    }
    snprintf(s->state_phase, sizeof s->state_phase, "%s", phase);
    return true;
}

static bool relation_exists(rstate *s, const char *name, bool *exists)
{
    char *v = query_text(s, "SELECT to_regclass($1) IS NOT NULL", 1, (const char *[]){name}, "looking up a table");
    if (!v)
        return false;
    *exists = !strcmp(v, "t");
    free(v);
    return true;
}

/* What the shadow copy needs across the phases of one run. */
typedef struct {
    char *columns;       /* memories' stored columns but embedding, quoted, comma-separated */
    char *m_columns;     /* the same with "m." in front */
    char *insert_sql;    /* INSERT INTO the copy … SELECT from memories JOIN the staging table */
    char fingerprint[40];
} shadow;

static void shadow_free(shadow *sh)
{
    free(sh->columns);
    free(sh->m_columns);
    free(sh->insert_sql);
}

static bool read_columns(rstate *s, shadow *sh)
{
    pg_result *r = pg_exec(s->c,
                           "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),"
                           " string_agg('m.' || quote_ident(attname), ', ' ORDER BY attnum)"
                           " FROM pg_attribute WHERE attrelid = 'memories'::regclass AND attnum > 0"
                           " AND NOT attisdropped AND attgenerated = '' AND attname <> 'embedding'",
                           0, NULL);
    if (!r) {
        reembed_fail_sql(s, "reading the columns of memories");
        return false;
    }
    sh->columns = strdup(pg_value(r, 0, 0));
    sh->m_columns = strdup(pg_value(r, 0, 1));
    pg_clear(r);
    sh->insert_sql = sh->columns && sh->m_columns
                         ? sqlf("INSERT INTO " NEXT " (%s, embedding) SELECT %s, st.v FROM memories m JOIN " REEMBED_STAGE
                                " st ON m.id = st.id WHERE m.id = ANY (ARRAY(SELECT id FROM " REEMBED_STAGE "))",
                                sh->columns, sh->m_columns)
                         : NULL;
    if (!sh->insert_sql) {
        reembed_finish(s, REEMBED_FAILED, "out of memory");
        return false;
    }
    return true;
}

static bool fingerprint(rstate *s, char out[40])
{
    char *v = query_text(s, FINGERPRINT_SQL, 0, NULL, "reading the definition of memories");
    if (!v)
        return false;
    snprintf(out, 40, "%s", v);
    free(v);
    return true;
}

/* False (res failed, exit 1) when memories' definition is no longer the one the copy was made of. */
static bool same_definition(rstate *s, const shadow *sh)
{
    char now[40];
    if (!fingerprint(s, now))
        return false;
    if (strcmp(now, sh->fingerprint) != 0) {
        reembed_finish(s, REEMBED_FAILED,
                       "memories was altered while it was being re-embedded (its columns, indexes, constraints, triggers"
                       " or the foreign keys to it changed, e.g. by a migration): its copy " NEXT " does not have the"
                       " change, so it was not swapped in. memories is untouched and keeps serving. Run pgmemctl reembed"
                       " again to make the copy anew from the new definition, or `pgmemctl reembed --abort`");
        return false;
    }
    return true;
}

/* ---- preparing --------------------------------------------------------------------------- */

char *reembed_shadow_blockers(rstate *s)
{
    return query_text(s, BLOCKERS_SQL, 0, NULL, "checking memories for what a copy cannot carry over");
}

int64_t reembed_shadow_extra_bytes(rstate *s)
{
    int64_t total = -1;
    if (!pg_query_int64(s->c, "SELECT pg_total_relation_size('memories')", 0, NULL, &total))
        return -1;
    const reembed_plan *p = &s->res->plan;
    if (p->old_model.dimension > 0 && p->new_model.dimension > p->old_model.dimension)
        total = (int64_t) ((double) total * p->new_model.dimension / p->old_model.dimension);
    return total;
}

bool reembed_shadow_prepare(rstate *s)
{
    if (s->have_state && !strcmp(s->state_phase, "validate"))
        return true; /* swapped: only the steps after the swap are left */
    bool old_design;
    char *v = query_text(s,
                         "SELECT count(*) FROM pg_attribute WHERE attrelid = 'memories'::regclass AND attname = 'embedding_next'"
                         " AND NOT attisdropped",
                         0, NULL, "reading the columns of memories");
    if (!v)
        return false;
    old_design = strcmp(v, "0") != 0;
    free(v);
    if (old_design) {
        reembed_finish(s, REEMBED_REFUSED,
                       "memories.embedding_next is left from a shadow re-embed of an earlier pgmemctl version: undo it"
                       " with `pgmemctl reembed --abort`, then run this again");
        return false;
    }
    bool kept;
    if (!relation_exists(s, OLD, &kept))
        return false;
    if (kept) {
        reembed_finish(s, REEMBED_REFUSED,
                       OLD " (the old memories, kept by an earlier --keep-old) still exists: drop it first"
                           " (DROP TABLE " OLD ")");
        return false;
    }
    char *blockers = reembed_shadow_blockers(s);
    if (!blockers)
        return false;
    if (blockers[0]) {
        reembed_finish(s, REEMBED_REFUSED,
                       "shadow mode re-embeds into a copy of memories that then takes its place, and this copy could"
                       " not carry over: %s. Use --mode in-place (a maintenance window), or remove those first",
                       blockers);
        free(blockers);
        return false;
    }
    free(blockers);
    s->res->plan.extra_bytes = reembed_shadow_extra_bytes(s);
    /* resuming the copy: after the last row it holds */
    bool have_copy;
    if (!relation_exists(s, NEXT, &have_copy))
        return false;
    if (s->have_state && have_copy && !strcmp(s->state_phase, "backfill")) {
        v = query_text(s, "SELECT id::text FROM " NEXT " ORDER BY id DESC LIMIT 1", 0, NULL, "reading the copy's position");
        if (!v)
            return false;
        snprintf(s->keyset_start, sizeof s->keyset_start, "%s", v);
        free(v);
    }
    return true;
}

/* ---- setup and the copy ------------------------------------------------------------------ */

/* Drops the copy and the logged changes, and forgets the definition (a new copy is made). */
static bool drop_copy(rstate *s)
{
    return run_sql(s, "DROP TABLE IF EXISTS " NEXT, "dropping the copy of memories") &&
           run_sql(s, "DELETE FROM " LOG, "emptying the change log") &&
           run_sql(s, "UPDATE pgmemctl_reembed_state SET definition_md5 = NULL, phase = 'backfill', rows_done = 0",
                   "recording the restart");
}

/* The state row, the change log's trigger and the empty copy, in one transaction. */
static bool setup(rstate *s, shadow *sh)
{
    const reembed_plan *p = &s->res->plan;
    if (!pg_begin(s->c) || !run_sql(s, "SET LOCAL lock_timeout = '30s'", "setting lock_timeout") ||
        !reembed_insert_state(s, "shadow")) {
        pg_rollback(s->c);
        return false;
    }
    char *stored = query_text(s, "SELECT coalesce(definition_md5, '') FROM pgmemctl_reembed_state", 0, NULL,
                              "reading pgmemctl_reembed_state");
    bool ok = stored != NULL;
    bool have_copy = false;
    ok = ok && fingerprint(s, sh->fingerprint) && relation_exists(s, NEXT, &have_copy);
    if (ok && stored[0] && strcmp(stored, sh->fingerprint) != 0) {
        log_warn("reembed: memories was altered since its copy was started (e.g. by a migration): making the copy anew");
        ok = drop_copy(s);
        have_copy = false;
        s->keyset_start[0] = 0;
        snprintf(s->state_phase, sizeof s->state_phase, "backfill");
    }
    free(stored);
    if (ok && !have_copy) {
        char *reloptions = query_text(s,
                                      "SELECT coalesce(' WITH (' || array_to_string(reloptions, ', ') || ')', '') FROM pg_class"
                                      " WHERE oid = 'memories'::regclass",
                                      0, NULL, "reading the storage parameters of memories");
        char *create = reloptions ? sqlf("CREATE TABLE " NEXT " (LIKE memories INCLUDING DEFAULTS INCLUDING GENERATED"
                                         " INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING STATISTICS"
                                         " INCLUDING COMMENTS)%s",
                                         reloptions)
                                  : NULL;
        char *typmod = sqlf("ALTER TABLE " NEXT " ALTER COLUMN embedding TYPE vector(%d)", p->new_model.dimension);
        ok = create && typmod && run_sql(s, create, "creating the copy of memories") &&
             run_sql(s, typmod, "setting the copy's dimension");
        free(reloptions);
        free(create);
        free(typmod);
        /* column statistics targets, which LIKE does not copy */
        pg_result *r = ok ? pg_exec(s->c,
                                    "SELECT format('ALTER TABLE " NEXT " ALTER COLUMN %I SET STATISTICS %s', attname, attstattarget)"
                                    " FROM pg_attribute WHERE attrelid = 'memories'::regclass AND attnum > 0 AND NOT attisdropped"
                                    " AND coalesce(attstattarget, -1) >= 0",
                                    0, NULL)
                          : NULL;
        if (ok && !r) {
            reembed_fail_sql(s, "reading the statistics targets of memories");
            ok = false;
        }
        for (int i = 0; ok && r && i < pg_ntuples(r); i++)
            ok = run_sql(s, pg_value(r, i, 0), "setting a statistics target on the copy");
        pg_clear(r);
        /* the unique indexes (the primary key's) from the start: the copy is filled in key order */
        r = ok ? pg_exec(s->c, INDEXES_SQL, 1, (const char *[]){"true"}) : NULL;
        if (ok && !r) {
            reembed_fail_sql(s, "reading the indexes of memories");
            ok = false;
        }
        for (int i = 0; ok && r && i < pg_ntuples(r); i++)
            ok = run_sql(s, pg_value(r, i, 0), "creating a unique index on the copy");
        pg_clear(r);
    }
    ok = ok && run_sql(s, "DROP TRIGGER IF EXISTS " LOG_TRIGGER " ON memories", "replacing the change log's trigger") &&
         run_sql(s,
                 "CREATE TRIGGER " LOG_TRIGGER " AFTER INSERT OR UPDATE OR DELETE ON memories FOR EACH ROW"
                 " EXECUTE FUNCTION pgmemctl_reembed_log_change()",
                 "creating the change log's trigger") &&
         pg_run(s->c, "UPDATE pgmemctl_reembed_state SET definition_md5 = $1", 1, (const char *[]){sh->fingerprint});
    if (!ok || !pg_commit(s->c)) {
        if (s->res->outcome != REEMBED_FAILED)
            reembed_fail_sql(s, "setting up the copy of memories");
        pg_rollback(s->c);
        return false;
    }
    return read_columns(s, sh);
}

/* With the builtin embedder, on a copy started from the beginning: the recall check's query
 * vectors drawn now (the new vectors of --recall-sample random memories), and their exact
 * neighbours gathered on the embedding thread while the copy is filled — instead of one scan of
 * the whole copy per query afterwards (measured at 100,000 memories: 6 s of exact scans). NULL
 * when not applicable (the check then scans), or on any error (likewise). */
static recall_exact *sample_queries(rstate *s, const reembed_index_info *ix)
{
    if (strncmp(s->res->plan.new_model.name, "builtin:", 8) != 0 || s->keyset_start[0] || s->req->recall_sample < 1)
        return NULL;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", s->req->recall_sample);
    pg_result *r = pg_exec(s->c, "SELECT content FROM memories ORDER BY random() LIMIT $1::int", 1, (const char *[]){lim});
    if (!r)
        return NULL;
    int n = pg_ntuples(r), dim = embed_dimension(s->emb), nq = 0;
    float *vec = calloc(((size_t) n + 1) * (size_t) dim, sizeof *vec);
    recall_exact *ex = NULL;
    if (vec) {
        /* the builtin embedder's function itself: these texts are not counted as embedded */
        for (int i = 0; i < n; i++)
            if (pg_getlength(r, i, 0) > 0 &&
                embed_hash_text(pg_value(r, i, 0), (size_t) pg_getlength(r, i, 0), dim, vec + (size_t) nq * (size_t) dim))
                nq++;
        ex = recall_exact_new(vec, nq, dim, ix->op, 10);
    }
    free(vec);
    pg_clear(r);
    return ex;
}

static bool fill(rstate *s, const shadow *sh)
{
    s->select_sql = "SELECT id::text, content, md5(content) FROM memories WHERE id > $1::uuid"
                    " AND NOT (id = ANY ($3::uuid[])) ORDER BY memories.id LIMIT $2::int";
    s->apply_sql = sh->insert_sql;
    s->stage_rejected = true; /* a memory whose text is rejected is copied all the same, without a vector */
    s->single_pass = true;
    if (s->keyset_start[0])
        log_info("reembed: resuming the copy of memories after %s", s->keyset_start);
    bool ok = reembed_backfill(s);
    s->select_sql = s->apply_sql = NULL;
    return ok;
}

/* ---- the indexes ------------------------------------------------------------------------- */

static bool build_indexes(rstate *s, const reembed_index_info *ix)
{
    if (s->req->maintenance_work_mem &&
        !pg_run(s->c, "SELECT set_config('maintenance_work_mem', $1, false)", 1,
                (const char *[]){s->req->maintenance_work_mem})) {
        reembed_fail_sql(s, "setting maintenance_work_mem");
        return false;
    }
    pg_result *r = pg_exec(s->c, INDEXES_SQL, 1, (const char *[]){"false"});
    if (!r) {
        reembed_fail_sql(s, "reading the indexes of memories");
        return false;
    }
    bool ok = true, have_hnsw = false;
    for (int i = 0; ok && i < pg_ntuples(r); i++) {
        const char *name = pg_value(r, i, 1), *am = pg_value(r, i, 2);
        have_hnsw = have_hnsw || !strcmp(name, "idx_memories_embedding_hnsw");
        double t0 = progress_now();
        log_info("reembed: building %s on the copy (%s)", name, am);
        ok = pg_run(s->c, pg_value(r, i, 0), 0, NULL);
        if (!ok)
            reembed_fail_sql(s, "building an index on the copy of memories");
        else
            log_info("reembed: %s built on the copy in %.1f s", name, progress_now() - t0);
    }
    pg_clear(r);
    if (ok && !have_hnsw) {
        char err[512];
        ok = reembed_build_index(s->c, ix, NEXT, "embedding", NEXT_HNSW, false, NULL, err, sizeof err);
        if (!ok)
            reembed_finish(s, REEMBED_FAILED, "%s", err);
    }
    pg_run(s->c, "RESET maintenance_work_mem", 0, NULL);
    /* the statistics for the planner, and the visibility map for the swap's count */
    return ok && run_sql(s, "VACUUM (ANALYZE) " NEXT, "vacuuming the copy");
}

/* ---- replaying logged changes ------------------------------------------------------------ */

/* Logs every id that is in one table and not the other (what the trigger cannot see: a
 * TRUNCATE, or writes with triggers off). */
static bool reconcile(rstate *s)
{
    pg_result *r = pg_exec(s->c,
                           "INSERT INTO " LOG " (id) SELECT id FROM memories m WHERE NOT EXISTS (SELECT 1 FROM " NEXT
                           " n WHERE n.id = m.id) UNION ALL SELECT id FROM " NEXT " n WHERE NOT EXISTS"
                           " (SELECT 1 FROM memories m WHERE m.id = n.id)",
                           0, NULL);
    if (!r) {
        reembed_fail_sql(s, "comparing memories with its copy");
        return false;
    }
    if (pg_cmd_tuples(r) > 0)
        log_info("reembed: %lld memories differ between memories and its copy: copied again",
                 (long long) pg_cmd_tuples(r));
    pg_clear(r);
    return true;
}

/* Copies up to `limit` logged rows again: each is deleted from the copy and, if memories still
 * has it, copied with a new vector; their log rows go in the same transaction (or in the
 * caller's, when in_tx). Under the swap's lock an HTTP embedder is not called (no_embed): the
 * rows are copied without a vector and embedded right after the swap. *seen = log rows taken. */
static bool replay_round(rstate *s, const shadow *sh, int limit, bool in_tx, bool no_embed, int64_t *seen)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    *seen = 0;
    pg_result *lr = pg_exec(s->c,
                            "SELECT '{' || string_agg(seq::text, ',') || '}', '{' || string_agg(DISTINCT id::text, ',') || '}',"
                            " count(*) FROM (SELECT seq, id FROM " LOG " ORDER BY seq LIMIT $1::int) t",
                            1, (const char *[]){lim});
    if (!lr) {
        reembed_fail_sql(s, "reading the change log");
        return false;
    }
    *seen = atoll(pg_value(lr, 0, 2));
    if (*seen == 0) {
        pg_clear(lr);
        return true;
    }
    char *seqs = strdup(pg_value(lr, 0, 0)), *ids = strdup(pg_value(lr, 0, 1));
    pg_clear(lr);
    bool ok = seqs && ids;
    pg_result *rows = ok ? pg_exec(s->c, "SELECT id::text, content, md5(content) FROM memories WHERE id = ANY ($1::uuid[])",
                                   1, (const char *[]){ids})
                         : NULL;
    if (ok && !rows) {
        reembed_fail_sql(s, "reading changed memories");
        ok = false;
    }
    reembed_batch *b = ok ? reembed_batch_new(s, rows) : NULL;
    ok = ok && b;
    if (ok && b->n > 0) {
        if (no_embed)
            memset(b->status, 0xff, (size_t) b->n); /* staged with a NULL vector, not a reject */
        else
            ok = reembed_embed_now(s, b);
    }
    bool saved = s->stage_rejected;
    s->stage_rejected = true;
    ok = ok && (in_tx || pg_begin(s->c)) &&
         pg_run(s->c, "DELETE FROM " NEXT " WHERE id = ANY ($1::uuid[])", 1, (const char *[]){ids});
    int64_t staged = ok && b->n > 0 ? reembed_stage(s, b) : 0;
    ok = ok && staged >= 0 && (staged == 0 || pg_run(s->c, sh->insert_sql, 0, NULL)) &&
         pg_run(s->c, "DELETE FROM " LOG " WHERE seq = ANY ($1::bigint[])", 1, (const char *[]){seqs}) &&
         (in_tx || pg_commit(s->c));
    s->stage_rejected = saved;
    if (!ok) {
        if (s->res->outcome != REEMBED_FAILED)
            reembed_fail_sql(s, "copying changed memories again");
        if (!in_tx)
            pg_rollback(s->c);
    } else if (b) {
        int rejected = 0;
        for (int i = 0; i < b->n; i++)
            rejected += b->status[i] != EMBED_OK;
        s->res->rows_replayed += b->n;
        if (!no_embed)
            s->res->rows_updated += b->n - rejected;
    }
    reembed_batch_free(b);
    free(seqs);
    free(ids);
    return ok;
}

/* Replays until a round finds fewer logged rows than it could take. */
static bool replay(rstate *s, const shadow *sh)
{
    double t0 = progress_now();
    int64_t seen, before = s->res->rows_replayed;
    do {
        if (!replay_round(s, sh, REPLAY_ROUND, false, false, &seen))
            return false;
    } while (seen == REPLAY_ROUND);
    s->res->seconds_replay += progress_now() - t0;
    if (s->res->rows_replayed > before)
        log_info("reembed: %lld memories changed by the application meanwhile: copied again",
                 (long long) (s->res->rows_replayed - before));
    return true;
}

/* ---- the swap ---------------------------------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Fault injection for the tests of an interruption after the swap's commit: with
 * PGMEMCTL_REEMBED_PAUSE_AFTER_SWAP=FILE, the run creates FILE and waits (at most 600 s) until it
 * is removed. */
static void pause_after_swap(void)
{
    const char *file = getenv("PGMEMCTL_REEMBED_PAUSE_AFTER_SWAP");
    if (!file || !*file)
        return;
    FILE *f = fopen(file, "w");
    if (!f)
        return;
    fclose(f);
    log_info("reembed: paused after the swap until %s is removed (PGMEMCTL_REEMBED_PAUSE_AFTER_SWAP)", file);
    double t0 = progress_now();
    while (access(file, F_OK) == 0 && progress_now() - t0 < 600)
        sleep_ms(50);
}

/* Takes the locks of the swap: ACCESS EXCLUSIVE on memories, SHARE ROW EXCLUSIVE on the tables
 * whose foreign keys reference it. 1 taken, 0 busy (lock_timeout; rolled back), -1 error. */
static int lock_for_swap(rstate *s)
{
    if (!pg_begin(s->c) || !pg_run(s->c, "SET LOCAL lock_timeout = '200ms'", 0, NULL)) {
        reembed_fail_sql(s, "starting the swap");
        pg_rollback(s->c);
        return -1;
    }
    /* A waiting ACCESS EXCLUSIVE request queues every reader behind it: wait briefly, and try
     * again later rather than stall searches behind a long query. */
    bool ok = pg_run(s->c, "LOCK TABLE memories IN ACCESS EXCLUSIVE MODE", 0, NULL);
    char *referencing = NULL;
    if (ok) {
        bool found;
        referencing = pg_query_text(s->c,
                                    "SELECT string_agg(DISTINCT conrelid::regclass::text, ', ') FROM pg_constraint"
                                    " WHERE confrelid = 'memories'::regclass AND conrelid <> confrelid AND contype = 'f'",
                                    0, NULL, &found);
        ok = found || !pg_errmsg(s->c)[0];
    }
    if (ok && referencing && referencing[0]) {
        char *sql = sqlf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", referencing);
        ok = sql && pg_run(s->c, sql, 0, NULL);
        free(sql);
    }
    free(referencing);
    if (ok)
        return 1;
    if (!strcmp(pg_sqlstate(s->c), "55P03")) {
        pg_rollback(s->c);
        return 0;
    }
    reembed_fail_sql(s, "locking memories for the swap");
    pg_rollback(s->c);
    return -1;
}

static bool swap(rstate *s, const shadow *sh)
{
    bool reconciled = false;
    for (int attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
        if (!replay(s, sh))
            return false;
        if (!reconciled) {
            if (!reconcile(s) || !replay(s, sh))
                return false;
            reconciled = true;
        }
        double t0 = progress_now();
        int lk = lock_for_swap(s);
        if (lk < 0)
            return false;
        if (lk == 0) {
            log_info("reembed: memories is busy (lock_timeout 200 ms): trying the swap again");
            sleep_ms(200L + 100L * (attempt < 10 ? attempt : 10));
            continue;
        }
        double locked_at = progress_now();
        int64_t logged = -1;
        if (!same_definition(s, sh) ||
            !pg_query_int64(s->c, "SELECT count(*) FROM " LOG, 0, NULL, &logged)) {
            if (s->res->outcome != REEMBED_FAILED)
                reembed_fail_sql(s, "reading the change log");
            pg_rollback(s->c);
            return false;
        }
        if (logged > REPLAY_UNDER_LOCK) {
            pg_rollback(s->c);
            log_info("reembed: %lld memories changed during the last round: copying them before the swap", (long long) logged);
            continue;
        }
        int64_t seen;
        if (logged > 0 && !replay_round(s, sh, REPLAY_UNDER_LOCK, true, embed_is_http(s->emb), &seen)) {
            pg_rollback(s->c);
            return false;
        }
        char *parity = query_text(s,
                                  "SELECT (SELECT count(*) FROM memories) || ' ' || (SELECT count(*) FROM " NEXT ")", 0,
                                  NULL, "counting memories and its copy");
        if (!parity) {
            pg_rollback(s->c);
            return false;
        }
        long long n_old = 0, n_new = 0;
        sscanf(parity, "%lld %lld", &n_old, &n_new);
        free(parity);
        if (n_old != n_new) {
            pg_rollback(s->c);
            log_warn("reembed: memories has %lld rows and its copy %lld: comparing them again", n_old, n_new);
            reconciled = false;
            continue;
        }
        pg_result *st = pg_exec(s->c, SWAP_SQL, 0, NULL);
        bool ok = st != NULL;
        if (!ok)
            reembed_fail_sql(s, "reading what the swap carries over");
        log_debug("reembed: swap: locked, %lld logged rows replayed, parity %lld rows, %.3f s", (long long) logged,
                  n_old, progress_now() - locked_at);
        for (int i = 0; ok && i < pg_ntuples(st); i++) {
            double ts = progress_now();
            ok = pg_run(s->c, pg_value(st, i, 0), 0, NULL);
            log_debug("reembed: swap: %s (%.1f ms)", pg_value(st, i, 0), (progress_now() - ts) * 1000);
            if (!ok) {
                char err[512];
                reembed_finish(s, REEMBED_FAILED, "swapping the copy in (%s): %s; nothing was changed",
                               pg_value(st, i, 0), pg_error_text(s->c, err, sizeof err));
            }
        }
        pg_clear(st);
        ok = ok && reembed_register_model(s) && set_phase(s, "validate");
        if (!ok) {
            pg_rollback(s->c);
            return false;
        }
        double tc = progress_now();
        if (!pg_commit(s->c)) {
            reembed_fail_sql(s, "committing the swap");
            return false;
        }
        double end = progress_now();
        log_debug("reembed: swap: commit %.1f ms", (end - tc) * 1000);
        s->res->seconds_swap = end - t0;
        s->res->seconds_lock = end - locked_at;
        s->res->swap_attempts = attempt + 1;
        s->res->kept_old = s->req->keep_old;
        pause_after_swap();
        log_info("reembed: swapped in %.3f s (ACCESS EXCLUSIVE held %.3f s): memories now holds %s vectors%s",
                 s->res->seconds_swap, s->res->seconds_lock, s->res->plan.new_model.name,
                 s->req->keep_old ? " (the old table is kept as " OLD ")" : "");
        return true;
    }
    reembed_finish(s, REEMBED_FAILED,
                   "memories stayed busy or kept changing for %d attempts at the swap: run pgmemctl reembed again",
                   SWAP_ATTEMPTS);
    return false;
}

/* After the swap: the old table dropped (unless --keep-old), the re-pointed foreign keys
 * validated, rows copied without a vector under the lock embedded, the log emptied, the state
 * row deleted. Every step can be done again. */
static bool after_swap(rstate *s)
{
    if (!s->req->keep_old && !run_sql(s, "DROP TABLE IF EXISTS " OLD, "dropping the old memories table"))
        return false;
    pg_result *r = pg_exec(s->c,
                           "SELECT format('ALTER TABLE %s VALIDATE CONSTRAINT %I', conrelid::regclass, conname)"
                           " FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"
                           " AND (confrelid = 'memories'::regclass OR conrelid = 'memories'::regclass)",
                           0, NULL);
    if (!r) {
        reembed_fail_sql(s, "reading the foreign keys to validate");
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < pg_ntuples(r); i++)
        ok = run_sql(s, pg_value(r, i, 0), "validating a foreign key");
    pg_clear(r);
    if (!ok)
        return false;
    /* those copied under the lock without a vector (this run's rejected ones are left out) */
    int64_t missing = 0;
    char *rej = reembed_rejected_ids(s);
    bool counted = rej && pg_query_int64(s->c, "SELECT count(*) FROM memories WHERE embedding IS NULL"
                                               " AND NOT (id = ANY ($1::uuid[]))",
                                         1, (const char *[]){rej}, &missing);
    free(rej);
    if (!counted) {
        reembed_fail_sql(s, "counting memories without a vector");
        return false;
    }
    if (missing > 0) {
        s->res->plan.rows_to_embed = missing;
        s->done = 0;
        s->select_sql = "SELECT id::text, content, md5(content) FROM memories WHERE embedding IS NULL AND id > $1::uuid"
                        " AND NOT (id = ANY ($3::uuid[])) ORDER BY memories.id LIMIT $2::int";
        s->apply_sql = "UPDATE memories m SET embedding = st.v FROM " REEMBED_STAGE " st"
                       " WHERE m.id = st.id AND md5(m.content) = st.content_md5 AND m.embedding IS NULL"
                       " AND m.id = ANY (ARRAY(SELECT id FROM " REEMBED_STAGE "))";
        s->stage_rejected = false;
        s->single_pass = false;
        s->keyset_start[0] = 0;
        ok = reembed_backfill(s);
        s->select_sql = s->apply_sql = NULL;
        if (!ok)
            return false;
    }
    return run_sql(s, "DELETE FROM " LOG, "emptying the change log") &&
           run_sql(s, "DELETE FROM pgmemctl_reembed_state", "clearing pgmemctl_reembed_state");
}

/* ---- the run ----------------------------------------------------------------------------- */

void reembed_run_shadow(rstate *s)
{
    reembed_index_info ix;
    if (!reembed_index_params(s->c, &ix, s->res->message, sizeof s->res->message)) {
        s->res->outcome = REEMBED_REFUSED;
        return;
    }
    shadow sh = {0};
    recall_exact *exact = NULL;
    if (s->have_state && !strcmp(s->state_phase, "validate")) {
        log_info("reembed: the swap was done by an earlier run: validating the foreign keys");
        after_swap(s);
        return;
    }
    double t0;
    if (!setup(s, &sh) || !reembed_stage_table(s))
        goto out;
    if (!strcmp(s->state_phase, "backfill") || !s->state_phase[0]) {
        exact = sample_queries(s, &ix);
        s->exact = exact;
        bool filled = fill(s, &sh);
        s->exact = NULL;
        if (!filled || !same_definition(s, &sh))
            goto out;
        /* what changed during the copy is cheaper to copy again before the indexes exist */
        if (!replay(s, &sh) || !set_phase(s, "index"))
            goto out;
    }
    if (!strcmp(s->state_phase, "index")) {
        t0 = progress_now();
        if (!build_indexes(s, &ix))
            goto out;
        s->res->seconds_index = progress_now() - t0;
        s->res->index_built = true;
        if (!set_phase(s, "replay"))
            goto out;
    }
    double recall = -1;
    int queries = 0;
    if (exact ? !reembed_recall_known(s->c, &ix, NEXT, "embedding", exact, &recall, &queries, s->res->message,
                                      sizeof s->res->message)
              : !reembed_recall(s->c, &ix, NEXT, "embedding", s->req->recall_sample, &recall, &queries,
                                s->res->message, sizeof s->res->message)) {
        s->res->outcome = REEMBED_FAILED;
        goto out;
    }
    s->res->recall_at_10 = recall;
    s->res->recall_queries = queries;
    if (recall >= 0 && recall < s->req->min_recall) {
        reembed_finish(s, REEMBED_FAILED,
                       "recall@10 of the new index is %.3f on %d queries, below --min-recall %.2f: not swapped (memories"
                       " keeps serving with the old vectors); rebuild the copy's HNSW index with a larger ef_construction"
                       " or lower --min-recall, then run again (or `pgmemctl reembed --abort`)",
                       recall, queries, s->req->min_recall);
        goto out;
    }
    if (!same_definition(s, &sh) || !swap(s, &sh))
        goto out;
    after_swap(s);
out:
    recall_exact_free(exact);
    shadow_free(&sh);
}

bool reembed_shadow_abort(rstate *s)
{
    char *phase = query_text(s, "SELECT phase FROM pgmemctl_reembed_state", 0, NULL, "reading pgmemctl_reembed_state");
    if (!phase)
        return false;
    bool swapped = !strcmp(phase, "validate");
    free(phase);
    if (swapped) {
        reembed_finish(s, REEMBED_REFUSED,
                       "the interrupted shadow re-embed already swapped the new vectors in; only its checks are left:"
                       " run pgmemctl reembed again with the same --model to finish them");
        return false;
    }
    bool ok = pg_begin(s->c) && run_sql(s, "SET LOCAL lock_timeout = '30s'", "setting lock_timeout") &&
              run_sql(s, "DROP TRIGGER IF EXISTS " LOG_TRIGGER " ON memories", "dropping the change log's trigger") &&
              run_sql(s, "DROP TABLE IF EXISTS " NEXT, "dropping the copy of memories") &&
              run_sql(s, "DELETE FROM " LOG, "emptying the change log") &&
              /* an earlier pgmemctl's shadow column */
              run_sql(s, "DROP TRIGGER IF EXISTS memories_reembed_invalidate ON memories", "dropping the old trigger") &&
              run_sql(s, "DROP INDEX IF EXISTS " REEMBED_NEXT_INDEX, "dropping the old shadow index") &&
              run_sql(s, "ALTER TABLE memories DROP COLUMN IF EXISTS embedding_next", "dropping embedding_next") &&
              run_sql(s, "DELETE FROM pgmemctl_reembed_state WHERE mode = 'shadow'", "deleting the state row");
    if (!ok || !pg_commit(s->c)) {
        if (s->res->outcome != REEMBED_FAILED)
            reembed_fail_sql(s, "undoing the shadow re-embed");
        pg_rollback(s->c);
        return false;
    }
    return true;
}

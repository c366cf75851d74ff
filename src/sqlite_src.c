/* sqlite_src.c — read-only access to a SQLite source store. */
#include "sqlite_src.h"
#include "log.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sqlite_src_open(sqlite_src *s, const char *path_or_uri)
{
    memset(s, 0, sizeof *s);
    const char *path = strncmp(path_or_uri, "sqlite:", 7) == 0 ? path_or_uri + 7 : path_or_uri;
    if (strncmp(path, "//", 2) == 0) /* sqlite:///abs/path */
        path += 2;
    s->path = strdup(path);
    if (!s->path)
        return false;
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("%s: cannot open the source store: %m", path);
        return false;
    }
    char magic[16] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got < 16 || memcmp(magic, "SQLite format 3", 16) != 0) {
        log_error("%s: not a SQLite 3 database", path);
        return false;
    }
    /* A URI with mode=ro: SQLite never writes the file (no journal, no WAL checkpoint). */
    size_t ulen = strlen(path) * 3 + 32;
    char *uri = malloc(ulen);
    if (!uri)
        return false;
    char *o = uri + sprintf(uri, "file:");
    for (const char *p = path; *p; p++) { /* percent-encode what URIs treat specially */
        if (*p == '%' || *p == '?' || *p == '#' || *p == ' ')
            o += sprintf(o, "%%%02X", (unsigned char) *p);
        else
            *o++ = *p;
    }
    strcpy(o, "?mode=ro");
    int rc = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc != SQLITE_OK) {
        log_error("%s: cannot open read-only: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        return false;
    }
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_exec(s->db, "PRAGMA query_only = ON", NULL, NULL, NULL);
    return true;
}

void sqlite_src_close(sqlite_src *s)
{
    if (s->db)
        sqlite3_close(s->db);
    free(s->path);
    memset(s, 0, sizeof *s);
}

sqlite3_stmt *sqlite_src_prepare(sqlite_src *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        log_error("%s: %s (in: %.120s)", s->path, sqlite3_errmsg(s->db), sql);
        return NULL;
    }
    return st;
}

bool sqlite_src_has_table(sqlite_src *s, const char *table)
{
    sqlite3_stmt *st = sqlite_src_prepare(s, "SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND name = ?1");
    if (!st)
        return false;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

void sqlite_src_free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Collects column 0 (text) of every row of a statement. */
static int collect(sqlite_src *s, sqlite3_stmt *st, int col, char ***names)
{
    char **out = NULL;
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char **nn = realloc(out, (size_t) (n + 1) * sizeof *nn);
        const unsigned char *t = sqlite3_column_text(st, col);
        if (!nn || !(nn[n] = strdup(t ? (const char *) t : ""))) {
            sqlite_src_free_names(nn ? nn : out, n);
            sqlite3_finalize(st);
            return -1;
        }
        out = nn;
        n++;
    }
    if (rc != SQLITE_DONE) {
        log_error("%s: %s", s->path, sqlite3_errmsg(s->db));
        sqlite_src_free_names(out, n);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    *names = out;
    return n;
}

int sqlite_src_columns(sqlite_src *s, const char *table, char ***names)
{
    sqlite3_stmt *st = sqlite_src_prepare(s, "SELECT name FROM pragma_table_info(?1) ORDER BY cid");
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    return collect(s, st, 0, names);
}

int sqlite_src_tables(sqlite_src *s, char ***names)
{
    sqlite3_stmt *st = sqlite_src_prepare(s, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    return st ? collect(s, st, 0, names) : -1;
}

int64_t sqlite_src_count(sqlite_src *s, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", table); /* table names are ours, not input */
    sqlite3_stmt *st = sqlite_src_prepare(s, sql);
    if (!st)
        return -1;
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        log_error("%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return n;
}

bool sqlite_src_identity(sqlite_src *s, char out[65])
{
    sqlite3_stmt *st = sqlite_src_prepare(s, "SELECT id FROM knowledge_nodes ORDER BY rowid LIMIT 1");
    if (!st)
        return false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, "vestige\n", 8);
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        const void *id = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        ok = (len == 0 || EVP_DigestUpdate(ctx, id, (size_t) len)) && EVP_DigestUpdate(ctx, "\n", 1);
    }
    sqlite3_finalize(st);
    unsigned char md[32];
    unsigned int mdlen = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        log_error("%s: could not compute the store's identity", s->path);
        return false;
    }
    for (unsigned int i = 0; i < mdlen; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = '\0';
    return true;
}

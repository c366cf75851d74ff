/* pgmemctl-sample.c — builds a sample vestige memory store (SQLite, vestige schema V1-V4) from
 * Debian package descriptions on stdin (`apt-cache dumpavail`), optionally completed with the long
 * descriptions of a Translation-en index (--translations), with builtin-hash embeddings. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "embed.h"
#include "sample_rng.h"
#include "vestige_schema.h"

#define PROG "pgmemctl-sample"
#define SAMPLE_DEFAULT_N 10000
#define SAMPLE_MAX_N 10000000L
#define SAMPLE_DEFAULT_DIM 768
#define SAMPLE_MAX_DIM 16000
#define SAMPLE_DEFAULT_SEED 1

/* Timestamps are spread over the two years before this fixed instant (not the wall clock), so
 * that a seed always gives the same file: 2025-06-01T00:00:00Z, in microseconds. */
#define SAMPLE_REF_US (1748736000LL * 1000000LL)
#define SAMPLE_DAY_US (86400LL * 1000000LL)
#define SAMPLE_SPAN_US (730LL * SAMPLE_DAY_US)
#define SAMPLE_SCHEMA_APPLIED "2025-06-01 00:00:00" /* schema_version.applied_at, datetime() form */

/* ---- small utilities -------------------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static void sample_err(const char *fmt, ...)
{
    fputs(PROG ": ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Growable byte buffer, always NUL-terminated once anything was added. */
typedef struct {
    char *p;
    size_t len, cap;
} sample_buf;

static bool sample_buf_add(sample_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            sample_err("out of memory");
            return false;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

static bool sample_buf_str(sample_buf *b, const char *s)
{
    return sample_buf_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static bool sample_buf_addf(sample_buf *b, const char *fmt,
                                                                  ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        sample_err("internal error: formatted text too long");
        return false;
    }
    return sample_buf_add(b, tmp, (size_t)n);
}

static char *sample_strdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        sample_err("out of memory");
    return d;
}

/* RFC 3339 UTC with microseconds, as chrono's to_rfc3339 writes it in vestige:
 * "2025-03-14T09:26:53.589793+00:00". us = microseconds since the Unix epoch. */
static void sample_ts(int64_t us, char out[40])
{
    time_t secs = (time_t)(us / 1000000);
    int micros = (int)(us % 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06d+00:00", micros);
}

static double sample_round(double v, double scale)
{
    return round(v * scale) / scale;
}

static double sample_clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- reading apt-cache dumpavail and Translation-en ---------------------------------------
 * Both are RFC 822 stanzas: dumpavail has Package, Section, Description (the synopsis only, on
 * Debian) and Description-md5; a Translation-en index (dists/SUITE/COMPONENT/i18n/Translation-en)
 * has Package, Description-md5 and Description-en with the long description. */

typedef struct {
    char *name;
    char *section;  /* the part after the last '/', e.g. "games" for "contrib/games" */
    char *synopsis; /* first line of Description */
    char *longdesc; /* continuation lines, " ." turned into empty lines; "" if none */
    char *md5;      /* Description-md5, "" if none */
    size_t order;   /* position in the input, to keep the first of duplicate names */
} sample_pkg;

typedef struct {
    sample_pkg *v;
    size_t n, cap;
} sample_corpus;

typedef struct {
    char *name, *section, *synopsis, *md5;
    sample_buf longdesc;
    bool in_desc;  /* continuation lines belong to the description being read */
    bool desc_en;  /* the description came from Description-en (preferred) */
    size_t stanzas;
} sample_stanza;

static void sample_pkg_free(sample_pkg *p)
{
    free(p->name);
    free(p->section);
    free(p->synopsis);
    free(p->longdesc);
    free(p->md5);
}

static void sample_corpus_free(sample_corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        sample_pkg_free(&c->v[i]);
    free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
}

static void sample_stanza_reset(sample_stanza *st)
{
    free(st->name);
    free(st->section);
    free(st->synopsis);
    free(st->md5);
    st->name = st->section = st->synopsis = st->md5 = NULL;
    st->longdesc.len = 0;
    if (st->longdesc.p)
        st->longdesc.p[0] = '\0';
    st->in_desc = st->desc_en = false;
}

/* Ends a stanza: keeps it if it has a name and a synopsis. */
static bool sample_stanza_end(sample_stanza *st, sample_corpus *c)
{
    bool ok = true;
    if (st->name && st->synopsis && st->synopsis[0]) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 1024;
            sample_pkg *v = realloc(c->v, cap * sizeof *v);
            if (v == NULL) {
                sample_err("out of memory");
                sample_stanza_reset(st);
                return false;
            }
            c->v = v;
            c->cap = cap;
        }
        const char *sec = st->section ? st->section : "misc";
        const char *slash = strrchr(sec, '/');
        sample_pkg p = {
            .name = st->name,
            .section = sample_strdup(slash ? slash + 1 : sec),
            .synopsis = st->synopsis,
            .longdesc = sample_strdup(st->longdesc.p ? st->longdesc.p : ""),
            .md5 = st->md5 ? st->md5 : sample_strdup(""),
            .order = st->stanzas,
        };
        st->name = st->synopsis = st->md5 = NULL; /* moved into p */
        if (p.section == NULL || p.longdesc == NULL || p.md5 == NULL) {
            sample_pkg_free(&p);
            ok = false;
        } else {
            c->v[c->n++] = p;
        }
    }
    st->stanzas++;
    sample_stanza_reset(st);
    return ok;
}

static char *sample_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Reads RFC 822 stanzas (Debian Packages or Translation-en format) from in, named what in
 * messages. Takes Package, Section, Description-md5 and Description (or Description-en, as
 * `apt-cache show` and Translation-en have it) with continuation lines. */
static bool sample_read_packages(FILE *in, const char *what, sample_corpus *c)
{
    sample_stanza st = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    bool ok = true;

    while (ok && (got = getline(&line, &cap, in)) >= 0) {
        size_t n = (size_t)got;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (strspn(line, " \t") == n) { /* blank line: end of stanza */
            ok = sample_stanza_end(&st, c);
            continue;
        }
        if (line[0] == ' ' || line[0] == '\t') { /* continuation line */
            if (!st.in_desc)
                continue;
            char *text = line + 1;
            size_t tn = strlen(text);
            while (tn > 0 && (text[tn - 1] == ' ' || text[tn - 1] == '\t'))
                text[--tn] = '\0';
            if (strcmp(text, ".") == 0)
                tn = 0; /* paragraph break */
            ok = (st.longdesc.len == 0 || sample_buf_add(&st.longdesc, "\n", 1)) &&
                 sample_buf_add(&st.longdesc, text, tn);
            continue;
        }
        st.in_desc = false;
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        char *value = sample_trim(colon + 1);
        char **slot = NULL;
        if (strcasecmp(line, "Package") == 0) {
            slot = &st.name;
        } else if (strcasecmp(line, "Section") == 0) {
            slot = &st.section;
        } else if (strcasecmp(line, "Description-md5") == 0) {
            slot = &st.md5;
        } else if (strcasecmp(line, "Description") == 0 ||
                   strcasecmp(line, "Description-en") == 0) {
            bool en = strcasecmp(line, "Description-en") == 0;
            if (st.synopsis && st.desc_en && !en)
                continue; /* keep the Description-en already read */
            slot = &st.synopsis;
            st.in_desc = true;
            st.desc_en = en;
            st.longdesc.len = 0;
            if (st.longdesc.p)
                st.longdesc.p[0] = '\0';
        }
        if (slot) {
            free(*slot);
            *slot = sample_strdup(value);
            if (*slot == NULL)
                ok = false;
        }
    }
    if (ok && ferror(in)) {
        sample_err("reading %s: %s", what, strerror(errno));
        ok = false;
    }
    if (ok)
        ok = sample_stanza_end(&st, c);
    sample_stanza_reset(&st);
    free(st.longdesc.p);
    free(line);
    return ok;
}

static int sample_pkg_cmp(const void *a, const void *b)
{
    const sample_pkg *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

/* Sorts by name and keeps the first record (in input order) of each name. */
static void sample_dedupe(sample_corpus *c)
{
    if (c->n == 0)
        return;
    qsort(c->v, c->n, sizeof *c->v, sample_pkg_cmp);
    size_t w = 1;
    for (size_t i = 1; i < c->n; i++) {
        if (strcmp(c->v[i].name, c->v[w - 1].name) == 0)
            sample_pkg_free(&c->v[i]);
        else
            c->v[w++] = c->v[i];
    }
    c->n = w;
}

/* What sample_merge_translations did. */
typedef struct {
    size_t by_md5;  /* long description taken from the translation with the same Description-md5 */
    size_t by_name; /* from a translation of the same package name but another Description-md5 */
    size_t had;     /* the package record already had a long description; left alone */
} sample_merge_counts;

/* Completes the packages of c (deduplicated, sorted by name) with the descriptions in tr (any
 * order; sorted here by name, then input order). A package that has no long description of its
 * own takes synopsis and long description from the translation with its Description-md5, or
 * failing that from the first (in input order) translation of its name that has a long
 * description; packages without a translation keep their synopsis. Packages only in tr are not
 * added. Strings are moved from tr into c; tr is left to sample_corpus_free. */
static void sample_merge_translations(sample_corpus *c, sample_corpus *tr, sample_merge_counts *mc)
{
    *mc = (sample_merge_counts){0};
    if (tr->n == 0)
        return;
    qsort(tr->v, tr->n, sizeof *tr->v, sample_pkg_cmp);
    size_t t = 0;
    for (size_t i = 0; i < c->n; i++) { /* both sorted by name: one merge pass */
        sample_pkg *p = &c->v[i];
        while (t < tr->n && strcmp(tr->v[t].name, p->name) < 0)
            t++;
        size_t end = t;
        while (end < tr->n && strcmp(tr->v[end].name, p->name) == 0)
            end++;
        if (p->longdesc[0]) {
            mc->had += end > t;
            continue;
        }
        sample_pkg *pick = NULL;
        for (size_t j = t; j < end && p->md5[0] && pick == NULL; j++)
            if (strcmp(tr->v[j].md5, p->md5) == 0 && tr->v[j].longdesc[0])
                pick = &tr->v[j];
        if (pick != NULL) {
            mc->by_md5++;
        } else {
            for (size_t j = t; j < end && pick == NULL; j++)
                if (tr->v[j].longdesc[0])
                    pick = &tr->v[j];
            if (pick == NULL)
                continue;
            mc->by_name++;
        }
        char *syn = pick->synopsis, *desc = pick->longdesc;
        pick->synopsis = p->synopsis; /* swapped, so tr still owns something to free */
        pick->longdesc = p->longdesc;
        p->synopsis = syn;
        p->longdesc = desc;
    }
}

/* ---- per-memory attributes ------------------------------------------------------------- */

static const char *const sample_node_types[] = {"fact",       "concept",    "event",
                                                "procedure",  "preference", "decision"};

/* node_type by Debian section, with 20% chosen at random so every type appears. */
static const char *sample_node_type(const char *section, sample_rng *r)
{
    if (sample_rng_unit(r) < 0.2)
        return sample_node_types[sample_rng_below(r, 6)];
    static const struct {
        const char *section, *type;
    } map[] = {
        {"doc", "procedure"},       {"admin", "procedure"},      {"utils", "procedure"},
        {"shells", "procedure"},    {"libs", "concept"},         {"libdevel", "concept"},
        {"devel", "concept"},       {"python", "concept"},       {"perl", "concept"},
        {"rust", "concept"},        {"golang", "concept"},       {"haskell", "concept"},
        {"javascript", "concept"},  {"java", "concept"},         {"ruby", "concept"},
        {"ocaml", "concept"},       {"lisp", "concept"},         {"php", "concept"},
        {"games", "preference"},    {"sound", "preference"},     {"video", "preference"},
        {"graphics", "preference"}, {"fonts", "preference"},     {"net", "event"},
        {"mail", "event"},          {"news", "event"},           {"web", "event"},
        {"httpd", "event"},         {"metapackages", "decision"}, {"tasks", "decision"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(section, map[i].section) == 0)
            return map[i].type;
    return "fact";
}

static const char *sample_memory_system(const char *node_type)
{
    if (strcmp(node_type, "event") == 0)
        return "episodic";
    if (strcmp(node_type, "procedure") == 0)
        return "procedural";
    return "semantic";
}

static bool sample_stopword(const char *w)
{
    static const char *const stop[] = {"with",  "from",  "that",  "this",  "your",  "into",
                                       "for",   "and",   "the",   "files", "package", "support",
                                       "based", "using", "other", "which", "their", "module",
                                       "library", "data"};
    for (size_t i = 0; i < sizeof stop / sizeof *stop; i++)
        if (strcmp(w, stop[i]) == 0)
            return true;
    return false;
}

/* Tags: a JSON array of the section plus 0-2 lower-cased words (4+ letters) of the synopsis.
 * Returns a string to free with cJSON_free, or NULL on allocation failure. */
static char *sample_tags(const sample_pkg *p, sample_rng *r)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL || !cJSON_AddItemToArray(arr, cJSON_CreateString(p->section))) {
        cJSON_Delete(arr);
        return NULL;
    }
    int want = (int)sample_rng_below(r, 3);
    const char *s = p->synopsis;
    char word[32];
    while (want > 0 && *s) {
        while (*s && !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            s++;
        size_t n = 0;
        bool fits = true;
        while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) {
            if (n + 1 < sizeof word)
                word[n++] = (char)(*s >= 'A' && *s <= 'Z' ? *s + ('a' - 'A') : *s);
            else
                fits = false;
            s++;
        }
        word[n] = '\0';
        if (!fits || n < 4 || sample_stopword(word) || strcmp(word, p->section) == 0)
            continue;
        bool dup = false;
        for (int i = 0; i < cJSON_GetArraySize(arr); i++)
            if (strcmp(cJSON_GetArrayItem(arr, i)->valuestring, word) == 0)
                dup = true;
        if (dup)
            continue;
        if (!cJSON_AddItemToArray(arr, cJSON_CreateString(word))) {
            cJSON_Delete(arr);
            return NULL;
        }
        want--;
    }
    char *out = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return out;
}

/* Builds the memory text for sample i: "<package>: <synopsis>\n\n<long description>". Past
 * the end of the corpus (round k >= 1) the first line gets " (variant k)" and a second
 * package's description is appended, so every content is distinct: the first line names the
 * package and the round. */
static bool sample_content(sample_buf *b, const sample_pkg *p, uint64_t k, const sample_pkg *also)
{
    b->len = 0;
    if (!sample_buf_str(b, p->name) || !sample_buf_add(b, ": ", 2) ||
        !sample_buf_str(b, p->synopsis))
        return false;
    if (k > 0 && !sample_buf_addf(b, " (variant %llu)", (unsigned long long)k))
        return false;
    if (p->longdesc[0] && (!sample_buf_add(b, "\n\n", 2) || !sample_buf_str(b, p->longdesc)))
        return false;
    if (k > 0 && also != NULL) {
        if (!sample_buf_str(b, "\n\nSee also ") || !sample_buf_str(b, also->name) ||
            !sample_buf_add(b, ": ", 2) || !sample_buf_str(b, also->synopsis))
            return false;
        if (also->longdesc[0] &&
            (!sample_buf_add(b, "\n\n", 2) || !sample_buf_str(b, also->longdesc)))
            return false;
    }
    return true;
}

/* ---- SQLite helpers ---------------------------------------------------------------------- */

typedef struct {
    sqlite3 *db;
    const char *path;
} sample_db;

static bool sample_exec(sample_db *d, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(d->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sample_err("%s: %s: %s", d->path, what, msg ? msg : sqlite3_errmsg(d->db));
        sqlite3_free(msg);
        return false;
    }
    return true;
}

static sqlite3_stmt *sample_prepare(sample_db *d, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sample_err("%s: preparing \"%.60s...\": %s", d->path, sql, sqlite3_errmsg(d->db));
        return NULL;
    }
    return st;
}

/* Binds NULL for a NULL string. The strings stay alive until the statement is stepped. */
static void sample_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static bool sample_step(sample_db *d, sqlite3_stmt *st, const char *table, const char *id)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        sample_err("%s: inserting into %s (row %s): %s", d->path, table, id ? id : "?",
                   sqlite3_errmsg(d->db));
        return false;
    }
    return true;
}

/* ---- the build ---------------------------------------------------------------------------- */

typedef struct {
    const char *out;
    const char *translations; /* Translation-en file, or NULL */
    long n;
    int dim;
    uint64_t seed;
    bool force;
} sample_opts;

/* What later tables need to know about each memory. */
typedef struct {
    char id[37];
    uint32_t pkg;      /* index into the corpus */
    int64_t created;   /* microseconds since the epoch */
    int64_t accessed;
} sample_node;

typedef struct {
    long nodes, embeddings, cards, connections, edges, intentions, insights, sessions, states,
        transitions, consolidations, compressed;
} sample_counts;

enum {
    SAMPLE_STREAM_CORPUS = 1,
    SAMPLE_STREAM_NODES,
    SAMPLE_STREAM_IDS,
    SAMPLE_STREAM_LINKS,
    SAMPLE_STREAM_EXTRA,
};

static const char *const sample_link_types[] = {"semantic", "temporal", "causal", "part_of",
                                                "cross_reference"};
static const char *const sample_edge_types[] = {"semantic", "temporal", "causal", "derived"};

/* FSRS state for one memory. Retrievability R(t, S) = (1 + 19/81 * t/S)^-0.5 is the FSRS-4.5
 * forgetting curve (open-spaced-repetition, "The Algorithm", FSRS-4.5), t and S in days. */
typedef struct {
    const char *state;
    double stability, difficulty, retention, retrieval, storage;
    int reps, lapses, scheduled_days;
    int64_t next_review;
} sample_fsrs;

static void sample_make_fsrs(sample_rng *r, int64_t accessed, sample_fsrs *f)
{
    double u = sample_rng_unit(r);
    if (u < 0.15) {
        f->state = "new";
        f->reps = 0;
        f->lapses = 0;
        f->stability = sample_rng_range(r, 0.5, 2.5);
        f->scheduled_days = 0;
    } else if (u < 0.27) {
        f->state = "learning";
        f->reps = (int)sample_rng_range_i64(r, 1, 3);
        f->lapses = (int)sample_rng_range_i64(r, 0, 1);
        f->stability = sample_rng_range(r, 0.5, 6.0);
        f->scheduled_days = (int)sample_rng_range_i64(r, 0, 1);
    } else if (u < 0.90) {
        f->state = "review";
        f->reps = (int)sample_rng_range_i64(r, 2, 40);
        f->lapses = (int)sample_rng_range_i64(r, 0, 6);
        f->stability = exp(sample_rng_range(r, log(1.0), log(300.0))); /* log-uniform */
        f->scheduled_days = (int)fmax(1.0, round(f->stability * sample_rng_range(r, 0.8, 1.2)));
    } else {
        f->state = "relearning";
        f->reps = (int)sample_rng_range_i64(r, 3, 40);
        f->lapses = (int)sample_rng_range_i64(r, 1, 10);
        f->stability = sample_rng_range(r, 0.5, 10.0);
        f->scheduled_days = (int)sample_rng_range_i64(r, 0, 2);
    }
    f->stability = sample_round(sample_clamp(f->stability, 0.5, 300.0), 1e4);
    f->difficulty =
        sample_round(sample_clamp(sample_rng_range(r, 1.0, 9.0) + 0.3 * f->lapses, 1.0, 10.0), 1e4);
    /* Due after the last access: whole days, or 10 minutes to a day for same-day steps. */
    f->next_review = accessed + (int64_t)f->scheduled_days * SAMPLE_DAY_US +
                     (f->scheduled_days == 0 ? sample_rng_range_i64(r, 600000000LL, SAMPLE_DAY_US)
                                             : sample_rng_range_i64(r, 0, 3600000000LL));
    double t = (double)(SAMPLE_REF_US - accessed) / (double)SAMPLE_DAY_US;
    f->retention = sample_round(pow(1.0 + 19.0 / 81.0 * t / f->stability, -0.5), 1e6);
    f->retrieval = sample_round(sample_clamp(f->retention * sample_rng_range(r, 0.9, 1.05), 0, 1),
                                1e6);
    f->storage = sample_round(1.0 + 0.25 * f->reps + log1p(f->stability), 1e4);
}

static bool sample_insert_nodes(sample_db *d, const sample_opts *o, const sample_corpus *c,
                                const uint32_t *perm, sample_node *nodes, sample_counts *cnt)
{
    sqlite3_stmt *ins_node = sample_prepare(
        d, "INSERT INTO knowledge_nodes (id, content, node_type, created_at, updated_at, "
           "last_accessed, stability, difficulty, reps, lapses, learning_state, storage_strength, "
           "retrieval_strength, retention_strength, sentiment_score, sentiment_magnitude, "
           "next_review, scheduled_days, source, tags, has_embedding, embedding_model, "
           "valid_from, valid_until, scope, memory_system) VALUES "
           "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
           "?19, ?20, 1, ?21, ?22, ?23, ?24, ?25)");
    sqlite3_stmt *ins_emb = sample_prepare(
        d, "INSERT INTO node_embeddings (node_id, embedding, dimensions, model, created_at, "
           "version) VALUES (?1, ?2, ?3, ?4, ?5, 1)");
    sqlite3_stmt *ins_card = sample_prepare(
        d, "INSERT INTO fsrs_cards (memory_id, difficulty, stability, state, reps, lapses, "
           "last_review, due_date, elapsed_days, scheduled_days) VALUES "
           "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");

    char model[64], err[256];
    snprintf(model, sizeof model, "builtin:hash-%d", o->dim);
    embedder *emb = embed_open(model, err, sizeof err);
    float *vec = malloc((size_t)o->dim * sizeof *vec);
    unsigned char *blob = malloc((size_t)o->dim * 4);
    sample_buf content = {0};
    bool ok = ins_node && ins_emb && ins_card && emb && vec && blob;
    if (emb == NULL)
        sample_err("%s", err);
    else if (!ok)
        sample_err("out of memory");

    sample_rng rn = sample_rng_stream(o->seed, SAMPLE_STREAM_NODES);
    sample_rng rid = sample_rng_stream(o->seed, SAMPLE_STREAM_IDS);
    for (long i = 0; ok && i < o->n; i++) {
        uint64_t k = (uint64_t)i / c->n;
        const sample_pkg *p = &c->v[perm[(uint64_t)i % c->n]];
        const sample_pkg *also = NULL;
        if (k > 0 && c->n > 1) {
            uint64_t j = sample_rng_below(&rn, c->n - 1);
            j = j >= perm[(uint64_t)i % c->n] ? j + 1 : j; /* any package but p */
            also = &c->v[j];
        }
        sample_node *nd = &nodes[i];
        nd->pkg = perm[(uint64_t)i % c->n];
        sample_uuid(&rid, nd->id);
        if (!sample_content(&content, p, k, also)) {
            ok = false;
            break;
        }

        nd->created = SAMPLE_REF_US - sample_rng_range_i64(&rn, SAMPLE_DAY_US / 24, SAMPLE_SPAN_US);
        /* 60% never updated; the rest within the first 30% of their life so far */
        double upd = sample_rng_unit(&rn) < 0.6 ? 0.0 : 0.3 * sample_rng_unit(&rn);
        int64_t updated = nd->created + (int64_t)((double)(SAMPLE_REF_US - nd->created) * upd);
        nd->accessed = sample_rng_range_i64(&rn, updated, SAMPLE_REF_US);
        sample_fsrs f;
        sample_make_fsrs(&rn, nd->accessed, &f);
        const char *type = sample_node_type(p->section, &rn);
        double sentiment = sample_round(sample_rng_range(&rn, -0.6, 0.8), 1e4);
        double magnitude = fabs(sentiment) + sample_rng_range(&rn, 0.0, 0.3);
        magnitude = sample_round(sample_clamp(magnitude, 0.0, 1.0), 1e4);
        double su = sample_rng_unit(&rn);
        const char *scope = su < 0.90 ? "user" : su < 0.97 ? "agent" : "session";
        bool has_from = sample_rng_unit(&rn) < 0.3;
        bool has_until = has_from && sample_rng_unit(&rn) < 0.15;
        int64_t until = sample_rng_range_i64(&rn, nd->created, SAMPLE_REF_US);
        bool card = sample_rng_unit(&rn) < 0.9;
        char *tags = sample_tags(p, &rn);
        if (tags == NULL) {
            sample_err("out of memory building tags");
            ok = false;
            break;
        }

        char ts_created[40], ts_updated[40], ts_accessed[40], ts_next[40], ts_until[40];
        sample_ts(nd->created, ts_created);
        sample_ts(updated, ts_updated);
        sample_ts(nd->accessed, ts_accessed);
        sample_ts(f.next_review, ts_next);
        sample_ts(until, ts_until);
        char source[128];
        snprintf(source, sizeof source, "debian-package:%s", p->name);

        sample_bind_text(ins_node, 1, nd->id);
        sqlite3_bind_text(ins_node, 2, content.p, (int)content.len, SQLITE_STATIC);
        sample_bind_text(ins_node, 3, type);
        sample_bind_text(ins_node, 4, ts_created);
        sample_bind_text(ins_node, 5, ts_updated);
        sample_bind_text(ins_node, 6, ts_accessed);
        sqlite3_bind_double(ins_node, 7, f.stability);
        sqlite3_bind_double(ins_node, 8, f.difficulty);
        sqlite3_bind_int(ins_node, 9, f.reps);
        sqlite3_bind_int(ins_node, 10, f.lapses);
        sample_bind_text(ins_node, 11, f.state);
        sqlite3_bind_double(ins_node, 12, f.storage);
        sqlite3_bind_double(ins_node, 13, f.retrieval);
        sqlite3_bind_double(ins_node, 14, f.retention);
        sqlite3_bind_double(ins_node, 15, sentiment);
        sqlite3_bind_double(ins_node, 16, magnitude);
        sample_bind_text(ins_node, 17, ts_next);
        sqlite3_bind_int(ins_node, 18, f.scheduled_days);
        sample_bind_text(ins_node, 19, source);
        sample_bind_text(ins_node, 20, tags);
        sample_bind_text(ins_node, 21, model);
        sample_bind_text(ins_node, 22, has_from ? ts_created : NULL);
        sample_bind_text(ins_node, 23, has_until ? ts_until : NULL);
        sample_bind_text(ins_node, 24, scope);
        sample_bind_text(ins_node, 25, sample_memory_system(type));
        ok = sample_step(d, ins_node, "knowledge_nodes", nd->id);
        cJSON_free(tags);
        if (!ok)
            break;
        cnt->nodes++;

        const char *text = content.p;
        if (!embed_batch(emb, &text, &content.len, 1, vec, err, sizeof err)) {
            sample_err("embedding memory %s: %s", nd->id, err);
            ok = false;
            break;
        }
        for (int j = 0; j < o->dim; j++) { /* little-endian float32, whatever the host order */
            uint32_t bits;
            memcpy(&bits, &vec[j], 4);
            blob[4 * j] = (unsigned char)bits;
            blob[4 * j + 1] = (unsigned char)(bits >> 8);
            blob[4 * j + 2] = (unsigned char)(bits >> 16);
            blob[4 * j + 3] = (unsigned char)(bits >> 24);
        }
        sample_bind_text(ins_emb, 1, nd->id);
        sqlite3_bind_blob(ins_emb, 2, blob, o->dim * 4, SQLITE_STATIC);
        sqlite3_bind_int(ins_emb, 3, o->dim);
        sample_bind_text(ins_emb, 4, model);
        sample_bind_text(ins_emb, 5, ts_updated);
        if (!(ok = sample_step(d, ins_emb, "node_embeddings", nd->id)))
            break;
        cnt->embeddings++;

        if (card) {
            sample_bind_text(ins_card, 1, nd->id);
            sqlite3_bind_double(ins_card, 2, f.difficulty);
            sqlite3_bind_double(ins_card, 3, f.stability);
            sample_bind_text(ins_card, 4, f.state);
            sqlite3_bind_int(ins_card, 5, f.reps);
            sqlite3_bind_int(ins_card, 6, f.lapses);
            sample_bind_text(ins_card, 7, f.reps > 0 ? ts_accessed : NULL);
            sample_bind_text(ins_card, 8, ts_next);
            sqlite3_bind_int64(ins_card, 9, (SAMPLE_REF_US - nd->accessed) / SAMPLE_DAY_US);
            sqlite3_bind_int(ins_card, 10, f.scheduled_days);
            if (!(ok = sample_step(d, ins_card, "fsrs_cards", nd->id)))
                break;
            cnt->cards++;
        }
    }

    free(content.p);
    free(blob);
    free(vec);
    embed_close(emb);
    sqlite3_finalize(ins_node);
    sqlite3_finalize(ins_emb);
    sqlite3_finalize(ins_card);
    return ok;
}

/* memory_connections: 1-3 per node (mean 2) to distinct other nodes, chosen as distinct
 * offsets from the source, so (source, target) pairs never repeat. knowledge_edges: one for
 * ~20% of nodes, at an offset none of that node's connections use, so no edge repeats a
 * connection's (source, target, type) or another edge's. */
static bool sample_insert_links(sample_db *d, const sample_opts *o, const sample_node *nodes,
                                sample_counts *cnt)
{
    if (o->n < 2)
        return true;
    sqlite3_stmt *ins_conn = sample_prepare(
        d, "INSERT INTO memory_connections (source_id, target_id, strength, link_type, "
           "created_at, last_activated, activation_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    sqlite3_stmt *ins_edge = sample_prepare(
        d, "INSERT INTO knowledge_edges (id, source_id, target_id, edge_type, weight, valid_from, "
           "valid_until, created_at, created_by, confidence, metadata) VALUES "
           "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    bool ok = ins_conn && ins_edge;
    sample_rng r = sample_rng_stream(o->seed, SAMPLE_STREAM_LINKS);
    static const char *const creators[] = {"user", "system", "consolidation", "llm"};
    uint64_t n = (uint64_t)o->n;

    for (uint64_t i = 0; ok && i < n; i++) {
        uint64_t off[3];
        int k = 1 + (sample_rng_unit(&r) < 0.5) + (sample_rng_unit(&r) < 0.5);
        if ((uint64_t)k > n - 1)
            k = (int)(n - 1);
        for (int a = 0; a < k; a++) {
            bool fresh;
            do { /* offsets 1..n-1, distinct within this node */
                off[a] = 1 + sample_rng_below(&r, n - 1);
                fresh = true;
                for (int b = 0; b < a; b++)
                    fresh = fresh && off[b] != off[a];
            } while (!fresh);
        }
        for (int a = 0; ok && a < k; a++) {
            const sample_node *src = &nodes[i], *dst = &nodes[(i + off[a]) % n];
            int64_t born = src->created > dst->created ? src->created : dst->created;
            int64_t created = sample_rng_range_i64(&r, born, SAMPLE_REF_US);
            int64_t activated = sample_rng_range_i64(&r, created, SAMPLE_REF_US);
            char ts_c[40], ts_a[40];
            sample_ts(created, ts_c);
            sample_ts(activated, ts_a);
            sample_bind_text(ins_conn, 1, src->id);
            sample_bind_text(ins_conn, 2, dst->id);
            sqlite3_bind_double(ins_conn, 3, sample_round(sample_rng_range(&r, 0.1, 1.0), 1e4));
            sample_bind_text(ins_conn, 4, sample_link_types[sample_rng_below(&r, 5)]);
            sample_bind_text(ins_conn, 5, ts_c);
            sample_bind_text(ins_conn, 6, ts_a);
            sqlite3_bind_int64(ins_conn, 7, sample_rng_range_i64(&r, 0, 25));
            ok = sample_step(d, ins_conn, "memory_connections", src->id);
            cnt->connections += ok;
        }
        if (!ok || sample_rng_unit(&r) >= 0.2 || (uint64_t)k >= n - 1)
            continue;

        uint64_t eo;
        bool clash;
        do {
            eo = 1 + sample_rng_below(&r, n - 1);
            clash = false;
            for (int a = 0; a < k; a++)
                clash = clash || off[a] == eo;
        } while (clash);
        const sample_node *src = &nodes[i], *dst = &nodes[(i + eo) % n];
        char id[37], ts_c[40], ts_u[40];
        sample_uuid(&r, id);
        int64_t born = src->created > dst->created ? src->created : dst->created;
        int64_t created = sample_rng_range_i64(&r, born, SAMPLE_REF_US);
        bool ended = sample_rng_unit(&r) < 0.1;
        sample_ts(created, ts_c);
        sample_ts(sample_rng_range_i64(&r, created, SAMPLE_REF_US), ts_u);
        const char *type = sample_edge_types[sample_rng_below(&r, 4)];
        cJSON *meta = cJSON_CreateObject();
        cJSON_AddStringToObject(meta, "origin", "pgmemctl-sample");
        cJSON_AddStringToObject(meta, "relation", type);
        char *meta_s = cJSON_PrintUnformatted(meta);
        cJSON_Delete(meta);
        sample_bind_text(ins_edge, 1, id);
        sample_bind_text(ins_edge, 2, src->id);
        sample_bind_text(ins_edge, 3, dst->id);
        sample_bind_text(ins_edge, 4, type);
        sqlite3_bind_double(ins_edge, 5, sample_round(sample_rng_range(&r, 0.2, 1.0), 1e4));
        sample_bind_text(ins_edge, 6, ts_c);
        sample_bind_text(ins_edge, 7, ended ? ts_u : NULL);
        sample_bind_text(ins_edge, 8, ts_c);
        sample_bind_text(ins_edge, 9, creators[sample_rng_below(&r, 4)]);
        sqlite3_bind_double(ins_edge, 10, sample_round(sample_rng_range(&r, 0.5, 1.0), 1e4));
        sample_bind_text(ins_edge, 11, meta_s);
        ok = meta_s != NULL && sample_step(d, ins_edge, "knowledge_edges", id);
        cJSON_free(meta_s);
        cnt->edges += ok;
    }
    sqlite3_finalize(ins_conn);
    sqlite3_finalize(ins_edge);
    return ok;
}

/* JSON array of the ids of `count` random nodes; free with cJSON_free. */
static char *sample_id_array(sample_rng *r, const sample_node *nodes, long n, int count)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < count; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(nodes[sample_rng_below(r, (uint64_t)n)].id));
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

static char *sample_string_array(const char *a, const char *b)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr && a)
        cJSON_AddItemToArray(arr, cJSON_CreateString(a));
    if (arr && b)
        cJSON_AddItemToArray(arr, cJSON_CreateString(b));
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

/* A handful of rows for the remaining tables, so that none of them is empty. */
static bool sample_insert_extras(sample_db *d, const sample_opts *o, const sample_corpus *c,
                                 const sample_node *nodes, sample_counts *cnt)
{
    sample_rng r = sample_rng_stream(o->seed, SAMPLE_STREAM_EXTRA);
    long n = o->n;
    bool ok = true;
    char id[37], ts1[40], ts2[40], ts3[40];
    sample_buf text = {0};

    /* intentions */
    sqlite3_stmt *st = sample_prepare(
        d, "INSERT INTO intentions (id, content, trigger_type, trigger_data, priority, status, "
           "created_at, deadline, fulfilled_at, reminder_count, last_reminded_at, notes, tags, "
           "related_memories, snoozed_until, source_type, source_data) VALUES "
           "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)");
    static const char *const statuses[] = {"active", "active", "triggered", "fulfilled",
                                           "snoozed", "cancelled"};
    ok = st != NULL;
    for (int i = 0; ok && i < 12; i++) {
        const sample_node *nd = &nodes[sample_rng_below(&r, (uint64_t)n)];
        const sample_pkg *p = &c->v[nd->pkg];
        const char *status = statuses[sample_rng_below(&r, 6)];
        bool timed = sample_rng_unit(&r) < 0.5;
        int64_t created = sample_rng_range_i64(&r, nd->created, SAMPLE_REF_US);
        int64_t due = created + sample_rng_range_i64(&r, SAMPLE_DAY_US, 60 * SAMPLE_DAY_US);
        sample_uuid(&r, id);
        sample_ts(created, ts1);
        sample_ts(due, ts2);
        sample_ts(sample_rng_range_i64(&r, created, SAMPLE_REF_US), ts3);
        text.len = 0;
        ok = sample_buf_addf(&text, "Evaluate %s for the %s toolbox: ", p->name, p->section) &&
             sample_buf_str(&text, p->synopsis);
        cJSON *trig = cJSON_CreateObject(), *inner = cJSON_CreateObject();
        if (timed) {
            cJSON_AddStringToObject(inner, "at", ts2);
            cJSON_AddItemToObject(trig, "TimeBased", inner);
        } else {
            cJSON *pat = cJSON_CreateObject();
            cJSON_AddStringToObject(pat, "TopicActive", p->section);
            cJSON_AddItemToObject(inner, "context_match", pat);
            cJSON_AddItemToObject(trig, "ContextBased", inner);
        }
        char *trig_s = cJSON_PrintUnformatted(trig);
        cJSON_Delete(trig);
        char *tags = sample_string_array(p->section, "todo");
        char *related = sample_string_array(nd->id, NULL);
        ok = ok && trig_s && tags && related;
        if (ok) {
            sample_bind_text(st, 1, id);
            sample_bind_text(st, 2, text.p);
            sample_bind_text(st, 3, timed ? "time" : "context");
            sample_bind_text(st, 4, trig_s);
            sqlite3_bind_int(st, 5, (int)sample_rng_range_i64(&r, 1, 4));
            sample_bind_text(st, 6, status);
            sample_bind_text(st, 7, ts1);
            sample_bind_text(st, 8, timed ? ts2 : NULL);
            sample_bind_text(st, 9, strcmp(status, "fulfilled") == 0 ? ts3 : NULL);
            sqlite3_bind_int(st, 10, strcmp(status, "triggered") == 0 ? 1 : 0);
            sample_bind_text(st, 11, strcmp(status, "triggered") == 0 ? ts3 : NULL);
            sample_bind_text(st, 12, i % 3 == 0 ? "Created by pgmemctl-sample." : NULL);
            sample_bind_text(st, 13, tags);
            sample_bind_text(st, 14, related);
            sample_bind_text(st, 15, strcmp(status, "snoozed") == 0 ? ts2 : NULL);
            sample_bind_text(st, 16, i % 2 ? "api" : "conversation");
            sample_bind_text(st, 17, NULL);
            ok = sample_step(d, st, "intentions", id);
            cnt->intentions += ok;
        }
        cJSON_free(trig_s);
        cJSON_free(tags);
        cJSON_free(related);
    }
    sqlite3_finalize(st);

    /* insights */
    static const char *const itypes[] = {"hidden_connection", "recurring_pattern",
                                         "generalization",    "contradiction",
                                         "knowledge_gap",     "temporal_trend", "synthesis"};
    static const char *const feedback[] = {NULL, NULL, "accepted", "rejected"};
    st = ok ? sample_prepare(d, "INSERT INTO insights (id, insight, source_memories, confidence, "
                                "novelty_score, insight_type, generated_at, tags, feedback, "
                                "applied_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
            : NULL;
    ok = ok && st != NULL;
    for (int i = 0; ok && i < 8; i++) {
        sample_rng pick = r; /* the ids in source_memories are the two packages named */
        const sample_pkg *a = &c->v[nodes[sample_rng_below(&pick, (uint64_t)n)].pkg];
        const sample_pkg *b = &c->v[nodes[sample_rng_below(&pick, (uint64_t)n)].pkg];
        char *src = sample_id_array(&r, nodes, n, 2);
        sample_uuid(&r, id);
        sample_ts(SAMPLE_REF_US - sample_rng_range_i64(&r, 0, 90 * SAMPLE_DAY_US), ts1);
        text.len = 0;
        ok = sample_buf_addf(&text, "%s (%s) and %s (%s) both come up when working on ", a->name,
                             a->section, b->name, b->section) &&
             sample_buf_str(&text, a->synopsis);
        char *tags = sample_string_array(a->section, b->section);
        ok = ok && src && tags;
        if (ok) {
            sample_bind_text(st, 1, id);
            sample_bind_text(st, 2, text.p);
            sample_bind_text(st, 3, src);
            sqlite3_bind_double(st, 4, sample_round(sample_rng_range(&r, 0.4, 0.95), 1e4));
            sqlite3_bind_double(st, 5, sample_round(sample_rng_range(&r, 0.1, 0.9), 1e4));
            sample_bind_text(st, 6, itypes[sample_rng_below(&r, 7)]);
            sample_bind_text(st, 7, ts1);
            sample_bind_text(st, 8, tags);
            sample_bind_text(st, 9, feedback[sample_rng_below(&r, 4)]);
            sqlite3_bind_int(st, 10, (int)sample_rng_range_i64(&r, 0, 5));
            ok = sample_step(d, st, "insights", id);
            cnt->insights += ok;
        }
        cJSON_free(src);
        cJSON_free(tags);
    }
    sqlite3_finalize(st);

    /* sessions */
    st = ok ? sample_prepare(d, "INSERT INTO sessions (id, user_id, started_at, ended_at, context, "
                                "memory_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            : NULL;
    ok = ok && st != NULL;
    for (int i = 0; ok && i < 6; i++) {
        int64_t start = SAMPLE_REF_US - (int64_t)(6 - i) * 20 * SAMPLE_DAY_US -
                        sample_rng_range_i64(&r, 0, 10 * SAMPLE_DAY_US);
        sample_uuid(&r, id);
        sample_ts(start, ts1);
        sample_ts(start + sample_rng_range_i64(&r, 600000000LL, 8 * 3600000000LL), ts2);
        cJSON *ctx = cJSON_CreateObject();
        cJSON_AddStringToObject(ctx, "client", "pgmemctl-sample");
        const sample_pkg *proj = &c->v[nodes[sample_rng_below(&r, (uint64_t)n)].pkg];
        cJSON_AddStringToObject(ctx, "project", proj->name);
        char *ctx_s = cJSON_PrintUnformatted(ctx);
        cJSON_Delete(ctx);
        ok = ctx_s != NULL;
        if (ok) {
            sample_bind_text(st, 1, id);
            sample_bind_text(st, 2, i < 4 ? "default" : "alice");
            sample_bind_text(st, 3, ts1);
            sample_bind_text(st, 4, i == 5 ? NULL : ts2); /* the last one is still open */
            sample_bind_text(st, 5, ctx_s);
            sqlite3_bind_int(st, 6, (int)sample_rng_range_i64(&r, 0, 40));
            ok = sample_step(d, st, "sessions", id);
            cnt->sessions += ok;
        }
        cJSON_free(ctx_s);
    }
    sqlite3_finalize(st);

    /* memory_states for every 50th memory, with a state_transitions row for each that left
     * 'active' */
    static const char *const states[] = {"active", "active", "dormant", "silent", "unavailable"};
    sqlite3_stmt *tr = NULL;
    st = ok ? sample_prepare(d, "INSERT INTO memory_states (memory_id, state, last_access, "
                                "access_count, state_entered_at, suppression_until, "
                                "suppressed_by, time_active_seconds, time_dormant_seconds, "
                                "time_silent_seconds, time_unavailable_seconds) VALUES "
                                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
            : NULL;
    tr = st ? sample_prepare(d, "INSERT INTO state_transitions (memory_id, from_state, to_state, "
                                "reason_type, reason_data, timestamp) VALUES "
                                "(?1, ?2, ?3, ?4, ?5, ?6)")
            : NULL;
    ok = ok && st && tr;
    for (long i = 0; ok && i < n; i += 50) {
        const sample_node *nd = &nodes[i];
        const char *state = states[sample_rng_below(&r, 5)];
        bool active = strcmp(state, "active") == 0;
        int64_t entered = active ? nd->accessed
                                 : sample_rng_range_i64(&r, nd->accessed, SAMPLE_REF_US);
        int64_t life = (SAMPLE_REF_US - nd->created) / 1000000;
        int64_t t_active = active ? life : (entered - nd->created) / 1000000;
        int64_t t_rest = life - t_active;
        bool suppressed = strcmp(state, "unavailable") == 0;
        sample_ts(nd->accessed, ts1);
        sample_ts(entered, ts2);
        sample_ts(entered + 7 * SAMPLE_DAY_US, ts3);
        char *by = suppressed ? sample_id_array(&r, nodes, n, 1) : sample_string_array(NULL, NULL);
        ok = by != NULL;
        if (ok) {
            sample_bind_text(st, 1, nd->id);
            sample_bind_text(st, 2, state);
            sample_bind_text(st, 3, ts1);
            sqlite3_bind_int(st, 4, (int)sample_rng_range_i64(&r, 1, 60));
            sample_bind_text(st, 5, ts2);
            sample_bind_text(st, 6, suppressed ? ts3 : NULL);
            sample_bind_text(st, 7, by);
            sqlite3_bind_int64(st, 8, t_active);
            sqlite3_bind_int64(st, 9, strcmp(state, "dormant") == 0 ? t_rest : 0);
            sqlite3_bind_int64(st, 10, strcmp(state, "silent") == 0 ? t_rest : 0);
            sqlite3_bind_int64(st, 11, suppressed ? t_rest : 0);
            ok = sample_step(d, st, "memory_states", nd->id);
            cnt->states += ok;
        }
        if (ok && !active) {
            char reason[64];
            snprintf(reason, sizeof reason, "{\"days_inactive\":%lld}",
                     (long long)((entered - nd->accessed) / SAMPLE_DAY_US));
            sample_bind_text(tr, 1, nd->id);
            sample_bind_text(tr, 2, "active");
            sample_bind_text(tr, 3, state);
            sample_bind_text(tr, 4, suppressed ? "user_suppression" : "time_decay");
            sample_bind_text(tr, 5, suppressed ? NULL : reason);
            sample_bind_text(tr, 6, ts2);
            ok = sample_step(d, tr, "state_transitions", nd->id);
            cnt->transitions += ok;
        }
        cJSON_free(by);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(tr);

    /* consolidation_history */
    st = ok ? sample_prepare(d, "INSERT INTO consolidation_history (completed_at, duration_ms, "
                                "memories_replayed, connections_found, connections_strengthened, "
                                "connections_pruned, insights_generated, memories_transferred, "
                                "patterns_discovered) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
            : NULL;
    ok = ok && st != NULL;
    for (int i = 0; ok && i < 3; i++) {
        sample_ts(SAMPLE_REF_US - (int64_t)(3 - i) * 7 * SAMPLE_DAY_US, ts1);
        char *moved = sample_id_array(&r, nodes, n, 2);
        const sample_pkg *p = &c->v[nodes[sample_rng_below(&r, (uint64_t)n)].pkg];
        char pattern[96];
        snprintf(pattern, sizeof pattern, "cluster of %s memories", p->section);
        char *patterns = sample_string_array(pattern, NULL);
        ok = moved && patterns;
        if (ok) {
            sample_bind_text(st, 1, ts1);
            sqlite3_bind_int64(st, 2, sample_rng_range_i64(&r, 200, 9000));
            sqlite3_bind_int64(st, 3, sample_rng_range_i64(&r, 1, n < 500 ? n : 500));
            sqlite3_bind_int64(st, 4, sample_rng_range_i64(&r, 0, 50));
            sqlite3_bind_int64(st, 5, sample_rng_range_i64(&r, 0, 50));
            sqlite3_bind_int64(st, 6, sample_rng_range_i64(&r, 0, 10));
            sqlite3_bind_int64(st, 7, sample_rng_range_i64(&r, 0, 3));
            sample_bind_text(st, 8, moved);
            sample_bind_text(st, 9, patterns);
            ok = sample_step(d, st, "consolidation_history", ts1);
            cnt->consolidations += ok;
        }
        cJSON_free(moved);
        cJSON_free(patterns);
    }
    sqlite3_finalize(st);

    /* compressed_memories: the synopsis alone as the "compressed" form of a memory */
    st = ok ? sample_prepare(d, "INSERT INTO compressed_memories (id, original_id, "
                                "compressed_content, original_length, compressed_length, "
                                "compression_ratio, semantic_fidelity, compressed_at, model_used) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'llm')")
            : NULL;
    ok = ok && st != NULL;
    for (int i = 0; ok && i < 5; i++) {
        const sample_node *nd = &nodes[sample_rng_below(&r, (uint64_t)n)];
        const sample_pkg *p = &c->v[nd->pkg];
        size_t orig = strlen(p->name) + 2 + strlen(p->synopsis) +
                      (p->longdesc[0] ? 2 + strlen(p->longdesc) : 0);
        size_t comp = strlen(p->synopsis);
        sample_uuid(&r, id);
        sample_ts(sample_rng_range_i64(&r, nd->created, SAMPLE_REF_US), ts1);
        sample_bind_text(st, 1, id);
        sample_bind_text(st, 2, nd->id);
        sample_bind_text(st, 3, p->synopsis);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)orig);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)comp);
        sqlite3_bind_double(st, 6, sample_round((double)comp / (double)orig, 1e4));
        sqlite3_bind_double(st, 7, sample_round(sample_rng_range(&r, 0.8, 0.98), 1e4));
        sample_bind_text(st, 8, ts1);
        ok = sample_step(d, st, "compressed_memories", id);
        cnt->compressed += ok;
    }
    sqlite3_finalize(st);
    free(text.p);
    return ok;
}

static bool sample_build(const sample_opts *o, const sample_corpus *c, const char *path,
                         sample_counts *cnt)
{
    sample_db d = {NULL, path};
    if (sqlite3_open_v2(path, &d.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        sample_err("%s: %s", path, d.db ? sqlite3_errmsg(d.db) : "cannot open");
        sqlite3_close(d.db);
        return false;
    }

    uint32_t *perm = malloc(c->n * sizeof *perm);
    sample_node *nodes = calloc((size_t)o->n, sizeof *nodes);
    bool ok = perm && nodes;
    if (!ok)
        sample_err("out of memory for %ld memories", o->n);

    if (ok) { /* a seeded Fisher-Yates shuffle picks which packages come first */
        sample_rng r = sample_rng_stream(o->seed, SAMPLE_STREAM_CORPUS);
        for (size_t i = 0; i < c->n; i++)
            perm[i] = (uint32_t)i;
        for (size_t i = c->n; i > 1; i--) {
            size_t j = (size_t)sample_rng_below(&r, i);
            uint32_t t = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = t;
        }
    }

    char version_sql[160];
    snprintf(version_sql, sizeof version_sql,
             "INSERT INTO schema_version (version, applied_at) VALUES (4, '%s')",
             SAMPLE_SCHEMA_APPLIED);
    ok = ok && sample_exec(&d, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                                   "PRAGMA cache_size=-262144;", "pragmas") &&
         sample_exec(&d, "BEGIN", "begin") && sample_exec(&d, sample_schema_sql, "schema") &&
         sample_exec(&d, version_sql, "schema_version") &&
         sample_insert_nodes(&d, o, c, perm, nodes, cnt) &&
         sample_insert_links(&d, o, nodes, cnt) && sample_insert_extras(&d, o, c, nodes, cnt) &&
         sample_exec(&d, sample_index_sql, "indexes") &&
         sample_exec(&d, sample_fts_sql, "full-text index") && sample_exec(&d, "COMMIT", "commit");

    free(perm);
    free(nodes);
    if (sqlite3_close(d.db) != SQLITE_OK) {
        sample_err("%s: closing: %s", path, sqlite3_errmsg(d.db));
        ok = false;
    }
    return ok;
}

/* ---- command line ------------------------------------------------------------------------- */

static void sample_usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " --out PATH [--translations FILE] [-n N] [--dim D] [--seed S]\n"
            "       [--force] < Packages\n"
            "\n"
            "Builds a vestige memory store (SQLite, vestige schema V1-V4) from Debian package\n"
            "records on stdin, e.g. `apt-cache dumpavail | " PROG " --out sample.db`.\n"
            "Each memory is \"<package>: <synopsis>\" and, when known, a blank line and the\n"
            "long description.\n"
            "\n"
            "  --out PATH   file to create (refuses to overwrite without --force)\n"
            "  --translations FILE\n"
            "               a Translation-en index (uncompressed: Package, Description-md5,\n"
            "               Description-en stanzas); packages on stdin without a long\n"
            "               description take it from here, matched by Description-md5, else\n"
            "               by package name. Only packages on stdin become memories.\n"
            "  -n N         number of memories (default %d); past the number of distinct\n"
            "               packages the texts are combined into distinct variants\n"
            "  --dim D      embedding dimensions, 1..%d (default %d; model builtin:hash-D)\n"
            "  --seed S     PRNG seed, an unsigned 64-bit integer (default %d); the same seed\n"
            "               and inputs give the same contents\n"
            "  --force      replace an existing PATH\n"
            "  --help       show this help\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            SAMPLE_DEFAULT_N, SAMPLE_MAX_DIM, SAMPLE_DEFAULT_DIM, SAMPLE_DEFAULT_SEED);
}

static bool sample_parse_long(const char *s, long lo, long hi, long *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Returns 0 to go on, or an exit status (2 usage error, 0 after --help). */
static int sample_parse_args(int argc, char **argv, sample_opts *o)
{
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},  {"translations", required_argument, NULL, 't'},
        {"dim", required_argument, NULL, 'd'},  {"seed", required_argument, NULL, 's'},
        {"force", no_argument, NULL, 'f'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (sample_opts){NULL, NULL, SAMPLE_DEFAULT_N, SAMPLE_DEFAULT_DIM, SAMPLE_DEFAULT_SEED,
                       false};
    int ch;
    long v;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":n:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o':
            o->out = optarg;
            break;
        case 't':
            o->translations = optarg;
            break;
        case 'n':
            if (!sample_parse_long(optarg, 1, SAMPLE_MAX_N, &o->n)) {
                sample_err("-n: expected an integer from 1 to %ld, got \"%s\"", SAMPLE_MAX_N,
                           optarg);
                return 2;
            }
            break;
        case 'd':
            if (!sample_parse_long(optarg, 1, SAMPLE_MAX_DIM, &v)) {
                sample_err("--dim: expected an integer from 1 to %d, got \"%s\"", SAMPLE_MAX_DIM,
                           optarg);
                return 2;
            }
            o->dim = (int)v;
            break;
        case 's': {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || errno || *end) {
                sample_err("--seed: expected an unsigned 64-bit integer, got \"%s\"", optarg);
                return 2;
            }
            o->seed = (uint64_t)s;
            break;
        }
        case 'f':
            o->force = true;
            break;
        case 'h':
            sample_usage(stdout);
            return fflush(stdout) == 0 && !ferror(stdout) ? -1 : 1;
        case ':':
            sample_err("option %s needs a value", argv[optind - 1]);
            return 2;
        default:
            sample_err("unknown option %s (try --help)", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        sample_err("unexpected argument \"%s\" (try --help)", argv[optind]);
        return 2;
    }
    if (o->out == NULL) {
        sample_err("--out PATH is required (try --help)");
        return 2;
    }
    return 0;
}

/* Reads the Translation-en file at path and merges it into c (see sample_merge_translations);
 * *records is the number of descriptions read. */
static bool sample_load_translations(const char *path, sample_corpus *c, size_t *records,
                                     sample_merge_counts *mc)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        sample_err("%s: %s", path, strerror(errno));
        return false;
    }
    sample_corpus tr = {0};
    bool ok = sample_read_packages(f, path, &tr);
    fclose(f);
    *records = tr.n;
    if (ok && tr.n == 0) {
        sample_err("%s: no Package stanzas with a description (is it a Translation-en index?)",
                   path);
        ok = false;
    }
    if (ok)
        sample_merge_translations(c, &tr, mc);
    sample_corpus_free(&tr);
    return ok;
}

static double sample_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    sample_opts o;
    int rc = sample_parse_args(argc, argv, &o);
    if (rc == -1)
        return 0;
    if (rc != 0)
        return rc;

    struct stat sb;
    if (!o.force && stat(o.out, &sb) == 0) {
        sample_err("%s already exists (use --force to replace it)", o.out);
        return 1;
    }
    if (isatty(STDIN_FILENO)) {
        sample_err("reading Debian package records from stdin, which is a terminal "
                   "(pipe `apt-cache dumpavail` into it)");
        return 2;
    }

    double t0 = sample_now();
    sample_corpus c = {0};
    if (!sample_read_packages(stdin, "stdin", &c)) {
        sample_corpus_free(&c);
        return 1;
    }
    size_t records = c.n;
    sample_dedupe(&c);
    if (c.n == 0) {
        sample_err("no package records with a Description on stdin "
                   "(is `apt-cache dumpavail` empty? run apt-get update)");
        sample_corpus_free(&c);
        return 1;
    }
    size_t tr_records = 0;
    sample_merge_counts mc = {0};
    if (o.translations &&
        !sample_load_translations(o.translations, &c, &tr_records, &mc)) {
        sample_corpus_free(&c);
        return 1;
    }
    size_t with_long = 0;
    for (size_t i = 0; i < c.n; i++)
        with_long += c.v[i].longdesc[0] != '\0';

    /* Build next to the target and rename at the end, so a failure leaves no partial store. */
    size_t plen = strlen(o.out) + sizeof ".partial";
    char *partial = malloc(plen);
    if (partial == NULL) {
        sample_err("out of memory");
        sample_corpus_free(&c);
        return 1;
    }
    snprintf(partial, plen, "%s.partial", o.out);
    if (unlink(partial) != 0 && errno != ENOENT) {
        sample_err("%s: %s", partial, strerror(errno));
        free(partial);
        sample_corpus_free(&c);
        return 1;
    }

    sample_counts cnt = {0};
    bool ok = sample_build(&o, &c, partial, &cnt);
    if (ok && !o.force && stat(o.out, &sb) == 0) {
        sample_err("%s appeared while building (use --force to replace it)", o.out);
        ok = false;
    }
    if (ok && rename(partial, o.out) != 0) {
        sample_err("renaming %s to %s: %s", partial, o.out, strerror(errno));
        ok = false;
    }
    if (!ok)
        unlink(partial);

    if (ok && o.translations)
        fprintf(stderr,
                PROG ": %zu of %zu packages have a long description; %zu taken from the %zu "
                     "descriptions in %s (%zu by Description-md5, %zu by name only)\n",
                with_long, c.n, mc.by_md5 + mc.by_name, tr_records, o.translations, mc.by_md5,
                mc.by_name);
    if (ok)
        fprintf(stderr,
                PROG ": wrote %s: %ld memories (%zu distinct packages of %zu records), "
                     "%ld embeddings (builtin:hash-%d), %ld fsrs_cards, %ld memory_connections, "
                     "%ld knowledge_edges, %ld intentions, %ld insights, %ld sessions, "
                     "%ld memory_states, %ld state_transitions, %ld consolidation_history, "
                     "%ld compressed_memories in %.2f s\n",
                o.out, cnt.nodes, c.n, records, cnt.embeddings, o.dim, cnt.cards,
                cnt.connections, cnt.edges, cnt.intentions, cnt.insights, cnt.sessions,
                cnt.states, cnt.transitions, cnt.consolidations, cnt.compressed,
                sample_now() - t0);
    free(partial);
    sample_corpus_free(&c);
    return ok ? 0 : 1;
}

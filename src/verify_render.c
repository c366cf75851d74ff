/* verify_render.c — turns a verify_report into the JSON document, aligned text for people, JUnit
 * XML for CI test reports and TAP (with YAMLish diagnostics from libyaml) for prove and friends. */
#include "verify.h"
#include "log.h"
#include "sqlite_values.h"
#include "redact.h"
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

const char *verify_status_name(verify_status s)
{
    switch (s) {
    case VR_PASS: return "pass";
    case VR_FAIL: return "fail";
    case VR_WARN: return "warn";
    case VR_SKIP: return "skip";
    }
    return "unknown";
}

bool verify_format_parse(const char *s, verify_format *out)
{
    static const struct {
        const char *name;
        verify_format f;
    } formats[] = {{"json", VF_JSON}, {"human", VF_HUMAN}, {"junit", VF_JUNIT}, {"tap", VF_TAP}};
    for (size_t i = 0; s && i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(s, formats[i].name) == 0) {
            *out = formats[i].f;
            return true;
        }
    return false;
}

/* ---- a growing string ---------------------------------------------------------------------- */

/* Appends never fail visibly: after an allocation failure the buffer stays marked oom, further
 * appends do nothing, and sb_finish returns NULL. */
typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t) n < sizeof small) {
        sb_putn(b, small, (size_t) n);
        return;
    }
    char *big = malloc((size_t) n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t) n + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t) n);
    free(big);
}

static void sb_spaces(sbuf *b, int n)
{
    for (int i = 0; i < n; i++)
        sb_putn(b, " ", 1);
}

/* The built string (caller frees), or NULL after an allocation failure. An empty buffer gives "". */
static char *sb_finish(sbuf *b)
{
    if (!b->oom && !b->s)
        sb_putn(b, "", 0);
    if (b->oom) {
        free(b->s);
        b->s = NULL;
    }
    return b->s;
}

/* ---- text cleaning and escaping ------------------------------------------------------------
 * Every string that comes from the report (names, messages, observed values from the database)
 * passes through put_text, which
 *   1. masks registered secrets first, so that an escaped form ("p&amp;ss", "p\"ss") cannot
 *      slip past the final scrub of the whole document;
 *   2. replaces each byte that does not start a valid UTF-8 sequence with U+FFFD, so every
 *      format receives valid UTF-8 (sqlite_values.c's text_check decides what is valid: no overlongs,
 *      surrogates or code points above U+10FFFF);
 *   3. applies the escaping of the output context (esc_mode). */

typedef enum {
    ESC_RAW,      /* UTF-8 repair only: the consumer (cJSON, libyaml) escapes on its own */
    ESC_LINE,     /* one terminal line: tab/CR/LF become spaces, other control characters U+FFFD */
    ESC_BLOCK,    /* as ESC_LINE, but LF starts a new line indented by `indent` spaces */
    ESC_TAP_NAME, /* as ESC_LINE, plus '#' -> "\#" and '\' -> "\\" (TAP's description escapes) */
    ESC_XML_TEXT, /* XML character data */
    ESC_XML_ATTR, /* XML attribute value in double quotes */
} esc_mode;

#define REPLACEMENT_CHAR "\xEF\xBF\xBD" /* U+FFFD in UTF-8 */

/* Length (2..4) of the valid multi-byte UTF-8 sequence at s, or 0 when s[0] does not start one. */
static size_t utf8_seq_len(const char *s)
{
    unsigned char c = (unsigned char) s[0];
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || strnlen(s, n) < n || !text_check(s, n, NULL, 0))
        return 0;
    return n;
}

/* An ASCII byte (< 0x80) in an XML context. */
static void put_xml_ascii(sbuf *b, const char *p, esc_mode mode)
{
    switch (*p) {
    case '&': sb_puts(b, "&amp;"); return;
    case '<': sb_puts(b, "&lt;"); return;
    case '>': sb_puts(b, "&gt;"); return; /* also keeps "]]>" out of character data */
    case '"': sb_puts(b, "&quot;"); return;
    case '\'': sb_puts(b, "&apos;"); return;
    /* A literal CR would be turned into LF by the parser's line-end handling, and in an
     * attribute every tab/CR/LF would become a space (attribute-value normalisation), so those
     * travel as character references. */
    case '\r': sb_puts(b, "&#13;"); return;
    case '\t': sb_puts(b, mode == ESC_XML_ATTR ? "&#9;" : "\t"); return;
    case '\n': sb_puts(b, mode == ESC_XML_ATTR ? "&#10;" : "\n"); return;
    default:
        /* XML 1.0 has no way to write the other C0 controls, not even as &#1;: they are
         * dropped. DEL (0x7F) is an allowed character. */
        if ((unsigned char) *p >= 0x20)
            sb_putn(b, p, 1);
        return;
    }
}

/* An ASCII byte (< 0x80) in context mode. */
static void put_ascii(sbuf *b, const char *p, esc_mode mode, int indent)
{
    unsigned char c = (unsigned char) *p;
    if (mode == ESC_XML_TEXT || mode == ESC_XML_ATTR) {
        put_xml_ascii(b, p, mode);
        return;
    }
    if (mode != ESC_RAW) { /* text for a terminal or a TAP line */
        if (c == '\n' && mode == ESC_BLOCK) {
            sb_puts(b, "\n");
            sb_spaces(b, indent);
            return;
        }
        if (c == '\r' && mode == ESC_BLOCK && p[1] == '\n')
            return; /* CR LF: the LF makes the line break */
        if (c == '\t' || c == '\r' || c == '\n') {
            sb_puts(b, " ");
            return;
        }
        if (c < 0x20 || c == 0x7F) {
            sb_puts(b, REPLACEMENT_CHAR); /* no raw ESC (or any control) reaches a terminal */
            return;
        }
        if (mode == ESC_TAP_NAME && (c == '#' || c == '\\'))
            sb_puts(b, "\\");
    }
    sb_putn(b, p, 1);
}

/* Appends s (NULL appends nothing) cleaned and escaped for mode; indent is for ESC_BLOCK. */
static void put_text(sbuf *b, const char *s, esc_mode mode, int indent)
{
    if (!s)
        return;
    char *scrubbed = redact_scrub(s);
    const char *p = scrubbed ? scrubbed : s;
    bool xml = mode == ESC_XML_TEXT || mode == ESC_XML_ATTR;
    bool terminal = mode == ESC_LINE || mode == ESC_BLOCK || mode == ESC_TAP_NAME;
    while (*p) {
        if ((unsigned char) *p < 0x80) {
            put_ascii(b, p, mode, indent);
            p++;
            continue;
        }
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            sb_puts(b, REPLACEMENT_CHAR);
            p++;
            continue;
        }
        const unsigned char *u = (const unsigned char *) p;
        if (terminal && n == 2 && u[0] == 0xC2 && u[1] < 0xA0) {
            /* C1 controls U+0080..U+009F: some terminals act on U+009B (CSI) as on ESC [ */
            sb_puts(b, REPLACEMENT_CHAR);
        } else if (xml && n == 3 && u[0] == 0xEF && u[1] == 0xBF && u[2] >= 0xBE) {
            /* U+FFFE and U+FFFF are not XML 1.0 characters: drop them */
        } else {
            sb_putn(b, p, n);
        }
        p += n;
    }
    free(scrubbed);
}

/* A cleaned copy of s (secrets masked, UTF-8 repaired), newly allocated; NULL when out of memory. */
static char *clean_copy(const char *s)
{
    sbuf b = {0};
    put_text(&b, s, ESC_RAW, 0);
    return sb_finish(&b);
}

/* The number of code points in valid UTF-8 text (an approximation of its terminal width that
 * ignores double-width and combining characters). */
static int text_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char) *s & 0xC0) != 0x80;
    return w;
}

/* ---- shared bits --------------------------------------------------------------------------- */

static const char *kind_name(const verify_result *res)
{
    const char *k = verify_kind_name(res->check->kind);
    return k ? k : "unknown";
}

static const char *severity_name(verify_severity s) { return s == VSEV_WARN ? "warn" : "error"; }

/* Why a check was skipped: the result's message, else the spec's reason. */
static const char *skip_reason(const verify_result *res)
{
    return res->message ? res->message : res->check->skip_reason;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* Adds s cleaned (secrets masked, UTF-8 repaired), or JSON null when s is NULL. False when out
 * of memory. */
static bool add_clean_str(cJSON *obj, const char *name, const char *s)
{
    if (!s)
        return report_add_str(obj, name, NULL) != NULL;
    char *c = clean_copy(s);
    bool ok = c && report_add_str(obj, name, c) != NULL;
    free(c);
    return ok;
}

/* Cleans every string value inside a details tree the way add_clean_str does. */
static bool clean_json_strings(cJSON *item)
{
    for (; item; item = item->next) {
        if (cJSON_IsString(item) && item->valuestring) {
            char *c = clean_copy(item->valuestring);
            bool ok = c && (strcmp(c, item->valuestring) == 0 || cJSON_SetValuestring(item, c));
            free(c);
            if (!ok)
                return false;
        }
        if (item->child && !clean_json_strings(item->child))
            return false;
    }
    return true;
}

static cJSON *check_json(const verify_result *res)
{
    const verify_check *k = res->check;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = add_clean_str(o, "name", k->name) && cJSON_AddStringToObject(o, "kind", kind_name(res)) &&
              cJSON_AddStringToObject(o, "severity", severity_name(k->severity)) &&
              cJSON_AddStringToObject(o, "status", verify_status_name(res->status)) &&
              add_clean_str(o, "observed", res->observed) && add_clean_str(o, "expected", res->expected) &&
              add_clean_str(o, "message", res->message) && add_clean_str(o, "hint", res->hint) &&
              report_add_int(o, "attempts", res->attempts) && report_add_seconds(o, "seconds", res->seconds) &&
              (k->line == 0 || report_add_int(o, "spec_line", k->line));
    if (ok && res->details) {
        cJSON *d = cJSON_Duplicate(res->details, true);
        ok = d && clean_json_strings(d) && cJSON_AddItemToObject(o, "details", d);
        if (!ok)
            cJSON_Delete(d);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *verify_render_json(const verify_report *r, const char *database, const char *spec_origin)
{
    cJSON *doc = report_new("verify");
    if (!doc)
        return NULL;
    cJSON *summary = NULL, *checks = NULL;
    bool ok = add_clean_str(doc, "database", database) && add_clean_str(doc, "spec", spec_origin) &&
              cJSON_AddStringToObject(doc, "status", r->fail == 0 ? "pass" : "fail") &&
              add_clean_str(doc, "server_version", r->server_version) &&
              (summary = cJSON_AddObjectToObject(doc, "summary")) && report_add_int(summary, "total", r->n) &&
              report_add_int(summary, "pass", r->pass) && report_add_int(summary, "fail", r->fail) &&
              report_add_int(summary, "warn", r->warn) && report_add_int(summary, "skip", r->skip) &&
              report_add_int(doc, "attempts", r->attempts) && report_add_seconds(doc, "seconds", r->seconds) &&
              (checks = cJSON_AddArrayToObject(doc, "checks"));
    for (int i = 0; ok && i < r->n; i++) {
        cJSON *o = check_json(&r->results[i]);
        ok = o && cJSON_AddItemToArray(checks, o);
        if (!ok)
            cJSON_Delete(o);
    }
    if (!ok) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* ---- human --------------------------------------------------------------------------------- */

#define NAME_WIDTH_MAX 50
#define HUMAN_INDENT 6 /* the width of "PASS  " */

static const char *status_tag(verify_status s)
{
    switch (s) {
    case VR_PASS: return "PASS";
    case VR_FAIL: return "FAIL";
    case VR_WARN: return "WARN";
    case VR_SKIP: return "SKIP";
    }
    return "????";
}

/* ANSI SGR colour of a status tag: green, bold red, yellow, dim. */
static const char *status_color(verify_status s)
{
    switch (s) {
    case VR_PASS: return "\033[32m";
    case VR_FAIL: return "\033[1;31m";
    case VR_WARN: return "\033[33m";
    case VR_SKIP: return "\033[2m";
    }
    return "";
}

/* "      label: value" with continuation lines aligned under the value; nothing when value is NULL. */
static void human_detail(sbuf *b, const char *label, const char *value)
{
    if (!value)
        return;
    sb_spaces(b, HUMAN_INDENT);
    sb_printf(b, "%s: ", label);
    put_text(b, value, ESC_BLOCK, HUMAN_INDENT + (int) strlen(label) + 2);
    sb_puts(b, "\n");
}

static void render_human(sbuf *b, const verify_report *r, const char *database, const char *spec_origin,
                         bool color)
{
    sb_puts(b, "pgmemctl verify: ");
    put_text(b, database ? database : "(unknown database)", ESC_LINE, 0);
    if (r->server_version[0]) {
        sb_puts(b, " (PostgreSQL ");
        put_text(b, r->server_version, ESC_LINE, 0);
        sb_puts(b, ")");
    }
    sb_puts(b, ", ");
    put_text(b, spec_origin ? spec_origin : "(unknown spec)", ESC_LINE, 0);
    sb_puts(b, "\n");

    /* Names are measured as they will be printed (secrets masked, control bytes replaced). */
    sbuf name = {0};
    int width = 0;
    for (int i = 0; i < r->n; i++) {
        name.len = 0;
        put_text(&name, r->results[i].check->name, ESC_LINE, 0);
        int w = name.s && !name.oom ? text_width(name.s) : 0;
        if (w > width)
            width = w > NAME_WIDTH_MAX ? NAME_WIDTH_MAX : w;
    }
    free(name.s);

    for (int i = 0; i < r->n; i++) {
        const verify_result *res = &r->results[i];
        if (color)
            sb_printf(b, "%s%s\033[0m  ", status_color(res->status), status_tag(res->status));
        else
            sb_printf(b, "%s  ", status_tag(res->status));
        size_t start = b->len;
        put_text(b, res->check->name, ESC_LINE, 0);
        const char *message = res->status == VR_SKIP ? skip_reason(res) : res->message;
        if (message) {
            int w = b->oom ? 0 : text_width(b->s + start);
            sb_spaces(b, (w < width ? width - w : 0) + 2); /* longer names are not cut */
            put_text(b, message, ESC_LINE, 0);
        }
        sb_puts(b, "\n");
        if (res->status == VR_FAIL || res->status == VR_WARN) {
            human_detail(b, "observed", res->observed);
            human_detail(b, "expected", res->expected);
            human_detail(b, "hint", res->hint);
        }
    }

    sb_printf(b, "%d check%s: %d passed, %d failed, %d warning%s, %d skipped in %.2f s", r->n,
              r->n == 1 ? "" : "s", r->pass, r->fail, r->warn, r->warn == 1 ? "" : "s", r->skip, r->seconds);
    if (r->attempts > 1)
        sb_printf(b, ", %d rounds", r->attempts);
    sb_puts(b, "\n");
}

/* ---- JUnit XML ------------------------------------------------------------------------------ */

/* name="value" with value escaped for an attribute; the leading space included. */
static void xml_attr(sbuf *b, const char *name, const char *value)
{
    sb_printf(b, " %s=\"", name);
    put_text(b, value ? value : "", ESC_XML_ATTR, 0);
    sb_puts(b, "\"");
}

/* The lines "observed: …", "expected: …", "hint: …" of the present fields, escaped as XML text. */
static void xml_diagnostics(sbuf *b, const verify_result *res)
{
    const char *labels[] = {"observed", "expected", "hint"};
    const char *values[] = {res->observed, res->expected, res->hint};
    bool first = true;
    for (int i = 0; i < 3; i++) {
        if (!values[i])
            continue;
        sb_printf(b, "%s%s: ", first ? "" : "\n", labels[i]);
        put_text(b, values[i], ESC_XML_TEXT, 0);
        first = false;
    }
}

static void junit_testcase(sbuf *b, const verify_result *res)
{
    sb_puts(b, "    <testcase");
    xml_attr(b, "name", res->check->name);
    sb_puts(b, " classname=\"pgmemctl.verify.");
    put_text(b, kind_name(res), ESC_XML_ATTR, 0);
    sb_printf(b, "\" time=\"%.3f\"", res->seconds);
    switch (res->status) {
    case VR_PASS:
        sb_puts(b, "/>\n");
        break;
    case VR_FAIL:
        sb_puts(b, ">\n      <failure");
        xml_attr(b, "message", res->message);
        xml_attr(b, "type", kind_name(res));
        sb_puts(b, ">");
        xml_diagnostics(b, res);
        sb_puts(b, "</failure>\n    </testcase>\n");
        break;
    case VR_SKIP:
        sb_puts(b, ">\n      <skipped");
        xml_attr(b, "message", skip_reason(res));
        sb_puts(b, "/>\n    </testcase>\n");
        break;
    case VR_WARN:
        /* a warning does not fail the build: a passing testcase that says so in its output */
        sb_puts(b, ">\n      <system-out>warning: ");
        put_text(b, res->message, ESC_XML_TEXT, 0);
        if (res->observed || res->expected || res->hint)
            sb_puts(b, "\n");
        xml_diagnostics(b, res);
        sb_puts(b, "</system-out>\n    </testcase>\n");
        break;
    }
}

static void render_junit(sbuf *b, const verify_report *r, const char *database, const char *spec_origin)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        strcpy(stamp, "1970-01-01T00:00:00Z");

    sb_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb_printf(b, "<testsuites name=\"pgmemctl verify\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" "
                 "time=\"%.3f\">\n",
              r->n, r->fail, r->skip, r->seconds);
    sb_puts(b, "  <testsuite name=\"pgmemctl verify: ");
    put_text(b, spec_origin ? spec_origin : "", ESC_XML_ATTR, 0);
    sb_printf(b, "\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" time=\"%.3f\" timestamp=\"%s\"",
              r->n, r->fail, r->skip, r->seconds, stamp);
    xml_attr(b, "hostname", host);
    sb_puts(b, ">\n    <properties>\n");
    const char *names[] = {"database", "server_version", "spec"};
    const char *values[] = {database, r->server_version, spec_origin};
    for (int i = 0; i < 3; i++) {
        sb_puts(b, "      <property");
        xml_attr(b, "name", names[i]);
        xml_attr(b, "value", values[i]);
        sb_puts(b, "/>\n");
    }
    sb_puts(b, "    </properties>\n");
    for (int i = 0; i < r->n; i++)
        junit_testcase(b, &r->results[i]);
    sb_puts(b, "  </testsuite>\n</testsuites>\n");
}

/* ---- TAP ------------------------------------------------------------------------------------ */

/* libyaml output handler: appends to the sbuf in data. */
static int yaml_to_sbuf(void *data, unsigned char *buffer, size_t size)
{
    sbuf *b = data;
    sb_putn(b, (const char *) buffer, size);
    return !b->oom;
}

/* True when a YAML 1.1 or 1.2 reader would take the plain scalar s for something other than a
 * string (null, a boolean, a number), so it must be quoted. Quoting itself is libyaml's job. */
static bool yaml_needs_quotes(const char *s)
{
    static const char *const words[] = {"", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return true;
    /* numbers, including .5, -1, +1, .inf, .nan, 0x1f, 1_000 and sexagesimal 1:20 */
    return strchr("0123456789+-.", s[0]) != NULL;
}

/* True when s holds a line break as YAML counts them (LF, CR, NEL, LS, PS). */
static bool yaml_has_break(const char *s)
{
    return strpbrk(s, "\r\n") || strstr(s, "\xC2\x85") || strstr(s, "\xE2\x80\xA8") || strstr(s, "\xE2\x80\xA9");
}

static bool yaml_scalar(yaml_emitter_t *em, const char *s)
{
    yaml_event_t ev;
    bool plain = !yaml_needs_quotes(s);
    /* TAP::Parser's YAMLish reader cannot read multi-line quoted scalars: with a line break in
     * it, a value is written double-quoted, where libyaml escapes the break as \n. */
    yaml_scalar_style_t style = yaml_has_break(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;
    return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *) s, (int) strlen(s), plain, 1, style) &&
           yaml_emitter_emit(em, &ev);
}

/* Emits the YAML document "---\nkey: value\n…\n...\n" of a failed or warning check into out.
 * Values are cleaned first (libyaml refuses invalid UTF-8). False on failure. */
static bool tap_yaml(sbuf *out, const verify_result *res)
{
    const char *keys[] = {"kind", "severity", "message", "observed", "expected", "hint"};
    const char *values[] = {kind_name(res), severity_name(res->check->severity), res->message, res->observed,
                            res->expected, res->hint};
    yaml_emitter_t em;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em))
        return false;
    yaml_emitter_set_output(&em, yaml_to_sbuf, out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1); /* never fold long values over lines */
    yaml_emitter_set_indent(&em, 2);
    bool ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&em, &ev) &&
              yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0) && yaml_emitter_emit(&em, &ev) &&
              yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) &&
              yaml_emitter_emit(&em, &ev);
    for (size_t i = 0; ok && i < sizeof keys / sizeof keys[0]; i++) {
        if (!values[i])
            continue;
        char *v = clean_copy(values[i]);
        ok = v && yaml_scalar(&em, keys[i]) && yaml_scalar(&em, v);
        free(v);
    }
    ok = ok && yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev) &&
         yaml_document_end_event_initialize(&ev, 0) && yaml_emitter_emit(&em, &ev) &&
         yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev);
    if (!ok && em.error != YAML_NO_ERROR)
        log_error("could not write a TAP diagnostic: %s", em.problem ? em.problem : "libyaml error");
    yaml_emitter_delete(&em);
    return ok;
}

/* Appends each line of text indented by two spaces (TAP's YAMLish block). */
static void put_indented(sbuf *b, const char *text)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t) (nl - text) + 1 : strlen(text);
        sb_puts(b, "  ");
        sb_putn(b, text, n);
        text += n;
    }
    if (b->len && b->s[b->len - 1] != '\n')
        sb_puts(b, "\n");
}

static bool render_tap(sbuf *b, const verify_report *r)
{
    sb_printf(b, "TAP version 13\n1..%d\n", r->n);
    sbuf yaml = {0};
    bool ok = true;
    for (int i = 0; ok && i < r->n; i++) {
        const verify_result *res = &r->results[i];
        sb_printf(b, "%s %d - ", res->status == VR_FAIL || res->status == VR_WARN ? "not ok" : "ok", i + 1);
        put_text(b, res->check->name, ESC_TAP_NAME, 0);
        if (res->status == VR_SKIP) {
            sb_puts(b, " # SKIP ");
            put_text(b, skip_reason(res) ? skip_reason(res) : "skipped", ESC_LINE, 0);
        } else if (res->status == VR_WARN) {
            /* a TODO test that fails does not fail the run for TAP consumers */
            sb_puts(b, " # TODO warning: ");
            put_text(b, res->message ? res->message : "(no message)", ESC_LINE, 0);
        }
        sb_puts(b, "\n");
        if (res->status == VR_FAIL || res->status == VR_WARN) {
            yaml.len = 0;
            ok = tap_yaml(&yaml, res) && !yaml.oom;
            if (ok)
                put_indented(b, yaml.s);
        }
    }
    free(yaml.s);
    return ok;
}

/* ---- text entry points ----------------------------------------------------------------------- */

char *verify_render_text(const verify_report *r, verify_format f, const char *database, const char *spec_origin,
                         bool color)
{
    sbuf b = {0};
    switch (f) {
    case VF_HUMAN: render_human(&b, r, database, spec_origin, color); break;
    case VF_JUNIT: render_junit(&b, r, database, spec_origin); break;
    case VF_TAP:
        if (!render_tap(&b, r))
            b.oom = true;
        break;
    case VF_JSON: {
        /* not a text format, but rendering it here costs nothing and saves callers a branch */
        cJSON *doc = verify_render_json(r, database, spec_origin);
        char *text = doc ? cJSON_Print(doc) : NULL;
        if (text) {
            sb_puts(&b, text);
            sb_puts(&b, "\n");
        } else {
            b.oom = true;
        }
        cJSON_free(text);
        cJSON_Delete(doc);
        break;
    }
    }
    return sb_finish(&b);
}

bool verify_print_text(const char *text) { return report_print_text(text); }

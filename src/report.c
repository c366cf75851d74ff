/* report.c — builds and prints the JSON summary of a run. */
#include "report.h"
#include "log.h"
#include "redact.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *report_new(const char *command)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc)
        return NULL;
    cJSON_AddStringToObject(doc, "command", command);
    cJSON_AddStringToObject(doc, "pgmemctl_version", PGMEMCTL_VERSION);
    return doc;
}

static bool printed;

bool report_was_printed(void) { return printed; }

bool report_print_error(const char *command, int exit_code, const char *message)
{
    cJSON *doc = report_new(command);
    if (!doc)
        return false;
    cJSON_AddStringToObject(doc, "status", exit_code == 2 ? "usage_error" : "failed");
    cJSON_AddNumberToObject(doc, "exit_code", exit_code);
    cJSON_AddStringToObject(doc, "error", message && *message ? message : "see the messages on stderr");
    bool ok = report_print(doc);
    cJSON_Delete(doc);
    return ok;
}

bool report_print_text(const char *text)
{
    printed = true;
    char *clean = redact_scrub(text);
    fputs(clean ? clean : text, stdout);
    free(clean);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        log_error("could not write the summary to stdout");
        return false;
    }
    return true;
}

bool report_print(const cJSON *doc)
{
    printed = true;
    char *text = cJSON_Print(doc);
    if (!text) {
        log_error("out of memory rendering the JSON summary");
        return false;
    }
    size_t n = strlen(text);
    char *line = malloc(n + 2);
    bool ok = false;
    if (line) {
        memcpy(line, text, n);
        memcpy(line + n, "\n", 2);
        ok = report_print_text(line);
        free(line);
    } else {
        log_error("out of memory rendering the JSON summary");
    }
    cJSON_free(text);
    return ok;
}

cJSON *report_add_int(cJSON *obj, const char *name, int64_t v)
{
    return cJSON_AddNumberToObject(obj, name, (double) v);
}

cJSON *report_add_seconds(cJSON *obj, const char *name, double seconds)
{
    return cJSON_AddNumberToObject(obj, name, round(seconds * 1000.0) / 1000.0);
}

cJSON *report_add_str(cJSON *obj, const char *name, const char *s)
{
    return s ? cJSON_AddStringToObject(obj, name, s) : cJSON_AddNullToObject(obj, name);
}

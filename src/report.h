/* report.h — the one JSON document a run prints on stdout (cJSON), with every registered
 * secret scrubbed, and small helpers to build it. */
#ifndef PGMEMCTL_REPORT_H
#define PGMEMCTL_REPORT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/* A new document {"command": command, "pgmemctl_version": PGMEMCTL_VERSION}; caller owns it
 * (cJSON_Delete). NULL when out of memory. */
cJSON *report_new(const char *command);

/* Prints doc (formatted, newline-terminated) to stdout, scrubbed of secrets, then checks that
 * stdout was written (fflush/ferror). Returns false (after logging) when writing failed. Does
 * not free doc. */
bool report_print(const cJSON *doc);

/* Prints text (another output format asked for by the user, e.g. verify's JUnit XML) to stdout
 * in place of the JSON document, scrubbed of secrets, then checks stdout like report_print.
 * Counts as the run's document for report_was_printed. Returns false (logged) on a write error. */
bool report_print_text(const char *text);

/* True once report_print has written a document in this process. */
bool report_was_printed(void);

/* Prints the document of a run that ended before it had a result (usage or configuration
 * error, connection refused): {"command", "pgmemctl_version", "status": "usage_error" for exit
 * code 2 else "failed", "exit_code", "error": message}. Returns report_print's result. */
bool report_print_error(const char *command, int exit_code, const char *message);

/* Adds an int64 as a JSON number (exact up to 2^53). Returns the added item or NULL. */
cJSON *report_add_int(cJSON *obj, const char *name, int64_t v);
/* Adds seconds rounded to milliseconds. */
cJSON *report_add_seconds(cJSON *obj, const char *name, double seconds);
/* Adds a string, or JSON null when s is NULL. */
cJSON *report_add_str(cJSON *obj, const char *name, const char *s);

#endif

/* buildinfo.h — what this binary was built with: its kind (dynamic, static-musl, static-glibc) and the
 * versions of the libraries linked into it, for --version. */
#ifndef PGMEMCTL_BUILDINFO_H
#define PGMEMCTL_BUILDINFO_H

#include <stddef.h>

/* Writes one line (no newline) into out (outlen bytes, truncated if short), e.g.
 *   "pgmemctl 0.1.0 (static-musl; libpq 17.11, OpenSSL 3.0.20, SQLite 3.40.1, curl 7.88.1, libyaml 0.2.5, cJSON 1.7.15)"
 * The versions are the run-time ones the libraries report (PQlibVersion, OpenSSL_version,
 * sqlite3_libversion, curl_version_info, yaml_get_version_string, cJSON_Version): for a dynamic build,
 * those of the shared libraries found at run time. Never fails. */
void buildinfo_line(char *out, size_t outlen);

#endif

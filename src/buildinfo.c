/* buildinfo.c — the build kind and the linked libraries' versions, for --version. */
#include "buildinfo.h"

#include "pg.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <yaml.h>

#include <stdio.h>
#include <string.h>

#ifndef PGMEMCTL_BUILD
#define PGMEMCTL_BUILD "dynamic"
#endif

void buildinfo_line(char *out, size_t outlen)
{
    int lv = pg_lib_version();
    /* OpenSSL_version(OPENSSL_VERSION) is "OpenSSL 3.0.20 1 Jul 2025": keep the first two words */
    char ssl[64];
    snprintf(ssl, sizeof ssl, "%s", OpenSSL_version(OPENSSL_VERSION));
    char *sp = strchr(ssl, ' ');
    if (sp != NULL && (sp = strchr(sp + 1, ' ')) != NULL)
        *sp = '\0';
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    snprintf(out, outlen, "pgmemctl %s (%s; libpq %d.%d, %s, SQLite %s, curl %s, libyaml %s, cJSON %s)",
             PGMEMCTL_VERSION, PGMEMCTL_BUILD, lv / 10000, lv % 10000, ssl, sqlite3_libversion(),
             cv != NULL && cv->version != NULL ? cv->version : "?", yaml_get_version_string(), cJSON_Version());
}

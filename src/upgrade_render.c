/* upgrade_render.c — the JSON document of `pgmemctl upgrade` and the plan / rollback text on
 * stderr. */
#include "log.h"
#include "report.h"
#include "upgrade.h"

#include <stdio.h>
#include <string.h>

static cJSON *lines(char **arr, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(arr[i]));
    return a;
}

static cJSON *side(const char *version, int major, const char *where_key, const char *where, const char *bindir)
{
    cJSON *o = cJSON_CreateObject();
    report_add_str(o, "version", version);
    if (major > 0)
        report_add_int(o, "major", major);
    else
        cJSON_AddNullToObject(o, "major");
    report_add_str(o, where_key, where);
    if (bindir)
        report_add_str(o, "bindir", bindir);
    return o;
}

cJSON *upgrade_render(const upgrade_options *o, const upgrade_result *res)
{
    cJSON *doc = report_new("upgrade");
    if (!doc)
        return NULL;
    report_add_str(doc, "preset", o->preset);
    report_add_str(doc, "method", upgrade_method_name(o->method));
    report_add_str(doc, "mode", o->method == UPG_PG_UPGRADE ? upgrade_mode_name(o->mode) : NULL);
    report_add_str(doc, "status", upgrade_status_name(res->status));
    cJSON_AddBoolToObject(doc, "dry_run", o->dry_run);
    if (res->error)
        report_add_str(doc, "error", res->error);
    bool pgu = o->method == UPG_PG_UPGRADE;  /* dump and logical: two servers */
    cJSON_AddItemToObject(doc, "from",
                          side(res->old_version, res->old_major, pgu ? "datadir" : "conninfo", res->old_where,
                               pgu ? o->old_bindir : NULL));
    cJSON_AddItemToObject(doc, "to",
                          side(res->new_version, res->new_major, pgu ? "datadir" : "conninfo", res->new_where,
                               pgu ? o->new_bindir : o->tools_bindir));
    if (res->jobs > 0)
        report_add_int(doc, "jobs", res->jobs);
    cJSON *settings = cJSON_AddArrayToObject(doc, "settings");
    for (int i = 0; settings && i < res->nsettings; i++) {
        cJSON *s = cJSON_CreateObject();
        report_add_str(s, "name", res->settings[i].name);
        report_add_str(s, "value", res->settings[i].value);
        report_add_str(s, "source", res->settings[i].source);
        report_add_str(s, "rule", res->settings[i].rule);
        cJSON_AddItemToArray(settings, s);
    }

    cJSON *pre = cJSON_AddObjectToObject(doc, "preflight");
    cJSON_AddBoolToObject(pre, "passed", res->nchecks > 0 && upgrade_checks_passed(res));
    cJSON *checks = cJSON_AddArrayToObject(pre, "checks");
    for (int i = 0; checks && i < res->nchecks; i++) {
        cJSON *c = cJSON_CreateObject();
        report_add_str(c, "name", res->checks[i].name);
        cJSON_AddBoolToObject(c, "passed", res->checks[i].passed);
        report_add_str(c, "detail", res->checks[i].detail);
        cJSON_AddItemToArray(checks, c);
    }
    if (res->compat_ran) {
        report_add_int(pre, "options_tried", res->compat.tried);
        cJSON_AddItemToObject(pre, "rejected", compat_render(&res->compat));
    }
    cJSON_AddItemToObject(doc, "plan", lines(res->plan, res->nplan));

    cJSON *phases = cJSON_AddArrayToObject(doc, "phases");
    for (int i = 0; phases && i < res->nphases; i++) {
        cJSON *p = cJSON_CreateObject();
        report_add_str(p, "name", res->phases[i].name);
        report_add_seconds(p, "seconds", res->phases[i].seconds);
        cJSON_AddItemToArray(phases, p);
    }
    report_add_seconds(doc, "total_seconds", res->total_seconds);
    if (res->downtime_seconds >= 0)
        report_add_seconds(doc, "downtime_seconds", res->downtime_seconds);
    else
        cJSON_AddNullToObject(doc, "downtime_seconds");
    report_add_str(doc, "downtime_from", res->downtime_from);
    report_add_str(doc, "downtime_until", res->downtime_until);
    if (res->statistics_seconds >= 0)
        report_add_seconds(doc, "statistics_seconds", res->statistics_seconds);
    else
        cJSON_AddNullToObject(doc, "statistics_seconds");
    cJSON_AddItemToObject(doc, "databases", lines(res->databases, res->ndatabases));

    cJSON *ext = cJSON_AddObjectToObject(doc, "vector");
    report_add_str(ext, "before", res->vector_before);
    report_add_str(ext, "after", res->vector_after);
    cJSON *ups = cJSON_AddArrayToObject(doc, "extensions_updated");
    for (int i = 0; ups && i < res->nupdates; i++) {
        cJSON *u = cJSON_CreateObject();
        report_add_str(u, "database", res->updates[i].db);
        report_add_str(u, "extension", res->updates[i].name);
        report_add_str(u, "from", res->updates[i].from);
        report_add_str(u, "to", res->updates[i].to);
        cJSON_AddItemToArray(ups, u);
    }
    if (res->proof_ran)
        cJSON_AddItemToObject(doc, "proof", proof_render(&res->proof));
    else
        cJSON_AddNullToObject(doc, "proof");
    if (res->details)
        cJSON_AddItemToObject(doc, upgrade_method_name(o->method), cJSON_Duplicate(res->details, true));
    cJSON_AddItemToObject(doc, "rollback", lines(res->rollback, res->nrollback));
    report_add_str(doc, "work_dir", res->work_dir);
    return doc;
}

void upgrade_print_steps(const upgrade_result *res)
{
    if (res->status == UPG_ST_DRY_RUN && res->nplan > 0) {
        log_info("upgrade: plan:");
        for (int i = 0; i < res->nplan; i++)
            log_info("  %d. %s", i + 1, res->plan[i]);
    }
    if (res->nrollback > 0) {
        log_info("upgrade: rollback:");
        for (int i = 0; i < res->nrollback; i++)
            log_info("  - %s", res->rollback[i]);
    }
}

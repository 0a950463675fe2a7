/* mlctl deploy ...: deployments of image versions to machines, on a schedule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

/* "cron 30 6 * * 1-5", "at 2026-11-26 14:00" (local) or "now". */
static char *deploy_schedule(const json_t *o)
{
	const json_t *s = json_object_get(o, "schedule");
	const char *kind = json_string_value(json_object_get(s, "kind"));
	char buf[256], t[64];
	if (!kind)
		return NULL;
	if (strcmp(kind, "cron") == 0) {
		const char *c = json_string_value(json_object_get(s, "cron"));
		snprintf(buf, sizeof(buf), "cron %s", c ? c : "?");
	} else if (strcmp(kind, "at") == 0) {
		const char *at = json_string_value(json_object_get(s, "at"));
		if (at && when_local(at, false, t, sizeof(t)) == 0)
			at = t;
		snprintf(buf, sizeof(buf), "at %s", at ? at : "?");
	} else {
		snprintf(buf, sizeof(buf), "%s", kind);
	}
	return strdup(buf);
}

static const struct col deploy_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"NAME", "name", C_STR, NULL},
    {"VERSION", NULL, C_FN, cmd_deploy_version},
    {"TARGETS", NULL, C_FN, res_targets_col},
    {"SCHEDULE", NULL, C_FN, deploy_schedule},
    {"ENABLED", "enabled", C_BOOL, NULL},
    {"NEXT DUE", "next_due", C_TIME, NULL},
    {"LAST DUE", "last_due", C_TIME, NULL},
    {NULL, NULL, C_STR, NULL},
};

char *cmd_deploy_version(const json_t *o)
{
	const char *label = json_string_value(json_object_get(o, "_version"));
	const json_t *vid = json_object_get(o, "version_id");
	char buf[32];
	if (label)
		return strdup(label);
	if (!json_is_integer(vid))
		return NULL;
	snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(vid));
	return strdup(buf);
}

int cmd_deploy_prep_versions(struct mlctl *ml, json_t *items)
{
	json_t *it;
	size_t i;
	json_array_foreach(items, i, it)
	{
		const json_t *img = json_object_get(it, "image_id"),
		             *vid = json_object_get(it, "version_id");
		char label[128];
		if (!json_is_integer(img) || !json_is_integer(vid))
			continue;
		int rc = res_version_label(ml, (int64_t)json_integer_value(img),
		                           (int64_t)json_integer_value(vid), label, sizeof(label));
		if (rc < 0)
			return rc;
		json_object_set_new(it, "_version", json_string(label));
	}
	return 0;
}

/* For the table: versions as IMAGE:vN and the targets' names. */
static int deploy_prep(struct mlctl *ml, json_t *items)
{
	int rc = cmd_deploy_prep_versions(ml, items);
	return rc < 0 ? rc : res_prep_targets(ml, items);
}

const struct res res_deploy = {"deployment", "/deployments", "name",     false,
                               false,        deploy_cols,    deploy_prep};

/* The body of create (patch = false) or set: options, version and schedule. */
static int deploy_body(struct mlctl *ml, struct args *a, json_t *body, bool patch)
{
	int rc = arg_body(ml, a, body, patch);
	if (rc < 0)
		return rc;
	const char *ver = arg_val(a, "version");
	if (ver) {
		int64_t vid;
		rc = res_version_ref(ml, ver, &vid);
		if (rc < 0)
			return rc;
		json_object_set_new(body, "version_id", json_integer((json_int_t)vid));
	} else if (!patch) {
		return ml_usage(ml, "--version is required");
	}
	int n = arg_has(a, "now") + arg_has(a, "at") + arg_has(a, "cron");
	if (n > 1 || (!patch && n == 0))
		return ml_usage(ml, "give %s of --now, --at TIME and --cron EXPR",
		                patch ? "at most one" : "one");
	const char *kind = arg_has(a, "now") ? "now" : arg_has(a, "at") ? "at" : "cron";
	if (n == 1) {
		json_t *s = json_object_get(body, "schedule");
		if (!s) {
			s = json_object();
			json_object_set_new(body, "schedule", s);
		}
		json_object_set_new(s, "kind", json_string(kind));
	}
	return 0;
}

static int deploy_write(struct mlctl *ml, struct args *a, bool patch)
{
	json_t *body = json_object(), *obj = NULL;
	char path[96];
	int64_t id = 0;
	int rc;
	if (!body)
		return ml_fail(ml, "out of memory");
	if (!patch)
		json_object_set_new(body, "name", json_string(arg_pos(a, 0)));
	rc = deploy_body(ml, a, body, patch);
	if (rc < 0)
		goto out;
	if (patch && json_object_size(body) == 0) {
		rc = ml_usage(ml, "nothing to change: give at least one option (see --help)");
		goto out;
	}
	if (patch) {
		rc = res_id(ml, &res_deploy, arg_pos(a, 0), &id);
		if (rc < 0)
			goto out;
		res_path(path, sizeof(path), "/deployments", id, NULL);
		rc = cl_call(ml, "PATCH", path, body, &obj);
		if (rc == 0 && !obj)
			rc = cl_call(ml, "GET", path, NULL, &obj);
	} else {
		rc = cl_call(ml, "POST", "/deployments", body, &obj);
	}
	if (rc == 0 && obj)
		rc = out_one(ml, obj);
out:
	json_decref(body);
	json_decref(obj);
	return rc;
}

static int deploy_create(struct mlctl *ml, struct args *a)
{
	return deploy_write(ml, a, false);
}

static int deploy_set(struct mlctl *ml, struct args *a)
{
	return deploy_write(ml, a, true);
}

static int deploy_run(struct mlctl *ml, struct args *a)
{
	char path[96];
	int64_t id;
	json_t *run;
	unsigned secs;
	bool watch = arg_has(a, "watch");
	int rc = cmd_run_interval(ml, a, &secs);
	if (rc == 0)
		rc = res_id(ml, &res_deploy, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), "/deployments", id, "/run");
	rc = cl_call(ml, "POST", path, NULL, &run);
	if (rc < 0)
		return rc;
	const json_t *rid = json_object_get(run, "id");
	if (watch && json_is_integer(rid)) {
		/* One document with --json: the run as it ended, not also as it began. */
		int64_t run_id = (int64_t)json_integer_value(rid);
		json_decref(run);
		if (!ml->json && !ml->quiet)
			printf("run %lld started\n", (long long)run_id);
		return cmd_run_watch(ml, run_id, secs);
	}
	if (watch)
		rc = ml_fail(ml, "the server's answer is not a run");
	else
		rc = run ? out_one(ml, run) : 0;
	json_decref(run);
	return rc;
}

static int deploy_targets(struct mlctl *ml, struct args *a)
{
	char path[96];
	int64_t id;
	int rc = res_id(ml, &res_deploy, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), "/deployments", id, "/targets");
	return res_print_list(ml, &res_machine, path);
}

static int deploy_runs(struct mlctl *ml, struct args *a)
{
	char path[96];
	int64_t id;
	int rc = res_id(ml, &res_deploy, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "/runs?deployment=%lld", (long long)id);
	return res_print_list(ml, &res_run, path);
}

#define DEPLOY_FIELDS                                                                              \
	{                                                                                          \
	    "version", V_VAL,                                                                      \
	    "VERSION", "the image version: its id, or IMAGE, IMAGE:latest, IMAGE:vN",              \
	    NULL,      NULL},                                                                      \
	    {"machine",          V_IDS,                                                            \
	     "MACHINE",          "a target machine (id or name; a,b for several)",                 \
	     "targets.machines", &res_machine},                                                    \
	    {"group", V_IDS, "GROUP", "a target group", "targets.groups", &res_group},             \
	    {"criterion",        V_IDS,         "CRITERION", "a target criterion",                 \
	     "targets.criteria", &res_criterion},                                                  \
	    {"now", V_FLAG, NULL, "schedule: one run as soon as created", NULL, NULL},             \
	    {"at",                                                                                 \
	     V_TIME,                                                                               \
	     "TIME",                                                                               \
	     "schedule: one run at TIME (local 'YYYY-MM-DD HH:MM', "                               \
	     "ISO 8601, +2h)",                                                                     \
	     "schedule.at",                                                                        \
	     NULL},                                                                                \
	    {"cron",          V_STR, "EXPR", "schedule: 5 cron fields in the server's time zone",  \
	     "schedule.cron", NULL},                                                               \
	    {"rate-mbps",         V_INT, "N", "send rate 1-100000 Mbit/s (default: the server's)", \
	     "options.rate_mbps", NULL},                                                           \
	    {"wake", V_TRUE, NULL, "wake the machines first (the default)", "options.wake", NULL}, \
	    {"no-wake", V_FALSE, NULL, "do not wake the machines", "options.wake", NULL},          \
	    {"wait",           V_INT, "SECONDS", "wait this long for machines, 0-86400 (300)",     \
	     "options.wait_s", NULL},                                                              \
	    {"report-to",         V_STRS, "EMAIL", "mail a report to this address",                \
	     "options.report_to", NULL},                                                           \
	    {"boot",                                                                               \
	     V_STR,                                                                                \
	     "MODE",                                                                               \
	     "while a run runs, its machines network-boot MODE (microlinux, local, install, "      \
	     "shell)",                                                                             \
	     "options.boot_mode",                                                                  \
	     NULL},                                                                                \
	{                                                                                          \
		"field", V_RAW, "KEY=VALUE", "any other field (VALUE as JSON, else a string)",     \
		    NULL, NULL                                                                     \
	}

static const struct opt deploy_create_opts[] = {
    DEPLOY_FIELDS,
    {"disabled", V_FALSE, NULL, "create it disabled", "enabled", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt deploy_set_opts[] = {
    {"name", V_STR, "NAME", "a new name", "name", NULL},
    DEPLOY_FIELDS,
    {"enable", V_TRUE, NULL, "enable it", "enabled", NULL},
    {"disable", V_FALSE, NULL, "disable it (no scheduled runs)", "enabled", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt deploy_run_opts[] = {
    {"watch", V_FLAG, NULL, "follow the run until it ends (see mlctl run watch)", NULL, NULL},
    {"interval", V_VAL, "SECONDS", "with --watch: poll every SECONDS, 1-3600 (2)", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd deploy_cmds[] = {
    {"list", NULL, 0, 0, NULL, res_cmd_list, "list deployments with their next due time", NULL,
     "  mlctl deploy list", &res_deploy, CMD_LIST},
    {"show", "ID|NAME", 1, 1, NULL, res_cmd_show, "show one deployment", NULL,
     "  mlctl deploy show lab-b-win11", &res_deploy, 0},
    {"create", "NAME", 1, 1, deploy_create_opts, deploy_create,
     "create a deployment: a version, targets and one of --now, --at, --cron",
     "Targets: at least one --machine, --group or --criterion (their union).",
     "  mlctl deploy create lab-b-win11 --version win11:latest --group lab-b \\\n"
     "      --cron '30 6 * * 1-5' --rate-mbps 800 --report-to it@example.edu\n"
     "  mlctl deploy create hotfix --version 7 --machine pc-101 --now --no-wake",
     &res_deploy, 0},
    {"set", "ID|NAME", 1, 1, deploy_set_opts, deploy_set,
     "change a deployment (a new schedule recomputes the next due time)",
     "Targets given replace the targets whole; options are sent as given.",
     "  mlctl deploy set lab-b-win11 --at '2026-12-01 06:30'\n"
     "  mlctl deploy set lab-b-win11 --disable",
     &res_deploy, 0},
    {"rm", "ID|NAME...", 1, -1, NULL, res_cmd_rm, "delete deployments (their runs stay)", NULL,
     "  mlctl deploy rm hotfix", &res_deploy, 0},
    {"run", "ID|NAME", 1, 1, deploy_run_opts, deploy_run, "start a run now, whatever the schedule",
     "--watch follows the run like 'mlctl run watch' and exits like it.",
     "  mlctl deploy run lab-b-win11\n  mlctl deploy run lab-b-win11 --watch", &res_deploy, 0},
    {"targets", "ID|NAME", 1, 1, NULL, deploy_targets, "the machines a deployment resolves to now",
     NULL, "  mlctl deploy targets lab-b-win11", &res_deploy, CMD_LIST},
    {"runs", "ID|NAME", 1, 1, NULL, deploy_runs, "a deployment's runs, newest first", NULL,
     "  mlctl deploy runs lab-b-win11 --limit 5", &res_deploy, CMD_LIST},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_deploy_noun = {"deploy", "deployments of images to machines", deploy_cmds};

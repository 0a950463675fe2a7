/* mlctl run ...: the runs of deployments: show, watch, cancel, retry and roll back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "mlctl.h"
#include "parse.h"

static const struct col run_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"DEPLOYMENT", "deployment_name", C_STR, NULL},
    {"VERSION", NULL, C_FN, cmd_deploy_version},
    {"STATE", "state", C_STR, NULL},
    {"CAUSE", "cause", C_STR, NULL},
    {"DUE", "due_at", C_TIME, NULL},
    {"STARTED", "started_at", C_TIME, NULL},
    {"FINISHED", "finished_at", C_TIME, NULL},
    {"ERROR", "error", C_STR, NULL},
    {NULL, NULL, C_STR, NULL},
};

const struct res res_run = {"run", "/runs", NULL, false, false, run_cols, cmd_deploy_prep_versions};

#define RUN_INTERVAL_DEFAULT 2

int cmd_run_interval(struct mlctl *ml, const struct args *a, unsigned *secs)
{
	const char *v = arg_val(a, "interval"), *why;
	uint64_t n;
	*secs = RUN_INTERVAL_DEFAULT;
	if (!v)
		return 0;
	if (parse_uint(v, 1, 3600, &n, &why) < 0)
		return ml_usage(ml, "--interval %s: %s (1-3600 seconds)", v, why);
	*secs = (unsigned)n;
	return 0;
}

/* Sleeps secs seconds, through signals that do not end the process. */
static void run_sleep(unsigned secs)
{
	struct timespec ts = {.tv_sec = (time_t)secs, .tv_nsec = 0};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Sets "_version" (IMAGE:vN) on the run for the summary, asking the server once. */
static int run_prep(struct mlctl *ml, json_t *run, char *label, size_t size)
{
	if (label && label[0]) {
		json_object_set_new(run, "_version", json_string(label));
		return 0;
	}
	json_t *one = json_pack("[O]", run);
	if (!one)
		return ml_fail(ml, "out of memory");
	int rc = cmd_deploy_prep_versions(ml, one);
	json_decref(one);
	const char *v = json_string_value(json_object_get(run, "_version"));
	if (rc == 0 && label && v)
		snprintf(label, size, "%s", v);
	return rc;
}

/* Prints a run: --json as is, -q its id, else the summary, machines and totals. */
static int run_print(struct mlctl *ml, json_t *run)
{
	if (ml->json || ml->quiet)
		return out_one(ml, run);
	int rc = run_prep(ml, run, NULL, 0);
	if (rc < 0)
		return rc;
	char *t = rv_render(run, false);
	if (!t)
		return ml_fail(ml, "out of memory");
	fputs(t, stdout);
	free(t);
	return 0;
}

/* POSTs to /runs/ID/tail (or GETs when method is "GET") and prints the run it answers. */
static int run_act(struct mlctl *ml, struct args *a, const char *method, const char *tail)
{
	char path[96];
	int64_t id;
	json_t *run = NULL;
	int rc = res_id(ml, &res_run, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), "/runs", id, tail);
	rc = cl_call(ml, method, path, NULL, &run);
	if (rc == 0 && run)
		rc = run_print(ml, run);
	json_decref(run);
	return rc;
}

static int run_show(struct mlctl *ml, struct args *a)
{
	return run_act(ml, a, "GET", NULL);
}

static int run_cancel(struct mlctl *ml, struct args *a)
{
	return run_act(ml, a, "POST", "/cancel");
}

static int run_retry(struct mlctl *ml, struct args *a)
{
	return run_act(ml, a, "POST", "/retry");
}

/* The number of lines of text. */
static size_t run_lines(const char *t)
{
	size_t n = 0;
	for (; *t; t++)
		n += *t == '\n';
	return n;
}

/* The terminal's height, or 0 when unknown. */
static size_t run_rows(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0)
		return 0;
	return ws.ws_row;
}

/* Redraws the live view over the previous one (drawn lines); returns the lines drawn. */
static size_t run_redraw(const char *text, size_t drawn)
{
	size_t rows = run_rows();
	/*
	 * Moving the cursor up works only within the screen; a view taller
	 * than the terminal is redrawn from the top of a cleared screen.
	 */
	if (drawn > 0 && rows > 0 && drawn < rows)
		printf("\033[%zuA\r\033[J", drawn);
	else if (drawn > 0)
		fputs("\033[H\033[2J", stdout);
	fputs(text, stdout);
	fflush(stdout);
	return run_lines(text);
}

int cmd_run_watch(struct mlctl *ml, int64_t id, unsigned secs)
{
	char path[96], label[128] = "";
	struct rv_watch *w = rv_watch_new();
	json_t *run = NULL;
	size_t drawn = 0;
	bool people = !ml->json && !ml->quiet;
	bool live = people && ml->tty_out;
	int rc = 0, end = 0;
	if (!w)
		return ml_fail(ml, "out of memory");
	res_path(path, sizeof(path), "/runs", id, NULL);
	for (;;) {
		json_decref(run);
		run = NULL;
		rc = cl_call(ml, "GET", path, NULL, &run);
		if (rc < 0)
			goto out;
		if (!json_is_object(run)) {
			rc = ml_fail(ml, "the server's answer is not a run");
			goto out;
		}
		end = rv_end(run);
		if (people && (rc = run_prep(ml, run, label, sizeof(label))) < 0)
			goto out;
		if (live) {
			char *t = rv_render(run, true);
			struct sb s = {0};
			time_t now = time(NULL);
			struct tm tm;
			char stamp[16] = "";
			if (localtime_r(&now, &tm))
				strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
			sb_add(&s, t ? t : "");
			if (!end)
				sb_addf(
				    &s,
				    "\n%s, every %u s; Ctrl-C stops watching (the run goes on)\n",
				    stamp, secs);
			char *all = sb_take(&s);
			free(t);
			if (!all) {
				rc = ml_fail(ml, "out of memory");
				goto out;
			}
			drawn = run_redraw(all, drawn);
			free(all);
		} else if (people) {
			char *t = rv_watch_feed(w, run, time(NULL));
			if (!t) {
				rc = ml_fail(ml, "out of memory");
				goto out;
			}
			fputs(t, stdout);
			fflush(stdout);
			free(t);
		}
		if (end)
			break;
		run_sleep(secs);
	}
	if (ml->json) {
		rc = out_json(ml, run);
	} else if (people && !live) {
		char *t = rv_render(run, false);
		if (!t) {
			rc = ml_fail(ml, "out of memory");
			goto out;
		}
		printf("\n%s", t);
		free(t);
	}
	if (rc == 0 && end < 0) {
		const char *state = json_string_value(json_object_get(run, "state"));
		const char *err = json_string_value(json_object_get(run, "error"));
		rc = ml_fail(ml, "run %lld %s%s%s", (long long)id, state ? state : "ended",
		             err && *err ? ": " : "", err && *err ? err : "");
	}
out:
	json_decref(run);
	rv_watch_free(w);
	return rc;
}

static int run_watch(struct mlctl *ml, struct args *a)
{
	unsigned secs;
	int64_t id;
	int rc = cmd_run_interval(ml, a, &secs);
	if (rc == 0)
		rc = res_id(ml, &res_run, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	return cmd_run_watch(ml, id, secs);
}

/* Polls each command of cmds (replacing it with the full command) until all have ended. */
static int run_wait_commands(struct mlctl *ml, json_t *cmds, unsigned secs)
{
	size_t n = json_array_size(cmds);
	for (;;) {
		size_t open = 0, i;
		json_t *c;
		json_array_foreach(cmds, i, c)
		{
			const json_t *id = json_object_get(c, "id");
			char path[96];
			json_t *now;
			if (rv_command_ended(c))
				continue;
			if (!json_is_integer(id))
				return ml_fail(ml, "the server's command has no id");
			res_path(path, sizeof(path), "/commands", (int64_t)json_integer_value(id),
			         NULL);
			int rc = cl_call(ml, "GET", path, NULL, &now);
			if (rc < 0)
				return rc;
			if (!json_is_object(now)) {
				json_decref(now);
				return ml_fail(ml, "the server's answer is not a command");
			}
			json_array_set_new(cmds, i, now);
			if (!rv_command_ended(now))
				open++;
		}
		if (ml->tty_err && !ml->json && !ml->quiet && n > 0) {
			char detail[64];
			snprintf(detail, sizeof(detail), "%zu of %zu machines", n - open, n);
			out_progress("rollback", (double)(n - open) / (double)n, detail);
			if (open == 0)
				out_progress_end();
		}
		if (open == 0)
			return 0;
		run_sleep(secs);
	}
}

const struct opt cmd_rollback_opts[] = {
    {"image", V_ID, "IMAGE", "the image whose previous version becomes active again (id or name)",
     "image_id", &res_image},
    {"wait", V_FLAG, NULL, "wait until the rollbacks have ended, and show the results", NULL, NULL},
    {"interval", V_VAL, "SECONDS", "with --wait: poll every SECONDS, 1-3600 (2)", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

int cmd_rollback_of(struct mlctl *ml, struct args *a, const struct res *res, const char *base)
{
	char path[96];
	int64_t id;
	json_t *body;
	unsigned secs;
	/* Both usage errors come before any request. */
	if (!arg_has(a, "image"))
		return ml_usage(ml, "--image is required: the image to roll back");
	int rc = cmd_run_interval(ml, a, &secs);
	if (rc < 0)
		return rc;
	rc = res_id(ml, res, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	if (!(body = json_object()))
		return ml_fail(ml, "out of memory");
	rc = arg_body(ml, a, body, false);
	if (rc == 0) {
		res_path(path, sizeof(path), base, id, "/rollback");
		rc = cmd_rollback(ml, a, path, body);
	}
	json_decref(body);
	return rc;
}

int cmd_rollback(struct mlctl *ml, struct args *a, const char *path, const json_t *body)
{
	json_t *doc = NULL, *cmds;
	bool wait = arg_has(a, "wait");
	unsigned secs;
	size_t i, bad = 0;
	json_t *c;
	int rc = cmd_run_interval(ml, a, &secs);
	if (rc < 0)
		return rc;
	rc = cl_call(ml, "POST", path, body, &doc);
	if (rc < 0)
		goto out;
	cmds = json_object_get(doc, "commands");
	if (!json_is_array(cmds)) {
		rc = ml_fail(ml, "the server's answer has no commands");
		goto out;
	}
	if (wait && (rc = run_wait_commands(ml, cmds, secs)) < 0)
		goto out;
	if (ml->json) {
		rc = out_json(ml, doc);
	} else if (ml->quiet) {
		json_array_foreach(cmds, i, c)
		{
			const json_t *id = json_object_get(c, "id");
			if (json_is_integer(id))
				printf("%lld\n", (long long)json_integer_value(id));
		}
	} else if (json_array_size(cmds) == 0) {
		printf("nothing to roll back\n");
	} else {
		char *t = rv_commands(cmds);
		if (!t) {
			rc = ml_fail(ml, "out of memory");
			goto out;
		}
		fputs(t, stdout);
		free(t);
		if (!wait)
			fprintf(stderr,
			        "%zu rollback%s queued; follow with 'mlctl command show ID' "
			        "(or --wait next time)\n",
			        json_array_size(cmds), json_array_size(cmds) == 1 ? "" : "s");
	}
	if (wait) {
		json_array_foreach(cmds, i, c)
		{
			const char *st = json_string_value(json_object_get(c, "state"));
			bad += !st || strcmp(st, "done") != 0;
		}
		if (bad)
			rc = ml_fail(ml, "%zu of %zu rollbacks did not succeed", bad,
			             json_array_size(cmds));
	}
out:
	json_decref(doc);
	return rc;
}

static int run_rollback(struct mlctl *ml, struct args *a)
{
	char path[96];
	int64_t id;
	unsigned secs;
	int rc = cmd_run_interval(ml, a, &secs);
	if (rc == 0)
		rc = res_id(ml, &res_run, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), "/runs", id, "/rollback");
	return cmd_rollback(ml, a, path, NULL);
}

static const struct opt run_list_opts[] = {
    {"deployment", V_ID, "DEPLOYMENT", "only runs of this deployment (id or name)", "?deployment",
     &res_deploy},
    {"state", V_VAL, "STATE", "pending, running, done, failed or cancelled", "?state", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt run_watch_opts[] = {
    {"interval", V_VAL, "SECONDS", "poll every SECONDS, 1-3600 (2)", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt run_rollback_opts[] = {
    {"wait", V_FLAG, NULL, "wait until every machine has rolled back, and show the results", NULL,
     NULL},
    {"interval", V_VAL, "SECONDS", "with --wait: poll every SECONDS, 1-3600 (2)", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd run_cmds[] = {
    {"list", NULL, 0, 0, run_list_opts, res_cmd_list, "list runs, newest first", NULL,
     "  mlctl run list --deployment lab-b-win11 --state failed", &res_run, CMD_LIST},
    {"show", "ID", 1, 1, NULL, run_show, "show one run: a summary, its machines and totals",
     "--json prints the run as the server gives it.", "  mlctl run show 31", &res_run, 0},
    {"watch", "ID", 1, 1, run_watch_opts, run_watch, "follow a run until it ends",
     "On a terminal: a live table with each machine's progress, the phase, rate\n"
     "and time left. Otherwise one line per change of the run's phase or of a\n"
     "machine's state. Then the final table. Exit 0 when the run is done, 1\n"
     "when it failed or was cancelled, 3 when the server cannot be reached.",
     "  mlctl run watch 31\n  mlctl run watch 31 --interval 10 > run31.log", &res_run, 0},
    {"cancel", "ID", 1, 1, NULL, run_cancel, "cancel a pending or running run",
     "Machines still receiving are told to stop; the run ends cancelled.", "  mlctl run cancel 31",
     &res_run, 0},
    {"retry", "ID", 1, 1, NULL, run_retry,
     "a new run for the machines of an ended run that failed or were missing", NULL,
     "  mlctl run retry 31", &res_run, 0},
    {"rollback", "ID", 1, 1, run_rollback_opts, run_rollback,
     "switch every machine the run switched back to its previous version",
     "Queues one rollback command per machine and prints them; --wait follows\n"
     "them to the end and exits 1 when any did not succeed.",
     "  mlctl run rollback 31 --wait", &res_run, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_run_noun = {"run", "runs of deployments", run_cmds};

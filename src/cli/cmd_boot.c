/*
 * mlctl machine boot / group boot: how machines network-boot
 * (docs/netboot.md). One handler serves both nouns: show the mode, set
 * the own mode, set or remove a temporary one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

const struct opt cmd_boot_opts[] = {
    {"temporary", V_FLAG, NULL,
     "set MODE as a temporary mode, before the own one, until removed or expired", NULL, NULL},
    {"reason", V_VAL, "TEXT", "why (with --temporary), shown where the mode comes from", NULL,
     NULL},
    {"hours", V_VAL, "N", "the temporary mode expires after N hours (1-8784)", NULL, NULL},
    {"clear-temporary", V_FLAG, NULL, "remove the temporary mode", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static bool boot_mode_word(const char *s)
{
	static const char *const modes[] = {"microlinux", "local", "install", "shell", NULL};
	for (int i = 0; modes[i]; i++)
		if (strcmp(s, modes[i]) == 0)
			return true;
	return false;
}

/* A time of the answer in local time, or "-". */
static const char *boot_when(const json_t *o, const char *key, char *buf, size_t size)
{
	const char *t = json_string_value(json_object_get(o, key));
	if (!t)
		return "-";
	return when_local(t, false, buf, size) == 0 ? buf : t;
}

static void boot_print(const json_t *doc, bool group)
{
	const char *s;
	char t[64];
	const json_t *tmp = json_object_get(doc, "temporary");
	if (group) {
		s = json_string_value(json_object_get(doc, "mode"));
		printf("group %s: %s\n", json_string_value(json_object_get(doc, "name")),
		       s ? s : "no boot mode (its machines follow their own, or the default)");
		return;
	}
	printf("%s boots %s (%s)\n", json_string_value(json_object_get(doc, "name")),
	       json_string_value(json_object_get(doc, "mode")),
	       json_string_value(json_object_get(doc, "why")));
	s = json_string_value(json_object_get(doc, "own"));
	printf("  own mode:   %s\n", s ? s : "-");
	if (json_is_object(tmp)) {
		const char *reason = json_string_value(json_object_get(tmp, "reason"));
		const json_t *run = json_object_get(tmp, "run_id");
		printf("  temporary:  %s", json_string_value(json_object_get(tmp, "mode")));
		if (json_is_integer(run))
			printf(", run %lld", (long long)json_integer_value(run));
		if (reason && *reason)
			printf(", %s", reason);
		if (json_is_string(json_object_get(tmp, "expires_at")))
			printf(", until %s", boot_when(tmp, "expires_at", t, sizeof(t)));
		printf("\n");
	} else {
		printf("  temporary:  -\n");
	}
	s = json_string_value(json_object_get(doc, "last_boot_mode"));
	printf("  last boot:  %s%s%s%s\n", boot_when(doc, "last_boot_at", t, sizeof(t)),
	       s ? " (" : "", s ? s : "", s ? ")" : "");
}

int cmd_boot_of(struct mlctl *ml, struct args *a, const struct res *res, const char *base)
{
	const char *mode = arg_pos(a, 1), *hours = arg_val(a, "hours"),
	           *reason = arg_val(a, "reason");
	bool temp = arg_has(a, "temporary"), clear = arg_has(a, "clear-temporary");
	bool group = strcmp(base, "/groups") == 0;
	char path[128];
	int64_t id, h = 0;
	json_t *body = NULL, *doc = NULL;
	/* Usage errors come before any request. */
	if (mode && strcmp(mode, "default") != 0 && !boot_mode_word(mode))
		return ml_usage(ml,
		                "'%s' is not a boot mode: microlinux, local, install, shell (or "
		                "default, which clears the own mode)",
		                mode);
	if (clear && (mode || temp))
		return ml_usage(ml, "--clear-temporary takes no MODE and no --temporary");
	if (temp && (!mode || strcmp(mode, "default") == 0))
		return ml_usage(ml,
		                "--temporary needs a MODE: microlinux, local, install or shell");
	if ((hours || reason) && !temp)
		return ml_usage(ml, "--hours and --reason go with --temporary");
	if (hours) {
		char *end;
		h = strtoll(hours, &end, 10);
		if (*hours == '\0' || *end || h < 1 || h > 8784)
			return ml_usage(ml, "--hours must be a whole number from 1 to 8784");
	}
	int rc = res_id(ml, res, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), base, id, temp || clear ? "/boot/temporary" : "/boot");
	if (clear) {
		rc = cl_call(ml, "DELETE", path, NULL, &doc);
		if (rc == 0 && !ml->json && !ml->quiet)
			printf("temporary boot mode removed\n");
		else if (rc == 0 && ml->json)
			rc = out_json(ml, doc ? doc : json_object());
		json_decref(doc);
		return rc;
	}
	if (mode) {
		body = json_object();
		if (!body)
			return ml_fail(ml, "out of memory");
		json_object_set_new(body, "mode",
		                    strcmp(mode, "default") == 0 ? json_null() : json_string(mode));
		if (reason)
			json_object_set_new(body, "reason", json_string(reason));
		if (h)
			json_object_set_new(body, "expires_in_s", json_integer(h * 3600));
	}
	rc = cl_call(ml, mode ? "PUT" : "GET", path, body, &doc);
	json_decref(body);
	if (rc == 0 && group && temp) {
		/* A group's temporary mode answers with the count; show the group. */
		if (!ml->json && !ml->quiet)
			printf("%lld machines boot %s for now\n",
			       (long long)json_integer_value(json_object_get(doc, "machines")),
			       mode);
		else if (ml->json)
			rc = out_json(ml, doc);
	} else if (rc == 0) {
		if (ml->json)
			rc = out_json(ml, doc);
		else if (!ml->quiet)
			boot_print(doc, group);
	}
	json_decref(doc);
	return rc;
}

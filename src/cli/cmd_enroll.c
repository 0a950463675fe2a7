/* mlctl enroll-token ...: the tokens that let agents enroll (docs/agent-protocol.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

/* USES: "3/10", or "3" without a limit. */
static char *enroll_uses(const json_t *o)
{
	const json_t *uses = json_object_get(o, "uses"), *max = json_object_get(o, "max_uses");
	char buf[64];
	if (!json_is_integer(uses))
		return NULL;
	if (json_is_integer(max))
		snprintf(buf, sizeof(buf), "%lld/%lld", (long long)json_integer_value(uses),
		         (long long)json_integer_value(max));
	else
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(uses));
	return strdup(buf);
}

static const struct col enroll_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"NAME", "name", C_STR, NULL},
    {"USES", NULL, C_FN, enroll_uses},
    {"EXPIRES", "expires_at", C_TIME, NULL},
    {"CREATED", "created_at", C_TIME, NULL},
    {"LAST USED", "last_used_at", C_TIME, NULL},
    {"REVOKED", "revoked_at", C_TIME, NULL},
    {NULL, NULL, C_STR, NULL},
};

static const struct res res_enroll = {
    "enrollment token", "/enroll-tokens", "name", false, false, enroll_cols, NULL};

static int enroll_create(struct mlctl *ml, struct args *a)
{
	json_t *body = json_object(), *obj = NULL, *name;
	int rc;
	if (!body)
		return ml_fail(ml, "out of memory");
	if (!(name = json_string(arg_pos(a, 0)))) {
		json_decref(body);
		return ml_usage(ml, "the name is not valid UTF-8");
	}
	json_object_set_new(body, "name", name);
	rc = arg_body(ml, a, body, false);
	if (rc == 0)
		rc = cl_call(ml, "POST", "/enroll-tokens", body, &obj);
	json_decref(body);
	if (rc < 0)
		return rc;
	const char *tok = json_string_value(json_object_get(obj, "token"));
	if (ml->json) {
		rc = out_json(ml, obj);
	} else if (ml->quiet) {
		/* What a script wants from this command is the secret itself. */
		printf("%s\n", tok ? tok : "");
	} else {
		/* The token is one word of ASCII; clean it all the same. */
		char *t = tbl_clean(tok ? tok : "?", 0);
		json_object_del(obj, "token");
		rc = out_one(ml, obj);
		printf("\nThe enrollment token, shown only now:\n\n    %s\n\n"
		       "Give it to mlagent on the kernel command line of the machines:\n\n"
		       "    ml.token=%s\n",
		       t ? t : "?", t ? t : "?");
		free(t);
	}
	json_decref(obj);
	return rc;
}

static const struct opt enroll_create_opts[] = {
    {"max-uses", V_INT, "N", "enrollments it allows (default: no limit)", "max_uses", NULL},
    {"expires", V_TIME, "TIME",
     "when it stops working (local 'YYYY-MM-DD HH:MM', ISO 8601, +2h, +7d)", "expires", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd enroll_cmds[] = {
    {"create", "NAME", 1, 1, enroll_create_opts, enroll_create,
     "create an enrollment token; it is shown once (-q prints only it)",
     "Agents started with it (ml.token=... on the kernel command line) enroll\n"
     "their machine and get a credential of their own.",
     "  mlctl enroll-token create lab-b --max-uses 30 --expires +7d\n"
     "  TOKEN=$(mlctl enroll-token create pxe-2026 -q)",
     &res_enroll, 0},
    {"list", NULL, 0, 0, NULL, res_cmd_list, "list enrollment tokens (never the tokens themselves)",
     NULL, "  mlctl enroll-token list", &res_enroll, CMD_LIST},
    {"rm", "ID|NAME...", 1, -1, NULL, res_cmd_rm,
     "revoke enrollment tokens (enrolled agents keep their credentials)", NULL,
     "  mlctl enroll-token rm lab-b", &res_enroll, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_enroll_noun = {"enroll-token", "tokens that let agents enroll", enroll_cmds};

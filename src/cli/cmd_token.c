/* mlctl token ...: long-lived API tokens and one's sessions. */
#include <stdio.h>
#include <string.h>

#include "mlctl.h"

static const struct col token_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"USER", "username", C_STR, NULL},
    {"KIND", "kind", C_STR, NULL},
    {"NAME", "name", C_STR, NULL},
    {"CREATED", "created_at", C_TIME, NULL},
    {"EXPIRES", "expires_at", C_TIME, NULL},
    {"LAST USED", "last_used_at", C_TIME, NULL},
    {NULL, NULL, C_STR, NULL},
};

const struct res res_token = {"token", "/tokens", "name", false, false, token_cols, NULL};

static int token_create(struct mlctl *ml, struct args *a)
{
	json_t *body = json_object(), *obj = NULL;
	int rc;
	if (!body)
		return ml_fail(ml, "out of memory");
	json_object_set_new(body, "name", json_string(arg_pos(a, 0)));
	rc = arg_body(ml, a, body, false);
	if (rc == 0)
		rc = cl_call(ml, "POST", "/tokens", body, &obj);
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
		rc = out_one(ml, obj);
		fprintf(stderr,
		        "The token is shown only now: store it safely (MLCTL_TOKEN=...).\n");
	}
	json_decref(obj);
	return rc;
}

static const struct opt token_list_opts[] = {
    {"all", V_FLAG, NULL, "everyone's tokens and sessions (admin)", "?all", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt token_create_opts[] = {
    {"expires-days", V_INT, "N", "expire after N days (1-3650; default: never)", "expires_days",
     NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd token_cmds[] = {
    {"list", NULL, 0, 0, token_list_opts, res_cmd_list,
     "list one's sessions and API tokens (--all: everyone's)", NULL,
     "  mlctl token list\n  mlctl token list --all", &res_token, CMD_LIST},
    {"create", "NAME", 1, 1, token_create_opts, token_create,
     "create an API token for scripts; it is shown once (-q prints only it)", NULL,
     "  export MLCTL_TOKEN=$(mlctl token create backup-script --expires-days 365 -q)", &res_token,
     0},
    {"rm", "ID|NAME...", 1, -1, NULL, res_cmd_rm,
     "revoke tokens or end sessions (one's own; an admin's: any)", NULL, "  mlctl token rm 12",
     &res_token, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_token_noun = {"token", "API tokens and sessions", token_cmds};

/* mlctl audit: the audit log, newest first (admin). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

static char *audit_object(const json_t *o)
{
	const char *type = json_string_value(json_object_get(o, "object_type"));
	const json_t *id = json_object_get(o, "object_id");
	char buf[128];
	if (!type)
		return NULL;
	if (json_is_integer(id))
		snprintf(buf, sizeof(buf), "%s %lld", type, (long long)json_integer_value(id));
	else
		snprintf(buf, sizeof(buf), "%s", type);
	return strdup(buf);
}

static const struct col audit_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"TIME", "at", C_TIME, NULL},
    {"USER", "username", C_STR, NULL},
    {"ACTION", "action", C_STR, NULL},
    {"OBJECT", NULL, C_FN, audit_object},
    {"DETAIL", "detail", C_STR, NULL},
    {NULL, NULL, C_STR, NULL},
};

static const struct res res_audit = {"audit record", "/audit",   NULL, false,
                                     false,          audit_cols, NULL};

static const struct opt audit_opts[] = {
    {"user", V_VAL, "NAME", "only what this user did", "?user", NULL},
    {"action", V_VAL, "ACTION", "only this action (create, update, delete, login, ...)", "?action",
     NULL},
    {"object-type", V_VAL, "TYPE", "only on this kind of object (user, token, machine, ...)",
     "?object_type", NULL},
    {"object-id", V_VAL, "ID", "only on the object with this id", "?object_id", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd audit_cmds[] = {
    {NULL, NULL, 0, 0, audit_opts, res_cmd_list, "the audit log, newest first (admin)", NULL,
     "  mlctl audit --user admin --action login --limit 20", &res_audit, CMD_LIST},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_audit_noun = {"audit", "the audit log", audit_cmds};

/* mlctl right ...: who may start which entry on which machines, and when. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

/* Users and user groups: "alice, bob, @teachers". */
static char *right_who(const json_t *o)
{
	const json_t *users = json_object_get(o, "users"),
	             *groups = json_object_get(o, "user_groups");
	const json_t *v;
	size_t i;
	struct sb s = {0};
	json_array_foreach(users, i, v)
	{
		sb_addf(&s, "%s%s", s.len ? ", " : "",
		        json_string_value(v) ? json_string_value(v) : "?");
	}
	json_array_foreach(groups, i, v)
	{
		sb_addf(&s, "%s@%s", s.len ? ", " : "",
		        json_string_value(v) ? json_string_value(v) : "?");
	}
	return sb_take(&s);
}

/* The window, or "always" for null (the right always holds). */
static char *right_window(const json_t *o)
{
	const char *w = json_string_value(json_object_get(o, "window"));
	return strdup(w ? w : "always");
}

/* The entry's name ("_entry", from right_prep), else its id. */
static char *right_entry(const json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "_entry"));
	char buf[32];
	if (name)
		return strdup(name);
	snprintf(buf, sizeof(buf), "#%lld",
	         (long long)json_integer_value(json_object_get(o, "entry_id")));
	return strdup(buf);
}

static const struct col right_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"ENTRY", NULL, C_FN, right_entry},
    {"WHO", NULL, C_FN, right_who},
    {"TARGETS", NULL, C_FN, res_targets_col},
    {"WINDOW", NULL, C_FN, right_window},
    {"DESCRIPTION", "description", C_STR, NULL},
    {NULL, NULL, C_STR, NULL},
};

/* For the table: the entry's name and the targets' names. */
static int right_prep(struct mlctl *ml, json_t *items)
{
	json_t *it;
	size_t i;
	json_array_foreach(items, i, it)
	{
		const char *name;
		int rc =
		    res_name(ml, &res_entry,
		             (int64_t)json_integer_value(json_object_get(it, "entry_id")), &name);
		if (rc < 0)
			return rc;
		if (name)
			json_object_set_new(it, "_entry", json_string(name));
	}
	return res_prep_targets(ml, items);
}

const struct res res_right = {"right", "/rights", NULL, false, false, right_cols, right_prep};

static int right_targets(struct mlctl *ml, struct args *a)
{
	char path[96];
	int64_t id;
	int rc = res_id(ml, &res_right, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), "/rights", id, "/targets");
	return res_print_list(ml, &res_machine, path);
}

#define RIGHT_FIELDS                                                                               \
	{"entry", V_ID, "ENTRY", "the entry (id or name)", "entry_id", &res_entry},                \
	    {"user", V_STRS, "USER", "a user name", "users", NULL},                                \
	    {"user-group", V_STRS, "GROUP", "a user group name", "user_groups", NULL},             \
	    {"machine",          V_IDS,                                                            \
	     "MACHINE",          "a target machine (id or name; a,b for several)",                 \
	     "targets.machines", &res_machine},                                                    \
	    {"group", V_IDS, "GROUP", "a target group of machines", "targets.groups", &res_group}, \
	    {"criterion",        V_IDS,         "CRITERION", "a target criterion",                 \
	     "targets.criteria", &res_criterion},                                                  \
	    {"window",                                                                             \
	     V_STR,                                                                                \
	     "WINDOW",                                                                             \
	     "when, weekly, server time: 'mon-fri 08:00-18:00; sat 09:00-12:00' "                  \
	     "('' = always)",                                                                      \
	     "window",                                                                             \
	     NULL},                                                                                \
	    {"description", V_STR, "TEXT", "a note", "description", NULL},                         \
	{                                                                                          \
		"field", V_RAW, "KEY=VALUE", "any other field (VALUE as JSON, else a string)",     \
		    NULL, NULL                                                                     \
	}

static const struct opt right_list_opts[] = {
    {"entry", V_ID, "ENTRY", "only rights on this entry", "?entry", &res_entry},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt right_opts[] = {
    RIGHT_FIELDS,
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd right_cmds[] = {
    {"list", NULL, 0, 0, right_list_opts, res_cmd_list, "list rights", NULL,
     "  mlctl right list --entry win11-desktop", &res_right, CMD_LIST},
    {"show", "ID", 1, 1, NULL, res_cmd_show, "show one right", NULL, "  mlctl right show 4",
     &res_right, 0},
    {"add", NULL, 0, 0, right_opts, res_cmd_add,
     "create a right: an entry, users or user groups, and target machines",
     "At least one user or user group and one target.",
     "  mlctl right add --entry win11-desktop --user-group teachers --group lab-b \\\n"
     "      --window 'mon-fri 08:00-18:00'",
     &res_right, 0},
    {"set", "ID", 1, 1, right_opts, res_cmd_set,
     "change a right (lists and the targets are replaced whole)", NULL,
     "  mlctl right set 4 --window ''", &res_right, 0},
    {"rm", "ID...", 1, -1, NULL, res_cmd_rm, "delete rights", NULL, "  mlctl right rm 4",
     &res_right, 0},
    {"targets", "ID", 1, 1, NULL, right_targets, "the machines a right covers now", NULL,
     "  mlctl right targets 4", &res_right, CMD_LIST},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_right_noun = {"right", "who may start which entry where", right_cmds};

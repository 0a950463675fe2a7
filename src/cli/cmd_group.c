/* mlctl group ...: named sets of machines. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mlctl.h"

static const struct col group_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"NAME", "name", C_STR, NULL},
    {"MEMBERS", "member_count", C_NUM, NULL},
    {"DESCRIPTION", "description", C_STR, NULL},
    {NULL, NULL, C_STR, NULL},
};

const struct res res_group = {"group", "/groups", "name", false, false, group_cols, NULL};

/* Resolves MACHINE arguments (ids, names, comma lists) from index 1 on into an array. */
static int group_machine_args(struct mlctl *ml, struct args *a, json_t **arr)
{
	*arr = json_array();
	if (!*arr)
		return ml_fail(ml, "out of memory");
	for (int i = 1; i < arg_npos(a); i++) {
		char item[512];
		snprintf(item, sizeof(item), "%s", arg_pos(a, i));
		for (char *p = item, *next; p; p = next) {
			int64_t id;
			next = strchr(p, ',');
			if (next)
				*next++ = '\0';
			if (!*p)
				continue;
			int rc = res_id(ml, &res_machine, p, &id);
			if (rc < 0) {
				json_decref(*arr);
				*arr = NULL;
				return rc;
			}
			json_array_append_new(*arr, json_integer((json_int_t)id));
		}
	}
	return 0;
}

static int group_add_member(struct mlctl *ml, struct args *a)
{
	char path[96];
	int64_t gid;
	json_t *ids, *obj = NULL;
	int rc = res_id(ml, &res_group, arg_pos(a, 0), &gid);
	if (rc == 0)
		rc = group_machine_args(ml, a, &ids);
	if (rc < 0)
		return rc;
	json_t *body = json_pack("{s:o}", "machines", ids);
	res_path(path, sizeof(path), "/groups", gid, "/members");
	rc = body ? cl_call(ml, "POST", path, body, &obj) : ml_fail(ml, "out of memory");
	json_decref(body);
	if (rc == 0 && obj)
		rc = out_one(ml, obj);
	json_decref(obj);
	return rc;
}

static int group_rm_member(struct mlctl *ml, struct args *a)
{
	char path[128];
	int64_t gid;
	json_t *ids;
	size_t i;
	json_t *v;
	int rc = res_id(ml, &res_group, arg_pos(a, 0), &gid);
	if (rc == 0)
		rc = group_machine_args(ml, a, &ids);
	if (rc < 0)
		return rc;
	json_array_foreach(ids, i, v)
	{
		snprintf(path, sizeof(path), "/groups/%lld/members/%lld", (long long)gid,
		         (long long)json_integer_value(v));
		rc = cl_call(ml, "DELETE", path, NULL, NULL);
		if (rc < 0)
			break;
		if (!ml->quiet && !ml->json)
			printf("removed machine %lld from group %lld\n",
			       (long long)json_integer_value(v), (long long)gid);
	}
	json_decref(ids);
	return rc;
}

static int group_members(struct mlctl *ml, struct args *a)
{
	char path[96];
	int64_t gid;
	int rc = res_id(ml, &res_group, arg_pos(a, 0), &gid);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "/machines?group=%lld", (long long)gid);
	return res_print_list(ml, &res_machine, path);
}

static const struct opt group_add_opts[] = {
    {"description", V_STR, "TEXT", "what the group is for", "description", NULL},
    {"member", V_IDS, "MACHINE", "a member machine: id or name; a,b,c for several", "members",
     &res_machine},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt group_set_opts[] = {
    {"name", V_STR, "NAME", "a new name", "name", NULL},
    {"description", V_STR, "TEXT", "what the group is for", "description", NULL},
    {"member", V_IDS, "MACHINE",
     "the members, replacing all: ids or names; a,b,c for several; '' for none", "members",
     &res_machine},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

/* POST /groups/ID/rollback {"image_id"}: back to the previous version of that image. */
static int group_rollback(struct mlctl *ml, struct args *a)
{
	return cmd_rollback_of(ml, a, &res_group, "/groups");
}

static int group_boot(struct mlctl *ml, struct args *a)
{
	return cmd_boot_of(ml, a, &res_group, "/groups");
}

static const struct cmd group_cmds[] = {
    {"list", NULL, 0, 0, NULL, res_cmd_list, "list groups with their member counts", NULL,
     "  mlctl group list", &res_group, CMD_LIST},
    {"show", "ID|NAME", 1, 1, NULL, res_cmd_show, "show one group (members as ids)", NULL,
     "  mlctl group show lab-b", &res_group, 0},
    {"add", "NAME", 1, 1, group_add_opts, res_cmd_add, "create a group", NULL,
     "  mlctl group add lab-b --description 'Lab B' --member pc-101,pc-102", &res_group, 0},
    {"set", "ID|NAME", 1, 1, group_set_opts, res_cmd_set, "rename, describe, or replace members",
     NULL, "  mlctl group set lab-b --member pc-101 --member pc-103", &res_group, 0},
    {"rm", "ID|NAME...", 1, -1, NULL, res_cmd_rm,
     "delete groups (refused while a right or deployment targets one)", NULL,
     "  mlctl group rm lab-b", &res_group, 0},
    {"add-member", "GROUP MACHINE...", 2, -1, NULL, group_add_member, "add machines to a group",
     NULL, "  mlctl group add-member lab-b pc-104 pc-105", &res_group, 0},
    {"rm-member", "GROUP MACHINE...", 2, -1, NULL, group_rm_member, "remove machines from a group",
     NULL, "  mlctl group rm-member lab-b pc-104", &res_group, 0},
    {"members", "GROUP", 1, 1, NULL, group_members, "list a group's machines", NULL,
     "  mlctl group members lab-b", &res_group, CMD_LIST},
    {"rollback", "ID|NAME", 1, 1, cmd_rollback_opts, group_rollback,
     "make the previous version of an image active again on the group's machines",
     "Each member's agent switches back to the version it had before; --wait\n"
     "follows the rollbacks to the end and exits 1 when any did not succeed.",
     "  mlctl group rollback lab-b --image win11 --wait", &res_group, 0},
    {"boot", "ID|NAME [MODE|default]", 1, 2, cmd_boot_opts, group_boot,
     "show or set how the group's machines network-boot",
     "A machine's own mode comes before its groups'; of several groups, the\n"
     "first by name that sets a mode applies. --temporary sets a temporary\n"
     "mode on each member now (members added later do not get it).",
     "  mlctl group boot lab-b local\n"
     "  mlctl group boot lab-b microlinux --temporary --hours 4\n"
     "  mlctl group boot lab-b --clear-temporary",
     &res_group, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_group_noun = {"group", "groups of machines", group_cmds};

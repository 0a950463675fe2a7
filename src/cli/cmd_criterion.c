/* mlctl criterion ...: saved rules that pick machines when used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

/* The rules that are set, as "name_glob=pc-1* subnet=10.1.0.0/16". */
static char *criterion_rules(const json_t *o)
{
	static const char *const keys[] = {"name_glob", "domain", "subnet", "room", "tag", NULL};
	struct sb s = {0};
	for (size_t i = 0; keys[i]; i++) {
		const char *v = json_string_value(json_object_get(o, keys[i]));
		if (!v)
			continue;
		sb_addf(&s, "%s%s=%s", s.len ? " " : "", keys[i], v);
	}
	return sb_take(&s);
}

static const struct col criterion_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"NAME", "name", C_STR, NULL},
    {"RULES", NULL, C_FN, criterion_rules},
    {"DESCRIPTION", "description", C_STR, NULL},
    {NULL, NULL, C_STR, NULL},
};

const struct res res_criterion = {"criterion", "/criteria",    "name", false,
                                  false,       criterion_cols, NULL};

static int criterion_machines(struct mlctl *ml, struct args *a)
{
	char path[96];
	int64_t id;
	int rc = res_id(ml, &res_criterion, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), "/criteria", id, "/machines");
	return res_print_list(ml, &res_machine, path);
}

#define CRITERION_FIELDS                                                                           \
	{"description", V_STR, "TEXT", "what it selects", "description", NULL},                    \
	    {"name-glob", V_STR,                                                                   \
	     "GLOB",      "host name pattern: * ? [a-c], case-insensitive (pc-1\?\?)",             \
	     "name_glob", NULL},                                                                   \
	    {"domain", V_STR, "DOMAIN", "DNS suffix on label boundaries (lab.example.edu)",        \
	     "domain", NULL},                                                                      \
	    {"subnet", V_STR, "CIDR", "the machine's IP is in this subnet", "subnet", NULL},       \
	    {"room", V_STR, "ROOM", "the machine is in this room", "room", NULL},                  \
	{                                                                                          \
		"tag", V_STR, "TAG", "the machine has this tag", "tag", NULL                       \
	}

static const struct opt criterion_add_opts[] = {
    CRITERION_FIELDS,
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt criterion_set_opts[] = {
    {"name", V_STR, "NAME", "a new name", "name", NULL},
    CRITERION_FIELDS,
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd criterion_cmds[] = {
    {"list", NULL, 0, 0, NULL, res_cmd_list, "list criteria", NULL, "  mlctl criterion list",
     &res_criterion, CMD_LIST},
    {"show", "ID|NAME", 1, 1, NULL, res_cmd_show, "show one criterion", NULL,
     "  mlctl criterion show lab-pcs", &res_criterion, 0},
    {"add", "NAME", 1, 1, criterion_add_opts, res_cmd_add,
     "create a criterion: every rule given must match (at least one)", NULL,
     "  mlctl criterion add lab-pcs --name-glob 'pc-1*' --subnet 10.1.0.0/16", &res_criterion, 0},
    {"set", "ID|NAME", 1, 1, criterion_set_opts, res_cmd_set,
     "change a criterion ('' clears a rule)", NULL,
     "  mlctl criterion set lab-pcs --room B101 --subnet ''", &res_criterion, 0},
    {"rm", "ID|NAME...", 1, -1, NULL, res_cmd_rm,
     "delete criteria (refused while a right or deployment uses one)", NULL,
     "  mlctl criterion rm lab-pcs", &res_criterion, 0},
    {"machines", "ID|NAME", 1, 1, NULL, criterion_machines, "the machines a criterion matches now",
     NULL, "  mlctl criterion machines lab-pcs", &res_criterion, CMD_LIST},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_criterion_noun = {"criterion", "saved rules that select machines",
                                        criterion_cmds};

/* mlctl agent ...: the machines' agents: who enrolled, who is online, revoking. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

/*
 * The IMAGES column: "_images" when prepared (IMAGE:vN of each active
 * version), else each image's ids as "#IMAGE=VERSION".
 */
static char *agent_images(const json_t *o)
{
	const char *prepared = json_string_value(json_object_get(o, "_images"));
	const json_t *imgs = json_object_get(o, "images"), *im;
	struct sb s = {0};
	size_t i;
	if (prepared)
		return strdup(prepared);
	if (!json_is_array(imgs))
		return out_value(imgs, C_STR, false);
	json_array_foreach(imgs, i, im)
	{
		const json_t *img = json_object_get(im, "image_id"),
		             *act = json_object_get(im, "active");
		if (i)
			sb_add(&s, ", ");
		if (json_is_integer(img) && json_is_integer(act)) {
			sb_addf(&s, "#%lld=%lld", (long long)json_integer_value(img),
			        (long long)json_integer_value(act));
		} else {
			char *v = out_value(im, C_STR, false);
			sb_add(&s, v ? v : "?");
			free(v);
		}
	}
	return sb_take(&s);
}

/* For the table: each image's active version as IMAGE:vN. */
static int agent_prep(struct mlctl *ml, json_t *items)
{
	json_t *it, *im;
	size_t i, j;
	json_array_foreach(items, i, it)
	{
		const json_t *imgs = json_object_get(it, "images");
		struct sb s = {0};
		bool any = false;
		if (!json_is_array(imgs))
			continue;
		json_array_foreach(imgs, j, im)
		{
			const json_t *img = json_object_get(im, "image_id"),
			             *act = json_object_get(im, "active");
			char label[128];
			if (!json_is_integer(img) || !json_is_integer(act))
				continue;
			int rc = res_version_label(ml, (int64_t)json_integer_value(img),
			                           (int64_t)json_integer_value(act), label,
			                           sizeof(label));
			if (rc < 0) {
				sb_free(&s);
				return rc;
			}
			sb_addf(&s, "%s%s", any ? ", " : "", label);
			any = true;
		}
		char *text = sb_take(&s);
		if (!text)
			return ml_fail(ml, "out of memory");
		json_object_set_new(it, "_images", json_string(text));
		free(text);
	}
	return 0;
}

static const struct col agent_cols[] = {
    {"MACHINE", "machine", C_STR, NULL},
    {"ID", "machine_id", C_NUM, NULL},
    {"ONLINE", "online", C_BOOL, NULL},
    {"LAST SEEN", "last_seen_at", C_TIME, NULL},
    {"ADDRESS", "address", C_STR, NULL},
    {"IP", "ip", C_STR, NULL},
    {"AGENT", "agent_version", C_STR, NULL},
    {"IMAGES", NULL, C_FN, agent_images},
    {NULL, NULL, C_STR, NULL},
};

/* Agents are named by their machine: ids and names are the machine's. */
static const struct res res_agent = {"agent", "/agents",  NULL,      false,
                                     false,   agent_cols, agent_prep};

static int agent_show(struct mlctl *ml, struct args *a)
{
	char path[96];
	int64_t id;
	json_t *obj;
	int rc = res_id(ml, &res_machine, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), "/agents", id, NULL);
	rc = cl_call(ml, "GET", path, NULL, &obj);
	if (rc < 0)
		return rc;
	rc = out_one(ml, obj);
	json_decref(obj);
	return rc;
}

static int agent_revoke(struct mlctl *ml, struct args *a)
{
	char path[96];
	int ret = 0;
	for (int i = 0; i < arg_npos(a); i++) {
		int64_t id;
		int rc = res_id(ml, &res_machine, arg_pos(a, i), &id);
		if (rc == 0) {
			res_path(path, sizeof(path), "/agents", id, NULL);
			rc = cl_call(ml, "DELETE", path, NULL, NULL);
		}
		if (rc < 0) {
			ret = rc;
			if (rc == -EHOSTUNREACH)
				break;
			continue;
		}
		if (!ml->quiet && !ml->json)
			printf("revoked the agent credentials of machine %lld\n", (long long)id);
	}
	return ret;
}

static const struct cmd agent_cmds[] = {
    {"list", NULL, 0, 0, NULL, res_cmd_list,
     "list the machines whose agent enrolled: online, last seen, version, images", NULL,
     "  mlctl agent list", &res_agent, CMD_LIST},
    {"show", "MACHINE", 1, 1, NULL, agent_show,
     "show a machine's agent: its credentials and its full inventory", NULL,
     "  mlctl agent show pc-101", &res_agent, 0},
    {"revoke", "MACHINE...", 1, -1, NULL, agent_revoke,
     "revoke every credential of the machines' agents (they must enroll again)",
     "A revoked agent gets no command and no manifest.", "  mlctl agent revoke pc-101", &res_agent,
     0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_agent_noun = {"agent", "the agents on the machines (mlagent)", agent_cmds};

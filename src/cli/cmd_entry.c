/* mlctl entry ...: what users can start from the portal (VMs, RDP, SPICE, web). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

/* Where an entry leads: "image 3", "host:port" or the URL. */
static char *entry_target(const json_t *o)
{
	const char *kind = json_string_value(json_object_get(o, "kind"));
	const char *host = json_string_value(json_object_get(o, "host"));
	const char *url = json_string_value(json_object_get(o, "url"));
	const json_t *img = json_object_get(o, "image_id"), *port = json_object_get(o, "port");
	const char *iname = json_string_value(json_object_get(o, "_image"));
	char buf[512];
	if (kind && strcmp(kind, "vm") == 0 && iname)
		snprintf(buf, sizeof(buf), "image %s", iname);
	else if (kind && strcmp(kind, "vm") == 0 && json_is_integer(img))
		snprintf(buf, sizeof(buf), "image #%lld", (long long)json_integer_value(img));
	else if (host && json_is_integer(port))
		snprintf(buf, sizeof(buf), "%s:%lld", host, (long long)json_integer_value(port));
	else if (host)
		snprintf(buf, sizeof(buf), "%s", host);
	else if (url)
		snprintf(buf, sizeof(buf), "%s", url);
	else
		return NULL;
	return strdup(buf);
}

static const struct col entry_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"NAME", "name", C_STR, NULL},
    {"KIND", "kind", C_STR, NULL},
    {"TARGET", NULL, C_FN, entry_target},
    {"DESCRIPTION", "description", C_STR, NULL},
    {NULL, NULL, C_STR, NULL},
};

/* For the table: "_image", the name of a vm entry's image. */
static int entry_prep(struct mlctl *ml, json_t *items)
{
	json_t *it;
	size_t i;
	json_array_foreach(items, i, it)
	{
		const json_t *img = json_object_get(it, "image_id");
		const char *name;
		if (!json_is_integer(img))
			continue;
		int rc = res_name(ml, &res_image, (int64_t)json_integer_value(img), &name);
		if (rc < 0)
			return rc;
		if (name)
			json_object_set_new(it, "_image", json_string(name));
	}
	return 0;
}

const struct res res_entry = {"entry", "/entries", "name", false, false, entry_cols, entry_prep};

#define ENTRY_FIELDS                                                                               \
	{"description", V_STR, "TEXT", "what users see", "description", NULL},                     \
	    {"image", V_ID, "IMAGE", "vm: the image (id or name)", "image_id", &res_image},        \
	    {"host", V_STR, "HOST", "rdp, spice: the host", "host", NULL},                         \
	    {"port", V_INT, "PORT", "rdp, spice: the port (default 3389 / 5900)", "port", NULL},   \
	    {"url", V_STR, "URL", "web: the http or https URL", "url", NULL},                      \
	{                                                                                          \
		"field", V_RAW, "KEY=VALUE", "any other field (VALUE as JSON, else a string)",     \
		    NULL, NULL                                                                     \
	}

static const struct opt entry_list_opts[] = {
    {"kind", V_VAL, "KIND", "only entries of this kind: vm, rdp, spice or web", "?kind", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt entry_add_opts[] = {
    {"kind", V_STR, "KIND", "vm, rdp, spice or web (required)", "kind", NULL},
    ENTRY_FIELDS,
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt entry_set_opts[] = {
    {"name", V_STR, "NAME", "a new name", "name", NULL},
    ENTRY_FIELDS,
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd entry_cmds[] = {
    {"list", NULL, 0, 0, entry_list_opts, res_cmd_list, "list entries", NULL,
     "  mlctl entry list --kind rdp", &res_entry, CMD_LIST},
    {"show", "ID|NAME", 1, 1, NULL, res_cmd_show, "show one entry", NULL,
     "  mlctl entry show win11-desktop", &res_entry, 0},
    {"add", "NAME", 1, 1, entry_add_opts, res_cmd_add,
     "create an entry: vm needs --image; rdp and spice --host; web --url", NULL,
     "  mlctl entry add win11-desktop --kind vm --image win11\n"
     "  mlctl entry add intranet --kind web --url https://intranet.example.edu",
     &res_entry, 0},
    {"set", "ID|NAME", 1, 1, entry_set_opts, res_cmd_set, "change an entry (not its kind)", NULL,
     "  mlctl entry set win11-desktop --description 'Windows 11 with Office'", &res_entry, 0},
    {"rm", "ID|NAME...", 1, -1, NULL, res_cmd_rm, "delete entries (their rights go too)", NULL,
     "  mlctl entry rm intranet", &res_entry, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_entry_noun = {"entry", "what users can start from the portal", entry_cmds};

/* mlctl machine ...: the inventory of workstations, and imports of it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

/* An import file larger than this is refused here (the server has its own limit). */
#define MACHINE_IMPORT_MAX (64u << 20)

const struct col cmd_machine_cols[] = {
    {"ID", "id", C_NUM, NULL},     {"NAME", "name", C_STR, NULL},
    {"IP", "ip", C_STR, NULL},     {"SUBNET", "subnet", C_STR, NULL},
    {"ROOM", "room", C_STR, NULL}, {"MACS", "macs", C_STR, NULL},
    {"TAGS", "tags", C_STR, NULL}, {"LAST SEEN", "last_seen_at", C_TIME, NULL},
    {NULL, NULL, C_STR, NULL},
};

const struct res res_machine = {"machine", "/machines", "name", true, true, cmd_machine_cols, NULL};

/* Reads a whole file, or stdin for "-", of at most MACHINE_IMPORT_MAX bytes. */
static int machine_read(const char *file, uint8_t **buf, size_t *len)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	struct sb s = {0};
	char chunk[65536];
	size_t n;
	int ret = 0;
	if (!f)
		return -errno;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (n > MACHINE_IMPORT_MAX - s.len) {
			ret = -EFBIG;
			break;
		}
		sb_addn(&s, chunk, n);
	}
	if (ret == 0 && ferror(f))
		ret = -EIO;
	if (f != stdin)
		fclose(f);
	*len = s.len;
	char *t = ret == 0 ? sb_take(&s) : NULL;
	sb_free(&s);
	if (ret == 0 && !t)
		ret = -ENOMEM;
	*buf = (uint8_t *)t;
	return ret;
}

static int machine_import(struct mlctl *ml, struct args *a)
{
	const char *file = arg_pos(a, 0), *fmt = arg_val(a, "format");
	uint8_t *buf = NULL;
	size_t len = 0;
	json_t *body = NULL, *res = NULL, *data;
	int rc;
	rc = machine_read(file, &buf, &len);
	if (rc < 0)
		return ml_fail(ml, "%s: %s", file,
		               rc == -EFBIG ? "larger than 64 MiB" : strerror(-rc));
	data = json_stringn((const char *)buf, len);
	free(buf);
	if (!data)
		return ml_fail(ml, "%s: not UTF-8 text", file);
	body = json_pack("{s:s, s:o}", "format", fmt ? fmt : "auto", "data", data);
	if (!body)
		return ml_fail(ml, "out of memory");
	if (arg_has(a, "update"))
		json_object_set_new(body, "update", json_true());
	if (arg_has(a, "dry-run"))
		json_object_set_new(body, "dry_run", json_true());
	rc = cl_call(ml, "POST", "/machines/import", body, &res);
	json_decref(body);
	if (rc < 0)
		return rc;
	const json_t *errs = json_object_get(res, "errors");
	size_t nerr = json_array_size(errs);
	/* errors lists at most 1000; error_count counts them all. */
	const json_t *ec = json_object_get(res, "error_count");
	uint64_t nall = json_is_integer(ec) && json_integer_value(ec) >= 0
	                    ? (uint64_t)json_integer_value(ec)
	                    : nerr;
	if (ml->json) {
		rc = out_json(ml, res);
	} else if (!ml->quiet) {
		const char *f = json_string_value(json_object_get(res, "format"));
		char *fclean = tbl_clean(f ? f : "?", 16);
		printf("%s%s: %lld created, %lld updated, %lld unchanged, %lld skipped, %llu "
		       "error%s\n",
		       fclean ? fclean : "?",
		       arg_has(a, "dry-run") ? ", dry run (nothing changed)" : "",
		       (long long)json_integer_value(json_object_get(res, "created")),
		       (long long)json_integer_value(json_object_get(res, "updated")),
		       (long long)json_integer_value(json_object_get(res, "unchanged")),
		       (long long)json_integer_value(json_object_get(res, "skipped")),
		       (unsigned long long)nall, nall == 1 ? "" : "s");
		free(fclean);
	}
	for (size_t i = 0; i < nerr; i++) {
		const json_t *e = json_array_get(errs, i);
		const char *msg = json_string_value(json_object_get(e, "message"));
		char *clean = tbl_clean(msg ? msg : "?", 0);
		fprintf(stderr, "%s:%lld: %s\n", file,
		        (long long)json_integer_value(json_object_get(e, "line")),
		        clean ? clean : "?");
		free(clean);
	}
	if (nall > nerr)
		fprintf(stderr, "%s: %llu more errors not listed\n", file,
		        (unsigned long long)(nall - nerr));
	json_decref(res);
	if (nall && rc == 0)
		rc = ml_fail(ml, "%llu line%s had errors", (unsigned long long)nall,
		             nall == 1 ? "" : "s");
	return rc;
}

#define MACHINE_FIELDS                                                                               \
	{"mac", V_STRS, "MAC", "a MAC address (on set, the list is replaced)", "macs", NULL},        \
	    {"ip", V_STR, "IP", "the IP address", "ip", NULL},                                       \
	    {"subnet", V_STR, "CIDR", "the subnet, e.g. 10.1.2.0/24", "subnet", NULL},               \
	    {"room", V_STR, "ROOM", "the room", "room", NULL},                                       \
	    {"tag", V_STRS, "TAG", "a tag (on set, the list is replaced; '' clears)", "tags", NULL}, \
	    {"notes", V_STR, "TEXT", "free text", "notes", NULL},                                    \
	{                                                                                            \
		"field", V_RAW, "KEY=VALUE", "any other field (VALUE as JSON, else a string)",       \
		    NULL, NULL                                                                       \
	}

static const struct opt machine_list_opts[] = {
    {"room", V_VAL, "ROOM", "only machines in this room", "?room", NULL},
    {"tag", V_VAL, "TAG", "only machines with this tag", "?tag", NULL},
    {"group", V_ID, "GROUP", "only members of this group (id or name)", "?group", &res_group},
    {"search", V_VAL, "TEXT", "only machines whose name, IP or a MAC contains TEXT", "?q", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt machine_add_opts[] = {
    MACHINE_FIELDS,
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt machine_set_opts[] = {
    {"name", V_STR, "NAME", "a new host name", "name", NULL},
    MACHINE_FIELDS,
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt machine_import_opts[] = {
    {"format", V_VAL, "FORMAT", "csv, dhcpd, dnsmasq or auto (the default)", NULL, NULL},
    {"dry-run", V_FLAG, NULL, "check and count, change nothing", NULL, NULL},
    {"update", V_FLAG, NULL, "update machines that exist (else they are skipped)", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

/* POST /machines/ID/rollback {"image_id"}: back to the previous version of that image. */
static int machine_rollback(struct mlctl *ml, struct args *a)
{
	return cmd_rollback_of(ml, a, &res_machine, "/machines");
}

static int machine_boot(struct mlctl *ml, struct args *a)
{
	return cmd_boot_of(ml, a, &res_machine, "/machines");
}

static const struct cmd machine_cmds[] = {
    {"list", NULL, 0, 0, machine_list_opts, res_cmd_list, "list machines", NULL,
     "  mlctl machine list --room B101 --tag win", &res_machine, CMD_LIST},
    {"show", "ID|NAME", 1, 1, NULL, res_cmd_show, "show one machine, with its groups", NULL,
     "  mlctl machine show pc-101", &res_machine, 0},
    {"add", "NAME", 1, 1, machine_add_opts, res_cmd_add, "add a machine",
     "NAME is a host name (an FQDN is allowed); a MAC belongs to one machine.",
     "  mlctl machine add pc-101 --mac 52:54:00:12:34:56 --ip 10.1.2.101 \\\n"
     "      --subnet 10.1.2.0/24 --room B101 --tag win --tag lab",
     &res_machine, 0},
    {"set", "ID|NAME", 1, 1, machine_set_opts, res_cmd_set, "change a machine ('' clears a field)",
     NULL, "  mlctl machine set pc-101 --room B102", &res_machine, 0},
    {"rm", "ID|NAME...", 1, -1, NULL, res_cmd_rm, "delete machines", NULL,
     "  mlctl machine rm pc-101 pc-102", &res_machine, 0},
    {"import", "FILE", 1, 1, machine_import_opts, machine_import,
     "import machines from a CSV file or a dhcpd.conf / dnsmasq hosts file (- for stdin)",
     "Prints what was created, updated and skipped; each bad line as FILE:LINE:\n"
     "message on stderr, and then exits 1.",
     "  mlctl machine import /etc/dhcp/dhcpd.conf --format dhcpd --dry-run", &res_machine, 0},
    {"rollback", "ID|NAME", 1, 1, cmd_rollback_opts, machine_rollback,
     "make the previous version of an image active again on the machine",
     "The machine's agent switches back to the version it had before; --wait\n"
     "follows the rollback to the end and exits 1 when it did not succeed.",
     "  mlctl machine rollback pc-101 --image win11 --wait", &res_machine, 0},
    {"boot", "ID|NAME [MODE|default]", 1, 2, cmd_boot_opts, machine_boot,
     "show or set how the machine network-boots",
     "MODE is microlinux (the client OS in RAM), local (its own disk), install\n"
     "(Microlinux installs itself to the local disk) or shell (maintenance).\n"
     "Without MODE, shows the mode that applies and why; 'default' clears the\n"
     "machine's own mode, so its groups' or the server's default applies.\n"
     "A temporary mode comes first until removed or expired; an install's is\n"
     "removed when the machine reports the install done.",
     "  mlctl machine boot pc-101\n"
     "  mlctl machine boot pc-101 local\n"
     "  mlctl machine boot pc-101 install --temporary --reason 'new disk'\n"
     "  mlctl machine boot pc-101 --clear-temporary",
     &res_machine, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_machine_noun = {"machine", "the inventory of workstations", machine_cmds};

/*
 * mlctl image ... and mlctl library ...: images, their versions (imports
 * from a server path or an upload) and the chunk library.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlctl.h"

/* How often an import is polled. */
#define IMAGE_POLL_MS 500

static char *image_memory(const json_t *o)
{
	const json_t *m = json_object_get(o, "memory_mb");
	char buf[32];
	if (!json_is_integer(m) || json_integer_value(m) < 0)
		return NULL;
	out_size((uint64_t)json_integer_value(m) << 20, buf, sizeof(buf));
	return strdup(buf);
}

static const struct col image_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"NAME", "name", C_STR, NULL},
    {"OS", "os_type", C_STR, NULL},
    {"CPUS", "cpus", C_NUM, NULL},
    {"MEMORY", NULL, C_FN, image_memory},
    {"FIRMWARE", "firmware", C_STR, NULL},
    {"DISPLAY", "display", C_STR, NULL},
    {"VLAN", "vlan", C_NUM, NULL},
    {"VERSIONS", "versions", C_NUM, NULL},
    {"LATEST ID", "latest_version", C_NUM, NULL},
    {"DESCRIPTION", "description", C_STR, NULL},
    {NULL, NULL, C_STR, NULL},
};

/*
 * "ready", "failed", or while importing its phase and progress:
 * "uploading 42%", "queued", "importing 7%".
 */
static char *version_state(const json_t *o)
{
	const char *st = json_string_value(json_object_get(o, "state"));
	const char *phase = json_string_value(json_object_get(o, "phase"));
	const json_t *p = json_object_get(o, "progress");
	char buf[64];
	if (!st)
		return NULL;
	if (strcmp(st, "importing") != 0)
		return strdup(st);
	if (!phase)
		phase = st;
	if (strcmp(phase, "queued") != 0 && json_is_number(p))
		snprintf(buf, sizeof(buf), "%s %d%%", phase, (int)(json_number_value(p) * 100));
	else
		snprintf(buf, sizeof(buf), "%s", phase);
	return strdup(buf);
}

static const struct col version_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"NO", "number", C_NUM, NULL},
    {"STATE", NULL, C_FN, version_state},
    {"SIZE", "size", C_SIZE, NULL},
    {"STORED", "stored_size", C_SIZE, NULL},
    {"NEW", "new_bytes", C_SIZE, NULL},
    {"SOURCE", "source", C_STR, NULL},
    {"CREATED", "created_at", C_TIME, NULL},
    {"BY", "created_by", C_STR, NULL},
    {"NOTE", "note", C_STR, NULL},
    {NULL, NULL, C_STR, NULL},
};

const struct res res_image = {"image", "/images", "name", false, false, image_cols, NULL};

/* The image named by the first argument, and "/images/ID" + tail into path. */
static int image_arg(struct mlctl *ml, struct args *a, int64_t *id, char *path, size_t size,
                     const char *tail)
{
	int rc = res_id(ml, &res_image, arg_pos(a, 0), id);
	if (rc == 0)
		res_path(path, size, "/images", *id, tail);
	return rc;
}

static void image_sleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Polls a version until its import ends, with a progress bar on a
 * terminal, then prints it. A failed import is a failure (status 1).
 * Takes ownership of ver.
 */
static int image_wait(struct mlctl *ml, int64_t image_id, json_t *ver)
{
	char path[128];
	bool bar = false;
	int rc = 0;
	const json_t *vid = json_object_get(ver, "id");
	if (!json_is_integer(vid)) {
		json_decref(ver);
		return ml_fail(ml, "the server's answer has no version id");
	}
	snprintf(path, sizeof(path), "/images/%lld/versions/%lld", (long long)image_id,
	         (long long)json_integer_value(vid));
	for (;;) {
		const char *st = json_string_value(json_object_get(ver, "state"));
		if (!st || strcmp(st, "importing") != 0)
			break;
		if (ml->tty_err && !ml->quiet) {
			/*
			 * The bar says what the server does now: waiting for an
			 * import slot (queued), or importing; "uploading" shows
			 * only for an upload still being received.
			 */
			const json_t *p = json_object_get(ver, "progress");
			const char *phase = json_string_value(json_object_get(ver, "phase"));
			const char *label = "import";
			char detail[64];
			snprintf(detail, sizeof(detail), "version %lld",
			         (long long)json_integer_value(json_object_get(ver, "number")));
			if (phase &&
			    (strcmp(phase, "uploading") == 0 || strcmp(phase, "queued") == 0 ||
			     strcmp(phase, "importing") == 0))
				label = phase;
			if (strcmp(label, "queued") == 0)
				out_progress(label, -1, detail);
			else
				out_progress(label, json_is_number(p) ? json_number_value(p) : 0,
				             detail);
			bar = true;
		}
		image_sleep(IMAGE_POLL_MS);
		json_t *next;
		rc = cl_call(ml, "GET", path, NULL, &next);
		if (rc < 0)
			break;
		json_decref(ver);
		ver = next;
	}
	if (bar)
		out_progress_end();
	if (rc == 0) {
		rc = out_one(ml, ver);
		const char *st = json_string_value(json_object_get(ver, "state"));
		if (st && strcmp(st, "failed") == 0) {
			const char *e = json_string_value(json_object_get(ver, "error"));
			rc = ml_fail(ml, "the import failed: %s", e ? e : "(no reason given)");
		}
	}
	json_decref(ver);
	return rc;
}

static int image_import(struct mlctl *ml, struct args *a)
{
	char path[128];
	int64_t id;
	json_t *ver = NULL, *body;
	int rc = image_arg(ml, a, &id, path, sizeof(path), "/versions");
	if (rc < 0)
		return rc;
	body = json_pack("{s:s}", "path", arg_pos(a, 1));
	if (!body)
		return ml_usage(ml, "the path is not valid UTF-8");
	rc = arg_body(ml, a, body, false);
	if (rc == 0)
		rc = cl_call(ml, "POST", path, body, &ver);
	json_decref(body);
	if (rc < 0)
		return rc;
	if (arg_has(a, "no-wait")) {
		rc = out_one(ml, ver);
		json_decref(ver);
		return rc;
	}
	return image_wait(ml, id, ver);
}

static int image_upload(struct mlctl *ml, struct args *a)
{
	char base[128];
	int64_t id;
	json_t *ver = NULL;
	struct sb path = {0};
	int rc = image_arg(ml, a, &id, base, sizeof(base), "/versions/upload");
	if (rc < 0)
		return rc;
	sb_add(&path, base);
	if (arg_val(a, "note")) {
		sb_add(&path, "?note=");
		sb_add_qval(&path, arg_val(a, "note"));
	}
	char *p = sb_take(&path);
	if (!p)
		return ml_fail(ml, "out of memory");
	rc = cl_upload(ml, p, arg_pos(a, 1), &ver);
	free(p);
	if (rc < 0)
		return rc;
	if (arg_has(a, "no-wait")) {
		rc = out_one(ml, ver);
		json_decref(ver);
		return rc;
	}
	return image_wait(ml, id, ver);
}

static int image_versions(struct mlctl *ml, struct args *a)
{
	char path[128];
	int64_t id;
	int rc = image_arg(ml, a, &id, path, sizeof(path), "/versions");
	if (rc < 0)
		return rc;
	json_t *doc;
	rc = cl_list(ml, path, false, &doc);
	if (rc < 0)
		return rc;
	rc = out_list(ml, doc, version_cols);
	json_decref(doc);
	return rc;
}

/* "/images/ID/versions/VID" for IMAGE VERSION arguments. */
static int image_version_path(struct mlctl *ml, struct args *a, char *path, size_t size)
{
	int64_t id, vid;
	int rc = res_id(ml, &res_image, arg_pos(a, 0), &id);
	if (rc == 0)
		rc = res_version(ml, id, arg_pos(a, 1), &vid);
	if (rc == 0)
		snprintf(path, size, "/images/%lld/versions/%lld", (long long)id, (long long)vid);
	return rc;
}

static int image_version(struct mlctl *ml, struct args *a)
{
	char path[128];
	json_t *ver;
	int rc = image_version_path(ml, a, path, sizeof(path));
	if (rc == 0)
		rc = cl_call(ml, "GET", path, NULL, &ver);
	if (rc < 0)
		return rc;
	rc = out_one(ml, ver);
	json_decref(ver);
	return rc;
}

static int image_rm_version(struct mlctl *ml, struct args *a)
{
	char path[128];
	int rc = image_version_path(ml, a, path, sizeof(path));
	if (rc == 0)
		rc = cl_call(ml, "DELETE", path, NULL, NULL);
	if (rc == 0 && !ml->quiet && !ml->json)
		printf("removed version %s of image %s (its chunks go at the next 'mlctl library "
		       "gc')\n",
		       arg_pos(a, 1), arg_pos(a, 0));
	return rc;
}

static int image_verify(struct mlctl *ml, struct args *a)
{
	char path[160];
	json_t *res = NULL;
	int rc = image_version_path(ml, a, path, sizeof(path));
	if (rc < 0)
		return rc;
	size_t used = strlen(path);
	snprintf(path + used, sizeof(path) - used, "/verify");
	rc = cl_call(ml, "POST", path, NULL, &res);
	if (rc < 0)
		return rc;
	if (!json_is_object(res)) {
		json_decref(res);
		return ml_fail(ml, "the server's answer is not a verification result");
	}
	rc = out_one(ml, res);
	if (rc == 0 && !json_is_true(json_object_get(res, "ok"))) {
		size_t bad = json_array_size(json_object_get(res, "bad_chunks"));
		bool hash_ok = json_is_true(json_object_get(res, "image_hash_ok"));
		rc = ml_fail(ml, "version %s of image %s is damaged: %zu bad chunk%s%s",
		             arg_pos(a, 1), arg_pos(a, 0), bad, bad == 1 ? "" : "s",
		             hash_ok ? "" : ", the image's SHA-256 does not match");
	}
	json_decref(res);
	return rc;
}

static int library_show(struct mlctl *ml, struct args *a)
{
	json_t *obj;
	(void)a;
	int rc = cl_call(ml, "GET", "/library", NULL, &obj);
	if (rc < 0)
		return rc;
	rc = out_one(ml, obj);
	json_decref(obj);
	return rc;
}

static int library_gc(struct mlctl *ml, struct args *a)
{
	json_t *obj;
	(void)a;
	int rc = cl_call(ml, "POST", "/library/gc", NULL, &obj);
	if (rc < 0)
		return rc;
	rc = obj ? out_one(ml, obj) : 0;
	json_decref(obj);
	return rc;
}

#define IMAGE_FIELDS                                                                                 \
	{"description", V_STR, "TEXT", "what the image is", "description", NULL},                    \
	    {"os", V_STR, "OS", "linux, windows or other (default other)", "os_type", NULL},         \
	    {"cpus", V_INT, "N", "virtual CPUs, 1-256 (default 2)", "cpus", NULL},                   \
	    {"memory-mb", V_INT, "MB", "memory in MiB, 64-1048576 (default 2048)",                   \
	     "memory_mb", NULL},                                                                     \
	    {"nic", V_STR, "MODEL", "virtio, e1000 or rtl8139 (default virtio)", "nic_model", NULL}, \
	    {"vlan", V_INT, "N", "VLAN 1-4094 (on set, '' clears it)", "vlan", NULL},                \
	    {"display", V_STR, "KIND", "spice or local (default local)", "display", NULL},           \
	    {"firmware", V_STR, "KIND", "bios or uefi (default bios)", "firmware", NULL},            \
	    {"offline", V_TRUE, NULL, "may run without the network", "offline", NULL},               \
	    {"online", V_FALSE, NULL, "needs the network (the default)", "offline", NULL},           \
	{                                                                                            \
		"field", V_RAW, "KEY=VALUE", "any other field (VALUE as JSON, else a string)",       \
		    NULL, NULL                                                                       \
	}

static const struct opt image_create_opts[] = {
    IMAGE_FIELDS,
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt image_set_opts[] = {
    {"name", V_STR, "NAME", "a new name", "name", NULL},
    IMAGE_FIELDS,
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt image_import_opts[] = {
    {"note", V_STR, "TEXT", "a note on the version", "note", NULL},
    {"no-wait", V_FLAG, NULL, "return at once instead of waiting for the import", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt image_upload_opts[] = {
    {"note", V_VAL, "TEXT", "a note on the version", NULL, NULL},
    {"no-wait", V_FLAG, NULL, "return once uploaded instead of waiting for the import", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd image_cmds[] = {
    {"list", NULL, 0, 0, NULL, res_cmd_list, "list images", NULL, "  mlctl image list", &res_image,
     CMD_LIST},
    {"show", "ID|NAME", 1, 1, NULL, res_cmd_show, "show one image", NULL,
     "  mlctl image show win11", &res_image, 0},
    {"create", "NAME", 1, 1, image_create_opts, res_cmd_add,
     "create an image (its disk comes with import or upload)", NULL,
     "  mlctl image create win11 --os windows --cpus 4 --memory-mb 8192 --firmware uefi",
     &res_image, 0},
    {"set", "ID|NAME", 1, 1, image_set_opts, res_cmd_set, "change an image's settings", NULL,
     "  mlctl image set win11 --cpus 8 --vlan ''", &res_image, 0},
    {"rm", "ID|NAME...", 1, -1, NULL, res_cmd_rm, "delete images that have no versions", NULL,
     "  mlctl image rm old-image", &res_image, 0},
    {"import", "IMAGE PATH", 2, 2, image_import_opts, image_import,
     "import a new version from a disk file on the server (raw or qcow2)",
     "Waits for the import with a progress bar unless --no-wait; exits 1 when it\n"
     "fails.",
     "  mlctl image import win11 /srv/images/win11-2026-11.qcow2 --note 'November "
     "updates'",
     &res_image, 0},
    {"upload", "IMAGE FILE", 2, 2, image_upload_opts, image_upload,
     "upload a disk file (raw or qcow2; - for stdin) as a new version",
     "Streams FILE with PUT .../versions/upload (a progress bar on a terminal), then\n"
     "waits for the import unless --no-wait; exits 1 when it fails.",
     "  mlctl image upload win11 ./win11.qcow2 --note 'from the lab PC'", &res_image, 0},
    {"versions", "IMAGE", 1, 1, NULL, image_versions, "list an image's versions, newest first",
     NULL, "  mlctl image versions win11", &res_image, CMD_LIST},
    {"version", "IMAGE VERSION", 2, 2, NULL, image_version,
     "show one version (VERSION: its id, vN for number N, or latest)", NULL,
     "  mlctl image version win11 v3", &res_image, 0},
    {"rm-version", "IMAGE VERSION", 2, 2, NULL, image_rm_version,
     "delete a version (its chunks go at the next library gc)", NULL,
     "  mlctl image rm-version win11 v1", &res_image, 0},
    {"verify", "IMAGE VERSION", 2, 2, NULL, image_verify,
     "re-read and check every chunk of a ready version",
     "Reads every stored chunk of the version and checks it against its SHA-256,\n"
     "and the whole image against the image's; exits 1 when anything is damaged\n"
     "or missing. Takes about as long as reading the version's stored bytes.",
     "  mlctl image verify win11 latest", &res_image, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

static const struct cmd library_cmds[] = {
    {"show", NULL, 0, 0, NULL, library_show,
     "chunks, stored bytes, images, versions, imports running", NULL, "  mlctl library show", NULL,
     0},
    {"gc", NULL, 0, 0, NULL, library_gc, "remove chunks no version uses (admin)", NULL,
     "  mlctl library gc", NULL, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_image_noun = {"image", "VM disk images and their versions", image_cmds};
const struct noun cmd_library_noun = {"library", "the image chunk store", library_cmds};

/*
 * Images and their versions (docs/api.md, "Images and versions"): image
 * metadata in the store, versions imported by the library (library.h) from
 * a path on the server or an upload streamed in the request body, and the
 * library's GC, status and verification.
 *
 * Without a library (srv->lib NULL, as in the fuzz harness) the metadata
 * routes work and those that need files answer 503.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "audit.h"
#include "chunks.h"
#include "jv.h"
#include "library.h"
#include "req.h"
#include "server.h"
#include "store.h"

#define IMG_NOTE_MAX 1000
#define IMG_DESC_MAX 1000

static const char *const os_vals[] = {"linux", "windows", "other", NULL};
static const char *const nic_vals[] = {"virtio", "e1000", "rtl8139", NULL};
static const char *const display_vals[] = {"spice", "local", NULL};
static const char *const firmware_vals[] = {"bios", "uefi", NULL};

#define IMAGE_COLS                                                                                 \
	"SELECT i.id, i.name, i.description, i.os_type, i.cpus, i.memory_mb, i.nic_model,"         \
	" i.vlan, i.display, i.firmware, i.offline AS \"offline:b\","                              \
	" (SELECT v.id FROM image_versions v WHERE v.image_id = i.id AND v.state = 'ready'"        \
	"  ORDER BY v.number DESC LIMIT 1) AS latest_version,"                                     \
	" (SELECT COUNT(*) FROM image_versions v WHERE v.image_id = i.id) AS versions,"            \
	" i.created_at AS \"created_at:t\", i.updated_at AS \"updated_at:t\" FROM images i"

#define VERSION_COLS                                                                               \
	"SELECT id, image_id, number, state, error, source, note, size, stored_size, new_bytes,"   \
	" chunk_size, chunk_count, sha256, created_by_name AS created_by,"                         \
	" created_by AS created_by_id, created_at AS \"created_at:t\","                            \
	" finished_at AS \"finished_at:t\" FROM image_versions"

/* The library, or a 503 and NULL. */
static struct library *img_lib(struct req *r)
{
	if (!r->srv->lib)
		req_error(r, 503, "unavailable", NULL, "the image library is not available");
	return r->srv->lib;
}

/* Image names: 1..64 of [A-Za-z0-9._-]. */
static int img_name_check(struct req *r, const char *s)
{
	for (const char *p = s; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		          (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
		if (!ok)
			return req_bad(r, "name",
			               "name may hold only A-Z, a-z, 0-9, '.', '_' and '-'");
	}
	return 0;
}

/* A note from the query string: at most IMG_NOTE_MAX bytes, no control characters. */
static int img_note_check(struct req *r, const char *s)
{
	if (strlen(s) > IMG_NOTE_MAX)
		return req_bad(r, "note", "note is longer than %d bytes", IMG_NOTE_MAX);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return req_bad(r, "note", "note contains control characters");
	return 0;
}

/*
 * Adds "progress" and "phase" to a version: from the library while it
 * imports, 1 when ready, null when failed.
 */
static json_t *img_version_progress(struct req *r, json_t *v)
{
	double frac = 0.0;
	const char *phase = "queued";
	if (!v)
		return NULL;
	const char *state = json_string_value(json_object_get(v, "state"));
	if (state && strcmp(state, "importing") == 0) {
		if (r->srv->lib)
			library_progress(r->srv->lib, json_integer_value(json_object_get(v, "id")),
			                 &frac, &phase);
		json_object_set_new(v, "progress", json_real(frac));
		json_object_set_new(v, "phase", json_string(phase));
	} else {
		json_object_set_new(v, "progress",
		                    state && strcmp(state, "ready") == 0 ? json_real(1.0)
		                                                         : json_null());
		json_object_set_new(v, "phase", json_null());
	}
	return v;
}

static json_t *img_version_get(struct req *r, int64_t image_id, int64_t id, bool *found)
{
	json_t *v =
	    store_row1_json(r->srv->store, found, VERSION_COLS " WHERE id = ? AND image_id = ?",
	                    "ii", id, image_id);
	return img_version_progress(r, v);
}

/* 404 for a version: names the image when that is what is missing. */
static int img_version_not_found(struct req *r, int64_t image_id, int64_t id)
{
	int64_t n = 0;
	store_int(r->srv->store, &n, "SELECT COUNT(*) FROM images WHERE id = ?", "i", image_id);
	if (!n)
		return req_not_found(r, "image", image_id);
	return req_error(r, 404, "not_found", NULL, "image %lld has no version with id %lld",
	                 (long long)image_id, (long long)id);
}

/* ---- images ------------------------------------------------------------ */

static json_t *img_get(struct req *r, int64_t id, bool *found)
{
	return store_row1_json(r->srv->store, found, IMAGE_COLS " WHERE i.id = ?", "i", id);
}

static int images_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	store_int(r->srv->store, &total, "SELECT COUNT(*) FROM images", NULL);
	json_t *items = store_rows_json(
	    r->srv->store, IMAGE_COLS " ORDER BY i.name LIMIT ? OFFSET ?", "ii", limit, offset);
	return req_reply_page(r, items, total, limit, offset);
}

static int images_get(struct req *r)
{
	bool found;
	json_t *v = img_get(r, r->id[0], &found);
	if (!found)
		return v ? req_internal(r) : req_not_found(r, "image", r->id[0]);
	return req_reply(r, 200, v);
}

/* The fields of an image a request may set; has_* say which were given. */
struct img_fields {
	const char *name, *description, *os_type, *nic_model, *display, *firmware;
	int64_t cpus, memory_mb, vlan;
	bool offline;
	int has_cpus, has_memory, has_vlan, has_offline;
	bool vlan_null; /* "vlan": null given: no VLAN */
};

/* Validates the image fields of the body; name is required when creating. */
static int img_fields_parse(struct req *r, bool create, struct img_fields *f)
{
	static const char *const keys[] = {"name",      "description", "os_type", "cpus",
	                                   "memory_mb", "nic_model",   "vlan",    "display",
	                                   "firmware",  "offline",     NULL};
	memset(f, 0, sizeof(*f));
	if (jv_object(r, keys) < 0 || jv_str(r, "name", create ? JV_REQ : 0, 1, 64, &f->name) < 0 ||
	    (f->name && img_name_check(r, f->name) < 0) ||
	    jv_str(r, "description", 0, 0, IMG_DESC_MAX, &f->description) < 0 ||
	    jv_enum(r, "os_type", 0, os_vals, &f->os_type) < 0 ||
	    (f->has_cpus = jv_int(r, "cpus", 0, 1, 256, &f->cpus)) < 0 ||
	    (f->has_memory = jv_int(r, "memory_mb", 0, 64, 1048576, &f->memory_mb)) < 0 ||
	    jv_enum(r, "nic_model", 0, nic_vals, &f->nic_model) < 0 ||
	    (f->has_vlan = jv_int(r, "vlan", 0, 1, 4094, &f->vlan)) < 0 ||
	    jv_enum(r, "display", 0, display_vals, &f->display) < 0 ||
	    jv_enum(r, "firmware", 0, firmware_vals, &f->firmware) < 0 ||
	    (f->has_offline = jv_bool(r, "offline", 0, &f->offline)) < 0)
		return -1;
	json_t *vlan = json_object_get(r->body, "vlan");
	f->vlan_null = vlan && json_is_null(vlan);
	return 0;
}

static int images_create(struct req *r)
{
	struct img_fields f;
	struct store *s = r->srv->store;
	int64_t id, now = store_now();
	if (img_fields_parse(r, true, &f) < 0)
		return -1;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_insert(
	    s, &id,
	    "INSERT INTO images (name, description, os_type, cpus, memory_mb, nic_model, vlan,"
	    " display, firmware, offline, created_at, updated_at)"
	    " VALUES (?, ?, ?, ?, ?, ?, NULLIF(?, 0), ?, ?, ?, ?, ?) RETURNING id",
	    "tttiitittdii", f.name, f.description ? f.description : "",
	    f.os_type ? f.os_type : "other", f.has_cpus ? f.cpus : 2,
	    f.has_memory ? f.memory_mb : 2048, f.nic_model ? f.nic_model : "virtio",
	    f.has_vlan ? f.vlan : 0, f.display ? f.display : "local",
	    f.firmware ? f.firmware : "bios", f.has_offline ? f.offline : false, now, now);
	/* No VLAN is stored as NULL (NULLIF above): 0 is not a VLAN. */
	if (rc >= 0)
		rc = audit_add(r, "create", "image", id, "image '%s'", f.name);
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			return req_conflict(r, "name", "an image named '%s' already exists",
			                    f.name);
		return req_store_error(r, rc, "image");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	bool found;
	return req_reply(r, 201, img_get(r, id, &found));
}

static int images_update(struct req *r)
{
	struct img_fields f;
	struct store *s = r->srv->store;
	int64_t id = r->id[0], now = store_now(), n = 0;
	char changed[256] = "";
	size_t used = 0;
	if (img_fields_parse(r, false, &f) < 0)
		return -1;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_int(s, &n, "SELECT COUNT(*) FROM images WHERE id = ?", "i", id);
	if (rc == 0 && n == 0) {
		store_rollback(s);
		return req_not_found(r, "image", id);
	}
	/* One statement per field given; column names come from this table, never the client. */
	const struct {
		const char *col;
		bool given;
		char type;
		const char *text;
		int64_t num;
	} sets[] = {
	    {"name", f.name != NULL, 't', f.name, 0},
	    {"description", f.description != NULL, 't', f.description, 0},
	    {"os_type", f.os_type != NULL, 't', f.os_type, 0},
	    {"cpus", f.has_cpus > 0, 'i', NULL, f.cpus},
	    {"memory_mb", f.has_memory > 0, 'i', NULL, f.memory_mb},
	    {"nic_model", f.nic_model != NULL, 't', f.nic_model, 0},
	    {"vlan", f.has_vlan > 0 || f.vlan_null, f.vlan_null ? 'n' : 'i', NULL, f.vlan},
	    {"display", f.display != NULL, 't', f.display, 0},
	    {"firmware", f.firmware != NULL, 't', f.firmware, 0},
	    {"offline", f.has_offline > 0, 'i', NULL, f.offline},
	};
	for (size_t i = 0; rc >= 0 && i < sizeof(sets) / sizeof(sets[0]); i++) {
		char sql[128];
		if (!sets[i].given)
			continue;
		snprintf(sql, sizeof(sql), "UPDATE images SET %s = ?, updated_at = ? WHERE id = ?",
		         sets[i].col);
		if (sets[i].type == 't')
			rc = store_exec(s, sql, "tii", sets[i].text, now, id);
		else if (sets[i].type == 'n')
			rc = store_exec(s, sql, "nii", now, id);
		else
			rc = store_exec(s, sql, "iii", sets[i].num, now, id);
		if (used < sizeof(changed))
			used += (size_t)snprintf(changed + used, sizeof(changed) - used, "%s%s",
			                         used ? " " : "", sets[i].col);
	}
	if (rc >= 0)
		rc = audit_add(r, "update", "image", id, "%s", used ? changed : "nothing");
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			return req_conflict(r, "name", "an image named '%s' already exists",
			                    f.name ? f.name : "");
		return req_store_error(r, rc, "image");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	bool found;
	return req_reply(r, 200, img_get(r, id, &found));
}

static int images_delete(struct req *r)
{
	struct store *s = r->srv->store;
	int64_t id = r->id[0], n = 0, nv = 0;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_int(s, &n, "SELECT COUNT(*) FROM images WHERE id = ?", "i", id);
	if (rc == 0 && n == 0) {
		store_rollback(s);
		return req_not_found(r, "image", id);
	}
	if (rc == 0)
		rc = store_int(s, &nv, "SELECT COUNT(*) FROM image_versions WHERE image_id = ?",
		               "i", id);
	if (rc == 0 && nv > 0) {
		store_rollback(s);
		return req_conflict(r, NULL, "the image has %lld version%s; delete them first",
		                    (long long)nv, nv == 1 ? "" : "s");
	}
	if (rc == 0)
		rc = store_exec(s, "DELETE FROM images WHERE id = ?", "i", id);
	if (rc >= 0)
		rc = audit_add(r, "delete", "image", id, "image %lld", (long long)id);
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EBUSY)
			return req_conflict(r, NULL, "the image is still used by an entry");
		return req_store_error(r, rc, "image");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

/* ---- versions ---------------------------------------------------------- */

static int versions_list(struct req *r)
{
	int64_t limit, offset, total = 0, n = 0;
	int64_t image_id = r->id[0];
	struct store *s = r->srv->store;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	store_int(s, &n, "SELECT COUNT(*) FROM images WHERE id = ?", "i", image_id);
	if (!n)
		return req_not_found(r, "image", image_id);
	store_int(s, &total, "SELECT COUNT(*) FROM image_versions WHERE image_id = ?", "i",
	          image_id);
	json_t *items = store_rows_json(
	    s, VERSION_COLS " WHERE image_id = ? ORDER BY number DESC LIMIT ? OFFSET ?", "iii",
	    image_id, limit, offset);
	size_t i;
	json_t *v;
	json_array_foreach(items, i, v) img_version_progress(r, v);
	return req_reply_page(r, items, total, limit, offset);
}

static int versions_get(struct req *r)
{
	bool found;
	json_t *v = img_version_get(r, r->id[0], r->id[1], &found);
	if (!found)
		return v ? req_internal(r) : img_version_not_found(r, r->id[0], r->id[1]);
	return req_reply(r, 200, v);
}

/*
 * Inserts an importing version of image_id, in a transaction of its own
 * with its audit record. Returns 0 and *id, or -1 with a response set.
 */
static int img_version_insert(struct req *r, int64_t image_id, const char *source, const char *note,
                              int64_t *id)
{
	struct store *s = r->srv->store;
	int64_t number = 0;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc =
	    store_int(s, &number, "SELECT next_number FROM images WHERE id = ?", "i", image_id);
	if (rc == -ENOENT) {
		store_rollback(s);
		return req_not_found(r, "image", image_id);
	}
	if (rc == 0)
		rc = store_exec(s, "UPDATE images SET next_number = next_number + 1 WHERE id = ?",
		                "i", image_id);
	if (rc >= 0)
		rc = store_insert(
		    s, id,
		    "INSERT INTO image_versions (image_id, number, state, source, note,"
		    " created_by, created_by_name, created_at)"
		    " VALUES (?, ?, 'importing', ?, ?, ?, ?, ?) RETURNING id",
		    "iittiti", image_id, number, source, note, r->user.id, r->user.name,
		    store_now());
	if (rc >= 0)
		rc = audit_add(r, "import", "version", *id, "image %lld version %lld from %s",
		               (long long)image_id, (long long)number, source);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "version");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return 0;
}

static int versions_import(struct req *r)
{
	static const char *const keys[] = {"path", "note", NULL};
	const char *path, *note = "";
	char resolved[4096], why[512];
	struct library *lib;
	int64_t image_id = r->id[0], id = 0, n = 0;
	int fd;
	if (jv_object(r, keys) < 0 || jv_str(r, "path", JV_REQ, 1, 4095, &path) < 0 ||
	    jv_str(r, "note", 0, 0, IMG_NOTE_MAX, &note) < 0)
		return -1;
	store_int(r->srv->store, &n, "SELECT COUNT(*) FROM images WHERE id = ?", "i", image_id);
	if (!n)
		return req_not_found(r, "image", image_id);
	if (!(lib = img_lib(r)))
		return -1;
	/* The file is checked and opened before the row exists: a bad path leaves nothing. */
	if (library_check_path(lib, path, &fd, resolved, sizeof(resolved), why, sizeof(why)) < 0)
		return req_bad(r, "path", "path: %s", why);
	if (img_version_insert(r, image_id, resolved, note, &id) < 0) {
		close(fd);
		return -1;
	}
	if (library_import(lib, id, fd, resolved) < 0)
		return req_error(r, 503, "unavailable", NULL,
		                 "the server is stopping; the import did not start");
	bool found;
	return req_reply(r, 202, img_version_get(r, image_id, id, &found));
}

/* An upload in progress: the library's file and the version it feeds. */
struct img_upload {
	struct library_upload *u;
	int64_t image_id, id;
};

static int upload_begin(struct req *r, void **ctx)
{
	const char *note = req_query(r, "note");
	struct library *lib;
	struct img_upload *up;
	int64_t image_id = r->id[0], n = 0;
	int rc;

	*ctx = NULL;
	if (note && img_note_check(r, note) < 0)
		return -1;
	store_int(r->srv->store, &n, "SELECT COUNT(*) FROM images WHERE id = ?", "i", image_id);
	if (!n)
		return req_not_found(r, "image", image_id);
	if (!(lib = img_lib(r)))
		return -1;
	if (r->content_length == 0)
		return req_bad(r, NULL, "the upload is empty; send the image as the request body");
	/* Checked before the row exists, so that a refusal leaves nothing behind. */
	rc = library_upload_check(lib, r->content_length);
	if (rc == -ENOSPC) {
		return req_error(r, 507, "insufficient_storage", NULL,
		                 "the upload is %lld bytes; the server has less free space",
		                 (long long)r->content_length);
	} else if (rc == -EFBIG) {
		return req_error(r, 413, "payload_too_large", NULL,
		                 "the upload is larger than [api] upload_max");
	}
	if (!(up = calloc(1, sizeof(*up))))
		return req_error(r, 503, "unavailable", NULL, "out of memory");
	up->image_id = image_id;
	if (img_version_insert(r, image_id, "upload", note ? note : "", &up->id) < 0) {
		free(up);
		return -1;
	}
	rc = library_upload_begin(lib, up->id, r->content_length, &up->u);
	if (rc < 0) {
		library_fail(lib, up->id,
		             rc == -ENOSPC ? "the server's disk is full"
		                           : "cannot create the upload's file");
		free(up);
		if (rc == -ENOSPC)
			return req_error(r, 507, "insufficient_storage", NULL,
			                 "the server's disk is full");
		return req_internal(r);
	}
	*ctx = up;
	return 0;
}

static int upload_data(void *ctx, struct req *r, const void *buf, size_t n)
{
	struct img_upload *up = ctx;
	int rc = library_upload_write(up->u, buf, n);
	if (rc == 0)
		return 0;
	if (rc == -EFBIG) {
		library_upload_abort(up->u, "the upload was larger than [api] upload_max");
		up->u = NULL;
		return req_error(r, 413, "payload_too_large", NULL,
		                 "the upload is larger than %llu bytes ([api] upload_max)",
		                 (unsigned long long)r->srv->conf.upload_max);
	}
	library_upload_abort(up->u, rc == -ENOSPC ? "the server's disk filled up during the upload"
	                                          : "cannot write the upload's file");
	up->u = NULL;
	if (rc == -ENOSPC)
		return req_error(r, 507, "insufficient_storage", NULL,
		                 "the server's disk filled up during the upload");
	return req_internal(r);
}

static int upload_finish(void *ctx, struct req *r, bool complete)
{
	struct img_upload *up = ctx;
	int rc = 0;
	if (!up)
		return 0;
	if (!up->u) {
		/* data() refused the body and already answered. */
	} else if (!complete) {
		char why[160];
		snprintf(why, sizeof(why), "upload aborted: the connection ended after %llu bytes",
		         (unsigned long long)library_upload_bytes(up->u));
		library_upload_abort(up->u, why);
	} else {
		rc = library_upload_commit(up->u);
		if (rc == -ENODATA)
			req_bad(r, NULL, "the upload is empty; send the image as the request body");
		else if (rc < 0)
			req_error(r, 503, "unavailable", NULL,
			          "the server is stopping; the import did not start");
		else {
			bool found;
			req_reply(r, 202, img_version_get(r, up->image_id, up->id, &found));
		}
	}
	free(up);
	return rc < 0 ? -1 : 0;
}

static const struct api_upload img_upload_cb = {upload_begin, upload_data, upload_finish};

static int versions_delete(struct req *r)
{
	struct store *s = r->srv->store;
	int64_t image_id = r->id[0], id = r->id[1], deps = 0, runs = 0;
	struct library *lib;
	if (!(lib = img_lib(r)))
		return -1;
	if (store_begin(s) < 0)
		return req_internal(r);
	struct store_q *q =
	    store_query(s, "SELECT state, number FROM image_versions WHERE id = ? AND image_id = ?",
	                "ii", id, image_id);
	int rc = q ? store_next(q) : -EIO;
	char state[16] = "";
	int64_t number = 0;
	if (rc == 1) {
		snprintf(state, sizeof(state), "%s", store_col_text(q, 0));
		number = store_col_int(q, 1);
	}
	store_done(q);
	if (rc == 0) {
		store_rollback(s);
		return img_version_not_found(r, image_id, id);
	}
	if (rc < 0) {
		store_rollback(s);
		return req_internal(r);
	}
	if (strcmp(state, "importing") == 0) {
		store_rollback(s);
		return req_conflict(r, NULL,
		                    "version %lld is importing; delete it when the import ended",
		                    (long long)number);
	}
	store_int(s, &deps, "SELECT COUNT(*) FROM deployments WHERE version_id = ?", "i", id);
	store_int(s, &runs, "SELECT COUNT(*) FROM runs WHERE version_id = ?", "i", id);
	rc = store_exec(s, "DELETE FROM image_versions WHERE id = ?", "i", id);
	if (rc >= 0)
		rc = audit_add(r, "delete", "version", id, "image %lld version %lld (%s)",
		               (long long)image_id, (long long)number, state);
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EBUSY)
			return req_conflict(r, NULL,
			                    "version %lld is used by %lld deployment%s and %lld "
			                    "run%s; delete those first",
			                    (long long)number, (long long)deps,
			                    deps == 1 ? "" : "s", (long long)runs,
			                    runs == 1 ? "" : "s");
		return req_store_error(r, rc, "version");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	/* Rows first, files second; its chunks go at the next GC. */
	library_remove_version(lib, id);
	return req_no_content(r);
}

static int versions_verify(struct req *r)
{
	struct library_verify v;
	struct library *lib;
	char err[512] = "";
	bool found;
	if (r->body && jv_object(r, (const char *const[]){NULL}) < 0)
		return -1;
	json_t *ver = store_row1_json(r->srv->store, &found,
	                              "SELECT state, number FROM image_versions"
	                              " WHERE id = ? AND image_id = ?",
	                              "ii", r->id[1], r->id[0]);
	if (!found) {
		json_decref(ver);
		return img_version_not_found(r, r->id[0], r->id[1]);
	}
	if (!(lib = img_lib(r))) {
		json_decref(ver);
		return -1;
	}
	const char *state = json_string_value(json_object_get(ver, "state"));
	if (!state || strcmp(state, "ready") != 0) {
		req_conflict(r, NULL, "only a ready version can be verified; this one is %s",
		             state ? state : "?");
		json_decref(ver);
		return -1;
	}
	json_decref(ver);
	int rc = library_verify(lib, r->id[1], &v, err, sizeof(err));
	if (rc == -EINTR)
		return req_error(r, 503, "unavailable", NULL, "the server is stopping");
	if (rc < 0)
		return req_error(r, 500, "internal", NULL, "cannot verify: %s", err);
	bool ok = v.nbad == 0 && v.image_ok;
	json_t *bad = json_array();
	for (size_t i = 0; i < v.nbad; i++)
		json_array_append_new(bad, json_integer(v.bad[i]));
	audit_add(r, "verify", "version", r->id[1], "%s: %llu chunks checked, %zu bad%s",
	          ok ? "intact" : "CORRUPT", (unsigned long long)v.chunks_checked, v.nbad,
	          v.image_ok ? "" : ", image hash mismatch");
	json_t *resp =
	    json_pack("{s:b, s:I, s:o, s:b}", "ok", ok, "chunks_checked",
	              (json_int_t)v.chunks_checked, "bad_chunks", bad, "image_hash_ok", v.image_ok);
	library_verify_free(&v);
	return req_reply(r, 200, resp);
}

/* ---- the library ------------------------------------------------------- */

static int library_gc_post(struct req *r)
{
	struct chunks_gc_stats st;
	struct library *lib;
	char err[512] = "";
	if (r->body && jv_object(r, (const char *const[]){NULL}) < 0)
		return -1;
	if (!(lib = img_lib(r)))
		return -1;
	int rc = library_gc(lib, &st, err, sizeof(err));
	if (rc == -EBUSY)
		return req_conflict(r, NULL, "%s", err);
	if (rc < 0)
		return req_error(r, 500, "internal", NULL, "garbage collection failed: %s", err);
	audit_add(r, "gc", "library", 0, "removed %llu chunks (%llu bytes), kept %llu",
	          (unsigned long long)st.removed, (unsigned long long)st.freed_bytes,
	          (unsigned long long)(st.kept + st.kept_new));
	return req_reply(r, 200,
	                 json_pack("{s:I, s:I, s:I, s:I}", "chunks_removed", (json_int_t)st.removed,
	                           "bytes_freed", (json_int_t)st.freed_bytes, "chunks_kept",
	                           (json_int_t)(st.kept + st.kept_new), "chunks_kept_new",
	                           (json_int_t)st.kept_new));
}

static int library_get(struct req *r)
{
	struct library_usage u;
	struct library *lib;
	struct store *s = r->srv->store;
	int64_t images = 0, versions = 0, ready = 0, bytes = 0;
	if (!(lib = img_lib(r)))
		return -1;
	if (library_usage(lib, &u) < 0)
		return req_internal(r);
	store_int(s, &images, "SELECT COUNT(*) FROM images", NULL);
	store_int(s, &versions, "SELECT COUNT(*) FROM image_versions", NULL);
	store_int(s, &ready, "SELECT COUNT(*) FROM image_versions WHERE state = 'ready'", NULL);
	store_int(s, &bytes,
	          "SELECT COALESCE(SUM(size), 0) FROM image_versions WHERE state = 'ready'", NULL);
	return req_reply(
	    r, 200,
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "images",
	              (json_int_t)images, "versions", (json_int_t)versions, "versions_ready",
	              (json_int_t)ready, "versions_bytes", (json_int_t)bytes, "chunks",
	              (json_int_t)u.chunks, "stored_bytes", (json_int_t)u.stored_bytes,
	              "free_bytes", (json_int_t)u.free_bytes, "imports_running",
	              (json_int_t)u.imports_running, "imports_queued", (json_int_t)u.imports_queued,
	              "uploads_running", (json_int_t)u.uploads_running));
}

const struct api_route api_images_routes[] = {
    {"GET", "/images", ROLE_VIEWER, images_list, NULL},
    {"POST", "/images", ROLE_OPERATOR, images_create, NULL},
    {"GET", "/images/:id", ROLE_VIEWER, images_get, NULL},
    {"PATCH", "/images/:id", ROLE_OPERATOR, images_update, NULL},
    {"DELETE", "/images/:id", ROLE_OPERATOR, images_delete, NULL},
    {"GET", "/images/:id/versions", ROLE_VIEWER, versions_list, NULL},
    {"POST", "/images/:id/versions", ROLE_OPERATOR, versions_import, NULL},
    {"PUT", "/images/:id/versions/upload", ROLE_OPERATOR, NULL, &img_upload_cb},
    {"GET", "/images/:id/versions/:id", ROLE_VIEWER, versions_get, NULL},
    {"DELETE", "/images/:id/versions/:id", ROLE_OPERATOR, versions_delete, NULL},
    {"POST", "/images/:id/versions/:id/verify", ROLE_OPERATOR, versions_verify, NULL},
    {"POST", "/library/gc", ROLE_ADMIN, library_gc_post, NULL},
    {"GET", "/library", ROLE_VIEWER, library_get, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

/*
 * The machine inventory (docs/api.md, "Machines"): list with filters, create,
 * read, change, delete, and import from CSV, dhcpd.conf or dnsmasq files.
 * Values are validated with the same match.h setters the importers use, so
 * a machine typed in and a machine imported obey the same rules; machines.h
 * does the reading and writing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "audit.h"
#include "import_csv.h"
#include "import_hosts.h"
#include "jv.h"
#include "log.h"
#include "machines.h"
#include "match.h"
#include "parse.h"
#include "req.h"
#include "server.h"
#include "store.h"

/* Import: errors listed in the answer (the rest are only counted). */
#define IMPORT_ERRORS_MAX 1000

/* ---- validation of a machine body ---- */

/*
 * The string value of a body field: 1 set (s, len), 0 absent, 2 null, -1
 * not a string (400 set).
 */
static int machine_str(struct req *r, const char *key, const char **s, size_t *len)
{
	json_t *v = json_object_get(r->body, key);
	if (!v)
		return 0;
	if (json_is_null(v))
		return 2;
	if (!json_is_string(v))
		return req_bad(r, key, "%s must be a string", key);
	*s = json_string_value(v);
	*len = json_string_length(v);
	return 1;
}

typedef int (*machine_setter)(struct match_machine *, const char *, size_t, char *, size_t);

/* Applies one optional text field: absent stays, null clears, a string is set. */
static int machine_field(struct req *r, struct match_machine *m, const char *key,
                         machine_setter set)
{
	const char *s = NULL;
	size_t len = 0;
	char err[MATCH_ERR_SIZE];
	int rc = machine_str(r, key, &s, &len);
	if (rc <= 0)
		return rc;
	if (rc == 2) {
		s = "";
		len = 0;
	}
	if (set(m, s, len, err, sizeof(err)) < 0)
		return req_bad(r, key, "%s: %s", key, err);
	return 0;
}

/* Replaces the MACs (macs) or the tags (!macs) from an array field; null clears. */
static int machine_list(struct req *r, struct match_machine *m, const char *key, bool macs,
                        bool *given)
{
	json_t *v = json_object_get(r->body, key), *e;
	size_t i, max = macs ? MATCH_MAX_MACS : MATCH_MAX_TAGS;
	char err[MATCH_ERR_SIZE];
	if (!v)
		return 0;
	*given = true;
	if (macs)
		m->nmacs = 0;
	else
		m->ntags = 0;
	if (json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return req_bad(r, key, "%s must be an array of strings", key);
	if (json_array_size(v) > max)
		return req_bad(r, key, "%s has more than %zu items", key, max);
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e))
			return req_bad(r, key, "%s[%zu] must be a string", key, i);
		const char *s = json_string_value(e);
		size_t len = json_string_length(e);
		int rc;
		if (macs) {
			rc = match_machine_add_mac(m, s, len, err, sizeof(err));
		} else {
			/* One tag per item: a separator inside is an error, not two tags. */
			rc = match_tag_check(s, len, err, sizeof(err));
			if (rc == 0)
				rc = match_machine_add_tags(m, s, len, err, sizeof(err));
		}
		if (rc < 0)
			return req_bad(r, key, "%s[%zu]: %s", key, i, err);
	}
	return 0;
}

/*
 * Applies the body to m (a new, cleared record, or the stored one for
 * PATCH). Returns 0 or -1 with a 400 set; *macs / *tags say whether those
 * lists were given.
 */
static int machine_from_body(struct req *r, struct match_machine *m, bool create, bool *macs,
                             bool *tags)
{
	static const char *const keys[] = {"name", "macs", "ip",    "subnet",
	                                   "room", "tags", "notes", NULL};
	const char *s;
	size_t len;
	char err[MATCH_ERR_SIZE];
	*macs = *tags = false;
	if (jv_object(r, keys) < 0)
		return -1;
	int rc = machine_str(r, "name", &s, &len);
	if (rc < 0)
		return -1;
	if ((rc == 0 && create) || rc == 2)
		return req_bad(r, "name", "name is required");
	if (rc == 1 && match_machine_set_name(m, s, len, err, sizeof(err)) < 0)
		return req_bad(r, "name", "name: %s", err);
	if (machine_list(r, m, "macs", true, macs) < 0 ||
	    machine_field(r, m, "ip", match_machine_set_ip) < 0 ||
	    machine_field(r, m, "subnet", match_machine_set_subnet) < 0 ||
	    machine_field(r, m, "room", match_machine_set_room) < 0 ||
	    machine_list(r, m, "tags", false, tags) < 0 ||
	    machine_field(r, m, "notes", match_machine_set_notes) < 0)
		return -1;
	if (match_machine_check(m, err, sizeof(err)) < 0)
		return req_bad(r, m->name[0] ? "ip" : "name", "%s", err);
	return 0;
}

/*
 * The 409 checks of a machine about to be written as id (0: new): its name
 * and its MACs must not belong to another machine. Returns 0, or -1 with the
 * response set (the caller rolls back).
 */
static int machine_conflicts(struct req *r, const struct match_machine *m, int64_t id)
{
	struct store *s = r->srv->store;
	int64_t other = 0;
	char mac[MATCH_MAC_SIZE], name[MATCH_NAME_SIZE];
	int rc = machines_by_name(s, m->name, &other);
	if (rc == 0 && other != id)
		return req_conflict(r, "name",
		                    "a machine named '%s' already exists (id %" PRId64 ")", m->name,
		                    other);
	if (rc < 0 && rc != -ENOENT)
		return req_store_error(r, rc, "machine");
	rc = machines_mac_owner(s, m, id, mac, &other, name);
	if (rc == 1)
		return req_conflict(r, "macs",
		                    "MAC address %s belongs to machine '%s' (id %" PRId64 ")", mac,
		                    name, other);
	if (rc < 0)
		return req_store_error(r, rc, "machine");
	return 0;
}

/* ---- list ---- */

/* "%q%" for LIKE, with '\' escaping LIKE's own wildcards, lower case. */
static void machine_like(const char *q, char *out, size_t outsz)
{
	size_t o = 0;
	out[o++] = '%';
	for (const char *p = q; *p && o + 4 < outsz; p++) {
		char c = *p;
		if (c == '%' || c == '_' || c == '\\')
			out[o++] = '\\';
		out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[o++] = '%';
	out[o] = '\0';
}

#define MACHINE_FILTER                                                                             \
	" FROM machines m WHERE (? = 0 OR m.room = ?)"                                             \
	" AND (? = 0 OR EXISTS (SELECT 1 FROM machine_tags t"                                      \
	"  WHERE t.machine_id = m.id AND t.tag = ?))"                                              \
	" AND (? = 0 OR EXISTS (SELECT 1 FROM group_members g"                                     \
	"  WHERE g.machine_id = m.id AND g.group_id = ?))"                                         \
	" AND (? = 0 OR m.name LIKE ? ESCAPE '\\' OR m.ip LIKE ? ESCAPE '\\'"                      \
	"  OR EXISTS (SELECT 1 FROM machine_macs mm WHERE mm.machine_id = m.id"                    \
	"  AND mm.mac LIKE ? ESCAPE '\\'))"

static int machines_list(struct req *r)
{
	struct store *s = r->srv->store;
	const char *room = req_query(r, "room"), *tag = req_query(r, "tag");
	const char *group = req_query(r, "group"), *q = req_query(r, "q"), *why = NULL;
	char err[MATCH_ERR_SIZE], like[3 * MATCH_NAME_SIZE];
	int64_t limit, offset, total = 0, gid = 0;
	uint64_t v;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	if (room && match_room_check(room, strlen(room), err, sizeof(err)) < 0)
		return req_bad(r, "room", "room: %s", err);
	if (tag && match_tag_check(tag, strlen(tag), err, sizeof(err)) < 0)
		return req_bad(r, "tag", "tag: %s", err);
	if (group) {
		if (parse_uint(group, 1, INT64_MAX, &v, &why) < 0)
			return req_bad(r, "group", "group: %s (a group id)", why);
		gid = (int64_t)v;
	}
	if (q) {
		size_t qlen = strlen(q);
		if (qlen == 0 || qlen > MATCH_NAME_MAX)
			return req_bad(r, "q", "q must be 1 to %d bytes", MATCH_NAME_MAX);
		for (const char *p = q; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return req_bad(r, "q", "q contains control characters");
		machine_like(q, like, sizeof(like));
	}
	store_lock(s);
	int64_t gfound = 1;
	int rc = 0;
	if (gid)
		rc = store_int(s, &gfound, "SELECT COUNT(*) FROM mgroups WHERE id = ?", "i", gid);
	if (rc == 0 && gfound == 0) {
		store_unlock(s);
		return req_bad(r, "group", "group: no group with id %" PRId64, gid);
	}
#define FILTER_ARGS                                                                                \
	(int)(room != NULL), room, (int)(tag != NULL), tag, (int)(gid != 0), gid,                  \
	    (int)(q != NULL), q ? like : NULL, q ? like : NULL, q ? like : NULL
	if (rc == 0)
		rc = store_int(s, &total, "SELECT COUNT(*)" MACHINE_FILTER, "dtdtdidttt",
		               FILTER_ARGS);
	int64_t *ids = calloc((size_t)limit, sizeof(*ids));
	size_t n = 0;
	struct store_q *sq = NULL;
	if (rc == 0 && ids)
		sq =
		    store_query(s, "SELECT m.id" MACHINE_FILTER " ORDER BY m.name LIMIT ? OFFSET ?",
		                "dtdtdidtttii", FILTER_ARGS, limit, offset);
#undef FILTER_ARGS
	while (sq && (rc = store_next(sq)) == 1 && n < (size_t)limit)
		ids[n++] = store_col_int(sq, 0);
	store_done(sq);
	json_t *items = rc >= 0 && ids && sq ? machines_page_json(s, ids, n) : NULL;
	store_unlock(s);
	free(ids);
	return req_reply_page(r, items, total, limit, offset);
}

/* ---- one machine ---- */

static int machines_get(struct req *r)
{
	bool found;
	json_t *m = machines_json(r->srv->store, r->id[0], &found);
	if (!found)
		return m ? req_internal(r) : req_not_found(r, "machine", r->id[0]);
	return req_reply(r, 200, m);
}

/* Replies with the machine just written (status 200 or 201). */
static int machine_reply(struct req *r, int status, int64_t id)
{
	bool found;
	json_t *m = machines_json(r->srv->store, id, &found);
	if (!m)
		return req_internal(r);
	return req_reply(r, status, m);
}

static int machines_create(struct req *r)
{
	struct store *s = r->srv->store;
	struct match_machine m;
	bool macs, tags;
	int64_t id = 0;
	match_machine_clear(&m);
	if (machine_from_body(r, &m, true, &macs, &tags) < 0)
		return -1;
	if (store_begin(s) < 0)
		return req_internal(r);
	if (machine_conflicts(r, &m, 0) < 0) {
		store_rollback(s);
		return -1;
	}
	int rc = machines_insert(s, &m, "manual", &id);
	if (rc == 0)
		rc = audit_add(r, "create", "machine", id, "machine '%s'", m.name);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "machine");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return machine_reply(r, 201, id);
}

static int machines_update_h(struct req *r)
{
	struct store *s = r->srv->store;
	struct match_machine m;
	bool macs, tags;
	int64_t id = r->id[0];
	if (!r->body)
		return req_bad(r, NULL, "a JSON object body is required");
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = machines_load(s, id, &m);
	if (rc < 0) {
		store_rollback(s);
		return rc == -ENOENT ? req_not_found(r, "machine", id) : req_internal(r);
	}
	if (machine_from_body(r, &m, false, &macs, &tags) < 0 || machine_conflicts(r, &m, id) < 0) {
		store_rollback(s);
		return -1;
	}
	rc = machines_update(s, id, &m, macs, tags);
	if (rc == 0) {
		/* The audit line names the fields changed, not their (maybe long) values. */
		char fields[128] = "";
		const char *k;
		json_t *val;
		size_t used = 0;
		json_object_foreach(r->body, k, val)
		{
			if (used < sizeof(fields))
				used += (size_t)snprintf(fields + used, sizeof(fields) - used,
				                         "%s%s", used ? " " : "", k);
		}
		rc = audit_add(r, "update", "machine", id, "machine '%s': %s", m.name, fields);
	}
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "machine");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return machine_reply(r, 200, id);
}

static int machines_delete(struct req *r)
{
	struct store *s = r->srv->store;
	int64_t id = r->id[0];
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_exec(s, "DELETE FROM machines WHERE id = ?", "i", id);
	if (rc == 0) {
		store_rollback(s);
		return req_not_found(r, "machine", id);
	}
	if (rc > 0)
		rc = audit_add(r, "delete", "machine", id, "machine %" PRId64, id);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "machine");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

/* ---- import ---- */

struct imp {
	struct req *r;
	struct store *s;
	bool update;
	int64_t created, updated, unchanged, skipped, nerrors;
	json_t *errors;
	json_t *made; /* ids created by this import, as keys: later records merge into them */
	char last[MATCH_ERR_SIZE + 32]; /* the last error, for a fatal stop */
};

static int imp_error(void *user, unsigned long line, const char *msg)
{
	struct imp *im = user;
	im->nerrors++;
	snprintf(im->last, sizeof(im->last), "line %lu: %s", line, msg);
	if (json_array_size(im->errors) >= IMPORT_ERRORS_MAX)
		return 0;
	/* A message cut inside a UTF-8 character is not a JSON string: show its ASCII. */
	json_t *m = json_string(msg);
	if (!m) {
		char buf[sizeof(im->last)];
		snprintf(buf, sizeof(buf), "%s", msg);
		for (char *p = buf; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		m = json_string(buf);
	}
	if (json_array_append_new(
	        im->errors, json_pack("{s:I, s:o}", "line", (json_int_t)line, "message", m)) < 0)
		return -ENOMEM;
	return 0;
}

/* Error of one record: counted as an error, the import goes on. */
static int imp_bad(struct imp *im, const struct match_machine *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int imp_bad(struct imp *im, const struct match_machine *m, const char *fmt, ...)
{
	char msg[MATCH_ERR_SIZE + 128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return imp_error(im, m->line, msg);
}

/*
 * Merges an imported record into the stored machine: the name, and every
 * value the record has, replace the stored ones; MACs and tags are added
 * (a file that does not carry a value never clears it). 0, or -1 with the
 * reason in err.
 */
static int imp_merge(struct match_machine *to, const struct match_machine *m, char *err,
                     size_t errsz)
{
	memcpy(to->name, m->name, sizeof(to->name));
	if (m->ip[0] && match_machine_set_ip(to, m->ip, strlen(m->ip), err, errsz) < 0)
		return -1;
	if (m->subnet[0] &&
	    match_machine_set_subnet(to, m->subnet, strlen(m->subnet), err, errsz) < 0)
		return -1;
	if (m->room[0] && match_machine_set_room(to, m->room, strlen(m->room), err, errsz) < 0)
		return -1;
	if (m->notes[0] && match_machine_set_notes(to, m->notes, strlen(m->notes), err, errsz) < 0)
		return -1;
	for (unsigned i = 0; i < m->nmacs; i++) {
		bool have = false;
		for (unsigned j = 0; j < to->nmacs && !have; j++)
			have = memcmp(to->mac[j], m->mac[i], MATCH_MAC_BYTES) == 0;
		if (!have &&
		    match_machine_add_mac(to, m->macs[i], strlen(m->macs[i]), err, errsz) < 0)
			return -1;
	}
	for (unsigned i = 0; i < m->ntags; i++)
		if (match_machine_add_tags(to, m->tags[i], strlen(m->tags[i]), err, errsz) < 0)
			return -1;
	return match_machine_check(to, err, errsz) < 0 ? -1 : 0;
}

static int imp_record(void *user, const struct match_machine *m)
{
	struct imp *im = user;
	struct store *s = im->s;
	int64_t by_name = 0, by_mac = 0;
	char err[MATCH_ERR_SIZE], idk[32];
	int rc = machines_by_name(s, m->name, &by_name);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	/* Every MAC must belong to no machine or to the same one. */
	for (unsigned i = 0; i < m->nmacs; i++) {
		int64_t owner = 0;
		rc = store_int(s, &owner, "SELECT machine_id FROM machine_macs WHERE mac = ?", "t",
		               m->macs[i]);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		if (rc == -ENOENT)
			continue;
		if (by_name && owner != by_name) {
			struct match_machine o;
			machines_load(s, owner, &o);
			return imp_bad(im, m,
			               "MAC address %s belongs to machine '%s' (id %" PRId64
			               "), not to '%s'",
			               m->macs[i], o.name, owner, m->name);
		}
		if (by_mac && owner != by_mac)
			return imp_bad(im, m,
			               "the MAC addresses of '%s' belong to different machines",
			               m->name);
		by_mac = owner;
	}
	int64_t id = by_name ? by_name : by_mac;
	if (!id) {
		rc = machines_insert(s, m, "import", &id);
		if (rc == -EEXIST)
			return imp_bad(im, m, "'%s' clashes with a machine of the store", m->name);
		if (rc < 0)
			return rc;
		snprintf(idk, sizeof(idk), "%" PRId64, id);
		json_object_set_new(im->made, idk, json_true());
		im->created++;
		return 0;
	}
	/* A machine that this import created is completed by later records. */
	snprintf(idk, sizeof(idk), "%" PRId64, id);
	bool mine = json_object_get(im->made, idk) != NULL;
	if (!im->update && !mine) {
		im->skipped++;
		return 0;
	}
	struct match_machine cur, merged;
	if ((rc = machines_load(s, id, &cur)) < 0)
		return rc;
	merged = cur;
	if (imp_merge(&merged, m, err, sizeof(err)) < 0)
		return imp_bad(im, m, "cannot update '%s': %s", cur.name, err);
	if (machines_same(&cur, &merged)) {
		if (!mine)
			im->unchanged++;
		return 0;
	}
	rc = machines_update(s, id, &merged, true, true);
	if (rc == -EEXIST)
		return imp_bad(im, m, "'%s' clashes with a machine of the store", m->name);
	if (rc < 0)
		return rc;
	if (!mine)
		im->updated++;
	return 0;
}

/* Is the first non-blank line a CSV header (known column names, name among them)? */
static bool imp_is_csv(const char *s, size_t len)
{
	static const char *const cols[] = {"name", "mac", "ip", "subnet", "room", "tags", "notes"};
	size_t i = 0;
	bool has_name = false;
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len && (s[i] == '\n' || s[i] == '\r' || s[i] == ' ' || s[i] == '\t'))
		i++;
	size_t end = i;
	while (end < len && s[end] != '\n' && s[end] != '\r')
		end++;
	if (end == i)
		return false;
	while (i <= end) {
		size_t f = i;
		while (i < end && s[i] != ',')
			i++;
		size_t a = f, b = i;
		while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '"'))
			a++;
		while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '"'))
			b--;
		bool known = false;
		for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]) && !known; k++)
			known = strlen(cols[k]) == b - a && strncasecmp(cols[k], s + a, b - a) == 0;
		if (!known)
			return false;
		has_name = has_name || (b - a == 4 && strncasecmp(s + a, "name", 4) == 0);
		i++;
	}
	return has_name;
}

static int machines_import(struct req *r)
{
	static const char *const keys[] = {"format", "data", "update", "dry_run", NULL};
	static const char *const formats[] = {"auto", "csv", "dhcpd", "dnsmasq", NULL};
	struct store *s = r->srv->store;
	const char *format = "auto";
	bool update = false, dry_run = false;
	if (jv_object(r, keys) < 0 || jv_enum(r, "format", 0, formats, &format) < 0 ||
	    jv_bool(r, "update", 0, &update) < 0 || jv_bool(r, "dry_run", 0, &dry_run) < 0)
		return -1;
	/* The data is a whole file: line breaks and tabs are its own, so no jv_str(). */
	json_t *dv = json_object_get(r->body, "data");
	if (!dv || json_is_null(dv))
		return req_bad(r, "data", "data is required (the file's text)");
	if (!json_is_string(dv))
		return req_bad(r, "data", "data must be a string (the file's text)");
	const char *data = json_string_value(dv);
	size_t len = json_string_length(dv);
	if (len == 0)
		return req_bad(r, "data", "data must not be empty");
	if (strcmp(format, "auto") == 0) {
		if (imp_is_csv(data, len)) {
			format = "csv";
		} else {
			enum hostsimp_format f = hostsimp_detect(data, len);
			if (f == HOSTSIMP_AUTO)
				return req_bad(r, "format",
				               "cannot tell the format of data (not a CSV header, "
				               "dhcpd.conf or dnsmasq line); give format");
			format = f == HOSTSIMP_DHCPD ? "dhcpd" : "dnsmasq";
		}
	}
	struct imp im = {.r = r, .s = s, .update = update};
	im.errors = json_array();
	im.made = json_object();
	if (!im.errors || !im.made) {
		json_decref(im.errors);
		json_decref(im.made);
		return req_error(r, 503, "unavailable", NULL, "out of memory");
	}
	struct match_sink sink = {imp_record, imp_error, &im};
	int ret = -1;
	if (store_begin(s) < 0) {
		req_internal(r);
		goto out;
	}
	/*
	 * One transaction for the whole file: nobody sees half an import, and a
	 * dry run is the same work rolled back, so its counts are exact.
	 */
	int rc;
	if (strcmp(format, "csv") == 0)
		rc = csvimp_parse(data, len, &sink);
	else
		rc =
		    hostsimp_parse(strcmp(format, "dhcpd") == 0 ? HOSTSIMP_DHCPD : HOSTSIMP_DNSMASQ,
		                   data, len, &sink);
	if (rc == -EINVAL || rc == -E2BIG) {
		store_rollback(s);
		req_bad(r, "data", "%s: %s", format, im.last);
		goto out;
	}
	if (rc < 0) {
		store_rollback(s);
		if (rc == -ENOMEM)
			req_error(r, 503, "unavailable", NULL, "out of memory");
		else
			req_store_error(r, rc, "machine");
		goto out;
	}
	if (dry_run) {
		store_rollback(s);
	} else {
		rc = audit_add(r, "import", "machine", 0,
		               "%s%s: %" PRId64 " created, %" PRId64 " updated, %" PRId64
		               " unchanged, %" PRId64 " skipped, %" PRId64 " errors",
		               format, update ? " (update)" : "", im.created, im.updated,
		               im.unchanged, im.skipped, im.nerrors);
		if (rc < 0) {
			store_rollback(s);
			req_store_error(r, rc, "machine");
			goto out;
		}
		if (store_commit(s) < 0) {
			req_internal(r);
			goto out;
		}
	}
	ret = req_reply(r, 200,
	                json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:O}", "format", format,
	                          "dry_run", dry_run, "created", (json_int_t)im.created, "updated",
	                          (json_int_t)im.updated, "unchanged", (json_int_t)im.unchanged,
	                          "skipped", (json_int_t)im.skipped, "error_count",
	                          (json_int_t)im.nerrors, "errors", im.errors));
out:
	json_decref(im.errors);
	json_decref(im.made);
	return ret;
}

const struct api_route api_machines_routes[] = {
    {"GET", "/machines", ROLE_VIEWER, machines_list, NULL},
    {"POST", "/machines", ROLE_OPERATOR, machines_create, NULL},
    {"POST", "/machines/import", ROLE_OPERATOR, machines_import, NULL},
    {"GET", "/machines/:id", ROLE_VIEWER, machines_get, NULL},
    {"PATCH", "/machines/:id", ROLE_OPERATOR, machines_update_h, NULL},
    {"DELETE", "/machines/:id", ROLE_OPERATOR, machines_delete, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

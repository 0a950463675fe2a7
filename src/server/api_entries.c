/*
 * Entries (docs/api.md, "Entries"): the things a user can start from the
 * portal, a local VM of an image, an RDP or SPICE server, or a web page.
 * The kind is fixed at creation, because rights and portals that show the
 * entry are written for one kind; each kind has its own fields, and a field
 * of another kind is refused rather than silently kept.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "jv.h"
#include "match.h"
#include "parse.h"
#include "req.h"
#include "server.h"
#include "store.h"

#define ENTRY_NAME_MAX 100
#define ENTRY_DESC_MAX 1000
#define ENTRY_URL_MAX 2048

static const char *const kind_vals[] = {"vm", "rdp", "spice", "web", NULL};

#define ENTRY_COLS                                                                                 \
	"SELECT id, name, kind, description, image_id, host, port, url,"                           \
	" created_at AS \"created_at:t\", updated_at AS \"updated_at:t\" FROM entries"

/* The kind a kind-specific field belongs to; NULL for the common fields. */
static const char *entry_field_kind(const char *key)
{
	if (strcmp(key, "image_id") == 0)
		return "vm";
	if (strcmp(key, "url") == 0)
		return "web";
	if (strcmp(key, "host") == 0 || strcmp(key, "port") == 0)
		return "rdp and spice";
	return NULL;
}

static bool entry_field_fits(const char *key, const char *kind)
{
	const char *k = entry_field_kind(key);
	if (!k)
		return true;
	if (strcmp(k, "rdp and spice") == 0)
		return strcmp(kind, "rdp") == 0 || strcmp(kind, "spice") == 0;
	return strcmp(k, kind) == 0;
}

/* Refuses a body field that belongs to another kind of entry. */
static int entry_fields_fit(struct req *r, const char *kind)
{
	static const char *const specific[] = {"image_id", "host", "port", "url", NULL};
	for (size_t i = 0; specific[i]; i++)
		if (json_object_get(r->body, specific[i]) && !entry_field_fits(specific[i], kind))
			return req_bad(r, specific[i], "%s applies only to %s entries, not %s",
			               specific[i], entry_field_kind(specific[i]), kind);
	return 0;
}

/* True when s is only digits and dots: meant as an IPv4 address. */
static bool entry_looks_ip4(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
			return false;
	return len > 0;
}

/*
 * A host name or an IPv4 address; writes the canonical form (a lower-case
 * name, or the address as given, which the strict parser makes canonical)
 * to out. Returns 0 or -EINVAL with a reason.
 */
static int entry_host_check(const char *s, size_t len, char out[MATCH_NAME_SIZE], char *err,
                            size_t errsz)
{
	uint32_t ip;
	if (entry_looks_ip4(s, len)) {
		if (match_ip4_parse(s, len, &ip, err, errsz) < 0)
			return -EINVAL;
		match_ip4_format(ip, out);
		return 0;
	}
	return match_hostname_normalize(s, len, out, err, errsz);
}

/*
 * Checks a web entry's URL: http or https, a host name, IPv4 address or
 * bracketed IPv6 address, an optional port 1..65535, then any path, query
 * and fragment; printable ASCII without spaces (other characters must be
 * percent-encoded), no user name or password (every user who sees the
 * entry would see them). Pure, so the fuzz harness reaches it through the
 * API. Returns 0 or -EINVAL with a one-line reason.
 */
static int entry_url_check(const char *u, size_t len, char *err, size_t errsz)
{
	size_t p;
	if (len > ENTRY_URL_MAX) {
		snprintf(err, errsz, "url is longer than %d bytes", ENTRY_URL_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f) {
			snprintf(err, errsz,
			         "url must be printable ASCII without spaces (byte %zu); "
			         "percent-encode other characters",
			         i + 1);
			return -EINVAL;
		}
	if (len >= 7 && strncasecmp(u, "http://", 7) == 0) {
		p = 7;
	} else if (len >= 8 && strncasecmp(u, "https://", 8) == 0) {
		p = 8;
	} else {
		snprintf(err, errsz, "url must start with http:// or https://");
		return -EINVAL;
	}
	size_t a = p;
	while (p < len && u[p] != '/' && u[p] != '?' && u[p] != '#')
		p++;
	const char *auth = u + a;
	size_t alen = p - a, hlen = alen;
	if (alen == 0) {
		snprintf(err, errsz, "url has no host");
		return -EINVAL;
	}
	if (memchr(auth, '@', alen)) {
		snprintf(err, errsz,
		         "url must not hold a user name or password: every user who sees the "
		         "entry would see them");
		return -EINVAL;
	}
	const char *port = NULL;
	size_t plen = 0;
	if (auth[0] == '[') {
		const char *close = memchr(auth, ']', alen);
		size_t i;
		if (!close || close - auth < 3) {
			snprintf(err, errsz,
			         "url has a bad IPv6 address (write it as [2001:db8::1])");
			return -EINVAL;
		}
		for (i = 1; auth + i < close; i++) {
			char c = auth[i];
			bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			          (c >= 'A' && c <= 'F') || c == ':' || c == '.';
			if (!ok || i > 45) {
				snprintf(err, errsz,
				         "url has a bad IPv6 address (write it as [2001:db8::1])");
				return -EINVAL;
			}
		}
		hlen = (size_t)(close - auth) + 1;
		if (hlen < alen && auth[hlen] != ':') {
			snprintf(err, errsz, "url: unexpected text after the IPv6 address");
			return -EINVAL;
		}
	} else {
		const char *colon = memchr(auth, ':', alen);
		if (colon)
			hlen = (size_t)(colon - auth);
		char host[MATCH_NAME_SIZE], why[MATCH_ERR_SIZE];
		if (hlen == 0 || entry_host_check(auth, hlen, host, why, sizeof(why)) < 0) {
			snprintf(err, errsz, "url has a bad host: %s",
			         hlen ? why : "the host is empty");
			return -EINVAL;
		}
	}
	if (hlen < alen) {
		port = auth + hlen + 1;
		plen = alen - hlen - 1;
		char buf[8];
		uint64_t v;
		if (plen == 0 || plen >= sizeof(buf)) {
			snprintf(err, errsz, "url has a bad port (1 to 65535)");
			return -EINVAL;
		}
		memcpy(buf, port, plen);
		buf[plen] = '\0';
		if (parse_uint(buf, 1, 65535, &v, NULL) < 0) {
			snprintf(err, errsz, "url has a bad port (1 to 65535)");
			return -EINVAL;
		}
	}
	return 0;
}

static int entry_name_check(struct req *r, const char *name)
{
	if (name[0] == ' ' || name[strlen(name) - 1] == ' ')
		return req_bad(r, "name", "name must not begin or end with a space");
	return 0;
}

/* image_id must name an existing image. */
static int entry_image_check(struct req *r, int64_t id)
{
	int64_t n = 0;
	if (store_int(r->srv->store, &n, "SELECT COUNT(*) FROM images WHERE id = ?", "i", id) < 0)
		return req_internal(r);
	if (n == 0)
		return req_bad(r, "image_id", "image_id: no image with id %lld", (long long)id);
	return 0;
}

/* Reads and checks "host" into out; same return values as the jv getters. */
static int entry_host_get(struct req *r, unsigned flags, char out[MATCH_NAME_SIZE])
{
	const char *host;
	char why[MATCH_ERR_SIZE];
	int rc = jv_str(r, "host", flags, 1, MATCH_NAME_MAX + 1, &host);
	if (rc <= 0)
		return rc;
	if (entry_host_check(host, strlen(host), out, why, sizeof(why)) < 0)
		return req_bad(r, "host", "host: %s", why);
	return 1;
}

static int entry_url_get(struct req *r, unsigned flags, const char **out)
{
	char why[MATCH_ERR_SIZE + 64];
	int rc = jv_str(r, "url", flags, 1, ENTRY_URL_MAX, out);
	if (rc <= 0)
		return rc;
	if (entry_url_check(*out, strlen(*out), why, sizeof(why)) < 0)
		return req_bad(r, "url", "%s", why);
	return 1;
}

static json_t *entry_get(struct req *r, int64_t id, bool *found)
{
	return store_row1_json(r->srv->store, found, ENTRY_COLS " WHERE id = ?", "i", id);
}

static int entries_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	const char *kind = req_query(r, "kind");
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	if (kind) {
		bool ok = false;
		for (size_t i = 0; kind_vals[i]; i++)
			ok = ok || strcmp(kind, kind_vals[i]) == 0;
		if (!ok)
			return req_bad(r, "kind", "kind must be one of: vm, rdp, spice, web");
	}
	struct store *s = r->srv->store;
	store_int(s, &total, "SELECT COUNT(*) FROM entries WHERE (? IS NULL OR kind = ?)", "tt",
	          kind, kind);
	json_t *items = store_rows_json(s,
	                                ENTRY_COLS " WHERE (? IS NULL OR kind = ?)"
	                                           " ORDER BY id LIMIT ? OFFSET ?",
	                                "ttii", kind, kind, limit, offset);
	return req_reply_page(r, items, total, limit, offset);
}

static int entries_show(struct req *r)
{
	bool found;
	json_t *e = entry_get(r, r->id[0], &found);
	if (!found)
		return e ? req_internal(r) : req_not_found(r, "entry", r->id[0]);
	return req_reply(r, 200, e);
}

static int entries_create(struct req *r)
{
	static const char *const keys[] = {"name", "kind", "description", "image_id",
	                                   "host", "port", "url",         NULL};
	const char *name, *kind, *desc = "", *url = NULL;
	int64_t image_id = 0, port = 0, id;
	char host[MATCH_NAME_SIZE] = "";
	bool vm, web;
	if (jv_object(r, keys) < 0 || jv_str(r, "name", JV_REQ, 1, ENTRY_NAME_MAX, &name) < 0 ||
	    entry_name_check(r, name) < 0 || jv_enum(r, "kind", JV_REQ, kind_vals, &kind) < 0 ||
	    jv_str(r, "description", 0, 0, ENTRY_DESC_MAX, &desc) < 0 ||
	    entry_fields_fit(r, kind) < 0)
		return -1;
	vm = strcmp(kind, "vm") == 0;
	web = strcmp(kind, "web") == 0;
	if (vm) {
		if (jv_int(r, "image_id", JV_REQ, 1, INT64_MAX, &image_id) < 0 ||
		    entry_image_check(r, image_id) < 0)
			return -1;
	} else if (web) {
		if (entry_url_get(r, JV_REQ, &url) < 0)
			return -1;
	} else {
		port = strcmp(kind, "rdp") == 0 ? 3389 : 5900;
		if (entry_host_get(r, JV_REQ, host) < 0 ||
		    jv_int(r, "port", 0, 1, 65535, &port) < 0)
			return -1;
	}
	struct store *s = r->srv->store;
	if (store_begin(s) < 0)
		return req_internal(r);
	int64_t now = store_now();
	/* Fields of other kinds are NULL: an id or port of 0 and a NULL host bind as NULL. */
	int rc = store_insert(s, &id,
	                      "INSERT INTO entries (name, kind, description, image_id, host, port,"
	                      " url, created_at, updated_at) VALUES (?, ?, ?, NULLIF(?, 0), ?,"
	                      " NULLIF(?, 0), ?, ?, ?) RETURNING id",
	                      "tttititii", name, kind, desc, image_id, host[0] ? host : NULL, port,
	                      url, now, now);
	if (rc >= 0)
		rc = audit_add(r, "create", "entry", id, "entry '%s' kind %s", name, kind);
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			return req_conflict(r, "name", "an entry named '%s' already exists", name);
		return req_store_error(r, rc, "entry");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	bool found;
	return req_reply(r, 201, entry_get(r, id, &found));
}

static int entries_update(struct req *r)
{
	static const char *const keys[] = {"name", "kind", "description", "image_id",
	                                   "host", "port", "url",         NULL};
	const char *name = NULL, *desc = NULL, *url = NULL;
	int64_t image_id = 0, port = 0, id = r->id[0];
	char host[MATCH_NAME_SIZE] = "", kind[16] = "";
	int has_image = 0, has_host = 0, has_port = 0, has_url = 0;
	struct store *s = r->srv->store;
	if (jv_object(r, keys) < 0)
		return -1;
	if (json_object_get(r->body, "kind"))
		return req_bad(r, "kind",
		               "kind cannot change after creation; create a new entry instead");
	struct store_q *q = store_query(s, "SELECT kind FROM entries WHERE id = ?", "i", id);
	int found = q ? store_next(q) : -EIO;
	if (found == 1)
		snprintf(kind, sizeof(kind), "%s", store_col_text(q, 0));
	store_done(q);
	if (found < 0)
		return req_internal(r);
	if (found == 0)
		return req_not_found(r, "entry", id);
	if (jv_str(r, "name", 0, 1, ENTRY_NAME_MAX, &name) < 0 ||
	    (name && entry_name_check(r, name) < 0) ||
	    jv_str(r, "description", 0, 0, ENTRY_DESC_MAX, &desc) < 0 ||
	    entry_fields_fit(r, kind) < 0)
		return -1;
	/*
	 * A field that the kind needs may change but not become null; "port":
	 * null goes back to the kind's default.
	 */
	bool port_null = json_is_null(json_object_get(r->body, "port"));
	unsigned need_image = json_object_get(r->body, "image_id") ? JV_REQ : 0;
	unsigned need_host = json_object_get(r->body, "host") ? JV_REQ : 0;
	unsigned need_url = json_object_get(r->body, "url") ? JV_REQ : 0;
	if ((has_image = jv_int(r, "image_id", need_image, 1, INT64_MAX, &image_id)) < 0 ||
	    (has_image && entry_image_check(r, image_id) < 0) ||
	    (has_host = entry_host_get(r, need_host, host)) < 0 ||
	    (has_port = jv_int(r, "port", 0, 1, 65535, &port)) < 0 ||
	    (has_url = entry_url_get(r, need_url, &url)) < 0)
		return -1;
	if (port_null) {
		has_port = 1;
		port = strcmp(kind, "rdp") == 0 ? 3389 : 5900;
	}
	if (store_begin(s) < 0)
		return req_internal(r);
	int64_t now = store_now();
	int rc = store_exec(s, "UPDATE entries SET updated_at = ? WHERE id = ?", "ii", now, id);
	if (rc == 0) {
		/* Deleted since the kind was read. */
		store_rollback(s);
		return req_not_found(r, "entry", id);
	}
	if (rc >= 0 && name)
		rc = store_exec(s, "UPDATE entries SET name = ? WHERE id = ?", "ti", name, id);
	if (rc >= 0 && desc)
		rc = store_exec(s, "UPDATE entries SET description = ? WHERE id = ?", "ti", desc,
		                id);
	if (rc >= 0 && has_image)
		rc = store_exec(s, "UPDATE entries SET image_id = ? WHERE id = ?", "ii", image_id,
		                id);
	if (rc >= 0 && has_host)
		rc = store_exec(s, "UPDATE entries SET host = ? WHERE id = ?", "ti", host, id);
	if (rc >= 0 && has_port)
		rc = store_exec(s, "UPDATE entries SET port = ? WHERE id = ?", "ii", port, id);
	if (rc >= 0 && has_url)
		rc = store_exec(s, "UPDATE entries SET url = ? WHERE id = ?", "ti", url, id);
	if (rc >= 0)
		rc = audit_add(r, "update", "entry", id, "%s%s%s%s%s%s", name ? "name " : "",
		               desc ? "description " : "", has_image ? "image_id " : "",
		               has_host ? "host " : "", has_port ? "port " : "",
		               has_url ? "url" : "");
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			return req_conflict(r, "name", "an entry named '%s' already exists", name);
		return req_store_error(r, rc, "entry");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	bool f;
	return req_reply(r, 200, entry_get(r, id, &f));
}

static int entries_delete(struct req *r)
{
	int64_t id = r->id[0];
	struct store *s = r->srv->store;
	if (store_begin(s) < 0)
		return req_internal(r);
	/* Its rights go with it (ON DELETE CASCADE). */
	int rc = store_exec(s, "DELETE FROM entries WHERE id = ?", "i", id);
	if (rc == 0) {
		store_rollback(s);
		return req_not_found(r, "entry", id);
	}
	if (rc > 0)
		rc =
		    audit_add(r, "delete", "entry", id, "entry %lld and its rights", (long long)id);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "entry");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

const struct api_route api_entries_routes[] = {
    {"GET", "/entries", ROLE_VIEWER, entries_list, NULL},
    {"POST", "/entries", ROLE_OPERATOR, entries_create, NULL},
    {"GET", "/entries/:id", ROLE_VIEWER, entries_show, NULL},
    {"PATCH", "/entries/:id", ROLE_OPERATOR, entries_update, NULL},
    {"DELETE", "/entries/:id", ROLE_OPERATOR, entries_delete, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

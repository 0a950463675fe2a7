/* Machines in the store: JSON and writes (machines.h). */
#include "machines.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define MACHINE_COLS                                                                               \
	"SELECT id, name, ip, subnet, room, notes, source, created_at AS \"created_at:t\","        \
	" updated_at AS \"updated_at:t\", last_seen_at AS \"last_seen_at:t\" FROM machines"

/*
 * A growable SQL text. The store binds a fixed number of arguments per
 * statement, so a list of ids goes into the SQL as integer literals: they
 * are int64 values printed by us, never text from a request, and both
 * engines accept `IN (1, 2, 3)`.
 */
struct sqlbuf {
	char *p;
	size_t len, cap;
	int bad;
};

static void sb_add(struct sqlbuf *b, const char *s)
{
	size_t n = strlen(s);
	if (b->bad)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->bad = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

/* Appends "prefix(id1, id2, ...)suffix"; returns the SQL or NULL when out of memory. */
static const char *sb_in(struct sqlbuf *b, const char *prefix, const int64_t *ids, size_t n,
                         const char *suffix)
{
	char num[32];
	b->len = 0;
	sb_add(b, prefix);
	sb_add(b, "(");
	for (size_t i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%s%" PRId64, i ? ", " : "", ids[i]);
		sb_add(b, num);
	}
	sb_add(b, ")");
	sb_add(b, suffix);
	return b->bad ? NULL : b->p;
}

/*
 * Adds the second column of each row of sql (machine_id, text) to the array
 * key of the object byid["machine_id"]. 0 or < 0.
 */
static int machines_add_lists(struct store *s, const char *sql, json_t *byid, const char *key)
{
	struct store_q *q = store_query(s, sql, NULL);
	char idk[32];
	int rc;
	if (!q)
		return -EIO;
	while ((rc = store_next(q)) == 1) {
		snprintf(idk, sizeof(idk), "%" PRId64, store_col_int(q, 0));
		json_t *arr = json_object_get(json_object_get(byid, idk), key);
		if (arr && json_array_append_new(arr, json_string(store_col_text(q, 1))) < 0) {
			rc = -ENOMEM;
			break;
		}
	}
	store_done(q);
	return rc;
}

/* Adds the machines of ids[0..n) (n <= MACHINES_BATCH) to byid. 0 or < 0. */
static int machines_batch(struct store *s, struct sqlbuf *b, const int64_t *ids, size_t n,
                          json_t *byid)
{
	const char *sql = sb_in(b, MACHINE_COLS " WHERE id IN ", ids, n, "");
	char idk[32];
	int rc;
	if (!sql)
		return -ENOMEM;
	struct store_q *q = store_query(s, sql, NULL);
	if (!q)
		return -EIO;
	while ((rc = store_next(q)) == 1) {
		json_t *o = store_row_json(q);
		snprintf(idk, sizeof(idk), "%" PRId64, store_col_int(q, 0));
		if (!o || json_object_set_new(o, "macs", json_array()) < 0 ||
		    json_object_set_new(o, "tags", json_array()) < 0 ||
		    json_object_set_new(byid, idk, o) < 0) {
			json_decref(o);
			rc = -ENOMEM;
			break;
		}
	}
	store_done(q);
	if (rc < 0)
		return rc;
	sql = sb_in(b, "SELECT machine_id, mac FROM machine_macs WHERE machine_id IN ", ids, n,
	            " ORDER BY machine_id, mac");
	if (!sql)
		return -ENOMEM;
	if ((rc = machines_add_lists(s, sql, byid, "macs")) < 0)
		return rc;
	sql = sb_in(b, "SELECT machine_id, tag FROM machine_tags WHERE machine_id IN ", ids, n,
	            " ORDER BY machine_id, tag");
	if (!sql)
		return -ENOMEM;
	return machines_add_lists(s, sql, byid, "tags");
}

json_t *machines_page_json(struct store *s, const int64_t *ids, size_t n)
{
	struct sqlbuf b = {0};
	json_t *byid = json_object(), *out = json_array();
	char idk[32];
	int rc = 0;
	if (!byid || !out)
		goto fail;
	/* One lock across the batches: the page shows one state of the store. */
	store_lock(s);
	for (size_t i = 0; rc == 0 && i < n; i += MACHINES_BATCH) {
		size_t k = n - i < MACHINES_BATCH ? n - i : MACHINES_BATCH;
		rc = machines_batch(s, &b, ids + i, k, byid);
	}
	store_unlock(s);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		snprintf(idk, sizeof(idk), "%" PRId64, ids[i]);
		json_t *o = json_object_get(byid, idk);
		if (o && json_array_append(out, o) < 0)
			goto fail;
	}
	free(b.p);
	json_decref(byid);
	return out;
fail:
	free(b.p);
	json_decref(byid);
	json_decref(out);
	return NULL;
}

json_t *machines_json(struct store *s, int64_t id, bool *found)
{
	*found = false;
	store_lock(s);
	json_t *page = machines_page_json(s, &id, 1);
	json_t *m = page ? json_incref(json_array_get(page, 0)) : NULL;
	json_decref(page);
	if (m) {
		*found = true;
		json_t *g = json_array();
		struct store_q *q = store_query(
		    s, "SELECT group_id FROM group_members WHERE machine_id = ? ORDER BY group_id",
		    "i", id);
		int rc = q ? 0 : -EIO;
		while (q && g && (rc = store_next(q)) == 1)
			json_array_append_new(g, json_integer(store_col_int(q, 0)));
		store_done(q);
		if (rc < 0 || !g || json_object_set_new(m, "groups", g) < 0) {
			json_decref(m);
			m = NULL;
		}
	}
	store_unlock(s);
	return m;
}

int machines_load(struct store *s, int64_t id, struct match_machine *m)
{
	char err[MATCH_ERR_SIZE];
	int rc;
	match_machine_clear(m);
	store_lock(s);
	struct store_q *q = store_query(
	    s, "SELECT name, ip, subnet, room, notes FROM machines WHERE id = ?", "i", id);
	if (!q) {
		rc = -EIO;
		goto out;
	}
	rc = store_next(q);
	if (rc == 1) {
		/*
		 * The store holds canonical values written through match.h, so
		 * the setters accept them; a value that somebody put there by
		 * hand and that does not parse is left out rather than kept.
		 */
		const char *v;
		v = store_col_text(q, 0);
		snprintf(m->name, sizeof(m->name), "%s", v);
		v = store_col_text(q, 1);
		match_machine_set_ip(m, v, strlen(v), err, sizeof(err));
		v = store_col_text(q, 2);
		match_machine_set_subnet(m, v, strlen(v), err, sizeof(err));
		v = store_col_text(q, 3);
		match_machine_set_room(m, v, strlen(v), err, sizeof(err));
		v = store_col_text(q, 4);
		match_machine_set_notes(m, v, strlen(v), err, sizeof(err));
	}
	store_done(q);
	if (rc <= 0) {
		rc = rc == 0 ? -ENOENT : rc;
		goto out;
	}
	q = store_query(s, "SELECT mac FROM machine_macs WHERE machine_id = ? ORDER BY mac", "i",
	                id);
	while (q && (rc = store_next(q)) == 1) {
		const char *v = store_col_text(q, 0);
		match_machine_add_mac(m, v, strlen(v), err, sizeof(err));
	}
	store_done(q);
	if (!q || rc < 0) {
		rc = rc < 0 ? rc : -EIO;
		goto out;
	}
	q = store_query(s, "SELECT tag FROM machine_tags WHERE machine_id = ? ORDER BY tag", "i",
	                id);
	while (q && (rc = store_next(q)) == 1) {
		const char *v = store_col_text(q, 0);
		match_machine_add_tags(m, v, strlen(v), err, sizeof(err));
	}
	store_done(q);
	if (!q)
		rc = -EIO;
out:
	store_unlock(s);
	return rc < 0 ? rc : 0;
}

int machines_by_name(struct store *s, const char *name, int64_t *id)
{
	return store_int(s, id, "SELECT id FROM machines WHERE name = ?", "t", name);
}

int machines_mac_owner(struct store *s, const struct match_machine *m, int64_t self,
                       char mac[MATCH_MAC_SIZE], int64_t *owner, char name[MATCH_NAME_SIZE])
{
	int ret = 0;
	store_lock(s);
	for (unsigned i = 0; ret == 0 && i < m->nmacs; i++) {
		struct store_q *q = store_query(s,
		                                "SELECT m.id, m.name FROM machine_macs mm"
		                                " JOIN machines m ON m.id = mm.machine_id"
		                                " WHERE mm.mac = ? AND mm.machine_id <> ?",
		                                "ti", m->macs[i], self);
		if (!q) {
			ret = -EIO;
			break;
		}
		int rc = store_next(q);
		if (rc == 1) {
			snprintf(mac, MATCH_MAC_SIZE, "%s", m->macs[i]);
			*owner = store_col_int(q, 0);
			snprintf(name, MATCH_NAME_SIZE, "%s", store_col_text(q, 1));
			ret = 1;
		} else if (rc < 0) {
			ret = rc;
		}
		store_done(q);
	}
	store_unlock(s);
	return ret;
}

/* NULL for "not given", so the column holds NULL rather than "". */
static const char *nz(const char *v)
{
	return v[0] ? v : NULL;
}

static int machines_write_macs(struct store *s, int64_t id, const struct match_machine *m)
{
	int rc = store_exec(s, "DELETE FROM machine_macs WHERE machine_id = ?", "i", id);
	for (unsigned i = 0; rc >= 0 && i < m->nmacs; i++)
		rc = store_exec(s, "INSERT INTO machine_macs (mac, machine_id) VALUES (?, ?)", "ti",
		                m->macs[i], id);
	return rc < 0 ? rc : 0;
}

static int machines_write_tags(struct store *s, int64_t id, const struct match_machine *m)
{
	int rc = store_exec(s, "DELETE FROM machine_tags WHERE machine_id = ?", "i", id);
	for (unsigned i = 0; rc >= 0 && i < m->ntags; i++)
		rc = store_exec(s, "INSERT INTO machine_tags (machine_id, tag) VALUES (?, ?)", "it",
		                id, m->tags[i]);
	return rc < 0 ? rc : 0;
}

int machines_insert(struct store *s, const struct match_machine *m, const char *source, int64_t *id)
{
	int64_t now = store_now();
	store_lock(s);
	int rc = store_insert(
	    s, id,
	    "INSERT INTO machines (name, ip, subnet, room, notes, source,"
	    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
	    "ttttttii", m->name, nz(m->ip), nz(m->subnet), nz(m->room), m->notes, source, now, now);
	if (rc == 0)
		rc = machines_write_macs(s, *id, m);
	if (rc == 0)
		rc = machines_write_tags(s, *id, m);
	store_unlock(s);
	return rc;
}

int machines_update(struct store *s, int64_t id, const struct match_machine *m, bool macs,
                    bool tags)
{
	store_lock(s);
	int rc = store_exec(s,
	                    "UPDATE machines SET name = ?, ip = ?, subnet = ?, room = ?, notes = ?,"
	                    " updated_at = ? WHERE id = ?",
	                    "tttttii", m->name, nz(m->ip), nz(m->subnet), nz(m->room), m->notes,
	                    store_now(), id);
	if (rc == 0)
		rc = -ENOENT;
	else if (rc > 0)
		rc = 0;
	if (rc == 0 && macs)
		rc = machines_write_macs(s, id, m);
	if (rc == 0 && tags)
		rc = machines_write_tags(s, id, m);
	store_unlock(s);
	return rc;
}

int machines_missing(struct store *s, const int64_t *ids, size_t n, int64_t *missing)
{
	struct sqlbuf b = {0};
	int ret = 0;
	store_lock(s);
	/*
	 * Counting the distinct ids of a batch that exist is one query; only
	 * when the count falls short is the batch searched one id at a time.
	 */
	for (size_t i = 0; ret == 0 && i < n; i += MACHINES_BATCH) {
		size_t k = n - i < MACHINES_BATCH ? n - i : MACHINES_BATCH;
		int64_t have = 0, want = 0;
		for (size_t j = 0; j < k; j++) {
			bool dup = false;
			for (size_t x = 0; x < j && !dup; x++)
				dup = ids[i + x] == ids[i + j];
			want += !dup;
		}
		const char *sql =
		    sb_in(&b, "SELECT COUNT(*) FROM machines WHERE id IN ", ids + i, k, "");
		if (!sql) {
			ret = -ENOMEM;
			break;
		}
		if ((ret = store_int(s, &have, sql, NULL)) < 0)
			break;
		if (have == want)
			continue;
		for (size_t j = 0; j < k; j++) {
			int64_t c = 0;
			if ((ret = store_int(s, &c, "SELECT COUNT(*) FROM machines WHERE id = ?",
			                     "i", ids[i + j])) < 0)
				break;
			if (c == 0) {
				*missing = ids[i + j];
				ret = 1;
				break;
			}
		}
	}
	store_unlock(s);
	free(b.p);
	return ret;
}

/* Is every string of a[0..na) in b[0..nb)? */
static bool machines_subset(const char (*a)[MATCH_TAG_SIZE], unsigned na,
                            const char (*b)[MATCH_TAG_SIZE], unsigned nb)
{
	for (unsigned i = 0; i < na; i++) {
		bool found = false;
		for (unsigned j = 0; j < nb && !found; j++)
			found = strcmp(a[i], b[j]) == 0;
		if (!found)
			return false;
	}
	return true;
}

bool machines_same(const struct match_machine *a, const struct match_machine *b)
{
	if (strcmp(a->name, b->name) != 0 || strcmp(a->ip, b->ip) != 0 ||
	    strcmp(a->subnet, b->subnet) != 0 || strcmp(a->room, b->room) != 0 ||
	    strcmp(a->notes, b->notes) != 0 || a->nmacs != b->nmacs || a->ntags != b->ntags)
		return false;
	for (unsigned i = 0; i < a->nmacs; i++) {
		bool found = false;
		for (unsigned j = 0; j < b->nmacs && !found; j++)
			found = memcmp(a->mac[i], b->mac[j], MATCH_MAC_BYTES) == 0;
		if (!found)
			return false;
	}
	/* No duplicates on either side, same count: one inclusion is equality. */
	return machines_subset(a->tags, a->ntags, b->tags, b->ntags);
}

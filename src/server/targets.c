/* Target sets and criteria resolution (targets.h). */
#include "targets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jv.h"
#include "machines.h"
#include "match.h"
#include "req.h"
#include "server.h"
#include "store.h"

static const char *const targets_tables[] = {"right_targets", "deployment_targets"};
static const char *const targets_owner[] = {"right_id", "deployment_id"};

void targets_free(struct targets *t)
{
	if (!t)
		return;
	free(t->machines);
	free(t->groups);
	free(t->criteria);
	memset(t, 0, sizeof(*t));
}

/* Checks that every id in ids exists in table; -1 with a 400 naming the first missing. */
static int targets_exist(struct req *r, const char *field, const char *table, const char *what,
                         const int64_t *ids, size_t n)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE id = ?", table);
	for (size_t i = 0; i < n; i++) {
		int64_t c = 0;
		if (store_int(r->srv->store, &c, sql, "i", ids[i]) < 0)
			return req_internal(r);
		if (c == 0)
			return req_bad(r, field, "%s: no %s with id %lld", field, what,
			               (long long)ids[i]);
	}
	return 0;
}

int targets_parse(struct req *r, const char *field, bool required, struct targets *t)
{
	static const char *const keys[] = {"machines", "groups", "criteria", NULL};
	json_t *o = NULL;
	char f[3][64];
	memset(t, 0, sizeof(*t));
	int rc = jv_obj(r, field, required ? JV_REQ : 0, &o);
	if (rc <= 0)
		return rc;
	if (jv_keys(r, o, field, keys) < 0)
		return -1;
	if (jv_ids_in(r, o, field, "machines", 0, TARGETS_MAX, &t->machines, &t->nm) < 0 ||
	    jv_ids_in(r, o, field, "groups", 0, TARGETS_MAX, &t->groups, &t->ng) < 0 ||
	    jv_ids_in(r, o, field, "criteria", 0, TARGETS_MAX, &t->criteria, &t->nc) < 0)
		goto bad;
	if (t->nm + t->ng + t->nc == 0) {
		req_bad(r, field, "%s names no machine, group or criterion", field);
		goto bad;
	}
	snprintf(f[0], sizeof(f[0]), "%s.machines", field);
	snprintf(f[1], sizeof(f[1]), "%s.groups", field);
	snprintf(f[2], sizeof(f[2]), "%s.criteria", field);
	if (targets_exist(r, f[0], "machines", "machine", t->machines, t->nm) < 0 ||
	    targets_exist(r, f[1], "mgroups", "group", t->groups, t->ng) < 0 ||
	    targets_exist(r, f[2], "criteria", "criterion", t->criteria, t->nc) < 0)
		goto bad;
	return 1;
bad:
	targets_free(t);
	return -1;
}

int targets_save(struct store *s, enum targets_table tab, int64_t owner, const struct targets *t)
{
	char sql[256];
	int rc;
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?", targets_tables[tab],
	         targets_owner[tab]);
	if ((rc = store_exec(s, sql, "i", owner)) < 0)
		return rc;
	static const char *const cols[] = {"machine_id", "group_id", "criterion_id"};
	const int64_t *lists[] = {t->machines, t->groups, t->criteria};
	size_t counts[] = {t->nm, t->ng, t->nc};
	for (int k = 0; k < 3; k++) {
		snprintf(sql, sizeof(sql), "INSERT INTO %s (%s, %s) VALUES (?, ?)",
		         targets_tables[tab], targets_owner[tab], cols[k]);
		for (size_t i = 0; i < counts[k]; i++) {
			/* The same id twice in one list is stored once. */
			bool dup = false;
			for (size_t j = 0; j < i; j++)
				dup = dup || lists[k][j] == lists[k][i];
			if (!dup && (rc = store_exec(s, sql, "ii", owner, lists[k][i])) < 0)
				return rc;
		}
	}
	return 0;
}

json_t *targets_json(struct store *s, enum targets_table tab, int64_t owner)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT machine_id, group_id, criterion_id FROM %s WHERE %s = ? ORDER BY id",
	         targets_tables[tab], targets_owner[tab]);
	struct store_q *q = store_query(s, sql, "i", owner);
	if (!q)
		return NULL;
	json_t *m = json_array(), *g = json_array(), *c = json_array();
	int rc;
	while ((rc = store_next(q)) == 1) {
		if (!store_col_null(q, 0))
			json_array_append_new(m, json_integer(store_col_int(q, 0)));
		else if (!store_col_null(q, 1))
			json_array_append_new(g, json_integer(store_col_int(q, 1)));
		else
			json_array_append_new(c, json_integer(store_col_int(q, 2)));
	}
	store_done(q);
	json_t *o = json_pack("{s:o, s:o, s:o}", "machines", m, "groups", g, "criteria", c);
	if (rc < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A growable id list. */
struct idv {
	int64_t *v;
	size_t n, cap;
};

static int idv_push(struct idv *a, int64_t id)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		int64_t *nv = realloc(a->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = cap;
	}
	a->v[a->n++] = id;
	return 0;
}

static int idv_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Sorts and removes duplicates. */
static void idv_unique(struct idv *a)
{
	if (a->n == 0)
		return;
	qsort(a->v, a->n, sizeof(*a->v), idv_cmp);
	size_t w = 1;
	for (size_t i = 1; i < a->n; i++)
		if (a->v[i] != a->v[w - 1])
			a->v[w++] = a->v[i];
	a->n = w;
}

/* Adds the machines of criterion id to a. */
static int targets_criterion_into(struct store *s, int64_t id, struct idv *a)
{
	char glob[MATCH_GLOB_MAX + 1] = "", domain[MATCH_NAME_SIZE] = "", subnet[64] = "";
	char room[MATCH_TAG_SIZE] = "", tag[MATCH_TAG_SIZE] = "";
	bool has_glob = false, has_domain = false, has_subnet = false, has_room = false;
	bool has_tag = false;
	struct store_q *q = store_query(
	    s, "SELECT name_glob, domain, subnet, room, tag FROM criteria WHERE id = ?", "i", id);
	if (!q)
		return -EIO;
	int rc = store_next(q);
	if (rc == 1) {
		has_glob = !store_col_null(q, 0);
		has_domain = !store_col_null(q, 1);
		has_subnet = !store_col_null(q, 2);
		has_room = !store_col_null(q, 3);
		has_tag = !store_col_null(q, 4);
		snprintf(glob, sizeof(glob), "%s", store_col_text(q, 0));
		snprintf(domain, sizeof(domain), "%s", store_col_text(q, 1));
		snprintf(subnet, sizeof(subnet), "%s", store_col_text(q, 2));
		snprintf(room, sizeof(room), "%s", store_col_text(q, 3));
		snprintf(tag, sizeof(tag), "%s", store_col_text(q, 4));
	}
	store_done(q);
	if (rc == 0)
		return -ENOENT;
	if (rc < 0)
		return rc;
	struct match_cidr net = {0, 0};
	char err[MATCH_ERR_SIZE];
	if (has_subnet && match_cidr_parse(subnet, strlen(subnet), &net, err, sizeof(err)) < 0)
		return -EINVAL; /* the API validated it; a bad row matches nothing */
	/*
	 * Room and tag narrow the rows in SQL; name, domain and subnet rules
	 * are checked here, with the same matchers the API validates with.
	 */
	q = store_query(s,
	                "SELECT m.id, m.name, m.ip FROM machines m"
	                " WHERE (? = 0 OR m.room = ?)"
	                " AND (? = 0 OR EXISTS (SELECT 1 FROM machine_tags t"
	                "  WHERE t.machine_id = m.id AND t.tag = ?))",
	                "dtdt", (int)has_room, room, (int)has_tag, tag);
	if (!q)
		return -EIO;
	while ((rc = store_next(q)) == 1) {
		const char *name = store_col_text(q, 1);
		size_t nlen = strlen(name);
		if (has_glob && !match_glob(glob, strlen(glob), name, nlen))
			continue;
		if (has_domain && !match_domain(domain, strlen(domain), name, nlen))
			continue;
		if (has_subnet) {
			const char *ip = store_col_text(q, 2);
			uint32_t addr;
			if (store_col_null(q, 2) ||
			    match_ip4_parse(ip, strlen(ip), &addr, err, sizeof(err)) < 0 ||
			    !match_cidr_contains(&net, addr))
				continue;
		}
		if (idv_push(a, store_col_int(q, 0)) < 0) {
			rc = -ENOMEM;
			break;
		}
	}
	store_done(q);
	return rc < 0 ? rc : 0;
}

int targets_criterion(struct store *s, int64_t id, int64_t **ids, size_t *n)
{
	struct idv a = {0};
	int rc = targets_criterion_into(s, id, &a);
	if (rc < 0) {
		free(a.v);
		return rc;
	}
	idv_unique(&a);
	*ids = a.v;
	*n = a.n;
	return 0;
}

int targets_resolve(struct store *s, enum targets_table tab, int64_t owner, int64_t **ids,
                    size_t *n)
{
	char sql[512];
	struct idv a = {0}, crit = {0};
	int rc;
	/* Machines named directly and members of named groups, in one query. */
	snprintf(sql, sizeof(sql),
	         "SELECT t.machine_id FROM %1$s t WHERE t.%2$s = ? AND t.machine_id IS NOT NULL"
	         " UNION SELECT gm.machine_id FROM %1$s t JOIN group_members gm"
	         " ON gm.group_id = t.group_id WHERE t.%2$s = ?",
	         targets_tables[tab], targets_owner[tab]);
	struct store_q *q = store_query(s, sql, "ii", owner, owner);
	if (!q)
		return -EIO;
	while ((rc = store_next(q)) == 1)
		if (idv_push(&a, store_col_int(q, 0)) < 0) {
			rc = -ENOMEM;
			break;
		}
	store_done(q);
	snprintf(sql, sizeof(sql),
	         "SELECT criterion_id FROM %s WHERE %s = ? AND criterion_id IS NOT NULL",
	         targets_tables[tab], targets_owner[tab]);
	if (rc == 0 && (q = store_query(s, sql, "i", owner))) {
		while ((rc = store_next(q)) == 1)
			if (idv_push(&crit, store_col_int(q, 0)) < 0) {
				rc = -ENOMEM;
				break;
			}
		store_done(q);
	} else if (rc == 0) {
		rc = -EIO;
	}
	for (size_t i = 0; rc == 0 && i < crit.n; i++) {
		rc = targets_criterion_into(s, crit.v[i], &a);
		if (rc == -EINVAL || rc == -ENOENT)
			rc = 0;
	}
	free(crit.v);
	if (rc < 0) {
		free(a.v);
		return rc;
	}
	idv_unique(&a);
	*ids = a.v;
	*n = a.n;
	return 0;
}

int targets_reply_machines(struct req *r, const int64_t *ids, size_t n)
{
	int64_t limit, offset;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	size_t from = (size_t)offset < n ? (size_t)offset : n;
	size_t count = n - from < (size_t)limit ? n - from : (size_t)limit;
	/* One batch of queries for the page (machines.h); a machine deleted since is left out. */
	json_t *items = machines_page_json(r->srv->store, count ? ids + from : NULL, count);
	return req_reply_page(r, items, (int64_t)n, limit, offset);
}

/*
 * Criteria: saved rules over the inventory, resolved to machines when used
 * (docs/api.md, "Criteria"). This module validates and stores the rules
 * with the same match.h checks that targets.c resolves them with, so a rule
 * that is accepted always means what it says.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "jv.h"
#include "match.h"
#include "req.h"
#include "server.h"
#include "store.h"
#include "targets.h"

#define CRIT_NAME_MAX 64
#define CRIT_DESC_MAX 1000

#define CRIT_COLS                                                                                  \
	"SELECT id, name, description, name_glob, domain, subnet, room, tag,"                      \
	" created_at AS \"created_at:t\", updated_at AS \"updated_at:t\" FROM criteria"

/* The rules, in the order of the columns. */
enum { RULE_GLOB, RULE_DOMAIN, RULE_SUBNET, RULE_ROOM, RULE_TAG, RULE_N };
static const char *const rule_keys[RULE_N] = {"name_glob", "domain", "subnet", "room", "tag"};

/*
 * A rule from the body: state 0 absent (unchanged), 1 set to val, 2 null
 * (cleared). val holds the canonical form.
 */
struct rule {
	int state;
	char val[MATCH_NAME_SIZE + 2];
};

/* Validates and canonicalises rule k of the body into ru. 0 or -1 (400 set). */
static int crit_rule(struct req *r, int k, struct rule *ru)
{
	const char *key = rule_keys[k], *s;
	char err[MATCH_ERR_SIZE];
	json_t *v = json_object_get(r->body, key);
	ru->state = 0;
	if (!v)
		return 0;
	if (json_is_null(v)) {
		ru->state = 2;
		return 0;
	}
	/* jv_str refuses control characters and overlong values before the matchers look. */
	if (jv_str(r, key, 0, 1, MATCH_GLOB_MAX, &s) < 0)
		return -1;
	size_t len = strlen(s);
	int rc = 0;
	switch (k) {
	case RULE_GLOB:
		rc = match_glob_check(s, len, err, sizeof(err));
		if (rc == 0)
			snprintf(ru->val, sizeof(ru->val), "%s", s);
		break;
	case RULE_DOMAIN:
		/* A leading dot (".lab.example.edu") says "inside"; that is what a domain rule
		 * means. */
		if (len > 1 && s[0] == '.') {
			s++;
			len--;
		}
		rc = match_hostname_normalize(s, len, ru->val, err, sizeof(err));
		break;
	case RULE_SUBNET: {
		struct match_cidr c;
		rc = match_cidr_parse(s, len, &c, err, sizeof(err));
		if (rc == 0)
			match_cidr_format(&c, ru->val);
		break;
	}
	case RULE_ROOM:
		rc = match_room_check(s, len, err, sizeof(err));
		if (rc == 0)
			snprintf(ru->val, sizeof(ru->val), "%s", s);
		break;
	case RULE_TAG:
		rc = match_tag_check(s, len, err, sizeof(err));
		if (rc == 0)
			snprintf(ru->val, sizeof(ru->val), "%s", s);
		break;
	default:
		return req_internal(r);
	}
	if (rc < 0)
		return req_bad(r, key, "%s: %s", key, err);
	ru->state = 1;
	return 0;
}

static int crit_rules(struct req *r, struct rule ru[RULE_N])
{
	for (int k = 0; k < RULE_N; k++)
		if (crit_rule(r, k, &ru[k]) < 0)
			return -1;
	return 0;
}

/* Criterion names: as group names, 1..64 bytes, no spaces at either end. */
static int crit_name(struct req *r, unsigned flags, const char **name)
{
	int rc = jv_str(r, "name", flags, 1, CRIT_NAME_MAX, name);
	if (rc == 1 && ((*name)[0] == ' ' || (*name)[strlen(*name) - 1] == ' '))
		return req_bad(r, "name", "name must not start or end with a space");
	return rc;
}

static int crit_reply(struct req *r, int status, int64_t id)
{
	bool found;
	json_t *c = store_row1_json(r->srv->store, &found, CRIT_COLS " WHERE id = ?", "i", id);
	if (!found)
		return c ? req_internal(r) : req_not_found(r, "criterion", id);
	return req_reply(r, status, c);
}

static int criteria_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	store_int(r->srv->store, &total, "SELECT COUNT(*) FROM criteria", NULL);
	json_t *items = store_rows_json(r->srv->store, CRIT_COLS " ORDER BY name LIMIT ? OFFSET ?",
	                                "ii", limit, offset);
	return req_reply_page(r, items, total, limit, offset);
}

static int criteria_get(struct req *r)
{
	return crit_reply(r, 200, r->id[0]);
}

#define NO_RULE_MSG "a criterion needs at least one rule: name_glob, domain, subnet, room or tag"

static const char *rule_arg(const struct rule *ru)
{
	return ru->state == 1 ? ru->val : NULL;
}

static int criteria_create(struct req *r)
{
	static const char *const keys[] = {"name",   "description", "name_glob", "domain",
	                                   "subnet", "room",        "tag",       NULL};
	struct store *s = r->srv->store;
	struct rule ru[RULE_N];
	const char *name, *desc = "";
	int64_t id = 0;
	if (jv_object(r, keys) < 0 || crit_name(r, JV_REQ, &name) < 0 ||
	    jv_str(r, "description", 0, 0, CRIT_DESC_MAX, &desc) < 0 || crit_rules(r, ru) < 0)
		return -1;
	bool any = false;
	for (int k = 0; k < RULE_N; k++)
		any = any || ru[k].state == 1;
	if (!any)
		return req_bad(r, NULL, NO_RULE_MSG);
	if (store_begin(s) < 0)
		return req_internal(r);
	int64_t now = store_now();
	int rc =
	    store_insert(s, &id,
	                 "INSERT INTO criteria (name, description, name_glob, domain, subnet,"
	                 " room, tag, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
	                 " RETURNING id",
	                 "tttttttii", name, desc, rule_arg(&ru[RULE_GLOB]),
	                 rule_arg(&ru[RULE_DOMAIN]), rule_arg(&ru[RULE_SUBNET]),
	                 rule_arg(&ru[RULE_ROOM]), rule_arg(&ru[RULE_TAG]), now, now);
	if (rc == 0)
		rc = audit_add(r, "create", "criterion", id, "criterion '%s'", name);
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			return req_conflict(r, "name", "a criterion named '%s' already exists",
			                    name);
		return req_store_error(r, rc, "criterion");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return crit_reply(r, 201, id);
}

static int criteria_update(struct req *r)
{
	static const char *const keys[] = {"name",   "description", "name_glob", "domain",
	                                   "subnet", "room",        "tag",       NULL};
	static const char *const upd[RULE_N] = {
	    "UPDATE criteria SET name_glob = ? WHERE id = ?",
	    "UPDATE criteria SET domain = ? WHERE id = ?",
	    "UPDATE criteria SET subnet = ? WHERE id = ?",
	    "UPDATE criteria SET room = ? WHERE id = ?",
	    "UPDATE criteria SET tag = ? WHERE id = ?",
	};
	struct store *s = r->srv->store;
	struct rule ru[RULE_N];
	const char *name = NULL, *desc = NULL;
	int64_t id = r->id[0], found = 0, rules = 0;
	if (jv_object(r, keys) < 0 || crit_name(r, 0, &name) < 0 ||
	    jv_str(r, "description", 0, 0, CRIT_DESC_MAX, &desc) < 0 || crit_rules(r, ru) < 0)
		return -1;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_int(s, &found, "SELECT COUNT(*) FROM criteria WHERE id = ?", "i", id);
	if (rc == 0 && !found) {
		store_rollback(s);
		return req_not_found(r, "criterion", id);
	}
	if (rc == 0 && name)
		rc = store_exec(s, "UPDATE criteria SET name = ? WHERE id = ?", "ti", name, id);
	if (rc >= 0 && desc)
		rc = store_exec(s, "UPDATE criteria SET description = ? WHERE id = ?", "ti", desc,
		                id);
	for (int k = 0; rc >= 0 && k < RULE_N; k++)
		if (ru[k].state)
			rc = store_exec(s, upd[k], "ti", rule_arg(&ru[k]), id);
	if (rc >= 0)
		rc = store_int(s, &rules,
		               "SELECT (name_glob IS NOT NULL) + (domain IS NOT NULL) +"
		               " (subnet IS NOT NULL) + (room IS NOT NULL) + (tag IS NOT NULL)"
		               " FROM criteria WHERE id = ?",
		               "i", id);
	if (rc >= 0 && rules == 0) {
		store_rollback(s);
		return req_bad(r, NULL, NO_RULE_MSG);
	}
	if (rc >= 0)
		rc = store_exec(s, "UPDATE criteria SET updated_at = ? WHERE id = ?", "ii",
		                store_now(), id);
	if (rc >= 0) {
		char fields[128] = "";
		const char *k;
		json_t *v;
		size_t used = 0;
		json_object_foreach(r->body, k, v)
		{
			if (used < sizeof(fields))
				used += (size_t)snprintf(fields + used, sizeof(fields) - used,
				                         "%s%s", used ? " " : "", k);
		}
		rc = audit_add(r, "update", "criterion", id, "%s", fields);
	}
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			return req_conflict(r, "name", "a criterion named '%s' already exists",
			                    name);
		return req_store_error(r, rc, "criterion");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return crit_reply(r, 200, id);
}

static int criteria_delete(struct req *r)
{
	struct store *s = r->srv->store;
	int64_t id = r->id[0];
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_exec(s, "DELETE FROM criteria WHERE id = ?", "i", id);
	if (rc == 0) {
		store_rollback(s);
		return req_not_found(r, "criterion", id);
	}
	if (rc > 0)
		rc = audit_add(r, "delete", "criterion", id, "criterion %" PRId64, id);
	if (rc == -EBUSY) {
		int64_t nr = 0, nd = 0;
		store_int(s, &nr, "SELECT COUNT(*) FROM right_targets WHERE criterion_id = ?", "i",
		          id);
		store_int(s, &nd, "SELECT COUNT(*) FROM deployment_targets WHERE criterion_id = ?",
		          "i", id);
		store_rollback(s);
		return req_conflict(r, NULL,
		                    "criterion %" PRId64 " is a target of %" PRId64
		                    " right(s) and %" PRId64
		                    " deployment(s); remove it from them first",
		                    id, nr, nd);
	}
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "criterion");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

static int criteria_machines(struct req *r)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int rc = targets_criterion(r->srv->store, r->id[0], &ids, &n);
	if (rc == -ENOENT)
		return req_not_found(r, "criterion", r->id[0]);
	if (rc < 0)
		return req_internal(r);
	rc = targets_reply_machines(r, ids, n);
	free(ids);
	return rc;
}

const struct api_route api_criteria_routes[] = {
    {"GET", "/criteria", ROLE_VIEWER, criteria_list, NULL},
    {"POST", "/criteria", ROLE_OPERATOR, criteria_create, NULL},
    {"GET", "/criteria/:id", ROLE_VIEWER, criteria_get, NULL},
    {"PATCH", "/criteria/:id", ROLE_OPERATOR, criteria_update, NULL},
    {"DELETE", "/criteria/:id", ROLE_OPERATOR, criteria_delete, NULL},
    {"GET", "/criteria/:id/machines", ROLE_VIEWER, criteria_machines, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

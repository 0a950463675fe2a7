/*
 * Deployments (docs/api.md, "Deployments"): an image version, the machines
 * it goes to, when (now, at a time, or by a cron schedule in the server's
 * time zone) and how. This module keeps next_due, the time the scheduler
 * (sched.c) acts on, right whenever a schedule or the enabled flag changes,
 * and kicks the scheduler so a change takes effect at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "audit.h"
#include "boot.h"
#include "cron.h"
#include "jv.h"
#include "match.h"
#include "req.h"
#include "runner.h"
#include "scheduler.h"
#include "server.h"
#include "store.h"
#include "targets.h"
#include "timefmt.h"

#define DEP_NAME_MAX 100
#define DEP_RATE_MAX 100000 /* Mbit/s */
#define DEP_WAIT_MAX 86400  /* seconds */
#define DEP_WAIT_DEFAULT 300
#define DEP_REPORT_MAX 50 /* e-mail addresses */
#define DEP_EMAIL_MAX 254

/*
 * The NULL columns hold the places of what dep_fill() adds, so the keys
 * come out in the documented order; the raw schedule and option columns
 * at the end are folded into "schedule" and "options" there.
 */
#define DEP_COLS                                                                                   \
	"SELECT d.id, d.name, d.version_id, v.image_id, NULL AS targets, NULL AS schedule,"        \
	" NULL AS options, d.enabled AS \"enabled:b\", d.next_due AS \"next_due:t\","              \
	" d.last_due AS \"last_due:t\", d.created_by_name AS created_by, d.created_by AS "         \
	"created_by_id,"                                                                           \
	" d.created_at AS \"created_at:t\", d.updated_at AS \"updated_at:t\","                     \
	" d.schedule_kind, d.at_time AS \"at:t\", d.cron, d.rate_bps, d.wake AS \"wake:b\","       \
	" d.wait_s, d.boot_mode FROM deployments d JOIN image_versions v ON v.id = d.version_id"

/* Moves key of o into dst (as name), keeping its value. */
static void dep_move(json_t *o, const char *key, json_t *dst, const char *name)
{
	json_object_set(dst, name, json_object_get(o, key));
	json_object_del(o, key);
}

/*
 * Reshapes a row read by DEP_COLS into the API's deployment: "schedule" and
 * "options" objects, "targets", and "report_to". Returns 0 or a store code.
 */
static int dep_fill(struct store *s, json_t *o)
{
	int64_t id = json_integer_value(json_object_get(o, "id"));
	json_t *sc = json_object(), *op = json_object(), *rcpt = json_array();
	const char *kind = json_string_value(json_object_get(o, "schedule_kind"));
	json_object_set(sc, "kind", json_object_get(o, "schedule_kind"));
	if (kind && strcmp(kind, "at") == 0)
		json_object_set(sc, "at", json_object_get(o, "at"));
	if (kind && strcmp(kind, "cron") == 0)
		json_object_set(sc, "cron", json_object_get(o, "cron"));
	json_object_del(o, "schedule_kind");
	json_object_del(o, "at");
	json_object_del(o, "cron");
	json_t *rate = json_object_get(o, "rate_bps");
	json_object_set_new(op, "rate_mbps",
	                    json_is_integer(rate) ? json_integer(json_integer_value(rate) / 1000000)
	                                          : json_null());
	json_object_del(o, "rate_bps");
	dep_move(o, "wake", op, "wake");
	dep_move(o, "wait_s", op, "wait_s");
	dep_move(o, "boot_mode", op, "boot_mode");
	json_object_set_new(op, "report_to", rcpt);
	struct store_q *q = store_query(s,
	                                "SELECT email FROM deployment_recipients"
	                                " WHERE deployment_id = ? ORDER BY email",
	                                "i", id);
	int rc = q ? 0 : -EIO;
	while (q && (rc = store_next(q)) == 1)
		json_array_append_new(rcpt, json_string(store_col_text(q, 0)));
	store_done(q);
	json_t *t = rc < 0 ? NULL : targets_json(s, TARGETS_DEPLOYMENT, id);
	json_object_set_new(o, "targets", t ? t : json_null());
	json_object_set_new(o, "schedule", sc);
	json_object_set_new(o, "options", op);
	return rc < 0 ? rc : (t ? 0 : -EIO);
}

static json_t *dep_get(struct store *s, int64_t id, bool *found)
{
	json_t *o = store_row1_json(s, found, DEP_COLS " WHERE d.id = ?", "i", id);
	if (o && dep_fill(s, o) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * Checks an e-mail address: local@domain, the local part 1..64 of the
 * characters RFC 5322 allows unquoted (dots not first, last or doubled),
 * the domain a host name (match_hostname_check), 254 bytes at most. Quoted
 * local parts and address literals are refused: no school needs them.
 * Pure. Returns 0 or -EINVAL with a reason.
 */
static int dep_email_check(const char *s, size_t len, char *err, size_t errsz)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~";
	const char *at = NULL;
	char why[MATCH_ERR_SIZE];
	if (len == 0 || len > DEP_EMAIL_MAX) {
		snprintf(err, errsz, "must be 1 to %d bytes", DEP_EMAIL_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		if (s[i] == '@')
			at = s + i;
	if (!at) {
		snprintf(err, errsz, "is not an e-mail address (local@domain)");
		return -EINVAL;
	}
	size_t llen = (size_t)(at - s);
	if (llen == 0 || llen > 64) {
		snprintf(err, errsz, "the part before '@' must be 1 to 64 bytes");
		return -EINVAL;
	}
	for (size_t i = 0; i < llen; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || (c != '\0' && strchr(atext, c));
		if (c == '.')
			ok = i > 0 && i + 1 < llen && s[i - 1] != '.';
		if (!ok) {
			snprintf(err, errsz,
			         "the part before '@' has a character e-mail does not allow there "
			         "(position %zu)",
			         i + 1);
			return -EINVAL;
		}
	}
	if (match_hostname_check(at + 1, len - llen - 1, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "has a bad domain: %s", why);
		return -EINVAL;
	}
	return 0;
}

static int dep_name_check(struct req *r, const char *name)
{
	if (name[0] == ' ' || name[strlen(name) - 1] == ' ')
		return req_bad(r, "name", "name must not begin or end with a space");
	return 0;
}

/*
 * version_id must name a version that is ready: one still importing is a
 * 409 (wait and retry), a failed one a 400 (it will never be ready).
 */
static int dep_version_check(struct req *r, int64_t vid)
{
	char state[16] = "";
	struct store_q *q =
	    store_query(r->srv->store, "SELECT state FROM image_versions WHERE id = ?", "i", vid);
	int rc = q ? store_next(q) : -EIO;
	if (rc == 1)
		snprintf(state, sizeof(state), "%s", store_col_text(q, 0));
	store_done(q);
	if (rc < 0)
		return req_internal(r);
	if (rc == 0)
		return req_bad(r, "version_id", "version_id: no image version with id %lld",
		               (long long)vid);
	if (strcmp(state, "importing") == 0)
		return req_conflict(r, "version_id",
		                    "version %lld is still importing; deploy it once it is ready",
		                    (long long)vid);
	if (strcmp(state, "ready") != 0)
		return req_bad(r, "version_id",
		               "version %lld failed to import and cannot be deployed",
		               (long long)vid);
	return 0;
}

/* A schedule as given: kind, and its time or cron expression. */
struct dep_sched {
	const char *kind; /* "now", "at", "cron" */
	int64_t at;
	char cron[CRON_FORMAT_MAX]; /* canonical */
	int64_t next;               /* the first due time */
	bool has_next;
};

/*
 * Reads "schedule" and computes its first due time after now. Returns 1,
 * 0 (absent) or -1 (400 set).
 */
static int dep_schedule_get(struct req *r, unsigned flags, int64_t now, struct dep_sched *ds)
{
	static const char *const keys[] = {"kind", "at", "cron", NULL};
	static const char *const kinds[] = {"now", "at", "cron"};
	json_t *o;
	const char *kind, *text;
	char why[TIMEFMT_ERR_MAX > CRON_ERR_MAX ? TIMEFMT_ERR_MAX : CRON_ERR_MAX];
	int rc = jv_obj(r, "schedule", flags, &o);
	if (rc <= 0)
		return rc;
	if (jv_keys(r, o, "schedule", keys) < 0 ||
	    jv_str_in(r, o, "schedule", "kind", JV_REQ, 1, 16, &kind) < 0)
		return -1;
	memset(ds, 0, sizeof(*ds));
	for (size_t i = 0; i < 3; i++)
		if (strcmp(kind, kinds[i]) == 0)
			ds->kind = kinds[i];
	if (!ds->kind)
		return req_bad(r, "schedule.kind", "schedule.kind must be one of: now, at, cron");
	if (strcmp(ds->kind, "at") != 0 && !json_is_null(json_object_get(o, "at")) &&
	    json_object_get(o, "at"))
		return req_bad(r, "schedule.at", "schedule.at applies only to kind at");
	if (strcmp(ds->kind, "cron") != 0 && !json_is_null(json_object_get(o, "cron")) &&
	    json_object_get(o, "cron"))
		return req_bad(r, "schedule.cron", "schedule.cron applies only to kind cron");
	if (strcmp(ds->kind, "now") == 0) {
		ds->next = now;
		ds->has_next = true;
	} else if (strcmp(ds->kind, "at") == 0) {
		time_t t;
		char when[TIMEFMT_LEN], clock[TIMEFMT_LEN];
		if (jv_str_in(r, o, "schedule", "at", JV_REQ, 1, TIMEFMT_TEXT_MAX, &text) < 0)
			return -1;
		if (timefmt_parse(text, strlen(text), &t, why, sizeof(why)) < 0)
			return req_bad(r, "schedule.at", "schedule.at: %s", why);
		if ((int64_t)t < now) {
			timefmt_format(t, when, sizeof(when));
			timefmt_format((time_t)now, clock, sizeof(clock));
			return req_bad(
			    r, "schedule.at",
			    "schedule.at: at is in the past (%s; the server's time is %s)", when,
			    clock);
		}
		ds->at = (int64_t)t;
		ds->next = ds->at;
		ds->has_next = true;
	} else {
		struct cron c;
		time_t t;
		if (jv_str_in(r, o, "schedule", "cron", JV_REQ, 1, CRON_TEXT_MAX, &text) < 0)
			return -1;
		if (cron_parse(text, strlen(text), &c, why, sizeof(why)) < 0)
			return req_bad(r, "schedule.cron", "schedule.cron: %s", why);
		if (cron_format(&c, ds->cron, sizeof(ds->cron)) < 0)
			return req_internal(r);
		rc = cron_next(&c, (time_t)now, &t);
		if (rc == -ENOENT)
			return req_bad(r, "schedule.cron",
			               "schedule.cron: '%s' never fires (no matching time in the "
			               "next %d years)",
			               ds->cron, CRON_SEARCH_DAYS / 365);
		if (rc < 0)
			return req_internal(r);
		ds->next = (int64_t)t;
		ds->has_next = true;
	}
	return 1;
}

/* Options as given; has_* say which. */
struct dep_opts {
	int has_rate, has_wake, has_wait, has_report, has_boot;
	bool rate_null, wake;
	int boot_mode; /* enum boot_mode; BOOT_NONE: none */
	int64_t rate_mbps, wait_s;
	json_t *report_to; /* borrowed; NULL with has_report: clear */
};

static int dep_options_get(struct req *r, struct dep_opts *op)
{
	static const char *const keys[] = {"rate_mbps", "wake",      "wait_s",
	                                   "report_to", "boot_mode", NULL};
	json_t *o, *v;
	memset(op, 0, sizeof(*op));
	int rc = jv_obj(r, "options", 0, &o);
	if (rc <= 0)
		return rc;
	if (jv_keys(r, o, "options", keys) < 0)
		return -1;
	op->rate_null = json_is_null(json_object_get(o, "rate_mbps"));
	op->has_rate = op->rate_null;
	if ((rc = jv_int_in(r, o, "options", "rate_mbps", 0, 1, DEP_RATE_MAX, &op->rate_mbps)) < 0)
		return -1;
	op->has_rate |= rc;
	if ((op->has_wake = jv_bool_in(r, o, "options", "wake", 0, &op->wake)) < 0 ||
	    (op->has_wait = jv_int_in(r, o, "options", "wait_s", 0, 0, DEP_WAIT_MAX, &op->wait_s)) <
	        0)
		return -1;
	v = json_object_get(o, "boot_mode");
	if (v) {
		op->has_boot = 1;
		op->boot_mode = boot_mode_parse(json_string_value(v));
		if (!json_is_null(v) && op->boot_mode == BOOT_NONE)
			return req_bad(
			    r, "options.boot_mode",
			    "options.boot_mode must be microlinux, local, install, shell "
			    "or null");
	}
	v = json_object_get(o, "report_to");
	if (!v)
		return 1;
	op->has_report = 1;
	if (json_is_null(v))
		return 1;
	if (!json_is_array(v))
		return req_bad(r, "options.report_to",
		               "options.report_to must be an array of e-mail addresses");
	if (json_array_size(v) > DEP_REPORT_MAX)
		return req_bad(r, "options.report_to",
		               "options.report_to has more than %d addresses", DEP_REPORT_MAX);
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		char why[MATCH_ERR_SIZE + 64];
		if (!json_is_string(e))
			return req_bad(r, "options.report_to",
			               "options.report_to[%zu] must be a string", i);
		const char *s = json_string_value(e);
		size_t len = json_string_length(e);
		if (strlen(s) != len || dep_email_check(s, len, why, sizeof(why)) < 0)
			return req_bad(r, "options.report_to", "options.report_to[%zu] %s", i,
			               strlen(s) != len ? "holds a NUL byte" : why);
	}
	op->report_to = v;
	return 1;
}

/* Replaces the report recipients. Inside a transaction. */
static int dep_save_recipients(struct store *s, int64_t id, json_t *list)
{
	int rc =
	    store_exec(s, "DELETE FROM deployment_recipients WHERE deployment_id = ?", "i", id);
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		if (rc < 0)
			break;
		rc = store_exec(
		    s,
		    "INSERT INTO deployment_recipients (deployment_id, email) VALUES (?, ?)"
		    " ON CONFLICT (deployment_id, email) DO NOTHING",
		    "it", id, json_string_value(e));
	}
	return rc < 0 ? rc : 0;
}

/* Sets next_due to next, or NULL. */
static int dep_set_next(struct store *s, int64_t id, bool has, int64_t next)
{
	if (has)
		return store_exec(s, "UPDATE deployments SET next_due = ? WHERE id = ?", "ii", next,
		                  id);
	return store_exec(s, "UPDATE deployments SET next_due = NULL WHERE id = ?", "i", id);
}

static int deps_list(struct req *r)
{
	int64_t limit, offset, total = 0;
	struct store *s = r->srv->store;
	if (req_page(r, &limit, &offset) < 0)
		return -1;
	store_int(s, &total, "SELECT COUNT(*) FROM deployments", NULL);
	json_t *items =
	    store_rows_json(s, DEP_COLS " ORDER BY d.id LIMIT ? OFFSET ?", "ii", limit, offset);
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o)
	{
		if (dep_fill(s, o) < 0) {
			json_decref(items);
			return req_internal(r);
		}
	}
	return req_reply_page(r, items, total, limit, offset);
}

static int deps_show(struct req *r)
{
	bool found;
	json_t *o = dep_get(r->srv->store, r->id[0], &found);
	if (!o)
		return found ? req_internal(r) : req_not_found(r, "deployment", r->id[0]);
	return req_reply(r, 200, o);
}

static const char *const dep_keys[] = {"name",    "version_id", "targets", "schedule",
                                       "options", "enabled",    NULL};

static int deps_create(struct req *r)
{
	const char *name;
	int64_t vid, id, now = store_now();
	bool enabled = true;
	struct dep_sched ds;
	struct dep_opts op;
	struct targets t = {0};
	struct store *s = r->srv->store;
	if (jv_object(r, dep_keys) < 0 || jv_str(r, "name", JV_REQ, 1, DEP_NAME_MAX, &name) < 0 ||
	    dep_name_check(r, name) < 0 ||
	    jv_int(r, "version_id", JV_REQ, 1, INT64_MAX, &vid) < 0 ||
	    dep_version_check(r, vid) < 0 || dep_schedule_get(r, JV_REQ, now, &ds) < 0 ||
	    dep_options_get(r, &op) < 0 || jv_bool(r, "enabled", 0, &enabled) < 0 ||
	    targets_parse(r, "targets", true, &t) < 0)
		return -1;
	if (!op.has_wake)
		op.wake = true;
	if (!op.has_wait)
		op.wait_s = DEP_WAIT_DEFAULT;
	if (store_begin(s) < 0) {
		targets_free(&t);
		return req_internal(r);
	}
	/* A rate of 0 and an "at" of 0 stand for NULL (NULLIF). */
	int rc = store_insert(
	    s, &id,
	    "INSERT INTO deployments (name, version_id, schedule_kind, at_time, cron, rate_bps,"
	    " wake, wait_s, enabled, created_by, created_by_name, created_at, updated_at)"
	    " VALUES (?, ?, ?, NULLIF(?, 0), ?, NULLIF(?, 0), ?, ?, ?, ?, ?, ?, ?) RETURNING id",
	    "tititididitii", name, vid, ds.kind, ds.at, ds.cron[0] ? ds.cron : NULL,
	    op.rate_null ? (int64_t)0 : op.rate_mbps * 1000000, (int)op.wake, op.wait_s,
	    (int)enabled, r->user.id, r->user.name, now, now);
	if (rc == 0)
		rc = dep_set_next(s, id, enabled && ds.has_next, ds.next);
	if (rc >= 0 && op.report_to)
		rc = dep_save_recipients(s, id, op.report_to);
	if (rc >= 0 && op.boot_mode)
		rc = store_exec(s, "UPDATE deployments SET boot_mode = ? WHERE id = ?", "ti",
		                boot_mode_str(op.boot_mode), id);
	if (rc >= 0)
		rc = targets_save(s, TARGETS_DEPLOYMENT, id, &t);
	if (rc >= 0)
		rc = audit_add(r, "create", "deployment", id,
		               "deployment '%s' of version %lld, %s%s%s", name, (long long)vid,
		               ds.kind, ds.cron[0] ? " " : "", ds.cron);
	targets_free(&t);
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			return req_conflict(r, "name", "a deployment named '%s' already exists",
			                    name);
		return req_store_error(r, rc, "deployment");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	sched_kick(r->srv);
	bool found;
	return req_reply(r, 201, dep_get(s, id, &found));
}

/* The stored schedule state that a PATCH needs. */
struct dep_cur {
	char kind[8];
	int64_t at, last_due;
	bool has_last, enabled;
	char cron[CRON_FORMAT_MAX];
};

static int dep_read_cur(struct store *s, int64_t id, struct dep_cur *c)
{
	struct store_q *q = store_query(s,
	                                "SELECT schedule_kind, at_time, last_due, enabled, cron"
	                                " FROM deployments WHERE id = ?",
	                                "i", id);
	if (!q)
		return -EIO;
	int rc = store_next(q);
	if (rc == 1) {
		snprintf(c->kind, sizeof(c->kind), "%s", store_col_text(q, 0));
		c->at = store_col_int(q, 1);
		c->has_last = !store_col_null(q, 2);
		c->last_due = store_col_int(q, 2);
		c->enabled = store_col_int(q, 3) != 0;
		snprintf(c->cron, sizeof(c->cron), "%s", store_col_text(q, 4));
	}
	store_done(q);
	return rc;
}

/*
 * The due time of an unchanged schedule being enabled again at now: a
 * "now" deployment that never ran runs now, one that ran stays done; an
 * "at" deployment runs at its time if still ahead, stays done if it ran for
 * it, and otherwise cannot be enabled without a new time (-1, 400 set); a
 * cron deployment resumes at its next occurrence.
 */
static int dep_resume(struct req *r, const struct dep_cur *c, int64_t now, bool *has, int64_t *next)
{
	*has = false;
	if (strcmp(c->kind, "now") == 0) {
		*has = !c->has_last;
		*next = now;
	} else if (strcmp(c->kind, "at") == 0) {
		if (c->at >= now) {
			*has = true;
			*next = c->at;
		} else if (!c->has_last || c->last_due != c->at) {
			char when[TIMEFMT_LEN];
			timefmt_format((time_t)c->at, when, sizeof(when));
			return req_bad(r, "enabled",
			               "schedule.at (%s) has passed without a run; give a new "
			               "schedule to enable this deployment",
			               when);
		}
	} else {
		struct cron cr;
		time_t t;
		if (cron_parse(c->cron, strlen(c->cron), &cr, NULL, 0) < 0)
			return req_internal(r);
		if (cron_next(&cr, (time_t)now, &t) == 0) {
			*has = true;
			*next = (int64_t)t;
		}
	}
	return 0;
}

static int deps_update(struct req *r)
{
	const char *name = NULL;
	int64_t vid = 0, id = r->id[0], now = store_now(), next = 0;
	bool enabled = false, has_next = false;
	struct dep_sched ds;
	struct dep_opts op;
	struct dep_cur cur;
	struct targets t = {0};
	int has_vid, has_sched, has_en, has_t, rc;
	struct store *s = r->srv->store;
	if (jv_object(r, dep_keys) < 0 || jv_str(r, "name", 0, 1, DEP_NAME_MAX, &name) < 0 ||
	    (name && dep_name_check(r, name) < 0) ||
	    (has_vid = jv_int(r, "version_id", 0, 1, INT64_MAX, &vid)) < 0 ||
	    (has_vid && dep_version_check(r, vid) < 0) ||
	    (has_sched = dep_schedule_get(r, json_object_get(r->body, "schedule") ? JV_REQ : 0, now,
	                                  &ds)) < 0 ||
	    dep_options_get(r, &op) < 0 || (has_en = jv_bool(r, "enabled", 0, &enabled)) < 0 ||
	    (has_t = targets_parse(r, "targets", json_object_get(r->body, "targets") != NULL, &t)) <
	        0)
		return -1;
	if (store_begin(s) < 0) {
		targets_free(&t);
		return req_internal(r);
	}
	rc = dep_read_cur(s, id, &cur);
	if (rc <= 0) {
		store_rollback(s);
		targets_free(&t);
		return rc == 0 ? req_not_found(r, "deployment", id) : req_internal(r);
	}
	/* next_due changes when the schedule does, or the enabled flag flips. */
	bool now_enabled = has_en ? enabled : cur.enabled;
	bool recompute = has_sched || (has_en && enabled != cur.enabled);
	if (recompute && now_enabled && has_sched) {
		has_next = ds.has_next;
		next = ds.next;
	} else if (recompute && now_enabled && dep_resume(r, &cur, now, &has_next, &next) < 0) {
		store_rollback(s);
		targets_free(&t);
		return -1;
	}
	rc = store_exec(s, "UPDATE deployments SET updated_at = ? WHERE id = ?", "ii", now, id);
	if (rc >= 0 && name)
		rc = store_exec(s, "UPDATE deployments SET name = ? WHERE id = ?", "ti", name, id);
	if (rc >= 0 && has_vid)
		rc = store_exec(s, "UPDATE deployments SET version_id = ? WHERE id = ?", "ii", vid,
		                id);
	if (rc >= 0 && has_sched)
		rc = store_exec(s,
		                "UPDATE deployments SET schedule_kind = ?, at_time = NULLIF(?, 0),"
		                " cron = ? WHERE id = ?",
		                "titi", ds.kind, ds.at, ds.cron[0] ? ds.cron : NULL, id);
	if (rc >= 0 && op.has_rate)
		rc = store_exec(s, "UPDATE deployments SET rate_bps = NULLIF(?, 0) WHERE id = ?",
		                "ii", op.rate_null ? (int64_t)0 : op.rate_mbps * 1000000, id);
	if (rc >= 0 && op.has_wake)
		rc = store_exec(s, "UPDATE deployments SET wake = ? WHERE id = ?", "di",
		                (int)op.wake, id);
	if (rc >= 0 && op.has_wait)
		rc = store_exec(s, "UPDATE deployments SET wait_s = ? WHERE id = ?", "ii",
		                op.wait_s, id);
	if (rc >= 0 && op.has_report)
		rc = dep_save_recipients(s, id, op.report_to);
	if (rc >= 0 && op.has_boot)
		rc = store_exec(s, "UPDATE deployments SET boot_mode = ? WHERE id = ?", "ti",
		                op.boot_mode ? boot_mode_str(op.boot_mode) : NULL, id);
	if (rc >= 0 && has_en)
		rc = store_exec(s, "UPDATE deployments SET enabled = ? WHERE id = ?", "di",
		                (int)enabled, id);
	if (rc >= 0 && recompute)
		rc = dep_set_next(s, id, now_enabled && has_next, next);
	if (rc >= 0 && has_t)
		rc = targets_save(s, TARGETS_DEPLOYMENT, id, &t);
	if (rc >= 0)
		rc = audit_add(
		    r, "update", "deployment", id, "%s%s%s%s%s%s%s", name ? "name " : "",
		    has_vid ? "version_id " : "", has_sched ? "schedule " : "",
		    op.has_rate || op.has_wake || op.has_wait || op.has_report ? "options " : "",
		    has_en ? (enabled ? "enabled " : "disabled ") : "", has_t ? "targets " : "",
		    recompute ? "(next due recomputed)" : "");
	targets_free(&t);
	if (rc < 0) {
		store_rollback(s);
		if (rc == -EEXIST)
			return req_conflict(r, "name", "a deployment named '%s' already exists",
			                    name);
		return req_store_error(r, rc, "deployment");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	if (recompute)
		sched_kick(r->srv);
	bool found;
	return req_reply(r, 200, dep_get(s, id, &found));
}

static int deps_delete(struct req *r)
{
	int64_t id = r->id[0], running = 0;
	struct store *s = r->srv->store;
	if (store_begin(s) < 0)
		return req_internal(r);
	int rc = store_int(
	    s, &running, "SELECT COUNT(*) FROM runs WHERE deployment_id = ? AND state = 'running'",
	    "i", id);
	if (rc == 0 && running > 0) {
		store_rollback(s);
		return req_conflict(r, NULL,
		                    "deployment %lld has a run in progress; wait for it or cancel "
		                    "it first",
		                    (long long)id);
	}
	/*
	 * Its past runs stay (their deployment_id becomes NULL); pending ones
	 * could never start without it, so they are cancelled.
	 */
	if (rc == 0)
		rc = store_exec(s,
		                "UPDATE runs SET state = 'cancelled', finished_at = ?,"
		                " error = 'the deployment was deleted'"
		                " WHERE deployment_id = ? AND state = 'pending'",
		                "ii", store_now(), id);
	if (rc >= 0)
		rc = store_exec(s, "DELETE FROM deployments WHERE id = ?", "i", id);
	if (rc == 0) {
		store_rollback(s);
		return req_not_found(r, "deployment", id);
	}
	if (rc > 0)
		rc = audit_add(r, "delete", "deployment", id, "deployment %lld", (long long)id);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "deployment");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	return req_no_content(r);
}

static int deps_targets(struct req *r)
{
	int64_t n = 0, *ids = NULL;
	size_t nids = 0;
	struct store *s = r->srv->store;
	if (store_int(s, &n, "SELECT COUNT(*) FROM deployments WHERE id = ?", "i", r->id[0]) < 0)
		return req_internal(r);
	if (n == 0)
		return req_not_found(r, "deployment", r->id[0]);
	if (targets_resolve(s, TARGETS_DEPLOYMENT, r->id[0], &ids, &nids) < 0)
		return req_internal(r);
	int rc = targets_reply_machines(r, ids, nids);
	free(ids);
	return rc;
}

/* POST /deployments/:id/run: a pending run now, whatever the schedule. */
static int deps_run(struct req *r)
{
	int64_t id = r->id[0], vid = 0, run_id, now = store_now();
	char name[DEP_NAME_MAX * 4 + 1] = "";
	struct store *s = r->srv->store;
	static const char *const keys[] = {NULL};
	if (r->body && jv_object(r, keys) < 0)
		return -1;
	if (store_begin(s) < 0)
		return req_internal(r);
	struct store_q *q =
	    store_query(s, "SELECT name, version_id FROM deployments WHERE id = ?", "i", id);
	int rc = q ? store_next(q) : -EIO;
	if (rc == 1) {
		snprintf(name, sizeof(name), "%s", store_col_text(q, 0));
		vid = store_col_int(q, 1);
	}
	store_done(q);
	if (rc <= 0) {
		store_rollback(s);
		return rc == 0 ? req_not_found(r, "deployment", id) : req_internal(r);
	}
	rc = store_insert(
	    s, &run_id,
	    "INSERT INTO runs (deployment_id, deployment_name, version_id, state, cause,"
	    " due_at, created_at) VALUES (?, ?, ?, 'pending', 'manual', ?, ?)"
	    " RETURNING id",
	    "itiii", id, name, vid, now, now);
	if (rc == 0)
		rc = audit_add(r, "run", "deployment", id, "manual run %lld", (long long)run_id);
	if (rc < 0) {
		store_rollback(s);
		return req_store_error(r, rc, "run");
	}
	if (store_commit(s) < 0)
		return req_internal(r);
	runner_kick(r->srv);
	bool found;
	return req_reply(r, 201, api_runs_get(s, run_id, &found));
}

const struct api_route api_deployments_routes[] = {
    {"GET", "/deployments", ROLE_VIEWER, deps_list, NULL},
    {"POST", "/deployments", ROLE_OPERATOR, deps_create, NULL},
    {"GET", "/deployments/:id", ROLE_VIEWER, deps_show, NULL},
    {"PATCH", "/deployments/:id", ROLE_OPERATOR, deps_update, NULL},
    {"DELETE", "/deployments/:id", ROLE_OPERATOR, deps_delete, NULL},
    {"GET", "/deployments/:id/targets", ROLE_VIEWER, deps_targets, NULL},
    {"POST", "/deployments/:id/run", ROLE_OPERATOR, deps_run, NULL},
    {NULL, NULL, 0, NULL, NULL},
};

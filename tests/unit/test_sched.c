/*
 * Unit tests for the scheduler (src/server/sched.c) on a real SQLite store
 * in a temporary file, driven by sched_tick() at chosen times: due "now"
 * and "at" deployments, cron across the daylight-saving changes of Paris,
 * the lateness rule, catch-up within and beyond [scheduler] catchup, a long
 * downtime under an every-minute schedule, disabled deployments, a failed
 * transaction leaving nothing behind, the store's guard against a second
 * run for one due time, a restart between ticks, and the thread with
 * sched_start(), sched_kick() and sched_stop().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "scheduler.h"
#include "server.h"
#include "store.h"
#include "timefmt.h"

struct fixture {
	struct srv srv;
	char path[64];
};

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* An instant from ISO text (an offset or Z). */
static int64_t at(const char *iso)
{
	time_t t;
	char err[TIMEFMT_ERR_MAX];
	if (timefmt_parse(iso, strlen(iso), &t, err, sizeof(err)) < 0)
		fail_msg("%s: %s", iso, err);
	return (int64_t)t;
}

static void fx_open(struct fixture *f)
{
	char err[256];
	assert_int_equal(store_open_sqlite(f->path, &f->srv.store, err, sizeof(err)), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "/tmp/test_sched.XXXXXX");
	int fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	srvconf_defaults(&f->srv.conf);
	f->srv.conf.tick_ms = 1000;
	f->srv.conf.catchup_ms = 3600 * 1000;
	fx_open(f);
	struct store *s = f->srv.store;
	assert_int_equal(store_exec(s,
	                            "INSERT INTO images (name, created_at, updated_at)"
	                            " VALUES ('win11', 0, 0)",
	                            NULL),
	                 1);
	assert_int_equal(
	    store_exec(s,
	               "INSERT INTO image_versions (image_id, number, state, created_at)"
	               " VALUES (1, 1, 'ready', 0)",
	               NULL),
	    1);
	set_tz("UTC");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char p[80];
	store_close(f->srv.store);
	srvconf_free(&f->srv.conf);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	free(f);
	return 0;
}

/* A deployment of version 1; cron may be NULL. */
static int64_t dep_add(struct store *s, const char *name, const char *kind, const char *cron,
                       int64_t next_due, int enabled)
{
	int64_t id = 0;
	assert_int_equal(
	    store_insert(s, &id,
	                 "INSERT INTO deployments (name, version_id, schedule_kind, cron,"
	                 " next_due, enabled, created_at, updated_at)"
	                 " VALUES (?, 1, ?, ?, ?, ?, 0, 0) RETURNING id",
	                 "tttid", name, kind, cron, next_due, enabled),
	    0);
	return id;
}

static int64_t count(struct store *s, const char *sql, int64_t id)
{
	int64_t n = -1;
	assert_int_equal(store_int(s, &n, sql, "i", id), 0);
	return n;
}

static int64_t runs_of(struct store *s, int64_t dep)
{
	return count(s, "SELECT COUNT(*) FROM runs WHERE deployment_id = ?", dep);
}

/* next_due of dep, or -1 for NULL. */
static int64_t next_due(struct store *s, int64_t dep)
{
	return count(s, "SELECT COALESCE(next_due, -1) FROM deployments WHERE id = ?", dep);
}

static int64_t last_due(struct store *s, int64_t dep)
{
	return count(s, "SELECT COALESCE(last_due, -1) FROM deployments WHERE id = ?", dep);
}

/* The cause and due time of the latest run of dep. */
static void last_run(struct store *s, int64_t dep, char *cause, size_t n, int64_t *due)
{
	struct store_q *q =
	    store_query(s,
	                "SELECT cause, due_at, state FROM runs WHERE deployment_id = ?"
	                " ORDER BY id DESC LIMIT 1",
	                "i", dep);
	assert_non_null(q);
	assert_int_equal(store_next(q), 1);
	snprintf(cause, n, "%s", store_col_text(q, 0));
	*due = store_col_int(q, 1);
	assert_string_equal(store_col_text(q, 2), "pending");
	store_done(q);
}

/* The detail of the latest audit record with action for dep, or "" when none. */
static void last_audit(struct store *s, const char *action, int64_t dep, char *out, size_t n)
{
	struct store_q *q = store_query(s,
	                                "SELECT detail, username FROM audit WHERE action = ?"
	                                " AND object_type = 'deployment' AND object_id = ?"
	                                " ORDER BY id DESC LIMIT 1",
	                                "ti", action, dep);
	assert_non_null(q);
	out[0] = '\0';
	if (store_next(q) == 1) {
		snprintf(out, n, "%s", store_col_text(q, 0));
		assert_string_equal(store_col_text(q, 1), "mlserver");
	}
	store_done(q);
}

static void test_now(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t t = at("2026-05-04T10:00:00Z"), due;
	char cause[16], detail[1024];
	int64_t d = dep_add(s, "now", "now", NULL, t, 1);
	/* Not yet due one second before. */
	assert_int_equal(sched_tick(&f->srv, t - 1), 0);
	assert_int_equal(runs_of(s, d), 0);
	assert_int_equal(sched_tick(&f->srv, t), 1);
	assert_int_equal(runs_of(s, d), 1);
	last_run(s, d, cause, sizeof(cause), &due);
	assert_string_equal(cause, "schedule");
	assert_int_equal(due, t);
	assert_int_equal(next_due(s, d), -1);
	assert_int_equal(last_due(s, d), t);
	last_audit(s, "run", d, detail, sizeof(detail));
	assert_non_null(strstr(detail, "due 2026-05-04T10:00:00Z, cause schedule"));
	assert_non_null(strstr(detail, "next due never"));
	/* Done: later ticks leave it alone. */
	assert_int_equal(sched_tick(&f->srv, t + 1), 0);
	assert_int_equal(sched_tick(&f->srv, t + 86400), 0);
	assert_int_equal(runs_of(s, d), 1);
}

static void test_at_future_and_lateness(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t t = at("2026-05-04T10:00:00Z"), due;
	char cause[16];
	int64_t a = dep_add(s, "at", "at", NULL, t + 3600, 1);
	assert_int_equal(sched_tick(&f->srv, t), 0);
	assert_int_equal(sched_tick(&f->srv, t + 3599), 0);
	assert_int_equal(runs_of(s, a), 0);
	assert_int_equal(next_due(s, a), t + 3600);
	/*
	 * Late means more than two ticks (1 s each here) plus one second of
	 * rounding: at t + 7203, d1 is 3 s behind (on time), d2 4 s (late),
	 * and a, an hour behind, runs anyway, late.
	 */
	int64_t d1 = dep_add(s, "on time", "at", NULL, t + 7200, 1);
	int64_t d2 = dep_add(s, "just late", "at", NULL, t + 7199, 1);
	assert_int_equal(sched_tick(&f->srv, t + 7203), 3);
	last_run(s, d1, cause, sizeof(cause), &due);
	assert_string_equal(cause, "schedule");
	assert_int_equal(due, t + 7200);
	last_run(s, d2, cause, sizeof(cause), &due);
	assert_string_equal(cause, "late");
	assert_int_equal(due, t + 7199);
	last_run(s, a, cause, sizeof(cause), &due);
	assert_string_equal(cause, "late");
	assert_int_equal(due, t + 3600);
	assert_int_equal(next_due(s, a), -1);
	/* Longer ticks allow more. */
	f->srv.conf.tick_ms = 5000;
	int64_t d3 = dep_add(s, "slow ticks", "at", NULL, t + 9000, 1);
	assert_int_equal(sched_tick(&f->srv, t + 9011), 1);
	last_run(s, d3, cause, sizeof(cause), &due);
	assert_string_equal(cause, "schedule");
}

static void test_two_due_one_tick(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t t = at("2026-05-04T10:00:00Z");
	int64_t a = dep_add(s, "a", "at", NULL, t, 1);
	int64_t b = dep_add(s, "b", "now", NULL, t - 10, 1);
	int64_t c = dep_add(s, "c", "at", NULL, t + 1, 1);
	assert_int_equal(sched_tick(&f->srv, t), 2);
	assert_int_equal(runs_of(s, a), 1);
	assert_int_equal(runs_of(s, b), 1);
	assert_int_equal(runs_of(s, c), 0);
	assert_int_equal(next_due(s, c), t + 1);
}

static void test_disabled(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t t = at("2026-05-04T10:00:00Z");
	int64_t d = dep_add(s, "off", "now", NULL, t, 0);
	int64_t c = dep_add(s, "off cron", "cron", "* * * * *", t, 0);
	assert_int_equal(sched_tick(&f->srv, t + 100), 0);
	assert_int_equal(runs_of(s, d), 0);
	assert_int_equal(runs_of(s, c), 0);
	assert_int_equal(next_due(s, d), t);
	assert_int_equal(next_due(s, c), t);
	/* Enabled, it runs. */
	assert_int_equal(store_exec(s, "UPDATE deployments SET enabled = 1 WHERE id = ?", "i", d),
	                 1);
	assert_int_equal(sched_tick(&f->srv, t + 100), 1);
	assert_int_equal(runs_of(s, d), 1);
	assert_int_equal(runs_of(s, c), 0);
}

/* cron "30 2 * * *" in Paris across both changes of 2026. */
static void test_cron_dst(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t due;
	char cause[16];
	set_tz("Europe/Paris");
	int64_t first = at("2026-03-28T02:30:00+01:00");
	int64_t d = dep_add(s, "nightly", "cron", "30 2 * * *", first, 1);
	assert_int_equal(sched_tick(&f->srv, first), 1);
	/* 02:30 does not exist on 29 March: it runs at the jump, 03:00 CEST. */
	assert_int_equal(next_due(s, d), at("2026-03-29T03:00:00+02:00"));
	assert_int_equal(sched_tick(&f->srv, at("2026-03-29T03:00:00+02:00")), 1);
	last_run(s, d, cause, sizeof(cause), &due);
	assert_string_equal(cause, "schedule");
	assert_int_equal(due, at("2026-03-29T01:00:00Z"));
	assert_int_equal(next_due(s, d), at("2026-03-30T02:30:00+02:00"));
	/* Back in October: 02:30 happens twice; a fixed time runs at the first only. */
	int64_t oct = at("2026-10-25T02:30:00+02:00");
	assert_int_equal(
	    store_exec(s, "UPDATE deployments SET next_due = ? WHERE id = ?", "ii", oct, d), 1);
	assert_int_equal(sched_tick(&f->srv, oct), 1);
	assert_int_equal(next_due(s, d), at("2026-10-26T02:30:00+01:00"));
	/* The second 02:30 (CET) is not a due time. */
	assert_int_equal(sched_tick(&f->srv, at("2026-10-25T02:30:00+01:00")), 0);
	assert_int_equal(runs_of(s, d), 3);
	/* A wildcard schedule runs at both 02:30s. */
	int64_t w =
	    dep_add(s, "half past", "cron", "30 * * * *", at("2026-10-25T01:30:00+02:00"), 1);
	assert_int_equal(sched_tick(&f->srv, at("2026-10-25T01:30:00+02:00")), 1);
	assert_int_equal(next_due(s, w), at("2026-10-25T02:30:00+02:00"));
	assert_int_equal(sched_tick(&f->srv, at("2026-10-25T02:30:00+02:00")), 1);
	assert_int_equal(next_due(s, w), at("2026-10-25T02:30:00+01:00"));
	assert_int_equal(sched_tick(&f->srv, at("2026-10-25T02:30:00+01:00")), 1);
	assert_int_equal(next_due(s, w), at("2026-10-25T03:30:00+01:00"));
	set_tz("UTC");
}

static void test_catchup_within(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t h = at("2026-05-04T10:00:00Z"), due;
	char cause[16], detail[1024];
	/* Hourly; down from 09:59 to 12:30: 10:00, 11:00 and 12:00 were missed. */
	int64_t d = dep_add(s, "hourly", "cron", "0 * * * *", h, 1);
	assert_int_equal(sched_tick(&f->srv, h + 2 * 3600 + 1800), 1);
	assert_int_equal(runs_of(s, d), 1);
	last_run(s, d, cause, sizeof(cause), &due);
	assert_string_equal(cause, "late");
	assert_int_equal(due, h + 2 * 3600); /* the latest missed one */
	assert_int_equal(last_due(s, d), h + 2 * 3600);
	assert_int_equal(next_due(s, d), h + 3 * 3600);
	last_audit(s, "run", d, detail, sizeof(detail));
	assert_non_null(strstr(detail, "cause late; 2 earlier occurrence(s) missed"));
	last_audit(s, "skipped", d, detail, sizeof(detail));
	assert_string_equal(detail, "");
	/* Exactly [scheduler] catchup late still runs; a second more does not. */
	int64_t d6 = at("2026-05-10T06:00:00Z");
	int64_t e = dep_add(s, "edge", "cron", "0 6 * * *", d6, 1);
	sched_tick(&f->srv, d6 + 3600);
	assert_int_equal(runs_of(s, e), 1);
	last_run(s, e, cause, sizeof(cause), &due);
	assert_string_equal(cause, "late");
	assert_int_equal(due, d6);
	sched_tick(&f->srv, d6 + 86400 + 3601);
	assert_int_equal(runs_of(s, e), 1);
	assert_int_equal(next_due(s, e), d6 + 2 * 86400);
	last_audit(s, "skipped", e, detail, sizeof(detail));
	assert_non_null(
	    strstr(detail, "missed 1 occurrence(s), the latest due 2026-05-11T06:00:00Z"));
}

static void test_catchup_beyond(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t d6 = at("2026-05-04T06:00:00Z");
	char detail[1024];
	/* Daily at 06:00; down from the 4th 05:00 to the 6th 12:00. */
	int64_t d = dep_add(s, "daily", "cron", "0 6 * * *", d6, 1);
	int64_t one = dep_add(s, "one-shot", "at", NULL, d6, 1);
	assert_int_equal(sched_tick(&f->srv, d6 + 2 * 86400 + 6 * 3600), 1);
	assert_int_equal(runs_of(s, d), 0);
	assert_int_equal(next_due(s, d), d6 + 3 * 86400);
	assert_int_equal(last_due(s, d), -1);
	last_audit(s, "skipped", d, detail, sizeof(detail));
	assert_non_null(
	    strstr(detail, "missed 3 occurrence(s), the latest due 2026-05-06T06:00:00Z"));
	assert_non_null(strstr(detail, "next due 2026-05-07T06:00:00Z"));
	/* The one-shot runs anyway, late. */
	assert_int_equal(runs_of(s, one), 1);
	/*
	 * No catch-up at all: within two ticks is still on time, beyond that
	 * a recurring deployment skips.
	 */
	f->srv.conf.catchup_ms = 0;
	int64_t next = d6 + 3 * 86400;
	int64_t z = dep_add(s, "strict", "cron", "0 6 * * *", next, 1);
	assert_int_equal(sched_tick(&f->srv, next + 2), 2); /* d and z */
	assert_int_equal(runs_of(s, z), 1);
	assert_int_equal(sched_tick(&f->srv, next + 86400 + 60), 0);
	assert_int_equal(runs_of(s, z), 1);
	assert_int_equal(runs_of(s, d), 1);
	assert_int_equal(next_due(s, z), next + 2 * 86400);
}

static void test_long_downtime_every_minute(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t now = at("2026-05-04T10:00:30Z"), due;
	char cause[16];
	/* 200 days of every minute: more than SCHED_WALK_MAX to count. */
	int64_t d = dep_add(s, "busy", "cron", "* * * * *", now - 30 - 200 * 86400, 1);
	assert_int_equal(sched_tick(&f->srv, now), 1);
	last_run(s, d, cause, sizeof(cause), &due);
	assert_string_equal(cause, "late");
	assert_int_equal(due, now - 30);
	assert_int_equal(next_due(s, d), now + 30);
	/* Beyond the window, it is skipped, said to be "or more". */
	char detail[1024];
	f->srv.conf.catchup_ms = 10 * 1000;
	int64_t e = dep_add(s, "busy2", "cron", "* * * * *", now - 30 - 200 * 86400, 1);
	assert_int_equal(sched_tick(&f->srv, now), 0);
	assert_int_equal(runs_of(s, e), 0);
	assert_int_equal(next_due(s, e), now + 30);
	last_audit(s, "skipped", e, detail, sizeof(detail));
	assert_non_null(strstr(detail, "or more occurrence(s), the latest more than"));
}

/* A transaction that fails half-way leaves neither a run nor a moved due time. */
static void test_atomic(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t t = at("2026-05-04T10:00:00Z");
	int64_t d = dep_add(s, "atomic", "cron", "0 * * * *", t, 1);
	/* The audit insert, the last step, fails. */
	assert_true(store_exec(s,
	                       "CREATE TRIGGER no_audit BEFORE INSERT ON audit"
	                       " BEGIN SELECT RAISE(ABORT, 'no audit today'); END",
	                       NULL) >= 0);
	assert_int_equal(sched_tick(&f->srv, t), 0);
	assert_int_equal(runs_of(s, d), 0);
	assert_int_equal(next_due(s, d), t);
	assert_int_equal(last_due(s, d), -1);
	assert_true(store_exec(s, "DROP TRIGGER no_audit", NULL) >= 0);
	/* The next tick does it, once. */
	assert_int_equal(sched_tick(&f->srv, t + 1), 1);
	assert_int_equal(sched_tick(&f->srv, t + 2), 0);
	assert_int_equal(runs_of(s, d), 1);
	assert_int_equal(next_due(s, d), t + 3600);
}

/* A scheduled run for the due time exists already: the store refuses a second. */
static void test_no_duplicate(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t t = at("2026-05-04T10:00:00Z");
	int64_t d = dep_add(s, "dup", "cron", "0 * * * *", t, 1);
	assert_int_equal(store_exec(s,
	                            "INSERT INTO runs (deployment_id, version_id, state, cause,"
	                            " due_at, created_at) VALUES (?, 1, 'done', 'schedule', ?, ?)",
	                            "iii", d, t, t),
	                 1);
	/* A manual run at the same time is no obstacle, and is not one. */
	assert_int_equal(store_exec(s,
	                            "INSERT INTO runs (deployment_id, version_id, state, cause,"
	                            " due_at, created_at) VALUES (?, 1, 'pending', 'manual', ?, ?)",
	                            "iii", d, t, t),
	                 1);
	assert_int_equal(sched_tick(&f->srv, t), 0);
	assert_int_equal(runs_of(s, d), 2);
	assert_int_equal(next_due(s, d), t + 3600);
	assert_int_equal(last_due(s, d), t);
	assert_int_equal(sched_tick(&f->srv, t + 3600), 1);
	assert_int_equal(runs_of(s, d), 3);
}

/* A restart between ticks, and one during an open transaction. */
static void test_restart(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t t = at("2026-05-04T10:00:00Z");
	int64_t d = dep_add(s, "restart", "cron", "0 * * * *", t, 1);
	int64_t o = dep_add(s, "once", "now", NULL, t, 1);
	assert_int_equal(sched_tick(&f->srv, t), 2);
	store_close(f->srv.store);
	fx_open(f);
	s = f->srv.store;
	/* The same instant again after the restart: nothing new. */
	assert_int_equal(sched_tick(&f->srv, t), 0);
	assert_int_equal(next_due(s, d), t + 3600);
	/*
	 * A crash in the middle of a transaction: a run written but never
	 * committed is gone after the restart, and the tick makes exactly one.
	 */
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(
	    store_exec(s,
	               "INSERT INTO runs (deployment_id, version_id, state, cause,"
	               " due_at, created_at) VALUES (?, 1, 'pending', 'schedule', ?, ?)",
	               "iii", d, t + 3600, t + 3600),
	    1);
	store_unlock(s); /* what a crash leaves: an open transaction, never committed */
	store_close(s);
	fx_open(f);
	s = f->srv.store;
	assert_int_equal(runs_of(s, d), 1);
	assert_int_equal(sched_tick(&f->srv, t + 3600), 1);
	assert_int_equal(sched_tick(&f->srv, t + 3601), 0);
	assert_int_equal(runs_of(s, d), 2);
	assert_int_equal(runs_of(s, o), 1);
}

/* The thread: a kick after a change makes the run without waiting for a tick. */
static void test_thread(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	char err[256];
	f->srv.conf.tick_ms = 60000; /* only a kick can be quick */
	/* Due before the start: the first tick, at start, handles it. */
	int64_t a = dep_add(s, "early", "now", NULL, store_now() - 5, 1);
	assert_int_equal(sched_start(&f->srv, err, sizeof(err)), 0);
	assert_non_null(f->srv.sched);
	for (int i = 0; i < 500 && runs_of(s, a) == 0; i++)
		usleep(10000);
	assert_int_equal(runs_of(s, a), 1);
	int64_t d = dep_add(s, "kicked", "now", NULL, store_now(), 1);
	sched_kick(&f->srv);
	for (int i = 0; i < 500 && runs_of(s, d) == 0; i++)
		usleep(10000);
	assert_int_equal(runs_of(s, d), 1);
	sched_stop(&f->srv);
	assert_null(f->srv.sched);
	sched_stop(&f->srv); /* twice is fine */
	sched_kick(&f->srv); /* and a kick without a scheduler does nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_now, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_at_future_and_lateness, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_due_one_tick, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cron_dst, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_catchup_within, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_catchup_beyond, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_downtime_every_minute, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_atomic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_duplicate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thread, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

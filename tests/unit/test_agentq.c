/*
 * Unit tests for src/server/agentq.c on an in-memory store: pushing
 * commands and taking them (order, queued -> sent, expiry), the long poll's
 * parking with a fake front end (a push wakes a parked poll quickly, an
 * idle one is woken when its wait ends, a newer poll replaces an older one
 * which answers empty, a stop wakes every poll), cancel_run, and presence.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agentq.h"
#include "auth.h"
#include "mtime.h"
#include "req.h"
#include "server.h"
#include "store.h"

/* A fake front end: counts wakes and notes when the first came. */
struct fake {
	pthread_mutex_t mu;
	int wakes;
	uint64_t woken_at;
};

static void fake_wake(void *park)
{
	struct fake *f = park;
	pthread_mutex_lock(&f->mu);
	if (!f->wakes)
		f->woken_at = mtime_ms();
	f->wakes++;
	pthread_mutex_unlock(&f->mu);
}

static int fake_wakes(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	int n = f->wakes;
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* Waits up to ms for a wake; returns the count. */
static int fake_wait(struct fake *f, int ms)
{
	for (int i = 0; i < ms && fake_wakes(f) == 0; i++) {
		struct timespec ts = {0, 1000000L};
		nanosleep(&ts, NULL);
	}
	return fake_wakes(f);
}

static void setup_srv(struct srv *srv)
{
	char err[256] = "";
	memset(srv, 0, sizeof(*srv));
	srvconf_defaults(&srv->conf);
	assert_int_equal(store_open_sqlite(":memory:", &srv->store, err, sizeof(err)), 0);
	assert_int_equal(store_exec(srv->store,
	                            "INSERT INTO machines (name, created_at, updated_at)"
	                            " VALUES ('a', 0, 0), ('b', 0, 0)",
	                            NULL),
	                 2);
	assert_int_equal(agentq_start(srv, err, sizeof(err)), 0);
}

static void teardown_srv(struct srv *srv)
{
	agentq_stop(srv);
	assert_null(srv->agentq);
	store_close(srv->store);
	srvconf_free(&srv->conf);
}

static void init_req(struct req *r, struct srv *srv, struct fake *f)
{
	memset(r, 0, sizeof(*r));
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	r->srv = srv;
	r->park = f;
	r->wake = fake_wake;
}

static void test_push_take(void **state)
{
	(void)state;
	struct srv srv;
	setup_srv(&srv);
	int64_t id1, id2, id3;
	json_t *args = json_pack("{s:i}", "image_id", 3);
	assert_int_equal(agentq_push(&srv, 1, 0, "rollback", args, 0, &id1), 0);
	assert_int_equal(agentq_push(&srv, 1, 0, "wol", args, 0, &id2), 0);
	assert_int_equal(agentq_push(&srv, 2, 0, "wol", args, 0, &id3), 0);
	json_decref(args);
	/* A queued command past its expiry is never sent. */
	assert_int_equal(store_exec(srv.store,
	                            "UPDATE agent_commands SET expires_at = 1 WHERE id = ?", "i",
	                            id2),
	                 1);
	json_t *cmds = agentq_take(&srv, 1, NULL);
	assert_non_null(cmds);
	assert_int_equal(json_array_size(cmds), 1);
	json_t *c = json_array_get(cmds, 0);
	assert_int_equal(json_integer_value(json_object_get(c, "id")), id1);
	assert_string_equal(json_string_value(json_object_get(c, "kind")), "rollback");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(c, "args"), "image_id")), 3);
	assert_true(json_is_null(json_object_get(c, "run_id")));
	json_decref(cmds);
	int64_t n = 0;
	assert_int_equal(store_int(srv.store, &n,
	                           "SELECT COUNT(*) FROM agent_commands WHERE state = 'sent'"
	                           " AND sent_at IS NOT NULL",
	                           NULL),
	                 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_int(srv.store, &n,
	                           "SELECT COUNT(*) FROM agent_commands WHERE state = 'expired'",
	                           NULL),
	                 0);
	assert_int_equal(n, 1);
	/* Sent commands come again (a restarted agent). */
	cmds = agentq_take(&srv, 1, NULL);
	assert_int_equal(json_array_size(cmds), 1);
	json_decref(cmds);
	teardown_srv(&srv);
}

static void test_poll_wake(void **state)
{
	(void)state;
	struct srv srv;
	struct req r;
	struct fake f;
	json_t *out = NULL;
	int64_t id;
	setup_srv(&srv);
	init_req(&r, &srv, &f);
	/* Nothing queued: the poll parks and the machine is online meanwhile. */
	assert_false(agentq_online(&srv, 1));
	assert_int_equal(agentq_poll(&r, 1, 10000, false, &out), 1);
	assert_true(r.suspend);
	assert_null(out);
	assert_int_equal(agentq_waiting(&srv), 1);
	assert_true(agentq_online(&srv, 1));
	assert_false(agentq_online(&srv, 2));
	/* A push for another machine does not wake it; one for this machine does, at once. */
	json_t *args = json_object();
	assert_int_equal(agentq_push(&srv, 2, 0, "wol", args, 0, &id), 0);
	assert_int_equal(fake_wakes(&f), 0);
	uint64_t t0 = mtime_ms();
	assert_int_equal(agentq_push(&srv, 1, 0, "wol", args, 0, &id), 0);
	assert_int_equal(fake_wait(&f, 100), 1);
	assert_true(f.woken_at - t0 < 100);
	/* The re-run answers with the command and the waiter is gone. */
	r.resumes = 1;
	r.suspend = false;
	assert_int_equal(agentq_poll(&r, 1, 10000, false, &out), 0);
	assert_int_equal(json_array_size(out), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(out, 0), "id")), id);
	json_decref(out);
	assert_int_equal(agentq_waiting(&srv), 0);
	assert_null(r.on_end);
	/*
	 * With a command unfinished but nothing new, a new poll parks (no
	 * answer back to back to a busy agent)...
	 */
	struct req r2;
	struct fake f2;
	init_req(&r2, &srv, &f2);
	assert_int_equal(agentq_poll(&r2, 1, 10000, false, &out), 1);
	assert_true(r2.suspend);
	assert_null(out);
	/* ... and answers with it when its wait ends. */
	r2.resumes = 1;
	r2.suspend = false;
	assert_int_equal(agentq_poll(&r2, 1, 10000, false, &out), 0);
	assert_int_equal(json_array_size(out), 1);
	json_decref(out);
	/* The first poll after a start (all) answers at once with it. */
	struct req r3;
	struct fake f3;
	init_req(&r3, &srv, &f3);
	assert_int_equal(agentq_poll(&r3, 1, 10000, true, &out), 0);
	assert_false(r3.suspend);
	assert_int_equal(json_array_size(out), 1);
	json_decref(out);
	assert_int_equal(agentq_waiting(&srv), 0);
	json_decref(args);
	teardown_srv(&srv);
}

static void test_poll_timeout_replace_stop(void **state)
{
	(void)state;
	struct srv srv;
	struct req r1, r2, r3;
	struct fake f1, f2, f3;
	json_t *out = NULL;
	setup_srv(&srv);
	/* An idle poll is woken when its wait ends, and answers empty. */
	init_req(&r1, &srv, &f1);
	uint64_t t0 = mtime_ms();
	assert_int_equal(agentq_poll(&r1, 2, 300, false, &out), 1);
	assert_int_equal(fake_wait(&f1, 2000), 1);
	assert_true(f1.woken_at - t0 >= 290);
	assert_true(f1.woken_at - t0 < 1500);
	r1.resumes = 1;
	assert_int_equal(agentq_poll(&r1, 2, 300, false, &out), 0);
	assert_int_equal(json_array_size(out), 0);
	json_decref(out);
	/* A second poll of the machine replaces the first, which answers empty. */
	init_req(&r1, &srv, &f1);
	init_req(&r2, &srv, &f2);
	assert_int_equal(agentq_poll(&r1, 1, 10000, false, &out), 1);
	assert_int_equal(agentq_poll(&r2, 1, 10000, false, &out), 1);
	assert_int_equal(fake_wakes(&f1), 1);
	assert_int_equal(fake_wakes(&f2), 0);
	int64_t id;
	json_t *args = json_object();
	assert_int_equal(agentq_push(&srv, 1, 0, "wol", args, 0, &id), 0);
	json_decref(args);
	r1.resumes = 1;
	assert_int_equal(agentq_poll(&r1, 1, 10000, false, &out), 0);
	assert_int_equal(json_array_size(out), 0);
	json_decref(out);
	assert_int_equal(fake_wakes(&f2), 1);
	r2.resumes = 1;
	assert_int_equal(agentq_poll(&r2, 1, 10000, false, &out), 0);
	assert_int_equal(json_array_size(out), 1);
	json_decref(out);
	/* A request that ends while parked (client gone) leaves no waiter behind. */
	init_req(&r3, &srv, &f3);
	assert_int_equal(agentq_poll(&r3, 2, 10000, false, &out), 1);
	assert_non_null(r3.on_end);
	r3.on_end(&r3);
	assert_int_equal(agentq_waiting(&srv), 0);
	/* A stop wakes every waiting poll. */
	init_req(&r3, &srv, &f3);
	assert_int_equal(agentq_poll(&r3, 2, 10000, false, &out), 1);
	agentq_stop(&srv);
	assert_int_equal(fake_wakes(&f3), 1);
	assert_null(r3.on_end);
	/* Without a registry polls answer at once. */
	r3.resumes = 0;
	assert_int_equal(agentq_poll(&r3, 2, 10000, false, &out), 0);
	json_decref(out);
	store_close(srv.store);
	srvconf_free(&srv.conf);
}

static void test_cancel_run(void **state)
{
	(void)state;
	struct srv srv;
	int64_t run, q1, s1, s2, other, n;
	setup_srv(&srv);
	static const char *const rows[] = {
	    "INSERT INTO images (name, created_at, updated_at) VALUES ('img', 0, 0)",
	    "INSERT INTO image_versions (image_id, number, state, created_at)"
	    " VALUES (1, 1, 'ready', 0)",
	    "INSERT INTO runs (version_id, state, cause, due_at, created_at)"
	    " VALUES (1, 'running', 'manual', 0, 0), (1, 'running', 'manual', 0, 0)",
	};
	for (size_t i = 0; i < 3; i++)
		assert_true(store_exec(srv.store, rows[i], NULL) >= 1);
	run = 1;
	json_t *args = json_pack("{s:i}", "version_id", 1);
	assert_int_equal(agentq_push(&srv, 1, run, "receive", args, 0, &q1), 0);
	assert_int_equal(agentq_push(&srv, 1, run, "receive", args, 0, &s1), 0);
	assert_int_equal(agentq_push(&srv, 2, run, "receive", args, 0, &s2), 0);
	assert_int_equal(agentq_push(&srv, 2, 2, "receive", args, 0, &other), 0);
	json_decref(args);
	store_exec(srv.store, "UPDATE agent_commands SET state = 'sent' WHERE id = ?", "i", s1);
	store_exec(srv.store, "UPDATE agent_commands SET state = 'running' WHERE id = ?", "i", s2);
	/* Only machine 2 first: its running command gets a cancel command. */
	assert_int_equal(agentq_cancel_run(&srv, run, 2), 1);
	assert_int_equal(store_int(srv.store, &n,
	                           "SELECT COUNT(*) FROM agent_commands WHERE kind = 'cancel'"
	                           " AND machine_id = 2 AND state = 'queued'",
	                           NULL),
	                 0);
	assert_int_equal(n, 1);
	/* Then the whole run: q1 is cancelled at once, s1 gets a cancel, s2 no second one. */
	assert_int_equal(agentq_cancel_run(&srv, run, 0), 3);
	char st[16] = "";
	struct store_q *q =
	    store_query(srv.store, "SELECT state FROM agent_commands WHERE id = ?", "i", q1);
	assert_int_equal(store_next(q), 1);
	snprintf(st, sizeof(st), "%s", store_col_text(q, 0));
	store_done(q);
	assert_string_equal(st, "cancelled");
	assert_int_equal(store_int(srv.store, &n,
	                           "SELECT COUNT(*) FROM agent_commands WHERE kind = 'cancel'",
	                           NULL),
	                 0);
	assert_int_equal(n, 2);
	/* The other run's command is untouched. */
	assert_int_equal(store_int(srv.store, &n,
	                           "SELECT COUNT(*) FROM agent_commands WHERE id = ? AND"
	                           " state = 'queued'",
	                           "i", other),
	                 0);
	assert_int_equal(n, 1);
	teardown_srv(&srv);
}

static void test_online_touch(void **state)
{
	(void)state;
	struct srv srv;
	int64_t seen = 0, cred;
	setup_srv(&srv);
	assert_int_equal(store_insert(srv.store, &cred,
	                              "INSERT INTO agent_credentials (machine_id, hash, created_at)"
	                              " VALUES (1, 'h', 0) RETURNING id",
	                              NULL),
	                 0);
	assert_false(agentq_online(&srv, 1));
	assert_int_equal(agentq_touch(&srv, 1, cred, "10.0.0.1", false), 0);
	assert_true(agentq_online(&srv, 1));
	/* Seen long ago: offline. Throttled touches do not write again at once. */
	store_exec(srv.store, "UPDATE machines SET last_seen_at = 1", NULL);
	store_exec(srv.store, "UPDATE agent_credentials SET last_seen_at = 1", NULL);
	assert_false(agentq_online(&srv, 1));
	assert_int_equal(agentq_touch(&srv, 1, cred, "10.0.0.1", false), 0);
	assert_int_equal(
	    store_int(srv.store, &seen, "SELECT last_seen_at FROM machines WHERE id = 1", NULL), 0);
	assert_int_equal(seen, 1);
	/* A hello forces the write. */
	assert_int_equal(agentq_touch(&srv, 1, cred, "10.0.0.1", true), 0);
	assert_true(agentq_online(&srv, 1));
	/* A revoked credential's last sight does not count; the machine's does. */
	teardown_srv(&srv);
}

static void test_secrets(void **state)
{
	(void)state;
	char s[AUTH_SECRET_LEN + 1], h[65];
	assert_int_equal(auth_secret_new("mla_", s, h), 0);
	assert_true(auth_secret_wellformed(s, "mla_"));
	assert_false(auth_secret_wellformed(s, "mle_"));
	assert_int_equal(strlen(h), 64);
	s[10] = 'G';
	assert_false(auth_secret_wellformed(s, "mla_"));
	assert_false(auth_secret_wellformed("mla_00", "mla_"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_push_take),
	    cmocka_unit_test(test_poll_wake),
	    cmocka_unit_test(test_poll_timeout_replace_stop),
	    cmocka_unit_test(test_cancel_run),
	    cmocka_unit_test(test_online_touch),
	    cmocka_unit_test(test_secrets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for the deployment runner (src/server/runner.c, run_exec.c)
 * on a real SQLite store and library in a temporary directory, without a
 * network: the runner's thread is started and stopped for real, and the
 * runs it executes have no agent online, so they end without a session.
 *
 *  - recovery: a run a previous process left running ends failed, its
 *    unfinished machines failed, its done machine kept, its agents'
 *    commands cancelled (queued ones at once, sent ones by a cancel
 *    command), and its report's outcome recorded;
 *  - targets that match no machine;
 *  - a machine without an agent: missing after the deployment's wait,
 *    the run failed with the count, the mail "not configured";
 *  - a version that is not ready;
 *  - cancelling a run while it waits for agents;
 *  - [runner] enabled = no leaves runs pending.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agentq.h"
#include "fileio.h"
#include "library.h"
#include "runner.h"
#include "server.h"
#include "store.h"

struct fixture {
	struct srv srv;
	char dir[64], data[96], err[512];
};

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	assert_non_null(*dst);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char db[192];
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_runner.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	assert_int_equal(mkdir(f->data, 0750), 0);
	srvconf_defaults(&f->srv.conf);
	set_str(&f->srv.conf.data_dir, f->data);
	f->srv.conf.runner_ready_ms = 1000;
	f->srv.conf.runner_finish_ms = 1000;
	snprintf(db, sizeof(db), "%s/mlserver.db", f->data);
	assert_int_equal(store_open_sqlite(db, &f->srv.store, f->err, sizeof(f->err)), 0);
	if (library_open(&f->srv, &f->srv.lib, f->err, sizeof(f->err)) < 0)
		fail_msg("library_open: %s", f->err);
	assert_int_equal(agentq_start(&f->srv, f->err, sizeof(f->err)), 0);
	struct store *s = f->srv.store;
	assert_int_equal(store_exec(s,
	                            "INSERT INTO images (name, created_at, updated_at)"
	                            " VALUES ('win11', 1, 1)",
	                            NULL),
	                 1);
	/* Version 1 is ready, with a manifest file; version 2 failed. */
	assert_int_equal(
	    store_exec(s,
	               "INSERT INTO image_versions (image_id, number, state, sha256,"
	               " size, created_at) VALUES (1, 1, 'ready', ?, 1048576, 1),"
	               " (1, 2, 'failed', NULL, NULL, 1)",
	               "t", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
	    2);
	char vdir[512], mf[600];
	assert_int_equal(library_version_dir(f->srv.lib, 1, vdir, sizeof(vdir)), 0);
	assert_int_equal(mkdir(vdir, 0750), 0);
	snprintf(mf, sizeof(mf), "%s/manifest", vdir);
	assert_int_equal(fio_write_file_atomic(mf, "not parsed here", 15, 0640), 0);
	assert_int_equal(store_exec(s,
	                            "INSERT INTO machines (name, created_at, updated_at)"
	                            " VALUES ('pc1', 1, 1), ('pc2', 1, 1), ('pc3', 1, 1)",
	                            NULL),
	                 3);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	runner_stop(&f->srv);
	agentq_stop(&f->srv);
	library_free(f->srv.lib);
	store_close(f->srv.store);
	srvconf_free(&f->srv.conf);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* A deployment of version (wait_s seconds for agents) targeting machine (0: criterion 1). */
static int64_t dep_add(struct fixture *f, int64_t version, int64_t machine, int64_t wait_s)
{
	struct store *s = f->srv.store;
	int64_t id = 0;
	assert_int_equal(
	    store_insert(s, &id,
	                 "INSERT INTO deployments (name, version_id, schedule_kind,"
	                 " wait_s, wake, created_at, updated_at)"
	                 " VALUES ('d' || (SELECT COUNT(*) FROM deployments), ?, 'now',"
	                 " ?, 0, 1, 1) RETURNING id",
	                 "ii", version, wait_s),
	    0);
	if (machine)
		assert_int_equal(
		    store_exec(s,
		               "INSERT INTO deployment_targets (deployment_id, machine_id)"
		               " VALUES (?, ?)",
		               "ii", id, machine),
		    1);
	else {
		assert_int_equal(store_exec(s,
		                            "INSERT OR IGNORE INTO criteria (id, name, room,"
		                            " created_at, updated_at) VALUES (1, 'none',"
		                            " 'no such room', 1, 1)",
		                            NULL) >= 0,
		                 1);
		assert_int_equal(store_exec(s,
		                            "INSERT INTO deployment_targets (deployment_id,"
		                            " criterion_id) VALUES (?, 1)",
		                            "i", id),
		                 1);
	}
	return id;
}

static int64_t run_add(struct fixture *f, int64_t dep, int64_t version, const char *state)
{
	int64_t id = 0;
	assert_int_equal(
	    store_insert(f->srv.store, &id,
	                 "INSERT INTO runs (deployment_id, deployment_name, version_id,"
	                 " state, cause, due_at, created_at) VALUES (?, 'dep', ?, ?,"
	                 " 'manual', 1, 1) RETURNING id",
	                 "iit", dep, version, state),
	    0);
	return id;
}

/* The run's column as text into buf. */
static const char *run_col(struct fixture *f, int64_t run, const char *col, char *buf, size_t n)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT %s FROM runs WHERE id = ?", col);
	struct store_q *q = store_query(f->srv.store, sql, "i", run);
	assert_non_null(q);
	assert_int_equal(store_next(q), 1);
	snprintf(buf, n, "%s", store_col_text(q, 0));
	store_done(q);
	return buf;
}

/*
 * Waits up to secs for the run to end: its state final and its report
 * done (the state is written first, then the mail's outcome, then the
 * phase is cleared).
 */
static void run_wait(struct fixture *f, int64_t run, int secs)
{
	char st[32], ph[32];
	for (int i = 0; i < secs * 20; i++) {
		run_col(f, run, "state", st, sizeof(st));
		run_col(f, run, "phase", ph, sizeof(ph));
		if (strcmp(st, "pending") != 0 && strcmp(st, "running") != 0 && !*ph)
			return;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	fail_msg("run %lld still %s after %d s", (long long)run, st, secs);
}

static const char *target_col(struct fixture *f, int64_t run, const char *machine, const char *col,
                              char *buf, size_t n)
{
	char sql[160];
	snprintf(sql, sizeof(sql),
	         "SELECT %s FROM run_targets WHERE run_id = ? AND machine_name = ?", col);
	struct store_q *q = store_query(f->srv.store, sql, "it", run, machine);
	assert_non_null(q);
	assert_int_equal(store_next(q), 1);
	snprintf(buf, n, "%s", store_col_text(q, 0));
	store_done(q);
	return buf;
}

static void start(struct fixture *f)
{
	if (runner_start(&f->srv, f->err, sizeof(f->err)) < 0)
		fail_msg("runner_start: %s", f->err);
}

static void test_recovery(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	char b[256];
	int64_t dep = dep_add(f, 1, 1, 1);
	int64_t run = run_add(f, dep, 1, "running");
	assert_int_equal(store_exec(s,
	                            "INSERT INTO run_targets (run_id, machine_id, machine_name,"
	                            " state) VALUES (?, 1, 'pc1', 'receiving'), (?, 2, 'pc2',"
	                            " 'done'), (?, 3, 'pc3', 'waiting')",
	                            "iii", run, run, run),
	                 3);
	assert_int_equal(store_exec(s,
	                            "INSERT INTO agent_commands (machine_id, run_id, kind, args,"
	                            " state, created_at, updated_at) VALUES (1, ?, 'receive', '{}',"
	                            " 'running', 1, 1), (3, ?, 'receive', '{}', 'queued', 1, 1)",
	                            "ii", run, run),
	                 2);
	start(f);
	run_wait(f, run, 10);
	assert_string_equal(run_col(f, run, "state", b, sizeof(b)), "failed");
	assert_string_equal(run_col(f, run, "error", b, sizeof(b)),
	                    "mlserver stopped during the run");
	assert_string_equal(run_col(f, run, "mail", b, sizeof(b)), "no recipients");
	assert_string_equal(target_col(f, run, "pc1", "state", b, sizeof(b)), "failed");
	assert_string_equal(target_col(f, run, "pc1", "reason", b, sizeof(b)),
	                    "mlserver stopped during the run");
	assert_string_equal(target_col(f, run, "pc2", "state", b, sizeof(b)), "done");
	assert_string_equal(target_col(f, run, "pc3", "state", b, sizeof(b)), "failed");
	int64_t n = -1;
	assert_int_equal(store_int(s, &n,
	                           "SELECT COUNT(*) FROM agent_commands WHERE machine_id = 3 AND"
	                           " state = 'cancelled'",
	                           NULL),
	                 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_int(s, &n,
	                           "SELECT COUNT(*) FROM agent_commands WHERE machine_id = 1 AND"
	                           " kind = 'cancel'",
	                           NULL),
	                 0);
	assert_int_equal(n, 1);
	/* With recipients but no [mail] url, the report says so. */
	int64_t run2 = run_add(f, dep, 1, "running");
	assert_int_equal(store_exec(s,
	                            "INSERT INTO deployment_recipients (deployment_id, email)"
	                            " VALUES (?, 'it@example.edu')",
	                            "i", dep),
	                 1);
	runner_stop(&f->srv);
	start(f);
	run_wait(f, run2, 10);
	assert_string_equal(run_col(f, run2, "mail", b, sizeof(b)),
	                    "not configured ([mail] url is empty)");
}

static void test_no_targets(void **state)
{
	struct fixture *f = *state;
	char b[256];
	int64_t run = run_add(f, dep_add(f, 1, 0, 1), 1, "pending");
	start(f);
	run_wait(f, run, 10);
	assert_string_equal(run_col(f, run, "state", b, sizeof(b)), "failed");
	assert_string_equal(run_col(f, run, "error", b, sizeof(b)),
	                    "the deployment's targets match no machine");
}

static void test_missing(void **state)
{
	struct fixture *f = *state;
	char b[256];
	int64_t run = run_add(f, dep_add(f, 1, 2, 1), 1, "pending");
	start(f);
	runner_kick(&f->srv);
	run_wait(f, run, 15);
	assert_string_equal(run_col(f, run, "state", b, sizeof(b)), "failed");
	assert_string_equal(run_col(f, run, "error", b, sizeof(b)),
	                    "1 of 1 machines did not get the version (1 missing, 0 failed)");
	assert_string_equal(target_col(f, run, "pc2", "state", b, sizeof(b)), "missing");
	assert_string_equal(target_col(f, run, "pc2", "reason", b, sizeof(b)),
	                    "its agent did not show up within 1s");
	assert_string_equal(run_col(f, run, "mail", b, sizeof(b)), "no recipients");
	int64_t ok = 0;
	assert_int_equal(store_int(f->srv.store, &ok,
	                           "SELECT finished_at >= started_at FROM runs WHERE id = ?", "i",
	                           run),
	                 0);
	assert_int_equal(ok, 1);
}

static void test_not_ready(void **state)
{
	struct fixture *f = *state;
	char b[256];
	int64_t run = run_add(f, dep_add(f, 1, 1, 1), 2, "pending");
	start(f);
	run_wait(f, run, 10);
	assert_string_equal(run_col(f, run, "state", b, sizeof(b)), "failed");
	assert_string_equal(run_col(f, run, "error", b, sizeof(b)),
	                    "version 2 of image win11 is not ready");
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	char b[256];
	int64_t run = run_add(f, dep_add(f, 1, 3, 60), 1, "pending");
	start(f);
	for (int i = 0; i < 100; i++) {
		run_col(f, run, "phase", b, sizeof(b));
		if (strcmp(b, "waiting") == 0)
			break;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	assert_string_equal(b, "waiting");
	assert_false(runner_cancel(&f->srv, run + 1000));
	assert_true(runner_cancel(&f->srv, run));
	run_wait(f, run, 5);
	assert_string_equal(run_col(f, run, "state", b, sizeof(b)), "cancelled");
	assert_string_equal(target_col(f, run, "pc3", "state", b, sizeof(b)), "cancelled");
	assert_int_equal(runner_rate(&f->srv, run), 0);
}

static void test_disabled(void **state)
{
	struct fixture *f = *state;
	char b[256];
	f->srv.conf.runner_enabled = 0;
	int64_t run = run_add(f, dep_add(f, 1, 1, 1), 1, "pending");
	start(f);
	runner_kick(&f->srv);
	sleep(2);
	assert_string_equal(run_col(f, run, "state", b, sizeof(b)), "pending");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_targets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_ready, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

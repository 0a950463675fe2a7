/* Unit tests for pool.c: bounds, FIFO order, many jobs, drain, free with work queued, shutdown. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "pool.h"

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

/* Atomics live in a struct so that a plain pointer to it can travel as a job argument. */
struct counter {
	_Atomic unsigned long n;
};

static void count_job(void *arg)
{
	struct counter *c = arg;

	atomic_fetch_add(&c->n, 1);
}

static void test_bounds(void **state)
{
	struct pool *p;

	(void)state;
	errno = 0;
	assert_null(pool_new(0));
	assert_int_equal(errno, EINVAL);
	assert_null(pool_new(65));
	assert_null(pool_new(100000));
	p = pool_new(64);
	assert_non_null(p);
	pool_free(p);
	p = pool_new(1);
	assert_non_null(p);
	assert_int_equal(pool_pending(p), 0);
	pool_drain(p); /* nothing queued: returns at once */
	pool_free(p);
	pool_free(NULL);
}

struct order {
	pthread_mutex_t mu;
	int seen[1000];
	int n;
};

struct order_job {
	struct order *o;
	int i;
};

static void order_fn(void *arg)
{
	struct order_job *j = arg;

	pthread_mutex_lock(&j->o->mu);
	j->o->seen[j->o->n++] = j->i;
	pthread_mutex_unlock(&j->o->mu);
}

/* With one worker, jobs run exactly in submission order. */
static void test_fifo(void **state)
{
	static struct order o = {.mu = PTHREAD_MUTEX_INITIALIZER};
	static struct order_job jobs[1000];
	struct pool *p = pool_new(1);

	(void)state;
	assert_non_null(p);
	for (int i = 0; i < 1000; i++) {
		jobs[i].o = &o;
		jobs[i].i = i;
		assert_int_equal(pool_submit(p, order_fn, &jobs[i]), 0);
	}
	pool_drain(p);
	assert_int_equal(o.n, 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(o.seen[i], i);
	pool_free(p);
}

static void test_many_jobs(void **state)
{
	struct counter n = {0};
	struct pool *p = pool_new(8);

	(void)state;
	assert_non_null(p);
	for (int round = 1; round <= 3; round++) {
		for (int i = 0; i < 50000; i++)
			assert_int_equal(pool_submit(p, count_job, &n), 0);
		pool_drain(p);
		assert_int_equal(atomic_load(&n.n), 50000UL * (unsigned long)round);
		assert_int_equal(pool_pending(p), 0);
	}
	pool_free(p);
}

/* pool_free() runs what is still queued before it returns. */
static void slow_count(void *arg)
{
	sleep_us(200);
	count_job(arg);
}

static void test_free_runs_queue(void **state)
{
	struct counter n = {0};
	struct pool *p = pool_new(4);

	(void)state;
	assert_non_null(p);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(pool_submit(p, slow_count, &n), 0);
	assert_true(pool_pending(p) > 0);
	pool_free(p);
	assert_int_equal(atomic_load(&n.n), 2000);
}

/* A gate that jobs wait on, to hold the pool busy while the test looks. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	int entered;
};

static void gate_job(void *arg)
{
	struct gate *g = arg;

	pthread_mutex_lock(&g->mu);
	g->entered++;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void wait_entered(struct gate *g, int n)
{
	pthread_mutex_lock(&g->mu);
	while (g->entered < n)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void open_gate(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void test_pending(void **state)
{
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0};
	struct counter n = {0};
	struct pool *p = pool_new(2);

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_submit(p, gate_job, &g), 0);
	assert_int_equal(pool_submit(p, gate_job, &g), 0);
	wait_entered(&g, 2);
	/* Both workers are busy: the rest stays queued and counts as pending. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(pool_submit(p, count_job, &n), 0);
	assert_int_equal(pool_pending(p), 7);
	assert_int_equal(atomic_load(&n.n), 0);
	open_gate(&g);
	pool_drain(p);
	assert_int_equal(pool_pending(p), 0);
	assert_int_equal(atomic_load(&n.n), 5);
	pool_free(p);
}

/* Jobs that queue more jobs: drain waits for the whole tree. */
struct tree {
	struct pool *p;
	_Atomic unsigned long ran;
};

static void tree_job(void *arg);

static struct tree_node {
	struct tree *t;
	int depth;
} nodes[1 << 12];
static _Atomic int next_node;

static void tree_job(void *arg)
{
	struct tree_node *me = arg;

	atomic_fetch_add(&me->t->ran, 1);
	if (me->depth == 0)
		return;
	for (int i = 0; i < 2; i++) {
		struct tree_node *c = &nodes[atomic_fetch_add(&next_node, 1)];

		c->t = me->t;
		c->depth = me->depth - 1;
		if (pool_submit(me->t->p, tree_job, c) != 0)
			return;
	}
}

static void test_drain_recursive(void **state)
{
	struct tree t = {pool_new(3), 0};

	(void)state;
	assert_non_null(t.p);
	next_node = 1;
	nodes[0].t = &t;
	nodes[0].depth = 10;
	assert_int_equal(pool_submit(t.p, tree_job, &nodes[0]), 0);
	pool_drain(t.p);
	assert_int_equal(atomic_load(&t.ran), (1UL << 11) - 1);
	pool_free(t.p);
}

/* A job still submitting while pool_free() runs gets -ESHUTDOWN. */
struct shut {
	struct pool *p;
	struct gate started;
	_Atomic int first_rc;
	_Atomic int rc;
	struct counter extra;
};

static void shut_job(void *arg)
{
	struct shut *s = arg;
	int rc = 0;

	/* Queued before pool_free() starts: this one must run. */
	atomic_store(&s->first_rc, pool_submit(s->p, count_job, &s->extra));
	pthread_mutex_lock(&s->started.mu);
	s->started.entered = 1;
	pthread_cond_broadcast(&s->started.cv);
	pthread_mutex_unlock(&s->started.mu);
	/* Bounded: 20 s at most, then the test fails on rc. */
	for (int i = 0; i < 100000; i++) {
		rc = pool_submit(s->p, count_job, &s->extra);
		if (rc != 0)
			break;
		sleep_us(200);
	}
	atomic_store(&s->rc, rc);
}

static void test_shutdown(void **state)
{
	struct shut s = {
	    .started = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0}};

	(void)state;
	s.p = pool_new(2);
	assert_non_null(s.p);
	assert_int_equal(pool_submit(s.p, shut_job, &s), 0);
	wait_entered(&s.started, 1);
	pool_free(s.p);
	assert_int_equal(atomic_load(&s.first_rc), 0);
	assert_int_equal(atomic_load(&s.rc), -ESHUTDOWN);
	/* Everything accepted before the shutdown ran. */
	assert_true(atomic_load(&s.extra.n) > 0);
}

/* Workers block signals so that they keep going to the main thread. */
static void mask_job(void *arg)
{
	sigset_t cur;

	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	*(int *)arg = sigismember(&cur, SIGINT) && sigismember(&cur, SIGTERM);
}

static void test_signal_mask(void **state)
{
	struct pool *p = pool_new(1);
	sigset_t cur;
	int blocked = 0;

	(void)state;
	assert_non_null(p);
	assert_int_equal(pool_submit(p, mask_job, &blocked), 0);
	pool_drain(p);
	assert_int_equal(blocked, 1);
	/* ...and the caller's own mask is unchanged. */
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	assert_false(sigismember(&cur, SIGINT));
	pool_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bounds),    cmocka_unit_test(test_fifo),
	    cmocka_unit_test(test_many_jobs), cmocka_unit_test(test_free_runs_queue),
	    cmocka_unit_test(test_pending),   cmocka_unit_test(test_drain_recursive),
	    cmocka_unit_test(test_shutdown),  cmocka_unit_test(test_signal_mask),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

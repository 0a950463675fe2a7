/*
 * A fixed pool of worker threads over one FIFO queue, guarded by one mutex
 * and two condition variables: "work" wakes idle workers, "idle" wakes
 * pool_drain() when the last job finishes.
 *
 * Workers block every signal, so signals keep going to the thread that runs
 * the event loop (which may use signalfd).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

#define POOL_MAX_THREADS 64

struct job {
	struct job *next;
	pool_fn fn;
	void *arg;
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t work; /* signalled when a job is queued or stopping is set */
	pthread_cond_t idle; /* broadcast when queued and running both reach 0 */
	struct job *head, *tail;
	size_t queued;
	size_t running;
	bool stopping;
	unsigned nthreads; /* workers started (and to be joined) */
	pthread_t threads[POOL_MAX_THREADS];
};

/*
 * pthread calls on a mutex or condvar we initialised ourselves only fail on
 * misuse, which is a bug in this file; stop before it corrupts the queue.
 */
static void check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "pool: %s: %s\n", what, strerror(rc));
		abort();
	}
}

static void lock(struct pool *p)
{
	check(pthread_mutex_lock(&p->mu), "pthread_mutex_lock");
}

static void unlock(struct pool *p)
{
	check(pthread_mutex_unlock(&p->mu), "pthread_mutex_unlock");
}

static void *worker(void *arg)
{
	struct pool *p = arg;

	lock(p);
	for (;;) {
		struct job *j;

		while (p->head == NULL && !p->stopping)
			check(pthread_cond_wait(&p->work, &p->mu), "pthread_cond_wait");
		/* When stopping, keep going until the queue is empty. */
		if (p->head == NULL)
			break;
		j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		p->running++;
		unlock(p);

		j->fn(j->arg);
		free(j);

		lock(p);
		p->running--;
		if (p->queued == 0 && p->running == 0)
			check(pthread_cond_broadcast(&p->idle), "pthread_cond_broadcast");
	}
	unlock(p);
	return NULL;
}

/* Stops and joins the workers started so far; the queue must be empty or drained by them. */
static void stop_workers(struct pool *p)
{
	lock(p);
	p->stopping = true;
	check(pthread_cond_broadcast(&p->work), "pthread_cond_broadcast");
	unlock(p);
	for (unsigned i = 0; i < p->nthreads; i++)
		check(pthread_join(p->threads[i], NULL), "pthread_join");
}

struct pool *pool_new(unsigned nthreads)
{
	struct pool *p = NULL, *ret = NULL;
	sigset_t all, old;
	bool mu = false, work = false, idle = false, masked = false;
	int rc = 0;

	if (nthreads < 1 || nthreads > POOL_MAX_THREADS) {
		errno = EINVAL;
		goto out;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		goto out;
	rc = pthread_mutex_init(&p->mu, NULL);
	if (rc != 0)
		goto out;
	mu = true;
	rc = pthread_cond_init(&p->work, NULL);
	if (rc != 0)
		goto out;
	work = true;
	rc = pthread_cond_init(&p->idle, NULL);
	if (rc != 0)
		goto out;
	idle = true;

	/* Threads inherit the creator's mask: block everything while creating them. */
	sigfillset(&all);
	rc = pthread_sigmask(SIG_SETMASK, &all, &old);
	if (rc != 0)
		goto out;
	masked = true;
	for (unsigned i = 0; i < nthreads; i++) {
		rc = pthread_create(&p->threads[i], NULL, worker, p);
		if (rc != 0)
			goto out;
		p->nthreads++;
	}
	ret = p;
out:
	if (masked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret == NULL && p != NULL) {
		/* pthread calls return their error; callers look at errno. */
		int saved = rc ? rc : errno;

		if (p->nthreads > 0)
			stop_workers(p);
		if (idle)
			pthread_cond_destroy(&p->idle);
		if (work)
			pthread_cond_destroy(&p->work);
		if (mu)
			pthread_mutex_destroy(&p->mu);
		free(p);
		errno = saved;
	}
	return ret;
}

int pool_submit(struct pool *p, pool_fn fn, void *arg)
{
	struct job *j;
	int ret = -1;

	j = malloc(sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->next = NULL;
	j->fn = fn;
	j->arg = arg;

	lock(p);
	if (p->stopping) {
		ret = -ESHUTDOWN;
		goto out;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	j = NULL;
	check(pthread_cond_signal(&p->work), "pthread_cond_signal");
	ret = 0;
out:
	unlock(p);
	free(j);
	return ret;
}

size_t pool_pending(struct pool *p)
{
	size_t n;

	lock(p);
	n = p->queued + p->running;
	unlock(p);
	return n;
}

void pool_drain(struct pool *p)
{
	lock(p);
	while (p->queued > 0 || p->running > 0)
		check(pthread_cond_wait(&p->idle, &p->mu), "pthread_cond_wait");
	unlock(p);
}

void pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	/* The workers empty the queue before they see stopping and exit. */
	stop_workers(p);
	check(pthread_cond_destroy(&p->idle), "pthread_cond_destroy");
	check(pthread_cond_destroy(&p->work), "pthread_cond_destroy");
	check(pthread_mutex_destroy(&p->mu), "pthread_mutex_destroy");
	free(p);
}

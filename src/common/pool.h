/*
 * A fixed pool of worker threads running submitted jobs in FIFO order.
 * Completion is reported by the job itself (for example through a queue and
 * an eventfd the event loop watches); the pool only runs jobs.
 */
#ifndef ML_POOL_H
#define ML_POOL_H

#include <stddef.h>

struct pool; /* opaque */

typedef void (*pool_fn)(void *arg);

/* Starts nthreads workers (1..64). Returns NULL on failure. */
struct pool *pool_new(unsigned nthreads);
/* Queues fn(arg). Returns 0, or -ENOMEM, or -ESHUTDOWN after pool_free began. */
int pool_submit(struct pool *p, pool_fn fn, void *arg);
/* Number of jobs queued or running. */
size_t pool_pending(struct pool *p);
/* Blocks until every queued job has run. */
void pool_drain(struct pool *p);
/* Runs every queued job, stops the workers and frees the pool. Accepts NULL. */
void pool_free(struct pool *p);

#endif

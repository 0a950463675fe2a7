/*
 * The scheduler (sched.c, prefix sched_): turns deployments whose due time has come into pending
 * runs (docs/schedules.md, "Scheduler"; docs/api.md, "Deployments").
 *
 * Due times live in the store (deployments.next_due, unix seconds), so
 * nothing is lost across a restart. A thread wakes every [scheduler] tick,
 * or at once after sched_kick(), and calls sched_tick(). For each enabled
 * deployment whose next_due has come it runs ONE transaction that inserts a
 * pending run, sets last_due, advances next_due (the next cron occurrence
 * after the one handled; NULL for "now" and "at") and writes an audit
 * record. Either all of that happens or none of it, and the store refuses a
 * second scheduled run for one (deployment, due time), so a crash at any
 * point never gives two runs for one due time.
 *
 * The same rules handle a due time found late, whether the server was down
 * or stalled: a run more than two ticks plus one second late is marked
 * "late"; a one-shot deployment always runs, once; a recurring one runs
 * once, for its latest missed occurrence, if that is at most [scheduler]
 * catchup ago, and otherwise skips to its next future occurrence with an
 * audit record "skipped" that says how many occurrences were missed.
 *
 * The header is not called sched.h because that would hide the C
 * library's <sched.h> from <pthread.h> (the server's directory is on the
 * include path).
 *
 * Threads: sched_tick() may run on any thread (it takes the store's lock
 * per transaction); sched_start() and sched_stop() belong to main().
 */
#ifndef ML_SCHEDULER_H
#define ML_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

struct srv;
struct sched;

/* Deployments handled by one tick at most; the rest wait for the next one. */
#define SCHED_PER_TICK 256
/* Missed cron occurrences counted one by one at most before jumping ahead. */
#define SCHED_WALK_MAX 100000

/*
 * Starts the scheduler thread on srv (srv->store and srv->conf must be
 * ready) and sets srv->sched. Its first tick runs at once, which applies
 * the missed-run policy to everything that fell due while the server was
 * down. Returns 0, or a negative code with a reason in err.
 */
int sched_start(struct srv *srv, char *err, size_t errsz);

/*
 * Stops the thread after its current tick, frees it and sets srv->sched to
 * NULL. Accepts a server whose scheduler never started.
 */
void sched_stop(struct srv *srv);

/*
 * Asks srv's scheduler for a tick now, after a change to a deployment's
 * schedule (a "now" deployment then gets its run within milliseconds).
 * Does nothing when srv has no scheduler (yet, or at all: unit tests, the
 * fuzz harness); never blocks on the store.
 */
void sched_kick(struct srv *srv);

/*
 * One pass at time now (unix seconds): handles every enabled deployment
 * with next_due <= now, up to SCHED_PER_TICK of them, by the rules above,
 * using srv->conf.tick_ms and catchup_ms. Tests call it with chosen times.
 * Returns the number of runs created (>= 0), or a negative store code when
 * the due deployments could not be read; a deployment whose transaction
 * fails is logged, left as it was, and retried at the next tick.
 */
int sched_tick(struct srv *srv, int64_t now);

#endif

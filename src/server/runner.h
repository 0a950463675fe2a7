/*
 * The deployment runner (docs/runs.md): executes pending runs. For each run
 * it resolves the targets, wakes the sleeping ones (wol.c, directly and
 * through an awake agent in their subnet), waits for their agents, hands
 * them a receive command (agentq.h) with the session's parameters, sends the
 * version from the chunk store with libmlcast (mc_send), collects what
 * every agent reports, and records per machine: done, already current,
 * missing, failed with a reason, bytes and time. Machines that fell out of a
 * session (an agent restarted, a session ended early) get another one, up
 * to [runner] rounds. Then the run's report is mailed to the deployment's
 * recipients.
 *
 * Everything a run decides is written to the store as it happens (runs,
 * run_targets), so the API shows live progress and a restart finds every
 * run in a known state: runner_start() ends runs that a previous process
 * left running as failed ("mlserver stopped during the run"), with their
 * unfinished machines failed and their agents' commands cancelled, and
 * mails their report. Their machines keep what they received: a retry
 * resumes from there.
 *
 * [runner] max_runs runs execute at once, each on its own thread and its
 * own UDP port ([runner] port + 2 * slot).
 *
 * Threads: every function may be called from any thread.
 */
#ifndef ML_RUNNER_H
#define ML_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct srv;

/*
 * Ends the runs a previous process left running (see above), then starts
 * the dispatcher thread (which first mails their reports) and sets
 * srv->runner. srv->store, srv->lib and srv->agentq must be ready; call it
 * before the HTTP front end starts, so that no agent gets a command of a
 * run that is about to be ended. Returns 0, or a negative code with a
 * reason.
 */
int runner_start(struct srv *srv, char *err, size_t errsz);
/*
 * Stops every executing run (each ends "failed": "mlserver was stopped
 * during the run"), joins the threads and frees the runner. Call it after
 * the HTTP front end and the scheduler stopped (nothing else calls the
 * runner then). Accepts a server without one.
 */
void runner_stop(struct srv *srv);
/* Looks for pending runs now (after one was created). Never blocks; no-op without a runner. */
void runner_kick(struct srv *srv);
/*
 * Asks the run to stop, if this runner executes it: the session ends, the
 * agents' commands are cancelled, unfinished machines become "cancelled"
 * and the run ends "cancelled" (with its report). Returns true when the
 * run was executing here.
 */
bool runner_cancel(struct srv *srv, int64_t run);
/* The current sending rate of run in bits per second; 0 when it is not sending. */
uint64_t runner_rate(struct srv *srv, int64_t run);

#endif

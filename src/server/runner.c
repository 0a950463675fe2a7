/*
 * The deployment runner's frame (runner.h, docs/runs.md): the dispatcher
 * thread that hands pending runs to free slots, the recovery of runs a
 * previous process left running, and the end of a run with its report.
 * The steps of one run are in run_exec.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentq.h"
#include "audit.h"
#include "boot.h"
#include "log.h"
#include "mail.h"
#include "run_int.h"
#include "runner.h"
#include "server.h"
#include "store.h"

#define RUNNER_IDLE_MS 1000 /* how often pending runs are looked for without a kick */

void run_phase(struct srv *srv, int64_t run, const char *phase)
{
	store_exec(srv->store, "UPDATE runs SET phase = ? WHERE id = ?", "ti", phase, run);
}

/* ---- reports ---------------------------------------------------------- */

static enum mail_state run_mail_state(const char *s)
{
	if (strcmp(s, "done") == 0)
		return MAIL_DONE;
	if (strcmp(s, "current") == 0)
		return MAIL_CURRENT;
	if (strcmp(s, "missing") == 0)
		return MAIL_MISSING;
	return MAIL_FAILED;
}

struct run_report {
	struct mail_report r;
	struct mail_report_row *rows;
	char **strs; /* every string the report owns */
	size_t nstrs;
	char **to;
	size_t nto;
	bool oom; /* a string could not be kept */
};

static char *run_keep(struct run_report *rp, const char *s)
{
	char **n = realloc(rp->strs, (rp->nstrs + 1) * sizeof(*n));
	char *copy = n ? strdup(s ? s : "") : NULL;
	if (n)
		rp->strs = n;
	if (!copy) {
		rp->oom = true;
		return NULL;
	}
	return rp->strs[rp->nstrs++] = copy;
}

static void run_report_free(struct run_report *rp)
{
	for (size_t i = 0; i < rp->nstrs; i++)
		free(rp->strs[i]);
	free(rp->strs);
	free(rp->rows);
	free(rp->to);
}

/* Loads what the report of run shows. 0, or -ENOMEM / -EIO. */
static int run_report_load(struct srv *srv, int64_t run, struct run_report *rp, int64_t *dep)
{
	struct store_q *q = store_query(
	    srv->store,
	    "SELECT r.deployment_id, r.deployment_name, i.name, v.number, r.started_at,"
	    " r.finished_at, r.error, r.sent_bytes FROM runs r JOIN image_versions v ON v.id ="
	    " r.version_id JOIN images i ON i.id = v.image_id WHERE r.id = ?",
	    "i", run);
	if (!q || store_next(q) != 1) {
		store_done(q);
		return -EIO;
	}
	char label[32];
	*dep = store_col_int(q, 0);
	rp->r.run_id = run;
	rp->r.deployment = run_keep(rp, store_col_text(q, 1));
	rp->r.image = run_keep(rp, store_col_text(q, 2));
	snprintf(label, sizeof(label), "%lld", (long long)store_col_int(q, 3));
	rp->r.version = run_keep(rp, label);
	rp->r.started = (time_t)store_col_int(q, 4);
	rp->r.finished = (time_t)store_col_int(q, 5);
	rp->r.error = run_keep(rp, store_col_text(q, 6));
	rp->r.sent_bytes = (uint64_t)store_col_int(q, 7);
	store_done(q);
	q = store_query(srv->store,
	                "SELECT machine_name, state, reason, bytes, started_at, finished_at"
	                " FROM run_targets WHERE run_id = ? ORDER BY machine_name",
	                "i", run);
	if (!q)
		return -EIO;
	int rc;
	while ((rc = store_next(q)) == 1) {
		struct mail_report_row *n = realloc(rp->rows, (rp->r.nrows + 1) * sizeof(*n));
		if (!n) {
			store_done(q);
			return -ENOMEM;
		}
		rp->rows = n;
		struct mail_report_row *w = &rp->rows[rp->r.nrows++];
		const char *st = store_col_text(q, 1);
		w->machine = run_keep(rp, store_col_text(q, 0));
		w->state = run_mail_state(st);
		w->reason = run_keep(rp, strcmp(st, "cancelled") == 0 && store_col_null(q, 2)
		                             ? "cancelled"
		                             : store_col_text(q, 2));
		w->bytes = (uint64_t)store_col_int(q, 3);
		int64_t a = store_col_int(q, 4), b = store_col_int(q, 5);
		w->ms = !store_col_null(q, 4) && b > a ? (uint64_t)(b - a) * 1000 : 0;
	}
	store_done(q);
	rp->r.rows = rp->rows;
	if (rc < 0)
		return -EIO;
	q = store_query(srv->store,
	                "SELECT email FROM deployment_recipients WHERE deployment_id = ?"
	                " ORDER BY email",
	                "i", *dep);
	if (!q)
		return -EIO;
	while (store_next(q) == 1 && rp->nto < MAIL_RCPT_MAX) {
		char **n = realloc(rp->to, (rp->nto + 1) * sizeof(*n));
		if (!n)
			break;
		rp->to = n;
		rp->to[rp->nto++] = run_keep(rp, store_col_text(q, 0));
	}
	store_done(q);
	return rp->oom ? -ENOMEM : 0;
}

/* Mails run's report; returns what runs.mail says about it (static or in buf). */
static const char *run_mail(struct srv *srv, int64_t run, char *buf, size_t bufsz)
{
	struct run_report rp = {0};
	int64_t dep = 0;
	const char *out = buf;
	if (run_report_load(srv, run, &rp, &dep) < 0) {
		out = "failed: the report could not be read from the store";
		goto out;
	}
	if (rp.nto == 0) {
		out = "no recipients";
		goto out;
	}
	if (*srv->conf.mail_url == '\0') {
		out = "not configured ([mail] url is empty)";
		goto out;
	}
	char subject[MAIL_SUBJECT_MAX + 1], err[MAIL_ERR_SIZE];
	char *body = mail_report_render(&rp.r);
	if (!body) {
		out = "failed: out of memory";
		goto out;
	}
	mail_report_subject(&rp.r, subject, sizeof(subject));
	struct mail_msg m = {
	    .to = (const char *const *)rp.to, .nto = rp.nto, .subject = subject, .body = body};
	if (mail_send(&srv->conf, &m, err, sizeof(err)) < 0) {
		log_warn("run %lld: report not mailed: %s", (long long)run, err);
		snprintf(buf, bufsz, "failed: %s", err);
	} else {
		log_info("run %lld: report mailed to %zu recipient%s", (long long)run, rp.nto,
		         rp.nto == 1 ? "" : "s");
		snprintf(buf, bufsz, "sent to %zu recipient%s", rp.nto, rp.nto == 1 ? "" : "s");
	}
	free(body);
out:
	run_report_free(&rp);
	return out;
}

/* Ends run in the store: its open commands, unfinished machines, state. */
static void run_end_state(struct srv *srv, int64_t run, const char *state, const char *error)
{
	int64_t now = store_now();
	bool cancelled = strcmp(state, "cancelled") == 0;
	/* Whatever a machine was doing, it is over: no command of the run stays open. */
	agentq_cancel_run(srv, run, 0);
	store_exec(srv->store,
	           "UPDATE run_targets SET state = ?, reason = COALESCE(reason, ?), finished_at = ?"
	           " WHERE run_id = ? AND state IN ('waiting', 'ready', 'receiving')",
	           "ttii", cancelled ? "cancelled" : "failed",
	           cancelled ? "the run was cancelled" : error, now, run);
	/*
	 * The state first, with the phase "reporting" until the report's
	 * outcome is recorded: a crash while mailing must not leave the run
	 * running, and the next start mails what is still "reporting".
	 */
	store_exec(srv->store,
	           "UPDATE runs SET state = ?, error = ?, finished_at = ?, phase = 'reporting'"
	           " WHERE id = ?",
	           "ttii", state, error && *error ? error : NULL, now, run);
	audit_system(srv->store, "finish", "run", run, "%s%s%s", state, error && *error ? ": " : "",
	             error ? error : "");
	log_info("run %lld %s%s%s", (long long)run, state, error && *error ? ": " : "",
	         error ? error : "");
}

/* Mails run's report and records the outcome. */
static void run_report(struct srv *srv, int64_t run)
{
	char buf[MAIL_ERR_SIZE + 16];
	const char *mail = run_mail(srv, run, buf, sizeof(buf));
	store_exec(srv->store, "UPDATE runs SET mail = ?, phase = NULL WHERE id = ?", "ti", mail,
	           run);
}

void run_finish(struct srv *srv, int64_t run, const char *state, const char *error)
{
	run_end_state(srv, run, state, error);
	boot_temp_clear_run(srv->store, run);
	run_report(srv, run);
}

/* ---- recovery and dispatch ---------------------------------------------- */

/*
 * Ends the runs a previous process left running (see runner.h), before
 * the HTTP front end starts, so that no agent is handed their commands.
 * Their reports go out from the dispatcher thread (runner_mail_pending).
 */
static void runner_recover(struct srv *srv)
{
	int64_t ids[64];
	size_t n;
	do {
		n = 0;
		struct store_q *q = store_query(
		    srv->store, "SELECT id FROM runs WHERE state = 'running' ORDER BY id LIMIT 64",
		    NULL);
		while (q && store_next(q) == 1)
			ids[n++] = store_col_int(q, 0);
		store_done(q);
		for (size_t i = 0; i < n; i++) {
			log_warn("run %lld was running when mlserver stopped: it ends failed",
			         (long long)ids[i]);
			run_end_state(srv, ids[i], "failed", "mlserver stopped during the run");
		}
	} while (n == 64);
}

/* Mails the reports of ended runs whose outcome is not recorded (recovered, or a crash while
 * mailing). */
static void runner_mail_pending(struct srv *srv)
{
	int64_t ids[64];
	size_t n = 0;
	struct store_q *q = store_query(srv->store,
	                                "SELECT id FROM runs WHERE phase = 'reporting' AND state IN"
	                                " ('done', 'failed', 'cancelled') ORDER BY id LIMIT 64",
	                                NULL);
	while (q && store_next(q) == 1)
		ids[n++] = store_col_int(q, 0);
	store_done(q);
	for (size_t i = 0; i < n; i++)
		run_report(srv, ids[i]);
}

static void *runner_slot_main(void *arg)
{
	struct run_slot *sl = arg;
	run_exec(sl->rn->srv, sl, sl->run);
	pthread_mutex_lock(&sl->rn->mu);
	sl->joinable = true;
	sl->rate_bps = 0;
	pthread_cond_broadcast(&sl->rn->cv);
	pthread_mutex_unlock(&sl->rn->mu);
	return NULL;
}

/* Joins finished slots; called with mu held. */
static void runner_reap(struct runner *rn)
{
	for (unsigned i = 0; i < rn->nslots; i++) {
		struct run_slot *sl = &rn->slots[i];
		if (sl->busy && sl->joinable) {
			pthread_join(sl->th, NULL);
			sl->busy = sl->joinable = false;
			sl->run = 0;
		}
	}
}

/* Claims the oldest pending run for a free slot. 1 when one started, 0 when none. */
static int runner_claim(struct runner *rn, struct run_slot *sl)
{
	struct srv *srv = rn->srv;
	int64_t id;
	if (store_int(srv->store, &id,
	              "SELECT id FROM runs WHERE state = 'pending' ORDER BY id LIMIT 1", NULL) < 0)
		return 0;
	if (store_exec(srv->store,
	               "UPDATE runs SET state = 'running', started_at = ?, phase = 'resolving'"
	               " WHERE id = ? AND state = 'pending'",
	               "ii", store_now(), id) != 1)
		return 0;
	log_info("run %lld starts (slot %u)", (long long)id, sl->index);
	sl->run = id;
	sl->stop = sl->cancel = 0;
	sl->busy = true;
	sl->joinable = false;
	if (pthread_create(&sl->th, NULL, runner_slot_main, sl) != 0) {
		sl->busy = false;
		/* Not under the lock: the report may take the mail server's time. */
		pthread_mutex_unlock(&rn->mu);
		run_finish(srv, id, "failed", "mlserver could not start a thread for the run");
		pthread_mutex_lock(&rn->mu);
	}
	return 1;
}

static void *runner_main(void *arg)
{
	struct runner *rn = arg;
	runner_mail_pending(rn->srv);
	pthread_mutex_lock(&rn->mu);
	while (!rn->stopping) {
		runner_reap(rn);
		if (!rn->srv->conf.runner_enabled) {
			pthread_cond_wait(&rn->cv, &rn->mu);
			continue;
		}
		struct run_slot *free_slot = NULL;
		for (unsigned i = 0; i < rn->nslots && !free_slot; i++)
			if (!rn->slots[i].busy)
				free_slot = &rn->slots[i];
		if (free_slot && runner_claim(rn, free_slot))
			continue;
		if (!rn->kicked) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += RUNNER_IDLE_MS / 1000;
			pthread_cond_timedwait(&rn->cv, &rn->mu, &ts);
		}
		rn->kicked = false;
	}
	for (unsigned i = 0; i < rn->nslots; i++)
		if (rn->slots[i].busy)
			rn->slots[i].stop = 1;
	for (unsigned i = 0; i < rn->nslots; i++) {
		struct run_slot *sl = &rn->slots[i];
		if (sl->busy) {
			pthread_mutex_unlock(&rn->mu);
			pthread_join(sl->th, NULL);
			pthread_mutex_lock(&rn->mu);
			sl->busy = false;
		}
	}
	pthread_mutex_unlock(&rn->mu);
	return NULL;
}

int runner_start(struct srv *srv, char *err, size_t errsz)
{
	struct runner *rn = calloc(1, sizeof(*rn));
	if (!rn) {
		log_seterr(err, errsz, "out of memory");
		return -ENOMEM;
	}
	runner_recover(srv);
	rn->srv = srv;
	rn->nslots = (unsigned)srv->conf.runner_max_runs;
	if (rn->nslots > RUN_SLOTS_MAX)
		rn->nslots = RUN_SLOTS_MAX;
	for (unsigned i = 0; i < rn->nslots; i++) {
		rn->slots[i].rn = rn;
		rn->slots[i].index = i;
	}
	pthread_mutex_init(&rn->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rn->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&rn->th, NULL, runner_main, rn) != 0) {
		pthread_mutex_destroy(&rn->mu);
		pthread_cond_destroy(&rn->cv);
		free(rn);
		log_seterr(err, errsz, "cannot start the runner's thread");
		return -EAGAIN;
	}
	/* Other threads (HTTP, scheduler) read srv->runner: publish it whole. */
	__atomic_store_n(&srv->runner, rn, __ATOMIC_RELEASE);
	return 0;
}

/* srv's runner as published by runner_start(), or NULL. */
static struct runner *runner_of(struct srv *srv)
{
	return __atomic_load_n(&srv->runner, __ATOMIC_ACQUIRE);
}

void runner_stop(struct srv *srv)
{
	struct runner *rn = runner_of(srv);
	if (!rn)
		return;
	pthread_mutex_lock(&rn->mu);
	rn->stopping = true;
	pthread_cond_broadcast(&rn->cv);
	pthread_mutex_unlock(&rn->mu);
	pthread_join(rn->th, NULL);
	pthread_mutex_destroy(&rn->mu);
	pthread_cond_destroy(&rn->cv);
	__atomic_store_n(&srv->runner, NULL, __ATOMIC_RELEASE);
	free(rn);
}

void runner_kick(struct srv *srv)
{
	struct runner *rn = runner_of(srv);
	if (!rn)
		return;
	pthread_mutex_lock(&rn->mu);
	rn->kicked = true;
	pthread_cond_broadcast(&rn->cv);
	pthread_mutex_unlock(&rn->mu);
}

bool runner_cancel(struct srv *srv, int64_t run)
{
	struct runner *rn = runner_of(srv);
	bool found = false;
	if (!rn)
		return false;
	pthread_mutex_lock(&rn->mu);
	for (unsigned i = 0; i < rn->nslots; i++) {
		struct run_slot *sl = &rn->slots[i];
		if (sl->busy && !sl->joinable && sl->run == run) {
			sl->cancel = 1;
			sl->stop = 1;
			found = true;
		}
	}
	pthread_mutex_unlock(&rn->mu);
	return found;
}

uint64_t runner_rate(struct srv *srv, int64_t run)
{
	struct runner *rn = runner_of(srv);
	uint64_t rate = 0;
	if (!rn)
		return 0;
	pthread_mutex_lock(&rn->mu);
	for (unsigned i = 0; i < rn->nslots; i++)
		if (rn->slots[i].busy && rn->slots[i].run == run)
			rate = rn->slots[i].rate_bps;
	pthread_mutex_unlock(&rn->mu);
	return rate;
}

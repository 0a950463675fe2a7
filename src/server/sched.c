/* The scheduler (scheduler.h): due deployments become pending runs. */
#include "scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "cron.h"
#include "log.h"
#include "runner.h"
#include "server.h"
#include "store.h"
#include "timefmt.h"

struct sched {
	struct srv *srv;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, kicked;
};

/* One due deployment, as read inside its transaction. */
struct sched_dep {
	int64_t id, version_id, due;
	char kind[8];
	char name[128];
	char cron[CRON_FORMAT_MAX];
};

/* What to do with one due deployment. */
struct sched_plan {
	bool fire;         /* create a run */
	const char *cause; /* "schedule" or "late" */
	int64_t due_at;    /* the occurrence the run is for (the latest one that came) */
	int64_t missed;    /* occurrences that came, that one included */
	bool has_next;
	int64_t next; /* the next due time, when has_next */
	bool unknown; /* too many missed to find the latest; it is beyond catchup */
};

static void sched_fmt_time(int64_t t, char buf[TIMEFMT_LEN])
{
	if (timefmt_format((time_t)t, buf, TIMEFMT_LEN) < 0)
		snprintf(buf, TIMEFMT_LEN, "?");
}

/*
 * The latest occurrence of c at or before now, walking from first (an
 * occurrence); counts the occurrences walked in *count, at most
 * SCHED_WALK_MAX. *next gets the first occurrence after now (has_next
 * false when there is none). Returns true when the walk reached now, false
 * when it stopped at the cap (*latest is then the last one counted).
 */
static bool sched_walk(const struct cron *c, int64_t first, int64_t now, int64_t *latest,
                       int64_t *count, bool *has_next, int64_t *next)
{
	time_t t;
	*latest = first;
	*count = 1;
	*has_next = false;
	for (;;) {
		if (cron_next(c, (time_t)*latest, &t) < 0)
			return true; /* none ever again */
		if ((int64_t)t > now) {
			*has_next = true;
			*next = (int64_t)t;
			return true;
		}
		if (*count == SCHED_WALK_MAX)
			return false;
		*latest = (int64_t)t;
		(*count)++;
	}
}

/*
 * Decides, by the rules of scheduler.h, what to do with deployment d found due
 * at now. Returns 0, or -EINVAL when its stored cron text does not parse
 * (then no run, and no next due time).
 */
static int sched_plan(const struct srv *srv, const struct sched_dep *d, int64_t now,
                      struct sched_plan *p)
{
	/* Due times and "now" are whole seconds: allow one second of rounding. */
	int64_t late_ms = 2 * (int64_t)srv->conf.tick_ms + 1000;
	memset(p, 0, sizeof(*p));
	p->due_at = d->due;
	p->missed = 1;
	if (strcmp(d->kind, "cron") != 0) {
		/* A one-shot deployment runs once, however late. */
		p->fire = true;
		p->cause = (now - d->due) * 1000 > late_ms ? "late" : "schedule";
		return 0;
	}
	struct cron c;
	char why[CRON_ERR_MAX];
	if (cron_parse(d->cron, strlen(d->cron), &c, why, sizeof(why)) < 0) {
		log_error("scheduler: deployment %lld: stored cron '%s' does not parse: %s",
		          (long long)d->id, d->cron, why);
		return -EINVAL;
	}
	if (!sched_walk(&c, d->due, now, &p->due_at, &p->missed, &p->has_next, &p->next)) {
		/*
		 * Too many missed occurrences to count them all (a frequent
		 * schedule and a long downtime). Only the ones within the
		 * catch-up window can still start: look there directly.
		 */
		uint64_t window_ms = srv->conf.catchup_ms > (uint64_t)late_ms ? srv->conf.catchup_ms
		                                                              : (uint64_t)late_ms;
		int64_t window_s = (int64_t)(window_ms / 1000) + 1;
		int64_t from = now - window_s, n;
		time_t t;
		if (from > d->due && cron_next(&c, (time_t)(from - 1), &t) == 0 &&
		    (int64_t)t <= now) {
			sched_walk(&c, (int64_t)t, now, &p->due_at, &n, &p->has_next, &p->next);
		} else {
			/* The latest is older than the window: skip, it is not worth finding. */
			p->unknown = true;
			if (cron_next(&c, (time_t)now, &t) == 0) {
				p->has_next = true;
				p->next = (int64_t)t;
			}
			return 0;
		}
	}
	int64_t late = (now - p->due_at) * 1000;
	if (late <= late_ms) {
		p->fire = true;
		p->cause = "schedule";
	} else if (late <= (int64_t)srv->conf.catchup_ms) {
		p->fire = true;
		p->cause = "late";
	}
	return 0;
}

/* Reads deployment id if it is enabled and due at now. 1 found, 0 not, < 0 error. */
static int sched_read(struct store *s, int64_t id, int64_t now, struct sched_dep *d)
{
	struct store_q *q = store_query(s,
	                                "SELECT name, version_id, schedule_kind, cron, next_due"
	                                " FROM deployments WHERE id = ? AND enabled = 1"
	                                " AND next_due IS NOT NULL AND next_due <= ?",
	                                "ii", id, now);
	if (!q)
		return -EIO;
	int rc = store_next(q);
	if (rc == 1) {
		d->id = id;
		snprintf(d->name, sizeof(d->name), "%s", store_col_text(q, 0));
		d->version_id = store_col_int(q, 1);
		snprintf(d->kind, sizeof(d->kind), "%s", store_col_text(q, 2));
		snprintf(d->cron, sizeof(d->cron), "%s", store_col_text(q, 3));
		d->due = store_col_int(q, 4);
	}
	store_done(q);
	return rc;
}

/*
 * Moves next_due of d on, if d is still as read (a request may have
 * changed it since). Returns 1 done, 0 changed meanwhile, < 0 error.
 */
static int sched_advance(struct store *s, const struct sched_dep *d, bool has_next, int64_t next)
{
	static const char cond[] = " WHERE id = ? AND enabled = 1 AND next_due = ?"
	                           " AND schedule_kind = ? AND COALESCE(cron, '') = ?"
	                           " AND version_id = ?";
	char sql[256];
	snprintf(sql, sizeof(sql), "UPDATE deployments SET next_due = %s%s",
	         has_next ? "?" : "NULL", cond);
	if (has_next)
		return store_exec(s, sql, "iiitti", next, d->id, d->due, d->kind, d->cron,
		                  d->version_id);
	return store_exec(s, sql, "iitti", d->id, d->due, d->kind, d->cron, d->version_id);
}

/*
 * Handles one due deployment: decides outside any transaction (a long
 * walk over missed occurrences must not hold the store), then records it
 * all in one. Returns 1 when a run was created, 0 when none was (skipped,
 * or changed meanwhile: the next tick looks again), < 0 on a store error
 * (rolled back; the deployment stays due and is retried).
 */
static int sched_fire(struct srv *srv, int64_t id, int64_t now)
{
	struct store *s = srv->store;
	struct sched_dep d;
	struct sched_plan p;
	char due_s[TIMEFMT_LEN] = "", next_s[TIMEFMT_LEN] = "never", shown[160];
	int64_t run_id = 0;
	bool recorded = false; /* a run exists for p.due_at */
	int rc = sched_read(s, id, now, &d);
	if (rc <= 0)
		return rc;
	log_escape(d.name, strlen(d.name), shown, sizeof(shown));
	bool bad = sched_plan(srv, &d, now, &p) < 0;
	if (p.unknown)
		snprintf(due_s, sizeof(due_s), "unknown");
	else
		sched_fmt_time(p.due_at, due_s);
	if (p.has_next)
		sched_fmt_time(p.next, next_s);
	if ((rc = store_begin(s)) < 0)
		return rc;
	rc = sched_advance(s, &d, p.has_next, p.next);
	if (rc == 0) {
		store_rollback(s);
		return 0;
	}
	if (rc > 0 && bad) {
		rc = audit_system(s, "skipped", "deployment", id,
		                  "the stored cron expression does not parse; "
		                  "not scheduled until its schedule is set again");
		goto end;
	}
	if (rc > 0 && p.fire) {
		rc = store_insert(
		    s, &run_id,
		    "INSERT INTO runs (deployment_id, deployment_name, version_id, state,"
		    " cause, due_at, created_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)"
		    " RETURNING id",
		    "ititii", id, d.name, d.version_id, p.cause, p.due_at, now);
		if (rc == -EEXIST) {
			/*
			 * A scheduled run for this due time exists already: never a
			 * second one; just move on to the next due time.
			 */
			log_warn("scheduler: deployment %lld '%s' already has a run due %s",
			         (long long)id, shown, due_s);
			run_id = 0;
			rc = 0;
		}
		recorded = rc == 0;
	}
	if (rc >= 0 && recorded)
		rc = store_exec(s, "UPDATE deployments SET last_due = ? WHERE id = ?", "ii",
		                p.due_at, id);
	if (rc >= 0 && run_id) {
		char missed[64] = "";
		if (p.missed > 1)
			snprintf(missed, sizeof(missed), "; %lld earlier occurrence(s) missed",
			         (long long)(p.missed - 1));
		rc = audit_system(s, "run", "deployment", id,
		                  "run %lld of '%s' due %s, cause %s%s; next due %s",
		                  (long long)run_id, d.name, due_s, p.cause, missed, next_s);
	} else if (rc >= 0 && !p.fire) {
		char latest[64];
		if (p.unknown)
			snprintf(latest, sizeof(latest), "the latest more than");
		else
			snprintf(latest, sizeof(latest), "the latest due %s, more than", due_s);
		rc = audit_system(s, "skipped", "deployment", id,
		                  "'%s' missed %lld%s occurrence(s), %s [scheduler] catchup"
		                  " (%llu s) ago; next due %s",
		                  d.name, (long long)p.missed, p.unknown ? " or more" : "", latest,
		                  (unsigned long long)(srv->conf.catchup_ms / 1000), next_s);
	}
end:
	if (rc < 0) {
		store_rollback(s);
		log_error("scheduler: deployment %lld: cannot record its run (%s); retrying",
		          (long long)id, strerror(-rc));
		return rc;
	}
	if ((rc = store_commit(s)) < 0)
		return rc;
	if (run_id)
		log_info("scheduler: deployment %lld '%s': run %lld due %s (%s)", (long long)id,
		         shown, (long long)run_id, due_s, p.cause);
	else if (!p.fire)
		log_warn("scheduler: deployment %lld '%s': no run for %lld%s missed "
		         "occurrence(s), the latest due %s; next due %s",
		         (long long)id, shown, (long long)p.missed, p.unknown ? " or more" : "",
		         due_s, next_s);
	return run_id ? 1 : 0;
}

int sched_tick(struct srv *srv, int64_t now)
{
	int64_t ids[SCHED_PER_TICK];
	size_t n = 0;
	struct store_q *q = store_query(srv->store,
	                                "SELECT id FROM deployments WHERE enabled = 1"
	                                " AND next_due IS NOT NULL AND next_due <= ?"
	                                " ORDER BY next_due, id LIMIT ?",
	                                "ii", now, (int64_t)SCHED_PER_TICK);
	if (!q)
		return -EIO;
	int rc;
	while ((rc = store_next(q)) == 1 && n < SCHED_PER_TICK)
		ids[n++] = store_col_int(q, 0);
	store_done(q);
	if (rc < 0)
		return rc;
	int runs = 0;
	for (size_t i = 0; i < n; i++)
		if (sched_fire(srv, ids[i], now) == 1)
			runs++;
	return runs;
}

static void *sched_main(void *arg)
{
	struct sched *sc = arg;
	pthread_mutex_lock(&sc->mu);
	while (!sc->stop) {
		sc->kicked = false;
		pthread_mutex_unlock(&sc->mu);
		int rc = sched_tick(sc->srv, store_now());
		if (rc < 0)
			log_error("scheduler: cannot read due deployments (%s)", strerror(-rc));
		else if (rc > 0)
			runner_kick(sc->srv);
		pthread_mutex_lock(&sc->mu);
		if (sc->stop || sc->kicked)
			continue;
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		uint64_t ns = (uint64_t)until.tv_nsec + (sc->srv->conf.tick_ms % 1000) * 1000000ull;
		until.tv_sec += (time_t)(sc->srv->conf.tick_ms / 1000 + ns / 1000000000ull);
		until.tv_nsec = (long)(ns % 1000000000ull);
		while (!sc->stop && !sc->kicked &&
		       pthread_cond_timedwait(&sc->cv, &sc->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&sc->mu);
	return NULL;
}

int sched_start(struct srv *srv, char *err, size_t errsz)
{
	struct sched *sc = calloc(1, sizeof(*sc));
	pthread_condattr_t ca;
	int rc;
	if (!sc) {
		snprintf(err, errsz, "scheduler: out of memory");
		return -ENOMEM;
	}
	sc->srv = srv;
	pthread_mutex_init(&sc->mu, NULL);
	pthread_condattr_init(&ca);
	/* Ticks follow the monotonic clock: setting the wall clock does not stall them. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sc->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = pthread_create(&sc->thread, NULL, sched_main, sc)) != 0) {
		snprintf(err, errsz, "scheduler: cannot start its thread: %s", strerror(rc));
		pthread_cond_destroy(&sc->cv);
		pthread_mutex_destroy(&sc->mu);
		free(sc);
		return -rc;
	}
	__atomic_store_n(&srv->sched, sc, __ATOMIC_RELEASE);
	return 0;
}

void sched_kick(struct srv *srv)
{
	/* Requests may arrive before sched_start() has published the scheduler. */
	struct sched *sc = srv ? __atomic_load_n(&srv->sched, __ATOMIC_ACQUIRE) : NULL;
	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	sc->kicked = true;
	pthread_cond_signal(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
}

void sched_stop(struct srv *srv)
{
	struct sched *sc = srv ? srv->sched : NULL;
	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	sc->stop = true;
	pthread_cond_signal(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
	pthread_join(sc->thread, NULL);
	pthread_cond_destroy(&sc->cv);
	pthread_mutex_destroy(&sc->mu);
	free(sc);
	srv->sched = NULL;
}

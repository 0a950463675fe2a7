/*
 * The agents' command queues, long polls and presence (agentq.h).
 *
 * The queue is the agent_commands table. What lives here in memory is the
 * registry of waiting polls: one waiter per parked request, in a list under
 * aq->mu, and a timer thread that ends the polls whose wait is over. A
 * waiter is woken at most once (woken flag) and stays in the list until
 * its request runs again or ends (r->on_end), so a pointer to a request is
 * never used after the front end freed it. Lock order: aq->mu, then the
 * front end's (r->wake is called with aq->mu held), then the store's
 * (never the other way round: no store call is made with aq->mu held).
 */
#include "agentq.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "log.h"
#include "mtime.h"
#include "req.h"
#include "server.h"
#include "store.h"

/* The timer's longest sleep, so that a stop never waits on it long. */
#define AGENTQ_TICK_MS 1000

struct agentq_waiter {
	int64_t machine;
	struct req *r;
	uint64_t deadline_ms; /* monotonic */
	bool woken;
	bool replaced; /* a newer poll of the machine took over */
	struct agentq_waiter *next;
};

struct agentq_seen {
	int64_t machine;
	uint64_t at_ms; /* monotonic time of the last write */
};

struct agentq {
	struct srv *srv;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t timer;
	bool stopping;
	struct agentq_waiter *waiters;
	struct agentq_seen *seen; /* last_seen_at writes, for the throttle */
	size_t nseen, capseen;
};

int agentq_cred_check(struct srv *srv, const char *token, int64_t *machine, int64_t *cred)
{
	char hash[65];
	int ret = -EACCES;
	if (!auth_secret_wellformed(token, "mla_"))
		return -EACCES;
	auth_token_hash(token, hash);
	struct store_q *q = store_query(srv->store,
	                                "SELECT id, machine_id FROM agent_credentials"
	                                " WHERE hash = ? AND revoked_at IS NULL",
	                                "t", hash);
	if (!q)
		return -EIO;
	int rc = store_next(q);
	if (rc == 1) {
		*cred = store_col_int(q, 0);
		*machine = store_col_int(q, 1);
		ret = 0;
	} else if (rc < 0) {
		ret = -EIO;
	}
	store_done(q);
	return ret;
}

/* Should machine's last_seen_at be written now? Notes the write when so. */
static bool agentq_touch_due(struct agentq *aq, int64_t machine, bool force)
{
	uint64_t now = mtime_ms();
	bool due = true;
	pthread_mutex_lock(&aq->mu);
	size_t i;
	for (i = 0; i < aq->nseen; i++)
		if (aq->seen[i].machine == machine)
			break;
	if (i == aq->nseen) {
		if (aq->nseen == aq->capseen) {
			size_t cap = aq->capseen ? 2 * aq->capseen : 64;
			struct agentq_seen *n = realloc(aq->seen, cap * sizeof(*n));
			if (!n) {
				/* Without memory the throttle just writes every time. */
				pthread_mutex_unlock(&aq->mu);
				return true;
			}
			aq->seen = n;
			aq->capseen = cap;
		}
		aq->seen[aq->nseen].machine = machine;
		aq->seen[aq->nseen].at_ms = now;
		aq->nseen++;
	} else if (!force && now - aq->seen[i].at_ms < AGENTQ_TOUCH_S * 1000) {
		due = false;
	} else {
		aq->seen[i].at_ms = now;
	}
	pthread_mutex_unlock(&aq->mu);
	return due;
}

int agentq_touch(struct srv *srv, int64_t machine, int64_t cred, const char *peer, bool force)
{
	if (srv->agentq && !agentq_touch_due(srv->agentq, machine, force))
		return 0;
	int64_t now = store_now();
	int rc = store_exec(srv->store, "UPDATE machines SET last_seen_at = ? WHERE id = ?", "ii",
	                    now, machine);
	if (rc >= 0)
		rc = store_exec(srv->store,
		                "UPDATE agent_credentials SET last_seen_at = ?, last_addr = ?"
		                " WHERE id = ?",
		                "iti", now, peer ? peer : "", cred);
	return rc < 0 ? rc : 0;
}

json_t *agentq_take(struct srv *srv, int64_t machine, int *fresh)
{
	struct store *s = srv->store;
	if (fresh)
		*fresh = 0;
	int64_t now = store_now();
	json_t *rows = NULL;
	if (store_begin(s) < 0)
		return NULL;
	int rc = store_exec(s,
	                    "UPDATE agent_commands SET state = 'expired', updated_at = ?"
	                    " WHERE machine_id = ? AND state = 'queued'"
	                    " AND expires_at IS NOT NULL AND expires_at <= ?",
	                    "iii", now, machine, now);
	if (rc >= 0)
		rows = store_rows_json(s,
		                       "SELECT id, kind, run_id, args AS \"args:j\","
		                       " created_at AS \"created_at:t\" FROM agent_commands"
		                       " WHERE machine_id = ?"
		                       " AND state IN ('queued', 'sent', 'running') ORDER BY id",
		                       "i", machine);
	if (rows)
		rc = store_exec(s,
		                "UPDATE agent_commands SET state = 'sent', sent_at = ?,"
		                " updated_at = ? WHERE machine_id = ? AND state = 'queued'",
		                "iii", now, now, machine);
	if (rows && rc > 0 && fresh)
		*fresh = rc;
	if (!rows || rc < 0 || store_commit(s) < 0) {
		if (!rows || rc < 0)
			store_rollback(s);
		json_decref(rows);
		return NULL;
	}
	return rows;
}

/* Wakes w's request once. Called with aq->mu held. */
static void agentq_wake_locked(struct agentq_waiter *w)
{
	if (w->woken)
		return;
	w->woken = true;
	if (w->r->wake)
		w->r->wake(w->r->park);
}

/* Wakes the waiting poll of machine, if any. */
static void agentq_wake_machine(struct agentq *aq, int64_t machine)
{
	if (!aq)
		return;
	pthread_mutex_lock(&aq->mu);
	for (struct agentq_waiter *w = aq->waiters; w; w = w->next)
		if (w->machine == machine)
			agentq_wake_locked(w);
	pthread_mutex_unlock(&aq->mu);
}

/*
 * Takes r's waiter out of the registry. Returns 1 when it was replaced by
 * a newer poll, else 0 (also when r had none).
 */
static int agentq_unwait(struct agentq *aq, struct req *r)
{
	int replaced = 0;
	pthread_mutex_lock(&aq->mu);
	for (struct agentq_waiter **pw = &aq->waiters; *pw; pw = &(*pw)->next) {
		struct agentq_waiter *w = *pw;
		if (w->r != r)
			continue;
		replaced = w->replaced;
		*pw = w->next;
		free(w);
		break;
	}
	pthread_mutex_unlock(&aq->mu);
	r->on_end = NULL;
	return replaced;
}

/* r->on_end of parked polls: the request ends, so its waiter goes. */
static void agentq_on_end(struct req *r)
{
	agentq_unwait(r->on_end_ctx, r);
}

int agentq_poll(struct req *r, int64_t machine, int64_t wait_ms, bool all, json_t **out)
{
	struct agentq *aq = r->srv->agentq;
	int fresh = 0;
	*out = NULL;
	if (!aq || !r->park || r->resumes > 0) {
		if (aq && agentq_unwait(aq, r)) {
			*out = json_array();
			return *out ? 0 : -ENOMEM;
		}
		*out = agentq_take(r->srv, machine, NULL);
		return *out ? 0 : -EIO;
	}
	/*
	 * The waiter goes in before the queue is read, so that a command
	 * pushed in between wakes it rather than being missed until the
	 * wait ends.
	 */
	struct agentq_waiter *nw = calloc(1, sizeof(*nw));
	if (!nw)
		return -ENOMEM;
	nw->machine = machine;
	nw->r = r;
	nw->deadline_ms = mtime_ms() + (uint64_t)wait_ms;
	pthread_mutex_lock(&aq->mu);
	if (aq->stopping) {
		pthread_mutex_unlock(&aq->mu);
		free(nw);
		*out = agentq_take(r->srv, machine, NULL);
		return *out ? 0 : -EIO;
	}
	for (struct agentq_waiter *w = aq->waiters; w; w = w->next)
		if (w->machine == machine && !w->woken) {
			w->replaced = true;
			agentq_wake_locked(w);
		}
	nw->next = aq->waiters;
	aq->waiters = nw;
	r->on_end = agentq_on_end;
	r->on_end_ctx = aq;
	pthread_cond_signal(&aq->cv);
	pthread_mutex_unlock(&aq->mu);
	/*
	 * At once only with something new, or everything when the agent asks
	 * (its first poll after a start or a lost connection). Otherwise an
	 * agent busy with a long command would get the same answer back to
	 * back; it hears of its unfinished commands again when the wait ends.
	 */
	json_t *cmds = agentq_take(r->srv, machine, &fresh);
	if (!cmds || fresh > 0 || (all && json_array_size(cmds) > 0)) {
		agentq_unwait(aq, r);
		*out = cmds;
		return cmds ? 0 : -EIO;
	}
	json_decref(cmds);
	r->suspend = true;
	return 1;
}

unsigned agentq_waiting(struct srv *srv)
{
	struct agentq *aq = srv->agentq;
	unsigned n = 0;
	if (!aq)
		return 0;
	pthread_mutex_lock(&aq->mu);
	for (struct agentq_waiter *w = aq->waiters; w; w = w->next)
		n += !w->woken;
	pthread_mutex_unlock(&aq->mu);
	return n;
}

/* Ends the polls whose wait is over; sleeps until the next one is due. */
static void *agentq_timer(void *arg)
{
	struct agentq *aq = arg;
	pthread_mutex_lock(&aq->mu);
	while (!aq->stopping) {
		uint64_t now = mtime_ms(), next = now + AGENTQ_TICK_MS;
		for (struct agentq_waiter *w = aq->waiters; w; w = w->next) {
			if (w->woken)
				continue;
			if (w->deadline_ms <= now)
				agentq_wake_locked(w);
			else if (w->deadline_ms < next)
				next = w->deadline_ms;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (next - now) * 1000000ULL;
		ts.tv_sec += (time_t)(ns / 1000000000ULL);
		ts.tv_nsec = (long)(ns % 1000000000ULL);
		pthread_cond_timedwait(&aq->cv, &aq->mu, &ts);
	}
	pthread_mutex_unlock(&aq->mu);
	return NULL;
}

int agentq_start(struct srv *srv, char *err, size_t errsz)
{
	struct agentq *aq = calloc(1, sizeof(*aq));
	pthread_condattr_t ca;
	if (!aq) {
		snprintf(err, errsz, "agentq: out of memory");
		return -ENOMEM;
	}
	aq->srv = srv;
	pthread_mutex_init(&aq->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&aq->cv, &ca);
	pthread_condattr_destroy(&ca);
	int rc = pthread_create(&aq->timer, NULL, agentq_timer, aq);
	if (rc != 0) {
		snprintf(err, errsz, "agentq: cannot start the poll timer: %s", strerror(rc));
		pthread_cond_destroy(&aq->cv);
		pthread_mutex_destroy(&aq->mu);
		free(aq);
		return -rc;
	}
	srv->agentq = aq;
	return 0;
}

void agentq_stop(struct srv *srv)
{
	struct agentq *aq = srv->agentq;
	if (!aq)
		return;
	pthread_mutex_lock(&aq->mu);
	aq->stopping = true;
	for (struct agentq_waiter *w = aq->waiters; w; w = w->next)
		agentq_wake_locked(w);
	pthread_cond_signal(&aq->cv);
	pthread_mutex_unlock(&aq->mu);
	pthread_join(aq->timer, NULL);
	/*
	 * Waiters still listed belong to requests the front end no longer
	 * runs (it stopped first, answering them); forget them.
	 */
	while (aq->waiters) {
		struct agentq_waiter *w = aq->waiters;
		aq->waiters = w->next;
		w->r->on_end = NULL;
		free(w);
	}
	srv->agentq = NULL;
	pthread_cond_destroy(&aq->cv);
	pthread_mutex_destroy(&aq->mu);
	free(aq->seen);
	free(aq);
}

/* Inserts a queued command without waking anyone. */
static int agentq_insert(struct srv *srv, int64_t machine, int64_t run, const char *kind,
                         json_t *args, int64_t ttl_s, int64_t *id)
{
	char *text = json_dumps(args, JSON_COMPACT);
	int64_t now = store_now();
	if (!text)
		return -ENOMEM;
	static const char sql[] = "INSERT INTO agent_commands (machine_id, run_id, kind, args,"
	                          " state, created_at, updated_at, expires_at)"
	                          " VALUES (?, ?, ?, ?, 'queued', ?, ?, ?) RETURNING id";
	int rc;
	/* No run and no expiry are NULL in the store. */
	if (run && ttl_s)
		rc = store_insert(srv->store, id, sql, "iittiii", machine, run, kind, text, now,
		                  now, now + ttl_s);
	else if (run)
		rc = store_insert(srv->store, id, sql, "iittiin", machine, run, kind, text, now,
		                  now);
	else if (ttl_s)
		rc = store_insert(srv->store, id, sql, "inttiii", machine, kind, text, now, now,
		                  now + ttl_s);
	else
		rc = store_insert(srv->store, id, sql, "inttiin", machine, kind, text, now, now);
	free(text);
	return rc < 0 ? rc : 0;
}

int agentq_push(struct srv *srv, int64_t machine, int64_t run, const char *kind, json_t *args,
                int64_t ttl_s, int64_t *id)
{
	int rc = agentq_insert(srv, machine, run, kind, args, ttl_s, id);
	if (rc < 0)
		return rc;
	agentq_wake_machine(srv->agentq, machine);
	return 0;
}

/* Is a cancel command for command id still unfinished on machine? 1, 0 or < 0. */
static int agentq_cancel_pending(struct store *s, int64_t machine, int64_t id)
{
	int found = 0;
	struct store_q *q = store_query(s,
	                                "SELECT args FROM agent_commands WHERE machine_id = ?"
	                                " AND kind = 'cancel'"
	                                " AND state IN ('queued', 'sent', 'running')",
	                                "i", machine);
	if (!q)
		return -EIO;
	while (!found && store_next(q) == 1) {
		json_t *a = json_loads(store_col_text(q, 0), 0, NULL);
		json_t *c = json_object_get(a, "command");
		found = json_is_integer(c) && json_integer_value(c) == id;
		json_decref(a);
	}
	store_done(q);
	return found;
}

int agentq_cancel_run(struct srv *srv, int64_t run, int64_t machine)
{
	struct store *s = srv->store;
	int64_t *ids = NULL, *machines = NULL;
	size_t n = 0, cap = 0;
	int ret = -EIO, touched = 0;
	if (store_begin(s) < 0)
		return -EIO;
	struct store_q *q = store_query(s,
	                                "SELECT id, machine_id, state FROM agent_commands"
	                                " WHERE run_id = ? AND (? = 0 OR machine_id = ?)"
	                                " AND kind <> 'cancel'"
	                                " AND state IN ('queued', 'sent', 'running')"
	                                " ORDER BY id",
	                                "iii", run, machine, machine);
	if (!q)
		goto fail;
	int rc;
	/* Queued ones end at once; the others are noted for a cancel command. */
	while ((rc = store_next(q)) == 1) {
		int64_t id = store_col_int(q, 0), m = store_col_int(q, 1);
		if (strcmp(store_col_text(q, 2), "queued") == 0) {
			if (store_exec(s,
			               "UPDATE agent_commands SET state = 'cancelled',"
			               " updated_at = ? WHERE id = ?",
			               "ii", store_now(), id) < 0) {
				store_done(q);
				goto fail;
			}
			touched++;
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			int64_t *ni = realloc(ids, cap * sizeof(*ni));
			if (ni)
				ids = ni;
			int64_t *nm = realloc(machines, cap * sizeof(*nm));
			if (nm)
				machines = nm;
			if (!ni || !nm) {
				store_done(q);
				ret = -ENOMEM;
				goto fail;
			}
		}
		ids[n] = id;
		machines[n] = m;
		n++;
	}
	store_done(q);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		int64_t cid;
		touched++;
		rc = agentq_cancel_pending(s, machines[i], ids[i]);
		if (rc < 0)
			goto fail;
		if (rc == 1)
			continue;
		json_t *args = json_pack("{s:I}", "command", (json_int_t)ids[i]);
		rc = args ? agentq_insert(srv, machines[i], run, "cancel", args, 0, &cid) : -ENOMEM;
		json_decref(args);
		if (rc < 0) {
			ret = rc;
			goto fail;
		}
	}
	if (store_commit(s) < 0) {
		ret = -EIO;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		agentq_wake_machine(srv->agentq, machines[i]);
	ret = touched;
	goto out;
fail:
	store_rollback(s);
out:
	free(ids);
	free(machines);
	return ret;
}

int agentq_drop_machine(struct store *s, int64_t machine)
{
	return store_exec(s,
	                  "UPDATE agent_commands SET state = 'cancelled', updated_at = ?,"
	                  " result = '{\"reason\": \"the agent\u2019s credential was revoked\"}'"
	                  " WHERE machine_id = ? AND state IN ('queued', 'sent', 'running')",
	                  "ii", store_now(), machine);
}

void agentq_kick(struct srv *srv, int64_t machine)
{
	agentq_wake_machine(srv->agentq, machine);
}

bool agentq_online(struct srv *srv, int64_t machine)
{
	struct agentq *aq = srv->agentq;
	if (aq) {
		bool waiting = false;
		pthread_mutex_lock(&aq->mu);
		for (struct agentq_waiter *w = aq->waiters; w && !waiting; w = w->next)
			waiting = w->machine == machine && !w->woken;
		pthread_mutex_unlock(&aq->mu);
		if (waiting)
			return true;
	}
	int64_t seen = 0;
	if (store_int(srv->store, &seen,
	              "SELECT COALESCE(MAX(last_seen_at), 0) FROM agent_credentials"
	              " WHERE machine_id = ? AND revoked_at IS NULL",
	              "i", machine) < 0)
		return false;
	/*
	 * Only live credentials count: a machine whose credential was just
	 * revoked is offline at once, whatever machines.last_seen_at says.
	 */
	int64_t within = (int64_t)(srv->conf.agents_offline_ms / 1000);
	return seen > 0 && store_now() - seen <= within;
}

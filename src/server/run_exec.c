/*
 * The steps of one run (runner.h, docs/runs.md): load, resolve the
 * targets, wake, wait for the agents, then rounds of "prepare" (a receive
 * command to every waiting agent, answered with ready, current or failed),
 * "send" (one mlcast session from the chunk store) and "collect" (every
 * agent's result; a machine that fell out of the session with a retryable
 * failure, or whose restarted agent is ready again, goes into the next
 * round), and finally the run's end (runner.c: run_finish).
 *
 * Every change of a machine's state is written to run_targets at once;
 * progress during a session at most once a second.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "agentq.h"
#include "boot.h"
#include "fileio.h"
#include "library.h"
#include "log.h"
#include "mlcast.h"
#include "mtime.h"
#include "run_int.h"
#include "server.h"
#include "sha256.h"
#include "store.h"
#include "targets.h"

#define RUN_POLL_MS 250   /* how often commands are looked at while waiting */
#define RUN_FLUSH_MS 1000 /* progress writes during a session, at most */
#define RUN_MANIFEST_MAX (256u << 20)

static bool run_stopped(const struct run_ctx *c)
{
	return c->slot->stop != 0;
}

static void run_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool run_final(const char *state)
{
	return strcmp(state, "done") == 0 || strcmp(state, "current") == 0 ||
	       strcmp(state, "missing") == 0 || strcmp(state, "failed") == 0 ||
	       strcmp(state, "cancelled") == 0;
}

void run_target_save(struct run_ctx *c, struct run_target *t)
{
	/* finished_at: now for a final state, NULL (0 turned NULL by NULLIF) otherwise. */
	store_exec(c->srv->store,
	           "UPDATE run_targets SET state = ?, reason = ?, woken = ?, bytes = ?,"
	           " chunks_done = ?, chunks_needed = ?, finished_at = NULLIF(?, 0) WHERE id = ?",
	           "tttiiiii", t->state, *t->reason ? t->reason : NULL, t->woken, (int64_t)t->bytes,
	           (int64_t)t->chunks_done, (int64_t)t->chunks_needed,
	           run_final(t->state) ? store_now() : (int64_t)0, t->id);
	t->dirty = false;
}

static void run_set(struct run_ctx *c, struct run_target *t, const char *state, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
static void run_set(struct run_ctx *c, struct run_target *t, const char *state, const char *fmt,
                    ...)
{
	snprintf(t->state, sizeof(t->state), "%s", state);
	t->reason[0] = '\0';
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
		va_end(ap);
	}
	if (run_final(state) && t->start_ms && !t->ms)
		t->ms = mtime_ms() - t->start_ms;
	if (strcmp(state, "failed") == 0 || strcmp(state, "missing") == 0)
		log_info("run %lld: %s %s: %s", (long long)c->id, t->name, state, t->reason);
	run_target_save(c, t);
}

/* ---- loading ------------------------------------------------------------ */

static int run_load(struct run_ctx *c, char *why, size_t whysz)
{
	struct store_q *q = store_query(
	    c->srv->store,
	    "SELECT r.deployment_id, r.deployment_name, r.version_id, v.image_id, v.number,"
	    " v.state, v.sha256, v.size, i.name, d.rate_bps, d.wake, d.wait_s, d.boot_mode"
	    " FROM runs r JOIN image_versions v ON v.id = r.version_id"
	    " JOIN images i ON i.id = v.image_id"
	    " LEFT JOIN deployments d ON d.id = r.deployment_id WHERE r.id = ?",
	    "i", c->id);
	if (!q || store_next(q) != 1) {
		store_done(q);
		snprintf(why, whysz, "the run could not be read from the store");
		return -EIO;
	}
	c->deployment = store_col_int(q, 0);
	snprintf(c->deployment_name, sizeof(c->deployment_name), "%s", store_col_text(q, 1));
	c->version = store_col_int(q, 2);
	c->image = store_col_int(q, 3);
	c->number = store_col_int(q, 4);
	bool ready = strcmp(store_col_text(q, 5), "ready") == 0;
	snprintf(c->sha256, sizeof(c->sha256), "%s", store_col_text(q, 6));
	c->size = (uint64_t)store_col_int(q, 7);
	snprintf(c->image_name, sizeof(c->image_name), "%s", store_col_text(q, 8));
	c->rate_bps = store_col_null(q, 9) ? 0 : (uint64_t)store_col_int(q, 9);
	c->wake = store_col_null(q, 10) ? true : store_col_int(q, 10) != 0;
	c->wait_s = store_col_null(q, 11) ? 300 : store_col_int(q, 11);
	c->boot_mode = boot_mode_parse(store_col_text(q, 12));
	store_done(q);
	if (!ready) {
		snprintf(why, whysz, "version %" PRId64 " of image %s is not ready", c->number,
		         c->image_name);
		return -EINVAL;
	}
	if (library_version_dir(c->srv->lib, c->version, c->store_dir, sizeof(c->store_dir)) < 0 ||
	    snprintf(c->manifest, sizeof(c->manifest), "%s/manifest", c->store_dir) >=
	        (int)sizeof(c->manifest)) {
		snprintf(why, whysz, "the version's directory name is too long");
		return -ENAMETOOLONG;
	}
	uint8_t *buf = NULL, d[SHA256_LEN];
	size_t len;
	int rc = fio_read_file(c->manifest, RUN_MANIFEST_MAX, &buf, &len);
	if (rc < 0) {
		snprintf(why, whysz, "cannot read the version's manifest (%s)", strerror(-rc));
		log_warn("run %lld: cannot read %s: %s", (long long)c->id, c->manifest,
		         strerror(-rc));
		return rc;
	}
	sha256_buf(buf, len, d);
	sha256_hex(d, c->manifest_sha);
	free(buf);
	return 0;
}

/* Makes the run's targets rows from the deployment's targets, unless they exist (a retry). */
static int run_resolve(struct run_ctx *c, char *why, size_t whysz)
{
	struct store *s = c->srv->store;
	int64_t have = 0, *ids = NULL;
	size_t n = 0;
	if (store_int(s, &have, "SELECT COUNT(*) FROM run_targets WHERE run_id = ?", "i", c->id) <
	    0) {
		snprintf(why, whysz, "the run's machines could not be read from the store");
		return -EIO;
	}
	if (have > 0)
		return 0;
	if (c->deployment == 0) {
		snprintf(why, whysz, "the deployment was deleted before the run started");
		return -ENOENT;
	}
	if (targets_resolve(s, TARGETS_DEPLOYMENT, c->deployment, &ids, &n) < 0) {
		snprintf(why, whysz, "the deployment's targets could not be resolved");
		return -EIO;
	}
	int rc = store_begin(s);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = store_exec(s,
		                "INSERT INTO run_targets (run_id, machine_id, machine_name, state)"
		                " SELECT ?, id, name, 'waiting' FROM machines WHERE id = ?",
		                "ii", c->id, ids[i]) < 0
		         ? -EIO
		         : 0;
	if (rc == 0)
		rc = store_commit(s);
	else if (rc != -EIO || n)
		store_rollback(s);
	free(ids);
	if (rc < 0) {
		snprintf(why, whysz, "the run's machines could not be stored");
		return -EIO;
	}
	return 0;
}

static int run_targets_load(struct run_ctx *c, char *why, size_t whysz)
{
	struct store_q *q =
	    store_query(c->srv->store,
	                "SELECT id, machine_id, machine_name, state FROM run_targets"
	                " WHERE run_id = ? ORDER BY machine_name",
	                "i", c->id);
	int rc;
	while (q && (rc = store_next(q)) == 1) {
		struct run_target *n = realloc(c->t, (c->n + 1) * sizeof(*n));
		if (!n)
			break;
		c->t = n;
		struct run_target *t = &c->t[c->n++];
		memset(t, 0, sizeof(*t));
		t->id = store_col_int(q, 0);
		t->machine = store_col_int(q, 1);
		snprintf(t->name, sizeof(t->name), "%s", store_col_text(q, 2));
		snprintf(t->state, sizeof(t->state), "%s", store_col_text(q, 3));
	}
	store_done(q);
	if (!q) {
		snprintf(why, whysz, "the run's machines could not be read from the store");
		return -EIO;
	}
	for (size_t i = 0; i < c->n; i++)
		if (c->t[i].machine == 0 && !run_final(c->t[i].state))
			run_set(c, &c->t[i], "failed", "the machine was deleted");
	return 0;
}

/*
 * An older running run that still has unfinished machines of this run for
 * the same image: 0 when none. Two such runs would compete for the same
 * agents (one reception per image at a time).
 */
static int64_t run_overlap(struct run_ctx *c)
{
	int64_t other = 0;
	int rc =
	    store_int(c->srv->store, &other,
	              "SELECT r.id FROM runs r JOIN image_versions v ON v.id = r.version_id"
	              " JOIN run_targets t ON t.run_id = r.id"
	              " WHERE r.state = 'running' AND r.id < ? AND v.image_id = ?"
	              " AND t.state IN ('waiting', 'ready', 'receiving')"
	              " AND t.machine_id IN (SELECT machine_id FROM run_targets WHERE run_id = ?)"
	              " ORDER BY r.id LIMIT 1",
	              "iii", c->id, c->image, c->id);
	return rc == 0 ? other : 0;
}

/* Waits, in phase "queued", while an older overlapping run is not done with the machines. */
static void run_wait_overlap(struct run_ctx *c)
{
	int64_t other = run_overlap(c), logged = 0;
	if (!other)
		return;
	run_phase(c->srv, c->id, "queued");
	while (other && !run_stopped(c)) {
		if (other != logged)
			log_info("run %lld waits for run %lld, which deploys image %s to some of "
			         "its machines",
			         (long long)c->id, (long long)other, c->image_name);
		logged = other;
		run_sleep_ms(1000);
		other = run_overlap(c);
	}
}

/* ---- waiting for the agents --------------------------------------------- */

static void run_wait_agents(struct run_ctx *c)
{
	uint64_t deadline = mtime_ms() + (uint64_t)c->wait_s * 1000;
	bool *seen = calloc(c->n ? c->n : 1, sizeof(*seen));
	if (!seen)
		return;
	for (;;) {
		size_t absent = 0;
		for (size_t i = 0; i < c->n; i++) {
			struct run_target *t = &c->t[i];
			if (strcmp(t->state, "waiting") != 0 || seen[i])
				continue;
			if (agentq_online(c->srv, t->machine))
				seen[i] = true;
			else
				absent++;
		}
		if (absent == 0 || mtime_ms() >= deadline || run_stopped(c))
			break;
		run_sleep_ms(500);
	}
	for (size_t i = 0; i < c->n && !run_stopped(c); i++) {
		struct run_target *t = &c->t[i];
		if (strcmp(t->state, "waiting") == 0 && !seen[i])
			run_set(c, t, "missing", "its agent did not show up within %llds%s%s",
			        (long long)c->wait_s, *t->woken ? "; woken: " : "", t->woken);
	}
	free(seen);
}

/* ---- commands ----------------------------------------------------------- */

struct run_cmd {
	char state[16], phase[16];
	json_t *result; /* NULL when none */
};

static int run_cmd_read(struct run_ctx *c, int64_t id, struct run_cmd *v)
{
	struct store_q *q = store_query(
	    c->srv->store, "SELECT state, phase, result FROM agent_commands WHERE id = ?", "i", id);
	memset(v, 0, sizeof(*v));
	if (!q || store_next(q) != 1) {
		store_done(q);
		return -ENOENT;
	}
	snprintf(v->state, sizeof(v->state), "%s", store_col_text(q, 0));
	snprintf(v->phase, sizeof(v->phase), "%s", store_col_text(q, 1));
	if (!store_col_null(q, 2))
		v->result = json_loads(store_col_text(q, 2), 0, NULL);
	store_done(q);
	return 0;
}

static const char *run_res_str(const struct run_cmd *v, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(v->result, key));
	return s && *s ? s : dflt;
}

static uint64_t run_res_uint(const struct run_cmd *v, const char *key)
{
	json_int_t n = json_integer_value(json_object_get(v->result, key));
	return n > 0 ? (uint64_t)n : 0;
}

/*
 * The name a machine's receiver goes by in the session: "ID:NAME", cut to
 * the 64 bytes a receiver's name may have, at a UTF-8 character boundary.
 * The id makes it unique whatever the names (run_status matches by it).
 */
static void run_rx_name(const struct run_target *t, char out[65])
{
	int n = snprintf(out, 65, "%lld:%s", (long long)t->machine, t->name);
	if (n > 64) {
		size_t k = 64;
		while (k > 0 && ((unsigned char)out[k] & 0xc0) == 0x80)
			k--;
		out[k] = '\0';
	}
}

/* The machine id at the start of a receiver's name ("ID:..."), 0 when none. */
static int64_t run_rx_id(const char *name)
{
	int64_t id = 0;
	for (const char *p = name; *p != ':'; p++) {
		if (*p < '0' || *p > '9' || id > INT64_MAX / 10 - 1)
			return 0;
		id = id * 10 + (*p - '0');
	}
	return id;
}

static int run_push_receive(struct run_ctx *c, struct run_target *t)
{
	char key_hex[65], rx_name[65];
	run_rx_name(t, rx_name);
	sha256_hex(c->key, key_hex); /* 32 bytes as hex, whatever they are */
	const struct srvconf *cf = &c->srv->conf;
	uint64_t timeout_s = (cf->runner_ready_ms + cf->runner_finish_ms) / 1000 + 60;
	json_t *args = json_pack(
	    "{s:I, s:I, s:s, s:I, s:s, s:s, s:I, s:I, s:s, s:s, s:I}", "image_id",
	    (json_int_t)c->image, "version_id", (json_int_t)c->version, "sha256", c->sha256, "size",
	    (json_int_t)c->size, "manifest_sha256", c->manifest_sha, "group", cf->runner_group,
	    "port", (json_int_t)(cf->runner_port + 2 * c->slot->index), "session",
	    (json_int_t)c->session, "key", key_hex, "name", rx_name, "timeout_s",
	    (json_int_t)timeout_s);
	if (!args)
		return -ENOMEM;
	int rc = agentq_push(c->srv, t->machine, c->id, "receive", args, 0, &t->cmd);
	json_decref(args);
	if (rc == 0) {
		if (!t->start_ms)
			t->start_ms = mtime_ms();
		store_exec(
		    c->srv->store,
		    "UPDATE run_targets SET started_at = COALESCE(started_at, ?) WHERE id = ?",
		    "ii", store_now(), t->id);
	}
	return rc;
}

/* A final command result: the machine's final state. Returns true when it was final. */
static bool run_take_result(struct run_ctx *c, struct run_target *t, const struct run_cmd *v,
                            bool may_retry)
{
	if (strcmp(v->state, "done") == 0) {
		bool current = strcmp(run_res_str(v, "outcome", "done"), "current") == 0;
		t->bytes = run_res_uint(v, "bytes");
		if (run_res_uint(v, "ms"))
			t->ms = run_res_uint(v, "ms");
		if (!current && t->chunks_needed)
			t->chunks_done = t->chunks_needed;
		run_set(c, t, current ? "current" : "done", NULL);
		return true;
	}
	if (strcmp(v->state, "failed") == 0) {
		json_t *r = json_object_get(v->result, "retryable");
		if (may_retry && json_is_true(r) && agentq_online(c->srv, t->machine)) {
			log_info("run %lld: %s fell out of the session (%s): next round",
			         (long long)c->id, t->name, run_res_str(v, "reason", "no reason"));
			t->cmd = 0;
			t->in_session = false;
			run_set(c, t, "waiting", NULL);
			return false;
		}
		run_set(c, t, "failed", "%s", run_res_str(v, "reason", "the agent gave no reason"));
		return true;
	}
	if (strcmp(v->state, "cancelled") == 0 || strcmp(v->state, "expired") == 0) {
		run_set(c, t, "failed", "the agent's command was %s", v->state);
		return true;
	}
	return false;
}

/* Sends receive commands and waits for the answers. Returns how many machines are ready. */
static size_t run_prepare(struct run_ctx *c)
{
	uint64_t deadline = mtime_ms() + c->srv->conf.runner_ready_ms;
	for (size_t i = 0; i < c->n; i++) {
		struct run_target *t = &c->t[i];
		t->in_session = false;
		if (strcmp(t->state, "waiting") == 0 && !t->cmd && run_push_receive(c, t) < 0)
			run_set(c, t, "failed", "mlserver could not queue its command");
	}
	size_t ready;
	for (;;) {
		size_t open = 0;
		ready = 0;
		for (size_t i = 0; i < c->n; i++) {
			struct run_target *t = &c->t[i];
			struct run_cmd v;
			if ((strcmp(t->state, "waiting") != 0 && strcmp(t->state, "ready") != 0) ||
			    !t->cmd)
				continue;
			if (run_cmd_read(c, t->cmd, &v) < 0) {
				run_set(c, t, "failed", "its command disappeared from the store");
				continue;
			}
			if (!run_take_result(c, t, &v, false)) {
				bool is_ready = strcmp(v.state, "running") == 0 &&
				                (strcmp(v.phase, "ready") == 0 ||
				                 strcmp(v.phase, "receiving") == 0);
				if (is_ready && strcmp(t->state, "ready") != 0)
					run_set(c, t, "ready", NULL);
				else if (!is_ready && strcmp(t->state, "ready") == 0)
					run_set(c, t, "waiting", NULL);
				if (is_ready)
					ready++;
				else
					open++;
			}
			json_decref(v.result);
		}
		if (open == 0 || mtime_ms() >= deadline || run_stopped(c))
			break;
		run_sleep_ms(RUN_POLL_MS);
	}
	for (size_t i = 0; i < c->n && !run_stopped(c); i++) {
		struct run_target *t = &c->t[i];
		if (strcmp(t->state, "waiting") == 0 && t->cmd) {
			agentq_cancel_run(c->srv, c->id, t->machine);
			t->cmd = 0;
			run_set(c, t, "failed",
			        "its agent did not answer the receive command within %llus",
			        (unsigned long long)(c->srv->conf.runner_ready_ms / 1000));
		}
	}
	return ready;
}

/* ---- the session ------------------------------------------------------------- */

struct run_send {
	struct run_ctx *c;
	uint64_t base_bytes; /* sent by earlier rounds */
};

static void run_flush(struct run_ctx *c, uint64_t sent)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->t[i].dirty)
			run_target_save(c, &c->t[i]);
	store_exec(c->srv->store, "UPDATE runs SET sent_bytes = ? WHERE id = ?", "ii",
	           (int64_t)sent, c->id);
	c->last_flush_ms = mtime_ms();
}

static void run_status(void *ctx, const struct mc_send_status *st)
{
	struct run_send *rs = ctx;
	struct run_ctx *c = rs->c;
	for (unsigned k = 0; k < st->nrx; k++) {
		const struct mc_rx_view *v = &st->rx[k];
		int64_t id = run_rx_id(v->name);
		for (size_t i = 0; i < c->n && id; i++) {
			struct run_target *t = &c->t[i];
			if (!t->in_session || t->machine != id)
				continue;
			/* A restarted agent shows up twice: a dropped entry tells nothing new. */
			if (v->state == MC_V_DROPPED && strcmp(t->state, "receiving") == 0 &&
			    t->chunks_done > v->chunks_done)
				continue;
			if (t->chunks_done != v->chunks_done ||
			    t->chunks_needed != v->chunks_needed || t->bytes != v->bytes) {
				t->chunks_done = v->chunks_done;
				t->chunks_needed = v->chunks_needed;
				t->bytes = v->bytes;
				t->dirty = true;
			}
			if (strcmp(t->state, "ready") == 0 &&
			    (v->state == MC_V_RECEIVING || v->state == MC_V_READY)) {
				snprintf(t->state, sizeof(t->state), "receiving");
				t->dirty = true;
			}
		}
	}
	c->sent_bytes = rs->base_bytes + st->wire_bytes;
	pthread_mutex_lock(&c->slot->rn->mu);
	c->slot->rate_bps = st->state == 1 ? st->rate_bps : 0;
	pthread_mutex_unlock(&c->slot->rn->mu);
	if (mtime_ms() - c->last_flush_ms >= RUN_FLUSH_MS)
		run_flush(c, c->sent_bytes);
}

static int run_send(struct run_ctx *c, size_t ready, char *why, size_t whysz)
{
	const struct srvconf *cf = &c->srv->conf;
	struct run_send rs = {c, c->sent_bytes};
	for (size_t i = 0; i < c->n; i++)
		c->t[i].in_session = strcmp(c->t[i].state, "ready") == 0;
	struct mc_send_opts o = {
	    .store_dir = c->store_dir,
	    .chunks_dir = library_chunks_dir(c->srv->lib),
	    .ifname = *cf->runner_interface ? cf->runner_interface : NULL,
	    .group = cf->runner_group,
	    .port = (uint16_t)(cf->runner_port + 2 * c->slot->index),
	    .rate_cap = c->rate_bps ? c->rate_bps : cf->runner_rate,
	    .min_receivers = (unsigned)ready,
	    .wait_ms = (unsigned)cf->runner_ready_ms,
	    .ttl = (unsigned)cf->runner_ttl,
	    /* Agents on the server's own host (a demo, a test) hear the session too. */
	    .loop = true,
	    .session = c->session,
	    .key = c->key,
	    .keylen = sizeof(c->key),
	    .status = run_status,
	    .ctx = &rs,
	    .stop = &c->slot->stop,
	};
	log_info("run %lld: session %08x to %zu machine%s on %s:%u", (long long)c->id, c->session,
	         ready, ready == 1 ? "" : "s", o.group, o.port);
	char err[512] = "";
	int rc = mc_send(&o, err, sizeof(err));
	run_flush(c, c->sent_bytes);
	pthread_mutex_lock(&c->slot->rn->mu);
	c->slot->rate_bps = 0;
	pthread_mutex_unlock(&c->slot->rn->mu);
	if (rc < 0) {
		snprintf(why, whysz, "the multicast session failed: %s", err);
		log_warn("run %lld: %s", (long long)c->id, why);
		return rc;
	}
	return 0;
}

/*
 * Waits for the results of the session's machines. A machine whose agent is
 * ready again (restarted) or failed with a retryable reason goes to the next
 * round unless this was the last. Returns how many machines that are.
 */
static size_t run_collect(struct run_ctx *c, bool last)
{
	uint64_t deadline = mtime_ms() + c->srv->conf.runner_finish_ms;
	size_t again;
	for (;;) {
		size_t open = 0;
		again = 0;
		for (size_t i = 0; i < c->n; i++) {
			struct run_target *t = &c->t[i];
			struct run_cmd v;
			if (run_final(t->state) || !t->cmd)
				continue;
			if (run_cmd_read(c, t->cmd, &v) < 0) {
				run_set(c, t, "failed", "its command disappeared from the store");
				continue;
			}
			if (!run_take_result(c, t, &v, !last)) {
				if (strcmp(t->state, "waiting") == 0 && !t->cmd)
					again++;
				else if (strcmp(v.state, "running") == 0 &&
				         strcmp(v.phase, "ready") == 0 && !last) {
					/* Its agent restarted and waits for a session. */
					if (strcmp(t->state, "ready") != 0)
						run_set(c, t, "ready", NULL);
					again++;
				} else
					open++;
			}
			json_decref(v.result);
		}
		if (open == 0 || mtime_ms() >= deadline || run_stopped(c))
			break;
		run_sleep_ms(RUN_POLL_MS);
	}
	for (size_t i = 0; i < c->n && !run_stopped(c); i++) {
		struct run_target *t = &c->t[i];
		if ((strcmp(t->state, "ready") == 0 || strcmp(t->state, "receiving") == 0) &&
		    t->cmd && (last || !t->in_session || strcmp(t->state, "receiving") == 0)) {
			struct run_cmd v;
			bool waiting_again = false;
			if (run_cmd_read(c, t->cmd, &v) == 0) {
				waiting_again = !last && strcmp(v.state, "running") == 0 &&
				                strcmp(v.phase, "ready") == 0;
				json_decref(v.result);
			}
			if (waiting_again)
				continue;
			agentq_cancel_run(c->srv, c->id, t->machine);
			t->cmd = 0;
			run_set(c, t, "failed",
			        last ? "it did not complete within %llu sessions"
			             : "no result from its agent within %llus after the session",
			        (unsigned long long)(last ? c->srv->conf.runner_rounds
			                                  : c->srv->conf.runner_finish_ms / 1000));
		}
	}
	return again;
}

/* ---- the whole run -------------------------------------------------------- */

static void run_end(struct run_ctx *c, const char *send_error)
{
	char why[RUN_REASON_MAX + 64];
	size_t ok = 0, missing = 0, failed = 0;
	if (c->slot->cancel) {
		run_finish(c->srv, c->id, "cancelled", "cancelled by a user");
		return;
	}
	if (run_stopped(c)) {
		run_finish(c->srv, c->id, "failed", "mlserver was stopped during the run");
		return;
	}
	for (size_t i = 0; i < c->n; i++) {
		const char *s = c->t[i].state;
		if (strcmp(s, "done") == 0 || strcmp(s, "current") == 0)
			ok++;
		else if (strcmp(s, "missing") == 0)
			missing++;
		else
			failed++;
	}
	if (send_error) {
		run_finish(c->srv, c->id, "failed", send_error);
	} else if (ok == c->n) {
		run_finish(c->srv, c->id, "done", NULL);
	} else {
		snprintf(why, sizeof(why),
		         "%zu of %zu machines did not get the version (%zu missing, %zu failed)",
		         c->n - ok, c->n, missing, failed);
		run_finish(c->srv, c->id, "failed", why);
	}
}

/*
 * The deployment's boot mode (docs/netboot.md) applies to its machines
 * while the run runs, so that those woken boot into Microlinux, say; the
 * run's end removes it (run_finish).
 */
static void run_boot_mode(struct run_ctx *c)
{
	if (!c->boot_mode)
		return;
	char reason[64];
	snprintf(reason, sizeof(reason), "run %lld", (long long)c->id);
	size_t set = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->t[i].machine && boot_temp_set(c->srv->store, c->t[i].machine, c->boot_mode,
		                                     c->id, reason, "", 0) == 0)
			set++;
	log_info("run %lld: %zu machine%s boot %s while it runs", (long long)c->id, set,
	         set == 1 ? "" : "s", boot_mode_str(c->boot_mode));
}

void run_exec(struct srv *srv, struct run_slot *slot, int64_t run)
{
	struct run_ctx c = {.srv = srv, .slot = slot, .id = run};
	char why[RUN_REASON_MAX] = "", send_err[RUN_REASON_MAX] = "";
	bool send_failed = false;
	if (run_load(&c, why, sizeof(why)) < 0 || run_resolve(&c, why, sizeof(why)) < 0 ||
	    run_targets_load(&c, why, sizeof(why)) < 0) {
		run_finish(srv, run, "failed", why);
		goto out;
	}
	if (c.n == 0) {
		run_finish(srv, run, "failed", "the deployment's targets match no machine");
		goto out;
	}
	log_info("run %lld: %s, image %s version %lld, %zu machine%s", (long long)run,
	         c.deployment_name, c.image_name, (long long)c.number, c.n, c.n == 1 ? "" : "s");
	run_wait_overlap(&c);
	run_boot_mode(&c);
	if (c.wake && !run_stopped(&c)) {
		run_phase(srv, run, "waking");
		run_wake(&c);
	}
	if (!run_stopped(&c)) {
		run_phase(srv, run, "waiting");
		run_wait_agents(&c);
	}
	if (RAND_bytes(c.key, sizeof(c.key)) != 1 ||
	    RAND_bytes((unsigned char *)&c.session, sizeof(c.session)) != 1) {
		run_finish(srv, run, "failed", "no random bytes for the session key");
		goto out;
	}
	c.session |= 1; /* 0 means "any session" to a receiver */
	for (uint64_t round = 1; round <= srv->conf.runner_rounds && !run_stopped(&c); round++) {
		bool last = round == srv->conf.runner_rounds;
		run_phase(srv, run, "preparing");
		size_t ready = run_prepare(&c);
		if (ready == 0 || run_stopped(&c))
			break;
		run_phase(srv, run, "sending");
		if (run_send(&c, ready, send_err, sizeof(send_err)) < 0) {
			send_failed = true;
			last = true;
		}
		run_phase(srv, run, "finishing");
		if (run_collect(&c, last) == 0 || send_failed)
			break;
	}
	for (size_t i = 0; i < c.n && !run_stopped(&c); i++)
		if (!run_final(c.t[i].state))
			run_set(&c, &c.t[i], "failed", "%s",
			        send_failed ? send_err
			                    : "it did not complete in the run's sessions");
	run_end(&c, send_failed ? send_err : NULL);
out:
	free(c.t);
}

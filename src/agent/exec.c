/*
 * Executing commands (docs/mlagent.md, "Commands"): each on its own thread
 * with its own HTTPS handle. A receive fetches and checks the manifest,
 * prepares the store (space check), joins the multicast session with
 * mc_receive and commits; a wol sends magic packets into one of this
 * machine's subnets; a rollback switches back. Every outcome is posted as
 * the contract says (docs/agent-protocol.md).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "fileio.h"
#include "log.h"
#include "manifest.h"
#include "mtime.h"
#include "proto.h"
#include "sha256.h"

#define EXEC_MANIFEST_MAX (64u << 20) /* libmlcast's receivers take no larger one */

int agent_post(struct ahttp *h, struct agent_cmd *cmd, const char *state, const char *phase,
               json_t *result)
{
	struct agent *ag = cmd->ag;
	char path[64], why[AGENT_ERR_SIZE];
	bool final = strcmp(state, "running") != 0;
	json_t *b = json_pack("{s:s}", "state", state);
	int rc = -EIO;
	if (b && phase)
		json_object_set_new(b, "phase", json_string(phase));
	if (b && result)
		json_object_set(b, "result", result);
	json_decref(result);
	char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
	json_decref(b);
	if (!text)
		return -ENOMEM;
	if (final) {
		pthread_mutex_lock(&ag->mu);
		free(cmd->final);
		cmd->final = strdup(text);
		cmd->finished = cmd->final != NULL;
		pthread_mutex_unlock(&ag->mu);
	}
	snprintf(path, sizeof(path), "/api/v1/agent/commands/%llu", (unsigned long long)cmd->id);
	for (int i = 0; i < (final ? 3 : 1) && !*ag->stop; i++) {
		struct ahttp_resp r;
		int hr = ahttp_do(h, "POST", path, text, 65536, 30, &r, why, sizeof(why));
		if (hr == 0) {
			if (r.status == 200)
				rc = 0;
			else
				log_warn("command %llu: posting %s: HTTP %ld",
				         (unsigned long long)cmd->id, state, r.status);
			ahttp_resp_free(&r);
			/* An HTTP answer is final: the poll thread re-posts when it must. */
			break;
		}
		log_warn("command %llu: posting %s: %s", (unsigned long long)cmd->id, state, why);
		agent_sleep(ag->stop, 1000u << i);
	}
	if (rc == 0)
		log_debug("command %llu: %s%s%s", (unsigned long long)cmd->id, state,
		          phase ? " " : "", phase ? phase : "");
	free(text);
	return rc;
}

static json_t *exec_failed(const char *code, const char *reason, bool retryable)
{
	return json_pack("{s:s, s:s, s:b}", "code", code, "reason", reason, "retryable", retryable);
}

/* ---- receive ---------------------------------------------------------- */

/* Waits until no other receive holds the image, then holds it; false when stopping. */
static bool exec_hold_image(struct agent_cmd *cmd)
{
	struct agent *ag = cmd->ag;
	bool ok = false;
	pthread_mutex_lock(&ag->mu);
	while (!*ag->stop && !cmd->stop) {
		bool busy = false;
		for (struct agent_cmd *o = ag->cmds; o; o = o->next)
			if (o != cmd && o->receiving && o->c.u.rx.image_id == cmd->c.u.rx.image_id)
				busy = true;
		if (!busy) {
			cmd->receiving = true;
			ok = true;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&ag->cv, &ag->mu, &ts);
	}
	pthread_mutex_unlock(&ag->mu);
	return ok;
}

static void exec_release_image(struct agent_cmd *cmd)
{
	pthread_mutex_lock(&cmd->ag->mu);
	cmd->receiving = false;
	pthread_cond_broadcast(&cmd->ag->cv);
	pthread_mutex_unlock(&cmd->ag->mu);
}

/*
 * The space figures of the new manifest m: the raw bytes of its non-zero
 * chunks, and of those that differ from the chunk at the same index of the
 * active version's manifest (kept next to its disk.raw), when there is one.
 */
static void exec_space(const struct manifest *m, const char *active_disk, uint64_t *nonzero,
                       uint64_t *changed)
{
	struct manifest old = {0};
	char mpath[PATH_MAX];
	const char *why;
	bool have_old = false;
	*nonzero = *changed = 0;
	if (active_disk) {
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", active_disk);
		if ((size_t)snprintf(mpath, sizeof(mpath), "%s/manifest", dirname(tmp)) <
		    sizeof(mpath))
			have_old =
			    mf_load(mpath, &old, &why) == 0 && old.chunk_size == m->chunk_size;
	}
	for (uint32_t i = 0; i < m->chunk_count; i++) {
		if (m->chunks[i].flags & MF_ZERO)
			continue;
		uint64_t n = mf_chunk_raw_len(m, i);
		*nonzero += n;
		if (!have_old || i >= old.chunk_count || (old.chunks[i].flags & MF_ZERO) ||
		    memcmp(old.chunks[i].sha256, m->chunks[i].sha256, SHA256_LEN) != 0)
			*changed += n;
	}
	/* Without the old manifest the store falls back to its own estimate. */
	if (!have_old)
		*changed = 0;
	mf_free(&old);
}

struct exec_rx_status {
	struct agent_cmd *cmd;
	volatile int receiving; /* mc_receive reached RECEIVING: the phase is to be posted */
	uint64_t bytes, seeded; /* from the latest status */
};

/* mc_receive's status callback: on its thread, so it only notes the phase. */
static void exec_rx_status(void *ctx, const struct mc_recv_status *st)
{
	struct exec_rx_status *s = ctx;
	if (st->state >= MC_R_RECEIVING && st->state <= MC_R_VERIFYING)
		s->receiving = 1;
	s->bytes = st->bytes;
	s->seeded = st->seeded_chunks;
}

struct exec_poster {
	struct agent_cmd *cmd;
	struct exec_rx_status *st;
	volatile int done;
};

/*
 * Posts phase "receiving" once mc_receive gets there, from a thread of its
 * own: an HTTPS round trip inside the receiver's loop would cost packets.
 */
static void *exec_poster_main(void *arg)
{
	struct exec_poster *p = arg;
	struct agent *ag = p->cmd->ag;
	while (!p->done && !*ag->stop && !p->st->receiving)
		agent_sleep(&p->done, 200);
	if (p->st->receiving && !p->done) {
		struct ahttp *h =
		    ahttp_new(ag->server, ag->pin, ag->insecure, ag->cred.credential, ag->stop);
		if (h)
			agent_post(h, p->cmd, "running", "receiving", NULL);
		ahttp_free(h);
	}
	return NULL;
}

static void exec_receive(struct agent_cmd *cmd, struct ahttp *h)
{
	struct agent *ag = cmd->ag;
	const struct acmd_receive *a = &cmd->c.u.rx;
	char why[AGENT_ERR_SIZE], path[PATH_MAX], url[96];
	struct ahttp_resp r = {0};
	struct manifest m = {0};
	struct imgstore_rx *rx = NULL;
	struct imgstore_rx_info in;
	uint64_t active = 0, t0 = mtime_ms();
	uint8_t d[SHA256_LEN];
	const char *mwhy;
	int rc;

	agent_post(h, cmd, "running", "preparing", NULL);
	if (!exec_hold_image(cmd)) {
		/* A cancel while it waited for the image; a shutdown posts nothing. */
		if (!*ag->stop)
			agent_post(h, cmd, "cancelled", NULL, NULL);
		return;
	}
	/*
	 * Already here? Then it is made active (if it is not) without joining,
	 * but only when the stored version has the command's SHA-256: a
	 * version id the server reused (its database was reset) names other
	 * bytes, and that stale copy is dropped and received anew.
	 */
	pthread_mutex_lock(&ag->store_mu);
	int drc =
	    imgstore_drop_stale(ag->store, a->image_id, a->version_id, a->sha256, why, sizeof(why));
	bool have_active =
	    imgstore_active(ag->store, a->image_id, &active, path, sizeof(path)) == 0;
	if (drc == 0)
		rc = have_active && active == a->version_id
		         ? 0
		         : imgstore_activate(ag->store, a->image_id, a->version_id, why,
		                             sizeof(why));
	else
		rc = drc == -EBUSY ? -EBUSY : -ENOENT; /* dropped or unsure: receive it */
	pthread_mutex_unlock(&ag->store_mu);
	if (rc == -EBUSY) {
		log_warn("command %llu: %s", (unsigned long long)cmd->id, why);
		agent_post(h, cmd, "failed", NULL, exec_failed("hash", why, false));
		goto out;
	}
	if (rc == 0) {
		log_info("command %llu: image %llu version %llu is here already: active",
		         (unsigned long long)cmd->id, (unsigned long long)a->image_id,
		         (unsigned long long)a->version_id);
		agent_post(h, cmd, "done", NULL,
		           json_pack("{s:s, s:i, s:i, s:i, s:I}", "outcome", "current", "bytes", 0,
		                     "seeded_chunks", 0, "ms", 0, "active",
		                     (json_int_t)a->version_id));
		if (!have_active || active != a->version_id)
			agent_hello_soon(ag);
		goto out;
	}
	/* The manifest, checked against the command before anything uses it. */
	snprintf(url, sizeof(url), "/api/v1/agent/manifest/%llu",
	         (unsigned long long)a->version_id);
	rc = ahttp_do(h, "GET", url, NULL, EXEC_MANIFEST_MAX, 300, &r, why, sizeof(why));
	if (rc < 0 || r.status != 200) {
		if (rc == 0)
			snprintf(why, sizeof(why), "GET %s: HTTP %ld", url, r.status);
		if (rc != -EINTR)
			agent_post(h, cmd, "failed", NULL, exec_failed("manifest", why, rc < 0));
		goto out;
	}
	sha256_buf(r.body, r.len, d);
	if (!ct_equal(d, a->manifest_sha256, SHA256_LEN)) {
		agent_post(
		    h, cmd, "failed", NULL,
		    exec_failed("manifest",
		                "the manifest's SHA-256 is not the command's manifest_sha256",
		                false));
		goto out;
	}
	if (mf_decode((const uint8_t *)r.body, r.len, &m, &mwhy) < 0) {
		snprintf(why, sizeof(why), "the manifest is invalid: %s", mwhy);
		agent_post(h, cmd, "failed", NULL, exec_failed("manifest", why, false));
		goto out;
	}
	char hex[SHA256_HEX_LEN];
	if (strcmp(sha256_hex(m.image_sha256, hex), a->sha256) != 0 || m.image_size != a->size) {
		agent_post(h, cmd, "failed", NULL,
		           exec_failed("manifest",
		                       "the manifest's image SHA-256 or size is not the command's",
		                       false));
		goto out;
	}
	struct imgstore_prep_opts po = {0};
	exec_space(&m, have_active ? path : NULL, &po.nonzero_bytes, &po.changed_bytes);
	pthread_mutex_lock(&ag->store_mu);
	rc = imgstore_prepare(ag->store, a->image_id, a->version_id, a->sha256, a->size, &po, &rx,
	                      why, sizeof(why));
	pthread_mutex_unlock(&ag->store_mu);
	if (rc == -ENOSPC) {
		agent_post(h, cmd, "failed", NULL, exec_failed("nospace", why, false));
		goto out;
	}
	if (rc < 0) {
		/* -EBUSY (a reception of the image open) passes: internal, retryable. */
		agent_post(h, cmd, "failed", NULL,
		           exec_failed(rc == -EBUSY ? "internal" : "io", why,
		                       rc == -EBUSY && acmd_start_retryable(rc)));
		goto out;
	}
	imgstore_rx_info(rx, &in);
	snprintf(path, sizeof(path), "%s/manifest", in.dir);
	if ((rc = fio_write_file_atomic(path, r.body, r.len, 0644)) < 0) {
		log_seterr(why, sizeof(why), "%s: %s", path, strerror(-rc));
		agent_post(h, cmd, "failed", NULL, exec_failed("io", why, true));
		imgstore_rx_free(rx);
		goto out;
	}
	agent_post(h, cmd, "running", "ready", NULL);

	struct exec_rx_status st = {.cmd = cmd};
	int mrc = 0;
	if (!in.complete) {
		struct exec_poster poster = {.cmd = cmd, .st = &st};
		pthread_t pt;
		bool pt_ok = pthread_create(&pt, NULL, exec_poster_main, &poster) == 0;
		struct mc_recv_opts o = {
		    .output = in.output,
		    .seed = in.seed,
		    .resume = true,
		    .ifname = ag->c->interface,
		    .group = a->group,
		    .port = a->port,
		    .session = a->session,
		    .manifest_sha256 = a->manifest_sha256,
		    .key = a->keylen ? a->key : NULL,
		    .keylen = a->keylen,
		    .name = a->name,
		    .timeout_ms = a->timeout_s * 1000,
		    .status = exec_rx_status,
		    .ctx = &st,
		    .stop = &cmd->stop,
		};
		log_info("command %llu: receiving image %llu version %llu from %s:%u%s",
		         (unsigned long long)cmd->id, (unsigned long long)a->image_id,
		         (unsigned long long)a->version_id, a->group, a->port,
		         in.resumed ? " (resumed)" : "");
		mrc = mc_receive(&o, why, sizeof(why));
		poster.done = 1;
		if (pt_ok)
			pthread_join(pt, NULL);
	}
	if (mrc != 0) {
		int code = mrc > 0 ? mrc : MC_FAIL_INTERNAL;
		if (cmd->cancelled) {
			log_info("command %llu: cancelled; the partial image is kept",
			         (unsigned long long)cmd->id);
			imgstore_rx_free(rx);
			agent_post(h, cmd, "cancelled", NULL, NULL);
		} else if (*ag->stop) {
			/* Shutting down: keep it, and let the server hand the command out again. */
			imgstore_rx_free(rx);
		} else {
			/*
			 * A negative return: mc_receive could not start (code
			 * "internal"); worth another go only when transient.
			 */
			bool retry =
			    mrc < 0 ? acmd_start_retryable(mrc) : acmd_fail_retryable(code);
			log_warn("command %llu: reception failed: %s", (unsigned long long)cmd->id,
			         why);
			if (retry || mrc < 0)
				imgstore_rx_free(rx);
			else
				(void)imgstore_abort(rx);
			agent_post(h, cmd, "failed", NULL,
			           exec_failed(acmd_fail_word(code), why, retry));
		}
		goto out;
	}
	agent_post(h, cmd, "running", "switching", NULL);
	pthread_mutex_lock(&ag->store_mu);
	rc = imgstore_commit(rx, 0, why, sizeof(why));
	pthread_mutex_unlock(&ag->store_mu);
	if (rc < 0) {
		agent_post(h, cmd, "failed", NULL,
		           exec_failed(rc == -EBADMSG ? "hash" : "io", why, rc != -EBADMSG));
		goto out;
	}
	log_info("command %llu: image %llu version %llu received and active",
	         (unsigned long long)cmd->id, (unsigned long long)a->image_id,
	         (unsigned long long)a->version_id);
	agent_post(h, cmd, "done", NULL,
	           json_pack("{s:s, s:I, s:I, s:I, s:I}", "outcome", "done", "bytes",
	                     (json_int_t)st.bytes, "seeded_chunks", (json_int_t)st.seeded, "ms",
	                     (json_int_t)(mtime_ms() - t0), "active", (json_int_t)a->version_id));
	agent_hello_soon(ag);
out:
	mf_free(&m);
	ahttp_resp_free(&r);
	exec_release_image(cmd);
}

/* ---- wol and rollback -------------------------------------------------- */

static void exec_wol(struct agent_cmd *cmd, struct ahttp *h)
{
	const struct wol_relay *w = &cmd->c.u.wol;
	struct inv_addrs a;
	char why[AGENT_ERR_SIZE], ip[MATCH_IP4_SIZE];
	if (inv_addrs_get(&a, why, sizeof(why)) < 0) {
		agent_post(h, cmd, "failed", NULL, json_pack("{s:s}", "reason", why));
		return;
	}
	bool ok = acmd_bcast_allowed(w->broadcast, a.nets, a.nnets);
	inv_addrs_free(&a);
	if (!ok) {
		match_ip4_format(w->broadcast, ip);
		snprintf(why, sizeof(why),
		         "broadcast %s is neither 255.255.255.255 nor the broadcast of one of this "
		         "machine's subnets",
		         ip);
		log_warn("command %llu: %s", (unsigned long long)cmd->id, why);
		agent_post(h, cmd, "failed", NULL, json_pack("{s:s}", "reason", why));
		return;
	}
	struct wol_target *t = calloc(w->nmacs ? w->nmacs : 1, sizeof(*t));
	if (!t) {
		agent_post(h, cmd, "failed", NULL, json_pack("{s:s}", "reason", "out of memory"));
		return;
	}
	for (size_t i = 0; i < w->nmacs; i++) {
		memcpy(t[i].mac, w->macs[i], MATCH_MAC_BYTES);
		t[i].dest.addr = w->broadcast;
	}
	struct wol_opts o = {.port = w->port, .repeat = w->repeat, .gap_ms = w->gap_ms};
	int rc = wol_send(&o, t, w->nmacs, why, sizeof(why));
	if (rc < 0) {
		agent_post(h, cmd, "failed", NULL, json_pack("{s:s}", "reason", why));
	} else {
		unsigned sent = 0;
		for (size_t i = 0; i < w->nmacs; i++)
			sent += t[i].sent;
		log_info("command %llu: %u magic packet(s) sent for %zu machine(s)",
		         (unsigned long long)cmd->id, sent, w->nmacs);
		agent_post(h, cmd, "done", NULL, json_pack("{s:i}", "sent", (int)sent));
	}
	free(t);
}

static void exec_rollback(struct agent_cmd *cmd, struct ahttp *h)
{
	struct agent *ag = cmd->ag;
	const struct acmd_rollback *rb = &cmd->c.u.rb;
	char why[AGENT_ERR_SIZE];
	uint64_t v = 0;
	bool changed = false;
	pthread_mutex_lock(&ag->store_mu);
	int rc = imgstore_active(ag->store, rb->image_id, &v, NULL, 0);
	if (rc < 0)
		v = 0;
	rc = 0;
	/*
	 * A rollback switches active and previous: delivered twice it would
	 * undo itself, so with from_version it only acts while that is active.
	 */
	if (acmd_rollback_applies(rb, v)) {
		rc = imgstore_rollback(ag->store, rb->image_id, why, sizeof(why));
		if (rc == 0)
			rc = imgstore_active(ag->store, rb->image_id, &v, NULL, 0);
		changed = rc == 0;
	}
	pthread_mutex_unlock(&ag->store_mu);
	if (rc < 0) {
		agent_post(h, cmd, "failed", NULL, json_pack("{s:s}", "reason", why));
		return;
	}
	if (changed)
		log_info("command %llu: image %llu rolled back to version %llu",
		         (unsigned long long)cmd->id, (unsigned long long)rb->image_id,
		         (unsigned long long)v);
	else
		log_info("command %llu: image %llu: version %llu is not active (%llu is): nothing "
		         "to roll back",
		         (unsigned long long)cmd->id, (unsigned long long)rb->image_id,
		         (unsigned long long)rb->from_version, (unsigned long long)v);
	agent_post(h, cmd, "done", NULL,
	           json_pack("{s:I, s:b}", "active", (json_int_t)v, "changed", changed));
	if (changed)
		agent_hello_soon(ag);
}

static void *exec_main(void *arg)
{
	struct agent_cmd *cmd = arg;
	struct agent *ag = cmd->ag;
	struct ahttp *h =
	    ahttp_new(ag->server, ag->pin, ag->insecure, ag->cred.credential, ag->stop);
	const char *lost = "out of memory: no HTTPS handle";
	if (h) {
		lost = "the command ended without a result (a bug)";
		switch (cmd->c.kind) {
		case ACMD_RECEIVE:
			exec_receive(cmd, h);
			break;
		case ACMD_WOL:
			exec_wol(cmd, h);
			break;
		case ACMD_ROLLBACK:
			exec_rollback(cmd, h);
			break;
		default:
			agent_post(h, cmd, "failed", NULL,
			           exec_failed("internal", "unexpected command kind", false));
			break;
		}
	}
	/*
	 * The invariant: a command ends with a final state unless the agent is
	 * shutting down (then the server hands it out again). A path that
	 * posted none would leave it "running" on the server for ever.
	 */
	pthread_mutex_lock(&ag->mu);
	bool posted = cmd->finished, cancelled = cmd->cancelled;
	pthread_mutex_unlock(&ag->mu);
	if (!posted && !*ag->stop) {
		if (!h)
			h = ahttp_new(ag->server, ag->pin, ag->insecure, ag->cred.credential,
			              ag->stop);
		if (!h)
			log_warn("command %llu: %s; the poll runs it again",
			         (unsigned long long)cmd->id, lost);
		else if (cancelled)
			agent_post(h, cmd, "cancelled", NULL, NULL);
		else
			agent_post(h, cmd, "failed", NULL, exec_failed("internal", lost, false));
	}
	ahttp_free(h);
	pthread_mutex_lock(&ag->mu);
	cmd->running = false;
	ag->running--;
	pthread_cond_broadcast(&ag->cv);
	pthread_mutex_unlock(&ag->mu);
	return NULL;
}

int agent_exec_start(struct agent_cmd *cmd)
{
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &at, exec_main, cmd);
	pthread_attr_destroy(&at);
	return rc == 0 ? 0 : -rc;
}

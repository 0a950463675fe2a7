/*
 * The daemon (docs/mlagent.md): enrollment, then two threads that keep the
 * control channel — the heartbeat (hello with the inventory) and the long
 * poll for commands — and one thread per command (exec.c). Every request
 * goes out from the agent, so it works behind NAT; after an error a thread
 * waits 1 s doubling to 60 s with jitter (backoff.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "fileio.h"
#include "log.h"
#include "mtime.h"

#define AGENT_BODY_MAX (16u << 20) /* largest JSON answer taken */

void agent_sleep(volatile int *stop, uint32_t ms)
{
	while (ms && !(stop && *stop)) {
		uint32_t step = ms > 100 ? 100 : ms;
		struct timespec ts = {0, (long)step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static uint32_t agent_rand(void)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)time(NULL) * 2654435761u;
	return r;
}

void agent_hello_soon(struct agent *ag)
{
	pthread_mutex_lock(&ag->mu);
	ag->hello_now = true;
	pthread_cond_broadcast(&ag->cv);
	pthread_mutex_unlock(&ag->mu);
}

/* A 401 after enrollment: the credential was revoked. Logged once per streak. */
static void agent_revoked(struct agent *ag, bool yes)
{
	pthread_mutex_lock(&ag->mu);
	bool was = ag->revoked;
	ag->revoked = yes;
	pthread_mutex_unlock(&ag->mu);
	if (yes && !was)
		log_error(
		    "the server refuses this machine's credential (401): it was revoked or the "
		    "machine deleted; doing nothing until an admin re-enrolls it (delete %s/"
		    "credential and restart with an enrollment token)",
		    ag->c->data_dir);
	else if (!yes && was)
		log_info("the server accepts the credential again");
}

/* The error code of an API error answer, or "" (for log lines). */
static void agent_api_error(const struct ahttp_resp *r, char *code, size_t csz, char *msg,
                            size_t msz)
{
	json_t *j = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
	const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	log_escape(c ? c : "", c ? strlen(c) : 0, code, csz);
	log_escape(m ? m : "", m ? strlen(m) : 0, msg, msz);
	json_decref(j);
}

/* ---- enrollment ------------------------------------------------------ */

/* The enrollment token: enroll_token, or the first line of enroll_token_file. */
static int agent_token(const struct acfg *c, char tok[CRED_TOKEN_LEN + 1], char *err, size_t errsz)
{
	if (c->enroll_token) {
		memcpy(tok, c->enroll_token, CRED_TOKEN_LEN + 1);
		return 0;
	}
	if (!c->enroll_token_file) {
		log_seterr(err, errsz,
		           "%s/credential does not exist and no enrollment token is configured "
		           "(--enroll-token, enroll_token, enroll_token_file or ml.token=)",
		           c->data_dir);
		return -ENOENT;
	}
	int n = fio_read_line(c->enroll_token_file, tok, CRED_TOKEN_LEN + 1);
	if (n < 0 && n != -ENAMETOOLONG) {
		log_seterr(err, errsz, "enroll_token_file %s: %s", c->enroll_token_file,
		           strerror(-n));
		return n;
	}
	if (n < 0 || !cred_token_ok(tok, (size_t)n, "mle_")) {
		log_seterr(err, errsz, "enroll_token_file %s: expected mle_ and 64 hex digits",
		           c->enroll_token_file);
		return -EINVAL;
	}
	return 0;
}

/* The enroll answer into *cr; 0 or -EINVAL. */
static int agent_enroll_answer(const struct ahttp_resp *r, struct cred *cr)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	int rc = -EINVAL;
	const char *cred = json_string_value(json_object_get(j, "credential"));
	const char *name = json_string_value(json_object_get(j, "machine"));
	json_t *id = json_object_get(j, "machine_id");
	if (!cred || !cred_token_ok(cred, strlen(cred), "mla_") || !json_is_integer(id) ||
	    json_integer_value(id) < 1)
		goto out;
	memcpy(cr->credential, cred, CRED_TOKEN_LEN + 1);
	cr->machine_id = (uint64_t)json_integer_value(id);
	if (name)
		log_escape(name, strlen(name), cr->name, sizeof(cr->name));
	rc = 0;
out:
	json_decref(j);
	return rc;
}

/*
 * Obtains a credential: POST /api/v1/agent/enroll until the server gives
 * one (a bad token or an unknown machine is retried slowly: an admin may fix
 * it), then writes DATA_DIR/credential before anything uses it.
 */
static int agent_enroll(struct agent *ag, const char *path, const char *pin, char *err,
                        size_t errsz)
{
	const struct acfg *c = ag->c;
	char tok[CRED_TOKEN_LEN + 1], host[HOST_NAME_MAX + 1] = "", why[AGENT_ERR_SIZE];
	struct backoff b;
	struct inv_addrs a;
	int rc = agent_token(c, tok, err, errsz);
	if (rc < 0)
		return rc;
	(void)gethostname(host, sizeof(host) - 1);
	if ((rc = inv_addrs_get(&a, err, errsz)) < 0)
		return rc;
	json_t *body =
	    json_pack("{s:s, s:s?, s:s, s:O, s:O, s:s}", "token", tok, "name", c->name, "hostname",
	              host, "macs", a.macs, "ips", a.ips, "agent_version", MLAGENT_VERSION);
	inv_addrs_free(&a);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	struct ahttp *h = ahttp_new(ag->server, pin, ag->insecure, NULL, ag->stop);
	if (!text || !h) {
		free(text);
		ahttp_free(h);
		log_seterr(err, errsz, "out of memory");
		return -ENOMEM;
	}
	backoff_init(&b, 1000, 60000);
	rc = -EINTR;
	while (!*ag->stop) {
		struct ahttp_resp r;
		char code[64], msg[256];
		int hr = ahttp_do(h, "POST", "/api/v1/agent/enroll", text, AGENT_BODY_MAX, 60, &r,
		                  why, sizeof(why));
		if (hr == 0 && r.status == 201) {
			struct cred cr = {0};
			if (agent_enroll_answer(&r, &cr) < 0) {
				log_warn("enrollment: the server's answer lacks a credential");
			} else {
				snprintf(cr.server, sizeof(cr.server), "%s", ag->server);
				snprintf(cr.fingerprint, sizeof(cr.fingerprint), "%s",
				         c->fingerprint ? c->fingerprint : "");
				snprintf(cr.pin, sizeof(cr.pin), "%s", pin ? pin : "");
				rc = cred_save(path, &cr, err, errsz);
				ahttp_resp_free(&r);
				if (rc == 0) {
					ag->cred = cr;
					log_info("enrolled as machine %llu (%s)",
					         (unsigned long long)cr.machine_id, cr.name);
				}
				break;
			}
		} else if (hr == 0) {
			agent_api_error(&r, code, sizeof(code), msg, sizeof(msg));
			if (r.status == 401)
				log_error(
				    "enrollment refused: the token is bad, expired, used up or "
				    "revoked (%s); retrying: an admin may issue a new one",
				    msg);
			else if (r.status == 403)
				log_error(
				    "enrollment refused: the server does not know this machine and "
				    "does not register unknown ones (%s); retrying: an admin may "
				    "add it",
				    msg);
			else
				log_warn("enrollment: HTTP %ld %s %s", r.status, code, msg);
		} else if (hr == -EPERM) {
			log_error("enrollment: %s", why);
		} else if (hr != -EINTR) {
			log_warn("enrollment: %s", why);
		}
		if (hr == 0)
			ahttp_resp_free(&r);
		agent_sleep(ag->stop, backoff_next(&b, agent_rand()));
	}
	if (rc == -EINTR)
		log_seterr(err, errsz, "stopped before enrollment finished");
	free(text);
	ahttp_free(h);
	return rc;
}

/* ---- heartbeat ------------------------------------------------------- */

static json_t *agent_inventory(struct agent *ag)
{
	struct imgstore_list l;
	char why[AGENT_ERR_SIZE];
	bool have = false;
	pthread_mutex_lock(&ag->store_mu);
	have = imgstore_list(ag->store, &l, why, sizeof(why)) == 0;
	pthread_mutex_unlock(&ag->store_mu);
	if (!have)
		log_warn("image store: %s", why);
	struct inv_opts o = {.data_dir = ag->c->data_dir,
	                     .images = have ? &l : NULL,
	                     .reflink = imgstore_reflink(ag->store),
	                     .install_status = ag->c->install_status};
	json_t *j = inv_build(&o, why, sizeof(why));
	if (!j)
		log_warn("inventory: %s", why);
	if (have)
		imgstore_list_free(&l);
	return j;
}

static void *agent_heartbeat(void *arg)
{
	struct agent *ag = arg;
	struct ahttp *h =
	    ahttp_new(ag->server, ag->pin, ag->insecure, ag->cred.credential, ag->stop);
	struct backoff b;
	char why[AGENT_ERR_SIZE];
	backoff_init(&b, 1000, 60000);
	while (h && !*ag->stop) {
		uint32_t wait_ms;
		json_t *inv = agent_inventory(ag);
		char *text = inv ? json_dumps(inv, JSON_COMPACT) : NULL;
		struct ahttp_resp r = {0};
		json_decref(inv);
		int rc = text ? ahttp_do(h, "POST", "/api/v1/agent/hello", text, AGENT_BODY_MAX, 60,
		                         &r, why, sizeof(why))
		              : -ENOMEM;
		free(text);
		if (rc == 0 && r.status == 200) {
			json_t *j = json_loadb(r.body, r.len, 0, NULL);
			json_t *hb = json_object_get(j, "heartbeat_s");
			json_t *pw = json_object_get(j, "poll_wait_s");
			pthread_mutex_lock(&ag->mu);
			if (json_is_integer(hb) && json_integer_value(hb) >= 5 &&
			    json_integer_value(hb) <= 3600)
				ag->heartbeat_s = (unsigned)json_integer_value(hb);
			if (json_is_integer(pw) && json_integer_value(pw) >= 1 &&
			    json_integer_value(pw) <= 60)
				ag->poll_wait_s = (unsigned)json_integer_value(pw);
			wait_ms = ag->heartbeat_s * 1000;
			pthread_mutex_unlock(&ag->mu);
			json_decref(j);
			backoff_reset(&b);
			agent_revoked(ag, false);
			log_debug("hello sent");
		} else {
			if (rc == 0 && r.status == 401) {
				agent_revoked(ag, true);
			} else if (rc == 0) {
				char code[64], msg[256];
				agent_api_error(&r, code, sizeof(code), msg, sizeof(msg));
				log_warn("hello: HTTP %ld %s %s", r.status, code, msg);
			} else if (rc != -EINTR) {
				log_warn("hello: %s", why);
			}
			wait_ms = backoff_next(&b, agent_rand());
		}
		ahttp_resp_free(&r);
		/* Wait for the next beat, a switch (hello_now), or the stop. */
		pthread_mutex_lock(&ag->mu);
		for (uint32_t waited = 0; waited < wait_ms && !ag->hello_now && !*ag->stop;
		     waited += 200) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&ag->cv, &ag->mu, &ts);
		}
		ag->hello_now = false;
		pthread_mutex_unlock(&ag->mu);
	}
	ahttp_free(h);
	return NULL;
}

/* ---- commands: the long poll ------------------------------------------ */

static struct agent_cmd *agent_find(struct agent *ag, uint64_t id)
{
	for (struct agent_cmd *c = ag->cmds; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

/* Re-posts a final result (body, freed) the server still lists (the earlier post was lost). */
static void agent_repost(struct ahttp *h, uint64_t id, char *body)
{
	char path[64], why[AGENT_ERR_SIZE];
	struct ahttp_resp r;
	if (!body)
		return;
	snprintf(path, sizeof(path), "/api/v1/agent/commands/%llu", (unsigned long long)id);
	if (ahttp_do(h, "POST", path, body, 65536, 30, &r, why, sizeof(why)) == 0) {
		log_debug("command %llu: final state posted again: HTTP %ld",
		          (unsigned long long)id, r.status);
		ahttp_resp_free(&r);
	}
	free(body);
}

/*
 * A command from the poll answer the agent has no record of: parse it, then
 * run it (or fail it at once). Returns true when it was taken as new.
 */
static bool agent_new_cmd(struct agent *ag, struct ahttp *h, const json_t *obj)
{
	char why[AGENT_ERR_SIZE];
	struct agent_cmd *c = calloc(1, sizeof(*c));
	json_t *idv = json_object_get(obj, "id");
	if (!c)
		return false;
	int rc = acmd_parse(obj, &c->c, why, sizeof(why));
	c->ag = ag;
	c->id = c->c.id ? c->c.id
	                : (json_is_integer(idv) && json_integer_value(idv) > 0
	                       ? (uint64_t)json_integer_value(idv)
	                       : 0);
	if (!c->id) {
		log_warn("poll answer: a command without a valid id: %s", why);
		free(c);
		return false;
	}
	c->listed = true;
	pthread_mutex_lock(&ag->mu);
	c->next = ag->cmds;
	ag->cmds = c;
	pthread_mutex_unlock(&ag->mu);
	if (rc < 0) {
		log_warn("%s", why);
		agent_post(h, c, "failed", NULL,
		           json_pack("{s:s, s:s, s:b}", "code", "bad_args", "reason", why,
		                     "retryable", 0));
		return true;
	}
	if (c->c.kind == ACMD_CANCEL) {
		pthread_mutex_lock(&ag->mu);
		struct agent_cmd *t = agent_find(ag, c->c.u.target);
		bool hit = t && t->running && !t->finished;
		if (hit) {
			t->cancelled = true;
			t->stop = 1;
		}
		pthread_mutex_unlock(&ag->mu);
		log_info("command %llu: cancel command %llu%s", (unsigned long long)c->id,
		         (unsigned long long)c->c.u.target, hit ? "" : " (not running here)");
		agent_post(h, c, "done", NULL, json_pack("{s:b}", "cancelled", hit));
		return true;
	}
	pthread_mutex_lock(&ag->mu);
	c->running = true;
	ag->running++;
	pthread_mutex_unlock(&ag->mu);
	if ((rc = agent_exec_start(c)) < 0) {
		pthread_mutex_lock(&ag->mu);
		c->running = false;
		ag->running--;
		pthread_mutex_unlock(&ag->mu);
		agent_post(h, c, "failed", NULL,
		           json_pack("{s:s, s:s, s:b}", "code", "internal", "reason",
		                     "cannot start a thread", "retryable",
		                     acmd_start_retryable(rc)));
	}
	return true;
}

/* Unlinks and frees a record no thread uses (neither running nor referenced). Under mu. */
static void agent_forget(struct agent *ag, struct agent_cmd *c)
{
	for (struct agent_cmd **pp = &ag->cmds; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			free(c->final);
			free(c);
			return;
		}
	}
}

/* Handles a poll answer; returns how many commands in it were new or run again. */
static size_t agent_handle_poll(struct agent *ag, struct ahttp *h, json_t *cmds)
{
	size_t i, nnew = 0;
	json_t *obj;
	pthread_mutex_lock(&ag->mu);
	for (struct agent_cmd *c = ag->cmds; c; c = c->next)
		c->listed = false;
	pthread_mutex_unlock(&ag->mu);
	json_array_foreach(cmds, i, obj)
	{
		json_t *idv = json_object_get(obj, "id");
		uint64_t id = json_is_integer(idv) && json_integer_value(idv) > 0
		                  ? (uint64_t)json_integer_value(idv)
		                  : 0;
		pthread_mutex_lock(&ag->mu);
		struct agent_cmd *c = id ? agent_find(ag, id) : NULL;
		int act = acmd_listed_action(c != NULL, c && c->running, c && c->finished);
		if (c && act == ACMD_LISTED_RUN) {
			/*
			 * Its thread ended without a final state (it could not post
			 * one): the server still waits for it, so it runs again from a
			 * fresh record rather than being ignored forever.
			 */
			log_warn("command %llu: listed but without a final state here: running it "
			         "again",
			         (unsigned long long)id);
			agent_forget(ag, c);
			c = NULL;
		}
		char *body = NULL;
		if (c) {
			c->listed = true;
			if (act == ACMD_LISTED_REPOST && c->final)
				body = strdup(c->final);
		}
		pthread_mutex_unlock(&ag->mu);
		if (act == ACMD_LISTED_REPOST)
			agent_repost(h, id, body);
		else if (act == ACMD_LISTED_RUN && agent_new_cmd(ag, h, obj))
			nnew++;
	}
	/* Finished commands the server no longer lists have reached it: forget them. */
	pthread_mutex_lock(&ag->mu);
	for (struct agent_cmd **pp = &ag->cmds; *pp;) {
		struct agent_cmd *c = *pp;
		if (c->finished && !c->running && !c->listed) {
			*pp = c->next;
			free(c->final);
			free(c);
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&ag->mu);
	return nnew;
}

static void *agent_poll(void *arg)
{
	struct agent *ag = arg;
	struct ahttp *h =
	    ahttp_new(ag->server, ag->pin, ag->insecure, ag->cred.credential, ag->stop);
	struct backoff b;
	struct acmd_poller pl;
	char why[AGENT_ERR_SIZE], path[96];
	backoff_init(&b, 1000, 60000);
	acmd_poller_init(&pl);
	while (h && !*ag->stop) {
		struct ahttp_resp r = {0};
		json_t *cmds = NULL;
		pthread_mutex_lock(&ag->mu);
		unsigned wait = ag->poll_wait_s;
		pthread_mutex_unlock(&ag->mu);
		(void)acmd_poller_path(&pl, wait, path, sizeof(path));
		uint64_t t0 = mtime_ms();
		int rc = ahttp_do(h, "GET", path, NULL, AGENT_BODY_MAX, (long)wait + 30, &r, why,
		                  sizeof(why));
		if (rc == 0 && r.status == 200 &&
		    acmd_poll_parse(r.body, r.len, &cmds, why, sizeof(why)) == 0) {
			backoff_reset(&b);
			agent_revoked(ag, false);
			size_t nnew = agent_handle_poll(ag, h, cmds);
			json_decref(cmds);
			ahttp_resp_free(&r);
			/* Nothing new and at once: never a tight loop against the server. */
			agent_sleep(ag->stop, acmd_poller_done(&pl, true, nnew, mtime_ms() - t0));
			continue;
		}
		(void)acmd_poller_done(&pl, false, 0, mtime_ms() - t0);
		if (rc == 0 && r.status == 401) {
			agent_revoked(ag, true);
		} else if (rc == 0 && r.status == 200) {
			log_warn("poll: %s", why);
		} else if (rc == 0) {
			char code[64], msg[256];
			agent_api_error(&r, code, sizeof(code), msg, sizeof(msg));
			log_warn("poll: HTTP %ld %s %s", r.status, code, msg);
		} else if (rc != -EINTR) {
			log_warn("poll: %s", why);
		}
		ahttp_resp_free(&r);
		agent_sleep(ag->stop, backoff_next(&b, agent_rand()));
	}
	ahttp_free(h);
	return NULL;
}

/* ---- start and stop -------------------------------------------------- */

/* Loads or obtains the credential and settles how the server is trusted. */
static int agent_trust(struct agent *ag, char *err, size_t errsz)
{
	const struct acfg *c = ag->c;
	char path[PATH_MAX], warn[AGENT_ERR_SIZE];
	snprintf(path, sizeof(path), "%s/credential", c->data_dir);
	int rc = cred_load(path, &ag->cred, err, errsz);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	bool enrolled = rc == 0;
	if ((rc = acfg_server_pick(c, enrolled ? ag->cred.server : NULL, &ag->server, warn,
	                           sizeof(warn), err, errsz)) < 0)
		return rc;
	if (warn[0])
		log_warn("%s", warn);
	ag->insecure = c->insecure;
	if (enrolled && ag->cred.pin[0]) {
		/* Enrolled with a pin: that pin, from now on. */
		ag->pin = ag->cred.pin;
		return 0;
	}
	if (!ag->insecure && !c->fingerprint) {
		log_seterr(err, errsz,
		           "no fingerprint of the server's certificate: give --fingerprint FP (or "
		           "fingerprint = in the config file, or ml.fp=), as mlserver prints it; "
		           "--insecure only for tests");
		return -EINVAL;
	}
	if (!ag->insecure) {
		struct backoff b;
		backoff_init(&b, 1000, 60000);
		while ((rc = ahttp_learn_pin(ag->server, c->fingerprint, ag->pinbuf, ag->stop, err,
		                             errsz)) < 0) {
			log_error("%s", err);
			if (*ag->stop)
				return -EINTR;
			agent_sleep(ag->stop, backoff_next(&b, agent_rand()));
		}
		ag->pin = ag->pinbuf;
		log_info("the server's certificate has the configured fingerprint: pinned");
	} else {
		log_warn("--insecure: the server's certificate is not checked");
	}
	if (enrolled) {
		if (!ag->pin)
			return 0;
		/*
		 * A credential enrolled with --insecure, now started with a
		 * fingerprint that matched: the pin is as good as an enrollment's,
		 * so it goes into the credential file (atomically), and later
		 * starts need no fingerprint and refuse another key.
		 */
		snprintf(ag->cred.pin, sizeof(ag->cred.pin), "%s", ag->pin);
		snprintf(ag->cred.fingerprint, sizeof(ag->cred.fingerprint), "%s", c->fingerprint);
		ag->pin = ag->cred.pin;
		char why[AGENT_ERR_SIZE];
		if (cred_save(path, &ag->cred, why, sizeof(why)) < 0)
			log_warn("keeping the pin in %s: %s (it is used until the next start)",
			         path, why);
		else
			log_info("the pin is kept in %s from now on", path);
		return 0;
	}
	return agent_enroll(ag, path, ag->pin, err, errsz);
}

/* Frees the agent's state once no thread uses it. Accepts NULL. */
static void agent_free(struct agent *ag)
{
	if (!ag)
		return;
	while (ag->cmds) {
		struct agent_cmd *x = ag->cmds;
		ag->cmds = x->next;
		free(x->final);
		free(x);
	}
	imgstore_free(ag->store);
	pthread_cond_destroy(&ag->cv);
	pthread_mutex_destroy(&ag->mu);
	pthread_mutex_destroy(&ag->store_mu);
	free(ag);
}

int agent_run(const struct acfg *c, volatile sig_atomic_t *stop, char *err, size_t errsz)
{
	struct imgstore_opts so = {.reserve = c->reserve};
	pthread_t hb, po;
	bool hb_ok = false, po_ok = false;
	int rc;
	/*
	 * On the heap: command threads are detached, and one stuck in a system
	 * call may outlive this function (see the end).
	 */
	struct agent *ag = calloc(1, sizeof(*ag));
	if (!ag) {
		log_seterr(err, errsz, "out of memory");
		return -ENOMEM;
	}
	ag->c = c;
	ag->stop = stop;
	ag->heartbeat_s = 60;
	ag->poll_wait_s = 25;
	pthread_mutex_init(&ag->mu, NULL);
	pthread_mutex_init(&ag->store_mu, NULL);
	pthread_cond_init(&ag->cv, NULL);
	if (mkdir(c->data_dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		log_seterr(err, errsz, "data_dir %s: %s", c->data_dir, strerror(errno));
		goto out;
	}
	if ((rc = imgstore_open(c->data_dir, &so, &ag->store, err, errsz)) < 0)
		goto out;
	if ((rc = agent_trust(ag, err, errsz)) < 0) {
		if (rc == -EINTR)
			rc = 0;
		goto out;
	}
	log_info("mlagent %s: machine %llu (%s), server %s", MLAGENT_VERSION,
	         (unsigned long long)ag->cred.machine_id, ag->cred.name, ag->server);
	hb_ok = pthread_create(&hb, NULL, agent_heartbeat, ag) == 0;
	po_ok = pthread_create(&po, NULL, agent_poll, ag) == 0;
	if (!hb_ok || !po_ok) {
		log_seterr(err, errsz, "cannot start threads");
		*stop = 1;
		rc = -EAGAIN;
	}
	while (!*stop)
		agent_sleep(stop, 1000);
	rc = rc == -EAGAIN ? rc : 0;
out:
	*stop = 1;
	pthread_mutex_lock(&ag->mu);
	pthread_cond_broadcast(&ag->cv);
	for (struct agent_cmd *x = ag->cmds; x; x = x->next)
		x->stop = 1;
	pthread_mutex_unlock(&ag->mu);
	if (hb_ok)
		pthread_join(hb, NULL);
	if (po_ok)
		pthread_join(po, NULL);
	/* Command threads keep their receptions for a resume; wait for them (bounded). */
	pthread_mutex_lock(&ag->mu);
	for (int i = 0; ag->running && i < 100; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ag->cv, &ag->mu, &ts);
	}
	unsigned left = ag->running;
	if (left) {
		/*
		 * A thread stuck in a system call still uses ag, the settings and
		 * libcurl: nothing of it is freed, and the caller _exits.
		 */
		for (struct agent_cmd *x = ag->cmds; x; x = x->next)
			if (x->running)
				log_warn("command %llu (%s) did not stop in time",
				         (unsigned long long)x->id,
				         x->c.kind == ACMD_RECEIVE    ? "receive"
				         : x->c.kind == ACMD_WOL      ? "wol"
				         : x->c.kind == ACMD_ROLLBACK ? "rollback"
				                                      : "?");
	}
	pthread_mutex_unlock(&ag->mu);
	if (left) {
		log_warn("%u command(s) still stopping; exiting anyway", left);
		return AGENT_RUN_LEFT;
	}
	agent_free(ag);
	return rc;
}

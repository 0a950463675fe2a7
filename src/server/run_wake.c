/*
 * A run's Wake-on-LAN step (docs/runs.md, docs/wol.md). Every target whose
 * agent is not online gets its magic packet from the server: to the
 * directed broadcast of its subnet, and to 255.255.255.255 out of [wol]
 * interface when it lies in that interface's subnet. When the server has no
 * interface in the target's subnet, routers will most likely drop the
 * directed broadcast (RFC 2644), so the server also asks an awake agent in
 * that subnet to send the packets there (a "wol" command).
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "agentq.h"
#include "log.h"
#include "machines.h"
#include "run_int.h"
#include "server.h"
#include "store.h"
#include "wol.h"

#define WAKE_RELAY_TTL_S 120 /* a relay command not picked up by then is useless */

/* True when one of the server's own IPv4 interfaces is in (or around) net. */
static bool wake_server_in(const struct match_cidr *net)
{
	struct ifaddrs *ifa = NULL;
	bool in = false;
	if (getifaddrs(&ifa) < 0)
		return false;
	for (struct ifaddrs *p = ifa; p && !in; p = p->ifa_next) {
		if (!p->ifa_addr || !p->ifa_netmask || p->ifa_addr->sa_family != AF_INET)
			continue;
		uint32_t a = ntohl(((struct sockaddr_in *)(void *)p->ifa_addr)->sin_addr.s_addr);
		uint32_t m = ntohl(((struct sockaddr_in *)(void *)p->ifa_netmask)->sin_addr.s_addr);
		unsigned prefix;
		if ((a >> 24) == 127 || match_netmask_prefix(m, &prefix) < 0)
			continue;
		in = prefix <= net->prefix && (net->net & m) == (a & m);
	}
	freeifaddrs(ifa);
	return in;
}

/* The machines of one subnet that need a relay. */
struct wake_relay {
	struct match_cidr net;
	struct wol_relay cmd;
	int64_t self[WOL_RELAY_MAX_MACS]; /* the machines themselves (not relays for themselves) */
	size_t *targets;                  /* indexes into c->t */
	size_t ntargets;
};

/* An online agent in net that is none of the machines to wake: 0 when there is none. */
static int64_t wake_find_relay(struct run_ctx *c, const struct wake_relay *w)
{
	int64_t found = 0;
	int64_t *cand = NULL;
	size_t n = 0;
	struct store_q *q = store_query(c->srv->store,
	                                "SELECT m.id, m.ip FROM machines m JOIN agent_credentials a"
	                                " ON a.machine_id = m.id AND a.revoked_at IS NULL"
	                                " WHERE m.ip IS NOT NULL ORDER BY a.last_seen_at DESC",
	                                NULL);
	while (q && store_next(q) == 1) {
		uint32_t ip;
		const char *s = store_col_text(q, 1);
		if (match_ip4_parse(s, strlen(s), &ip, NULL, 0) < 0 ||
		    !match_cidr_contains(&w->net, ip))
			continue;
		int64_t *nc = realloc(cand, (n + 1) * sizeof(*nc));
		if (!nc)
			break;
		cand = nc;
		cand[n++] = store_col_int(q, 0);
	}
	store_done(q);
	/* agentq_online() reads the store: not while the query above holds it. */
	for (size_t i = 0; i < n && !found; i++) {
		bool self = false;
		for (size_t k = 0; k < w->cmd.nmacs; k++)
			self = self || w->self[k] == cand[i];
		if (!self && agentq_online(c->srv, cand[i]))
			found = cand[i];
	}
	free(cand);
	return found;
}

static void wake_mark(struct run_ctx *c, struct run_target *t, const char *how)
{
	if (strstr(t->woken, how))
		return;
	size_t n = strlen(t->woken);
	snprintf(t->woken + n, sizeof(t->woken) - n, "%s%s", n ? "+" : "", how);
	run_target_save(c, t);
}

void run_wake(struct run_ctx *c)
{
	const struct srvconf *cf = &c->srv->conf;
	struct wol_iface iface;
	bool have_iface = false;
	char err[WOL_ERR_SIZE];
	if (*cf->wol_interface) {
		have_iface = wol_iface_lookup(cf->wol_interface, &iface, err, sizeof(err)) == 0;
		if (!have_iface)
			log_warn("run %lld: [wol] interface: %s", (long long)c->id, err);
	}
	struct wol_target *wt = calloc(c->n * MATCH_MAX_MACS * 2 + 1, sizeof(*wt));
	size_t *owner = calloc(c->n * MATCH_MAX_MACS * 2 + 1, sizeof(*owner));
	struct wake_relay *rel = NULL;
	size_t nwt = 0, nrel = 0, asleep = 0;
	if (!wt || !owner)
		goto out;
	for (size_t i = 0; i < c->n; i++) {
		struct run_target *t = &c->t[i];
		struct match_machine m;
		if (strcmp(t->state, "waiting") != 0 || agentq_online(c->srv, t->machine) ||
		    machines_load(c->srv->store, t->machine, &m) < 0 || m.nmacs == 0)
			continue;
		asleep++;
		struct match_cidr net = m.net;
		bool have_net = m.subnet[0] != '\0';
		if (!have_net && m.ip[0]) {
			net.net = m.ip4;
			net.prefix = 32;
			have_net = true;
		}
		struct wol_dest d[2];
		size_t nd = wol_destinations(have_net ? &net : NULL, have_iface ? &iface : NULL, d);
		for (unsigned k = 0; k < m.nmacs; k++)
			for (size_t j = 0; j < nd; j++) {
				memcpy(wt[nwt].mac, m.mac[k], MATCH_MAC_BYTES);
				wt[nwt].dest = d[j];
				owner[nwt++] = i;
			}
		if (!have_net || wake_server_in(&net))
			continue;
		/* Another subnet: an agent there relays. One command per subnet. */
		struct wake_relay *w = NULL;
		for (size_t r = 0; r < nrel && !w; r++)
			if (rel[r].net.net == net.net && rel[r].net.prefix == net.prefix &&
			    rel[r].cmd.nmacs + m.nmacs <= WOL_RELAY_MAX_MACS)
				w = &rel[r];
		if (!w) {
			struct wake_relay *nr = realloc(rel, (nrel + 1) * sizeof(*nr));
			if (!nr)
				continue;
			rel = nr;
			w = &rel[nrel++];
			memset(w, 0, sizeof(*w));
			w->net = net;
			uint32_t b = wol_broadcast_addr(&net);
			w->cmd.broadcast = b == WOL_BCAST_NONE ? WOL_LBCAST : b;
			w->cmd.port = (uint16_t)cf->wol_port;
			w->cmd.repeat = (unsigned)cf->wol_repeat;
			w->cmd.gap_ms = (uint32_t)cf->wol_gap_ms;
		}
		size_t *nt = realloc(w->targets, (w->ntargets + 1) * sizeof(*nt));
		if (!nt)
			continue;
		w->targets = nt;
		w->targets[w->ntargets++] = i;
		for (unsigned k = 0; k < m.nmacs; k++) {
			w->self[w->cmd.nmacs] = t->machine;
			memcpy(w->cmd.macs[w->cmd.nmacs++], m.mac[k], MATCH_MAC_BYTES);
		}
	}
	if (nwt) {
		struct wol_opts o;
		wol_opts_from_conf(cf, &o);
		if (wol_send(&o, wt, nwt, err, sizeof(err)) < 0)
			log_warn("run %lld: Wake-on-LAN: %s", (long long)c->id, err);
		for (size_t k = 0; k < nwt; k++)
			if (wt[k].sent)
				wake_mark(c, &c->t[owner[k]], "direct");
	}
	for (size_t r = 0; r < nrel; r++) {
		struct wake_relay *w = &rel[r];
		char cidr[MATCH_CIDR_SIZE];
		match_cidr_format(&w->net, cidr);
		int64_t relay = wake_find_relay(c, w);
		char *text = relay ? wol_relay_format(&w->cmd) : NULL;
		json_t *args = text ? json_loads(text, 0, NULL) : NULL;
		int64_t id;
		if (!relay)
			log_info("run %lld: no awake agent in %s to relay Wake-on-LAN",
			         (long long)c->id, cidr);
		else if (args && agentq_push(c->srv, relay, c->id, "wol", args, WAKE_RELAY_TTL_S,
		                             &id) == 0) {
			log_info(
			    "run %lld: Wake-on-LAN for %zu machine%s in %s relayed by machine %lld",
			    (long long)c->id, w->ntargets, w->ntargets == 1 ? "" : "s", cidr,
			    (long long)relay);
			for (size_t k = 0; k < w->ntargets; k++)
				wake_mark(c, &c->t[w->targets[k]], "relay");
		}
		json_decref(args);
		free(text);
	}
	if (asleep)
		log_info("run %lld: %zu machine%s asleep or offline: magic packets sent",
		         (long long)c->id, asleep, asleep == 1 ? "" : "s");
out:
	for (size_t r = 0; r < nrel; r++)
		free(rel[r].targets);
	free(rel);
	free(wt);
	free(owner);
}

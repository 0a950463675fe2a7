/*
 * wol_send: a test driver of wol.h for tests/integration/wol.sh. It sends
 * magic packets the way the deployment runner will (the server's part) and
 * the way a relaying agent will (--relay), and prints what became of each
 * packet, one line per target and destination:
 *
 *   wol_send [--port N] [--repeat N] [--gap MS] [--interface IF] MAC@SUBNET...
 *   wol_send --relay JSON
 *
 *   02:00:00:00:00:01 -> 10.99.0.255:9 sent 3/3
 *   02:00:00:00:00:02 -> 10.98.0.255:9 failed: Network is unreachable
 *   02:00:00:00:00:03 -> (none): no broadcast the server can reach; needs a relaying agent
 *
 * Exit status: 0 when every target got at least one packet out, 1 when one
 * did not, 2 on bad usage or a bad relay command.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"
#include "parse.h"
#include "wol.h"

#define MAX_TARGETS 512

static int usage(void)
{
	fprintf(stderr, "usage: wol_send [--port N] [--repeat N] [--gap MS] [--interface IF] "
	                "MAC@SUBNET...\n"
	                "       wol_send --relay JSON\n");
	return 2;
}

static int number(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *why;

	if (parse_uint(s, min, max, out, &why) < 0) {
		fprintf(stderr, "wol_send: %s %s: %s\n", opt, s, why);
		return -1;
	}
	return 0;
}

/* Sends the batch and prints one line per target; returns the exit status. */
static int send_and_report(const struct wol_opts *o, struct wol_target *t, size_t n,
                           int unreachable)
{
	char err[WOL_ERR_SIZE], mac[MATCH_MAC_SIZE], ip[MATCH_IP4_SIZE];
	int rc = wol_send(o, t, n, err, sizeof(err));

	if (rc < 0) {
		fprintf(stderr, "wol_send: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		match_mac_format(t[i].mac, mac);
		match_ip4_format(t[i].dest.addr, ip);
		if (t[i].sent)
			printf("%s -> %s:%u sent %u/%u\n", mac, ip,
			       o->port ? o->port : WOL_PORT_DEFAULT, t[i].sent, o->repeat);
		else
			printf("%s -> %s:%u failed: %s\n", mac, ip,
			       o->port ? o->port : WOL_PORT_DEFAULT, strerror(-t[i].err));
	}
	return rc > 0 || unreachable ? 1 : 0;
}

/* The agent's part: one relay command, sent as it says. */
static int relay(const char *json)
{
	static struct wol_relay r;
	static struct wol_target t[WOL_RELAY_MAX_MACS];
	char err[WOL_ERR_SIZE];
	struct wol_opts o;

	if (wol_relay_parse(json, strlen(json), &r, err, sizeof(err)) < 0) {
		fprintf(stderr, "wol_send: relay command: %s\n", err);
		return 2;
	}
	memset(t, 0, sizeof(t));
	for (size_t i = 0; i < r.nmacs; i++) {
		memcpy(t[i].mac, r.macs[i], MATCH_MAC_BYTES);
		t[i].dest.addr = r.broadcast;
	}
	o.port = r.port;
	o.repeat = r.repeat;
	o.gap_ms = r.gap_ms;
	return send_and_report(&o, t, r.nmacs, 0);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"port", required_argument, NULL, 'p'},  {"repeat", required_argument, NULL, 'r'},
	    {"gap", required_argument, NULL, 'g'},   {"interface", required_argument, NULL, 'i'},
	    {"relay", required_argument, NULL, 'R'}, {NULL, 0, NULL, 0},
	};
	static struct wol_target t[MAX_TARGETS];
	struct wol_opts o = {.port = WOL_PORT_DEFAULT, .repeat = 1, .gap_ms = 100};
	struct wol_iface iface;
	const char *ifname = NULL;
	char err[WOL_ERR_SIZE];
	uint64_t v;
	size_t n = 0;
	int c, unreachable = 0;

	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (number("--port", optarg, 1, 65535, &v) < 0)
				return 2;
			o.port = (uint16_t)v;
			break;
		case 'r':
			if (number("--repeat", optarg, 1, WOL_REPEAT_MAX, &v) < 0)
				return 2;
			o.repeat = (unsigned)v;
			break;
		case 'g':
			if (number("--gap", optarg, 0, WOL_GAP_MAX_MS, &v) < 0)
				return 2;
			o.gap_ms = v;
			break;
		case 'i':
			ifname = optarg;
			break;
		case 'R':
			if (optind != argc)
				return usage();
			return relay(optarg);
		default:
			return usage();
		}
	}
	if (optind == argc)
		return usage();
	if (ifname && wol_iface_lookup(ifname, &iface, err, sizeof(err)) < 0) {
		fprintf(stderr, "wol_send: --interface: %s\n", err);
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		const char *at = strchr(argv[i], '@');
		uint8_t mac[MATCH_MAC_BYTES];
		struct match_cidr net;
		struct wol_dest d[2];

		if (!at ||
		    match_mac_parse(argv[i], (size_t)(at - argv[i]), mac, err, sizeof(err)) < 0 ||
		    match_cidr_parse(at + 1, strlen(at + 1), &net, err, sizeof(err)) < 0) {
			fprintf(stderr, "wol_send: %s: %s\n", argv[i],
			        at ? err : "expected MAC@SUBNET");
			return 2;
		}
		size_t nd = wol_destinations(&net, ifname ? &iface : NULL, d);
		if (nd == 0) {
			printf(
			    "%.*s -> (none): no broadcast the server can reach; needs a relaying "
			    "agent\n",
			    (int)(at - argv[i]), argv[i]);
			unreachable = 1;
		}
		for (size_t k = 0; k < nd; k++) {
			if (n == MAX_TARGETS) {
				fprintf(stderr, "wol_send: more than %d packets per round\n",
				        MAX_TARGETS);
				return 2;
			}
			memcpy(t[n].mac, mac, sizeof(mac));
			t[n++].dest = d[k];
		}
	}
	return send_and_report(&o, t, n, unreachable);
}

/*
 * Unit tests for wol.c: the magic packet's bytes, broadcast addresses of
 * every prefix length, destinations with and without a wake interface, the
 * relay command (valid, defaults, every kind of hostile JSON, round trips),
 * and the sender over loopback, including a failing destination in the
 * middle of a batch.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "server.h"
#include "wol.h"

static const uint8_t mac1[6] = {0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc};
static const uint8_t mac2[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static uint32_t ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return ntohl(a.s_addr);
}

static void test_packet(void **state)
{
	uint8_t p[WOL_PACKET_MAX], want[WOL_PACKET_LEN];
	static const uint8_t pw4[4] = {1, 2, 3, 4}, pw6[6] = {9, 8, 7, 6, 5, 4};

	(void)state;
	/* Built by hand: six 0xff, then the MAC sixteen times. */
	for (int i = 0; i < 6; i++)
		want[i] = 0xff;
	for (int r = 0; r < 16; r++)
		for (int i = 0; i < 6; i++)
			want[6 + r * 6 + i] = mac1[i];
	memset(p, 0x5a, sizeof(p));
	wol_packet(mac1, p);
	assert_memory_equal(p, want, WOL_PACKET_LEN);
	assert_int_equal(p[WOL_PACKET_LEN], 0x5a); /* nothing written past 102 bytes */
	assert_int_equal(p[6], 0x00);
	assert_int_equal(p[101], 0xcc);

	assert_int_equal(wol_packet_secureon(mac1, NULL, 0, p), 102);
	assert_memory_equal(p, want, WOL_PACKET_LEN);
	assert_int_equal(wol_packet_secureon(mac1, pw4, 4, p), 106);
	assert_memory_equal(p, want, WOL_PACKET_LEN);
	assert_memory_equal(p + 102, pw4, 4);
	assert_int_equal(wol_packet_secureon(mac1, pw6, 6, p), 108);
	assert_memory_equal(p + 102, pw6, 6);
	memset(p, 0x5a, sizeof(p));
	assert_int_equal(wol_packet_secureon(mac1, pw6, 5, p), -EINVAL);
	assert_int_equal(p[0], 0x5a);
	assert_int_equal(wol_packet_secureon(mac1, pw6, 8, p), -EINVAL);
}

static void test_broadcast(void **state)
{
	static const struct {
		const char *net;
		unsigned prefix;
		const char *bcast; /* NULL: none */
	} cases[] = {
	    {"0.0.0.0", 0, "255.255.255.255"},
	    {"10.0.0.0", 8, "10.255.255.255"},
	    {"172.16.0.0", 12, "172.31.255.255"},
	    {"192.168.0.0", 16, "192.168.255.255"},
	    {"10.1.2.0", 23, "10.1.3.255"},
	    {"10.1.2.0", 24, "10.1.2.255"},
	    {"10.1.2.128", 25, "10.1.2.255"},
	    {"10.1.2.0", 25, "10.1.2.127"},
	    {"10.1.2.64", 26, "10.1.2.127"},
	    {"10.1.2.8", 29, "10.1.2.15"},
	    {"10.1.2.4", 30, "10.1.2.7"},
	    {"10.1.2.4", 31, NULL},
	    {"10.1.2.5", 32, NULL},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct match_cidr c = {.net = ip(cases[i].net), .prefix = cases[i].prefix};
		uint32_t want = cases[i].bcast ? ip(cases[i].bcast) : WOL_BCAST_NONE;
		uint32_t got = wol_broadcast_addr(&c);
		if (got != want)
			fail_msg("%s/%u: got %08x, want %08x", cases[i].net, cases[i].prefix, got,
			         want);
	}
	/* Every prefix from 8 to 30: the host part is all ones, the network part kept. */
	for (unsigned p = 8; p <= 30; p++) {
		struct match_cidr c = {.net = ip("10.0.0.0"), .prefix = p};
		uint32_t b = wol_broadcast_addr(&c);
		assert_int_equal(b & match_prefix_mask(p), c.net);
		assert_int_equal(b | match_prefix_mask(p), 0xffffffffu);
		assert_int_equal(b & 3, 3);
	}
}

static void test_destinations(void **state)
{
	struct wol_iface lan = {.name = "eth0",
	                        .index = 7,
	                        .addr = ip("10.99.0.1"),
	                        .net = {.net = ip("10.99.0.0"), .prefix = 24}};
	struct match_cidr own = {ip("10.99.0.0"), 24}, other = {ip("10.98.0.0"), 24},
	                  host = {ip("10.99.0.23"), 32}, wide = {ip("10.96.0.0"), 14},
	                  p2p = {ip("10.98.0.4"), 31};
	struct wol_dest d[2];

	(void)state;
	/* No interface: the directed broadcast only. */
	assert_int_equal(wol_destinations(&own, NULL, d), 1);
	assert_int_equal(d[0].addr, ip("10.99.0.255"));
	assert_int_equal(d[0].ifindex, 0);
	/* Own subnet with the interface: both, the limited broadcast out of it. */
	assert_int_equal(wol_destinations(&own, &lan, d), 2);
	assert_int_equal(d[0].addr, ip("10.99.0.255"));
	assert_int_equal(d[1].addr, WOL_LBCAST);
	assert_int_equal(d[1].ifindex, 7);
	/* Another subnet: only its directed broadcast, routed. */
	assert_int_equal(wol_destinations(&other, &lan, d), 1);
	assert_int_equal(d[0].addr, ip("10.98.0.255"));
	/* A wider subnet around the interface's is not on the link as a whole. */
	assert_int_equal(wol_destinations(&wide, &lan, d), 1);
	assert_int_equal(d[0].addr, ip("10.99.255.255"));
	/* A /32 on the link: no directed broadcast, the limited one does it. */
	assert_int_equal(wol_destinations(&host, &lan, d), 1);
	assert_int_equal(d[0].addr, WOL_LBCAST);
	assert_int_equal(d[0].ifindex, 7);
	/* A /31 elsewhere, or a /32 without interface: nothing the server can do alone. */
	assert_int_equal(wol_destinations(&p2p, &lan, d), 0);
	assert_int_equal(wol_destinations(&host, NULL, d), 0);
	/* Unknown subnet: the local link only, when there is an interface. */
	assert_int_equal(wol_destinations(NULL, &lan, d), 1);
	assert_int_equal(d[0].addr, WOL_LBCAST);
	assert_int_equal(wol_destinations(NULL, NULL, d), 0);
}

static void test_iface(void **state)
{
	struct wol_iface w, keep;
	char err[WOL_ERR_SIZE];

	(void)state;
	assert_int_equal(wol_iface_lookup("lo", &w, err, sizeof(err)), 0);
	assert_string_equal(w.name, "lo");
	assert_true(w.index > 0);
	assert_int_equal(w.addr, ip("127.0.0.1"));
	assert_int_equal(w.net.net, ip("127.0.0.0"));
	assert_int_equal(w.net.prefix, 8);
	memset(&keep, 0x33, sizeof(keep));
	w = keep;
	assert_int_equal(wol_iface_lookup("nosuchif0", &w, err, sizeof(err)), -ENODEV);
	assert_string_equal(err, "no network interface named \"nosuchif0\"");
	assert_memory_equal(&w, &keep, sizeof(w));
	assert_int_equal(wol_iface_lookup("", &w, err, sizeof(err)), -ENODEV);
	assert_int_equal(wol_iface_lookup("a-name-much-too-long-for-linux", &w, err, sizeof(err)),
	                 -ENODEV);
}

/* A UDP socket on 127.0.0.1 with a free port. */
static int listener(uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Receives every datagram that arrives within 200 ms of the last; returns how many. */
static int drain(int fd, uint8_t pkts[][WOL_PACKET_MAX], ssize_t *lens, int max)
{
	int n = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};

	while (n < max && poll(&p, 1, 200) == 1) {
		lens[n] = recv(fd, pkts[n], WOL_PACKET_MAX, 0);
		assert_true(lens[n] > 0);
		n++;
	}
	return n;
}

static void test_send(void **state)
{
	uint8_t pkts[16][WOL_PACKET_MAX], want1[WOL_PACKET_LEN], want2[WOL_PACKET_LEN];
	ssize_t lens[16];
	uint16_t port;
	int fd = listener(&port), n1 = 0, n2 = 0;
	char err[WOL_ERR_SIZE] = "";
	struct wol_target t[3];
	struct wol_opts o = {.port = port, .repeat = 3, .gap_ms = 20};

	(void)state;
	memset(t, 0, sizeof(t));
	memcpy(t[0].mac, mac1, 6);
	t[0].dest.addr = ip("127.0.0.1");
	/* The middle target names an interface that does not exist: its packets fail. */
	memcpy(t[1].mac, mac2, 6);
	t[1].dest.addr = ip("127.0.0.1");
	t[1].dest.ifindex = 999999;
	memcpy(t[2].mac, mac2, 6);
	t[2].dest.addr = ip("127.0.0.1");
	assert_int_equal(wol_send(&o, t, 3, err, sizeof(err)), 1);
	assert_int_equal(t[0].sent, 3);
	assert_int_equal(t[0].err, 0);
	assert_int_equal(t[1].sent, 0);
	assert_true(t[1].err < 0);
	assert_int_equal(t[2].sent, 3);
	assert_int_equal(t[2].err, 0);

	wol_packet(mac1, want1);
	wol_packet(mac2, want2);
	int n = drain(fd, pkts, lens, 16);
	assert_int_equal(n, 6);
	for (int i = 0; i < n; i++) {
		assert_int_equal(lens[i], WOL_PACKET_LEN);
		if (memcmp(pkts[i], want1, WOL_PACKET_LEN) == 0)
			n1++;
		else if (memcmp(pkts[i], want2, WOL_PACKET_LEN) == 0)
			n2++;
		else
			fail_msg("datagram %d is no magic packet of ours", i);
	}
	assert_int_equal(n1, 3);
	assert_int_equal(n2, 3);

	/* Bad options fail before anything is sent, targets untouched. */
	o.repeat = 0;
	t[0].sent = 77;
	assert_int_equal(wol_send(&o, t, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "repeat"));
	assert_int_equal(t[0].sent, 77);
	o.repeat = 1;
	o.gap_ms = WOL_GAP_MAX_MS + 1;
	assert_int_equal(wol_send(&o, t, 1, err, sizeof(err)), -EINVAL);
	/* An empty batch is fine. */
	o.gap_ms = 0;
	assert_int_equal(wol_send(&o, t, 0, err, sizeof(err)), 0);
	close(fd);
}

static void test_opts_from_conf(void **state)
{
	struct srvconf c;
	struct wol_opts o;
	char err[256];

	(void)state;
	srvconf_defaults(&c);
	wol_opts_from_conf(&c, &o);
	assert_int_equal(o.port, 9);
	assert_int_equal(o.repeat, 3);
	assert_int_equal(o.gap_ms, 100);
	assert_int_equal(srvconf_set(&c, "wol.port=7", err, sizeof(err)), 0);
	assert_int_equal(srvconf_set(&c, "wol.gap=1s", err, sizeof(err)), 0);
	wol_opts_from_conf(&c, &o);
	assert_int_equal(o.port, 7);
	assert_int_equal(o.gap_ms, 1000);
	assert_true(srvconf_set(&c, "wol.port=0", err, sizeof(err)) < 0);
	assert_true(srvconf_set(&c, "wol.repeat=11", err, sizeof(err)) < 0);
	assert_true(srvconf_set(&c, "wol.gap=11s", err, sizeof(err)) < 0);
	assert_int_equal(srvconf_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(srvconf_set(&c, "wol.interface=eth0", err, sizeof(err)), 0);
	assert_int_equal(srvconf_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(
	    srvconf_set(&c, "wol.interface=a-name-too-long-for-linux", err, sizeof(err)), 0);
	assert_int_equal(srvconf_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "[wol] interface"));
	srvconf_free(&c);
}

static int relay(const char *s, struct wol_relay *r, char *err)
{
	return wol_relay_parse(s, strlen(s), r, err, WOL_ERR_SIZE);
}

static void test_relay_ok(void **state)
{
	struct wol_relay *r = calloc(1, sizeof(*r));
	char err[WOL_ERR_SIZE] = "";

	(void)state;
	assert_int_equal(relay("{\"macs\": [\"00:11:22:AA:BB:CC\", \"5254.0012.3456\"],"
	                       " \"broadcast\": \"10.1.2.255\", \"port\": 7, \"repeat\": 3,"
	                       " \"gap_ms\": 250}",
	                       r, err),
	                 0);
	assert_int_equal(r->nmacs, 2);
	assert_memory_equal(r->macs[0], mac1, 6);
	assert_memory_equal(r->macs[1], mac2, 6);
	assert_int_equal(r->broadcast, ip("10.1.2.255"));
	assert_int_equal(r->port, 7);
	assert_int_equal(r->repeat, 3);
	assert_int_equal(r->gap_ms, 250);
	/* Defaults, and the limited broadcast. */
	assert_int_equal(
	    relay("{\"macs\":[\"00-11-22-aa-bb-cc\"],\"broadcast\":\"255.255.255.255\"}", r, err),
	    0);
	assert_int_equal(r->nmacs, 1);
	assert_int_equal(r->broadcast, WOL_LBCAST);
	assert_int_equal(r->port, 9);
	assert_int_equal(r->repeat, 1);
	assert_int_equal(r->gap_ms, 100);
	/* The broadcast of a /30 and of a /8. */
	assert_int_equal(
	    relay("{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.7\"}", r, err), 0);
	assert_int_equal(
	    relay("{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.255.255.255\"}", r, err),
	    0);
	free(r);
}

static void test_relay_bad(void **state)
{
	static const struct {
		const char *json;
		const char *want; /* a part of the message */
	} cases[] = {
	    {"", "not valid JSON"},
	    {"{", "not valid JSON"},
	    {"[]", "expected a JSON object"},
	    {"\"macs\"", "expected a JSON object"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\"} x", "not valid JSON"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"cmd\":\"rm\"}",
	     "unknown field \"cmd\""},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"macs\":[\"00:11:22:aa:bb:cd\"],"
	     "\"broadcast\":\"10.1.2.255\"}",
	     "not valid JSON"},
	    {"{\"broadcast\":\"10.1.2.255\"}", "macs: expected an array"},
	    {"{\"macs\":[],\"broadcast\":\"10.1.2.255\"}", "macs: expected an array of 1 to 256"},
	    {"{\"macs\":\"00:11:22:aa:bb:cc\",\"broadcast\":\"10.1.2.255\"}", "macs: expected"},
	    {"{\"macs\":[1],\"broadcast\":\"10.1.2.255\"}", "macs[0]: expected a string"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\",null],\"broadcast\":\"10.1.2.255\"}",
	     "macs[1]: expected a string"},
	    {"{\"macs\":[\"00:11:22:aa:bb\"],\"broadcast\":\"10.1.2.255\"}",
	     "macs[0]: bad MAC address"},
	    {"{\"macs\":[\"ff:ff:ff:ff:ff:ff\"],\"broadcast\":\"10.1.2.255\"}", "macs[0]: MAC"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\",\"0011.22aa.bbcc\"],\"broadcast\":\"10.1.2.255\"}",
	     "macs[1]: 00:11:22:aa:bb:cc is macs[0] again"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\\u0000\"],\"broadcast\":\"10.1.2.255\"}",
	     "not valid JSON"},
	    {"{\"macs\":[\"\\u00ff\\u00fe\"],\"broadcast\":\"10.1.2.255\"}", "macs[0]: bad MAC"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"]}", "broadcast: expected"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":167838463}", "broadcast: expected"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2\"}", "broadcast: bad IPv4"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.0255\"}",
	     "broadcast: bad IPv4"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.4\"}",
	     "broadcast: 10.1.2.4 cannot be a broadcast address"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"0.0.0.0\"}", "cannot be"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"127.0.0.255\"}", "cannot be"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"224.0.0.255\"}", "cannot be"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"240.0.0.255\"}", "cannot be"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"port\":0}",
	     "port: must be an integer from 1 to 65535"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"port\":65536}",
	     "port: must be"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"port\":\"9\"}",
	     "port: must be"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"port\":9.0}",
	     "port: must be"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"port\":true}",
	     "port: must be"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"port\":-9}",
	     "port: must be"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\","
	     "\"port\":99999999999999999999999}",
	     "not valid JSON"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"repeat\":0}",
	     "repeat: must be an integer from 1 to 10"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"repeat\":11}",
	     "repeat"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"gap_ms\":-1}",
	     "gap_ms: must be an integer from 0 to 10000"},
	    {"{\"macs\":[\"00:11:22:aa:bb:cc\"],\"broadcast\":\"10.1.2.255\",\"gap_ms\":null}",
	     "gap_ms"},
	    {"{\"macs\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]],\"broadcast\":\"10.1.2.255\"}",
	     "macs[0]: expected a string"},
	    {"{\"\\u0001\\n\":1}", "unknown field \"\\x01\\x0a\""},
	};
	struct wol_relay *r = malloc(sizeof(*r)), *keep = malloc(sizeof(*keep));
	char err[WOL_ERR_SIZE];

	(void)state;
	memset(keep, 0x77, sizeof(*keep));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		*r = *keep;
		err[0] = '\0';
		int rc = relay(cases[i].json, r, err);
		if (rc != -EINVAL || !strstr(err, cases[i].want))
			fail_msg("case %zu %s: rc %d, error \"%s\", want \"%s\"", i, cases[i].json,
			         rc, err, cases[i].want);
		assert_memory_equal(r, keep, sizeof(*r));
		assert_null(strchr(err, '\n'));
	}
	/* Raw bytes: a NUL inside the document, invalid UTF-8, deep nesting, too long. */
	static const char nul[] =
	    "{\"macs\":[\"00:11:22:aa:bb:cc\"],\0\"broadcast\":\"1.2.3.255\"}";
	assert_int_equal(wol_relay_parse(nul, sizeof(nul) - 1, r, err, sizeof(err)), -EINVAL);
	assert_int_equal(relay("{\"macs\":[\"\xff\xfe\"],\"broadcast\":\"10.1.2.255\"}", r, err),
	                 -EINVAL);
	size_t big = 100000;
	char *deep = malloc(big + 1);
	for (size_t i = 0; i < big; i++)
		deep[i] = i < big / 2 ? '[' : ']';
	deep[big] = '\0';
	assert_int_equal(relay(deep, r, err), -EINVAL);
	assert_non_null(strstr(err, "longer than 65536"));
	assert_int_equal(wol_relay_parse(deep, 60000, r, err, sizeof(err)), -EINVAL);
	free(deep);
	/* 257 addresses are too many; 256 are fine. */
	char *many = malloc(300 * 24 + 100);
	for (int count = 256; count <= 257; count++) {
		size_t o = 0;
		o += (size_t)snprintf(many + o, 100, "{\"macs\":[");
		for (int i = 0; i < count; i++)
			o += (size_t)snprintf(many + o, 40, "%s\"02:00:00:00:%02x:%02x\"",
			                      i ? "," : "", i >> 8, i & 0xff);
		snprintf(many + o, 100, "],\"broadcast\":\"10.1.2.255\"}");
		assert_int_equal(relay(many, r, err), count == 256 ? 0 : -EINVAL);
	}
	assert_int_equal(r->nmacs, 256);
	free(many);
	free(r);
	free(keep);
}

static void test_relay_format(void **state)
{
	struct wol_relay *r = calloc(1, sizeof(*r)), *back = calloc(1, sizeof(*back));
	char err[WOL_ERR_SIZE];
	char *s;

	(void)state;
	r->nmacs = 2;
	memcpy(r->macs[0], mac1, 6);
	memcpy(r->macs[1], mac2, 6);
	r->broadcast = ip("10.99.0.255");
	r->port = 9;
	r->repeat = 2;
	r->gap_ms = 50;
	s = wol_relay_format(r);
	assert_non_null(s);
	assert_string_equal(s, "{\"macs\":[\"00:11:22:aa:bb:cc\",\"52:54:00:12:34:56\"],"
	                       "\"broadcast\":\"10.99.0.255\",\"port\":9,\"repeat\":2,"
	                       "\"gap_ms\":50}");
	assert_int_equal(wol_relay_parse(s, strlen(s), back, err, sizeof(err)), 0);
	assert_memory_equal(back, r, sizeof(*r));
	free(s);
	/* An invalid command is not formatted. */
	r->port = 0;
	assert_null(wol_relay_format(r));
	assert_int_equal(wol_relay_check(r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "port: must be 1 to 65535");
	r->port = 9;
	memcpy(r->macs[1], mac1, 6);
	assert_null(wol_relay_format(r));
	r->nmacs = 0;
	assert_null(wol_relay_format(r));
	free(r);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_packet),       cmocka_unit_test(test_broadcast),
	    cmocka_unit_test(test_destinations), cmocka_unit_test(test_iface),
	    cmocka_unit_test(test_send),         cmocka_unit_test(test_opts_from_conf),
	    cmocka_unit_test(test_relay_ok),     cmocka_unit_test(test_relay_bad),
	    cmocka_unit_test(test_relay_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

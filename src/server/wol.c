/*
 * Wake-on-LAN: magic packets, broadcast addresses, the sender and the relay
 * command (see wol.h and docs/wol.md).
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>

#include "log.h"
#include "server.h"
#include "wol.h"

/* Writes a message to err when the caller gave a buffer. Returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int wol_fail(char *err, size_t errsz, const char *fmt,
                                                          ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- Packets and addresses ---- */

void wol_packet(const uint8_t mac[MATCH_MAC_BYTES], uint8_t out[WOL_PACKET_LEN])
{
	memset(out, 0xff, 6);
	for (size_t i = 0; i < 16; i++)
		memcpy(out + 6 + i * MATCH_MAC_BYTES, mac, MATCH_MAC_BYTES);
}

int wol_packet_secureon(const uint8_t mac[MATCH_MAC_BYTES], const uint8_t *pw, size_t pwlen,
                        uint8_t out[WOL_PACKET_MAX])
{
	if (pwlen != 0 && pwlen != 4 && pwlen != 6)
		return -EINVAL;
	wol_packet(mac, out);
	if (pwlen)
		memcpy(out + WOL_PACKET_LEN, pw, pwlen);
	return (int)(WOL_PACKET_LEN + pwlen);
}

uint32_t wol_broadcast_addr(const struct match_cidr *subnet)
{
	if (subnet->prefix >= 31)
		return WOL_BCAST_NONE;
	return subnet->net | ~match_prefix_mask(subnet->prefix);
}

int wol_iface_lookup(const char *name, struct wol_iface *out, char *err, size_t errsz)
{
	struct ifaddrs *all = NULL;
	struct wol_iface w;
	bool seen = false, found = false;
	char shown[4 * IF_NAMESIZE + 1];
	int ret;

	memset(&w, 0, sizeof(w));
	log_escape(name, strlen(name), shown, sizeof(shown));
	if (strlen(name) == 0 || strlen(name) >= IF_NAMESIZE) {
		log_seterr(err, errsz, "no network interface named \"%s\"", shown);
		return -ENODEV;
	}
	if (getifaddrs(&all) < 0) {
		ret = -errno;
		log_seterr(err, errsz, "cannot list the network interfaces: %s", strerror(errno));
		return ret;
	}
	for (struct ifaddrs *a = all; a && !found; a = a->ifa_next) {
		if (strcmp(a->ifa_name, name) != 0)
			continue;
		seen = true;
		if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || !a->ifa_netmask)
			continue;
		struct sockaddr_in sin, mask;
		memcpy(&sin, a->ifa_addr, sizeof(sin));
		memcpy(&mask, a->ifa_netmask, sizeof(mask));
		w.addr = ntohl(sin.sin_addr.s_addr);
		if (match_netmask_prefix(ntohl(mask.sin_addr.s_addr), &w.net.prefix) < 0)
			continue;
		w.net.net = w.addr & match_prefix_mask(w.net.prefix);
		found = true;
	}
	freeifaddrs(all);
	w.index = if_nametoindex(name);
	if (!seen || w.index == 0) {
		log_seterr(err, errsz, "no network interface named \"%s\"", shown);
		return -ENODEV;
	}
	if (!found) {
		log_seterr(err, errsz, "network interface %s has no IPv4 address", shown);
		return -EADDRNOTAVAIL;
	}
	memcpy(w.name, name, strlen(name) + 1);
	*out = w;
	return 0;
}

size_t wol_destinations(const struct match_cidr *subnet, const struct wol_iface *iface,
                        struct wol_dest out[2])
{
	size_t n = 0;
	uint32_t b = subnet ? wol_broadcast_addr(subnet) : WOL_BCAST_NONE;

	if (b != WOL_BCAST_NONE)
		out[n++] = (struct wol_dest){.addr = b, .ifindex = 0};
	/*
	 * The limited broadcast never crosses a router, so it only helps a
	 * target on the interface's own link: a subnet inside the interface's
	 * subnet (an unknown one may be there too).
	 */
	if (iface && (!subnet || (subnet->prefix >= iface->net.prefix &&
	                          match_cidr_contains(&iface->net, subnet->net))))
		out[n++] = (struct wol_dest){.addr = WOL_LBCAST, .ifindex = iface->index};
	return n;
}

/* ---- Sending ---- */

void wol_opts_from_conf(const struct srvconf *c, struct wol_opts *o)
{
	o->port = (uint16_t)c->wol_port;
	o->repeat = (unsigned)c->wol_repeat;
	o->gap_ms = c->wol_gap_ms;
}

/*
 * Sends one packet from the non-blocking socket fd. A full socket buffer
 * gets one wait of up to 100 ms for room; EINTR is retried a few times.
 * Returns 0 or -errno.
 */
static int wol_send_one(int fd, const uint8_t mac[MATCH_MAC_BYTES], const struct wol_dest *d,
                        uint16_t port)
{
	uint8_t pkt[WOL_PACKET_LEN];
	struct sockaddr_in sa;
	struct iovec iov = {.iov_base = pkt, .iov_len = sizeof(pkt)};
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} cbuf;
	struct msghdr mh;
	bool waited = false;

	wol_packet(mac, pkt);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(d->addr);
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &sa;
	mh.msg_namelen = sizeof(sa);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (d->ifindex) {
		struct in_pktinfo pi;
		struct cmsghdr *cm;

		memset(&cbuf, 0, sizeof(cbuf));
		memset(&pi, 0, sizeof(pi));
		pi.ipi_ifindex = (int)d->ifindex;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	}
	for (int tries = 0; tries < 5; tries++) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n == (ssize_t)sizeof(pkt))
			return 0;
		if (n >= 0)
			return -EIO;
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) && !waited) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			waited = true;
			if (poll(&p, 1, 100) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		return -errno;
	}
	return -EINTR;
}

/* Sleeps ms milliseconds, resuming after signals. */
static void wol_sleep_ms(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
	                      .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int wol_send(const struct wol_opts *o, struct wol_target *t, size_t n, char *err, size_t errsz)
{
	uint16_t port = o->port ? o->port : WOL_PORT_DEFAULT;
	int fd, one = 1, unsent = 0;

	if (o->repeat < 1 || o->repeat > WOL_REPEAT_MAX || o->gap_ms > WOL_GAP_MAX_MS) {
		log_seterr(err, errsz, "wake-on-LAN: repeat must be 1 to %d and gap at most %d ms",
		           WOL_REPEAT_MAX, WOL_GAP_MAX_MS);
		return -EINVAL;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		log_seterr(err, errsz, "wake-on-LAN: cannot open a UDP socket: %s", strerror(e));
		return -e;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0) {
		int e = errno;
		log_seterr(err, errsz, "wake-on-LAN: cannot enable broadcast (SO_BROADCAST): %s",
		           strerror(e));
		close(fd);
		return -e;
	}
	for (size_t i = 0; i < n; i++) {
		t[i].sent = 0;
		t[i].err = 0;
	}
	for (unsigned round = 0; round < o->repeat; round++) {
		if (round > 0 && o->gap_ms > 0)
			wol_sleep_ms(o->gap_ms);
		for (size_t i = 0; i < n; i++) {
			int rc = wol_send_one(fd, t[i].mac, &t[i].dest, port);
			if (rc == 0)
				t[i].sent++;
			else
				t[i].err = rc;
		}
	}
	close(fd);
	for (size_t i = 0; i < n; i++)
		if (t[i].sent == 0)
			unsent++;
	return unsent;
}

/* ---- The relay command ---- */

/* Whether a can be the destination of a relayed packet (see wol.h). */
static bool wol_relay_bcast_ok(uint32_t a)
{
	if (a == WOL_LBCAST)
		return true;
	if ((a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 14)
		return false;
	return (a & 3) == 3;
}

int wol_relay_check(const struct wol_relay *r, char *err, size_t errsz)
{
	char ip[MATCH_IP4_SIZE], mac[MATCH_MAC_SIZE];
	static const uint8_t zero[MATCH_MAC_BYTES] = {0};
	static const uint8_t ones[MATCH_MAC_BYTES] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	if (r->nmacs < 1 || r->nmacs > WOL_RELAY_MAX_MACS)
		return wol_fail(err, errsz, "macs: expected 1 to %d MAC addresses, got %zu",
		                WOL_RELAY_MAX_MACS, r->nmacs);
	for (size_t i = 0; i < r->nmacs; i++) {
		if (memcmp(r->macs[i], zero, MATCH_MAC_BYTES) == 0 ||
		    memcmp(r->macs[i], ones, MATCH_MAC_BYTES) == 0)
			return wol_fail(err, errsz, "macs[%zu]: not a machine's MAC address", i);
		for (size_t j = 0; j < i; j++)
			if (memcmp(r->macs[i], r->macs[j], MATCH_MAC_BYTES) == 0) {
				match_mac_format(r->macs[i], mac);
				return wol_fail(err, errsz, "macs[%zu]: %s is macs[%zu] again", i,
				                mac, j);
			}
	}
	if (!wol_relay_bcast_ok(r->broadcast)) {
		match_ip4_format(r->broadcast, ip);
		return wol_fail(err, errsz,
		                "broadcast: %s cannot be a broadcast address (expected "
		                "255.255.255.255 or a subnet's directed broadcast)",
		                ip);
	}
	if (r->port == 0)
		return wol_fail(err, errsz, "port: must be 1 to 65535");
	if (r->repeat < 1 || r->repeat > WOL_REPEAT_MAX)
		return wol_fail(err, errsz, "repeat: must be 1 to %d", WOL_REPEAT_MAX);
	if (r->gap_ms > WOL_GAP_MAX_MS)
		return wol_fail(err, errsz, "gap_ms: must be 0 to %d", WOL_GAP_MAX_MS);
	return 0;
}

/* Reads an optional integer field in [min, max]; absent leaves *out. Returns 0 or -EINVAL. */
static int wol_relay_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out,
                         char *err, size_t errsz)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return wol_fail(err, errsz, "%s: must be an integer from %lld to %lld", key,
		                (long long)min, (long long)max);
	*out = json_integer_value(v);
	return 0;
}

int wol_relay_parse(const char *text, size_t len, struct wol_relay *out, char *err, size_t errsz)
{
	static const char *const keys[] = {"macs", "broadcast", "port", "repeat", "gap_ms", NULL};
	struct wol_relay *r = NULL;
	json_error_t je;
	json_t *root = NULL, *macs, *v;
	const char *key;
	char why[MATCH_ERR_SIZE], shown[4 * 64 + 1];
	int64_t port = WOL_PORT_DEFAULT, repeat = 1, gap = 100;
	int ret = -EINVAL;

	if (len > WOL_RELAY_TEXT_MAX)
		return wol_fail(err, errsz, "longer than %d bytes", WOL_RELAY_TEXT_MAX);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root) {
		/* jansson's message may quote the input: escape it. */
		log_escape(je.text, strnlen(je.text, 64), shown, sizeof(shown));
		wol_fail(err, errsz, "not valid JSON: %s (at byte %d)", shown, je.position);
		goto out;
	}
	if (!json_is_object(root)) {
		wol_fail(err, errsz, "expected a JSON object");
		goto out;
	}
	json_object_foreach(root, key, v)
	{
		size_t k = 0;
		while (keys[k] && strcmp(keys[k], key) != 0)
			k++;
		if (!keys[k]) {
			log_escape(key, strnlen(key, 64), shown, sizeof(shown));
			wol_fail(err, errsz, "unknown field \"%s\"", shown);
			goto out;
		}
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = -ENOMEM;
		wol_fail(err, errsz, "out of memory");
		goto out;
	}
	macs = json_object_get(root, "macs");
	if (!json_is_array(macs) || json_array_size(macs) < 1 ||
	    json_array_size(macs) > WOL_RELAY_MAX_MACS) {
		wol_fail(err, errsz, "macs: expected an array of 1 to %d MAC addresses",
		         WOL_RELAY_MAX_MACS);
		goto out;
	}
	r->nmacs = json_array_size(macs);
	for (size_t i = 0; i < r->nmacs; i++) {
		v = json_array_get(macs, i);
		if (!json_is_string(v)) {
			wol_fail(err, errsz, "macs[%zu]: expected a string", i);
			goto out;
		}
		if (match_mac_parse(json_string_value(v), json_string_length(v), r->macs[i], why,
		                    sizeof(why)) < 0) {
			wol_fail(err, errsz, "macs[%zu]: %s", i, why);
			goto out;
		}
	}
	v = json_object_get(root, "broadcast");
	if (!json_is_string(v)) {
		wol_fail(err, errsz, "broadcast: expected an IPv4 address as a string");
		goto out;
	}
	if (match_ip4_parse(json_string_value(v), json_string_length(v), &r->broadcast, why,
	                    sizeof(why)) < 0) {
		wol_fail(err, errsz, "broadcast: %s", why);
		goto out;
	}
	if (wol_relay_int(root, "port", 1, 65535, &port, err, errsz) < 0 ||
	    wol_relay_int(root, "repeat", 1, WOL_REPEAT_MAX, &repeat, err, errsz) < 0 ||
	    wol_relay_int(root, "gap_ms", 0, WOL_GAP_MAX_MS, &gap, err, errsz) < 0)
		goto out;
	r->port = (uint16_t)port;
	r->repeat = (unsigned)repeat;
	r->gap_ms = (uint32_t)gap;
	if (wol_relay_check(r, err, errsz) < 0)
		goto out;
	*out = *r;
	ret = 0;
out:
	free(r);
	json_decref(root);
	return ret;
}

char *wol_relay_format(const struct wol_relay *r)
{
	json_t *o = NULL, *macs = NULL;
	char mac[MATCH_MAC_SIZE], ip[MATCH_IP4_SIZE], *s = NULL;

	if (wol_relay_check(r, NULL, 0) < 0)
		return NULL;
	o = json_object();
	macs = json_array();
	if (!o || !macs)
		goto out;
	for (size_t i = 0; i < r->nmacs; i++) {
		match_mac_format(r->macs[i], mac);
		if (json_array_append_new(macs, json_string(mac)) < 0)
			goto out;
	}
	match_ip4_format(r->broadcast, ip);
	if (json_object_set(o, "macs", macs) < 0 ||
	    json_object_set_new(o, "broadcast", json_string(ip)) < 0 ||
	    json_object_set_new(o, "port", json_integer(r->port)) < 0 ||
	    json_object_set_new(o, "repeat", json_integer(r->repeat)) < 0 ||
	    json_object_set_new(o, "gap_ms", json_integer(r->gap_ms)) < 0)
		goto out;
	s = json_dumps(o, JSON_COMPACT);
out:
	json_decref(macs);
	json_decref(o);
	return s;
}

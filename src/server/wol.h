/*
 * Wake-on-LAN (docs/wol.md): magic packets, the broadcast addresses they
 * go to, a sender, and the command a relaying agent receives.
 *
 * A magic packet is 6 bytes 0xff followed by the target's MAC address 16
 * times (102 bytes), optionally followed by a SecureOn password of 4 or 6
 * bytes (106 or 108 bytes). It travels as one UDP datagram to a broadcast
 * address, port 9 by default, so that the sleeping NIC sees it whatever its
 * IP address: the directed broadcast of the target's subnet (10.1.2.255 for
 * 10.1.2.0/24), and also the limited broadcast 255.255.255.255 out of the
 * server's own interface when the target is in the server's subnet.
 *
 * A directed broadcast to another subnet reaches it only when every router
 * on the way forwards it (Linux: net.ipv4.conf.*.bc_forwarding; most
 * routers refuse, as RFC 2644 asks). For such subnets the server instead
 * sends a relay command (struct wol_relay, JSON) to an awake agent in the
 * target's subnet, which sends the packets there itself.
 *
 * Conventions: IPv4 addresses are uint32_t in host byte order (as in
 * match.h); functions returning int return 0 (or a count) or a negative
 * errno, and write a one-line reason to err (size errsz; err may be NULL)
 * when they fail. Everything but wol_iface_lookup() and wol_send() is pure:
 * no I/O, no global state.
 */
#ifndef ML_WOL_H
#define ML_WOL_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "match.h"

#define WOL_PACKET_LEN 102     /* 6 x 0xff + 16 x MAC */
#define WOL_PACKET_MAX 108     /* with a 6-byte SecureOn password */
#define WOL_PORT_DEFAULT 9     /* "discard"; 7 (echo) is the other usual one */
#define WOL_LBCAST 0xffffffffu /* 255.255.255.255, the limited broadcast */
#define WOL_BCAST_NONE 0u      /* wol_broadcast_addr(): the subnet has no broadcast */
#define WOL_ERR_SIZE 256
#define WOL_REPEAT_MAX 10    /* packets per target and destination, at most */
#define WOL_GAP_MAX_MS 10000 /* longest gap between two repeats */

/* Writes the 102-byte magic packet of mac to out. */
void wol_packet(const uint8_t mac[MATCH_MAC_BYTES], uint8_t out[WOL_PACKET_LEN]);

/*
 * Writes the magic packet of mac followed by a SecureOn password of pwlen
 * bytes (4 or 6; 0 gives the plain packet). Returns the packet's length
 * (102, 106 or 108), or -EINVAL for another pwlen (out untouched).
 */
int wol_packet_secureon(const uint8_t mac[MATCH_MAC_BYTES], const uint8_t *pw, size_t pwlen,
                        uint8_t out[WOL_PACKET_MAX]);

/*
 * The directed broadcast address of subnet: its network address with every
 * host bit set (10.1.2.0/24 gives 10.1.2.255; 0.0.0.0/0 gives
 * 255.255.255.255). A /31 (RFC 3021: a point-to-point link of two hosts)
 * and a /32 (one host) have no broadcast address: both of their addresses
 * are hosts. For them this returns WOL_BCAST_NONE (0.0.0.0, which is never
 * the broadcast of a /0../30), and such a target can be woken only by the
 * limited broadcast on its own link: from the server when it shares the
 * link (wol_destinations()), otherwise from a relaying agent there.
 */
uint32_t wol_broadcast_addr(const struct match_cidr *subnet);

/* One IPv4 address of a local interface, as wol_iface_lookup() finds it. */
struct wol_iface {
	char name[IF_NAMESIZE];
	unsigned index;        /* if_nametoindex() */
	uint32_t addr;         /* its first IPv4 address */
	struct match_cidr net; /* the subnet of that address */
};

/*
 * Looks up interface name's index and its first IPv4 address and subnet
 * (getifaddrs). Returns 0, -ENODEV (no such interface) or -EADDRNOTAVAIL
 * (it has no IPv4 address), with a reason in err.
 */
int wol_iface_lookup(const char *name, struct wol_iface *out, char *err, size_t errsz);

/* Where one packet goes: an address, and the interface to leave by (0: routing decides). */
struct wol_dest {
	uint32_t addr;
	unsigned ifindex;
};

/*
 * The destinations of a target in subnet (NULL: unknown), given the
 * server's wake interface (NULL: none configured). At most two, in this
 * order: the directed broadcast of subnet (when it has one), routed as the
 * kernel decides; and 255.255.255.255 out of iface, when iface is given and
 * subnet lies inside iface's subnet (the same subnet, or a narrower one such
 * as a /32 for one host) or is unknown. Returns how many it wrote to out (0,
 * 1 or 2); 0 means the server cannot reach the target by itself and needs a
 * relaying agent.
 */
size_t wol_destinations(const struct match_cidr *subnet, const struct wol_iface *iface,
                        struct wol_dest out[2]);

/* One packet to send, and what became of it. */
struct wol_target {
	uint8_t mac[MATCH_MAC_BYTES];
	struct wol_dest dest;
	/* Results, written by wol_send(): */
	unsigned sent; /* packets the kernel accepted (0..repeat) */
	int err;       /* 0, or the -errno of the last packet that failed */
};

struct wol_opts {
	uint16_t port;   /* UDP destination port; 0 means WOL_PORT_DEFAULT */
	unsigned repeat; /* rounds: each target's packet is sent this often (1..WOL_REPEAT_MAX) */
	uint64_t gap_ms; /* pause between two rounds (0..WOL_GAP_MAX_MS) */
};

struct srvconf;
/* The [wol] settings (port, repeat, gap) as wol_send() options. */
void wol_opts_from_conf(const struct srvconf *c, struct wol_opts *o);

/*
 * Sends the magic packet of each target to its destination, repeat rounds
 * with gap_ms between rounds, from one non-blocking UDP socket with
 * SO_BROADCAST (a target with dest.ifindex leaves by that interface, through
 * IP_PKTINFO, which needs no privilege). A packet that fails (ENETUNREACH:
 * no route to that subnet; EPERM: a local firewall said no; EAGAIN: the socket
 * buffer stayed full for 100 ms) is recorded in its target (sent, err) and
 * the batch goes on. The call blocks for about (repeat - 1) * gap_ms.
 *
 * Returns how many targets got no packet out at all (0: every target got at
 * least one), or a negative errno when the batch could not start (no
 * socket, bad options: err says why; the targets are then untouched).
 */
int wol_send(const struct wol_opts *o, struct wol_target *t, size_t n, char *err, size_t errsz);

/*
 * The command the server sends an awake agent in a target's subnet, whose
 * agent then sends each MAC's packet to broadcast:port, repeat times with
 * gap_ms between rounds. As JSON (wol_relay_parse / wol_relay_format):
 *
 *   {"macs": ["aa:bb:cc:dd:ee:ff", ...], "broadcast": "10.1.2.255", "port": 9,
 *    "repeat": 3, "gap_ms": 100}
 *
 * macs: 1..WOL_RELAY_MAX_MACS MAC addresses (match_mac_parse forms), no
 * address twice. broadcast: 255.255.255.255 or a directed broadcast; an
 * address that cannot be one (0/8, 127/8, multicast 224/4, 240/4 but
 * 255.255.255.255, or one whose two lowest bits are not both set, which no
 * /0../30 broadcast lacks) is refused. port: 1..65535, default 9. repeat:
 * 1..WOL_REPEAT_MAX, default 1. gap_ms: 0..WOL_GAP_MAX_MS, default 100.
 * Unknown keys, duplicate keys, and a document longer than
 * WOL_RELAY_TEXT_MAX are refused. The agent must further check that
 * broadcast is 255.255.255.255 or the broadcast of one of its own subnets.
 */
#define WOL_RELAY_MAX_MACS 256
#define WOL_RELAY_TEXT_MAX 65536

struct wol_relay {
	size_t nmacs;
	uint8_t macs[WOL_RELAY_MAX_MACS][MATCH_MAC_BYTES];
	uint32_t broadcast;
	uint16_t port;
	unsigned repeat;
	uint32_t gap_ms;
};

/*
 * Parses a relay command of len bytes (need not be NUL-terminated).
 * Returns 0 and fills out, or -EINVAL with a reason naming the field
 * ("macs[2]: bad MAC address ..."), leaving out unchanged.
 */
int wol_relay_parse(const char *text, size_t len, struct wol_relay *out, char *err, size_t errsz);
/* Checks a command built in C against the rules above: 0 or -EINVAL with a reason. */
int wol_relay_check(const struct wol_relay *r, char *err, size_t errsz);
/*
 * The command as compact JSON with the keys in the order above: a malloc'ed
 * string (free() it), or NULL when r fails wol_relay_check() or memory runs
 * out. wol_relay_parse() of the result gives r back.
 */
char *wol_relay_format(const struct wol_relay *r);

#endif

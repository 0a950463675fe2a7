/* Sockets for mlcast: multicast sender, multicast receiver, unicast control. */
#ifndef MC_NET_H
#define MC_NET_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#define MC_SOCKBUF (32 * 1024 * 1024)

/*
 * Parses a dotted IPv4 multicast group. Returns 0 or -EINVAL with *why.
 */
int mc_parse_group(const char *s, struct in_addr *out, const char **why);

/*
 * Looks up an interface by name: its index and first IPv4 address. Returns 0
 * or a negative errno with a reason in err.
 */
int mc_iface(const char *ifname, unsigned *ifindex, struct in_addr *addr, char *err, size_t errsz);

/*
 * A non-blocking UDP socket for sending to the group (TTL, loop, outgoing
 * interface set; big send buffer), bound to an ephemeral port on which
 * feedback arrives. Returns the fd or a negative errno with err.
 */
int mc_sender_socket(unsigned ifindex, struct in_addr ifaddr, unsigned ttl, int loop, char *err,
                     size_t errsz);

/*
 * A non-blocking UDP socket bound to group:port that joined the group on the
 * interface (ifindex 0: chosen by the kernel), with IP_MULTICAST_ALL off, a
 * big receive buffer and kernel receive timestamps. Returns fd or -errno.
 */
int mc_receiver_socket(struct in_addr group, uint16_t port, unsigned ifindex, char *err,
                       size_t errsz);

/* A non-blocking UDP socket on an ephemeral port for unicast control. */
int mc_control_socket(char *err, size_t errsz);

/*
 * Points the n headers of a recvmmsg() batch at their buffers: message i
 * reads into bufs + i * bufsz, its source into from[i] and, when ctl is not
 * NULL, its control messages into ctl + i * ctlsz. Call before every
 * recvmmsg(): the kernel overwrites the lengths.
 */
void mc_mmsg_setup(struct mmsghdr *mm, struct iovec *iov, struct sockaddr_in *from, uint8_t *bufs,
                   size_t bufsz, uint8_t *ctl, size_t ctlsz, unsigned n);

/* "a.b.c.d:port" into out (at least 24 bytes). */
void mc_addr_str(const struct sockaddr_in *a, char *out, size_t outsz);

/* Realtime clock in microseconds, truncated to 32 bits (for delay deltas). */
uint32_t mc_clock_us32(void);

#endif

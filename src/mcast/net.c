/* Socket set-up for mlcast (see net.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

int mc_parse_group(const char *s, struct in_addr *out, const char **why)
{
	if (inet_pton(AF_INET, s, out) != 1) {
		*why = "not a dotted IPv4 address";
		return -EINVAL;
	}
	if (!IN_MULTICAST(ntohl(out->s_addr))) {
		*why = "not a multicast address (224.0.0.0/4)";
		return -EINVAL;
	}
	if ((ntohl(out->s_addr) & 0xFFFFFF00u) == 0xE0000000u) {
		*why = "224.0.0.0/24 is reserved for local network control";
		return -EINVAL;
	}
	return 0;
}

int mc_iface(const char *ifname, unsigned *ifindex, struct in_addr *addr, char *err, size_t errsz)
{
	struct ifaddrs *ifa = NULL, *i;
	int ret = -ENOENT;

	*ifindex = if_nametoindex(ifname);
	if (*ifindex == 0) {
		snprintf(err, errsz, "no network interface named '%s'", ifname);
		return -ENODEV;
	}
	if (getifaddrs(&ifa) < 0) {
		snprintf(err, errsz, "getifaddrs: %s", strerror(errno));
		return -errno;
	}
	for (i = ifa; i; i = i->ifa_next) {
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    !strcmp(i->ifa_name, ifname)) {
			*addr = ((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
			ret = 0;
			break;
		}
	}
	freeifaddrs(ifa);
	if (ret)
		snprintf(err, errsz, "interface '%s' has no IPv4 address", ifname);
	return ret;
}

static void bigbuf(int fd, int opt, int force)
{
	int v = MC_SOCKBUF;

	/* As root the FORCE variant passes net.core.[rw]mem_max; else take what we get. */
	if (setsockopt(fd, SOL_SOCKET, force, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

static int fail(int fd, const char *what, char *err, size_t errsz)
{
	int e = errno;

	snprintf(err, errsz, "%s: %s", what, strerror(e));
	if (fd >= 0)
		close(fd);
	return -e;
}

int mc_sender_socket(unsigned ifindex, struct in_addr ifaddr, unsigned ttl, int loop, char *err,
                     size_t errsz)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unsigned char t = (unsigned char)(ttl ? ttl : 1), l = loop ? 1 : 0;
	struct sockaddr_in any = {.sin_family = AF_INET};

	if (fd < 0)
		return fail(-1, "socket", err, errsz);
	bigbuf(fd, SO_SNDBUF, SO_SNDBUFFORCE);
	bigbuf(fd, SO_RCVBUF, SO_RCVBUFFORCE);
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &t, sizeof(t)) < 0)
		return fail(fd, "IP_MULTICAST_TTL", err, errsz);
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &l, sizeof(l)) < 0)
		return fail(fd, "IP_MULTICAST_LOOP", err, errsz);
	if (ifindex) {
		struct ip_mreqn m = {.imr_address = ifaddr, .imr_ifindex = (int)ifindex};

		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof(m)) < 0)
			return fail(fd, "IP_MULTICAST_IF", err, errsz);
		any.sin_addr = ifaddr;
	}
	if (bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0)
		return fail(fd, "bind", err, errsz);
	return fd;
}

int mc_receiver_socket(struct in_addr group, uint16_t port, unsigned ifindex, char *err,
                       size_t errsz)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, zero = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = group};
	struct ip_mreqn m = {.imr_multiaddr = group, .imr_ifindex = (int)ifindex};

	if (fd < 0)
		return fail(-1, "socket", err, errsz);
	/* Several receivers (and sessions) may share a host and a port. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return fail(fd, "SO_REUSEADDR", err, errsz);
	bigbuf(fd, SO_RCVBUF, SO_RCVBUFFORCE);
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0)
		return fail(fd, "SO_TIMESTAMPNS", err, errsz);
	/* The count of packets dropped for want of buffer: a receiver too slow. */
	if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) < 0)
		return fail(fd, "SO_RXQ_OVFL", err, errsz);
	/* Only the group joined on this socket, not every group the host joined. */
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof(zero)) < 0)
		return fail(fd, "IP_MULTICAST_ALL", err, errsz);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail(fd, "bind to the group", err, errsz);
	if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) < 0)
		return fail(fd, "joining the group (is there a multicast route?)", err, errsz);
	return fd;
}

int mc_control_socket(char *err, size_t errsz)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in any = {.sin_family = AF_INET};

	if (fd < 0)
		return fail(-1, "socket", err, errsz);
	if (bind(fd, (struct sockaddr *)&any, sizeof(any)) < 0)
		return fail(fd, "bind", err, errsz);
	return fd;
}

void mc_mmsg_setup(struct mmsghdr *mm, struct iovec *iov, struct sockaddr_in *from, uint8_t *bufs,
                   size_t bufsz, uint8_t *ctl, size_t ctlsz, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		iov[i].iov_base = bufs + i * bufsz;
		iov[i].iov_len = bufsz;
		memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &from[i];
		mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
		if (ctl) {
			mm[i].msg_hdr.msg_control = ctl + i * ctlsz;
			mm[i].msg_hdr.msg_controllen = ctlsz;
		}
	}
}

void mc_addr_str(const struct sockaddr_in *a, char *out, size_t outsz)
{
	char ip[INET_ADDRSTRLEN];

	if (!inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)))
		ip[0] = '\0';
	snprintf(out, outsz, "%s:%u", ip, ntohs(a->sin_port));
}

uint32_t mc_clock_us32(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

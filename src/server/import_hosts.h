/*
 * Machine inventory from DHCP server configurations, streamed: the same
 * record interface as import_csv.h (struct match_sink in match.h), from
 *
 * - ISC dhcpd.conf: `host NAME { hardware ethernet MAC; fixed-address ADDR;
 *   option host-name "NAME"; }` blocks, at any depth inside group, subnet,
 *   shared-network, pool, class or other blocks. A host inside
 *   `subnet ADDR netmask MASK { }` gets that subnet as CIDR. The machine's
 *   name is its `option host-name` when given, else the host declaration's
 *   name. fixed-address may list several addresses or DNS names: the first
 *   IPv4 address is taken, names are skipped (this parser does no lookups).
 *   `#` comments, quoted strings with backslash escapes, and every other
 *   statement or block are read and skipped.
 * - dnsmasq: `dhcp-host=` lines of a dnsmasq.conf, or the lines of a
 *   --dhcp-hostsfile (the same values without `dhcp-host=`). In each
 *   comma-separated value, a word with ':' is a MAC address (several
 *   allowed; a `01-` hardware-type prefix is accepted for Ethernet),
 *   `id:`, `set:`, `tag:`, `net:`, `[IPv6]`, lease times and `ignore`
 *   are skipped, a dotted quad is the IPv4 address and any other word is
 *   the name. Other option lines are skipped; `#` starts a comment at the
 *   start of a line or after white space.
 *
 * Use: hostsimp_new(), hostsimp_feed() with the bytes as they come (any
 * split), hostsimp_finish(). No I/O. A UTF-8 BOM at the start is skipped.
 * With HOSTSIMP_AUTO the parser keeps the input (up to HOSTSIMP_DETECT_MAX
 * bytes) until hostsimp_detect() can tell the format, then parses it all.
 *
 * Results: one record() per host block or dhcp-host line with a name; one
 * error() per bad one (with the line the block or line starts on, or the
 * line of the bad statement inside a host block), and the import goes on.
 * Fatal errors stop it, are reported once through error(), and are then
 * returned by hostsimp_feed()/hostsimp_finish():
 *   -EINVAL  the format cannot be told (HOSTSIMP_AUTO), or dhcpd blocks
 *            nested deeper than HOSTSIMP_MAX_DEPTH;
 *   -E2BIG   more than HOSTSIMP_MAX_RECORDS host blocks or dhcp-host lines;
 *   other    a callback's negative return (a positive one becomes -ECANCELED).
 * After a fatal error, or after hostsimp_finish(), every call returns an
 * error (-EINVAL if it was finish) and makes no callback.
 *
 * Hard caps: a dnsmasq line and a dhcpd statement (the bytes of its words)
 * are at most HOSTSIMP_MAX_LINE bytes, a dhcpd statement at most
 * HOSTSIMP_MAX_WORDS words; longer ones are an error for their record and
 * are skipped. Memory: one fixed block at hostsimp_new(), plus the
 * detection buffer with HOSTSIMP_AUTO.
 */
#ifndef ML_IMPORT_HOSTS_H
#define ML_IMPORT_HOSTS_H

#include <stddef.h>

#include "match.h"

#define HOSTSIMP_MAX_LINE 8192
#define HOSTSIMP_MAX_WORDS 64
#define HOSTSIMP_MAX_DEPTH 32
#define HOSTSIMP_MAX_RECORDS 100000
#define HOSTSIMP_DETECT_MAX (64 * 1024)

enum hostsimp_format {
	HOSTSIMP_AUTO = 0, /* tell from the content; also "not known (yet)" */
	HOSTSIMP_DHCPD,
	HOSTSIMP_DNSMASQ,
};

struct hostsimp;

/* A new parser for fmt, sending its results to *sink (copied). NULL when out of memory
 * or when fmt is not one of the enum. */
struct hostsimp *hostsimp_new(enum hostsimp_format fmt, const struct match_sink *sink);
/* Parses the next len bytes. Returns 0, or a fatal error (see above). */
int hostsimp_feed(struct hostsimp *p, const void *buf, size_t len);
/* Ends the input (unterminated blocks and strings are reported). Returns 0 or a fatal error. */
int hostsimp_finish(struct hostsimp *p);
/* Accepts NULL. */
void hostsimp_free(struct hostsimp *p);
/* The format being parsed: the one asked for, or the one detected; HOSTSIMP_AUTO until known. */
enum hostsimp_format hostsimp_format(const struct hostsimp *p);

/*
 * Tells the format from the start of a file: the first line that is
 * clearly one or the other decides (a dhcpd keyword such as host, subnet,
 * group, option or hardware followed by a space, '{' or ';', or a line
 * ending in '{', ';' or '}'; a dnsmasq `key=value` line, or a hosts-file
 * line starting with a MAC address or id:). Returns HOSTSIMP_AUTO when no
 * line decides (e.g. only comments).
 */
enum hostsimp_format hostsimp_detect(const void *buf, size_t len);

/* "auto", "dhcpd", "dnsmasq"; and back (case-insensitive; returns 0 or -EINVAL). */
const char *hostsimp_format_name(enum hostsimp_format f);
int hostsimp_format_parse(const char *s, enum hostsimp_format *out);

/* new + feed + finish + free over a buffer in memory. Returns as hostsimp_finish(), or -ENOMEM. */
int hostsimp_parse(enum hostsimp_format fmt, const void *buf, size_t len,
                   const struct match_sink *sink);

#endif

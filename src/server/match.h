/*
 * Inventory values: parsers, validators and matchers for what describes a
 * machine (MAC addresses, IPv4 addresses, subnets, host names, rooms, tags,
 * notes), and struct match_machine, the validated record that the importers
 * (import_csv.h, import_hosts.h) emit and that the API can fill the same way.
 *
 * Everything here is pure: no I/O, no allocation, no global state, so any
 * thread may call anything and every function can be fuzzed alone.
 *
 * Conventions:
 * - Text comes in as (s, len): it need not be NUL-terminated, and a NUL byte
 *   inside len is an error, never an early end.
 * - Functions returning int return 0 or -EINVAL. On -EINVAL they write a
 *   one-line English reason to err (size errsz; both may be NULL/0), with the
 *   offending value quoted and escaped (log_escape), e.g.
 *   `bad MAC address "00:11:22:33:44": expected ...`. MATCH_ERR_SIZE is
 *   always enough. On error, outputs are left unchanged.
 * - IPv4 addresses are uint32_t in host byte order: 10.1.2.3 is 0x0a010203.
 */
#ifndef ML_MATCH_H
#define ML_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MATCH_ERR_SIZE 256

#define MATCH_MAC_BYTES 6
#define MATCH_MAC_SIZE 18   /* "aa:bb:cc:dd:ee:ff" and its NUL */
#define MATCH_IP4_SIZE 16   /* "255.255.255.255" and its NUL */
#define MATCH_CIDR_SIZE 19  /* "255.255.255.255/32" and its NUL */
#define MATCH_NAME_MAX 253  /* bytes of a host name, without a trailing dot */
#define MATCH_NAME_SIZE 254 /* with the NUL */
#define MATCH_LABEL_MAX 63
#define MATCH_TAG_MAX 64 /* bytes of a tag or a room name */
#define MATCH_TAG_SIZE 65
#define MATCH_NOTES_MAX 4096
#define MATCH_NOTES_SIZE 4097
#define MATCH_MAX_MACS 8   /* MAC addresses of one machine */
#define MATCH_MAX_TAGS 32  /* tags of one machine */
#define MATCH_GLOB_MAX 255 /* longest glob pattern (and name) match_glob() looks at */

/* An IPv4 network: net has no host bits set; prefix is 0..32. */
struct match_cidr {
	uint32_t net;
	unsigned prefix;
};

/*
 * MAC addresses: aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff (one or two hex digits
 * per byte, one separator throughout) or aabb.ccdd.eeff (Cisco), any case.
 * The all-zero and the broadcast (ff:ff:ff:ff:ff:ff) addresses are refused;
 * any other (multicast and locally administered ones too) is accepted.
 */
int match_mac_parse(const char *s, size_t len, uint8_t mac[MATCH_MAC_BYTES], char *err,
                    size_t errsz);
/* Writes the canonical form: lower case, colons, "aa:bb:cc:dd:ee:ff". */
void match_mac_format(const uint8_t mac[MATCH_MAC_BYTES], char out[MATCH_MAC_SIZE]);

/*
 * A strict dotted quad: four decimal numbers 0..255, no sign, no spaces, and
 * no leading zero ("010.0.0.1" is refused: octal to inet_aton, decimal to
 * people).
 */
int match_ip4_parse(const char *s, size_t len, uint32_t *ip, char *err, size_t errsz);
void match_ip4_format(uint32_t ip, char out[MATCH_IP4_SIZE]);

/*
 * "ADDRESS/PREFIX", e.g. "10.1.2.0/24", prefix 0..32 without leading zero.
 * Host bits set is an error that names the network meant:
 * `10.1.2.5/24 has host bits set; did you mean 10.1.2.0/24?`.
 */
int match_cidr_parse(const char *s, size_t len, struct match_cidr *c, char *err, size_t errsz);
void match_cidr_format(const struct match_cidr *c, char out[MATCH_CIDR_SIZE]);
bool match_cidr_contains(const struct match_cidr *c, uint32_t ip);
/* The netmask of a prefix (0..32): 24 gives 0xffffff00. */
uint32_t match_prefix_mask(unsigned prefix);
/* The prefix of a contiguous netmask (255.255.255.0 gives 24); -EINVAL if not contiguous. */
int match_netmask_prefix(uint32_t mask, unsigned *prefix);

/*
 * Host names after RFC 1123: dot-separated labels of 1..63 letters, digits
 * and '-', not starting or ending with '-'; at most 253 bytes; one trailing
 * dot allowed (an absolute name); a name that is all digits and dots (it
 * looks like an address) is refused.
 */
int match_hostname_check(const char *s, size_t len, char *err, size_t errsz);
/* Checks, then writes the canonical form: lower case, without the trailing dot. */
int match_hostname_normalize(const char *s, size_t len, char out[MATCH_NAME_SIZE], char *err,
                             size_t errsz);

/*
 * Case-insensitive (ASCII) glob match of a whole name: '*' any run, '?' one
 * byte, '[a-c]' / '[!a-c]' / '[^a-c]' a class (']' first is literal), '\'
 * makes the next byte literal. An unterminated '[' is a literal '['. It runs
 * iteratively, backtracking only to the last '*', so it takes at most about
 * plen * slen steps; a pattern or name longer than MATCH_GLOB_MAX never
 * matches.
 */
bool match_glob(const char *pat, size_t plen, const char *s, size_t slen);
/* Checks that a pattern is well-formed (no unterminated '[' or trailing '\', not too long). */
int match_glob_check(const char *pat, size_t plen, char *err, size_t errsz);

/*
 * True when name is domain or inside it, case-insensitively and ignoring a
 * trailing dot on either: "lab.example.edu" matches "lab.example.edu" and
 * "pc1.lab.example.edu", not "pc1.xlab.example.edu". A leading dot on domain
 * is ignored too; an empty domain matches nothing.
 */
bool match_domain(const char *domain, size_t dlen, const char *name, size_t nlen);

/*
 * Tags: 1..64 bytes of valid UTF-8 without control characters, white space,
 * ',' or ';' (the separators of tag lists).
 */
int match_tag_check(const char *s, size_t len, char *err, size_t errsz);
/*
 * Rooms: 1..64 bytes of valid UTF-8 without control characters or ',', and
 * without white space at either end ("Room 1.02" is fine).
 */
int match_room_check(const char *s, size_t len, char *err, size_t errsz);
/* Notes: 0..4096 bytes of valid UTF-8; tab, CR and LF are the only control characters allowed. */
int match_notes_check(const char *s, size_t len, char *err, size_t errsz);

/*
 * One machine, validated. Every field is a fixed-size array inside the
 * struct, so a caller may copy the struct, keep it, or insert straight from
 * it; nothing points outside it. Empty strings and zero counts mean "not
 * given". The text forms are canonical (see the match_* parsers above), and
 * the numeric forms next to them agree with them.
 */
struct match_machine {
	unsigned long line;         /* importers: the line the record starts on; 0 otherwise */
	char name[MATCH_NAME_SIZE]; /* lower case, no trailing dot; required */
	unsigned nmacs;             /* 0..MATCH_MAX_MACS, no duplicates */
	char macs[MATCH_MAX_MACS][MATCH_MAC_SIZE];
	uint8_t mac[MATCH_MAX_MACS][MATCH_MAC_BYTES];
	char ip[MATCH_IP4_SIZE];      /* "" = none */
	uint32_t ip4;                 /* valid when ip[0] */
	char subnet[MATCH_CIDR_SIZE]; /* "" = none; when both, ip is inside subnet */
	struct match_cidr net;        /* valid when subnet[0] */
	char room[MATCH_TAG_SIZE];    /* "" = none */
	unsigned ntags;               /* 0..MATCH_MAX_TAGS, no duplicates, in input order */
	char tags[MATCH_MAX_TAGS][MATCH_TAG_SIZE];
	char notes[MATCH_NOTES_SIZE]; /* "" = none */
};

/*
 * Setters: each validates its input and fills its field(s), or returns
 * -EINVAL with a reason and leaves the machine as it was. White space around
 * the whole value is ignored; an empty value leaves the field empty (except
 * for the name, which must not be empty).
 */
void match_machine_clear(struct match_machine *m);
int match_machine_set_name(struct match_machine *m, const char *s, size_t len, char *err,
                           size_t errsz);
/* Adds one MAC address; a duplicate or a ninth one is an error. */
int match_machine_add_mac(struct match_machine *m, const char *s, size_t len, char *err,
                          size_t errsz);
/* Adds a list of MAC addresses separated by spaces, tabs, ';' or ','; all or none are added. */
int match_machine_add_macs(struct match_machine *m, const char *s, size_t len, char *err,
                           size_t errsz);
int match_machine_set_ip(struct match_machine *m, const char *s, size_t len, char *err,
                         size_t errsz);
int match_machine_set_subnet(struct match_machine *m, const char *s, size_t len, char *err,
                             size_t errsz);
int match_machine_set_room(struct match_machine *m, const char *s, size_t len, char *err,
                           size_t errsz);
/*
 * Adds tags separated by spaces, tabs, ';' or ','; a tag given twice is
 * kept once; more than MATCH_MAX_TAGS is an error. All or none are added.
 */
int match_machine_add_tags(struct match_machine *m, const char *s, size_t len, char *err,
                           size_t errsz);
int match_machine_set_notes(struct match_machine *m, const char *s, size_t len, char *err,
                            size_t errsz);
/* The checks across fields: a name is given, and the address is inside the subnet. */
int match_machine_check(const struct match_machine *m, char *err, size_t errsz);

/*
 * Where the importers send their results. Either callback may be NULL.
 *
 * record() gets each valid machine; the pointer is valid only during the
 * call, but the struct holds no pointers, so copying *m keeps everything.
 * error() gets each bad record, and the error that stopped an import, as a
 * line number (1-based; the first line of the bad record) and a one-line
 * message without the line, e.g. `bad MAC address "zz": ...`; callers
 * usually print "FILE:LINE: MESSAGE". msg is valid only during the call.
 *
 * A callback returns 0 to go on; any other value stops the import, and the
 * feed or finish call that made the callback returns it (a positive value
 * as -ECANCELED). See import_csv.h for which errors are fatal.
 */
struct match_sink {
	int (*record)(void *user, const struct match_machine *m);
	int (*error)(void *user, unsigned long line, const char *msg);
	void *user;
};

/*
 * Call a sink's record() or error() (when set) for an importer, mapping the
 * callback's answer to the importer's: 0 goes on, a negative value stops
 * with it, a positive one stops as -ECANCELED.
 */
int match_sink_record(const struct match_sink *s, const struct match_machine *m);
int match_sink_error(const struct match_sink *s, unsigned long line, const char *msg);

#endif

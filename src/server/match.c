/*
 * Inventory values: parsers, validators and matchers (see match.h).
 *
 * Every parser works on (pointer, length) and never reads past it, so the
 * importers can hand over slices of their buffers, and a NUL byte inside a
 * value is refused like any other bad byte instead of ending it early.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "log.h"
#include "match.h"
#include "parse.h"

/* Quoted values in messages are cut to this many input bytes. */
#define SHOW_MAX 48
/* Room for an escaped value of SHOW_MAX bytes, "..." and the NUL. */
#define SHOW_SIZE (4 * SHOW_MAX + 4)

/* Writes a message to err when the caller gave a buffer. Returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Escapes an untrusted value for a message, cut to SHOW_MAX bytes with "..." when longer. */
static const char *show(const char *s, size_t len, char out[SHOW_SIZE])
{
	size_t n = len > SHOW_MAX ? SHOW_MAX : len;
	size_t o;

	log_escape(s, n, out, SHOW_SIZE - 3);
	if (n < len) {
		o = strlen(out);
		memcpy(out + o, "...", 4);
	}
	return out;
}

/* Trims white space at both ends of [*s, *s + *len). */
static void trim(const char **s, size_t *len)
{
	while (*len > 0 && ascii_is_space((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ascii_is_space((*s)[*len - 1]))
		(*len)--;
}

/* ---- MAC addresses ---- */

/* Cisco form: exactly "xxxx.xxxx.xxxx". Returns true and fills mac when it is. */
static bool mac_cisco(const char *s, size_t len, uint8_t mac[MATCH_MAC_BYTES])
{
	uint8_t m[MATCH_MAC_BYTES];

	if (len != 14 || s[4] != '.' || s[9] != '.')
		return false;
	for (size_t g = 0; g < 3; g++) {
		const char *p = s + g * 5;

		for (size_t i = 0; i < 4; i++)
			if (ascii_hexval(p[i]) < 0)
				return false;
		m[2 * g] = (uint8_t)(ascii_hexval(p[0]) << 4 | ascii_hexval(p[1]));
		m[2 * g + 1] = (uint8_t)(ascii_hexval(p[2]) << 4 | ascii_hexval(p[3]));
	}
	memcpy(mac, m, sizeof(m));
	return true;
}

/* Colon or dash form: six groups of one or two hex digits, one separator throughout. */
static bool mac_sep(const char *s, size_t len, uint8_t mac[MATCH_MAC_BYTES])
{
	uint8_t m[MATCH_MAC_BYTES];
	char sep = 0;
	size_t i = 0;

	for (size_t g = 0; g < MATCH_MAC_BYTES; g++) {
		unsigned v = 0, n = 0;

		if (g > 0) {
			if (i >= len || (s[i] != ':' && s[i] != '-'))
				return false;
			if (sep == 0)
				sep = s[i];
			else if (s[i] != sep)
				return false;
			i++;
		}
		while (i < len && n < 2 && ascii_hexval(s[i]) >= 0) {
			v = v << 4 | (unsigned)ascii_hexval(s[i]);
			i++;
			n++;
		}
		if (n == 0)
			return false;
		m[g] = (uint8_t)v;
	}
	if (i != len)
		return false;
	memcpy(mac, m, sizeof(m));
	return true;
}

int match_mac_parse(const char *s, size_t len, uint8_t mac[MATCH_MAC_BYTES], char *err,
                    size_t errsz)
{
	static const uint8_t zero[MATCH_MAC_BYTES] = {0};
	static const uint8_t bcast[MATCH_MAC_BYTES] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	char v[SHOW_SIZE];
	uint8_t m[MATCH_MAC_BYTES];

	if (len == 0)
		return fail(err, errsz, "empty MAC address");
	if (memchr(s, '*', len))
		return fail(err, errsz, "bad MAC address \"%s\": wildcards cannot name one machine",
		            show(s, len, v));
	if (!mac_cisco(s, len, m) && !mac_sep(s, len, m))
		return fail(err, errsz,
		            "bad MAC address \"%s\": expected six hex bytes as aa:bb:cc:dd:ee:ff, "
		            "aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff",
		            show(s, len, v));
	if (memcmp(m, zero, sizeof(m)) == 0)
		return fail(err, errsz, "MAC address \"%s\" is all zeros", show(s, len, v));
	if (memcmp(m, bcast, sizeof(m)) == 0)
		return fail(err, errsz, "MAC address \"%s\" is the broadcast address",
		            show(s, len, v));
	memcpy(mac, m, sizeof(m));
	return 0;
}

void match_mac_format(const uint8_t mac[MATCH_MAC_BYTES], char out[MATCH_MAC_SIZE])
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < MATCH_MAC_BYTES; i++) {
		out[3 * i] = hex[mac[i] >> 4];
		out[3 * i + 1] = hex[mac[i] & 0xf];
		out[3 * i + 2] = i + 1 < MATCH_MAC_BYTES ? ':' : '\0';
	}
}

/* ---- IPv4 ---- */

/*
 * Parses a dotted quad into *ip. Returns 0, or -EINVAL with a static reason
 * in *why (the caller adds the value and its context).
 */
static int ip4_parse(const char *s, size_t len, uint32_t *ip, const char **why)
{
	uint32_t v = 0;
	size_t i = 0, dots = 0;

	*why = "expected four numbers 0-255 separated by dots";
	/* The shape first, so that "167772160" is not called a number too large. */
	for (size_t k = 0; k < len; k++)
		dots += s[k] == '.';
	if (dots != 3)
		return -EINVAL;
	for (int part = 0; part < 4; part++) {
		char digits[4];
		size_t n = 0;
		uint64_t octet;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return -EINVAL;
			i++;
		}
		while (i < len && ascii_is_digit(s[i])) {
			if (n == 3) {
				*why = "a number is more than 255";
				return -EINVAL;
			}
			digits[n++] = s[i++];
		}
		if (n == 0)
			return -EINVAL;
		digits[n] = '\0';
		if (n > 1 && digits[0] == '0') {
			*why = "a number has a leading zero (octal or decimal?)";
			return -EINVAL;
		}
		if (parse_uint(digits, 0, 255, &octet, NULL) < 0) {
			*why = "a number is more than 255";
			return -EINVAL;
		}
		v = v << 8 | (uint32_t)octet;
	}
	if (i != len)
		return -EINVAL;
	*ip = v;
	return 0;
}

int match_ip4_parse(const char *s, size_t len, uint32_t *ip, char *err, size_t errsz)
{
	char v[SHOW_SIZE];
	const char *why;

	if (len == 0)
		return fail(err, errsz, "empty IPv4 address");
	if (ip4_parse(s, len, ip, &why) < 0)
		return fail(err, errsz, "bad IPv4 address \"%s\": %s", show(s, len, v), why);
	return 0;
}

void match_ip4_format(uint32_t ip, char out[MATCH_IP4_SIZE])
{
	snprintf(out, MATCH_IP4_SIZE, "%u.%u.%u.%u", ip >> 24, ip >> 16 & 0xff, ip >> 8 & 0xff,
	         ip & 0xff);
}

uint32_t match_prefix_mask(unsigned prefix)
{
	if (prefix == 0)
		return 0;
	if (prefix >= 32)
		return 0xffffffffu;
	return ~(0xffffffffu >> prefix);
}

int match_netmask_prefix(uint32_t mask, unsigned *prefix)
{
	unsigned n = 0;

	while (n < 32 && (mask & (0x80000000u >> n)))
		n++;
	if (match_prefix_mask(n) != mask)
		return -EINVAL;
	*prefix = n;
	return 0;
}

int match_cidr_parse(const char *s, size_t len, struct match_cidr *c, char *err, size_t errsz)
{
	char v[SHOW_SIZE], want[MATCH_CIDR_SIZE], digits[3];
	const char *slash, *why;
	struct match_cidr r;
	uint64_t prefix;
	size_t alen, plen;
	uint32_t ip;

	if (len == 0)
		return fail(err, errsz, "empty subnet");
	slash = memchr(s, '/', len);
	if (slash == NULL)
		return fail(err, errsz,
		            "bad subnet \"%s\": expected ADDRESS/PREFIX, e.g. 10.1.2.0/24",
		            show(s, len, v));
	alen = (size_t)(slash - s);
	plen = len - alen - 1;
	if (ip4_parse(s, alen, &ip, &why) < 0)
		return fail(err, errsz, "bad subnet \"%s\": address: %s", show(s, len, v), why);
	if (plen == 0 || plen > 2 || !ascii_is_digit(slash[1]) ||
	    (plen == 2 && !ascii_is_digit(slash[2])) || (plen == 2 && slash[1] == '0'))
		return fail(err, errsz, "bad subnet \"%s\": the prefix must be a number 0-32",
		            show(s, len, v));
	memcpy(digits, slash + 1, plen);
	digits[plen] = '\0';
	if (parse_uint(digits, 0, 32, &prefix, NULL) < 0)
		return fail(err, errsz, "bad subnet \"%s\": the prefix must be a number 0-32",
		            show(s, len, v));
	r.prefix = (unsigned)prefix;
	r.net = ip & match_prefix_mask(r.prefix);
	if (r.net != ip) {
		match_cidr_format(&r, want);
		return fail(err, errsz, "%s has host bits set; did you mean %s?", show(s, len, v),
		            want);
	}
	*c = r;
	return 0;
}

void match_cidr_format(const struct match_cidr *c, char out[MATCH_CIDR_SIZE])
{
	char ip[MATCH_IP4_SIZE];

	match_ip4_format(c->net, ip);
	snprintf(out, MATCH_CIDR_SIZE, "%s/%u", ip, c->prefix > 32 ? 32 : c->prefix);
}

bool match_cidr_contains(const struct match_cidr *c, uint32_t ip)
{
	uint32_t mask = match_prefix_mask(c->prefix);

	return (ip & mask) == (c->net & mask);
}

/* ---- host names ---- */

static bool label_char(char c)
{
	return ascii_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

int match_hostname_check(const char *s, size_t len, char *err, size_t errsz)
{
	char v[SHOW_SIZE], l[SHOW_SIZE];
	bool numeric = true;
	size_t start = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0)
		return fail(err, errsz, "empty host name");
	if (len > MATCH_NAME_MAX)
		return fail(err, errsz, "host name \"%s\" is longer than %d bytes", show(s, len, v),
		            MATCH_NAME_MAX);
	for (size_t i = 0; i <= len; i++) {
		size_t n;

		if (i < len && s[i] != '.') {
			if (!label_char(s[i])) {
				char c[SHOW_SIZE];

				return fail(err, errsz,
				            "bad host name \"%s\": \"%s\" is not allowed (letters, "
				            "digits, '-' and '.' only)",
				            show(s, len, v), show(s + i, 1, c));
			}
			if (!ascii_is_digit(s[i]))
				numeric = false;
			continue;
		}
		n = i - start;
		if (n == 0)
			return fail(err, errsz, "bad host name \"%s\": empty label",
			            show(s, len, v));
		if (n > MATCH_LABEL_MAX)
			return fail(err, errsz,
			            "bad host name \"%s\": label \"%s\" is longer than %d bytes",
			            show(s, len, v), show(s + start, n, l), MATCH_LABEL_MAX);
		if (s[start] == '-' || s[i - 1] == '-')
			return fail(err, errsz,
			            "bad host name \"%s\": label \"%s\" starts or ends with '-'",
			            show(s, len, v), show(s + start, n, l));
		start = i + 1;
	}
	if (numeric)
		return fail(err, errsz, "bad host name \"%s\": it looks like an address",
		            show(s, len, v));
	return 0;
}

int match_hostname_normalize(const char *s, size_t len, char out[MATCH_NAME_SIZE], char *err,
                             size_t errsz)
{
	int rc = match_hostname_check(s, len, err, errsz);

	if (rc < 0)
		return rc;
	if (s[len - 1] == '.')
		len--;
	for (size_t i = 0; i < len; i++)
		out[i] = ascii_lower(s[i]);
	out[len] = '\0';
	return 0;
}

/* ---- glob and domains ---- */

/*
 * Matches one pattern element at pat[*p] (not '*') against byte c, and
 * advances *p past the element. Returns true on a match.
 */
static bool glob_one(const char *pat, size_t plen, size_t *p, char c)
{
	size_t i = *p, j;
	bool neg = false, hit = false;

	if (pat[i] == '?') {
		*p = i + 1;
		return true;
	}
	if (pat[i] == '\\' && i + 1 < plen) {
		*p = i + 2;
		return ascii_lower(pat[i + 1]) == ascii_lower(c);
	}
	if (pat[i] != '[') {
		*p = i + 1;
		return ascii_lower(pat[i]) == ascii_lower(c);
	}
	/* A class: find its end first; without one, '[' is literal. */
	j = i + 1;
	if (j < plen && (pat[j] == '!' || pat[j] == '^')) {
		neg = true;
		j++;
	}
	if (j < plen && pat[j] == ']')
		j++;
	while (j < plen && pat[j] != ']')
		j++;
	if (j >= plen) {
		*p = i + 1;
		return c == '[';
	}
	*p = j + 1;
	i += neg ? 2 : 1;
	for (size_t k = i; k < j; k++) {
		char lo = ascii_lower(pat[k]), hi = lo;

		if (k + 2 < j && pat[k + 1] == '-') {
			hi = ascii_lower(pat[k + 2]);
			k += 2;
		}
		if ((unsigned char)ascii_lower(c) >= (unsigned char)lo &&
		    (unsigned char)ascii_lower(c) <= (unsigned char)hi)
			hit = true;
	}
	return hit != neg;
}

bool match_glob(const char *pat, size_t plen, const char *s, size_t slen)
{
	size_t p = 0, i = 0, star_p = 0, star_i = 0;
	bool star = false;

	if (plen > MATCH_GLOB_MAX || slen > MATCH_GLOB_MAX)
		return false;
	/*
	 * The classic single-backtrack loop: on a mismatch, go back to just
	 * after the last '*' and let it swallow one more byte. Earlier stars
	 * never need revisiting, because the last one can absorb anything
	 * they could; so the work is bounded by plen * slen.
	 */
	while (i < slen) {
		size_t np = p;

		if (p < plen && pat[p] == '*') {
			while (p < plen && pat[p] == '*')
				p++;
			star = true;
			star_p = p;
			star_i = i;
			continue;
		}
		if (p < plen && glob_one(pat, plen, &np, s[i])) {
			p = np;
			i++;
			continue;
		}
		if (!star)
			return false;
		p = star_p;
		i = ++star_i;
	}
	while (p < plen && pat[p] == '*')
		p++;
	return p == plen;
}

int match_glob_check(const char *pat, size_t plen, char *err, size_t errsz)
{
	char v[SHOW_SIZE];

	if (plen == 0)
		return fail(err, errsz, "empty pattern");
	if (plen > MATCH_GLOB_MAX)
		return fail(err, errsz, "pattern \"%s\" is longer than %d bytes",
		            show(pat, plen, v), MATCH_GLOB_MAX);
	if (memchr(pat, '\0', plen))
		return fail(err, errsz, "pattern \"%s\" has a NUL byte", show(pat, plen, v));
	for (size_t i = 0; i < plen; i++) {
		if (pat[i] == '\\') {
			if (i + 1 == plen)
				return fail(err, errsz, "pattern \"%s\" ends with a lone '\\'",
				            show(pat, plen, v));
			i++;
		} else if (pat[i] == '[') {
			size_t j = i + 1;

			if (j < plen && (pat[j] == '!' || pat[j] == '^'))
				j++;
			if (j < plen && pat[j] == ']')
				j++;
			while (j < plen && pat[j] != ']')
				j++;
			if (j >= plen)
				return fail(err, errsz, "pattern \"%s\" has a '[' without its ']'",
				            show(pat, plen, v));
			i = j;
		}
	}
	return 0;
}

static bool case_equal(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

bool match_domain(const char *domain, size_t dlen, const char *name, size_t nlen)
{
	if (dlen > 0 && domain[0] == '.') {
		domain++;
		dlen--;
	}
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	if (dlen == 0 || nlen < dlen)
		return false;
	if (nlen == dlen)
		return case_equal(domain, name, dlen);
	return name[nlen - dlen - 1] == '.' && case_equal(domain, name + nlen - dlen, dlen);
}

/* ---- tags, rooms, notes ---- */

/*
 * Checks that s is valid UTF-8 (no overlong forms, surrogates or code points
 * above U+10FFFF) without control characters (C0, DEL, C1) other than those
 * in allowed. Returns NULL, or a static reason.
 */
static const char *utf8_check(const char *s, size_t len, const char *allowed)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned c = u[i], need, cp, min;

		if (c < 0x80) {
			if ((c < 0x20 || c == 0x7f) && (c == 0 || strchr(allowed, (int)c) == NULL))
				return "has a control character";
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return "is not valid UTF-8";
		}
		if (len - i <= need)
			return "is not valid UTF-8";
		for (unsigned k = 1; k <= need; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				return "is not valid UTF-8";
			cp = cp << 6 | (u[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return "is not valid UTF-8";
		if (cp >= 0x80 && cp <= 0x9f)
			return "has a control character";
		i += need + 1;
	}
	return NULL;
}

int match_tag_check(const char *s, size_t len, char *err, size_t errsz)
{
	char v[SHOW_SIZE];
	const char *why;

	if (len == 0)
		return fail(err, errsz, "empty tag");
	if (len > MATCH_TAG_MAX)
		return fail(err, errsz, "tag \"%s\" is longer than %d bytes", show(s, len, v),
		            MATCH_TAG_MAX);
	why = utf8_check(s, len, "");
	if (why)
		return fail(err, errsz, "tag \"%s\" %s", show(s, len, v), why);
	for (size_t i = 0; i < len; i++)
		if (s[i] == ',' || s[i] == ';' || s[i] == ' ')
			return fail(err, errsz,
			            "tag \"%s\" has a '%c' (tags are separated by spaces or ';')",
			            show(s, len, v), s[i]);
	return 0;
}

int match_room_check(const char *s, size_t len, char *err, size_t errsz)
{
	char v[SHOW_SIZE];
	const char *why;

	if (len == 0)
		return fail(err, errsz, "empty room name");
	if (len > MATCH_TAG_MAX)
		return fail(err, errsz, "room name \"%s\" is longer than %d bytes", show(s, len, v),
		            MATCH_TAG_MAX);
	why = utf8_check(s, len, "");
	if (why)
		return fail(err, errsz, "room name \"%s\" %s", show(s, len, v), why);
	if (memchr(s, ',', len))
		return fail(err, errsz, "room name \"%s\" has a ','", show(s, len, v));
	if (s[0] == ' ' || s[len - 1] == ' ')
		return fail(err, errsz, "room name \"%s\" starts or ends with a space",
		            show(s, len, v));
	return 0;
}

int match_notes_check(const char *s, size_t len, char *err, size_t errsz)
{
	const char *why;

	if (len > MATCH_NOTES_MAX)
		return fail(err, errsz, "notes are longer than %d bytes", MATCH_NOTES_MAX);
	why = utf8_check(s, len, "\t\r\n");
	if (why)
		return fail(err, errsz, "notes %s", why);
	return 0;
}

/* ---- machines ---- */

void match_machine_clear(struct match_machine *m)
{
	memset(m, 0, sizeof(*m));
}

int match_machine_set_name(struct match_machine *m, const char *s, size_t len, char *err,
                           size_t errsz)
{
	trim(&s, &len);
	return match_hostname_normalize(s, len, m->name, err, errsz);
}

int match_machine_add_mac(struct match_machine *m, const char *s, size_t len, char *err,
                          size_t errsz)
{
	uint8_t mac[MATCH_MAC_BYTES];
	char txt[MATCH_MAC_SIZE];
	int rc;

	trim(&s, &len);
	rc = match_mac_parse(s, len, mac, err, errsz);
	if (rc < 0)
		return rc;
	match_mac_format(mac, txt);
	for (unsigned i = 0; i < m->nmacs; i++)
		if (memcmp(m->mac[i], mac, sizeof(mac)) == 0)
			return fail(err, errsz, "MAC address %s is listed twice", txt);
	if (m->nmacs >= MATCH_MAX_MACS)
		return fail(err, errsz, "more than %d MAC addresses", MATCH_MAX_MACS);
	memcpy(m->mac[m->nmacs], mac, sizeof(mac));
	memcpy(m->macs[m->nmacs], txt, sizeof(txt));
	m->nmacs++;
	return 0;
}

static bool list_sep(char c)
{
	return ascii_is_space(c) || c == ';' || c == ',';
}

int match_machine_add_macs(struct match_machine *m, const char *s, size_t len, char *err,
                           size_t errsz)
{
	unsigned n = m->nmacs;
	size_t i = 0;

	while (i < len) {
		size_t start;
		int rc;

		while (i < len && list_sep(s[i]))
			i++;
		start = i;
		while (i < len && !list_sep(s[i]))
			i++;
		if (i == start)
			break;
		rc = match_machine_add_mac(m, s + start, i - start, err, errsz);
		if (rc < 0) {
			/* All or none: forget the ones this call added. */
			for (unsigned k = n; k < m->nmacs; k++) {
				memset(m->mac[k], 0, sizeof(m->mac[k]));
				memset(m->macs[k], 0, sizeof(m->macs[k]));
			}
			m->nmacs = n;
			return rc;
		}
	}
	return 0;
}

int match_machine_set_ip(struct match_machine *m, const char *s, size_t len, char *err,
                         size_t errsz)
{
	uint32_t ip;
	int rc;

	trim(&s, &len);
	if (len == 0) {
		m->ip[0] = '\0';
		m->ip4 = 0;
		return 0;
	}
	rc = match_ip4_parse(s, len, &ip, err, errsz);
	if (rc < 0)
		return rc;
	m->ip4 = ip;
	match_ip4_format(ip, m->ip);
	return 0;
}

int match_machine_set_subnet(struct match_machine *m, const char *s, size_t len, char *err,
                             size_t errsz)
{
	struct match_cidr c;
	int rc;

	trim(&s, &len);
	if (len == 0) {
		m->subnet[0] = '\0';
		memset(&m->net, 0, sizeof(m->net));
		return 0;
	}
	rc = match_cidr_parse(s, len, &c, err, errsz);
	if (rc < 0)
		return rc;
	m->net = c;
	match_cidr_format(&c, m->subnet);
	return 0;
}

int match_machine_set_room(struct match_machine *m, const char *s, size_t len, char *err,
                           size_t errsz)
{
	int rc;

	trim(&s, &len);
	if (len == 0) {
		m->room[0] = '\0';
		return 0;
	}
	rc = match_room_check(s, len, err, errsz);
	if (rc < 0)
		return rc;
	memcpy(m->room, s, len);
	m->room[len] = '\0';
	return 0;
}

int match_machine_add_tags(struct match_machine *m, const char *s, size_t len, char *err,
                           size_t errsz)
{
	unsigned n = m->ntags;
	size_t i = 0;
	int rc = 0;

	while (i < len) {
		size_t start, tl;
		bool dup = false;

		while (i < len && list_sep(s[i]))
			i++;
		start = i;
		while (i < len && !list_sep(s[i]))
			i++;
		tl = i - start;
		if (tl == 0)
			break;
		rc = match_tag_check(s + start, tl, err, errsz);
		if (rc < 0)
			goto undo;
		for (unsigned k = 0; k < m->ntags && !dup; k++)
			dup = strlen(m->tags[k]) == tl && memcmp(m->tags[k], s + start, tl) == 0;
		if (dup)
			continue;
		if (m->ntags >= MATCH_MAX_TAGS) {
			rc = fail(err, errsz, "more than %d tags", MATCH_MAX_TAGS);
			goto undo;
		}
		memcpy(m->tags[m->ntags], s + start, tl);
		m->tags[m->ntags][tl] = '\0';
		m->ntags++;
	}
	return 0;
undo:
	/* All or none: forget the ones this call added. */
	for (unsigned k = n; k < m->ntags; k++)
		memset(m->tags[k], 0, sizeof(m->tags[k]));
	m->ntags = n;
	return rc;
}

int match_machine_set_notes(struct match_machine *m, const char *s, size_t len, char *err,
                            size_t errsz)
{
	int rc;

	trim(&s, &len);
	rc = match_notes_check(s, len, err, errsz);
	if (rc < 0)
		return rc;
	memcpy(m->notes, s, len);
	m->notes[len] = '\0';
	return 0;
}

int match_machine_check(const struct match_machine *m, char *err, size_t errsz)
{
	if (m->name[0] == '\0')
		return fail(err, errsz, "no host name (the name is required)");
	if (m->ip[0] && m->subnet[0] && !match_cidr_contains(&m->net, m->ip4))
		return fail(err, errsz, "address %s is not in subnet %s", m->ip, m->subnet);
	return 0;
}

/* A callback's answer as the importer's: 0 goes on, positive stops as -ECANCELED. */
static int match_stop_code(int rc)
{
	return rc == 0 ? 0 : rc < 0 ? rc : -ECANCELED;
}

int match_sink_record(const struct match_sink *s, const struct match_machine *m)
{
	return s->record ? match_stop_code(s->record(s->user, m)) : 0;
}

int match_sink_error(const struct match_sink *s, unsigned long line, const char *msg)
{
	return s->error ? match_stop_code(s->error(s->user, line, msg)) : 0;
}

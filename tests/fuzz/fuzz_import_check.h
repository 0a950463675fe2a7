/*
 * Shared by fuzz_import_csv.c and fuzz_import_hosts.c: a sink that checks
 * the importers' contract on every callback and folds everything that came
 * out into a hash, so that a harness can parse the same input split two
 * ways and require the same outcome.
 *
 * The contract checked: every record is valid by the match_* validators
 * and canonical (re-parsing each text field gives it back unchanged, and
 * the numeric forms agree); every line number is within the input; every
 * message is one non-empty line of printable ASCII (untrusted bytes are
 * escaped).
 */
#ifndef FUZZ_IMPORT_CHECK_H
#define FUZZ_IMPORT_CHECK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

struct fuzz_out {
	uint64_t hash;
	unsigned long max_line; /* no line number may exceed this */
	unsigned long records, errors;
};

static void fuzz_check(int ok)
{
	if (!ok)
		abort();
}

static void fuzz_hash(struct fuzz_out *o, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		o->hash ^= b[i];
		o->hash *= 0x100000001b3ULL;
	}
}

/* The most line numbers an input can have: every LF and CR may end a line. */
static unsigned long fuzz_max_line(const uint8_t *data, size_t size)
{
	unsigned long n = 1;

	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n' || data[i] == '\r';
	return n;
}

static int fuzz_on_record(void *user, const struct match_machine *m)
{
	struct fuzz_out *o = user;
	char name[MATCH_NAME_SIZE], txt[MATCH_CIDR_SIZE];
	uint8_t mac[MATCH_MAC_BYTES];
	struct match_cidr c;
	uint32_t ip;

	o->records++;
	fuzz_check(m->line >= 1 && m->line <= o->max_line);
	/* Every string is terminated inside its array. */
	fuzz_check(memchr(m->name, '\0', sizeof(m->name)) != NULL);
	fuzz_check(memchr(m->ip, '\0', sizeof(m->ip)) != NULL);
	fuzz_check(memchr(m->subnet, '\0', sizeof(m->subnet)) != NULL);
	fuzz_check(memchr(m->room, '\0', sizeof(m->room)) != NULL);
	fuzz_check(memchr(m->notes, '\0', sizeof(m->notes)) != NULL);
	fuzz_check(m->name[0] != '\0');
	fuzz_check(match_hostname_normalize(m->name, strlen(m->name), name, NULL, 0) == 0);
	fuzz_check(strcmp(name, m->name) == 0);
	fuzz_check(m->nmacs <= MATCH_MAX_MACS);
	for (unsigned i = 0; i < m->nmacs; i++) {
		fuzz_check(match_mac_parse(m->macs[i], strlen(m->macs[i]), mac, NULL, 0) == 0);
		fuzz_check(memcmp(mac, m->mac[i], sizeof(mac)) == 0);
		fuzz_check(strlen(m->macs[i]) == MATCH_MAC_SIZE - 1);
		for (unsigned k = 0; k < i; k++)
			fuzz_check(memcmp(m->mac[k], m->mac[i], sizeof(mac)) != 0);
	}
	if (m->ip[0]) {
		fuzz_check(match_ip4_parse(m->ip, strlen(m->ip), &ip, NULL, 0) == 0);
		fuzz_check(ip == m->ip4);
	}
	if (m->subnet[0]) {
		fuzz_check(match_cidr_parse(m->subnet, strlen(m->subnet), &c, NULL, 0) == 0);
		fuzz_check(c.net == m->net.net && c.prefix == m->net.prefix);
		match_cidr_format(&c, txt);
		fuzz_check(strcmp(txt, m->subnet) == 0);
		if (m->ip[0])
			fuzz_check(match_cidr_contains(&c, m->ip4));
	}
	if (m->room[0])
		fuzz_check(match_room_check(m->room, strlen(m->room), NULL, 0) == 0);
	fuzz_check(m->ntags <= MATCH_MAX_TAGS);
	for (unsigned i = 0; i < m->ntags; i++) {
		fuzz_check(memchr(m->tags[i], '\0', sizeof(m->tags[i])) != NULL);
		fuzz_check(match_tag_check(m->tags[i], strlen(m->tags[i]), NULL, 0) == 0);
		for (unsigned k = 0; k < i; k++)
			fuzz_check(strcmp(m->tags[k], m->tags[i]) != 0);
	}
	fuzz_check(match_notes_check(m->notes, strlen(m->notes), NULL, 0) == 0);
	fuzz_check(match_machine_check(m, NULL, 0) == 0);
	fuzz_hash(o, "R", 1);
	fuzz_hash(o, &m->line, sizeof(m->line));
	fuzz_hash(o, m->name, strlen(m->name) + 1);
	for (unsigned i = 0; i < m->nmacs; i++)
		fuzz_hash(o, m->macs[i], strlen(m->macs[i]) + 1);
	fuzz_hash(o, m->ip, strlen(m->ip) + 1);
	fuzz_hash(o, m->subnet, strlen(m->subnet) + 1);
	fuzz_hash(o, m->room, strlen(m->room) + 1);
	for (unsigned i = 0; i < m->ntags; i++)
		fuzz_hash(o, m->tags[i], strlen(m->tags[i]) + 1);
	fuzz_hash(o, m->notes, strlen(m->notes) + 1);
	return 0;
}

static int fuzz_on_error(void *user, unsigned long line, const char *msg)
{
	struct fuzz_out *o = user;
	size_t n = strlen(msg);

	o->errors++;
	fuzz_check(line >= 1 && line <= o->max_line);
	fuzz_check(n > 0 && n < 1024);
	for (size_t i = 0; i < n; i++)
		fuzz_check(msg[i] >= 0x20 && msg[i] < 0x7f);
	fuzz_hash(o, "E", 1);
	fuzz_hash(o, &line, sizeof(line));
	fuzz_hash(o, msg, n);
	return 0;
}

#endif

/*
 * Commands from the server (docs/agent-protocol.md, "Commands"): parsing the
 * poll answer and each command's arguments, and the words of the results.
 * Pure: no I/O, so the parsers are fuzzed (tests/fuzz/fuzz_agent_cmd.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "ascii.h"
#include "log.h"

/* An integer member in [min, max]; 0, or -EINVAL naming it. */
static int acmd_uint(const json_t *o, const char *key, uint64_t min, uint64_t max, uint64_t *out,
                     char *err, size_t errsz)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		log_seterr(err, errsz, "%s: missing", key);
		return -EINVAL;
	}
	if (!json_is_integer(v)) {
		log_seterr(err, errsz, "%s: expected an integer", key);
		return -EINVAL;
	}
	json_int_t i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max) {
		log_seterr(err, errsz, "%s: %lld is out of range %llu..%llu", key, (long long)i,
		           (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*out = (uint64_t)i;
	return 0;
}

/* A string member of 1..max bytes without control characters; *s borrowed. */
static int acmd_str(const json_t *o, const char *key, size_t max, const char **s, size_t *len,
                    char *err, size_t errsz)
{
	const json_t *v = json_object_get(o, key);
	if (!v) {
		log_seterr(err, errsz, "%s: missing", key);
		return -EINVAL;
	}
	if (!json_is_string(v)) {
		log_seterr(err, errsz, "%s: expected a string", key);
		return -EINVAL;
	}
	*s = json_string_value(v);
	*len = json_string_length(v);
	if (*len == 0 || *len > max) {
		log_seterr(err, errsz, "%s: expected 1 to %zu bytes", key, max);
		return -EINVAL;
	}
	for (size_t i = 0; i < *len; i++) {
		if ((unsigned char)(*s)[i] < 0x20 || (*s)[i] == 0x7f) {
			log_seterr(err, errsz, "%s: a control character", key);
			return -EINVAL;
		}
	}
	return 0;
}

/* Hex of exactly 2 * n digits (either case) into n bytes; 0 or -EINVAL naming key. */
static int acmd_hex(const char *key, const char *s, size_t len, uint8_t *out, size_t n, char *err,
                    size_t errsz)
{
	if (len != 2 * n) {
		log_seterr(err, errsz, "%s: expected %zu hex digits, got %zu characters", key,
		           2 * n, len);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		int hi = ascii_hexval(s[2 * i]), lo = ascii_hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			log_seterr(err, errsz, "%s: not a hex digit at position %zu", key,
			           2 * i + (hi < 0 ? 0 : 1));
			return -EINVAL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int acmd_receive_parse(const json_t *args, struct acmd_receive *out, char *err, size_t errsz)
{
	struct acmd_receive r;
	uint8_t sha[32];
	uint64_t v;
	const char *s;
	size_t len;
	struct in_addr g;
	memset(&r, 0, sizeof(r));
	if (!json_is_object(args)) {
		log_seterr(err, errsz, "args: expected an object");
		return -EINVAL;
	}
	if (acmd_uint(args, "image_id", 1, IMGSTORE_MAX_ID, &r.image_id, err, errsz) < 0 ||
	    acmd_uint(args, "version_id", 1, IMGSTORE_MAX_ID, &r.version_id, err, errsz) < 0 ||
	    acmd_uint(args, "size", 1, IMGSTORE_MAX_SIZE, &r.size, err, errsz) < 0)
		return -EINVAL;
	if (acmd_str(args, "sha256", 64, &s, &len, err, errsz) < 0 ||
	    acmd_hex("sha256", s, len, sha, 32, err, errsz) < 0)
		return -EINVAL;
	for (size_t i = 0; i < 64; i++)
		r.sha256[i] = ascii_lower(s[i]);
	if (acmd_str(args, "manifest_sha256", 64, &s, &len, err, errsz) < 0 ||
	    acmd_hex("manifest_sha256", s, len, r.manifest_sha256, 32, err, errsz) < 0)
		return -EINVAL;
	if (acmd_str(args, "group", 15, &s, &len, err, errsz) < 0)
		return -EINVAL;
	memcpy(r.group, s, len);
	if (inet_pton(AF_INET, r.group, &g) != 1 || (ntohl(g.s_addr) >> 28) != 14) {
		log_seterr(err, errsz, "group: %s is not an IPv4 multicast address", r.group);
		return -EINVAL;
	}
	if (acmd_uint(args, "port", 1, 65535, &v, err, errsz) < 0)
		return -EINVAL;
	r.port = (uint16_t)v;
	if (acmd_uint(args, "session", 0, UINT32_MAX, &v, err, errsz) < 0)
		return -EINVAL;
	r.session = (uint32_t)v;
	if (acmd_str(args, "key", 2 * MC_MAX_KEY, &s, &len, err, errsz) < 0)
		return -EINVAL;
	if (len % 2) {
		log_seterr(err, errsz, "key: an odd number of hex digits");
		return -EINVAL;
	}
	if (acmd_hex("key", s, len, r.key, len / 2, err, errsz) < 0)
		return -EINVAL;
	r.keylen = len / 2;
	if (acmd_str(args, "name", sizeof(r.name) - 1, &s, &len, err, errsz) < 0)
		return -EINVAL;
	memcpy(r.name, s, len);
	if (acmd_uint(args, "timeout_s", 1, ACMD_MAX_TIMEOUT_S, &v, err, errsz) < 0)
		return -EINVAL;
	r.timeout_s = (unsigned)v;
	*out = r;
	return 0;
}

int acmd_parse(const json_t *cmd, struct acmd *c, char *err, size_t errsz)
{
	uint64_t v;
	char why[AGENT_ERR_SIZE];
	memset(c, 0, sizeof(*c));
	if (!json_is_object(cmd)) {
		log_seterr(err, errsz, "command: expected an object");
		return -EINVAL;
	}
	if (acmd_uint(cmd, "id", 1, INT64_MAX, &c->id, err, errsz) < 0)
		return -EINVAL;
	const json_t *kind = json_object_get(cmd, "kind");
	const json_t *args = json_object_get(cmd, "args");
	if (!json_is_string(kind)) {
		log_seterr(err, errsz, "command %llu: kind: expected a string",
		           (unsigned long long)c->id);
		return -EINVAL;
	}
	if (!json_is_object(args)) {
		log_seterr(err, errsz, "command %llu: args: expected an object",
		           (unsigned long long)c->id);
		return -EINVAL;
	}
	const char *k = json_string_value(kind);
	int rc = 0;
	if (strcmp(k, "receive") == 0) {
		c->kind = ACMD_RECEIVE;
		rc = acmd_receive_parse(args, &c->u.rx, why, sizeof(why));
	} else if (strcmp(k, "wol") == 0) {
		c->kind = ACMD_WOL;
		char *text = json_dumps(args, JSON_COMPACT);
		if (!text)
			return -ENOMEM;
		rc = wol_relay_parse(text, strlen(text), &c->u.wol, why, sizeof(why));
		free(text);
	} else if (strcmp(k, "rollback") == 0) {
		c->kind = ACMD_ROLLBACK;
		rc = acmd_uint(args, "image_id", 1, IMGSTORE_MAX_ID, &c->u.rb.image_id, why,
		               sizeof(why));
		/* from_version is optional: without it the rollback is unconditional. */
		if (rc == 0 && json_object_get(args, "from_version"))
			rc = acmd_uint(args, "from_version", 1, IMGSTORE_MAX_ID,
			               &c->u.rb.from_version, why, sizeof(why));
	} else if (strcmp(k, "cancel") == 0) {
		c->kind = ACMD_CANCEL;
		rc = acmd_uint(args, "command", 1, INT64_MAX, &v, why, sizeof(why));
		c->u.target = v;
	} else {
		char esc[64];
		log_seterr(err, errsz, "command %llu: unknown kind \"%s\"",
		           (unsigned long long)c->id,
		           log_escape(k, json_string_length(kind), esc, sizeof(esc)));
		return -ENOTSUP;
	}
	if (rc < 0) {
		log_seterr(err, errsz, "command %llu (%s): %s", (unsigned long long)c->id, k, why);
		return -EINVAL;
	}
	return 0;
}

int acmd_poll_parse(const char *text, size_t len, json_t **commands, char *err, size_t errsz)
{
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	*commands = NULL;
	if (!root) {
		log_seterr(err, errsz, "poll answer: bad JSON: %s", je.text);
		return -EINVAL;
	}
	json_t *a = json_object_get(root, "commands");
	if (!json_is_array(a)) {
		log_seterr(err, errsz, "poll answer: commands: expected an array");
		json_decref(root);
		return -EINVAL;
	}
	*commands = json_incref(a);
	json_decref(root);
	return 0;
}

bool acmd_bcast_allowed(uint32_t bcast, const struct match_cidr *nets, size_t n)
{
	if (bcast == WOL_LBCAST)
		return true;
	for (size_t i = 0; i < n; i++) {
		uint32_t b = wol_broadcast_addr(&nets[i]);
		if (b != WOL_BCAST_NONE && b == bcast)
			return true;
	}
	return false;
}

const char *acmd_fail_word(int code)
{
	switch (code) {
	case MC_FAIL_TIMEOUT:
		return "timeout";
	case MC_FAIL_TOO_SLOW:
		return "too_slow";
	case MC_FAIL_IO:
		return "io";
	case MC_FAIL_NOSPACE:
		return "nospace";
	case MC_FAIL_IMAGE_HASH:
		return "hash";
	case MC_FAIL_SENDER_GONE:
		return "sender_gone";
	case MC_FAIL_INTERRUPTED:
		return "interrupted";
	case MC_FAIL_MANIFEST:
		return "manifest";
	case MC_FAIL_SESSION_ENDED:
		return "session_ended";
	case MC_FAIL_FULL:
		return "full";
	default:
		return "internal";
	}
}

bool acmd_fail_retryable(int code)
{
	/*
	 * A network or sender problem may pass, and what was received stays
	 * good; a bad hash, a bad manifest, a full disk or a bug will not get
	 * better by trying the same again.
	 */
	switch (code) {
	case MC_FAIL_TIMEOUT:
	case MC_FAIL_TOO_SLOW:
	case MC_FAIL_IO:
	case MC_FAIL_SENDER_GONE:
	case MC_FAIL_INTERRUPTED:
	case MC_FAIL_SESSION_ENDED:
	case MC_FAIL_FULL:
		return true;
	default:
		return false;
	}
}

bool acmd_start_retryable(int neg_errno)
{
	/* Could not start: only what may pass by itself is worth another go. */
	switch (-neg_errno) {
	case EAGAIN:
	case EBUSY:
	case EADDRINUSE:
	case ENOBUFS:
	case ENOMEM:
	case EINTR:
	case ENETDOWN:
	case ENETUNREACH:
	case EADDRNOTAVAIL:
		return true;
	default:
		return false;
	}
}

bool acmd_rollback_applies(const struct acmd_rollback *rb, uint64_t active)
{
	return rb->from_version == 0 || rb->from_version == active;
}

void acmd_poller_init(struct acmd_poller *p)
{
	p->all = true;
}

int acmd_poller_path(const struct acmd_poller *p, unsigned wait_s, char *buf, size_t n)
{
	int len = snprintf(buf, n, "/api/v1/agent/poll?wait=%u%s", wait_s, p->all ? "&all=1" : "");
	return len < 0 || (size_t)len >= n ? -ENOSPC : 0;
}

uint32_t acmd_poller_done(struct acmd_poller *p, bool ok, size_t nnew, uint64_t elapsed_ms)
{
	/* After a failure the server may have lost or re-queued anything: ask for all. */
	p->all = !ok;
	if (!ok)
		return 0;
	return nnew == 0 && elapsed_ms < 1000 ? 1000 : 0;
}

int acmd_listed_action(bool known, bool running, bool finished)
{
	if (!known)
		return ACMD_LISTED_RUN;
	if (running)
		return ACMD_LISTED_IGNORE;
	return finished ? ACMD_LISTED_REPOST : ACMD_LISTED_RUN;
}

/*
 * The image store's small records (see imgstore.h): a version's meta, a
 * reception's rx record and a switch intent. Pure parsers and formatters,
 * no I/O, so that the fuzz harness can feed them anything.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "imgstore.h"
#include "log.h"
#include "parse.h"

/* One "key=value" line, as spans of the text. */
struct kv {
	const char *key, *val;
	size_t klen, vlen;
};

/*
 * Takes the next non-empty line from text at *off. Returns 1 with *kv, 0 at
 * the end, or -EINVAL with *why for a line without '=' or with a control
 * byte (a NUL included).
 */
static int kv_next(const char *text, size_t len, size_t *off, struct kv *kv, const char **why)
{
	while (*off < len) {
		size_t start = *off, end = start;
		const char *eq = NULL;

		while (end < len && text[end] != '\n') {
			unsigned char c = (unsigned char)text[end];

			if (c < 0x20 || c == 0x7f) {
				*why = "a control byte in a line";
				return -EINVAL;
			}
			if (c == '=' && !eq)
				eq = text + end;
			end++;
		}
		*off = end < len ? end + 1 : end;
		if (end == start)
			continue;
		if (!eq || eq == text + start) {
			*why = "a line that is not key=value";
			return -EINVAL;
		}
		kv->key = text + start;
		kv->klen = (size_t)(eq - kv->key);
		kv->val = eq + 1;
		kv->vlen = (size_t)(text + end - kv->val);
		return 1;
	}
	return 0;
}

static bool kv_is(const struct kv *kv, const char *key)
{
	return kv->klen == strlen(key) && memcmp(kv->key, key, kv->klen) == 0;
}

/* Parses a value as a decimal number in [min, max]. */
static int kv_uint(const struct kv *kv, uint64_t min, uint64_t max, uint64_t *out, const char **why)
{
	char buf[24];

	if (kv->vlen == 0 || kv->vlen >= sizeof(buf)) {
		*why = kv->vlen ? "too long" : "empty";
		return -EINVAL;
	}
	memcpy(buf, kv->val, kv->vlen);
	buf[kv->vlen] = '\0';
	return parse_uint(buf, min, max, out, why) < 0 ? -EINVAL : 0;
}

/* A SHA-256 in records is exactly 64 lower-case hex digits. */
static int kv_sha(const struct kv *kv, char out[IMGSTORE_SHA_HEX], const char **why)
{
	if (kv->vlen != IMGSTORE_SHA_HEX - 1) {
		*why = "not 64 hex digits";
		return -EINVAL;
	}
	for (size_t i = 0; i < kv->vlen; i++) {
		char c = kv->val[i];

		if (!ascii_is_digit(c) && !(c >= 'a' && c <= 'f')) {
			*why = "not lower-case hex";
			return -EINVAL;
		}
	}
	memcpy(out, kv->val, kv->vlen);
	out[kv->vlen] = '\0';
	return 0;
}

enum { M_IMAGE = 1, M_VERSION = 2, M_SHA = 4, M_SIZE = 8, M_AT = 16 };

int imgstore_meta_parse(const char *text, size_t len, struct imgstore_meta *m, char *err,
                        size_t errsz)
{
	const char *why = "";
	struct kv kv;
	size_t off = 0;
	unsigned seen = 0, bit;
	uint64_t v;
	int rc;

	memset(m, 0, sizeof(*m));
	m->received_at = -1;
	if (len > IMGSTORE_META_MAX) {
		log_seterr(err, errsz, "record longer than %d bytes", IMGSTORE_META_MAX);
		return -EINVAL;
	}
	while ((rc = kv_next(text, len, &off, &kv, &why)) == 1) {
		if (kv_is(&kv, "image"))
			bit = M_IMAGE;
		else if (kv_is(&kv, "version"))
			bit = M_VERSION;
		else if (kv_is(&kv, "sha256"))
			bit = M_SHA;
		else if (kv_is(&kv, "size"))
			bit = M_SIZE;
		else if (kv_is(&kv, "received_at"))
			bit = M_AT;
		else
			continue; /* a later version's key */
		if (seen & bit) {
			log_seterr(err, errsz, "%.*s given twice", (int)kv.klen, kv.key);
			return -EINVAL;
		}
		seen |= bit;
		if (bit == M_SHA)
			rc = kv_sha(&kv, m->sha256, &why);
		else if (bit == M_SIZE)
			rc = kv_uint(&kv, 1, IMGSTORE_MAX_SIZE, &m->size, &why);
		else if (bit == M_AT)
			rc = kv_uint(&kv, 0, INT64_MAX, &v, &why);
		else
			rc = kv_uint(&kv, 1, IMGSTORE_MAX_ID,
			             bit == M_IMAGE ? &m->image : &m->version, &why);
		if (rc < 0) {
			log_seterr(err, errsz, "%.*s: %s", (int)kv.klen, kv.key, why);
			return -EINVAL;
		}
		if (bit == M_AT)
			m->received_at = (int64_t)v;
	}
	if (rc < 0) {
		log_seterr(err, errsz, "%s", why);
		return -EINVAL;
	}
	if ((seen & (M_IMAGE | M_VERSION | M_SHA | M_SIZE)) !=
	    (M_IMAGE | M_VERSION | M_SHA | M_SIZE)) {
		log_seterr(err, errsz, "missing %s",
		           !(seen & M_IMAGE)     ? "image"
		           : !(seen & M_VERSION) ? "version"
		           : !(seen & M_SHA)     ? "sha256"
		                                 : "size");
		return -EINVAL;
	}
	return 0;
}

int imgstore_meta_format(const struct imgstore_meta *m, char *buf, size_t n)
{
	int len;

	if (m->received_at >= 0)
		len = snprintf(buf, n,
		               "image=%" PRIu64 "\nversion=%" PRIu64 "\nsha256=%s\nsize=%" PRIu64
		               "\nreceived_at=%" PRId64 "\n",
		               m->image, m->version, m->sha256, m->size, m->received_at);
	else
		len = snprintf(
		    buf, n, "image=%" PRIu64 "\nversion=%" PRIu64 "\nsha256=%s\nsize=%" PRIu64 "\n",
		    m->image, m->version, m->sha256, m->size);
	return len < 0 || (size_t)len >= n ? -ENOSPC : len;
}

int imgstore_switch_parse(const char *text, size_t len, uint64_t *active, uint64_t *previous,
                          char *err, size_t errsz)
{
	const char *why = "";
	struct kv kv;
	size_t off = 0;
	unsigned seen = 0;
	int rc;

	*active = *previous = 0;
	if (len > IMGSTORE_META_MAX) {
		log_seterr(err, errsz, "record longer than %d bytes", IMGSTORE_META_MAX);
		return -EINVAL;
	}
	while ((rc = kv_next(text, len, &off, &kv, &why)) == 1) {
		unsigned bit = kv_is(&kv, "active") ? 1u : kv_is(&kv, "previous") ? 2u : 0u;

		if (!bit)
			continue;
		if (seen & bit) {
			log_seterr(err, errsz, "%.*s given twice", (int)kv.klen, kv.key);
			return -EINVAL;
		}
		seen |= bit;
		if (kv_uint(&kv, bit == 1 ? 1 : 0, IMGSTORE_MAX_ID, bit == 1 ? active : previous,
		            &why) < 0) {
			log_seterr(err, errsz, "%.*s: %s", (int)kv.klen, kv.key, why);
			return -EINVAL;
		}
	}
	if (rc < 0) {
		log_seterr(err, errsz, "%s", why);
		return -EINVAL;
	}
	if (seen != 3) {
		log_seterr(err, errsz, "missing %s", seen & 1 ? "previous" : "active");
		return -EINVAL;
	}
	if (*active == *previous) {
		log_seterr(err, errsz, "active and previous are the same version");
		return -EINVAL;
	}
	return 0;
}

/*
 * The credential file, DATA_DIR/credential: what enrollment gave this
 * machine (docs/mlagent.md). Small "key=value" lines like the image store's
 * records, written atomically with mode 0600 before the credential is used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ascii.h"
#include "fileio.h"
#include "log.h"
#include "parse.h"

bool cred_token_ok(const char *s, size_t len, const char *prefix)
{
	if (len != CRED_TOKEN_LEN || memcmp(s, prefix, 4) != 0)
		return false;
	for (size_t i = 4; i < len; i++)
		if (ascii_hexval(s[i]) < 0)
			return false;
	return true;
}

enum { CK_CRED = 1, CK_ID = 2, CK_NAME = 4, CK_SERVER = 8, CK_FP = 16, CK_PIN = 32 };

/* One line's value into its field; 0 or -EINVAL with a reason. */
static int cred_field(struct cred *c, unsigned bit, const char *v, size_t n, char *err,
                      size_t errsz)
{
	char tmp[CRED_URL_MAX + 1];
	const char *why = NULL;
	uint64_t id;
	switch (bit) {
	case CK_CRED:
		if (!cred_token_ok(v, n, "mla_")) {
			log_seterr(err, errsz, "credential: expected mla_ and 64 hex digits");
			return -EINVAL;
		}
		memcpy(c->credential, v, n);
		c->credential[n] = '\0';
		return 0;
	case CK_ID:
		if (n >= 21) {
			log_seterr(err, errsz, "machine_id: too long");
			return -EINVAL;
		}
		memcpy(tmp, v, n);
		tmp[n] = '\0';
		if (parse_uint(tmp, 1, INT64_MAX, &id, &why) < 0) {
			log_seterr(err, errsz, "machine_id: %s", why);
			return -EINVAL;
		}
		c->machine_id = id;
		return 0;
	case CK_NAME:
		if (n >= sizeof(c->name)) {
			log_seterr(err, errsz, "name: too long");
			return -EINVAL;
		}
		memcpy(c->name, v, n);
		c->name[n] = '\0';
		return 0;
	case CK_SERVER:
		if (n > CRED_URL_MAX) {
			log_seterr(err, errsz, "server: too long");
			return -EINVAL;
		}
		memcpy(c->server, v, n);
		c->server[n] = '\0';
		return 0;
	case CK_FP:
		if (n == 0) {
			c->fingerprint[0] = '\0';
			return 0;
		}
		if (n >= sizeof(tmp)) {
			log_seterr(err, errsz, "fingerprint: too long");
			return -EINVAL;
		}
		memcpy(tmp, v, n);
		tmp[n] = '\0';
		if (pin_fp_normalize(tmp, c->fingerprint) < 0) {
			log_seterr(err, errsz, "fingerprint: expected 64 hex digits");
			return -EINVAL;
		}
		return 0;
	case CK_PIN:
		if (n == 0) {
			c->pin[0] = '\0';
			return 0;
		}
		if (n != PIN_KEY_SIZE - 1) {
			log_seterr(err, errsz, "pin: expected sha256// and 44 base64 characters");
			return -EINVAL;
		}
		memcpy(tmp, v, n);
		tmp[n] = '\0';
		if (pin_key_check(tmp) < 0) {
			log_seterr(err, errsz, "pin: expected sha256// and 44 base64 characters");
			return -EINVAL;
		}
		memcpy(c->pin, tmp, n + 1);
		return 0;
	default:
		return -EINVAL;
	}
}

int cred_parse(const char *text, size_t len, struct cred *out, char *err, size_t errsz)
{
	static const struct {
		const char *key;
		unsigned bit;
	} keys[] = {{"credential", CK_CRED}, {"machine_id", CK_ID},  {"name", CK_NAME},
	            {"server", CK_SERVER},   {"fingerprint", CK_FP}, {"pin", CK_PIN}};
	struct cred c;
	unsigned seen = 0, line = 0;
	size_t i = 0;
	char why[256];
	memset(&c, 0, sizeof(c));
	if (len > CRED_FILE_MAX) {
		log_seterr(err, errsz, "credential file: larger than %d bytes", CRED_FILE_MAX);
		return -EINVAL;
	}
	while (i < len) {
		const char *l = text + i, *nl = memchr(l, '\n', len - i);
		size_t n = nl ? (size_t)(nl - l) : len - i;
		i += n + (nl ? 1 : 0);
		line++;
		if (n == 0)
			continue;
		for (size_t j = 0; j < n; j++) {
			if ((unsigned char)l[j] < 0x20 || l[j] == 0x7f) {
				log_seterr(err, errsz,
				           "credential file line %u: a control character", line);
				return -EINVAL;
			}
		}
		const char *eq = memchr(l, '=', n);
		if (!eq) {
			log_seterr(err, errsz, "credential file line %u: expected key=value", line);
			return -EINVAL;
		}
		size_t klen = (size_t)(eq - l);
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			if (strlen(keys[k].key) != klen || memcmp(l, keys[k].key, klen) != 0)
				continue;
			if (seen & keys[k].bit) {
				log_seterr(err, errsz, "credential file line %u: %s given twice",
				           line, keys[k].key);
				return -EINVAL;
			}
			seen |= keys[k].bit;
			if (cred_field(&c, keys[k].bit, eq + 1, n - klen - 1, why, sizeof(why)) <
			    0) {
				log_seterr(err, errsz, "credential file line %u: %s", line, why);
				return -EINVAL;
			}
		}
	}
	if (!(seen & CK_CRED) || !(seen & CK_ID)) {
		log_seterr(err, errsz, "credential file: %s missing",
		           (seen & CK_CRED) ? "machine_id" : "credential");
		return -EINVAL;
	}
	*out = c;
	return 0;
}

int cred_format(const struct cred *c, char *buf, size_t n)
{
	const char *s[] = {c->credential, c->name, c->server, c->fingerprint, c->pin};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		for (const char *p = s[i]; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return -EINVAL;
	int len = snprintf(buf, n,
	                   "credential=%s\nmachine_id=%llu\nname=%s\nserver=%s\nfingerprint=%s\n"
	                   "pin=%s\n",
	                   c->credential, (unsigned long long)c->machine_id, c->name, c->server,
	                   c->fingerprint, c->pin);
	if (len < 0 || (size_t)len >= n)
		return -ENOSPC;
	return len;
}

int cred_load(const char *path, struct cred *c, char *err, size_t errsz)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char why[256];
	int rc = fio_read_file(path, CRED_FILE_MAX, &buf, &len);
	if (rc == -ENOENT)
		return rc;
	if (rc < 0) {
		log_seterr(err, errsz, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = cred_parse((const char *)buf, len, c, why, sizeof(why));
	if (rc < 0)
		log_seterr(err, errsz, "%s: %s", path, why);
	free(buf);
	return rc;
}

int cred_save(const char *path, const struct cred *c, char *err, size_t errsz)
{
	char buf[CRED_FILE_MAX];
	int len = cred_format(c, buf, sizeof(buf));
	if (len < 0) {
		log_seterr(err, errsz, "cannot format the credential file");
		return len;
	}
	int rc = fio_write_file_atomic(path, buf, (size_t)len, 0600);
	if (rc < 0)
		log_seterr(err, errsz, "%s: %s", path, strerror(-rc));
	return rc;
}

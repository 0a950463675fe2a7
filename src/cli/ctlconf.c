/*
 * The config file of mlctl (mlctl.h, "ctlconf"): server URL, token and how
 * to check the server's certificate. Parsing and formatting do no I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fileio.h"
#include "mlctl.h"
#include "parse.h"

/* A config file larger than this is not ours. */
#define CTLCONF_MAX (64 * 1024)
/* The longest value: "cacert = " and it must fit a line of conf.h (197 bytes). */
#define CTLCONF_VALUE_MAX 180

static const struct conf_key ctlconf_keys[] = {
    {"", "server", CONF_STR, offsetof(struct ctlconf, server), 0, 0, "server URL"},
    {"", "user", CONF_STR, offsetof(struct ctlconf, user), 0, 0, "user name"},
    {"", "token", CONF_STR, offsetof(struct ctlconf, token), 0, 0, "API or session token"},
    {"", "fingerprint", CONF_STR, offsetof(struct ctlconf, fingerprint), 0, 0,
     "SHA-256 of the server certificate"},
    {"", "pubkey", CONF_STR, offsetof(struct ctlconf, pubkey), 0, 0,
     "pinned public key, sha256//BASE64"},
    {"", "cacert", CONF_STR, offsetof(struct ctlconf, cacert), 0, 0, "CA certificate file"},
    {"", "insecure", CONF_BOOL, offsetof(struct ctlconf, insecure), 0, 0, "check no certificate"},
};
#define CTLCONF_NKEYS (sizeof(ctlconf_keys) / sizeof(ctlconf_keys[0]))

void ctlconf_clear(struct ctlconf *c)
{
	conf_free_strings(ctlconf_keys, CTLCONF_NKEYS, c);
	memset(c, 0, sizeof(*c));
}

int ctlconf_set(char **dst, const char *src)
{
	char *n = NULL;
	if (src && !(n = strdup(src)))
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

static bool ctlconf_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

int ctlconf_server_url(const char *in, char *out, size_t outsz, const char **why)
{
	const char *scheme = "https", *p = in, *hs, *he;
	uint64_t port = 8443;
	char host[256];
	if (strncasecmp(p, "https://", 8) == 0) {
		p += 8;
		port = 443;
	} else if (strncasecmp(p, "http://", 7) == 0) {
		scheme = "http";
		p += 7;
		port = 80;
	} else if (strstr(p, "://")) {
		*why = "only https:// and http:// are supported";
		return -EINVAL;
	}
	hs = p;
	if (*p == '[') {
		/* An IPv6 literal. */
		while (*p && *p != ']') {
			char c = *p;
			if (p != hs && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			                 (c >= 'A' && c <= 'F') || c == ':' || c == '.')) {
				*why = "bad IPv6 address";
				return -EINVAL;
			}
			p++;
		}
		if (*p != ']' || p == hs + 1) {
			*why = "bad IPv6 address";
			return -EINVAL;
		}
		p++;
	} else {
		while (ctlconf_host_char(*p))
			p++;
	}
	he = p;
	if (he == hs) {
		*why = "no host name";
		return -EINVAL;
	}
	if ((size_t)(he - hs) >= sizeof(host)) {
		*why = "the host name is too long";
		return -EINVAL;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (*p == ':') {
		char num[8];
		const char *ps = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == ps || (size_t)(p - ps) >= sizeof(num)) {
			*why = "bad port";
			return -EINVAL;
		}
		memcpy(num, ps, (size_t)(p - ps));
		num[p - ps] = '\0';
		if (parse_uint(num, 1, 65535, &port, NULL) < 0) {
			*why = "bad port";
			return -EINVAL;
		}
	}
	if (*p && strcmp(p, "/") != 0 && strcmp(p, "/api/v1") != 0 && strcmp(p, "/api/v1/") != 0) {
		*why = "a server URL has no path (but /api/v1)";
		return -EINVAL;
	}
	if ((size_t)snprintf(out, outsz, "%s://%s:%u", scheme, host, (unsigned)port) >= outsz) {
		*why = "too long";
		return -EINVAL;
	}
	return 0;
}

/* A token or a user name: printable ASCII, no blanks (what a header can carry). */
bool ctlconf_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			return false;
	return true;
}

/*
 * Can v be written as "key = v" and read back the same? A ';' at the start
 * or after a blank would start a comment (the INI dialect of conf.h), and
 * a line may not be longer than conf.h allows.
 */
static bool ctlconf_writable(const char *v)
{
	if (!v)
		return true;
	if (v[0] == ';' || strlen(v) > CTLCONF_VALUE_MAX)
		return false;
	for (const char *p = v; *p; p++)
		if (*p == ';' && (p[-1] == ' ' || p[-1] == '\t'))
			return false;
	return true;
}

int ctlconf_parse(const char *name, const char *text, struct ctlconf *c, char *err, size_t errsz)
{
	const char *why;
	char buf[512];
	int rc = conf_load_string(name, text, ctlconf_keys, CTLCONF_NKEYS, c, err, errsz);
	if (rc < 0)
		return rc;
	const char *const vals[][2] = {
	    {"user", c->user}, {"token", c->token}, {"cacert", c->cacert}};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		if (!ctlconf_writable(vals[i][1])) {
			snprintf(err, errsz,
			         "%s: %s: too long, or a ';' that would start a comment", name,
			         vals[i][0]);
			return -EINVAL;
		}
	}
	if (c->server) {
		if (ctlconf_server_url(c->server, buf, sizeof(buf), &why) < 0) {
			snprintf(err, errsz, "%s: server: %s", name, why);
			return -EINVAL;
		}
		if (ctlconf_set(&c->server, buf) < 0)
			return -ENOMEM;
	}
	if (c->fingerprint) {
		char fp[PIN_FP_SIZE];
		if (pin_fp_normalize(c->fingerprint, fp) < 0) {
			snprintf(err, errsz, "%s: fingerprint: expected 64 hex digits", name);
			return -EINVAL;
		}
		if (ctlconf_set(&c->fingerprint, fp) < 0)
			return -ENOMEM;
	}
	if (c->pubkey && pin_key_check(c->pubkey) < 0) {
		snprintf(err, errsz, "%s: pubkey: expected sha256// and 44 base64 characters",
		         name);
		return -EINVAL;
	}
	if (c->token && !ctlconf_word(c->token)) {
		snprintf(err, errsz, "%s: token: not a token", name);
		return -EINVAL;
	}
	if (c->user && !ctlconf_word(c->user)) {
		snprintf(err, errsz, "%s: user: not a user name", name);
		return -EINVAL;
	}
	return 0;
}

char *ctlconf_format(const struct ctlconf *c)
{
	struct sb s = {0};
	sb_add(&s, "# mlctl settings, written by mlctl login (docs/mlctl.md). This file holds\n"
	           "# a token: keep it private (mode 0600).\n");
	if (c->server)
		sb_addf(&s, "server = %s\n", c->server);
	if (c->user)
		sb_addf(&s, "user = %s\n", c->user);
	if (c->token)
		sb_addf(&s, "token = %s\n", c->token);
	if (c->fingerprint)
		sb_addf(&s, "fingerprint = %s\n", c->fingerprint);
	if (c->pubkey)
		sb_addf(&s, "pubkey = %s\n", c->pubkey);
	if (c->cacert)
		sb_addf(&s, "cacert = %s\n", c->cacert);
	if (c->insecure)
		sb_add(&s, "insecure = yes\n");
	return sb_take(&s);
}

int ctlconf_load(const char *path, struct ctlconf *c, char *err, size_t errsz)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fio_read_file(path, CTLCONF_MAX, &buf, &len);
	if (rc == -ENOENT)
		return rc;
	if (rc < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (memchr(buf, '\0', len)) {
		snprintf(err, errsz, "%s: contains a NUL byte", path);
		free(buf);
		return -EINVAL;
	}
	rc = ctlconf_parse(path, (const char *)buf, c, err, errsz);
	free(buf);
	return rc;
}

/* Creates every missing directory above path with mode 0700. */
static int ctlconf_mkdirs(const char *path)
{
	char dir[4096];
	size_t len = strlen(path);
	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, len + 1);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int ctlconf_save(const char *path, const struct ctlconf *c, char *err, size_t errsz)
{
	char tmp[4200];
	int ret = -ENOMEM, fd = -1;
	char *text = ctlconf_format(c);
	if (!text) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	/* What we write must read back: a value too long for a line is refused now. */
	struct ctlconf check = {0};
	char perr[256];
	ret = ctlconf_parse(path, text, &check, perr, sizeof(perr));
	ctlconf_clear(&check);
	if (ret < 0) {
		snprintf(err, errsz, "cannot write %s: %s", path, perr);
		goto out;
	}
	ret = ctlconf_mkdirs(path);
	if (ret < 0) {
		snprintf(err, errsz, "cannot create the directory of %s: %s", path, strerror(-ret));
		goto out;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
		ret = -ENAMETOOLONG;
		snprintf(err, errsz, "%s: %s", path, strerror(-ret));
		goto out;
	}
	/*
	 * A fresh temporary file, never an old one with a wider mode: the token
	 * must never be readable by others, not even for a moment.
	 */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0) {
		ret = -errno;
		snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(-ret));
		goto out;
	}
	ret = fio_write_all(fd, text, strlen(text));
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	fd = -1;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		unlink(tmp);
		snprintf(err, errsz, "cannot write %s: %s", path, strerror(-ret));
	}
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(text);
	return ret;
}

int ctlconf_default_path(char *out, size_t outsz)
{
	const char *e = getenv("MLCTL_CONFIG"), *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;
	if (e && *e)
		n = snprintf(out, outsz, "%s", e);
	else if (xdg && xdg[0] == '/')
		n = snprintf(out, outsz, "%s/microlinux/mlctl.conf", xdg);
	else if (home && *home)
		n = snprintf(out, outsz, "%s/.config/microlinux/mlctl.conf", home);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= outsz)
		return -ENAMETOOLONG;
	return 0;
}

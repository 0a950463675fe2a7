/*
 * INI configuration through inih, driven by a caller's key table.
 *
 * inih is fed through ini_parse_stream() with our own line reader, for three
 * reasons: the parse stays free of I/O (conf_load() reads the file, then
 * parses the string), we always know the line being parsed (Debian's inih
 * is built without INI_HANDLER_LINENO), and we see every raw line. The last
 * one matters because inih never tells its handler about a section with no
 * keys, nor about a syntax error's cause, nor about a line longer than its
 * buffer (it would silently split it in two). So the reader classifies each
 * line the way inih is about to (see classify()) and records the first error
 * with its line number; after the first error the reader reports end of
 * input, which stops inih.
 *
 * Stricter than inih on purpose: unknown sections and keys, duplicate keys
 * and continuation lines (indented lines, which inih would glue to the
 * previous key as a second value) are errors, so a typo never silently
 * falls back to a default.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "ascii.h"
#include "conf.h"
#include "log.h"
#include "parse.h"

/* A config file is small; refuse to read a huge or endless one into memory. */
#define CONF_MAX_FILE (1024 * 1024)
/* Names in messages are escaped and cut to this (with the NUL). */
#define CONF_NAME_MAX 64

struct loader {
	const char *name; /* for messages */
	const char *text; /* NUL-terminated */
	size_t pos;       /* next unread byte of text */
	const struct conf_key *keys;
	size_t nkeys;
	void *dst;
	bool *seen; /* one per key, for duplicates */
	int line;   /* lines handed to inih so far: the line being parsed */
	bool prev_key;
	/* The first error: its line (0 = none), code and message. */
	int err_line;
	int err_code;
	char *err;
	size_t errsz;
};

/*
 * Records the first error: "NAME:LINE: [section] key: reason", with the
 * section part left out for keys before any section and the key part left
 * out when key is NULL. section and key come from the file, so they are
 * escaped.
 */
static void fail(struct loader *l, int code, const char *section, size_t seclen, const char *key,
                 size_t keylen, const char *reason)
{
	char sec[CONF_NAME_MAX], k[CONF_NAME_MAX];

	if (l->err_line)
		return;
	l->err_line = l->line;
	l->err_code = code;
	if (l->err == NULL || l->errsz == 0)
		return;
	log_escape(section ? section : "", section ? seclen : 0, sec, sizeof(sec));
	log_escape(key ? key : "", key ? keylen : 0, k, sizeof(k));
	if (section && key && seclen > 0)
		snprintf(l->err, l->errsz, "%s:%d: [%s] %s: %s", l->name, l->line, sec, k, reason);
	else if (key)
		snprintf(l->err, l->errsz, "%s:%d: %s: %s", l->name, l->line, k, reason);
	else if (section)
		snprintf(l->err, l->errsz, "%s:%d: [%s]: %s", l->name, l->line, sec, reason);
	else
		snprintf(l->err, l->errsz, "%s:%d: %s", l->name, l->line, reason);
}

static bool section_known(const struct loader *l, const char *s, size_t n)
{
	for (size_t i = 0; i < l->nkeys; i++) {
		const char *ks = l->keys[i].section;

		if (strlen(ks) == n && memcmp(ks, s, n) == 0)
			return true;
	}
	return false;
}

/*
 * inih's find_chars_or_comment(): the index of the first byte of s[i, end)
 * that is in chars or starts an inline comment (';' after white space), or
 * end.
 */
static size_t find_chars_or_comment(const char *s, size_t i, size_t end, const char *chars)
{
	bool was_space = false;

	while (i < end && strchr(chars, s[i]) == NULL && !(was_space && s[i] == ';')) {
		was_space = ascii_is_space(s[i]);
		i++;
	}
	return i;
}

/*
 * Mirrors the decision inih's ini_parse_stream() is about to take on the
 * raw line s[0, n) (defaults of inih 55: BOM allowed, ';' and '#' start
 * comments, ';' after a space starts an inline comment, multi-line values
 * on), and records the errors inih would not explain or would not see.
 */
static void classify(struct loader *l, const char *s, size_t n)
{
	size_t start = 0, end = n, close;

	if (l->line == 1 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		start = 3;
	while (end > start && ascii_is_space(s[end - 1]))
		end--;
	while (start < end && ascii_is_space(s[start]))
		start++;
	if (start == end || s[start] == ';' || s[start] == '#')
		return;
	if (l->prev_key && start > 0) {
		fail(l, -EINVAL, NULL, 0, NULL, 0,
		     "indented line (continuation lines are not supported)");
		return;
	}
	if (s[start] == '[') {
		close = find_chars_or_comment(s, start + 1, end, "]");
		if (close == end || s[close] != ']') {
			fail(l, -EINVAL, NULL, 0, NULL, 0, "expected ']' after section name");
			return;
		}
		l->prev_key = false;
		/* "[]" would silently mean "back to the keys before any section". */
		if (close == start + 1 || !section_known(l, s + start + 1, close - start - 1))
			fail(l, -EINVAL, s + start + 1, close - start - 1, NULL, 0,
			     "unknown section");
		return;
	}
	close = find_chars_or_comment(s, start, end, "=:");
	if (close == end || s[close] == ';') {
		fail(l, -EINVAL, NULL, 0, NULL, 0, "expected 'key = value'");
		return;
	}
	l->prev_key = true;
}

/*
 * inih's line source: copies the next line of the text into buf (size num)
 * and returns buf, or NULL at the end of the text or after the first error.
 */
static char *reader(char *buf, int num, void *stream)
{
	struct loader *l = stream;
	const char *s = l->text + l->pos, *nl;
	size_t n;

	if (l->err_line || *s == '\0' || num < 4)
		return NULL;
	nl = strchr(s, '\n');
	n = nl ? (size_t)(nl - s) : strlen(s);
	l->pos += n + (nl ? 1 : 0);
	l->line++;
	/* inih needs room for "\r\n\0" beyond the longest line. */
	if (n > (size_t)num - 3) {
		char reason[64];

		snprintf(reason, sizeof(reason), "line too long (at most %d bytes)", num - 3);
		fail(l, -EINVAL, NULL, 0, NULL, 0, reason);
		buf[0] = '\0';
		return buf;
	}
	classify(l, s, n);
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* Parses value as key k's type and stores it in dst. Returns 0 or a negative code and *why. */
static int store(const struct conf_key *k, const char *value, void *dst, const char **why)
{
	char *field = (char *)dst + k->offset;
	uint64_t u = 0;
	int b = 0, rc;

	switch (k->type) {
	case CONF_STR: {
		char *copy = strdup(value), *old;

		if (copy == NULL) {
			*why = "out of memory";
			return -ENOMEM;
		}
		memcpy(&old, field, sizeof(old));
		free(old);
		memcpy(field, &copy, sizeof(copy));
		return 0;
	}
	case CONF_BOOL:
		if (parse_bool(value, &b) < 0) {
			*why = "not a boolean (true/false, yes/no, on/off, 1/0)";
			return -EINVAL;
		}
		memcpy(field, &b, sizeof(b));
		return 0;
	case CONF_UINT:
		rc = parse_uint(value, k->min, k->max, &u, why);
		break;
	case CONF_SIZE:
		rc = parse_size(value, k->min, k->max, &u, why);
		break;
	case CONF_RATE:
		rc = parse_rate(value, k->min, k->max, &u, why);
		break;
	case CONF_DURATION_MS:
		rc = parse_duration_ms(value, k->min, k->max, &u, why);
		break;
	default:
		*why = "internal error: unknown key type";
		return -EINVAL;
	}
	if (rc == 0)
		memcpy(field, &u, sizeof(u));
	return rc;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *l = user;
	const char *why = NULL;
	size_t i;
	int rc;

	/* Always "success" for inih: errors are ours to record, with their reason. */
	if (l->err_line)
		return 1;
	for (i = 0; i < l->nkeys; i++)
		if (!strcmp(l->keys[i].section, section) && !strcmp(l->keys[i].name, name))
			break;
	if (i == l->nkeys) {
		/* A key under an unknown header was reported at the header already. */
		fail(l, -EINVAL, section, strlen(section), name, strlen(name), "unknown key");
		return 1;
	}
	if (l->seen[i]) {
		fail(l, -EINVAL, section, strlen(section), name, strlen(name), "duplicate key");
		return 1;
	}
	l->seen[i] = true;
	rc = store(&l->keys[i], value, l->dst, &why);
	if (rc < 0)
		fail(l, rc, section, strlen(section), name, strlen(name), why ? why : "bad value");
	return 1;
}

int conf_load_string(const char *name, const char *text, const struct conf_key *keys, size_t nkeys,
                     void *dst, char *err, size_t errsz)
{
	struct loader l = {
	    .name = name ? name : "(config)",
	    .text = text ? text : "",
	    .keys = keys,
	    .nkeys = nkeys,
	    .dst = dst,
	    .err = err,
	    .errsz = errsz,
	};
	int ret = -1, rc;

	if (err && errsz)
		err[0] = '\0';
	l.seen = calloc(nkeys ? nkeys : 1, sizeof(*l.seen));
	if (l.seen == NULL) {
		fail(&l, -ENOMEM, NULL, 0, NULL, 0, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	rc = ini_parse_stream(reader, &l, handler, &l);
	if (rc < 0 && !l.err_line) {
		fail(&l, -ENOMEM, NULL, 0, NULL, 0, "out of memory");
	} else if (rc > 0 && (!l.err_line || rc < l.err_line)) {
		/* inih found an error classify() did not foresee; report inih's line. */
		l.err_line = 0;
		l.line = rc;
		fail(&l, -EINVAL, NULL, 0, NULL, 0, "syntax error");
	}
	if (l.err_line) {
		ret = l.err_code;
		goto out;
	}
	ret = 0;
out:
	free(l.seen);
	return ret;
}

/* Reads all of path into a new NUL-terminated buffer, refusing files over CONF_MAX_FILE. */
static int read_file(const char *path, char **out, size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	/* One spare byte tells a file of exactly the limit from a larger one. */
	buf = malloc(CONF_MAX_FILE + 2);
	if (buf == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, CONF_MAX_FILE + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONF_MAX_FILE) {
			ret = -EFBIG;
			goto out;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

int conf_load(const char *path, const struct conf_key *keys, size_t nkeys, void *dst, char *err,
              size_t errsz)
{
	char *text = NULL;
	const char *nul;
	size_t len = 0;
	int ret;

	if (err && errsz)
		err[0] = '\0';
	ret = read_file(path, &text, &len);
	if (ret == -EFBIG) {
		if (err && errsz)
			snprintf(err, errsz, "%s: larger than %d bytes", path, CONF_MAX_FILE);
		goto out;
	}
	if (ret < 0) {
		if (err && errsz)
			snprintf(err, errsz, "%s: %s", path, strerror(-ret));
		goto out;
	}
	/* inih works on C strings: a NUL would silently end the file early. */
	nul = memchr(text, '\0', len);
	if (nul) {
		int line = 1;

		for (const char *p = text; p < nul; p++)
			line += *p == '\n';
		if (err && errsz)
			snprintf(err, errsz, "%s:%d: NUL byte in file", path, line);
		ret = -EINVAL;
		goto out;
	}
	ret = conf_load_string(path, text, keys, nkeys, dst, err, errsz);
out:
	free(text);
	return ret;
}

void conf_free_strings(const struct conf_key *keys, size_t nkeys, void *dst)
{
	if (dst == NULL)
		return;
	for (size_t i = 0; i < nkeys; i++) {
		char *field, *s;

		if (keys[i].type != CONF_STR)
			continue;
		field = (char *)dst + keys[i].offset;
		memcpy(&s, field, sizeof(s));
		free(s);
		s = NULL;
		memcpy(field, &s, sizeof(s));
	}
}

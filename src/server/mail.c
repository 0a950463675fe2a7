/*
 * E-mail: the deployment report, RFC 5322 messages, and sending them with
 * libcurl's SMTP (see mail.h and docs/mail.md).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "fileio.h"
#include "log.h"
#include "mail.h"
#include "server.h"

/* ---- A growing buffer with a hard cap ---- */

struct mb {
	char *p;
	size_t len, cap;
	size_t max; /* the content may not grow beyond this */
	int err;    /* 0, -ENOMEM or -EFBIG; sticky */
};

static void mb_add(struct mb *b, const void *s, size_t n)
{
	if (b->err)
		return;
	if (n > b->max - b->len) {
		b->err = -EFBIG;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void mb_str(struct mb *b, const char *s)
{
	mb_add(b, s, strlen(s));
}

static void mb_pad(struct mb *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mb_add(b, " ", 1);
}

__attribute__((format(printf, 2, 3))) static void mb_fmt(struct mb *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		if (!b->err)
			b->err = -EFBIG;
		return;
	}
	mb_add(b, tmp, (size_t)n);
}

/* ---- Text helpers ---- */

/* Writes a message to err when the caller gave a buffer. Returns code. */
__attribute__((format(printf, 4, 5))) static int mail_fail(int code, char *err, size_t errsz,
                                                           const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return code;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return code;
}

/*
 * The length of the valid UTF-8 sequence at s (n bytes available): 1..4,
 * or 0 when the bytes there are not valid UTF-8 (overlong forms, surrogates
 * and code points above U+10FFFF included).
 */
static size_t mail_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* True when s[0..n) is valid UTF-8. */
static bool mail_utf8_ok(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t l = mail_utf8_len(u + i, n - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

static bool mail_is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/*
 * Appends untrusted text cleaned for a report: valid UTF-8 characters are
 * kept (with ascii, only printable ASCII), every other byte and every
 * control character becomes '?', and text longer than max bytes is cut at a
 * character boundary and ends in "...". With ascii, the output has exactly
 * as many bytes as the input had (up to max), so columns can be sized from
 * the input's length.
 */
static void mb_clean(struct mb *b, const char *s, size_t max, bool ascii)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;
	bool cut = n > max;
	size_t lim = cut ? (max >= 3 ? max - 3 : 0) : n;

	while (i < lim) {
		size_t l = mail_utf8_len(u + i, n - i);
		if (l == 0 || (ascii && l > 1) || (l == 1 && mail_is_ctl(u[i]))) {
			mb_add(b, "?", 1);
			i++;
			continue;
		}
		if (i + l > lim)
			break;
		mb_add(b, u + i, l);
		i += l;
	}
	if (cut) {
		for (; i < lim; i++) /* a cut multi-byte character keeps the width */
			mb_add(b, "?", 1);
		mb_add(b, "...", 3);
	}
}

static const char mail_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void mb_base64(struct mb *b, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		char q[4];
		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		q[0] = mail_b64[v >> 18 & 63];
		q[1] = mail_b64[v >> 12 & 63];
		q[2] = i + 1 < n ? mail_b64[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? mail_b64[v & 63] : '=';
		mb_add(b, q, 4);
	}
}

/*
 * Appends UTF-8 text as RFC 2047 encoded words, "=?UTF-8?B?...?=", each of
 * at most 39 bytes of text (so at most 64 characters: with "Subject: " the
 * first line stays within 78) and never splitting a character, separated by
 * a folding CRLF SP (which decoders drop between encoded words).
 */
static void mb_encoded_words(struct mb *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t off = 0;

	while (off < n) {
		size_t take = 0;
		while (off + take < n) {
			size_t l = mail_utf8_len(u + off + take, n - off - take);
			if (l == 0)
				l = 1;
			if (take + l > 39)
				break;
			take += l;
		}
		if (off > 0)
			mb_str(b, "\r\n ");
		mb_str(b, "=?UTF-8?B?");
		mb_base64(b, u + off, take);
		mb_str(b, "?=");
		off += take;
	}
}

/* True when s needs encoded words in a header: a byte outside ASCII, or "=?". */
static bool mail_needs_encoding(const char *s)
{
	for (const unsigned char *u = (const unsigned char *)s; *u; u++)
		if (*u >= 0x80 || (u[0] == '=' && u[1] == '?'))
			return true;
	return false;
}

/* Appends a display name as a phrase: atoms as they are, quoted, or encoded words. */
static void mb_phrase(struct mb *b, const char *name)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~ ";
	bool atoms = true;

	if (mail_needs_encoding(name)) {
		mb_encoded_words(b, name, strlen(name));
		return;
	}
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(atext, *p)))
			atoms = false;
	if (atoms) {
		mb_str(b, name);
		return;
	}
	mb_add(b, "\"", 1);
	for (const char *p = name; *p; p++) {
		if (*p == '"' || *p == '\\')
			mb_add(b, "\\", 1);
		mb_add(b, p, 1);
	}
	mb_add(b, "\"", 1);
}

/* ---- Addresses and settings ---- */

int mail_tls_parse(const char *s, enum mail_tls *out)
{
	if (strcmp(s, "try") == 0)
		*out = MAIL_TLS_TRY;
	else if (strcmp(s, "require") == 0)
		*out = MAIL_TLS_REQUIRE;
	else if (strcmp(s, "off") == 0)
		*out = MAIL_TLS_OFF;
	else
		return -EINVAL;
	return 0;
}

static int mail_addr_check_n(const char *s, size_t n, char *err, size_t errsz)
{
	char shown[4 * 64 + 1];
	const char *at = NULL;

	log_escape(s, n > 64 ? 64 : n, shown, sizeof(shown));
	if (n == 0)
		return mail_fail(-EINVAL, err, errsz, "empty e-mail address");
	if (n > MAIL_ADDR_MAX)
		return mail_fail(-EINVAL, err, errsz,
		                 "e-mail address \"%s...\" is longer than %d bytes", shown,
		                 MAIL_ADDR_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || strchr("<>()[],;:\"\\", c))
			return mail_fail(-EINVAL, err, errsz,
			                 "e-mail address \"%s\" has a character not allowed there",
			                 shown);
		if (c == '@') {
			if (at)
				return mail_fail(-EINVAL, err, errsz,
				                 "e-mail address \"%s\" has more than one '@'",
				                 shown);
			at = s + i;
		}
	}
	if (!at || at == s || at == s + n - 1)
		return mail_fail(-EINVAL, err, errsz,
		                 "\"%s\" is not an e-mail address (local@domain)", shown);
	return 0;
}

int mail_addr_check(const char *s, char *err, size_t errsz)
{
	return mail_addr_check_n(s, strlen(s), err, errsz);
}

int mail_from_parse(const char *s, char name[MAIL_NAME_MAX + 1], char addr[MAIL_ADDR_MAX + 1],
                    char *err, size_t errsz)
{
	size_t n = strlen(s), nl = 0;
	const char *a = s, *lt;
	size_t an = n;

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	a = s;
	an = n;
	if (n && s[n - 1] == '>') {
		lt = memrchr(s, '<', n);
		if (!lt)
			return mail_fail(-EINVAL, err, errsz,
			                 "sender: expected ADDRESS or NAME <ADDRESS>");
		a = lt + 1;
		an = (size_t)(s + n - 1 - a);
		nl = (size_t)(lt - s);
		while (nl && (s[nl - 1] == ' ' || s[nl - 1] == '\t'))
			nl--;
		if (nl >= 2 && s[0] == '"' && s[nl - 1] == '"') {
			s++;
			nl -= 2;
		}
	}
	if (nl > MAIL_NAME_MAX)
		return mail_fail(-EINVAL, err, errsz, "sender: the name is longer than %d bytes",
		                 MAIL_NAME_MAX);
	if (!mail_utf8_ok(s, nl))
		return mail_fail(-EINVAL, err, errsz, "sender: the name is not valid UTF-8");
	for (size_t i = 0; i < nl; i++)
		if (mail_is_ctl((unsigned char)s[i]) || s[i] == '"' || s[i] == '\\' ||
		    s[i] == '<' || s[i] == '>')
			return mail_fail(-EINVAL, err, errsz,
			                 "sender: the name has a control character, quote, "
			                 "backslash or angle bracket");
	if (mail_addr_check_n(a, an, err, errsz) < 0)
		return -EINVAL;
	memcpy(name, s, nl);
	name[nl] = '\0';
	memcpy(addr, a, an);
	addr[an] = '\0';
	return 0;
}

int mail_conf_check(const struct srvconf *c, char *err, size_t errsz)
{
	enum mail_tls tls;
	char name[MAIL_NAME_MAX + 1], addr[MAIL_ADDR_MAX + 1], why[MAIL_ERR_SIZE];
	const char *u = c->mail_url, *host;

	if (mail_tls_parse(c->mail_starttls, &tls) < 0)
		return mail_fail(-EINVAL, err, errsz,
		                 "[mail] starttls: '%.40s' is not try, require or off",
		                 c->mail_starttls);
	if (*c->mail_password_file && !*c->mail_username)
		return mail_fail(-EINVAL, err, errsz,
		                 "[mail] password_file is set but username is empty");
	if (!*u)
		return 0;
	if (strncasecmp(u, "smtp://", 7) == 0)
		host = u + 7;
	else if (strncasecmp(u, "smtps://", 8) == 0)
		host = u + 8;
	else
		return mail_fail(-EINVAL, err, errsz,
		                 "[mail] url: '%.200s' is not smtp://HOST[:PORT] or smtps://...",
		                 u);
	if (*host == '\0' || *host == '/' || *host == ':')
		return mail_fail(-EINVAL, err, errsz, "[mail] url: '%.200s' has no host", u);
	for (const char *p = u; *p; p++)
		if (mail_is_ctl((unsigned char)*p) || *p == ' ')
			return mail_fail(-EINVAL, err, errsz,
			                 "[mail] url: white space or a control character");
	if (!*c->mail_from)
		return mail_fail(-EINVAL, err, errsz,
		                 "[mail] from must be set when url is (e.g. mlserver@example.edu)");
	if (mail_from_parse(c->mail_from, name, addr, why, sizeof(why)) < 0)
		return mail_fail(-EINVAL, err, errsz, "[mail] from: %s", why);
	return 0;
}

/* ---- Messages ---- */

static const char *const mail_days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const mail_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* RFC 5322 date-time in local time: "Thu, 26 Nov 2026 14:34:18 +0100" (English names). */
static int mail_date(time_t t, char *out, size_t size)
{
	struct tm tm;
	long off;

	if (!localtime_r(&t, &tm))
		return -EINVAL;
	off = tm.tm_gmtoff / 60;
	snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	         mail_days[tm.tm_wday % 7], tm.tm_mday, mail_months[tm.tm_mon % 12],
	         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
	         labs(off) / 60 % 100, labs(off) % 60);
	return 0;
}

int mail_message_id(const char *domain, time_t now, char out[MAIL_MSGID_SIZE])
{
	uint8_t rnd[8];
	unsigned long long r = 0;
	struct tm tm;

	if (strlen(domain) > 253 || !gmtime_r(&now, &tm))
		return -EINVAL;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	for (size_t i = 0; i < sizeof(rnd); i++)
		r = r << 8 | rnd[i];
	snprintf(out, MAIL_MSGID_SIZE, "<%04d%02d%02d%02d%02d%02d.%016llx@%s>", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, r, domain);
	return 0;
}

/* Appends one line of the body (without its end) as quoted-printable, lines <= 76 bytes. */
static void mb_qp_line(struct mb *b, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned c = s[i];
		char tok[3];
		size_t tl = 1;
		/* White space is literal unless it ends the line (where it would be lost). */
		if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && i + 1 < n)) {
			tok[0] = (char)c;
		} else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			tl = 3;
		}
		if (col + tl > 75) {
			mb_str(b, "=\r\n");
			col = 0;
		}
		mb_add(b, tok, tl);
		col += tl;
	}
	mb_str(b, "\r\n");
}

/*
 * The end of the line starting at s[i] (the index of its CR or LF, or n),
 * and in *next where the following line starts (after LF, CRLF or a lone CR).
 */
static size_t mail_line_end(const char *s, size_t n, size_t i, size_t *next)
{
	size_t e = i;

	while (e < n && s[e] != '\n' && s[e] != '\r')
		e++;
	if (e + 1 < n && s[e] == '\r' && s[e + 1] == '\n')
		*next = e + 2;
	else if (e < n)
		*next = e + 1;
	else
		*next = e;
	return e;
}

int mail_build(const struct mail_msg *m, char **out, size_t *outlen, char *err, size_t errsz)
{
	struct mb b = {.max = (size_t)MAIL_BODY_MAX * 3 + 65536};
	char name[MAIL_NAME_MAX + 1], addr[MAIL_ADDR_MAX + 1], date[80];
	const char *body = m->body;
	size_t blen = strlen(body), slen = strlen(m->subject), col, next;
	bool qp = false;
	int ret;

	if (mail_from_parse(m->from, name, addr, err, errsz) < 0)
		return -EINVAL;
	if (m->nto < 1 || m->nto > MAIL_RCPT_MAX)
		return mail_fail(-EINVAL, err, errsz, "a message needs 1 to %d recipients",
		                 MAIL_RCPT_MAX);
	for (size_t i = 0; i < m->nto; i++)
		if (mail_addr_check(m->to[i], err, errsz) < 0)
			return -EINVAL;
	if (slen > MAIL_SUBJECT_MAX)
		return mail_fail(-EFBIG, err, errsz, "the subject is longer than %d bytes",
		                 MAIL_SUBJECT_MAX);
	if (!mail_utf8_ok(m->subject, slen))
		return mail_fail(-EINVAL, err, errsz, "the subject is not valid UTF-8");
	for (size_t i = 0; i < slen; i++)
		if (mail_is_ctl((unsigned char)m->subject[i]))
			return mail_fail(-EINVAL, err, errsz,
			                 "the subject has a control character");
	if (blen > MAIL_BODY_MAX)
		return mail_fail(-EFBIG, err, errsz, "the body is longer than %u bytes",
		                 MAIL_BODY_MAX);
	if (!mail_utf8_ok(body, blen))
		return mail_fail(-EINVAL, err, errsz, "the body is not valid UTF-8");
	const char *id = m->message_id;
	size_t idlen = id ? strlen(id) : 0;
	if (idlen < 5 || idlen >= MAIL_MSGID_SIZE || id[0] != '<' || id[idlen - 1] != '>' ||
	    !memchr(id, '@', idlen))
		return mail_fail(-EINVAL, err, errsz, "bad Message-ID (expected <...@...>)");
	for (size_t i = 0; i < idlen; i++)
		if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] >= 0x7f)
			return mail_fail(-EINVAL, err, errsz,
			                 "bad Message-ID (expected <...@...>)");
	if (mail_date(m->date, date, sizeof(date)) < 0)
		return mail_fail(-EINVAL, err, errsz, "bad date");

	/* 7bit only when every line is printable ASCII (and tabs) of at most 998 bytes. */
	for (size_t i = 0; i < blen && !qp;) {
		size_t e = mail_line_end(body, blen, i, &next);
		if (e - i > 998)
			qp = true;
		for (size_t k = i; k < e && !qp; k++)
			if ((unsigned char)body[k] >= 0x7f ||
			    (mail_is_ctl((unsigned char)body[k]) && body[k] != '\t'))
				qp = true;
		i = next;
	}

	mb_str(&b, "Date: ");
	mb_str(&b, date);
	mb_str(&b, "\r\nFrom: ");
	if (*name) {
		mb_phrase(&b, name);
		mb_str(&b, " ");
	}
	mb_str(&b, "<");
	mb_str(&b, addr);
	mb_str(&b, ">\r\nTo: ");
	col = 4;
	for (size_t i = 0; i < m->nto; i++) {
		size_t l = strlen(m->to[i]);
		if (i > 0 && col + 2 + l > 78) {
			mb_str(&b, ",\r\n ");
			col = 1;
		} else if (i > 0) {
			mb_str(&b, ", ");
			col += 2;
		}
		mb_str(&b, m->to[i]);
		col += l;
	}
	mb_str(&b, "\r\nSubject: ");
	if (mail_needs_encoding(m->subject))
		mb_encoded_words(&b, m->subject, slen);
	else
		mb_str(&b, m->subject);
	mb_str(&b, "\r\nMessage-ID: ");
	mb_str(&b, id);
	mb_str(&b, "\r\nMIME-Version: 1.0\r\n"
	           "Content-Type: text/plain; charset=utf-8\r\n"
	           "Content-Transfer-Encoding: ");
	mb_str(&b, qp ? "quoted-printable" : "7bit");
	/* RFC 3834: an automatic message; vacation responders do not answer it. */
	mb_str(&b, "\r\nAuto-Submitted: auto-generated\r\n\r\n");
	for (size_t i = 0; i < blen;) {
		size_t e = mail_line_end(body, blen, i, &next);
		if (qp) {
			mb_qp_line(&b, (const unsigned char *)body + i, e - i);
		} else {
			mb_add(&b, body + i, e - i);
			mb_str(&b, "\r\n");
		}
		i = next;
	}
	if (b.err) {
		ret = b.err;
		free(b.p);
		return mail_fail(ret, err, errsz, "cannot build the message: %s", strerror(-ret));
	}
	if (!b.p) /* an empty body and no headers cannot happen, but stay safe */
		return mail_fail(-ENOMEM, err, errsz, "cannot build the message");
	*out = b.p;
	*outlen = b.len;
	return 0;
}

/* ---- Sending ---- */

struct mail_upload {
	const char *p;
	size_t len, off;
};

static size_t mail_read_cb(char *buf, size_t size, size_t nitems, void *user)
{
	struct mail_upload *u = user;
	size_t n = size * nitems;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->p + u->off, n);
	u->off += n;
	return n;
}

/*
 * curl's debug callback: keeps the last reply line of the server that is
 * an error (4xx or 5xx), escaped, for the error message.
 */
struct mail_reply {
	char last[256];
};

static int mail_debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *user)
{
	struct mail_reply *r = user;
	size_t n = 0;

	(void)h;
	if (type != CURLINFO_HEADER_IN || size < 3 || (data[0] != '4' && data[0] != '5'))
		return 0;
	while (n < size && n < 120 && data[n] != '\r' && data[n] != '\n')
		n++;
	log_escape(data, n, r->last, sizeof(r->last));
	return 0;
}

/* Copies url without "user:password@" into out, for messages. */
static void mail_url_shown(const char *url, char *out, size_t size)
{
	const char *host = strstr(url, "://"), *at, *slash;

	if (!host) {
		snprintf(out, size, "%.200s", url);
		return;
	}
	host += 3;
	slash = strchr(host, '/');
	at = memchr(host, '@', slash ? (size_t)(slash - host) : strlen(host));
	snprintf(out, size, "%.*s%.200s", (int)(host - url), url, at ? at + 1 : host);
}

/* Reads the first line of the password file into pw. Returns 0 or -errno with a reason. */
static int mail_read_password(const char *path, char *pw, size_t size, char *err, size_t errsz)
{
	int n = fio_read_line(path, pw, size);
	if (n == -ENAMETOOLONG)
		return mail_fail(-EINVAL, err, errsz, "[mail] password_file %.300s: too long",
		                 path);
	if (n < 0)
		return mail_fail(n, err, errsz, "[mail] password_file %.300s: %s", path,
		                 strerror(-n));
	return 0;
}

int mail_send(const struct srvconf *c, const struct mail_msg *m0, char *err, size_t errsz)
{
	struct mail_msg m = *m0;
	char name[MAIL_NAME_MAX + 1], addr[MAIL_ADDR_MAX + 1], msgid[MAIL_MSGID_SIZE];
	char url[300], rcpts[MAIL_ADDR_MAX + 40], pw[1025] = "", ebuf[CURL_ERROR_SIZE] = "";
	char angle[MAIL_ADDR_MAX + 3];
	struct curl_slist *rl = NULL;
	struct mail_upload up = {0};
	struct mail_reply reply = {.last = ""};
	char *text = NULL;
	size_t len = 0;
	enum mail_tls tls;
	CURL *h = NULL;
	CURLcode cc;
	int ret = -EIO;

	if (!*c->mail_url)
		return mail_fail(-ENOTCONN, err, errsz,
		                 "mail is not set up ([mail] url is empty; docs/mail.md)");
	if (mail_tls_parse(c->mail_starttls, &tls) < 0)
		return mail_fail(-EINVAL, err, errsz, "[mail] starttls: not try, require or off");
	if (!m.from)
		m.from = c->mail_from;
	if (mail_from_parse(m.from, name, addr, err, errsz) < 0)
		return -EINVAL;
	if (!m.date)
		m.date = time(NULL);
	if (!m.message_id) {
		if (mail_message_id(strchr(addr, '@') + 1, m.date, msgid) < 0)
			return mail_fail(-EIO, err, errsz, "cannot make a Message-ID");
		m.message_id = msgid;
	}
	ret = mail_build(&m, &text, &len, err, errsz);
	if (ret < 0)
		return ret;
	ret = -EIO;
	mail_url_shown(c->mail_url, url, sizeof(url));
	if (m.nto > 1)
		snprintf(rcpts, sizeof(rcpts), "%s and %zu more", m.to[0], m.nto - 1);
	else
		snprintf(rcpts, sizeof(rcpts), "%s", m.to[0]);
	if (*c->mail_password_file &&
	    (ret = mail_read_password(c->mail_password_file, pw, sizeof(pw), err, errsz)) < 0)
		goto out;
	ret = -ENOMEM;
	for (size_t i = 0; i < m.nto; i++) {
		struct curl_slist *n;
		snprintf(angle, sizeof(angle), "<%s>", m.to[i]);
		n = curl_slist_append(rl, angle);
		if (!n) {
			mail_fail(-ENOMEM, err, errsz, "out of memory");
			goto out;
		}
		rl = n;
	}
	h = curl_easy_init();
	if (!h) {
		mail_fail(-ENOMEM, err, errsz, "cannot start libcurl");
		goto out;
	}
	up.p = text;
	up.len = len;
	snprintf(angle, sizeof(angle), "<%s>", addr);
	curl_easy_setopt(h, CURLOPT_URL, c->mail_url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#endif
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, angle);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rl);
	/* One refused recipient must not keep the report from the others. */
#if LIBCURL_VERSION_NUM >= 0x080200
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#elif LIBCURL_VERSION_NUM >= 0x074500
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
	curl_easy_setopt(h, CURLOPT_READFUNCTION, mail_read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, &up);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_USE_SSL,
	                 tls == MAIL_TLS_TRY       ? (long)CURLUSESSL_TRY
	                 : tls == MAIL_TLS_REQUIRE ? (long)CURLUSESSL_ALL
	                                           : (long)CURLUSESSL_NONE);
	if (*c->mail_ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->mail_ca_file);
	if (c->mail_insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (*c->mail_username) {
		curl_easy_setopt(h, CURLOPT_USERNAME, c->mail_username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, pw);
	}
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->mail_timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->mail_timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	/* The server's own words make the clearest error: see mail_debug_cb(). */
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, mail_debug_cb);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &reply);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		/* curl's error buffer is the more precise; its code's text is the fallback. */
		const char *what = *ebuf ? ebuf : curl_easy_strerror(cc);
		mail_fail(-EIO, err, errsz, "mail via %s to %s: %.300s%s%s", url, rcpts, what,
		          *reply.last ? "; the server said: " : "", reply.last);
		ret = -EIO;
		goto out;
	}
	ret = 0;
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(rl);
	memset(pw, 0, sizeof(pw));
	free(text);
	return ret;
}

/* ---- The report ---- */

static const char *const mail_state_names[] = {"done", "already current", "missing", "failed"};

static const char *mail_state_name(enum mail_state s)
{
	return (unsigned)s < 4 ? mail_state_names[s] : "unknown";
}

/* Order of states in the table: problems first. */
static int mail_state_rank(enum mail_state s)
{
	switch (s) {
	case MAIL_FAILED:
		return 0;
	case MAIL_MISSING:
		return 1;
	case MAIL_DONE:
		return 2;
	case MAIL_CURRENT:
		return 3;
	default:
		return 4;
	}
}

static int mail_row_cmp(const void *a, const void *b)
{
	const struct mail_report_row *x = *(const struct mail_report_row *const *)a;
	const struct mail_report_row *y = *(const struct mail_report_row *const *)b;
	int d = mail_state_rank(x->state) - mail_state_rank(y->state);

	if (d)
		return d;
	return strcmp(x->machine ? x->machine : "", y->machine ? y->machine : "");
}

/* "512 B", "1.5 KiB", "42.0 GiB". */
static void mail_bytes(uint64_t v, char *out, size_t size)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double d = (double)v;
	size_t u = 0;

	if (v < 1024) {
		snprintf(out, size, "%llu B", (unsigned long long)v);
		return;
	}
	d /= 1024;
	while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024;
		u++;
	}
	snprintf(out, size, "%.1f %s", d, units[u]);
}

/* "12s", "5m01s", "1h02m03s". */
static void mail_duration(uint64_t ms, char *out, size_t size)
{
	unsigned long long s = ms / 1000;

	if (s < 60)
		snprintf(out, size, "%llus", s);
	else if (s < 3600)
		snprintf(out, size, "%llum%02llus", s / 60, s % 60);
	else
		snprintf(out, size, "%lluh%02llum%02llus", s / 3600, s / 60 % 60, s % 60);
}

/* "2026-11-26 22:00:00 +0100" in local time. */
static void mail_when(time_t t, char *out, size_t size)
{
	struct tm tm;
	long off;

	if (!localtime_r(&t, &tm)) {
		snprintf(out, size, "?");
		return;
	}
	off = tm.tm_gmtoff / 60;
	snprintf(out, size, "%04d-%02d-%02d %02d:%02d:%02d %c%02ld%02ld", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
	         labs(off) / 60 % 100, labs(off) % 60);
}

/* "4 machines: 1 done, 1 already current" (states without machines left out). */
static void mb_counts(struct mb *b, const struct mail_report *r, bool with_total)
{
	size_t count[4] = {0};
	bool first = true;

	for (size_t i = 0; i < r->nrows; i++)
		if ((unsigned)r->rows[i].state < 4)
			count[r->rows[i].state]++;
	if (with_total)
		mb_fmt(b, "%zu machine%s%s", r->nrows, r->nrows == 1 ? "" : "s",
		       r->nrows ? ": " : "");
	else if (!r->nrows)
		mb_str(b, "no machines");
	/* The order of the table. */
	static const enum mail_state order[] = {MAIL_DONE, MAIL_CURRENT, MAIL_MISSING, MAIL_FAILED};
	for (size_t k = 0; k < 4; k++) {
		if (!count[order[k]])
			continue;
		mb_fmt(b, "%s%zu %s", first ? "" : ", ", count[order[k]],
		       mail_state_name(order[k]));
		first = false;
	}
}

#define MAIL_REASON_MAX 200
#define MAIL_MACHINE_MAX 253

char *mail_report_render(const struct mail_report *r)
{
	struct mb b = {.max = (size_t)64 << 20};
	const struct mail_report_row **rows = NULL;
	char t1[64], t2[64], v[64];
	size_t wn = strlen("Machine"), ws = strlen("State"), wd = strlen("Data"),
	       wt = strlen("Time");
	uint64_t total = 0;
	bool reasons = false;

	mb_str(&b, "Deployment  ");
	mb_clean(&b, r->deployment ? r->deployment : "", 200, false);
	mb_fmt(&b, " (run %lld)\nImage       ", (long long)r->run_id);
	mb_clean(&b, r->image ? r->image : "", 200, false);
	mb_str(&b, ", version ");
	mb_clean(&b, r->version ? r->version : "", 200, false);
	if (r->started) {
		mail_when(r->started, t1, sizeof(t1));
		mb_fmt(&b, "\nStarted     %s", t1);
	} else {
		mb_str(&b, "\nStarted     -");
	}
	if (r->finished) {
		mail_when(r->finished, t1, sizeof(t1));
		mb_fmt(&b, "\nFinished    %s", t1);
		if (r->started && r->finished >= r->started) {
			mail_duration((uint64_t)(r->finished - r->started) * 1000, t2, sizeof(t2));
			mb_fmt(&b, " (%s)", t2);
		}
	} else {
		mb_str(&b, "\nFinished    -");
	}
	mb_str(&b, "\nResult      ");
	mb_counts(&b, r, true);
	if (r->error && *r->error) {
		mb_str(&b, "\nError       ");
		mb_clean(&b, r->error, MAIL_REASON_MAX, false);
	}
	if (r->sent_bytes) {
		mail_bytes(r->sent_bytes, v, sizeof(v));
		mb_fmt(&b, "\nSent        %s by multicast", v);
	}
	mb_str(&b, "\n");
	if (r->nrows == 0) {
		mb_str(&b, "\nNo machines were targeted.\n");
		goto out;
	}

	rows = calloc(r->nrows, sizeof(*rows));
	if (!rows) {
		b.err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r->nrows; i++) {
		const struct mail_report_row *w = &r->rows[i];
		size_t l = w->machine ? strlen(w->machine) : 0;
		rows[i] = w;
		wn = l > wn ? (l > MAIL_MACHINE_MAX ? MAIL_MACHINE_MAX : l) : wn;
		l = strlen(mail_state_name(w->state));
		ws = l > ws ? l : ws;
		if (w->state != MAIL_MISSING) {
			mail_bytes(w->bytes, v, sizeof(v));
			wd = strlen(v) > wd ? strlen(v) : wd;
			mail_duration(w->ms, v, sizeof(v));
			wt = strlen(v) > wt ? strlen(v) : wt;
		}
		total += w->bytes;
		if (w->reason && *w->reason)
			reasons = true;
	}
	mail_bytes(total, v, sizeof(v));
	wd = strlen(v) > wd ? strlen(v) : wd;
	if (r->started && r->finished >= r->started) {
		mail_duration((uint64_t)(r->finished - r->started) * 1000, t2, sizeof(t2));
		wt = strlen(t2) > wt ? strlen(t2) : wt;
	}
	qsort(rows, r->nrows, sizeof(*rows), mail_row_cmp);

	mb_str(&b, "\nMachine");
	mb_pad(&b, wn - strlen("Machine") + 2);
	mb_str(&b, "State");
	mb_pad(&b, ws - strlen("State") + 2 + wd - strlen("Data"));
	mb_str(&b, "Data");
	mb_pad(&b, 2 + wt - strlen("Time"));
	mb_str(&b, reasons ? "Time  Reason\n" : "Time\n");
	for (size_t i = 0; i < r->nrows; i++) {
		const struct mail_report_row *w = rows[i];
		const char *name = w->machine ? w->machine : "";
		size_t l = strlen(name) > MAIL_MACHINE_MAX ? MAIL_MACHINE_MAX : strlen(name);
		const char *st = mail_state_name(w->state);
		mb_clean(&b, name, MAIL_MACHINE_MAX, true);
		mb_pad(&b, wn - l + 2);
		mb_str(&b, st);
		mb_pad(&b, ws - strlen(st) + 2);
		if (w->state == MAIL_MISSING) {
			snprintf(t1, sizeof(t1), "-");
			snprintf(t2, sizeof(t2), "-");
		} else {
			mail_bytes(w->bytes, t1, sizeof(t1));
			mail_duration(w->ms, t2, sizeof(t2));
		}
		mb_pad(&b, wd - strlen(t1));
		mb_str(&b, t1);
		mb_pad(&b, 2 + wt - strlen(t2));
		mb_str(&b, t2);
		if (w->reason && *w->reason) {
			mb_str(&b, "  ");
			mb_clean(&b, w->reason, MAIL_REASON_MAX, false);
		}
		mb_str(&b, "\n");
	}
	/* The total row: all data received, and the run's duration. */
	mb_str(&b, "\nTotal");
	mb_pad(&b, wn - strlen("Total") + 2 + ws + 2);
	mail_bytes(total, t1, sizeof(t1));
	mb_pad(&b, wd - strlen(t1));
	mb_str(&b, t1);
	if (r->started && r->finished >= r->started) {
		mail_duration((uint64_t)(r->finished - r->started) * 1000, t2, sizeof(t2));
		mb_pad(&b, 2 + wt - strlen(t2));
		mb_str(&b, t2);
	}
	mb_str(&b, "\n");
out:
	free(rows);
	if (b.err || !b.p) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

char *mail_report_subject(const struct mail_report *r, char *out, size_t size)
{
	struct mb b = {.max = MAIL_SUBJECT_MAX};

	mb_str(&b, "[Microlinux] ");
	mb_clean(&b, r->deployment ? r->deployment : "", 200, false);
	if (r->error && *r->error) {
		mb_fmt(&b, ": run %lld failed: ", (long long)r->run_id);
		mb_clean(&b, r->error, MAIL_REASON_MAX, false);
	} else {
		mb_str(&b, ": ");
		mb_counts(&b, r, false);
	}
	if (size > 0)
		snprintf(out, size, "%s", b.p && !b.err ? b.p : "[Microlinux] deployment report");
	free(b.p);
	return out;
}

/* ---- The test message ---- */

int mail_send_test(const struct srvconf *c, const char *const *to, size_t nto, char *err,
                   size_t errsz)
{
	static const struct mail_report_row rows[] = {
	    {"pc-101", MAIL_DONE, NULL, 45097156608ull, 2292000},
	    {"pc-102", MAIL_CURRENT, NULL, 0, 1000},
	    {"pc-103", MAIL_MISSING, "no agent after 300 s", 0, 0},
	    {"pc-104", MAIL_FAILED, "disk full", 1288490189ull, 301000},
	};
	time_t now = time(NULL);
	struct mail_report r = {.deployment = "example",
	                        .run_id = 1,
	                        .image = "win11",
	                        .version = "2026-11-20",
	                        .started = now - 2473,
	                        .finished = now,
	                        .rows = rows,
	                        .nrows = sizeof(rows) / sizeof(rows[0])};
	struct mb b = {.max = 1 << 20};
	char url[300];
	char *report = mail_report_render(&r);
	int ret;

	mail_url_shown(c->mail_url, url, sizeof(url));
	mb_str(&b, "This is a test message from mlserver (mlserver --send-test-mail): the\n"
	           "[mail] settings work. Deployment reports are sent the same way.\n\n");
	mb_str(&b, "  url       ");
	mb_str(&b, url);
	mb_str(&b, "\n  from      ");
	mb_clean(&b, c->mail_from, 300, false);
	mb_str(&b, "\n  starttls  ");
	mb_clean(&b, c->mail_starttls, 20, false);
	mb_str(&b, "\n\n");
	mb_str(&b, "An example report follows; its machines are made up.\n\n");
	mb_str(&b, report ? report : "");
	free(report);
	if (b.err || !b.p) {
		free(b.p);
		return mail_fail(-ENOMEM, err, errsz, "out of memory");
	}
	struct mail_msg m = {.to = to,
	                     .nto = nto,
	                     .subject = "[Microlinux] test message from mlserver",
	                     .body = b.p,
	                     .date = now};
	ret = mail_send(c, &m, err, errsz);
	free(b.p);
	return ret;
}

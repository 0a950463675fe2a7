/*
 * Streaming import of machines from dhcpd.conf and dnsmasq files (see
 * import_hosts.h).
 *
 * Both parsers take one byte at a time, so input may be split anywhere.
 * dnsmasq is line-based: a line buffer and a line handler. dhcpd.conf is
 * free-form: a tokenizer (state enum tok_state) collects the words of one
 * statement until ';', '{' or '}', and a stack of open blocks says whether
 * a statement belongs to a host block and which subnet encloses it. Only
 * one host block can be open at a time (a host inside a host is an error),
 * so the host being read lives in the parser, not on the stack.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "import_hosts.h"
#include "log.h"

/* Names quoted in messages are cut to this many input bytes. */
#define SHOW_MAX 48

enum tok_state {
	TK_SPACE,   /* between words */
	TK_COMMENT, /* after '#', to the end of the line */
	TK_WORD,    /* inside an unquoted word */
	TK_STRING,  /* inside a quoted string */
	TK_ESCAPE,  /* after a backslash inside a quoted string */
};

enum frame_kind { FR_OTHER, FR_HOST, FR_SUBNET };

struct frame {
	enum frame_kind kind;
	unsigned long line; /* where the block's statement starts */
	bool has_net;       /* FR_SUBNET with a valid network */
	struct match_cidr net;
};

/* A name copied for later; one byte more than a valid name can have, so a cut one stays invalid. */
struct name_buf {
	char s[MATCH_NAME_SIZE + 2];
	size_t len;
};

static const char bom[3] = {'\xef', '\xbb', '\xbf'};

struct hostsimp {
	struct match_sink sink;
	enum hostsimp_format fmt;
	int dead;      /* 0, or the fatal code every later call returns */
	bool finished; /* hostsimp_finish() was called */
	unsigned bom;  /* bytes of a leading BOM matched so far */
	bool bom_done;
	unsigned long records; /* host blocks or dhcp-host lines seen, good or bad */
	unsigned long errors;  /* errors reported */
	unsigned long line;    /* the line of the byte being parsed, 1-based */
	/* HOSTSIMP_AUTO: the input kept until the format is known. */
	char *det;
	size_t dlen;
	/* dnsmasq: the current line. */
	char lbuf[HOSTSIMP_MAX_LINE];
	size_t llen;
	bool lbig; /* the line was longer than lbuf */
	bool lnul; /* the line had a NUL byte */
	/* dhcpd: the tokenizer and the words of the current statement. */
	enum tok_state tk;
	unsigned long str_line; /* where the current quoted string opened */
	bool stmt;              /* the statement has a word */
	unsigned long stmt_line;
	const char *stmt_err; /* the statement's first error (static) */
	char sbuf[HOSTSIMP_MAX_LINE];
	size_t slen;
	unsigned nwords;
	size_t woff[HOSTSIMP_MAX_WORDS];
	size_t wlen[HOSTSIMP_MAX_WORDS];
	bool wquoted[HOSTSIMP_MAX_WORDS];
	/* dhcpd: the open blocks. */
	struct frame frames[HOSTSIMP_MAX_DEPTH];
	unsigned depth;
	/* dhcpd: the host block being read. */
	bool in_host;
	unsigned host_depth; /* its index in frames */
	struct name_buf host_decl;
	struct name_buf host_opt; /* option host-name, when has_opt */
	bool has_opt;
	bool host_bad; /* host_err holds its first error */
	unsigned long host_err_line;
	char host_err[MATCH_ERR_SIZE];
	struct match_machine m;
	char msg[2 * MATCH_ERR_SIZE];
};

/* ---- results ---- */

/* Hands a message to the sink. Returns 0 or the stop code (now sticky). */
static int send_error(struct hostsimp *p, unsigned long line, const char *msg)
{
	int rc = match_sink_error(&p->sink, line, msg);
	if (rc)
		p->dead = rc;
	return rc;
}

/* Reports a fatal error and makes code sticky. Returns the sticky code. */
__attribute__((format(printf, 4, 5))) static int fatal(struct hostsimp *p, int code,
                                                       unsigned long line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	if (send_error(p, line, p->msg) == 0)
		p->dead = code;
	return p->dead;
}

/*
 * Reports a bad record or statement. Errors outside host blocks (stray
 * braces, say) are not records, so they are capped on their own.
 * Returns 0 or a stop code.
 */
static int report(struct hostsimp *p, unsigned long line, const char *msg)
{
	if (p->errors >= HOSTSIMP_MAX_RECORDS)
		return fatal(p, -E2BIG, line, "more than %d errors", HOSTSIMP_MAX_RECORDS);
	p->errors++;
	return send_error(p, line, msg);
}

__attribute__((format(printf, 3, 4))) static int reportf(struct hostsimp *p, unsigned long line,
                                                         const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	return report(p, line, p->msg);
}

static int emit(struct hostsimp *p)
{
	int rc = match_sink_record(&p->sink, &p->m);
	if (rc)
		p->dead = rc;
	return rc;
}

/* Counts one more record against the cap. Returns 0 or the fatal code. */
static int count_record(struct hostsimp *p, unsigned long line)
{
	if (p->records >= HOSTSIMP_MAX_RECORDS)
		return fatal(p, -E2BIG, line, "more than %d hosts", HOSTSIMP_MAX_RECORDS);
	p->records++;
	return 0;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && blank((*s)[*n - 1]))
		(*n)--;
}

static bool has_prefix(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(s, prefix, k) == 0;
}

static bool equals(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

static void name_copy(struct name_buf *b, const char *s, size_t n)
{
	b->len = n < sizeof(b->s) ? n : sizeof(b->s);
	memcpy(b->s, s, b->len);
}

/* ---- dnsmasq ---- */

/* dnsmasq lease times: digits with an optional s, m, h, d or w; or "infinite". */
static bool is_lease_time(const char *s, size_t n)
{
	size_t digits = 0;

	if (equals(s, n, "infinite"))
		return true;
	while (digits < n && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (digits == 0)
		return false;
	return digits == n || (digits + 1 == n && strchr("smhdwSMHDW", s[digits]) != NULL);
}

/* A dotted quad's shape: only digits and dots, with a dot (dnsmasq's test for an address). */
static bool looks_ip4(const char *s, size_t n)
{
	bool dot = false;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.')
			dot = true;
		else if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return dot;
}

static bool hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * Adds a dnsmasq hardware address, which may carry an ARP hardware type in
 * front ("01-00:11:22:33:44:55"): only Ethernet (1) names a machine's NIC.
 */
static int dm_add_mac(struct hostsimp *p, const char *s, size_t n)
{
	if (n > 3 && hex_digit(s[0]) && hex_digit(s[1]) && s[2] == '-' &&
	    memchr(s + 3, ':', n - 3)) {
		if (!(s[0] == '0' && s[1] == '1')) {
			char v[16];

			log_escape(s, 2, v, sizeof(v));
			snprintf(p->msg, sizeof(p->msg),
			         "hardware type %s is not supported (only Ethernet, 01)", v);
			return -EINVAL;
		}
		s += 3;
		n -= 3;
	}
	return match_machine_add_mac(&p->m, s, n, p->msg, sizeof(p->msg));
}

/*
 * Fills p->m from one dhcp-host value, the way dnsmasq reads its words.
 * Returns 0, or -EINVAL with the reason in p->msg.
 */
static int dm_fill(struct hostsimp *p, const char *s, size_t n)
{
	struct match_machine *m = &p->m;
	size_t i = 0;
	int rc = 0;

	while (i <= n && rc == 0) {
		const char *t = s + i;
		const char *comma = memchr(t, ',', n - i);
		size_t tn = comma ? (size_t)(comma - t) : n - i;
		char v[4 * SHOW_MAX + 1];

		i += tn + 1;
		trim(&t, &tn);
		if (tn == 0)
			continue;
		if (memchr(t, ':', tn)) {
			if (has_prefix(t, tn, "id:") || has_prefix(t, tn, "set:") ||
			    has_prefix(t, tn, "tag:") || has_prefix(t, tn, "net:") || t[0] == '[')
				continue;
			rc = dm_add_mac(p, t, tn);
		} else if (looks_ip4(t, tn)) {
			if (m->ip[0]) {
				log_escape(t, tn > SHOW_MAX ? SHOW_MAX : tn, v, sizeof(v));
				snprintf(p->msg, sizeof(p->msg),
				         "two IPv4 addresses (%s and \"%s\")", m->ip, v);
				return -EINVAL;
			}
			rc = match_machine_set_ip(m, t, tn, p->msg, sizeof(p->msg));
		} else if (is_lease_time(t, tn) || equals(t, tn, "ignore")) {
			continue;
		} else if (m->name[0]) {
			log_escape(t, tn > SHOW_MAX ? SHOW_MAX : tn, v, sizeof(v));
			snprintf(p->msg, sizeof(p->msg), "two host names (\"%s\" and \"%s\")",
			         m->name, v);
			return -EINVAL;
		} else {
			rc = match_machine_set_name(m, t, tn, p->msg, sizeof(p->msg));
		}
	}
	if (rc == 0)
		rc = match_machine_check(m, p->msg, sizeof(p->msg));
	return rc;
}

/* Handles one complete dnsmasq line (without its LF). Returns 0 or a fatal code. */
static int dm_line(struct hostsimp *p)
{
	const char *s = p->lbuf, *eq, *comma;
	size_t n = p->llen, value_off = 0;
	int rc;

	/* A comment starts with '#' at the start of the line or after white space. */
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '#' && (i == 0 || blank(s[i - 1]))) {
			n = i;
			break;
		}
	}
	trim(&s, &n);
	if (n == 0)
		return 0;
	eq = memchr(s, '=', n);
	comma = memchr(s, ',', n);
	if (eq && (comma == NULL || eq < comma)) {
		const char *key = s;
		size_t kn = (size_t)(eq - s);

		trim(&key, &kn);
		if (has_prefix(key, kn, "--")) {
			key += 2;
			kn -= 2;
		}
		/* Any other option is not ours. */
		if (!equals(key, kn, "dhcp-host"))
			return 0;
		value_off = (size_t)(eq - s) + 1;
	} else if (comma == NULL && memchr(s, ':', n) == NULL) {
		/* A bare option word ("bind-interfaces"); a hosts-file entry would have ',' or ':'.
		 */
		return 0;
	}
	rc = count_record(p, p->line);
	if (rc)
		return rc;
	if (p->lbig)
		return reportf(p, p->line, "the line is longer than %d bytes", HOSTSIMP_MAX_LINE);
	if (p->lnul)
		return report(p, p->line, "NUL byte in the line");
	match_machine_clear(&p->m);
	p->m.line = p->line;
	if (dm_fill(p, s + value_off, n - value_off) < 0)
		return report(p, p->line, p->msg);
	return emit(p);
}

static int dm_step(struct hostsimp *p, char c)
{
	int rc;

	if (c == '\n') {
		rc = dm_line(p);
		p->llen = 0;
		p->lbig = false;
		p->lnul = false;
		p->line++;
		return rc;
	}
	if (c == '\0')
		p->lnul = true;
	else if (p->llen < sizeof(p->lbuf))
		p->lbuf[p->llen++] = c;
	else
		p->lbig = true;
	return 0;
}

static int dm_finish(struct hostsimp *p)
{
	if (p->llen == 0 && !p->lbig && !p->lnul)
		return 0;
	return dm_line(p);
}

/* ---- dhcpd.conf: statements ---- */

static bool word_is(const struct hostsimp *p, unsigned i, const char *kw)
{
	return i < p->nwords && !p->wquoted[i] && p->wlen[i] == strlen(kw) &&
	       strncasecmp(p->sbuf + p->woff[i], kw, p->wlen[i]) == 0;
}

static const char *word(const struct hostsimp *p, unsigned i)
{
	return p->sbuf + p->woff[i];
}

static void reset_stmt(struct hostsimp *p)
{
	p->stmt = false;
	p->stmt_err = NULL;
	p->slen = 0;
	p->nwords = 0;
}

/* The host being read has its first error at line: it will be reported when the block ends. */
__attribute__((format(printf, 3, 4))) static void host_fail(struct hostsimp *p, unsigned long line,
                                                            const char *fmt, ...)
{
	va_list ap;

	if (p->host_bad)
		return;
	p->host_bad = true;
	p->host_err_line = line;
	va_start(ap, fmt);
	vsnprintf(p->host_err, sizeof(p->host_err), fmt, ap);
	va_end(ap);
}

/* True when statements now belong to the host block (not to a block inside it). */
static bool in_host_body(const struct hostsimp *p)
{
	return p->in_host && p->depth == p->host_depth + 1;
}

static void host_statement(struct hostsimp *p)
{
	char v[4 * SHOW_MAX + 1];

	if (p->stmt_err) {
		host_fail(p, p->stmt_line, "%s", p->stmt_err);
		return;
	}
	if (word_is(p, 0, "hardware")) {
		if (p->nwords == 3 && word_is(p, 1, "ethernet")) {
			if (match_machine_add_mac(&p->m, word(p, 2), p->wlen[2], p->msg,
			                          sizeof(p->msg)) < 0)
				host_fail(p, p->stmt_line, "%s", p->msg);
		} else if (p->nwords >= 2 && !word_is(p, 1, "ethernet")) {
			log_escape(word(p, 1), p->wlen[1] > SHOW_MAX ? SHOW_MAX : p->wlen[1], v,
			           sizeof(v));
			host_fail(p, p->stmt_line,
			          "hardware type \"%s\" is not supported (only ethernet)", v);
		} else {
			host_fail(p, p->stmt_line, "expected \"hardware ethernet MAC;\"");
		}
	} else if (word_is(p, 0, "fixed-address")) {
		if (p->nwords < 2)
			host_fail(p, p->stmt_line, "fixed-address without an address");
		/* Addresses separated by ','; the first IPv4 one wins, DNS names are skipped. */
		for (unsigned i = 1; i < p->nwords; i++) {
			const char *a = word(p, i);
			size_t n = p->wlen[i];
			uint32_t ip;

			if (word_is(p, i, ","))
				continue;
			if (match_ip4_parse(a, n, &ip, NULL, 0) == 0) {
				if (p->m.ip[0] == '\0')
					match_machine_set_ip(&p->m, a, n, NULL, 0);
			} else if (looks_ip4(a, n)) {
				match_ip4_parse(a, n, &ip, p->msg, sizeof(p->msg));
				host_fail(p, p->stmt_line, "%s", p->msg);
			} else if (match_hostname_check(a, n, p->msg, sizeof(p->msg)) < 0) {
				host_fail(p, p->stmt_line, "fixed-address: %s", p->msg);
			}
		}
	} else if (word_is(p, 0, "option") && word_is(p, 1, "host-name")) {
		if (p->nwords != 3) {
			host_fail(p, p->stmt_line, "expected \"option host-name NAME;\"");
		} else {
			name_copy(&p->host_opt, word(p, 2), p->wlen[2]);
			p->has_opt = true;
		}
	}
}

/* A statement ended by ';'. */
static int statement(struct hostsimp *p)
{
	int rc = 0;

	if (p->stmt) {
		if (in_host_body(p))
			host_statement(p);
		else if (p->stmt_err)
			rc = report(p, p->stmt_line, p->stmt_err);
	}
	reset_stmt(p);
	return rc;
}

/* Reads "subnet ADDR netmask MASK" into f, or reports why not. Returns 0 or a stop code. */
static int subnet_header(struct hostsimp *p, struct frame *f)
{
	char text[MATCH_CIDR_SIZE + 8], ipt[MATCH_IP4_SIZE], e[MATCH_ERR_SIZE];
	uint32_t ip, mask;
	unsigned prefix;

	if (p->nwords != 4 || !word_is(p, 2, "netmask"))
		return report(p, p->stmt_line, "expected \"subnet ADDRESS netmask MASK {\"");
	if (match_ip4_parse(word(p, 1), p->wlen[1], &ip, e, sizeof(e)) < 0 ||
	    match_ip4_parse(word(p, 3), p->wlen[3], &mask, e, sizeof(e)) < 0)
		return reportf(p, p->stmt_line, "subnet: %s", e);
	if (match_netmask_prefix(mask, &prefix) < 0) {
		match_ip4_format(mask, ipt);
		return reportf(p, p->stmt_line, "subnet: netmask %s is not contiguous", ipt);
	}
	/* Through the CIDR parser, so that host bits set get its message. */
	match_ip4_format(ip, ipt);
	snprintf(text, sizeof(text), "%s/%u", ipt, prefix);
	if (match_cidr_parse(text, strlen(text), &f->net, e, sizeof(e)) < 0)
		return reportf(p, p->stmt_line, "subnet: %s", e);
	f->has_net = true;
	return 0;
}

/* A statement ended by '{': a block opens. Returns 0 or a fatal code. */
static int open_block(struct hostsimp *p)
{
	struct frame f = {.kind = FR_OTHER, .line = p->stmt ? p->stmt_line : p->line};
	int rc = 0;

	if (p->depth == HOSTSIMP_MAX_DEPTH)
		return fatal(p, -EINVAL, p->line, "blocks nested deeper than %d levels",
		             HOSTSIMP_MAX_DEPTH);
	if (p->stmt_err) {
		if (p->in_host)
			host_fail(p, p->stmt_line, "%s", p->stmt_err);
		else
			rc = report(p, p->stmt_line, p->stmt_err);
	} else if (p->in_host) {
		/* Blocks inside a host are skipped; a host in a host is a mistake. */
		if (word_is(p, 0, "host"))
			host_fail(p, p->stmt_line, "a host block inside a host block");
	} else if (word_is(p, 0, "host")) {
		if (p->nwords != 2) {
			rc = report(p, p->stmt_line, "expected \"host NAME {\"");
		} else {
			rc = count_record(p, p->stmt_line);
			f.kind = FR_HOST;
			p->in_host = true;
			p->host_depth = p->depth;
			name_copy(&p->host_decl, word(p, 1), p->wlen[1]);
			p->has_opt = false;
			p->host_bad = false;
			match_machine_clear(&p->m);
			p->m.line = p->stmt_line;
		}
	} else if (word_is(p, 0, "subnet")) {
		f.kind = FR_SUBNET;
		rc = subnet_header(p, &f);
	}
	p->frames[p->depth++] = f;
	reset_stmt(p);
	return rc;
}

/* Escapes the host's declared name for messages. */
static const char *host_shown(const struct hostsimp *p, char *out, size_t outsz)
{
	return log_escape(p->host_decl.s, p->host_decl.len > SHOW_MAX ? SHOW_MAX : p->host_decl.len,
	                  out, outsz);
}

/* The host block ends: report it or hand it over. Returns 0 or a stop code. */
static int end_host(struct hostsimp *p)
{
	struct match_machine *m = &p->m;
	const struct name_buf *name = p->has_opt ? &p->host_opt : &p->host_decl;
	char h[4 * SHOW_MAX + 1], e[MATCH_ERR_SIZE];
	int rc = 0;

	p->in_host = false;
	host_shown(p, h, sizeof(h));
	if (p->host_bad)
		return reportf(p, p->host_err_line, "host %s: %s", h, p->host_err);
	rc = match_machine_set_name(m, name->s, name->len, e, sizeof(e));
	/* The innermost enclosing subnet is the host's. */
	for (unsigned i = p->host_depth; rc == 0 && i-- > 0;) {
		if (p->frames[i].kind == FR_SUBNET) {
			if (p->frames[i].has_net) {
				char cidr[MATCH_CIDR_SIZE];

				match_cidr_format(&p->frames[i].net, cidr);
				rc = match_machine_set_subnet(m, cidr, strlen(cidr), e, sizeof(e));
			}
			break;
		}
	}
	if (rc == 0)
		rc = match_machine_check(m, e, sizeof(e));
	if (rc < 0)
		return reportf(p, m->line, "host %s: %s", h, e);
	return emit(p);
}

/* '}' closes the innermost block. Returns 0 or a stop code. */
static int close_block(struct hostsimp *p)
{
	int rc = 0;

	if (p->stmt) {
		if (in_host_body(p))
			host_fail(p, p->stmt_line, "missing ';' before '}'");
		else
			rc = report(p, p->stmt_line, "missing ';' before '}'");
	}
	reset_stmt(p);
	if (rc)
		return rc;
	if (p->depth == 0)
		return report(p, p->line, "'}' without a block to close");
	p->depth--;
	if (p->in_host && p->depth == p->host_depth)
		return end_host(p);
	return 0;
}

/* ---- dhcpd.conf: tokens ---- */

static void word_start(struct hostsimp *p, bool quoted)
{
	if (!p->stmt) {
		p->stmt = true;
		p->stmt_line = p->line;
	}
	if (p->stmt_err)
		return;
	if (p->nwords == HOSTSIMP_MAX_WORDS) {
		p->stmt_err = "more than 64 words in one statement";
		return;
	}
	p->woff[p->nwords] = p->slen;
	p->wquoted[p->nwords] = quoted;
}

static void word_put(struct hostsimp *p, char c)
{
	if (p->stmt_err)
		return;
	if (c == '\0')
		p->stmt_err = "NUL byte in a statement";
	else if (p->slen == sizeof(p->sbuf))
		p->stmt_err = "statement longer than 8192 bytes";
	else
		p->sbuf[p->slen++] = c;
}

static void word_end(struct hostsimp *p)
{
	if (p->stmt_err)
		return;
	p->wlen[p->nwords] = p->slen - p->woff[p->nwords];
	p->nwords++;
}

static bool word_char(char c)
{
	return !blank(c) && c != '\n' && strchr("{};,\"#", c) == NULL;
}

static int dh_step(struct hostsimp *p, char c)
{
	switch (p->tk) {
	case TK_COMMENT:
		if (c == '\n') {
			p->line++;
			p->tk = TK_SPACE;
		}
		return 0;
	case TK_STRING:
		if (c == '\\') {
			p->tk = TK_ESCAPE;
		} else if (c == '"') {
			word_end(p);
			p->tk = TK_SPACE;
		} else {
			if (c == '\n')
				p->line++;
			word_put(p, c);
		}
		return 0;
	case TK_ESCAPE:
		if (c == '\n')
			p->line++;
		word_put(p, c == 'n' ? '\n' : c == 't' ? '\t' : c);
		p->tk = TK_STRING;
		return 0;
	case TK_WORD:
		if (word_char(c) && c != '\0') {
			word_put(p, c);
			return 0;
		}
		word_end(p);
		p->tk = TK_SPACE;
		/* This byte ends the word; it is handled as between words. */
		__attribute__((fallthrough));
	case TK_SPACE:
		if (c == '\n') {
			p->line++;
		} else if (blank(c)) {
			/* skipped */
		} else if (c == '#') {
			p->tk = TK_COMMENT;
		} else if (c == '"') {
			word_start(p, true);
			p->str_line = p->line;
			p->tk = TK_STRING;
		} else if (c == '{') {
			return open_block(p);
		} else if (c == '}') {
			return close_block(p);
		} else if (c == ';') {
			return statement(p);
		} else if (c == ',') {
			word_start(p, false);
			word_put(p, c);
			word_end(p);
		} else {
			word_start(p, false);
			word_put(p, c);
			if (c == '\0')
				word_end(p);
			else
				p->tk = TK_WORD;
		}
		return 0;
	default:
		return fatal(p, -EINVAL, p->line, "internal error: bad tokenizer state");
	}
}

static int dh_finish(struct hostsimp *p)
{
	char h[4 * SHOW_MAX + 1];
	int rc = 0;

	if (p->tk == TK_STRING || p->tk == TK_ESCAPE) {
		if (p->in_host)
			host_fail(p, p->str_line, "unterminated quoted string");
		else
			rc = report(p, p->str_line, "unterminated quoted string");
		p->stmt_err = NULL;
		reset_stmt(p);
	} else if (p->tk == TK_WORD) {
		word_end(p);
	}
	p->tk = TK_SPACE;
	if (rc)
		return rc;
	if (p->stmt) {
		if (in_host_body(p))
			host_fail(p, p->stmt_line, "missing ';' at the end of the file");
		else
			rc = report(p, p->stmt_line, "missing ';' at the end of the file");
		reset_stmt(p);
		if (rc)
			return rc;
	}
	if (p->in_host) {
		host_fail(p, p->frames[p->host_depth].line, "the block is not closed");
		p->in_host = false;
		return reportf(p, p->host_err_line, "host %s: %s", host_shown(p, h, sizeof(h)),
		               p->host_err);
	}
	if (p->depth > 0)
		return report(p, p->frames[0].line, "'{' is not closed at the end of the file");
	return 0;
}

/* ---- detection ---- */

static const char *const dhcpd_words[] = {
    "host",
    "subnet",
    "subnet6",
    "shared-network",
    "group",
    "pool",
    "class",
    "subclass",
    "hardware",
    "fixed-address",
    "option",
    "authoritative",
    "not",
    "ddns-update-style",
    "default-lease-time",
    "max-lease-time",
    "log-facility",
    "include",
    "range",
    "next-server",
    "filename",
    "allow",
    "deny",
    "ignore",
    "failover",
    "key",
    "zone",
    "server-identifier",
    "server-name",
    "use-host-decl-names",
    "get-lease-hostnames",
    "ping-check",
    "lease-file-name",
    "pid-file-name",
    "local-address",
    "if",
};

/* Tells the format from one line, or HOSTSIMP_AUTO; *content is set when the line is not empty. */
static enum hostsimp_format detect_line(const char *s, size_t n, bool *content)
{
	const char *comma;
	size_t w = 0, r;

	trim(&s, &n);
	if (n == 0 || s[0] == '#')
		return HOSTSIMP_AUTO;
	*content = true;
	while (w < n && (hex_digit(s[w]) || (s[w] >= 'g' && s[w] <= 'z') ||
	                 (s[w] >= 'G' && s[w] <= 'Z') || s[w] == '-' || s[w] == '_'))
		w++;
	r = w;
	while (r < n && blank(s[r]))
		r++;
	if (w > 0 && r < n && s[r] == '=')
		return HOSTSIMP_DNSMASQ;
	if (w > 0 && (w == n || blank(s[w]) || s[w] == '{' || s[w] == ';')) {
		for (size_t i = 0; i < sizeof(dhcpd_words) / sizeof(dhcpd_words[0]); i++)
			if (strlen(dhcpd_words[i]) == w && strncasecmp(dhcpd_words[i], s, w) == 0)
				return HOSTSIMP_DHCPD;
	}
	if (s[n - 1] == '{' || s[n - 1] == ';' || s[n - 1] == '}')
		return HOSTSIMP_DHCPD;
	comma = memchr(s, ',', n);
	if (comma) {
		const char *t = s;
		size_t tn = (size_t)(comma - s);
		uint8_t mac[MATCH_MAC_BYTES];

		trim(&t, &tn);
		if (has_prefix(t, tn, "id:") || match_mac_parse(t, tn, mac, NULL, 0) == 0 ||
		    (tn > 3 && t[2] == '-' && match_mac_parse(t + 3, tn - 3, mac, NULL, 0) == 0))
			return HOSTSIMP_DNSMASQ;
		/* dhcpd statements end in ';' or '{'; a comma list with no space is a hosts file.
		 */
		if (memchr(s, ' ', n) == NULL && memchr(s, '\t', n) == NULL)
			return HOSTSIMP_DNSMASQ;
	}
	return HOSTSIMP_AUTO;
}

/*
 * Looks at the lines of buf; the last one only when final (otherwise it may
 * be cut). *content is set when a line that is not blank or a comment was
 * seen.
 */
static enum hostsimp_format detect(const char *s, size_t len, bool final, bool *content)
{
	size_t i = 0;

	*content = false;
	if (len >= 3 && memcmp(s, bom, 3) == 0)
		i = 3;
	while (i < len) {
		const char *nl = memchr(s + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (s + i)) : len - i;
		enum hostsimp_format f;

		if (nl == NULL && !final)
			break;
		f = detect_line(s + i, n, content);
		if (f != HOSTSIMP_AUTO)
			return f;
		i += n + 1;
	}
	return HOSTSIMP_AUTO;
}

enum hostsimp_format hostsimp_detect(const void *buf, size_t len)
{
	bool content;

	return detect(buf, len, true, &content);
}

/* ---- the driver ---- */

static int dispatch(struct hostsimp *p, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = p->fmt == HOSTSIMP_DHCPD ? dh_step(p, s[i]) : dm_step(p, s[i]);

		if (rc)
			return rc;
	}
	return 0;
}

/* Input after the BOM: kept for detection, or parsed. */
static int input(struct hostsimp *p, const char *s, size_t n)
{
	size_t take;
	bool content;
	int rc;

	if (p->fmt != HOSTSIMP_AUTO)
		return dispatch(p, s, n);
	if (p->det == NULL) {
		p->det = malloc(HOSTSIMP_DETECT_MAX);
		if (p->det == NULL) {
			p->dead = -ENOMEM;
			return p->dead;
		}
	}
	take = n < HOSTSIMP_DETECT_MAX - p->dlen ? n : HOSTSIMP_DETECT_MAX - p->dlen;
	memcpy(p->det + p->dlen, s, take);
	p->dlen += take;
	p->fmt = detect(p->det, p->dlen, false, &content);
	if (p->fmt == HOSTSIMP_AUTO) {
		if (p->dlen == HOSTSIMP_DETECT_MAX)
			return fatal(p, -EINVAL, 1,
			             "cannot tell the format: no dhcpd.conf statement or dnsmasq "
			             "dhcp-host line in the first %d bytes",
			             HOSTSIMP_DETECT_MAX);
		return 0;
	}
	rc = dispatch(p, p->det, p->dlen);
	free(p->det);
	p->det = NULL;
	p->dlen = 0;
	if (rc)
		return rc;
	return dispatch(p, s + take, n - take);
}

struct hostsimp *hostsimp_new(enum hostsimp_format fmt, const struct match_sink *sink)
{
	struct hostsimp *p;

	if (fmt != HOSTSIMP_AUTO && fmt != HOSTSIMP_DHCPD && fmt != HOSTSIMP_DNSMASQ)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	if (sink)
		p->sink = *sink;
	p->fmt = fmt;
	p->line = 1;
	p->tk = TK_SPACE;
	return p;
}

int hostsimp_feed(struct hostsimp *p, const void *buf, size_t len)
{
	const char *s = buf;
	size_t i = 0;
	int rc;

	if (p->dead)
		return p->dead;
	if (p->finished)
		return -EINVAL;
	while (!p->bom_done && i < len) {
		if (s[i] == bom[p->bom]) {
			i++;
			if (++p->bom == sizeof(bom))
				p->bom_done = true;
			continue;
		}
		/* Not a BOM after all: the bytes matched so far are data. */
		p->bom_done = true;
		rc = input(p, bom, p->bom);
		if (rc)
			return rc;
	}
	return input(p, s + i, len - i);
}

int hostsimp_finish(struct hostsimp *p)
{
	bool content;
	int rc;

	if (p->dead)
		return p->dead;
	if (p->finished)
		return -EINVAL;
	p->finished = true;
	if (!p->bom_done) {
		p->bom_done = true;
		rc = input(p, bom, p->bom);
		if (rc)
			return rc;
	}
	if (p->fmt == HOSTSIMP_AUTO) {
		p->fmt = detect(p->det ? p->det : "", p->dlen, true, &content);
		if (p->fmt == HOSTSIMP_AUTO) {
			free(p->det);
			p->det = NULL;
			/* Nothing but blank lines and comments: nothing to import. */
			if (!content)
				return 0;
			return fatal(p, -EINVAL, 1,
			             "cannot tell the format: neither dhcpd.conf statements nor "
			             "dnsmasq dhcp-host lines");
		}
		rc = dispatch(p, p->det, p->dlen);
		free(p->det);
		p->det = NULL;
		p->dlen = 0;
		if (rc)
			return rc;
	}
	rc = p->fmt == HOSTSIMP_DHCPD ? dh_finish(p) : dm_finish(p);
	return rc ? rc : p->dead;
}

void hostsimp_free(struct hostsimp *p)
{
	if (p == NULL)
		return;
	free(p->det);
	free(p);
}

enum hostsimp_format hostsimp_format(const struct hostsimp *p)
{
	return p->fmt;
}

const char *hostsimp_format_name(enum hostsimp_format f)
{
	switch (f) {
	case HOSTSIMP_AUTO:
		return "auto";
	case HOSTSIMP_DHCPD:
		return "dhcpd";
	case HOSTSIMP_DNSMASQ:
		return "dnsmasq";
	default:
		return "unknown";
	}
}

int hostsimp_format_parse(const char *s, enum hostsimp_format *out)
{
	static const enum hostsimp_format all[] = {HOSTSIMP_AUTO, HOSTSIMP_DHCPD, HOSTSIMP_DNSMASQ};

	if (s == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcasecmp(s, hostsimp_format_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

int hostsimp_parse(enum hostsimp_format fmt, const void *buf, size_t len,
                   const struct match_sink *sink)
{
	struct hostsimp *p = hostsimp_new(fmt, sink);
	int rc;

	if (p == NULL)
		return -ENOMEM;
	rc = hostsimp_feed(p, buf, len);
	if (rc == 0)
		rc = hostsimp_finish(p);
	hostsimp_free(p);
	return rc;
}

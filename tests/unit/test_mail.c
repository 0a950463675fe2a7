/*
 * Unit tests for mail.c: messages built byte for byte (headers, RFC 2047
 * subjects and names, folding, 7bit and quoted-printable bodies, line
 * ends), what is refused (header injection, bad UTF-8, limits), the [mail]
 * settings checks, the report and its subject against golden text, hostile
 * report input, and a send to a port where nothing listens.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mail.h"
#include "server.h"

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mo - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = mi,
	                .tm_sec = s};

	return timegm(&tm);
}

static const char *const two[] = {"a@example.edu", "b@example.edu"};

/* A message with the usual fields; tests change what they look at. */
static struct mail_msg msg(const char *subject, const char *body)
{
	struct mail_msg m = {.from = "Microlinux <ml@example.edu>",
	                     .to = two,
	                     .nto = 2,
	                     .subject = subject,
	                     .body = body,
	                     .date = utc(2026, 11, 26, 13, 34, 18),
	                     .message_id = "<20261126133418.0123456789abcdef@example.edu>"};
	return m;
}

/* Builds m and returns the text (free it); fails the test on error. */
static char *build(const struct mail_msg *m)
{
	char *out = NULL, err[MAIL_ERR_SIZE] = "";
	size_t len = 0;
	int rc = mail_build(m, &out, &len, err, sizeof(err));

	if (rc != 0)
		fail_msg("mail_build: %d %s", rc, err);
	assert_int_equal(strlen(out), len);
	return out;
}

/* The body of a built message: after the first empty line. */
static const char *body_of(const char *msg)
{
	const char *p = strstr(msg, "\r\n\r\n");

	assert_non_null(p);
	return p + 4;
}

/* Every line ends in CRLF, no bare CR or LF, and no line exceeds max bytes. */
static void check_lines(const char *s, size_t max)
{
	size_t col = 0;

	for (; *s; s++) {
		if (*s == '\r') {
			assert_int_equal(s[1], '\n');
			s++;
			col = 0;
			continue;
		}
		assert_true(*s != '\n');
		col++;
		if (col > max)
			fail_msg("a line longer than %zu bytes", max);
	}
	assert_int_equal(col, 0); /* the text ends with CRLF */
}

static void test_build_golden(void **state)
{
	(void)state;
	set_tz("Europe/Berlin");
	struct mail_msg m = msg("Deployment report", "Hello\n.dot line\r\n\nend");
	char *s = build(&m);
	assert_string_equal(s, "Date: Thu, 26 Nov 2026 14:34:18 +0100\r\n"
	                       "From: Microlinux <ml@example.edu>\r\n"
	                       "To: a@example.edu, b@example.edu\r\n"
	                       "Subject: Deployment report\r\n"
	                       "Message-ID: <20261126133418.0123456789abcdef@example.edu>\r\n"
	                       "MIME-Version: 1.0\r\n"
	                       "Content-Type: text/plain; charset=utf-8\r\n"
	                       "Content-Transfer-Encoding: 7bit\r\n"
	                       "Auto-Submitted: auto-generated\r\n"
	                       "\r\n"
	                       "Hello\r\n"
	                       ".dot line\r\n"
	                       "\r\n"
	                       "end\r\n");
	free(s);
	/* Summer time, a zone west of UTC, a bare sender address, one recipient. */
	set_tz("America/New_York");
	m.date = utc(2026, 7, 4, 3, 5, 9);
	m.from = "ml@example.edu";
	m.nto = 1;
	s = build(&m);
	assert_non_null(strstr(s, "Date: Fri, 03 Jul 2026 23:05:09 -0400\r\n"));
	assert_non_null(strstr(s, "\r\nFrom: <ml@example.edu>\r\nTo: a@example.edu\r\n"));
	free(s);
	set_tz("UTC");
}

static void test_build_encoded(void **state)
{
	(void)state;
	set_tz("UTC");
	struct mail_msg m = msg("Déploiement", "x");
	char *s = build(&m);
	assert_non_null(strstr(s, "\r\nSubject: =?UTF-8?B?RMOpcGxvaWVtZW50?=\r\n"));
	free(s);
	/* "=?" in an ASCII subject would be read as an encoded word: encode it. */
	m.subject = "a =?b?= c";
	s = build(&m);
	assert_non_null(strstr(s, "\r\nSubject: =?UTF-8?B?YSA9P2I/PSBj?=\r\n"));
	free(s);
	/* A long subject: several encoded words on folded lines, none splitting a character. */
	char subj[600] = "";
	for (int i = 0; i < 40; i++)
		strcat(subj, "é€x ");
	m.subject = subj;
	s = build(&m);
	const char *p = strstr(s, "\r\nSubject: ") + 11;
	int words = 0;
	while (strncmp(p, "=?UTF-8?B?", 10) == 0) {
		const char *end = strstr(p, "?=");
		assert_non_null(end);
		assert_true(end + 2 - p <= 75);
		words++;
		p = end + 2;
		if (strncmp(p, "\r\n ", 3) != 0)
			break;
		p += 3;
	}
	assert_true(words >= 6);
	assert_memory_equal(p, "\r\nMessage-ID:", 13);
	check_lines(s, 78);
	free(s);
	/* Display names: atoms, quoted, encoded. */
	m.subject = "s";
	m.from = "Salle Émile <ml@example.edu>";
	s = build(&m);
	assert_non_null(strstr(s, "\r\nFrom: =?UTF-8?B?U2FsbGUgw4ltaWxl?= <ml@example.edu>\r\n"));
	free(s);
	m.from = "\"Lab, room 2\" <ml@example.edu>";
	s = build(&m);
	assert_non_null(strstr(s, "\r\nFrom: \"Lab, room 2\" <ml@example.edu>\r\n"));
	free(s);
	m.from = "IT (lab) <ml@example.edu>";
	s = build(&m);
	assert_non_null(strstr(s, "\r\nFrom: \"IT (lab)\" <ml@example.edu>\r\n"));
	free(s);
}

static void test_build_recipients(void **state)
{
	const char *to[MAIL_RCPT_MAX + 1];
	char addrs[MAIL_RCPT_MAX + 1][40];

	(void)state;
	for (int i = 0; i <= MAIL_RCPT_MAX; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "teacher%03d@school.example.edu", i);
		to[i] = addrs[i];
	}
	struct mail_msg m = msg("s", "b");
	m.to = to;
	m.nto = MAIL_RCPT_MAX;
	char *s = build(&m);
	/* Folded after commas, every line at most 78 bytes, every address there once. */
	check_lines(s, 78);
	assert_non_null(strstr(s, "\r\nTo: teacher000@school.example.edu, "
	                          "teacher001@school.example.edu,\r\n "
	                          "teacher002@school.example.edu, "));
	for (int i = 0; i < MAIL_RCPT_MAX; i++)
		assert_non_null(strstr(s, addrs[i]));
	free(s);
	char *out = NULL, err[MAIL_ERR_SIZE];
	size_t len;
	m.nto = MAIL_RCPT_MAX + 1;
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "a message needs 1 to 100 recipients");
	m.nto = 0;
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	assert_null(out);
}

/* Decodes quoted-printable (CRLF line ends) into out; returns its length. */
static size_t qp_decode(const char *s, char *out)
{
	size_t o = 0;

	while (*s) {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
			s += 3;
		} else if (s[0] == '=') {
			unsigned v;
			char hex[3] = {s[1], s[2], 0};
			assert_int_equal(sscanf(hex, "%2X", &v), 1);
			out[o++] = (char)v;
			s += 3;
		} else {
			out[o++] = *s++;
		}
	}
	out[o] = '\0';
	return o;
}

static void test_build_qp(void **state)
{
	(void)state;
	set_tz("UTC");
	struct mail_msg m =
	    msg("s", "Café crème\nline with trailing space \nwith = sign\tand tab\n");
	char *s = build(&m);
	assert_non_null(strstr(s, "Content-Transfer-Encoding: quoted-printable\r\n"));
	assert_string_equal(body_of(s), "Caf=C3=A9 cr=C3=A8me\r\n"
	                                "line with trailing space=20\r\n"
	                                "with =3D sign\tand tab\r\n");
	free(s);

	/* A long line of mixed text: soft breaks keep lines <= 76, decoding gives it back. */
	char *body = malloc(5000), *dec = malloc(20000);
	size_t o = 0;
	for (int i = 0; i < 300; i++)
		o += (size_t)snprintf(body + o, 5000 - o, "%s", i % 3 ? "ab=c " : "ü€ ");
	body[o] = '\0';
	m.body = body;
	s = build(&m);
	check_lines(s, 998);
	check_lines(body_of(s), 76);
	qp_decode(body_of(s), dec);
	assert_int_equal(strlen(dec), o + 2);
	assert_memory_equal(dec, body, o);
	assert_string_equal(dec + o, "\r\n");
	free(s);

	/* A long ASCII line (over 998 bytes) also goes quoted-printable. */
	memset(body, 'x', 1500);
	body[1500] = '\0';
	m.body = body;
	s = build(&m);
	assert_non_null(strstr(s, "Content-Transfer-Encoding: quoted-printable\r\n"));
	check_lines(body_of(s), 76);
	qp_decode(body_of(s), dec);
	assert_int_equal(strlen(dec), 1502);
	free(s);
	/* Exactly 998 ASCII bytes stay 7bit. */
	body[998] = '\0';
	s = build(&m);
	assert_non_null(strstr(s, "Content-Transfer-Encoding: 7bit\r\n"));
	free(s);
	/* A control character (escape) forces quoted-printable too. */
	m.body = "bell\x1b[0m";
	s = build(&m);
	assert_string_equal(body_of(s), "bell=1B[0m\r\n");
	free(s);
	/* Line ends: LF, CRLF and a lone CR all become CRLF; an empty body is one empty line. */
	m.body = "a\rb\r\nc\nd\n";
	s = build(&m);
	assert_string_equal(body_of(s), "a\r\nb\r\nc\r\nd\r\n");
	free(s);
	m.body = "";
	s = build(&m);
	assert_string_equal(body_of(s), "");
	free(s);
	free(body);
	free(dec);
}

static void test_build_bad(void **state)
{
	static const char *const inject[] = {"a@example.edu\r\nBcc: x@evil.example"};
	static const char *const angle[] = {"<a@example.edu>"};
	static const char *const noat[] = {"example.edu"};
	char *out = NULL, err[MAIL_ERR_SIZE];
	size_t len = 0;
	char big[MAIL_SUBJECT_MAX + 2];

	(void)state;
	struct mail_msg m = msg("s", "b");
	m.to = inject;
	m.nto = 1;
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "e-mail address \"a@example.edu\\x0d\\x0aBcc: x@evil.example\" "
	                         "has a character not allowed there");
	m.to = angle;
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	m.to = noat;
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "\"example.edu\" is not an e-mail address (local@domain)");
	m = msg("Report\r\nBcc: x@evil.example", "b");
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the subject has a control character");
	m = msg("bad \xc3\x28 utf-8", "b");
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the subject is not valid UTF-8");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	m = msg(big, "b");
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EFBIG);
	/* Bodies: invalid UTF-8 (a surrogate, an overlong form, a cut sequence). */
	static const char *const bad_bodies[] = {"\xed\xa0\x80", "\xc0\xaf", "ok \xe2\x82",
	                                         "\xf5\x80\x80\x80", "\xff"};
	for (size_t i = 0; i < 5; i++) {
		m = msg("s", bad_bodies[i]);
		assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "the body is not valid UTF-8");
	}
	/* Senders. */
	m = msg("s", "b");
	m.from = "Name <a@b> <c@d>";
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	m.from = "Evil\r\nBcc: x@y <a@example.edu>";
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	m.from = "ml@example.edu>";
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	/* Message-IDs. */
	m = msg("s", "b");
	m.message_id = "no-brackets@example.edu";
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	m.message_id = "<a b@example.edu>";
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	m.message_id = NULL;
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EINVAL);
	/* A body over the limit. */
	char *huge = malloc(MAIL_BODY_MAX + 2);
	memset(huge, 'a', MAIL_BODY_MAX + 1);
	huge[MAIL_BODY_MAX + 1] = '\0';
	m = msg("s", huge);
	assert_int_equal(mail_build(&m, &out, &len, err, sizeof(err)), -EFBIG);
	free(huge);
	assert_null(out);
}

static void test_addresses(void **state)
{
	char name[MAIL_NAME_MAX + 1], addr[MAIL_ADDR_MAX + 1], err[MAIL_ERR_SIZE];
	enum mail_tls t;

	(void)state;
	assert_int_equal(mail_from_parse("  ml@example.edu ", name, addr, err, sizeof(err)), 0);
	assert_string_equal(name, "");
	assert_string_equal(addr, "ml@example.edu");
	assert_int_equal(
	    mail_from_parse("Micro Linux<ml@example.edu>", name, addr, err, sizeof(err)), 0);
	assert_string_equal(name, "Micro Linux");
	assert_string_equal(addr, "ml@example.edu");
	assert_int_equal(
	    mail_from_parse("\"Lab, 2\" <ml@example.edu>", name, addr, err, sizeof(err)), 0);
	assert_string_equal(name, "Lab, 2");
	assert_int_equal(mail_from_parse("<ml@example.edu>", name, addr, err, sizeof(err)), 0);
	assert_string_equal(name, "");
	assert_int_equal(mail_from_parse("", name, addr, err, sizeof(err)), -EINVAL);
	assert_int_equal(mail_from_parse("a\"b <ml@example.edu>", name, addr, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(mail_from_parse("x <>", name, addr, err, sizeof(err)), -EINVAL);
	assert_int_equal(mail_addr_check("a@b", err, sizeof(err)), 0);
	assert_int_equal(mail_addr_check("a@b@c", err, sizeof(err)), -EINVAL);
	assert_int_equal(mail_addr_check("@b", err, sizeof(err)), -EINVAL);
	assert_int_equal(mail_addr_check("a@", err, sizeof(err)), -EINVAL);
	assert_int_equal(mail_addr_check("a b@c", err, sizeof(err)), -EINVAL);
	assert_int_equal(mail_addr_check("é@c", err, sizeof(err)), -EINVAL);
	assert_int_equal(mail_tls_parse("try", &t), 0);
	assert_int_equal(t, MAIL_TLS_TRY);
	assert_int_equal(mail_tls_parse("require", &t), 0);
	assert_int_equal(t, MAIL_TLS_REQUIRE);
	assert_int_equal(mail_tls_parse("off", &t), 0);
	assert_int_equal(t, MAIL_TLS_OFF);
	assert_int_equal(mail_tls_parse("TRY", &t), -EINVAL);

	char id[MAIL_MSGID_SIZE], id2[MAIL_MSGID_SIZE];
	assert_int_equal(mail_message_id("example.edu", utc(2026, 11, 26, 13, 34, 18), id), 0);
	assert_int_equal(strlen(id), strlen("<20261126133418.0123456789abcdef@example.edu>"));
	assert_memory_equal(id, "<20261126133418.", 16);
	assert_string_equal(id + 32, "@example.edu>");
	assert_int_equal(mail_message_id("example.edu", utc(2026, 11, 26, 13, 34, 18), id2), 0);
	assert_string_not_equal(id, id2);
}

/* Sets keys on a default configuration and returns srvconf_validate()'s result. */
static int conf_with(const char *const *sets, char *err)
{
	struct srvconf c;
	int rc = 0;

	srvconf_defaults(&c);
	for (size_t i = 0; sets[i] && rc == 0; i++)
		rc = srvconf_set(&c, sets[i], err, MAIL_ERR_SIZE);
	if (rc == 0)
		rc = srvconf_validate(&c, err, MAIL_ERR_SIZE);
	srvconf_free(&c);
	return rc;
}

static void test_conf(void **state)
{
	char err[MAIL_ERR_SIZE];

	(void)state;
	assert_int_equal(conf_with((const char *[]){NULL}, err), 0);
	assert_int_equal(conf_with((const char *[]){"mail.url=smtp://mx.example.edu:587",
	                                            "mail.from=Microlinux <ml@example.edu>",
	                                            "mail.starttls=require", NULL},
	                           err),
	                 0);
	assert_int_equal(conf_with((const char *[]){"mail.url=smtps://mx.example.edu",
	                                            "mail.from=ml@example.edu", "mail.username=ml",
	                                            "mail.password_file=/etc/pw", NULL},
	                           err),
	                 0);
	assert_int_equal(conf_with((const char *[]){"mail.url=smtp://mx.example.edu", NULL}, err),
	                 -EINVAL);
	assert_string_equal(err, "[mail] from must be set when url is (e.g. mlserver@example.edu)");
	assert_int_equal(conf_with((const char *[]){"mail.url=http://mx.example.edu",
	                                            "mail.from=ml@example.edu", NULL},
	                           err),
	                 -EINVAL);
	assert_string_equal(err, "[mail] url: 'http://mx.example.edu' is not smtp://HOST[:PORT] or "
	                         "smtps://...");
	assert_int_equal(
	    conf_with((const char *[]){"mail.url=smtp://", "mail.from=ml@example.edu", NULL}, err),
	    -EINVAL);
	assert_int_equal(
	    conf_with((const char *[]){"mail.url=smtp://mx", "mail.from=not an address", NULL},
	              err),
	    -EINVAL);
	assert_non_null(strstr(err, "[mail] from: "));
	assert_int_equal(conf_with((const char *[]){"mail.starttls=maybe", NULL}, err), -EINVAL);
	assert_string_equal(err, "[mail] starttls: 'maybe' is not try, require or off");
	assert_int_equal(conf_with((const char *[]){"mail.password_file=/etc/pw", NULL}, err),
	                 -EINVAL);
	assert_true(conf_with((const char *[]){"mail.timeout=0", NULL}, err) < 0);
	assert_true(conf_with((const char *[]){"mail.insecure=perhaps", NULL}, err) < 0);
}

static const struct mail_report_row golden_rows[] = {
    {"pc-101", MAIL_DONE, NULL, 45097156608ull, 2292000},
    {"pc-104", MAIL_FAILED, "disk full", 1288490189ull, 301000},
    {"pc-102", MAIL_CURRENT, "", 0, 1000},
    {"lab-pc-long-name-7", MAIL_DONE, NULL, 1073741824ull, 3599000},
    {"pc-103", MAIL_MISSING, "no agent after 300 s", 0, 0},
    {"pc-100", MAIL_FAILED, "checksum mismatch in chunk 12", 512, 4000},
};

static struct mail_report golden_report(void)
{
	struct mail_report r = {.deployment = "lab-win11",
	                        .run_id = 42,
	                        .image = "win11",
	                        .version = "2026-11-20",
	                        .started = utc(2026, 11, 26, 21, 0, 0),
	                        .finished = utc(2026, 11, 26, 21, 41, 13),
	                        .sent_bytes = 46170898432ull,
	                        .rows = golden_rows,
	                        .nrows = sizeof(golden_rows) / sizeof(golden_rows[0])};
	return r;
}

static void test_report_golden(void **state)
{
	(void)state;
	set_tz("Europe/Berlin");
	struct mail_report r = golden_report();
	char *s = mail_report_render(&r);
	assert_non_null(s);
	assert_string_equal(
	    s,
	    "Deployment  lab-win11 (run 42)\n"
	    "Image       win11, version 2026-11-20\n"
	    "Started     2026-11-26 22:00:00 +0100\n"
	    "Finished    2026-11-26 22:41:13 +0100 (41m13s)\n"
	    "Result      6 machines: 2 done, 1 already current, 1 missing, 2 failed\n"
	    "Sent        43.0 GiB by multicast\n"
	    "\n"
	    "Machine             State                Data    Time  Reason\n"
	    "pc-100              failed              512 B      4s  checksum mismatch in chunk 12\n"
	    "pc-104              failed            1.2 GiB   5m01s  disk full\n"
	    "pc-103              missing                 -       -  no agent after 300 s\n"
	    "lab-pc-long-name-7  done              1.0 GiB  59m59s\n"
	    "pc-101              done             42.0 GiB  38m12s\n"
	    "pc-102              already current       0 B      1s\n"
	    "\n"
	    "Total                                44.2 GiB  41m13s\n");
	/* The caller's rows keep their order. */
	assert_string_equal(golden_rows[0].machine, "pc-101");
	free(s);

	char subj[MAIL_SUBJECT_MAX + 1];
	assert_string_equal(
	    mail_report_subject(&r, subj, sizeof(subj)),
	    "[Microlinux] lab-win11: 2 done, 1 already current, 1 missing, 2 failed");
	r.nrows = 1;
	assert_string_equal(mail_report_subject(&r, subj, sizeof(subj)),
	                    "[Microlinux] lab-win11: 1 done");
	r.error = "no machine matched the targets";
	assert_string_equal(
	    mail_report_subject(&r, subj, sizeof(subj)),
	    "[Microlinux] lab-win11: run 42 failed: no machine matched the targets");
	set_tz("UTC");
}

static void test_report_edges(void **state)
{
	(void)state;
	set_tz("UTC");
	/* No machines, a run error, not finished; no table. */
	struct mail_report r = {.deployment = "Salle 1.02 – Windows",
	                        .run_id = 7,
	                        .image = "win11",
	                        .version = "v1",
	                        .started = utc(2026, 1, 2, 3, 4, 5),
	                        .error = "no machine matched the targets"};
	char *s = mail_report_render(&r);
	assert_string_equal(s, "Deployment  Salle 1.02 – Windows (run 7)\n"
	                       "Image       win11, version v1\n"
	                       "Started     2026-01-02 03:04:05 +0000\n"
	                       "Finished    -\n"
	                       "Result      0 machines\n"
	                       "Error       no machine matched the targets\n"
	                       "\n"
	                       "No machines were targeted.\n");
	free(s);
	char subj[MAIL_SUBJECT_MAX + 1];
	r.error = NULL;
	assert_string_equal(mail_report_subject(&r, subj, sizeof(subj)),
	                    "[Microlinux] Salle 1.02 – Windows: no machines");

	/* Hostile names and reasons: control characters, bad UTF-8, overlong text. */
	char longreason[1000];
	memset(longreason, 'r', sizeof(longreason) - 1);
	longreason[sizeof(longreason) - 1] = '\0';
	char longname[400];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	struct mail_report_row rows[] = {
	    {"pc\n1\x1b", MAIL_FAILED, "line\r\nBcc: x\xff\xfe end", 1, 1},
	    {"pc-é", MAIL_DONE, "Prüfsumme falsch", 2048, 65000},
	    {longname, MAIL_FAILED, longreason, 3, 3600000 * 26ull},
	    {NULL, MAIL_MISSING, NULL, 0, 0},
	};
	r.rows = rows;
	r.nrows = 4;
	r.finished = r.started + 10;
	s = mail_report_render(&r);
	assert_non_null(s);
	assert_non_null(strstr(s, "\npc?1?  "));
	assert_non_null(strstr(s, "  line??Bcc: x?? end\n"));
	assert_non_null(strstr(s, "\npc-??  "));
	assert_non_null(strstr(s, "  Prüfsumme falsch\n"));
	assert_non_null(strstr(s, "26h00m00s"));
	assert_non_null(strstr(s, "rrr...\n"));
	assert_non_null(strstr(s, "nnn...  failed"));
	/* Only LF and printable text; every line well under 998 bytes; columns aligned. */
	size_t col = 0, state_col = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '\n') {
			col = 0;
			continue;
		}
		assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
		assert_true(++col < 600);
	}
	const char *hdr = strstr(s, "\nMachine");
	state_col = (size_t)(strstr(hdr, "State") - hdr);
	for (const char *line = hdr; line && line[1]; line = strchr(line + 1, '\n')) {
		const char *st = line + state_col;
		if (strncmp(line + 1, "Total", 5) == 0 || line[1] == '\n')
			continue;
		if (strncmp(st, "State", 5) && strncmp(st, "failed", 6) && strncmp(st, "done", 4) &&
		    strncmp(st, "missing", 7))
			fail_msg("misaligned line: %.60s", line + 1);
	}
	free(s);
	set_tz("UTC");
}

static void test_send_errors(void **state)
{
	struct srvconf c;
	char err[MAIL_ERR_SIZE] = "";

	(void)state;
	srvconf_defaults(&c);
	struct mail_msg m = msg("s", "b");
	m.from = NULL;
	m.message_id = NULL;
	m.date = 0;
	assert_int_equal(mail_send(&c, &m, err, sizeof(err)), -ENOTCONN);
	assert_string_equal(err, "mail is not set up ([mail] url is empty; docs/mail.md)");
	/* Nothing listens on port 1: curl's reason, the URL without its password. */
	assert_int_equal(srvconf_set(&c, "mail.url=smtp://u:secret@127.0.0.1:1", err, sizeof(err)),
	                 0);
	assert_int_equal(srvconf_set(&c, "mail.from=ml@example.edu", err, sizeof(err)), 0);
	assert_int_equal(srvconf_set(&c, "mail.timeout=5s", err, sizeof(err)), 0);
	assert_int_equal(mail_send(&c, &m, err, sizeof(err)), -EIO);
	if (!strstr(err, "mail via smtp://127.0.0.1:1 to a@example.edu and 1 more: ") ||
	    !strstr(err, "connect") || strstr(err, "secret"))
		fail_msg("unexpected error: %s", err);
	/* A missing password file is named. */
	assert_int_equal(srvconf_set(&c, "mail.username=ml", err, sizeof(err)), 0);
	assert_int_equal(srvconf_set(&c, "mail.password_file=/nonexistent/pw", err, sizeof(err)),
	                 0);
	assert_int_equal(mail_send(&c, &m, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "[mail] password_file /nonexistent/pw: No such file or directory");
	srvconf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_golden),
	    cmocka_unit_test(test_build_encoded),
	    cmocka_unit_test(test_build_recipients),
	    cmocka_unit_test(test_build_qp),
	    cmocka_unit_test(test_build_bad),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_conf),
	    cmocka_unit_test(test_report_golden),
	    cmocka_unit_test(test_report_edges),
	    cmocka_unit_test(test_send_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

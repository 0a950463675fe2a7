/*
 * libFuzzer harness for mail.c's text handling. The input is split at NUL
 * bytes into a sender, a comma-separated recipient list, a subject and a
 * body for mail_build(); the body's lines also become report rows (name,
 * state, reason) for mail_report_render(). Beyond "no crash", it checks the
 * contracts: a built message has CRLF line ends only, no line over 998
 * bytes, an ASCII header; a failure has a one-line reason; and whatever the
 * rows hold, the report and its subject are clean text that mail_build()
 * always accepts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

/* CRLF only, lines of at most max bytes, the last one ended. */
static void check_lines(const char *s, size_t len, size_t max)
{
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			check(i + 1 < len && s[i + 1] == '\n');
			i++;
			col = 0;
			continue;
		}
		check(s[i] != '\n' && s[i] != '\0');
		check(++col <= max);
	}
	check(col == 0);
}

static void check_message(const char *s, size_t len)
{
	const char *end = strstr(s, "\r\n\r\n");

	check(strlen(s) == len);
	check_lines(s, len, 998);
	check(end != NULL);
	for (const char *p = s; p < end; p++)
		check((unsigned char)*p < 0x80);
	if (strstr(s, "Content-Transfer-Encoding: quoted-printable\r\n") != NULL &&
	    strstr(s, "Content-Transfer-Encoding: quoted-printable\r\n") < end)
		check_lines(end + 4, strlen(end + 4), 76);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int tz;
	char *text = malloc(size + 1), *field[4] = {"", "", "", ""}, *to[8];
	char *out = NULL, err[MAIL_ERR_SIZE];
	size_t nf = 0, nto = 0, len = 0;
	int rc;

	if (!tz) {
		setenv("TZ", "Europe/Berlin", 1);
		tzset();
		tz = 1;
	}
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	field[nf++] = text;
	for (size_t i = 0; i < size && nf < 4; i++)
		if (text[i] == '\0')
			field[nf++] = text + i + 1;
	/* Recipients: comma-separated, at most 8. */
	for (char *p = field[1]; *p && nto < 8;) {
		to[nto++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p++ = '\0';
	}
	struct mail_msg m = {.from = field[0],
	                     .to = (const char *const *)to,
	                     .nto = nto,
	                     .subject = field[2],
	                     .body = field[3],
	                     .date = 1795700000,
	                     .message_id = "<1.2@example.edu>"};
	err[0] = '\0';
	rc = mail_build(&m, &out, &len, err, sizeof(err));
	if (rc == 0) {
		check_message(out, len);
		free(out);
	} else {
		check(rc == -EINVAL || rc == -EFBIG || rc == -ENOMEM);
		check(err[0] != '\0' && !strchr(err, '\n'));
	}

	/* Report rows from the body's lines: "name|state|reason". */
	struct mail_report_row rows[16];
	size_t nrows = 0;
	char *line = field[3];
	while (line && *line && nrows < 16) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *bar = strchr(line, '|');
		rows[nrows].machine = line;
		rows[nrows].state = MAIL_DONE;
		rows[nrows].reason = NULL;
		rows[nrows].bytes = (uint64_t)strlen(line) << (strlen(line) % 60);
		rows[nrows].ms = (uint64_t)strlen(line) * 123457;
		if (bar) {
			*bar = '\0';
			rows[nrows].state = (enum mail_state)((unsigned char)bar[1] % 4);
			rows[nrows].reason = bar + 1;
		}
		nrows++;
		line = next;
	}
	struct mail_report r = {.deployment = field[2],
	                        .run_id = (int64_t)size,
	                        .image = field[0],
	                        .version = field[1],
	                        .started = 1795700000,
	                        .finished = 1795700000 + (time_t)size,
	                        .error = size % 3 == 0 ? field[3] : NULL,
	                        .rows = rows,
	                        .nrows = nrows};
	char *body = mail_report_render(&r), subj[MAIL_SUBJECT_MAX + 1];
	check(body != NULL);
	for (const char *p = body; *p; p++)
		check(*p == '\n' || ((unsigned char)*p >= 0x20 && *p != 0x7f));
	mail_report_subject(&r, subj, sizeof(subj));
	static const char *const one[] = {"a@example.edu"};
	struct mail_msg rm = {.from = "Microlinux <ml@example.edu>",
	                      .to = one,
	                      .nto = 1,
	                      .subject = subj,
	                      .body = body,
	                      .date = 1795700000,
	                      .message_id = "<1.2@example.edu>"};
	rc = mail_build(&rm, &out, &len, err, sizeof(err));
	check(rc == 0);
	check_message(out, len);
	free(out);
	free(body);
	free(text);
	return 0;
}

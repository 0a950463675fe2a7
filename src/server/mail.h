/*
 * E-mail (docs/mail.md): the deployment report as plain text, RFC 5322
 * messages, and sending one through the [mail] settings with libcurl's SMTP.
 *
 * Three layers, each usable alone:
 * - mail_report_render() and mail_report_subject() turn a run's summary and
 *   per-machine rows into a subject and a plain-text body. Pure.
 * - mail_build() turns a struct mail_msg into the bytes of an RFC 5322
 *   message: CRLF line ends, Date, From, To, Subject (RFC 2047 encoded
 *   words when it is not ASCII), Message-ID, MIME 1.0 text/plain in UTF-8,
 *   7bit when the body is short-lined ASCII and quoted-printable otherwise,
 *   so that no line exceeds 998 bytes. Pure.
 * - mail_send() builds the message and hands it to the mail server named
 *   by [mail] url; dot-stuffing is curl's. It blocks for up to [mail]
 *   timeout, so the caller runs it on a worker thread, never on the HTTP
 *   or scheduler threads.
 *
 * Functions that take err write a one-line English reason there (size
 * errsz; err may be NULL) when they fail.
 */
#ifndef ML_MAIL_H
#define ML_MAIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MAIL_ERR_SIZE 512
#define MAIL_ADDR_MAX 254        /* bytes of an address */
#define MAIL_NAME_MAX 200        /* bytes of a display name */
#define MAIL_SUBJECT_MAX 900     /* bytes of a subject before encoding */
#define MAIL_BODY_MAX (4u << 20) /* bytes of a body */
#define MAIL_RCPT_MAX 100        /* recipients of one message */
#define MAIL_MSGID_SIZE 320      /* "<stamp.random@domain>" and its NUL */

/* STARTTLS policy ([mail] starttls) for smtp:// URLs; smtps:// is TLS from the start. */
enum mail_tls {
	MAIL_TLS_TRY,     /* "try": STARTTLS when the server offers it (CURLUSESSL_TRY) */
	MAIL_TLS_REQUIRE, /* "require": STARTTLS or fail (CURLUSESSL_ALL) */
	MAIL_TLS_OFF,     /* "off": never (CURLUSESSL_NONE) */
};

/* Parses "try", "require" or "off". Returns 0 or -EINVAL. */
int mail_tls_parse(const char *s, enum mail_tls *out);

/*
 * Checks an address for use in the envelope and headers: 1..MAIL_ADDR_MAX
 * bytes of printable ASCII, one '@' with something on both sides, and none
 * of the bytes that would end or change a header or an SMTP command (white
 * space, control characters, "<>()[],;:\""). This is a guard, not the
 * API's full check of what users enter. Returns 0 or -EINVAL.
 */
int mail_addr_check(const char *s, char *err, size_t errsz);

/*
 * Splits a sender, "ADDRESS" or "NAME <ADDRESS>", into its display name
 * (may be empty; UTF-8, no control characters, at most MAIL_NAME_MAX bytes)
 * and address (mail_addr_check). Returns 0 or -EINVAL.
 */
int mail_from_parse(const char *s, char name[MAIL_NAME_MAX + 1], char addr[MAIL_ADDR_MAX + 1],
                    char *err, size_t errsz);

/*
 * A message. Strings are UTF-8; the body's lines may end in LF or CRLF.
 * subject must not hold control characters; the body may hold tabs.
 */
struct mail_msg {
	const char *from;      /* "ADDRESS" or "NAME <ADDRESS>"; mail_send: NULL = [mail] from */
	const char *const *to; /* 1..MAIL_RCPT_MAX addresses, without names */
	size_t nto;
	const char *subject;
	const char *body;
	time_t date;            /* mail_send: 0 = now */
	const char *message_id; /* "<...@...>"; mail_send: NULL = mail_message_id() */
};

/*
 * Writes a new unique Message-ID for a sender's domain:
 * "<YYYYMMDDhhmmss.RANDOM@domain>" with 64 random bits. Returns 0, or
 * -EINVAL when domain is too long, -EIO when no random bytes are available.
 */
int mail_message_id(const char *domain, time_t now, char out[MAIL_MSGID_SIZE]);

/*
 * Builds the message (every field of m required; date is written in the
 * local time zone with its numeric offset). Returns 0 with a malloc'ed
 * *out of *outlen bytes (NUL-terminated too; free() it), or -EINVAL (a bad
 * address, subject or body: invalid UTF-8, control characters), -EFBIG (a
 * part too long) or -ENOMEM, with a reason.
 */
int mail_build(const struct mail_msg *m, char **out, size_t *outlen, char *err, size_t errsz);

struct srvconf;

/*
 * Checks the [mail] settings (srvconf_validate() calls it): url empty or
 * smtp:// / smtps:// with a host; from required with url and valid;
 * starttls one of the three; password_file only with username. Returns 0
 * or -EINVAL with a reason naming the key.
 */
int mail_conf_check(const struct srvconf *c, char *err, size_t errsz);

/*
 * Sends m through the [mail] settings of c. The password is read from
 * password_file at each call. The message goes to every recipient the
 * server accepts; the call fails only when it accepts none, or when the
 * conversation fails. Returns 0; -ENOTCONN when [mail] url is empty; a
 * mail_build() error; a password_file error; or -EIO with curl's reason
 * and the server's last error reply, e.g. "mail via smtp://mx:25 to a@b.c:
 * RCPT failed: 550 (last error); the server said: 550 5.1.1 <a@b.c>: no
 * such user". The URL in messages never shows a password.
 */
int mail_send(const struct srvconf *c, const struct mail_msg *m, char *err, size_t errsz);

/*
 * Sends the message of `mlserver --send-test-mail`: a short text that names
 * the settings used, and an example report with made-up machines, to the
 * nto addresses in to. Returns like mail_send().
 */
int mail_send_test(const struct srvconf *c, const char *const *to, size_t nto, char *err,
                   size_t errsz);

/* ---- The deployment report ---- */

/* What became of one machine in a run. */
enum mail_state {
	MAIL_DONE,    /* "done": received and switched to the version */
	MAIL_CURRENT, /* "already current": it had the version already */
	MAIL_MISSING, /* "missing": did not show up (asleep, off, no agent) */
	MAIL_FAILED,  /* "failed": showed up, but the transfer or check failed */
};

struct mail_report_row {
	const char *machine; /* its name */
	enum mail_state state;
	const char *reason; /* NULL or "": none; untrusted (agents send it) */
	uint64_t bytes;     /* image data it received */
	uint64_t ms;        /* how long its part took; not shown for missing machines */
};

struct mail_report {
	const char *deployment; /* its name */
	int64_t run_id;
	const char *image;   /* image name */
	const char *version; /* version label */
	time_t started;      /* 0: not started */
	time_t finished;     /* 0: not finished */
	const char *error;   /* NULL or "": the run as a whole went fine */
	uint64_t sent_bytes; /* bytes the server multicast; 0: not known */
	const struct mail_report_row *rows;
	size_t nrows;
};

/*
 * The report body: plain text with LF line ends, e.g.
 *
 *   Deployment  lab-win11 (run 42)
 *   Image       win11, version 2026-11-20
 *   Started     2026-11-26 22:00:00 +0100
 *   Finished    2026-11-26 22:41:13 +0100 (41m13s)
 *   Result      4 machines: 1 done, 1 already current, 1 missing, 1 failed
 *
 *   Machine  State                Data    Time  Reason
 *   pc-104   failed            1.2 GiB   5m01s  disk full
 *   ...
 *
 *   Total    4 machines        43.2 GiB  41m13s
 *
 * Rows are ordered failed, missing, done, already current, and by name
 * within each state; the caller's array is not changed. Times are local
 * with their UTC offset. Control characters and invalid UTF-8 in names and
 * reasons become '?', and a reason is cut to 200 bytes, so no line gets
 * near 998 bytes. Returns a malloc'ed string (free() it), or NULL when
 * memory runs out.
 */
char *mail_report_render(const struct mail_report *r);

/*
 * The report's subject, e.g. "[Microlinux] lab-win11: 1 done, 1 already
 * current, 1 missing, 1 failed" (states without machines left out), or
 * "[Microlinux] lab-win11: run 42 failed: REASON". Writes at most size
 * bytes (MAIL_SUBJECT_MAX + 1 is always enough) and returns out.
 */
char *mail_report_subject(const struct mail_report *r, char *out, size_t size);

#endif

/*
 * Logging to stderr ("ident: level: message") or syslog.
 *
 * The settings are the one piece of process-wide state in src/common: every
 * module logs, and threading a logger through every call would buy nothing.
 * log_init() writes them before threads start; the level is atomic so that
 * log_set_level() may be called at any time (e.g. on SIGHUP).
 *
 * Each line is formatted into a buffer and written with one write(2), so
 * lines from different threads never interleave (pipes and terminals keep a
 * single write under PIPE_BUF intact). Overlong messages are cut, marked
 * with "...".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

/* Lets the compiler check callers' formats through the va_list too. */
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define LOG_LINE_MAX 2048
#define LOG_IDENT_MAX 64

static char log_ident[LOG_IDENT_MAX] = "microlinux";
static _Atomic int log_level = LOG_LVL_INFO;
static int log_syslog;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *ident, enum log_level level, int use_syslog)
{
	if (ident && *ident) {
		size_t n = strnlen(ident, sizeof(log_ident) - 1);

		memcpy(log_ident, ident, n);
		log_ident[n] = '\0';
	}
	log_set_level(level);
	if (log_syslog)
		closelog();
	log_syslog = use_syslog;
	/* openlog() keeps the pointer: log_ident lives as long as the process. */
	if (use_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level level)
{
	/* Compared as int: the enum may be unsigned, and a cast -1 must not become "debug". */
	int l = (int)level;

	if (l < LOG_LVL_ERROR)
		l = LOG_LVL_ERROR;
	if (l > LOG_LVL_DEBUG)
		l = LOG_LVL_DEBUG;
	atomic_store(&log_level, l);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level);
}

int log_level_parse(const char *s, enum log_level *out)
{
	if (s == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Writes all of buf, retrying on EINTR; a logger has nowhere to report its own failure. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[LOG_LINE_MAX];
	int saved_errno = errno;
	int head, body;
	size_t len;

	if ((int)level < LOG_LVL_ERROR || (int)level > LOG_LVL_DEBUG)
		level = LOG_LVL_ERROR;
	if ((int)level > atomic_load(&log_level))
		goto out;

	if (log_syslog) {
		body = vsnprintf(line, sizeof(line), fmt, ap);
		if (body < 0)
			goto out;
		syslog(syslog_prio[level], "%s", line);
		goto out;
	}

	head = snprintf(line, sizeof(line), "%s: %s: ", log_ident, level_names[level]);
	if (head < 0 || (size_t)head >= sizeof(line))
		goto out;
	/* Leave room for the newline after the message. */
	body = vsnprintf(line + head, sizeof(line) - (size_t)head - 1, fmt, ap);
	if (body < 0)
		goto out;
	len = (size_t)head + (size_t)body;
	if (len > sizeof(line) - 2) {
		len = sizeof(line) - 2;
		memcpy(line + len - 3, "...", 3);
	}
	/* A message that already ends in a newline does not get a second one. */
	if (len == (size_t)head || line[len - 1] != '\n')
		line[len++] = '\n';
	write_all(STDERR_FILENO, line, len);
out:
	errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

char *log_escape(const void *in, size_t inlen, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = in;
	size_t o = 0;

	if (out == NULL || outsz == 0)
		return out;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char ch = s[i];

		/*
		 * A backslash is doubled so that a peer cannot forge what looks
		 * like an escape ("\x0a") in our logs. A unit that does not fit
		 * whole is dropped, with everything after it.
		 */
		if (ch == '\\') {
			if (outsz - o < 3)
				break;
			out[o++] = '\\';
			out[o++] = '\\';
		} else if (ch >= 0x20 && ch < 0x7f) {
			if (outsz - o < 2)
				break;
			out[o++] = (char)ch;
		} else {
			if (outsz - o < 5)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 0xf];
		}
	}
	out[o] = '\0';
	return out;
}

void log_seterr(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (!err || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

/* Logging: levels, to stderr or syslog. */
#ifndef ML_LOG_H
#define ML_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/*
 * Sets where messages go and the most verbose level printed. ident names the
 * program in every line (and is the syslog ident). Not thread-safe: call it
 * from main() before starting threads. Logging itself is thread-safe.
 */
void log_init(const char *ident, enum log_level level, int use_syslog);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * Writes a formatted one-line reason into a caller's error buffer (the
 * project's "char *err, size_t errsz" convention); does nothing when err is
 * NULL or errsz is 0.
 */
void log_seterr(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Copies untrusted bytes into out (size outsz, always NUL-terminated) with
 * every byte outside printable ASCII written as \xHH, so that peer data can
 * be logged safely. Returns out.
 */
char *log_escape(const void *in, size_t inlen, char *out, size_t outsz);

#endif

/*
 * INI configuration files (inih underneath). A caller describes its keys in a
 * table; conf_load() fills a struct through it and reports the first error
 * with file, line and key. Unknown sections or keys are errors.
 */
#ifndef ML_CONF_H
#define ML_CONF_H

#include <stddef.h>
#include <stdint.h>

enum conf_type { CONF_STR, CONF_UINT, CONF_SIZE, CONF_RATE, CONF_BOOL, CONF_DURATION_MS };

struct conf_key {
	const char *section; /* "" for keys before any section */
	const char *name;
	enum conf_type type;
	size_t offset; /* offsetof() of the field: char * (owned, strdup'ed), uint64_t, or int */
	uint64_t min, max; /* for numbers */
	const char *help;  /* one line, for docs and --help */
};

/*
 * Loads path into dst. Returns 0; -ENOENT when the file does not exist (so a
 * caller can treat a missing default file as empty); another negative code on
 * error, with a message such as "mlserver.conf:12: [net] port: too large"
 * written to err (size errsz).
 */
int conf_load(const char *path, const struct conf_key *keys, size_t nkeys, void *dst, char *err,
              size_t errsz);
/* Same, from a string in memory (name is used in messages). No I/O: fuzzable. */
int conf_load_string(const char *name, const char *text, const struct conf_key *keys, size_t nkeys,
                     void *dst, char *err, size_t errsz);
/* Frees the strings conf_load() stored in dst. */
void conf_free_strings(const struct conf_key *keys, size_t nkeys, void *dst);

#endif

/*
 * Validation of JSON request bodies. Each getter checks one field of an
 * object and, on bad input, sets a 400 response naming the field (req.h).
 *
 * Return values of the getters: 1 the field is present and valid (out set),
 * 0 it is absent or null and not required (out untouched), -1 it is invalid
 * (response set; the handler returns -1).
 */
#ifndef ML_JV_H
#define ML_JV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct req;

#define JV_REQ 0x1 /* the field must be present and not null */

/*
 * Checks that the body is a JSON object whose keys are all in allowed (a
 * NULL-terminated list). Returns 0 or -1 (400 "unknown field 'x'").
 */
int jv_object(struct req *r, const char *const *allowed);

/* A string of 1..maxlen bytes (0 allowed when minlen is 0), valid UTF-8, no control chars. */
int jv_str(struct req *r, const char *key, unsigned flags, size_t minlen, size_t maxlen,
           const char **out);
int jv_int(struct req *r, const char *key, unsigned flags, int64_t min, int64_t max, int64_t *out);
int jv_bool(struct req *r, const char *key, unsigned flags, bool *out);
/* One of vals (NULL-terminated). */
int jv_enum(struct req *r, const char *key, unsigned flags, const char *const *vals,
            const char **out);
/*
 * An array of at most maxn strings of 1..maxlen bytes; *out borrows the array
 * (valid as long as the body).
 */
int jv_strs(struct req *r, const char *key, unsigned flags, size_t maxn, size_t maxlen,
            json_t **out);
/* An array of at most maxn positive integer ids; *out is malloc'ed (free it), *n its length. */
int jv_ids(struct req *r, const char *key, unsigned flags, size_t maxn, int64_t **out, size_t *n);
/* A nested object (borrowed). */
int jv_obj(struct req *r, const char *key, unsigned flags, json_t **out);

/* Checks a sub-object's keys like jv_object; name is used in the message ("schedule"). */
int jv_keys(struct req *r, json_t *o, const char *name, const char *const *allowed);
/* Same getters on a sub-object: the field is reported as "name.key". */
int jv_str_in(struct req *r, json_t *o, const char *name, const char *key, unsigned flags,
              size_t minlen, size_t maxlen, const char **out);
int jv_int_in(struct req *r, json_t *o, const char *name, const char *key, unsigned flags,
              int64_t min, int64_t max, int64_t *out);
int jv_bool_in(struct req *r, json_t *o, const char *name, const char *key, unsigned flags,
               bool *out);
int jv_ids_in(struct req *r, json_t *o, const char *name, const char *key, unsigned flags,
              size_t maxn, int64_t **out, size_t *n);

#endif

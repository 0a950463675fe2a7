/* Validation of JSON request bodies (jv.h). */
#include "jv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "req.h"

int jv_keys(struct req *r, json_t *o, const char *name, const char *const *allowed)
{
	const char *k;
	json_t *v;
	if (!json_is_object(o)) {
		if (name)
			return req_bad(r, name, "%s must be a JSON object", name);
		return req_bad(r, NULL, "the request body must be a JSON object");
	}
	json_object_foreach(o, k, v)
	{
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(k, allowed[i]) == 0)
				ok = true;
		if (!ok) {
			char shown[80];
			/* Keys are untrusted: show at most a short prefix. */
			snprintf(shown, sizeof(shown), "%.60s", k);
			for (char *p = shown; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					*p = '?';
			if (name)
				return req_bad(r, shown, "unknown field '%s' in %s", shown, name);
			return req_bad(r, shown, "unknown field '%s'", shown);
		}
	}
	return 0;
}

int jv_object(struct req *r, const char *const *allowed)
{
	if (!r->body)
		return req_bad(r, NULL, "a JSON object body is required");
	return jv_keys(r, r->body, NULL, allowed);
}

/* "name.key" or "key" into buf. */
static const char *jv_field(char *buf, size_t n, const char *name, const char *key)
{
	if (name)
		snprintf(buf, n, "%s.%s", name, key);
	else
		snprintf(buf, n, "%s", key);
	return buf;
}

/* The field's value, NULL when absent or null; sets the error when required. */
static json_t *jv_get(struct req *r, json_t *o, const char *f, const char *key, unsigned flags,
                      int *rc)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
	*rc = 0;
	if (!v || json_is_null(v)) {
		if (flags & JV_REQ)
			*rc = req_bad(r, f, "%s is required", f);
		return NULL;
	}
	return v;
}

static bool jv_clean(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

int jv_str_in(struct req *r, json_t *o, const char *name, const char *key, unsigned flags,
              size_t minlen, size_t maxlen, const char **out)
{
	char f[128];
	int rc;
	jv_field(f, sizeof(f), name, key);
	json_t *v = jv_get(r, o, f, key, flags, &rc);
	if (!v)
		return rc;
	if (!json_is_string(v))
		return req_bad(r, f, "%s must be a string", f);
	size_t len = json_string_length(v);
	const char *s = json_string_value(v);
	if (len < minlen)
		return req_bad(r, f, minlen == 1 ? "%s must not be empty" : "%s is too short", f);
	if (len > maxlen)
		return req_bad(r, f, "%s is longer than %zu bytes", f, maxlen);
	if (strlen(s) != len || !jv_clean(s, len))
		return req_bad(r, f, "%s contains control characters", f);
	*out = s;
	return 1;
}

int jv_str(struct req *r, const char *key, unsigned flags, size_t minlen, size_t maxlen,
           const char **out)
{
	return jv_str_in(r, r->body, NULL, key, flags, minlen, maxlen, out);
}

int jv_int_in(struct req *r, json_t *o, const char *name, const char *key, unsigned flags,
              int64_t min, int64_t max, int64_t *out)
{
	char f[128];
	int rc;
	jv_field(f, sizeof(f), name, key);
	json_t *v = jv_get(r, o, f, key, flags, &rc);
	if (!v)
		return rc;
	if (!json_is_integer(v))
		return req_bad(r, f, "%s must be an integer", f);
	json_int_t x = json_integer_value(v);
	if (x < min || x > max)
		return req_bad(r, f, "%s must be between %lld and %lld", f, (long long)min,
		               (long long)max);
	*out = (int64_t)x;
	return 1;
}

int jv_int(struct req *r, const char *key, unsigned flags, int64_t min, int64_t max, int64_t *out)
{
	return jv_int_in(r, r->body, NULL, key, flags, min, max, out);
}

int jv_bool_in(struct req *r, json_t *o, const char *name, const char *key, unsigned flags,
               bool *out)
{
	char f[128];
	int rc;
	jv_field(f, sizeof(f), name, key);
	json_t *v = jv_get(r, o, f, key, flags, &rc);
	if (!v)
		return rc;
	if (!json_is_boolean(v))
		return req_bad(r, f, "%s must be true or false", f);
	*out = json_is_true(v);
	return 1;
}

int jv_bool(struct req *r, const char *key, unsigned flags, bool *out)
{
	return jv_bool_in(r, r->body, NULL, key, flags, out);
}

int jv_enum(struct req *r, const char *key, unsigned flags, const char *const *vals,
            const char **out)
{
	const char *s;
	int rc = jv_str(r, key, flags, 1, 64, &s);
	if (rc <= 0)
		return rc;
	for (size_t i = 0; vals[i]; i++)
		if (strcmp(s, vals[i]) == 0) {
			*out = vals[i];
			return 1;
		}
	char list[256] = "";
	size_t used = 0;
	for (size_t i = 0; vals[i] && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
		                         vals[i]);
	return req_bad(r, key, "%s must be one of: %s", key, list);
}

int jv_strs(struct req *r, const char *key, unsigned flags, size_t maxn, size_t maxlen,
            json_t **out)
{
	int rc;
	json_t *v = jv_get(r, r->body, key, key, flags, &rc);
	if (!v)
		return rc;
	if (!json_is_array(v))
		return req_bad(r, key, "%s must be an array of strings", key);
	if (json_array_size(v) > maxn)
		return req_bad(r, key, "%s has more than %zu items", key, maxn);
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e))
			return req_bad(r, key, "%s[%zu] must be a string", key, i);
		size_t len = json_string_length(e);
		const char *s = json_string_value(e);
		if (len == 0 || len > maxlen)
			return req_bad(r, key, "%s[%zu] must be 1 to %zu bytes", key, i, maxlen);
		if (strlen(s) != len || !jv_clean(s, len))
			return req_bad(r, key, "%s[%zu] contains control characters", key, i);
	}
	*out = v;
	return 1;
}

int jv_ids_in(struct req *r, json_t *o, const char *name, const char *key, unsigned flags,
              size_t maxn, int64_t **out, size_t *n)
{
	char f[128];
	int rc;
	jv_field(f, sizeof(f), name, key);
	json_t *v = jv_get(r, o, f, key, flags, &rc);
	if (!v)
		return rc;
	if (!json_is_array(v))
		return req_bad(r, f, "%s must be an array of ids", f);
	size_t cnt = json_array_size(v);
	if (cnt > maxn)
		return req_bad(r, f, "%s has more than %zu items", f, maxn);
	int64_t *ids = calloc(cnt ? cnt : 1, sizeof(*ids));
	if (!ids)
		return req_error(r, 503, "unavailable", NULL, "out of memory");
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		if (!json_is_integer(e) || json_integer_value(e) < 1) {
			free(ids);
			return req_bad(r, f, "%s[%zu] must be a positive integer id", f, i);
		}
		ids[i] = (int64_t)json_integer_value(e);
	}
	*out = ids;
	*n = cnt;
	return 1;
}

int jv_ids(struct req *r, const char *key, unsigned flags, size_t maxn, int64_t **out, size_t *n)
{
	return jv_ids_in(r, r->body, NULL, key, flags, maxn, out, n);
}

int jv_obj(struct req *r, const char *key, unsigned flags, json_t **out)
{
	int rc;
	json_t *v = jv_get(r, r->body, key, key, flags, &rc);
	if (!v)
		return rc;
	if (!json_is_object(v))
		return req_bad(r, key, "%s must be a JSON object", key);
	*out = v;
	return 1;
}

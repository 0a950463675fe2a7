/*
 * Printing objects (mlctl.h, "out"): tables and "key: value" pages for
 * people, JSON for scripts, ids for -q. The rendering functions do no I/O.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

void out_size(uint64_t n, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

const json_t *out_get(const json_t *obj, const char *path)
{
	char part[64];
	const char *dot;
	while (obj && (dot = strchr(path, '.')) != NULL) {
		size_t len = (size_t)(dot - path);
		if (len >= sizeof(part))
			return NULL;
		memcpy(part, path, len);
		part[len] = '\0';
		obj = json_object_get(obj, part);
		path = dot + 1;
	}
	return obj ? json_object_get(obj, path) : NULL;
}

char *out_value(const json_t *v, enum colfmt fmt, bool full)
{
	char buf[128];
	if (!v || json_is_null(v))
		return strdup("");
	switch (json_typeof(v)) {
	case JSON_STRING: {
		const char *s = json_string_value(v);
		/* Any API time is shown in local time, whatever the column says. */
		if (when_local(s, full, buf, sizeof(buf)) == 0)
			return strdup(buf);
		return strdup(s);
	}
	case JSON_INTEGER:
		if (fmt == C_SIZE && json_integer_value(v) >= 0) {
			out_size((uint64_t)json_integer_value(v), buf, sizeof(buf));
			return strdup(buf);
		}
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		return strdup(buf);
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%g", json_real_value(v));
		return strdup(buf);
	case JSON_TRUE:
		return strdup("yes");
	case JSON_FALSE:
		return strdup("no");
	case JSON_ARRAY: {
		struct sb s = {0};
		size_t i;
		const json_t *e;
		json_array_foreach(v, i, e)
		{
			char *t = json_is_object(e) ? json_dumps(e, JSON_COMPACT)
			                            : out_value(e, fmt, full);
			if (i)
				sb_add(&s, ", ");
			sb_add(&s, t ? t : "?");
			free(t);
		}
		return sb_take(&s);
	}
	case JSON_OBJECT:
		return json_dumps(v, JSON_COMPACT);
	case JSON_NULL:
		break;
	}
	return strdup("?");
}

char *out_table(const json_t *items, const struct col *cols)
{
	size_t ncols = 0, i;
	const json_t *it;
	char *ret = NULL;
	while (cols[ncols].title)
		ncols++;
	struct tbl *t = tbl_new(ncols);
	if (!t)
		return NULL;
	for (size_t c = 0; c < ncols; c++)
		tbl_head(t, c, cols[c].title, cols[c].fmt == C_NUM || cols[c].fmt == C_SIZE);
	json_array_foreach(items, i, it)
	{
		for (size_t c = 0; c < ncols; c++) {
			char *cell = cols[c].fmt == C_FN
			                 ? cols[c].fn(it)
			                 : out_value(out_get(it, cols[c].key), cols[c].fmt, false);
			int rc = tbl_add(t, cell);
			free(cell);
			if (rc < 0)
				goto out;
		}
	}
	ret = tbl_render(t);
out:
	tbl_free(t);
	return ret;
}

/* Sizes in bytes get their human form too. */
static bool out_is_size_key(const char *key)
{
	static const char *const keys[] = {"size",           "stored_size",  "new_bytes",
	                                   "bytes_freed",    "stored_bytes", "chunk_size",
	                                   "versions_bytes", "free_bytes",   NULL};
	for (size_t i = 0; keys[i]; i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

struct out_line {
	char *key, *val;
};

struct out_lines {
	struct out_line *l;
	size_t n, cap;
	bool oom;
};

static void out_push(struct out_lines *ls, const char *key, char *val)
{
	if (ls->oom || !val)
		goto fail;
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 32;
		struct out_line *l = realloc(ls->l, cap * sizeof(*l));
		if (!l)
			goto fail;
		ls->l = l;
		ls->cap = cap;
	}
	ls->l[ls->n].key = strdup(key);
	ls->l[ls->n].val = val;
	if (!ls->l[ls->n].key)
		goto fail;
	ls->n++;
	return;
fail:
	free(val);
	ls->oom = true;
}

/* Flattens obj into lines: nested objects as "a.b", arrays of objects as "a[0].b". */
static void out_flatten(struct out_lines *ls, json_t *obj, const char *prefix, int depth)
{
	const char *key;
	json_t *v;
	char name[256];
	json_object_foreach(obj, key, v)
	{
		snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", key);
		if (json_is_object(v) && json_object_size(v) > 0 && depth < 4) {
			out_flatten(ls, v, name, depth + 1);
		} else if (json_is_array(v) && json_array_size(v) > 0 &&
		           json_is_object(json_array_get(v, 0)) && depth < 4) {
			size_t i;
			json_t *e;
			json_array_foreach(v, i, e)
			{
				char sub[300];
				snprintf(sub, sizeof(sub), "%s[%zu]", name, i);
				if (json_is_object(e))
					out_flatten(ls, e, sub, depth + 1);
				else
					out_push(ls, sub, out_value(e, C_STR, true));
			}
		} else if (json_is_integer(v) && out_is_size_key(key) &&
		           json_integer_value(v) > 0) {
			char h[32], *t = malloc(80);
			out_size((uint64_t)json_integer_value(v), h, sizeof(h));
			if (t)
				snprintf(t, 80, "%lld (%s)", (long long)json_integer_value(v), h);
			out_push(ls, name, t);
		} else {
			out_push(ls, name, out_value(v, C_STR, true));
		}
	}
}

char *out_show(json_t *obj)
{
	struct out_lines ls = {0};
	struct sb s = {0};
	size_t w = 0;
	out_flatten(&ls, obj, "", 0);
	for (size_t i = 0; i < ls.n; i++)
		if (tbl_width(ls.l[i].key) > w)
			w = tbl_width(ls.l[i].key);
	for (size_t i = 0; i < ls.n; i++) {
		char *k = tbl_clean(ls.l[i].key, 0), *v = tbl_clean(ls.l[i].val, 0);
		if (!k || !v) {
			ls.oom = true;
		} else {
			sb_add(&s, k);
			sb_addc(&s, ':');
			for (size_t p = tbl_width(k); p < w + 1; p++)
				sb_addc(&s, ' ');
			sb_add(&s, *v ? v : "-");
			sb_addc(&s, '\n');
		}
		free(k);
		free(v);
		free(ls.l[i].key);
		free(ls.l[i].val);
	}
	free(ls.l);
	if (ls.oom) {
		sb_free(&s);
		return NULL;
	}
	return sb_take(&s);
}

int out_json(struct mlctl *ml, const json_t *doc)
{
	char *t = json_dumps(doc, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (!t)
		return ml_fail(ml, "out of memory");
	fputs(t, stdout);
	fputc('\n', stdout);
	free(t);
	return 0;
}

/* The id of an object, or of a row that stands for a machine (an agent): its machine_id. */
static void out_id(const json_t *o)
{
	const json_t *id = json_object_get(o, "id");
	if (!id)
		id = json_object_get(o, "machine_id");
	if (json_is_integer(id))
		printf("%lld\n", (long long)json_integer_value(id));
}

int out_list(struct mlctl *ml, const json_t *doc, const struct col *cols)
{
	const json_t *items = json_object_get(doc, "items");
	size_t i;
	const json_t *it;
	if (ml->json)
		return out_json(ml, doc);
	if (ml->quiet) {
		json_array_foreach(items, i, it) out_id(it);
		return 0;
	}
	char *t = out_table(items, cols);
	if (!t)
		return ml_fail(ml, "out of memory");
	fputs(t, stdout);
	free(t);
	json_int_t total = json_integer_value(json_object_get(doc, "total"));
	if ((json_int_t)json_array_size(items) < total)
		fprintf(stderr, "(%zu of %lld shown)\n", json_array_size(items), (long long)total);
	return 0;
}

int out_one(struct mlctl *ml, json_t *obj)
{
	if (ml->json)
		return out_json(ml, obj);
	if (ml->quiet) {
		out_id(obj);
		return 0;
	}
	char *t = out_show(obj);
	if (!t)
		return ml_fail(ml, "out of memory");
	fputs(t, stdout);
	free(t);
	return 0;
}

void out_progress(const char *label, double frac, const char *detail)
{
	char bar[31];
	if (frac < 0) {
		fprintf(stderr, "\r%-9s %s\033[K", label, detail ? detail : "");
		return;
	}
	if (frac > 1)
		frac = 1;
	size_t fill = (size_t)(frac * 30);
	for (size_t i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : ' ';
	bar[30] = '\0';
	fprintf(stderr, "\r%-9s %3d%% [%s] %s\033[K", label, (int)(frac * 100), bar,
	        detail ? detail : "");
}

void out_progress_end(void)
{
	fputc('\n', stderr);
}

/*
 * Generic resource commands and name resolution (mlctl.h, "res"): list,
 * show, add, set and rm work alike for every kind of object, driven by a
 * struct res and the command's option table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlctl.h"
#include "parse.h"

void res_path(char *buf, size_t size, const char *base, int64_t id, const char *tail)
{
	snprintf(buf, size, "%s/%lld%s", base, (long long)id, tail ? tail : "");
}

/* Is arg an id (all digits, >= 1)? */
static bool res_is_id(const char *arg, int64_t *id)
{
	uint64_t v;
	if (parse_uint(arg, 1, INT64_MAX, &v, NULL) < 0)
		return false;
	*id = (int64_t)v;
	return true;
}

/* Every item of the list at path, fetched once per run (borrowed from the cache). */
static int res_items(struct mlctl *ml, const char *path, json_t **items)
{
	json_t *doc;
	if (!ml->cache && !(ml->cache = json_object()))
		return ml_fail(ml, "out of memory");
	*items = json_object_get(ml->cache, path);
	if (*items)
		return 0;
	int rc = cl_list(ml, path, true, &doc);
	if (rc < 0)
		return rc;
	*items = json_object_get(doc, "items");
	json_object_set(ml->cache, path, *items);
	json_decref(doc);
	return 0;
}

int res_id(struct mlctl *ml, const struct res *r, const char *arg, int64_t *id)
{
	json_t *items, *it, *found = NULL;
	size_t i, nfound = 0;
	struct sb path = {0};
	char ids[128] = "";
	if (res_is_id(arg, id))
		return 0;
	if (!r->name_key)
		return ml_usage(ml, "'%s' is not a %s id (a %s has no name)", arg, r->noun,
		                r->noun);
	if (!*arg)
		return ml_usage(ml, "an empty %s name", r->noun);
	for (int pass = 0; pass < 2 && nfound == 0; pass++) {
		/*
		 * A list that can search is asked for the name first (cheap);
		 * its search may compare case differently than host names do,
		 * so a miss falls back to the whole list.
		 */
		if (pass == 0 && !r->search)
			continue;
		sb_add(&path, r->path);
		if (pass == 0) {
			sb_add(&path, "?q=");
			sb_add_qval(&path, arg);
		}
		char *p = sb_take(&path);
		if (!p)
			return ml_fail(ml, "out of memory");
		int rc = res_items(ml, p, &items);
		free(p);
		if (rc < 0)
			return rc;
		json_array_foreach(items, i, it)
		{
			const char *name = json_string_value(json_object_get(it, r->name_key));
			if (!name || (r->icase ? strcasecmp(name, arg) : strcmp(name, arg)) != 0)
				continue;
			found = it;
			size_t used = strlen(ids);
			snprintf(ids + used, sizeof(ids) - used, "%s%lld", nfound ? ", " : "",
			         (long long)json_integer_value(json_object_get(it, "id")));
			nfound++;
		}
	}
	if (nfound == 0)
		return ml_fail(ml, "no %s named '%s'", r->noun, arg);
	if (nfound > 1)
		return ml_fail(ml, "the %s name '%s' is ambiguous: %zu match (ids %s); use the id",
		               r->noun, arg, nfound, ids);
	if (!json_is_integer(json_object_get(found, "id")))
		return ml_fail(ml, "the server's %s has no id", r->noun);
	*id = (int64_t)json_integer_value(json_object_get(found, "id"));
	return 0;
}

int res_name(struct mlctl *ml, const struct res *r, int64_t id, const char **name)
{
	json_t *items, *it;
	size_t i;
	*name = NULL;
	if (!r->name_key)
		return 0;
	int rc = res_items(ml, r->path, &items);
	if (rc < 0)
		return rc;
	json_array_foreach(items, i, it)
	{
		if (json_integer_value(json_object_get(it, "id")) == id) {
			*name = json_string_value(json_object_get(it, r->name_key));
			return 0;
		}
	}
	return 0;
}

/* An image's name for a message, else its id ("#3"), in buf. Never fails. */
static const char *res_image_text(struct mlctl *ml, int64_t image_id, char *buf, size_t size)
{
	const char *name = NULL;
	int saved = ml->status;
	/* A message about to be printed must not fail for want of a name. */
	if (res_name(ml, &res_image, image_id, &name) < 0)
		ml->status = saved;
	if (name)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "#%lld", (long long)image_id);
	return buf;
}

int res_version_label(struct mlctl *ml, int64_t image_id, int64_t version_id, char *buf,
                      size_t size)
{
	const char *name;
	char path[96];
	json_t *items, *it;
	size_t i;
	int rc = res_name(ml, &res_image, image_id, &name);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), "/images", image_id, "/versions");
	rc = res_items(ml, path, &items);
	if (rc < 0)
		return rc;
	json_array_foreach(items, i, it)
	{
		if (json_integer_value(json_object_get(it, "id")) != version_id)
			continue;
		if (name) {
			snprintf(buf, size, "%s:v%lld", name,
			         (long long)json_integer_value(json_object_get(it, "number")));
			return 0;
		}
		break;
	}
	snprintf(buf, size, "%lld", (long long)version_id);
	return 0;
}

int res_version(struct mlctl *ml, int64_t image_id, const char *arg, int64_t *vid)
{
	char path[96];
	uint64_t num;
	if (res_is_id(arg, vid))
		return 0;
	if (strcmp(arg, "latest") == 0) {
		json_t *img;
		res_path(path, sizeof(path), "/images", image_id, NULL);
		int rc = cl_call(ml, "GET", path, NULL, &img);
		if (rc < 0)
			return rc;
		const json_t *lv = json_object_get(img, "latest_version");
		const char *name = json_string_value(json_object_get(img, "name"));
		rc = json_is_integer(lv)
		         ? 0
		         : ml_fail(ml, "image %s has no ready version yet", name ? name : "?");
		if (rc == 0)
			*vid = (int64_t)json_integer_value(lv);
		json_decref(img);
		return rc;
	}
	if ((arg[0] != 'v' && arg[0] != '#') || parse_uint(arg + 1, 1, INT64_MAX, &num, NULL) < 0)
		return ml_usage(ml, "'%s' is not a version: give its id, vN (its number) or latest",
		                arg);
	json_t *items, *it;
	size_t i;
	res_path(path, sizeof(path), "/images", image_id, "/versions");
	int rc = res_items(ml, path, &items);
	if (rc < 0)
		return rc;
	json_array_foreach(items, i, it)
	{
		if (json_integer_value(json_object_get(it, "number")) == (json_int_t)num &&
		    json_is_integer(json_object_get(it, "id"))) {
			*vid = (int64_t)json_integer_value(json_object_get(it, "id"));
			return 0;
		}
	}
	return ml_fail(ml, "image %s has no version %s",
	               res_image_text(ml, image_id, path, sizeof(path)), arg);
}

int res_version_ref(struct mlctl *ml, const char *arg, int64_t *vid)
{
	char img[256];
	int64_t image_id;
	if (res_is_id(arg, vid))
		return 0;
	const char *colon = strrchr(arg, ':');
	size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
	if (len == 0 || len >= sizeof(img))
		return ml_usage(ml, "'%s' is not a version: give its id or IMAGE[:vN|:latest]",
		                arg);
	memcpy(img, arg, len);
	img[len] = '\0';
	int rc = res_id(ml, &res_image, img, &image_id);
	if (rc < 0)
		return rc;
	return res_version(ml, image_id, colon ? colon + 1 : "latest", vid);
}

int res_print_list(struct mlctl *ml, const struct res *r, const char *path)
{
	json_t *doc;
	int rc = cl_list(ml, path, false, &doc);
	if (rc < 0)
		return rc;
	if (r->prep && !ml->json && !ml->quiet)
		rc = r->prep(ml, json_object_get(doc, "items"));
	if (rc == 0)
		rc = out_list(ml, doc, r->cols);
	json_decref(doc);
	return rc;
}

int res_cmd_list(struct mlctl *ml, struct args *a)
{
	const struct res *r = arg_cmd(a)->data;
	struct sb path = {0};
	sb_add(&path, r->path);
	int rc = arg_query(ml, a, &path);
	char *p = sb_take(&path);
	if (rc < 0 || !p) {
		free(p);
		return rc < 0 ? rc : ml_fail(ml, "out of memory");
	}
	rc = res_print_list(ml, r, p);
	free(p);
	return rc;
}

int res_cmd_show(struct mlctl *ml, struct args *a)
{
	const struct res *r = arg_cmd(a)->data;
	char path[128];
	int64_t id;
	json_t *obj;
	int rc = res_id(ml, r, arg_pos(a, 0), &id);
	if (rc < 0)
		return rc;
	res_path(path, sizeof(path), r->path, id, NULL);
	rc = cl_call(ml, "GET", path, NULL, &obj);
	if (rc < 0)
		return rc;
	rc = out_one(ml, obj);
	json_decref(obj);
	return rc;
}

int res_cmd_add(struct mlctl *ml, struct args *a)
{
	const struct res *r = arg_cmd(a)->data;
	json_t *body = json_object(), *obj = NULL;
	int rc = -ENOMEM;
	if (!body)
		return ml_fail(ml, "out of memory");
	if (r->name_key && arg_pos(a, 0)) {
		json_t *n = json_string(arg_pos(a, 0));
		if (!n) {
			rc = ml_usage(ml, "the name is not valid UTF-8");
			goto out;
		}
		json_object_set_new(body, r->name_key, n);
	}
	rc = arg_body(ml, a, body, false);
	if (rc < 0)
		goto out;
	rc = cl_call(ml, "POST", r->path, body, &obj);
	if (rc < 0)
		goto out;
	rc = obj ? out_one(ml, obj) : 0;
out:
	json_decref(body);
	json_decref(obj);
	return rc;
}

int res_cmd_set(struct mlctl *ml, struct args *a)
{
	const struct res *r = arg_cmd(a)->data;
	json_t *body = json_object(), *obj = NULL;
	char path[128];
	int64_t id;
	int rc = -ENOMEM;
	if (!body)
		return ml_fail(ml, "out of memory");
	rc = arg_body(ml, a, body, true);
	if (rc < 0)
		goto out;
	if (json_object_size(body) == 0) {
		rc = ml_usage(ml, "nothing to change: give at least one option (see --help)");
		goto out;
	}
	rc = res_id(ml, r, arg_pos(a, 0), &id);
	if (rc < 0)
		goto out;
	res_path(path, sizeof(path), r->path, id, NULL);
	rc = cl_call(ml, "PATCH", path, body, &obj);
	if (rc < 0)
		goto out;
	if (!obj)
		rc = cl_call(ml, "GET", path, NULL, &obj);
	if (rc == 0 && obj)
		rc = out_one(ml, obj);
out:
	json_decref(body);
	json_decref(obj);
	return rc;
}

int res_cmd_rm(struct mlctl *ml, struct args *a)
{
	const struct res *r = arg_cmd(a)->data;
	char path[128];
	int ret = 0;
	for (int i = 0; i < arg_npos(a); i++) {
		int64_t id;
		int rc = res_id(ml, r, arg_pos(a, i), &id);
		if (rc == 0) {
			res_path(path, sizeof(path), r->path, id, NULL);
			rc = cl_call(ml, "DELETE", path, NULL, NULL);
		}
		if (rc < 0) {
			ret = rc;
			/* Without a server there is no point in trying the rest. */
			if (rc == -EHOSTUNREACH)
				break;
			continue;
		}
		if (!ml->quiet && !ml->json)
			printf("removed %s %lld\n", r->noun, (long long)id);
	}
	return ret;
}

char *res_targets_text(const json_t *obj)
{
	static const char *const kinds[] = {"machines", "groups", "criteria", NULL};
	const json_t *t = json_object_get(obj, "targets");
	struct sb s = {0};
	for (size_t k = 0; kinds[k]; k++) {
		const json_t *arr = json_object_get(t, kinds[k]), *v;
		size_t i;
		if (json_array_size(arr) == 0)
			continue;
		sb_addf(&s, "%s%s ", s.len ? "; " : "", kinds[k]);
		json_array_foreach(arr, i, v)
		{
			sb_addf(&s, "%s%lld", i ? "," : "", (long long)json_integer_value(v));
		}
	}
	return sb_take(&s);
}

int res_prep_targets(struct mlctl *ml, json_t *items)
{
	static const struct {
		const char *key;
		const struct res *r;
	} kinds[] = {
	    {"machines", &res_machine}, {"groups", &res_group}, {"criteria", &res_criterion}};
	json_t *it;
	size_t i;
	json_array_foreach(items, i, it)
	{
		const json_t *t = json_object_get(it, "targets");
		struct sb s = {0};
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			const json_t *arr = json_object_get(t, kinds[k].key), *v;
			size_t j;
			if (json_array_size(arr) == 0)
				continue;
			sb_addf(&s, "%s%s ", s.len ? "; " : "", kinds[k].key);
			json_array_foreach(arr, j, v)
			{
				const char *name;
				int rc =
				    res_name(ml, kinds[k].r, (int64_t)json_integer_value(v), &name);
				if (rc < 0) {
					sb_free(&s);
					return rc;
				}
				if (name)
					sb_addf(&s, "%s%s", j ? "," : "", name);
				else
					sb_addf(&s, "%s#%lld", j ? "," : "",
					        (long long)json_integer_value(v));
			}
		}
		char *text = sb_take(&s);
		if (!text)
			return ml_fail(ml, "out of memory");
		json_object_set_new(it, "_targets", json_string(text));
		free(text);
	}
	return 0;
}

char *res_targets_col(const json_t *obj)
{
	const char *t = json_string_value(json_object_get(obj, "_targets"));
	return t ? strdup(t) : res_targets_text(obj);
}

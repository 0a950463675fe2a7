/*
 * Option parsing, request building from options, and usage texts
 * (mlctl.h, "args"). Every command describes its options in a table; the
 * same table drives parsing, --help and the JSON body.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"
#include "parse.h"

#define ARG_MAX_OPTS 48
#define ARG_MAX_POS 64

struct args {
	const struct cmd *cmd;
	const char *pos[ARG_MAX_POS];
	int npos;
	size_t nopts;
	const char **vals[ARG_MAX_OPTS];
	size_t nvals[ARG_MAX_OPTS];
};

const struct opt arg_global_opts[] = {
    {"json", V_FLAG, NULL, "print the server's JSON, pretty, as one document", NULL, NULL},
    {"quiet", V_FLAG, NULL, "-q: print ids only", NULL, NULL},
    {"server", V_VAL, "URL", "the server (else MLCTL_SERVER or the config file's)", NULL, NULL},
    {"config", V_VAL, "FILE",
     "the config file (else MLCTL_CONFIG or ~/.config/microlinux/mlctl.conf)", NULL, NULL},
    {"cacert", V_VAL, "FILE", "check the certificate against this CA or site certificate", NULL,
     NULL},
    {"fingerprint", V_VAL, "FP", "trust the certificate with this SHA-256 fingerprint", NULL, NULL},
    {"insecure", V_FLAG, NULL, "check no certificate (MLCTL_INSECURE=1)", NULL, NULL},
    {"verbose", V_FLAG, NULL, "-v: show each request on stderr", NULL, NULL},
    {"help", V_FLAG, NULL, "-h: show the usage", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt arg_list_opts[] = {
    {"limit", V_VAL, "N", "at most N items (default: all of them, page by page)", NULL, NULL},
    {"offset", V_VAL, "N", "skip the first N items", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static bool arg_takes_value(enum vk vk)
{
	return vk != V_FLAG && vk != V_TRUE && vk != V_FALSE;
}

static bool arg_repeats(enum vk vk)
{
	return vk == V_LIST || vk == V_STRS || vk == V_IDS || vk == V_RAW;
}

static const struct opt *arg_find(const struct opt *opts, const char *name, size_t len, size_t *idx)
{
	for (size_t i = 0; opts && opts[i].name; i++) {
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) {
			if (idx)
				*idx = i;
			return &opts[i];
		}
	}
	return NULL;
}

/* Stores a global option in ml. */
static int arg_global(struct mlctl *ml, const char *name, const char *val, bool *help)
{
	if (strcmp(name, "json") == 0)
		ml->json = true;
	else if (strcmp(name, "quiet") == 0)
		ml->quiet = true;
	else if (strcmp(name, "server") == 0)
		ml->opt_server = val;
	else if (strcmp(name, "config") == 0)
		ml->opt_config = val;
	else if (strcmp(name, "cacert") == 0)
		ml->opt_cacert = val;
	else if (strcmp(name, "fingerprint") == 0)
		ml->opt_fingerprint = val;
	else if (strcmp(name, "insecure") == 0)
		ml->opt_insecure = true;
	else if (strcmp(name, "verbose") == 0)
		ml->verbose = true;
	else if (strcmp(name, "help") == 0)
		*help = true;
	return 0;
}

static int arg_list_opt(struct mlctl *ml, const char *name, const char *val)
{
	uint64_t v;
	const char *why;
	bool lim = strcmp(name, "limit") == 0;
	if (parse_uint(val, lim ? 1 : 0, 1000000000, &v, &why) < 0)
		return ml_usage(ml, "--%s %s: %s", name, val, why);
	if (lim) {
		ml->has_limit = true;
		ml->limit = v;
	} else {
		ml->offset = v;
	}
	return 0;
}

int arg_parse_globals(struct mlctl *ml, int argc, char **argv, bool *help)
{
	const char *s = argv[0], *name, *eq = NULL, *val = NULL;
	size_t len;
	int used = 1;
	if (argc < 1 || s[0] != '-' || s[1] == '\0' || strcmp(s, "--") == 0)
		return 0;
	if (strcmp(s, "-q") == 0)
		name = "quiet";
	else if (strcmp(s, "-h") == 0)
		name = "help";
	else if (strcmp(s, "-v") == 0)
		name = "verbose";
	else if (s[1] == '-')
		name = s + 2;
	else
		return ml_usage(ml, "unknown option %s", s);
	eq = strchr(name, '=');
	len = eq ? (size_t)(eq - name) : strlen(name);
	const struct opt *g = arg_find(arg_global_opts, name, len, NULL);
	if (!g)
		return ml_usage(ml,
		                "unknown option --%.*s (before the command only common options "
		                "are allowed)",
		                (int)len, name);
	if (arg_takes_value(g->vk)) {
		if (eq) {
			val = eq + 1;
		} else if (argc > 1) {
			val = argv[1];
			used = 2;
		} else {
			return ml_usage(ml, "--%s needs a value (%s)", g->name, g->meta);
		}
	} else if (eq) {
		return ml_usage(ml, "--%s takes no value", g->name);
	}
	arg_global(ml, g->name, val, help);
	return used;
}

void arg_free(struct args *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < ARG_MAX_OPTS; i++)
		free(a->vals[i]);
	free(a);
}

static int arg_store(struct mlctl *ml, struct args *a, size_t idx, const struct opt *o,
                     const char *val)
{
	if (!arg_repeats(o->vk) && a->nvals[idx] > 0 &&
	    !(o->vk == V_FLAG || o->vk == V_TRUE || o->vk == V_FALSE))
		return ml_usage(ml, "--%s given twice", o->name);
	const char **v = realloc(a->vals[idx], (a->nvals[idx] + 1) * sizeof(*v));
	if (!v)
		return ml_fail(ml, "out of memory");
	a->vals[idx] = v;
	v[a->nvals[idx]++] = val ? val : "";
	return 0;
}

struct args *arg_parse(struct mlctl *ml, const struct noun *n, const struct cmd *c, int argc,
                       char **argv, bool *help)
{
	struct args *a = calloc(1, sizeof(*a));
	bool opts_done = false;
	(void)n;
	*help = false;
	if (!a) {
		ml_fail(ml, "out of memory");
		return NULL;
	}
	a->cmd = c;
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];
		if (opts_done || s[0] != '-' || s[1] == '\0') {
			if (a->npos == ARG_MAX_POS) {
				ml_usage(ml, "too many arguments");
				goto fail;
			}
			a->pos[a->npos++] = s;
			continue;
		}
		if (strcmp(s, "--") == 0) {
			opts_done = true;
			continue;
		}
		const char *name, *eq = NULL;
		size_t len;
		if (s[1] != '-') {
			/* The short forms: -q, -h, -v. */
			static const char *const shorts[][2] = {
			    {"-q", "quiet"}, {"-h", "help"}, {"-v", "verbose"}};
			name = NULL;
			for (size_t k = 0; k < sizeof(shorts) / sizeof(shorts[0]); k++)
				if (strcmp(s, shorts[k][0]) == 0)
					name = shorts[k][1];
			if (!name) {
				ml_usage(ml, "unknown option %s", s);
				goto fail;
			}
			len = strlen(name);
		} else {
			name = s + 2;
			eq = strchr(name, '=');
			len = eq ? (size_t)(eq - name) : strlen(name);
		}
		size_t idx;
		const struct opt *o = arg_find(c ? c->opts : NULL, name, len, &idx);
		const struct opt *g = o ? NULL : arg_find(arg_global_opts, name, len, NULL);
		const struct opt *l = o || g || !c || !(c->flags & CMD_LIST)
		                          ? NULL
		                          : arg_find(arg_list_opts, name, len, NULL);
		const struct opt *any = o ? o : g ? g : l;
		if (!any) {
			ml_usage(ml, "unknown option --%.*s", (int)len, name);
			goto fail;
		}
		const char *val = NULL;
		if (arg_takes_value(any->vk)) {
			if (eq) {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				ml_usage(ml, "--%s needs a value (%s)", any->name,
				         any->meta ? any->meta : "VALUE");
				goto fail;
			}
		} else if (eq) {
			ml_usage(ml, "--%s takes no value", any->name);
			goto fail;
		}
		int rc;
		if (o) {
			if (idx >= ARG_MAX_OPTS) {
				ml_usage(ml, "internal: too many options");
				goto fail;
			}
			rc = arg_store(ml, a, idx, o, val);
		} else if (g) {
			rc = arg_global(ml, g->name, val, help);
		} else {
			rc = arg_list_opt(ml, l->name, val);
		}
		if (rc < 0)
			goto fail;
	}
	if (*help)
		goto fail;
	if (c && a->npos < c->min_pos) {
		ml_usage(ml, "missing %s", c->usage ? c->usage : "arguments");
		goto fail;
	}
	if (c && c->max_pos >= 0 && a->npos > c->max_pos) {
		ml_usage(ml, "unexpected argument '%s'", a->pos[c->max_pos]);
		goto fail;
	}
	return a;
fail:
	arg_free(a);
	return NULL;
}

const struct cmd *arg_cmd(const struct args *a)
{
	return a->cmd;
}

const char *arg_pos(const struct args *a, int i)
{
	return i >= 0 && i < a->npos ? a->pos[i] : NULL;
}

int arg_npos(const struct args *a)
{
	return a->npos;
}

const char *const *arg_vals(const struct args *a, const char *name, size_t *n)
{
	size_t idx;
	*n = 0;
	if (!arg_find(a->cmd->opts, name, strlen(name), &idx) || idx >= ARG_MAX_OPTS)
		return NULL;
	*n = a->nvals[idx];
	return *n ? a->vals[idx] : NULL;
}

const char *arg_val(const struct args *a, const char *name)
{
	size_t n;
	const char *const *v = arg_vals(a, name, &n);
	return n ? v[n - 1] : NULL;
}

bool arg_has(const struct args *a, const char *name)
{
	size_t n;
	arg_vals(a, name, &n);
	return n > 0;
}

/* Sets obj[path] = v (stealing v), creating the objects of a dotted path. */
static int arg_set_path(json_t *obj, const char *path, json_t *v)
{
	const char *dot;
	char part[64];
	while ((dot = strchr(path, '.')) != NULL) {
		size_t len = (size_t)(dot - path);
		if (len == 0 || len >= sizeof(part)) {
			json_decref(v);
			return -EINVAL;
		}
		memcpy(part, path, len);
		part[len] = '\0';
		json_t *sub = json_object_get(obj, part);
		if (!json_is_object(sub)) {
			sub = json_object();
			if (!sub || json_object_set_new(obj, part, sub) < 0) {
				json_decref(v);
				return -ENOMEM;
			}
		}
		obj = sub;
		path = dot + 1;
	}
	if (!*path) {
		json_decref(v);
		return -EINVAL;
	}
	return json_object_set_new(obj, path, v) < 0 ? -ENOMEM : 0;
}

static json_t *arg_string(struct mlctl *ml, const struct opt *o, const char *val)
{
	json_t *s = json_string(val);
	if (!s)
		ml_usage(ml, "--%s: not valid UTF-8", o->name);
	return s;
}

/* The JSON value of one option's values; NULL after an error (printed). */
static json_t *arg_value(struct mlctl *ml, const struct opt *o, const char *const *v, size_t n,
                         bool patch)
{
	uint64_t u;
	int64_t id;
	const char *why;
	char buf[64];
	const char *last = v[n - 1];
	switch (o->vk) {
	case V_STR:
		if (patch && !*last)
			return json_null();
		return arg_string(ml, o, last);
	case V_INT:
		if (patch && !*last)
			return json_null();
		if (parse_uint(last, 0, INT64_MAX, &u, &why) < 0) {
			ml_usage(ml, "--%s %s: %s", o->name, last, why);
			return NULL;
		}
		return json_integer((json_int_t)u);
	case V_TIME:
		if (when_input(last, time(NULL), buf, sizeof(buf), &why) < 0) {
			ml_usage(ml, "--%s %s: %s", o->name, last, why);
			return NULL;
		}
		return json_string(buf);
	case V_TRUE:
		return json_true();
	case V_FALSE:
		return json_false();
	case V_ID:
		if (patch && !*last)
			return json_null();
		if (res_id(ml, o->ref, last, &id) < 0)
			return NULL;
		return json_integer((json_int_t)id);
	case V_STRS: {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < n; i++) {
			if (!*v[i])
				continue;
			json_t *s = arg_string(ml, o, v[i]);
			if (!s || json_array_append_new(arr, s) < 0) {
				json_decref(arr);
				return NULL;
			}
		}
		return arr;
	}
	case V_IDS: {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < n; i++) {
			/* Names never contain commas, so "a,b,3" is three. */
			char *copy = strdup(v[i]), *save = NULL;
			if (!copy) {
				json_decref(arr);
				return NULL;
			}
			for (char *p = copy; p; p = save) {
				save = strchr(p, ',');
				if (save)
					*save++ = '\0';
				if (!*p)
					continue;
				if (res_id(ml, o->ref, p, &id) < 0 ||
				    json_array_append_new(arr, json_integer((json_int_t)id)) < 0) {
					free(copy);
					json_decref(arr);
					return NULL;
				}
			}
			free(copy);
		}
		return arr;
	}
	default:
		ml_usage(ml, "internal: --%s has no JSON form", o->name);
		return NULL;
	}
}

/* --field KEY=VALUE: VALUE as JSON when it parses, else as a string. */
static int arg_raw(struct mlctl *ml, const struct opt *o, const char *kv, json_t *body)
{
	const char *eq = strchr(kv, '=');
	char key[128];
	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key))
		return ml_usage(ml, "--%s %s: expected KEY=VALUE", o->name, kv);
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
	if (!v)
		v = json_string(eq + 1);
	if (!v)
		return ml_usage(ml, "--%s %s: not valid UTF-8", o->name, kv);
	if (arg_set_path(body, key, v) < 0)
		return ml_usage(ml, "--%s %s: bad key", o->name, kv);
	return 0;
}

int arg_body(struct mlctl *ml, const struct args *a, json_t *body, bool patch)
{
	const struct opt *opts = a->cmd->opts;
	for (size_t i = 0; opts && opts[i].name && i < ARG_MAX_OPTS; i++) {
		const struct opt *o = &opts[i];
		if (a->nvals[i] == 0)
			continue;
		if (o->vk == V_RAW) {
			for (size_t k = 0; k < a->nvals[i]; k++)
				if (arg_raw(ml, o, a->vals[i][k], body) < 0)
					return -EINVAL;
			continue;
		}
		if (!o->key || o->key[0] == '?')
			continue;
		json_t *v = arg_value(ml, o, a->vals[i], a->nvals[i], patch);
		if (!v)
			return -EINVAL;
		if (arg_set_path(body, o->key, v) < 0)
			return ml_fail(ml, "out of memory");
	}
	return 0;
}

int arg_query(struct mlctl *ml, const struct args *a, struct sb *path)
{
	const struct opt *opts = a->cmd->opts;
	for (size_t i = 0; opts && opts[i].name && i < ARG_MAX_OPTS; i++) {
		const struct opt *o = &opts[i];
		if (a->nvals[i] == 0 || !o->key || o->key[0] != '?')
			continue;
		const char *val = a->vals[i][a->nvals[i] - 1];
		char idbuf[24];
		if (o->vk == V_FLAG || o->vk == V_TRUE) {
			val = "1";
		} else if (o->vk == V_ID) {
			int64_t id;
			if (res_id(ml, o->ref, val, &id) < 0)
				return -EINVAL;
			snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
			val = idbuf;
		}
		sb_addc(path, strchr(path->buf ? path->buf : "", '?') ? '&' : '?');
		sb_add(path, o->key + 1);
		sb_addc(path, '=');
		sb_add_qval(path, val);
	}
	return 0;
}

/* ------------------------------------------------------------ usage */

static void arg_usage_opts(FILE *f, const struct opt *opts)
{
	for (size_t i = 0; opts && opts[i].name; i++) {
		const struct opt *o = &opts[i];
		char left[64];
		if (arg_takes_value(o->vk))
			snprintf(left, sizeof(left), "--%s %s", o->name,
			         o->meta ? o->meta : "VALUE");
		else
			snprintf(left, sizeof(left), "--%s", o->name);
		fprintf(f, "  %-24s %s%s\n", left, o->help ? o->help : "",
		        arg_repeats(o->vk) ? " (repeatable)" : "");
	}
}

void arg_usage_line(FILE *f, const struct noun *n, const struct cmd *c)
{
	fprintf(f, "mlctl %s%s%s%s%s", n->name, c->verb ? " " : "", c->verb ? c->verb : "",
	        c->usage ? " " : "", c->usage ? c->usage : "");
	if (c->opts && c->opts[0].name)
		fprintf(f, " [OPTIONS]");
}

void arg_usage_cmd(FILE *f, const struct noun *n, const struct cmd *c)
{
	fprintf(f, "usage: ");
	arg_usage_line(f, n, c);
	fprintf(f, "\n\n%s.\n", c->summary);
	if (c->help)
		fprintf(f, "\n%s\n", c->help);
	if ((c->opts && c->opts[0].name) || (c->flags & CMD_LIST)) {
		fprintf(f, "\nOptions:\n");
		arg_usage_opts(f, c->opts);
		if (c->flags & CMD_LIST)
			arg_usage_opts(f, arg_list_opts);
	}
	fprintf(f, "\nCommon options: --json, -q, -v, --server URL, --config FILE, --cacert FILE,\n"
	           "--fingerprint FP, --insecure (mlctl --help says more).\n");
	if (c->example)
		fprintf(f, "\nExample:\n%s\n", c->example);
}

void arg_usage_noun(FILE *f, const struct noun *n)
{
	if (!n->cmds[0].verb) {
		arg_usage_cmd(f, n, &n->cmds[0]);
		return;
	}
	fprintf(f, "usage: mlctl %s VERB [ARGS] [OPTIONS]\n\n%s\n\nVerbs:\n", n->name, n->summary);
	for (const struct cmd *c = n->cmds; c->run; c++) {
		char left[80];
		snprintf(left, sizeof(left), "%s%s%s", c->verb, c->usage ? " " : "",
		         c->usage ? c->usage : "");
		fprintf(f, "  %-30s %s\n", left, c->summary);
	}
	fprintf(f, "\n'mlctl %s VERB --help' shows a verb's options and an example.\n", n->name);
}

void arg_usage_main(FILE *f)
{
	fprintf(f, "usage: mlctl [OPTIONS] NOUN [VERB] [ARGS] [OPTIONS]\n"
	           "\n"
	           "The command-line client of mlserver's HTTP API (docs/mlctl.md).\n"
	           "\n"
	           "Commands:\n");
	for (size_t i = 0; cmd_nouns[i]; i++) {
		const struct noun *n = cmd_nouns[i];
		if (!n->cmds[0].verb) {
			char left[64];
			snprintf(left, sizeof(left), "%s%s%s", n->name, n->cmds[0].usage ? " " : "",
			         n->cmds[0].usage ? n->cmds[0].usage : "");
			fprintf(f, "  %-20s %s\n", left, n->cmds[0].summary);
			continue;
		}
		struct sb verbs = {0};
		for (const struct cmd *c = n->cmds; c->run; c++) {
			sb_add(&verbs, c == n->cmds ? "" : " ");
			sb_add(&verbs, c->verb);
		}
		char *v = sb_take(&verbs);
		fprintf(f, "  %-20s %s\n  %-20s   %s\n", n->name, n->summary, "", v ? v : "");
		free(v);
	}
	fprintf(f, "\nOptions (before the noun or after the verb):\n");
	arg_usage_opts(f, arg_global_opts);
	fprintf(f,
	        "\n"
	        "Settings: the server URL and token come from MLCTL_SERVER and MLCTL_TOKEN,\n"
	        "else from the config file that 'mlctl login' writes (MLCTL_CONFIG names\n"
	        "another). MLCTL_INSECURE=1 checks no certificate; MLCTL_FINGERPRINT and\n"
	        "MLCTL_CACERT work like --fingerprint and --cacert.\n"
	        "\n"
	        "Ids: where a command takes an id it also takes a name (a number is an id).\n"
	        "Times are shown in local time and typed as 'YYYY-MM-DD HH:MM' (local),\n"
	        "ISO 8601 with a zone, or +30m / +2h / +1d.\n"
	        "\n"
	        "Exit status: 0 success, 1 the server refused or failed, 2 bad usage,\n"
	        "3 cannot reach the server (network, TLS or certificate).\n"
	        "\n"
	        "'mlctl NOUN --help' lists a noun's verbs; 'mlctl NOUN VERB --help' shows one.\n");
}

/*
 * imgstore-tool: a test front-end to the agent's image store
 * (src/agent/imgstore.h), so that shell tests can drive it around a real
 * `mlcast receive`. Not installed: mlagent is the store's real user.
 *
 *   imgstore-tool [--reserve BYTES] [--no-reflink] DIR COMMAND ARGS...
 *
 * Every command prints one JSON object on stdout: {"ok":true,...}, or
 * {"ok":false,"errno":"ENOSPC","error":"..."} with exit status 1. Bad usage
 * exits 2. A reception outlives the process: prepare leaves it in
 * incoming/, and commit and abort find it again by preparing the same
 * version (a whole image found that way is re-hashed by commit).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imgstore.h"
#include "log.h"
#include "parse.h"

struct ctx {
	struct imgstore *s;
	struct imgstore_prep_opts po;
	char err[1024];
};

struct cmd {
	const char *name, *args;
	int nargs; /* after the command name */
	int (*fn)(struct ctx *c, char **argv);
};

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static const char *errno_name(int e)
{
	static const struct {
		int e;
		const char *n;
	} t[] = {{ENOSPC, "ENOSPC"}, {EEXIST, "EEXIST"},   {ENOENT, "ENOENT"}, {EBUSY, "EBUSY"},
	         {EINVAL, "EINVAL"}, {EBADMSG, "EBADMSG"}, {EIO, "EIO"},       {ENOMEM, "ENOMEM"}};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].e == e)
			return t[i].n;
	return "E?";
}

static int fail(struct ctx *c, int rc)
{
	printf("{\"ok\":false,\"errno\":\"%s\",\"error\":", errno_name(-rc));
	json_str(c->err[0] ? c->err : strerror(-rc));
	printf("}\n");
	return 1;
}

static int num(const char *s, const char *what, uint64_t *out)
{
	const char *why = "";

	if (parse_uint(s, 0, UINT64_MAX, out, &why) < 0) {
		fprintf(stderr, "imgstore-tool: %s %s: %s\n", what, s, why);
		return -EINVAL;
	}
	return 0;
}

/* IMAGE VERSION SHA SIZE -> an open reception (or the printed failure). */
static int do_prepare(struct ctx *c, char **argv, struct imgstore_rx **rx)
{
	uint64_t image, version, size;
	int rc;

	if (num(argv[0], "image", &image) < 0 || num(argv[1], "version", &version) < 0 ||
	    num(argv[3], "size", &size) < 0)
		return -EINVAL;
	rc = imgstore_prepare(c->s, image, version, argv[2], size, &c->po, rx, c->err,
	                      sizeof(c->err));
	return rc;
}

static int cmd_prepare(struct ctx *c, char **argv)
{
	struct imgstore_rx_info in;
	struct imgstore_rx *rx;
	int rc = do_prepare(c, argv, &rx);

	if (rc < 0)
		return fail(c, rc);
	imgstore_rx_info(rx, &in);
	printf("{\"ok\":true,\"output\":");
	json_str(in.output);
	printf(",\"seed\":");
	if (in.seed)
		json_str(in.seed);
	else
		printf("null");
	printf(",\"dir\":");
	json_str(in.dir);
	printf(",\"seed_version\":%" PRIu64 ",\"reflink\":%s,\"resumed\":%s,\"complete\":%s,"
	       "\"need\":%" PRIu64 ",\"avail\":%" PRIu64 "}\n",
	       in.seed_version, in.reflink ? "true" : "false", in.resumed ? "true" : "false",
	       in.complete ? "true" : "false", in.need, in.avail);
	imgstore_rx_free(rx);
	return 0;
}

static int cmd_commit(struct ctx *c, char **argv)
{
	struct imgstore_rx *rx;
	int rc = do_prepare(c, argv, &rx);

	if (rc < 0)
		return fail(c, rc);
	rc = imgstore_commit(rx, IMGSTORE_VERIFY, c->err, sizeof(c->err));
	if (rc < 0)
		return fail(c, rc);
	printf("{\"ok\":true}\n");
	return 0;
}

static int cmd_abort(struct ctx *c, char **argv)
{
	struct imgstore_rx *rx;
	int rc = do_prepare(c, argv, &rx);

	if (rc < 0)
		return fail(c, rc);
	if ((rc = imgstore_abort(rx)) < 0)
		return fail(c, rc);
	printf("{\"ok\":true}\n");
	return 0;
}

static int cmd_rollback(struct ctx *c, char **argv)
{
	uint64_t image;
	int rc;

	if (num(argv[0], "image", &image) < 0)
		return 2;
	if ((rc = imgstore_rollback(c->s, image, c->err, sizeof(c->err))) < 0)
		return fail(c, rc);
	printf("{\"ok\":true}\n");
	return 0;
}

static int cmd_activate(struct ctx *c, char **argv)
{
	uint64_t image, version;
	int rc;

	if (num(argv[0], "image", &image) < 0 || num(argv[1], "version", &version) < 0)
		return 2;
	if ((rc = imgstore_activate(c->s, image, version, c->err, sizeof(c->err))) < 0)
		return fail(c, rc);
	printf("{\"ok\":true}\n");
	return 0;
}

static int cmd_active(struct ctx *c, char **argv)
{
	char path[4096];
	uint64_t image, version;
	int rc;

	if (num(argv[0], "image", &image) < 0)
		return 2;
	if ((rc = imgstore_active(c->s, image, &version, path, sizeof(path))) < 0)
		return fail(c, rc);
	printf("{\"ok\":true,\"version\":%" PRIu64 ",\"path\":", version);
	json_str(path);
	printf("}\n");
	return 0;
}

static int cmd_verify(struct ctx *c, char **argv)
{
	uint64_t image, version;
	int rc;

	if (num(argv[0], "image", &image) < 0 || num(argv[1], "version", &version) < 0)
		return 2;
	if ((rc = imgstore_verify(c->s, image, version, c->err, sizeof(c->err))) < 0)
		return fail(c, rc);
	printf("{\"ok\":true}\n");
	return 0;
}

static int cmd_list(struct ctx *c, char **argv)
{
	struct imgstore_list l;
	int rc;

	(void)argv;
	if ((rc = imgstore_list(c->s, &l, c->err, sizeof(c->err))) < 0)
		return fail(c, rc);
	printf("{\"ok\":true,\"reflink\":%s,\"fs_size\":%" PRIu64 ",\"fs_avail\":%" PRIu64
	       ",\"images\":[",
	       l.reflink ? "true" : "false", l.fs_size, l.fs_avail);
	for (size_t i = 0; i < l.nimages; i++) {
		const struct imgstore_image *im = &l.images[i];

		printf("%s{\"id\":%" PRIu64 ",\"active\":%" PRIu64 ",\"previous\":%" PRIu64
		       ",\"versions\":[",
		       i ? "," : "", im->id, im->active, im->previous);
		for (size_t j = 0; j < im->nversions; j++) {
			const struct imgstore_version *v = &im->versions[j];

			printf("%s{\"id\":%" PRIu64 ",\"state\":\"%s\",\"size\":%" PRIu64
			       ",\"allocated\":%" PRIu64
			       ",\"sha256\":\"%s\",\"received_at\":%" PRId64 "}",
			       j ? "," : "", v->id, imgstore_vstate_str(v->state), v->size,
			       v->allocated, v->sha256, v->received_at);
		}
		printf("]}");
	}
	printf("]}\n");
	imgstore_list_free(&l);
	return 0;
}

static const struct cmd cmds[] = {
    {"prepare", "IMAGE VERSION SHA256 SIZE", 4, cmd_prepare},
    {"commit", "IMAGE VERSION SHA256 SIZE", 4, cmd_commit},
    {"abort", "IMAGE VERSION SHA256 SIZE", 4, cmd_abort},
    {"rollback", "IMAGE", 1, cmd_rollback},
    {"activate", "IMAGE VERSION", 2, cmd_activate},
    {"active", "IMAGE", 1, cmd_active},
    {"verify", "IMAGE VERSION", 2, cmd_verify},
    {"list", "", 0, cmd_list},
};

static int usage(void)
{
	fprintf(stderr, "usage: imgstore-tool [--reserve BYTES] [--no-reflink] [--nonzero BYTES] "
	                "[--changed BYTES] DIR COMMAND ARGS\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(stderr, "  %s %s\n", cmds[i].name, cmds[i].args);
	return 2;
}

int main(int argc, char **argv)
{
	struct imgstore_opts o = {0};
	struct ctx c = {0};
	const struct cmd *cmd = NULL;
	int i = 1, rc;

	log_init("imgstore-tool", LOG_LVL_WARN, 0);
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--no-reflink") == 0)
			o.no_reflink = true;
		else if (strcmp(argv[i], "--reserve") == 0 &&
		         num(argv[++i], "reserve", &o.reserve) == 0)
			continue;
		else if (strcmp(argv[i], "--nonzero") == 0 &&
		         num(argv[++i], "nonzero", &c.po.nonzero_bytes) == 0)
			continue;
		else if (strcmp(argv[i], "--changed") == 0 &&
		         num(argv[++i], "changed", &c.po.changed_bytes) == 0)
			continue;
		else
			return usage();
	}
	if (argc - i < 2)
		return usage();
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
		if (strcmp(argv[i + 1], cmds[k].name) == 0)
			cmd = &cmds[k];
	if (!cmd || argc - i - 2 != cmd->nargs)
		return usage();
	if ((rc = imgstore_open(argv[i], &o, &c.s, c.err, sizeof(c.err))) < 0)
		return fail(&c, rc);
	rc = cmd->fn(&c, argv + i + 2);
	imgstore_free(c.s);
	return rc;
}

/*
 * mlctl: the command-line client of mlserver's HTTP API (docs/mlctl.md).
 * main() builds the root context, finds the command in the table and runs
 * it; the exit status says how it went.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlctl.h"

static const struct noun *main_noun(const char *name)
{
	for (size_t i = 0; cmd_nouns[i]; i++)
		if (strcmp(cmd_nouns[i]->name, name) == 0)
			return cmd_nouns[i];
	return NULL;
}

static const struct cmd *main_verb(const struct noun *n, const char *verb)
{
	for (const struct cmd *c = n->cmds; c->run; c++)
		if (strcmp(c->verb, verb) == 0)
			return c;
	return NULL;
}

static bool main_is_help(const char *s)
{
	return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "help") == 0;
}

/* Runs one command line; returns the exit status. */
static int main_run(struct mlctl *ml, int argc, char **argv)
{
	bool help = false;
	int i = 1;
	/* Global options before the noun. */
	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		if (strcmp(argv[i], "--version") == 0) {
			printf("mlctl 0.1.0\n");
			return 0;
		}
		int n = arg_parse_globals(ml, argc - i, argv + i, &help);
		if (n < 0)
			return ml->status;
		if (n == 0)
			break;
		i += n;
	}
	if (i >= argc || main_is_help(argv[i])) {
		arg_usage_main(help || i < argc ? stdout : stderr);
		return help || i < argc ? 0 : ML_EXIT_USAGE;
	}
	const struct noun *n = main_noun(argv[i]);
	if (!n) {
		ml_usage(ml, "unknown command '%s' (mlctl --help lists them)", argv[i]);
		return ML_EXIT_USAGE;
	}
	i++;
	const struct cmd *c = &n->cmds[0];
	snprintf(ml->cmdname, sizeof(ml->cmdname), "%s", n->name);
	if (c->verb) {
		if (i >= argc || main_is_help(argv[i]) || help) {
			bool asked = help || i < argc;
			arg_usage_noun(asked ? stdout : stderr, n);
			return asked ? 0 : ML_EXIT_USAGE;
		}
		c = main_verb(n, argv[i]);
		if (!c) {
			ml_usage(ml, "unknown verb '%s' (mlctl %s --help lists them)", argv[i],
			         n->name);
			return ML_EXIT_USAGE;
		}
		snprintf(ml->cmdname, sizeof(ml->cmdname), "%s %s", n->name, c->verb);
		i++;
	}
	struct args *a = arg_parse(ml, n, c, argc - i, argv + i, &help);
	if (help || (!a && !ml->status)) {
		arg_usage_cmd(stdout, n, c);
		arg_free(a);
		return 0;
	}
	if (!a) {
		fprintf(stderr, "usage: ");
		arg_usage_line(stderr, n, c);
		fprintf(stderr, " (--help says more)\n");
		return ml->status;
	}
	int rc = ml_settle(ml);
	if (rc == 0)
		rc = c->run(ml, a);
	arg_free(a);
	if (rc < 0 && ml->status == 0)
		ml->status = ML_EXIT_FAIL;
	return ml->status;
}

int main(int argc, char **argv)
{
	struct mlctl ml = {0};
	ml.tty_in = isatty(STDIN_FILENO);
	ml.tty_out = isatty(STDOUT_FILENO);
	ml.tty_err = isatty(STDERR_FILENO);
	int status = main_run(&ml, argc, argv);
	cl_cleanup(&ml);
	ctlconf_clear(&ml.conf);
	free(ml.server);
	json_decref(ml.cache);
	if (fflush(stdout) != 0 && status == 0) {
		perror("mlctl: stdout");
		status = ML_EXIT_FAIL;
	}
	return status;
}

/* mlcast: dispatches to one subcommand per file. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
    {"prepare", cmd_prepare, "cut a raw or qcow2 disk image into a prepared store"},
    {"send", cmd_send, "multicast a prepared store to receivers"},
    {"receive", cmd_receive, "receive an image from a sender and verify it"},
    {"unpack", cmd_unpack, "rebuild the raw image from a prepared store"},
    {"info", cmd_info, "show a prepared store's manifest"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mlcast COMMAND [OPTIONS] ...\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\n'mlcast COMMAND --help' describes a command's options.\n");
}

int cli_usage_error(const char *sub, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mlcast %s: ", sub);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'mlcast %s --help'.\n", sub);
	return 2;
}

int main(int argc, char **argv)
{
	log_init("mlcast", LOG_LVL_INFO, 0);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("mlcast 0.1.0\n");
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "mlcast: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}

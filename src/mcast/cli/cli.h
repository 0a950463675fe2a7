/* The mlcast command-line tool: one file per subcommand. */
#ifndef MC_CLI_H
#define MC_CLI_H

/*
 * Each subcommand gets argv with argv[0] = its own name ("prepare") and
 * returns the process exit status: 0 success, 1 failure of the work, 2 bad
 * usage (with a one-line message and a hint to --help on stderr).
 */
int cmd_prepare(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_receive(int argc, char **argv);
int cmd_unpack(int argc, char **argv);
int cmd_info(int argc, char **argv);

/* Prints "mlcast SUBCOMMAND: message" to stderr and returns 2. */
int cli_usage_error(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

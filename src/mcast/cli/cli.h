/* The mlcast command-line tool: one file per subcommand. */
#ifndef MC_CLI_H
#define MC_CLI_H

#include <stdio.h>

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

#include <stddef.h>
#include <stdint.h>

/*
 * Reads a key file (at most MC_MAX_KEY bytes; a trailing newline is not part
 * of the key). Returns its length, or -1 after printing why.
 */
int cli_load_key(const char *sub, const char *path, uint8_t *key, size_t cap);
/* SIGINT and SIGTERM set *flag (once; a second signal kills). */
void cli_catch_signals(volatile int *flag);
/* "1.5 GiB", "300.0 MiB" ... into out. */
const char *cli_bytes(double n, char *out, size_t outsz);
/* "1:02:03" or "2:03" or "?" into out. */
const char *cli_duration(double s, char *out, size_t outsz);
/* Writes s as a JSON string (quotes and escapes) to f. */
void cli_json_str(FILE *f, const char *s);

#endif

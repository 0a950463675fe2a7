/*
 * mlagent: the Microlinux workstation daemon (docs/mlagent.md). Reads its
 * settings (flags > config file > kernel command line > defaults), then
 * runs until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent.h"
#include "fileio.h"
#include "log.h"
#include "parse.h"

/* The one thing a signal handler may touch; agent_run polls it. */
static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
	(void)sig;
	main_stop = 1;
}

static void main_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: mlagent --server URL [OPTIONS]\n"
	    "\n"
	    "The Microlinux workstation agent: enrolls with mlserver, reports this machine's\n"
	    "inventory, and receives, switches and rolls back disk images on its command.\n"
	    "\n"
	    "  --server URL             mlserver's URL (https://HOST:PORT)\n"
	    "  --config FILE            settings file (default " ACFG_DEFAULT_PATH ")\n"
	    "  --data-dir DIR           credential and image store (default " ACFG_DEFAULT_DATA_DIR
	    ")\n"
	    "  --name NAME              enroll as this machine name\n"
	    "  --enroll-token TOKEN     enrollment token (mle_...), until enrolled\n"
	    "  --enroll-token-file F    file whose first line is the token\n"
	    "  --fingerprint FP         SHA-256 fingerprint of the server's certificate\n"
	    "  --interface IF           network interface for multicast reception\n"
	    "  --cmdline FILE           kernel command line to read (default " ACFG_DEFAULT_CMDLINE
	    ")\n"
	    "  --log-level L            error, warn, info or debug\n"
	    "  --insecure               do not check the server's certificate (tests only)\n"
	    "  --check-config           check the settings, print them and exit\n"
	    "  --print-config           print every setting with its default and exit\n"
	    "  --version, --help\n"
	    "\n"
	    "Exit status: 0 after SIGTERM or SIGINT (or a good --check-config); 1 when it\n"
	    "cannot start; 2 for bad usage or settings.\n");
}

enum {
	OPT_SERVER = 256,
	OPT_CONFIG,
	OPT_DATA_DIR,
	OPT_NAME,
	OPT_TOKEN,
	OPT_TOKEN_FILE,
	OPT_FP,
	OPT_IF,
	OPT_CMDLINE,
	OPT_LOG,
	OPT_INSECURE,
	OPT_CHECK,
	OPT_PRINT,
	OPT_VERSION,
	OPT_HELP,
};

static int main_set(char **slot, const char *v)
{
	free(*slot);
	*slot = strdup(v);
	return *slot ? 0 : -ENOMEM;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"server", required_argument, NULL, OPT_SERVER},
	    {"config", required_argument, NULL, OPT_CONFIG},
	    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"enroll-token", required_argument, NULL, OPT_TOKEN},
	    {"enroll-token-file", required_argument, NULL, OPT_TOKEN_FILE},
	    {"fingerprint", required_argument, NULL, OPT_FP},
	    {"interface", required_argument, NULL, OPT_IF},
	    {"cmdline", required_argument, NULL, OPT_CMDLINE},
	    {"log-level", required_argument, NULL, OPT_LOG},
	    {"insecure", no_argument, NULL, OPT_INSECURE},
	    {"check-config", no_argument, NULL, OPT_CHECK},
	    {"print-config", no_argument, NULL, OPT_PRINT},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0}};
	struct acfg flags = {0}, file = {0}, c = {0};
	struct acfg_kcmd k = {0};
	const char *config = NULL, *cmdline = ACFG_DEFAULT_CMDLINE;
	bool check = false;
	char err[AGENT_ERR_SIZE] = "";
	int opt, ret = 2, rc = 0;
	enum log_level lvl = LOG_LVL_INFO;

	log_init("mlagent", LOG_LVL_INFO, 0);
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_SERVER:
			rc = main_set(&flags.server, optarg);
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case OPT_DATA_DIR:
			rc = main_set(&flags.data_dir, optarg);
			break;
		case OPT_NAME:
			rc = main_set(&flags.name, optarg);
			break;
		case OPT_TOKEN:
			rc = main_set(&flags.enroll_token, optarg);
			break;
		case OPT_TOKEN_FILE:
			rc = main_set(&flags.enroll_token_file, optarg);
			break;
		case OPT_FP:
			rc = main_set(&flags.fingerprint, optarg);
			break;
		case OPT_IF:
			rc = main_set(&flags.interface, optarg);
			break;
		case OPT_CMDLINE:
			cmdline = optarg;
			break;
		case OPT_LOG:
			rc = main_set(&flags.log_level, optarg);
			break;
		case OPT_INSECURE:
			flags.insecure = 1;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case OPT_PRINT:
			acfg_print(stdout);
			ret = 0;
			goto out;
		case OPT_VERSION:
			printf("mlagent %s\n", MLAGENT_VERSION);
			ret = 0;
			goto out;
		case OPT_HELP:
			main_usage(stdout);
			ret = 0;
			goto out;
		default:
			main_usage(stderr);
			goto out;
		}
		if (rc < 0) {
			fprintf(stderr, "mlagent: out of memory\n");
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mlagent: unexpected argument '%s'\n", argv[optind]);
		goto out;
	}
	if (acfg_load_file(config ? config : ACFG_DEFAULT_PATH, config != NULL, &file, err,
	                   sizeof(err)) < 0) {
		fprintf(stderr, "mlagent: %s\n", err);
		goto out;
	}
	{
		uint8_t *buf = NULL;
		size_t len = 0;
		rc = fio_read_file(cmdline, 1 << 16, &buf, &len);
		if (rc < 0 && (rc != -ENOENT || strcmp(cmdline, ACFG_DEFAULT_CMDLINE) != 0)) {
			fprintf(stderr, "mlagent: %s: %s\n", cmdline, strerror(-rc));
			goto out;
		}
		rc = buf ? acfg_cmdline_parse((const char *)buf, len, &k, err, sizeof(err)) : 0;
		free(buf);
		if (rc < 0) {
			fprintf(stderr, "mlagent: %s: %s\n", cmdline, err);
			goto out;
		}
	}
	if (acfg_resolve(&flags, &file, &k, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "mlagent: %s\n", err);
		goto out;
	}
	if (check) {
		printf("server = %s\ndata_dir = %s\nname = %s\nenroll_token = %s\n"
		       "enroll_token_file = %s\nfingerprint = %s\ninsecure = %s\ninterface = %s\n"
		       "reserve = %llu\nlog_level = %s\n",
		       c.server ? c.server : "", c.data_dir, c.name ? c.name : "",
		       c.enroll_token ? "(set)" : "",
		       c.enroll_token_file ? c.enroll_token_file : "",
		       c.fingerprint ? c.fingerprint : "", c.insecure ? "yes" : "no",
		       c.interface ? c.interface : "", (unsigned long long)c.reserve, c.log_level);
		ret = 0;
		goto out;
	}
	(void)log_level_parse(c.log_level, &lvl);
	log_set_level(lvl);
	struct sigaction sa = {.sa_handler = main_on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = agent_run(&c, &main_stop, err, sizeof(err));
	if (rc == AGENT_RUN_LEFT) {
		/*
		 * Command threads that did not stop still use the agent's state, c
		 * and libcurl: no cleanup, no return from main (which would free c
		 * and run atexit handlers under them).
		 */
		log_info("stopped");
		_exit(0);
	}
	curl_global_cleanup();
	if (rc < 0) {
		log_error("%s", err);
		ret = 1;
		goto out;
	}
	log_info("stopped");
	ret = 0;
out:
	acfg_free(&flags);
	acfg_free(&file);
	acfg_free(&c);
	acfg_kcmd_free(&k);
	return ret;
}

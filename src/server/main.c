/*
 * mlserver: the Microlinux server daemon (docs/server.md). main() builds the
 * root context: settings, store, library, TLS material, HTTP front end and
 * scheduler (scheduler.h); then waits for a signal.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "agentq.h"
#include "audit.h"
#include "auth.h"
#include "boot.h"
#include "bootsrv.h"
#include "fileio.h"
#include "http.h"
#include "library.h"
#include "log.h"
#include "mail.h"
#include "parse.h"
#include "priv.h"
#include "runner.h"
#include "scheduler.h"
#include "server.h"
#include "store.h"
#include "tftp.h"
#include "tls.h"

static volatile sig_atomic_t main_stop;

static void main_on_signal(int sig)
{
	(void)sig;
	main_stop = 1;
}

static void main_usage(FILE *f)
{
	fprintf(f,
	        "usage: mlserver [OPTIONS]\n"
	        "\n"
	        "The Microlinux server: image library, inventory, rights, deployments and\n"
	        "the HTTPS API under /api/v1 (docs/api.md).\n"
	        "\n"
	        "  --data-dir DIR           database, chunk store and certificate (default\n"
	        "                           /var/lib/microlinux; [server] data_dir)\n"
	        "  --listen ADDR:PORT       HTTPS address (default 0.0.0.0:8443)\n"
	        "  --config FILE            settings (default " SRVCONF_DEFAULT_PATH ";\n"
	        "                           a missing default file is fine)\n"
	        "  --check-config           check the settings and exit (0 = good)\n"
	        "  --print-config           print every setting with its value and exit\n"
	        "  --send-test-mail ADDR[,ADDR...]\n"
	        "                           send a test message with the [mail] settings and\n"
	        "                           exit (0 = the mail server took it)\n"
	        "  --admin-password-file F  first start: the admin's password is F's first line\n"
	        "                           (otherwise one is generated and printed once)\n"
	        "  --log-level LEVEL        error, warn, info or debug\n"
	        "  --port-file FILE         write the bound port to FILE once listening\n"
	        "  --no-tls                 plain HTTP (only behind a local TLS proxy)\n"
	        "  -h, --help               this text\n"
	        "  --version                the version\n"
	        "\n"
	        "Exit status: 0 after a clean stop (SIGTERM, SIGINT), 1 on a start-up\n"
	        "failure (the last line says why), 2 on bad usage.\n");
}

/* Reads the first line of path (at most 1 KiB) as the admin password. */
static int main_read_password(const char *path, char *pw, size_t pwsz, char *err, size_t errsz)
{
	int n = fio_read_line(path, pw, pwsz);
	if (n < 0 && n != -ENAMETOOLONG) {
		snprintf(err, errsz, "--admin-password-file %s: %s", path, strerror(-n));
		return n;
	}
	if (n < AUTH_PASSWORD_MIN) {
		snprintf(err, errsz,
		         "--admin-password-file %s: the password must be %d to %zu bytes", path,
		         AUTH_PASSWORD_MIN, pwsz - 1);
		return -EINVAL;
	}
	return 0;
}

/*
 * First start: an empty user table gets an "admin" account. Its password
 * comes from pwfile or is generated and printed once on stdout.
 */
static int main_first_admin(struct srv *srv, const char *pwfile, char *err, size_t errsz)
{
	int64_t n = 0;
	char pw[1025], hash[AUTH_HASH_MAX];
	if (store_int(srv->store, &n, "SELECT COUNT(*) FROM users", NULL) < 0) {
		snprintf(err, errsz, "cannot read the user table");
		return -EIO;
	}
	if (n > 0)
		return 0;
	bool generated = !pwfile;
	if (pwfile) {
		if (main_read_password(pwfile, pw, sizeof(pw), err, errsz) < 0)
			return -EINVAL;
	} else {
		static const char alphabet[] =
		    "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
		uint8_t rnd[20];
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return -EIO;
		for (size_t i = 0; i < sizeof(rnd); i++)
			pw[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
		pw[sizeof(rnd)] = '\0';
	}
	int64_t id, now = store_now();
	if (auth_hash_password(pw, hash) < 0 || store_begin(srv->store) < 0) {
		snprintf(err, errsz, "cannot create the admin account");
		return -EIO;
	}
	int rc = store_insert(srv->store, &id,
	                      "INSERT INTO users (username, display_name, role, pw_hash,"
	                      " created_at, updated_at) VALUES ('admin', 'Administrator', 'admin',"
	                      " ?, ?, ?) RETURNING id",
	                      "tii", hash, now, now);
	if (rc == 0)
		rc = audit_system(srv->store, "create", "user", id, "first start: admin account");
	if (rc < 0) {
		store_rollback(srv->store);
		snprintf(err, errsz, "cannot create the admin account");
		return rc;
	}
	if (store_commit(srv->store) < 0)
		return -EIO;
	if (generated) {
		printf("mlserver: first start: created user 'admin' with password %s\n"
		       "mlserver: this password is shown only once; change it with "
		       "'mlctl passwd'\n",
		       pw);
		fflush(stdout);
	} else {
		log_info("first start: created user 'admin' with the given password");
	}
	return 0;
}

static int main_mkdirs(const char *dir, char *err, size_t errsz)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(path, 0750) < 0 && errno != EEXIST) {
				snprintf(err, errsz, "cannot create %.300s: %s", path,
				         strerror(errno));
				return -errno;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* Splits a comma-separated list into at most max strdup'ed, trimmed names. */
static size_t main_split_names(const char *list, char **out, size_t max)
{
	size_t n = 0;
	const char *p = list;
	while (*p && n < max) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *end = p;
		while (*end && *end != ',')
			end++;
		const char *last = end;
		while (last > p && last[-1] == ' ')
			last--;
		if (last > p && (out[n] = strndup(p, (size_t)(last - p))))
			n++;
		p = end;
	}
	return n;
}

/*
 * --send-test-mail: sends the test message to a comma-separated list of
 * addresses with the [mail] settings. Returns the exit status: 0 when the
 * mail server took it, 1 otherwise (the reason on stderr).
 */
static int main_test_mail(const struct srvconf *c, const char *list)
{
	char *to[MAIL_RCPT_MAX + 1], err[MAIL_ERR_SIZE] = "";
	size_t n = main_split_names(list, to, MAIL_RCPT_MAX + 1);
	int ret = 1;

	if (n == 0 || n > MAIL_RCPT_MAX) {
		fprintf(stderr,
		        "mlserver: --send-test-mail: give 1 to %d addresses, comma-separated\n",
		        MAIL_RCPT_MAX);
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "mlserver: cannot initialise libcurl\n");
		goto out;
	}
	if (mail_send_test(c, (const char *const *)to, n, err, sizeof(err)) < 0) {
		fprintf(stderr, "mlserver: %s\n", err);
	} else {
		printf("mlserver: test message sent to %s%s\n", list,
		       n > 1 ? " (each address the mail server accepted)" : "");
		ret = 0;
	}
	curl_global_cleanup();
out:
	for (size_t i = 0; i < n; i++)
		free(to[i]);
	return ret;
}

/* The port of an "ADDR:PORT" setting, or 0. */
static unsigned main_listen_port(const char *listen)
{
	const char *colon = strrchr(listen, ':'), *why;
	uint64_t v = 0;
	if (!colon || parse_uint(colon + 1, 0, 65535, &v, &why) < 0)
		return 0;
	return (unsigned)v;
}

/* Running as root for good, with a port that needed it: say how to stop that. */
static void main_warn_root(const struct srvconf *c, unsigned http_port)
{
	unsigned tp = c->tftp_enabled ? main_listen_port(c->tftp_listen) : 0;
	if ((tp && tp < 1024) || (http_port && http_port < 1024))
		log_warn("running as root after binding port %u: set [server] user (e.g. "
		         "microlinux) to drop root once every port is bound (docs/server.md)",
		         tp && tp < 1024 ? tp : http_port);
}

#define MAIN_MAX_SETS 64

enum {
	OPT_DATA = 256,
	OPT_LISTEN,
	OPT_CONFIG,
	OPT_CHECK,
	OPT_PRINT,
	OPT_ADMINPW,
	OPT_LOGLEVEL,
	OPT_PORTFILE,
	OPT_NOTLS,
	OPT_SET,
	OPT_TESTMAIL,
	OPT_VERSION
};

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"data-dir", required_argument, NULL, OPT_DATA},
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"config", required_argument, NULL, OPT_CONFIG},
	    {"check-config", no_argument, NULL, OPT_CHECK},
	    {"print-config", no_argument, NULL, OPT_PRINT},
	    {"admin-password-file", required_argument, NULL, OPT_ADMINPW},
	    {"log-level", required_argument, NULL, OPT_LOGLEVEL},
	    {"port-file", required_argument, NULL, OPT_PORTFILE},
	    {"no-tls", no_argument, NULL, OPT_NOTLS},
	    {"set", required_argument, NULL, OPT_SET},
	    {"send-test-mail", required_argument, NULL, OPT_TESTMAIL},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *data_dir = NULL, *listen = NULL, *adminpw = NULL;
	const char *loglevel = NULL, *portfile = NULL, *testmail = NULL;
	int check = 0, print = 0, notls = 0, c, ret = 1, rc;
	struct srv srv;
	struct tls_material *tls = NULL;
	struct priv *priv = NULL;
	char err[1024] = "";
	const char *sets[MAIN_MAX_SETS];
	int nsets = 0;

	memset(&srv, 0, sizeof(srv));
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case OPT_DATA:
			data_dir = optarg;
			break;
		case OPT_LISTEN:
			listen = optarg;
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case OPT_CHECK:
			check = 1;
			break;
		case OPT_PRINT:
			print = 1;
			break;
		case OPT_ADMINPW:
			adminpw = optarg;
			break;
		case OPT_LOGLEVEL:
			loglevel = optarg;
			break;
		case OPT_PORTFILE:
			portfile = optarg;
			break;
		case OPT_NOTLS:
			notls = 1;
			break;
		case OPT_SET:
			if (nsets == MAIN_MAX_SETS) {
				fprintf(stderr, "mlserver: at most %d --set options\n",
				        MAIN_MAX_SETS);
				return 2;
			}
			sets[nsets++] = optarg;
			break;
		case OPT_TESTMAIL:
			testmail = optarg;
			break;
		case 'h':
			main_usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("mlserver 0.1.0\n");
			return 0;
		default:
			fprintf(stderr, "mlserver: try --help\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mlserver: unexpected argument '%s'; try --help\n", argv[optind]);
		return 2;
	}
	log_init("mlserver", LOG_LVL_INFO, 0);
	srvconf_defaults(&srv.conf);
	if (srvconf_load(&srv.conf, config ? config : SRVCONF_DEFAULT_PATH, config != NULL, err,
	                 sizeof(err)) < 0)
		goto fail;
	/* Flags override the file. */
	if (data_dir) {
		free(srv.conf.data_dir);
		srv.conf.data_dir = strdup(data_dir);
	}
	if (listen) {
		free(srv.conf.listen);
		srv.conf.listen = strdup(listen);
	}
	if (loglevel) {
		free(srv.conf.log_level);
		srv.conf.log_level = strdup(loglevel);
	}
	if (notls)
		srv.conf.tls = 0;
	for (int i = 0; i < nsets; i++)
		if (srvconf_set(&srv.conf, sets[i], err, sizeof(err)) < 0)
			goto fail;
	if (srvconf_validate(&srv.conf, err, sizeof(err)) < 0)
		goto fail;
	if (testmail) {
		ret = main_test_mail(&srv.conf, testmail);
		srvconf_free(&srv.conf);
		return ret;
	}
	/* An unknown [server] user is a bad setting: --check-config says so too. */
	if (priv_open(srv.conf.user, srv.conf.group, &priv, err, sizeof(err)) < 0)
		goto fail;
	if (check || print) {
		priv_free(priv);
		if (print)
			srvconf_dump(&srv.conf, stdout);
		else
			printf("mlserver: configuration is valid\n");
		srvconf_free(&srv.conf);
		return 0;
	}
	enum log_level lvl;
	log_level_parse(srv.conf.log_level, &lvl);
	log_set_level(lvl);
	/* libcurl (mail reports) is set up once, before any thread starts. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, sizeof(err), "cannot initialise libcurl");
		goto fail;
	}

	/*
	 * Started as root with [server] user: the data directory must be the
	 * user's, and what start-up creates in it (database, self-signed
	 * certificate) is created as the user (priv.h).
	 */
	if (priv_data_dir(priv, srv.conf.data_dir, srv.conf.db_path, err, sizeof(err)) < 0 ||
	    main_mkdirs(srv.conf.data_dir, err, sizeof(err)) < 0 ||
	    priv_as_user(priv, err, sizeof(err)) < 0)
		goto fail;
	char dbpath[4096];
	if (*srv.conf.db_path)
		snprintf(dbpath, sizeof(dbpath), "%s", srv.conf.db_path);
	else
		snprintf(dbpath, sizeof(dbpath), "%s/mlserver.db", srv.conf.data_dir);
	if (store_open_sqlite(dbpath, &srv.store, err, sizeof(err)) < 0)
		goto fail;
	if (main_first_admin(&srv, adminpw, err, sizeof(err)) < 0)
		goto fail;
	/* Recovery of interrupted imports runs here, before any request can see them. */
	if (library_open(&srv, &srv.lib, err, sizeof(err)) < 0)
		goto fail;
	if (srv.conf.tls) {
		bool created = false;
		char *names[32];
		size_t nnames = main_split_names(srv.conf.tls_names, names, 32);
		/* A site key may be readable by root only; a self-signed pair is the user's. */
		bool site = *srv.conf.tls_cert != '\0';
		if (site && priv_as_root(priv, err, sizeof(err)) < 0)
			goto fail;
		rc = tls_load_or_create(*srv.conf.tls_cert ? srv.conf.tls_cert : NULL,
		                        *srv.conf.tls_key ? srv.conf.tls_key : NULL,
		                        srv.conf.data_dir, (const char *const *)names, nnames, &tls,
		                        &created, err, sizeof(err));
		for (size_t i = 0; i < nnames; i++)
			free(names[i]);
		if (rc < 0 || (site && priv_as_user(priv, err, sizeof(err)) < 0))
			goto fail;
		snprintf(srv.fingerprint, sizeof(srv.fingerprint), "%s", tls_fingerprint(tls));
		if (created)
			printf(
			    "mlserver: created a self-signed certificate, SHA-256 fingerprint %s\n",
			    srv.fingerprint);
		if (tls_expires_soon(tls))
			log_warn("the TLS certificate expires within 30 days");
		fflush(stdout);
	}
	if (agentq_start(&srv, err, sizeof(err)) < 0)
		goto fail;
	/*
	 * The runner first ends runs a previous process left running
	 * (docs/runs.md), before any agent can poll for their commands.
	 */
	if (runner_start(&srv, err, sizeof(err)) < 0)
		goto fail;
	/* Runs that ended while the server was down leave no temporary boot mode. */
	boot_temp_clear_ended(srv.store);
	/* Binding may need root (ports below 1024). */
	if (priv_as_root(priv, err, sizeof(err)) < 0)
		goto fail;
	uint16_t port = 0;
	if (http_start(&srv, tls ? tls_cert_pem(tls) : NULL, tls ? tls_key_pem(tls) : NULL,
	               &srv.http, &port, err, sizeof(err)) < 0)
		goto fail;
	srv.api_port = port;
	log_info("listening on %s://%s (port %u), data in %s%s%s", tls ? "https" : "http",
	         srv.conf.listen, port, srv.conf.data_dir, tls ? ", certificate " : "",
	         tls ? srv.fingerprint : "");

	/* Network boot's TFTP server (docs/tftp.md), when [tftp] enabled is on. */
	if (tftp_start(&srv, err, sizeof(err)) < 0)
		goto fail;
	/* And its HTTP side: iPXE scripts and the client OS (docs/netboot.md). */
	if (bootsrv_start(&srv, err, sizeof(err)) < 0)
		goto fail;

	/* The port file says "ready": every listener is up. */
	if (portfile) {
		char line[16];
		int n = snprintf(line, sizeof(line), "%u\n", port);
		if (fio_write_file_atomic(portfile, line, (size_t)n, 0644) < 0)
			log_warn("cannot write the port to %s", portfile);
	}

	/*
	 * Every socket mlserver listens on is bound: drop root for good. The
	 * threads already running (agent queue timer, runner, libmicrohttpd's
	 * of the API and the boot listener, TFTP) switch with main(), since
	 * glibc applies set*id to every thread of the process; priv_drop()
	 * checks each one in /proc/self/task. The scheduler's thread starts
	 * afterwards. Nothing later needs root: multicast and Wake-on-LAN
	 * sockets choose their interface with IP_MULTICAST_IF and IP_PKTINFO,
	 * which need no privilege.
	 */
	if (priv_drop(priv, err, sizeof(err)) < 0)
		goto fail;
	if (geteuid() == 0 && !*srv.conf.user)
		main_warn_root(&srv.conf, port);

	/* The scheduler's first tick applies the missed-run policy (docs/schedules.md). */
	if (sched_start(&srv, err, sizeof(err)) < 0)
		goto fail;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!main_stop) {
		struct timespec ts = {.tv_sec = (time_t)(srv.conf.tick_ms / 1000),
		                      .tv_nsec = (long)(srv.conf.tick_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	log_info("stopping");
	srv.stop = 1;
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "mlserver: %s\n", err[0] ? err : "start-up failed");
out:
	/*
	 * No request runs after http_stop(), so none kicks a stopped
	 * scheduler; with both stopped, nothing calls the runner, whose
	 * executing runs end failed; then the imports stop and record it.
	 */
	bootsrv_stop(&srv);
	tftp_stop(&srv);
	http_stop(srv.http);
	sched_stop(&srv);
	runner_stop(&srv);
	agentq_stop(&srv);
	library_free(srv.lib);
	store_close(srv.store);
	tls_material_free(tls);
	srvconf_free(&srv.conf);
	priv_free(priv);
	curl_global_cleanup();
	return ret;
}

/*
 * mlserver's settings: one table gives each key its section, type, range and
 * help, so loading, --check-config, the documented example file and the
 * docs all come from the same place (docs/server.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <net/if.h>

#include "boot.h"
#include "conf.h"
#include "log.h"
#include "mail.h"
#include "server.h"

#define K(sec, name, type, field, min, max, help)                                                  \
	{                                                                                          \
		sec, name, type, offsetof(struct srvconf, field), min, max, help                   \
	}

static const struct conf_key srvconf_keys[] = {
    K("server", "listen", CONF_STR, listen, 0, 0,
      "address and port of the HTTPS API (ADDR:PORT; [::]:PORT for IPv6)"),
    K("server", "data_dir", CONF_STR, data_dir, 0, 0,
      "directory of the database, chunk store, manifests and certificate"),
    K("server", "log_level", CONF_STR, log_level, 0, 0, "error, warn, info or debug"),
    K("server", "user", CONF_STR, user, 0, 0,
      "started as root: run as this user once every port is bound (it must own data_dir); "
      "empty: stay root"),
    K("server", "group", CONF_STR, group, 0, 0,
      "group to switch to with user; empty: the user's own group"),
    K("server", "threads", CONF_UINT, threads, 1, 256, "HTTP worker threads"),
    K("server", "max_connections", CONF_UINT, max_connections, 1, 65536,
      "open HTTP connections at most"),
    K("api", "max_body", CONF_SIZE, max_body, 1024, 64ull << 20,
      "largest JSON request body (bytes; K, M suffixes)"),
    K("api", "upload_max", CONF_SIZE, upload_max, 1ull << 20, 1ull << 50,
      "largest image upload (bytes; K, M, G, T suffixes)"),
    K("api", "session_ttl", CONF_DURATION_MS, session_ttl_ms, 60000, 366ull * 86400000,
      "lifetime of a login session (e.g. 12h)"),
    K("tls", "enabled", CONF_BOOL, tls, 0, 1,
      "serve HTTPS; turn off only behind a TLS-terminating proxy on the same host"),
    K("tls", "cert", CONF_STR, tls_cert, 0, 0,
      "PEM certificate (chain); empty: a self-signed one in DATA_DIR/tls"),
    K("tls", "key", CONF_STR, tls_key, 0, 0, "PEM private key of cert"),
    K("tls", "names", CONF_STR, tls_names, 0, 0,
      "extra DNS names and IP addresses for the self-signed certificate, comma-separated"),
    K("store", "path", CONF_STR, db_path, 0, 0, "SQLite database; empty: DATA_DIR/mlserver.db"),
    K("library", "chunk_size", CONF_SIZE, chunk_size, 64 << 10, 16 << 20,
      "chunk size of imported images (power of two, 64K to 16M)"),
    K("library", "zstd_level", CONF_UINT, zstd_level, 1, 19, "zstd level of stored chunks"),
    K("library", "threads", CONF_UINT, import_threads, 0, 256,
      "compression threads per import; 0: one per CPU"),
    K("library", "imports_max", CONF_UINT, imports_max, 1, 64, "imports running at once"),
    K("library", "import_roots", CONF_STR, import_roots, 0, 0,
      "directories that path imports may read from, comma-separated absolute paths "
      "(symbolic links are resolved first, so none leads out)"),
    K("scheduler", "catchup", CONF_DURATION_MS, catchup_ms, 0, 30ull * 86400000,
      "a recurring run missed while the server was down still starts when at most this late"),
    K("scheduler", "tick", CONF_DURATION_MS, tick_ms, 100, 60000,
      "how often due deployments are looked for"),
    K("wol", "port", CONF_UINT, wol_port, 1, 65535,
      "UDP port of Wake-on-LAN magic packets (9, or 7 for some old NICs)"),
    K("wol", "repeat", CONF_UINT, wol_repeat, 1, 10,
      "magic packets sent to each target and destination (UDP may lose one)"),
    K("wol", "gap", CONF_DURATION_MS, wol_gap_ms, 0, 10000, "pause between two repeats"),
    K("wol", "interface", CONF_STR, wol_interface, 0, 0,
      "network interface of the server's own subnet: targets there also get the "
      "limited broadcast 255.255.255.255 out of it; empty: directed broadcasts only"),
    K("mail", "url", CONF_STR, mail_url, 0, 0,
      "mail server: smtp://HOST[:PORT][/EHLO-NAME] or smtps://...; empty: no reports are mailed"),
    K("mail", "from", CONF_STR, mail_from, 0, 0,
      "sender of reports: ADDRESS or NAME <ADDRESS>; required with url"),
    K("mail", "username", CONF_STR, mail_username, 0, 0,
      "user name for SMTP authentication; empty: none"),
    K("mail", "password_file", CONF_STR, mail_password_file, 0, 0,
      "file whose first line is the SMTP password (keep it 0600)"),
    K("mail", "starttls", CONF_STR, mail_starttls, 0, 0,
      "try (use STARTTLS when the server offers it), require, or off"),
    K("mail", "ca_file", CONF_STR, mail_ca_file, 0, 0,
      "PEM CA certificates that the mail server's certificate must chain to; empty: the "
      "system's"),
    K("mail", "insecure", CONF_BOOL, mail_insecure, 0, 1,
      "do not verify the mail server's certificate (test servers only)"),
    K("mail", "timeout", CONF_DURATION_MS, mail_timeout_ms, 1000, 600000,
      "longest time one message may take to send"),
    K("agents", "register_unknown", CONF_BOOL, agents_register_unknown, 0, 1,
      "enroll machines the inventory does not know (into new_group); off: refuse them"),
    K("agents", "new_group", CONF_STR, agents_new_group, 0, 0,
      "group that machines registered at enrollment join (created when missing)"),
    K("agents", "offline_after", CONF_DURATION_MS, agents_offline_ms, 5000, 86400000,
      "an agent is online while it polled or said hello within this"),
    K("agents", "heartbeat", CONF_DURATION_MS, agents_heartbeat_ms, 1000, 86400000,
      "how often agents send their inventory"),
    K("agents", "poll_wait", CONF_DURATION_MS, agents_poll_wait_ms, 1000, 60000,
      "longest hold of an agent's long poll"),
    K("runner", "enabled", CONF_BOOL, runner_enabled, 0, 1,
      "execute runs; off: runs stay pending until it is on again (maintenance)"),
    K("runner", "max_runs", CONF_UINT, runner_max_runs, 1, 16, "runs executing at once"),
    K("runner", "group", CONF_STR, runner_group, 0, 0,
      "IPv4 multicast group of deployment sessions"),
    K("runner", "port", CONF_UINT, runner_port, 1024, 65000,
      "UDP port of the first run slot; slot i uses port + 2i"),
    K("runner", "interface", CONF_STR, runner_interface, 0, 0,
      "network interface sessions leave by; empty: the routing table decides"),
    K("runner", "rate", CONF_RATE, runner_rate, 1000000, 100000000000ull,
      "sending rate cap when the deployment sets none (bits per second; k, M, G suffixes)"),
    K("runner", "ttl", CONF_UINT, runner_ttl, 1, 255,
      "multicast TTL: 1 keeps sessions in the server's subnet; raise it for routed subnets"),
    K("runner", "rounds", CONF_UINT, runner_rounds, 1, 10,
      "sessions per run: later ones serve machines that fell out of an earlier one"),
    K("runner", "ready_wait", CONF_DURATION_MS, runner_ready_ms, 1000, 600000,
      "how long agents have to answer a receive command before the session starts"),
    K("runner", "finish_wait", CONF_DURATION_MS, runner_finish_ms, 1000, 3600000,
      "how long agents have to verify, switch and report after a session"),
    K("tftp", "enabled", CONF_BOOL, tftp_enabled, 0, 1,
      "serve root read-only over TFTP for network boot (docs/tftp.md)"),
    K("tftp", "listen", CONF_STR, tftp_listen, 0, 0,
      "address and UDP port of TFTP requests (ADDR:PORT; ports below 1024 need root or "
      "CAP_NET_BIND_SERVICE)"),
    K("tftp", "root", CONF_STR, tftp_root, 0, 0,
      "directory served; nothing outside it is ever read; empty: DATA_DIR/tftp"),
    K("tftp", "blksize_max", CONF_UINT, tftp_blksize_max, 8, 65464,
      "largest block size granted to a client's blksize option (1468 fits Ethernet)"),
    K("tftp", "windowsize_max", CONF_UINT, tftp_windowsize_max, 1, 65535,
      "largest window granted to a client's windowsize option (RFC 7440)"),
    K("tftp", "timeout", CONF_DURATION_MS, tftp_timeout_ms, 100, 255000,
      "first retransmission timeout, doubled at each retry, unless the client sets one"),
    K("tftp", "retries", CONF_UINT, tftp_retries, 1, 50,
      "retransmissions without an answer before a transfer is dropped"),
    K("boot", "enabled", CONF_BOOL, boot_enabled, 0, 1,
      "serve iPXE scripts and the client OS over plain HTTP for network boot "
      "(docs/netboot.md)"),
    K("boot", "listen", CONF_STR, boot_listen, 0, 0,
      "address and port of the boot HTTP listener (ADDR:PORT; plain HTTP, since iPXE "
      "cannot check our certificate)"),
    K("boot", "root", CONF_STR, boot_root, 0, 0,
      "directory of the client OS profiles (ROOT/PROFILE/vmlinuz, initrd.img, "
      "filesystem.squashfs); nothing outside it is served; empty: DATA_DIR/boot"),
    K("boot", "profile", CONF_STR, boot_profile, 0, 0,
      "the profile (subdirectory of root) that machines boot"),
    K("boot", "default_mode", CONF_STR, boot_default_mode, 0, 0,
      "boot mode of known machines that neither they nor a group set: microlinux, local, "
      "install or shell"),
    K("boot", "unknown_mode", CONF_STR, boot_unknown_mode, 0, 0,
      "boot mode of machines whose MAC the inventory does not know"),
    K("boot", "server_url", CONF_STR, boot_server_url, 0, 0,
      "URL of this server's API given to booting agents (ml.server=); empty: "
      "https://HOST:PORT from the boot request's host and [server] listen"),
    K("boot", "enroll_token_file", CONF_STR, boot_enroll_token_file, 0, 0,
      "file holding an enrollment token (mle_...) given to booting machines as ml.token=; "
      "anyone on the boot network can read it: limit its uses; empty: none"),
    K("boot", "cmdline", CONF_STR, boot_cmdline, 0, 0,
      "extra kernel arguments for every Microlinux boot (e.g. console=ttyS0 quiet)"),
};

#define NKEYS (sizeof(srvconf_keys) / sizeof(srvconf_keys[0]))

static int srvconf_set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

void srvconf_defaults(struct srvconf *c)
{
	memset(c, 0, sizeof(*c));
	srvconf_set_str(&c->listen, "0.0.0.0:8443");
	srvconf_set_str(&c->data_dir, "/var/lib/microlinux");
	srvconf_set_str(&c->log_level, "info");
	srvconf_set_str(&c->user, "");
	srvconf_set_str(&c->group, "");
	c->threads = 4;
	c->max_connections = 512;
	c->max_body = 1 << 20;
	c->upload_max = 1ull << 40;
	c->session_ttl_ms = 12ull * 3600 * 1000;
	c->tls = 1;
	srvconf_set_str(&c->tls_cert, "");
	srvconf_set_str(&c->tls_key, "");
	srvconf_set_str(&c->tls_names, "");
	srvconf_set_str(&c->db_path, "");
	c->chunk_size = 1 << 20;
	c->zstd_level = 3;
	c->import_threads = 0;
	c->imports_max = 2;
	srvconf_set_str(&c->import_roots, "/");
	c->catchup_ms = 3600 * 1000;
	c->tick_ms = 1000;
	c->wol_port = 9;
	c->wol_repeat = 3;
	c->wol_gap_ms = 100;
	srvconf_set_str(&c->wol_interface, "");
	srvconf_set_str(&c->mail_url, "");
	srvconf_set_str(&c->mail_from, "");
	srvconf_set_str(&c->mail_username, "");
	srvconf_set_str(&c->mail_password_file, "");
	srvconf_set_str(&c->mail_starttls, "try");
	srvconf_set_str(&c->mail_ca_file, "");
	c->mail_insecure = 0;
	c->mail_timeout_ms = 30000;
	c->agents_register_unknown = 1;
	srvconf_set_str(&c->agents_new_group, "new");
	c->agents_offline_ms = 75000;
	c->agents_heartbeat_ms = 60000;
	c->agents_poll_wait_ms = 25000;
	c->runner_enabled = 1;
	c->runner_max_runs = 2;
	srvconf_set_str(&c->runner_group, "239.192.77.1");
	c->runner_port = 7770;
	srvconf_set_str(&c->runner_interface, "");
	c->runner_rate = 1000000000ull;
	c->runner_ttl = 1;
	c->runner_rounds = 3;
	c->runner_ready_ms = 30000;
	c->runner_finish_ms = 120000;
	c->tftp_enabled = 0;
	srvconf_set_str(&c->tftp_listen, "0.0.0.0:69");
	srvconf_set_str(&c->tftp_root, "");
	c->tftp_blksize_max = 1468;
	c->tftp_windowsize_max = 64;
	c->tftp_timeout_ms = 1000;
	c->tftp_retries = 5;
	c->boot_enabled = 0;
	srvconf_set_str(&c->boot_listen, "0.0.0.0:8070");
	srvconf_set_str(&c->boot_root, "");
	srvconf_set_str(&c->boot_profile, "full");
	srvconf_set_str(&c->boot_default_mode, "microlinux");
	srvconf_set_str(&c->boot_unknown_mode, "microlinux");
	srvconf_set_str(&c->boot_server_url, "");
	srvconf_set_str(&c->boot_enroll_token_file, "");
	srvconf_set_str(&c->boot_cmdline, "");
}

int srvconf_load(struct srvconf *c, const char *path, int explicit, char *err, size_t errsz)
{
	int rc = conf_load(path, srvconf_keys, NKEYS, c, err, errsz);
	if (rc == -ENOENT && !explicit)
		return 0;
	if (rc == -ENOENT)
		snprintf(err, errsz, "%s: no such file", path);
	return rc;
}

int srvconf_set(struct srvconf *c, const char *assign, char *err, size_t errsz)
{
	const char *dot = strchr(assign, '.'), *eq = strchr(assign, '=');
	char text[1200];
	if (!dot || !eq || dot > eq || dot == assign || eq == dot + 1 || strlen(assign) > 1000 ||
	    strchr(assign, '\n') || strchr(assign, '[') || strchr(assign, ']')) {
		log_seterr(err, errsz, "--set '%.100s': expected SECTION.KEY=VALUE", assign);
		return -EINVAL;
	}
	/* The override is a one-key INI text, so it gets exactly the file's checks. */
	snprintf(text, sizeof(text), "[%.*s]\n%.*s = %s\n", (int)(dot - assign), assign,
	         (int)(eq - dot - 1), dot + 1, eq + 1);
	return conf_load_string("--set", text, srvconf_keys, NKEYS, c, err, errsz);
}

/* An "interface" setting: empty, or something that can be a network interface's name. */
static int srvconf_check_ifname(const char *section, const char *v, char *err, size_t errsz)
{
	if (strlen(v) < IF_NAMESIZE && !strpbrk(v, "/ \t"))
		return 0;
	snprintf(err, errsz, "[%s] interface: '%.100s' is not a network interface name", section,
	         v);
	return -EINVAL;
}

int srvconf_validate(const struct srvconf *c, char *err, size_t errsz)
{
	enum log_level lvl;
	if (log_level_parse(c->log_level, &lvl) < 0) {
		snprintf(err, errsz, "[server] log_level: '%s' is not error, warn, info or debug",
		         c->log_level);
		return -EINVAL;
	}
	if ((c->chunk_size & (c->chunk_size - 1)) != 0) {
		snprintf(err, errsz, "[library] chunk_size: %llu is not a power of two",
		         (unsigned long long)c->chunk_size);
		return -EINVAL;
	}
	if ((*c->tls_cert == '\0') != (*c->tls_key == '\0')) {
		snprintf(err, errsz, "[tls] cert and key must be set together");
		return -EINVAL;
	}
	for (const char *p = c->import_roots; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ",");
		while (n && p[n - 1] == ' ')
			n--;
		if (n && *p != '/') {
			snprintf(err, errsz,
			         "[library] import_roots: '%.*s' is not an absolute path",
			         (int)(n > 200 ? 200 : n), p);
			return -EINVAL;
		}
		p += strcspn(p, ",");
	}
	if (*c->data_dir == '\0') {
		snprintf(err, errsz, "[server] data_dir must not be empty");
		return -EINVAL;
	}
	if (*c->group && !*c->user) {
		snprintf(err, errsz, "[server] group is set but user is empty");
		return -EINVAL;
	}
	if (!strchr(c->listen, ':')) {
		snprintf(err, errsz, "[server] listen: '%s' is not ADDR:PORT", c->listen);
		return -EINVAL;
	}
	if (!strchr(c->tftp_listen, ':')) {
		snprintf(err, errsz, "[tftp] listen: '%.100s' is not ADDR:PORT", c->tftp_listen);
		return -EINVAL;
	}
	if (boot_conf_check(c, err, errsz) < 0)
		return -EINVAL;
	if (srvconf_check_ifname("wol", c->wol_interface, err, errsz) < 0 ||
	    srvconf_check_ifname("runner", c->runner_interface, err, errsz) < 0)
		return -EINVAL;
	struct in_addr ga;
	if (inet_pton(AF_INET, c->runner_group, &ga) != 1 || !IN_MULTICAST(ntohl(ga.s_addr))) {
		snprintf(err, errsz, "[runner] group: '%.100s' is not an IPv4 multicast address",
		         c->runner_group);
		return -EINVAL;
	}
	if (*c->agents_new_group == '\0' || strlen(c->agents_new_group) > 100) {
		snprintf(err, errsz, "[agents] new_group must be a group name of 1 to 100 bytes");
		return -EINVAL;
	}
	return mail_conf_check(c, err, errsz);
}

void srvconf_free(struct srvconf *c)
{
	conf_free_strings(srvconf_keys, NKEYS, c);
}

void srvconf_dump(const struct srvconf *c, void *file)
{
	FILE *f = file;
	const char *sec = NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &srvconf_keys[i];
		const char *p = (const char *)c + k->offset;
		if (!sec || strcmp(sec, k->section) != 0) {
			fprintf(f, "%s[%s]\n", sec ? "\n" : "", k->section);
			sec = k->section;
		}
		fprintf(f, "# %s\n", k->help);
		switch (k->type) {
		case CONF_STR:
			fprintf(f, "%s = %s\n", k->name, *(char *const *)(const void *)p);
			break;
		case CONF_BOOL:
			fprintf(f, "%s = %s\n", k->name,
			        *(const int *)(const void *)p ? "yes" : "no");
			break;
		case CONF_DURATION_MS:
			fprintf(f, "%s = %llums\n", k->name,
			        (unsigned long long)*(const uint64_t *)(const void *)p);
			break;
		default:
			fprintf(f, "%s = %llu\n", k->name,
			        (unsigned long long)*(const uint64_t *)(const void *)p);
		}
	}
}

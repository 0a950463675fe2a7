/*
 * The network-boot HTTP listener (bootsrv.h): a second libmicrohttpd
 * daemon, plain HTTP, with a handler of its own that answers every request
 * at once (no bodies, no long polls), so it shares nothing with http.c but
 * the library.
 */
#include "bootsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "boot.h"
#include "fileio.h"
#include "http.h"
#include "log.h"
#include "match.h"
#include "server.h"

/* Largest script; a machine's is about 1 KiB plus [boot] cmdline. */
#define BOOTSRV_SCRIPT_MAX 8192

struct bootsrv {
	struct srv *srv;
	struct MHD_Daemon *d;
	int rootfd;
	char root[4096];
	/* ml.token= or "", re-read when [boot] enroll_token_file changes. */
	pthread_mutex_t tok_mu;
	char token[AUTH_SECRET_LEN + 1];
	struct stat tok_st; /* the file as last read or tried */
	int tok_errno;      /* the last stat() error, warned about once */
};

static enum MHD_Result bootsrv_text(struct MHD_Connection *c, unsigned status, const char *type,
                                    const char *text, size_t len)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result bootsrv_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%s\n", msg);
	return bootsrv_text(c, status, "text/plain; charset=utf-8", line,
	                    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* ml.server=: the setting, or the API's scheme and port on the host the client used. */
static void bootsrv_server_url(const struct bootsrv *b, const char *host, char *out, size_t outsz)
{
	const struct srvconf *conf = &b->srv->conf;
	if (*conf->boot_server_url) {
		snprintf(out, outsz, "%s", conf->boot_server_url);
		return;
	}
	size_t n = strlen(host);
	if (host[0] == '[') {
		n = (size_t)(strchr(host, ']') - host) + 1;
	} else {
		const char *colon = strchr(host, ':');
		if (colon)
			n = (size_t)(colon - host);
	}
	snprintf(out, outsz, "%s://%.*s:%u", conf->tls ? "https" : "http", (int)n, host,
	         (unsigned)b->srv->api_port);
}

/* Reads the enrollment token, the first line of path, into tok. */
static int bootsrv_token_read(const char *path, char tok[AUTH_SECRET_LEN + 1], char *err,
                              size_t errsz)
{
	int n = fio_read_line(path, tok, AUTH_SECRET_LEN + 1);
	if (n < 0 && n != -ENAMETOOLONG) {
		snprintf(err, errsz, "[boot] enroll_token_file %s: %s", path, strerror(-n));
		return n;
	}
	if (n < 0 || !auth_secret_wellformed(tok, "mle_")) {
		snprintf(err, errsz,
		         "[boot] enroll_token_file %s: its first line is not an enrollment token "
		         "(mle_ and 64 hex digits; mlctl enroll-token create)",
		         path);
		return -EINVAL;
	}
	return 0;
}

static bool bootsrv_same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The token file changed (st): its token replaces the one in use if it has one. */
static void bootsrv_token_reload(struct bootsrv *b, const char *path, const struct stat *st)
{
	b->tok_st = *st;
	char tok[AUTH_SECRET_LEN + 1], err[512];
	if (bootsrv_token_read(path, tok, err, sizeof(err)) < 0) {
		log_warn("boot: %s; machines keep getting the token read before", err);
	} else if (strcmp(tok, b->token) != 0) {
		memcpy(b->token, tok, sizeof(tok));
		log_info("boot: a new enrollment token read from %s", path);
	}
}

/*
 * The token for a script, into out: the file is read again when it has
 * changed since the last read. A file that cannot be read or holds no
 * token leaves the previous token in use, with a warning (once per change).
 */
static void bootsrv_token_get(struct bootsrv *b, char out[AUTH_SECRET_LEN + 1])
{
	const char *path = b->srv->conf.boot_enroll_token_file;
	pthread_mutex_lock(&b->tok_mu);
	struct stat st;
	if (*path && stat(path, &st) < 0) {
		if (errno != b->tok_errno)
			log_warn("boot: [boot] enroll_token_file %s: %s; machines keep getting the "
			         "token read before",
			         path, strerror(errno));
		b->tok_errno = errno;
	} else if (*path) {
		b->tok_errno = 0;
		if (!bootsrv_same_file(&st, &b->tok_st))
			bootsrv_token_reload(b, path, &st);
	}
	memcpy(out, b->token, AUTH_SECRET_LEN + 1);
	pthread_mutex_unlock(&b->tok_mu);
}

static enum MHD_Result bootsrv_machine(struct bootsrv *b, struct MHD_Connection *c,
                                       const char *host, const char *macarg, const char *peer)
{
	uint8_t mac[MATCH_MAC_BYTES];
	char canon[MATCH_MAC_SIZE], why[MATCH_ERR_SIZE];
	if (match_mac_parse(macarg, strlen(macarg), mac, why, sizeof(why)) < 0)
		return bootsrv_error(c, 400, "not a MAC address; use /boot/aa-bb-cc-dd-ee-ff");
	match_mac_format(mac, canon);
	struct boot_choice ch;
	if (boot_resolve_mac(b->srv, canon, &ch) < 0)
		return bootsrv_error(c, 500, "the store failed; see the server's log");
	char base[300], server[512], script[BOOTSRV_SCRIPT_MAX];
	snprintf(base, sizeof(base), "http://%s", host);
	bootsrv_server_url(b, host, server, sizeof(server));
	char sq[512];
	snprintf(sq, sizeof(sq), "%s/filesystem.squashfs", b->srv->conf.boot_profile);
	uint64_t size;
	int fd = fio_open_beneath(b->rootfd, sq, &size);
	if (fd >= 0)
		close(fd);
	char token[AUTH_SECRET_LEN + 1];
	bootsrv_token_get(b, token);
	struct boot_script_in in = {
	    .mode = ch.mode,
	    .base = base,
	    .profile = b->srv->conf.boot_profile,
	    .squashfs = fd >= 0,
	    .server_url = server,
	    .fingerprint = b->srv->fingerprint,
	    .token = token,
	    .name = ch.name,
	    .mac = canon,
	    .why = ch.why,
	    .cmdline = b->srv->conf.boot_cmdline,
	};
	/* Colons in the certificate's fingerprint are fine on a command line. */
	int n = boot_script(&in, script, sizeof(script));
	if (n < 0) {
		log_warn("boot: cannot make the script of %s (%s): %s", canon, ch.name,
		         n == -ENOSPC ? "too long" : "an unsafe argument (see [boot])");
		return bootsrv_error(c, 500, "cannot make this machine's boot script");
	}
	if (ch.machine_id)
		boot_note(b->srv->store, ch.machine_id, ch.mode);
	log_info("boot: %s %s (%s) boots %s (%s)", peer, *ch.name ? ch.name : "unknown machine",
	         canon, boot_mode_str(ch.mode), ch.why);
	return bootsrv_text(c, 200, "text/plain; charset=utf-8", script, (size_t)n);
}

static enum MHD_Result bootsrv_file(struct bootsrv *b, struct MHD_Connection *c, const char *path,
                                    const char *peer)
{
	uint64_t size;
	int fd = fio_open_beneath(b->rootfd, path, &size);
	if (fd < 0) {
		if (fd == -ENOENT || fd == -ENOTDIR)
			return bootsrv_error(c, 404, "no such file");
		log_info("boot: %s refused /files/%.200s (%s)", peer, path,
		         fd == -EACCES   ? "'..' in the path"
		         : fd == -EISDIR ? "not a regular file"
		                         : "it leads outside [boot] root");
		return bootsrv_error(c, 403, "refused: only regular files below the boot root");
	}
	const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
	uint64_t off = 0, len = size;
	int rc = boot_range_parse(range, size, &off, &len);
	if (rc == -ERANGE) {
		close(fd);
		char cr[64];
		snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
		struct MHD_Response *resp =
		    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, "Content-Range", cr);
		enum MHD_Result ret = MHD_queue_response(c, 416, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, (uint64_t)off);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	unsigned status = 200;
	if (rc == 1) {
		char cr[96];
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)off,
		         (unsigned long long)(off + len - 1), (unsigned long long)size);
		MHD_add_response_header(resp, "Content-Range", cr);
		status = 206;
	}
	log_debug("boot: %s /files/%.200s %u (%llu bytes)", peer, path, status,
	          (unsigned long long)len);
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result bootsrv_access(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
	struct bootsrv *b = cls;
	(void)version;
	(void)upload_data;
	/* The first call only announces the request; the answer goes on the second. */
	if (!*con_cls) {
		*con_cls = (void *)1;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return bootsrv_error(c, 405, "only GET and HEAD are served here");
	char peer[64];
	http_peer(c, peer, sizeof(peer));
	if (strncmp(url, "/files/", 7) == 0)
		return bootsrv_file(b, c, url + 7, peer);
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	if (!host || !boot_host_ok(host))
		return bootsrv_error(c, 400, "a Host header naming this server is required");
	if (strcmp(url, "/boot.ipxe") == 0) {
		char base[300], script[1024];
		snprintf(base, sizeof(base), "http://%s", host);
		int n = boot_stage1(base, script, sizeof(script));
		if (n < 0)
			return bootsrv_error(c, 400, "cannot make a script for this Host header");
		return bootsrv_text(c, 200, "text/plain; charset=utf-8", script, (size_t)n);
	}
	if (strncmp(url, "/boot/", 6) == 0)
		return bootsrv_machine(b, c, host, url + 6, peer);
	return bootsrv_error(c, 404,
	                     "not found: this is Microlinux's network boot service "
	                     "(/boot.ipxe, /boot/MAC, /files/...)");
}

int bootsrv_start(struct srv *srv, char *err, size_t errsz)
{
	const struct srvconf *conf = &srv->conf;
	if (!conf->boot_enabled)
		return 0;
	struct sockaddr_storage ss;
	if (http_parse_listen(conf->boot_listen, &ss, err, errsz) < 0)
		return -EINVAL;
	struct bootsrv *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->srv = srv;
	b->rootfd = -1;
	int rc = 0;
	pthread_mutex_init(&b->tok_mu, NULL);
	if (*conf->boot_enroll_token_file) {
		/* At start a bad file is an error; later changes only warn. */
		if (stat(conf->boot_enroll_token_file, &b->tok_st) < 0)
			memset(&b->tok_st, 0, sizeof(b->tok_st));
		rc = bootsrv_token_read(conf->boot_enroll_token_file, b->token, err, errsz);
		if (rc < 0)
			goto fail;
	}
	if (*conf->boot_root)
		snprintf(b->root, sizeof(b->root), "%s", conf->boot_root);
	else
		snprintf(b->root, sizeof(b->root), "%s/boot", conf->data_dir);
	if (!*conf->boot_root && mkdir(b->root, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errsz, "[boot] root %s: %s", b->root, strerror(errno));
		goto fail;
	}
	b->rootfd = open(b->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (b->rootfd < 0) {
		rc = -errno;
		snprintf(err, errsz, "[boot] root %s: %s", b->root, strerror(errno));
		goto fail;
	}
	char kp[512];
	uint64_t size;
	snprintf(kp, sizeof(kp), "%s/vmlinuz", conf->boot_profile);
	int fd = fio_open_beneath(b->rootfd, kp, &size);
	if (fd >= 0)
		close(fd);
	else
		log_warn("boot: %s/%s has no vmlinuz yet: Microlinux boots will fail until the "
		         "client OS is there (make image; docs/netboot.md)",
		         b->root, conf->boot_profile);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	b->d = MHD_start_daemon(flags, 0, NULL, NULL, bootsrv_access, b, MHD_OPTION_EXTERNAL_LOGGER,
	                        http_mhd_log, (void *)"boot http", MHD_OPTION_SOCK_ADDR, &ss,
	                        MHD_OPTION_THREAD_POOL_SIZE, 4u, MHD_OPTION_CONNECTION_LIMIT, 512u,
	                        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
	if (!b->d) {
		rc = -EADDRINUSE;
		snprintf(err, errsz, "[boot] cannot listen on %s (address in use, or not allowed?)",
		         conf->boot_listen);
		goto fail;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(b->d, MHD_DAEMON_INFO_BIND_PORT);
	srv->boot_port = di ? di->port : 0;
	log_info("boot: serving iPXE scripts and %s over http on %s (port %u), profile %s%s",
	         b->root, conf->boot_listen, (unsigned)srv->boot_port, conf->boot_profile,
	         *b->token ? ", with an enrollment token" : "");
	srv->bootsrv = b;
	return 0;
fail:
	if (b->rootfd >= 0)
		close(b->rootfd);
	pthread_mutex_destroy(&b->tok_mu);
	free(b);
	return rc;
}

int bootsrv_tftp_open(struct srv *srv, const char *path, uint64_t *size)
{
	static const char *const loaders[] = {"undionly.kpxe", "undionly.kkpxe", "ipxe.pxe",
	                                      "ipxe.efi",      "snponly.efi",    NULL};
	while (*path == '/')
		path++;
	if (strcmp(path, "boot.ipxe") == 0 && srv->bootsrv) {
		char script[1024];
		int n = boot_stage1_tftp(srv->boot_port, script, sizeof(script));
		int fd = n < 0 ? -1 : memfd_create("boot.ipxe", MFD_CLOEXEC);
		if (fd < 0)
			return -ENOENT;
		if (fio_write_all(fd, script, (size_t)n) < 0) {
			close(fd);
			return -ENOENT;
		}
		*size = (uint64_t)n;
		return fd;
	}
	for (int i = 0; loaders[i]; i++) {
		if (strcmp(path, loaders[i]) != 0)
			continue;
		/*
		 * A fixed name, not the client's path: the package's symbolic
		 * links (ipxe.efi leads to /boot/ipxe.efi) may be followed.
		 */
		char p[128];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", BOOTSRV_IPXE_DIR, loaders[i]);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -ENOENT;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return -ENOENT;
		}
		*size = (uint64_t)st.st_size;
		return fd;
	}
	return -ENOENT;
}

void bootsrv_stop(struct srv *srv)
{
	struct bootsrv *b = srv->bootsrv;
	if (!b)
		return;
	MHD_stop_daemon(b->d);
	close(b->rootfd);
	pthread_mutex_destroy(&b->tok_mu);
	free(b);
	srv->bootsrv = NULL;
}

/*
 * The inventory of this machine, as the hello body of the contract
 * (docs/agent-protocol.md, "Heartbeat and inventory"): addresses from
 * getifaddrs, CPU and memory from /proc, disks from /sys/block, the data
 * directory from statvfs, and the images from the store's listing. The text
 * parsers (cpuinfo, meminfo) are pure and tested on their own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "agent.h"
#include "ascii.h"
#include "fileio.h"
#include "log.h"
#include "parse.h"

#define INV_FILE_MAX (1u << 20)
#define INV_INSTALL_MAX 65536u   /* ml-install's status file is a line of JSON */
#define INV_INSTALL_STR_MAX 1024 /* longest disk, reason or profile taken from it */

void inv_addrs_free(struct inv_addrs *a)
{
	json_decref(a->macs);
	json_decref(a->ips);
	memset(a, 0, sizeof(*a));
}

/* Appends s to the array a unless it is there already. */
static int inv_add_unique(json_t *a, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (strcmp(json_string_value(v), s) == 0)
			return 0;
	}
	return json_array_append_new(a, json_string(s)) == 0 ? 0 : -ENOMEM;
}

int inv_addrs_get(struct inv_addrs *a, char *err, size_t errsz)
{
	struct ifaddrs *ifa = NULL;
	int rc = -ENOMEM;
	memset(a, 0, sizeof(*a));
	a->macs = json_array();
	a->ips = json_array();
	if (!a->macs || !a->ips)
		goto out;
	if (getifaddrs(&ifa) < 0) {
		rc = -errno;
		log_seterr(err, errsz, "getifaddrs: %s", strerror(errno));
		goto out;
	}
	for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
		if (!p->ifa_addr || (p->ifa_flags & IFF_LOOPBACK))
			continue;
		if (p->ifa_addr->sa_family == AF_PACKET) {
			const struct sockaddr_ll *ll =
			    (const struct sockaddr_ll *)(void *)p->ifa_addr;
			char mac[MATCH_MAC_SIZE];
			static const uint8_t zero[MATCH_MAC_BYTES];
			if (ll->sll_halen != MATCH_MAC_BYTES || !memcmp(ll->sll_addr, zero, 6))
				continue;
			match_mac_format(ll->sll_addr, mac);
			if (inv_add_unique(a->macs, mac) < 0)
				goto out;
		} else if (p->ifa_addr->sa_family == AF_INET && p->ifa_netmask) {
			const struct sockaddr_in *in =
			    (const struct sockaddr_in *)(void *)p->ifa_addr;
			const struct sockaddr_in *nm =
			    (const struct sockaddr_in *)(void *)p->ifa_netmask;
			uint32_t ip = ntohl(in->sin_addr.s_addr);
			unsigned prefix;
			char ipb[MATCH_IP4_SIZE], buf[MATCH_CIDR_SIZE];
			if (match_netmask_prefix(ntohl(nm->sin_addr.s_addr), &prefix) < 0)
				continue;
			match_ip4_format(ip, ipb);
			snprintf(buf, sizeof(buf), "%s/%u", ipb, prefix);
			if (inv_add_unique(a->ips, buf) < 0)
				goto out;
			if (a->nnets < INV_MAX_NETS) {
				a->addrs[a->nnets] = ip;
				a->nets[a->nnets].prefix = prefix;
				a->nets[a->nnets].net = ip & match_prefix_mask(prefix);
				a->nnets++;
			}
		}
	}
	rc = 0;
out:
	if (ifa)
		freeifaddrs(ifa);
	if (rc < 0) {
		if (rc == -ENOMEM)
			log_seterr(err, errsz, "out of memory");
		inv_addrs_free(a);
	}
	return rc;
}

/* The value after "key<spaces>:<spaces>" on a line that starts with key, or NULL. */
static const char *inv_kv(const char *l, size_t n, const char *key, size_t *vlen)
{
	size_t k = strlen(key), i;
	if (n < k || memcmp(l, key, k) != 0)
		return NULL;
	for (i = k; i < n && ascii_is_blank(l[i]); i++)
		;
	if (i == n || l[i] != ':')
		return NULL;
	for (i++; i < n && ascii_is_blank(l[i]); i++)
		;
	*vlen = n - i;
	return l + i;
}

int inv_cpuinfo_parse(const char *text, size_t len, char *model, size_t modelsz, unsigned *count)
{
	size_t i = 0, vlen;
	const char *v;
	*count = 0;
	if (modelsz)
		model[0] = '\0';
	while (i < len) {
		const char *l = text + i, *nl = memchr(l, '\n', len - i);
		size_t n = nl ? (size_t)(nl - l) : len - i;
		i += n + 1;
		if (inv_kv(l, n, "processor", &vlen))
			(*count)++;
		else if (modelsz && !model[0] && (v = inv_kv(l, n, "model name", &vlen)))
			log_escape(v, vlen, model, modelsz);
	}
	/* Some architectures (arm64) have no "model name": keep the count anyway. */
	return *count ? 0 : -EINVAL;
}

int inv_meminfo_parse(const char *text, size_t len, uint64_t *bytes)
{
	size_t i = 0, vlen;
	const char *v;
	while (i < len) {
		const char *l = text + i, *nl = memchr(l, '\n', len - i);
		size_t n = nl ? (size_t)(nl - l) : len - i;
		i += n + 1;
		if (!(v = inv_kv(l, n, "MemTotal", &vlen)))
			continue;
		char num[24];
		size_t d = 0;
		uint64_t kib;
		while (d < vlen && d < sizeof(num) - 1 && ascii_is_digit(v[d])) {
			num[d] = v[d];
			d++;
		}
		num[d] = '\0';
		if (parse_uint(num, 1, UINT64_MAX / 1024, &kib, NULL) < 0)
			return -EINVAL;
		*bytes = kib * 1024;
		return 0;
	}
	return -EINVAL;
}

/*
 * A small text file, trimmed of trailing white space; NULL when unreadable.
 * Files in /proc and /sys report a size of 0 or 4096 whatever they hold, so
 * this reads to the end (up to INV_FILE_MAX) instead of trusting st_size.
 */
static char *inv_read(const char *dir, const char *name)
{
	char path[PATH_MAX];
	size_t len = 0, cap = 4096;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = fd >= 0 ? malloc(cap) : NULL;
	while (buf) {
		if (len + 1 >= cap) {
			char *b = cap < INV_FILE_MAX ? realloc(buf, cap * 2) : NULL;
			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			buf = NULL;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (!buf)
		return NULL;
	buf[len] = '\0';
	while (len && ascii_is_space(buf[len - 1]))
		buf[--len] = '\0';
	return buf;
}

static json_t *inv_disks(const char *sys)
{
	char dir[PATH_MAX];
	json_t *a = json_array();
	snprintf(dir, sizeof(dir), "%s/block", sys);
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!a || !d)
		return a;
	while ((e = readdir(d))) {
		char dev[PATH_MAX], esc[256];
		const char *n = e->d_name;
		if (n[0] == '.' || !strncmp(n, "loop", 4) || !strncmp(n, "ram", 3) ||
		    !strncmp(n, "zram", 4))
			continue;
		if ((size_t)snprintf(dev, sizeof(dev), "%s/%s", dir, n) >= sizeof(dev))
			continue;
		char *size = inv_read(dev, "size");
		char *model = inv_read(dev, "device/model");
		char *rot = inv_read(dev, "queue/rotational");
		uint64_t sectors = 0;
		if (size && parse_uint(size, 0, UINT64_MAX / 512, &sectors, NULL) == 0) {
			json_t *o = json_pack("{s:s, s:I, s:s, s:b}", "name",
			                      log_escape(n, strlen(n), esc, sizeof(esc)),
			                      "size_bytes", (json_int_t)(sectors * 512), "model",
			                      "", "rotational", rot && rot[0] == '1');
			if (o && model) {
				char m[256];
				json_object_set_new(
				    o, "model",
				    json_string(log_escape(model, strlen(model), m, sizeof(m))));
			}
			if (o)
				json_array_append_new(a, o);
		}
		free(size);
		free(model);
		free(rot);
	}
	closedir(d);
	return a;
}

/* Copies key of src to dst when it is a string of at most INV_INSTALL_STR_MAX bytes or null. */
static int inv_install_str(json_t *dst, const json_t *src, const char *key, char *err, size_t errsz)
{
	json_t *v = json_object_get(src, key);
	if (!v || json_is_null(v))
		return json_object_set_new(dst, key, json_null()) == 0 ? 0 : -ENOMEM;
	if (!json_is_string(v) || json_string_length(v) > INV_INSTALL_STR_MAX) {
		log_seterr(err, errsz, "\"%s\": expected a string of at most %d bytes, or null",
		           key, INV_INSTALL_STR_MAX);
		return -EINVAL;
	}
	return json_object_set_new(dst, key,
	                           json_stringn(json_string_value(v), json_string_length(v))) == 0
	           ? 0
	           : -ENOMEM;
}

int inv_install_parse(const char *text, size_t len, json_t **out, char *err, size_t errsz)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *o = NULL, *v;
	const char *state;
	int rc = -EINVAL;
	*out = NULL;
	if (!j) {
		log_seterr(err, errsz, "not JSON: %s (line %d)", je.text, je.line);
		goto out;
	}
	if (!json_is_object(j)) {
		log_seterr(err, errsz, "expected a JSON object");
		goto out;
	}
	v = json_object_get(j, "state");
	state = json_string_value(v);
	if (!state || (strcmp(state, "done") != 0 && strcmp(state, "failed") != 0)) {
		log_seterr(err, errsz, "\"state\": expected \"done\" or \"failed\"");
		goto out;
	}
	v = json_object_get(j, "at");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		log_seterr(err, errsz, "\"at\": expected a unix time (an integer >= 0)");
		goto out;
	}
	if (!json_is_boolean(json_object_get(j, "kept_data"))) {
		log_seterr(err, errsz, "\"kept_data\": expected true or false");
		goto out;
	}
	o = json_pack("{s:s, s:I, s:b}", "state", state, "at", (json_int_t)json_integer_value(v),
	              "kept_data", json_is_true(json_object_get(j, "kept_data")));
	if (!o) {
		rc = -ENOMEM;
		log_seterr(err, errsz, "out of memory");
		goto out;
	}
	if ((rc = inv_install_str(o, j, "disk", err, errsz)) < 0 ||
	    (rc = inv_install_str(o, j, "reason", err, errsz)) < 0 ||
	    (rc = inv_install_str(o, j, "profile", err, errsz)) < 0) {
		if (rc == -ENOMEM)
			log_seterr(err, errsz, "out of memory");
		goto out;
	}
	*out = o;
	o = NULL;
	rc = 0;
out:
	json_decref(o);
	json_decref(j);
	return rc;
}

/*
 * The "install" object from ml-install's status file, or NULL when there is
 * none (the usual case) or it is bad. A bad file is logged once per distinct
 * problem, not at every heartbeat.
 */
static json_t *inv_install(const char *path)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static char last[AGENT_ERR_SIZE];
	char why[AGENT_ERR_SIZE] = "";
	uint8_t *buf = NULL;
	size_t len = 0;
	json_t *o = NULL;
	if (!path || !path[0])
		return NULL;
	int rc = fio_read_file(path, INV_INSTALL_MAX, &buf, &len);
	if (rc == -ENOENT)
		return NULL;
	if (rc == -EFBIG)
		log_seterr(why, sizeof(why), "larger than %u bytes", INV_INSTALL_MAX);
	else if (rc < 0)
		log_seterr(why, sizeof(why), "%s", strerror(-rc));
	else
		(void)inv_install_parse((const char *)buf, len, &o, why, sizeof(why));
	free(buf);
	pthread_mutex_lock(&mu);
	if (!o && strcmp(why, last) != 0)
		log_warn("install status %s is ignored: %s", path, why);
	snprintf(last, sizeof(last), "%s", o ? "" : why);
	pthread_mutex_unlock(&mu);
	return o;
}

json_t *inv_images(const struct imgstore_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; l && a && i < l->nimages; i++) {
		const struct imgstore_image *im = &l->images[i];
		json_t *vs = json_array();
		for (size_t j = 0; vs && j < im->nversions; j++) {
			const struct imgstore_version *v = &im->versions[j];
			json_array_append_new(
			    vs, json_pack("{s:I, s:s, s:s, s:I}", "version_id", (json_int_t)v->id,
			                  "state", imgstore_vstate_str(v->state), "sha256",
			                  v->sha256, "size_bytes", (json_int_t)v->size));
		}
		json_array_append_new(
		    a, json_pack("{s:I, s:I, s:I, s:o}", "image_id", (json_int_t)im->id, "active",
		                 (json_int_t)im->active, "previous", (json_int_t)im->previous,
		                 "versions", vs ? vs : json_array()));
	}
	return a;
}

json_t *inv_build(const struct inv_opts *o, char *err, size_t errsz)
{
	const char *proc = o->proc ? o->proc : "/proc";
	const char *sys = o->sys ? o->sys : "/sys";
	char host[HOST_NAME_MAX + 1] = "", model[256] = "", esc[HOST_NAME_MAX * 4 + 1];
	unsigned ncpu = 0;
	uint64_t mem = 0, up = 0;
	struct inv_addrs a;
	struct statvfs sv;
	json_t *j = NULL;
	char *t;

	if (inv_addrs_get(&a, err, errsz) < 0)
		return NULL;
	(void)gethostname(host, sizeof(host) - 1);
	if ((t = inv_read(proc, "cpuinfo"))) {
		(void)inv_cpuinfo_parse(t, strlen(t), model, sizeof(model), &ncpu);
		free(t);
	}
	if ((t = inv_read(proc, "meminfo"))) {
		(void)inv_meminfo_parse(t, strlen(t), &mem);
		free(t);
	}
	if ((t = inv_read(proc, "uptime"))) {
		char *dot = strchr(t, '.');
		if (dot)
			*dot = '\0';
		(void)parse_uint(t, 0, UINT32_MAX, &up, NULL);
		free(t);
	}
	char *boot = inv_read(proc, "sys/kernel/random/boot_id");
	int kfd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kfd >= 0)
		close(kfd);
	json_t *dd =
	    json_pack("{s:s, s:I, s:I, s:b}", "path", o->data_dir ? o->data_dir : "", "size_bytes",
	              (json_int_t)0, "free_bytes", (json_int_t)0, "reflink", o->reflink);
	if (dd && o->data_dir && statvfs(o->data_dir, &sv) == 0) {
		json_object_set_new(
		    dd, "size_bytes",
		    json_integer((json_int_t)((uint64_t)sv.f_blocks * sv.f_frsize)));
		json_object_set_new(
		    dd, "free_bytes",
		    json_integer((json_int_t)((uint64_t)sv.f_bavail * sv.f_frsize)));
	}
	j = json_pack("{s:s, s:s, s:s, s:I, s:O, s:O, s:{s:s, s:i}, s:I, s:o, s:o, s:b, s:o}",
	              "agent_version", MLAGENT_VERSION, "hostname",
	              log_escape(host, strlen(host), esc, sizeof(esc)), "boot_id", boot ? boot : "",
	              "uptime_s", (json_int_t)up, "macs", a.macs, "ips", a.ips, "cpu", "model",
	              model, "count", (int)ncpu, "memory_bytes", (json_int_t)mem, "disks",
	              inv_disks(sys), "data_dir", dd ? dd : json_object(), "kvm", kfd >= 0,
	              "images", inv_images(o->images));
	if (!j)
		log_seterr(err, errsz, "cannot build the inventory (out of memory)");
	json_t *inst = j ? inv_install(o->install_status) : NULL;
	if (inst)
		json_object_set_new(j, "install", inst);
	free(boot);
	inv_addrs_free(&a);
	return j;
}

/*
 * Dropping root after binding (priv.h, docs/server.md). OpenBSD daemons do
 * the same: bind as root, then setgroups, setgid, setuid, and check that
 * root cannot come back.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/capability.h>

#include "log.h"
#include "parse.h"
#include "priv.h"

struct priv {
	char user[64], group[64];
	uid_t uid;
	gid_t gid;
	int set;  /* a user is configured */
	int root; /* started as root: the switch happens */
};

int priv_open(const char *user, const char *group, struct priv **out, char *err, size_t errsz)
{
	int ret = -EINVAL;
	char buf[16384];
	struct priv *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	p->root = geteuid() == 0;
	if (*user == '\0') {
		if (*group) {
			snprintf(err, errsz, "[server] group is set but user is empty");
			goto out;
		}
		*out = p;
		return 0;
	}
	if (strlen(user) >= sizeof(p->user) || strlen(group) >= sizeof(p->group)) {
		snprintf(err, errsz, "[server] user and group are at most %zu bytes",
		         sizeof(p->user) - 1);
		goto out;
	}
	struct passwd pw, *pwr = NULL;
	int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &pwr);
	if (rc != 0 || !pwr) {
		ret = -ENOENT;
		snprintf(err, errsz,
		         "[server] user: no user '%.63s' on this system%s%s (create it, e.g. "
		         "useradd --system --user-group %.63s)",
		         user, rc ? ": " : "", rc ? strerror(rc) : "", user);
		goto out;
	}
	p->uid = pw.pw_uid;
	p->gid = pw.pw_gid;
	if (*group) {
		struct group gr, *grr = NULL;
		rc = getgrnam_r(group, &gr, buf, sizeof(buf), &grr);
		if (rc != 0 || !grr) {
			ret = -ENOENT;
			snprintf(err, errsz, "[server] group: no group '%.63s' on this system%s%s",
			         group, rc ? ": " : "", rc ? strerror(rc) : "");
			goto out;
		}
		p->gid = gr.gr_gid;
	}
	if (p->uid == 0 || p->gid == 0) {
		snprintf(err, errsz,
		         "[server] user '%.63s' (uid %u, gid %u) is root; name an unprivileged "
		         "user",
		         user, (unsigned)p->uid, (unsigned)p->gid);
		goto out;
	}
	snprintf(p->user, sizeof(p->user), "%s", user);
	snprintf(p->group, sizeof(p->group), "%s", *group ? group : "");
	p->set = 1;
	*out = p;
	return 0;
out:
	free(p);
	return ret;
}

void priv_free(struct priv *p)
{
	free(p);
}

int priv_switching(const struct priv *p)
{
	return p && p->set && p->root;
}

/* The chown an admin runs to fix an ownership error. */
static void priv_chown_hint(const struct priv *p, const char *path, char *out, size_t cap)
{
	snprintf(out, cap, "chown -R %s:%s %.300s", p->user, *p->group ? p->group : "", path);
}

/* Checks that path (if it exists) belongs to the user. */
static int priv_owned(const struct priv *p, const char *path, const char *fix, char *err,
                      size_t errsz)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (st.st_uid == p->uid)
		return 0;
	char hint[512];
	priv_chown_hint(p, fix, hint, sizeof(hint));
	snprintf(err, errsz,
	         "%.300s belongs to uid %u, but mlserver runs as %s (uid %u) after start-up "
	         "([server] user); give it to that user: %s",
	         path, (unsigned)st.st_uid, p->user, (unsigned)p->uid, hint);
	return -EACCES;
}

/*
 * Creates dir and its missing parents (parents 0755 and root's, so the user
 * can reach the leaf; the leaf 0750 and the user's).
 */
static int priv_create_dir(const struct priv *p, const char *dir, char *err, size_t errsz)
{
	char path[4096];
	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
		snprintf(err, errsz, "data_dir is too long");
		return -ENAMETOOLONG;
	}
	for (char *s = path + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(path, c ? 0755 : 0750) < 0 && errno != EEXIST) {
			int e = errno;
			snprintf(err, errsz, "cannot create %.300s: %s", path, strerror(e));
			return -e;
		}
		*s = c;
		if (!c)
			break;
	}
	if (chown(path, p->uid, p->gid) < 0) {
		int e = errno;
		snprintf(err, errsz, "cannot give %.300s to %s: %s", path, p->user, strerror(e));
		return -e;
	}
	log_info("created the data directory %s for %s", path, p->user);
	return 0;
}

int priv_data_dir(const struct priv *p, const char *data_dir, const char *db_path, char *err,
                  size_t errsz)
{
	int ret = 0;
	char path[4096];
	struct stat st;
	if (p && p->set && !p->root && geteuid() != p->uid) {
		snprintf(err, errsz,
		         "[server] user = %s (uid %u), but mlserver runs as uid %u, not as root, "
		         "so it cannot switch; start it as root or as %s",
		         p->user, (unsigned)p->uid, (unsigned)geteuid(), p->user);
		return -EPERM;
	}
	if (!priv_switching(p))
		return 0;
	if (stat(data_dir, &st) < 0 && errno == ENOENT)
		return priv_create_dir(p, data_dir, err, errsz);
	if ((ret = priv_owned(p, data_dir, data_dir, err, errsz)) < 0)
		return ret;
	/*
	 * Entries right in the data directory, not the whole tree: the chunk
	 * store may hold millions of files, and a tree the user owns at the top
	 * was given to it as a whole (chown -R) or created by it.
	 */
	DIR *d = opendir(data_dir);
	if (!d) {
		ret = -errno;
		snprintf(err, errsz, "cannot read %.300s: %s", data_dir, strerror(errno));
		return ret;
	}
	for (struct dirent *e; (e = readdir(d));) {
		/*
		 * tftp/ and boot/ are only read, and filled by the admin (as root,
		 * say): their owner does not matter.
		 */
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, "tftp") || !strcmp(e->d_name, "boot"))
			continue;
		snprintf(path, sizeof(path), "%.3000s/%.255s", data_dir, e->d_name);
		if ((ret = priv_owned(p, path, data_dir, err, errsz)) < 0)
			break;
	}
	closedir(d);
	if (ret < 0 || !*db_path)
		return ret;
	/* A database elsewhere: SQLite creates its -wal and -shm beside it. */
	snprintf(path, sizeof(path), "%.4000s", db_path);
	char *slash = strrchr(path, '/');
	if (slash && slash != path) {
		*slash = '\0';
		if ((ret = priv_owned(p, path, path, err, errsz)) < 0)
			return ret;
	}
	static const char *const sfx[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(path, sizeof(path), "%.4000s%s", db_path, sfx[i]);
		if ((ret = priv_owned(p, path, path, err, errsz)) < 0)
			return ret;
	}
	return 0;
}

int priv_as_user(const struct priv *p, char *err, size_t errsz)
{
	if (!priv_switching(p))
		return 0;
	if (initgroups(p->user, p->gid) < 0 || setegid(p->gid) < 0 || seteuid(p->uid) < 0) {
		int e = errno;
		snprintf(err, errsz, "cannot act as %s: %s", p->user, strerror(e));
		return -e;
	}
	return 0;
}

int priv_as_root(const struct priv *p, char *err, size_t errsz)
{
	if (!priv_switching(p))
		return 0;
	if (seteuid(0) < 0 || setegid(0) < 0) {
		int e = errno;
		snprintf(err, errsz, "cannot act as root again: %s", strerror(e));
		return -e;
	}
	return 0;
}

/*
 * Reads the four ids (real, effective, saved, file system) of the line
 * starting with key ("Uid:" or "Gid:") in a /proc status text. Returns 0 or
 * -EINVAL.
 */
static int priv_status_ids(const char *text, const char *key, uint64_t ids[4])
{
	size_t kl = strlen(key);
	const char *line = text;
	while (line && strncmp(line, key, kl) != 0) {
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!line)
		return -EINVAL;
	const char *s = line + kl;
	for (int i = 0; i < 4; i++) {
		char num[24];
		size_t n = 0;
		while (*s == '\t' || *s == ' ')
			s++;
		while (*s >= '0' && *s <= '9' && n + 1 < sizeof(num))
			num[n++] = *s++;
		num[n] = '\0';
		const char *why;
		if (parse_uint(num, 0, UINT32_MAX, &ids[i], &why) < 0)
			return -EINVAL;
	}
	return 0;
}

/*
 * Reads a /proc text file (whose size stat() gives as 0) into buf, NUL
 * terminated. Returns 0 or a negative code.
 */
static int priv_read_proc(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	size_t n = 0;
	if (fd < 0)
		return -errno;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	close(fd);
	return ret;
}

/*
 * Checks that every thread of the process has the user's ids: the
 * setxid broadcast is glibc's, and a thread that missed it would keep root.
 * Returns the number of threads checked, or a negative code with err.
 */
static int priv_check_threads(const struct priv *p, char *err, size_t errsz)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d) {
		log_warn("cannot read /proc/self/task (%s): the threads' ids are not checked",
		         strerror(errno));
		return 0;
	}
	for (struct dirent *e; (e = readdir(d));) {
		char path[300], buf[8192];
		uint64_t uid[4], gid[4];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.200s/status", e->d_name);
		int rc = priv_read_proc(path, buf, sizeof(buf));
		if (rc == -ENOENT || rc == -ESRCH)
			continue; /* the thread ended meanwhile */
		if (rc == 0)
			rc = priv_status_ids(buf, "Uid:", uid);
		if (rc == 0)
			rc = priv_status_ids(buf, "Gid:", gid);
		for (int i = 0; rc == 0 && i < 4; i++)
			if (uid[i] != p->uid || gid[i] != p->gid)
				rc = -EPERM;
		if (rc < 0) {
			snprintf(
			    err, errsz, "thread %.20s kept other ids than %s after the switch (%s)",
			    e->d_name, p->user, rc == -EPERM ? "still privileged" : "unreadable");
			closedir(d);
			return -EPERM;
		}
		n++;
	}
	closedir(d);
	return n;
}

/*
 * Without root, a capability the service manager gave for binding
 * (AmbientCapabilities=CAP_NET_BIND_SERVICE) is not needed any more: it
 * goes from the ambient, effective, permitted and inheritable sets. Other
 * capabilities stay (an admin may grant CAP_NET_ADMIN for bigger multicast
 * socket buffers). Failure only warns: the capability allows nothing but
 * binding low ports.
 */
static void priv_drop_bind_cap(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return;
	uint32_t bit = 1u << CAP_NET_BIND_SERVICE; /* in the first 32 capabilities */
	if (!((data[0].permitted | data[0].effective | data[0].inheritable) & bit))
		return;
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_NET_BIND_SERVICE, 0, 0);
	data[0].permitted &= ~bit;
	data[0].effective &= ~bit;
	data[0].inheritable &= ~bit;
	if (syscall(SYS_capset, &hdr, data) < 0)
		log_warn("cannot drop CAP_NET_BIND_SERVICE after binding: %s", strerror(errno));
	else
		log_info("dropped CAP_NET_BIND_SERVICE after binding");
}

int priv_drop(const struct priv *p, char *err, size_t errsz)
{
	if (!p || !p->set) {
		if (!p || !p->root)
			priv_drop_bind_cap();
		return 0;
	}
	if (!p->root) {
		priv_drop_bind_cap();
		log_info("running as %s (uid %u)", p->user, (unsigned)p->uid);
		return 0;
	}
	/* setgroups and setresgid need root's effective id; the order matters. */
	if (priv_as_root(p, err, errsz) < 0)
		return -EPERM;
	if (initgroups(p->user, p->gid) < 0 || setresgid(p->gid, p->gid, p->gid) < 0 ||
	    setresuid(p->uid, p->uid, p->uid) < 0) {
		int e = errno;
		snprintf(err, errsz, "cannot switch to %s: %s", p->user, strerror(e));
		return -e;
	}
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || getresuid(&r, &e, &s) < 0 ||
	    getresgid(&rg, &eg, &sg) < 0 || r != p->uid || e != p->uid || s != p->uid ||
	    rg != p->gid || eg != p->gid || sg != p->gid) {
		snprintf(err, errsz, "switched to %s, but root could come back; stopping", p->user);
		return -EPERM;
	}
	int n = priv_check_threads(p, err, errsz);
	if (n < 0)
		return n;
	log_info("running as %s (uid %u, gid %u; %d threads checked)", p->user, (unsigned)p->uid,
	         (unsigned)p->gid, n);
	return 0;
}

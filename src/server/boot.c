/*
 * Boot modes, iPXE scripts and their checks (boot.h, docs/netboot.md).
 */
#include "boot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "parse.h"
#include "server.h"
#include "store.h"

static const char *const boot_modes[] = {"", "microlinux", "local", "install", "shell"};

#define BOOT_ARG_MAX 1024

const char *boot_mode_str(int mode)
{
	if (mode <= BOOT_NONE || mode > BOOT_SHELL)
		return "";
	return boot_modes[mode];
}

int boot_mode_parse(const char *s)
{
	for (int m = BOOT_MICROLINUX; s && m <= BOOT_SHELL; m++)
		if (strcmp(s, boot_modes[m]) == 0)
			return m;
	return BOOT_NONE;
}

static bool boot_char_ok(char c)
{
	return c > ' ' && c < 0x7f && !strchr("\"'\\$#`", c);
}

bool boot_arg_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!boot_char_ok(s[n]) || n == BOOT_ARG_MAX)
			return false;
	return n > 0;
}

bool boot_cmdline_ok(const char *s)
{
	size_t n = strlen(s);
	if (n > 4 * BOOT_ARG_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && !boot_char_ok(s[i]))
			return false;
	return true;
}

bool boot_host_ok(const char *host)
{
	size_t n = strlen(host);
	if (n == 0 || n > 255)
		return false;
	const char *p = host;
	if (*p == '[') {
		p++;
		size_t k = strspn(p, "0123456789abcdefABCDEF:.");
		if (k == 0 || p[k] != ']')
			return false;
		p += k + 1;
	} else {
		size_t k =
		    strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
		if (k == 0 || *p == '-' || *p == '.')
			return false;
		p += k;
	}
	if (*p == '\0')
		return true;
	if (*p != ':')
		return false;
	uint64_t port;
	return parse_uint(p + 1, 1, 65535, &port, NULL) == 0;
}

/* A bounded string builder; an overflow sticks and is reported at the end. */
struct boot_sb {
	char *p;
	size_t cap, len;
	bool full;
};

static void boot_put(struct boot_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void boot_put(struct boot_sb *b, const char *fmt, ...)
{
	if (b->full)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->full = true;
		return;
	}
	b->len += (size_t)n;
}

/*
 * Text for an echo line or a comment: what iPXE would expand or treat as a
 * comment or a new line becomes '?', and it is cut at 100 bytes.
 */
static void boot_put_text(struct boot_sb *b, const char *s)
{
	char t[101];
	size_t n = 0;
	for (; s[n] && n < sizeof(t) - 1; n++)
		t[n] = boot_char_ok(s[n]) || s[n] == ' ' ? s[n] : '?';
	t[n] = '\0';
	boot_put(b, "%s", t);
}

static int boot_finish(struct boot_sb *b)
{
	return b->full ? -ENOSPC : (int)b->len;
}

static bool boot_opt_ok(const char *s)
{
	return *s == '\0' || boot_arg_ok(s);
}

/*
 * The first stage: chains base/boot/MAC, retrying while the server does not
 * answer; prelude (script lines) comes first.
 */
static int boot_stage1_at(const char *prelude, const char *base, char *out, size_t outsz)
{
	struct boot_sb b = {out, outsz, 0, outsz == 0};
	/*
	 * A machine script that leaves network boot sets ${mlexit} and exits
	 * with it; the first stage passes it on, so that iPXE ends with an
	 * error and a UEFI firmware tries its next boot entry (a success
	 * would stop in its boot menu).
	 */
	boot_put(&b,
	         "#!ipxe\n"
	         "# Microlinux network boot, first stage: fetch this machine's own script.\n"
	         "%s"
	         ":again\n"
	         "chain %s/boot/${netX/mac:hexhyp} && goto done ||\n"
	         "isset ${mlexit} && exit ${mlexit} ||\n"
	         "echo Microlinux: the boot server did not answer; trying again in 10 seconds\n"
	         "sleep 10\n"
	         "goto again\n"
	         ":done\n",
	         prelude, base);
	return boot_finish(&b);
}

int boot_stage1(const char *base, char *out, size_t outsz)
{
	if (!boot_arg_ok(base))
		return -EINVAL;
	return boot_stage1_at("", base, out, outsz);
}

int boot_stage1_tftp(uint16_t port, char *out, size_t outsz)
{
	char base[64];
	/*
	 * The boot server is the one DHCP named for TFTP (this one), so the
	 * file needs no address. iPXE keeps it in ${next-server}; when a proxy
	 * DHCP gave it, in ${proxydhcp/next-server} or, after a PXE boot
	 * server request, ${pxebs/next-server} (and the site's DHCP server may
	 * name another one in ${next-server}): the most specific wins.
	 */
	snprintf(base, sizeof(base), "http://${mlboot}:%u", (unsigned)port);
	return boot_stage1_at(
	    "set mlboot ${next-server}\n"
	    "isset ${proxydhcp/next-server} && set mlboot ${proxydhcp/next-server} ||\n"
	    "isset ${pxebs/next-server} && set mlboot ${pxebs/next-server} ||\n",
	    base, out, outsz);
}

int boot_script(const struct boot_script_in *in, char *out, size_t outsz)
{
	if (in->mode <= BOOT_NONE || in->mode > BOOT_SHELL || !boot_arg_ok(in->base) ||
	    !boot_arg_ok(in->profile) || !boot_opt_ok(in->server_url) ||
	    !boot_opt_ok(in->fingerprint) || !boot_opt_ok(in->token) || !boot_arg_ok(in->mac) ||
	    !boot_cmdline_ok(in->cmdline))
		return -EINVAL;
	struct boot_sb b = {out, outsz, 0, outsz == 0};
	static const char *const what[] = {"", "boots Microlinux in RAM", "boots its local disk",
	                                   "installs Microlinux to its local disk",
	                                   "boots the Microlinux maintenance shell"};
	const char *name = boot_arg_ok(in->name) ? in->name : "";
	boot_put(&b, "#!ipxe\n# Microlinux network boot: ");
	boot_put_text(&b, *name ? name : "unknown machine");
	boot_put(&b, " (%s), mode %s (", in->mac, boot_mode_str(in->mode));
	boot_put_text(&b, in->why);
	boot_put(&b, ")\necho Microlinux: ");
	boot_put_text(&b, *name ? name : "this machine");
	boot_put(&b, " %s (", what[in->mode]);
	boot_put_text(&b, in->why);
	boot_put(&b, ")\n");
	if (in->mode == BOOT_LOCAL) {
		/*
		 * BIOS: hand over to the first hard disk; UEFI (or a failed
		 * sanboot): leave iPXE with an error, so the firmware tries its
		 * next boot entry (the first stage passes ${mlexit} on).
		 */
		boot_put(&b, "iseq ${platform} efi && goto leave ||\n"
		             "sanboot --no-describe --drive 0x80 ||\n"
		             ":leave\n"
		             "set mlexit 1\n"
		             "exit 1\n");
		return boot_finish(&b);
	}
	const char *files = in->base;
	/* The retry fetches the script again by the same path the first stage uses. */
	char mac[32];
	snprintf(mac, sizeof(mac), "%s", in->mac);
	for (char *p = mac; *p; p++)
		if (*p == ':')
			*p = '-';
	boot_put(&b, "kernel %s/files/%s/vmlinuz initrd=initrd.img", files, in->profile);
	if (in->squashfs)
		boot_put(&b, " boot=live fetch=%s/files/%s/filesystem.squashfs", files,
		         in->profile);
	if (*in->server_url)
		boot_put(&b, " ml.server=%s", in->server_url);
	if (*in->fingerprint)
		boot_put(&b, " ml.fp=%s", in->fingerprint);
	if (*in->token)
		boot_put(&b, " ml.token=%s", in->token);
	if (*name)
		boot_put(&b, " ml.name=%s", name);
	if (in->mode == BOOT_INSTALL)
		boot_put(&b, " ml.install=1");
	if (in->mode == BOOT_SHELL)
		boot_put(&b, " ml.shell=1");
	if (*in->cmdline)
		boot_put(&b, " %s", in->cmdline);
	boot_put(&b,
	         " || goto failed\n"
	         "initrd %s/files/%s/initrd.img || goto failed\n"
	         "boot || goto failed\n"
	         ":failed\n"
	         "echo Microlinux: the network boot failed; trying again in 10 seconds\n"
	         "sleep 10\n"
	         "chain %s/boot/%s || reboot\n",
	         files, in->profile, in->base, mac);
	return boot_finish(&b);
}

/* A decimal number of up to 19 digits at *p; advances *p. */
static int boot_range_num(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;
	size_t k = 0;
	for (; s[k] >= '0' && s[k] <= '9'; k++) {
		if (k == 19)
			return -1;
		n = n * 10 + (uint64_t)(s[k] - '0');
	}
	if (k == 0)
		return -1;
	*v = n;
	*p = s + k;
	return 0;
}

int boot_range_parse(const char *hdr, uint64_t size, uint64_t *off, uint64_t *len)
{
	if (!hdr || strncmp(hdr, "bytes=", 6) != 0)
		return 0;
	const char *p = hdr + 6;
	while (*p == ' ')
		p++;
	uint64_t a = 0, z = 0;
	if (*p == '-') {
		/* The last z bytes. */
		p++;
		if (boot_range_num(&p, &z) < 0)
			return 0;
		while (*p == ' ')
			p++;
		if (*p)
			return 0;
		if (z == 0 || size == 0)
			return -ERANGE;
		if (z > size)
			z = size;
		*off = size - z;
		*len = z;
		return 1;
	}
	if (boot_range_num(&p, &a) < 0 || *p++ != '-')
		return 0;
	bool open = !(*p >= '0' && *p <= '9');
	if (!open && boot_range_num(&p, &z) < 0)
		return 0;
	while (*p == ' ')
		p++;
	if (*p || (!open && z < a))
		return 0;
	if (a >= size)
		return -ERANGE;
	if (open || z >= size)
		z = size - 1;
	*off = a;
	*len = z - a + 1;
	return 1;
}

int boot_conf_check(const struct srvconf *c, char *err, size_t errsz)
{
	if (!strchr(c->boot_listen, ':')) {
		snprintf(err, errsz, "[boot] listen: '%.100s' is not ADDR:PORT", c->boot_listen);
		return -EINVAL;
	}
	const char *p = c->boot_profile;
	if (!boot_arg_ok(p) || strchr(p, '/') || *p == '.' || strlen(p) > 100) {
		snprintf(err, errsz,
		         "[boot] profile: '%.100s' is not a directory name (letters, digits, '-', "
		         "'_', '.', not first)",
		         p);
		return -EINVAL;
	}
	const char *const modes[][2] = {{"default_mode", c->boot_default_mode},
	                                {"unknown_mode", c->boot_unknown_mode}};
	for (size_t i = 0; i < 2; i++)
		if (boot_mode_parse(modes[i][1]) == BOOT_NONE) {
			snprintf(err, errsz,
			         "[boot] %s: '%.100s' is not microlinux, local, install or shell",
			         modes[i][0], modes[i][1]);
			return -EINVAL;
		}
	const char *u = c->boot_server_url;
	if (*u && (!boot_arg_ok(u) ||
	           (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0))) {
		snprintf(err, errsz,
		         "[boot] server_url: '%.100s' is not an http(s) URL without spaces, quotes "
		         "or '$'",
		         u);
		return -EINVAL;
	}
	if (!boot_cmdline_ok(c->boot_cmdline)) {
		snprintf(err, errsz,
		         "[boot] cmdline: only printable ASCII without quotes, backslashes, '$' or "
		         "'#', at most 4096 bytes");
		return -EINVAL;
	}
	return 0;
}

/* The temporary mode of a machine, removed when it expired. */
static int boot_temp_get(struct store *s, int64_t machine, struct boot_choice *out)
{
	struct store_q *q = store_query(
	    s, "SELECT mode, run_id, reason, expires_at FROM boot_temporary WHERE machine_id = ?",
	    "i", machine);
	if (!q)
		return -EIO;
	int rc = store_next(q), mode = BOOT_NONE;
	bool expired = false;
	if (rc == 1) {
		mode = boot_mode_parse(store_col_text(q, 0));
		int64_t exp = store_col_null(q, 3) ? 0 : store_col_int(q, 3);
		expired = exp && exp <= store_now();
		if (!store_col_null(q, 1))
			snprintf(out->why, sizeof(out->why), "temporary, run %lld",
			         (long long)store_col_int(q, 1));
		else if (*store_col_text(q, 2))
			snprintf(out->why, sizeof(out->why), "temporary: %.100s",
			         store_col_text(q, 2));
		else
			snprintf(out->why, sizeof(out->why), "temporary");
	}
	store_done(q);
	if (rc < 0)
		return -EIO;
	if (expired) {
		store_exec(s, "DELETE FROM boot_temporary WHERE machine_id = ? AND expires_at <= ?",
		           "ii", machine, store_now());
		return 0;
	}
	out->mode = mode;
	return 0;
}

int boot_resolve_machine(struct srv *srv, int64_t machine, struct boot_choice *out)
{
	struct store *s = srv->store;
	memset(out, 0, sizeof(*out));
	out->machine_id = machine;
	struct store_q *q =
	    store_query(s, "SELECT name, boot_mode FROM machines WHERE id = ?", "i", machine);
	if (!q)
		return -EIO;
	int rc = store_next(q), own = BOOT_NONE;
	if (rc == 1) {
		snprintf(out->name, sizeof(out->name), "%s", store_col_text(q, 0));
		own = boot_mode_parse(store_col_text(q, 1));
	}
	store_done(q);
	if (rc != 1)
		return rc == 0 ? -ENOENT : -EIO;
	if (boot_temp_get(s, machine, out) < 0)
		return -EIO;
	if (out->mode)
		return 0;
	if (own) {
		out->mode = own;
		snprintf(out->why, sizeof(out->why), "machine setting");
		return 0;
	}
	q = store_query(s,
	                "SELECT g.name, g.boot_mode FROM mgroups g"
	                " JOIN group_members gm ON gm.group_id = g.id"
	                " WHERE gm.machine_id = ? AND g.boot_mode IS NOT NULL"
	                " ORDER BY g.name LIMIT 1",
	                "i", machine);
	if (!q)
		return -EIO;
	rc = store_next(q);
	if (rc == 1) {
		out->mode = boot_mode_parse(store_col_text(q, 1));
		snprintf(out->why, sizeof(out->why), "group %.100s", store_col_text(q, 0));
	}
	store_done(q);
	if (rc < 0)
		return -EIO;
	if (!out->mode) {
		out->mode = boot_mode_parse(srv->conf.boot_default_mode);
		snprintf(out->why, sizeof(out->why), "[boot] default_mode");
	}
	return 0;
}

int boot_resolve_mac(struct srv *srv, const char *mac, struct boot_choice *out)
{
	int64_t id = 0;
	int rc = store_int(srv->store, &id, "SELECT machine_id FROM machine_macs WHERE mac = ?",
	                   "t", mac);
	if (rc == 0) {
		rc = boot_resolve_machine(srv, id, out);
		if (rc != -ENOENT)
			return rc;
	} else if (rc != -ENOENT) {
		return -EIO;
	}
	memset(out, 0, sizeof(*out));
	out->mode = boot_mode_parse(srv->conf.boot_unknown_mode);
	snprintf(out->why, sizeof(out->why), "unknown machine, [boot] unknown_mode");
	return 0;
}

void boot_note(struct store *s, int64_t machine, int mode)
{
	store_exec(s, "UPDATE machines SET last_boot_at = ?, last_boot_mode = ? WHERE id = ?",
	           "iti", store_now(), boot_mode_str(mode), machine);
}

int boot_temp_set(struct store *s, int64_t machine, int mode, int64_t run, const char *reason,
                  const char *by, int64_t expires_at)
{
	/* NULLIF: a run id and an expiry of 0 are stored as NULL. */
	int rc = store_exec(s,
	                    "INSERT INTO boot_temporary (machine_id, mode, run_id, reason,"
	                    " created_by_name, created_at, expires_at)"
	                    " VALUES (?, ?, NULLIF(?, 0), ?, ?, ?, NULLIF(?, 0))"
	                    " ON CONFLICT (machine_id) DO UPDATE SET mode = excluded.mode,"
	                    " run_id = excluded.run_id, reason = excluded.reason,"
	                    " created_by_name = excluded.created_by_name,"
	                    " created_at = excluded.created_at, expires_at = excluded.expires_at",
	                    "itittii", machine, boot_mode_str(mode), run, reason ? reason : "",
	                    by ? by : "", store_now(), expires_at);
	return rc < 0 ? rc : 0;
}

void boot_temp_clear_run(struct store *s, int64_t run)
{
	store_exec(s, "DELETE FROM boot_temporary WHERE run_id = ?", "i", run);
}

void boot_temp_clear_ended(struct store *s)
{
	int rc = store_exec(s,
	                    "DELETE FROM boot_temporary WHERE run_id IS NOT NULL AND run_id IN"
	                    " (SELECT id FROM runs WHERE state NOT IN ('pending', 'running'))",
	                    NULL);
	if (rc > 0)
		log_info("boot: removed %d temporary boot modes of runs that ended", rc);
}

bool boot_install_reported(struct store *s, int64_t machine, const json_t *install)
{
	const char *state = json_string_value(json_object_get(install, "state"));
	if (!state || strcmp(state, "done") != 0)
		return false;
	/*
	 * The machine must have booted in install mode since the mode was
	 * set (the server's clock on both sides): a status left from an
	 * earlier install, still reported by a machine that has not
	 * rebooted, does not remove a newer request.
	 */
	int rc = store_exec(s,
	                    "DELETE FROM boot_temporary WHERE machine_id = ? AND mode = 'install'"
	                    " AND EXISTS (SELECT 1 FROM machines m WHERE m.id = ?"
	                    " AND m.last_boot_mode = 'install'"
	                    " AND m.last_boot_at >= boot_temporary.created_at)",
	                    "ii", machine, machine);
	if (rc > 0)
		log_info("boot: machine %lld reported its install done; its temporary install mode "
		         "is removed",
		         (long long)machine);
	return rc > 0;
}

/*
 * Network boot (docs/netboot.md): which way a machine boots, and the iPXE
 * script that makes it do so.
 *
 * A machine boots in one of four modes: Microlinux in RAM, its local disk,
 * Microlinux installing itself to the local disk, or Microlinux's
 * maintenance shell. The mode that applies is, first to last: a temporary
 * mode (set by an admin, by a run while it runs, or for an install task),
 * the machine's own, the first group (by name) that sets one, and
 * [boot] default_mode; a MAC the inventory does not know gets
 * [boot] unknown_mode.
 *
 * The pure parts (modes, the script, the Range header, argument checks)
 * do no I/O, so that they can be fuzzed (tests/fuzz/fuzz_boot.c).
 */
#ifndef ML_BOOT_H
#define ML_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct srv;
struct srvconf;
struct store;

enum boot_mode {
	BOOT_NONE = 0,
	BOOT_MICROLINUX, /* the client OS in RAM, its agent checks in */
	BOOT_LOCAL,      /* the local disk (leave the network boot) */
	BOOT_INSTALL,    /* the client OS in RAM, installing itself (ml.install=1) */
	BOOT_SHELL,      /* the client OS's maintenance shell (ml.shell=1) */
};

/* "microlinux", "local", "install", "shell"; "" for BOOT_NONE. */
const char *boot_mode_str(int mode);
/* The mode of one of those words; BOOT_NONE for anything else. */
int boot_mode_parse(const char *s);

/*
 * True when s may go into a kernel command line and an iPXE script as
 * one argument: 1 to 1024 printable ASCII bytes without spaces, quotes,
 * backslashes, "$" (iPXE expands ${...}) or "#".
 */
bool boot_arg_ok(const char *s);
/* The same for a whole command line: words of boot_arg_ok separated by spaces. */
bool boot_cmdline_ok(const char *s);

/*
 * The authority of a request's Host header when it is safe to build URLs
 * from: a DNS name, an IPv4 address or a [bracketed IPv6] address, with an
 * optional :port, at most 255 bytes.
 */
bool boot_host_ok(const char *host);

/* What a machine's script is made of. Strings are never NULL ("" when unset). */
struct boot_script_in {
	int mode;                /* enum boot_mode, not BOOT_NONE */
	const char *base;        /* "http://HOST[:PORT]" of the boot listener */
	const char *profile;     /* subdirectory of [boot] root */
	bool squashfs;           /* the profile has filesystem.squashfs (live-boot) */
	const char *server_url;  /* ml.server= */
	const char *fingerprint; /* ml.fp= */
	const char *token;       /* ml.token= */
	const char *name;        /* ml.name= (left out unless boot_arg_ok) */
	const char *mac;         /* canonical MAC, for the script's comments and retry */
	const char *why;         /* where the mode comes from, for the console */
	const char *cmdline;     /* extra kernel arguments */
};

/*
 * Writes the iPXE script into out (NUL-terminated). Returns its length, or
 * -ENOSPC when out is too small, -EINVAL when an argument is unsafe
 * (boot_arg_ok) or the mode is BOOT_NONE.
 */
int boot_script(const struct boot_script_in *in, char *out, size_t outsz);

/*
 * The first stage every iPXE client is pointed at by DHCP: it chains the
 * machine's own script, /boot/MAC, from base. Same returns as boot_script.
 */
int boot_stage1(const char *base, char *out, size_t outsz);
/*
 * The same first stage for TFTP (boot.ipxe there): it reaches the boot
 * listener on port at ${next-server}, the address DHCP gave for TFTP.
 */
int boot_stage1_tftp(uint16_t port, char *out, size_t outsz);

/*
 * A Range request header for a file of size bytes. Returns 1 with *off and
 * *len set for one satisfiable range ("bytes=A-B", "bytes=A-",
 * "bytes=-N"), 0 when the header is to be ignored (absent, another unit,
 * several ranges, malformed: RFC 9110 lets a server send the whole file),
 * or -ERANGE when it is unsatisfiable (416).
 */
int boot_range_parse(const char *hdr, uint64_t size, uint64_t *off, uint64_t *len);

/* Checks the [boot] settings; 0 or -EINVAL with a reason in err. */
int boot_conf_check(const struct srvconf *c, char *err, size_t errsz);

/* The mode that applies to a machine (or an unknown MAC) and why. */
struct boot_choice {
	int mode;
	int64_t machine_id; /* 0: unknown MAC */
	char name[72];      /* the machine's name */
	char why[160];      /* "machine setting", "group lab1", "run 12", ... */
};

/*
 * Resolves the mode of the machine with this canonical MAC (see the top of
 * this file). Returns 0, or -EIO.
 */
int boot_resolve_mac(struct srv *srv, const char *mac, struct boot_choice *out);
/* The same for a machine by id: 0, -ENOENT or -EIO. */
int boot_resolve_machine(struct srv *srv, int64_t machine, struct boot_choice *out);

/* Records that the machine fetched its script with this mode. */
void boot_note(struct store *s, int64_t machine, int mode);

/*
 * Sets a machine's temporary mode (replacing any): run is the run that
 * sets it (0: none), expires_at 0 for none. Returns 0 or a store code.
 */
int boot_temp_set(struct store *s, int64_t machine, int mode, int64_t run, const char *reason,
                  const char *by, int64_t expires_at);
/* Removes the temporary modes that a run set (it ended). */
void boot_temp_clear_run(struct store *s, int64_t run);
/*
 * Removes temporary modes whose run is over: called at start-up, after the
 * runner has ended interrupted runs.
 */
void boot_temp_clear_ended(struct store *s);

/*
 * An agent's hello carried inv.install (docs/install.md): when it reports
 * a finished install newer than the machine's temporary "install" mode,
 * that mode is removed, so the machine's next boot follows its own mode.
 * Returns true when it removed one.
 */
bool boot_install_reported(struct store *s, int64_t machine, const json_t *install);

#endif

/*
 * mlagent, the workstation daemon (docs/mlagent.md): its private header.
 * The wire contract with mlserver is docs/agent-protocol.md.
 *
 * Modules (prefix, file):
 *   acfg_     settings: INI file, kernel command line, precedence (acfg.c, pure but for loading)
 *   cred_     the credential file DATA_DIR/credential (cred.c, pure)
 *   backoff_  reconnect delays with jitter (cred.c's neighbour backoff.c, pure)
 *   inv_      the inventory of this machine (inv.c: /proc, /sys, getifaddrs)
 *   acmd_     commands from the server: parsing and result words (acmd.c, pure)
 *   ahttp_    HTTPS to mlserver with the pin (ahttp.c, libcurl)
 *   agent_    the daemon: enrollment, heartbeat, long poll, commands (agent.c, exec.c)
 *
 * Conventions as everywhere: 0 or a negative errno, a one-line reason in
 * (err, errsz) when something fails.
 */
#ifndef ML_AGENT_H
#define ML_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <pthread.h>

#include <jansson.h>

#include "imgstore.h"
#include "match.h"
#include "mlcast.h"
#include "pin.h"
#include "wol.h"

#ifndef MLAGENT_VERSION
#define MLAGENT_VERSION "0.0"
#endif

#define AGENT_ERR_SIZE 512

/* ---------------------------------------------------------------- acfg */

#define ACFG_DEFAULT_PATH "/etc/microlinux/mlagent.conf"
#define ACFG_DEFAULT_DATA_DIR "/var/lib/mlagent"
#define ACFG_DEFAULT_CMDLINE "/proc/cmdline"
#define ACFG_DEFAULT_INSTALL_STATUS "/run/microlinux/install.json" /* ml-install's result */
#define ACFG_VALUE_MAX 1024 /* longest value taken from the kernel command line */

/*
 * The settings. Strings are malloc'ed (NULL: not set); in a resolved
 * configuration (acfg_resolve) data_dir and log_level are always set.
 */
struct acfg {
	char *server;
	char *data_dir;
	char *name;
	char *enroll_token;
	char *enroll_token_file;
	char *fingerprint; /* resolved: the lower-case colon form (pin_fp_normalize) */
	char *interface;
	char *log_level;
	char *install_status; /* ml-install's status file (docs/install.md); resolved: always set */
	int insecure;         /* bool */
	uint64_t reserve;     /* bytes the image store leaves free */
	int server_src;       /* resolved: where server came from (enum acfg_src) */
};

/* The source of a resolved setting. */
enum acfg_src { ACFG_SRC_NONE, ACFG_SRC_FLAG, ACFG_SRC_FILE, ACFG_SRC_KERNEL };

/* What the kernel command line says: ml.server=, ml.token=, ml.fp=, ml.name=, ml.interface=. */
struct acfg_kcmd {
	char *server, *token, *fp, *name, *interface;
};

/*
 * Loads an INI file into *c (zeroed first; free with acfg_free). A missing
 * file is fine (0, nothing set) unless must_exist. Unknown keys are errors.
 */
int acfg_load_file(const char *path, bool must_exist, struct acfg *c, char *err, size_t errsz);
/* Same from text in memory (no I/O: fuzzable and testable). */
int acfg_load_string(const char *name, const char *text, struct acfg *c, char *err, size_t errsz);
/*
 * Parses a kernel command line (len bytes, need not be NUL-terminated):
 * words separated by white space, a word may be "quoted" as the kernel
 * allows ("ml.name=pc 1" in quotes). Only ml.server, ml.token, ml.fp,
 * ml.name and ml.interface are taken; everything else is ignored; a key
 * given twice keeps the last value (as the kernel does). A value longer than
 * ACFG_VALUE_MAX, an empty one, or one with a control byte is an error
 * naming the key. Free with acfg_kcmd_free. No I/O.
 */
int acfg_cmdline_parse(const char *text, size_t len, struct acfg_kcmd *k, char *err, size_t errsz);
void acfg_kcmd_free(struct acfg_kcmd *k);
/*
 * Merges the sources by precedence: flags, then the file, then the kernel
 * command line, then the defaults; insecure is on when the flags or the
 * file say so. Checks the result: server (when set) is an https:// URL
 * (http:// only with insecure: it would send the credential in clear
 * text), the fingerprint is 64 hex digits (normalized in *out), the
 * log level is known, the name a host name, and only one of enroll_token
 * and enroll_token_file comes from the same source. *out is zeroed first
 * and owns its strings (acfg_free).
 */
int acfg_resolve(const struct acfg *flags, const struct acfg *file, const struct acfg_kcmd *k,
                 struct acfg *out, char *err, size_t errsz);
void acfg_free(struct acfg *c);
/*
 * The server the agent talks to, given the resolved settings c and the
 * credential file's server (cred_server, "" or NULL when not enrolled).
 * Once enrolled the credential's URL wins: a different server from the
 * config file or the kernel command line is ignored, and only --server
 * overrides it; either case fills warn with a line to log (else warn is
 * ""). An http:// result without c->insecure is refused. Returns 0 and
 * *out (borrowed from c or cred_server), or -EINVAL with a reason. No I/O.
 */
int acfg_server_pick(const struct acfg *c, const char *cred_server, const char **out, char *warn,
                     size_t warnsz, char *err, size_t errsz);
/* Writes every key with its default and its help line, as packaging/mlagent.conf. */
void acfg_print(FILE *f);

/* ---------------------------------------------------------------- cred */

#define CRED_TOKEN_LEN 68 /* "mla_" or "mle_" + 64 hex digits */
#define CRED_URL_MAX 1023
#define CRED_FILE_MAX 8192

/*
 * DATA_DIR/credential: lines "key=value" with credential (mla_...),
 * machine_id, name, server, fingerprint (colon form or empty) and pin
 * (sha256//... or empty: an --insecure enrollment). Unknown keys are ignored,
 * a repeated key, a missing credential or machine_id, a control byte or a bad
 * value make it invalid.
 */
struct cred {
	char credential[CRED_TOKEN_LEN + 1];
	uint64_t machine_id;
	char name[MATCH_NAME_SIZE];
	char server[CRED_URL_MAX + 1];
	char fingerprint[PIN_FP_SIZE];
	char pin[PIN_KEY_SIZE];
};
/* True when s is prefix ("mla_" or "mle_") followed by 64 hex digits. */
bool cred_token_ok(const char *s, size_t len, const char *prefix);
/* Parses len bytes. 0 or -EINVAL with a reason naming the line. No I/O. */
int cred_parse(const char *text, size_t len, struct cred *c, char *err, size_t errsz);
/* Formats c; returns the length or -ENOSPC / -EINVAL (a value with a newline). */
int cred_format(const struct cred *c, char *buf, size_t n);
/* Reads and parses a file (-ENOENT when missing), or writes one atomically with mode 0600. */
int cred_load(const char *path, struct cred *c, char *err, size_t errsz);
int cred_save(const char *path, const struct cred *c, char *err, size_t errsz);

/* ------------------------------------------------------------- backoff */

/* Reconnect delays: 1 s doubling to a maximum, each with +-20 % jitter. */
struct backoff {
	uint32_t next_ms; /* the next delay before jitter; 0: not started */
	uint32_t min_ms, max_ms;
};
void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms);
/*
 * The delay to wait now: next_ms scaled by a factor in [0.8, 1.2] chosen by
 * rnd (0 gives 0.8, UINT32_MAX gives 1.2); then next_ms doubles up to max_ms.
 */
uint32_t backoff_next(struct backoff *b, uint32_t rnd);
/* After a success: back to min_ms. */
void backoff_reset(struct backoff *b);

/* ----------------------------------------------------------------- inv */

#define INV_MAX_NETS 64

/* The IPv4 subnets and the MACs of this machine's non-loopback interfaces. */
struct inv_addrs {
	size_t nnets;
	struct match_cidr nets[INV_MAX_NETS];
	uint32_t addrs[INV_MAX_NETS];
	json_t *macs; /* ["aa:bb:..", ...] */
	json_t *ips;  /* ["10.1.2.34/24", ...] */
};
/* Fills *a from getifaddrs (MACs from AF_PACKET). Free with inv_addrs_free. */
int inv_addrs_get(struct inv_addrs *a, char *err, size_t errsz);
void inv_addrs_free(struct inv_addrs *a);
/* From /proc/cpuinfo's text: the first "model name" and the count of "processor" lines. */
int inv_cpuinfo_parse(const char *text, size_t len, char *model, size_t modelsz, unsigned *count);
/* From /proc/meminfo's text: MemTotal in bytes. 0 or -EINVAL. */
int inv_meminfo_parse(const char *text, size_t len, uint64_t *bytes);

struct inv_opts {
	const char *proc;                   /* "/proc" unless a test says otherwise */
	const char *sys;                    /* "/sys" */
	const char *data_dir;               /* for its size and free space */
	const struct imgstore_list *images; /* NULL: none */
	bool reflink;
	const char *install_status; /* ml-install's status file; NULL: none */
};
/* The hello body of the contract (docs/agent-protocol.md). NULL on failure. */
json_t *inv_build(const struct inv_opts *o, char *err, size_t errsz);
/*
 * ml-install's status file (docs/install.md), len bytes: a JSON object with
 * "state" ("done" or "failed"), "at" (unix time, >= 0), "kept_data" (bool)
 * and "disk", "reason", "profile" (each a string of at most 1024 bytes, or
 * null). Returns 0 and *out, a new object of exactly those keys for the
 * inventory's "install" (unknown keys are dropped), or -EINVAL with a reason
 * naming the key. No I/O.
 */
int inv_install_parse(const char *text, size_t len, json_t **out, char *err, size_t errsz);
/* The images part of it, from an imgstore listing. */
json_t *inv_images(const struct imgstore_list *l);

/* ---------------------------------------------------------------- acmd */

enum acmd_kind { ACMD_RECEIVE = 1, ACMD_WOL, ACMD_ROLLBACK, ACMD_CANCEL };

struct acmd_receive {
	uint64_t image_id, version_id, size;
	char sha256[IMGSTORE_SHA_HEX]; /* lower case */
	uint8_t manifest_sha256[32];
	char group[16];
	uint16_t port;
	uint32_t session;
	uint8_t key[MC_MAX_KEY];
	size_t keylen;
	char name[65];
	unsigned timeout_s;
};

/* A rollback's args: {"image_id", "from_version"?}. */
struct acmd_rollback {
	uint64_t image_id;
	uint64_t from_version; /* 0: not given (roll back whatever is active) */
};

struct acmd {
	uint64_t id;
	int kind; /* enum acmd_kind */
	union {
		struct acmd_receive rx;
		struct wol_relay wol;
		struct acmd_rollback rb;
		uint64_t target; /* cancel: the command to stop */
	} u;
};

#define ACMD_MAX_TIMEOUT_S 86400

/* Parses the args of a receive command. 0 or -EINVAL naming the field. */
int acmd_receive_parse(const json_t *args, struct acmd_receive *r, char *err, size_t errsz);
/*
 * Parses one command object {"id", "kind", "args", ...}. An unknown kind is
 * -ENOTSUP (the id is still filled, so the agent can fail it); other errors
 * -EINVAL. No I/O.
 */
int acmd_parse(const json_t *cmd, struct acmd *c, char *err, size_t errsz);
/* The commands array of a poll answer (a new reference), or NULL and -EINVAL. */
int acmd_poll_parse(const char *text, size_t len, json_t **commands, char *err, size_t errsz);
/* True when bcast is 255.255.255.255 or the broadcast of one of nets. */
bool acmd_bcast_allowed(uint32_t bcast, const struct match_cidr *nets, size_t n);
/* The result word of an mc_fail code ("timeout", "nospace", ...), and whether to try again. */
const char *acmd_fail_word(int code);
bool acmd_fail_retryable(int code);
/*
 * Whether a step that could not start (a negative errno: mc_receive < 0,
 * the store busy, no thread) is worth trying again: only for transient
 * errors (-EAGAIN, -EBUSY, -EADDRINUSE, -ENOBUFS, -ENOMEM, -EINTR,
 * -ENETDOWN, -ENETUNREACH, -EADDRNOTAVAIL). Such a failure is reported with
 * code "internal", which is otherwise not retryable.
 */
bool acmd_start_retryable(int neg_errno);
/*
 * Whether a rollback is to switch, given the image's active version (0:
 * none): always without from_version; with it only when it is active, so
 * that a rollback delivered twice does not undo itself.
 */
bool acmd_rollback_applies(const struct acmd_rollback *rb, uint64_t active);

/*
 * The poll's rhythm (docs/mlagent.md, "Control channel"). The first poll,
 * and the first after a failed one, asks for every unfinished command
 * (all=1); the others only wait for new ones. An answer with nothing new
 * that came back in under a second is followed by a 1 s pause, so a server
 * that answers at once never makes a tight loop. Pure.
 */
struct acmd_poller {
	bool all; /* the next poll asks for all=1 */
};
void acmd_poller_init(struct acmd_poller *p);
/* The path of the next poll: "/api/v1/agent/poll?wait=N[&all=1]". 0 or -ENOSPC. */
int acmd_poller_path(const struct acmd_poller *p, unsigned wait_s, char *buf, size_t n);
/*
 * After a poll: ok (an answer was taken), nnew (commands in it that were
 * new to the agent or run again), elapsed_ms (the poll's duration).
 * Returns the milliseconds to pause before the next poll (0: at once; a
 * failed poll returns 0, its back-off is the caller's).
 */
uint32_t acmd_poller_done(struct acmd_poller *p, bool ok, size_t nnew, uint64_t elapsed_ms);
/*
 * What the poll thread does with a listed command given the agent's record
 * of it: unknown (!known) or known but neither running nor finished (its
 * thread ended without a final state) it runs (again); finished it
 * re-posts the final state; running it leaves alone.
 */
enum acmd_listed { ACMD_LISTED_RUN, ACMD_LISTED_REPOST, ACMD_LISTED_IGNORE };
int acmd_listed_action(bool known, bool running, bool finished);

/* --------------------------------------------------------------- ahttp */

struct ahttp;
struct ahttp_resp {
	long status; /* HTTP status; 0 when the request did not complete */
	char *body;  /* NUL-terminated, malloc'ed */
	size_t len;
};
/*
 * A connection to server (an http or https URL) from one thread. pin
 * ("sha256//..."), or insecure, says how the server is trusted; bearer is
 * the credential, or NULL. The strings must outlive the handle. stop, when
 * set non-zero, aborts a transfer under way.
 */
struct ahttp *ahttp_new(const char *server, const char *pin, bool insecure, const char *bearer,
                        volatile int *stop);
void ahttp_free(struct ahttp *h);
/*
 * One request: method, path (from "/api/..."), body (JSON text or NULL),
 * at most max bytes of answer, timeout_s in all. Returns 0 with r->status
 * for any HTTP answer, or a negative errno (transport, TLS, pin, stop) with
 * a reason. Free r with ahttp_resp_free.
 */
int ahttp_do(struct ahttp *h, const char *method, const char *path, const char *body, size_t max,
             long timeout_s, struct ahttp_resp *r, char *err, size_t errsz);
void ahttp_resp_free(struct ahttp_resp *r);
/*
 * First contact: an unchecked GET /health (nothing secret is sent) to read
 * the certificate, which must have the fingerprint fp (colon form); fills
 * pin with its public-key pin. -EPERM when it does not match.
 */
int ahttp_learn_pin(const char *server, const char *fp, char pin[PIN_KEY_SIZE], volatile int *stop,
                    char *err, size_t errsz);

/* --------------------------------------------------------------- agent */

/* One command the agent knows of: running, or finished with its final result. */
struct agent_cmd {
	struct agent_cmd *next;
	struct agent *ag;
	uint64_t id;
	struct acmd c;     /* parsed */
	volatile int stop; /* set by a cancel or by SIGTERM */
	bool cancelled;    /* stop came from a cancel command */
	bool running;      /* its thread runs */
	bool receiving;    /* a receive holding its image (one per image at a time) */
	bool finished;     /* final is set */
	bool listed;       /* in the latest poll answer */
	char *final;       /* the JSON body of its final state, for re-posting */
};

/*
 * The daemon's state, shared by its threads (agent.c, exec.c). It is on the
 * heap: when command threads do not stop in time, agent_run leaves it (and
 * everything it points to) allocated for them, and the process _exits.
 */
struct agent {
	const struct acfg *c;
	volatile int *stop;
	char pinbuf[PIN_KEY_SIZE]; /* a pin learned at start */
	const char *server;        /* the configured one, else the credential's */
	const char *pin;           /* NULL: insecure */
	bool insecure;
	struct cred cred;
	struct imgstore *store;
	pthread_mutex_t store_mu; /* the store handle is used by one thread at a time */

	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cv;  /* a command thread ended, an image became free, hello wanted */
	struct agent_cmd *cmds;
	unsigned running; /* command threads alive */
	bool hello_now;
	unsigned heartbeat_s, poll_wait_s;
	bool revoked;
};

/* Runs a parsed command on its own thread (exec.c); cmd is in ag->cmds, running set. */
int agent_exec_start(struct agent_cmd *cmd);
/*
 * Posts a command's state (docs/agent-protocol.md, "Command progress"):
 * result is stolen (may be NULL), phase may be NULL. A final state is kept
 * in cmd->final first (so that the poll thread re-posts it if this post is
 * lost) and tried a few times. Returns 0 once the server took it.
 */
int agent_post(struct ahttp *h, struct agent_cmd *cmd, const char *state, const char *phase,
               json_t *result);
/* Asks the heartbeat thread for a hello now (an image switched). */
void agent_hello_soon(struct agent *ag);
/* Sleeps ms, or less once *stop is set. */
void agent_sleep(volatile int *stop, uint32_t ms);

/* The agent shares the signal handler's flag with libcurl callbacks as an int. */
_Static_assert(_Generic((sig_atomic_t)0, int : 1, default : 0), "sig_atomic_t is not int");

#define AGENT_RUN_LEFT 1 /* agent_run: command threads still run; _exit(0) at once */

/*
 * Runs the daemon with resolved settings until *stop is set (by a signal).
 * Returns 0 after a clean stop, or a negative errno when it could not start
 * (no fingerprint, bad data directory, store locked), with a reason.
 * Returns AGENT_RUN_LEFT when command threads did not stop within the
 * grace period: they still use the agent's state, c and libcurl, so the
 * caller must keep c, do no global cleanup and leave with _exit(0).
 */
int agent_run(const struct acfg *c, volatile sig_atomic_t *stop, char *err, size_t errsz);

#endif

/*
 * mlserver's root context, built in main() and passed down (docs/server.md).
 * Modules keep their state behind their own headers; this one only ties
 * them together.
 */
#ifndef ML_SERVER_H
#define ML_SERVER_H

#include <stddef.h>
#include <stdint.h>

/* Settings (srvconf.c): INI file, then command-line overrides. */
struct srvconf {
	/* [server] */
	char *listen; /* "ADDR:PORT" */
	char *data_dir;
	char *log_level;
	char *user, *group; /* run as user after binding when started as root (priv.h) */
	uint64_t threads;   /* HTTP worker threads */
	uint64_t max_connections;
	/* [api] */
	uint64_t max_body;       /* bytes of a JSON request body */
	uint64_t upload_max;     /* bytes of an image upload */
	uint64_t session_ttl_ms; /* login session lifetime */
	/* [tls] */
	int tls;                  /* serve HTTPS (default) */
	char *tls_cert, *tls_key; /* PEM files; both empty: self-signed in data_dir/tls */
	char *tls_names;          /* extra names for the self-signed certificate */
	/* [store] */
	char *db_path; /* empty: data_dir/mlserver.db */
	/* [library] */
	uint64_t chunk_size;
	uint64_t zstd_level;
	uint64_t import_threads; /* 0: one per CPU */
	uint64_t imports_max;    /* imports running at once */
	char *import_roots;      /* comma-separated directories path imports may read from */
	/* [scheduler] */
	uint64_t catchup_ms; /* how late a missed recurring run may still start */
	uint64_t tick_ms;    /* how often due times are checked */
	/* [wol] (wol.h) */
	uint64_t wol_port;   /* UDP port of magic packets */
	uint64_t wol_repeat; /* packets per target */
	uint64_t wol_gap_ms; /* pause between repeats */
	char *wol_interface; /* "": none; else 255.255.255.255 also goes out of it */
	/* [mail] (mail.h) */
	char *mail_url;           /* smtp://host[:port] or smtps://; "": no mail */
	char *mail_from;          /* "addr" or "Name <addr>" */
	char *mail_username;      /* "": no authentication */
	char *mail_password_file; /* first line is the password */
	char *mail_starttls;      /* "try", "require" or "off" */
	char *mail_ca_file;       /* "": the system's CA certificates */
	int mail_insecure;        /* skip certificate verification (test servers) */
	uint64_t mail_timeout_ms; /* whole conversation with the mail server */
	/* [agents] (docs/agent-protocol.md) */
	int agents_register_unknown; /* enroll machines the inventory lacks */
	char *agents_new_group;      /* group of machines registered by enrollment */
	uint64_t agents_offline_ms;  /* online while polled within this */
	uint64_t agents_heartbeat_ms;
	uint64_t agents_poll_wait_ms; /* longest hold of a long poll */
	/* [runner] (docs/runs.md) */
	int runner_enabled;        /* off: runs stay pending */
	uint64_t runner_max_runs;  /* runs executing at once */
	char *runner_group;        /* multicast group of sessions */
	uint64_t runner_port;      /* UDP port of the first run slot; slot i uses port + 2 * i */
	char *runner_interface;    /* interface the sessions leave by; "": routing decides */
	uint64_t runner_rate;      /* bits per second when the deployment sets none */
	uint64_t runner_ttl;       /* multicast TTL (1: the server's subnet only) */
	uint64_t runner_rounds;    /* sessions per run for machines that fell out */
	uint64_t runner_ready_ms;  /* wait for agents to answer a receive command */
	uint64_t runner_finish_ms; /* wait for agents' results after a session */
	/* [tftp] (tftp.h, docs/tftp.md) */
	int tftp_enabled;             /* serve [tftp] root read-only over TFTP */
	char *tftp_listen;            /* "ADDR:PORT" */
	char *tftp_root;              /* "": data_dir/tftp */
	uint64_t tftp_blksize_max;    /* clamp of the blksize option */
	uint64_t tftp_windowsize_max; /* clamp of the windowsize option */
	uint64_t tftp_timeout_ms;     /* first retransmission timeout */
	uint64_t tftp_retries;        /* retransmissions before a transfer is dropped */
	/* [boot] (boot.h, docs/netboot.md) */
	int boot_enabled;             /* serve iPXE scripts and boot files over HTTP */
	char *boot_listen;            /* "ADDR:PORT" of the plain-HTTP boot listener */
	char *boot_root;              /* "": data_dir/boot; ROOT/PROFILE/vmlinuz... */
	char *boot_profile;           /* the client OS profile machines boot */
	char *boot_default_mode;      /* known machines whose mode nothing sets */
	char *boot_unknown_mode;      /* MACs the inventory does not know */
	char *boot_server_url;        /* ml.server given to clients; "": derived */
	char *boot_enroll_token_file; /* ml.token given to clients; "": none */
	char *boot_cmdline;           /* extra kernel arguments */
};

/* Defaults for every setting, then the file (missing default file is fine). */
void srvconf_defaults(struct srvconf *c);
/*
 * Loads path into c. explicit: the path was given by the user, so a missing
 * file is an error. Returns 0 or a negative code with a reason in err.
 */
int srvconf_load(struct srvconf *c, const char *path, int explicit, char *err, size_t errsz);
/*
 * Applies one "SECTION.KEY=VALUE" override (the --set flag) with the same
 * checks as the file. Returns 0 or -EINVAL with a reason in err.
 */
int srvconf_set(struct srvconf *c, const char *assign, char *err, size_t errsz);
/* Checks values that depend on each other; 0 or -EINVAL with a reason. */
int srvconf_validate(const struct srvconf *c, char *err, size_t errsz);
void srvconf_free(struct srvconf *c);
/* Writes every key with its value and help line, as an INI file, to f. */
void srvconf_dump(const struct srvconf *c, void *file);

#define SRVCONF_DEFAULT_PATH "/etc/microlinux/mlserver.conf"

struct store;
struct http;
struct library;
struct sched;
struct agentq;
struct runner;
struct tftp;
struct bootsrv;

struct srv {
	struct srvconf conf;
	struct store *store;
	struct http *http;
	struct library *lib;
	struct sched *sched;
	struct agentq *agentq;
	struct runner *runner;
	struct tftp *tftp;
	struct bootsrv *bootsrv;
	char fingerprint[96]; /* SHA-256 of the TLS certificate, hex with colons */
	uint16_t api_port;    /* bound port of the API listener */
	uint16_t boot_port;   /* bound port of the boot listener (bootsrv.h) */
	volatile int stop;
};

#endif

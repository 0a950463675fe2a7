/*
 * mlctl: the command-line client of mlserver's HTTP API (docs/mlctl.md,
 * docs/api.md). This is the program's one private header.
 *
 * Shape: main.c parses the global options, picks a noun and a verb from the
 * command table (one cmd_NOUN.c per noun) and runs the command with a root
 * context, struct mlctl, built in main() and passed down. Everything but
 * main.c goes into a static library so that unit tests and the fuzz harness
 * link the same code.
 *
 * Modules and prefixes:
 *   sb_       growable strings                    (sb.c, pure)
 *   tbl_      aligned text tables                 (table.c, pure)
 *   when_     times: API <-> local time           (when.c, pure)
 *   pin_      certificate fingerprints and pins   (src/common/pin.c, pure)
 *   ctlconf_  the config file                     (ctlconf.c; parse/format pure)
 *   arg_      option parsing and usage texts      (args.c)
 *   out_      printing objects: table, show, json (out.c; rendering pure)
 *   ml_       errors and exit statuses            (ml.c)
 *   cl_       HTTP client (libcurl)               (client.c)
 *   prompt_   passwords and questions             (prompt.c)
 *   res_      generic resource commands, names    (res.c)
 *   rv_       runs and agent commands for people  (runview.c, pure)
 *   cmd_      the command table                   (cmd_*.c)
 *
 * Conventions: functions returning int return 0 or a negative errno-style
 * code; a command's failure has already been printed (one line on stderr)
 * and its exit status recorded in ml->status by the ml_ helpers.
 */
#ifndef ML_CLI_MLCTL_H
#define ML_CLI_MLCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#include "pin.h"

/* Exit statuses (docs/mlctl.md, "Exit status"). */
enum {
	ML_EXIT_OK = 0,
	ML_EXIT_FAIL = 1,        /* the server refused or failed, or a local failure */
	ML_EXIT_USAGE = 2,       /* bad usage */
	ML_EXIT_UNREACHABLE = 3, /* cannot reach the server (network, TLS, pin) */
};

/* ------------------------------------------------------------------ sb */

/*
 * A growable NUL-terminated string, the caller's struct (zero-initialize
 * it). Running out of memory is sticky: later calls do nothing and
 * sb_take() returns NULL.
 */
struct sb {
	char *buf;
	size_t len, cap;
	bool oom;
};

void sb_addn(struct sb *s, const char *p, size_t n);
void sb_add(struct sb *s, const char *str);
void sb_addc(struct sb *s, char c);
void sb_addf(struct sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends str percent-encoded for a URL query value. */
void sb_add_qval(struct sb *s, const char *str);
/* Returns the string (the caller frees it; "" when nothing was added) or NULL after OOM. */
char *sb_take(struct sb *s);
void sb_free(struct sb *s);

/* ----------------------------------------------------------------- tbl */

/*
 * Aligned text tables for people: a header row, then cells row by row.
 * Columns are separated by two spaces; the last column is not padded;
 * right-aligned columns suit numbers. Cells are cleaned for a terminal
 * (control characters become '?', so server data cannot move the cursor
 * or change colours), an empty cell shows as "-", and a cell wider than
 * TBL_CELL_MAX columns is cut with "...". Widths count UTF-8 characters.
 */
#define TBL_CELL_MAX 60
struct tbl;

/* A table of ncols (1..64) columns; NULL when out of memory or ncols is bad. */
struct tbl *tbl_new(size_t ncols);
void tbl_free(struct tbl *t);
/* Sets column col's title and alignment. */
int tbl_head(struct tbl *t, size_t col, const char *title, bool right);
/* Adds the next cell (row-major; a row ends after ncols cells). NULL = empty. */
int tbl_add(struct tbl *t, const char *cell);
/* The rendered table, one line per row, each ending in '\n'; the caller frees it. */
char *tbl_render(const struct tbl *t);
/* The display width of UTF-8 text: characters, not bytes. */
size_t tbl_width(const char *s);
/*
 * A copy of s safe for a terminal: control characters (C0, DEL, C1 and
 * invalid UTF-8 bytes) become '?'; tabs and newlines become a space; when
 * maxw > 0 and the text is wider, it is cut to maxw columns ending in
 * "...". The caller frees the result; NULL when out of memory.
 */
char *tbl_clean(const char *s, size_t maxw);

/* ---------------------------------------------------------------- when */

/* Parses the API's output form "YYYY-MM-DDTHH:MM:SSZ" (UTC). 0 or -EINVAL. */
int when_parse_utc(const char *s, time_t *out);
/*
 * Formats an API time in local time: "YYYY-MM-DD HH:MM" (seconds = false) or
 * "YYYY-MM-DD HH:MM:SS ZONE". Returns 0, or -EINVAL when s is not an API
 * time (out is then untouched), or -ENOSPC.
 */
int when_local(const char *s, bool seconds, char *out, size_t outsz);
/*
 * Turns a time a person typed into the API's form, always in UTC
 * ("2026-11-26T13:00:00Z"):
 *   "2026-11-26T13:00:00Z", "...T14:00:00+01:00"   -> that instant;
 *   "2026-11-26 14:00", "2026-11-26T14:00[:SS]"     -> that local time;
 *   "+30m", "+2h", "+90s", "+1d"                     -> now plus that.
 * Local means this process's time zone (TZ), like the times mlctl shows,
 * so what one types and what one reads agree whatever the server's zone.
 * Returns 0, or -EINVAL with *why set to a reason.
 */
int when_input(const char *in, time_t now, char *out, size_t outsz, const char **why);

/* ----------------------------------------------------------------- pin */

/* Fingerprints and public-key pins: src/common/pin.h (shared with mlagent). */

/* ------------------------------------------------------------- ctlconf */

/*
 * The config file (default ~/.config/microlinux/mlctl.conf): an INI file
 * without sections, written by `mlctl login` with mode 0600. Every field is
 * a heap string or NULL.
 */
struct ctlconf {
	char *server;      /* base URL, normalized: "https://host:port" */
	char *user;        /* who logged in, for messages */
	char *token;       /* the session or API token */
	char *fingerprint; /* SHA-256 of the server certificate (colon form) */
	char *pubkey;      /* "sha256//...": the public key pinned with libcurl */
	char *cacert;      /* a CA or site certificate file instead of a pin */
	int insecure;      /* check no certificate at all (0/1) */
};

/*
 * Parses the text of a config file (name for messages) into c, which must
 * be zeroed or cleared. Values are checked: the server URL is normalized,
 * fingerprint and pubkey must have their forms. Returns 0 or a negative
 * code with a one-line message in err. No I/O. Clear c either way.
 */
int ctlconf_parse(const char *name, const char *text, struct ctlconf *c, char *err, size_t errsz);
/* The text of a config file holding c; the caller frees it. NULL when out of memory. */
char *ctlconf_format(const struct ctlconf *c);
/* Reads and parses path; -ENOENT when it does not exist (c stays empty). */
int ctlconf_load(const char *path, struct ctlconf *c, char *err, size_t errsz);
/*
 * Writes c to path atomically with mode 0600, creating the directory (mode
 * 0700) when needed. 0 or -errno with a message in err.
 */
int ctlconf_save(const char *path, const struct ctlconf *c, char *err, size_t errsz);
/* Frees c's strings and zeroes it. */
void ctlconf_clear(struct ctlconf *c);
/*
 * Is s one word of printable ASCII (a token or a user name that can go into
 * an HTTP header or a config line)?
 */
bool ctlconf_word(const char *s);
/* Sets *dst to a copy of src (NULL clears). 0 or -ENOMEM. */
int ctlconf_set(char **dst, const char *src);
/*
 * The config path: MLCTL_CONFIG, else $XDG_CONFIG_HOME/microlinux/mlctl.conf,
 * else $HOME/.config/microlinux/mlctl.conf. 0, or -ENOENT when none can be
 * built (no HOME), -ENAMETOOLONG.
 */
int ctlconf_default_path(char *out, size_t outsz);
/*
 * Normalizes a server address: "host", "host:port", "https://host[:port]",
 * "http://host[:port]", an IPv6 literal in brackets, each with an optional
 * trailing "/" or "/api/v1". Without a scheme it is https and without a
 * port (and without a scheme) 8443. Result: "scheme://host:port".
 * Returns 0 or -EINVAL with *why set.
 */
int ctlconf_server_url(const char *in, char *out, size_t outsz, const char **why);

/* ---------------------------------------------------------------- args */

struct mlctl;
struct args;
struct res;

/*
 * What an option takes and, when it has a key, how it goes into a request
 * automatically (arg_body, arg_query):
 */
enum vk {
	V_FLAG,  /* a flag, no value, no automatic mapping */
	V_VAL,   /* one value, no automatic mapping */
	V_LIST,  /* repeatable value, no automatic mapping */
	V_STR,   /* one value -> string; "" on a change -> null (clears) */
	V_INT,   /* one value -> integer; "" on a change -> null */
	V_TIME,  /* one value -> time (when_input) */
	V_TRUE,  /* flag -> key: true */
	V_FALSE, /* flag -> key: false */
	V_STRS,  /* repeatable -> array of strings ("" alone -> []) */
	V_ID,    /* one value: an id or a name of ref -> integer */
	V_IDS,   /* repeatable, also comma-separated: ids or names of ref -> array */
	V_RAW,   /* repeatable KEY=VALUE: VALUE as JSON when it parses, else a string */
};

/*
 * One option: --name (a one-letter name is -n). key is the JSON field it
 * fills ("a.b" fills a nested object), or a query parameter when it starts
 * with '?', or NULL.
 */
struct opt {
	const char *name;
	enum vk vk;
	const char *meta; /* "ROOM" in the usage text */
	const char *help;
	const char *key;
	const struct res *ref; /* V_ID, V_IDS: what the names name */
};

enum {
	CMD_LIST = 0x1,   /* takes --limit and --offset */
	CMD_NOAUTH = 0x2, /* needs no token */
};

struct cmd {
	const char *verb;  /* NULL: the noun is the command (mlctl health) */
	const char *usage; /* the positional part: "ID|NAME" */
	int min_pos, max_pos;
	const struct opt *opts; /* {NULL}-terminated; may be NULL */
	int (*run)(struct mlctl *ml, struct args *a);
	const char *summary; /* one line */
	const char *help;    /* more lines, or NULL */
	const char *example; /* one or more lines */
	const void *data;    /* for generic handlers: a struct res */
	unsigned flags;
};

struct noun {
	const char *name;
	const char *summary;
	const struct cmd *cmds; /* {NULL run}-terminated */
};

/* The global options, accepted before the noun and after the verb. */
extern const struct opt arg_global_opts[];

/*
 * Parses argv[0..argc) for cmd (options anywhere, "--" ends them, "-" is a
 * positional) and the global options (stored in ml). Returns the parsed
 * arguments, or NULL after a usage error (printed, status 2) or --help
 * (printed, status 0; *help set).
 */
struct args *arg_parse(struct mlctl *ml, const struct noun *n, const struct cmd *c, int argc,
                       char **argv, bool *help);
/*
 * Parses one global option at argv[0] (before the noun): returns how many
 * arguments it used (1 or 2), 0 when argv[0] is not an option, or <0 after
 * a usage error (printed).
 */
int arg_parse_globals(struct mlctl *ml, int argc, char **argv, bool *help);
void arg_free(struct args *a);
const struct cmd *arg_cmd(const struct args *a);
/* The i-th positional argument, or NULL. */
const char *arg_pos(const struct args *a, int i);
int arg_npos(const struct args *a);
/* The last value of option name, or NULL when absent. */
const char *arg_val(const struct args *a, const char *name);
/* Every value of option name (*n of them; NULL when absent). */
const char *const *arg_vals(const struct args *a, const char *name, size_t *n);
/* Was the flag (or any value of the option) given? */
bool arg_has(const struct args *a, const char *name);
/*
 * Puts every given option that has a JSON key into body (creating nested
 * objects), resolving names of V_ID and V_IDS. patch: "" means null. 0 or
 * <0 (printed).
 */
int arg_body(struct mlctl *ml, const struct args *a, json_t *body, bool patch);
/* Appends every given option with a '?' key to the path as a query. */
int arg_query(struct mlctl *ml, const struct args *a, struct sb *path);
/* Prints usage texts: of everything, of a noun, of one command. */
void arg_usage_main(FILE *f);
/* "mlctl NOUN VERB ARGS [OPTIONS]", without a newline. */
void arg_usage_line(FILE *f, const struct noun *n, const struct cmd *c);
void arg_usage_noun(FILE *f, const struct noun *n);
void arg_usage_cmd(FILE *f, const struct noun *n, const struct cmd *c);

/* The command table (main.c and args.c). */
extern const struct noun *const cmd_nouns[];
extern const struct noun cmd_login_noun, cmd_logout_noun, cmd_whoami_noun, cmd_passwd_noun,
    cmd_health_noun, cmd_user_noun, cmd_token_noun, cmd_audit_noun, cmd_image_noun,
    cmd_library_noun, cmd_machine_noun, cmd_group_noun, cmd_criterion_noun, cmd_entry_noun,
    cmd_right_noun, cmd_deploy_noun, cmd_run_noun, cmd_agent_noun, cmd_enroll_noun,
    cmd_command_noun;

/* ------------------------------------------------------------------ ml */

/*
 * The root context: settings, output mode, the HTTP handle and the exit
 * status. Built in main(), passed to everything.
 */
struct mlctl {
	/* Command-line settings (borrowed from argv). */
	const char *opt_server, *opt_config, *opt_cacert, *opt_fingerprint;
	bool opt_insecure;
	bool json, quiet, verbose;
	/* --limit / --offset of list commands. */
	bool has_limit;
	uint64_t limit, offset;

	/* The config file and the settings in effect. */
	char config_path[4096];
	struct ctlconf conf;
	char *server;              /* base URL, owned; NULL when none is known */
	const char *token;         /* borrowed from the environment or conf */
	bool token_from_conf;      /* the token is the config file's */
	const char *pin;           /* "sha256//..." to pin, or NULL */
	const char *fp;            /* the certificate fingerprint the pin came from */
	const char *cacert;        /* CA file, or NULL for the system's */
	bool insecure;             /* no certificate check */
	char want_fp[PIN_FP_SIZE]; /* --fingerprint / MLCTL_FINGERPRINT, normalized */
	char fp_pin[PIN_KEY_SIZE]; /* the pin learned for want_fp */
	char fp_seen[PIN_FP_SIZE]; /* the fingerprint that pin belongs to */

	/* The command being run ("machine add"), for messages. */
	char cmdname[64];
	int status; /* exit status of the first failure */
	bool tty_in, tty_out, tty_err;

	void *curl;    /* the CURL handle, reused for every request */
	json_t *cache; /* lists fetched for name resolution: path -> items */
};

/* Prints "mlctl: CMD: message" (a usage error), records status 2; returns -EINVAL. */
int ml_usage(struct mlctl *ml, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "mlctl: CMD: message", records status 1; returns -EPROTO. */
int ml_fail(struct mlctl *ml, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "mlctl: CMD: message", records status 3; returns -EHOSTUNREACH. */
int ml_unreachable(struct mlctl *ml, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "mlctl: warning: message" and changes no status. */
void ml_warn(struct mlctl *ml, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Settles the settings in effect from the options, the environment and the
 * config file (docs/mlctl.md, "Settings"). 0 or <0 (printed).
 */
int ml_settle(struct mlctl *ml);
/* Needs a server: 0, or a usage error saying how to name one. */
int ml_need_server(struct mlctl *ml);

/* ------------------------------------------------------------------ cl */

/* A response: status, raw body (NUL-terminated) and its JSON when it parsed. */
struct cl_resp {
	long status;
	char *body;
	size_t len;
	json_t *json;
};

void cl_resp_free(struct cl_resp *r);
/* Frees the HTTP handle (NULL is fine). */
void cl_cleanup(struct mlctl *ml);
/*
 * Sends one request to ml->server + "/api/v1" + path (path may carry a
 * query) with the token (unless noauth) and body as JSON (NULL: none).
 * Returns 0 when the server answered, whatever the status; a negative code
 * when it could not be reached (printed, status 3).
 */
int cl_send(struct mlctl *ml, const char *method, const char *path, const json_t *body, bool noauth,
            struct cl_resp *resp);
/*
 * Like cl_send, and a status other than 2xx is an error: the server's
 * message is printed (status 1). On success *out (when out is not NULL)
 * owns the response's JSON (NULL for 204).
 */
int cl_call(struct mlctl *ml, const char *method, const char *path, const json_t *body,
            json_t **out);
/* Prints the error of a non-2xx response (status 1); returns -EPROTO. */
int cl_error(struct mlctl *ml, const struct cl_resp *r);
/*
 * Fetches a list: every page (or, with --limit, at most that many items
 * from --offset), as one document {"items", "total", "limit", "offset"}.
 * A bare JSON array answer is accepted as one page. 0 or <0 (printed).
 */
int cl_list(struct mlctl *ml, const char *path, bool all_pages, json_t **doc);
/*
 * Streams a file (or stdin for "-") as the body of a PUT, with a progress
 * bar on a terminal. 0 with *out the 2xx answer's JSON, or <0 (printed).
 */
int cl_upload(struct mlctl *ml, const char *path, const char *file, json_t **out);

/* What a first contact learned about the server (cl_probe). */
struct cl_probe {
	bool verified;               /* the chain of trust (system or --cacert) checked out */
	char fp[PIN_FP_SIZE];        /* the certificate curl saw; "" over http */
	char pin[PIN_KEY_SIZE];      /* its public-key pin */
	char health_fp[PIN_FP_SIZE]; /* /health's tls_fingerprint ("" when absent) */
};
/*
 * GET /health once to learn the server's certificate: first with the
 * normal checks (system CAs or ml->cacert); when that fails only because
 * the certificate is not trusted and try_unverified is set, again without
 * checks (nothing secret is sent). Returns 0 with p filled, or <0 (printed).
 */
int cl_probe(struct mlctl *ml, bool try_unverified, struct cl_probe *p);

/* ------------------------------------------------------------- prompt */

/*
 * Reads a password: from the terminal without echo when stdin is one
 * (prompt on stderr), else one line from stdin. The newline is dropped.
 * 0, -EINVAL (empty, or longer than size - 1), -EIO/-ENODATA (no input).
 */
int prompt_password(const char *prompt, char *buf, size_t size);
/* The first line of a file as a password; same codes. */
int prompt_password_file(const char *path, char *buf, size_t size);
/* Asks a yes/no question on the terminal; true only for y or yes. */
bool prompt_yes(const char *question);
/* A text answer from the terminal (echoed); 0 or <0. */
int prompt_line(const char *prompt, char *buf, size_t size);

/* ----------------------------------------------------------------- out */

enum colfmt {
	C_STR,  /* any value as text */
	C_NUM,  /* a number, right-aligned */
	C_TIME, /* an API time, in local time */
	C_BOOL, /* yes / no */
	C_SIZE, /* bytes, as KiB/MiB/GiB */
	C_FN,   /* computed by fn */
};

/* A table column: title, the field (dotted path), how to show it. */
struct col {
	const char *title;
	const char *key;
	enum colfmt fmt;
	char *(*fn)(const json_t *obj); /* C_FN: returns a heap string or NULL */
};

/* The text of one value for a table cell or a show line; the caller frees it. */
char *out_value(const json_t *v, enum colfmt fmt, bool full);
/* A field by dotted path ("options.rate_mbps"), or NULL. Borrowed. */
const json_t *out_get(const json_t *obj, const char *path);
/* The table of items (a JSON array of objects) with cols ({NULL}-terminated). */
char *out_table(const json_t *items, const struct col *cols);
/* One object as "key: value" lines, nested objects flattened, times local. */
char *out_show(json_t *obj);
/* Bytes as "1.5 GiB" into buf. */
void out_size(uint64_t n, char *buf, size_t size);
/* Prints a list document: --json as is, -q ids, else the table. 0 or <0. */
int out_list(struct mlctl *ml, const json_t *doc, const struct col *cols);
/* Prints one object: --json as is, -q its id, else out_show. 0 or <0. */
int out_one(struct mlctl *ml, json_t *obj);
/* Prints JSON pretty on stdout (one document). */
int out_json(struct mlctl *ml, const json_t *doc);
/*
 * A progress line on stderr ("\rupload  42% [#####     ] detail"), for a
 * terminal; out_progress_end() ends it with a newline.
 */
void out_progress(const char *label, double frac, const char *detail);
void out_progress_end(void);

/* ----------------------------------------------------------------- res */

/*
 * A kind of object behind a path: how to name it, list it and show it.
 * name_key is the field names are matched against (NULL: ids only).
 */
struct res {
	const char *noun; /* "machine" */
	const char *path; /* "/machines" */
	const char *name_key;
	bool icase;  /* names compare case-insensitively (host names) */
	bool search; /* the list takes ?q= to narrow a name search */
	const struct col *cols;
	/*
	 * For tables only (not --json or -q): adds fields to the fetched items
	 * that the columns show, such as names for the ids an item refers to
	 * (keys starting with '_'). NULL: none. 0 or <0 (printed).
	 */
	int (*prep)(struct mlctl *ml, json_t *items);
};

/*
 * Resolves "ID" (digits) or a name to an id: a name is looked up in the
 * list (fetched once per run); no match or several are errors naming what
 * was searched. 0 or <0 (printed).
 */
int res_id(struct mlctl *ml, const struct res *r, const char *arg, int64_t *id);
/*
 * Resolves an image version: "ID" (digits), "vN" or "#N" (number N of the
 * image), "latest". image_id must be known for the last forms. 0 or <0.
 */
int res_version(struct mlctl *ml, int64_t image_id, const char *arg, int64_t *vid);
/*
 * The name of r's object with this id, from r's whole list (fetched once
 * per run): 0 with *name borrowed from the cache, or NULL when there is no
 * such object (or r has no names); <0 when the list cannot be fetched
 * (printed).
 */
int res_name(struct mlctl *ml, const struct res *r, int64_t id, const char **name);
/*
 * "IMAGE:vN" for a version, as deploy --version takes it, into buf; the
 * ids stand in for what cannot be found. 0 or <0 (printed).
 */
int res_version_label(struct mlctl *ml, int64_t image_id, int64_t version_id, char *buf,
                      size_t size);
/*
 * Sets "_targets" of each item to its targets with names ("machines
 * pc-101,pc-102; groups lab-b"), for res_targets_col. 0 or <0 (printed).
 */
int res_prep_targets(struct mlctl *ml, json_t *items);
/* The TARGETS column: "_targets" when prepared, else res_targets_text. */
char *res_targets_col(const json_t *obj);
/* "IMAGE[:VERSION]" or a version id, as deploy --version takes it. */
int res_version_ref(struct mlctl *ml, const char *arg, int64_t *vid);
/* GET path?query -> the list printed with r's columns. */
int res_print_list(struct mlctl *ml, const struct res *r, const char *path);

/* Generic commands; cmd->data is the struct res. */
int res_cmd_list(struct mlctl *ml, struct args *a); /* filters from '?' options */
int res_cmd_show(struct mlctl *ml, struct args *a); /* ID|NAME */
int res_cmd_add(struct mlctl *ml, struct args *a);  /* [NAME] + options -> POST */
int res_cmd_set(struct mlctl *ml, struct args *a);  /* ID|NAME + options -> PATCH */
int res_cmd_rm(struct mlctl *ml, struct args *a);   /* ID|NAME... -> DELETE each */
/* A "targets" object as "machines 1,2; groups 3; criteria 2" (heap string). */
char *res_targets_text(const json_t *obj);
/* Builds "path/ID" into buf. */
void res_path(char *buf, size_t size, const char *base, int64_t id, const char *tail);

/* The resources (cmd_*.c), for name resolution across commands. */
extern const struct res res_user, res_token, res_image, res_machine, res_group, res_criterion,
    res_entry, res_right, res_deploy, res_run, res_command;
/* Machine table columns, shared by the commands that list machines. */
extern const struct col cmd_machine_cols[];
/*
 * Deployments and runs show their version as IMAGE:vN: the prep sets
 * "_version" on each item (from image_id and version_id), the column
 * shows it, or the version id when it was not prepared.
 */
int cmd_deploy_prep_versions(struct mlctl *ml, json_t *items);
char *cmd_deploy_version(const json_t *obj);
/*
 * --interval SECONDS of the watching verbs (1..3600, default 2): 0 with
 * *secs set, or a usage error. No I/O, so it fails before the server is asked.
 */
int cmd_run_interval(struct mlctl *ml, const struct args *a, unsigned *secs);
/*
 * Watches run id until it ends (docs/mlctl.md, "run watch"): a live table
 * on a terminal, one line per change otherwise, then the final table.
 * 0 when the run is done; <0 (printed, status 1) when it failed or was
 * cancelled, or status 3 when the server cannot be reached.
 */
int cmd_run_watch(struct mlctl *ml, int64_t id, unsigned secs);
/*
 * POSTs body to path (a rollback: the answer is {"commands": [...]}) and
 * prints the commands; with --wait polls them until they end and prints
 * their results (exit 1 when any did not succeed). 0 or <0 (printed).
 */
int cmd_rollback(struct mlctl *ml, struct args *a, const char *path, const json_t *body);
/*
 * The rollback verb of machines and groups: POST BASE/ID/rollback with
 * {"image_id"} for the one the first argument names (res looks it up), then
 * cmd_rollback(). Its options are cmd_rollback_opts (--image, --wait,
 * --interval); usage errors come before any request.
 */
int cmd_rollback_of(struct mlctl *ml, struct args *a, const struct res *res, const char *base);
extern const struct opt cmd_rollback_opts[];

/*
 * mlctl machine|group boot ID|NAME [MODE|default] (cmd_boot.c): shows the
 * boot mode (docs/netboot.md), sets the own one, or with cmd_boot_opts a
 * temporary one; base is "/machines" or "/groups".
 */
int cmd_boot_of(struct mlctl *ml, struct args *a, const struct res *res, const char *base);
extern const struct opt cmd_boot_opts[];

/* ------------------------------------------------------------------ rv */

/*
 * Runs (GET /runs/:id) and agent commands as people read them. Pure: no
 * I/O, no clock. Strings from the server are cleaned for a terminal
 * (tbl_clean); absent, null or mistyped fields show as "-" or are left
 * out, never a crash. Every char * returned is the caller's to free; NULL
 * means out of memory unless said otherwise.
 */
#define RV_BAR_WIDTH 20

/* Milliseconds as "850ms", "12.3s", "3m12s", "1h02m", "2d03h" into buf. */
void rv_duration(uint64_t ms, char *buf, size_t size);
/* Bits per second as "812.0 Mbit/s" (decimal units) into buf. */
void rv_rate(uint64_t bps, char *buf, size_t size);
/*
 * A target's progress from chunks_done / chunks_needed: "42%", or with bar
 * "[########............]  42%"; a done target without counts is 100%.
 * NULL when there is nothing to show (no counts).
 */
char *rv_progress(const json_t *target, bool bar);
/*
 * Seconds left, estimated from the receiving machine with the most bytes
 * left (its chunks left at its bytes per chunk so far) at rate_bps; -1
 * when it cannot be estimated (no rate, no progress yet).
 */
int64_t rv_eta(const json_t *run);
/* 0 while the run is pending or running; 1 when it is done; -1 when it ended otherwise. */
int rv_end(const json_t *run);
/* The "key: value" block of a run: id, deployment, version, state (phase), times, ... */
char *rv_summary(const json_t *run);
/* The machines' table (MACHINE STATE PROGRESS BYTES WOKEN TIME REASON), or "(no machines)\n". */
char *rv_table(const json_t *run, bool bars);
/* "12 machines: 8 done, 1 current, 2 receiving, 1 failed\n" (totals, else counted). */
char *rv_totals(const json_t *run);
/* The summary, a blank line, the table, a blank line and the totals. */
char *rv_render(const json_t *run, bool bars);
/* A command's result in a few words (reason, outcome, active version), or NULL for none. */
char *rv_command_result(const json_t *cmd);
/* Has the command ended (any state but queued, sent and running)? */
bool rv_command_ended(const json_t *cmd);
/* The table of commands: ID MACHINE STATE RESULT. */
char *rv_commands(const json_t *cmds);

/*
 * What changed between polls of one run, for a log: rv_watch_feed returns
 * one line per change since the last feed, each starting with now as
 * local HH:MM:SS: the run's state or phase ("run 31: running (sending)")
 * and each machine seen for the first time or in a new state ("pc-101:
 * waiting -> receiving", with the reason when there is one). The first feed
 * reports everything. Returns "" when nothing changed, NULL when out of
 * memory.
 */
struct rv_watch;
struct rv_watch *rv_watch_new(void);
void rv_watch_free(struct rv_watch *w);
char *rv_watch_feed(struct rv_watch *w, const json_t *run, time_t now);

#endif

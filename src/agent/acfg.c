/*
 * mlagent's settings: the INI file (one table gives each key its type and
 * help, so loading, --print-config and the documented example come from the
 * same place), the kernel command line, and the precedence between them.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ascii.h"
#include "conf.h"
#include "log.h"

#define K(name, type, field, min, max, help)                                                       \
	{                                                                                          \
		"agent", name, type, offsetof(struct acfg, field), min, max, help                  \
	}

static const struct conf_key acfg_keys[] = {
    K("server", CONF_STR, server, 0, 0, "URL of mlserver, e.g. https://mlserver.example:8443"),
    K("data_dir", CONF_STR, data_dir, 0, 0,
      "directory of the credential and of the image store (images/, incoming/)"),
    K("name", CONF_STR, name, 0, 0,
      "machine name to enroll as; empty: the server finds the machine by its MAC addresses"),
    K("enroll_token", CONF_STR, enroll_token, 0, 0,
      "enrollment token (mle_...), needed only until DATA_DIR/credential exists"),
    K("enroll_token_file", CONF_STR, enroll_token_file, 0, 0,
      "file whose first line is the enrollment token (instead of enroll_token)"),
    K("fingerprint", CONF_STR, fingerprint, 0, 0,
      "SHA-256 fingerprint of the server's certificate (hex, colons optional), checked at "
      "enrollment"),
    K("insecure", CONF_BOOL, insecure, 0, 1,
      "do not check the server's certificate at all (tests only)"),
    K("interface", CONF_STR, interface, 0, 0,
      "network interface to receive multicast on; empty: the routing table decides"),
    K("reserve", CONF_SIZE, reserve, 0, 1ull << 50,
      "bytes the image store leaves free for VM overlays and logs (K, M, G, T suffixes)"),
    K("log_level", CONF_STR, log_level, 0, 0, "error, warn, info or debug"),
    K("install_status", CONF_STR, install_status, 0, 0,
      "status file of ml-install (install to disk), reported in the inventory when present"),
};
#define NKEYS (sizeof(acfg_keys) / sizeof(acfg_keys[0]))

void acfg_free(struct acfg *c)
{
	if (!c)
		return;
	conf_free_strings(acfg_keys, NKEYS, c);
	memset(c, 0, sizeof(*c));
}

/* The loader leaves "key =" as an empty string: treat it as not set. */
static void acfg_drop_empty(struct acfg *c)
{
	char **s[] = {&c->server,       &c->data_dir,          &c->name,
	              &c->enroll_token, &c->enroll_token_file, &c->fingerprint,
	              &c->interface,    &c->log_level,         &c->install_status};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if (*s[i] && !**s[i]) {
			free(*s[i]);
			*s[i] = NULL;
		}
	}
}

int acfg_load_file(const char *path, bool must_exist, struct acfg *c, char *err, size_t errsz)
{
	memset(c, 0, sizeof(*c));
	int rc = conf_load(path, acfg_keys, NKEYS, c, err, errsz);
	if (rc == -ENOENT && !must_exist) {
		acfg_free(c);
		return 0;
	}
	if (rc == -ENOENT)
		log_seterr(err, errsz, "%s: no such file", path);
	if (rc < 0) {
		acfg_free(c);
		return rc;
	}
	acfg_drop_empty(c);
	return 0;
}

int acfg_load_string(const char *name, const char *text, struct acfg *c, char *err, size_t errsz)
{
	memset(c, 0, sizeof(*c));
	int rc = conf_load_string(name, text, acfg_keys, NKEYS, c, err, errsz);
	if (rc < 0) {
		acfg_free(c);
		return rc;
	}
	acfg_drop_empty(c);
	return 0;
}

void acfg_kcmd_free(struct acfg_kcmd *k)
{
	if (!k)
		return;
	free(k->server);
	free(k->token);
	free(k->fp);
	free(k->name);
	free(k->interface);
	memset(k, 0, sizeof(*k));
}

/* One word "key=value" of the command line; only ml.* keys are looked at. */
static int acfg_cmdline_word(const char *w, size_t n, struct acfg_kcmd *k, char *err, size_t errsz)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
	    {"ml.server", offsetof(struct acfg_kcmd, server)},
	    {"ml.token", offsetof(struct acfg_kcmd, token)},
	    {"ml.fp", offsetof(struct acfg_kcmd, fp)},
	    {"ml.name", offsetof(struct acfg_kcmd, name)},
	    {"ml.interface", offsetof(struct acfg_kcmd, interface)},
	};
	const char *eq = memchr(w, '=', n);
	if (!eq)
		return 0;
	size_t klen = (size_t)(eq - w), vlen = n - klen - 1;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strlen(keys[i].key) != klen || memcmp(w, keys[i].key, klen) != 0)
			continue;
		if (vlen == 0) {
			log_seterr(err, errsz, "kernel command line: %s= has no value",
			           keys[i].key);
			return -EINVAL;
		}
		if (vlen > ACFG_VALUE_MAX) {
			log_seterr(err, errsz, "kernel command line: %s is longer than %d bytes",
			           keys[i].key, ACFG_VALUE_MAX);
			return -EINVAL;
		}
		for (size_t j = 0; j < vlen; j++) {
			if ((unsigned char)eq[1 + j] < 0x20 || eq[1 + j] == 0x7f) {
				log_seterr(err, errsz,
				           "kernel command line: %s has a control character",
				           keys[i].key);
				return -EINVAL;
			}
		}
		char **slot = (char **)(void *)((char *)k + keys[i].off);
		char *v = strndup(eq + 1, vlen);
		if (!v)
			return -ENOMEM;
		free(*slot);
		*slot = v;
		return 0;
	}
	return 0;
}

int acfg_cmdline_parse(const char *text, size_t len, struct acfg_kcmd *k, char *err, size_t errsz)
{
	struct acfg_kcmd tmp = {0};
	char *word = malloc(len + 1);
	int rc = 0;
	size_t i = 0;
	if (!word)
		return -ENOMEM;
	while (i < len) {
		while (i < len && ascii_is_space(text[i]))
			i++;
		if (i == len)
			break;
		/*
		 * A word runs to the next white space outside double quotes; the
		 * quotes themselves are dropped, as the kernel does for
		 * "ml.name=room 1 pc".
		 */
		size_t n = 0;
		bool quoted = false;
		for (; i < len && (quoted || !ascii_is_space(text[i])); i++) {
			if (text[i] == '"')
				quoted = !quoted;
			else
				word[n++] = text[i];
		}
		if (memchr(word, '\0', n)) {
			log_seterr(err, errsz, "kernel command line: a NUL byte inside a word");
			rc = -EINVAL;
			goto out;
		}
		if ((rc = acfg_cmdline_word(word, n, &tmp, err, errsz)) < 0)
			goto out;
	}
	acfg_kcmd_free(k);
	*k = tmp;
	memset(&tmp, 0, sizeof(tmp));
out:
	acfg_kcmd_free(&tmp);
	free(word);
	return rc;
}

/* The first of the candidates that is set, copied; *out NULL when none is. */
static int acfg_pick(char **out, const char *a, const char *b, const char *c, const char *d)
{
	const char *v = a ? a : b ? b : c ? c : d;
	*out = NULL;
	if (!v)
		return 0;
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

int acfg_resolve(const struct acfg *flags, const struct acfg *file, const struct acfg_kcmd *k,
                 struct acfg *out, char *err, size_t errsz)
{
	static const struct acfg none;
	static const struct acfg_kcmd knone;
	int rc = -ENOMEM;
	enum log_level lvl;
	if (!flags)
		flags = &none;
	if (!file)
		file = &none;
	if (!k)
		k = &knone;
	memset(out, 0, sizeof(*out));
	/*
	 * The token and its file are one setting: the source with higher
	 * precedence that gives either wins, so a flag's token file overrides a
	 * token in the config file.
	 */
	const struct acfg *tsrc = (flags->enroll_token || flags->enroll_token_file) ? flags
	                          : (file->enroll_token || file->enroll_token_file) ? file
	                                                                            : NULL;
	if (tsrc && tsrc->enroll_token && tsrc->enroll_token_file) {
		log_seterr(err, errsz, "give enroll_token or enroll_token_file, not both");
		rc = -EINVAL;
		goto out;
	}
	if (acfg_pick(&out->server, flags->server, file->server, k->server, NULL) < 0 ||
	    acfg_pick(&out->data_dir, flags->data_dir, file->data_dir, NULL,
	              ACFG_DEFAULT_DATA_DIR) < 0 ||
	    acfg_pick(&out->name, flags->name, file->name, k->name, NULL) < 0 ||
	    acfg_pick(&out->enroll_token, tsrc ? tsrc->enroll_token : NULL, NULL,
	              tsrc ? NULL : k->token, NULL) < 0 ||
	    acfg_pick(&out->enroll_token_file, tsrc ? tsrc->enroll_token_file : NULL, NULL, NULL,
	              NULL) < 0 ||
	    acfg_pick(&out->fingerprint, flags->fingerprint, file->fingerprint, k->fp, NULL) < 0 ||
	    acfg_pick(&out->interface, flags->interface, file->interface, k->interface, NULL) < 0 ||
	    acfg_pick(&out->log_level, flags->log_level, file->log_level, NULL, "info") < 0 ||
	    acfg_pick(&out->install_status, flags->install_status, file->install_status, NULL,
	              ACFG_DEFAULT_INSTALL_STATUS) < 0)
		goto out;
	out->insecure = flags->insecure || file->insecure;
	out->reserve = flags->reserve ? flags->reserve : file->reserve;
	out->server_src = flags->server  ? ACFG_SRC_FLAG
	                  : file->server ? ACFG_SRC_FILE
	                  : k->server    ? ACFG_SRC_KERNEL
	                                 : ACFG_SRC_NONE;

	rc = -EINVAL;
	if (out->server && strncmp(out->server, "https://", 8) != 0 &&
	    strncmp(out->server, "http://", 7) != 0) {
		log_seterr(err, errsz, "server %s: expected an https:// URL", out->server);
		goto out;
	}
	if (out->server && !out->insecure && strncmp(out->server, "http://", 7) == 0) {
		log_seterr(err, errsz,
		           "server %s: http:// would send the credential in clear text; use an "
		           "https:// URL (http:// only with insecure, for tests)",
		           out->server);
		goto out;
	}
	if (out->server && strlen(out->server) > CRED_URL_MAX) {
		log_seterr(err, errsz, "server: longer than %d bytes", CRED_URL_MAX);
		goto out;
	}
	if (out->fingerprint) {
		char fp[PIN_FP_SIZE];
		if (strlen(out->fingerprint) > 2 * PIN_FP_SIZE ||
		    pin_fp_normalize(out->fingerprint, fp) < 0) {
			log_seterr(
			    err, errsz,
			    "fingerprint: expected the SHA-256 of the server's certificate, 64 "
			    "hex digits with or without colons");
			goto out;
		}
		free(out->fingerprint);
		if (!(out->fingerprint = strdup(fp))) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (log_level_parse(out->log_level, &lvl) < 0) {
		log_seterr(err, errsz, "log_level %s: expected error, warn, info or debug",
		           out->log_level);
		goto out;
	}
	if (out->name) {
		char why[MATCH_ERR_SIZE];
		if (match_hostname_check(out->name, strlen(out->name), why, sizeof(why)) < 0) {
			log_seterr(err, errsz, "name: %s", why);
			goto out;
		}
	}
	if (out->enroll_token &&
	    !cred_token_ok(out->enroll_token, strlen(out->enroll_token), "mle_")) {
		log_seterr(err, errsz, "enroll_token: expected mle_ and 64 hex digits");
		goto out;
	}
	if (out->interface && strlen(out->interface) >= 16) {
		log_seterr(err, errsz, "interface %s: longer than an interface name can be",
		           out->interface);
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		acfg_free(out);
	return rc;
}

int acfg_server_pick(const struct acfg *c, const char *cred_server, const char **out, char *warn,
                     size_t warnsz, char *err, size_t errsz)
{
	static const char *const from[] = {"", "--server", "the config file",
	                                   "the kernel command line"};
	const char *v = c->server;
	int src = c->server_src >= 0 && c->server_src <= ACFG_SRC_KERNEL ? c->server_src : 0;
	*out = NULL;
	if (warnsz)
		warn[0] = '\0';
	if (cred_server && cred_server[0]) {
		/*
		 * The credential belongs to the server it was enrolled with: a stale
		 * ml.server= or config line must not send it elsewhere. Only an
		 * explicit flag may (a moved server), and that is logged.
		 */
		if (!v || strcmp(v, cred_server) == 0) {
			v = cred_server;
		} else if (src == ACFG_SRC_FLAG) {
			log_seterr(
			    warn, warnsz,
			    "--server %s overrides the server this machine enrolled with (%s)", v,
			    cred_server);
		} else {
			log_seterr(warn, warnsz,
			           "server %s from %s is ignored: this machine enrolled with %s "
			           "(only --server overrides it)",
			           v, from[src], cred_server);
			v = cred_server;
		}
	}
	if (!v) {
		log_seterr(err, errsz,
		           "no server: give --server URL (or server = in the config file, or "
		           "ml.server= on the kernel command line)");
		return -EINVAL;
	}
	if (strncmp(v, "https://", 8) != 0 && !(c->insecure && strncmp(v, "http://", 7) == 0)) {
		log_seterr(err, errsz,
		           "server %s: expected an https:// URL (http:// only with insecure, for "
		           "tests)",
		           v);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

void acfg_print(FILE *f)
{
	fprintf(f, "# mlagent settings: every key with its default value (docs/mlagent.md).\n"
	           "# Generated by 'mlagent --print-config'. Flags override this file, and this\n"
	           "# file overrides the kernel command line (ml.server=, ml.token=, ml.fp=,\n"
	           "# ml.name=, ml.interface=).\n\n[agent]\n");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &acfg_keys[i];
		const char *def = "";
		if (strcmp(k->name, "data_dir") == 0)
			def = ACFG_DEFAULT_DATA_DIR;
		else if (strcmp(k->name, "log_level") == 0)
			def = "info";
		else if (strcmp(k->name, "install_status") == 0)
			def = ACFG_DEFAULT_INSTALL_STATUS;
		else if (strcmp(k->name, "insecure") == 0)
			def = "no";
		else if (strcmp(k->name, "reserve") == 0)
			def = "0";
		fprintf(f, "# %s\n%s = %s\n", k->help, k->name, def);
	}
}

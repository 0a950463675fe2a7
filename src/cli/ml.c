/* Errors, exit statuses and the settings in effect (mlctl.h, "ml"). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mlctl.h"

__attribute__((format(printf, 2, 0))) static void ml_vprint(struct mlctl *ml, const char *fmt,
                                                            va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Messages may quote the server or the user: keep the terminal safe. */
	char *clean = tbl_clean(msg, 0);
	if (ml->cmdname[0])
		fprintf(stderr, "mlctl: %s: %s\n", ml->cmdname, clean ? clean : msg);
	else
		fprintf(stderr, "mlctl: %s\n", clean ? clean : msg);
	free(clean);
}

static void ml_status(struct mlctl *ml, int status)
{
	if (ml->status == 0)
		ml->status = status;
}

int ml_usage(struct mlctl *ml, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ml_vprint(ml, fmt, ap);
	va_end(ap);
	ml_status(ml, ML_EXIT_USAGE);
	return -EINVAL;
}

int ml_fail(struct mlctl *ml, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ml_vprint(ml, fmt, ap);
	va_end(ap);
	ml_status(ml, ML_EXIT_FAIL);
	return -EPROTO;
}

int ml_unreachable(struct mlctl *ml, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ml_vprint(ml, fmt, ap);
	va_end(ap);
	ml_status(ml, ML_EXIT_UNREACHABLE);
	return -EHOSTUNREACH;
}

void ml_warn(struct mlctl *ml, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	(void)ml;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char *clean = tbl_clean(msg, 0);
	fprintf(stderr, "mlctl: warning: %s\n", clean ? clean : msg);
	free(clean);
}

static const char *ml_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

int ml_settle(struct mlctl *ml)
{
	char err[512], url[512];
	const char *why;
	int rc;
	if (ml->opt_config) {
		if (strlen(ml->opt_config) >= sizeof(ml->config_path))
			return ml_usage(ml, "--config: the path is too long");
		snprintf(ml->config_path, sizeof(ml->config_path), "%s", ml->opt_config);
	} else if (ctlconf_default_path(ml->config_path, sizeof(ml->config_path)) < 0) {
		ml->config_path[0] = '\0';
	}
	if (ml->config_path[0]) {
		rc = ctlconf_load(ml->config_path, &ml->conf, err, sizeof(err));
		if (rc < 0 && rc != -ENOENT)
			return ml_fail(ml, "%s", err);
		struct stat st;
		if (rc == 0 && ml->conf.token && stat(ml->config_path, &st) == 0 &&
		    (st.st_mode & 077))
			ml_warn(ml, "%s holds a token and others may read it: chmod 600 %s",
			        ml->config_path, ml->config_path);
	}

	const char *srv = ml->opt_server ? ml->opt_server : ml_env("MLCTL_SERVER");
	if (srv) {
		if (ctlconf_server_url(srv, url, sizeof(url), &why) < 0)
			return ml_usage(ml, "server '%s': %s", srv, why);
		ml->server = strdup(url);
	} else if (ml->conf.server) {
		ml->server = strdup(ml->conf.server);
	}
	if ((srv || ml->conf.server) && !ml->server)
		return ml_fail(ml, "out of memory");
	/* The file's token and pin belong to the file's server, and only to it. */
	bool same = ml->server && ml->conf.server && strcmp(ml->server, ml->conf.server) == 0;

	ml->token = ml_env("MLCTL_TOKEN");
	if (ml->token && !ctlconf_word(ml->token))
		return ml_usage(ml, "MLCTL_TOKEN is not a token (printable characters, no blanks)");
	if (!ml->token && same && ml->conf.token) {
		ml->token = ml->conf.token;
		ml->token_from_conf = true;
	}
	ml->cacert = ml->opt_cacert ? ml->opt_cacert : ml_env("MLCTL_CACERT");
	const char *fp = ml->opt_fingerprint ? ml->opt_fingerprint : ml_env("MLCTL_FINGERPRINT");
	if (fp && pin_fp_normalize(fp, ml->want_fp) < 0)
		return ml_usage(ml,
		                "fingerprint '%s': expected 64 hex digits (pairs may be "
		                "separated by ':')",
		                fp);
	/* An explicit --cacert or --fingerprint replaces what the file says. */
	if (same && !ml->cacert && !fp) {
		if (ml->conf.pubkey) {
			ml->pin = ml->conf.pubkey;
			ml->fp = ml->conf.fingerprint;
		} else {
			ml->cacert = ml->conf.cacert;
		}
	}
	const char *ins = ml_env("MLCTL_INSECURE");
	ml->insecure = ml->opt_insecure || (ins && strcmp(ins, "0") != 0) ||
	               (same && ml->conf.insecure && !fp && !ml->opt_cacert);
	return 0;
}

int ml_need_server(struct mlctl *ml)
{
	if (ml->server)
		return 0;
	return ml_usage(ml, "no server: log in with 'mlctl login --server URL', or set "
	                    "MLCTL_SERVER or pass --server URL");
}

/*
 * mlctl login, logout, whoami and health: sessions, the config file, and
 * trusting the server's certificate (docs/mlctl.md, "Logging in").
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

#define LOGIN_PW_MAX 1024

/*
 * Decides how to trust the server's certificate for a login and makes the
 * login request use it: fills fp and pin (empty when the chain of trust is
 * checked instead). 0 or <0 (printed).
 */
static int login_trust(struct mlctl *ml, char *fp, char *pin)
{
	struct cl_probe p;
	fp[0] = pin[0] = '\0';
	if (strncmp(ml->server, "https:", 6) != 0) {
		ml_warn(ml,
		        "%s is plain HTTP: the password and the token cross the network "
		        "unencrypted",
		        ml->server);
		return 0;
	}
	if (ml->pin && !ml->insecure) {
		/* Trusted at an earlier login: the pin holds; the request checks it. */
		snprintf(pin, PIN_KEY_SIZE, "%s", ml->pin);
		if (ml->fp)
			snprintf(fp, PIN_FP_SIZE, "%s", ml->fp);
		return 0;
	}
	int rc = cl_probe(ml, true, &p);
	if (rc < 0)
		return rc;
	if (p.fp[0] && p.health_fp[0] && strcmp(p.fp, p.health_fp) != 0)
		return ml_unreachable(ml,
		                      "the certificate this connection shows (%s) is not the one "
		                      "the server reports (%s): someone may be in between; not "
		                      "logging in",
		                      p.fp, p.health_fp);
	if (ml->want_fp[0] && p.fp[0] && strcmp(ml->want_fp, p.fp) != 0)
		return ml_unreachable(ml,
		                      "the server's certificate has the fingerprint %s, not the "
		                      "given %s; not logging in",
		                      p.fp, ml->want_fp);
	if (p.verified && !ml->insecure) {
		/* A certificate the system or --cacert vouches for: no pin needed. */
		return 0;
	}
	if (ml->insecure) {
		fprintf(stderr, "mlctl: trusting the certificate %s without a check (--insecure)\n",
		        p.fp);
	} else if (!ml->want_fp[0]) {
		fprintf(stderr,
		        "The server's certificate is not signed by an authority this system "
		        "trusts.\n"
		        "Its SHA-256 fingerprint is:\n  %s\n"
		        "Compare it with the one mlserver printed when it created the certificate\n"
		        "(mlserver prints it when it starts, and logs it).\n",
		        p.fp);
		if (!ml->tty_in)
			return ml_fail(ml,
			               "the certificate is not trusted; if the fingerprint above "
			               "is right, run again with --fingerprint %s",
			               p.fp);
		if (!prompt_yes("Trust this certificate?"))
			return ml_fail(ml, "the certificate is not trusted; not logging in");
	}
	snprintf(fp, PIN_FP_SIZE, "%s", p.fp);
	snprintf(pin, PIN_KEY_SIZE, "%s", p.pin);
	/* From here on, every request checks this key: the login itself too. */
	memcpy(ml->fp_pin, p.pin, sizeof(ml->fp_pin));
	memcpy(ml->fp_seen, p.fp, sizeof(ml->fp_seen));
	ml->fp = ml->fp_seen;
	ml->want_fp[0] = '\0';
	ml->insecure = false;
	return 0;
}

static int login_run(struct mlctl *ml, struct args *a)
{
	char user[128], pw[LOGIN_PW_MAX], fp[PIN_FP_SIZE], pin[PIN_KEY_SIZE], err[512];
	const char *pwfile = arg_val(a, "password-file");
	bool same;
	struct cl_resp r = {0};
	json_t *body = NULL;
	int rc = ml_need_server(ml);
	if (rc < 0)
		return rc;
	same = ml->conf.server && strcmp(ml->conf.server, ml->server) == 0;
	if (arg_pos(a, 0)) {
		snprintf(user, sizeof(user), "%s", arg_pos(a, 0));
	} else if (same && ml->conf.user) {
		snprintf(user, sizeof(user), "%s", ml->conf.user);
	} else if (!ml->tty_in || pwfile) {
		return ml_usage(ml, "which user? give USER");
	} else if (prompt_line("User name: ", user, sizeof(user)) < 0 || !user[0]) {
		return ml_usage(ml, "no user name");
	}
	rc = login_trust(ml, fp, pin);
	if (rc < 0)
		return rc;
	if (pwfile) {
		rc = prompt_password_file(pwfile, pw, sizeof(pw));
		if (rc < 0)
			return ml_fail(ml, "--password-file %s: %s", pwfile,
			               rc == -EINVAL    ? "empty or too long"
			               : rc == -ENODATA ? "empty"
			                                : strerror(-rc));
	} else {
		char prompt[256];
		snprintf(prompt, sizeof(prompt), "Password for %s at %s: ", user, ml->server);
		rc = prompt_password(prompt, pw, sizeof(pw));
		if (rc < 0)
			return ml_fail(ml, "no password read%s",
			               rc == -EINVAL ? " (empty or too long)" : "");
	}
	body = json_pack("{s:s, s:s}", "username", user, "password", pw);
	explicit_bzero(pw, sizeof(pw));
	if (!body)
		return ml_usage(ml, "the user name or password is not valid UTF-8");
	/* The old token must not go along with a login. */
	ml->token = NULL;
	rc = cl_send(ml, "POST", "/login", body, true, &r);
	json_decref(body);
	if (rc < 0)
		return rc;
	if (r.status == 401) {
		rc = ml_fail(ml, "wrong user name or password");
		goto out;
	}
	if (r.status != 200) {
		rc = cl_error(ml, &r);
		goto out;
	}
	const char *token = json_string_value(json_object_get(r.json, "token"));
	const char *exp = json_string_value(json_object_get(r.json, "expires_at"));
	const char *role = json_string_value(out_get(r.json, "user.role"));
	if (!token) {
		rc = ml_fail(ml, "the server's answer has no token");
		goto out;
	}
	/* A login to another server starts a fresh file: nothing of the old one applies. */
	if (!same)
		ctlconf_clear(&ml->conf);
	char cacert[PATH_MAX];
	const char *ca = NULL;
	if (!pin[0] && ml->cacert && strncmp(ml->server, "https:", 6) == 0)
		ca = realpath(ml->cacert, cacert) ? cacert : ml->cacert;
	if (ctlconf_set(&ml->conf.server, ml->server) < 0 ||
	    ctlconf_set(&ml->conf.user, user) < 0 || ctlconf_set(&ml->conf.token, token) < 0 ||
	    ctlconf_set(&ml->conf.fingerprint, fp[0] ? fp : NULL) < 0 ||
	    ctlconf_set(&ml->conf.pubkey, pin[0] ? pin : NULL) < 0 ||
	    ctlconf_set(&ml->conf.cacert, ca) < 0) {
		rc = ml_fail(ml, "out of memory");
		goto out;
	}
	if (!ml->config_path[0]) {
		rc = ml_fail(ml, "no place for the config file: set HOME or MLCTL_CONFIG");
		goto out;
	}
	rc = ctlconf_save(ml->config_path, &ml->conf, err, sizeof(err));
	if (rc < 0) {
		rc = ml_fail(ml, "%s", err);
		goto out;
	}
	if (ml->json) {
		rc = out_json(ml, r.json);
	} else if (!ml->quiet) {
		char until[64] = "";
		if (exp)
			when_local(exp, false, until, sizeof(until));
		printf("logged in to %s as %s (%s)%s%s\n", ml->server, user, role ? role : "?",
		       until[0] ? ", session until " : "", until);
		if (pin[0])
			printf("certificate pinned: SHA-256 %s\n", fp[0] ? fp : pin);
	}
out:
	cl_resp_free(&r);
	return rc;
}

static int logout_run(struct mlctl *ml, struct args *a)
{
	struct cl_resp r = {0};
	char err[512];
	int rc = 0;
	(void)a;
	if (!ml->token) {
		if (!ml->quiet)
			printf("not logged in\n");
		return 0;
	}
	rc = cl_send(ml, "POST", "/logout", NULL, false, &r);
	if (rc == 0 && r.status != 204 && r.status != 200 && r.status != 401)
		rc = cl_error(ml, &r);
	cl_resp_free(&r);
	/* The token leaves the file even when the server could not be told. */
	if (ml->token_from_conf) {
		ctlconf_set(&ml->conf.token, NULL);
		if (ctlconf_save(ml->config_path, &ml->conf, err, sizeof(err)) < 0)
			return ml_fail(ml, "%s", err);
	}
	if (rc == 0 && !ml->quiet)
		printf("logged out of %s\n", ml->server);
	return rc;
}

static int whoami_run(struct mlctl *ml, struct args *a)
{
	json_t *me;
	(void)a;
	int rc = cl_call(ml, "GET", "/me", NULL, &me);
	if (rc < 0)
		return rc;
	if (ml->json || ml->quiet) {
		rc = out_one(ml, me);
		json_decref(me);
		return rc;
	}
	const char *how = "checked against the system's certificate authorities";
	char buf[200];
	if (strncmp(ml->server, "http:", 5) == 0)
		how = "none (plain HTTP)";
	else if (ml->insecure)
		how = "not checked (insecure)";
	else if (ml->pin || ml->fp_pin[0]) {
		snprintf(buf, sizeof(buf), "pinned, SHA-256 %s",
		         ml->fp    ? ml->fp
		         : ml->pin ? ml->pin
		                   : ml->fp_pin);
		how = buf;
	} else if (ml->cacert) {
		snprintf(buf, sizeof(buf), "checked against %s", ml->cacert);
		how = buf;
	}
	json_object_set_new(me, "server", json_string(ml->server));
	json_object_set_new(me, "certificate", json_string(how));
	json_object_set_new(me, "token_from",
	                    json_string(ml->token_from_conf ? ml->config_path : "MLCTL_TOKEN"));
	rc = out_one(ml, me);
	json_decref(me);
	return rc;
}

static int health_run(struct mlctl *ml, struct args *a)
{
	struct cl_resp r;
	(void)a;
	int rc = cl_send(ml, "GET", "/health", NULL, true, &r);
	if (rc < 0)
		return rc;
	if (r.status != 200 || !r.json)
		rc = cl_error(ml, &r);
	else
		rc = out_one(ml, r.json);
	cl_resp_free(&r);
	return rc;
}

static const struct opt login_opts[] = {
    {"password-file", V_VAL, "FILE", "read the password from the first line of FILE", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd login_cmds[] = {
    {NULL, "[USER]", 0, 1, login_opts, login_run,
     "log in and store the server, token and certificate",
     "Asks for the password without echo (or reads a line from stdin when it is\n"
     "not a terminal, or --password-file). On the first login to a server with a\n"
     "self-signed certificate, shows its SHA-256 fingerprint (what curl saw, checked\n"
     "against what /health reports) and asks whether to trust it; --fingerprint FP\n"
     "answers for scripts, --insecure trusts whatever is shown. The key of a trusted\n"
     "certificate is pinned for every later command. --cacert FILE checks a site\n"
     "certificate instead. USER defaults to the last one logged in.\n"
     "The config file is written atomically with mode 0600.",
     "  mlctl login --server https://mlserver.lab:8443 admin\n"
     "  mlctl login --server mlserver.lab --fingerprint 37:34:2e:...:27:25 admin "
     "--password-file pw.txt",
     NULL, CMD_NOAUTH},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

static const struct cmd logout_cmds[] = {
    {NULL, NULL, 0, 0, NULL, logout_run, "end the session and forget its token", NULL,
     "  mlctl logout", NULL, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

static const struct cmd whoami_cmds[] = {
    {NULL, NULL, 0, 0, NULL, whoami_run, "who am I, and how the certificate is checked", NULL,
     "  mlctl whoami", NULL, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

static const struct cmd health_cmds[] = {
    {NULL, NULL, 0, 0, NULL, health_run, "server status, version and certificate fingerprint", NULL,
     "  mlctl health --server https://mlserver.lab:8443 --insecure", NULL, CMD_NOAUTH},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_login_noun = {"login", "log in", login_cmds};
const struct noun cmd_logout_noun = {"logout", "log out", logout_cmds};
const struct noun cmd_whoami_noun = {"whoami", "who am I", whoami_cmds};
const struct noun cmd_health_noun = {"health", "server health", health_cmds};

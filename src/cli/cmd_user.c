/* mlctl user ... (admin) and mlctl passwd (one's own password). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mlctl.h"

#define USER_PW_MAX 1024

static const struct col user_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"USERNAME", "username", C_STR, NULL},
    {"ROLE", "role", C_STR, NULL},
    {"DISPLAY NAME", "display_name", C_STR, NULL},
    {"SOURCE", "source", C_STR, NULL},
    {"DISABLED", "disabled", C_BOOL, NULL},
    {"CREATED", "created_at", C_TIME, NULL},
    {NULL, NULL, C_STR, NULL},
};

const struct res res_user = {"user", "/users", "username", false, false, user_cols, NULL};

/*
 * A new password: from --password-file, else asked twice on a terminal, else
 * one line of stdin. 0 or <0 (printed).
 */
static int user_new_password(struct mlctl *ml, const char *file, const char *what, char *pw,
                             size_t size)
{
	char again[USER_PW_MAX];
	int rc;
	if (file) {
		rc = prompt_password_file(file, pw, size);
		if (rc < 0)
			return ml_fail(ml, "%s: %s", file,
			               rc == -EINVAL || rc == -ENODATA ? "empty or too long"
			                                               : strerror(-rc));
		return 0;
	}
	char prompt[160];
	snprintf(prompt, sizeof(prompt), "%s: ", what);
	rc = prompt_password(prompt, pw, size);
	if (rc < 0)
		return ml_fail(ml, "no password read%s",
		               rc == -EINVAL ? " (empty or too long)" : "");
	if (!ml->tty_in)
		return 0;
	snprintf(prompt, sizeof(prompt), "%s again: ", what);
	rc = prompt_password(prompt, again, sizeof(again));
	bool same = rc == 0 && strcmp(pw, again) == 0;
	explicit_bzero(again, sizeof(again));
	if (!same) {
		explicit_bzero(pw, size);
		return ml_fail(ml, "the passwords do not match");
	}
	return 0;
}

static int user_add(struct mlctl *ml, struct args *a)
{
	char pw[USER_PW_MAX];
	json_t *body = json_object(), *obj = NULL;
	int rc;
	if (!body)
		return ml_fail(ml, "out of memory");
	json_object_set_new(body, "username", json_string(arg_pos(a, 0)));
	rc = arg_body(ml, a, body, false);
	if (rc < 0)
		goto out;
	rc = user_new_password(ml, arg_val(a, "password-file"), "Password for the new user", pw,
	                       sizeof(pw));
	if (rc < 0)
		goto out;
	json_object_set_new(body, "password", json_string(pw));
	explicit_bzero(pw, sizeof(pw));
	rc = cl_call(ml, "POST", "/users", body, &obj);
	if (rc == 0 && obj)
		rc = out_one(ml, obj);
out:
	json_decref(body);
	json_decref(obj);
	return rc;
}

static int user_set(struct mlctl *ml, struct args *a)
{
	char pw[USER_PW_MAX], path[64];
	json_t *body = json_object(), *obj = NULL;
	int64_t id;
	int rc;
	if (!body)
		return ml_fail(ml, "out of memory");
	rc = arg_body(ml, a, body, true);
	if (rc < 0)
		goto out;
	if (arg_has(a, "password") || arg_has(a, "password-file")) {
		rc = user_new_password(ml, arg_val(a, "password-file"), "New password", pw,
		                       sizeof(pw));
		if (rc < 0)
			goto out;
		json_object_set_new(body, "password", json_string(pw));
		explicit_bzero(pw, sizeof(pw));
	}
	if (json_object_size(body) == 0) {
		rc = ml_usage(ml, "nothing to change: give at least one option (see --help)");
		goto out;
	}
	rc = res_id(ml, &res_user, arg_pos(a, 0), &id);
	if (rc < 0)
		goto out;
	res_path(path, sizeof(path), "/users", id, NULL);
	rc = cl_call(ml, "PATCH", path, body, &obj);
	if (rc == 0 && !obj)
		rc = cl_call(ml, "GET", path, NULL, &obj);
	if (rc == 0 && obj)
		rc = out_one(ml, obj);
out:
	json_decref(body);
	json_decref(obj);
	return rc;
}

static int passwd_run(struct mlctl *ml, struct args *a)
{
	char old[USER_PW_MAX], pw[USER_PW_MAX];
	const char *oldfile = arg_val(a, "old-password-file");
	int rc;
	if (oldfile)
		rc = prompt_password_file(oldfile, old, sizeof(old));
	else
		rc = prompt_password("Current password: ", old, sizeof(old));
	if (rc < 0)
		return ml_fail(ml, "no current password read");
	rc = user_new_password(ml, arg_val(a, "password-file"), "New password", pw, sizeof(pw));
	if (rc < 0) {
		explicit_bzero(old, sizeof(old));
		return rc;
	}
	json_t *body = json_pack("{s:s, s:s}", "old_password", old, "new_password", pw);
	explicit_bzero(old, sizeof(old));
	explicit_bzero(pw, sizeof(pw));
	if (!body)
		return ml_usage(ml, "the passwords must be valid UTF-8");
	rc = cl_call(ml, "POST", "/me/password", body, NULL);
	json_decref(body);
	if (rc == 0 && !ml->quiet && !ml->json)
		printf("password changed; your other sessions have ended\n");
	return rc;
}

#define USER_FIELDS                                                                                \
	{"role", V_STR, "ROLE", "admin, operator or viewer", "role", NULL},                        \
	    {"display-name", V_STR, "TEXT", "the name people see", "display_name", NULL},          \
	{                                                                                          \
		"password-file", V_VAL, "FILE",                                                    \
		    "the password from FILE's first line (else asked, or read from stdin)", NULL,  \
		    NULL                                                                           \
	}

static const struct opt user_add_opts[] = {
    USER_FIELDS,
    {"disabled", V_TRUE, NULL, "create the account disabled", "disabled", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt user_set_opts[] = {
    USER_FIELDS,
    {"password", V_FLAG, NULL, "set a new password (asked, or read from stdin)", NULL, NULL},
    {"disable", V_TRUE, NULL, "disable the account (ends its sessions)", "disabled", NULL},
    {"enable", V_FALSE, NULL, "enable the account", "disabled", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct opt passwd_opts[] = {
    {"old-password-file", V_VAL, "FILE", "the current password from FILE's first line", NULL, NULL},
    {"password-file", V_VAL, "FILE", "the new password from FILE's first line", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd user_cmds[] = {
    {"list", NULL, 0, 0, NULL, res_cmd_list, "list the accounts", NULL, "  mlctl user list",
     &res_user, CMD_LIST},
    {"show", "ID|NAME", 1, 1, NULL, res_cmd_show, "show one account", NULL,
     "  mlctl user show ops1", &res_user, 0},
    {"add", "NAME", 1, 1, user_add_opts, user_add, "create an account",
     "User names are 1-64 of a-z 0-9 . _ -; passwords at least 8 characters.",
     "  mlctl user add ops1 --role operator --display-name 'Ops One'", &res_user, 0},
    {"set", "ID|NAME", 1, 1, user_set_opts, user_set,
     "change an account: role, display name, password, disabled", NULL,
     "  mlctl user set ops1 --role viewer\n  mlctl user set ops1 --disable", &res_user, 0},
    {"rm", "ID|NAME...", 1, -1, NULL, res_cmd_rm,
     "delete accounts (not oneself, not the last enabled admin)", NULL, "  mlctl user rm ops1",
     &res_user, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

static const struct cmd passwd_cmds[] = {
    {NULL, NULL, 0, 0, passwd_opts, passwd_run,
     "change one's own password (ends one's other sessions)",
     "Without a terminal, reads the current and the new password as two lines of\n"
     "stdin.",
     "  mlctl passwd", NULL, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_user_noun = {"user", "accounts (admin)", user_cmds};
const struct noun cmd_passwd_noun = {"passwd", "own password", passwd_cmds};

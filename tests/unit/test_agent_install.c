/*
 * The inventory's "install" object (inv.c): ml-install's status file parsed
 * (inv_install_parse: every field's refusal, unknown keys dropped) and read
 * by inv_build (present, missing, bad), and the install_status setting
 * (acfg.c: its default and the config file).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"

static json_t *parse_ok(const char *t)
{
	char err[256] = "";
	json_t *o = NULL;
	int rc = inv_install_parse(t, strlen(t), &o, err, sizeof(err));
	if (rc != 0)
		print_error("unexpected refusal: %s\n", err);
	assert_int_equal(rc, 0);
	assert_non_null(o);
	return o;
}

static void parse_bad(const char *t, const char *why)
{
	char err[256] = "";
	json_t *o = (json_t *)1;
	assert_int_equal(inv_install_parse(t, strlen(t), &o, err, sizeof(err)), -EINVAL);
	assert_null(o);
	if (!strstr(err, why))
		print_error("'%s': error '%s' lacks '%s'\n", t, err, why);
	assert_non_null(strstr(err, why));
}

static void test_parse(void **state)
{
	(void)state;
	json_t *o = parse_ok("{\"state\":\"done\",\"disk\":\"/dev/sda\",\"at\":1700000000,"
	                     "\"reason\":null,\"kept_data\":true,\"profile\":\"full\","
	                     "\"extra\":[1,2]}\n");
	assert_string_equal(json_string_value(json_object_get(o, "state")), "done");
	assert_string_equal(json_string_value(json_object_get(o, "disk")), "/dev/sda");
	assert_int_equal(json_integer_value(json_object_get(o, "at")), 1700000000);
	assert_true(json_is_null(json_object_get(o, "reason")));
	assert_true(json_is_true(json_object_get(o, "kept_data")));
	assert_string_equal(json_string_value(json_object_get(o, "profile")), "full");
	assert_null(json_object_get(o, "extra")); /* unknown keys are dropped */
	assert_int_equal(json_object_size(o), 6);
	json_decref(o);

	/* A failure, with the optional strings missing: they become null. */
	o = parse_ok("{\"state\":\"failed\",\"at\":0,\"kept_data\":false,\"reason\":\"sda is "
	             "mounted\"}");
	assert_string_equal(json_string_value(json_object_get(o, "state")), "failed");
	assert_string_equal(json_string_value(json_object_get(o, "reason")), "sda is mounted");
	assert_true(json_is_null(json_object_get(o, "disk")));
	assert_true(json_is_null(json_object_get(o, "profile")));
	assert_true(json_is_false(json_object_get(o, "kept_data")));
	json_decref(o);
}

static void test_refusals(void **state)
{
	(void)state;
	parse_bad("", "not JSON");
	parse_bad("{\"state\":\"done\"", "not JSON");
	parse_bad("[1]", "expected a JSON object");
	parse_bad("{\"at\":1,\"kept_data\":true}", "\"state\"");
	parse_bad("{\"state\":\"running\",\"at\":1,\"kept_data\":true}", "\"state\"");
	parse_bad("{\"state\":1,\"at\":1,\"kept_data\":true}", "\"state\"");
	parse_bad("{\"state\":\"done\",\"kept_data\":true}", "\"at\"");
	parse_bad("{\"state\":\"done\",\"at\":-1,\"kept_data\":true}", "\"at\"");
	parse_bad("{\"state\":\"done\",\"at\":\"1\",\"kept_data\":true}", "\"at\"");
	parse_bad("{\"state\":\"done\",\"at\":1.5,\"kept_data\":true}", "\"at\"");
	parse_bad("{\"state\":\"done\",\"at\":1}", "\"kept_data\"");
	parse_bad("{\"state\":\"done\",\"at\":1,\"kept_data\":1}", "\"kept_data\"");
	parse_bad("{\"state\":\"done\",\"at\":1,\"kept_data\":true,\"disk\":3}", "\"disk\"");
	parse_bad("{\"state\":\"done\",\"at\":1,\"kept_data\":true,\"profile\":{}}", "\"profile\"");
	parse_bad("{\"state\":\"done\",\"state\":\"failed\",\"at\":1,\"kept_data\":true}",
	          "not JSON"); /* a duplicate key */
	/* A reason over 1024 bytes. */
	char *big = malloc(2000);
	int n =
	    snprintf(big, 2000, "{\"state\":\"failed\",\"at\":1,\"kept_data\":true,\"reason\":\"");
	memset(big + n, 'x', 1025);
	snprintf(big + n + 1025, 2000 - (size_t)n - 1025, "\"}");
	parse_bad(big, "\"reason\"");
	free(big);
	/* Not NUL-terminated: only len bytes are read. */
	char err[256];
	json_t *o = NULL;
	const char *t = "{\"state\":\"done\",\"at\":1,\"kept_data\":true}garbage";
	assert_int_equal(inv_install_parse(t, strlen(t) - 7, &o, err, sizeof(err)), 0);
	json_decref(o);
}

/* inv_build with the status file present, missing and bad. */
static void test_inventory(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_agent_install.XXXXXX", path[64], err[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/install.json", dir);
	struct inv_opts o = {.data_dir = "/tmp", .install_status = path};

	json_t *j = inv_build(&o, err, sizeof(err)); /* missing: no "install" */
	assert_non_null(j);
	assert_null(json_object_get(j, "install"));
	json_decref(j);

	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"state\":\"done\",\"disk\":\"/dev/vda\",\"at\":1700000001,\"reason\":null,"
	      "\"kept_data\":false,\"profile\":\"minimal\"}\n",
	      f);
	fclose(f);
	j = inv_build(&o, err, sizeof(err));
	assert_non_null(j);
	json_t *in = json_object_get(j, "install");
	assert_non_null(in);
	assert_string_equal(json_string_value(json_object_get(in, "state")), "done");
	assert_string_equal(json_string_value(json_object_get(in, "disk")), "/dev/vda");
	assert_string_equal(json_string_value(json_object_get(in, "profile")), "minimal");
	json_decref(j);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"state\":\"done\",\"at\":", f); /* cut short: ignored (and logged) */
	fclose(f);
	j = inv_build(&o, err, sizeof(err));
	assert_non_null(j);
	assert_null(json_object_get(j, "install"));
	json_decref(j);

	o.install_status = NULL; /* no setting: no "install" */
	j = inv_build(&o, err, sizeof(err));
	assert_non_null(j);
	assert_null(json_object_get(j, "install"));
	json_decref(j);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_setting(void **state)
{
	(void)state;
	struct acfg file = {0}, out;
	char err[256];
	assert_int_equal(acfg_resolve(NULL, NULL, NULL, &out, err, sizeof(err)), 0);
	assert_string_equal(out.install_status, ACFG_DEFAULT_INSTALL_STATUS);
	assert_string_equal(out.install_status, "/run/microlinux/install.json");
	acfg_free(&out);
	assert_int_equal(acfg_load_string("t.conf", "[agent]\ninstall_status = /tmp/i.json\n",
	                                  &file, err, sizeof(err)),
	                 0);
	assert_int_equal(acfg_resolve(NULL, &file, NULL, &out, err, sizeof(err)), 0);
	assert_string_equal(out.install_status, "/tmp/i.json");
	acfg_free(&out);
	acfg_free(&file);
	/* "install_status =" (empty) keeps the default. */
	assert_int_equal(
	    acfg_load_string("t.conf", "[agent]\ninstall_status =\n", &file, err, sizeof(err)), 0);
	assert_int_equal(acfg_resolve(NULL, &file, NULL, &out, err, sizeof(err)), 0);
	assert_string_equal(out.install_status, ACFG_DEFAULT_INSTALL_STATUS);
	acfg_free(&out);
	acfg_free(&file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_inventory),
	    cmocka_unit_test(test_setting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

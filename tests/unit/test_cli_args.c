/*
 * Unit tests for mlctl's option parsing and request building (args.c):
 * options anywhere, values, repeats, usage errors with status 2, and the
 * JSON body and query built from an option table. Only ids are used, so
 * no name needs a server.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mlctl.h"

static int dummy_run(struct mlctl *ml, struct args *a)
{
	(void)ml;
	(void)a;
	return 0;
}

static const struct opt test_opts[] = {
    {"name", V_STR, "NAME", "name", "name", NULL},
    {"cpus", V_INT, "N", "cpus", "cpus", NULL},
    {"mac", V_STRS, "MAC", "mac", "macs", NULL},
    {"group", V_IDS, "G", "groups", "targets.groups", &res_group},
    {"image", V_ID, "IMAGE", "image", "image_id", &res_image},
    {"offline", V_TRUE, NULL, "offline", "offline", NULL},
    {"online", V_FALSE, NULL, "online", "offline", NULL},
    {"rate", V_INT, "N", "rate", "options.rate_mbps", NULL},
    {"at", V_TIME, "TIME", "at", "schedule.at", NULL},
    {"room", V_VAL, "ROOM", "room filter", "?room", NULL},
    {"all", V_FLAG, NULL, "all", "?all", NULL},
    {"plain", V_VAL, "X", "no mapping", NULL, NULL},
    {"field", V_RAW, "K=V", "raw", NULL, NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd test_cmd = {"add",  "NAME", 1,    2,    test_opts, dummy_run,
                                    "test", NULL,   NULL, NULL, CMD_LIST};
static const struct noun test_noun = {"thing", "things", &test_cmd};

static struct args *parse(struct mlctl *ml, bool *help, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	va_start(ap, help);
	for (char *s; (s = va_arg(ap, char *)) != NULL && argc < 32;)
		argv[argc++] = s;
	va_end(ap);
	return arg_parse(ml, &test_noun, &test_cmd, argc, argv, help);
}

static void test_parse_options(void **state)
{
	(void)state;
	struct mlctl ml = {0};
	bool help;
	struct args *a =
	    parse(&ml, &help, "--mac", "aa", "pc-1", "--mac=bb", "--json", "-q", "--cpus", "4",
	          "--limit", "5", "--offset=2", "--", "--not-an-option", NULL);
	assert_non_null(a);
	assert_false(help);
	assert_int_equal(arg_npos(a), 2);
	assert_string_equal(arg_pos(a, 0), "pc-1");
	assert_string_equal(arg_pos(a, 1), "--not-an-option");
	assert_null(arg_pos(a, 2));
	size_t n;
	const char *const *v = arg_vals(a, "mac", &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "aa");
	assert_string_equal(v[1], "bb");
	assert_string_equal(arg_val(a, "cpus"), "4");
	assert_true(arg_has(a, "cpus"));
	assert_false(arg_has(a, "offline"));
	assert_null(arg_val(a, "nonexistent"));
	assert_true(ml.json);
	assert_true(ml.quiet);
	assert_true(ml.has_limit);
	assert_int_equal(ml.limit, 5);
	assert_int_equal(ml.offset, 2);
	assert_int_equal(ml.status, 0);
	arg_free(a);

	/* --help anywhere asks for help, with status 0. */
	struct mlctl ml2 = {0};
	assert_null(parse(&ml2, &help, "x", "--help", NULL));
	assert_true(help);
	assert_int_equal(ml2.status, 0);
}

static void test_usage_errors(void **state)
{
	(void)state;
	bool help;
	struct {
		const char *args[4];
	} bad[] = {
	    {{NULL}},                         /* missing NAME */
	    {{"a", "b", "c", NULL}},          /* too many */
	    {{"a", "--bogus", NULL}},         /* unknown option */
	    {{"a", "--cpus", NULL}},          /* no value */
	    {{"a", "--cpus", "1", "--cpus"}}, /* given twice (and no value) */
	    {{"a", "--offline=yes", NULL}},   /* a flag with a value */
	    {{"a", "--limit", "0", NULL}},    /* limit too small */
	    {{"a", "-x", NULL}},              /* unknown short option */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mlctl ml = {0};
		char *argv[4];
		int argc = 0;
		while (argc < 4 && bad[i].args[argc]) {
			argv[argc] = (char *)(uintptr_t)bad[i].args[argc];
			argc++;
		}
		struct args *a = arg_parse(&ml, &test_noun, &test_cmd, argc, argv, &help);
		assert_null(a);
		assert_false(help);
		assert_int_equal(ml.status, ML_EXIT_USAGE);
	}
	struct mlctl ml = {0};
	struct args *a = parse(&ml, &help, "a", "--cpus", "1", "--cpus", "2", NULL);
	assert_null(a);
	assert_int_equal(ml.status, ML_EXIT_USAGE);
}

static void test_body(void **state)
{
	(void)state;
	struct mlctl ml = {0};
	bool help;
	struct args *a = parse(&ml, &help, "pc", "--name", "n", "--cpus", "4", "--mac", "aa",
	                       "--mac", "bb", "--group", "3,4", "--group", "5", "--image", "7",
	                       "--offline", "--rate", "800", "--at", "2026-11-26T13:00:00+01:00",
	                       "--room", "B1", "--plain", "x", "--field", "options.wake=false",
	                       "--field", "note=hello world", "--field", "list=[1,2]", NULL);
	assert_non_null(a);
	json_t *body = json_object();
	assert_int_equal(arg_body(&ml, a, body, false), 0);
	char *s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"cpus\":4,\"image_id\":7,\"list\":[1,2],\"macs\":[\"aa\",\"bb\"],"
	                       "\"name\":\"n\",\"note\":\"hello world\",\"offline\":true,"
	                       "\"options\":{\"rate_mbps\":800,\"wake\":false},"
	                       "\"schedule\":{\"at\":\"2026-11-26T12:00:00Z\"},"
	                       "\"targets\":{\"groups\":[3,4,5]}}");
	free(s);
	json_decref(body);

	struct sb q = {0};
	sb_add(&q, "/things");
	assert_int_equal(arg_query(&ml, a, &q), 0);
	assert_string_equal(q.buf, "/things?room=B1");
	sb_free(&q);
	arg_free(a);

	/* On a change, "" clears (null) and a list of just "" empties it. */
	a = parse(&ml, &help, "pc", "--name", "", "--cpus", "", "--mac", "", "--online", "--all",
	          "--room", "a b&c", NULL);
	assert_non_null(a);
	body = json_object();
	assert_int_equal(arg_body(&ml, a, body, true), 0);
	s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"cpus\":null,\"macs\":[],\"name\":null,\"offline\":false}");
	free(s);
	json_decref(body);
	sb_add(&q, "/things?x=1");
	assert_int_equal(arg_query(&ml, a, &q), 0);
	assert_string_equal(q.buf, "/things?x=1&room=a%20b%26c&all=1");
	sb_free(&q);
	arg_free(a);

	/* Bad values are usage errors. */
	static const char *const badvals[][2] = {
	    {"--cpus", "four"}, {"--at", "tomorrow"}, {"--field", "novalue"},
	    {"--field", "=1"},  {"--name", "\xff"},
	};
	for (size_t i = 0; i < sizeof(badvals) / sizeof(badvals[0]); i++) {
		struct mlctl m2 = {0};
		a = parse(&m2, &help, "pc", badvals[i][0], badvals[i][1], NULL);
		assert_non_null(a);
		body = json_object();
		assert_true(arg_body(&m2, a, body, false) < 0);
		assert_int_equal(m2.status, ML_EXIT_USAGE);
		json_decref(body);
		arg_free(a);
	}
}

static void test_globals(void **state)
{
	(void)state;
	struct mlctl ml = {0};
	bool help = false;
	char *argv[] = {"--server", "x", "--insecure", "--config=/c", "-v", "user"};
	assert_int_equal(arg_parse_globals(&ml, 6, argv, &help), 2);
	assert_string_equal(ml.opt_server, "x");
	assert_int_equal(arg_parse_globals(&ml, 4, argv + 2, &help), 1);
	assert_true(ml.opt_insecure);
	assert_int_equal(arg_parse_globals(&ml, 3, argv + 3, &help), 1);
	assert_string_equal(ml.opt_config, "/c");
	assert_int_equal(arg_parse_globals(&ml, 2, argv + 4, &help), 1);
	assert_true(ml.verbose);
	assert_int_equal(arg_parse_globals(&ml, 1, argv + 5, &help), 0);
	char *bad[] = {"--cpus", "4"};
	assert_true(arg_parse_globals(&ml, 2, bad, &help) < 0);
	assert_int_equal(ml.status, ML_EXIT_USAGE);
}

int main(void)
{
	/* Usage errors print on stderr; that is expected here. */
	setenv("TZ", "UTC", 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_options),
	    cmocka_unit_test(test_usage_errors),
	    cmocka_unit_test(test_body),
	    cmocka_unit_test(test_globals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

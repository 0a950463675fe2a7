/*
 * mlagent's settings (acfg.c): the precedence flags > config file > kernel
 * command line > defaults, the kernel command line parser, and the
 * credential file (cred.c): parse, format, round trip, refusals.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"

#define FP64 "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"
#define FPC                                                                                        \
	"ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:"  \
	"ab:"                                                                                      \
	"ab:ab"
#define TOK "mle_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CRED "mla_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PIN "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static void test_cmdline(void **state)
{
	(void)state;
	struct acfg_kcmd k = {0};
	char err[256];
	const char *t = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 quiet ml.server=https://s:8443 "
	                "\"ml.name=pc 1\" ml.fp=" FP64 " ml.token=x ml.token=" TOK
	                " ml.interface=eth0 ml.other=1 ml.serverx=no\n";
	assert_int_equal(acfg_cmdline_parse(t, strlen(t), &k, err, sizeof(err)), 0);
	assert_string_equal(k.server, "https://s:8443");
	assert_string_equal(k.name, "pc 1");
	assert_string_equal(k.fp, FP64);
	assert_string_equal(k.token, TOK); /* the last one wins */
	assert_string_equal(k.interface, "eth0");
	acfg_kcmd_free(&k);

	/* Refusals: an empty value, a control byte; *k is left as it was. */
	k.server = strdup("kept");
	assert_int_equal(acfg_cmdline_parse("ml.server=", 10, &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "ml.server= has no value"));
	assert_string_equal(k.server, "kept");
	assert_int_equal(acfg_cmdline_parse("ml.name=a\x01", 10, &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "control"));
	char *big = malloc(ACFG_VALUE_MAX + 20);
	memcpy(big, "ml.name=", 8);
	memset(big + 8, 'a', ACFG_VALUE_MAX + 1);
	assert_int_equal(acfg_cmdline_parse(big, ACFG_VALUE_MAX + 9, &k, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "longer than"));
	free(big);
	/* Nothing of ours, and an empty line: fine, nothing set. */
	assert_int_equal(acfg_cmdline_parse("", 0, &k, err, sizeof(err)), 0);
	assert_null(k.server);
	acfg_kcmd_free(&k);
}

static void test_precedence(void **state)
{
	(void)state;
	struct acfg flags = {0}, file = {0}, out;
	struct acfg_kcmd k = {0};
	char err[256];
	const char *ini = "[agent]\nserver = https://file:1\nname = fromfile\ninterface = \n"
	                  "reserve = 1G\ninsecure = yes\nlog_level = debug\n";
	const char *kc = "ml.server=https://kernel:1 ml.name=kern ml.fp=" FP64
	                 " ml.interface=eth9 ml.token=" TOK;
	assert_int_equal(acfg_load_string("t.conf", ini, &file, err, sizeof(err)), 0);
	assert_int_equal(acfg_cmdline_parse(kc, strlen(kc), &k, err, sizeof(err)), 0);

	/* Defaults only. */
	assert_int_equal(acfg_resolve(NULL, NULL, NULL, &out, err, sizeof(err)), 0);
	assert_string_equal(out.data_dir, ACFG_DEFAULT_DATA_DIR);
	assert_string_equal(out.log_level, "info");
	assert_null(out.server);
	assert_false(out.insecure);
	acfg_free(&out);

	/* Kernel command line over defaults. */
	assert_int_equal(acfg_resolve(NULL, NULL, &k, &out, err, sizeof(err)), 0);
	assert_string_equal(out.server, "https://kernel:1");
	assert_string_equal(out.fingerprint, FPC);
	assert_string_equal(out.enroll_token, TOK);
	assert_string_equal(out.interface, "eth9");
	acfg_free(&out);

	/* File over kernel command line; an empty value in the file is "not set". */
	assert_int_equal(acfg_resolve(NULL, &file, &k, &out, err, sizeof(err)), 0);
	assert_string_equal(out.server, "https://file:1");
	assert_string_equal(out.name, "fromfile");
	assert_string_equal(out.interface, "eth9");
	assert_int_equal(out.reserve, 1ull << 30);
	assert_true(out.insecure);
	assert_string_equal(out.log_level, "debug");
	acfg_free(&out);

	/* Flags over everything; a token file given as a flag hides the kernel's token. */
	flags.server = strdup("https://flag:1");
	flags.enroll_token_file = strdup("/tmp/tok");
	flags.data_dir = strdup("/tmp/dd");
	assert_int_equal(acfg_resolve(&flags, &file, &k, &out, err, sizeof(err)), 0);
	assert_string_equal(out.server, "https://flag:1");
	assert_string_equal(out.data_dir, "/tmp/dd");
	assert_string_equal(out.enroll_token_file, "/tmp/tok");
	assert_null(out.enroll_token);
	acfg_free(&out);

	/* Checks: bad URL, bad fingerprint, bad level, token and file from one source. */
	free(flags.server);
	flags.server = strdup("ftp://x");
	assert_int_equal(acfg_resolve(&flags, NULL, NULL, &out, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "https://"));
	free(flags.server);
	flags.server = NULL;
	flags.fingerprint = strdup("abcd");
	assert_int_equal(acfg_resolve(&flags, NULL, NULL, &out, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "fingerprint"));
	free(flags.fingerprint);
	flags.fingerprint = NULL;
	flags.log_level = strdup("loud");
	assert_int_equal(acfg_resolve(&flags, NULL, NULL, &out, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "log_level"));
	free(flags.log_level);
	flags.log_level = NULL;
	flags.enroll_token = strdup(TOK);
	assert_int_equal(acfg_resolve(&flags, NULL, NULL, &out, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not both"));
	free(flags.enroll_token);
	flags.enroll_token = strdup("mle_short");
	free(flags.enroll_token_file);
	flags.enroll_token_file = NULL;
	assert_int_equal(acfg_resolve(&flags, NULL, NULL, &out, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "enroll_token"));

	/* http:// only with insecure (the file above sets it). */
	acfg_free(&flags);
	memset(&flags, 0, sizeof(flags));
	flags.server = strdup("http://plain:1");
	assert_int_equal(acfg_resolve(&flags, NULL, NULL, &out, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "clear text"));
	assert_int_equal(acfg_resolve(&flags, &file, NULL, &out, err, sizeof(err)), 0);
	assert_string_equal(out.server, "http://plain:1");
	assert_int_equal(out.server_src, ACFG_SRC_FLAG);
	acfg_free(&out);
	flags.insecure = 1;
	assert_int_equal(acfg_resolve(&flags, NULL, NULL, &out, err, sizeof(err)), 0);
	acfg_free(&out);

	/* Unknown keys in the file are errors. */
	struct acfg bad;
	assert_int_equal(
	    acfg_load_string("t.conf", "[agent]\nservre = x\n", &bad, err, sizeof(err)), -EINVAL);
	acfg_free(&flags);
	acfg_free(&file);
	acfg_kcmd_free(&k);
}

/* Once enrolled, the credential's server wins over the file and the kernel, not over --server. */
static void test_server_pick(void **state)
{
	(void)state;
	struct acfg flags = {0}, file = {0}, out;
	struct acfg_kcmd k = {0};
	char err[256], warn[256];
	const char *srv;
	const char *cred = "https://enrolled:8443";

	/* Not enrolled: whatever the settings say; nothing at all is an error. */
	assert_int_equal(acfg_resolve(NULL, NULL, NULL, &out, err, sizeof(err)), 0);
	assert_int_equal(acfg_server_pick(&out, NULL, &srv, warn, sizeof(warn), err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "no server"));
	/* Enrolled, nothing configured: the credential's, no warning. */
	assert_int_equal(acfg_server_pick(&out, cred, &srv, warn, sizeof(warn), err, sizeof(err)),
	                 0);
	assert_string_equal(srv, cred);
	assert_string_equal(warn, "");
	acfg_free(&out);

	/* The kernel command line's differs: ignored, with a warning. */
	const char *kc = "ml.server=https://kernel:1";
	assert_int_equal(acfg_cmdline_parse(kc, strlen(kc), &k, err, sizeof(err)), 0);
	assert_int_equal(acfg_resolve(NULL, NULL, &k, &out, err, sizeof(err)), 0);
	assert_int_equal(out.server_src, ACFG_SRC_KERNEL);
	assert_int_equal(acfg_server_pick(&out, NULL, &srv, warn, sizeof(warn), err, sizeof(err)),
	                 0);
	assert_string_equal(srv, "https://kernel:1"); /* not enrolled yet: it is the one */
	assert_int_equal(acfg_server_pick(&out, cred, &srv, warn, sizeof(warn), err, sizeof(err)),
	                 0);
	assert_string_equal(srv, cred);
	assert_non_null(strstr(warn, "kernel command line is ignored"));
	acfg_free(&out);

	/* The config file's differs: ignored too. */
	assert_int_equal(acfg_load_string("t.conf", "[agent]\nserver = https://file:1\n", &file,
	                                  err, sizeof(err)),
	                 0);
	assert_int_equal(acfg_resolve(NULL, &file, &k, &out, err, sizeof(err)), 0);
	assert_int_equal(out.server_src, ACFG_SRC_FILE);
	assert_int_equal(acfg_server_pick(&out, cred, &srv, warn, sizeof(warn), err, sizeof(err)),
	                 0);
	assert_string_equal(srv, cred);
	assert_non_null(strstr(warn, "config file is ignored"));
	acfg_free(&out);

	/* The same URL as the credential: no warning. */
	flags.server = strdup(cred);
	assert_int_equal(acfg_resolve(&flags, &file, &k, &out, err, sizeof(err)), 0);
	assert_int_equal(acfg_server_pick(&out, cred, &srv, warn, sizeof(warn), err, sizeof(err)),
	                 0);
	assert_string_equal(warn, "");
	acfg_free(&out);

	/* --server overrides it, with a warning. */
	free(flags.server);
	flags.server = strdup("https://moved:1");
	assert_int_equal(acfg_resolve(&flags, &file, &k, &out, err, sizeof(err)), 0);
	assert_int_equal(acfg_server_pick(&out, cred, &srv, warn, sizeof(warn), err, sizeof(err)),
	                 0);
	assert_string_equal(srv, "https://moved:1");
	assert_non_null(strstr(warn, "overrides"));
	acfg_free(&out);

	/* A credential enrolled over http:// is refused without insecure. */
	free(flags.server);
	flags.server = NULL;
	assert_int_equal(acfg_resolve(&flags, NULL, NULL, &out, err, sizeof(err)), 0);
	assert_int_equal(acfg_server_pick(&out, "http://enrolled:80", &srv, warn, sizeof(warn), err,
	                                  sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "https://"));
	out.insecure = 1;
	assert_int_equal(acfg_server_pick(&out, "http://enrolled:80", &srv, warn, sizeof(warn), err,
	                                  sizeof(err)),
	                 0);
	acfg_free(&out);
	acfg_free(&flags);
	acfg_free(&file);
	acfg_kcmd_free(&k);
}

static void test_cred(void **state)
{
	(void)state;
	struct cred c = {0}, d;
	char buf[CRED_FILE_MAX], err[256];
	memcpy(c.credential, CRED, sizeof(CRED));
	c.machine_id = 12;
	strcpy(c.name, "pc-104");
	strcpy(c.server, "https://mlserver:8443");
	strcpy(c.fingerprint, FPC);
	strcpy(c.pin, PIN);
	int n = cred_format(&c, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(cred_parse(buf, (size_t)n, &d, err, sizeof(err)), 0);
	assert_memory_equal(&c, &d, sizeof(c));

	/* Unknown keys are ignored; an insecure enrollment has no pin. */
	const char *t = "future=1\ncredential=" CRED "\nmachine_id=3\npin=\n";
	assert_int_equal(cred_parse(t, strlen(t), &d, err, sizeof(err)), 0);
	assert_int_equal(d.machine_id, 3);
	assert_string_equal(d.pin, "");

	static const struct {
		const char *text, *why;
	} bad[] = {
	    {"machine_id=3\n", "credential missing"},
	    {"credential=" CRED "\n", "machine_id missing"},
	    {"credential=" CRED "\nmachine_id=0\n", "machine_id"},
	    {"credential=" CRED "\nmachine_id=3\nmachine_id=3\n", "given twice"},
	    {"credential=mla_xyz\nmachine_id=3\n", "credential"},
	    {"credential=" CRED "\nmachine_id=3\npin=sha256//short\n", "pin"},
	    {"credential=" CRED "\nmachine_id=3\nfingerprint=zz\n", "fingerprint"},
	    {"credential=" CRED "\nmachine_id=3\nname=a\tb\n", "control"},
	    {"credential=" CRED "\nnonsense\n", "key=value"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cred_parse(bad[i].text, strlen(bad[i].text), &d, err, sizeof(err)),
		                 -EINVAL);
		if (!strstr(err, bad[i].why))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].why);
	}
	/* A newline in a value cannot be written. */
	strcpy(c.name, "a\nb");
	assert_int_equal(cred_format(&c, buf, sizeof(buf)), -EINVAL);

	/* Save and load: mode 0600. */
	char dir[] = "/tmp/test_agent_conf.XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/credential", dir);
	strcpy(c.name, "pc-104");
	assert_int_equal(cred_load(path, &d, err, sizeof(err)), -ENOENT);
	assert_int_equal(cred_save(path, &c, err, sizeof(err)), 0);
	assert_int_equal(cred_load(path, &d, err, sizeof(err)), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cmdline),
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_server_pick),
	    cmocka_unit_test(test_cred),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

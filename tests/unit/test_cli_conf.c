/*
 * Unit tests for mlctl's config file (ctlconf.c) and certificate
 * fingerprints and pins (pin.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mlctl.h"

#define FP                                                                                         \
	"37:34:2e:ef:9b:04:54:41:a5:7d:53:bd:99:1a:ec:ce:b6:9f:7b:a8:cb:d8:8e:1f:78:3b:32:b1:48:"  \
	"76:27:25"
#define PIN "sha256//E41IcZGMiyLm+iaw/gxiJfSwLUlS+lGTPXrubX1DP7I="

static void test_server_url(void **state)
{
	(void)state;
	static const char *const good[][2] = {
	    {"mlserver", "https://mlserver:8443"},
	    {"mlserver:9443", "https://mlserver:9443"},
	    {"https://mlserver", "https://mlserver:443"},
	    {"HTTPS://ml.example.edu:8443/", "https://ml.example.edu:8443"},
	    {"https://10.0.0.1:8443/api/v1", "https://10.0.0.1:8443"},
	    {"http://127.0.0.1/api/v1/", "http://127.0.0.1:80"},
	    {"[::1]:8443", "https://[::1]:8443"},
	    {"https://[fe80::1]", "https://[fe80::1]:443"},
	};
	static const char *const bad[] = {
	    "",       "ftp://x", "https://", "x:0",  "x:65536", "x:99999999",
	    "x/path", "user@x",  "x:80a",    "[::1", "[zz]",    "https://x:8443/api/v2",
	    "a b",
	};
	char out[300];
	const char *why;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(ctlconf_server_url(good[i][0], out, sizeof(out), &why), 0);
		assert_string_equal(out, good[i][1]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(ctlconf_server_url(bad[i], out, sizeof(out), &why), -EINVAL);
		assert_non_null(why);
	}
	/* The output buffer is never overrun. */
	assert_int_equal(ctlconf_server_url("mlserver", out, 10, &why), -EINVAL);
}

static void test_parse_good(void **state)
{
	(void)state;
	struct ctlconf c = {0};
	char err[256] = "";
	const char *text = "# comment\n"
	                   "server = ml.example.edu\n"
	                   "user = admin\n"
	                   "token = mlt_abc\n"
	                   "fingerprint = " FP "\n"
	                   "pubkey = " PIN "\n"
	                   "insecure = no\n";
	assert_int_equal(ctlconf_parse("t.conf", text, &c, err, sizeof(err)), 0);
	assert_string_equal(c.server, "https://ml.example.edu:8443");
	assert_string_equal(c.user, "admin");
	assert_string_equal(c.token, "mlt_abc");
	assert_string_equal(c.fingerprint, FP);
	assert_string_equal(c.pubkey, PIN);
	assert_null(c.cacert);
	assert_int_equal(c.insecure, 0);

	/* What format writes, parse reads back the same. */
	char *again = ctlconf_format(&c);
	struct ctlconf d = {0};
	assert_int_equal(ctlconf_parse("t2", again, &d, err, sizeof(err)), 0);
	assert_string_equal(d.server, c.server);
	assert_string_equal(d.token, c.token);
	assert_string_equal(d.pubkey, c.pubkey);
	assert_string_equal(d.fingerprint, c.fingerprint);
	free(again);
	ctlconf_clear(&d);
	ctlconf_clear(&c);
	assert_null(c.server);

	/* Upper-case fingerprints without colons are normalized. */
	assert_int_equal(
	    ctlconf_parse(
	        "t3",
	        "fingerprint = 37342EEF9B045441A57D53BD991AECCEB69F7BA8CBD88E1F783B32B148762725\n",
	        &c, err, sizeof(err)),
	    0);
	assert_string_equal(c.fingerprint, FP);
	ctlconf_clear(&c);
	assert_int_equal(ctlconf_parse("empty", "", &c, err, sizeof(err)), 0);
	assert_null(c.server);
	ctlconf_clear(&c);
}

static void test_parse_bad(void **state)
{
	(void)state;
	static const char *const bad[][2] = {
	    {"server = ftp://x\n", "t.conf: server: only https:// and http:// are supported"},
	    {"fingerprint = 12:34\n", "t.conf: fingerprint: expected 64 hex digits"},
	    {"pubkey = sha256//short=\n",
	     "t.conf: pubkey: expected sha256// and 44 base64 characters"},
	    {"pubkey = sha1//E41IcZGMiyLm+iaw/gxiJfSwLUlS+lGTPXrubX1DP7I=\n",
	     "t.conf: pubkey: expected sha256// and 44 base64 characters"},
	    {"colour = red\n", NULL},
	    {"[net]\nserver = x\n", NULL},
	    {"insecure = maybe\n", NULL},
	    {"server = a\nserver = b\n", NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ctlconf c = {0};
		char err[256] = "";
		assert_true(ctlconf_parse("t.conf", bad[i][0], &c, err, sizeof(err)) < 0);
		if (bad[i][1])
			assert_string_equal(err, bad[i][1]);
		else
			assert_true(strncmp(err, "t.conf:", 7) == 0);
		ctlconf_clear(&c);
	}
}

static void test_save_load(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_cli_conf.XXXXXX", path[256], err[256];
	struct stat st;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a/b/mlctl.conf", dir);
	struct ctlconf c = {0}, d = {0};
	ctlconf_set(&c.server, "https://x:8443");
	ctlconf_set(&c.token, "mlt_secret");
	ctlconf_set(&c.pubkey, PIN);
	assert_int_equal(ctlconf_save(path, &c, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char sub[256];
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(ctlconf_load(path, &d, err, sizeof(err)), 0);
	assert_string_equal(d.token, "mlt_secret");
	ctlconf_clear(&d);

	/* An existing file readable by others is replaced by a private one. */
	chmod(path, 0644);
	ctlconf_set(&c.token, "mlt_other");
	assert_int_equal(ctlconf_save(path, &c, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ctlconf_load(path, &d, err, sizeof(err)), 0);
	assert_string_equal(d.token, "mlt_other");
	ctlconf_clear(&d);

	/* A value that would not read back (too long a line) is refused, the file kept. */
	char longpath[400];
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	ctlconf_set(&c.cacert, longpath);
	assert_true(ctlconf_save(path, &c, err, sizeof(err)) < 0);
	assert_int_equal(ctlconf_load(path, &d, err, sizeof(err)), 0);
	assert_string_equal(d.token, "mlt_other");
	ctlconf_clear(&d);

	snprintf(sub, sizeof(sub), "%s/none.conf", dir);
	assert_int_equal(ctlconf_load(sub, &d, err, sizeof(err)), -ENOENT);
	ctlconf_clear(&c);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_default_path(void **state)
{
	(void)state;
	char p[256];
	unsetenv("MLCTL_CONFIG");
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", "/home/u", 1);
	assert_int_equal(ctlconf_default_path(p, sizeof(p)), 0);
	assert_string_equal(p, "/home/u/.config/microlinux/mlctl.conf");
	setenv("XDG_CONFIG_HOME", "/xdg", 1);
	assert_int_equal(ctlconf_default_path(p, sizeof(p)), 0);
	assert_string_equal(p, "/xdg/microlinux/mlctl.conf");
	setenv("MLCTL_CONFIG", "/etc/x.conf", 1);
	assert_int_equal(ctlconf_default_path(p, sizeof(p)), 0);
	assert_string_equal(p, "/etc/x.conf");
	assert_int_equal(ctlconf_default_path(p, 5), -ENAMETOOLONG);
	unsetenv("MLCTL_CONFIG");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("HOME");
	assert_int_equal(ctlconf_default_path(p, sizeof(p)), -ENOENT);
	assert_true(ctlconf_word("mlt_x"));
	assert_false(ctlconf_word("a b"));
	assert_false(ctlconf_word("a\nb"));
	assert_false(ctlconf_word(""));
}

/* A self-signed P-256 certificate and what openssl(1) says about it. */
static const char test_pem[] = "-----BEGIN CERTIFICATE-----\n"
                               "MIIBdzCCAR2gAwIBAgIUdZwDWlwGNMvmbQwoeJLjgJVIR14wCgYIKoZIzj0EAwIw\n"
                               "ETEPMA0GA1UEAwwGbWx0ZXN0MB4XDTI2MTEyNjEzNTMyNFoXDTM2MTEyMzEzNTMy\n"
                               "NFowETEPMA0GA1UEAwwGbWx0ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
                               "DdI3g4S5UYgSyOnoDjp3pZOnOPy0oNmKONXwBXTnykh2xNMMYdyif/51L0BAhptM\n"
                               "rus+pLGYDqGyB4PZGnkqWqNTMFEwHQYDVR0OBBYEFIAi7C0vjUC49oJxagx1Z4Se\n"
                               "sCAsMB8GA1UdIwQYMBaAFIAi7C0vjUC49oJxagx1Z4SesCAsMA8GA1UdEwEB/wQF\n"
                               "MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAJX4nwJddFyAkwPTBk6O9sX78w2QQEwN\n"
                               "w3omLlrFnYOVAiA9bQJ/eh0Y0hycNvJXUzpJKvPMFBklypo8K71k00Y3rw==\n"
                               "-----END CERTIFICATE-----\n";
/* openssl x509 -noout -fingerprint -sha256 */
#define TEST_FP                                                                                    \
	"cb:f0:5a:34:d1:67:3d:be:9d:85:d5:da:92:73:eb:61:02:85:6c:47:7d:1f:16:33:3d:4a:52:13:88:"  \
	"61:e6:64"
/* openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary |
 * base64 */
#define TEST_PIN "sha256//A6pxjqPLAcIwwUoFJ2QZe0249zG6cb3I19ILckpbtOU="

static void test_pin(void **state)
{
	(void)state;
	char fp[PIN_FP_SIZE], pin[PIN_KEY_SIZE];
	assert_int_equal(pin_from_pem(test_pem, strlen(test_pem), fp, pin), 0);
	assert_string_equal(fp, TEST_FP);
	assert_string_equal(pin, TEST_PIN);
	assert_int_equal(pin_key_check(pin), 0);
	assert_int_equal(pin_from_pem(test_pem, strlen(test_pem), NULL, pin), 0);
	assert_int_equal(pin_from_pem("junk", 4, fp, pin), -EINVAL);
	assert_int_equal(pin_from_pem(test_pem, 0, fp, pin), -EINVAL);
	assert_int_equal(pin_from_pem(test_pem, 100, fp, pin), -EINVAL);

	char out[PIN_FP_SIZE];
	assert_int_equal(pin_fp_normalize(TEST_FP, out), 0);
	assert_string_equal(out, TEST_FP);
	assert_int_equal(
	    pin_fp_normalize(
	        "SHA256:CBF05A34D1673DBE9D85D5DA9273EB6102856C477D1F16333D4A52138861E664", out),
	    0);
	assert_string_equal(out, TEST_FP);
	assert_int_equal(pin_fp_normalize("cb:f0", out), -EINVAL);
	assert_int_equal(pin_fp_normalize(TEST_FP ":00", out), -EINVAL);
	assert_int_equal(pin_fp_normalize(TEST_FP ":", out), -EINVAL);
	assert_int_equal(pin_fp_normalize(":" TEST_FP, out), -EINVAL);
	assert_int_equal(pin_fp_normalize("", out), -EINVAL);
	assert_int_equal(pin_fp_normalize("zz", out), -EINVAL);
	assert_int_equal(pin_key_check("sha256//A6pxjqPLAcIwwUoFJ2QZe0249zG6cb3I19ILckpbtO!="),
	                 -EINVAL);
	assert_int_equal(pin_key_check("sha256//"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_server_url),   cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_bad),    cmocka_unit_test(test_save_load),
	    cmocka_unit_test(test_default_path), cmocka_unit_test(test_pin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

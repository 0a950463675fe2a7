/*
 * Unit tests for network boot's modes and scripts (src/server/boot.c):
 *
 *  - modes and argument checks (boot_arg_ok, boot_cmdline_ok, boot_host_ok);
 *  - the iPXE scripts of the four modes, with and without a squashfs, and
 *    refusals of unsafe arguments and small buffers;
 *  - Range headers: the forms, the ignored ones, the unsatisfiable ones;
 *  - [boot] settings checks;
 *  - resolution on a real SQLite store: unknown MAC, default, group (the
 *    first by name), machine, temporary (and its expiry), a run's
 *    temporary mode cleared by the run, an install report that removes
 *    the install mode only after an install boot.
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

#include "boot.h"
#include "server.h"
#include "store.h"

static void test_modes(void **state)
{
	(void)state;
	for (int m = BOOT_MICROLINUX; m <= BOOT_SHELL; m++)
		assert_int_equal(boot_mode_parse(boot_mode_str(m)), m);
	assert_int_equal(boot_mode_parse("Local"), BOOT_NONE);
	assert_int_equal(boot_mode_parse(""), BOOT_NONE);
	assert_int_equal(boot_mode_parse(NULL), BOOT_NONE);
	assert_string_equal(boot_mode_str(0), "");
	assert_string_equal(boot_mode_str(99), "");
}

static void test_args(void **state)
{
	(void)state;
	assert_true(boot_arg_ok("ml.server=https://10.0.0.1:8443"));
	assert_false(boot_arg_ok(""));
	assert_false(boot_arg_ok("a b"));
	assert_false(boot_arg_ok("a${x}"));
	assert_false(boot_arg_ok("a\"b"));
	assert_false(boot_arg_ok("a#b"));
	assert_false(boot_arg_ok("a\nb"));
	assert_false(boot_arg_ok("\xc3\xa9"));
	char big[1100];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(boot_arg_ok(big));
	assert_true(boot_cmdline_ok(""));
	assert_true(boot_cmdline_ok("console=ttyS0 quiet"));
	assert_false(boot_cmdline_ok("quiet\nkernel x"));
	assert_false(boot_cmdline_ok("x=$y"));
	assert_true(boot_host_ok("10.0.0.1"));
	assert_true(boot_host_ok("10.0.0.1:8070"));
	assert_true(boot_host_ok("boot.example.org:80"));
	assert_true(boot_host_ok("[fe80::1]:8070"));
	assert_false(boot_host_ok(""));
	assert_false(boot_host_ok("a b"));
	assert_false(boot_host_ok("x/y"));
	assert_false(boot_host_ok("x:0"));
	assert_false(boot_host_ok("x:65536"));
	assert_false(boot_host_ok("-x"));
	assert_false(boot_host_ok("[::1"));
	assert_false(boot_host_ok("x:80:80"));
}

static struct boot_script_in script_in(int mode)
{
	struct boot_script_in in = {
	    .mode = mode,
	    .base = "http://10.0.0.1:8070",
	    .profile = "full",
	    .squashfs = true,
	    .server_url = "https://10.0.0.1:8443",
	    .fingerprint = "ab:cd",
	    .token = "",
	    .name = "pc1",
	    .mac = "52:54:00:00:00:01",
	    .why = "machine setting",
	    .cmdline = "console=ttyS0",
	};
	return in;
}

static void test_scripts(void **state)
{
	(void)state;
	char out[4096];
	struct boot_script_in in = script_in(BOOT_MICROLINUX);
	int n = boot_script(&in, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(out));
	assert_true(strncmp(out, "#!ipxe\n", 7) == 0);
	assert_non_null(strstr(out,
	                       "kernel http://10.0.0.1:8070/files/full/vmlinuz initrd=initrd.img"
	                       " boot=live fetch=http://10.0.0.1:8070/files/full/"
	                       "filesystem.squashfs ml.server=https://10.0.0.1:8443"
	                       " ml.fp=ab:cd ml.name=pc1 console=ttyS0 || goto failed\n"));
	assert_non_null(strstr(out, "initrd http://10.0.0.1:8070/files/full/initrd.img"));
	assert_non_null(strstr(out, "chain http://10.0.0.1:8070/boot/52-54-00-00-00-01"));
	assert_null(strstr(out, "ml.token"));
	assert_null(strstr(out, "ml.install"));

	in = script_in(BOOT_INSTALL);
	in.squashfs = false;
	in.token = "mle_x";
	assert_true(boot_script(&in, out, sizeof(out)) > 0);
	assert_null(strstr(out, "boot=live"));
	assert_non_null(strstr(out, " ml.token=mle_x ml.name=pc1 ml.install=1 console=ttyS0"));

	in = script_in(BOOT_SHELL);
	assert_true(boot_script(&in, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, " ml.shell=1"));

	in = script_in(BOOT_LOCAL);
	assert_true(boot_script(&in, out, sizeof(out)) > 0);
	assert_null(strstr(out, "kernel"));
	assert_non_null(strstr(out, "sanboot --no-describe --drive 0x80"));
	/* Leaving with an error, passed on by the first stage: UEFI tries its next entry. */
	assert_non_null(strstr(out, ":leave\nset mlexit 1\nexit 1\n"));

	/* A name that is not a safe argument is left out, and echoed harmlessly. */
	in = script_in(BOOT_MICROLINUX);
	in.name = "pc ${evil}";
	in.why = "group a$b\nkernel x";
	assert_true(boot_script(&in, out, sizeof(out)) > 0);
	assert_null(strstr(out, "ml.name"));
	assert_null(strstr(out, "${evil}"));
	assert_null(strstr(out, "\nkernel x"));
	assert_null(strstr(out, "a$b"));

	/* Unsafe settings and small buffers are refused. */
	in = script_in(BOOT_MICROLINUX);
	in.cmdline = "a\nb";
	assert_int_equal(boot_script(&in, out, sizeof(out)), -EINVAL);
	in = script_in(BOOT_MICROLINUX);
	in.server_url = "https://x y";
	assert_int_equal(boot_script(&in, out, sizeof(out)), -EINVAL);
	in = script_in(BOOT_NONE);
	assert_int_equal(boot_script(&in, out, sizeof(out)), -EINVAL);
	in = script_in(BOOT_MICROLINUX);
	assert_int_equal(boot_script(&in, out, 100), -ENOSPC);
	assert_int_equal(boot_script(&in, out, 0), -ENOSPC);

	n = boot_stage1("http://10.0.0.1:8070", out, sizeof(out));
	assert_true(n > 0);
	assert_non_null(strstr(out, "chain http://10.0.0.1:8070/boot/${netX/mac:hexhyp}"));
	/* A script that leaves network boot ends the first stage with its status. */
	assert_non_null(strstr(out, " && goto done ||\nisset ${mlexit} && exit ${mlexit} ||\n"));
	assert_int_equal(boot_stage1("http://x y", out, sizeof(out)), -EINVAL);
	assert_int_equal(boot_stage1("http://x", out, 10), -ENOSPC);
}

static void test_range(void **state)
{
	(void)state;
	uint64_t off = 7, len = 7;
	assert_int_equal(boot_range_parse(NULL, 100, &off, &len), 0);
	assert_int_equal(boot_range_parse("bytes=0-9", 100, &off, &len), 1);
	assert_true(off == 0 && len == 10);
	assert_int_equal(boot_range_parse("bytes=90-", 100, &off, &len), 1);
	assert_true(off == 90 && len == 10);
	assert_int_equal(boot_range_parse("bytes=90-500", 100, &off, &len), 1);
	assert_true(off == 90 && len == 10);
	assert_int_equal(boot_range_parse("bytes=-30", 100, &off, &len), 1);
	assert_true(off == 70 && len == 30);
	assert_int_equal(boot_range_parse("bytes=-300", 100, &off, &len), 1);
	assert_true(off == 0 && len == 100);
	assert_int_equal(boot_range_parse("bytes=99-99", 100, &off, &len), 1);
	assert_true(off == 99 && len == 1);
	/* Unsatisfiable. */
	assert_int_equal(boot_range_parse("bytes=100-", 100, &off, &len), -ERANGE);
	assert_int_equal(boot_range_parse("bytes=-0", 100, &off, &len), -ERANGE);
	assert_int_equal(boot_range_parse("bytes=0-", 0, &off, &len), -ERANGE);
	/* Ignored: the whole file is sent. */
	assert_int_equal(boot_range_parse("bytes=5-2", 100, &off, &len), 0);
	assert_int_equal(boot_range_parse("bytes=0-1,5-6", 100, &off, &len), 0);
	assert_int_equal(boot_range_parse("items=0-1", 100, &off, &len), 0);
	assert_int_equal(boot_range_parse("bytes=x-1", 100, &off, &len), 0);
	assert_int_equal(boot_range_parse("bytes=-", 100, &off, &len), 0);
	assert_int_equal(boot_range_parse("bytes=99999999999999999999-", 100, &off, &len), 0);
	assert_int_equal(boot_range_parse("bytes=18446744073709551615-", 100, &off, &len), 0);
}

static void test_conf(void **state)
{
	(void)state;
	struct srvconf c;
	char err[256];
	srvconf_defaults(&c);
	assert_int_equal(boot_conf_check(&c, err, sizeof(err)), 0);
	free(c.boot_profile);
	c.boot_profile = strdup("../x");
	assert_int_equal(boot_conf_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "[boot] profile"));
	free(c.boot_profile);
	c.boot_profile = strdup("minimal");
	free(c.boot_unknown_mode);
	c.boot_unknown_mode = strdup("pxe");
	assert_int_equal(boot_conf_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown_mode: 'pxe'"));
	free(c.boot_unknown_mode);
	c.boot_unknown_mode = strdup("local");
	free(c.boot_server_url);
	c.boot_server_url = strdup("ftp://x");
	assert_int_equal(boot_conf_check(&c, err, sizeof(err)), -EINVAL);
	free(c.boot_server_url);
	c.boot_server_url = strdup("https://mls.example.org:8443");
	free(c.boot_cmdline);
	c.boot_cmdline = strdup("quiet \"x\"");
	assert_int_equal(boot_conf_check(&c, err, sizeof(err)), -EINVAL);
	free(c.boot_cmdline);
	c.boot_cmdline = strdup("quiet");
	assert_int_equal(boot_conf_check(&c, err, sizeof(err)), 0);
	srvconf_free(&c);
}

/* ---- resolution on a real store ----------------------------------------- */

struct fixture {
	struct srv srv;
	char db[64];
	int64_t m1, m2, g1, g2;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];
	assert_non_null(f);
	snprintf(f->db, sizeof(f->db), "/tmp/test_boot.XXXXXX");
	int fd = mkstemp(f->db);
	assert_true(fd >= 0);
	close(fd);
	srvconf_defaults(&f->srv.conf);
	assert_int_equal(store_open_sqlite(f->db, &f->srv.store, err, sizeof(err)), 0);
	struct store *s = f->srv.store;
	int64_t now = store_now();
	assert_int_equal(store_insert(s, &f->m1,
	                              "INSERT INTO machines (name, created_at, updated_at)"
	                              " VALUES ('pc1', ?, ?) RETURNING id",
	                              "ii", now, now),
	                 0);
	assert_int_equal(store_insert(s, &f->m2,
	                              "INSERT INTO machines (name, created_at, updated_at)"
	                              " VALUES ('pc2', ?, ?) RETURNING id",
	                              "ii", now, now),
	                 0);
	assert_int_equal(store_exec(s,
	                            "INSERT INTO machine_macs (mac, machine_id) VALUES"
	                            " ('52:54:00:00:00:01', ?), ('52:54:00:00:00:02', ?)",
	                            "ii", f->m1, f->m2),
	                 2);
	assert_int_equal(store_insert(s, &f->g1,
	                              "INSERT INTO mgroups (name, created_at, updated_at)"
	                              " VALUES ('b-lab', ?, ?) RETURNING id",
	                              "ii", now, now),
	                 0);
	assert_int_equal(store_insert(s, &f->g2,
	                              "INSERT INTO mgroups (name, created_at, updated_at)"
	                              " VALUES ('a-room', ?, ?) RETURNING id",
	                              "ii", now, now),
	                 0);
	assert_int_equal(store_exec(s,
	                            "INSERT INTO group_members (group_id, machine_id)"
	                            " VALUES (?, ?), (?, ?)",
	                            "iiii", f->g1, f->m1, f->g2, f->m1),
	                 2);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->srv.store);
	srvconf_free(&f->srv.conf);
	unlink(f->db);
	free(f);
	return 0;
}

static void expect(struct fixture *f, const char *mac, int mode, const char *why)
{
	struct boot_choice ch;
	assert_int_equal(boot_resolve_mac(&f->srv, mac, &ch), 0);
	assert_string_equal(boot_mode_str(ch.mode), boot_mode_str(mode));
	assert_string_equal(ch.why, why);
}

static void test_resolve(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	expect(f, "52:54:00:00:00:09", BOOT_MICROLINUX, "unknown machine, [boot] unknown_mode");
	expect(f, "52:54:00:00:00:01", BOOT_MICROLINUX, "[boot] default_mode");
	free(f->srv.conf.boot_default_mode);
	f->srv.conf.boot_default_mode = strdup("local");
	expect(f, "52:54:00:00:00:02", BOOT_LOCAL, "[boot] default_mode");

	/* Two groups set a mode: the first by name wins. */
	assert_int_equal(
	    store_exec(s, "UPDATE mgroups SET boot_mode = 'shell' WHERE id = ?", "i", f->g1), 1);
	expect(f, "52:54:00:00:00:01", BOOT_SHELL, "group b-lab");
	assert_int_equal(
	    store_exec(s, "UPDATE mgroups SET boot_mode = 'microlinux' WHERE id = ?", "i", f->g2),
	    1);
	expect(f, "52:54:00:00:00:01", BOOT_MICROLINUX, "group a-room");
	expect(f, "52:54:00:00:00:02", BOOT_LOCAL, "[boot] default_mode");

	/* The machine's own mode comes before its groups'. */
	assert_int_equal(
	    store_exec(s, "UPDATE machines SET boot_mode = 'local' WHERE id = ?", "i", f->m1), 1);
	expect(f, "52:54:00:00:00:01", BOOT_LOCAL, "machine setting");

	/* A temporary mode comes first; an expired one is removed. */
	assert_int_equal(boot_temp_set(s, f->m1, BOOT_SHELL, 0, "fix it", "admin", 0), 0);
	expect(f, "52:54:00:00:00:01", BOOT_SHELL, "temporary: fix it");
	assert_int_equal(boot_temp_set(s, f->m1, BOOT_SHELL, 0, "", "admin", store_now() - 1), 0);
	expect(f, "52:54:00:00:00:01", BOOT_LOCAL, "machine setting");
	int64_t n = -1;
	assert_int_equal(store_int(s, &n, "SELECT COUNT(*) FROM boot_temporary", NULL), 0);
	assert_int_equal(n, 0);
}

static void test_run_and_install(void **state)
{
	struct fixture *f = *state;
	struct store *s = f->srv.store;
	int64_t now = store_now(), img, ver, dep, run;
	assert_int_equal(store_insert(s, &img,
	                              "INSERT INTO images (name, created_at, updated_at)"
	                              " VALUES ('i', ?, ?) RETURNING id",
	                              "ii", now, now),
	                 0);
	assert_int_equal(store_insert(s, &ver,
	                              "INSERT INTO image_versions (image_id, number, state,"
	                              " created_at) VALUES (?, 1, 'ready', ?) RETURNING id",
	                              "ii", img, now),
	                 0);
	assert_int_equal(store_insert(s, &dep,
	                              "INSERT INTO deployments (name, version_id, schedule_kind,"
	                              " created_at, updated_at) VALUES ('d', ?, 'now', ?, ?)"
	                              " RETURNING id",
	                              "iii", ver, now, now),
	                 0);
	assert_int_equal(
	    store_insert(s, &run,
	                 "INSERT INTO runs (deployment_id, deployment_name, version_id,"
	                 " state, cause, due_at, created_at) VALUES (?, 'd', ?, 'running',"
	                 " 'manual', ?, ?) RETURNING id",
	                 "iiii", dep, ver, now, now),
	    0);
	assert_int_equal(boot_temp_set(s, f->m2, BOOT_MICROLINUX, run, "run", "", 0), 0);
	char why[64];
	snprintf(why, sizeof(why), "temporary, run %lld", (long long)run);
	expect(f, "52:54:00:00:00:02", BOOT_MICROLINUX, why);
	/* A running run's mode survives the start-up clean-up; an ended one's does not. */
	boot_temp_clear_ended(s);
	expect(f, "52:54:00:00:00:02", BOOT_MICROLINUX, why);
	assert_int_equal(store_exec(s, "UPDATE runs SET state = 'failed' WHERE id = ?", "i", run),
	                 1);
	boot_temp_clear_ended(s);
	expect(f, "52:54:00:00:00:02", BOOT_MICROLINUX, "[boot] default_mode");
	assert_int_equal(boot_temp_set(s, f->m2, BOOT_LOCAL, run, "run", "", 0), 0);
	boot_temp_clear_run(s, run);
	expect(f, "52:54:00:00:00:02", BOOT_MICROLINUX, "[boot] default_mode");

	/* Install: a report before an install boot keeps the mode; after one, removes it. */
	json_t *done = json_pack("{ss}", "state", "done");
	json_t *failed = json_pack("{ss}", "state", "failed");
	assert_int_equal(boot_temp_set(s, f->m2, BOOT_INSTALL, 0, "", "admin", 0), 0);
	assert_false(boot_install_reported(s, f->m2, done));
	assert_int_equal(store_exec(s,
	                            "UPDATE boot_temporary SET created_at = created_at - 10"
	                            " WHERE machine_id = ?",
	                            "i", f->m2),
	                 1);
	boot_note(s, f->m2, BOOT_INSTALL);
	assert_false(boot_install_reported(s, f->m2, failed));
	expect(f, "52:54:00:00:00:02", BOOT_INSTALL, "temporary");
	assert_true(boot_install_reported(s, f->m2, done));
	expect(f, "52:54:00:00:00:02", BOOT_MICROLINUX, "[boot] default_mode");
	json_decref(done);
	json_decref(failed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_modes),
	    cmocka_unit_test(test_args),
	    cmocka_unit_test(test_scripts),
	    cmocka_unit_test(test_range),
	    cmocka_unit_test(test_conf),
	    cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_run_and_install, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

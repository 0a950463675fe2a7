/*
 * mlagent's commands (acmd.c): the receive arguments (every field's
 * refusal), a whole command and the poll answer, the Wake-on-LAN broadcast
 * check, the failure words; the back-off (backoff.c); and the inventory
 * (inv.c) on this machine's real /proc and /sys.
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

#include <cmocka.h>

#include "agent.h"
#include "sha256.h"

#define H64 "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF"

static json_t *good_args(void)
{
	return json_pack("{s:i, s:i, s:s, s:I, s:s, s:s, s:i, s:I, s:s, s:s, s:i}", "image_id", 3,
	                 "version_id", 7, "sha256", H64, "size", (json_int_t)1048576,
	                 "manifest_sha256", H64, "group", "239.192.77.1", "port", 7770, "session",
	                 (json_int_t)4000000000u, "key", "0a0B", "name", "pc-104", "timeout_s",
	                 120);
}

static void test_receive_args(void **state)
{
	(void)state;
	struct acmd_receive r;
	char err[256];
	json_t *a = good_args();
	assert_int_equal(acmd_receive_parse(a, &r, err, sizeof(err)), 0);
	assert_int_equal(r.image_id, 3);
	assert_int_equal(r.version_id, 7);
	assert_string_equal(r.sha256,
	                    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	assert_int_equal(r.manifest_sha256[31], 0xff);
	assert_int_equal(r.port, 7770);
	assert_int_equal(r.session, 4000000000u);
	assert_int_equal(r.keylen, 2);
	assert_int_equal(r.key[0], 0x0a);
	assert_int_equal(r.key[1], 0x0b);
	assert_string_equal(r.name, "pc-104");
	assert_int_equal(r.timeout_s, 120);

	static const struct {
		const char *key;
		const char *json; /* the new value, or NULL to remove the key */
		const char *why;
	} bad[] = {
	    {"image_id", NULL, "image_id: missing"},
	    {"image_id", "\"3\"", "image_id: expected an integer"},
	    {"image_id", "0", "image_id: 0 is out of range"},
	    {"version_id", "-1", "version_id"},
	    {"size", "1.5", "size: expected an integer"},
	    {"sha256", "\"abc\"", "sha256: expected 64 hex digits, got 3"},
	    {"sha256", "\"" H64 "0\"", "sha256: expected 1 to 64"},
	    {"manifest_sha256", NULL, "manifest_sha256: missing"},
	    {"manifest_sha256",
	     "\"zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"",
	     "manifest_sha256: not a hex digit at position 0"},
	    {"group", "\"10.0.0.1\"", "not an IPv4 multicast"},
	    {"group", "7", "group: expected a string"},
	    {"port", "0", "port: 0 is out of range"},
	    {"port", "65536", "port"},
	    {"session", "4294967296", "session"},
	    {"key", "\"abc\"", "key: an odd number"},
	    {"key", "\"zz\"", "key: not a hex digit"},
	    {"key", "[]", "key: expected a string"},
	    {"name", "\"\"", "name: expected 1 to"},
	    {"timeout_s", "0", "timeout_s"},
	    {"timeout_s", "true", "timeout_s: expected an integer"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *b = json_deep_copy(a);
		if (bad[i].json)
			json_object_set_new(b, bad[i].key,
			                    json_loads(bad[i].json, JSON_DECODE_ANY, NULL));
		else
			json_object_del(b, bad[i].key);
		err[0] = '\0';
		assert_int_equal(acmd_receive_parse(b, &r, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].why))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].why);
		json_decref(b);
	}
	json_t *arr = json_array();
	assert_int_equal(acmd_receive_parse(arr, &r, err, sizeof(err)), -EINVAL);
	json_decref(arr);
	json_decref(a);
}

static void test_commands(void **state)
{
	(void)state;
	struct acmd c;
	char err[256];
	json_t *cmds;
	const char *poll =
	    "{\"commands\": [{\"id\": 91, \"kind\": \"rollback\", \"run_id\": 1, \"args\": "
	    "{\"image_id\": 3}, \"created_at\": \"x\"}, {\"id\": 92, \"kind\": \"cancel\", "
	    "\"args\": {\"command\": 91}}, {\"id\": 93, \"kind\": \"wol\", \"args\": {\"macs\": "
	    "[\"52:54:00:12:34:56\"], \"broadcast\": \"10.1.2.255\", \"port\": 9, \"repeat\": 2, "
	    "\"gap_ms\": 10}}, {\"id\": 94, \"kind\": \"reboot\", \"args\": {}}, {\"id\": 95, "
	    "\"kind\": \"wol\", \"args\": {\"macs\": []}}]}";
	assert_int_equal(acmd_poll_parse(poll, strlen(poll), &cmds, err, sizeof(err)), 0);
	assert_int_equal(json_array_size(cmds), 5);
	assert_int_equal(acmd_parse(json_array_get(cmds, 0), &c, err, sizeof(err)), 0);
	assert_int_equal(c.kind, ACMD_ROLLBACK);
	assert_int_equal(c.u.rb.image_id, 3);
	assert_int_equal(c.u.rb.from_version, 0);
	assert_int_equal(acmd_parse(json_array_get(cmds, 1), &c, err, sizeof(err)), 0);
	assert_int_equal(c.kind, ACMD_CANCEL);
	assert_int_equal(c.u.target, 91);
	assert_int_equal(acmd_parse(json_array_get(cmds, 2), &c, err, sizeof(err)), 0);
	assert_int_equal(c.kind, ACMD_WOL);
	assert_int_equal(c.u.wol.nmacs, 1);
	assert_int_equal(c.u.wol.broadcast, 0x0a0102ff);
	assert_int_equal(c.u.wol.repeat, 2);
	assert_int_equal(acmd_parse(json_array_get(cmds, 3), &c, err, sizeof(err)), -ENOTSUP);
	assert_int_equal(c.id, 94);
	assert_non_null(strstr(err, "unknown kind \"reboot\""));
	assert_int_equal(acmd_parse(json_array_get(cmds, 4), &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "command 95 (wol)"));
	json_decref(cmds);

	assert_int_equal(acmd_poll_parse("{}", 2, &cmds, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "commands: expected an array"));
	assert_int_equal(acmd_poll_parse("{", 1, &cmds, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad JSON"));
	json_t *noid = json_pack("{s:s, s:{}}", "kind", "rollback", "args");
	assert_int_equal(acmd_parse(noid, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "id: missing"));
	json_decref(noid);
}

/* A rollback's from_version: optional, but when given an id; and when it applies. */
static void test_rollback(void **state)
{
	(void)state;
	struct acmd c;
	char err[256];
	json_t *j = json_pack("{s:i, s:s, s:{s:i, s:i}}", "id", 5, "kind", "rollback", "args",
	                      "image_id", 3, "from_version", 9);
	assert_int_equal(acmd_parse(j, &c, err, sizeof(err)), 0);
	assert_int_equal(c.u.rb.image_id, 3);
	assert_int_equal(c.u.rb.from_version, 9);
	json_decref(j);
	static const char *const bad[] = {"\"9\"", "0", "-1", "null", "1.5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text),
		         "{\"id\": 5, \"kind\": \"rollback\", \"args\": {\"image_id\": 3, "
		         "\"from_version\": %s}}",
		         bad[i]);
		j = json_loads(text, 0, NULL);
		assert_non_null(j);
		assert_int_equal(acmd_parse(j, &c, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "from_version"));
		json_decref(j);
	}
	/* Without from_version it always switches; with it only while it is active. */
	struct acmd_rollback any = {3, 0}, from9 = {3, 9};
	assert_true(acmd_rollback_applies(&any, 0));
	assert_true(acmd_rollback_applies(&any, 4));
	assert_true(acmd_rollback_applies(&from9, 9));
	assert_false(acmd_rollback_applies(&from9, 8)); /* the rollback happened already */
	assert_false(acmd_rollback_applies(&from9, 0));
}

/* The poll's all=1 on the first poll and after a failure; the pause after nothing new. */
static void test_poller(void **state)
{
	(void)state;
	struct acmd_poller p;
	char path[96];
	acmd_poller_init(&p);
	assert_int_equal(acmd_poller_path(&p, 25, path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/agent/poll?wait=25&all=1");
	/* An answer with something new: the next poll at once, without all. */
	assert_int_equal(acmd_poller_done(&p, true, 2, 10), 0);
	assert_int_equal(acmd_poller_path(&p, 25, path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/agent/poll?wait=25");
	/* Nothing new, at once: a 1 s pause; nothing new after a long wait: none. */
	assert_int_equal(acmd_poller_done(&p, true, 0, 999), 1000);
	assert_int_equal(acmd_poller_done(&p, true, 0, 1000), 0);
	assert_int_equal(acmd_poller_done(&p, true, 0, 25000), 0);
	assert_int_equal(acmd_poller_done(&p, true, 1, 0), 0);
	assert_int_equal(acmd_poller_path(&p, 25, path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/agent/poll?wait=25");
	/* A failed poll (reconnect): all=1 once, then not again. */
	assert_int_equal(acmd_poller_done(&p, false, 0, 5), 0);
	assert_int_equal(acmd_poller_path(&p, 7, path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/agent/poll?wait=7&all=1");
	assert_int_equal(acmd_poller_done(&p, true, 0, 2000), 0);
	assert_int_equal(acmd_poller_path(&p, 7, path, sizeof(path)), 0);
	assert_string_equal(path, "/api/v1/agent/poll?wait=7");
	assert_int_equal(acmd_poller_path(&p, 7, path, 10), -ENOSPC);

	/* A listed command: unknown or stranded (neither running nor finished) runs. */
	assert_int_equal(acmd_listed_action(false, false, false), ACMD_LISTED_RUN);
	assert_int_equal(acmd_listed_action(true, false, false), ACMD_LISTED_RUN);
	assert_int_equal(acmd_listed_action(true, true, false), ACMD_LISTED_IGNORE);
	assert_int_equal(acmd_listed_action(true, true, true), ACMD_LISTED_IGNORE);
	assert_int_equal(acmd_listed_action(true, false, true), ACMD_LISTED_REPOST);
}

/* A receive's name: 64 bytes at most, multi-byte UTF-8 included. */
static void test_receive_name(void **state)
{
	(void)state;
	struct acmd_receive r;
	char err[256], name[80];
	json_t *a = good_args();
	/* "12:", 29 two-byte "é" and one three-byte "€": 3 + 58 + 3 = 64 bytes. */
	size_t n = 0;
	memcpy(name, "12:", 3);
	n = 3;
	for (int i = 0; i < 29; i++) {
		name[n++] = (char)0xc3;
		name[n++] = (char)0xa9;
	}
	memcpy(name + n, "\xe2\x82\xac", 3); /* U+20AC */
	n += 3;
	name[n] = '\0';
	assert_int_equal(n, 64);
	json_object_set_new(a, "name", json_string(name));
	assert_int_equal(acmd_receive_parse(a, &r, err, sizeof(err)), 0);
	assert_int_equal(strlen(r.name), 64);
	assert_memory_equal(r.name, name, 65);
	/* One more byte is refused. */
	name[n++] = 'x';
	name[n] = '\0';
	json_object_set_new(a, "name", json_string(name));
	assert_int_equal(acmd_receive_parse(a, &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "name"));
	json_decref(a);
}

/* Could not start: retryable only when transient. */
static void test_start_retryable(void **state)
{
	(void)state;
	assert_true(acmd_start_retryable(-EAGAIN));
	assert_true(acmd_start_retryable(-EBUSY));
	assert_true(acmd_start_retryable(-EADDRINUSE));
	assert_true(acmd_start_retryable(-ENOBUFS));
	assert_false(acmd_start_retryable(-EINVAL));
	assert_false(acmd_start_retryable(-ENODEV));
	assert_false(acmd_start_retryable(-EPERM));
	assert_false(acmd_start_retryable(-ENOENT));
	assert_false(acmd_start_retryable(0));
}

/* Puts version `version` of image 1 with bytes `fillc` into the store and makes it active. */
static void store_deploy(struct imgstore *st, uint64_t version, char fillc, char hex[65])
{
	uint8_t buf[4096], d[32];
	struct imgstore_rx *rx = NULL;
	struct imgstore_rx_info in;
	char err[256];
	memset(buf, fillc, sizeof(buf));
	sha256_buf(buf, sizeof(buf), d);
	sha256_hex(d, hex);
	assert_int_equal(
	    imgstore_prepare(st, 1, version, hex, sizeof(buf), NULL, &rx, err, sizeof(err)), 0);
	imgstore_rx_info(rx, &in);
	FILE *f = fopen(in.output, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, sizeof(buf), f), sizeof(buf));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(imgstore_commit(rx, IMGSTORE_VERIFY, err, sizeof(err)), 0);
}

/* A stored version whose SHA-256 is not the command's is not "current". */
static void test_drop_stale(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_agent_cmd.XXXXXX", err[256], h1[65], h2[65], path[512];
	const char *other = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
	struct imgstore *st = NULL;
	struct stat sb;
	uint64_t v;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(imgstore_open(dir, NULL, &st, err, sizeof(err)), 0);
	store_deploy(st, 1, 'a', h1);
	store_deploy(st, 2, 'b', h2);
	/* Not held, or held with the same bytes: nothing to do. */
	assert_int_equal(imgstore_drop_stale(st, 1, 5, other, err, sizeof(err)), 0);
	assert_int_equal(imgstore_drop_stale(st, 1, 1, h1, err, sizeof(err)), 0);
	assert_int_equal(imgstore_drop_stale(st, 1, 2, h2, err, sizeof(err)), 0);
	/* The active one with other bytes: never removed. */
	assert_int_equal(imgstore_drop_stale(st, 1, 2, other, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "active version 2"));
	assert_int_equal(imgstore_active(st, 1, &v, NULL, 0), 0);
	assert_int_equal(v, 2);
	/* The previous one with other bytes: removed, so that it is received anew. */
	snprintf(path, sizeof(path), "%s/images/1/v1", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(imgstore_drop_stale(st, 1, 1, other, err, sizeof(err)), 1);
	assert_int_not_equal(stat(path, &sb), 0);
	assert_int_equal(imgstore_active(st, 1, &v, NULL, 0), 0);
	assert_int_equal(v, 2);
	assert_int_equal(imgstore_rollback(st, 1, err, sizeof(err)), -ENOENT);
	assert_int_equal(imgstore_drop_stale(st, 1, 1, "xyz", err, sizeof(err)), -EINVAL);
	imgstore_free(st);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_bcast(void **state)
{
	(void)state;
	struct match_cidr nets[] = {{0x0a010200, 24}, {0xc0a80000, 16}, {0x0a090900, 31}};
	assert_true(acmd_bcast_allowed(0xffffffff, NULL, 0));
	assert_true(acmd_bcast_allowed(0x0a0102ff, nets, 3));
	assert_true(acmd_bcast_allowed(0xc0a8ffff, nets, 3));
	/* Another subnet's broadcast, a host of ours, and a /31 (which has none). */
	assert_false(acmd_bcast_allowed(0x0a0103ff, nets, 3));
	assert_false(acmd_bcast_allowed(0x0a010205, nets, 3));
	assert_false(acmd_bcast_allowed(0x0a090901, nets, 3));
	assert_false(acmd_bcast_allowed(0x0a0102ff, NULL, 0));

	assert_string_equal(acmd_fail_word(MC_FAIL_NOSPACE), "nospace");
	assert_string_equal(acmd_fail_word(MC_FAIL_SENDER_GONE), "sender_gone");
	assert_string_equal(acmd_fail_word(MC_FAIL_IMAGE_HASH), "hash");
	assert_string_equal(acmd_fail_word(999), "internal");
	assert_true(acmd_fail_retryable(MC_FAIL_TIMEOUT));
	assert_false(acmd_fail_retryable(MC_FAIL_IMAGE_HASH));
	assert_false(acmd_fail_retryable(MC_FAIL_NOSPACE));
}

static void test_backoff(void **state)
{
	(void)state;
	struct backoff b;
	backoff_init(&b, 1000, 60000);
	/* Lowest jitter: 0.8 of 1, 2, 4, ... 32, then 60 s for good. */
	uint32_t want[] = {800, 1600, 3200, 6400, 12800, 25600, 48000, 48000};
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(backoff_next(&b, 0), want[i]);
	backoff_reset(&b);
	assert_int_equal(backoff_next(&b, UINT32_MAX), 1200);
	assert_int_equal(backoff_next(&b, UINT32_MAX / 2), 2000 - 1);
	for (int i = 0; i < 20; i++) {
		uint32_t d = backoff_next(&b, (uint32_t)rand());
		assert_true(d >= 48000 || i < 5);
		assert_true(d <= 72000);
	}
}

static void test_inventory(void **state)
{
	(void)state;
	char model[128], err[256];
	unsigned n;
	uint64_t mem = 0;
	const char *ci = "processor\t: 0\nmodel name\t: Test CPU @ 1GHz\n\nprocessor\t: 1\n"
	                 "model name\t: Test CPU @ 1GHz\n";
	assert_int_equal(inv_cpuinfo_parse(ci, strlen(ci), model, sizeof(model), &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(model, "Test CPU @ 1GHz");
	assert_int_equal(inv_cpuinfo_parse("", 0, model, sizeof(model), &n), -EINVAL);
	const char *mi = "MemTotal:       16318480 kB\nMemFree: 1 kB\n";
	assert_int_equal(inv_meminfo_parse(mi, strlen(mi), &mem), 0);
	assert_int_equal(mem, 16318480ull * 1024);
	assert_int_equal(inv_meminfo_parse("MemFree: 1 kB\n", 14, &mem), -EINVAL);

	/* This machine: at least one CPU and some memory; the shape of the contract. */
	struct inv_opts o = {.data_dir = "/tmp"};
	json_t *j = inv_build(&o, err, sizeof(err));
	assert_non_null(j);
	json_t *cpu = json_object_get(j, "cpu");
	assert_true(json_integer_value(json_object_get(cpu, "count")) >= 1);
	assert_true(json_integer_value(json_object_get(j, "memory_bytes")) > 0);
	assert_true(json_is_string(json_object_get(j, "hostname")));
	assert_true(json_is_array(json_object_get(j, "macs")));
	assert_true(json_is_array(json_object_get(j, "ips")));
	assert_true(json_is_array(json_object_get(j, "disks")));
	assert_true(json_is_boolean(json_object_get(j, "kvm")));
	assert_true(
	    json_integer_value(json_object_get(json_object_get(j, "data_dir"), "size_bytes")) > 0);
	assert_int_equal(json_array_size(json_object_get(j, "images")), 0);
	json_t *d;
	size_t i;
	json_array_foreach(json_object_get(j, "disks"), i, d)
	{
		const char *name = json_string_value(json_object_get(d, "name"));
		assert_non_null(name);
		assert_true(strncmp(name, "loop", 4) != 0 && strncmp(name, "ram", 3) != 0);
	}
	char *text = json_dumps(j, JSON_COMPACT);
	print_message("inventory: %.300s...\n", text);
	free(text);
	json_decref(j);

	/* The images part from a listing. */
	struct imgstore_version v[2] = {{.id = 5, .size = 10, .state = IMGSTORE_PREVIOUS},
	                                {.id = 7, .size = 20, .state = IMGSTORE_ACTIVE}};
	struct imgstore_image im = {
	    .id = 3, .active = 7, .previous = 5, .nversions = 2, .versions = v};
	struct imgstore_list l = {.nimages = 1, .images = &im};
	json_t *a = inv_images(&l);
	assert_int_equal(json_array_size(a), 1);
	json_t *e = json_array_get(a, 0);
	assert_int_equal(json_integer_value(json_object_get(e, "active")), 7);
	assert_int_equal(json_integer_value(json_object_get(e, "previous")), 5);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(e, "versions"), 1), "state")),
	                    "active");
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_receive_args), cmocka_unit_test(test_commands),
	    cmocka_unit_test(test_rollback),     cmocka_unit_test(test_poller),
	    cmocka_unit_test(test_receive_name), cmocka_unit_test(test_start_retryable),
	    cmocka_unit_test(test_drop_stale),   cmocka_unit_test(test_bcast),
	    cmocka_unit_test(test_backoff),      cmocka_unit_test(test_inventory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

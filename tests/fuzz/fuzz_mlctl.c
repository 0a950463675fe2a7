/*
 * libFuzzer harness for mlctl's parsers and renderers: the config file
 * (ctlconf_parse, with a format/parse round trip), typed times
 * (when_input), server URLs, fingerprints, certificates (pin_from_pem),
 * and the rendering of server JSON as tables and pages (out_table,
 * out_show, tbl_clean) and of runs (rv_render, rv_watch_feed,
 * rv_commands), which must never emit a control character.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_cols_both(const json_t *o)
{
	return res_targets_col(o);
}

static const struct col fuzz_cols[] = {
    {"ID", "id", C_NUM, NULL},   {"NAME", "name", C_STR, NULL},
    {"AT", "at", C_TIME, NULL},  {"SIZE", "size", C_SIZE, NULL},
    {"OK", "a.b", C_BOOL, NULL}, {"T", NULL, C_FN, fuzz_cols_both},
    {NULL, NULL, C_STR, NULL},
};

/* Rendered text for a terminal: no control characters but newlines. */
static void fuzz_check_clean(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
		if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char err[256], out[512], fp[PIN_FP_SIZE], pin[PIN_KEY_SIZE];
	const char *why;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct ctlconf c = {0};
	if (ctlconf_parse("fuzz.conf", text, &c, err, sizeof(err)) == 0) {
		/* What parses must format and parse back to the same. */
		char *again = ctlconf_format(&c);
		struct ctlconf d = {0};
		if (again && strlen(again) < 4096) {
			if (ctlconf_parse("again", again, &d, err, sizeof(err)) != 0)
				abort();
			if ((c.server == NULL) != (d.server == NULL) ||
			    (c.server && strcmp(c.server, d.server) != 0) ||
			    (c.token && strcmp(c.token, d.token) != 0))
				abort();
		}
		free(again);
		ctlconf_clear(&d);
	}
	ctlconf_clear(&c);

	if (when_input(text, 1795698000, out, sizeof(out), &why) == 0 && strlen(out) != 20)
		abort();
	if (ctlconf_server_url(text, out, sizeof(out), &why) == 0) {
		char again[512];
		if (ctlconf_server_url(out, again, sizeof(again), &why) != 0 || strcmp(out, again))
			abort();
	}
	if (pin_fp_normalize(text, fp) == 0 && strlen(fp) != PIN_FP_SIZE - 1)
		abort();
	if (pin_from_pem(text, size, fp, pin) == 0 && pin_key_check(pin) != 0)
		abort();

	char *clean = tbl_clean(text, 20);
	fuzz_check_clean(clean);
	if (clean && tbl_width(clean) > 20)
		abort();
	free(clean);

	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	if (j) {
		json_t *items = json_is_array(j) ? json_incref(j) : json_pack("[O]", j);
		char *t = items ? out_table(items, fuzz_cols) : NULL;
		fuzz_check_clean(t);
		free(t);
		json_decref(items);
		if (json_is_object(j)) {
			char *s = out_show(j);
			fuzz_check_clean(s);
			free(s);
			s = rv_render(j, true);
			fuzz_check_clean(s);
			free(s);
			struct rv_watch *w = rv_watch_new();
			for (int k = 0; w && k < 2; k++) {
				s = rv_watch_feed(w, j, 1795698000);
				fuzz_check_clean(s);
				free(s);
			}
			rv_watch_free(w);
		}
		char *cmds = rv_commands(json_is_array(j) ? j : json_object_get(j, "commands"));
		fuzz_check_clean(cmds);
		free(cmds);
		json_decref(j);
	}
	free(text);
	return 0;
}

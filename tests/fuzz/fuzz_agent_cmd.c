/*
 * libFuzzer harness for mlagent's command parsing (acmd_poll_parse,
 * acmd_parse, acmd_receive_parse): arbitrary bytes as a poll answer, each
 * command of it parsed. A parsed receive must have its values in range, a
 * parsed rollback an image id (from_version 0 when not given), and the poll
 * rhythm helpers must hold their contract whatever the input says.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *cmds = NULL, *o;
	char err[AGENT_ERR_SIZE];
	size_t i;
	struct acmd *c = malloc(sizeof(*c));
	if (!c)
		return 0;
	int r = acmd_poll_parse((const char *)data, size, &cmds, err, sizeof(err));
	if (r != 0 && r != -EINVAL)
		abort();
	json_array_foreach(cmds, i, o)
	{
		r = acmd_parse(o, c, err, sizeof(err));
		if (r != 0 && r != -EINVAL && r != -ENOTSUP && r != -ENOMEM)
			abort();
		if (r == 0 && c->kind == ACMD_RECEIVE) {
			const struct acmd_receive *x = &c->u.rx;
			if (x->image_id < 1 || x->version_id < 1 || x->port < 1 ||
			    x->timeout_s < 1 || x->timeout_s > ACMD_MAX_TIMEOUT_S ||
			    x->keylen > MC_MAX_KEY || strlen(x->sha256) != 64 || !x->name[0])
				abort();
			if (strlen(x->name) > 64)
				abort();
		}
		if (r == 0 && c->kind == ACMD_ROLLBACK) {
			const struct acmd_rollback *rb = &c->u.rb;
			if (rb->image_id < 1 || !acmd_rollback_applies(rb, rb->from_version) ||
			    (rb->from_version == 0) !=
			        !json_object_get(json_object_get(o, "args"), "from_version"))
				abort();
		}
	}
	/* The poll rhythm: never a pause after something new, never more than 1 s. */
	struct acmd_poller pl;
	char path[96];
	acmd_poller_init(&pl);
	uint32_t ms = acmd_poller_done(&pl, size & 1, json_array_size(cmds), size);
	if (ms > 1000 || (json_array_size(cmds) && ms) || acmd_poller_path(&pl, 60, path, 96) < 0 ||
	    (strstr(path, "all=1") != NULL) != !(size & 1))
		abort();
	json_decref(cmds);
	free(c);
	return 0;
}

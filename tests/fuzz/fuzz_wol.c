/*
 * libFuzzer harness for the Wake-on-LAN relay command (wol_relay_parse).
 * Beyond "no crash", it checks the contracts: an error has a one-line
 * message and leaves the output alone; a parsed command passes
 * wol_relay_check(), formats, and the formatted text parses back to the
 * same command. The first bytes also drive the pure address helpers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wol_relay r, keep, back;
	char err[WOL_ERR_SIZE];
	int rc;

	memset(&r, 0xa5, sizeof(r));
	keep = r;
	err[0] = '\0';
	rc = wol_relay_parse((const char *)data, size, &r, err, sizeof(err));
	if (rc != 0) {
		check(rc == -EINVAL || rc == -ENOMEM);
		check(err[0] != '\0' && !strchr(err, '\n'));
		check(memcmp(&r, &keep, sizeof(r)) == 0);
	} else {
		check(wol_relay_check(&r, err, sizeof(err)) == 0);
		char *s = wol_relay_format(&r);
		check(s != NULL);
		memset(&back, 0, sizeof(back));
		check(wol_relay_parse(s, strlen(s), &back, err, sizeof(err)) == 0);
		check(back.nmacs == r.nmacs && back.broadcast == r.broadcast &&
		      back.port == r.port && back.repeat == r.repeat && back.gap_ms == r.gap_ms);
		check(memcmp(back.macs, r.macs, r.nmacs * MATCH_MAC_BYTES) == 0);
		free(s);
	}
	/* Bytes 0-5: a MAC; 6-11: a password of up to 6 bytes; 12: its length. */
	if (size >= 13) {
		uint8_t pkt[WOL_PACKET_MAX];
		struct match_cidr c;
		struct wol_dest d[2];
		struct wol_iface ifc = {.index = 3};
		uint32_t a;

		unsigned pwlen = data[12] % 8u;
		check(wol_packet_secureon(data, data + 6, pwlen, pkt) ==
		      (pwlen == 0 || pwlen == 4 || pwlen == 6 ? (int)(WOL_PACKET_LEN + pwlen)
		                                              : -EINVAL));
		memcpy(&a, data, 4);
		c.prefix = data[4] % 33u;
		c.net = a & match_prefix_mask(c.prefix);
		uint32_t b = wol_broadcast_addr(&c);
		check(c.prefix >= 31 ? b == WOL_BCAST_NONE
		                     : (b & match_prefix_mask(c.prefix)) == c.net && (b & 3) == 3);
		ifc.net.prefix = data[5] % 33u;
		ifc.net.net = a & match_prefix_mask(ifc.net.prefix);
		size_t n = wol_destinations(&c, &ifc, d);
		check(n <= 2);
		for (size_t i = 0; i < n; i++)
			check(d[i].addr != WOL_BCAST_NONE);
	}
	return 0;
}

/* mlcast receive: join a sender's session, receive, verify, write the image. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ascii.h"
#include "log.h"
#include "mlcast.h"
#include "net.h"
#include "parse.h"
#include "proto.h"
#include "sha256.h"

struct recv_ui {
	bool json, tty, quiet;
	double last_print;
	const char *output;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: mlcast receive [OPTIONS] -o OUTPUT\n"
	    "\n"
	    "Joins the session of the first sender heard on the group, receives its image,\n"
	    "checks every chunk and the whole image against the sender's manifest and\n"
	    "only then puts it in place as OUTPUT (OUTPUT.mlcast-part until then).\n"
	    "\n"
	    "  -o, --output FILE       where the image goes (required)\n"
	    "  -i, --interface IF      join the group on this interface\n"
	    "  -g, --group ADDR        multicast group (default " MC_DEFAULT_GROUP ")\n"
	    "  -p, --port N            UDP port (default %d)\n"
	    "  -k, --key FILE          the session's shared key (when the sender uses one)\n"
	    "      --resume            keep what an interrupted run already verified\n"
	    "                          (OUTPUT.mlcast-part and its journal)\n"
	    "      --seed OLD_IMAGE    take the chunks an older version already holds\n"
	    "      --name NAME         how the sender lists this receiver (default: host name)\n"
	    "      --timeout SECONDS   give up when the sender is silent this long (default 30)\n"
	    "      --threads N         verification threads (default 2)\n"
	    "      --session ID        accept only this session id\n"
	    "      --manifest-sha256 HEX  accept only a session of the manifest with this\n"
	    "                          SHA-256 (others on the group are ignored)\n"
	    "      --json              print machine-readable status lines\n"
	    "  -q, --quiet             only the result\n"
	    "  -h, --help              this help\n"
	    "\n"
	    "Exit status: 0 only when OUTPUT is complete and verified; 1 on failure (the\n"
	    "last line says why); 2 for bad usage.\n",
	    MC_DEFAULT_PORT);
}

static const char *state_name(int s)
{
	static const char *const n[] = {"",          "manifest", "seeding", "receiving",
	                                "verifying", "done",     "failed"};

	return s > 0 && s <= MC_R_FAILED ? n[s] : "listening";
}

static void json_counts(const struct mc_recv_status *st)
{
	printf("\"elapsed_s\":%.3f,\"state\":\"%s\",\"chunks_done\":%u,\"chunks_needed\":%u,"
	       "\"chunks_total\":%u,\"seeded_chunks\":%llu,\"bytes_received\":%llu,"
	       "\"useful_bytes\":%llu,\"rx_pkts\":%llu,\"dup_pkts\":%llu,\"bad_pkts\":%llu,"
	       "\"forged_pkts\":%llu,\"hash_failures\":%llu,\"nacks_sent\":%llu,\"rate_bps\":%.0f",
	       st->elapsed_s, state_name(st->state), st->chunks_done, st->chunks_needed,
	       st->chunks_total, (unsigned long long)st->seeded_chunks,
	       (unsigned long long)st->bytes, (unsigned long long)st->useful_bytes,
	       (unsigned long long)st->rx_pkts, (unsigned long long)st->dup_pkts,
	       (unsigned long long)st->bad_pkts, (unsigned long long)st->forged_pkts,
	       (unsigned long long)st->hash_failures, (unsigned long long)st->nacks_sent,
	       st->rate_bps);
}

struct final_ctx {
	struct recv_ui *ui;
	struct mc_recv_status st;
	bool have;
};

static void on_status(void *ctx, const struct mc_recv_status *st)
{
	struct final_ctx *f = ctx;
	struct recv_ui *ui = f->ui;
	char b1[32], b2[32];

	f->st = *st;
	f->st.reason = NULL;
	f->have = true;
	if (ui->json) {
		if (st->elapsed_s - ui->last_print < 1.0)
			return;
		ui->last_print = st->elapsed_s;
		printf("{\"event\":\"progress\",");
		json_counts(st);
		printf(",\"eta_s\":%.1f}\n", st->eta_s);
		fflush(stdout);
	} else if (ui->tty && !ui->quiet) {
		double pct = st->chunks_needed ? 100.0 * st->chunks_done / st->chunks_needed : 0;

		fprintf(stderr, "\r\033[2K%-9s %5.1f%%  %u/%u chunks  %s  %.1f MiB/s  ETA %s",
		        state_name(st->state), pct, st->chunks_done, st->chunks_needed,
		        cli_bytes((double)st->bytes, b1, sizeof(b1)), st->rate_bps / 8 / 1048576,
		        cli_duration(st->eta_s, b2, sizeof(b2)));
		fflush(stderr);
	}
}

int cmd_receive(int argc, char **argv)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
	                                     {"interface", required_argument, NULL, 'i'},
	                                     {"group", required_argument, NULL, 'g'},
	                                     {"port", required_argument, NULL, 'p'},
	                                     {"key", required_argument, NULL, 'k'},
	                                     {"resume", no_argument, NULL, 'R'},
	                                     {"seed", required_argument, NULL, 's'},
	                                     {"name", required_argument, NULL, 'N'},
	                                     {"timeout", required_argument, NULL, 'T'},
	                                     {"threads", required_argument, NULL, 't'},
	                                     {"session", required_argument, NULL, 'S'},
	                                     {"manifest-sha256", required_argument, NULL, 'M'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"quiet", no_argument, NULL, 'q'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	static volatile int stop;
	struct mc_recv_opts o = {0};
	struct recv_ui ui = {0};
	struct final_ctx fin = {.ui = &ui};
	uint8_t key[MC_MAX_KEY], mdigest[SHA256_LEN];
	char err[512] = "", hex[SHA256_HEX_LEN], b[32];
	const char *why;
	uint64_t v;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:i:g:p:k:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o.output = optarg;
			break;
		case 'i':
			o.ifname = optarg;
			break;
		case 'g': {
			struct in_addr g;

			if (mc_parse_group(optarg, &g, &why) < 0)
				return cli_usage_error("receive", "--group %s: %s", optarg, why);
			o.group = optarg;
			break;
		}
		case 'p':
			if (parse_uint(optarg, 1, 65535, &v, &why) < 0)
				return cli_usage_error("receive", "--port %s: %s", optarg, why);
			o.port = (uint16_t)v;
			break;
		case 'k':
			rc = cli_load_key("receive", optarg, key, sizeof(key));
			if (rc < 0)
				return 2;
			o.key = key;
			o.keylen = (size_t)rc;
			break;
		case 'R':
			o.resume = true;
			break;
		case 's':
			o.seed = optarg;
			break;
		case 'N':
			o.name = optarg;
			break;
		case 'T':
			if (parse_duration_ms(optarg, 1000, 86400000, &v, &why) < 0)
				return cli_usage_error("receive", "--timeout %s: %s", optarg, why);
			o.timeout_ms = (unsigned)v;
			break;
		case 't':
			if (parse_uint(optarg, 1, 64, &v, &why) < 0)
				return cli_usage_error("receive", "--threads %s: %s", optarg, why);
			o.threads = (unsigned)v;
			break;
		case 'S':
			if (parse_uint(optarg, 1, UINT32_MAX, &v, &why) < 0)
				return cli_usage_error("receive", "--session %s: %s", optarg, why);
			o.session = (uint32_t)v;
			break;
		case 'M':
			if (strlen(optarg) != 2 * SHA256_LEN)
				return cli_usage_error("receive",
				                       "--manifest-sha256: expected 64 hex digits");
			for (size_t i = 0; i < SHA256_LEN; i++) {
				int hi = ascii_hexval(optarg[2 * i]),
				    lo = ascii_hexval(optarg[2 * i + 1]);

				if (hi < 0 || lo < 0)
					return cli_usage_error(
					    "receive", "--manifest-sha256: expected 64 hex digits");
				mdigest[i] = (uint8_t)(hi << 4 | lo);
			}
			o.manifest_sha256 = mdigest;
			break;
		case 'j':
			ui.json = true;
			break;
		case 'q':
			ui.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return cli_usage_error("receive", "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("receive", "unexpected argument '%s'", argv[optind]);
	if (!o.output || !*o.output)
		return cli_usage_error("receive", "-o OUTPUT is required");
	ui.output = o.output;
	ui.tty = isatty(STDERR_FILENO) && !ui.json;
	if (ui.json || ui.quiet)
		log_set_level(LOG_LVL_WARN);
	o.status = on_status;
	o.ctx = &fin;
	o.stop = &stop;
	cli_catch_signals(&stop);
	rc = mc_receive(&o, err, sizeof(err));
	if (ui.tty && !ui.quiet)
		fprintf(stderr, "\n");
	if (ui.json) {
		printf("{\"event\":\"result\",\"ok\":%s,", rc == 0 ? "true" : "false");
		if (fin.have)
			json_counts(&fin.st);
		else
			printf("\"elapsed_s\":0");
		if (rc == 0)
			printf(",\"image_sha256\":\"%s\"", sha256_hex(fin.st.image_sha256, hex));
		else {
			printf(",\"reason\":");
			cli_json_str(stdout, err);
		}
		printf("}\n");
	} else if (rc == 0) {
		printf("mlcast receive: OK: %s verified, %s, sha256 %s, in %.2f s (%llu chunks "
		       "received, %llu reused)\n",
		       o.output, cli_bytes((double)fin.st.image_size, b, sizeof(b)),
		       sha256_hex(fin.st.image_sha256, hex), fin.st.elapsed_s,
		       (unsigned long long)fin.st.chunks_done,
		       (unsigned long long)fin.st.seeded_chunks);
	} else {
		printf("mlcast receive: FAILED: %s%s\n", err,
		       rc > 0 && rc != MC_FAIL_MANIFEST
		           ? " (partial data kept: rerun with --resume)"
		           : "");
	}
	return rc == 0 ? 0 : 1;
}

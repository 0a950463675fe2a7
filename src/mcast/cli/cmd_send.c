/* mlcast send: multicast a prepared store to every receiver that joins. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "mlcast.h"
#include "net.h"
#include "parse.h"
#include "proto.h"

struct send_ui {
	bool json, tty, quiet;
	unsigned drawn; /* lines drawn last time on the terminal */
	double last_print;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: mlcast send [OPTIONS] STORE_DIR\n"
	        "\n"
	        "Multicasts the image prepared in STORE_DIR (see 'mlcast prepare') to every\n"
	        "receiver that joins, until each one has verified it or was dropped.\n"
	        "\n"
	        "      --chunks DIR        read the chunks from the content-addressed chunk\n"
	        "                          store DIR (mlserver's DATA_DIR/chunks, or 'mlcast\n"
	        "                          prepare --chunks') instead of STORE_DIR/data;\n"
	        "                          STORE_DIR then needs only its manifest. A chunk\n"
	        "                          missing from DIR ends the session with an error\n"
	        "                          naming it\n"
	        "  -i, --interface IF      send on this interface (default: by the routing table)\n"
	        "  -g, --group ADDR        multicast group (default " MC_DEFAULT_GROUP ")\n"
	        "  -p, --port N            UDP port (default %d)\n"
	        "  -r, --rate BITS_PER_S   rate cap, suffixes k M G (default 1G)\n"
	        "      --min-rate BITS     rate floor; a receiver whose path cannot take it is\n"
	        "                          dropped (default: the cap / 100)\n"
	        "  -n, --min-receivers N   start once N receivers are ready (default 1)\n"
	        "  -w, --wait SECONDS      wait at most this long for them (default 60); then\n"
	        "                          start with those ready, or fail if none joined\n"
	        "      --rx-timeout SECS   drop a receiver silent this long (default 10)\n"
	        "  -k, --key FILE          authenticate the session with this shared key\n"
	        "      --ttl N             multicast TTL (default 1: the local network)\n"
	        "      --loop              let receivers on this host hear the group\n"
	        "      --json              print machine-readable status lines\n"
	        "  -q, --quiet             only the result\n"
	        "  -h, --help              this help\n"
	        "\n"
	        "Exit status: 0 when every receiver completed and verified the image, 1 when\n"
	        "some failed or were dropped (the result lists them), 2 for bad usage.\n",
	        MC_DEFAULT_PORT);
}

static void json_rx(const struct mc_rx_view *v)
{
	printf("{\"id\":\"%08x\",\"name\":", v->rid);
	cli_json_str(stdout, v->name);
	printf(
	    ",\"addr\":\"%s\",\"state\":\"%s\",\"chunks_done\":%u,\"chunks_needed\":%u,"
	    "\"bytes\":%llu,\"loss_permille\":%u,\"delay_us\":%u,\"lagging\":%s,\"joined_s\":%.3f,"
	    "\"finished_s\":%.3f",
	    v->addr, mc_view_state_str(v->state), v->chunks_done, v->chunks_needed,
	    (unsigned long long)v->bytes, v->loss_permille, v->delay_us,
	    v->lagging ? "true" : "false", v->joined_s, v->finished_s);
	if (v->state == MC_V_FAILED || v->state == MC_V_DROPPED) {
		printf(",\"reason\":");
		cli_json_str(stdout, mc_fail_str(v->code));
	}
	printf("}");
}

static void draw(struct send_ui *ui, const struct mc_send_status *st)
{
	static const char *const sname[] = {"", "waiting for receivers", "sending", "ending"};
	char b1[32], b2[32], b3[32];
	double done = 0, need = 0, eta = -1;

	for (unsigned i = 0; i < st->nrx; i++) {
		if (st->rx[i].state == MC_V_FAILED || st->rx[i].state == MC_V_DROPPED)
			continue;
		done += st->rx[i].chunks_done;
		need += st->rx[i].chunks_needed;
	}
	if (st->state == MC_S_SENDING && done > 0 && need > done)
		eta = st->elapsed_s * (need - done) / done;
	if (ui->drawn)
		fprintf(stderr, "\033[%uA", ui->drawn);
	fprintf(stderr, "\033[2K%s  %s  %5.1f%%  %.0f Mbit/s  sent %s  ETA %s  receivers %u\n",
	        sname[st->state > 0 && st->state <= 3 ? st->state : 0],
	        cli_duration(st->elapsed_s, b1, sizeof(b1)), need > 0 ? 100.0 * done / need : 0.0,
	        st->rate_bps / 1e6, cli_bytes((double)st->wire_bytes, b2, sizeof(b2)),
	        cli_duration(eta, b3, sizeof(b3)), st->nrx);
	for (unsigned i = 0; i < st->nrx && i < 40; i++) {
		const struct mc_rx_view *v = &st->rx[i];
		double pct = v->chunks_needed ? 100.0 * v->chunks_done / v->chunks_needed
		                              : (v->state == MC_V_DONE ? 100.0 : 0.0);

		fprintf(stderr, "\033[2K  %-20.20s %-21s %-9s %5.1f%%  loss %4.1f%%%s\n", v->name,
		        v->addr, mc_view_state_str(v->state), pct, v->loss_permille / 10.0,
		        v->lagging ? "  lagging" : "");
	}
	ui->drawn = 1 + (st->nrx < 40 ? st->nrx : 40);
	fflush(stderr);
}

static void on_status(void *ctx, const struct mc_send_status *st)
{
	struct send_ui *ui = ctx;

	if (ui->json) {
		if (st->elapsed_s - ui->last_print < 1.0)
			return;
		ui->last_print = st->elapsed_s;
		printf("{\"event\":\"progress\",\"elapsed_s\":%.3f,\"rate_bps\":%llu,"
		       "\"wire_bytes\":%llu,\"receivers\":[",
		       st->elapsed_s, (unsigned long long)st->rate_bps,
		       (unsigned long long)st->wire_bytes);
		for (unsigned i = 0; i < st->nrx; i++) {
			if (i)
				printf(",");
			json_rx(&st->rx[i]);
		}
		printf("]}\n");
		fflush(stdout);
	} else if (ui->tty && !ui->quiet) {
		draw(ui, st);
	}
}

static void result(const struct send_ui *ui, const struct mc_send_status *st, int ok,
                   const char *err)
{
	unsigned done = 0;
	char b[32];

	for (unsigned i = 0; st && i < st->nrx; i++)
		done += st->rx[i].state == MC_V_DONE;
	if (ui->json) {
		printf("{\"event\":\"result\",\"ok\":%s", ok ? "true" : "false");
		if (st) {
			printf(
			    ",\"elapsed_s\":%.3f,\"wire_bytes\":%llu,\"image_size\":%llu,"
			    "\"data_pkts\":%llu,\"parity_pkts\":%llu,\"control_pkts\":%llu,"
			    "\"bad_pkts\":%llu,\"forged_pkts\":%llu,\"receivers\":[",
			    st->elapsed_s, (unsigned long long)st->wire_bytes,
			    (unsigned long long)st->image_size, (unsigned long long)st->data_pkts,
			    (unsigned long long)st->parity_pkts,
			    (unsigned long long)st->control_pkts, (unsigned long long)st->bad_pkts,
			    (unsigned long long)st->forged_pkts);
			for (unsigned i = 0; i < st->nrx; i++) {
				if (i)
					printf(",");
				json_rx(&st->rx[i]);
			}
			printf("]");
		}
		if (err && *err) {
			printf(",\"reason\":");
			cli_json_str(stdout, err);
		}
		printf("}\n");
		fflush(stdout);
		return;
	}
	if (st) {
		for (unsigned i = 0; i < st->nrx; i++) {
			const struct mc_rx_view *v = &st->rx[i];

			printf("  %-20s %-21s %-8s %7.2f s%s%s\n", v->name, v->addr,
			       mc_view_state_str(v->state), v->finished_s,
			       v->state == MC_V_DONE ? "" : "  ",
			       v->state == MC_V_DONE ? "" : mc_fail_str(v->code));
		}
		printf("mlcast send: %s: %u of %u receivers complete in %.2f s, %s on the wire\n",
		       ok ? "OK" : "FAILED", done, st->nrx, st->elapsed_s,
		       cli_bytes((double)st->wire_bytes, b, sizeof(b)));
		if (err && *err)
			printf("mlcast send: FAILED: %s\n", err);
	} else {
		printf("mlcast send: FAILED: %s\n", err);
	}
}

#define MAX_VIEWS 4096 /* a session takes at most this many receivers */

struct final_ctx {
	struct send_ui *ui;
	struct mc_send_status st;
	struct mc_rx_view rx[MAX_VIEWS];
	bool have;
};

static void keep_status(void *ctx, const struct mc_send_status *st)
{
	struct final_ctx *f = ctx;

	on_status(f->ui, st);
	f->st = *st;
	f->st.nrx = st->nrx < MAX_VIEWS ? st->nrx : MAX_VIEWS;
	if (f->st.nrx > 0)
		memcpy(f->rx, st->rx, f->st.nrx * sizeof(*f->rx));
	f->st.rx = f->rx;
	f->have = true;
}

int cmd_send(int argc, char **argv)
{
	static const struct option opts[] = {{"interface", required_argument, NULL, 'i'},
	                                     {"group", required_argument, NULL, 'g'},
	                                     {"port", required_argument, NULL, 'p'},
	                                     {"rate", required_argument, NULL, 'r'},
	                                     {"min-rate", required_argument, NULL, 'R'},
	                                     {"min-receivers", required_argument, NULL, 'n'},
	                                     {"wait", required_argument, NULL, 'w'},
	                                     {"rx-timeout", required_argument, NULL, 'T'},
	                                     {"key", required_argument, NULL, 'k'},
	                                     {"ttl", required_argument, NULL, 't'},
	                                     {"loop", no_argument, NULL, 'L'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"quiet", no_argument, NULL, 'q'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"session", required_argument, NULL, 'S'},
	                                     {"chunks", required_argument, NULL, 'C'},
	                                     {NULL, 0, NULL, 0}};
	static struct final_ctx fin;
	static volatile int stop;
	struct mc_send_opts o = {0};
	struct send_ui ui = {0};
	uint8_t key[MC_MAX_KEY];
	char err[512] = "";
	const char *why;
	uint64_t v;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "i:g:p:r:n:w:k:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o.ifname = optarg;
			break;
		case 'g': {
			struct in_addr g;

			if (mc_parse_group(optarg, &g, &why) < 0)
				return cli_usage_error("send", "--group %s: %s", optarg, why);
			o.group = optarg;
			break;
		}
		case 'p':
			if (parse_uint(optarg, 1, 65535, &v, &why) < 0)
				return cli_usage_error("send", "--port %s: %s", optarg, why);
			o.port = (uint16_t)v;
			break;
		case 'r':
			if (parse_rate(optarg, 100000, 400000000000ull, &o.rate_cap, &why) < 0)
				return cli_usage_error("send", "--rate %s: %s (100k to 400G)",
				                       optarg, why);
			break;
		case 'R':
			if (parse_rate(optarg, 10000, 400000000000ull, &o.rate_floor, &why) < 0)
				return cli_usage_error("send", "--min-rate %s: %s", optarg, why);
			break;
		case 'n':
			if (parse_uint(optarg, 1, 100000, &v, &why) < 0)
				return cli_usage_error("send", "--min-receivers %s: %s", optarg,
				                       why);
			o.min_receivers = (unsigned)v;
			break;
		case 'w':
			if (parse_duration_ms(optarg, 1, 86400000, &v, &why) < 0)
				return cli_usage_error("send", "--wait %s: %s", optarg, why);
			o.wait_ms = (unsigned)v;
			break;
		case 'T':
			if (parse_duration_ms(optarg, 500, 3600000, &v, &why) < 0)
				return cli_usage_error("send", "--rx-timeout %s: %s", optarg, why);
			o.rx_timeout_ms = (unsigned)v;
			break;
		case 'k':
			rc = cli_load_key("send", optarg, key, sizeof(key));
			if (rc < 0)
				return 2;
			o.key = key;
			o.keylen = (size_t)rc;
			break;
		case 't':
			if (parse_uint(optarg, 1, 255, &v, &why) < 0)
				return cli_usage_error("send", "--ttl %s: %s", optarg, why);
			o.ttl = (unsigned)v;
			break;
		case 'S':
			if (parse_uint(optarg, 1, UINT32_MAX, &v, &why) < 0)
				return cli_usage_error("send", "--session %s: %s", optarg, why);
			o.session = (uint32_t)v;
			break;
		case 'L':
			o.loop = true;
			break;
		case 'C':
			if (!*optarg)
				return cli_usage_error("send", "--chunks needs a directory");
			o.chunks_dir = optarg;
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
			return cli_usage_error("send", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("send", "expected one STORE_DIR");
	if (o.rate_floor && o.rate_cap && o.rate_floor > o.rate_cap)
		return cli_usage_error("send", "--min-rate is above --rate");
	o.store_dir = argv[optind];
	ui.tty = isatty(STDERR_FILENO) && !ui.json;
	if (ui.json || ui.quiet || ui.tty)
		log_set_level(ui.quiet || ui.json ? LOG_LVL_WARN : LOG_LVL_INFO);
	fin.ui = &ui;
	o.status = keep_status;
	o.ctx = &fin;
	o.stop = &stop;
	cli_catch_signals(&stop);
	rc = mc_send(&o, err, sizeof(err));
	if (rc < 0) {
		/* A session that ended on a chunk it could not read lists its receivers too. */
		result(&ui, fin.have ? &fin.st : NULL, 0, err);
		return 1;
	}
	if (ui.tty && !ui.quiet && fin.have)
		draw(&ui, &fin.st);
	result(&ui, fin.have ? &fin.st : NULL, rc == 0, err);
	return rc == 0 ? 0 : 1;
}

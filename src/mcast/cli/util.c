/* Helpers shared by the mlcast subcommands. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_load_key(const char *sub, const char *path, uint8_t *key, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	uint8_t extra;

	if (fd < 0) {
		fprintf(stderr, "mlcast %s: key file %s: %s\n", sub, path, strerror(errno));
		return -1;
	}
	while (n < cap) {
		ssize_t r = read(fd, key + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	if (n == cap && read(fd, &extra, 1) == 1) {
		fprintf(stderr, "mlcast %s: key file %s: longer than %zu bytes\n", sub, path, cap);
		close(fd);
		return -1;
	}
	close(fd);
	while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r'))
		n--;
	if (n < 16) {
		fprintf(stderr, "mlcast %s: key file %s: shorter than 16 bytes\n", sub, path);
		return -1;
	}
	return (int)n;
}

static volatile int *stop_flag;

static void on_signal(int sig)
{
	if (*stop_flag) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	*stop_flag = 1;
}

void cli_catch_signals(volatile int *flag)
{
	struct sigaction sa;

	stop_flag = flag;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

const char *cli_bytes(double n, char *out, size_t outsz)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (n >= 1024 && u < 4) {
		n /= 1024;
		u++;
	}
	snprintf(out, outsz, u ? "%.1f %s" : "%.0f %s", n, unit[u]);
	return out;
}

const char *cli_duration(double s, char *out, size_t outsz)
{
	unsigned long t;

	if (s < 0 || s > 1e7) {
		snprintf(out, outsz, "?");
		return out;
	}
	t = (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(out, outsz, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, outsz, "%lu:%02lu", t / 60, t % 60);
	return out;
}

void cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

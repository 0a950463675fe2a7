/*
 * Passwords and questions (mlctl.h, "prompt"). Prompts go to stderr so
 * that stdout stays the command's output.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include "mlctl.h"

/*
 * The terminal settings to restore when a signal ends the program while
 * echo is off. A signal handler can reach nothing else, hence this one
 * file-level variable.
 */
static struct termios prompt_saved;

static void prompt_on_signal(int sig)
{
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &prompt_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads one line into buf without its newline: 0, -ENODATA at EOF, -EINVAL too long. */
static int prompt_read(FILE *f, char *buf, size_t size)
{
	if (!fgets(buf, (int)size, f))
		return ferror(f) ? -EIO : -ENODATA;
	size_t n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n') {
		buf[--n] = '\0';
		if (n > 0 && buf[n - 1] == '\r')
			buf[--n] = '\0';
		return 0;
	}
	if (n + 1 < size)
		return 0; /* the last line, without a newline */
	/* Too long: drop the rest of the line so the next read starts fresh. */
	int c;
	while ((c = fgetc(f)) != EOF && c != '\n')
		;
	explicit_bzero(buf, size);
	return -EINVAL;
}

int prompt_password(const char *prompt, char *buf, size_t size)
{
	int rc;
	if (!isatty(STDIN_FILENO)) {
		rc = prompt_read(stdin, buf, size);
	} else {
		struct termios quiet;
		struct sigaction sa = {0}, old_int, old_term, old_quit;
		if (tcgetattr(STDIN_FILENO, &prompt_saved) < 0)
			return -errno;
		quiet = prompt_saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		sa.sa_handler = prompt_on_signal;
		sigaction(SIGINT, &sa, &old_int);
		sigaction(SIGTERM, &sa, &old_term);
		sigaction(SIGQUIT, &sa, &old_quit);
		fputs(prompt, stderr);
		fflush(stderr);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		rc = prompt_read(stdin, buf, size);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &prompt_saved);
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
	}
	if (rc == 0 && buf[0] == '\0')
		rc = -EINVAL;
	return rc;
}

int prompt_password_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	int rc = prompt_read(f, buf, size);
	fclose(f);
	if (rc == 0 && buf[0] == '\0')
		rc = -EINVAL;
	return rc;
}

int prompt_line(const char *prompt, char *buf, size_t size)
{
	if (!isatty(STDIN_FILENO))
		return -ENOTTY;
	fputs(prompt, stderr);
	fflush(stderr);
	return prompt_read(stdin, buf, size);
}

bool prompt_yes(const char *question)
{
	char ans[16];
	char q[512];
	snprintf(q, sizeof(q), "%s [y/N] ", question);
	if (prompt_line(q, ans, sizeof(ans)) < 0)
		return false;
	return strcasecmp(ans, "y") == 0 || strcasecmp(ans, "yes") == 0;
}

/*
 * mlserver's read-only TFTP server for network boot (docs/tftp.md), off by
 * default ([tftp] enabled). One thread serves every transfer with poll():
 * requests arrive on the [tftp] listen socket, each transfer gets its own
 * ephemeral UDP socket (RFC 1350), windowed (RFC 7440) with retransmission
 * and back-off. Files come only from beneath [tftp] root, opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS); write requests are
 * refused.
 */
#ifndef ML_TFTP_H
#define ML_TFTP_H

#include <stddef.h>

struct srv;

/*
 * Binds the listen socket, opens the root and starts the thread; the server
 * is then srv->tftp. Does nothing (returns 0) when [tftp] enabled is off.
 * Returns 0, or a negative code with a one-line reason in err.
 */
int tftp_start(struct srv *srv, char *err, size_t errsz);
/* Stops the thread, drops every transfer and frees srv->tftp (may be NULL). */
void tftp_stop(struct srv *srv);

#endif

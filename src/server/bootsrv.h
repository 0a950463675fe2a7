/*
 * The network-boot HTTP listener (docs/netboot.md): plain HTTP on
 * [boot] listen, since iPXE cannot check the API's certificate. It serves
 * only GET and HEAD of
 *
 *   /boot.ipxe       the first stage DHCP points iPXE at: chains /boot/MAC
 *   /boot/MAC        the machine's script for the mode that applies (boot.h)
 *   /files/PATH      files below [boot] root (the client OS profiles), with
 *                    Range requests, confined like the TFTP server's
 *
 * and nothing of the API. Off unless [boot] enabled.
 */
#ifndef ML_BOOTSRV_H
#define ML_BOOTSRV_H

#include <stddef.h>
#include <stdint.h>

struct srv;

/*
 * Starts the listener into srv->bootsrv when [boot] enabled is on (else
 * does nothing). Reads [boot] enroll_token_file and opens the root.
 * Returns 0 or a negative code with a reason in err.
 */
int bootsrv_start(struct srv *srv, char *err, size_t errsz);
/* Stops it (nothing when it did not run). */
void bootsrv_stop(struct srv *srv);

/*
 * TFTP's built-in files, for a name the TFTP root does not have (tftp.c
 * asks): "boot.ipxe", the first stage for iPXE clients, when the boot
 * listener runs; and iPXE's own loaders (undionly.kpxe, undionly.kkpxe,
 * ipxe.pxe, ipxe.efi, snponly.efi) from BOOTSRV_IPXE_DIR, Debian's ipxe
 * package. Returns an open descriptor with *size set, or -ENOENT.
 */
#define BOOTSRV_IPXE_DIR "/usr/lib/ipxe"
int bootsrv_tftp_open(struct srv *srv, const char *path, uint64_t *size);

#endif

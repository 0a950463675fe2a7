/*
 * The HTTP(S) front end: libmicrohttpd with a pool of worker threads,
 * turning each request under /api/v1 into a struct req for api.c, with
 * body-size limits and streamed uploads.
 */
#ifndef ML_HTTP_H
#define ML_HTTP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct srv;
struct http;

/*
 * Listens on srv->conf.listen. cert_pem and key_pem (NUL-terminated PEM) turn
 * on TLS; both NULL serves plain HTTP. *port gets the bound port (useful with
 * port 0). Returns 0 or a negative code with a reason in err.
 */
int http_start(struct srv *srv, const char *cert_pem, const char *key_pem, struct http **out,
               uint16_t *port, char *err, size_t errsz);
/* Stops accepting, finishes or aborts open requests, frees h (NULL is fine). */
void http_stop(struct http *h);

/*
 * Parses "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT" into a socket address.
 * Returns 0 or -EINVAL with a reason.
 */
struct sockaddr_storage;
int http_parse_listen(const char *s, struct sockaddr_storage *ss, char *err, size_t errsz);

/*
 * libmicrohttpd's error logger (MHD_OPTION_EXTERNAL_LOGGER): its messages
 * at debug level, prefixed with cls (a static string) or "http".
 */
void http_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* A connection's client address as text (no port); "?" when unknown. */
struct MHD_Connection;
void http_peer(struct MHD_Connection *c, char *out, size_t outsz);

#endif

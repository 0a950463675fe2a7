/*
 * HTTPS to mlserver (docs/mlagent.md, "Pinning"), the way mlctl does it
 * (src/cli/client.c): the certificate's fingerprint is compared once, on an
 * unchecked first contact that sends nothing secret, and from then on
 * libcurl pins the certificate's public key (CURLOPT_PINNEDPUBLICKEY). One
 * handle per thread; the connection is reused between requests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "agent.h"
#include "log.h"

struct ahttp {
	CURL *h;
	const char *server, *pin, *bearer;
	bool insecure;
	volatile int *stop;
};

struct ahttp_sink {
	char *buf;
	size_t len, cap, max;
	bool too_big;
};

static size_t ahttp_write(char *p, size_t sz, size_t n, void *ud)
{
	struct ahttp_sink *s = ud;
	size_t add = sz * n;
	if (s->len + add > s->max) {
		s->too_big = true;
		return 0;
	}
	if (s->len + add + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + add + 1)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (!b)
			return 0;
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, add);
	s->len += add;
	s->buf[s->len] = '\0';
	return add;
}

/* Aborts a transfer once the stop flag is set (a signal, a cancel). */
static int ahttp_xfer(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	volatile int *stop = ud;
	(void)a, (void)b, (void)c, (void)d;
	return stop && *stop ? 1 : 0;
}

struct ahttp *ahttp_new(const char *server, const char *pin, bool insecure, const char *bearer,
                        volatile int *stop)
{
	struct ahttp *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->h = curl_easy_init();
	if (!h->h) {
		free(h);
		return NULL;
	}
	h->server = server;
	h->pin = pin && *pin ? pin : NULL;
	h->insecure = insecure;
	h->bearer = bearer;
	h->stop = stop;
	return h;
}

void ahttp_free(struct ahttp *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->h);
	free(h);
}

void ahttp_resp_free(struct ahttp_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/*
 * Limits a handle to https, or to http and https (insecure: tests only), so
 * that neither a typo nor a redirect ever sends the credential in clear text.
 */
static void ahttp_protocols(CURL *c, bool allow_http)
{
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0: CURLOPT_PROTOCOLS_STR */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, allow_http ? "http,https" : "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, allow_http ? "http,https" : "https");
#else
	long p = CURLPROTO_HTTPS | (allow_http ? CURLPROTO_HTTP : 0);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, p);
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, p);
#endif
}

/* The common options; certinfo asks curl for the peer's certificate (first contact). */
static void ahttp_setup(CURL *c, const char *url, const char *pin, bool verify_off, bool certinfo,
                        bool allow_http, long timeout_s, struct ahttp_sink *sink, char *errbuf,
                        volatile int *stop)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mlagent/" MLAGENT_VERSION);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ahttp_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
	ahttp_protocols(c, allow_http);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, ahttp_xfer);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, stop);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	/*
	 * The pin is the trust: a self-signed certificate has no CA to check
	 * against, and with a pin curl still refuses any other public key.
	 */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify_off ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify_off ? 0L : 2L);
	if (pin)
		curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, pin);
	if (certinfo)
		curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
}

int ahttp_do(struct ahttp *h, const char *method, const char *path, const char *body, size_t max,
             long timeout_s, struct ahttp_resp *r, char *err, size_t errsz)
{
	char url[CRED_URL_MAX + 512], auth[128], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct ahttp_sink sink = {.max = max};
	const char *base = h->server;
	size_t bl = strlen(base);
	int rc = -EIO;
	memset(r, 0, sizeof(*r));
	while (bl && base[bl - 1] == '/')
		bl--;
	if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)bl, base, path) >= sizeof(url)) {
		log_seterr(err, errsz, "URL too long");
		return -ENAMETOOLONG;
	}
	if (!h->insecure && strncmp(url, "https://", 8) != 0) {
		log_seterr(err, errsz, "%s: only https:// is allowed (http:// only with insecure)",
		           h->server);
		return -EPROTONOSUPPORT;
	}
	curl_easy_reset(h->h);
	ahttp_setup(h->h, url, h->pin, h->insecure || h->pin, false, h->insecure, timeout_s, &sink,
	            errbuf, h->stop);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (h->bearer) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", h->bearer);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h->h, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(h->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		curl_easy_setopt(h->h, CURLOPT_POSTFIELDS, body);
	}
	CURLcode cc = curl_easy_perform(h->h);
	curl_easy_setopt(h->h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h->h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (cc != CURLE_OK) {
		if (h->stop && *h->stop && cc == CURLE_ABORTED_BY_CALLBACK) {
			log_seterr(err, errsz, "stopped");
			rc = -EINTR;
		} else if (sink.too_big) {
			log_seterr(err, errsz, "%s: answer larger than %zu bytes", path, max);
			rc = -EFBIG;
		} else if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH) {
			log_seterr(err, errsz,
			           "%s: the server's public key is not the pinned one (a different "
			           "server, or a new certificate: re-enroll with its fingerprint)",
			           h->server);
			rc = -EPERM;
		} else {
			log_seterr(err, errsz, "%s: %s", h->server,
			           errbuf[0] ? errbuf : curl_easy_strerror(cc));
			rc = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
		}
		free(sink.buf);
		return rc;
	}
	curl_easy_getinfo(h->h, CURLINFO_RESPONSE_CODE, &r->status);
	if (!sink.buf) {
		sink.buf = calloc(1, 1);
		if (!sink.buf)
			return -ENOMEM;
	}
	r->body = sink.buf;
	r->len = sink.len;
	return 0;
}

int ahttp_learn_pin(const char *server, const char *fp, char pin[PIN_KEY_SIZE], volatile int *stop,
                    char *err, size_t errsz)
{
	char url[CRED_URL_MAX + 16], errbuf[CURL_ERROR_SIZE] = "", seen_fp[PIN_FP_SIZE] = "";
	struct ahttp_sink sink = {.max = 1 << 20};
	struct curl_certinfo *ci = NULL;
	size_t bl = strlen(server);
	int rc = -EIO;
	CURL *c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	while (bl && server[bl - 1] == '/')
		bl--;
	snprintf(url, sizeof(url), "%.*s/health", (int)bl, server);
	/* Only https has a certificate to learn. */
	ahttp_setup(c, url, NULL, true, true, false, 30, &sink, errbuf, stop);
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		log_seterr(err, errsz, "%s: %s", server,
		           errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	pin[0] = '\0';
	if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) == CURLE_OK && ci &&
	    ci->num_of_certs >= 1) {
		for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next) {
			if (strncmp(s->data, "Cert:", 5) == 0 &&
			    pin_from_pem(s->data + 5, strlen(s->data + 5), seen_fp, pin) == 0)
				break;
		}
	}
	if (!seen_fp[0]) {
		log_seterr(err, errsz, "%s: cannot read the server's certificate (is it https?)",
		           server);
		goto out;
	}
	if (strcmp(seen_fp, fp) != 0) {
		log_seterr(
		    err, errsz,
		    "%s: the server's certificate has the fingerprint %s, not the configured "
		    "%s: refusing it",
		    server, seen_fp, fp);
		rc = -EPERM;
		goto out;
	}
	rc = 0;
out:
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_cleanup(c);
	free(sink.buf);
	return rc;
}

/*
 * libmicrohttpd glue (http.h). Each connection gets a struct http_conn on
 * the first call of the access handler: the route is found and the caller
 * authorized from the headers before any body is read, so a refused upload
 * costs nothing. JSON bodies are buffered under [api] max_body; uploads are
 * streamed to the route's api_upload callbacks.
 *
 * Long polls: a handler may park its request (req.h, r->suspend); the
 * connection is then suspended (MHD_suspend_connection), which holds no
 * worker thread, until someone calls r->wake(r->park) (http_wake); the
 * resumed connection re-runs the handler, which answers. A wake may come
 * before the suspension (the handler registered its waiter, then another
 * thread woke it): each parked connection's state, under the daemon's
 * mutex, makes sure MHD_resume_connection is called only on a suspended
 * connection and that an early wake re-runs the handler at once.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "parse.h"
#include "req.h"
#include "server.h"

#define API_PREFIX "/api/v1"
/* Body bytes read and dropped after a refusal before the connection is closed. */
#define HTTP_DROP_MAX ((size_t)64 << 20)

/* How long http_stop() lets woken long polls answer before it closes them. */
#define HTTP_STOP_WAIT_MS 2000

/* A parked request's state (see the comment at the top). */
enum http_park { HTTP_PARK_NONE, HTTP_PARK_RUNNING, HTTP_PARK_WOKEN, HTTP_PARK_SUSPENDED };

struct http {
	struct srv *srv;
	struct MHD_Daemon *d;
	pthread_mutex_t mu;
	struct http_conn *parked; /* suspended connections (list) */
	unsigned unanswered;      /* suspended once and not answered yet */
	bool stopping;            /* no request parks any more */
};

struct http_conn {
	struct req r;
	const struct api_route *rt;
	char *body;
	size_t len, cap;
	bool refused;   /* a response is set; drop the rest of the body */
	size_t dropped; /* bytes of body dropped after the refusal */
	bool done;      /* the response was queued */
	void *up_ctx;   /* upload context */
	bool up_open;
	char peer[64];
	char path[512];
	char *qbuf[2 * REQ_MAX_QUERY]; /* copies of query keys and values */
	int nqbuf;
	bool ran; /* the handler ran at least once */
	/* Parking, under h->mu. */
	struct http *h;
	struct MHD_Connection *c;
	enum http_park pstate;
	bool counted;                     /* counted in h->unanswered */
	struct http_conn *pnext, **pprev; /* in h->parked while suspended */
};

int http_parse_listen(const char *s, struct sockaddr_storage *ss, char *err, size_t errsz)
{
	char host[128];
	const char *colon, *why;
	uint64_t port;
	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			goto bad;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
	}
	if (parse_uint(colon + 1, 0, 65535, &port, &why) < 0) {
		snprintf(err, errsz, "listen '%s': port %s", s, why);
		return -EINVAL;
	}
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			goto bad;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		if (host[0] == '\0')
			a4->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			goto bad;
	}
	return 0;
bad:
	snprintf(err, errsz, "listen '%s': expected ADDR:PORT, [V6ADDR]:PORT or :PORT", s);
	return -EINVAL;
}

/* Forgets that hc waited suspended: it is answered now, or gone. */
static void http_uncount(struct http_conn *hc)
{
	if (!hc->h)
		return;
	pthread_mutex_lock(&hc->h->mu);
	if (hc->pprev) {
		*hc->pprev = hc->pnext;
		if (hc->pnext)
			hc->pnext->pprev = hc->pprev;
		hc->pprev = NULL;
	}
	if (hc->counted) {
		hc->counted = false;
		hc->h->unanswered--;
	}
	hc->pstate = HTTP_PARK_NONE;
	pthread_mutex_unlock(&hc->h->mu);
}

static enum MHD_Result http_send_file(struct MHD_Connection *c, struct http_conn *hc)
{
	struct req *r = &hc->r;
	struct MHD_Response *resp = MHD_create_response_from_fd64(r->resp_size, r->resp_fd);
	if (!resp)
		return MHD_NO;
	/* The response owns the descriptor now. */
	r->resp_file = false;
	MHD_add_response_header(resp, "Content-Type", r->resp_type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	hc->done = true;
	return ret;
}

static enum MHD_Result http_send(struct MHD_Connection *c, struct http_conn *hc)
{
	struct req *r = &hc->r;
	char *text = NULL;
	size_t len = 0;
	if (hc->counted)
		http_uncount(hc);
	if (r->resp_file)
		return http_send_file(c, hc);
	if (r->resp) {
		text = json_dumps(r->resp, JSON_COMPACT);
		if (!text) {
			req_internal(r);
			text = json_dumps(r->resp, JSON_COMPACT);
		}
		len = text ? strlen(text) : 0;
	}
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, text ? text : (char *)"", MHD_RESPMEM_MUST_COPY);
	free(text);
	if (!resp)
		return MHD_NO;
	if (len)
		MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (r->allow)
		MHD_add_response_header(resp, "Allow", r->allow);
	if (r->status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"microlinux\"");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	hc->done = true;
	if (r->status >= 500 || log_get_level() >= LOG_LVL_DEBUG)
		log_msg(r->status >= 500 ? LOG_LVL_WARN : LOG_LVL_DEBUG, "%s %s %s -> %d", hc->peer,
		        r->method, hc->path, r->status);
	return ret;
}

static enum MHD_Result http_query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
	struct http_conn *hc = cls;
	(void)kind;
	if (hc->r.nq == REQ_MAX_QUERY) {
		hc->r.nq = REQ_MAX_QUERY + 1;
		return MHD_NO;
	}
	if (hc->r.nq > REQ_MAX_QUERY)
		return MHD_NO;
	char *k = strdup(key), *v = strdup(value ? value : "");
	if (!k || !v) {
		free(k);
		free(v);
		return MHD_NO;
	}
	hc->qbuf[hc->nqbuf++] = k;
	hc->qbuf[hc->nqbuf++] = v;
	hc->r.qk[hc->r.nq] = k;
	hc->r.qv[hc->r.nq] = v;
	hc->r.nq++;
	return MHD_YES;
}

/* The bearer token of the request, or NULL. */
static const char *http_token(struct MHD_Connection *c)
{
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (a && strncasecmp(a, "Bearer ", 7) == 0)
		return a + 7;
	return MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "mlsession");
}

static void http_format_addr(const struct sockaddr *sa, char *out, size_t outsz)
{
	snprintf(out, outsz, "?");
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
		          (socklen_t)outsz);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          out, (socklen_t)outsz);
}

void http_peer(struct MHD_Connection *c, char *out, size_t outsz)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, outsz, "?");
	if (ci && ci->client_addr)
		http_format_addr(ci->client_addr, out, outsz);
}

/* First call for a request: route, authorize, check the declared length. */
static void http_begin(struct http *h, struct MHD_Connection *c, struct http_conn *hc,
                       const char *url, const char *method)
{
	struct req *r = &hc->r;
	r->srv = h->srv;
	r->method = method;
	http_peer(c, hc->peer, sizeof(hc->peer));
	r->peer = hc->peer;
	snprintf(hc->path, sizeof(hc->path), "%.500s", url);
	r->path = hc->path;
	size_t plen = strlen(API_PREFIX);
	if (strncmp(url, API_PREFIX, plen) != 0 || (url[plen] != '/' && url[plen] != '\0')) {
		req_error(r, 404, "not_found", NULL, "not found; the API is under " API_PREFIX);
		hc->refused = true;
		return;
	}
	r->path = hc->path + plen;
	if (strlen(url) >= sizeof(hc->path)) {
		req_error(r, 414, "uri_too_long", NULL, "the path is too long");
		hc->refused = true;
		return;
	}
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, http_query_cb, hc);
	if (r->nq > REQ_MAX_QUERY) {
		req_bad(r, NULL, "too many query arguments (at most %d)", REQ_MAX_QUERY);
		hc->refused = true;
		return;
	}
	hc->rt = api_route(r, method, r->path);
	if (!hc->rt || api_authorize(r, hc->rt, http_token(c)) < 0) {
		hc->refused = true;
		return;
	}
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	uint64_t declared = 0;
	uint64_t cap = hc->rt->upload ? h->srv->conf.upload_max : h->srv->conf.max_body;
	r->content_length = -1;
	if (cl && parse_uint(cl, 0, INT64_MAX, &declared, NULL) == 0)
		r->content_length = (int64_t)declared;
	if (r->content_length >= 0 && declared > cap) {
		req_error(r, 413, "payload_too_large", NULL,
		          "the body is %llu bytes; at most %llu are accepted here",
		          (unsigned long long)declared, (unsigned long long)cap);
		hc->refused = true;
		return;
	}
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	if (!hc->rt->upload && ct && strncasecmp(ct, "application/json", 16) != 0) {
		req_error(r, 415, "unsupported_media_type", NULL,
		          "send the body as application/json");
		hc->refused = true;
		return;
	}
	if (hc->rt->upload) {
		if (hc->rt->upload->begin(r, &hc->up_ctx) < 0) {
			hc->refused = true;
			return;
		}
		hc->up_open = true;
	}
}

/* A piece of body: buffer it (JSON) or pass it on (upload). */
static void http_data(struct http *h, struct http_conn *hc, const char *data, size_t n)
{
	struct req *r = &hc->r;
	if (hc->refused)
		return;
	if (hc->rt->upload) {
		if (hc->rt->upload->data(hc->up_ctx, r, data, n) < 0)
			hc->refused = true;
		return;
	}
	if (hc->len + n > h->srv->conf.max_body) {
		req_error(r, 413, "payload_too_large", NULL, "the body is larger than %llu bytes",
		          (unsigned long long)h->srv->conf.max_body);
		hc->refused = true;
		return;
	}
	if (hc->len + n > hc->cap) {
		size_t cap = hc->cap ? hc->cap : 4096;
		while (cap < hc->len + n)
			cap *= 2;
		char *nb = realloc(hc->body, cap);
		if (!nb) {
			req_error(r, 503, "unavailable", NULL, "out of memory");
			hc->refused = true;
			return;
		}
		hc->body = nb;
		hc->cap = cap;
	}
	memcpy(hc->body + hc->len, data, n);
	hc->len += n;
}

/* r->wake of parked requests: resumes a suspended one, marks a running one. */
static void http_wake(void *park)
{
	struct http_conn *hc = park;
	struct http *h = hc->h;
	pthread_mutex_lock(&h->mu);
	if (hc->pstate == HTTP_PARK_SUSPENDED) {
		*hc->pprev = hc->pnext;
		if (hc->pnext)
			hc->pnext->pprev = hc->pprev;
		hc->pprev = NULL;
		hc->pstate = HTTP_PARK_NONE;
		MHD_resume_connection(hc->c);
	} else if (hc->pstate == HTTP_PARK_RUNNING) {
		hc->pstate = HTTP_PARK_WOKEN;
	}
	pthread_mutex_unlock(&h->mu);
}

/*
 * Runs the handler of a whole request and answers, or parks the request
 * when the handler asks to (and no wake came meanwhile).
 */
static enum MHD_Result http_run(struct http *h, struct MHD_Connection *c, struct http_conn *hc)
{
	struct req *r = &hc->r;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		r->park = h->stopping ? NULL : hc;
		r->wake = h->stopping ? NULL : http_wake;
		hc->pstate = HTTP_PARK_RUNNING;
		pthread_mutex_unlock(&h->mu);
		r->suspend = false;
		api_call(r, hc->rt);
		if (!r->suspend) {
			pthread_mutex_lock(&h->mu);
			hc->pstate = HTTP_PARK_NONE;
			pthread_mutex_unlock(&h->mu);
			return http_send(c, hc);
		}
		pthread_mutex_lock(&h->mu);
		if (hc->pstate == HTTP_PARK_WOKEN || h->stopping) {
			pthread_mutex_unlock(&h->mu);
			r->resumes++;
			continue;
		}
		MHD_suspend_connection(c);
		hc->pstate = HTTP_PARK_SUSPENDED;
		hc->pnext = h->parked;
		if (h->parked)
			h->parked->pprev = &hc->pnext;
		h->parked = hc;
		hc->pprev = &h->parked;
		if (!hc->counted) {
			hc->counted = true;
			h->unanswered++;
		}
		pthread_mutex_unlock(&h->mu);
		return MHD_YES;
	}
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct http_conn *hc = *con_cls;
	(void)version;
	if (!hc) {
		hc = calloc(1, sizeof(*hc));
		if (!hc)
			return MHD_NO;
		*con_cls = hc;
		hc->h = h;
		hc->c = c;
		http_begin(h, c, hc, url, method);
		/*
		 * A refusal is answered before the body is read; libmicrohttpd
		 * then closes the connection instead of reading the rest.
		 */
		if (hc->refused)
			return http_send(c, hc);
		return MHD_YES;
	}
	if (hc->done) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (hc->refused) {
			/*
			 * Reading what is dropped has a bound: a client that keeps
			 * sending after the refusal gets its connection closed.
			 */
			hc->dropped += *upload_data_size;
			if (hc->dropped > HTTP_DROP_MAX) {
				log_warn(
				    "%s %s %s: closed after dropping %zu bytes of a refused body",
				    hc->peer, method, hc->path, hc->dropped);
				return MHD_NO;
			}
		}
		http_data(h, hc, upload_data, *upload_data_size);
		*upload_data_size = 0;
		/*
		 * Refused mid-body (too large, disk full): libmicrohttpd 0.9
		 * cannot queue a response before the body is in (it would close
		 * the connection without one), so the rest is read and dropped
		 * and the answer goes at its end. An upload's context is
		 * finished at once, so that its partial file is gone meanwhile.
		 */
		if (hc->refused && hc->up_open) {
			hc->up_open = false;
			hc->rt->upload->finish(hc->up_ctx, &hc->r, false);
		}
		return MHD_YES;
	}
	/* The whole request is in. */
	if (hc->rt->upload) {
		if (hc->up_open) {
			hc->up_open = false;
			hc->rt->upload->finish(hc->up_ctx, &hc->r, !hc->refused);
		}
		if (!hc->r.status)
			req_internal(&hc->r);
		return http_send(c, hc);
	}
	if (hc->refused)
		return http_send(c, hc);
	if (hc->ran)
		hc->r.resumes++;
	else if (api_parse_body(&hc->r, hc->body, hc->len) < 0)
		return http_send(c, hc);
	hc->ran = true;
	return http_run(h, c, hc);
}

static void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
	struct http_conn *hc = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (!hc)
		return;
	if (hc->up_open)
		hc->rt->upload->finish(hc->up_ctx, &hc->r, false);
	if (hc->r.on_end)
		hc->r.on_end(&hc->r);
	http_uncount(hc);
	req_clear_file(&hc->r);
	json_decref(hc->r.body);
	json_decref(hc->r.resp);
	for (int i = 0; i < hc->nqbuf; i++)
		free(hc->qbuf[i]);
	free(hc->body);
	free(hc);
	*con_cls = NULL;
}

void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("%s: %s", cls ? (const char *)cls : "http", line);
}

int http_start(struct srv *srv, const char *cert_pem, const char *key_pem, struct http **out,
               uint16_t *port, char *err, size_t errsz)
{
	struct sockaddr_storage ss;
	if (http_parse_listen(srv->conf.listen, &ss, err, errsz) < 0)
		return -EINVAL;
	struct http *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->srv = srv;
	pthread_mutex_init(&h->mu, NULL);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	                 MHD_ALLOW_SUSPEND_RESUME;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (cert_pem)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem opts[] = {
	    {MHD_OPTION_SOCK_ADDR, 0, &ss},
	    {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)srv->conf.threads, NULL},
	    {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)srv->conf.max_connections, NULL},
	    {MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL},
	    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_completed, NULL},
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)(uintptr_t)cert_pem},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)(uintptr_t)key_pem},
	    {MHD_OPTION_END, 0, NULL},
	};
	if (!cert_pem)
		opts[5].option = MHD_OPTION_END;
	/* The logger goes first, so that option errors reach it too. */
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, http_access, h, MHD_OPTION_EXTERNAL_LOGGER,
	                        http_mhd_log, NULL, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errsz, "cannot listen on %s (address in use, or not allowed?)",
		         srv->conf.listen);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return -EADDRINUSE;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	if (port)
		*port = di ? di->port : 0;
	*out = h;
	return 0;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	/*
	 * Parked long polls are resumed and answered first: libmicrohttpd
	 * must not stop with suspended connections, and an agent had better
	 * get an answer than a closed connection. Requests arriving meanwhile
	 * cannot park.
	 */
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	while (h->parked) {
		struct http_conn *hc = h->parked;
		h->parked = hc->pnext;
		if (h->parked)
			h->parked->pprev = &h->parked;
		hc->pprev = NULL;
		hc->pstate = HTTP_PARK_NONE;
		MHD_resume_connection(hc->c);
	}
	pthread_mutex_unlock(&h->mu);
	for (int waited = 0; waited < HTTP_STOP_WAIT_MS; waited += 10) {
		pthread_mutex_lock(&h->mu);
		unsigned left = h->unanswered;
		pthread_mutex_unlock(&h->mu);
		if (!left)
			break;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

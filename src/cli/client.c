/*
 * The HTTP client (mlctl.h, "cl"): libcurl underneath, one handle reused
 * for every request so that the connection (and its TLS session) is too.
 *
 * How the server's certificate is checked, in this order (docs/mlctl.md,
 * "Certificates"):
 *   1. --insecure / MLCTL_INSECURE=1: not at all.
 *   2. A public-key pin (the config file's "pubkey", learned at login, or
 *      one learned now for --fingerprint): CURLOPT_PINNEDPUBLICKEY with the
 *      chain of trust and the host name left unchecked, since the server's
 *      own certificate is self-signed. libcurl compares the key before it
 *      sends any byte of the request, so a token never goes to a server
 *      with another key. Pinning the key rather than the certificate is
 *      what every libcurl TLS backend supports; the certificate's own
 *      fingerprint is checked when the pin is learned (cl_probe).
 *   3. Otherwise the normal checks: the chain against --cacert or the
 *      system's CAs, and the host name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "mlctl.h"
#include "mtime.h"

/* An answer larger than this is refused (a list page of 1000 is far less). */
#define CL_BODY_MAX (256u << 20)
/* Page size when fetching every page. */
#define CL_PAGE 1000
#define CL_USER_AGENT "mlctl/0.1.0"

enum cl_tls {
	CL_TLS_NORMAL, /* per the settings (see the top of this file) */
	CL_TLS_VERIFY, /* chain of trust and host name only (a probe) */
	CL_TLS_NONE,   /* no checks (a probe that sends nothing secret) */
};

struct cl_req {
	const char *method;
	const char *path; /* under /api/v1, with the query */
	const char *body; /* NULL: none */
	size_t body_len;
	const char *ctype;
	bool noauth;
	enum cl_tls tls;
	FILE *upload;           /* PUT this stream */
	curl_off_t upload_size; /* -1: unknown (chunked) */
	bool progress;
	struct cl_probe *probe; /* fill fp and pin from the certificate seen */
};

struct cl_sink {
	struct sb sb;
	bool too_big;
};

struct cl_prog {
	uint64_t last_ms, start_ms;
	curl_off_t total;
};

void cl_resp_free(struct cl_resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

void cl_cleanup(struct mlctl *ml)
{
	if (ml->curl) {
		curl_easy_cleanup(ml->curl);
		ml->curl = NULL;
		curl_global_cleanup();
	}
}

static size_t cl_write(char *p, size_t size, size_t n, void *arg)
{
	struct cl_sink *s = arg;
	size_t len = size * n;
	if (len > CL_BODY_MAX - s->sb.len) {
		s->too_big = true;
		return 0;
	}
	sb_addn(&s->sb, p, len);
	return s->sb.oom ? 0 : len;
}

static size_t cl_read(char *buf, size_t size, size_t n, void *arg)
{
	FILE *f = arg;
	size_t got = fread(buf, 1, size * n, f);
	if (got == 0 && ferror(f))
		return CURL_READFUNC_ABORT;
	return got;
}

static int cl_xfer(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
	struct cl_prog *pr = arg;
	uint64_t now = mtime_ms();
	(void)dltotal;
	(void)dlnow;
	if (now - pr->last_ms < 200)
		return 0;
	pr->last_ms = now;
	curl_off_t total = pr->total >= 0 ? pr->total : ultotal;
	char a[32], b[32], r[32], detail[128];
	double secs = (double)(now - pr->start_ms) / 1000.0;
	out_size((uint64_t)ulnow, a, sizeof(a));
	out_size(secs > 0 ? (uint64_t)((double)ulnow / secs) : 0, r, sizeof(r));
	if (total > 0) {
		out_size((uint64_t)total, b, sizeof(b));
		snprintf(detail, sizeof(detail), "%s of %s, %s/s", a, b, r);
		out_progress("upload", (double)ulnow / (double)total, detail);
	} else {
		snprintf(detail, sizeof(detail), "%s, %s/s", a, r);
		out_progress("upload", -1, detail);
	}
	return 0;
}

/* Reads the server's certificate that curl saw into p (fp and pin). */
static int cl_certinfo(CURL *h, struct cl_probe *p)
{
	struct curl_certinfo *ci = NULL;
	if (curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
		return -ENOENT;
	for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next) {
		if (strncmp(s->data, "Cert:", 5) == 0)
			return pin_from_pem(s->data + 5, strlen(s->data + 5), p->fp, p->pin);
	}
	return -ENOENT;
}

static void cl_tls_setup(struct mlctl *ml, CURL *h, enum cl_tls mode)
{
	const char *pin = ml->pin ? ml->pin : ml->fp_pin[0] ? ml->fp_pin : NULL;
	bool verify = true;
	if (mode == CL_TLS_NONE || (mode == CL_TLS_NORMAL && (ml->insecure || pin)))
		verify = false;
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	if (verify && ml->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, ml->cacert);
	if (mode == CL_TLS_NORMAL && !ml->insecure && pin)
		curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pin);
	if (mode != CL_TLS_NORMAL) {
		curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
		/*
		 * A probe's connection is never reused: the next request must
		 * make its own handshake under its own checks.
		 */
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	}
}

/*
 * Performs one request. Returns 0 when the server answered (resp filled),
 * or -EHOSTUNREACH with *cc and errbuf set (nothing printed), or -EFBIG /
 * -ENOMEM for an answer too large.
 */
static int cl_do(struct mlctl *ml, const struct cl_req *q, struct cl_resp *resp, CURLcode *cc,
                 char *errbuf)
{
	struct cl_sink sink = {0};
	struct curl_slist *hdrs = NULL;
	struct sb url = {0};
	struct cl_prog prog = {0};
	char auth[600];
	int ret = -ENOMEM;
	CURL *h;
	memset(resp, 0, sizeof(*resp));
	errbuf[0] = '\0';
	*cc = CURLE_OK;
	if (!ml->curl) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -ENOMEM;
		ml->curl = curl_easy_init();
		if (!ml->curl)
			return -ENOMEM;
	}
	h = ml->curl;
	curl_easy_reset(h);
	sb_add(&url, ml->server);
	sb_add(&url, "/api/v1");
	sb_add(&url, q->path);
	if (url.oom)
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, url.buf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, CL_USER_AGENT);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cl_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	cl_tls_setup(ml, h, q->tls);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (!q->noauth && ml->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ml->token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (q->ctype) {
		char ct[128];
		snprintf(ct, sizeof(ct), "Content-Type: %s", q->ctype);
		hdrs = curl_slist_append(hdrs, ct);
	}
	if (!hdrs)
		goto out;
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (q->upload) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, cl_read);
		curl_easy_setopt(h, CURLOPT_READDATA, q->upload);
		if (q->upload_size >= 0)
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, q->upload_size);
		if (q->progress) {
			prog.start_ms = mtime_ms();
			prog.total = q->upload_size;
			curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cl_xfer);
			curl_easy_setopt(h, CURLOPT_XFERINFODATA, &prog);
			curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		}
	} else if (strcmp(q->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
		if (q->body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
		}
	}
	if (ml->verbose)
		fprintf(stderr, "> %s %s\n", q->method, url.buf);
	*cc = curl_easy_perform(h);
	if (q->progress && prog.last_ms) {
		if (*cc == CURLE_OK)
			out_progress("upload", 1, "done");
		out_progress_end();
	}
	if (*cc != CURLE_OK) {
		ret = sink.too_big ? -EFBIG : sink.sb.oom ? -ENOMEM : -EHOSTUNREACH;
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (q->probe)
		cl_certinfo(h, q->probe);
	resp->len = sink.sb.len;
	resp->body = sb_take(&sink.sb);
	if (!resp->body)
		goto out;
	if (resp->len)
		resp->json = json_loadb(resp->body, resp->len, 0, NULL);
	if (ml->verbose)
		fprintf(stderr, "< %ld (%zu bytes)\n", resp->status, resp->len);
	ret = 0;
out:
	if (ret < 0 && ret != -EHOSTUNREACH)
		cl_resp_free(resp);
	sb_free(&sink.sb);
	sb_free(&url);
	curl_slist_free_all(hdrs);
	/* The handle must not keep pointers into this frame. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	return ret;
}

/* Prints a transport failure (status 3, or 1 for an answer too large). */
static int cl_transport_error(struct mlctl *ml, int rc, CURLcode cc, const char *errbuf)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
	if (rc == -EFBIG)
		return ml_fail(ml, "the server's answer is larger than %u MiB", CL_BODY_MAX >> 20);
	if (rc == -ENOMEM)
		return ml_fail(ml, "out of memory");
	switch (cc) {
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return ml_unreachable(
		    ml,
		    "%s: the server's certificate is not the one trusted before (%s%s); "
		    "someone may be in between, or the certificate was replaced. If it was "
		    "replaced on purpose, check the new fingerprint and run 'mlctl login "
		    "--fingerprint FP'",
		    ml->server, ml->fp ? "fingerprint " : "key ",
		    ml->fp ? ml->fp : (ml->pin ? ml->pin : ml->fp_pin));
	case CURLE_PEER_FAILED_VERIFICATION:
		if (ml->cacert)
			return ml_unreachable(ml,
			                      "%s: the server's certificate does not check out "
			                      "against %s (%s)",
			                      ml->server, ml->cacert, why);
		return ml_unreachable(ml,
		                      "%s: the server's certificate is not trusted (%s); run "
		                      "'mlctl login' to check and trust its fingerprint, or pass "
		                      "--cacert FILE or --fingerprint FP",
		                      ml->server, why);
	case CURLE_SSL_CACERT_BADFILE:
		return ml_unreachable(ml, "cannot use the CA file %s: %s",
		                      ml->cacert ? ml->cacert : "?", why);
	default:
		return ml_unreachable(ml, "cannot reach %s: %s", ml->server, why);
	}
}

/*
 * Learns the pin for --fingerprint FP: one unchecked GET /health (nothing
 * secret is sent), then the certificate curl saw must have FP.
 */
static int cl_learn_fp(struct mlctl *ml)
{
	struct cl_probe p = {0};
	struct cl_resp r;
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE];
	struct cl_req q = {
	    .method = "GET", .path = "/health", .noauth = true, .tls = CL_TLS_NONE, .probe = &p};
	int rc = cl_do(ml, &q, &r, &cc, errbuf);
	if (rc < 0)
		return cl_transport_error(ml, rc, cc, errbuf);
	cl_resp_free(&r);
	if (!p.fp[0])
		return ml_unreachable(ml, "cannot read the server's certificate to compare its "
		                          "fingerprint");
	if (strcmp(p.fp, ml->want_fp) != 0)
		return ml_unreachable(ml,
		                      "%s: the server's certificate has the fingerprint %s, not "
		                      "the expected %s",
		                      ml->server, p.fp, ml->want_fp);
	memcpy(ml->fp_pin, p.pin, sizeof(ml->fp_pin));
	memcpy(ml->fp_seen, p.fp, sizeof(ml->fp_seen));
	ml->fp = ml->fp_seen;
	return 0;
}

int cl_send(struct mlctl *ml, const char *method, const char *path, const json_t *body, bool noauth,
            struct cl_resp *resp)
{
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE];
	char *text = NULL;
	int rc = ml_need_server(ml);
	memset(resp, 0, sizeof(*resp));
	if (rc < 0)
		return rc;
	if (ml->want_fp[0] && !ml->fp_pin[0] && !ml->insecure &&
	    strncmp(ml->server, "https:", 6) == 0 && (rc = cl_learn_fp(ml)) < 0)
		return rc;
	struct cl_req q = {.method = method, .path = path, .noauth = noauth, .tls = CL_TLS_NORMAL};
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text)
			return ml_fail(ml, "out of memory");
	} else if (strcmp(method, "POST") == 0) {
		/* Every POST carries an object, even an empty one. */
		text = strdup("{}");
		if (!text)
			return ml_fail(ml, "out of memory");
	}
	if (text) {
		q.body = text;
		q.body_len = strlen(text);
		q.ctype = "application/json";
	}
	rc = cl_do(ml, &q, resp, &cc, errbuf);
	free(text);
	if (rc < 0)
		return cl_transport_error(ml, rc, cc, errbuf);
	return 0;
}

int cl_error(struct mlctl *ml, const struct cl_resp *r)
{
	const json_t *e = json_object_get(r->json, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *field = json_string_value(json_object_get(e, "field"));
	const char *hint = "";
	if (!msg) {
		char snippet[120];
		size_t n = r->len < sizeof(snippet) - 1 ? r->len : sizeof(snippet) - 1;
		memcpy(snippet, r->body ? r->body : "", n);
		snippet[n] = '\0';
		return ml_fail(ml, "the server answered HTTP %ld%s%s", r->status, n ? ": " : "",
		               snippet);
	}
	if (r->status == 404 && strcmp(msg, "no such API path") == 0)
		hint = " (this server does not offer this API; it may be older than mlctl)";
	else if (r->status == 401 && !ml->token)
		hint = " (not logged in: run 'mlctl login', or set MLCTL_TOKEN)";
	size_t flen = field ? strlen(field) : 0;
	if (field && *field && strncmp(msg, field, flen) != 0)
		return ml_fail(ml, "%s: %s%s", field, msg, hint);
	return ml_fail(ml, "%s%s", msg, hint);
}

int cl_call(struct mlctl *ml, const char *method, const char *path, const json_t *body,
            json_t **out)
{
	struct cl_resp r;
	int rc = cl_send(ml, method, path, body, false, &r);
	if (out)
		*out = NULL;
	if (rc < 0)
		return rc;
	if (r.status < 200 || r.status > 299) {
		rc = cl_error(ml, &r);
		cl_resp_free(&r);
		return rc;
	}
	if (r.len && !r.json) {
		cl_resp_free(&r);
		return ml_fail(ml, "the server's answer is not JSON");
	}
	if (out) {
		*out = r.json;
		r.json = NULL;
	}
	cl_resp_free(&r);
	return 0;
}

int cl_list(struct mlctl *ml, const char *path, bool all_pages, json_t **doc)
{
	int ret = -ENOMEM;
	uint64_t want = UINT64_MAX, off = 0, got = 0, start;
	json_int_t total = 0;
	json_t *items = json_array();
	struct sb p = {0};
	*doc = NULL;
	if (!items)
		return ml_fail(ml, "out of memory");
	if (!all_pages) {
		off = ml->offset;
		if (ml->has_limit)
			want = ml->limit;
	}
	start = off;
	for (int pages = 0; pages < 100000; pages++) {
		json_t *page = NULL;
		uint64_t n = want - got < CL_PAGE ? want - got : CL_PAGE;
		sb_add(&p, path);
		sb_addf(&p, "%slimit=%llu&offset=%llu", strchr(path, '?') ? "&" : "?",
		        (unsigned long long)n, (unsigned long long)off);
		char *url = sb_take(&p);
		if (!url) {
			ret = ml_fail(ml, "out of memory");
			goto out;
		}
		ret = cl_call(ml, "GET", url, NULL, &page);
		free(url);
		if (ret < 0)
			goto out;
		json_t *arr = json_is_array(page) ? page : json_object_get(page, "items");
		if (!arr && json_is_array(json_object_get(page, "machines")))
			arr = json_object_get(page, "machines");
		if (!json_is_array(arr)) {
			json_decref(page);
			ret = ml_fail(ml, "the server's answer is not a list");
			goto out;
		}
		size_t k = json_array_size(arr);
		json_array_extend(items, arr);
		got += k;
		off += k;
		bool paged = json_is_integer(json_object_get(page, "total"));
		total =
		    paged ? json_integer_value(json_object_get(page, "total")) : (json_int_t)got;
		json_decref(page);
		if (!paged || k == 0 || off >= (uint64_t)total || got >= want)
			break;
	}
	*doc = json_pack("{s:o, s:I, s:I, s:I}", "items", items, "total", total, "limit",
	                 (json_int_t)(ml->has_limit && !all_pages ? ml->limit : got), "offset",
	                 (json_int_t)start);
	items = NULL;
	ret = *doc ? 0 : ml_fail(ml, "out of memory");
out:
	json_decref(items);
	sb_free(&p);
	return ret;
}

int cl_upload(struct mlctl *ml, const char *path, const char *file, json_t **out)
{
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE];
	struct cl_resp r;
	FILE *f;
	curl_off_t size = -1;
	int rc = ml_need_server(ml);
	*out = NULL;
	if (rc < 0)
		return rc;
	if (ml->want_fp[0] && !ml->fp_pin[0] && !ml->insecure &&
	    strncmp(ml->server, "https:", 6) == 0 && (rc = cl_learn_fp(ml)) < 0)
		return rc;
	if (strcmp(file, "-") == 0) {
		f = stdin;
	} else {
		struct stat st;
		f = fopen(file, "rb");
		if (!f)
			return ml_fail(ml, "%s: %s", file, strerror(errno));
		if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
			fclose(f);
			return ml_fail(ml, "%s: not a regular file", file);
		}
		size = (curl_off_t)st.st_size;
	}
	struct cl_req q = {.method = "PUT",
	                   .path = path,
	                   .ctype = "application/octet-stream",
	                   .tls = CL_TLS_NORMAL,
	                   .upload = f,
	                   .upload_size = size,
	                   .progress = ml->tty_err && !ml->quiet};
	rc = cl_do(ml, &q, &r, &cc, errbuf);
	if (f != stdin)
		fclose(f);
	if (rc < 0) {
		if (cc == CURLE_ABORTED_BY_CALLBACK || cc == CURLE_READ_ERROR)
			return ml_fail(ml, "%s: read error", file);
		return cl_transport_error(ml, rc, cc, errbuf);
	}
	if (r.status < 200 || r.status > 299) {
		rc = cl_error(ml, &r);
		cl_resp_free(&r);
		return rc;
	}
	*out = r.json;
	r.json = NULL;
	cl_resp_free(&r);
	return *out ? 0 : ml_fail(ml, "the server's answer is not JSON");
}

int cl_probe(struct mlctl *ml, bool try_unverified, struct cl_probe *p)
{
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE];
	struct cl_resp r;
	int rc = ml_need_server(ml);
	memset(p, 0, sizeof(*p));
	if (rc < 0)
		return rc;
	bool https = strncmp(ml->server, "https:", 6) == 0;
	struct cl_req q = {.method = "GET",
	                   .path = "/health",
	                   .noauth = true,
	                   .tls = ml->insecure ? CL_TLS_NONE : CL_TLS_VERIFY,
	                   .probe = https ? p : NULL};
	rc = cl_do(ml, &q, &r, &cc, errbuf);
	if (rc == -EHOSTUNREACH && cc == CURLE_PEER_FAILED_VERIFICATION && try_unverified &&
	    !ml->cacert) {
		cl_resp_free(&r);
		q.tls = CL_TLS_NONE;
		rc = cl_do(ml, &q, &r, &cc, errbuf);
	} else if (rc == 0 && https && !ml->insecure) {
		p->verified = true;
	}
	if (rc < 0)
		return cl_transport_error(ml, rc, cc, errbuf);
	if (r.status != 200) {
		rc = cl_error(ml, &r);
		cl_resp_free(&r);
		return rc;
	}
	const char *hfp = json_string_value(json_object_get(r.json, "tls_fingerprint"));
	if (hfp && *hfp && pin_fp_normalize(hfp, p->health_fp) < 0)
		ml_warn(ml, "the server reports a malformed certificate fingerprint");
	cl_resp_free(&r);
	if (https && !p->verified && !p->fp[0])
		return ml_unreachable(ml, "cannot read the server's certificate (does this "
		                          "libcurl's TLS backend report certificates?)");
	return 0;
}

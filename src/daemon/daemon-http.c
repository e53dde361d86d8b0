/* Admission, routing and the responses of the daemon's HTTP face. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "daemon-internal.h"
#include "daemon-signin.h"
#include "http/http.h"
#include "lib/clock.h"

/* --- responses ---------------------------------------------------------------- */

void daemon_respond_json(struct http_response *resp, unsigned status, json_t *body)
{
	const char *err;
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	http_response_set_status(resp, status, &err);
	if (text != NULL)
		http_response_set_body(resp, "application/json", text, strlen(text), &err);
}

/* Every error body is an RFC 7807 problem, as RFC 8620 3.6.1 has it. */
void daemon_respond_problem(struct http_response *resp, unsigned status, const char *type,
                            const char *detail)
{
	const char *err;
	json_t *body =
	    json_pack("{s:s,s:i,s:s}", "type", type, "status", (int)status, "detail", detail);
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	http_response_set_status(resp, status, &err);
	if (text != NULL)
		http_response_set_body(resp, "application/problem+json", text, strlen(text), &err);
}

/* Value of a query parameter (no percent-decoding: our values are simple). */
bool daemon_query_param(const char *query, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	for (const char *p = query; p != NULL && *p != '\0';) {
		const char *end = strchr(p, '&');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			size_t vlen = len - nlen - 1;
			if (vlen >= size)
				return false;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/* Percent-decode src into dst (size > 0); false if malformed or too long. */
bool daemon_percent_decode(const char *src, char *dst, size_t size)
{
	size_t o = 0;
	for (const char *p = src; *p != '\0'; p++) {
		char c = *p;
		if (c == '%') {
			if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
				return false;
			const char hex[3] = {p[1], p[2], '\0'};
			c = (char)strtoul(hex, NULL, 16);
			p += 2;
		}
		if (c == '\0' || o + 1 >= size)
			return false;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return true;
}

/* May this request read /metrics? With metrics_token in mailkeep.conf, a
 * request bearing it (compared in constant time); without, requests from
 * the loopback address only (behind --trusted-proxy: the forwarded client
 * address, so the proxy's own loopback address does not count). */
static bool metrics_allowed(struct daemon *sv, const struct http_request *req)
{
	const char *token = hub_get_settings(sv->hub)->metrics_token, *h = req->authorization;
	if (token[0] != '\0') {
		size_t len = strlen(token);
		return h != NULL && strncasecmp(h, "Bearer ", 7) == 0 && strlen(h + 7) == len &&
		       sodium_memcmp(h + 7, token, len) == 0;
	}
	const char *a = req->remote_addr != NULL ? req->remote_addr : "";
	if (strncmp(a, "::ffff:", 7) == 0)
		a += 7;
	return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0;
}

/* Admission (http.h): every request is authenticated on its headers, before
 * any of its body is read; the principal goes on to the handler. /healthz
 * needs no sign-in, /metrics its own (metrics_allowed); their principal has
 * device_id -1. */
void daemon_admit(void *context, const struct http_request *req, struct http_response *resp,
                  void **state_r)
{
	struct daemon *sv = context;
	const char *err;
	struct principal *p = malloc(sizeof(*p));
	if (p == NULL) {
		daemon_respond_problem(resp, 503, "about:blank", "out of memory");
		return;
	}
	if (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/metrics") == 0) {
		if (req->path[1] == 'm' && !metrics_allowed(sv, req)) {
			free(p);
			http_response_add_header(resp, "WWW-Authenticate", "Bearer realm=\"metrics\"",
			                         &err);
			daemon_respond_problem(resp, 401, "about:blank",
			                       "the metrics need the metrics_token or loopback");
			return;
		}
		memset(p, 0, sizeof(*p));
		p->device_id = -1;
		snprintf(p->label, sizeof(p->label), "-%s", req->path);
		*state_r = p;
		return;
	}
	unsigned retry_after = DAEMON_SIGNIN_WINDOW;
	int r = daemon_authenticate(sv, req, p, &retry_after);
	if (r == 0) {
		*state_r = p;
		return;
	}
	free(p);
	if (r == -2 || r == -3) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%u", r == -3 ? 5 : retry_after);
		http_response_add_header(resp, "Retry-After", secs, &err);
		if (r == -2)
			daemon_respond_problem(resp, 429, "about:blank",
			                "too many failed sign-ins; wait a minute");
		else
			daemon_respond_problem(resp, 503, "about:blank",
			                "too many sign-ins at once; try again");
		return;
	}
	http_response_add_header(resp, "WWW-Authenticate",
	                         "Bearer realm=\"mailkeep\", Basic realm=\"mailkeep\"", &err);
	daemon_respond_problem(resp, 401, "about:blank", "sign in with a device token or password");
}

/* GET /healthz: cheap, no sign-in: the hub answers (one read) and the data
 * directory's users folder is there. */
static void handle_healthz(struct daemon *sv, struct http_response *resp)
{
	const char *err;
	char path[4200];
	pthread_mutex_lock(&sv->hub_lock);
	bool hub_ok = hub_device_exists(sv->hub, 0, &err) >= 0; /* one indexed read */
	pthread_mutex_unlock(&sv->hub_lock);
	int n = snprintf(path, sizeof(path), "%s/users", sv->data_dir);
	bool store_ok = n > 0 && (size_t)n < sizeof(path) && access(path, R_OK | X_OK) == 0;
	bool ok = hub_ok && store_ok;
	daemon_respond_json(resp, ok ? 200 : 503,
	                    json_pack("{s:b,s:I,s:b,s:b}", "ok", ok, "uptime",
	                              (json_int_t)(time(NULL) - sv->started), "hub", hub_ok,
	                              "store", store_ok));
}

static void handle_metrics(struct daemon *sv, struct http_response *resp)
{
	const char *err;
	char *text = daemon_metrics_text(sv);
	if (text == NULL) {
		daemon_respond_problem(resp, 500, "about:blank", "out of memory");
		return;
	}
	http_response_set_status(resp, 200, &err);
	http_response_set_body(resp, "text/plain; version=0.0.4", text, strlen(text), &err);
}

static const char *route(struct daemon *sv, const struct principal *p,
                         const struct http_request *req, struct http_response *resp)
{
	if (p->device_id == -1) {
		if (strcmp(req->path, "/healthz") == 0) {
			handle_healthz(sv, resp);
			return "healthz";
		}
		handle_metrics(sv, resp);
		return "metrics";
	}
	if (strcmp(req->path, "/.well-known/jmap") == 0) {
		daemon_respond_session(sv, &p->user, resp);
		return "session";
	} else if (strcmp(req->path, "/jmap/api/") == 0 || strcmp(req->path, "/jmap/api") == 0) {
		daemon_handle_api(sv, p, req, resp);
		return "api";
	} else if (strncmp(req->path, "/jmap/download/", 15) == 0) {
		daemon_handle_download(sv, p, req, resp);
		return "download";
	} else if (strncmp(req->path, "/jmap/eventsource", 17) == 0) {
		daemon_handle_events(sv, p, req, resp);
		return "eventsource";
	} else if (strncmp(req->path, "/jmap/upload/", 13) == 0) {
		daemon_handle_upload(sv, p, req, resp);
		return "upload";
	}
	daemon_respond_problem(resp, 404, "about:blank", "not found");
	return "other";
}

void daemon_handler(void *context, const struct http_request *req, struct http_response *resp)
{
	struct daemon *sv = context;
	const char *err;
	if (req->state == NULL) { /* admit() let no one through without one */
		daemon_respond_problem(resp, 500, "about:blank", "not signed in");
		return;
	}
	struct principal p = *(const struct principal *)req->state;
	http_response_set_auth_label(resp, p.label, &err);
	double t0 = clock_mono();
	const char *name = route(sv, &p, req, resp);
	daemon_metrics_request(name, clock_mono() - t0);
}

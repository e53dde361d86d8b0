/* Admission, routing and the responses of the daemon's HTTP face. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "daemon-internal.h"
#include "daemon-oauth.h"
#include "daemon-signin.h"
#include "http/http.h"
#include "lib/clock.h"

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

/* Routes anyone may use (their principal has device_id -1): /healthz,
 * /metrics (with its own check), the web app's files (daemon-static.c) and
 * the web sign-in, POST /mailkeep/session (its small body is its
 * credentials). */
/* A request without a body: no Content-Length above 0 and no chunked
 * (Transfer-Encoding) one, whose length is unknown (-1) until it is read. */
static bool no_body(const struct http_request *req)
{
	return req->content_length <= 0 && http_request_header(req, "Transfer-Encoding") == NULL;
}

static bool public_route(const struct http_request *req)
{
	if (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/metrics") == 0)
		return true;
	if (strcmp(req->path, "/mailkeep/session") == 0)
		return strcmp(req->method, "POST") == 0;
	/* The provider's redirect back (daemon-oauth.h): the session cookie
	 * (SameSite=Strict) is not sent with it; its single-use state is its
	 * credential. */
	if (strcmp(req->path, DAEMON_OAUTH_CALLBACK_PATH) == 0)
		return strcmp(req->method, "GET") == 0 && no_body(req);
	return daemon_static_path(req->path);
}

/* Should a 401 offer Basic? Not to the web app (a browser's fetch, or a
 * request with our cookie): a Basic challenge would make the browser ask
 * for a password in its own dialog. */
static bool offer_basic(const struct http_request *req)
{
	char token[HUB_WEB_SESSION_TOKEN_LEN + 1];
	const char *mode = http_request_header(req, "Sec-Fetch-Mode");
	if (mode != NULL && strcmp(mode, "navigate") != 0)
		return false;
	if (strncmp(req->path, "/mailkeep/session", 17) == 0)
		return false;
	bool cookie = daemon_websession_cookie(req, token, sizeof(token));
	sodium_memzero(token, sizeof(token));
	return !cookie;
}

/* Admission (http.h): every request is authenticated on its headers, before
 * any of its body is read; the principal goes on to the handler. The
 * public routes (public_route) need no sign-in; their principal has
 * device_id -1. */
void daemon_admit(void *context, const struct http_request *req, struct http_response *resp,
                  void **state_r)
{
	struct daemon *sv = context;
	const char *err;
	struct principal *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		daemon_respond_problem(resp, 503, "about:blank", "out of memory");
		return;
	}
	if (public_route(req)) {
		if (strcmp(req->path, "/mailkeep/session") == 0 &&
		    (req->content_length < 1 || req->content_length > 4096)) {
			daemon_principal_free(p);
			daemon_respond_problem(resp, req->content_length < 0 ? 411 : 413,
			                       "about:blank",
			                       "send {\"username\", \"password\"} (at most 4 KiB) "
			                       "with a Content-Length");
			return;
		}
		/* The web app's files take no body: refused here, before any
		 * of it is read (no sign-in vouches for it). */
		if (daemon_static_path(req->path) &&
		    ((strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) ||
		     !no_body(req))) {
			daemon_principal_free(p);
			http_response_add_header(resp, "Allow", "GET, HEAD", &err);
			daemon_respond_problem(
			    resp, 405, "about:blank",
			    "the web app's files are read with GET, without a body");
			return;
		}
		if (strcmp(req->path, "/metrics") == 0 && !metrics_allowed(sv, req)) {
			daemon_principal_free(p);
			http_response_add_header(resp, "WWW-Authenticate",
			                         "Bearer realm=\"metrics\"", &err);
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
	daemon_principal_free(p);
	if (r == -2 || r == -3) {
		daemon_respond_limited(resp, r, retry_after);
		return;
	}
	if (r == -4) {
		daemon_respond_problem(
		    resp, 403, "about:blank",
		    "the web session's X-Mailkeep-CSRF header is missing or wrong");
		return;
	}
	http_response_add_header(resp, "WWW-Authenticate",
	                         offer_basic(req)
	                             ? "Bearer realm=\"mailkeep\", Basic realm=\"mailkeep\""
	                             : "Bearer realm=\"mailkeep\"",
	                         &err);
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
		} else if (strcmp(req->path, "/metrics") == 0) {
			handle_metrics(sv, resp);
			return "metrics";
		} else if (strcmp(req->path, "/mailkeep/session") == 0) {
			daemon_handle_session_signin(sv, req, resp);
			return "websession";
		} else if (strcmp(req->path, DAEMON_OAUTH_CALLBACK_PATH) == 0) {
			daemon_handle_oauth_callback(sv, req, resp);
			return "oauth-callback";
		}
		daemon_handle_static(sv, req, resp);
		return "static";
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
	} else if (strncmp(req->path, "/jmap/preview/", 14) == 0) {
		daemon_handle_preview(sv, p, req, resp); /* daemon-blob.c */
		return "download";                       /* a blob read: counted with downloads */
	} else if (strncmp(req->path, "/jmap/eventsource", 17) == 0) {
		daemon_handle_events(sv, p, req, resp);
		return "eventsource";
	} else if (strcmp(req->path, "/mailkeep/signin") == 0) {
		daemon_handle_signin(sv, p, req, resp);
		return "signin";
	} else if (strcmp(req->path, "/mailkeep/signout") == 0) {
		daemon_handle_signout(sv, p, req, resp);
		return "signout";
	} else if (strcmp(req->path, "/mailkeep/session") == 0) {
		daemon_handle_session(sv, p, req, resp);
		return "websession";
	} else if (strcmp(req->path, "/mailkeep/session/signout") == 0) {
		daemon_handle_session_signout(sv, p, req, resp);
		return "websession";
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

/* Admission, routing and the responses of the daemon's HTTP face. */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon-internal.h"
#include "daemon-signin.h"
#include "http/http.h"

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

/* Admission (http.h): every request is authenticated on its headers, before
 * any of its body is read; the principal goes on to the handler. */
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
	if (strcmp(req->path, "/.well-known/jmap") == 0) {
		daemon_respond_session(sv, &p.user, resp);
	} else if (strcmp(req->path, "/jmap/api/") == 0 || strcmp(req->path, "/jmap/api") == 0) {
		daemon_handle_api(sv, &p, req, resp);
	} else if (strncmp(req->path, "/jmap/download/", 15) == 0) {
		daemon_handle_download(sv, &p, req, resp);
	} else if (strncmp(req->path, "/jmap/eventsource", 17) == 0) {
		daemon_handle_events(sv, &p, req, resp);
	} else if (strncmp(req->path, "/jmap/upload/", 13) == 0) {
		daemon_handle_upload(sv, &p, req, resp);
	} else {
		daemon_respond_problem(resp, 404, "about:blank", "not found");
	}
}


/*
 * The web app's sign-in: cookie sessions and their CSRF token.
 *
 *   POST /mailkeep/session          {"username","password"} (application/json)
 *                                   -> 200 + Set-Cookie mk_session=TOKEN
 *   GET  /mailkeep/session          (cookie) -> 200 the same body, or 401
 *   POST /mailkeep/session/signout  (cookie + X-Mailkeep-CSRF) -> 204
 *
 * The body of the first two: {"user", "sessionId", "csrf", "zeroAccess",
 * "unlockedUntil"}. The cookie is HttpOnly, SameSite=Strict, Path=/,
 * Max-Age the absolute lifetime, Secure when serve is reached over HTTPS.
 * The CSRF token is base64url(BLAKE2b-256 keyed with the session token of
 * "mailkeep-csrf"): stateless, recomputed from the cookie; every request
 * authenticated by the cookie with a method other than GET or HEAD must
 * carry it in X-Mailkeep-CSRF (else 403). The sign-in goes through the same
 * gate as Basic (daemon-signin.h) and, for a zero-access user, opens their
 * unlock lease as POST /mailkeep/signin does, the session its holder.
 */
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon-internal.h"
#include "daemon-webparse.h"
#include "http/http.h"
#include "service/svc-lease.h"
#include "service/svc-pool.h"

#define COOKIE_NAME "mk_session"
#define CSRF_HEADER "X-Mailkeep-CSRF"
#define CSRF_LEN 43
#define SIGNIN_BODY_MAX 4096

bool daemon_websession_cookie_parse(const char *h, char *token, size_t size)
{
	if (h == NULL)
		return false;
	/* "a=b; mk_session=TOKEN; c=d" */
	for (const char *p = h; *p != '\0';) {
		p += strspn(p, " \t;");
		size_t len = strcspn(p, ";");
		size_t nlen = sizeof(COOKIE_NAME) - 1;
		if (len > nlen && strncmp(p, COOKIE_NAME "=", nlen + 1) == 0) {
			const char *v = p + nlen + 1;
			size_t vlen = len - nlen - 1;
			while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen != HUB_WEB_SESSION_TOKEN_LEN || vlen >= size)
				return false;
			memcpy(token, v, vlen);
			token[vlen] = '\0';
			return true;
		}
		p += len;
	}
	return false;
}

bool daemon_websession_cookie(const struct http_request *req, char *token, size_t size)
{
	return daemon_websession_cookie_parse(http_request_header(req, "Cookie"), token, size);
}

/* The CSRF token of a session token (CSRF_LEN characters and a NUL): false
 * (out "") for anything but a session token's length (BLAKE2b takes keys of
 * at most 64 bytes: a longer one would leave mac unwritten). */
static bool csrf_of(const char *token, char out[CSRF_LEN + 1])
{
	static const char what[] = "mailkeep-csrf";
	unsigned char mac[32];
	out[0] = '\0';
	if (strlen(token) != HUB_WEB_SESSION_TOKEN_LEN ||
	    crypto_generichash(mac, sizeof(mac), (const unsigned char *)what, sizeof(what) - 1,
	                       (const unsigned char *)token, HUB_WEB_SESSION_TOKEN_LEN) != 0)
		return false;
	sodium_bin2base64(out, CSRF_LEN + 1, mac, sizeof(mac),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(mac, sizeof(mac));
	return true;
}

bool daemon_websession_csrf_ok(const char *token, const char *given)
{
	char csrf[CSRF_LEN + 1];
	bool ok = csrf_of(token, csrf) && given != NULL && strlen(given) == CSRF_LEN &&
	          sodium_memcmp(given, csrf, CSRF_LEN) == 0;
	sodium_memzero(csrf, sizeof(csrf));
	return ok;
}

static void principal_of_session(struct principal *p, const struct hub_web_session *s)
{
	p->device_id = 0;
	p->device[0] = '\0';
	p->web_session_id = s->id;
	snprintf(p->label, sizeof(p->label), "%s/web-%lld", p->user.name, (long long)s->id);
}

int daemon_websession_authenticate(struct daemon *sv, const struct http_request *req,
                                   struct principal *p)
{
	char token[HUB_WEB_SESSION_TOKEN_LEN + 1];
	const char *err;
	if (!daemon_websession_cookie(req, token, sizeof(token)))
		return -1;
	struct hub_web_session s;
	pthread_mutex_lock(&sv->hub_lock);
	int r = hub_web_session_auth(sv->hub, token, time(NULL), &p->user, &s, &err);
	pthread_mutex_unlock(&sv->hub_lock);
	if (r < 0) {
		sodium_memzero(token, sizeof(token));
		return -1;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		if (!daemon_websession_csrf_ok(token, http_request_header(req, CSRF_HEADER))) {
			sodium_memzero(token, sizeof(token));
			return -4;
		}
	}
	sodium_memzero(token, sizeof(token));
	principal_of_session(p, &s);
	return 0;
}

/* Is serve reached over HTTPS (its own TLS, or a public_url that says so)? */
static bool secure_cookies(const struct daemon *sv)
{
	return strncmp(sv->public_url, "https://", 8) == 0;
}

static void set_cookie(struct daemon *sv, struct http_response *resp, const char *token,
                       long long max_age)
{
	const char *err;
	char cookie[256];
	int n = snprintf(cookie, sizeof(cookie),
	                 COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s",
	                 token, max_age, secure_cookies(sv) ? "; Secure" : "");
	if (n > 0 && (size_t)n < sizeof(cookie))
		http_response_add_header(resp, "Set-Cookie", cookie, &err);
	sodium_memzero(cookie, sizeof(cookie));
}

/* The answer to a signed-in session: 200 {"user", ...}. */
static void respond_session(struct daemon *sv, const struct hub_user *u, int64_t session_id,
                            const char *token, struct http_response *resp)
{
	char csrf[CSRF_LEN + 1];
	csrf_of(token, csrf);
	json_t *body =
	    json_pack("{s:s,s:I,s:s,s:b}", "user", u->name, "sessionId", (json_int_t)session_id,
	              "csrf", csrf, "zeroAccess", u->zero_access);
	sodium_memzero(csrf, sizeof(csrf));
	if (body == NULL) {
		daemon_respond_problem(resp, 500, "about:blank", "out of memory");
		return;
	}
	json_object_set_new(body, "unlockedUntil", daemon_lease_until_json(sv, u));
	const char *err;
	http_response_add_header(resp, "Cache-Control", "no-store", &err);
	daemon_respond_json(resp, 200, body);
}

/* The answer to a sign-in the limits refused (r -2: limited, -3: too busy
 * hashing), with its Retry-After. */
void daemon_respond_limited(struct http_response *resp, int r, unsigned retry_after)
{
	const char *err;
	char secs[16];
	snprintf(secs, sizeof(secs), "%u", r == -3 ? 5 : retry_after);
	http_response_add_header(resp, "Retry-After", secs, &err);
	if (r == -2)
		daemon_respond_problem(resp, 429, "about:blank",
		                       "too many failed sign-ins; wait a minute");
	else
		daemon_respond_problem(resp, 503, "about:blank",
		                       "too many sign-ins at once; try again");
}

static void respond_wrong(struct http_response *resp)
{
	const char *err;
	json_t *body = json_pack("{s:s,s:i,s:s}", "type", "about:blank", "status", 401, "detail",
	                         "wrong user name or password");
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	http_response_set_status(resp, 401, &err);
	if (text != NULL)
		http_response_set_body(resp, "application/problem+json", text, strlen(text), &err);
}

/* Wipe a string jansson holds (a password) before it is freed. */
static void wipe_json_string(json_t *s)
{
	if (json_is_string(s))
		sodium_memzero((char *)json_string_value(s), json_string_length(s));
}

void daemon_websession_signin_free(json_t *json)
{
	wipe_json_string(json_object_get(json, "password"));
	json_decref(json);
}

bool daemon_websession_json_type(const char *content_type)
{
	return content_type != NULL && strncasecmp(content_type, "application/json", 16) == 0 &&
	       (content_type[16] == '\0' || content_type[16] == ';' || content_type[16] == ' ');
}

int daemon_websession_signin_parse(const unsigned char *body, size_t len, json_t **json_r,
                                   const char **user_r, const char **password_r)
{
	json_error_t jerr;
	json_t *json = json_loadb((const char *)body, len, 0, &jerr);
	json_t *jpw = json_object_get(json, "password");
	const char *user = json_string_value(json_object_get(json, "username"));
	const char *password = json_string_value(jpw);
	*json_r = NULL;
	if (user == NULL || password == NULL || strlen(password) != json_string_length(jpw)) {
		daemon_websession_signin_free(json);
		return -1;
	}
	*json_r = json;
	*user_r = user;
	*password_r = password;
	return 0;
}

void daemon_handle_session_signin(struct daemon *sv, const struct http_request *req,
                                  struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "POST") != 0) {
		daemon_respond_problem(resp, 405, "about:blank", "sign in with POST");
		return;
	}
	/* application/json only: a cross-site form cannot send it without a
	 * CORS preflight, which serve never grants (no sign-in CSRF). */
	if (!daemon_websession_json_type(req->content_type)) {
		daemon_respond_problem(resp, 415, "about:blank",
		                       "send {\"username\", \"password\"} as application/json");
		return;
	}
	json_t *body;
	const char *user, *password;
	if (daemon_websession_signin_parse(req->body, req->body_len, &body, &user, &password) < 0) {
		daemon_respond_problem(resp, 400, "about:blank",
		                       "send {\"username\": \"...\", \"password\": \"...\"}");
		return;
	}
	struct principal p;
	memset(&p, 0, sizeof(p));
	unsigned retry_after = 60;
	int r = daemon_password_check(sv, user, password, req->remote_addr, &p, &retry_after);
	if (r != 0) {
		daemon_websession_signin_free(body);
		if (r == -1)
			respond_wrong(resp);
		else
			daemon_respond_limited(resp, r, retry_after);
		return;
	}
	char token[64];
	int64_t id;
	time_t now = time(NULL);
	pthread_mutex_lock(&sv->hub_lock);
	const struct hub_settings *set = hub_get_settings(sv->hub);
	long long max_age = (long long)set->web_session_days * 86400;
	unsigned lease_seconds = set->lease_seconds;
	r = hub_web_session_create(sv->hub, &p.user, http_request_header(req, "User-Agent"),
	                           req->remote_addr, now, token, &id, &err);
	pthread_mutex_unlock(&sv->hub_lock);
	if (r < 0) {
		daemon_websession_signin_free(body);
		daemon_log(DAEMON_LOG_ERROR, p.user.name, 0, "web sign-in: %s", err);
		daemon_respond_problem(resp, 503, "about:blank", "cannot sign in now; try again");
		return;
	}
	if (p.user.zero_access) {
		char error[SVC_ERROR_SIZE];
		time_t until;
		int u = svc_lease_signin(sv->leases, &p.user, password, -id, now, lease_seconds,
		                         &until, error, sizeof(error));
		if (u < 0) {
			pthread_mutex_lock(&sv->hub_lock);
			hub_web_session_revoke(sv->hub, &p.user, id, &err);
			pthread_mutex_unlock(&sv->hub_lock);
			daemon_websession_signin_free(body);
			sodium_memzero(token, sizeof(token));
			daemon_log(DAEMON_LOG_ERROR, p.user.name, 0, "unlock: %s", error);
			daemon_respond_problem(resp, 503, "about:blank",
			                       "cannot unlock the account now");
			return;
		}
		if (u == 1)
			daemon_log(DAEMON_LOG_INFO, p.user.name, 0, "lease: %s unlocked",
			           p.user.name);
		sv->sync_now = 1;
	}
	daemon_websession_signin_free(body);
	char label[140];
	snprintf(label, sizeof(label), "%s/web-%lld", p.user.name, (long long)id);
	http_response_set_auth_label(resp, label, &err);
	set_cookie(sv, resp, token, max_age);
	respond_session(sv, &p.user, id, token, resp);
	sodium_memzero(token, sizeof(token));
}

void daemon_handle_session(struct daemon *sv, const struct principal *p,
                           const struct http_request *req, struct http_response *resp)
{
	char token[HUB_WEB_SESSION_TOKEN_LEN + 1];
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		daemon_respond_problem(resp, 405, "about:blank",
		                       "GET the session; POST signs in (without a cookie)");
		return;
	}
	if (p->web_session_id <= 0 || !daemon_websession_cookie(req, token, sizeof(token))) {
		daemon_respond_problem(resp, 401, "about:blank", "no web session");
		return;
	}
	respond_session(sv, &p->user, p->web_session_id, token, resp);
	sodium_memzero(token, sizeof(token));
}

void daemon_handle_session_signout(struct daemon *sv, const struct principal *p,
                                   const struct http_request *req, struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "POST") != 0) {
		daemon_respond_problem(resp, 405, "about:blank", "sign out with POST");
		return;
	}
	if (p->web_session_id <= 0) {
		daemon_respond_problem(resp, 400, "about:blank",
		                       "sign out of a web session with its cookie");
		return;
	}
	pthread_mutex_lock(&sv->hub_lock);
	int r = hub_web_session_revoke(sv->hub, &p->user, p->web_session_id, &err);
	if (r < 0) /* err belongs to the shared handle: used under its lock */
		daemon_log(DAEMON_LOG_ERROR, p->user.name, 0, "sign-out: %s", err);
	pthread_mutex_unlock(&sv->hub_lock);
	if (r < 0) {
		daemon_respond_problem(resp, 503, "about:blank",
		                       "the sign-out could not be recorded; try again");
		return;
	}
	if (p->user.zero_access &&
	    svc_lease_release(sv->leases, p->user.id, -p->web_session_id, "signout") == 1) {
		svc_pool_drop_user(sv->pool, p->user.id); /* no background access remains */
		daemon_log(DAEMON_LOG_INFO, p->user.name, 0, "lease: %s wiped (signout)",
		           p->user.name);
	}
	set_cookie(sv, resp, "", 0);
	http_response_set_status(resp, 204, &err);
}

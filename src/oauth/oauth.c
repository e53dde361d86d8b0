/* OAuth 2 token endpoint calls with libcurl (oauth.h). */
#include "oauth.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(struct oauth_error *err, enum oauth_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct oauth_error *err, enum oauth_error_kind kind, const char *fmt, ...)
{
	va_list ap;
	err->kind = kind;
	err->code[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

static void ok(struct oauth_error *err)
{
	err->kind = OAUTH_OK;
	err->code[0] = '\0';
	err->text[0] = '\0';
}

void oauth_secret_free(char **secret)
{
	if (*secret != NULL)
		sodium_free(*secret); /* wipes */
	*secret = NULL;
}

char *oauth_secret_dup(const char *s, size_t len)
{
	char *d = sodium_malloc(len + 1);
	if (d == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

void oauth_tokens_clear(struct oauth_tokens *t)
{
	oauth_secret_free(&t->access_token);
	oauth_secret_free(&t->refresh_token);
	free(t->scope);
	memset(t, 0, sizeof(*t));
}

void oauth_device_clear(struct oauth_device *dev)
{
	oauth_secret_free(&dev->device_code);
	memset(dev, 0, sizeof(*dev));
}

static bool host_is_loopback(const char *rest)
{
	static const char *const names[] = {"127.0.0.1", "[::1]", "localhost"};
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(names[i]);
		if (strncasecmp(rest, names[i], n) == 0 &&
		    (rest[n] == ':' || rest[n] == '/' || rest[n] == '\0'))
			return true;
	}
	return false;
}

bool oauth_scope_has(const char *scopes, const char *scope)
{
	size_t n = strlen(scope);
	for (const char *p = scopes; p != NULL && *p != '\0';) {
		size_t len = strcspn(p, " ");
		if (len == n && strncmp(p, scope, n) == 0)
			return true;
		p += len;
		while (*p == ' ')
			p++;
	}
	return false;
}

bool oauth_url_allowed(const char *url)
{
	if (url == NULL || strpbrk(url, " \r\n\t") != NULL)
		return false;
	if (strncasecmp(url, "https://", 8) == 0)
		return url[8] != '\0' && url[8] != '/';
	if (strncasecmp(url, "http://", 7) == 0)
		return host_is_loopback(url + 7);
	return false;
}

int oauth_provider_check(const struct oauth_provider *p, struct oauth_error *err)
{
	const char *name = p->name != NULL ? p->name : "the provider";
	if (p->token_url == NULL || p->client_id == NULL || p->client_id[0] == '\0')
		return fail(err, OAUTH_ERR_PERMANENT,
		            "%s: no token endpoint or client id configured", name);
	const char *urls[] = {p->token_url, p->authorization_url, p->device_url, p->revocation_url};
	for (size_t i = 0; i < 4; i++)
		if (urls[i] != NULL && !oauth_url_allowed(urls[i]))
			return fail(
			    err, OAUTH_ERR_PERMANENT,
			    "%s: endpoint %.200s is not https:// (plain http is allowed only "
			    "on loopback)",
			    name, urls[i]);
	ok(err);
	return 0;
}

/* --- form bodies in locked memory ---------------------------------------- */

struct form {
	char *data; /* sodium_malloc'd */
	size_t len, size;
	bool overflow;
};

static int form_init(struct form *f, size_t size)
{
	f->data = sodium_malloc(size);
	f->len = 0;
	f->size = size;
	f->overflow = f->data == NULL;
	if (f->data != NULL)
		f->data[0] = '\0';
	return f->data == NULL ? -1 : 0;
}

static void form_free(struct form *f)
{
	oauth_secret_free(&f->data);
}

/* Append name=value, value percent-encoded (RFC 3986 unreserved kept). */
static void form_add(struct form *f, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	if (f->overflow || value == NULL)
		return;
	size_t need = strlen(name) + 2 + strlen(value) * 3 + 1;
	if (f->len + need >= f->size) {
		f->overflow = true;
		return;
	}
	if (f->len > 0)
		f->data[f->len++] = '&';
	size_t n = strlen(name);
	memcpy(f->data + f->len, name, n);
	f->len += n;
	f->data[f->len++] = '=';
	for (const unsigned char *s = (const unsigned char *)value; *s != '\0'; s++) {
		if (isalnum(*s) || *s == '-' || *s == '.' || *s == '_' || *s == '~') {
			f->data[f->len++] = (char)*s;
		} else {
			f->data[f->len++] = '%';
			f->data[f->len++] = hex[*s >> 4];
			f->data[f->len++] = hex[*s & 15];
		}
	}
	f->data[f->len] = '\0';
}

/* --- HTTP --------------------------------------------------------------- */

struct response {
	char *data; /* sodium_malloc'd, OAUTH_MAX_RESPONSE + 1 */
	size_t len;
	bool too_large;
	char content_type[128];
};

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct response *r = ctx;
	size_t n = size * nmemb;
	if (r->len + n > OAUTH_MAX_RESPONSE) {
		r->too_large = true;
		return 0; /* aborts the transfer */
	}
	memcpy(r->data + r->len, ptr, n);
	r->len += n;
	r->data[r->len] = '\0';
	return n;
}

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct response *r = ctx;
	size_t n = size * nmemb;
	if (n > 13 && strncasecmp(ptr, "content-type:", 13) == 0) {
		size_t i = 13, o = 0;
		while (i < n && (ptr[i] == ' ' || ptr[i] == '\t'))
			i++;
		while (i < n && o + 1 < sizeof(r->content_type) && ptr[i] != '\r' && ptr[i] != '\n')
			r->content_type[o++] = (char)tolower((unsigned char)ptr[i++]);
		r->content_type[o] = '\0';
	}
	return n;
}

/* POST form to url; *status_r the HTTP status. resp->data must be freed by
 * the caller (response_free). Transport failures fill err (temporary). */
static int http_post(const struct oauth_provider *p, const char *url, const struct form *f,
                     struct response *resp, long *status_r, struct oauth_error *err)
{
	memset(resp, 0, sizeof(*resp));
	resp->data = sodium_malloc(OAUTH_MAX_RESPONSE + 1);
	if (resp->data == NULL)
		return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	resp->data[0] = '\0';
	CURL *h = curl_easy_init();
	if (h == NULL)
		return fail(err, OAUTH_ERR_TEMPORARY, "cannot start libcurl");
	struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
	long timeout = p->timeout_ms > 0 ? p->timeout_ms : 30000;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect would resend the body */
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, f->data); /* not copied by libcurl */
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)f->len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "mailkeep");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (p->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, p->ca_file);
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(headers);
	const char *name = p->name != NULL ? p->name : "the provider";
	if (resp->too_large)
		return fail(err, OAUTH_ERR_TEMPORARY,
		            "%s: the answer of %.200s is larger than %d bytes", name, url,
		            OAUTH_MAX_RESPONSE);
	if (rc != CURLE_OK) {
		enum oauth_error_kind kind = OAUTH_ERR_TEMPORARY;
		if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
		    rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
			kind = OAUTH_ERR_PERMANENT;
		return fail(err, kind, "%s: %.200s: %s", name, url, curl_easy_strerror(rc));
	}
	*status_r = status;
	return 0;
}

static void response_free(struct response *r)
{
	oauth_secret_free(&r->data);
}

/* Printable ASCII copy of s (at most size-1 bytes), for error texts. */
static void printable(char *out, size_t size, const char *s)
{
	size_t o = 0;
	for (; s != NULL && *s != '\0' && o + 1 < size; s++)
		out[o++] = (*s >= 32 && *s < 127) ? *s : '?';
	out[o] = '\0';
}

/* Classify an answer that is not a success: the provider's error object
 * (RFC 6749 5.2), or an HTML page / garbage. Never copies anything but
 * `error` and `error_description` into the text. */
static int fail_answer(const struct oauth_provider *p, const char *what, long status,
                       const struct response *resp, json_t *json, struct oauth_error *err)
{
	const char *name = p->name != NULL ? p->name : "the provider";
	const char *code = NULL, *desc = NULL;
	if (json != NULL && json_is_object(json)) {
		code = json_string_value(json_object_get(json, "error"));
		desc = json_string_value(json_object_get(json, "error_description"));
	}
	if (code == NULL) {
		bool html =
		    strstr(resp->content_type, "html") != NULL ||
		    (resp->len > 0 && memchr(resp->data, '<', resp->len > 64 ? 64 : resp->len));
		enum oauth_error_kind kind =
		    status >= 400 && status < 500 && status != 408 && status != 429
		        ? OAUTH_ERR_PERMANENT
		        : OAUTH_ERR_TEMPORARY;
		if (html)
			kind = OAUTH_ERR_TEMPORARY; /* an error page from a proxy or an outage */
		return fail(err, kind, "%s: %s failed: HTTP %ld with %s instead of an OAuth answer",
		            name, what, status,
		            html             ? "an HTML page"
		            : resp->len == 0 ? "no body"
		                             : "an unreadable body");
	}
	char c[64], d[300];
	printable(c, sizeof(c), code);
	printable(d, sizeof(d), desc);
	enum oauth_error_kind kind = OAUTH_ERR_PERMANENT;
	if (strcmp(code, "invalid_grant") == 0)
		kind = OAUTH_ERR_SIGN_IN;
	else if (strcmp(code, "temporarily_unavailable") == 0 ||
	         strcmp(code, "server_error") == 0 || strcmp(code, "authorization_pending") == 0 ||
	         strcmp(code, "slow_down") == 0)
		kind = OAUTH_ERR_TEMPORARY;
	const char *hint = "";
	if (kind == OAUTH_ERR_SIGN_IN)
		hint = " (the grant is no longer valid: consent revoked, expired or the password "
		       "changed; sign in again)";
	else if (strcmp(code, "invalid_client") == 0)
		hint = " (check oauth.<provider>.client_id and client_secret in mailkeep.conf)";
	else if (strcmp(code, "invalid_scope") == 0)
		hint = " (check oauth.<provider>.scopes in mailkeep.conf)";
	fail(err, kind, "%s: %s refused: %s%s%s%s", name, what, c, d[0] != '\0' ? ": " : "", d,
	     hint);
	snprintf(err->code, sizeof(err->code), "%s", c);
	return -1;
}

static char *json_secret(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v) || json_string_length(v) == 0)
		return NULL;
	return oauth_secret_dup(json_string_value(v), json_string_length(v));
}

/* Read a token answer from json into t. */
static int tokens_from_json(const struct oauth_provider *p, json_t *json, const char *asked_scope,
                            bool need_access, struct oauth_tokens *t, struct oauth_error *err)
{
	const char *name = p != NULL && p->name != NULL ? p->name : "the token answer";
	memset(t, 0, sizeof(*t));
	const char *type = json_string_value(json_object_get(json, "token_type"));
	if (type != NULL && strcasecmp(type, "bearer") != 0)
		return fail(err, OAUTH_ERR_PERMANENT, "%s: token type is not Bearer", name);
	snprintf(t->token_type, sizeof(t->token_type), "Bearer");
	t->access_token = json_secret(json, "access_token");
	t->refresh_token = json_secret(json, "refresh_token");
	if (need_access && t->access_token == NULL) {
		oauth_tokens_clear(t);
		return fail(err, OAUTH_ERR_TEMPORARY, "%s: the answer holds no access_token", name);
	}
	json_t *exp = json_object_get(json, "expires_in");
	json_t *at = json_object_get(json, "expires_at");
	int64_t now = (int64_t)time(NULL);
	if (json_is_integer(exp) && json_integer_value(exp) > 0 &&
	    json_integer_value(exp) < 10LL * 365 * 86400)
		t->expires_at = now + json_integer_value(exp);
	else if (json_is_string(exp)) { /* some providers send a string */
		char *end;
		long long v = strtoll(json_string_value(exp), &end, 10);
		if (*end == '\0' && v > 0 && v < 10LL * 365 * 86400)
			t->expires_at = now + v;
	} else if (json_is_integer(at) && json_integer_value(at) > 0)
		t->expires_at = json_integer_value(at);
	const char *scope = json_string_value(json_object_get(json, "scope"));
	if (scope == NULL)
		scope = asked_scope;
	t->scope = strdup(scope != NULL ? scope : "");
	if (t->scope == NULL) {
		oauth_tokens_clear(t);
		return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	}
	ok(err);
	return 0;
}

/* POST form to url and parse the JSON answer. On success *json_r is the
 * caller's. */
static int token_call(const struct oauth_provider *p, const char *url, const char *what,
                      const struct form *f, json_t **json_r, struct oauth_error *err)
{
	const char *name = p->name != NULL ? p->name : "the provider";
	if (f->overflow)
		return fail(err, OAUTH_ERR_PERMANENT, "%s: %s: request too large", name, what);
	struct response resp;
	long status = 0;
	int r = http_post(p, url, f, &resp, &status, err);
	if (r < 0) {
		response_free(&resp);
		return -1;
	}
	json_error_t jerr;
	json_t *json = resp.len > 0 ? json_loadb(resp.data, resp.len, 0, &jerr) : NULL;
	if (status != 200 || json == NULL || !json_is_object(json) ||
	    json_object_get(json, "error") != NULL) {
		fail_answer(p, what, status, &resp, json, err);
		json_decref(json);
		response_free(&resp);
		return -1;
	}
	response_free(&resp);
	*json_r = json;
	return 0;
}

static void add_client(struct form *f, const struct oauth_provider *p)
{
	form_add(f, "client_id", p->client_id);
	if (p->client_secret != NULL && p->client_secret[0] != '\0')
		form_add(f, "client_secret", p->client_secret);
}

#define FORM_SIZE 16384

static int grant(const struct oauth_provider *p, const char *what, struct form *f,
                 struct oauth_tokens *tokens_r, struct oauth_error *err)
{
	json_t *json = NULL;
	int r = token_call(p, p->token_url, what, f, &json, err);
	form_free(f);
	if (r < 0)
		return -1;
	struct oauth_tokens t;
	r = tokens_from_json(p, json, p->scopes, true, &t, err);
	json_decref(json);
	if (r == 0)
		*tokens_r = t;
	return r;
}

int oauth_exchange_code(const struct oauth_provider *p, const char *code, const char *redirect_uri,
                        const struct oauth_pkce *pkce, struct oauth_tokens *tokens_r,
                        struct oauth_error *err)
{
	if (oauth_provider_check(p, err) < 0)
		return -1;
	struct form f;
	if (form_init(&f, FORM_SIZE) < 0)
		return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	form_add(&f, "grant_type", "authorization_code");
	form_add(&f, "code", code);
	form_add(&f, "redirect_uri", redirect_uri);
	form_add(&f, "code_verifier", pkce->verifier);
	add_client(&f, p);
	return grant(p, "the authorization code exchange", &f, tokens_r, err);
}

int oauth_refresh(const struct oauth_provider *p, const char *refresh_token,
                  struct oauth_tokens *tokens_r, struct oauth_error *err)
{
	if (oauth_provider_check(p, err) < 0)
		return -1;
	struct form f;
	if (form_init(&f, FORM_SIZE) < 0)
		return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	form_add(&f, "grant_type", "refresh_token");
	form_add(&f, "refresh_token", refresh_token);
	add_client(&f, p);
	return grant(p, "the token refresh", &f, tokens_r, err);
}

int oauth_revoke(const struct oauth_provider *p, const char *token, const char *hint,
                 struct oauth_error *err)
{
	const char *name = p->name != NULL ? p->name : "the provider";
	if (oauth_provider_check(p, err) < 0)
		return -1;
	if (p->revocation_url == NULL)
		return fail(err, OAUTH_ERR_PERMANENT, "%s has no revocation endpoint configured",
		            name);
	struct form f;
	if (form_init(&f, FORM_SIZE) < 0)
		return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	form_add(&f, "token", token);
	if (hint != NULL)
		form_add(&f, "token_type_hint", hint);
	add_client(&f, p);
	struct response resp;
	long status = 0;
	int r = f.overflow
	            ? fail(err, OAUTH_ERR_PERMANENT, "%s: revocation request too large", name)
	            : http_post(p, p->revocation_url, &f, &resp, &status, err);
	form_free(&f);
	if (r < 0) {
		if (!f.overflow)
			response_free(&resp);
		return -1;
	}
	if (status == 200) {
		response_free(&resp);
		ok(err);
		return 0;
	}
	json_error_t jerr;
	json_t *json = resp.len > 0 ? json_loadb(resp.data, resp.len, 0, &jerr) : NULL;
	fail_answer(p, "the revocation", status, &resp, json, err);
	json_decref(json);
	response_free(&resp);
	return -1;
}

/* --- PKCE ----------------------------------------------------------------- */

static void b64url(char *out, size_t size, const unsigned char *bin, size_t len)
{
	sodium_bin2base64(out, size, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int oauth_pkce_new(struct oauth_pkce **pkce_r, struct oauth_error *err)
{
	struct oauth_pkce *p = sodium_malloc(sizeof(*p));
	if (p == NULL)
		return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	unsigned char raw[32], digest[crypto_hash_sha256_BYTES];
	randombytes_buf(raw, sizeof(raw));
	b64url(p->verifier, sizeof(p->verifier), raw, sizeof(raw)); /* 43 characters */
	crypto_hash_sha256(digest, (const unsigned char *)p->verifier, strlen(p->verifier));
	b64url(p->challenge, sizeof(p->challenge), digest, sizeof(digest));
	randombytes_buf(raw, sizeof(raw));
	b64url(p->state, sizeof(p->state), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	*pkce_r = p;
	ok(err);
	return 0;
}

void oauth_pkce_free(struct oauth_pkce **pkce)
{
	if (*pkce != NULL)
		sodium_free(*pkce);
	*pkce = NULL;
}

int oauth_authorization_url(const struct oauth_provider *p, const struct oauth_pkce *pkce,
                            const char *redirect_uri, const char *login_hint, char **url_r,
                            struct oauth_error *err)
{
	if (oauth_provider_check(p, err) < 0)
		return -1;
	if (p->authorization_url == NULL)
		return fail(err, OAUTH_ERR_PERMANENT, "%s has no authorization endpoint configured",
		            p->name != NULL ? p->name : "the provider");
	struct form f;
	if (form_init(&f, FORM_SIZE) < 0)
		return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	form_add(&f, "response_type", "code");
	form_add(&f, "client_id", p->client_id);
	form_add(&f, "redirect_uri", redirect_uri);
	form_add(&f, "scope", p->scopes);
	form_add(&f, "state", pkce->state);
	form_add(&f, "code_challenge", pkce->challenge);
	form_add(&f, "code_challenge_method", "S256");
	/* Google hands out a refresh token only with access_type=offline and
	 * a fresh consent; other providers ignore both. */
	form_add(&f, "access_type", "offline");
	form_add(&f, "prompt", "consent");
	if (login_hint != NULL)
		form_add(&f, "login_hint", login_hint);
	char *url = NULL;
	if (!f.overflow) {
		size_t n = strlen(p->authorization_url) + 1 + f.len + 1;
		url = malloc(n);
		if (url != NULL)
			snprintf(url, n, "%s%c%s", p->authorization_url,
			         strchr(p->authorization_url, '?') != NULL ? '&' : '?', f.data);
	}
	bool overflow = f.overflow;
	form_free(&f);
	if (url == NULL)
		return fail(err, OAUTH_ERR_PERMANENT,
		            overflow ? "authorization URL too long" : "out of memory");
	*url_r = url;
	ok(err);
	return 0;
}

/* --- device flow ------------------------------------------------------------ */

static void copy_str(char *out, size_t size, json_t *v)
{
	printable(out, size, json_string_value(v));
}

int oauth_device_start(const struct oauth_provider *p, struct oauth_device *dev_r,
                       struct oauth_error *err)
{
	const char *name = p->name != NULL ? p->name : "the provider";
	if (oauth_provider_check(p, err) < 0)
		return -1;
	if (p->device_url == NULL)
		return fail(err, OAUTH_ERR_PERMANENT,
		            "%s has no device authorization endpoint configured (use the loopback "
		            "flow on your own machine, or a token file)",
		            name);
	struct form f;
	if (form_init(&f, FORM_SIZE) < 0)
		return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	add_client(&f, p);
	form_add(&f, "scope", p->scopes);
	json_t *json = NULL;
	int r = token_call(p, p->device_url, "the device authorization", &f, &json, err);
	form_free(&f);
	if (r < 0)
		return -1;
	struct oauth_device d;
	memset(&d, 0, sizeof(d));
	d.device_code = json_secret(json, "device_code");
	copy_str(d.user_code, sizeof(d.user_code), json_object_get(json, "user_code"));
	json_t *uri = json_object_get(json, "verification_uri");
	if (uri == NULL)
		uri = json_object_get(json, "verification_url"); /* Google's older spelling */
	copy_str(d.verification_uri, sizeof(d.verification_uri), uri);
	copy_str(d.verification_uri_complete, sizeof(d.verification_uri_complete),
	         json_object_get(json, "verification_uri_complete"));
	json_int_t interval = json_integer_value(json_object_get(json, "interval"));
	json_int_t expires = json_integer_value(json_object_get(json, "expires_in"));
	json_decref(json);
	d.interval = interval >= 1 && interval <= 600 ? (unsigned)interval : 5;
	d.expires_at = (int64_t)time(NULL) + (expires > 0 && expires <= 86400 ? expires : 900);
	if (d.device_code == NULL || d.user_code[0] == '\0' || d.verification_uri[0] == '\0') {
		oauth_device_clear(&d);
		return fail(err, OAUTH_ERR_PERMANENT,
		            "%s: the device authorization answer lacks device_code, user_code or "
		            "verification_uri",
		            name);
	}
	*dev_r = d;
	ok(err);
	return 0;
}

int oauth_device_poll(const struct oauth_provider *p, struct oauth_device *dev,
                      void (*sleep_fn)(unsigned seconds), struct oauth_tokens *tokens_r,
                      struct oauth_error *err)
{
	const char *name = p->name != NULL ? p->name : "the provider";
	for (;;) {
		if ((int64_t)time(NULL) >= dev->expires_at)
			return fail(err, OAUTH_ERR_PERMANENT,
			            "%s: the device code expired before the sign-in was approved",
			            name);
		if (sleep_fn != NULL)
			sleep_fn(dev->interval);
		else
			sleep(dev->interval);
		struct form f;
		if (form_init(&f, FORM_SIZE) < 0)
			return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
		form_add(&f, "grant_type", "urn:ietf:params:oauth:grant-type:device_code");
		form_add(&f, "device_code", dev->device_code);
		add_client(&f, p);
		if (grant(p, "the device sign-in", &f, tokens_r, err) == 0)
			return 0;
		if (strcmp(err->code, "authorization_pending") == 0)
			continue;
		if (strcmp(err->code, "slow_down") == 0) {
			dev->interval += 5;
			continue;
		}
		if (err->kind == OAUTH_ERR_TEMPORARY && err->code[0] == '\0')
			continue; /* network trouble: keep polling until the code expires */
		if (strcmp(err->code, "access_denied") == 0)
			return fail(err, OAUTH_ERR_PERMANENT, "%s: the sign-in was declined", name);
		if (strcmp(err->code, "expired_token") == 0)
			return fail(err, OAUTH_ERR_PERMANENT,
			            "%s: the device code expired before the sign-in was approved",
			            name);
		return -1;
	}
}

/* --- token file --------------------------------------------------------------- */

int oauth_tokens_from_file(const char *path, struct oauth_tokens *tokens_r, struct oauth_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fail(err, OAUTH_ERR_PERMANENT, "cannot open %.300s: %s", path,
		            strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > OAUTH_MAX_RESPONSE) {
		close(fd);
		return fail(err, OAUTH_ERR_PERMANENT,
		            "%.300s is not a regular file of at most %d bytes", path,
		            OAUTH_MAX_RESPONSE);
	}
	char *data = sodium_malloc(OAUTH_MAX_RESPONSE + 1);
	if (data == NULL) {
		close(fd);
		return fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, data + len, OAUTH_MAX_RESPONSE - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			sodium_free(data);
			return fail(err, OAUTH_ERR_PERMANENT, "cannot read %.300s: %s", path,
			            strerror(e));
		}
		if (n == 0 || len + (size_t)n >= OAUTH_MAX_RESPONSE)
			break;
		len += (size_t)n;
	}
	close(fd);
	json_error_t jerr;
	json_t *json = json_loadb(data, len, 0, &jerr);
	sodium_free(data);
	if (json == NULL || !json_is_object(json)) {
		json_decref(json);
		/* jerr.text may quote the token: say only where. */
		return fail(err, OAUTH_ERR_PERMANENT, "%.300s is not a JSON object (line %d)", path,
		            jerr.line);
	}
	struct oauth_tokens t;
	int r = tokens_from_json(NULL, json, NULL, false, &t, err);
	json_decref(json);
	if (r < 0)
		return -1;
	if (t.refresh_token == NULL) {
		oauth_tokens_clear(&t);
		return fail(err, OAUTH_ERR_PERMANENT, "%.300s holds no refresh_token", path);
	}
	*tokens_r = t;
	return 0;
}
